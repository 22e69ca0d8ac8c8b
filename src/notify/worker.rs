//! The outbox worker: claims due deliveries with a lease, sends them, records every
//! attempt, and schedules retries with back-off; the database is the queue, so a crash
//! or restart loses nothing and several replicas share the work.

use super::email::{parse_recipients, Mailer, SmtpConfig, SmtpTls};
use super::payload::AlertPayload;
use super::retry::RetryPolicy;
use super::webhook::{WebhookClient, WebhookTarget};
use super::{Attempt, Outcome};
use crate::alerts::Clock;
use crate::config::Settings;
use crate::store::{AttemptRecord, ClaimedDelivery, Store, StoreResult};
use crate::tasks::Stop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// SMTP sends are bounded by six command timeouts (see `email.rs`); name resolution adds
/// up to five seconds.
const SMTP_SEND_LIMIT_SECS: u64 = 6 * 30;
const LEASE_MARGIN_SECS: u64 = 60;
/// Longest sleep between looks at the queue (other replicas queue work too).
const POLL: Duration = Duration::from_secs(1);
/// Deliveries claimed per unit of concurrency in one round.
const BATCH_PER_SLOT: usize = 4;

pub struct Notifier {
    store: Arc<dyn Store>,
    webhooks: WebhookClient,
    mailer: Option<Mailer>,
    policy: RetryPolicy,
    worker_id: String,
    seq: AtomicU64,
    concurrency: usize,
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
            concurrency: settings.notify_concurrency,
            lease_ms: i64::try_from(
                (settings.webhook_timeout_secs.max(SMTP_SEND_LIMIT_SECS) + 5 + LEASE_MARGIN_SECS)
                    * 1000,
            )
            .unwrap_or(i64::MAX),
            clock,
        })
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// One round: claim due deliveries (a few per unit of concurrency), send them with
    /// bounded concurrency, then record every outcome in one transaction. Returns how
    /// many were handled. Recording the batch at once costs one sync to disk instead of
    /// one per delivery; the price is that a crash mid-batch re-sends the whole batch
    /// (under the same webhook-ids) once its lease expires.
    pub async fn step(&self) -> StoreResult<usize> {
        use futures_util::StreamExt;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        // A token per claim: attempts are only recorded against the lease they hold.
        let token = format!("{}#{seq}", self.worker_id);
        let now = self.clock.now_ms();
        let batch = i64::try_from(self.concurrency.saturating_mul(BATCH_PER_SLOT)).unwrap_or(32);
        let claimed = self
            .store
            .claim_deliveries(&token, now, self.lease_ms, batch)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let attempts: Vec<_> = claimed.iter().map(|d| self.attempt(d, &token)).collect();
        let records: Vec<AttemptRecord> = futures_util::stream::iter(attempts)
            .buffer_unordered(self.concurrency)
            .collect()
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

    /// Works the queue until stopped: right away when woken (an alert was queued here),
    /// else when the next delivery falls due, looking at least every second.
    pub async fn run(self, wake: Arc<Notify>, mut stop: Stop) {
        let mut failures = 0u32;
        loop {
            match self.step().await {
                // More may be due; a backlog must not hold up shutdown, though.
                Ok(n) if n > 0 && !stop.is_stopped() => {
                    failures = 0;
                    continue;
                }
                Ok(_) if stop.is_stopped() => break,
                Ok(_) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::warn!(error = %e, failures, "notifier round failed");
                    }
                }
            }
            let mut pause = POLL;
            if failures == 0 {
                if let Ok(Some(due)) = self.store.next_delivery_due().await {
                    let wait = u64::try_from(due - self.clock.now_ms()).unwrap_or(0);
                    pause = pause.min(Duration::from_millis(wait.max(5)));
                }
            }
            tokio::select! {
                () = wake.notified() => {}
                ok = stop.sleep(pause) => {
                    if !ok {
                        break;
                    }
                }
            }
        }
        tracing::debug!("notifier stopped");
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
