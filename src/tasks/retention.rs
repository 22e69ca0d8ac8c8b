//! Retention: deletes raw samples and rollup buckets older than their tier's retention, in
//! small batches, on one replica at a time (the holder of the `retention` lease).

use super::Stop;
use crate::config::RetentionSettings;
use crate::store::{Store, Tier};
use std::sync::Arc;
use std::time::Duration;

/// Rows deleted per tier by one `step`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub raw: u64,
    pub minute: u64,
    pub hour: u64,
}

impl RetentionReport {
    pub fn total(&self) -> u64 {
        self.raw + self.minute + self.hour
    }
}

/// Deletes, in every tier with a retention, the rows stamped before `now_ms` minus that
/// retention (a row exactly at the cutoff stays). Each DELETE removes at most
/// `cfg.batch_rows` rows and commits on its own, with a pause between them, so no lock is
/// held for long and writers get in between batches. Plain deletes by age: two replicas
/// running this at once only share the work.
pub async fn step(
    store: &dyn Store,
    now_ms: i64,
    cfg: &RetentionSettings,
) -> anyhow::Result<RetentionReport> {
    let mut report = RetentionReport::default();
    let limit = i64::try_from(cfg.batch_rows.max(1)).unwrap_or(i64::MAX);
    for (tier, keep) in [
        (Tier::Raw, cfg.raw),
        (Tier::Minute, cfg.minute),
        (Tier::Hour, cfg.hour),
    ] {
        let Some(keep_ms) = keep.as_ms() else {
            continue;
        };
        let cutoff = now_ms.saturating_sub(keep_ms);
        let mut deleted = 0;
        loop {
            let n = store.delete_samples_before(tier, cutoff, limit).await?;
            deleted += n;
            // A short batch means nothing older is left (or another replica took it).
            if n < limit.unsigned_abs() {
                break;
            }
            tokio::time::sleep(cfg.pause).await;
        }
        if deleted > 0 {
            tracing::info!(
                tier = tier.name(),
                deleted,
                cutoff,
                "retention deleted old rows"
            );
        }
        match tier {
            Tier::Raw => report.raw = deleted,
            Tier::Minute => report.minute = deleted,
            Tier::Hour => report.hour = deleted,
        }
    }
    Ok(report)
}

/// How soon after start-up the first pass runs: soon, but not in the middle of start-up.
const FIRST_PASS: Duration = Duration::from_secs(30);
/// Between passes: rows are at most this much late in going.
const PERIOD: Duration = Duration::from_secs(300);
/// The lease that makes one replica at a time run the passes.
pub const LEASE: &str = "retention";
/// The holder renews with every pass; if it dies, another replica's next pass after this
/// long takes over.
const LEASE_TTL: Duration = Duration::from_secs(2 * 300 + 60);

/// Runs `step` every `PERIOD` while this process (`holder`) holds the retention lease.
pub async fn run(
    store: Arc<dyn Store>,
    cfg: RetentionSettings,
    holder: String,
    metrics: Arc<crate::prom::Metrics>,
    mut stop: Stop,
) {
    let ttl_ms = i64::try_from(LEASE_TTL.as_millis()).unwrap_or(i64::MAX);
    let mut held = false;
    let mut wait = FIRST_PASS;
    while stop.sleep(wait).await {
        wait = PERIOD;
        let now = crate::domain::now_ms();
        match store.try_lease(LEASE, &holder, now, ttl_ms).await {
            Ok(h) => {
                if h && !held {
                    tracing::info!(%holder, "took the retention lease");
                }
                held = h;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not take or renew the retention lease");
                continue;
            }
        }
        metrics.set_lease_held(LEASE, held);
        if !held {
            continue;
        }
        // A long first pass (a backlog of months) must not hold up shutdown: every batch
        // commits on its own, so stopping between or even inside one loses nothing.
        let pass = step(store.as_ref(), now, &cfg);
        tokio::select! {
            result = pass => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "retention step failed");
                }
            }
            () = stop.stopped() => break,
        }
    }
    if held {
        // Handed over at once rather than after the TTL.
        if let Err(e) = store.release_lease(LEASE, &holder).await {
            tracing::warn!(error = %e, "could not release the retention lease");
        }
    }
}
