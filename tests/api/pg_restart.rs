//! PostgreSQL restarting under traffic (F11) on a private cluster, and `statement_timeout`.
//!
//! The shared PostgreSQL at 127.0.0.1:5432 must never be restarted (other test runs use
//! it), so the restart tests build a throw-away cluster of their own: `initdb` into a
//! temporary directory owned by `postgres` (run through `runuser`, hence root), started
//! on a free loopback port and stopped (`-m immediate`) and removed when the fixture is
//! dropped. The tests run only in the PostgreSQL leg (`WATCHPOST_TEST_DATABASE_URL` set;
//! `WATCHPOST_REQUIRE_PG=1` demands it) so the SQLite leg stays fast; without root or
//! `initdb` they are skipped, or fail under `WATCHPOST_REQUIRE_PG=1`.

use crate::binary::{free_port, read, Server};
use crate::helpers::*;
use crate::ingest::{batch, wire};
use crate::prometheus::parse_exposition;
use crate::receivers::WebhookReceiver;
use crate::replicas::{cpu_rule_without_host_down, create_agent_hosts, start_replica};
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use watchpost::tasks::agent_alerts::{Timing, LEASE};

const REQUIRE_PG_ENV: &str = "WATCHPOST_REQUIRE_PG";
/// The replicas' handler time limit (`request_timeout_secs`): no answer may take longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a database connection (`db_acquire_timeout_secs`):
/// during an outage every database request fails after about this long.
const ACQUIRE_TIMEOUT_SECS: &str = "2";
/// Scheduling slack on a machine shared with other test runs.
const SLACK: Duration = Duration::from_secs(3);
/// How long the service may take to answer `/readyz` with 200 once PostgreSQL is back.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

/// How `pg_ctl stop` ends the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMode {
    /// Clean shutdown: sessions are told `57P01 admin_shutdown`, a checkpoint is written.
    Fast,
    /// A crash: every process quits at once; the next start runs crash recovery.
    Immediate,
}

impl StopMode {
    fn arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// A PostgreSQL cluster of this test's own, on 127.0.0.1:`port`, trusting local users.
struct PrivateCluster {
    bin: PathBuf,
    /// Owned by `postgres`: the data directory, the socket and the server log live here.
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

/// No private cluster can be had here: skip (`None`), or fail when PostgreSQL is required.
fn unavailable(reason: &str) -> Option<PrivateCluster> {
    if std::env::var(REQUIRE_PG_ENV).is_ok_and(|v| v == "1") {
        panic!("{REQUIRE_PG_ENV}=1 but a private PostgreSQL cluster cannot be built: {reason}");
    }
    eprintln!("skipped: no private PostgreSQL cluster ({reason})");
    None
}

/// The `bin` directory of the newest PostgreSQL installed the Debian way.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Runs `program args` as the `postgres` user in `cwd`, killed after `limit`.
async fn as_postgres(
    cwd: &Path,
    program: &Path,
    args: &[&str],
    limit: Duration,
) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("runuser");
    cmd.arg("-u")
        .arg("postgres")
        .arg("--")
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(limit, cmd.output()).await {
        Err(_) => Err(format!(
            "{} did not finish within {limit:?}",
            program.display()
        )),
        Ok(Err(e)) => Err(format!("running runuser: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!(
            "{} {args:?} exited {}: {}{}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

impl PrivateCluster {
    /// `initdb` and start a cluster, or `None` (skipped) where that cannot be done.
    async fn start() -> Option<PrivateCluster> {
        let Some(bin) = postgres_bin_dir() else {
            return unavailable("no /usr/lib/postgresql/*/bin/initdb");
        };
        let dir = tempfile::Builder::new()
            .prefix("wp-pg-")
            .tempdir()
            .expect("temp dir");
        match std::process::Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return unavailable(&format!(
                    "chown to postgres failed (not root?): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
            Err(e) => return unavailable(&format!("running chown: {e}")),
        }
        let data = dir.path().join("data");
        let data = data.to_str().expect("UTF-8 temp path");
        // -N: no fsync during initdb; the cluster is thrown away with the test.
        let init = as_postgres(
            dir.path(),
            &bin.join("initdb"),
            &["-D", data, "-A", "trust", "-U", "postgres", "-N"],
            Duration::from_secs(120),
        )
        .await;
        if let Err(e) = init {
            return unavailable(&format!("initdb as postgres failed: {e}"));
        }
        let mut cluster = PrivateCluster {
            bin,
            dir,
            port: free_port(),
            running: false,
        };
        cluster.start_server().await;
        Some(cluster)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn log(&self) -> String {
        read(&self.dir.path().join("server.log"))
    }

    async fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = self.data_dir();
        let mut all = vec!["-D", data.as_str(), "-w", "-t", "60"];
        all.extend_from_slice(args);
        as_postgres(
            self.dir.path(),
            &self.bin.join("pg_ctl"),
            &all,
            Duration::from_secs(90),
        )
        .await
    }

    /// Starts the server and waits until it accepts connections (crash recovery included).
    async fn start_server(&mut self) {
        let log = self.dir.path().join("server.log").display().to_string();
        // fsync off: a stopped or killed server process loses nothing the kernel already
        // has (only an operating-system crash would), and the disk is shared with other
        // test runs. synchronous_commit stays on (the store asks for it).
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 -c shared_buffers=16MB",
            self.port,
            self.dir.path().display()
        );
        let started = self.pg_ctl(&["-l", &log, "-o", &opts, "start"]).await;
        if let Err(e) = started {
            panic!(
                "private PostgreSQL did not start: {e}\nserver log:\n{}",
                self.log()
            );
        }
        self.running = true;
    }

    async fn stop_server(&mut self, mode: StopMode) {
        let stopped = self.pg_ctl(&["-m", mode.arg(), "stop"]).await;
        if let Err(e) = stopped {
            panic!(
                "pg_ctl stop -m {}: {e}\nserver log:\n{}",
                mode.arg(),
                self.log()
            );
        }
        self.running = false;
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        // Synchronous: we may be unwinding out of a runtime. The directory goes with
        // `TempDir` afterwards.
        let data = self.data_dir();
        let result = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "-w", "-t", "30", "stop"])
            .current_dir(self.dir.path())
            .output();
        match result {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: stopping the private PostgreSQL failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("warning: stopping the private PostgreSQL failed: {e}"),
        }
    }
}

/// The cluster for a restart test, or `None` when the test is to be skipped.
async fn private_cluster() -> Option<PrivateCluster> {
    // The PostgreSQL leg only (engine() itself fails when PostgreSQL is required but not
    // configured): the SQLite leg has no use for a cluster that takes seconds to build.
    if engine() != Engine::Postgres {
        eprintln!("skipped: PostgreSQL restarts run in the PostgreSQL leg (set WATCHPOST_TEST_DATABASE_URL)");
        return None;
    }
    PrivateCluster::start().await
}

/// One request and what came back.
#[derive(Debug)]
struct Seen {
    what: String,
    started: Instant,
    took: Duration,
    /// The status, or the transport error.
    status: Result<u16, String>,
    retry_after: Option<String>,
    content_type: Option<String>,
    body: String,
}

impl Seen {
    fn finished(&self) -> Instant {
        self.started + self.took
    }

    fn is(&self, status: u16) -> bool {
        self.status == Ok(status)
    }

    /// What is wrong with this answer for a service whose database may be down: only
    /// success or 503 with `Retry-After` and a `{"detail"}` body, never a 500, never a
    /// dropped connection, never later than the request timeout.
    fn violation(&self) -> Option<String> {
        if self.took > REQUEST_TIMEOUT + SLACK {
            return Some(format!("{}: took {:?}", self.what, self.took));
        }
        match &self.status {
            Err(e) => Some(format!("{}: transport error {e}", self.what)),
            Ok(200 | 201) => None,
            Ok(503) => {
                let retry = self
                    .retry_after
                    .as_deref()
                    .and_then(|v| v.parse::<u64>().ok());
                if retry.is_none_or(|s| s < 1) {
                    return Some(format!(
                        "{}: 503 with Retry-After {:?}",
                        self.what, self.retry_after
                    ));
                }
                if self.what.contains("/dashboard") {
                    // A page: the dashboard's own error page.
                    let html = self
                        .content_type
                        .as_deref()
                        .is_some_and(|ct| ct.starts_with("text/html"));
                    return (!html).then(|| {
                        format!(
                            "{}: 503 as {:?}: {}",
                            self.what, self.content_type, self.body
                        )
                    });
                }
                let body: Option<Value> = serde_json::from_str(&self.body).ok();
                let detail_only = body
                    .as_ref()
                    .and_then(Value::as_object)
                    .is_some_and(|o| o.len() == 1 && o.get("detail").is_some_and(Value::is_string));
                (!detail_only).then(|| format!("{}: 503 body {}", self.what, self.body))
            }
            Ok(s) => Some(format!("{}: status {s}, body {}", self.what, self.body)),
        }
    }
}

async fn observe(what: String, req: reqwest::RequestBuilder) -> Seen {
    let started = Instant::now();
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let header = |name| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header(RETRY_AFTER);
            let content_type = header(reqwest::header::CONTENT_TYPE);
            let body = resp
                .text()
                .await
                .unwrap_or_else(|e| format!("<body not read: {e}>"));
            Seen {
                what,
                started,
                took: started.elapsed(),
                status: Ok(status),
                retry_after,
                content_type,
                body,
            }
        }
        Err(e) => Seen {
            what,
            started,
            took: started.elapsed(),
            status: Err(e.to_string()),
            retry_after: None,
            content_type: None,
            body: String::new(),
        },
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn client() -> reqwest::Client {
    // Longer than the server's own limit, so a hang shows up as a transport error.
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT + Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A replica on the private cluster with short database timeouts (see the constants).
async fn replica(dir: &Path, name: &str, db: &str, hook: &str) -> Server {
    start_replica(dir, name, db, hook, |c| {
        c.env(
            "WATCHPOST_REQUEST_TIMEOUT_SECS",
            REQUEST_TIMEOUT.as_secs().to_string(),
        )
        .env("WATCHPOST_DB_ACQUIRE_TIMEOUT_SECS", ACQUIRE_TIMEOUT_SECS)
        // Plain HTTP: the dashboard's session cookie must not be `Secure`.
        .env("WATCHPOST_COOKIE_SECURE", "false");
    })
    .await
}

/// Polls `/readyz` on every replica until all answer 200; returns how long that took.
async fn wait_ready(client: &reqwest::Client, servers: &[&Server]) -> Duration {
    let started = Instant::now();
    for s in servers {
        loop {
            let ok = client
                .get(format!("{}/readyz", s.base_url))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if ok {
                break;
            }
            assert!(
                started.elapsed() < RECOVERY_LIMIT,
                "{} not ready {RECOVERY_LIMIT:?} after PostgreSQL came back:\n{}",
                s.base_url,
                read(&s.stderr)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    started.elapsed()
}

const AGENTS: usize = 4;
const PERIOD: Duration = Duration::from_millis(200);
const OUTAGE: Duration = Duration::from_secs(6);

/// One simulated agent: a batch (one sample) per period, alternating between the
/// replicas; a batch that is not acknowledged is sent again (to the other replica) until
/// it is. Stops between batches once `stop` is set. Returns the acknowledged sample
/// times and how many acknowledgements said `duplicate` (a commit whose answer was lost).
async fn agent(
    client: reqwest::Client,
    urls: Vec<String>,
    host_id: i64,
    token: String,
    t0: i64,
    stop: Arc<AtomicBool>,
    log: Log,
) -> (Vec<i64>, usize) {
    let mut acked = Vec::new();
    let mut duplicates = 0;
    let mut i = 0i64;
    let mut attempt = 0usize;
    let give_up = Instant::now() + Duration::from_secs(300);
    while !(stop.load(Ordering::Relaxed) && attempt == 0) {
        assert!(
            Instant::now() < give_up,
            "host {host_id}: batch {i} never acknowledged"
        );
        let ts = t0 + i * PERIOD.as_millis() as i64;
        let body = batch(&format!("h{host_id}-{i}"), vec![wire(ts, i as f64)]);
        let url = &urls[(i as usize + attempt) % urls.len()];
        let seen = observe(
            format!("POST /ingest h{host_id}-{i} on {url}"),
            client
                .post(format!("{url}/ingest"))
                .bearer_auth(&token)
                .json(&body),
        )
        .await;
        if seen.is(200) {
            let answer: Value = serde_json::from_str(&seen.body).unwrap_or_default();
            if answer["duplicate"] == json!(true) {
                duplicates += 1;
            }
            acked.push(ts);
            i += 1;
            attempt = 0;
        } else {
            attempt += 1;
        }
        log.lock().unwrap().push(seen);
        tokio::time::sleep(PERIOD).await;
    }
    (acked, duplicates)
}

/// A client that keeps cookies and follows no redirects, like a browser on the dashboard.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT + Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Logs `browser` in to the dashboard through the form (the session lives in the
/// database, so the cookie works on every replica).
async fn dashboard_login(browser: &reqwest::Client, url: &str, username: &str) {
    let form = browser
        .get(format!("{url}/dashboard/login"))
        .send()
        .await
        .unwrap();
    let csrf = crate::pages::csrf_of(&crate::pages::body_with_status(form, StatusCode::OK).await);
    let resp = browser
        .post(format!("{url}/dashboard/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    crate::pages::assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard");
}

/// A user logging in and reading alerts and samples through the API, and a logged-in
/// and an anonymous dashboard visitor, alternating between the replicas.
async fn reader(
    client: reqwest::Client,
    urls: Vec<String>,
    username: String,
    stop: Arc<AtomicBool>,
    log: Log,
) {
    let logged_in = browser();
    dashboard_login(&logged_in, &urls[0], &username).await;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let (here, there) = (&urls[i % urls.len()], &urls[(i + 1) % urls.len()]);
        let login = observe(
            format!("POST /login on {here}"),
            client
                .post(format!("{here}/login"))
                .json(&json!({"username": username, "password": PASSWORD})),
        )
        .await;
        let token = login
            .is(200)
            .then(|| serde_json::from_str::<Value>(&login.body).ok())
            .flatten()
            .and_then(|b| b["token"].as_str().map(str::to_owned));
        log.lock().unwrap().push(login);
        if let Some(token) = token {
            for path in ["/alerts", "/metrics?limit=5"] {
                let seen = observe(
                    format!("GET {path} on {there}"),
                    client.get(format!("{there}{path}")).header("token", &token),
                )
                .await;
                log.lock().unwrap().push(seen);
            }
        }
        // A session cookie (its session is read from the database), and none (the login
        // form stores a new session with its CSRF token).
        let seen = observe(
            format!("GET /dashboard (logged in) on {there}"),
            logged_in.get(format!("{there}/dashboard")),
        )
        .await;
        log.lock().unwrap().push(seen);
        let seen = observe(
            format!("GET /dashboard/login (anonymous) on {here}"),
            browser().get(format!("{here}/dashboard/login")),
        )
        .await;
        log.lock().unwrap().push(seen);
        i += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `/readyz` of one replica, four times a second (one monitor per replica: during an
/// outage an answer takes the connection-acquire timeout).
async fn ready_monitor(client: reqwest::Client, url: String, stop: Arc<AtomicBool>, log: Log) {
    while !stop.load(Ordering::Relaxed) {
        let seen = observe(
            format!("GET /readyz on {url}"),
            client.get(format!("{url}/readyz")),
        )
        .await;
        log.lock().unwrap().push(seen);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// F11: two replicas on a private cluster; agents stream batches and a user logs in and
/// reads (API and dashboard) while PostgreSQL is stopped (`-m fast`, then `-m immediate`,
/// a crash) for a few seconds and started again. During the outages every answer is 200
/// or a 503 with `Retry-After` and a `{"detail"}` body (the error page on the dashboard),
/// within the request timeout, and `/readyz` says 503; afterwards both replicas are ready
/// again without being restarted; every acknowledged batch is stored, and every batch
/// that was retried is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_under_traffic_answer_503_and_lose_nothing() {
    let Some(mut cluster) = private_cluster().await else {
        return;
    };
    let db = cluster.url();
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start().await;
    let a = replica(dir.path(), "pg-restart-a", &db, &hook.url()).await;
    let b = replica(dir.path(), "pg-restart-b", &db, &hook.url()).await;
    let urls = vec![a.base_url.clone(), b.base_url.clone()];
    let client = client();

    let username = unique_username("pgrestart");
    let reg = client
        .post(format!("{}/register", urls[0]))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    json_with_status(reg, StatusCode::CREATED).await;
    let hosts = create_agent_hosts(&client, &urls[1], "pg-restart-agent", AGENTS).await;

    let stop = Arc::new(AtomicBool::new(false));
    let log: Log = Default::default();
    let ready_log: Log = Default::default();
    let t0 = now_ms();
    let agents: Vec<_> = hosts
        .iter()
        .map(|(id, token)| {
            tokio::spawn(agent(
                client.clone(),
                urls.clone(),
                *id,
                token.clone(),
                t0,
                stop.clone(),
                log.clone(),
            ))
        })
        .collect();
    let mut others = vec![tokio::spawn(reader(
        client.clone(),
        urls.clone(),
        username.clone(),
        stop.clone(),
        log.clone(),
    ))];
    for url in &urls {
        others.push(tokio::spawn(ready_monitor(
            client.clone(),
            url.clone(),
            stop.clone(),
            ready_log.clone(),
        )));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    // (mode, stopped at, start issued at, ready after)
    let mut outages = Vec::new();
    for mode in [StopMode::Fast, StopMode::Immediate] {
        cluster.stop_server(mode).await;
        let down = Instant::now();
        tokio::time::sleep(OUTAGE).await;
        let up = Instant::now();
        cluster.start_server().await;
        let recovered = wait_ready(&client, &[&a, &b]).await;
        outages.push((mode, down, up, recovered));
        // Traffic on the recovered service before the next outage or the end.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut duplicates = 0;
    for task in agents {
        let (ts, dups) = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("agents finish their last batch")
            .expect("agent task");
        acked.push(ts);
        duplicates += dups;
    }
    for task in others {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("reader and monitor finish")
            .expect("reader task");
    }
    let log = std::mem::take(&mut *log.lock().unwrap());
    let ready_log = std::mem::take(&mut *ready_log.lock().unwrap());

    // Every answer: 2xx, or a well-formed 503 within the request timeout.
    let violations: Vec<String> = log
        .iter()
        .chain(&ready_log)
        .filter_map(Seen::violation)
        .collect();
    assert!(
        violations.is_empty(),
        "{} bad answers, e.g.:\n{}\nreplica A log:\n{}\nreplica B log:\n{}",
        violations.len(),
        violations[..violations.len().min(20)].join("\n"),
        read(&a.stderr),
        read(&b.stderr)
    );
    for (mode, down, up, recovered) in &outages {
        let within = |s: &&Seen| s.started >= *down && s.finished() <= *up;
        // `/readyz` asked and answered while the cluster was down: 503, every time.
        let ready_down: Vec<&Seen> = ready_log.iter().filter(within).collect();
        assert!(
            ready_down.len() >= 2,
            "{mode:?}: only {} /readyz answers during the outage: {:?}",
            ready_down.len(),
            ready_log
                .iter()
                .map(|s| (
                    &s.what,
                    s.started.saturating_duration_since(*down),
                    s.took,
                    &s.status
                ))
                .collect::<Vec<_>>()
        );
        assert!(
            ready_down.iter().all(|s| s.is(503)),
            "{mode:?}: /readyz during the outage: {:?}",
            ready_down
                .iter()
                .map(|s| (&s.what, &s.status))
                .collect::<Vec<_>>()
        );
        // The outage was felt: batches were refused with 503 while it lasted.
        let refused = log
            .iter()
            .filter(within)
            .filter(|s| s.what.starts_with("POST /ingest") && s.is(503))
            .count();
        assert!(refused > 0, "{mode:?}: no batch refused during the outage");
        // And the service took batches again after it, without a restart.
        let after = log
            .iter()
            .filter(|s| {
                s.started > *up + *recovered && s.what.starts_with("POST /ingest") && s.is(200)
            })
            .count();
        assert!(after > 0, "{mode:?}: no batch acknowledged after recovery");
        let slowest = log
            .iter()
            .chain(&ready_log)
            .filter(within)
            .map(|s| s.took)
            .max()
            .unwrap_or_default();
        let kinds: BTreeSet<&str> = log
            .iter()
            .filter(within)
            .filter(|s| s.is(503))
            .filter_map(|s| s.what.split(" on ").next())
            .map(|w| w.split(" h").next().unwrap_or(w))
            .collect();
        eprintln!(
            "{mode:?} stop: {} /readyz 503s and {refused} refused batches during {OUTAGE:?} \
             (503s for {kinds:?}; slowest answer {slowest:?}); ready {recovered:?} after the start",
            ready_down.len()
        );
    }
    // Both replicas are the processes we started: neither died nor was restarted.
    for s in [&a, &b] {
        let mut child = std::process::Command::new("kill");
        let alive = child
            .arg("-0")
            .arg(s.child.id().to_string())
            .status()
            .is_ok_and(|st| st.success());
        assert!(alive, "replica {} exited", s.base_url);
    }

    // Every acknowledged batch is stored; every batch (retried ones included) once.
    let pool = sqlx::PgPool::connect(&db)
        .await
        .expect("connect to the private cluster");
    let mut total = 0;
    for ((host_id, _), acked) in hosts.iter().zip(&acked) {
        let stored: Vec<i64> =
            sqlx::query_scalar("SELECT ts FROM samples WHERE host_id = $1 ORDER BY ts")
                .bind(host_id)
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(
            &stored, acked,
            "host {host_id}: stored samples differ from the acknowledged batches"
        );
        let batches: Vec<(String, i64)> =
            sqlx::query_as("SELECT batch_id, rows FROM ingest_batches WHERE host_id = $1 ORDER BY received_at, batch_id")
                .bind(host_id)
                .fetch_all(&pool)
                .await
                .unwrap();
        let want: BTreeSet<String> = (0..acked.len())
            .map(|i| format!("h{host_id}-{i}"))
            .collect();
        let got: BTreeSet<String> = batches.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(got, want, "host {host_id}: batch ids");
        assert!(
            batches.iter().all(|(_, rows)| *rows == 1),
            "host {host_id}: a batch stored other than once: {batches:?}"
        );
        total += acked.len();
    }
    pool.close().await;
    let refused = log
        .iter()
        .filter(|s| s.what.starts_with("POST /ingest") && s.is(503))
        .count();
    eprintln!(
        "pg restarts: {total} batches acknowledged and stored once, {refused} refusals retried, \
         {duplicates} acknowledged as duplicates (committed before their answer was lost), {} requests in all",
        log.len() + ready_log.len()
    );
}

/// The `watchpost_lease_held{lease="agent-alerts"}` gauge of each replica (`None` while
/// the scrape fails or the gauge is absent).
async fn lease_gauges(client: &reqwest::Client, servers: &[&Server]) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for s in servers {
        let text = match client
            .get(format!("{}/metrics/prometheus", s.base_url))
            .send()
            .await
        {
            Ok(r) if r.status() == StatusCode::OK => r.text().await.unwrap_or_default(),
            _ => String::new(),
        };
        out.push(
            parse_exposition(&text)
                .ok()
                .and_then(|e| e.get("watchpost_lease_held", &[("lease", LEASE)])),
        );
    }
    out
}

/// Waits until exactly one replica says it holds the agent-alerting lease and the lease
/// row names it and was renewed after `since_ms` (`expires_at >= since_ms + ttl`);
/// returns its index.
async fn single_holder(
    client: &reqwest::Client,
    servers: &[&Server],
    store: &dyn watchpost::store::Store,
    since_ms: i64,
    limit: Duration,
) -> usize {
    let ttl_ms = Timing::default().ttl.as_millis() as i64;
    let deadline = Instant::now() + limit;
    loop {
        let gauges = lease_gauges(client, servers).await;
        let lease = store.lease(LEASE).await.ok().flatten();
        let holding: Vec<usize> = (0..servers.len())
            .filter(|&i| gauges[i] == Some(1.0))
            .collect();
        if let ([i], Some(l)) = (holding.as_slice(), &lease) {
            let pid = l.holder.split(':').nth(1).unwrap_or_default();
            if pid == servers[*i].child.id().to_string() && l.expires_at >= since_ms + ttl_ms {
                return *i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no single renewed lease holder after {limit:?}: gauges {gauges:?}, lease {lease:?}\nA:\n{}\nB:\n{}",
            read(&servers[0].stderr),
            read(&servers[1].stderr)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Posts one sample at `cpu` (retrying a 503 a bounded number of times).
async fn post_cpu(client: &reqwest::Client, url: &str, token: &str, id: &str, cpu: f64) {
    let mut s = wire(now_ms(), 1.0);
    s["cpu"] = json!(cpu);
    let body = batch(id, vec![s]);
    for _ in 0..20 {
        let resp = client
            .post(format!("{url}/ingest"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await;
        if resp.is_ok_and(|r| r.status() == StatusCode::OK) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("batch {id} not acknowledged");
}

/// A breach on `host_id` raises a new alert of `rule_id` that reaches the webhook
/// receiver; a sample back below the threshold resolves it. Returns the alert id.
#[allow(clippy::too_many_arguments)]
async fn breach_is_alerted(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    host_id: i64,
    rule_id: i64,
    store: &dyn watchpost::store::Store,
    hook: &WebhookReceiver,
    label: &str,
) -> i64 {
    let before: BTreeSet<i64> = store
        .list_alerts(0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    post_cpu(client, url, token, &format!("{label}-breach"), 95.0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let alert = loop {
        let alerts = store.list_alerts(0, 10_000).await.unwrap_or_default();
        let new = alerts.into_iter().find(|a| {
            !before.contains(&a.id) && a.rule_id == Some(rule_id) && a.host_id == host_id
        });
        if let Some(a) = new {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: no alert 30 s after a breach"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let firing = |r: &crate::receivers::Received| {
        serde_json::from_slice::<Value>(&r.body)
            .is_ok_and(|b| b["alert_id"].as_i64() == Some(alert.id) && b["event"] == "firing")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hook.received().iter().any(firing) {
        assert!(
            Instant::now() < deadline,
            "{label}: alert {} not delivered in 30 s",
            alert.id
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    post_cpu(client, url, token, &format!("{label}-calm"), 10.0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alerts = store.list_alerts(0, 10_000).await.unwrap_or_default();
        if alerts
            .iter()
            .any(|a| a.id == alert.id && a.resolved_at.is_some())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: alert {} not resolved in 30 s",
            alert.id
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    alert.id
}

/// F11 with R34: the agent-alerting lease survives PostgreSQL restarts. After a short
/// clean stop the holder renews it; after a crash that outlasts the lease's TTL it has
/// expired and one replica (the same or the other) takes it again. Either way exactly
/// one replica holds it within a bounded time, and a breach sent afterwards raises an
/// alert that reaches a loopback webhook receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_leave_one_lease_holder_and_alerting_resumes() {
    let Some(mut cluster) = private_cluster().await else {
        return;
    };
    let db = cluster.url();
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start().await;
    let a = replica(dir.path(), "pg-lease-a", &db, &hook.url()).await;
    let b = replica(dir.path(), "pg-lease-b", &db, &hook.url()).await;
    let servers = [&a, &b];
    let client = client();
    let rule_id = cpu_rule_without_host_down(&client, &a.base_url, "pg restart cpu").await;
    let (host_id, token) = create_agent_hosts(&client, &a.base_url, "pg-lease-agent", 1)
        .await
        .remove(0);
    let mut settings = test_settings(&db);
    settings.admin_token = None;
    let store = watchpost::store::connect(&settings).await.expect("connect");

    let first = single_holder(
        &client,
        &servers,
        store.as_ref(),
        0,
        Duration::from_secs(30),
    )
    .await;
    breach_is_alerted(
        &client,
        &b.base_url,
        &token,
        host_id,
        rule_id,
        store.as_ref(),
        &hook,
        "before",
    )
    .await;
    let ttl = Timing::default().ttl;
    let mut holder = first;
    // A clean stop shorter than the TTL; a crash longer than it, so the lease expires.
    for (mode, outage) in [
        (StopMode::Fast, Duration::from_secs(3)),
        (StopMode::Immediate, ttl + Duration::from_secs(3)),
    ] {
        cluster.stop_server(mode).await;
        tokio::time::sleep(outage).await;
        cluster.start_server().await;
        let up_ms = now_ms();
        let next = single_holder(
            &client,
            &servers,
            store.as_ref(),
            up_ms,
            Duration::from_secs(40),
        )
        .await;
        let label = format!("after-{}", mode.arg());
        breach_is_alerted(
            &client,
            &servers[1 - next].base_url,
            &token,
            host_id,
            rule_id,
            store.as_ref(),
            &hook,
            &label,
        )
        .await;
        eprintln!(
            "{mode:?} stop for {outage:?}: lease held by replica {} before, {} after",
            ["A", "B"][holder],
            ["A", "B"][next]
        );
        holder = next;
    }
    store.close().await;
}

/// F5 / `statement_timeout`: a read stuck behind a table lock is cancelled by
/// PostgreSQL's `statement_timeout` (57014, set to 1 s here, with the lock timeout well
/// above it) and answered 503 with `Retry-After` after about that long, not after the
/// lock or request timeout; once the lock is gone the same read succeeds. Uses the
/// shared PostgreSQL (only a table lock in the test's own database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_timeout_answers_503_with_retry_after() {
    if engine() != Engine::Postgres {
        eprintln!("skipped: statement_timeout is PostgreSQL's (set WATCHPOST_TEST_DATABASE_URL)");
        return;
    }
    let app = spawn_app_with(|s| {
        s.db_statement_timeout_secs = 1;
        s.db_lock_timeout_secs = 30;
        s.request_timeout_secs = 30;
    })
    .await;
    let token = app.register_and_login().await;
    app.insert_samples(&[sample(app.local_host_id, now_ms() - 1000, 10.0, 20.0)])
        .await;
    assert_eq!(app.get("/metrics", &token).await.status(), StatusCode::OK);

    // An operator's session holds the samples table in ACCESS EXCLUSIVE mode.
    use sqlx::{Connection, Executor};
    let mut locker = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("LOCK TABLE samples IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let resp = app.get("/metrics", &token).await;
    let took = started.elapsed();
    assert!(
        resp.headers().get(RETRY_AFTER).is_some_and(|v| v
            .to_str()
            .is_ok_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1))),
        "Retry-After: {:?}",
        resp.headers().get(RETRY_AFTER)
    );
    let detail = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(!detail.contains("statement"), "SQL details leak: {detail}");
    // The statement timeout (1 s) ended it, not the lock timeout (30 s).
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "answered after {took:?}"
    );
    locker.execute("ROLLBACK").await.unwrap();
    locker.close().await.unwrap();
    assert_eq!(app.get("/metrics", &token).await.status(), StatusCode::OK);
}
