//! The real `watchpost` binary: serving with the collector, SIGTERM, configuration errors,
//! `print-config`, `seed`, and a SIGKILL while notifications are due. Always SQLite.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_watchpost");

/// Variables the binary reads; cleared so the caller's environment cannot leak in.
const ENV_VARS: &[&str] = &[
    "WATCHPOST_CONFIG",
    "WATCHPOST_HSTS_MAX_AGE_SECS",
    "WATCHPOST_LOG_ANALYSES_PER_USER",
    "WATCHPOST_BIND",
    "DATABASE_URL",
    "WATCHPOST_INTERVAL",
    "WATCHPOST_COLLECTOR",
    "WATCHPOST_LOG_FORMAT",
    "WATCHPOST_LOG",
    "ADMIN_TOKEN",
    "WATCHPOST_TOKEN_TTL_MINUTES",
    "RUST_LOG",
    "ALERT_WEBHOOK_URL",
    "ALERT_WEBHOOK_SECRET",
    "ALERT_WEBHOOK_RETRIES",
    "ALERT_WEBHOOK_BACKOFF",
    "ALERT_SMTP_HOST",
    "ALERT_SMTP_PORT",
    "ALERT_SMTP_USER",
    "ALERT_SMTP_PASS",
    "ALERT_FROM",
    "ALERT_TO",
    "WATCHPOST_ALLOW_PRIVATE_WEBHOOKS",
    "WATCHPOST_WEBHOOK_TIMEOUT_SECS",
    "WATCHPOST_NOTIFY_CONCURRENCY",
    "WATCHPOST_NOTIFY_CHANNEL_CONCURRENCY",
    "WATCHPOST_NOTIFY_STARTUP_JITTER_MS",
    "WATCHPOST_NOTIFY_LEASE_SECS",
];

pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().unwrap().port()
}

fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}/{file}", dir.display())
}

/// A command for the binary, run in `dir`, with a clean environment and its output going
/// to `<dir>/<name>.out` and `<dir>/<name>.err`.
pub(crate) fn command(dir: &Path, name: &str) -> (Command, PathBuf, PathBuf) {
    let mut cmd = Command::new(BIN);
    for v in ENV_VARS {
        cmd.env_remove(v);
    }
    let out = dir.join(format!("{name}.out"));
    let err = dir.join(format!("{name}.err"));
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    (cmd, out, err)
}

pub(crate) fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Waits for the child to exit, up to `limit`; `None` if it is still running.
pub(crate) async fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs a command to completion (killing it after `limit`).
async fn run(
    dir: &Path,
    name: &str,
    configure: impl FnOnce(&mut Command),
    limit: Duration,
) -> Finished {
    let (mut cmd, out, err) = command(dir, name);
    configure(&mut cmd);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn watchpost");
    let status = match wait_exit(&mut child, limit).await {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                read(&out),
                read(&err)
            );
        }
    };
    Finished {
        status,
        stdout: read(&out),
        stderr: read(&err),
        elapsed: started.elapsed(),
    }
}

/// A running server process; killed on drop if the test did not stop it.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base_url: String,
    pub(crate) stderr: PathBuf,
    pub(crate) client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    pub(crate) async fn start(
        dir: &Path,
        name: &str,
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let port = free_port();
        let (mut cmd, _out, err) = command(dir, name);
        cmd.arg("--bind").arg(format!("127.0.0.1:{port}"));
        configure(&mut cmd);
        let child = cmd.spawn().expect("spawn watchpost");
        let mut server = Server {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            stderr: err,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("server exited early with {status}:\n{}", read(&self.stderr));
            }
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", self.base_url))
                .send()
                .await
            {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            if Instant::now() >= deadline {
                panic!("server not healthy within 20 s:\n{}", read(&self.stderr));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base_url))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base_url))
            .header("token", token)
            .send()
            .await
            .unwrap()
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_collects_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "b.db");
    let mut server = Server::start(dir.path(), "serve", |c| {
        c.env("DATABASE_URL", &url).arg("--interval").arg("200ms");
    })
    .await;

    let resp = server
        .post(
            "/register",
            &json!({"username": "binuser", "password": "binary password 1"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = server
        .post(
            "/login",
            &json!({"username": "binuser", "password": "binary password 1"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token = resp.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The collector samples every 200 ms.
    let deadline = Instant::now() + Duration::from_secs(5);
    let samples = loop {
        let resp = server.get("/metrics", &token).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        let list = body.as_array().unwrap().clone();
        if list.len() >= 2 {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "collector produced {} samples in 5 s:\n{}",
            list.len(),
            read(&server.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let now = watchpost::domain::now_ms();
    for s in &samples {
        let cpu = s["cpu"].as_f64().unwrap();
        let mem = s["memory"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");
        assert!(mem > 0.0 && mem <= 100.0, "memory {mem}");
        let ts = crate::helpers::parse_z(s["ts"].as_str().unwrap());
        assert!(
            (now - 60_000..=now + 1000).contains(&ts),
            "ts {ts} vs now {now}"
        );
    }
    let ts0 = crate::helpers::parse_z(samples[0]["ts"].as_str().unwrap());
    let ts1 = crate::helpers::parse_z(samples[1]["ts"].as_str().unwrap());
    assert!(ts0 > ts1, "not newest first");

    let ready = server
        .client
        .get(format!("{}/readyz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    // SIGTERM: drain and exit 0, even with our keep-alive connection open.
    let started = Instant::now();
    server.sigterm();
    let status = wait_exit(&mut server.child, Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no exit within 15 s of SIGTERM:\n{}", read(&server.stderr)));
    assert!(
        status.success(),
        "exit status {status} after SIGTERM:\n{}",
        read(&server.stderr)
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "{took:?}");
    // Nothing listens any more.
    assert!(server
        .client
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_rejects_an_unsupported_database_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let f = run(
        dir.path(),
        "mysql",
        |c| {
            c.env("DATABASE_URL", "mysql://x")
                .arg("--bind")
                .arg(format!("127.0.0.1:{port}"));
        },
        Duration::from_secs(10),
    )
    .await;
    assert!(!f.status.success(), "exited {} ", f.status);
    assert!(f.elapsed < Duration::from_secs(5), "took {:?}", f.elapsed);
    assert!(f.stderr.contains("mysql"), "stderr: {}", f.stderr);
    assert!(f.stderr.contains("scheme"), "stderr: {}", f.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_rejects_a_short_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = sqlite_url(dir.path(), "short.db");
    let f = run(
        dir.path(),
        "short",
        |c| {
            c.env("DATABASE_URL", &url)
                .env("ADMIN_TOKEN", "short")
                .arg("--bind")
                .arg(format!("127.0.0.1:{port}"));
        },
        Duration::from_secs(10),
    )
    .await;
    assert!(!f.status.success(), "exited {}", f.status);
    assert!(f.stderr.contains("ADMIN_TOKEN"), "stderr: {}", f.stderr);
    assert!(
        !dir.path().join("short.db").exists(),
        "database created anyway"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_config_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let f = run(
        dir.path(),
        "print",
        |c| {
            c.arg("print-config")
                .env("ADMIN_TOKEN", "some-long-secret-value-123")
                .env(
                    "DATABASE_URL",
                    "postgres://app:db-password-456@127.0.0.1/app",
                );
        },
        Duration::from_secs(10),
    )
    .await;
    assert!(f.status.success(), "exited {}: {}", f.status, f.stderr);
    for secret in ["some-long-secret-value-123", "db-password-456"] {
        assert!(
            !f.stdout.contains(secret),
            "stdout leaks {secret}:\n{}",
            f.stdout
        );
        assert!(
            !f.stderr.contains(secret),
            "stderr leaks {secret}:\n{}",
            f.stderr
        );
    }
    // Control: the settings are printed, with the secrets marked.
    assert!(
        f.stdout.contains("admin_token = \"<redacted>\""),
        "{}",
        f.stdout
    );
    assert!(
        f.stdout.contains("postgres://app:<redacted>@127.0.0.1/app"),
        "{}",
        f.stdout
    );
    assert!(f.stdout.contains("bind = "), "{}", f.stdout);
}

fn seed_token(stdout: &str) -> String {
    let mut lines = stdout.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("Demo token") {
            return lines.next().expect("token line").trim().to_owned();
        }
    }
    panic!("no token in seed output:\n{stdout}");
}

fn seeded_counts(stdout: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Seeded "))
        .unwrap_or_else(|| panic!("no 'Seeded' line:\n{stdout}"));
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "{line}");
    (nums[0], nums[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_twice_then_serve_with_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "seed.db");
    let seed = |name: &'static str| {
        let url = url.clone();
        let dir = dir.path().to_owned();
        async move {
            run(
                &dir,
                name,
                |c| {
                    c.arg("seed").env("DATABASE_URL", &url);
                },
                Duration::from_secs(90),
            )
            .await
        }
    };
    let first = seed("seed1").await;
    assert!(
        first.status.success(),
        "first seed: {}\n{}",
        first.status,
        first.stderr
    );
    let second = seed("seed2").await;
    assert!(
        second.status.success(),
        "second seed: {}\n{}",
        second.status,
        second.stderr
    );

    let (samples1, alerts1) = seeded_counts(&first.stdout);
    let (_, alerts2) = seeded_counts(&second.stdout);
    assert!(samples1 >= 24 * 360, "{}", first.stdout);
    assert!(alerts1 > 0, "the demo day has breaches: {}", first.stdout);
    assert_eq!(
        alerts2, 0,
        "second run duplicated alerts: {}",
        second.stdout
    );
    assert!(
        first.stdout.contains("Demo user: demo / "),
        "{}",
        first.stdout
    );

    let t1 = seed_token(&first.stdout);
    let t2 = seed_token(&second.stdout);
    assert_eq!(t2.len(), 64);
    assert_ne!(t1, t2);

    let server = Server::start(dir.path(), "seeded", |c| {
        c.env("DATABASE_URL", &url).arg("--collector").arg("false");
    })
    .await;
    for token in [&t1, &t2] {
        let resp = server.get("/summary", token).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", read(&server.stderr));
        let s: Value = resp.json().await.unwrap();
        assert_eq!(s["total_alerts"].as_u64().unwrap(), alerts1, "{s}");
        assert!(s["avg_last_10_cpu"].as_f64().is_some(), "{s}");
    }
    let resp = server.get("/metrics?limit=10000", &t2).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = resp.json().await.unwrap();
    // The second run only adds the grid points that passed between the runs.
    let n = list.as_array().unwrap().len() as u64;
    assert!(
        (samples1..=samples1 + 10).contains(&n),
        "{n} samples after two seeds of {samples1}"
    );
    // The demo password from the output logs in too.
    let resp = server
        .post(
            "/login",
            &json!({"username": "demo", "password": "demo-password-42"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = server.get("/metrics", &"0".repeat(64)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// Deliveries that are due (the receiver answers 503) survive a SIGKILL: after a restart
/// every one is delivered, under the webhook-id it was first tried with, and the firing
/// alerts are not raised or notified a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_sigkill_while_deliveries_are_due_loses_nothing() {
    use crate::receivers::WebhookReceiver;
    use std::collections::BTreeSet;
    const ADMIN: &str = "binary-admin-token-0123456789";
    let rx = WebhookReceiver::start().await;
    rx.default_status(503);
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "k.db");
    let hook = rx.url();
    let configure = |c: &mut Command| {
        c.env("DATABASE_URL", &url)
            .env("ADMIN_TOKEN", ADMIN)
            .env("WATCHPOST_INTERVAL", "200ms")
            .env("ALERT_WEBHOOK_URL", &hook)
            .env("ALERT_WEBHOOK_SECRET", crate::notify::SECRET)
            .env("ALERT_WEBHOOK_BACKOFF", "0.2")
            // A delivery claimed at the kill (in flight, or waiting for its channel's
            // slot) is retried once its lease runs out: short here, 245 s by default.
            .env("WATCHPOST_WEBHOOK_TIMEOUT_SECS", "2")
            .env("WATCHPOST_NOTIFY_LEASE_SECS", "7");
    };
    let mut first = Server::start(dir.path(), "first", configure).await;
    let admin = |req: reqwest::RequestBuilder| req.header("x-admin-token", ADMIN);
    // Quiet the managed thresholds; five rules that always breach.
    let r = admin(
        first
            .client
            .post(format!("{}/admin/thresholds", first.base_url)),
    )
    .json(&json!({"cpu_threshold": 100, "memory_threshold": 100}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for i in 0..5 {
        let r = admin(first.client.post(format!("{}/rules", first.base_url)))
            .json(&json!({"name": format!("always {i}"), "metric": "cpu", "comparison": ">=", "threshold": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let ids = |got: &[crate::receivers::Received]| -> BTreeSet<String> {
        got.iter().filter_map(|r| r.webhook_id.clone()).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids(&rx.received()).len() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tried = ids(&rx.received());
    assert_eq!(
        tried.len(),
        5,
        "each alert was tried (and refused) before the kill"
    );

    let status = Command::new("kill")
        .arg("-KILL")
        .arg(first.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(wait_exit(&mut first.child, Duration::from_secs(5))
        .await
        .is_some());
    rx.default_status(200);
    let before_restart = rx.received().len();

    let second = Server::start(dir.path(), "second", configure).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let got = rx.received();
        let after = ids(&got[before_restart.min(got.len())..]);
        if after.len() >= 5 || Instant::now() >= deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        delivered, tried,
        "delivered after the restart under the same webhook-ids"
    );
    // A few more ticks: the restarted engine must not fire or notify the open alerts again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let log: Value = admin(
        second
            .client
            .get(format!("{}/deliveries?limit=200", second.base_url)),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 5, "{log:?}");
    assert!(
        log.iter()
            .all(|d| d["state"] == "delivered" && d["event"] == "firing"),
        "{log:?}"
    );
    let alert_ids: BTreeSet<i64> = log.iter().filter_map(|d| d["alert_id"].as_i64()).collect();
    assert_eq!(alert_ids.len(), 5);
    assert_eq!(
        ids(&rx.received()),
        tried,
        "no new notification after the restart"
    );
    assert!(rx
        .received()
        .iter()
        .all(|r| WebhookReceiver::verify(r, crate::notify::SECRET)));
}
