//! Rule evaluation as a pure state machine: samples and a clock in, state changes out.
//! No IO here; `tasks::alerting` persists what it returns, with the notifications, in
//! one transaction.
//!
//! Each (rule, host) pair is inactive, pending or firing. A breach makes it pending; once
//! the breach has held for the rule's `for` it fires (at once when `for` is 0). A firing
//! alert notifies again every `repeat_interval` and resolves once the value has crossed
//! back over `threshold ∓ hysteresis` and stayed there for `keep_firing_for` (Prometheus'
//! `keep_firing_for`; both at 0 means the first sample that no longer breaches). One alert
//! per episode, never one per sample.

pub mod input;
pub mod model;

pub use model::{Comparison, RuleMetric, Severity};

use crate::store::Sample;
use std::collections::HashMap;

/// Time source, passed in so tests can drive evaluation with a fake clock.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::domain::now_ms()
    }
}

/// A rule as the evaluator needs it (durations in milliseconds, hosts as ids).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub id: i64,
    pub owner: Option<i64>,
    pub name: String,
    pub metric: RuleMetric,
    pub comparison: Comparison,
    pub threshold: f64,
    pub for_ms: i64,
    pub hysteresis: f64,
    pub keep_firing_for_ms: i64,
    pub severity: Severity,
    pub repeat_ms: i64,
    /// `None`: every host.
    pub hosts: Option<Vec<i64>>,
}

impl RuleSpec {
    pub fn applies_to(&self, host_id: i64) -> bool {
        self.hosts.as_ref().is_none_or(|h| h.contains(&host_id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey {
    pub rule_id: i64,
    pub host_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Firing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Firing => "firing",
        }
    }
}

/// What the alert said when it fired, kept so it can still be resolved (and described)
/// after its rule was changed or deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub alert_id: Option<i64>,
    pub owner: Option<i64>,
    pub rule_name: String,
    pub metric: String,
    pub comparison: Comparison,
    pub threshold: f64,
    pub severity: Severity,
    /// Value and time of the sample that fired it.
    pub value: f64,
    pub ts: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleState {
    pub phase: Phase,
    /// Time of the first breaching sample of this spell.
    pub active_since: i64,
    /// Firing only: since when the clear condition has held.
    pub clear_since: Option<i64>,
    pub last_notified_at: Option<i64>,
    /// The worst value of the spell in the alerting direction.
    pub peak: f64,
    pub last_value: f64,
    pub fired: Option<Fired>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Entered pending, or a firing alert's clear timer started or stopped: save the state.
    Saved { key: StateKey, state: RuleState },
    /// Pending ended without firing: forget the state.
    Cancelled { key: StateKey },
    /// A new alert: store it and notify.
    Fired { key: StateKey, state: RuleState },
    /// Still firing after `repeat_interval`: notify again.
    Repeated { key: StateKey, state: RuleState },
    /// The episode ended (`ts`): close the alert and notify. `state` is the last one.
    Resolved {
        key: StateKey,
        state: RuleState,
        ts: i64,
    },
}

impl Change {
    pub fn key(&self) -> StateKey {
        match self {
            Change::Saved { key, .. }
            | Change::Cancelled { key }
            | Change::Fired { key, .. }
            | Change::Repeated { key, .. }
            | Change::Resolved { key, .. } => *key,
        }
    }
}

#[derive(Debug, Default)]
pub struct Evaluator {
    states: HashMap<StateKey, RuleState>,
}

impl Evaluator {
    /// Resumes from the states the store kept, so a restart neither forgets a firing
    /// alert nor notifies it again.
    pub fn resume(states: impl IntoIterator<Item = (StateKey, RuleState)>) -> Self {
        Self {
            states: states.into_iter().collect(),
        }
    }

    pub fn state(&self, key: &StateKey) -> Option<&RuleState> {
        self.states.get(key)
    }

    pub fn firing_count(&self) -> usize {
        self.states
            .values()
            .filter(|s| s.phase == Phase::Firing)
            .count()
    }

    /// Records the id the store gave a fired alert.
    pub fn confirm(&mut self, key: &StateKey, alert_id: i64) {
        if let Some(f) = self.states.get_mut(key).and_then(|s| s.fired.as_mut()) {
            f.alert_id = Some(alert_id);
        }
    }

    /// Evaluates one sample against every rule that applies to its host. Firing and
    /// resolving use the sample's time; repeats use `now`.
    pub fn evaluate(&mut self, sample: &Sample, rules: &[RuleSpec], now: i64) -> Vec<Change> {
        let mut out = Vec::new();
        for rule in rules.iter().filter(|r| r.applies_to(sample.host_id)) {
            let key = StateKey {
                rule_id: rule.id,
                host_id: sample.host_id,
            };
            let value = rule.metric.value(sample);
            if !value.is_finite() {
                continue;
            }
            self.step(key, rule, value, sample.ts, now, &mut out);
        }
        out
    }

    /// Judges the `missed_intervals` rules for one host: `missed` is how many reporting
    /// intervals it has been silent at `now`. Called on every evaluation round for each
    /// agent host, so a host that comes back resolves its alert on the next round.
    pub fn observe_silence(
        &mut self,
        host_id: i64,
        missed: f64,
        rules: &[RuleSpec],
        now: i64,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        if !missed.is_finite() {
            return out;
        }
        for rule in rules
            .iter()
            .filter(|r| r.metric == RuleMetric::MissedIntervals && r.applies_to(host_id))
        {
            let key = StateKey {
                rule_id: rule.id,
                host_id,
            };
            self.step(key, rule, missed, now, now, &mut out);
        }
        out
    }

    fn step(
        &mut self,
        key: StateKey,
        rule: &RuleSpec,
        value: f64,
        ts: i64,
        now: i64,
        out: &mut Vec<Change>,
    ) {
        let breach = rule.comparison.holds(value, rule.threshold);
        let Some(state) = self.states.get_mut(&key) else {
            if breach {
                let state = RuleState {
                    phase: Phase::Pending,
                    active_since: ts,
                    clear_since: None,
                    last_notified_at: None,
                    peak: value,
                    last_value: value,
                    fired: None,
                };
                self.states.insert(key, state);
                if rule.for_ms <= 0 {
                    self.fire(key, rule, value, ts, now, out);
                } else {
                    out.push(Change::Saved {
                        key,
                        state: self.states[&key].clone(),
                    });
                }
            }
            return;
        };
        state.last_value = value;
        match state.phase {
            Phase::Pending => {
                if !breach {
                    self.states.remove(&key);
                    out.push(Change::Cancelled { key });
                    return;
                }
                state.peak = rule.comparison.worse(state.peak, value);
                if ts - state.active_since >= rule.for_ms {
                    self.fire(key, rule, value, ts, now, out);
                }
            }
            Phase::Firing => {
                state.peak = rule.comparison.worse(state.peak, value);
                let clear_at = rule
                    .comparison
                    .clear_threshold(rule.threshold, rule.hysteresis);
                let clear = !rule.comparison.holds(value, clear_at);
                if clear {
                    let since = *state.clear_since.get_or_insert(ts);
                    if ts - since >= rule.keep_firing_for_ms {
                        if let Some(state) = self.states.remove(&key) {
                            out.push(Change::Resolved { key, state, ts });
                        }
                        return;
                    }
                    if since == ts {
                        out.push(Change::Saved {
                            key,
                            state: state.clone(),
                        });
                    }
                } else if state.clear_since.take().is_some() {
                    out.push(Change::Saved {
                        key,
                        state: state.clone(),
                    });
                }
                Self::maybe_repeat(key, state, rule.repeat_ms, now, out);
            }
        }
    }

    fn fire(
        &mut self,
        key: StateKey,
        rule: &RuleSpec,
        value: f64,
        ts: i64,
        now: i64,
        out: &mut Vec<Change>,
    ) {
        if let Some(state) = self.states.get_mut(&key) {
            state.phase = Phase::Firing;
            state.clear_since = None;
            state.last_notified_at = Some(now);
            state.fired = Some(Fired {
                alert_id: None,
                owner: rule.owner,
                rule_name: rule.name.clone(),
                metric: rule.metric.as_str().to_owned(),
                comparison: rule.comparison,
                threshold: rule.threshold,
                severity: rule.severity,
                value,
                ts,
            });
            out.push(Change::Fired {
                key,
                state: state.clone(),
            });
        }
    }

    fn maybe_repeat(
        key: StateKey,
        state: &mut RuleState,
        repeat_ms: i64,
        now: i64,
        out: &mut Vec<Change>,
    ) {
        if repeat_ms <= 0 {
            return;
        }
        let last = state.last_notified_at.unwrap_or(state.active_since);
        if now - last >= repeat_ms {
            state.last_notified_at = Some(now);
            out.push(Change::Repeated {
                key,
                state: state.clone(),
            });
        }
    }

    /// Clock-driven work that needs no sample: repeats for firing alerts whose hosts went
    /// quiet, and the end of every state whose rule is gone (deleted, disabled, or no
    /// longer covering the host). Firing ones resolve (and say so); pending ones vanish.
    pub fn tick(&mut self, rules: &[RuleSpec], now: i64) -> Vec<Change> {
        let by_id: HashMap<i64, &RuleSpec> = rules.iter().map(|r| (r.id, r)).collect();
        let mut out = Vec::new();
        let mut keys: Vec<StateKey> = self.states.keys().copied().collect();
        keys.sort();
        for key in keys {
            // A rule edited to watch another metric or direction is a different
            // condition: its open episode ends rather than being judged by the new one.
            let rule = by_id.get(&key.rule_id).filter(|r| {
                r.applies_to(key.host_id)
                    && self
                        .states
                        .get(&key)
                        .and_then(|s| s.fired.as_ref())
                        .is_none_or(|f| {
                            f.metric == r.metric.as_str() && f.comparison == r.comparison
                        })
            });
            match (rule, self.states.get_mut(&key)) {
                (Some(rule), Some(state)) if state.phase == Phase::Firing => {
                    Self::maybe_repeat(key, state, rule.repeat_ms, now, &mut out);
                }
                (Some(_), _) => {}
                (None, _) => {
                    if let Some(state) = self.states.remove(&key) {
                        out.push(match state.phase {
                            Phase::Pending => Change::Cancelled { key },
                            Phase::Firing => Change::Resolved {
                                key,
                                state,
                                ts: now,
                            },
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
