//! Alert evaluation for agent hosts, on exactly one replica: the holder of a database
//! lease reads the samples agents pushed (through any replica) and judges their silence.
//!
//! Every round commits the rule changes, the lease renewal and the per-host cursors in
//! one transaction that only succeeds while this replica still holds the lease. A replica
//! that stops renewing (it died, or its database connection did) loses the lease after
//! `ttl`; another takes it over and resumes from the committed cursors, so no sample is
//! judged twice and no alert is owned by two replicas.

use super::alerting::AlertEngine;
use super::Stop;
use crate::store::{Fence, Sample, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub const LEASE: &str = "agent-alerts";
/// Samples older than this when first seen (an agent emptying its spool after a long
/// outage) are stored and charted but not judged: alerting on the past would page
/// someone about a spike that is long over.
pub const MAX_LAG_MS: i64 = 10 * 60_000;
/// Rows judged per round; a backlog is worked off over the next rounds.
pub const ROUND_LIMIT: i64 = 20_000;

/// How often the holder evaluates, how long its lease lasts without renewal, and how
/// often a follower checks whether the lease has become free.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub round: Duration,
    pub ttl: Duration,
    pub follower_poll: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            round: Duration::from_secs(1),
            ttl: Duration::from_secs(10),
            follower_poll: Duration::from_secs(2),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Another replica holds the lease.
    Follower,
    /// This replica holds it and judged `samples` samples.
    Leader { samples: usize, changes: usize },
    /// This replica held it but lost it before committing: nothing was written.
    LostLease,
}

pub struct AgentAlerts {
    store: Arc<dyn Store>,
    holder: String,
    ttl_ms: i64,
    default_interval_ms: i64,
    engine: Option<AlertEngine>,
    wake: Option<Arc<Notify>>,
    metrics: Option<Arc<crate::prom::Metrics>>,
}

impl AgentAlerts {
    /// `holder` names this replica in the lease row (unique per process).
    pub fn new(
        store: Arc<dyn Store>,
        holder: String,
        ttl: Duration,
        default_interval_ms: i64,
    ) -> Self {
        Self {
            store,
            holder,
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            default_interval_ms,
            engine: None,
            wake: None,
            metrics: None,
        }
    }

    pub fn with_wake(mut self, wake: Arc<Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<crate::prom::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn is_leader(&self) -> bool {
        self.engine.is_some()
    }

    /// One round at `now`: take the lease if it is free, then (as holder) judge what
    /// agents sent since the last committed round and how long each has been silent.
    pub async fn step(&mut self, now: i64) -> anyhow::Result<Round> {
        let round = self.round(now).await;
        if let Some(m) = &self.metrics {
            m.set_lease_held(LEASE, self.engine.is_some());
        }
        round
    }

    async fn round(&mut self, now: i64) -> anyhow::Result<Round> {
        let engine = match self.engine.as_mut() {
            Some(engine) => engine,
            None => {
                if !self
                    .store
                    .try_lease(LEASE, &self.holder, now, self.ttl_ms)
                    .await?
                {
                    return Ok(Round::Follower);
                }
                // The engine starts from what the previous holder committed.
                let mut engine =
                    AlertEngine::for_agents(self.store.clone(), self.default_interval_ms).await?;
                if let Some(w) = &self.wake {
                    engine = engine.with_wake(w.clone());
                }
                if let Some(m) = &self.metrics {
                    engine.set_metrics(m.clone());
                }
                tracing::info!(holder = %self.holder, "took the agent-alerting lease");
                self.engine.insert(engine)
            }
        };
        let samples = self
            .store
            .unevaluated_agent_samples(now.saturating_sub(MAX_LAG_MS), ROUND_LIMIT)
            .await?;
        let fence = Fence {
            lease: LEASE.to_owned(),
            holder: self.holder.clone(),
            expires_at: now.saturating_add(self.ttl_ms),
            cursors: cursors(&samples),
        };
        match engine.observe_fenced(&samples, fence, now).await? {
            Some(changes) => Ok(Round::Leader {
                samples: samples.len(),
                changes: changes.len(),
            }),
            None => {
                tracing::warn!(holder = %self.holder, "lost the agent-alerting lease; another replica evaluates agent hosts now");
                self.engine = None;
                Ok(Round::LostLease)
            }
        }
    }

    /// Gives the lease up so another replica takes over at once (on shutdown).
    pub async fn release(&mut self) {
        if self.engine.take().is_some() {
            if let Err(e) = self.store.release_lease(LEASE, &self.holder).await {
                tracing::warn!(error = %e, "could not release the agent-alerting lease");
            }
        }
    }

    pub async fn run(mut self, timing: Timing, mut stop: Stop) {
        loop {
            let pause = match self.step(crate::domain::now_ms()).await {
                // A full round means a backlog: go on at once.
                Ok(Round::Leader { samples, .. }) if samples as i64 >= ROUND_LIMIT => {
                    Duration::ZERO
                }
                Ok(Round::Leader { .. }) => timing.round,
                Ok(Round::Follower | Round::LostLease) => timing.follower_poll,
                Err(e) => {
                    tracing::warn!(error = %e, "agent alert evaluation failed; retrying");
                    timing.round
                }
            };
            if !stop.sleep(pause).await {
                break;
            }
        }
        self.release().await;
    }
}

/// The newest sample time per host among `samples`.
fn cursors(samples: &[Sample]) -> Vec<(i64, i64)> {
    let mut newest: HashMap<i64, i64> = HashMap::new();
    for s in samples {
        let e = newest.entry(s.host_id).or_insert(s.ts);
        *e = (*e).max(s.ts);
    }
    let mut out: Vec<(i64, i64)> = newest.into_iter().collect();
    out.sort_unstable();
    out
}

/// A lease holder name unique to this process: host, pid and a random suffix (a pid
/// alone repeats across containers).
pub fn holder_name(host: &str) -> String {
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}
