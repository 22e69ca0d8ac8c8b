//! Agent hosts and `POST /ingest`: host administration with tokens shown once, batches
//! checked whole, idempotent retries, revoked access, and the group-commit writer keeping
//! raw rows and rollups in step under concurrency.

use crate::helpers::*;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub(crate) fn rfc3339(ms: i64) -> String {
    watchpost::domain::format_rfc3339(ms)
}

/// Creates an agent host through the admin API; returns (id, token).
pub(crate) async fn create_host(app: &TestApp, name: &str) -> (i64, String) {
    let resp = app
        .client
        .post(app.url("/admin/hosts"))
        .header("x-admin-token", ADMIN_TOKEN)
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("POST /admin/hosts");
    let body = json_with_status(resp, StatusCode::CREATED).await;
    let token = body["token"].as_str().expect("token").to_owned();
    (body["id"].as_i64().expect("id"), token)
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> Response {
    app.client
        .request(method, app.url(path))
        .header("x-admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A sample on the wire; `salt` varies the values.
pub(crate) fn wire(ts: i64, salt: f64) -> Value {
    json!({
        "ts": rfc3339(ts),
        "cpu": (salt * 7.0) % 100.0,
        "memory": 40.0 + (salt % 50.0),
        "memory_used": 1_000_000,
        "memory_total": 8_000_000,
        "swap": 1.5,
        "load1": salt % 4.0,
        "load5": 0.5,
        "load15": 0.25,
        "disk": 55.0 + (salt % 10.0),
        "disk_read_bps": 1000.0 + salt,
        "disk_write_bps": 2000.0,
        "net_rx_bps": 300.0 * salt,
        "net_tx_bps": 400.0,
        "processes": 120,
        "uptime": 3600,
    })
}

pub(crate) fn batch(id: &str, samples: Vec<Value>) -> Value {
    json!({
        "batch_id": id,
        "agent_version": "0.1.0-test",
        "interval_ms": 1000,
        "samples": samples,
    })
}

pub(crate) async fn ingest(app: &TestApp, token: &str, body: &Value) -> Response {
    app.client
        .post(app.url("/ingest"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("POST /ingest")
}

async fn ingest_raw(app: &TestApp, token: &str, body: String) -> Response {
    app.client
        .post(app.url("/ingest"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST /ingest")
}

pub(crate) async fn count(app: &TestApp, host_id: i64) -> i64 {
    app.store
        .count_samples_between(host_id, 0, i64::MAX)
        .await
        .expect("count")
}

fn host_named<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()
        .expect("host list")
        .iter()
        .find(|h| h["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_hosts_get_a_token_once_and_their_batches_are_stored_once() {
    let app = spawn_app().await;
    let user = app.register_and_login().await;

    // Create: 201, the token once, stored only as a digest.
    let resp = app
        .client
        .post(app.url("/admin/hosts"))
        .header("x-admin-token", ADMIN_TOKEN)
        .json(&json!({"name": "web-1"}))
        .send()
        .await
        .unwrap();
    assert_security_headers(resp.headers());
    let created = json_with_status(resp, StatusCode::CREATED).await;
    let token = created["token"].as_str().unwrap().to_owned();
    let host_id = created["id"].as_i64().unwrap();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created["name"], "web-1");
    assert_eq!(created["kind"], "agent");
    assert_eq!(created["status"], "down", "never reported: {created}");
    assert_eq!(created["last_seen"], Value::Null);
    assert_eq!(created["created_by"], "admin-api");
    assert_eq!(created["local"], false);
    parse_z(created["created_at"].as_str().unwrap());

    // Names are checked and unique.
    for bad in ["", " ", "web 1", "<script>", "-x", &"h".repeat(65)] {
        let resp = app
            .client
            .post(app.url("/admin/hosts"))
            .header("x-admin-token", ADMIN_TOKEN)
            .json(&json!({ "name": bad }))
            .send()
            .await
            .unwrap();
        let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(detail.contains("host name"), "{bad:?}: {detail}");
    }
    let resp = app
        .client
        .post(app.url("/admin/hosts"))
        .header("x-admin-token", ADMIN_TOKEN)
        .json(&json!({"name": "web-1"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::CONFLICT).await;
    // Admin only; users may list.
    let resp = app
        .client
        .post(app.url("/admin/hosts"))
        .header("token", &user)
        .json(&json!({"name": "web-2"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN).await;
    assert_error(app.get_anon("/hosts").await, StatusCode::UNAUTHORIZED).await;
    // An agent token is not a user token.
    assert_error(app.get("/hosts", &token).await, StatusCode::UNAUTHORIZED).await;

    // A batch: 200, counted, visible per host.
    let now = now_ms();
    let samples: Vec<Value> = (0..5)
        .map(|i| wire(now - 5000 + i * 1000, i as f64))
        .collect();
    let resp = ingest(&app, &token, &batch("batch-1", samples.clone())).await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"accepted": 5, "duplicate": false, "batch_id": "batch-1"})
    );
    assert_eq!(count(&app, host_id).await, 5);

    let rows = json_with_status(
        app.get("/metrics?host=web-1&limit=10", &user).await,
        StatusCode::OK,
    )
    .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["host"], "web-1");
    assert_eq!(parse_z(rows[0]["ts"].as_str().unwrap()), now - 1000);
    assert_eq!(rows[0]["cpu"], 28.0);
    assert_eq!(rows[0]["net_rx_bps"], 1200.0);
    assert_eq!(rows[0]["memory_total_bytes"], 8_000_000);
    let q = format!(
        "/metrics/history?host=web-1&start={}&end={}",
        rfc3339(now - 60_000),
        rfc3339(now)
    );
    let hist = json_with_status(app.get(&q, &user).await, StatusCode::OK).await;
    let ts: Vec<i64> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|s| parse_z(s["ts"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ts,
        (0..5).map(|i| now - 5000 + i * 1000).collect::<Vec<_>>()
    );
    let summary =
        json_with_status(app.get("/summary?host=web-1", &user).await, StatusCode::OK).await;
    assert_eq!(summary["host"], "web-1");
    assert_eq!(summary["samples_24h"], 5);
    assert_error(
        app.get("/summary?host=nope", &user).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // The host list: status, last seen, agent version, interval.
    let list = json_with_status(app.get("/hosts", &user).await, StatusCode::OK).await;
    let h = host_named(&list, "web-1").expect("web-1 listed");
    assert_eq!(h["status"], "up", "{h}");
    assert_eq!(h["agent_version"], "0.1.0-test");
    assert_eq!(h["interval_ms"], 1000);
    let seen = parse_z(h["last_seen"].as_str().unwrap());
    assert!((seen - now_ms()).abs() < 60_000, "{h}");
    assert!(h.get("token").is_none(), "listing shows a token: {h}");
    let local = host_named(&list, &app.local_host).expect("local host listed");
    assert_eq!(local["kind"], "server");
    assert_eq!(local["local"], true);
    let admin_list = json_with_status(
        admin(&app, reqwest::Method::GET, "/admin/hosts").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        admin_list.as_array().unwrap().len(),
        list.as_array().unwrap().len()
    );

    // The same batch again: acknowledged as a duplicate, nothing stored twice.
    let resp = ingest(&app, &token, &batch("batch-1", samples.clone())).await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"accepted": 0, "duplicate": true, "batch_id": "batch-1"})
    );
    assert_eq!(count(&app, host_id).await, 5);
    // A new batch overlapping old timestamps stores only the new ones.
    let mut overlap = samples[3..].to_vec();
    overlap.push(wire(now + 1000, 9.0));
    overlap.push(wire(now + 2000, 10.0));
    let body = json_with_status(
        ingest(&app, &token, &batch("batch-2", overlap)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["accepted"], 2);
    assert_eq!(count(&app, host_id).await, 7);
    let stats = app.ingest_stats.snapshot();
    assert_eq!((stats.batches, stats.rows, stats.duplicates), (2, 7, 1));

    // Forgotten batch ids (the janitor's retention) are stored again, but the samples
    // are still deduplicated by timestamp.
    let purged = app.store.purge_ingest_batches(now_ms() + 1).await.unwrap();
    assert_eq!(purged, 2);
    let body = json_with_status(
        ingest(&app, &token, &batch("batch-1", samples)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        body,
        json!({"accepted": 0, "duplicate": false, "batch_id": "batch-1"})
    );
    assert_eq!(count(&app, host_id).await, 7);

    // Wrong credentials.
    let one = batch("x", vec![wire(now, 1.0)]);
    for bad in [user.as_str(), "nope", &"a".repeat(64), &"a".repeat(300)] {
        assert_error(ingest(&app, bad, &one).await, StatusCode::UNAUTHORIZED).await;
    }
    let resp = app
        .client
        .post(app.url("/ingest"))
        .json(&one)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED).await;
    assert_eq!(count(&app, host_id).await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_batches_are_refused_whole_and_store_nothing() {
    let app = spawn_app_with(|s| {
        s.ingest_max_samples = 100;
        s.ingest_max_body_bytes = 64 * 1024;
    })
    .await;
    let (host_id, token) = create_host(&app, "db-1").await;
    let now = now_ms();
    let good = |i: i64| wire(now - 10_000 + i * 100, i as f64);
    let with = |field: &str, v: Value| {
        let mut s = good(50);
        s[field] = v;
        s
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with("ts", json!(rfc3339(now + 10 * 60_000))),
            "ahead of the server's clock",
        ),
        (
            with("ts", json!("2026-01-02T03:04:05")),
            "ts must be an RFC 3339",
        ),
        (with("ts", json!(now)), "invalid request body"),
        (with("cpu", json!(150.0)), "cpu must be a percentage"),
        (with("memory", json!(-1.0)), "memory must be a percentage"),
        (
            with("disk_read_bps", json!(-5.0)),
            "disk_read_bps must be a finite number",
        ),
        (with("load15", json!(-0.5)), "load15"),
        (
            with("processes", json!(-3)),
            "processes must not be negative",
        ),
        (
            with("memory_used", json!(9_000_000)),
            "memory_used must not exceed",
        ),
        (with("uptime", json!(1.5)), "invalid request body"),
        (with("cpu", json!("high")), "invalid request body"),
        (with("extra", json!(1)), "invalid request body"),
    ];
    for (bad, expect) in cases {
        // The bad sample sits among good ones: the whole batch goes.
        let mut samples: Vec<Value> = (0..5).map(good).collect();
        samples.push(bad);
        let resp = ingest(&app, &token, &batch("bad", samples)).await;
        let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(detail.contains(expect), "{detail:?} lacks {expect:?}");
    }
    let mut missing = good(1);
    missing.as_object_mut().unwrap().remove("swap");
    let resp = ingest(&app, &token, &batch("bad", vec![missing])).await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;

    // NaN and infinities are not JSON: refused as malformed.
    let template = serde_json::to_string(&batch("nan", vec![with("cpu", json!(12.345))])).unwrap();
    for literal in ["NaN", "Infinity", "-Infinity", "1e999"] {
        let body = template.replace("12.345", literal);
        let detail = assert_error(
            ingest_raw(&app, &token, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            detail.contains("JSON") || detail.contains("invalid"),
            "{literal}: {detail}"
        );
    }

    // Batch-level checks.
    let detail = assert_error(
        ingest(&app, &token, &batch("empty", vec![])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(detail.contains("empty"), "{detail}");
    let many: Vec<Value> = (0..101).map(good).collect();
    let detail = assert_error(
        ingest(&app, &token, &batch("many", many)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(detail.contains("too many samples"), "{detail}");
    for id in ["", "has space", &"x".repeat(65)] {
        let resp = ingest(&app, &token, &batch(id, vec![good(1)])).await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let mut b = batch("iv", vec![good(1)]);
    b["interval_ms"] = json!(10);
    assert_error(
        ingest(&app, &token, &b).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // Too large a body, the wrong content type, not an object.
    let huge: Vec<Value> = (0..400).map(good).collect();
    assert_error(
        ingest(&app, &token, &batch("huge", huge)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let resp = app
        .client
        .post(app.url("/ingest"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(template.clone())
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_error(
        ingest_raw(&app, &token, "[1,2]".into()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert_eq!(
        count(&app, host_id).await,
        0,
        "a refused batch stored something"
    );
    let stats = app.ingest_stats.snapshot();
    assert_eq!((stats.batches, stats.rows, stats.commits), (0, 0, 0));
    assert!(stats.rejected >= 20, "{stats:?}");
    // The host's status did not move either: refused batches are not a sign of life.
    let h = app.store.host(host_id).await.unwrap().unwrap();
    assert_eq!(h.last_seen_at, None);

    // And a good batch still goes through.
    let samples: Vec<Value> = (0..100).map(good).collect();
    let body = json_with_status(
        ingest(&app, &token, &batch("ok", samples)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["accepted"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_tokens_and_deleted_hosts_lose_access() {
    let app = spawn_app().await;
    let user = app.register_and_login().await;
    let (host_id, old) = create_host(&app, "cache-1").await;
    let now = now_ms();
    let b1 = batch("r1", vec![wire(now - 3000, 1.0)]);
    json_with_status(ingest(&app, &old, &b1).await, StatusCode::OK).await;

    let rotated = json_with_status(
        admin(
            &app,
            reqwest::Method::POST,
            &format!("/admin/hosts/{host_id}/token"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let new = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["id"], host_id);
    assert_eq!(rotated["name"], "cache-1");
    let detail = assert_error(
        ingest(&app, &old, &batch("r2", vec![wire(now - 2000, 2.0)])).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(detail, "invalid agent token");
    json_with_status(
        ingest(&app, &new, &batch("r2", vec![wire(now - 2000, 2.0)])).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(count(&app, host_id).await, 2);

    // Deleting: the host, its data and its token go; its agent hears why.
    let resp = admin(
        &app,
        reqwest::Method::DELETE,
        &format!("/admin/hosts/{host_id}"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let detail = assert_error(
        ingest(&app, &new, &batch("r3", vec![wire(now - 1000, 3.0)])).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(detail.contains("deleted"), "{detail}");
    assert_eq!(count(&app, host_id).await, 0);
    assert_error(
        app.get("/metrics?host=cache-1", &user).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let list = json_with_status(app.get("/hosts", &user).await, StatusCode::OK).await;
    assert!(host_named(&list, "cache-1").is_none());
    assert_error(
        admin(
            &app,
            reqwest::Method::DELETE,
            &format!("/admin/hosts/{host_id}"),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        admin(
            &app,
            reqwest::Method::POST,
            &format!("/admin/hosts/{host_id}/token"),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        admin(&app, reqwest::Method::DELETE, "/admin/hosts/abc").await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // The name is free again, with a fresh token.
    let (again, token) = create_host(&app, "cache-1").await;
    assert_ne!(again, host_id);
    json_with_status(
        ingest(&app, &token, &batch("r1", vec![wire(now - 3000, 1.0)])).await,
        StatusCode::OK,
    )
    .await;

    // This server's own host is not the admin's to delete or give a token.
    let local = app.local_host_id;
    assert_error(
        admin(
            &app,
            reqwest::Method::DELETE,
            &format!("/admin/hosts/{local}"),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_error(
        admin(
            &app,
            reqwest::Method::POST,
            &format!("/admin/hosts/{local}/token"),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    // Without the admin token nothing happens.
    let resp = app
        .client
        .delete(app.url(&format!("/admin/hosts/{again}")))
        .header("token", &user)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(count(&app, again).await, 1);
}

/// One rollup row per (host, bucket): n, cpu min/max/sum, memory min/max/sum, net_rx sum,
/// load1 max, disk min.
type RollupRow = (i64, i64, i64, f64, f64, f64, f64, f64, f64, f64, f64, f64);

const ROLLUP_1M: &str = "SELECT host_id, bucket, n, cpu_min, cpu_max, cpu_sum, memory_min, memory_max, memory_sum, net_rx_sum, load1_max, disk_min FROM samples_1m ORDER BY host_id, bucket";
const RAW_1M: &str = "SELECT host_id, ts / 60000 * 60000 AS bucket, COUNT(*), MIN(cpu), MAX(cpu), SUM(cpu), MIN(memory), MAX(memory), SUM(memory), SUM(net_rx_bps), MAX(load1), MIN(disk) FROM samples GROUP BY host_id, ts / 60000 * 60000 ORDER BY host_id, bucket";
const ROLLUP_1H: &str = "SELECT host_id, bucket, n, cpu_min, cpu_max, cpu_sum, memory_min, memory_max, memory_sum, net_rx_sum, load1_max, disk_min FROM samples_1h ORDER BY host_id, bucket";
const RAW_1H: &str = "SELECT host_id, ts / 3600000 * 3600000 AS bucket, COUNT(*), MIN(cpu), MAX(cpu), SUM(cpu), MIN(memory), MAX(memory), SUM(memory), SUM(net_rx_bps), MAX(load1), MIN(disk) FROM samples GROUP BY host_id, ts / 3600000 * 3600000 ORDER BY host_id, bucket";

async fn fetch(app: &TestApp, sql: &'static str) -> Vec<RollupRow> {
    match app.engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            let rows = sqlx::query_as::<_, RollupRow>(sql)
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            let rows = sqlx::query_as::<_, RollupRow>(sql)
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows
        }
    }
}

/// Rollups equal aggregates computed from the raw rows (sums up to float rounding: the
/// writer adds per batch, SQL per row).
async fn assert_rollups_match_raw(app: &TestApp) {
    for (rollup, raw) in [(ROLLUP_1M, RAW_1M), (ROLLUP_1H, RAW_1H)] {
        let r = fetch(app, rollup).await;
        let a = fetch(app, raw).await;
        assert!(!a.is_empty());
        assert_eq!(r.len(), a.len(), "bucket count differs:\n{r:?}\n{a:?}");
        for (x, y) in r.iter().zip(&a) {
            assert_eq!((x.0, x.1, x.2), (y.0, y.1, y.2), "key or count differs");
            let xs = [x.3, x.4, x.5, x.6, x.7, x.8, x.9, x.10, x.11];
            let ys = [y.3, y.4, y.5, y.6, y.7, y.8, y.9, y.10, y.11];
            for (i, (p, q)) in xs.iter().zip(ys).enumerate() {
                assert!(
                    (p - q).abs() <= 1e-9 * q.abs().max(1.0),
                    "column {i} of bucket {} host {}: rollup {p} vs raw {q}",
                    x.1,
                    x.0
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_are_committed_together_and_rollups_match_raw_rows() {
    // A longer gathering window makes grouping certain rather than likely.
    let app = spawn_app_with(|s| s.ingest_commit_delay_ms = 20).await;
    let mut hosts = Vec::new();
    for i in 0..5 {
        hosts.push(create_host(&app, &format!("node-{i}")).await);
    }
    // Per host, 10 requests of 20 samples 10 s apart, interleaved: every minute bucket
    // receives samples from several requests (and so from several commits).
    let base = (now_ms() / 3_600_000 - 1) * 3_600_000 + 30_000;
    let mut bodies = Vec::new();
    for (h, (_, token)) in hosts.iter().enumerate() {
        for k in 0..10i64 {
            let samples: Vec<Value> = (0..20i64)
                .map(|j| {
                    let ts = base + (j * 10 + k) * 1000 + h as i64;
                    wire(ts, (k * 20 + j) as f64 * 1.37)
                })
                .collect();
            bodies.push((token.clone(), batch(&format!("h{h}-k{k}"), samples)));
        }
    }
    let send_all = |bodies: Vec<(String, Value)>| {
        let client = app.client.clone();
        let url = app.url("/ingest");
        async move {
            let tasks: Vec<_> = bodies
                .into_iter()
                .map(|(token, body)| {
                    let client = client.clone();
                    let url = url.clone();
                    tokio::spawn(async move {
                        let resp = client
                            .post(url)
                            .bearer_auth(token)
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        let status = resp.status();
                        let text = resp.text().await.unwrap();
                        (
                            status,
                            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
                            text,
                        )
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        }
    };
    let answers = send_all(bodies.clone()).await;
    assert_eq!(answers.len(), 50);
    for (status, body, text) in &answers {
        assert_eq!(*status, StatusCode::OK, "{text}");
        assert_eq!(body["accepted"], 20, "{text}");
        assert_eq!(body["duplicate"], false, "{text}");
    }
    // Every acknowledged sample is there, once.
    for (id, _) in &hosts {
        assert_eq!(count(&app, *id).await, 200);
    }
    let stats = app.ingest_stats.snapshot();
    assert_eq!(
        (stats.batches, stats.rows, stats.failed_commits),
        (50, 1000, 0)
    );
    assert!(
        stats.commits < 50,
        "50 concurrent requests took {} commits: nothing was grouped",
        stats.commits
    );
    assert_rollups_match_raw(&app).await;
    let before = (fetch(&app, ROLLUP_1M).await, fetch(&app, ROLLUP_1H).await);

    // The same 50 batches again, concurrently: all duplicates, nothing changes.
    let answers = send_all(bodies).await;
    for (status, body, text) in &answers {
        assert_eq!(*status, StatusCode::OK, "{text}");
        assert_eq!(body["duplicate"], true, "{text}");
        assert_eq!(body["accepted"], 0, "{text}");
    }
    for (id, _) in &hosts {
        assert_eq!(count(&app, *id).await, 200);
    }
    assert_eq!(
        before,
        (fetch(&app, ROLLUP_1M).await, fetch(&app, ROLLUP_1H).await)
    );
    assert_eq!(app.ingest_stats.snapshot().duplicates, 50);

    // Charts read the same numbers through the rollup tier.
    let (first, _) = hosts[0];
    let buckets = app
        .store
        .chart_buckets(
            first,
            watchpost::store::Tier::Minute,
            base - 30_000,
            base + 300_000,
            60_000,
        )
        .await
        .unwrap();
    let raw = app
        .store
        .samples_between(first, base - 30_000, base + 300_000)
        .await
        .unwrap();
    let mut per_minute: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for s in &raw {
        let e = per_minute
            .entry(s.ts.div_euclid(60_000) * 60_000)
            .or_insert((f64::MAX, f64::MIN));
        e.0 = e.0.min(s.cpu);
        e.1 = e.1.max(s.cpu);
    }
    assert_eq!(
        buckets
            .iter()
            .map(|b| (b.ts, (b.cpu_min, b.cpu_max)))
            .collect::<Vec<_>>(),
        per_minute.into_iter().collect::<Vec<_>>()
    );
}

/// Each stored batch id with the row count recorded for it.
async fn batch_rows(app: &TestApp) -> Vec<(i64, String, i64)> {
    const SQL: &str =
        "SELECT host_id, batch_id, rows FROM ingest_batches ORDER BY host_id, batch_id";
    match app.engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_commit_sorts_out_retries_overlaps_and_deleted_hosts() {
    use watchpost::store::{IngestBatch, IngestOutcome, Sample};
    let app = spawn_app().await;
    let (a, _) = create_host(&app, "alpha").await;
    let (b, _) = create_host(&app, "bravo").await;
    let (c, _) = create_host(&app, "charlie").await;
    let now = now_ms();
    assert!(app.store.delete_host(c, now).await.unwrap());
    let base = now / 60_000 * 60_000 - 600_000;
    let sample = |host_id, k: i64, cpu| Sample {
        host_id,
        ts: base + k * 1000,
        cpu,
        memory: 50.0,
        uptime: 100 + k,
        ..Default::default()
    };
    let batch = |host_id, id: &str, version: Option<&str>, interval_ms, samples| IngestBatch {
        host_id,
        batch_id: id.to_owned(),
        agent_version: version.map(str::to_owned),
        interval_ms,
        samples,
    };
    let a0 = batch(
        a,
        "a0",
        Some("1.0"),
        Some(1000),
        (0..3).map(|k| sample(a, k, 10.0)).collect(),
    );
    assert_eq!(
        app.store
            .ingest(std::slice::from_ref(&a0), now)
            .await
            .unwrap(),
        vec![IngestOutcome::Stored { accepted: 3 }]
    );

    // One group commit holding, in arrival order: a new batch, a retry of a committed
    // batch, a batch overlapping committed samples, a deleted host's batch, a retry of a
    // batch earlier in the same commit, a batch overlapping that one, an empty batch.
    let commit = vec![
        batch(
            b,
            "b1",
            Some("1.0"),
            Some(1000),
            vec![sample(b, 0, 20.0), sample(b, 1, 21.0)],
        ),
        a0.clone(),
        batch(
            a,
            "a1",
            None,
            None,
            (2..5).map(|k| sample(a, k, 30.0)).collect(),
        ),
        batch(c, "c1", Some("1.0"), Some(1000), vec![sample(c, 0, 1.0)]),
        batch(
            b,
            "b1",
            Some("1.0"),
            Some(1000),
            vec![sample(b, 0, 20.0), sample(b, 1, 21.0)],
        ),
        batch(
            b,
            "b2",
            Some("1.1"),
            None,
            vec![sample(b, 1, 99.0), sample(b, 2, 22.0)],
        ),
        batch(a, "a2", None, Some(2000), Vec::new()),
    ];
    let later = now + 5000;
    let outcomes = app.store.ingest(&commit, later).await.unwrap();
    assert_eq!(
        outcomes,
        vec![
            IngestOutcome::Stored { accepted: 2 },
            IngestOutcome::Duplicate,
            IngestOutcome::Stored { accepted: 2 },
            IngestOutcome::HostGone,
            IngestOutcome::Duplicate,
            IngestOutcome::Stored { accepted: 1 },
            IngestOutcome::Stored { accepted: 0 },
        ]
    );
    let cpus = |host| {
        let store = app.store.clone();
        async move {
            store
                .samples_between(host, base - 1, base + 60_000)
                .await
                .unwrap()
                .iter()
                .map(|s| (s.ts - base, s.cpu))
                .collect::<Vec<_>>()
        }
    };
    // The first writer of a timestamp wins: a0's k=2 stays 10, b1's k=1 stays 21.
    assert_eq!(
        cpus(a).await,
        vec![
            (0, 10.0),
            (1000, 10.0),
            (2000, 10.0),
            (3000, 30.0),
            (4000, 30.0)
        ]
    );
    assert_eq!(cpus(b).await, vec![(0, 20.0), (1000, 21.0), (2000, 22.0)]);
    assert_eq!(count(&app, c).await, 0);
    assert_eq!(
        batch_rows(&app).await,
        vec![
            (a, "a0".to_owned(), 3),
            (a, "a1".to_owned(), 2),
            (a, "a2".to_owned(), 0),
            (b, "b1".to_owned(), 2),
            (b, "b2".to_owned(), 1),
        ]
    );
    // Each host shows what its latest batches said, and the server's clock as last seen.
    let alpha = app.store.host(a).await.unwrap().unwrap();
    assert_eq!(
        (
            alpha.agent_version.as_deref(),
            alpha.interval_ms,
            alpha.last_seen_at
        ),
        (Some("1.0"), Some(2000), Some(later))
    );
    let bravo = app.store.host(b).await.unwrap().unwrap();
    assert_eq!(
        (
            bravo.agent_version.as_deref(),
            bravo.interval_ms,
            bravo.last_seen_at
        ),
        (Some("1.1"), Some(1000), Some(later))
    );
    // A commit from a slower replica with an older clock does not move last-seen back.
    app.store
        .ingest(&[batch(b, "b3", None, None, Vec::new())], now)
        .await
        .unwrap();
    assert_eq!(
        app.store.host(b).await.unwrap().unwrap().last_seen_at,
        Some(later)
    );
    assert_rollups_match_raw(&app).await;
}

/// Runs one statement straight on the test database (fault injection).
async fn execute(app: &TestApp, sql: &'static str) {
    match app.engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_commit_refuses_every_batch_in_it_and_stores_nothing() {
    // A wide gathering window puts all the requests below into one transaction.
    let app = spawn_app_with(|s| s.ingest_commit_delay_ms = 300).await;
    let (host_id, token) = create_host(&app, "fragile").await;
    // A sample with cpu = 66.5 makes the database refuse the insert.
    match app.engine {
        Engine::Sqlite => {
            execute(
                &app,
                "CREATE TRIGGER poison BEFORE INSERT ON samples WHEN NEW.cpu = 66.5 \
                 BEGIN SELECT RAISE(ABORT, 'poisoned sample'); END",
            )
            .await
        }
        Engine::Postgres => {
            execute(
                &app,
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.cpu = 66.5 THEN RAISE EXCEPTION 'poisoned sample'; END IF; RETURN NEW; \
                 END $$ LANGUAGE plpgsql",
            )
            .await;
            execute(
                &app,
                "CREATE TRIGGER poison BEFORE INSERT ON samples FOR EACH ROW EXECUTE FUNCTION poison()",
            )
            .await
        }
    }
    let now = now_ms();
    let bodies: Vec<Value> = (0..8i64)
        .map(|k| {
            let mut samples: Vec<Value> = (0..10i64)
                .map(|j| wire(now - 60_000 + (j * 8 + k) * 100, 1.0))
                .collect();
            if k == 5 {
                samples[3]["cpu"] = json!(66.5);
            }
            batch(&format!("f{k}"), samples)
        })
        .collect();
    let send = |bodies: Vec<Value>| {
        let client = app.client.clone();
        let url = app.url("/ingest");
        let token = token.clone();
        async move {
            let tasks: Vec<_> = bodies
                .into_iter()
                .map(|body| {
                    let (client, url, token) = (client.clone(), url.clone(), token.clone());
                    tokio::spawn(async move {
                        let resp = client
                            .post(url)
                            .bearer_auth(token)
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        let retry_after = resp.headers().get("retry-after").is_some();
                        (resp.status(), retry_after, resp.text().await.unwrap())
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        }
    };
    let answers = send(bodies.clone()).await;
    // The poisoned batch and every batch that shared its transaction: 503, retryable,
    // and not one of their samples stored; batches in other transactions went through.
    let mut refused = 0;
    let mut stored = 0i64;
    for (k, (status, retry_after, text)) in answers.iter().enumerate() {
        match *status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(*retry_after, "{text}");
                refused += 1;
            }
            StatusCode::OK => {
                assert_ne!(k, 5, "the poisoned batch was acknowledged: {text}");
                stored += 10;
            }
            other => panic!("batch {k}: {other} {text}"),
        }
    }
    assert_eq!(answers[5].0, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused >= 2,
        "the poisoned batch was committed alone: {answers:?}"
    );
    assert_eq!(
        count(&app, host_id).await,
        stored,
        "a refused batch left rows behind"
    );
    let stats = app.ingest_stats.snapshot();
    assert!(stats.failed_commits >= 1, "{stats:?}");
    assert_rollups_match_raw_or_empty(&app, stored).await;

    // Once the fault is gone the same batches (same ids) go through: nothing half-done
    // was remembered as a duplicate.
    match app.engine {
        Engine::Sqlite => execute(&app, "DROP TRIGGER poison").await,
        Engine::Postgres => execute(&app, "DROP TRIGGER poison ON samples").await,
    }
    let answers = send(bodies).await;
    let mut fresh = 0;
    for (status, _, text) in &answers {
        assert_eq!(*status, StatusCode::OK, "{text}");
        let body: Value = serde_json::from_str(text).unwrap();
        if body["duplicate"] == false {
            assert_eq!(body["accepted"], 10, "{text}");
            fresh += 1;
        }
    }
    assert_eq!(fresh, refused);
    assert_eq!(count(&app, host_id).await, 80);
    assert_rollups_match_raw(&app).await;
}

async fn assert_rollups_match_raw_or_empty(app: &TestApp, stored: i64) {
    if stored == 0 {
        assert!(fetch(app, ROLLUP_1M).await.is_empty());
        assert!(fetch(app, ROLLUP_1H).await.is_empty());
    } else {
        assert_rollups_match_raw(app).await;
    }
}
