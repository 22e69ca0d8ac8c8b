//! `watchpost agent` end to end: the real collector pushing to a real server that is
//! stopped and started again on the same database and port; the spool across the agent's
//! own restart; and the binary's handling of its token and of SIGTERM.

use crate::helpers::*;
use crate::ingest::{count, create_host};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use watchpost::agent::{Agent, AgentConfig, AgentSnapshot};
use watchpost::config::Secret;

const INTERVAL: Duration = Duration::from_millis(100);

fn config(app: &TestApp, token: &str, spool: Option<&Path>) -> AgentConfig {
    let mut c = AgentConfig::new(&app.base_url, Secret::new(token)).expect("agent config");
    c.interval = INTERVAL;
    c.backoff_base = Duration::from_millis(50);
    c.backoff_cap = Duration::from_millis(400);
    c.request_timeout = Duration::from_secs(3);
    c.spool = spool.map(Path::to_path_buf);
    c
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<anyhow::Result<AgentSnapshot>>,
    stats: std::sync::Arc<watchpost::agent::AgentStats>,
}

fn start(config: AgentConfig) -> Running {
    let agent = Agent::new(config);
    let stats = agent.stats();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    Running {
        stop,
        handle,
        stats,
    }
}

impl Running {
    async fn stop(self) -> AgentSnapshot {
        let _ = self.stop.send(());
        self.handle
            .await
            .expect("agent task panicked")
            .unwrap_or_else(|e| panic!("agent failed: {e:#}"))
    }
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_agent_rides_out_a_server_restart_without_gaps_or_duplicates() {
    let mut app = spawn_app_with(|s| s.shutdown_grace_secs = 2).await;
    let (host_id, token) = create_host(&app, "agent-e2e").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start(config(&app, &token, Some(&dir.path().join("spool.jsonl"))));

    // Running: samples arrive within a few intervals.
    wait_for("the first samples", Duration::from_secs(15), async || {
        count(&app, host_id).await >= 5
    })
    .await;

    // The server goes away; the agent keeps collecting and retries.
    app.stop_server().await;
    let down_at = now_ms();
    let before = agent.stats.snapshot();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = agent.stats.snapshot();
    assert!(
        during.failures > before.failures,
        "no failed attempts while down: {during:?}"
    );
    assert!(
        during.collected >= before.collected + 15,
        "collection stalled while the server was down: {before:?} → {during:?}"
    );

    // A new server on the same database and port: the buffer drains, oldest first.
    app.restart_server().await;
    let up_at = now_ms();
    wait_for("the buffer to drain", Duration::from_secs(20), async || {
        let s = agent.stats.snapshot();
        s.collected > during.collected + 5 && s.delivered + 3 >= s.collected
    })
    .await;
    let summary = agent.stop().await;

    // Everything collected is stored exactly once: (host, ts) is the primary key, and the
    // count equals what the agent took.
    assert_eq!(
        (
            summary.dropped_overflow,
            summary.dropped_rejected,
            summary.lost_at_shutdown
        ),
        (0, 0, 0),
        "{summary:?}"
    );
    assert_eq!(summary.delivered, summary.collected, "{summary:?}");
    let rows = app
        .store
        .samples_between(host_id, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(rows.len() as u64, summary.collected, "{summary:?}");
    // No gap, not even across the outage: the agent never stopped collecting.
    let worst = rows
        .windows(2)
        .map(|w| (w[1].ts - w[0].ts, w[0].ts))
        .max()
        .unwrap();
    assert!(
        worst.0 <= 1000,
        "a {} ms gap at {} (outage {down_at}..{up_at})",
        worst.0,
        worst.1
    );
    let in_outage = rows
        .iter()
        .filter(|s| s.ts > down_at && s.ts < up_at)
        .count();
    assert!(in_outage >= 15, "only {in_outage} samples from the outage");
    // Real values from the real collector.
    assert!(rows
        .iter()
        .all(|s| s.memory_total > 0 && (0.0..=100.0).contains(&s.cpu)));
    // The host reports the agent's version and period.
    let host = app.store.host(host_id).await.unwrap().unwrap();
    assert_eq!(
        host.agent_version.as_deref(),
        Some(watchpost::agent::VERSION)
    );
    assert_eq!(host.interval_ms, Some(100));
    // A clean stop with the server up leaves no spool behind.
    assert_eq!(summary.spooled, 0);
    assert!(!dir.path().join("spool.jsonl").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unsent_samples_survive_an_agent_restart_through_the_spool() {
    let mut app = spawn_app().await;
    let (host_id, token) = create_host(&app, "spooler").await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("agent.spool");
    app.stop_server().await;

    // The server is down for the agent's whole first life: everything goes to the spool.
    let first = start(config(&app, &token, Some(&spool)));
    wait_for("samples to pile up", Duration::from_secs(15), async || {
        first.stats.snapshot().collected >= 10
    })
    .await;
    let first = first.stop().await;
    assert_eq!(first.delivered, 0);
    assert_eq!(first.spooled, first.collected, "{first:?}");
    let text = std::fs::read_to_string(&spool).unwrap();
    assert_eq!(text.lines().count() as u64, first.collected);
    assert!(!text.contains(&token));

    // Second life, server up: the spooled samples go first, then the new ones.
    app.restart_server().await;
    let second = start(config(&app, &token, Some(&spool)));
    wait_for(
        "the spool to be delivered",
        Duration::from_secs(20),
        async || {
            let s = second.stats.snapshot();
            s.delivered >= first.collected + 5
        },
    )
    .await;
    // Once everything from the spool is sent, the file goes (a crash must not resend it).
    wait_for(
        "the spool file to go",
        Duration::from_secs(10),
        async || !spool.exists(),
    )
    .await;
    let second = second.stop().await;
    assert_eq!(second.loaded, first.collected);
    assert_eq!(
        count(&app, host_id).await as u64,
        first.collected + second.collected
    );
    assert_eq!(second.delivered, first.collected + second.collected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_drops_batches_instead_of_retrying_forever() {
    let app = spawn_app().await;
    let (host_id, token) = create_host(&app, "revoked").await;
    let rotated = app
        .client
        .post(app.url(&format!("/admin/hosts/{host_id}/token")))
        .header("x-admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), reqwest::StatusCode::OK);
    let agent = start(config(&app, &token, None));
    wait_for("a refused batch", Duration::from_secs(15), async || {
        agent.stats.snapshot().dropped_rejected > 0
    })
    .await;
    let s = agent.stop().await;
    assert_eq!(s.delivered, 0);
    // 401 is not retried like an outage.
    assert_eq!(s.failures, 0, "{s:?}");
    assert_eq!(count(&app, host_id).await, 0);
}

/// The binary: the token never appears in its output, SIGTERM stops it cleanly and
/// spools what it could not send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_binary_keeps_its_token_secret_and_spools_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("bin.spool");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = "0123456789abcdef-secret-agent-token-0123456789abcdef";
    let err = dir.path().join("agent.err");
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["agent", "--server", &format!("http://127.0.0.1:{port}")])
        .args(["--interval", "100ms", "--log", "trace"])
        .arg("--spool")
        .arg(&spool)
        .env_remove("RUST_LOG")
        .env_remove("WATCHPOST_INTERVAL")
        .env("WATCHPOST_AGENT_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn the agent");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the agent did not stop on SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&err).unwrap();
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(!log.contains(token), "the token is in the log:\n{log}");
    assert!(log.contains("cannot deliver samples"), "{log}");
    let spooled = std::fs::read_to_string(&spool).unwrap_or_default();
    assert!(spooled.lines().count() >= 5, "{spooled}\n{log}");
    assert!(!spooled.contains(token));

    // Without a token the agent refuses to start and says why.
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["agent", "--server", "http://127.0.0.1:1"])
        .env_remove("WATCHPOST_AGENT_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WATCHPOST_AGENT_TOKEN"));
}
