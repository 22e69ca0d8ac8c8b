//! `watchpost agent`: samples this host with the server's own collector and pushes the
//! samples to a watchpost server's `POST /ingest`, buffering while the server is away.
//!
//! Two tasks share a bounded buffer: the collector appends a sample every interval and
//! never waits for the network (a full buffer drops its oldest sample); the sender takes
//! the oldest samples in batches, gives each batch a fresh id that it reuses for every
//! retry of that batch (so the server stores it once), and backs off exponentially with
//! jitter while the server is unreachable or answers 5xx/429. At shutdown whatever is
//! still unsent is flushed for a moment and then written to the spool file, if one is set.

pub mod backoff;
pub mod buffer;
pub mod spool;

use crate::collect::Collector;
use crate::config::Secret;
use crate::ingest::wire::{IngestBody, IngestResponse, WireSample};
use crate::store::Sample;
use crate::tasks::Stop;
use anyhow::{bail, Context};
use backoff::Backoff;
use buffer::RingBuffer;
use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The version agents report to the server.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How often a condition that persists (server away, buffer full) is logged again.
const REPEAT_LOG: Duration = Duration::from_secs(60);

/// What the agent needs to know; [`AgentConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The server's `/ingest` URL.
    pub ingest_url: Url,
    pub token: Secret,
    pub interval: Duration,
    /// Samples held while the server is unreachable (one day at 1 s by default).
    pub buffer: usize,
    /// Samples per request at most.
    pub batch_max: usize,
    pub spool: Option<PathBuf>,
    pub request_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How long a shutdown may spend delivering what is still buffered.
    pub shutdown_flush: Duration,
}

impl AgentConfig {
    pub fn new(server: &str, token: Secret) -> anyhow::Result<Self> {
        if token.expose().trim().is_empty() {
            bail!("the agent token is empty: set WATCHPOST_AGENT_TOKEN (or --token)");
        }
        Ok(Self {
            ingest_url: ingest_url(server)?,
            token,
            interval: Duration::from_secs(1),
            buffer: 86_400,
            batch_max: 1000,
            spool: None,
            request_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            shutdown_flush: Duration::from_secs(3),
        })
    }
}

impl AgentConfig {
    /// From `watchpost agent`'s arguments; the period is the global `--interval`
    /// (`WATCHPOST_INTERVAL`), 1 s if not given.
    pub fn from_cli(
        args: &crate::cli::AgentArgs,
        overrides: &crate::cli::Overrides,
    ) -> anyhow::Result<Self> {
        let token = args.token.clone().ok_or_else(|| {
            anyhow::anyhow!("no agent token: set WATCHPOST_AGENT_TOKEN (or pass --token)")
        })?;
        let mut c = Self::new(&args.server, token)?;
        if let Some(raw) = &overrides.interval {
            c.interval = crate::config::parse_duration(raw)?;
        }
        if c.interval < Duration::from_millis(100) {
            bail!("--interval must be at least 100ms");
        }
        c.buffer = args.buffer.max(1);
        c.batch_max = usize::try_from(args.batch).unwrap_or(1000);
        c.spool = args.spool.clone();
        c.request_timeout = crate::config::parse_duration(&args.timeout)?;
        if c.request_timeout < Duration::from_millis(100) {
            bail!("--timeout must be at least 100ms");
        }
        Ok(c)
    }
}

/// `<server>/ingest`, keeping a path prefix (a server behind `https://host/watchpost/`).
pub fn ingest_url(server: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(server.trim()).with_context(|| {
        format!("--server {server:?} is not a URL such as https://watchpost.example.com")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("--server must be an http:// or https:// URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("--server must not carry credentials; the agent token authenticates the agent");
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.join("ingest").context("building the ingest URL")
}

/// Running totals, readable while the agent runs.
#[derive(Debug, Default)]
pub struct AgentStats {
    /// Samples taken.
    pub collected: AtomicU64,
    /// Samples in batches the server acknowledged (new or duplicate).
    pub delivered: AtomicU64,
    /// Samples the server reported as newly stored.
    pub accepted: AtomicU64,
    /// Acknowledged batches.
    pub batches: AtomicU64,
    /// Batches the server already had (a retry after a lost answer).
    pub duplicate_batches: AtomicU64,
    /// Failed attempts (unreachable, 5xx, 429).
    pub failures: AtomicU64,
    /// Samples dropped because the buffer was full.
    pub dropped_overflow: AtomicU64,
    /// Samples dropped because the server refused their batch (4xx).
    pub dropped_rejected: AtomicU64,
    /// Samples read from the spool at start.
    pub loaded: AtomicU64,
    /// Samples written to the spool at shutdown.
    pub spooled: AtomicU64,
    /// Samples neither delivered nor spooled at shutdown.
    pub lost_at_shutdown: AtomicU64,
}

/// A copy of [`AgentStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentSnapshot {
    pub collected: u64,
    pub delivered: u64,
    pub accepted: u64,
    pub batches: u64,
    pub duplicate_batches: u64,
    pub failures: u64,
    pub dropped_overflow: u64,
    pub dropped_rejected: u64,
    pub loaded: u64,
    pub spooled: u64,
    pub lost_at_shutdown: u64,
}

impl AgentStats {
    pub fn snapshot(&self) -> AgentSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AgentSnapshot {
            collected: g(&self.collected),
            delivered: g(&self.delivered),
            accepted: g(&self.accepted),
            batches: g(&self.batches),
            duplicate_batches: g(&self.duplicate_batches),
            failures: g(&self.failures),
            dropped_overflow: g(&self.dropped_overflow),
            dropped_rejected: g(&self.dropped_rejected),
            loaded: g(&self.loaded),
            spooled: g(&self.spooled),
            lost_at_shutdown: g(&self.lost_at_shutdown),
        }
    }
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

type Shared = Arc<Mutex<RingBuffer<Sample>>>;

/// A poisoned lock only means another task panicked mid-push; the buffer is still sound.
fn lock(buffer: &Shared) -> MutexGuard<'_, RingBuffer<Sample>> {
    buffer.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Agent {
    config: AgentConfig,
    stats: Arc<AgentStats>,
}

impl Agent {
    pub fn new(config: AgentConfig) -> Self {
        Self {
            config,
            stats: Arc::new(AgentStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<AgentStats> {
        self.stats.clone()
    }

    /// Runs until `shutdown` resolves; then flushes briefly and spools what is left.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<AgentSnapshot> {
        let Agent { config, stats } = self;
        if let Some(path) = &config.spool {
            spool::check_writable(path)?;
        }
        let collector = Collector::new().context("starting the collector")?;
        let buffer: Shared = Arc::new(Mutex::new(RingBuffer::new(config.buffer)));
        let mut spool_loaded = false;
        if let Some(path) = &config.spool {
            match spool::load(path) {
                Ok((samples, bad)) => {
                    if bad > 0 {
                        tracing::warn!(path = %path.display(), bad, "skipped unreadable lines in the spool file");
                    }
                    if !samples.is_empty() {
                        tracing::info!(path = %path.display(), samples = samples.len(), "loaded unsent samples from the spool file");
                        add(&stats.loaded, samples.len());
                        spool_loaded = true;
                    }
                    let mut b = lock(&buffer);
                    for s in samples {
                        if b.push(s) {
                            add(&stats.dropped_overflow, 1);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %format!("{e:#}"), "cannot read the spool file; starting without it");
                }
            }
        }
        if config.ingest_url.scheme() == "http"
            && !matches!(
                config.ingest_url.host_str(),
                Some("127.0.0.1" | "localhost" | "[::1]")
            )
        {
            tracing::warn!(url = %config.ingest_url, "the server URL is plain http: the agent token travels unencrypted; use https");
        }
        tracing::info!(
            url = %config.ingest_url,
            interval_ms = config.interval.as_millis() as u64,
            buffer = config.buffer,
            spool = ?config.spool,
            version = VERSION,
            "watchpost agent started"
        );

        let notify = Arc::new(Notify::new());
        let (stop_tx, stop) = Stop::new();
        let collecting = tokio::spawn(collect_loop(
            collector,
            config.interval,
            buffer.clone(),
            notify.clone(),
            stats.clone(),
            stop.clone(),
        ));
        let sender = Sender::new(&config, buffer.clone(), notify, stats.clone(), spool_loaded)?;
        let sending = tokio::spawn(sender.run(stop));

        shutdown.await;
        tracing::info!("agent stopping");
        let _ = stop_tx.send(true);
        let _ = collecting.await;
        let mut sender = sending.await.context("the sender task failed")?;

        let mut unsent = sender.pending.take().map(|p| p.samples).unwrap_or_default();
        unsent.extend(lock(&buffer).drain_all());
        let unsent = sender.flush(unsent, config.shutdown_flush).await;
        match &config.spool {
            Some(path) => match spool::save(path, &unsent) {
                Ok(()) => {
                    add(&stats.spooled, unsent.len());
                    if !unsent.is_empty() {
                        tracing::info!(path = %path.display(), samples = unsent.len(), "unsent samples written to the spool file");
                    }
                }
                Err(e) => {
                    add(&stats.lost_at_shutdown, unsent.len());
                    tracing::error!(path = %path.display(), samples = unsent.len(), error = %format!("{e:#}"), "cannot write the spool file; unsent samples are lost");
                }
            },
            None if !unsent.is_empty() => {
                add(&stats.lost_at_shutdown, unsent.len());
                tracing::warn!(
                    samples = unsent.len(),
                    "unsent samples are lost at shutdown (set --spool FILE to keep them)"
                );
            }
            None => {}
        }
        let summary = stats.snapshot();
        tracing::info!(?summary, "agent stopped");
        Ok(summary)
    }
}

/// Takes a sample every `interval` and never waits for the network.
async fn collect_loop(
    mut collector: Collector,
    interval: Duration,
    buffer: Shared,
    notify: Arc<Notify>,
    stats: Arc<AgentStats>,
    mut stop: Stop,
) {
    // CPU usage is a difference between two readings: the first sample comes one period in.
    let start = tokio::time::Instant::now() + interval;
    let mut ticker = tokio::time::interval_at(start, interval);
    // After a stall (suspend, overload) carry on at the normal pace instead of bursting.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_drop_log: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.stopped() => break,
        }
        let sample = collector.sample(0, crate::domain::now_ms());
        let (dropped, total_dropped, capacity) = {
            let mut b = lock(&buffer);
            let dropped = b.push(sample);
            (dropped, b.dropped(), b.capacity())
        };
        add(&stats.collected, 1);
        if dropped {
            add(&stats.dropped_overflow, 1);
            if last_drop_log.is_none_or(|t| t.elapsed() >= REPEAT_LOG) {
                last_drop_log = Some(Instant::now());
                tracing::warn!(
                    capacity,
                    dropped_total = total_dropped,
                    "buffer full: dropping the oldest samples (raise --buffer to keep more)"
                );
            }
        }
        notify.notify_one();
    }
}

/// A batch on its way, with the id it keeps across retries.
struct Pending {
    id: String,
    samples: Vec<Sample>,
}

enum Outcome {
    Delivered(IngestResponse),
    /// Unreachable, timed out, 5xx, 429, 408: the same batch goes again after a pause.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// 413: the batch is too big for the server.
    TooLarge,
    /// Any other refusal: retrying the same bytes cannot help.
    Rejected {
        status: u16,
        detail: String,
    },
}

struct Sender {
    client: reqwest::Client,
    url: Url,
    auth: HeaderValue,
    interval_ms: i64,
    buffer: Shared,
    notify: Arc<Notify>,
    stats: Arc<AgentStats>,
    batch_max: usize,
    backoff: Backoff,
    pending: Option<Pending>,
    failing_since: Option<Instant>,
    last_failure_log: Option<Instant>,
    /// The spool was loaded and is removed once everything in it has been sent.
    spool: Option<PathBuf>,
}

impl Sender {
    fn new(
        config: &AgentConfig,
        buffer: Shared,
        notify: Arc<Notify>,
        stats: Arc<AgentStats>,
        spool_loaded: bool,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            // A redirect would turn the POST into a GET or send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("watchpost-agent/{VERSION}"))
            .build()
            .context("building the HTTP client")?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.token.expose().trim()))
            .map_err(|_| {
            anyhow::anyhow!("the agent token contains characters a header cannot carry")
        })?;
        // Keeps the value out of reqwest's and hyper's debug output.
        auth.set_sensitive(true);
        Ok(Self {
            client,
            url: config.ingest_url.clone(),
            auth,
            interval_ms: i64::try_from(config.interval.as_millis()).unwrap_or(i64::MAX),
            buffer,
            notify,
            stats,
            batch_max: config.batch_max.max(1),
            backoff: Backoff::new(config.backoff_base, config.backoff_cap),
            pending: None,
            failing_since: None,
            last_failure_log: None,
            spool: config.spool.clone().filter(|_| spool_loaded),
        })
    }

    /// Sends until stopped; returns itself with the batch that was in flight, if any.
    async fn run(mut self, mut stop: Stop) -> Self {
        loop {
            if self.pending.is_none() {
                let samples = lock(&self.buffer).take_oldest(self.batch_max);
                if samples.is_empty() {
                    self.caught_up();
                    tokio::select! {
                        () = self.notify.notified() => continue,
                        () = stop.stopped() => break,
                    }
                }
                self.pending = Some(Pending {
                    id: new_batch_id(),
                    samples,
                });
            }
            let Some(batch) = self.pending.as_ref() else {
                continue;
            };
            let outcome = tokio::select! {
                o = self.send(batch) => o,
                () = stop.stopped() => break,
            };
            let pause = self.handle(outcome);
            if let Some(pause) = pause {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop.stopped() => break,
                }
            }
        }
        self
    }

    /// Everything loaded from the spool has been dealt with: remove it, so a crash later
    /// does not send those samples again.
    fn caught_up(&mut self) {
        if let Some(path) = self.spool.take() {
            if let Err(e) = spool::remove(&path) {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "cannot remove the spool file");
            }
        }
    }

    /// Books an outcome; returns how long to wait before the next attempt, if at all.
    fn handle(&mut self, outcome: Outcome) -> Option<Duration> {
        let n = self.pending.as_ref().map_or(0, |p| p.samples.len());
        match outcome {
            Outcome::Delivered(resp) => {
                add(&self.stats.delivered, n);
                add(&self.stats.batches, 1);
                self.stats
                    .accepted
                    .fetch_add(resp.accepted, Ordering::Relaxed);
                if resp.duplicate {
                    add(&self.stats.duplicate_batches, 1);
                }
                if let Some(since) = self.failing_since.take() {
                    let buffered = lock(&self.buffer).len();
                    tracing::info!(
                        down_for_secs = since.elapsed().as_secs(),
                        buffered,
                        "server reachable again; delivering buffered samples oldest first"
                    );
                }
                self.backoff.reset();
                self.last_failure_log = None;
                self.pending = None;
                None
            }
            Outcome::Retry {
                reason,
                retry_after,
            } => {
                add(&self.stats.failures, 1);
                let pause = self.backoff.next_delay(
                    retry_after,
                    Duration::from_secs(300),
                    rand::random::<f64>(),
                );
                self.failing_since.get_or_insert_with(Instant::now);
                let buffered = lock(&self.buffer).len() + n;
                if self
                    .last_failure_log
                    .is_none_or(|t| t.elapsed() >= REPEAT_LOG)
                {
                    self.last_failure_log = Some(Instant::now());
                    tracing::warn!(
                        error = %reason,
                        attempts = self.backoff.attempt(),
                        buffered,
                        retry_in_ms = pause.as_millis() as u64,
                        "cannot deliver samples; keeping them and retrying with back-off"
                    );
                } else {
                    tracing::debug!(error = %reason, attempts = self.backoff.attempt(), buffered, "delivery failed again");
                }
                Some(pause)
            }
            Outcome::TooLarge if n > 1 => {
                // Same samples, smaller batches (each under a new id: the server stored
                // nothing of this one).
                self.batch_max = (n / 2).max(1);
                tracing::warn!(
                    batch_max = self.batch_max,
                    "the server refused a batch as too large; sending smaller batches"
                );
                if let Some(p) = self.pending.take() {
                    lock(&self.buffer).put_back(p.samples);
                }
                None
            }
            Outcome::TooLarge => self.reject(413, "request body too large".into(), n),
            Outcome::Rejected { status, detail } => self.reject(status, detail, n),
        }
    }

    fn reject(&mut self, status: u16, detail: String, n: usize) -> Option<Duration> {
        add(&self.stats.dropped_rejected, n);
        self.pending = None;
        let hint = match status {
            401 => {
                "the agent token is not valid (rotated?): restart the agent with the current token"
            }
            403 => "the server refuses this agent (was its host deleted?)",
            422 => "the server found the batch invalid (is this machine's clock far ahead?)",
            300..=399 => "the server URL redirects: give the final URL with --server",
            _ => "the server refused the batch",
        };
        tracing::error!(status, detail = %detail, samples = n, "{hint}; dropping the batch");
        // Credentials will not fix themselves within seconds: do not hammer the server
        // (the buffer keeps filling meanwhile).
        matches!(status, 401 | 403).then_some(self.backoff.cap())
    }

    async fn send(&self, batch: &Pending) -> Outcome {
        let body = IngestBody {
            batch_id: batch.id.clone(),
            agent_version: Some(VERSION.to_owned()),
            interval_ms: Some(self.interval_ms),
            samples: batch.samples.iter().map(WireSample::from_sample).collect(),
        };
        let resp = match self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    reason: describe(&e),
                    retry_after: None,
                }
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(backoff::parse_retry_after);
        if status.is_success() {
            return match resp.json::<IngestResponse>().await {
                Ok(r) => Outcome::Delivered(r),
                Err(e) => Outcome::Retry {
                    reason: format!(
                        "unreadable answer from the server ({status}): {}",
                        describe(&e)
                    ),
                    retry_after: None,
                },
            };
        }
        let detail = detail_of(resp).await;
        if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            Outcome::Retry {
                reason: format!("HTTP {}: {detail}", status.as_u16()),
                retry_after,
            }
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            Outcome::TooLarge
        } else {
            Outcome::Rejected {
                status: status.as_u16(),
                detail,
            }
        }
    }

    /// At shutdown: tries to deliver `unsent` (oldest first, the in-flight batch under its
    /// id) within `budget`, one attempt per batch; returns what is still unsent.
    async fn flush(&mut self, mut unsent: Vec<Sample>, budget: Duration) -> Vec<Sample> {
        let deadline = tokio::time::Instant::now() + budget;
        let mut id = self.pending.take().map(|p| p.id);
        while !unsent.is_empty() {
            let take = unsent.len().min(self.batch_max);
            let batch = Pending {
                id: id.take().unwrap_or_else(new_batch_id),
                samples: unsent[..take].to_vec(),
            };
            match tokio::time::timeout_at(deadline, self.send(&batch)).await {
                Ok(Outcome::Delivered(resp)) => {
                    add(&self.stats.delivered, take);
                    add(&self.stats.batches, 1);
                    self.stats
                        .accepted
                        .fetch_add(resp.accepted, Ordering::Relaxed);
                    unsent.drain(..take);
                }
                Ok(Outcome::Rejected { status, detail }) => {
                    // No pause: the process is stopping.
                    let _ = self.reject(status, detail, take);
                    unsent.drain(..take);
                }
                _ => break,
            }
        }
        unsent
    }
}

/// 128 random bits as hex: unique per batch without coordination.
fn new_batch_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// An error chain without the URL (reqwest puts it in `Display`; ours carries no secret,
/// but the chain is what tells "refused" from "timed out").
fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// The `detail` of an error answer (ours are `{"detail": ...}`), else its status text.
async fn detail_of(resp: reqwest::Response) -> String {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    crate::http::error::clip(&detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_urls_keep_prefixes_and_refuse_credentials() {
        let u = |s: &str| ingest_url(s).map(|u| u.to_string());
        assert_eq!(
            u("http://127.0.0.1:8000").unwrap(),
            "http://127.0.0.1:8000/ingest"
        );
        assert_eq!(u("https://h.example/").unwrap(), "https://h.example/ingest");
        assert_eq!(
            u("https://h.example/watchpost").unwrap(),
            "https://h.example/watchpost/ingest"
        );
        assert_eq!(
            u("https://h.example/watchpost/?x=1#f").unwrap(),
            "https://h.example/watchpost/ingest"
        );
        for bad in [
            "",
            "h.example",
            "ftp://h.example",
            "https://u:p@h.example",
            "unix:/x",
        ] {
            assert!(u(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_tokens_are_refused() {
        assert!(AgentConfig::new("http://127.0.0.1:1", Secret::new("  ")).is_err());
        let c = AgentConfig::new("http://127.0.0.1:1", Secret::new("abc")).unwrap();
        assert!(!format!("{c:?}").contains("abc"));
    }

    #[test]
    fn batch_ids_are_distinct_and_valid() {
        let a = new_batch_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_batch_id());
    }
}
