//! Applies the threshold state machine to samples and persists what it decides.

use crate::alerts::{EpisodeKey, Evaluator, ThresholdRule, Transition};
use crate::store::{AlertResolution, NewAlert, Sample, Store, StoreResult};
use std::sync::Arc;

pub struct AlertEngine {
    store: Arc<dyn Store>,
    evaluator: Evaluator,
}

impl AlertEngine {
    /// Resumes from the open episodes in the store.
    pub async fn new(store: Arc<dyn Store>) -> StoreResult<Self> {
        let open = store.open_alerts().await?;
        Ok(Self {
            store,
            evaluator: Evaluator::resume(&open),
        })
    }

    /// The global thresholds plus every user's own.
    pub async fn rules(&self) -> StoreResult<Vec<ThresholdRule>> {
        let mut rules = vec![ThresholdRule {
            owner: None,
            thresholds: self.store.global_thresholds().await?,
        }];
        rules.extend(
            self.store
                .all_user_thresholds()
                .await?
                .into_iter()
                .map(|(id, t)| ThresholdRule {
                    owner: Some(id),
                    thresholds: t,
                }),
        );
        Ok(rules)
    }

    /// Evaluates samples (already stored) in order at time `now`; returns the transitions
    /// that were persisted. If persisting fails, fired episodes are forgotten so the next
    /// breaching sample raises them again rather than losing the alert.
    pub async fn observe(&mut self, samples: &[Sample], now: i64) -> StoreResult<Vec<Transition>> {
        let rules = self.rules().await?;
        let mut all = Vec::new();
        for s in samples {
            all.extend(self.evaluator.evaluate(s, &rules, now));
        }
        if all.is_empty() {
            return Ok(all);
        }
        let mut opens: Vec<(EpisodeKey, NewAlert)> = Vec::new();
        let mut resolves = Vec::new();
        for t in &all {
            match *t {
                Transition::Fire {
                    key,
                    value,
                    threshold,
                    ts,
                } => opens.push((
                    key,
                    NewAlert {
                        host_id: key.host_id,
                        owner_id: key.owner,
                        metric: key.metric.as_str().to_owned(),
                        value,
                        threshold,
                        ts,
                        peak: value,
                        resolved_at: None,
                    },
                )),
                Transition::Resolve {
                    alert_id: Some(id),
                    ts,
                    peak,
                    ..
                } => {
                    resolves.push(AlertResolution {
                        id,
                        resolved_at: ts,
                        peak,
                    });
                }
                // Fired earlier in this same batch: store it already resolved.
                Transition::Resolve {
                    key,
                    alert_id: None,
                    ts,
                    peak,
                } => {
                    if let Some((_, a)) = opens.iter_mut().rev().find(|(k, _)| *k == key) {
                        a.resolved_at = Some(ts);
                        a.peak = peak;
                    }
                }
            }
        }
        let (keys, new): (Vec<EpisodeKey>, Vec<NewAlert>) = opens.into_iter().unzip();
        match self.store.apply_alert_changes(&new, &resolves).await {
            Ok(ids) => {
                for ((key, a), id) in keys.iter().zip(&new).zip(ids) {
                    if a.resolved_at.is_none() {
                        self.evaluator.confirm(key, id);
                    }
                    let scope = a
                        .owner_id
                        .map_or("global".to_owned(), |u| format!("user {u}"));
                    tracing::warn!(
                        alert_id = id,
                        metric = %a.metric,
                        value = a.value,
                        threshold = a.threshold,
                        host_id = a.host_id,
                        %scope,
                        "ALERT: {} {:.1} above threshold {:.1}",
                        a.metric, a.value, a.threshold
                    );
                }
                for r in &resolves {
                    tracing::info!(alert_id = r.id, peak = r.peak, "alert resolved");
                }
                Ok(all)
            }
            Err(e) => {
                for key in &keys {
                    self.evaluator.forget(key);
                }
                Err(e)
            }
        }
    }
}
