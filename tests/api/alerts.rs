//! `/alerts` and `/summary`, with alerts raised by the real threshold engine.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use watchpost::store::Sample;
use watchpost::tasks::alerting::AlertEngine;

async fn engine(app: &TestApp) -> AlertEngine {
    AlertEngine::new(app.store.clone()).await.expect("engine")
}

/// Stores the samples and feeds them one by one to the engine, each observed at its own time.
async fn feed(app: &TestApp, engine: &mut AlertEngine, samples: &[Sample]) {
    app.insert_samples(samples).await;
    for s in samples {
        engine
            .observe(std::slice::from_ref(s), s.ts)
            .await
            .expect("observe");
    }
}

/// Samples one second apart starting at `start`, with the given CPU and memory values.
fn series(app: &TestApp, start: i64, values: &[(f64, f64)]) -> Vec<Sample> {
    values
        .iter()
        .enumerate()
        .map(|(i, &(cpu, mem))| sample(app.local_host_id, start + i as i64 * 1000, cpu, mem))
        .collect()
}

fn cpu_only(cpus: &[f64]) -> Vec<(f64, f64)> {
    cpus.iter().map(|&c| (c, 10.0)).collect()
}

async fn alerts(app: &TestApp, token: &str) -> Vec<Value> {
    let body = json_with_status(app.get("/alerts", token).await, StatusCode::OK).await;
    body.as_array().expect("array").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_breach_raises_one_alert_and_rebreach_a_second() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    assert!(alerts(&app, &token).await.is_empty());

    let mut eng = engine(&app).await;
    let t0 = now_ms() - 600_000;
    // 80 exactly is not a breach; 85 starts the episode; it lasts four samples.
    let first = series(&app, t0, &cpu_only(&[50.0, 80.0, 85.0, 90.0, 95.0, 88.0]));
    feed(&app, &mut eng, &first).await;

    let list = alerts(&app, &token).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let a = &list[0];
    assert_eq!(a["type"], "cpu");
    assert_eq!(a["value"].as_f64().unwrap(), 85.0);
    assert_eq!(a["threshold"].as_f64().unwrap(), 80.0);
    assert_eq!(parse_z(a["ts"].as_str().unwrap()), t0 + 2000);
    assert_eq!(a["scope"], "global");
    assert_eq!(a["state"], "firing");
    assert_eq!(a["resolved_at"], Value::Null);
    assert_eq!(a["host"], app.local_host.as_str());
    assert!(a["id"].as_i64().is_some());

    // Drop below (to exactly the threshold), then breach again.
    let second = series(&app, t0 + 10_000, &cpu_only(&[80.0, 40.0, 91.0, 92.0]));
    feed(&app, &mut eng, &second).await;

    let list = alerts(&app, &token).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let (newest, oldest) = (&list[0], &list[1]);
    assert_eq!(newest["value"].as_f64().unwrap(), 91.0);
    assert_eq!(parse_z(newest["ts"].as_str().unwrap()), t0 + 12_000);
    assert_eq!(newest["state"], "firing");
    assert_eq!(oldest["value"].as_f64().unwrap(), 85.0);
    assert_eq!(oldest["state"], "resolved");
    assert_eq!(oldest["peak"].as_f64().unwrap(), 95.0);
    assert_eq!(
        parse_z(oldest["resolved_at"].as_str().unwrap()),
        t0 + 10_000
    );
    assert!(newest["id"].as_i64() != oldest["id"].as_i64());
    assert!(list.iter().all(|a| a["type"] == "cpu"));

    // limit=1 gives the newest only.
    let one = json_with_status(app.get("/alerts?limit=1", &token).await, StatusCode::OK).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["id"], newest["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_breach_raises_a_memory_alert() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let mut eng = engine(&app).await;
    let t0 = now_ms() - 600_000;
    let s = series(
        &app,
        t0,
        &[
            (10.0, 70.0),
            (10.0, 75.0),
            (10.0, 76.5),
            (10.0, 90.0),
            (10.0, 80.0),
        ],
    );
    feed(&app, &mut eng, &s).await;
    let list = alerts(&app, &token).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["type"], "memory");
    assert_eq!(list[0]["value"].as_f64().unwrap(), 76.5);
    assert_eq!(list[0]["threshold"].as_f64().unwrap(), 75.0);
    assert_eq!(parse_z(list[0]["ts"].as_str().unwrap()), t0 + 2000);

    // CPU and memory episodes are independent.
    let both = series(&app, t0 + 10_000, &[(99.0, 95.0)]);
    feed(&app, &mut eng, &both).await;
    let list = alerts(&app, &token).await;
    let kinds: Vec<&str> = list.iter().map(|a| a["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["cpu", "memory"], "{list:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_thresholds_raise_alerts_only_for_that_user() {
    let app = spawn_app().await;
    let (_, alice) = app.register_and_login_user().await;
    let (_, bob) = app.register_and_login_user().await;

    let resp = app
        .post_json("/thresholds", &json!({"cpu_threshold": 50}), &alice)
        .await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 50.0, "memory_threshold": 75.0})
    );

    let mut eng = engine(&app).await;
    let t0 = now_ms() - 600_000;
    feed(
        &app,
        &mut eng,
        &series(&app, t0, &cpu_only(&[40.0, 60.0, 65.0])),
    )
    .await;

    let a = alerts(&app, &alice).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["scope"], "user");
    assert_eq!(a[0]["type"], "cpu");
    assert_eq!(a[0]["value"].as_f64().unwrap(), 60.0);
    assert_eq!(a[0]["threshold"].as_f64().unwrap(), 50.0);
    assert!(
        alerts(&app, &bob).await.is_empty(),
        "bob sees alice's alert"
    );

    // A global breach is seen by everyone.
    feed(
        &app,
        &mut eng,
        &series(&app, t0 + 10_000, &cpu_only(&[90.0])),
    )
    .await;
    let a = alerts(&app, &alice).await;
    let b = alerts(&app, &bob).await;
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0]["scope"], "global");
    assert_eq!(b[0]["threshold"].as_f64().unwrap(), 80.0);
    assert_eq!(a[0]["id"], b[0]["id"]);
    assert_eq!(a[1]["scope"], "user");

    let sa = json_with_status(app.get("/summary", &alice).await, StatusCode::OK).await;
    let sb = json_with_status(app.get("/summary", &bob).await, StatusCode::OK).await;
    assert_eq!(sa["total_alerts"], 2);
    assert_eq!(sb["total_alerts"], 1);
    assert_eq!(sb["breakdown"], json!({"cpu": 1, "memory": 0}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_restart_does_not_duplicate_an_open_episode() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let t0 = now_ms() - 600_000;
    {
        let mut first = engine(&app).await;
        feed(
            &app,
            &mut first,
            &series(&app, t0, &cpu_only(&[95.0, 96.0])),
        )
        .await;
    }
    assert_eq!(alerts(&app, &token).await.len(), 1);

    // A new engine on the same store resumes the open episode.
    let mut second = engine(&app).await;
    feed(
        &app,
        &mut second,
        &series(&app, t0 + 5000, &cpu_only(&[97.0])),
    )
    .await;
    let list = alerts(&app, &token).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "firing");

    // And it can resolve it, keeping the peak seen before and after the restart.
    feed(
        &app,
        &mut second,
        &series(&app, t0 + 6000, &cpu_only(&[10.0])),
    )
    .await;
    let list = alerts(&app, &token).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "resolved");
    assert_eq!(list[0]["peak"].as_f64().unwrap(), 97.0);

    // A third engine after resolution starts fresh: a new breach is a new alert.
    let mut third = engine(&app).await;
    feed(
        &app,
        &mut third,
        &series(&app, t0 + 7000, &cpu_only(&[99.0])),
    )
    .await;
    assert_eq!(alerts(&app, &token).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_validate_limit_and_need_a_token() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    for bad in ["0", "10001", "-1", "abc"] {
        let resp = app.get(&format!("/alerts?limit={bad}"), &token).await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    for ok in ["1", "10000"] {
        let resp = app.get(&format!("/alerts?limit={ok}"), &token).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_error(app.get_anon("/alerts").await, StatusCode::UNAUTHORIZED).await;
    assert_error(app.get_anon("/summary").await, StatusCode::UNAUTHORIZED).await;
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_counts_alerts_and_averages_the_last_ten_samples() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;

    // An empty database.
    let empty = json_with_status(app.get("/summary", &token).await, StatusCode::OK).await;
    assert_eq!(empty["total_alerts"], 0);
    assert_eq!(empty["breakdown"], json!({"cpu": 0, "memory": 0}));
    assert_eq!(empty["last_alert_timestamps"], json!([]));
    assert_eq!(empty["avg_last_10_cpu"], Value::Null);
    assert_eq!(empty["avg_last_10_memory"], Value::Null);

    // Alerts through the engine, from samples older than the ones averaged below:
    // cpu episode, resolved; memory episode; second cpu episode.
    let now = now_ms();
    let t0 = now - 3_600_000;
    let mut eng = engine(&app).await;
    let breaches = series(
        &app,
        t0,
        &[
            (90.0, 10.0),
            (10.0, 10.0),
            (10.0, 80.0),
            (10.0, 10.0),
            (85.0, 10.0),
        ],
    );
    feed(&app, &mut eng, &breaches).await;

    // Twelve known samples: the two oldest are outliers that must not be averaged.
    let cpu = [
        99.0, 99.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 13.37,
    ];
    let mem = [
        99.0, 99.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 11.11,
    ];
    let base = now - 60_000;
    let known: Vec<_> = (0..12)
        .map(|i| sample(app.local_host_id, base + i as i64 * 1000, cpu[i], mem[i]))
        .collect();
    app.insert_samples(&known).await;

    let resp = app.get("/summary?n=2", &token).await;
    assert_security_headers(resp.headers());
    let s = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(s["total_alerts"], 3, "{s}");
    assert_eq!(s["breakdown"], json!({"cpu": 2, "memory": 1}), "{s}");
    // (10+20+…+90+13.37)/10 = 46.337; (1+…+9+11.11)/10 = 5.611
    assert_eq!(s["avg_last_10_cpu"].as_f64().unwrap(), 46.34, "{s}");
    assert_eq!(s["avg_last_10_memory"].as_f64().unwrap(), 5.61, "{s}");
    assert_eq!(round2(46.337), 46.34);
    let last: Vec<i64> = s["last_alert_timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| parse_z(v.as_str().unwrap()))
        .collect();
    assert_eq!(last, vec![t0 + 4000, t0 + 2000]);

    let s = json_with_status(app.get("/summary", &token).await, StatusCode::OK).await;
    let last: Vec<i64> = s["last_alert_timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| parse_z(v.as_str().unwrap()))
        .collect();
    assert_eq!(last, vec![t0 + 4000, t0 + 2000, t0]);

    let s = json_with_status(app.get("/summary?n=1000", &token).await, StatusCode::OK).await;
    assert_eq!(s["last_alert_timestamps"].as_array().unwrap().len(), 3);
    let s = json_with_status(app.get("/summary?n=1", &token).await, StatusCode::OK).await;
    assert_eq!(s["last_alert_timestamps"].as_array().unwrap().len(), 1);

    for bad in ["0", "1001", "-5", "x"] {
        let resp = app.get(&format!("/summary?n={bad}"), &token).await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

/// `observe` takes a batch of samples "in order". A breach that starts and ends inside one
/// batch is fired and then resolved in memory, but only the firing reaches the store: the
/// alert stays "firing" for ever (and a restarted engine resumes it as open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn episode_within_one_batch_is_stored_resolved() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let mut eng = engine(&app).await;
    let t0 = now_ms() - 600_000;
    let batch = series(&app, t0, &cpu_only(&[95.0, 10.0]));
    app.insert_samples(&batch).await;
    eng.observe(&batch, t0 + 1000).await.unwrap();
    let list = alerts(&app, &token).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "resolved", "{list:?}");
    let s = json_with_status(app.get("/summary", &token).await, StatusCode::OK).await;
    assert_eq!(s["open_alerts"], 0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_sustained_breach_raises_one_alert() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let mut eng = engine(&app).await;
    let t0 = now_ms() - 600_000;
    let batch = series(&app, t0, &cpu_only(&[10.0, 95.0, 96.0, 97.0]));
    app.insert_samples(&batch).await;
    eng.observe(&batch, t0 + 3000).await.unwrap();
    let list = alerts(&app, &token).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["value"].as_f64().unwrap(), 95.0);
    assert_eq!(list[0]["state"], "firing");
    // The next batch ends it, with the peak from the first batch.
    let next = series(&app, t0 + 4000, &cpu_only(&[20.0]));
    app.insert_samples(&next).await;
    eng.observe(&next, t0 + 4000).await.unwrap();
    let list = alerts(&app, &token).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "resolved");
    assert_eq!(list[0]["peak"].as_f64().unwrap(), 97.0);
}
