//! The outbox worker: claims due deliveries with a lease, sends them, records every
//! attempt, and schedules retries with back-off; the database is the queue, so a crash
//! or restart loses nothing and several replicas share the work. Attempts to one channel
//! are limited separately from the overall limit, so a slow or hung receiver cannot hold
//! up deliveries to the others.

use super::email::{parse_recipients, Mailer, SmtpConfig, SmtpTls};
use super::payload::AlertPayload;
use super::retry::RetryPolicy;
use super::webhook::{WebhookClient, WebhookTarget};
use super::{Attempt, Outcome};
use crate::alerts::Clock;
use crate::config::Settings;
use crate::store::{AttemptRecord, ClaimedDelivery, Store, StoreResult};
use crate::tasks::Stop;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// SMTP sends are bounded by six command timeouts (see `email.rs`); name resolution adds
/// up to five seconds.
const SMTP_SEND_LIMIT_SECS: u64 = 6 * 30;
const LEASE_MARGIN_SECS: u64 = 60;
/// Longest sleep between looks at the queue (other replicas queue work too).
const POLL: Duration = Duration::from_secs(1);
/// Deliveries claimed per unit of concurrency in one round.
const BATCH_PER_SLOT: usize = 4;
/// Shortest look again when a delivery is due but could not be claimed (it waits behind an
/// earlier notification about the same alert that is in flight): no busy polling.
const BLOCKED_POLL: Duration = Duration::from_millis(50);
/// Claims in one pass of the loop at most (each either fills the slots, comes back short,
/// or fills a channel that later claims skip).
const MAX_CLAIMS_PER_PASS: usize = 16;

pub struct Notifier {
    store: Arc<dyn Store>,
    webhooks: WebhookClient,
    mailer: Option<Mailer>,
    policy: RetryPolicy,
    worker_id: String,
    seq: AtomicU64,
    concurrency: usize,
    /// Attempts in flight to one channel at most.
    channel_concurrency: usize,
    /// Longest random wait before the first round when deliveries are due at start-up.
    startup_jitter: Duration,
    /// How long a claim holds a delivery: longer than any attempt can take, so only a
    /// dead worker's deliveries are ever taken over by another.
    lease_ms: i64,
    clock: Arc<dyn Clock>,
}

/// The SMTP settings, if email is configured.
pub fn smtp_config(s: &Settings) -> Option<SmtpConfig> {
    let host = s.alert_smtp_host.clone()?;
    let tls = match s.alert_smtp_tls.as_str() {
        "starttls" => SmtpTls::StartTls,
        "tls" => SmtpTls::Tls,
        "none" => SmtpTls::None,
        _ => SmtpTls::Auto,
    };
    Some(SmtpConfig {
        host,
        port: s.alert_smtp_port,
        user: s.alert_smtp_user.clone(),
        password: s.alert_smtp_pass.as_ref().map(|p| p.expose().to_owned()),
        from: s.alert_from.clone().unwrap_or_default(),
        tls,
        timeout: Duration::from_secs(30),
    })
}

/// The longest one attempt can take, seconds: the webhook timeout, or the SMTP bound when
/// email is configured (without it an email attempt fails at once).
pub fn attempt_limit_secs(s: &Settings) -> u64 {
    if s.alert_smtp_host.is_some() {
        s.webhook_timeout_secs.max(SMTP_SEND_LIMIT_SECS)
    } else {
        s.webhook_timeout_secs
    }
}

/// How long a claim holds a delivery, milliseconds: `notify_lease_secs`, or by default
/// longer than any attempt can take plus a minute for recording it, so only a dead
/// worker's deliveries are ever taken over by another.
pub fn lease_ms(s: &Settings) -> i64 {
    let secs = if s.notify_lease_secs > 0 {
        s.notify_lease_secs
    } else {
        s.webhook_timeout_secs.max(SMTP_SEND_LIMIT_SECS) + 5 + LEASE_MARGIN_SECS
    };
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// A random wait in `0..=max` (whole milliseconds).
pub fn startup_delay(max: Duration, rng: &mut impl rand::Rng) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.gen_range(0..=max_ms))
}

pub fn retry_policy(s: &Settings) -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_secs_f64(s.alert_webhook_backoff),
        retries: s.alert_webhook_retries,
        cap: RetryPolicy::DEFAULT.cap,
    }
}

impl Notifier {
    pub fn new(
        store: Arc<dyn Store>,
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let mailer = match smtp_config(settings) {
            Some(cfg) => Some(Mailer::new(&cfg).map_err(|e| anyhow::anyhow!("SMTP: {e}"))?),
            None => None,
        };
        let host = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let nonce: u32 = rand::random();
        Ok(Self {
            store,
            webhooks: WebhookClient::new(
                Duration::from_secs(settings.webhook_timeout_secs),
                settings.allow_private_webhooks,
            )?,
            mailer,
            policy: retry_policy(settings),
            worker_id: format!("{host}:{}:{nonce:08x}", std::process::id()),
            seq: AtomicU64::new(0),
            concurrency: settings.notify_concurrency.max(1),
            channel_concurrency: settings.notify_channel_concurrency.max(1),
            startup_jitter: Duration::from_millis(settings.notify_startup_jitter_ms),
            lease_ms: lease_ms(settings),
            clock,
        })
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// A token per claim: attempts are only recorded against the lease they hold.
    fn next_token(&self) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{}#{seq}", self.worker_id)
    }

    /// One round (for tests and tools; the service uses [`Notifier::run`]): claim due
    /// deliveries (a few per unit of concurrency), send them within the overall and the
    /// per-channel limits, then record every outcome in one transaction. Returns how many
    /// were handled. A crash mid-round re-sends the round's deliveries (under the same
    /// webhook-ids) once their leases expire.
    pub async fn step(&self) -> StoreResult<usize> {
        let token = self.next_token();
        let now = self.clock.now_ms();
        let batch = i64::try_from(self.concurrency.saturating_mul(BATCH_PER_SLOT)).unwrap_or(32);
        let claimed = self
            .store
            .claim_deliveries(&token, now, self.lease_ms, batch)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        // An attempt takes its channel's slot before an overall one, so waiting for a busy
        // channel never holds a slot another channel could use. The semaphores are never
        // closed; should acquiring fail anyway, the attempt goes ahead unlimited.
        let overall = Semaphore::new(self.concurrency);
        let mut per_channel: HashMap<i64, Semaphore> = HashMap::new();
        for d in &claimed {
            per_channel
                .entry(d.channel_id)
                .or_insert_with(|| Semaphore::new(self.channel_concurrency));
        }
        let records: Vec<AttemptRecord> =
            futures_util::future::join_all(claimed.iter().map(|d| async {
                let _channel = match per_channel.get(&d.channel_id) {
                    Some(sem) => sem.acquire().await.ok(),
                    None => None,
                };
                let _slot = overall.acquire().await.ok();
                self.attempt(d, &token).await
            }))
            .await;
        let held = self.store.record_attempts(&records).await?;
        if held < records.len() {
            tracing::warn!(
                lost = records.len() - held,
                "leases lost before attempts were recorded; other workers own those deliveries now"
            );
        }
        Ok(records.len())
    }

    async fn attempt(&self, d: &ClaimedDelivery, token: &str) -> AttemptRecord {
        let started_at = self.clock.now_ms();
        let attempt = self.send(d, started_at).await;
        let record = self.record_for(d, token, started_at, attempt);
        log_attempt(d, &record);
        record
    }

    async fn send(&self, d: &ClaimedDelivery, now: i64) -> Attempt {
        let fail = |error: &str| Attempt {
            outcome: Outcome::Permanent {
                status: None,
                error: error.to_owned(),
            },
            duration_ms: 0,
        };
        if !d.channel_enabled {
            return fail("channel is disabled");
        }
        match d.kind.as_str() {
            "webhook" => {
                let Some(secret) = d
                    .secret
                    .as_deref()
                    .and_then(|s| super::sign::parse_secret(s).ok())
                else {
                    return fail("channel has no valid signing secret");
                };
                let target = WebhookTarget {
                    url: &d.target,
                    secret: &secret,
                    trusted: d.source == "env",
                };
                self.webhooks
                    .send(
                        &target,
                        &d.message_id,
                        d.payload.as_bytes(),
                        now.div_euclid(1000),
                    )
                    .await
            }
            "email" => {
                let Some(mailer) = &self.mailer else {
                    return Attempt {
                        outcome: Outcome::Retry {
                            status: None,
                            error: "email is not configured on this server (ALERT_SMTP_HOST)"
                                .into(),
                            retry_after: None,
                        },
                        duration_ms: 0,
                    };
                };
                let to = match parse_recipients(&d.target) {
                    Ok(to) => to,
                    Err(e) => return fail(&format!("invalid recipients: {e}")),
                };
                let payload: AlertPayload = match serde_json::from_str(&d.payload) {
                    Ok(p) => p,
                    Err(e) => return fail(&format!("unreadable payload: {e}")),
                };
                let (subject, text, html) = payload.email();
                mailer.send(&to, &subject, &text, &html).await
            }
            other => fail(&format!("unknown channel kind {other:?}")),
        }
    }

    fn record_for(
        &self,
        d: &ClaimedDelivery,
        token: &str,
        started_at: i64,
        a: Attempt,
    ) -> AttemptRecord {
        let mut r = AttemptRecord {
            delivery_id: d.id,
            worker: token.to_owned(),
            started_at,
            duration_ms: a.duration_ms,
            status: None,
            error: None,
            outcome: String::new(),
            next_attempt_at: None,
            disable_channel: None,
        };
        match a.outcome {
            Outcome::Delivered { status } => {
                r.status = status.map(i64::from);
                r.outcome = "delivered".into();
            }
            Outcome::Retry {
                status,
                error,
                retry_after,
            } => {
                r.status = status.map(i64::from);
                let made = u32::try_from(d.attempts).unwrap_or(u32::MAX);
                if made >= self.policy.max_attempts() {
                    r.error = Some(format!("{error} (gave up after {made} attempts)"));
                    r.outcome = "dead".into();
                } else {
                    let delay =
                        self.policy
                            .next_delay(made.max(1), retry_after, &mut rand::thread_rng());
                    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                    r.error = Some(error);
                    r.outcome = "retry".into();
                    r.next_attempt_at = Some(
                        started_at
                            .saturating_add(a.duration_ms)
                            .saturating_add(delay_ms),
                    );
                }
            }
            Outcome::Permanent { status, error } => {
                r.status = status.map(i64::from);
                r.error = Some(error);
                r.outcome = "dead".into();
            }
            Outcome::Gone { status } => {
                r.status = Some(i64::from(status));
                r.error = Some("receiver answered 410 Gone; channel disabled".into());
                r.outcome = "gone".into();
                r.disable_channel = Some(format!(
                    "the receiver answered 410 Gone at {}",
                    crate::domain::format_rfc3339(started_at)
                ));
            }
        }
        r
    }

    /// Works the queue until stopped. Attempts run side by side, at most
    /// `notify_concurrency` in all and `notify_channel_concurrency` per channel; each one
    /// is recorded as soon as it ends (together with any others that ended meanwhile, in
    /// one transaction), and its slot is refilled at once. Claims skip the channels that
    /// are at their limit, so a hung receiver holds only its own slots. Idle, the worker
    /// looks again when woken (an alert was queued here), when the next delivery falls
    /// due, or at least every second (other replicas queue work too). On stop it makes no
    /// new attempts, gives back what it claimed but did not start, and waits for the
    /// attempts in flight (bounded by the transport timeouts) to record them.
    pub async fn run(self, wake: Arc<Notify>, mut stop: Stop) {
        if !self.startup_wait(&mut stop).await {
            tracing::debug!("notifier stopped");
            return;
        }
        let mut pool = Pool::new(self.channel_concurrency);
        let mut failures = 0u32;
        loop {
            // Everything that has finished, recorded together.
            let stopping = stop.is_stopped();
            let mut done = std::mem::take(&mut pool.finished_records);
            while let Some(Some((channel, record))) = pool.flight.next().now_or_never() {
                if stopping {
                    pool.busy_down(channel);
                } else {
                    self.finished(&mut pool, channel);
                }
                done.push(record);
            }
            self.record(&done).await;

            if stopping {
                self.release_parked(&mut pool).await;
                match pool.flight.next().await {
                    Some((channel, record)) => {
                        pool.busy_down(channel);
                        pool.finished_records.push(record);
                        continue;
                    }
                    None => break,
                }
            }

            // Claim until every slot is taken or nothing more is claimable. A claim that
            // parked some deliveries (their channel filled up) leaves slots free for the
            // other channels, which the next claim (skipping the full ones) can use.
            let mut pause = POLL;
            for _ in 0..MAX_CLAIMS_PER_PASS {
                let free = self.concurrency.saturating_sub(pool.flight.len());
                if free == 0 {
                    // The next event is a finished attempt.
                    pause = POLL;
                    break;
                }
                match self.claim_into(&mut pool, free).await {
                    Ok(got) if got < free => {
                        failures = 0;
                        pause = self.idle_pause(&pool.full_channels()).await;
                        break;
                    }
                    Ok(_) => {
                        failures = 0;
                        // Perhaps more: look again without sleeping.
                        pause = Duration::ZERO;
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        if failures == 1 || failures.is_multiple_of(60) {
                            tracing::warn!(error = %e, failures, "notifier round failed");
                        }
                        pause = POLL;
                        break;
                    }
                }
            }
            tokio::select! {
                Some((channel, record)) = pool.flight.next(), if !pool.flight.is_empty() => {
                    self.finished(&mut pool, channel);
                    pool.finished_records.push(record);
                }
                () = wake.notified() => {}
                _ = stop.sleep(pause) => {}
            }
        }
        tracing::debug!("notifier stopped");
    }

    /// Before the first round: if deliveries are already due (a restart with a backlog,
    /// perhaps several replicas restarting together), wait a random moment up to
    /// `notify_startup_jitter_ms` so their first attempts are spread out. False if
    /// stopped meanwhile.
    async fn startup_wait(&self, stop: &mut Stop) -> bool {
        if self.startup_jitter.is_zero() {
            return true;
        }
        let due_now = matches!(
            self.store.next_delivery_due(&[]).await,
            Ok(Some(due)) if due <= self.clock.now_ms()
        );
        if !due_now {
            return true;
        }
        let wait = startup_delay(self.startup_jitter, &mut rand::thread_rng());
        tracing::info!(
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "deliveries are due at start-up; the first round waits a random moment"
        );
        stop.sleep(wait).await
    }

    /// Claims up to `free` due deliveries of channels below their limit, starts those
    /// whose channel has room and parks the rest (a claim can return more for one channel
    /// than it has room for). Returns how many were claimed.
    async fn claim_into<'a>(&'a self, pool: &mut Pool<'a>, free: usize) -> StoreResult<usize> {
        let token = self.next_token();
        let skip = pool.full_channels();
        let claimed = self
            .store
            .claim_deliveries_skipping(
                &token,
                self.clock.now_ms(),
                self.lease_ms,
                i64::try_from(free).unwrap_or(i64::MAX),
                &skip,
            )
            .await?;
        let got = claimed.len();
        for d in claimed {
            if pool.has_room(d.channel_id) {
                self.start(pool, d, token.clone());
            } else {
                pool.parked
                    .entry(d.channel_id)
                    .or_default()
                    .push_back((d, token.clone()));
            }
        }
        Ok(got)
    }

    fn start<'a>(&'a self, pool: &mut Pool<'a>, d: ClaimedDelivery, token: String) {
        *pool.busy.entry(d.channel_id).or_default() += 1;
        pool.flight.push(Box::pin(async move {
            let record = self.attempt(&d, &token).await;
            (d.channel_id, record)
        }));
    }

    /// An attempt to `channel` ended: its slot goes to a parked delivery of the same
    /// channel, if any.
    fn finished<'a>(&'a self, pool: &mut Pool<'a>, channel: i64) {
        pool.busy_down(channel);
        let next = pool.parked.get_mut(&channel).and_then(VecDeque::pop_front);
        if pool.parked.get(&channel).is_some_and(VecDeque::is_empty) {
            pool.parked.remove(&channel);
        }
        if let Some((d, token)) = next {
            self.start(pool, d, token);
        }
    }

    /// How long to wait when nothing more could be claimed: until the next delivery of a
    /// channel with room falls due, at most `POLL`.
    async fn idle_pause(&self, full_channels: &[i64]) -> Duration {
        match self.store.next_delivery_due(full_channels).await {
            Ok(Some(due)) => {
                let wait = due.saturating_sub(self.clock.now_ms());
                if wait <= 0 {
                    // Due but not claimable: it waits behind an earlier notification about
                    // the same alert, or another worker just took it.
                    BLOCKED_POLL
                } else {
                    POLL.min(Duration::from_millis(
                        u64::try_from(wait).unwrap_or(0).max(5),
                    ))
                }
            }
            Ok(None) | Err(_) => POLL,
        }
    }

    /// Records finished attempts in one transaction. If that fails the deliveries stay
    /// claimed and are sent again (same webhook-ids) once their leases run out.
    async fn record(&self, records: &[AttemptRecord]) {
        if records.is_empty() {
            return;
        }
        match self.store.record_attempts(records).await {
            Ok(held) if held < records.len() => tracing::warn!(
                lost = records.len() - held,
                "leases lost before attempts were recorded; other workers own those deliveries now"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                error = %e,
                attempts = records.len(),
                "recording delivery attempts failed; they are retried when their leases run out"
            ),
        }
    }

    /// Gives parked (claimed, never started) deliveries back to the queue, so a restart
    /// or another replica need not wait for their leases to run out.
    async fn release_parked(&self, pool: &mut Pool<'_>) {
        let claims: Vec<(i64, String)> = pool
            .parked
            .drain()
            .flat_map(|(_, queue)| queue.into_iter().map(|(d, token)| (d.id, token)))
            .collect();
        if claims.is_empty() {
            return;
        }
        if let Err(e) = self.store.release_deliveries(&claims).await {
            tracing::warn!(error = %e, deliveries = claims.len(), "releasing unsent deliveries failed; they are retried when their leases run out");
        }
    }
}

/// One attempt in flight: its channel and what came of it.
type InFlight<'a> = BoxFuture<'a, (i64, AttemptRecord)>;

/// The worker's attempts in flight, per-channel counts, and deliveries claimed for a
/// channel that was at its limit (started as soon as one of its attempts ends).
struct Pool<'a> {
    flight: FuturesUnordered<InFlight<'a>>,
    busy: HashMap<i64, usize>,
    parked: HashMap<i64, VecDeque<(ClaimedDelivery, String)>>,
    /// Finished attempts not recorded yet.
    finished_records: Vec<AttemptRecord>,
    per_channel: usize,
}

impl Pool<'_> {
    fn new(per_channel: usize) -> Self {
        Self {
            flight: FuturesUnordered::new(),
            busy: HashMap::new(),
            parked: HashMap::new(),
            finished_records: Vec::new(),
            per_channel,
        }
    }

    fn has_room(&self, channel: i64) -> bool {
        self.busy.get(&channel).copied().unwrap_or(0) < self.per_channel
    }

    fn busy_down(&mut self, channel: i64) {
        if let Some(n) = self.busy.get_mut(&channel) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.busy.remove(&channel);
            }
        }
    }

    /// Channels at their limit, which claims skip.
    fn full_channels(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .busy
            .iter()
            .filter(|(_, &n)| n >= self.per_channel)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// The body of a "send test notification": the alert fields, marked as a test.
pub fn test_payload(channel_name: &str, now: i64) -> serde_json::Value {
    let ts = crate::domain::format_rfc3339(now);
    serde_json::json!({
        "type": "test",
        "value": 0.0,
        "ts": ts,
        "generated_at": ts,
        "status": "firing",
        "event": "test",
        "threshold": 0.0,
        "comparison": ">",
        "rule": format!("test notification for channel {channel_name}"),
        "rule_id": null,
        "host": crate::collect::local_hostname(),
        "severity": "warning",
        "alert_id": null,
        "started_at": ts,
        "resolved_at": null,
        "peak": 0.0,
    })
}

fn log_attempt(d: &ClaimedDelivery, record: &AttemptRecord) {
    let error = record.error.as_deref().unwrap_or("");
    match record.outcome.as_str() {
        "delivered" => tracing::info!(
            delivery = d.id, message_id = %d.message_id, channel = d.channel_id, event = %d.event,
            attempt = d.attempts, status = record.status, ms = record.duration_ms, "notification delivered"
        ),
        "retry" => tracing::warn!(
            delivery = d.id, message_id = %d.message_id, channel = d.channel_id, attempt = d.attempts,
            status = record.status, error,
            retry_in_ms = record.next_attempt_at.map(|t| t - record.started_at), "notification failed; will retry"
        ),
        _ => tracing::error!(
            delivery = d.id, message_id = %d.message_id, channel = d.channel_id, attempt = d.attempts,
            outcome = %record.outcome, status = record.status, error, "notification dead-lettered"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_delays_stay_within_the_bound() {
        let mut rng = rand::thread_rng();
        let max = Duration::from_millis(1000);
        let delays: Vec<Duration> = (0..500).map(|_| startup_delay(max, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= max), "{delays:?}");
        // Spread out, not one fixed value (500 draws from 1001 values).
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "{}", distinct.len());
        assert_eq!(startup_delay(Duration::ZERO, &mut rng), Duration::ZERO);
    }

    #[test]
    fn leases_outlast_attempts() {
        let mut s = Settings::default();
        // Derived: the longest attempt (SMTP's bound) plus five seconds and a minute.
        assert_eq!(lease_ms(&s), (180 + 5 + 60) * 1000);
        assert_eq!(attempt_limit_secs(&s), 10);
        s.alert_smtp_host = Some("mail.example.com".into());
        assert_eq!(attempt_limit_secs(&s), 180);
        s.notify_lease_secs = 200;
        assert_eq!(lease_ms(&s), 200_000);
        // Validation keeps an explicit lease longer than an attempt.
        s.alert_from = Some("watchpost@example.com".into());
        assert!(s.validate().is_ok());
        s.notify_lease_secs = 184;
        assert!(s.validate().is_err());
        s.alert_smtp_host = None;
        s.webhook_timeout_secs = 1;
        s.notify_lease_secs = 6;
        assert!(s.validate().is_ok());
        s.notify_lease_secs = 5;
        assert!(s.validate().is_err());
        s.notify_lease_secs = 0;
        s.notify_channel_concurrency = 0;
        assert!(s.validate().is_err());
        s.notify_channel_concurrency = 1;
        s.notify_startup_jitter_ms = 60_001;
        assert!(s.validate().is_err());
    }

    #[test]
    fn pool_counts_slots_per_channel() {
        let mut pool = Pool::new(2);
        assert!(pool.has_room(7));
        *pool.busy.entry(7).or_default() += 2;
        *pool.busy.entry(3).or_default() += 1;
        *pool.busy.entry(1).or_default() += 2;
        assert!(!pool.has_room(7));
        assert!(pool.has_room(3));
        assert_eq!(pool.full_channels(), vec![1, 7]);
        pool.busy_down(7);
        assert!(pool.has_room(7));
        pool.busy_down(7);
        pool.busy_down(7);
        assert!(!pool.busy.contains_key(&7), "an idle channel is forgotten");
        assert_eq!(pool.full_channels(), vec![1]);
    }
}
