//! `/metrics` and `/metrics/history`.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

fn cpus(body: &Value) -> Vec<f64> {
    body.as_array()
        .expect("array")
        .iter()
        .map(|s| s["cpu"].as_f64().expect("cpu is a number"))
        .collect()
}

fn timestamps(body: &Value) -> Vec<i64> {
    body.as_array()
        .expect("array")
        .iter()
        .map(|s| parse_z(s["ts"].as_str().expect("ts is a string")))
        .collect()
}

/// 2026-01-15T12:00:00Z
const NOON: i64 = 1_768_478_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_lists_newest_first_with_limit() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;

    let empty = json_with_status(app.get("/metrics", &token).await, StatusCode::OK).await;
    assert_eq!(empty, serde_json::json!([]));

    let base = now_ms() - 1_000_000;
    let samples: Vec<_> = (0..150)
        .map(|i| {
            sample(
                app.local_host_id,
                base + i * 1000,
                i as f64 / 2.0,
                20.0 + i as f64 / 10.0,
            )
        })
        .collect();
    app.insert_samples(&samples).await;

    let resp = app.get("/metrics?limit=3", &token).await;
    assert_security_headers(resp.headers());
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(cpus(&body), vec![74.5, 74.0, 73.5]);
    assert_eq!(
        timestamps(&body),
        vec![base + 149_000, base + 148_000, base + 147_000]
    );
    let first = &body[0];
    assert_eq!(first["memory"].as_f64().unwrap(), 20.0 + 14.9);
    assert_eq!(first["host"], app.local_host.as_str());

    // Default limit is 100.
    let body = json_with_status(app.get("/metrics", &token).await, StatusCode::OK).await;
    let ts = timestamps(&body);
    assert_eq!(ts.len(), 100);
    assert!(ts.windows(2).all(|w| w[0] > w[1]), "not newest first");
    assert_eq!(ts[0], base + 149_000);
    assert_eq!(ts[99], base + 50_000);

    let body = json_with_status(
        app.get("/metrics?limit=10000", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body.as_array().unwrap().len(), 150);
    let body = json_with_status(app.get("/metrics?limit=1", &token).await, StatusCode::OK).await;
    assert_eq!(cpus(&body), vec![74.5]);

    // Duplicate (host, ts) samples are ignored, not doubled.
    app.insert_samples(&samples[..10]).await;
    let body = json_with_status(
        app.get("/metrics?limit=10000", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body.as_array().unwrap().len(), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_validates_limit_and_host_and_needs_a_token() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    for bad in ["0", "10001", "-1", "abc", "1.5", ""] {
        let resp = app.get(&format!("/metrics?limit={bad}"), &token).await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let resp = app.get("/metrics?host=unknown", &token).await;
    assert_eq!(
        assert_error(resp, StatusCode::NOT_FOUND).await,
        "unknown host"
    );
    let resp = app.get("/metrics/history?host=unknown", &token).await;
    assert_error(resp, StatusCode::NOT_FOUND).await;

    let resp = app.get_anon("/metrics").await;
    assert_error(resp, StatusCode::UNAUTHORIZED).await;
    let resp = app.get_anon("/metrics?limit=0").await;
    assert_error(resp, StatusCode::UNAUTHORIZED).await;
    let resp = app.get_anon("/metrics/history").await;
    assert_error(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_select_another_known_host() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let other = app
        .store
        .upsert_host("other-host.example", now_ms())
        .await
        .unwrap();
    assert_ne!(other, app.local_host_id);
    let t = now_ms() - 60_000;
    app.insert_samples(&[
        sample(app.local_host_id, t, 11.0, 1.0),
        sample(other, t, 22.0, 2.0),
        sample(other, t + 1000, 33.0, 3.0),
    ])
    .await;

    let body = json_with_status(
        app.get("/metrics?host=other-host.example", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cpus(&body), vec![33.0, 22.0]);
    assert!(body
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["host"] == "other-host.example"));

    let local = json_with_status(
        app.get(&format!("/metrics?host={}", app.local_host), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cpus(&local), vec![11.0]);
    let default = json_with_status(app.get("/metrics", &token).await, StatusCode::OK).await;
    assert_eq!(cpus(&default), vec![11.0]);
}

async fn history(app: &TestApp, token: &str, start: &str, end: &str) -> reqwest::Response {
    app.client
        .get(app.url("/metrics/history"))
        .header("token", token)
        .query(&[("start", start), ("end", end)])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_returns_the_inclusive_range_ascending() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    // One sample a minute from 12:00Z to 12:09Z.
    let samples: Vec<_> = (0..10)
        .map(|i| sample(app.local_host_id, NOON + i * 60_000, 10.0 + i as f64, 50.0))
        .collect();
    app.insert_samples(&samples).await;

    let resp = history(&app, &token, "2026-01-15T12:02:00Z", "2026-01-15T12:05:00Z").await;
    assert!(resp.headers().get("x-watchpost-bucket-ms").is_none());
    let z = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(cpus(&z), vec![12.0, 13.0, 14.0, 15.0]);
    assert_eq!(
        timestamps(&z),
        vec![
            NOON + 120_000,
            NOON + 180_000,
            NOON + 240_000,
            NOON + 300_000
        ]
    );
    assert_eq!(z[0]["ts"], "2026-01-15T12:02:00.000Z");

    // No offset means UTC.
    let naive = json_with_status(
        history(&app, &token, "2026-01-15T12:02:00", "2026-01-15T12:05:00").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(naive, z);

    // Offsets are honoured: 14:02+02:00 is 12:02Z.
    let offset = json_with_status(
        history(
            &app,
            &token,
            "2026-01-15T14:02:00+02:00",
            "2026-01-15T14:05:00+02:00",
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(offset, z);
    let west = json_with_status(
        history(
            &app,
            &token,
            "2026-01-15T07:02:00-05:00",
            "2026-01-15T12:05:00Z",
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(west, z);

    // One millisecond inside the bounds excludes the edge samples.
    let inner = json_with_status(
        history(
            &app,
            &token,
            "2026-01-15T12:02:00.001Z",
            "2026-01-15T12:04:59.999Z",
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cpus(&inner), vec![13.0, 14.0]);

    // start == end is a valid single-instant range.
    let single = json_with_status(
        history(&app, &token, "2026-01-15T12:09:00Z", "2026-01-15T12:09:00Z").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cpus(&single), vec![19.0]);

    // A range with nothing in it.
    let none = json_with_status(
        history(&app, &token, "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(none, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_rejects_bad_ranges() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    for (start, end) in [
        ("yesterday", "2026-01-15T12:00:00Z"),
        ("2026-01-15T12:00:00Z", "not-a-date"),
        ("2026-13-01T00:00:00Z", "2026-01-15T12:00:00Z"),
        ("2026-01-15T25:00:00", "2026-01-16T00:00:00"),
        ("", "2026-01-15T12:00:00Z"),
    ] {
        let resp = history(&app, &token, start, end).await;
        let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            detail.contains("invalid timestamp"),
            "{start} {end}: {detail}"
        );
    }
    let resp = history(&app, &token, "2026-01-15T12:00:01Z", "2026-01-15T12:00:00Z").await;
    let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(detail, "start must not be after end");
    // The same instant written with different offsets is not "after".
    let resp = history(
        &app,
        &token,
        "2026-01-15T14:00:00+02:00",
        "2026-01-15T12:00:00Z",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = history(
        &app,
        &token,
        "2026-01-15T14:00:01+02:00",
        "2026-01-15T12:00:00Z",
    )
    .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_defaults_to_the_last_hour() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let now = now_ms();
    app.insert_samples(&[
        sample(app.local_host_id, now - 2 * 3_600_000, 1.0, 1.0),
        sample(app.local_host_id, now - 30 * 60_000, 2.0, 1.0),
        sample(app.local_host_id, now - 60_000, 3.0, 1.0),
    ])
    .await;
    let body = json_with_status(app.get("/metrics/history", &token).await, StatusCode::OK).await;
    assert_eq!(cpus(&body), vec![2.0, 3.0]);
    // A given time must be one (as the original service's datetime parameters): an empty
    // value is not "the default".
    for bad in [
        "/metrics/history?start=",
        "/metrics/history?end=",
        "/metrics/history?start=yesterday",
    ] {
        assert_error(app.get(bad, &token).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reads_rollups_for_large_ranges() {
    let app = spawn_app_with(|s| s.history_max_points = 10).await;
    let token = app.register_and_login().await;
    // 100 samples, one a second, from 12:00:00Z to 12:01:39Z.
    let samples: Vec<_> = (0..100)
        .map(|i| {
            let mut s = sample(
                app.local_host_id,
                NOON + i * 1000,
                i as f64,
                100.0 - i as f64,
            );
            s.processes = i;
            s
        })
        .collect();
    app.insert_samples(&samples).await;

    // Exactly 10 samples: the raw rows.
    let small = history(&app, &token, "2026-01-15T12:00:00Z", "2026-01-15T12:00:09Z").await;
    assert!(small.headers().get("x-watchpost-bucket-ms").is_none());
    let small = json_with_status(small, StatusCode::OK).await;
    assert_eq!(cpus(&small), (0..10).map(f64::from).collect::<Vec<_>>());

    // 100 samples in two minutes: the 1-minute tier, one averaged sample per minute
    // stamped with the minute's start.
    let resp = history(
        &app,
        &token,
        "2026-01-15T12:00:00Z",
        "2026-01-15T12:01:39.999Z",
    )
    .await;
    let bucket: i64 = resp
        .headers()
        .get("x-watchpost-bucket-ms")
        .expect("bucket header for rollups")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(bucket, 60_000);
    let body = json_with_status(resp, StatusCode::OK).await;
    let items = body.as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    for (item, (ts, cpu, processes)) in items
        .iter()
        .zip([(NOON, 29.5, 59), (NOON + 60_000, 79.5, 99)])
    {
        assert_eq!(parse_z(item["ts"].as_str().unwrap()), ts);
        assert!((item["cpu"].as_f64().unwrap() - cpu).abs() < 1e-9, "{item}");
        assert!(
            (item["memory"].as_f64().unwrap() - (100.0 - cpu)).abs() < 1e-9,
            "{item}"
        );
        // Counters are maxima.
        assert_eq!(item["processes"].as_i64().unwrap(), processes);
    }

    // Two hours span 121 minutes, more than 10 points: the hour tier.
    let resp = history(&app, &token, "2026-01-15T11:00:00Z", "2026-01-15T13:00:00Z").await;
    assert_eq!(resp.headers()["x-watchpost-bucket-ms"], "3600000");
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(cpus(&body), vec![49.5]);
    assert_eq!(body[0]["ts"], "2026-01-15T12:00:00.000Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_all_succeed() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let t = now_ms() - 10_000;
    app.insert_samples(&[sample(app.local_host_id, t, 42.0, 24.0)])
        .await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = app.client.clone();
        let url = app.url("/metrics?limit=5");
        let token = token.clone();
        set.spawn(async move {
            let resp = client.get(url).header("token", token).send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            (status, body)
        });
    }
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(cpus(&body), vec![42.0]);
        n += 1;
    }
    assert_eq!(n, 20);
}
