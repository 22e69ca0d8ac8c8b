//! The local collector: sample, store, evaluate thresholds, once per interval.

use super::alerting::AlertEngine;
use super::Stop;
use crate::alerts::Clock;
use crate::collect::Collector;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

pub struct CollectorTask {
    store: Arc<dyn Store>,
    collector: Collector,
    engine: AlertEngine,
    host_id: i64,
    clock: Arc<dyn Clock>,
}

impl CollectorTask {
    pub async fn new(
        store: Arc<dyn Store>,
        host_id: i64,
        clock: Arc<dyn Clock>,
        wake: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<Self> {
        let engine = AlertEngine::for_host(store.clone(), host_id)
            .await?
            .with_wake(wake);
        Ok(Self {
            store,
            collector: Collector::new()?,
            engine,
            host_id,
            clock,
        })
    }

    /// Counts the engine's evaluations in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::prom::Metrics>) -> Self {
        self.engine.set_metrics(metrics);
        self
    }

    /// One tick: take a sample, store it, evaluate it.
    pub async fn step(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let sample = self.collector.sample(self.host_id, now);
        self.store
            .insert_samples(std::slice::from_ref(&sample))
            .await?;
        self.engine
            .observe(std::slice::from_ref(&sample), now)
            .await?;
        Ok(())
    }

    pub async fn run(mut self, interval: Duration, mut stop: Stop) {
        let mut failures = 0u32;
        // CPU usage is a difference between two readings: wait one period for the first.
        if !stop.sleep(interval).await {
            return;
        }
        loop {
            let started = tokio::time::Instant::now();
            match self.step().await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    // Log the first failure and then every 60th, not one line per second.
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::warn!(error = %e, failures, "collector tick failed");
                    }
                }
            }
            let next = interval.saturating_sub(started.elapsed());
            if !stop.sleep(next).await {
                break;
            }
        }
        tracing::debug!("collector stopped");
    }
}
