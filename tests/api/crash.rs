//! Crash and retry safety: the `Idempotency-Key` of `POST /logs/analyze` (both engines),
//! a SIGKILL loop under ingest and upload traffic (F4) and a full disk (F6), the last two
//! with the real binary on SQLite.

use crate::binary::{read, wait_exit, Server};
use crate::helpers::*;
use crate::ingest::{batch, wire};
use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LOG: &str = "2026-11-27 10:00:00,001 - app - ERROR - Connection refused to 10.0.0.1:5432\n\
2026-11-27 10:00:01,002 - app - INFO - started worker 1\n\
2026-11-27 10:00:02,003 - app - WARNING - slow query took 1200 ms\n";

const OTHER_LOG: &str = "2026-11-27 11:00:00,001 - app - INFO - a different log\n";

const REPLAYED: &str = "idempotent-replayed";

/// `POST /logs/analyze` with a raw text body and an optional `Idempotency-Key`.
async fn upload(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    key: Option<&str>,
    log: &str,
) -> reqwest::Response {
    let mut req = client
        .post(format!("{base}/logs/analyze"))
        .header("token", token)
        .header("content-type", "text/plain")
        .body(log.to_owned());
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    req.send().await.expect("POST /logs/analyze")
}

fn replayed(resp: &reqwest::Response) -> bool {
    match resp.headers().get(REPLAYED) {
        None => false,
        Some(v) => {
            assert_eq!(v, "true", "{REPLAYED} is only ever true");
            true
        }
    }
}

async fn analyses_total(app: &TestApp, token: &str) -> i64 {
    let resp = app.get("/logs/analyses?limit=200", token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_upload_with_the_same_key_returns_the_stored_analysis() {
    let app = spawn_app().await;
    let (_, a) = app.register_and_login_user().await;
    let b = app.register_and_login().await;
    let base = app.base_url.as_str();

    let resp = upload(&app.client, base, &a, Some("retry-1"), LOG).await;
    assert!(!replayed(&resp), "a first upload is not a replay");
    let first = json_with_status(resp, StatusCode::OK).await;
    let id = first["analysis_id"].as_i64().expect("analysis_id");
    assert_eq!(first["counts"]["ERROR"], 1, "{first}");

    // The retry: same key, same log. The very document of the first answer, stored once.
    let resp = upload(&app.client, base, &a, Some("retry-1"), LOG).await;
    assert!(replayed(&resp), "a retry says it is a replay");
    let again = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(again, first, "same id, same report (elapsed_ms included)");
    // The draft's structured-field form ("...") names the same key; the log sent as
    // JSON instead of a raw body is the same log.
    let resp = send_as(
        app.client
            .post(app.url("/logs/analyze"))
            .header("idempotency-key", "\"retry-1\"")
            .json(&json!({ "logs": LOG })),
        &a,
    )
    .await;
    assert!(replayed(&resp));
    assert_eq!(json_with_status(resp, StatusCode::OK).await, first);
    assert_eq!(analyses_total(&app, &a).await, 1);

    // The same key for another log is a client bug: refused, nothing stored.
    let resp = upload(&app.client, base, &a, Some("retry-1"), OTHER_LOG).await;
    let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.contains("Idempotency-Key"), "{detail}");
    assert_eq!(analyses_total(&app, &a).await, 1);

    // Keys are per user: another user's same key stores that user's own analysis.
    let resp = upload(&app.client, base, &b, Some("retry-1"), LOG).await;
    assert!(!replayed(&resp));
    let theirs = json_with_status(resp, StatusCode::OK).await;
    let their_id = theirs["analysis_id"].as_i64().unwrap();
    assert_ne!(their_id, id);
    assert_eq!(analyses_total(&app, &b).await, 1);
    assert_eq!(analyses_total(&app, &a).await, 1);
    let resp = app.get(&format!("/logs/analyses/{their_id}"), &a).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "not a's analysis");

    // The stored report is the one answered.
    let resp = app.get(&format!("/logs/analyses/{id}"), &a).await;
    let stored = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(stored["report"]["counts"], first["counts"]);
    assert_eq!(stored["report"]["elapsed_ms"], first["elapsed_ms"]);

    // Deleting the analysis frees its key: the next upload under it is stored anew.
    let resp = send_as(
        app.client.delete(app.url(&format!("/logs/analyses/{id}"))),
        &a,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = upload(&app.client, base, &a, Some("retry-1"), OTHER_LOG).await;
    assert!(!replayed(&resp));
    let fresh = json_with_status(resp, StatusCode::OK).await;
    assert_ne!(fresh["analysis_id"].as_i64().unwrap(), id);

    // Without a key, every upload is stored.
    for _ in 0..2 {
        let resp = upload(&app.client, base, &a, None, LOG).await;
        assert!(!replayed(&resp));
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(analyses_total(&app, &a).await, 3);

    // The header is documented on the operation.
    let doc = json_with_status(app.get_anon("/openapi.json").await, StatusCode::OK).await;
    let params = doc["paths"]["/logs/analyze"]["post"]["parameters"]
        .as_array()
        .expect("parameters");
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "{params:?}"
    );
    let ok = &doc["paths"]["/logs/analyze"]["post"]["responses"]["200"];
    assert!(ok["headers"].get(REPLAYED).is_some(), "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_idempotency_keys_are_refused_before_anything_is_stored() {
    let app = spawn_app().await;
    let (_, a) = app.register_and_login_user().await;
    let long = "k".repeat(256);
    let bad: Vec<HeaderValue> = vec![
        HeaderValue::from_static(""),
        HeaderValue::from_static("\"\""),
        HeaderValue::from_str(&long).unwrap(),
        HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
        HeaderValue::from_bytes(b"tab\there").unwrap(),
    ];
    for key in bad {
        let resp = send_as(
            app.client
                .post(app.url("/logs/analyze"))
                .header("content-type", "text/plain")
                .header("idempotency-key", key.clone())
                .body(LOG),
            &a,
        )
        .await;
        assert_security_headers(resp.headers());
        let detail = assert_error(resp, StatusCode::BAD_REQUEST).await;
        assert!(detail.contains("Idempotency-Key"), "{key:?}: {detail}");
    }
    // Sent twice: which one would count?
    let resp = send_as(
        app.client
            .post(app.url("/logs/analyze"))
            .header("content-type", "text/plain")
            .header("idempotency-key", "one")
            .header("idempotency-key", "two")
            .body(LOG),
        &a,
    )
    .await;
    let detail = assert_error(resp, StatusCode::BAD_REQUEST).await;
    assert!(detail.contains("more than once"), "{detail}");
    assert_eq!(analyses_total(&app, &a).await, 0);

    // The edges that are fine: 255 characters, spaces and punctuation inside.
    let edge = "k".repeat(255);
    for key in [edge.as_str(), "a b ~!@#$%^&*()", "x"] {
        let resp = upload(&app.client, &app.base_url, &a, Some(key), LOG).await;
        assert_eq!(resp.status(), StatusCode::OK, "{key:?}");
    }
    assert_eq!(analyses_total(&app, &a).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_with_one_key_store_one_analysis() {
    let app = spawn_app().await;
    let (_, a) = app.register_and_login_user().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let base = app.base_url.clone();
        let token = a.clone();
        tasks.push(tokio::spawn(async move {
            let resp = upload(&client, &base, &token, Some("same-key"), LOG).await;
            let again = replayed(&resp);
            let doc = json_with_status(resp, StatusCode::OK).await;
            (doc["analysis_id"].as_i64().expect("analysis_id"), again)
        }));
    }
    let mut ids = BTreeSet::new();
    let mut stored = 0;
    for t in tasks {
        let (id, again) = t.await.expect("upload task");
        ids.insert(id);
        stored += usize::from(!again);
    }
    assert_eq!(
        ids.len(),
        1,
        "every request answered the one analysis: {ids:?}"
    );
    assert_eq!(
        stored, 1,
        "exactly one request stored it, the rest replayed"
    );
    assert_eq!(analyses_total(&app, &a).await, 1);
}

// ---------------------------------------------------------------------------------------
// The real binary: SQLite only. A SIGKILL of a PostgreSQL-backed replica is covered by
// `replicas.rs::killing_the_lead_replica_loses_no_sample_and_no_alert`; what is special
// here is SQLite's own crash recovery (WAL replay) in the files the process left behind.

const ADMIN: &str = "crash-admin-token-0123456789";
const USER: &str = "crashuser";
const USER_PASSWORD: &str = "crash test password 1";
/// Samples per ingest batch.
const PER_BATCH: i64 = 40;

/// Whether fault tests that need privileges (tmpfs mounts) must run instead of skipping.
fn faults_required() -> bool {
    std::env::var("WATCHPOST_REQUIRE_FAULTS").is_ok_and(|v| v == "1")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A read-only connection to the server's database (it may be running: WAL lets it).
async fn open_db(path: &Path, read_only: bool) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(read_only);
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

async fn integrity(pool: &sqlx::SqlitePool) -> Vec<String> {
    sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(pool)
        .await
        .expect("PRAGMA integrity_check")
}

async fn scalar(pool: &sqlx::SqlitePool, sql: &str, binds: &[&str]) -> i64 {
    let mut q = sqlx::query_scalar::<_, i64>(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Files in the data directory other than the database, its WAL and shared memory, and
/// the server's lock file.
fn unexpected_files(dir: &Path, db: &str) -> Vec<String> {
    let allowed = [
        db.to_owned(),
        format!("{db}-wal"),
        format!("{db}-shm"),
        format!("{db}.lock"),
    ];
    std::fs::read_dir(dir)
        .expect("read data dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !allowed.contains(n))
        .collect()
}

async fn json_of(resp: reqwest::Response, expected: StatusCode, what: &str) -> Value {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, expected, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"))
}

/// Registers and logs in the test user; creates an agent host. Returns (user id, user
/// token, host id, agent token).
async fn set_up(server: &Server) -> (i64, String, i64, String) {
    let c = &server.client;
    let base = &server.base_url;
    let resp = c
        .post(format!("{base}/register"))
        .json(&json!({"username": USER, "password": USER_PASSWORD}))
        .send()
        .await
        .unwrap();
    let user = json_of(resp, StatusCode::CREATED, "register").await;
    let resp = c
        .post(format!("{base}/login"))
        .json(&json!({"username": USER, "password": USER_PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = json_of(resp, StatusCode::OK, "login").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = c
        .post(format!("{base}/admin/hosts"))
        .header("x-admin-token", ADMIN)
        .json(&json!({"name": "crash-agent"}))
        .send()
        .await
        .unwrap();
    let host = json_of(resp, StatusCode::CREATED, "create host").await;
    (
        user["id"].as_i64().expect("user id"),
        token,
        host["id"].as_i64().unwrap(),
        host["token"].as_str().unwrap().to_owned(),
    )
}

/// An ingest batch the client sent: samples `first_ts`, `first_ts + 1 s`, ….
#[derive(Debug, Clone)]
struct SentBatch {
    id: String,
    first_ts: i64,
    acked: bool,
}

/// An upload the client sent under an idempotency key.
#[derive(Debug, Clone)]
struct SentUpload {
    key: String,
    log: String,
    /// The analysis id of a 2xx answer.
    acked: Option<i64>,
}

fn batch_body(b: &SentBatch) -> Value {
    let samples = (0..PER_BATCH)
        .map(|i| wire(b.first_ts + i * 1000, (i % 13) as f64))
        .collect();
    batch(&b.id, samples)
}

/// A log of a few thousand lines, different for every key.
fn log_for(key: &str) -> String {
    let mut s = String::with_capacity(200_000);
    for i in 0..2500 {
        let level = ["INFO", "WARNING", "ERROR"][i % 3];
        s.push_str(&format!(
            "2026-11-27 10:{:02}:{:02},{:03} - app - {level} - request {i} of {key} took {} ms\n",
            (i / 60) % 60,
            i % 60,
            i % 1000,
            i * 7 % 900
        ));
    }
    s
}

/// Sends ingest batches until `deadline`, the cap, or the server goes away.
async fn ingest_stream(
    base: String,
    agent: String,
    next: Arc<AtomicI64>,
    first_ts: i64,
    deadline: Instant,
    out: Arc<Mutex<Vec<SentBatch>>>,
) {
    let c = client();
    for _ in 0..2000 {
        if Instant::now() >= deadline {
            break;
        }
        let k = next.fetch_add(1, Ordering::SeqCst);
        let mut b = SentBatch {
            id: format!("crash-batch-{k}"),
            first_ts: first_ts + k * PER_BATCH * 1000,
            acked: false,
        };
        let sent = c
            .post(format!("{base}/ingest"))
            .bearer_auth(&agent)
            .json(&batch_body(&b))
            .send()
            .await;
        let gone = sent.is_err();
        // Acknowledged: a 2xx status line, which the server sends only after the commit.
        b.acked = sent.is_ok_and(|r| r.status().is_success());
        out.lock().unwrap().push(b);
        if gone {
            break;
        }
    }
}

/// Uploads logs under fresh idempotency keys until `deadline` or the server goes away.
async fn upload_stream(
    base: String,
    token: String,
    next: Arc<AtomicI64>,
    deadline: Instant,
    out: Arc<Mutex<Vec<SentUpload>>>,
) {
    let c = client();
    for _ in 0..500 {
        if Instant::now() >= deadline {
            break;
        }
        let k = next.fetch_add(1, Ordering::SeqCst);
        let key = format!("crash-upload-{k}");
        let log = log_for(&key);
        let mut u = SentUpload {
            key: key.clone(),
            log: log.clone(),
            acked: None,
        };
        let sent = c
            .post(format!("{base}/logs/analyze"))
            .header("token", &token)
            .header("content-type", "text/plain")
            .header("idempotency-key", &key)
            .body(log)
            .send()
            .await;
        let gone = sent.is_err();
        if let Ok(r) = sent {
            if r.status().is_success() {
                // The status line means committed; the body may still be cut by the kill.
                u.acked = Some(
                    r.json::<Value>()
                        .await
                        .ok()
                        .and_then(|d| d["analysis_id"].as_i64())
                        .unwrap_or(-1),
                );
            }
        }
        out.lock().unwrap().push(u);
        if gone {
            break;
        }
    }
}

/// SIGKILL in a bounded loop while batches and uploads stream in: after every restart each
/// acknowledged batch and upload is there whole, an unacknowledged one is there whole or
/// not at all, a retry under the same batch id / key stores nothing twice, the database
/// passes `integrity_check`, and the data directory holds nothing but the database files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingest_and_uploads_loses_nothing_and_duplicates_nothing() {
    use rand::Rng;
    const ROUNDS: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db_path = data.join("w.db");
    let url = format!("sqlite://{}", db_path.display());
    let configure = |c: &mut Command| {
        c.env("DATABASE_URL", &url)
            .env("ADMIN_TOKEN", ADMIN)
            .env("WATCHPOST_COLLECTOR", "false")
            // Every acknowledged upload is checked at the end: none may age out.
            .env("WATCHPOST_LOG_ANALYSES_PER_USER", "100000");
    };
    let started = Instant::now();
    let mut server = Server::start(dir.path(), "start", configure).await;
    let (user_id, token, host_id, agent) = set_up(&server).await;
    let user_id = user_id.to_string();
    let host_id = host_id.to_string();
    // Two days back, so the largest batch index still lies in the past.
    let first_ts = now_ms() - 2 * 86_400_000;
    let next_batch = Arc::new(AtomicI64::new(0));
    let next_upload = Arc::new(AtomicI64::new(0));
    let batches: Arc<Mutex<Vec<SentBatch>>> = Arc::default();
    let uploads: Arc<Mutex<Vec<SentUpload>>> = Arc::default();
    let mut unacked_seen = (0usize, 0usize);
    let mut committed_unacked = 0usize;

    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(rand::thread_rng().gen_range(0..=2000));
        let deadline = Instant::now() + kill_after + Duration::from_secs(1);
        let mut streams = Vec::new();
        for _ in 0..2 {
            streams.push(tokio::spawn(ingest_stream(
                server.base_url.clone(),
                agent.clone(),
                next_batch.clone(),
                first_ts,
                deadline,
                batches.clone(),
            )));
        }
        streams.push(tokio::spawn(upload_stream(
            server.base_url.clone(),
            token.clone(),
            next_upload.clone(),
            deadline,
            uploads.clone(),
        )));
        tokio::time::sleep(kill_after).await;
        server.child.kill().expect("SIGKILL");
        assert!(
            wait_exit(&mut server.child, Duration::from_secs(5))
                .await
                .is_some(),
            "round {round}: no exit after SIGKILL"
        );
        for s in streams {
            tokio::time::timeout(Duration::from_secs(15), s)
                .await
                .expect("client stream ends once the server is gone")
                .expect("client stream");
        }
        // What the killed process left: the database files and nothing else.
        let extra = unexpected_files(&data, "w.db");
        assert!(extra.is_empty(), "round {round}: stray files {extra:?}");

        // The restarted server recovers the WAL itself; then compare.
        server = Server::start(dir.path(), &format!("round{round}"), configure).await;
        let db = open_db(&db_path, true).await;
        assert_eq!(integrity(&db).await, ["ok"], "round {round}");
        // The streams are done: the lists are taken out (and put back after the retries),
        // so no lock is held across an await.
        let mut sent_batches = std::mem::take(&mut *batches.lock().unwrap());
        let mut sent_uploads = std::mem::take(&mut *uploads.lock().unwrap());
        for b in &sent_batches {
            let last = (b.first_ts + (PER_BATCH - 1) * 1000).to_string();
            let first = b.first_ts.to_string();
            let n = scalar(
                &db,
                "SELECT COUNT(*) FROM samples WHERE host_id = CAST($1 AS INTEGER) AND ts BETWEEN CAST($2 AS INTEGER) AND CAST($3 AS INTEGER)",
                &[&host_id, &first, &last],
            )
            .await;
            let recorded = scalar(
                &db,
                "SELECT COUNT(*) FROM ingest_batches WHERE host_id = CAST($1 AS INTEGER) AND batch_id = $2",
                &[&host_id, &b.id],
            )
            .await;
            if b.acked {
                assert_eq!(
                    n, PER_BATCH,
                    "round {round}: acknowledged {} lost samples",
                    b.id
                );
            } else {
                assert!(
                    n == 0 || n == PER_BATCH,
                    "round {round}: half of {} stored ({n} of {PER_BATCH})",
                    b.id
                );
            }
            assert_eq!(
                recorded,
                i64::from(n > 0),
                "round {round}: batch id of {} recorded iff its samples are",
                b.id
            );
        }
        for u in &sent_uploads {
            let rows = scalar(
                &db,
                "SELECT COUNT(*) FROM log_analyses WHERE user_id = CAST($1 AS INTEGER) AND idempotency_key = $2",
                &[&user_id, &u.key],
            )
            .await;
            match u.acked {
                Some(id) => {
                    assert_eq!(rows, 1, "round {round}: acknowledged {} lost", u.key);
                    if id >= 0 {
                        let found = scalar(
                            &db,
                            "SELECT COUNT(*) FROM log_analyses WHERE id = CAST($1 AS INTEGER) AND idempotency_key = $2",
                            &[&id.to_string(), &u.key],
                        )
                        .await;
                        assert_eq!(found, 1, "round {round}: {} under another id", u.key);
                    }
                }
                None => assert!(rows <= 1, "round {round}: {} stored {rows} times", u.key),
            }
        }
        db.close().await;

        // Retries of what was not acknowledged, with the same ids: nothing stored twice.
        let c = client();
        let base = &server.base_url;
        for b in sent_batches.iter_mut().filter(|b| !b.acked) {
            unacked_seen.0 += 1;
            let resp = c
                .post(format!("{base}/ingest"))
                .bearer_auth(&agent)
                .json(&batch_body(b))
                .send()
                .await
                .unwrap();
            let body = json_of(resp, StatusCode::OK, "retried batch").await;
            let accepted = body["accepted"].as_i64().unwrap();
            let duplicate = body["duplicate"].as_bool().unwrap();
            // Committed before the kill, only its answer was lost.
            committed_unacked += usize::from(duplicate);
            assert!(
                (duplicate && accepted == 0) || (!duplicate && accepted == PER_BATCH),
                "round {round}: retry of {}: {body}",
                b.id
            );
            b.acked = true;
        }
        for u in sent_uploads.iter_mut() {
            if u.acked.is_some_and(|id| id >= 0) {
                continue;
            }
            unacked_seen.1 += 1;
            let resp = upload(&c, base, &token, Some(&u.key), &u.log).await;
            committed_unacked += usize::from(replayed(&resp));
            let doc = json_of(resp, StatusCode::OK, "retried upload").await;
            u.acked = doc["analysis_id"].as_i64();
        }
        *batches.lock().unwrap() = sent_batches;
        *uploads.lock().unwrap() = sent_uploads;
    }

    // After the last round and its retries (the server is up again): every batch exactly
    // once, every upload exactly once, under the id its client was given.
    let db = open_db(&db_path, true).await;
    assert_eq!(integrity(&db).await, ["ok"]);
    let sent_batches = batches.lock().unwrap().clone();
    let sent_uploads = uploads.lock().unwrap().clone();
    assert!(
        sent_batches.len() >= ROUNDS && !sent_uploads.is_empty(),
        "traffic flowed: {} batches, {} uploads",
        sent_batches.len(),
        sent_uploads.len()
    );
    let samples = scalar(
        &db,
        "SELECT COUNT(*) FROM samples WHERE host_id = CAST($1 AS INTEGER)",
        &[&host_id],
    )
    .await;
    assert_eq!(samples, sent_batches.len() as i64 * PER_BATCH);
    let analyses = scalar(
        &db,
        "SELECT COUNT(*) FROM log_analyses WHERE user_id = CAST($1 AS INTEGER)",
        &[&user_id],
    )
    .await;
    assert_eq!(analyses, sent_uploads.len() as i64);
    let ids: BTreeSet<i64> = sent_uploads.iter().filter_map(|u| u.acked).collect();
    assert_eq!(ids.len(), sent_uploads.len(), "one analysis per key");
    db.close().await;
    eprintln!(
        "F4: {ROUNDS} kills, {} batches and {} uploads, {} batches and {} uploads retried after a kill ({committed_unacked} of them committed before it), {:?}",
        sent_batches.len(),
        sent_uploads.len(),
        unacked_seen.0,
        unacked_seen.1,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// F6: a full disk. SQLite only: the database files must sit on a filesystem the test can
// fill (a small tmpfs, which needs root); PostgreSQL's disk is its server's.

/// A tmpfs mounted for the test; unmounted on drop, always (lazily if still busy).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs {
                path: path.to_owned(),
            })
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Bytes free on the filesystem holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let st = rustix::fs::statvfs(path).expect("statvfs");
    st.f_bavail * st.f_frsize
}

/// Fills the filesystem under `path` with one file until writes fail with ENOSPC:
/// megabytes first, then pages, so nothing is left. Returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("create filler");
    top_up(&mut f)
}

/// Appends to `f` until the filesystem is full; returns the bytes written.
fn top_up(f: &mut std::fs::File) -> u64 {
    use std::io::Write;
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![0u8; chunk];
        // Bounded: the tmpfs is 16 MiB.
        for _ in 0..40_000 {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) => {
                    assert!(
                        e.raw_os_error() == Some(28),
                        "filling failed with something other than ENOSPC: {e}"
                    );
                    break;
                }
            }
        }
    }
    let _ = f.sync_all();
    written
}

/// A write refused for the full disk: 503 with `Retry-After` and a JSON detail saying so,
/// answered promptly.
async fn assert_disk_full(what: &str, took: Duration, resp: reqwest::Response) {
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {text}");
    let retry: u64 = retry
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry >= 1, "{what}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("disk is full"), "{what}: {text}");
    assert!(took < Duration::from_secs(5), "{what} took {took:?}");
}

async fn timed(req: reqwest::RequestBuilder) -> (Duration, reqwest::Response) {
    let t = Instant::now();
    let resp = req.send().await.expect("request");
    (t.elapsed(), resp)
}

/// F6: with the database on a full filesystem, writes get 503 + `Retry-After` with a
/// detail that says why, reads keep working, `/readyz` reports the disk, and the process
/// (its stderr on the same full filesystem) stays up; once space is freed everything
/// recovers without a restart, nothing acknowledged is missing and the database is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_keeps_reads_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("data");
    let _mount = match Tmpfs::mount(&mnt, "16m") {
        Ok(m) => m,
        Err(e) if !faults_required() => {
            eprintln!("skipping the disk-full test: cannot mount a tmpfs ({e}); set WATCHPOST_REQUIRE_FAULTS=1 to fail instead");
            return;
        }
        Err(e) => panic!("WATCHPOST_REQUIRE_FAULTS=1 but a tmpfs cannot be mounted: {e}"),
    };
    let db_path = mnt.join("w.db");
    let url = format!("sqlite://{}", db_path.display());
    // The server's stdout and stderr go to the full filesystem too: failing log writes
    // must not take the process (or a background task) down.
    let mut server = Server::start(&mnt, "full", |c| {
        c.env("DATABASE_URL", &url)
            .env("ADMIN_TOKEN", ADMIN)
            .env("WATCHPOST_INTERVAL", "300ms")
            .env("WATCHPOST_ALLOW_PRIVATE_WEBHOOKS", "true")
            .env("WATCHPOST_LOG", "debug");
    })
    .await;
    let (_, token, host_id, agent) = set_up(&server).await;
    let c = &server.client;
    let base = server.base_url.clone();
    let first_ts = now_ms() - 3_600_000;
    let batch_at = |k: i64| SentBatch {
        id: format!("full-{k}"),
        first_ts: first_ts + k * PER_BATCH * 1000,
        acked: false,
    };

    // Acknowledged writes before the disk fills.
    for k in 0..3 {
        let resp = c
            .post(format!("{base}/ingest"))
            .bearer_auth(&agent)
            .json(&batch_body(&batch_at(k)))
            .send()
            .await
            .unwrap();
        json_of(resp, StatusCode::OK, "ingest before").await;
    }
    let mut acked_analyses = Vec::new();
    for key in [Some("before-1"), None] {
        let resp = upload(c, &base, &token, key, LOG).await;
        let doc = json_of(resp, StatusCode::OK, "upload before").await;
        acked_analyses.push(doc["analysis_id"].as_i64().unwrap());
    }
    let resp = send_as(
        c.post(format!("{base}/channels"))
            .json(&json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook"})),
        &token,
    )
    .await;
    let channel = json_of(resp, StatusCode::CREATED, "channel").await["id"]
        .as_i64()
        .unwrap();
    let resp = send_as(c.post(format!("{base}/channels/{channel}/test")), &token).await;
    json_of(resp, StatusCode::ACCEPTED, "test notification before").await;
    let rule = json!({"name": "full rule", "metric": "cpu", "comparison": ">", "threshold": 99.5});
    let resp = send_as(c.post(format!("{base}/rules")).json(&rule), &token).await;
    json_of(resp, StatusCode::CREATED, "rule before").await;
    let ready = c.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "ready before the fill");

    // Nearly fill the filesystem: a little over the reserve below which the server
    // refuses writes up front stays free, so the next big write runs into SQLITE_FULL
    // itself (and the commit that failed takes the rest of the space for its WAL frames).
    let filler = mnt.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0, "nothing could be written to the filler");
    let leave = watchpost::http::api::health::MIN_FREE_DISK_BYTES + (64 << 10);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(filled.saturating_sub(leave))
        .unwrap();
    assert!(free_bytes(&mnt) >= watchpost::http::api::health::MIN_FREE_DISK_BYTES);
    let big_first = now_ms() - 6 * 3_600_000;
    let big: Vec<Value> = (0..9000)
        .map(|i| wire(big_first + i * 1000, (i % 17) as f64))
        .collect();
    let (took, resp) = timed(
        c.post(format!("{base}/ingest"))
            .bearer_auth(&agent)
            .json(&batch("full-big", big)),
    )
    .await;
    assert_disk_full("ingest hitting SQLITE_FULL", took, resp).await;
    // It got as far as SQLite (not refused up front): its WAL frames took the space.
    assert!(
        free_bytes(&mnt) < watchpost::http::api::health::MIN_FREE_DISK_BYTES,
        "{} bytes free after the failed commit",
        free_bytes(&mnt)
    );
    // Now completely full.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&filler)
        .unwrap();
    top_up(&mut f);
    drop(f);
    assert!(
        free_bytes(&mnt) < 4096,
        "{} bytes still free",
        free_bytes(&mnt)
    );

    // Writes: refused with 503 and a reason, never a 500, never a hang.
    let (took, resp) = timed(
        c.post(format!("{base}/ingest"))
            .bearer_auth(&agent)
            .json(&batch_body(&batch_at(3))),
    )
    .await;
    assert_disk_full("ingest", took, resp).await;
    let (took, resp) = timed(
        c.post(format!("{base}/register"))
            .json(&json!({"username": "fulluser", "password": USER_PASSWORD})),
    )
    .await;
    assert_disk_full("register", took, resp).await;
    let (took, resp) = timed(
        c.post(format!("{base}/logs/analyze"))
            .header("token", &token)
            .header("content-type", "text/plain")
            .header("idempotency-key", "during-1")
            .body(OTHER_LOG),
    )
    .await;
    assert_disk_full("upload", took, resp).await;
    let (took, resp) = timed(
        c.post(format!("{base}/rules"))
            .header("token", &token)
            .json(&rule),
    )
    .await;
    assert_disk_full("rule", took, resp).await;
    let (took, resp) = timed(
        c.post(format!("{base}/channels/{channel}/test"))
            .header("token", &token),
    )
    .await;
    assert_disk_full("outbox (test notification)", took, resp).await;

    // Reads work; readiness says what is wrong; liveness is fine.
    let resp = send_as(c.get(format!("{base}/logs/analyses")), &token).await;
    let list = json_of(resp, StatusCode::OK, "list analyses while full").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let resp = send_as(
        c.get(format!("{base}/logs/analyses/{}", acked_analyses[0])),
        &token,
    )
    .await;
    json_of(resp, StatusCode::OK, "one analysis while full").await;
    let resp = send_as(c.get(format!("{base}/hosts")), &token).await;
    json_of(resp, StatusCode::OK, "hosts while full").await;
    let resp = c.get(format!("{base}/readyz")).send().await.unwrap();
    let ready = json_of(resp, StatusCode::SERVICE_UNAVAILABLE, "readyz while full").await;
    assert!(
        ready["detail"].as_str().unwrap().contains("disk full"),
        "{ready}"
    );
    let resp = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The background writers (collector, notifier) hit the full disk a few more times.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died on the full disk"
    );

    // Space again: everything works without a restart.
    std::fs::remove_file(&filler).unwrap();
    let freed_at = now_ms();
    let resp = c
        .post(format!("{base}/ingest"))
        .bearer_auth(&agent)
        .json(&batch_body(&batch_at(3)))
        .send()
        .await
        .unwrap();
    let body = json_of(resp, StatusCode::OK, "ingest after").await;
    assert_eq!(
        body["accepted"], PER_BATCH,
        "the refused batch was not half stored: {body}"
    );
    let resp = c
        .post(format!("{base}/register"))
        .json(&json!({"username": "fulluser", "password": USER_PASSWORD}))
        .send()
        .await
        .unwrap();
    json_of(resp, StatusCode::CREATED, "register after").await;
    let resp = upload(c, &base, &token, Some("during-1"), OTHER_LOG).await;
    assert!(!replayed(&resp), "the refused upload was not stored");
    let doc = json_of(resp, StatusCode::OK, "upload after").await;
    acked_analyses.push(doc["analysis_id"].as_i64().unwrap());
    let resp = send_as(c.post(format!("{base}/rules")).json(&rule), &token).await;
    json_of(resp, StatusCode::CREATED, "rule after").await;
    let resp = send_as(c.post(format!("{base}/channels/{channel}/test")), &token).await;
    json_of(resp, StatusCode::ACCEPTED, "test notification after").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = c.get(format!("{base}/readyz")).send().await.unwrap();
        if resp.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {} 20 s after space was freed",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The collector (a background writer) survived the full disk: it stores again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = send_as(c.get(format!("{base}/metrics?limit=1")), &token).await;
        let list = json_of(resp, StatusCode::OK, "metrics").await;
        let newest = list
            .as_array()
            .and_then(|l| l.first())
            .and_then(|s| s["ts"].as_str())
            .map(parse_z);
        if newest.is_some_and(|ts| ts > freed_at) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no collector sample since space was freed: {list}\n{}",
            read(&mnt.join("full.err"))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.child.try_wait().unwrap().is_none());

    // A hard stop, then the files: intact, and every acknowledged write is there.
    server.child.kill().unwrap();
    assert!(wait_exit(&mut server.child, Duration::from_secs(5))
        .await
        .is_some());
    let db = open_db(&db_path, false).await;
    assert_eq!(integrity(&db).await, ["ok"]);
    let host = host_id.to_string();
    let samples = scalar(
        &db,
        "SELECT COUNT(*) FROM samples WHERE host_id = CAST($1 AS INTEGER)",
        &[&host],
    )
    .await;
    assert_eq!(
        samples,
        4 * PER_BATCH,
        "three batches before, one after, none of the batch that hit SQLITE_FULL"
    );
    let users = scalar(&db, "SELECT COUNT(*) FROM users", &[]).await;
    assert_eq!(
        users, 2,
        "crashuser, and fulluser once (after the space came back)"
    );
    for id in &acked_analyses {
        let n = scalar(
            &db,
            "SELECT COUNT(*) FROM log_analyses WHERE id = CAST($1 AS INTEGER)",
            &[&id.to_string()],
        )
        .await;
        assert_eq!(n, 1, "analysis {id}");
    }
    let analyses = scalar(&db, "SELECT COUNT(*) FROM log_analyses", &[]).await;
    assert_eq!(analyses, 3);
    let rules = scalar(
        &db,
        "SELECT COUNT(*) FROM rules WHERE name = 'full rule'",
        &[],
    )
    .await;
    assert_eq!(rules, 2, "one before, one after");
    let tests = scalar(
        &db,
        "SELECT COUNT(*) FROM deliveries WHERE channel_id = CAST($1 AS INTEGER) AND event = 'test'",
        &[&channel.to_string()],
    )
    .await;
    assert_eq!(tests, 2, "one test notification before, one after");
    db.close().await;

    // Nothing secret in what the server logged (at debug level).
    let log = format!(
        "{}{}",
        read(&mnt.join("full.err")),
        read(&mnt.join("full.out"))
    );
    for secret in [ADMIN, USER_PASSWORD, token.as_str(), agent.as_str()] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
    assert!(!log.is_empty(), "the server logged nothing at all");
    // The server (declared after the mount) is dropped first, then the mount's guard
    // unmounts.
    drop(server);
}

/// Sends `req` with a user's API token; a transport error fails the test.
async fn send_as(req: reqwest::RequestBuilder, token: &str) -> reqwest::Response {
    req.header("token", token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("request failed: {e}"))
}
