//! Feeds samples and the clock to the rule state machine and persists what it decides,
//! with the notifications it causes, in one transaction (the outbox).

use crate::alerts::{
    Change, Comparison, Evaluator, Fired, Phase, RuleSpec, RuleState, Severity, StateKey,
};
use crate::domain::format_rfc3339;
use crate::store::{
    Fence, NewAlert, Notification, Rule, RuleChange, RuleStateRow, Sample, Store, StoreResult,
};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// Which hosts' alerts an engine owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostScope {
    All,
    One(i64),
    /// Every host that pushes through an agent.
    Agents,
}

pub struct AlertEngine {
    store: Arc<dyn Store>,
    evaluator: Evaluator,
    /// Set after a failed write: the database is the truth, reload from it first.
    stale: bool,
    /// Queue notifications (off for `seed`, which replays history).
    notify: bool,
    /// Wakes the notifier when deliveries were queued.
    wake: Option<Arc<Notify>>,
    host_names: HashMap<i64, String>,
    /// The hosts this engine evaluates. Each process evaluates the host it collects, and
    /// the replica holding the agent-alerting lease evaluates the agent hosts, so two
    /// engines never both own — and repeat — the same alert.
    scope: HostScope,
    /// Agent hosts as of the last round, with when each last reported and how often it
    /// reports (for `missed_intervals`).
    agents: HashMap<i64, (Option<i64>, i64)>,
    /// The period assumed for an agent host that has not said its own.
    default_interval_ms: i64,
    /// Where evaluation rounds are counted (`None`: not counted, as for `seed`).
    metrics: Option<Arc<crate::prom::Metrics>>,
}

impl AlertEngine {
    /// Resumes from the rule states and open alerts in the store.
    pub async fn new(store: Arc<dyn Store>) -> StoreResult<Self> {
        Self::scoped(store, HostScope::All).await
    }

    /// An engine for the samples of one host only (the collector's).
    pub async fn for_host(store: Arc<dyn Store>, host_id: i64) -> StoreResult<Self> {
        Self::scoped(store, HostScope::One(host_id)).await
    }

    /// An engine for every agent host: their samples, and their silence. Only the holder
    /// of the agent-alerting lease runs one (see `tasks::agent_alerts`).
    pub async fn for_agents(store: Arc<dyn Store>, default_interval_ms: i64) -> StoreResult<Self> {
        let mut engine = Self::scoped(store, HostScope::Agents).await?;
        engine.default_interval_ms = default_interval_ms.max(1);
        Ok(engine)
    }

    async fn scoped(store: Arc<dyn Store>, scope: HostScope) -> StoreResult<Self> {
        let evaluator = load_evaluator(store.as_ref(), scope).await?;
        Ok(Self {
            store,
            evaluator,
            stale: false,
            notify: true,
            wake: None,
            host_names: HashMap::new(),
            scope,
            agents: HashMap::new(),
            default_interval_ms: 1000,
            metrics: None,
        })
    }

    /// Queue no notifications (replaying history).
    pub fn silent(mut self) -> Self {
        self.notify = false;
        self
    }

    pub fn with_wake(mut self, wake: Arc<Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Counts evaluation rounds (and failed ones) in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::prom::Metrics>) -> Self {
        self.set_metrics(metrics);
        self
    }

    pub fn set_metrics(&mut self, metrics: Arc<crate::prom::Metrics>) {
        self.metrics = Some(metrics);
    }

    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// The enabled rules, with host names resolved to ids.
    async fn rules(&mut self) -> StoreResult<Vec<RuleSpec>> {
        let rules = self.store.active_rules().await?;
        let hosts = self.store.list_hosts().await?;
        let ids: HashMap<&str, i64> = hosts.iter().map(|h| (h.name.as_str(), h.id)).collect();
        let specs = rules.iter().filter_map(|r| to_spec(r, &ids)).collect();
        let agents: HashMap<i64, (Option<i64>, i64)> = hosts
            .iter()
            .filter(|h| h.has_agent_token)
            .map(|h| {
                let interval = h.interval_ms.unwrap_or(self.default_interval_ms);
                (h.id, (h.last_seen_at, interval))
            })
            .collect();
        if self.scope == HostScope::Agents && self.agents.keys().any(|id| !agents.contains_key(id))
        {
            // A host was deleted (its states and alerts went with it): start again from
            // what the database holds rather than repeat alerts that no longer exist.
            self.evaluator = load_evaluator(self.store.as_ref(), self.scope).await?;
        }
        self.agents = agents;
        self.host_names = hosts.into_iter().map(|h| (h.id, h.name)).collect();
        Ok(specs)
    }

    fn mine(&self, host_id: i64) -> bool {
        match self.scope {
            HostScope::All => true,
            HostScope::One(h) => h == host_id,
            HostScope::Agents => self.agents.contains_key(&host_id),
        }
    }

    /// Evaluates samples (already stored) in order, then the clock at `now`; returns the
    /// changes that were persisted. If persisting fails nothing is lost: the state is
    /// reloaded from the database and the next samples decide again.
    pub async fn observe(&mut self, samples: &[Sample], now: i64) -> StoreResult<Vec<Change>> {
        let result = self.evaluate_and_persist(samples, None, now).await;
        if let Some(m) = &self.metrics {
            m.record_alert_evaluation(result.is_ok());
        }
        result.map(|c| c.unwrap_or_default())
    }

    /// `observe` for a lease holder: the changes (and `fence`'s cursors) commit only
    /// while the lease is still held, renewing it. `None`: the lease was lost, nothing
    /// was written, and this engine must be dropped.
    pub async fn observe_fenced(
        &mut self,
        samples: &[Sample],
        fence: Fence,
        now: i64,
    ) -> StoreResult<Option<Vec<Change>>> {
        let result = self.evaluate_and_persist(samples, Some(fence), now).await;
        if let Some(m) = &self.metrics {
            m.record_alert_evaluation(result.is_ok());
        }
        result
    }

    async fn evaluate_and_persist(
        &mut self,
        samples: &[Sample],
        fence: Option<Fence>,
        now: i64,
    ) -> StoreResult<Option<Vec<Change>>> {
        if self.stale {
            self.evaluator = load_evaluator(self.store.as_ref(), self.scope).await?;
            self.stale = false;
        }
        let rules = self.rules().await?;
        let mut changes = Vec::new();
        for s in samples {
            if self.mine(s.host_id) {
                changes.extend(self.evaluator.evaluate(s, &rules, now));
            }
        }
        if self.scope == HostScope::Agents {
            let mut agents: Vec<(i64, Option<i64>, i64)> = self
                .agents
                .iter()
                .map(|(id, (seen, iv))| (*id, *seen, *iv))
                .collect();
            agents.sort_unstable();
            for (host_id, seen, interval) in agents {
                // A host that never reported has no silence to judge yet.
                if let Some(missed) = crate::domain::missed_intervals(seen, interval, now) {
                    changes.extend(self.evaluator.observe_silence(host_id, missed, &rules, now));
                }
            }
        }
        changes.extend(self.evaluator.tick(&rules, now));
        if changes.is_empty() && fence.is_none() {
            return Ok(Some(changes));
        }
        let rows: Vec<RuleChange> = changes.iter().map(|c| self.to_row(c, now)).collect();
        let applied = match &fence {
            None => self.store.apply_rule_changes(&rows, now).await.map(Some),
            Some(f) => self.store.apply_fenced_rule_changes(&rows, f, now).await,
        };
        match applied {
            Ok(None) => {
                // The decisions were not recorded: whoever holds the lease now decides.
                self.stale = true;
                Ok(None)
            }
            Ok(Some((ids, queued))) => {
                let fired = changes.iter().filter_map(|c| match c {
                    Change::Fired { key, state } => Some((key, state)),
                    _ => None,
                });
                for ((key, state), id) in fired.zip(ids) {
                    self.evaluator.confirm(key, id);
                    if let Some(f) = &state.fired {
                        tracing::warn!(
                            alert_id = id,
                            rule = %f.rule_name,
                            host = %self.host_name(key.host_id),
                            severity = f.severity.as_str(),
                            "ALERT: {} {:.1} {} {:.1}",
                            f.metric, f.value, f.comparison.as_str(), f.threshold
                        );
                    }
                }
                for c in &changes {
                    if let Change::Resolved { key, state, .. } = c {
                        tracing::info!(
                            alert_id = state.fired.as_ref().and_then(|f| f.alert_id),
                            rule_id = key.rule_id,
                            host = %self.host_name(key.host_id),
                            peak = state.peak,
                            "alert resolved"
                        );
                    }
                }
                if queued > 0 {
                    if let Some(w) = &self.wake {
                        w.notify_one();
                    }
                }
                Ok(Some(changes))
            }
            Err(e) => {
                self.stale = true;
                Err(e)
            }
        }
    }

    fn host_name(&self, host_id: i64) -> String {
        self.host_names
            .get(&host_id)
            .cloned()
            .unwrap_or_else(|| format!("host {host_id}"))
    }

    fn to_row(&self, change: &Change, now: i64) -> RuleChange {
        match change {
            Change::Saved { key, state } => RuleChange::Save(state_row(key, state)),
            Change::Cancelled { key } => RuleChange::Clear {
                rule_id: key.rule_id,
                host_id: key.host_id,
            },
            Change::Fired { key, state } => {
                let f = state.fired.as_ref();
                RuleChange::Fire {
                    alert: NewAlert {
                        host_id: key.host_id,
                        owner_id: f.and_then(|f| f.owner),
                        metric: f.map(|f| f.metric.clone()).unwrap_or_default(),
                        value: f.map_or(state.last_value, |f| f.value),
                        threshold: f.map_or(0.0, |f| f.threshold),
                        ts: f.map_or(now, |f| f.ts),
                        peak: state.peak,
                        resolved_at: None,
                        rule_id: Some(key.rule_id),
                        rule_name: f.map(|f| f.rule_name.clone()).unwrap_or_default(),
                        comparison: f.map_or(">", |f| f.comparison.as_str()).to_owned(),
                        severity: f.map_or("warning", |f| f.severity.as_str()).to_owned(),
                    },
                    state: state_row(key, state),
                    notify: self.notification(key, state, "firing", None, now),
                }
            }
            Change::Repeated { key, state } => RuleChange::Repeat {
                state: state_row(key, state),
                notify: self.notification(key, state, "repeat", None, now),
            },
            Change::Resolved { key, state, ts } => RuleChange::Resolve {
                rule_id: key.rule_id,
                host_id: key.host_id,
                alert_id: state.fired.as_ref().and_then(|f| f.alert_id),
                resolved_at: *ts,
                peak: state.peak,
                notify: self.notification(key, state, "resolved", Some(*ts), now),
            },
        }
    }

    /// The webhook body (and the source of the email), in the original's shape plus context.
    fn notification(
        &self,
        key: &StateKey,
        state: &RuleState,
        event: &str,
        resolved_at: Option<i64>,
        now: i64,
    ) -> Option<Notification> {
        if !self.notify {
            return None;
        }
        let f = state.fired.as_ref()?;
        let ts = match event {
            "firing" => f.ts,
            "resolved" => resolved_at.unwrap_or(now),
            _ => now,
        };
        let payload = serde_json::json!({
            "type": f.metric,
            "value": if event == "firing" { f.value } else { state.last_value },
            "ts": format_rfc3339(ts),
            "generated_at": format_rfc3339(now),
            "status": if event == "resolved" { "resolved" } else { "firing" },
            "event": event,
            "threshold": f.threshold,
            "comparison": f.comparison.as_str(),
            "rule": f.rule_name,
            // Orphans of deleted rules carry a placeholder key (see `load_evaluator`).
            "rule_id": (key.rule_id > 0).then_some(key.rule_id),
            "host": self.host_name(key.host_id),
            "severity": f.severity.as_str(),
            "alert_id": f.alert_id,
            "started_at": format_rfc3339(f.ts),
            "resolved_at": resolved_at.map(format_rfc3339),
            "peak": state.peak,
        });
        Some(Notification {
            owner_id: f.owner,
            event: event.to_owned(),
            payload,
        })
    }
}

fn state_row(key: &StateKey, s: &RuleState) -> RuleStateRow {
    RuleStateRow {
        rule_id: key.rule_id,
        host_id: key.host_id,
        state: s.phase.as_str().to_owned(),
        active_since: s.active_since,
        alert_id: s.fired.as_ref().and_then(|f| f.alert_id),
        clear_since: s.clear_since,
        last_notified_at: s.last_notified_at,
        peak: s.peak,
    }
}

/// A stored rule as the evaluator needs it; `None` for rows that no longer parse (they
/// cannot be written through the API, but a database is shared with other tools).
pub fn to_spec(r: &Rule, host_ids: &HashMap<&str, i64>) -> Option<RuleSpec> {
    Some(RuleSpec {
        id: r.id,
        owner: r.owner_id,
        name: r.name.clone(),
        metric: crate::alerts::RuleMetric::parse(&r.metric)?,
        comparison: Comparison::parse(&r.comparison)?,
        threshold: r.threshold,
        for_ms: r.for_secs.saturating_mul(1000),
        hysteresis: r.hysteresis,
        keep_firing_for_ms: r.keep_firing_for_secs.saturating_mul(1000),
        severity: Severity::parse(&r.severity)?,
        repeat_ms: r.repeat_interval_secs.saturating_mul(1000),
        hosts: if r.hosts.is_empty() {
            None
        } else {
            Some(
                r.hosts
                    .iter()
                    .filter_map(|h| host_ids.get(h.as_str()).copied())
                    .collect(),
            )
        },
    })
}

/// Rebuilds the evaluator from stored states, with each firing state's alert. An open
/// alert without a state (its rule was deleted while the service was down) comes back as
/// a firing state of a rule that no longer exists, so the first tick resolves it.
async fn load_evaluator(store: &dyn Store, scope: HostScope) -> StoreResult<Evaluator> {
    let agents: std::collections::HashSet<i64> = match scope {
        HostScope::Agents => store
            .list_hosts()
            .await?
            .into_iter()
            .filter(|h| h.has_agent_token)
            .map(|h| h.id)
            .collect(),
        _ => Default::default(),
    };
    let mine = |host_id: i64| match scope {
        HostScope::All => true,
        HostScope::One(h) => h == host_id,
        HostScope::Agents => agents.contains(&host_id),
    };
    let mut states = store.rule_states().await?;
    states.retain(|s| mine(s.host_id));
    let mut open = store.open_alerts().await?;
    open.retain(|a| mine(a.host_id));
    let by_id: HashMap<i64, &crate::store::Alert> = open.iter().map(|a| (a.id, a)).collect();
    let fired_of = |a: &crate::store::Alert| Fired {
        alert_id: Some(a.id),
        owner: a.owner_id,
        rule_name: a.rule_name.clone(),
        metric: a.metric.clone(),
        comparison: Comparison::parse(&a.comparison).unwrap_or(Comparison::Gt),
        threshold: a.threshold,
        severity: Severity::parse(&a.severity).unwrap_or(Severity::Warning),
        value: a.value,
        ts: a.ts,
    };
    let mut out: Vec<(StateKey, RuleState)> = Vec::new();
    let mut covered = std::collections::HashSet::new();
    for s in &states {
        let phase = if s.state == "firing" {
            Phase::Firing
        } else {
            Phase::Pending
        };
        let fired = s
            .alert_id
            .and_then(|id| by_id.get(&id))
            .map(|a| fired_of(a));
        if phase == Phase::Firing && fired.is_none() {
            // Its alert is gone (deleted with its host): nothing left to resolve.
            continue;
        }
        if let Some(id) = s.alert_id {
            covered.insert(id);
        }
        out.push((
            StateKey {
                rule_id: s.rule_id,
                host_id: s.host_id,
            },
            RuleState {
                phase,
                active_since: s.active_since,
                clear_since: s.clear_since,
                last_notified_at: s.last_notified_at,
                peak: s.peak,
                last_value: fired.as_ref().map_or(s.peak, |f| f.value),
                fired,
            },
        ));
    }
    for a in open.iter().filter(|a| !covered.contains(&a.id)) {
        // Rule ids are positive: a negative one is never among the rules, so the first
        // tick resolves the orphan. So does a second open alert of a pair that already
        // has its state (one episode per pair).
        let mut key = StateKey {
            rule_id: a.rule_id.unwrap_or(-a.id),
            host_id: a.host_id,
        };
        if out.iter().any(|(k, _)| *k == key) {
            key.rule_id = -a.id;
        }
        out.push((
            key,
            RuleState {
                phase: Phase::Firing,
                active_since: a.ts,
                clear_since: None,
                last_notified_at: Some(a.ts),
                peak: a.peak,
                last_value: a.value,
                fired: Some(fired_of(a)),
            },
        ));
    }
    Ok(Evaluator::resume(out))
}
