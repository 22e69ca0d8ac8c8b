//! Notification benchmarks, one run each, printed as figures and ratios:
//!
//! 1. Delivery throughput to a local webhook receiver: the outbox worker draining N queued
//!    deliveries (claim with a lease, sign, POST, record the attempt) on SQLite and — when
//!    `WATCHPOST_BENCH_DATABASE_URL` names a PostgreSQL admin URL — on PostgreSQL, against
//!    the peer: the original service's way, POSTing from memory one after another with no
//!    outbox, no signature and no record (nothing survives a restart).
//! 2. Time from a threshold breach (the sample's timestamp) to the webhook arriving, through
//!    the whole service: collector → rule engine → outbox → worker → receiver, `for: 0`.
//!
//! Run: `cargo bench --bench notify` (N with `WATCHPOST_BENCH_DELIVERIES`, default 2000).

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use watchpost::alerts::SystemClock;
use watchpost::config::{Secret, Settings};
use watchpost::notify::worker::Notifier;
use watchpost::store::EnvChannel;

#[derive(Default)]
struct Seen {
    /// (arrival, body) of every request.
    hits: Vec<(i64, Bytes)>,
}

async fn receive(State(seen): State<Arc<Mutex<Seen>>>, body: Bytes) -> &'static str {
    let now = watchpost::domain::now_ms();
    if let Ok(mut s) = seen.lock() {
        s.hits.push((now, body));
    }
    "ok"
}

async fn start_receiver() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), seen)
}

fn count(seen: &Arc<Mutex<Seen>>) -> usize {
    seen.lock().map(|s| s.hits.len()).unwrap_or(0)
}

fn reset(seen: &Arc<Mutex<Seen>>) {
    if let Ok(mut s) = seen.lock() {
        s.hits.clear();
    }
}

/// The peer: what the original did, one POST at a time from memory.
async fn naive(url: &str, n: usize) -> f64 {
    let client = reqwest::Client::new();
    let started = Instant::now();
    for i in 0..n {
        let body = serde_json::json!({"type": "cpu", "value": 90.0 + (i % 10) as f64, "ts": "2026-11-27T00:00:00Z", "generated_at": "2026-11-27T00:00:00Z"});
        let _ = client.post(url).json(&body).send().await;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Queues `n` deliveries to the global webhook and times the worker draining them.
async fn outbox(database_url: &str, url: &str, n: usize, seen: &Arc<Mutex<Seen>>) -> f64 {
    let settings = Settings {
        database_url: database_url.to_owned(),
        ..Settings::default()
    };
    let store = watchpost::store::connect(&settings).await.expect("store");
    store
        .sync_env_channel(
            "webhook",
            Some(&EnvChannel {
                kind: "webhook".into(),
                name: "bench".into(),
                target: url.to_owned(),
                secret: None,
            }),
            &watchpost::notify::sign::generate_secret(),
            watchpost::domain::now_ms(),
        )
        .await
        .expect("channel");
    let channel = store
        .list_channels(watchpost::store::Scope::Global)
        .await
        .expect("channels")
        .into_iter()
        .find(|c| c.source == "env")
        .expect("env channel");
    let now = watchpost::domain::now_ms();
    for _ in 0..n {
        let payload = watchpost::notify::worker::test_payload("bench", now);
        store
            .enqueue_test(
                channel.id,
                &payload,
                &watchpost::notify::sign::new_message_id(),
                now,
            )
            .await
            .expect("enqueue");
    }
    reset(seen);
    let notifier =
        Notifier::new(store.clone(), &settings, Arc::new(SystemClock)).expect("notifier");
    let started = Instant::now();
    while notifier.step().await.expect("step") > 0 {}
    let rate = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(count(seen), n, "every delivery arrives once");
    store.close().await;
    rate
}

async fn pg_database(admin_url: &str) -> Option<String> {
    use sqlx::{Connection, Executor};
    let name = format!("wp_bench_{:08x}", rand::random::<u32>());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.ok()?;
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .ok()?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Some(format!("{base}/{name}"))
}

/// Breach-to-webhook latency through the whole service: a global rule `cpu >= 0` fires
/// on the next collector tick; the receiver compares arrival with the payload's `ts`.
async fn latency(url: &str, seen: &Arc<Mutex<Seen>>, rounds: usize) -> Vec<i64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = "bench-admin-token-0123456789";
    let settings = Settings {
        bind: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}/lat.db", dir.path().display()),
        interval_ms: 200,
        admin_token: Some(Secret::new(admin)),
        alert_webhook_url: Some(Secret::new(url)),
        log: "warn".into(),
        ..Settings::default()
    };
    let app = watchpost::app::App::build(settings).await.expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    // The managed cpu/memory rules would fire too on a busy machine: lift them.
    let _ = client
        .post(format!("{base}/admin/thresholds"))
        .header("x-admin-token", admin)
        .json(&serde_json::json!({"cpu_threshold": 100, "memory_threshold": 100}))
        .send()
        .await;
    let mut out = Vec::new();
    for _ in 0..rounds {
        reset(seen);
        let rule: serde_json::Value = client
            .post(format!("{base}/rules"))
            .header("x-admin-token", admin)
            .json(&serde_json::json!({"metric": "cpu", "comparison": ">=", "threshold": 0}))
            .send()
            .await
            .expect("create rule")
            .json()
            .await
            .expect("rule json");
        let id = rule["id"].as_i64().unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        'wait: while Instant::now() < deadline {
            if let Ok(s) = seen.lock() {
                for (arrived, body) in &s.hits {
                    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                    if v["rule_id"] == id && v["event"] == "firing" {
                        let ts =
                            chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap_or(""))
                                .map(|t| t.timestamp_millis())
                                .unwrap_or(*arrived);
                        out.push(arrived - ts);
                        break 'wait;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = client
            .delete(format!("{base}/rules/{id}"))
            .header("x-admin-token", admin)
            .send()
            .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = tx.send(());
    let _ = server.await;
    out
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let n: usize = std::env::var("WATCHPOST_BENCH_DELIVERIES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        let (url, seen) = start_receiver().await;
        let peer = naive(&url, n).await;
        println!("peer (original: in-memory POSTs, no outbox): {peer:.0} deliveries/s");
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = outbox(&format!("sqlite://{}/bench.db", dir.path().display()), &url, n, &seen).await;
        println!("watchpost outbox on SQLite:                  {sqlite:.0} deliveries/s ({:.2}x the peer)", sqlite / peer);
        match std::env::var("WATCHPOST_BENCH_DATABASE_URL") {
            Ok(admin) => match pg_database(&admin).await {
                Some(db) => {
                    let pg = outbox(&db, &url, n, &seen).await;
                    println!("watchpost outbox on PostgreSQL:              {pg:.0} deliveries/s ({:.2}x the peer)", pg / peer);
                }
                None => println!("PostgreSQL: could not create a bench database at {admin}"),
            },
            Err(_) => println!("PostgreSQL: skipped (set WATCHPOST_BENCH_DATABASE_URL)"),
        }
        let mut lat = latency(&url, &seen, 40).await;
        lat.sort_unstable();
        println!(
            "breach -> webhook (collector every 200 ms, for: 0, {} rounds): median {} ms, p99 {} ms, max {} ms",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0)
        );
    });
}
