//! Threshold evaluation as a pure state machine: samples and a clock in, episode
//! transitions out. No IO here; the collector task persists what it returns.
//!
//! An episode starts on the first sample above a threshold and ends on the first sample at
//! or below it, so a sustained breach raises exactly one alert per owner, host and metric.

use crate::domain::MetricKind;
use crate::store::{Alert, Sample, ThresholdPair};
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

/// Thresholds to evaluate: the global ones (`owner: None`) or one user's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdRule {
    pub owner: Option<i64>,
    pub thresholds: ThresholdPair,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EpisodeKey {
    pub owner: Option<i64>,
    pub host_id: i64,
    pub metric: MetricKind,
}

#[derive(Debug, Clone, PartialEq)]
struct Episode {
    /// `None` until the store has assigned an id (see [`Evaluator::confirm`]).
    alert_id: Option<i64>,
    peak: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Fire {
        key: EpisodeKey,
        value: f64,
        threshold: f64,
        ts: i64,
    },
    Resolve {
        key: EpisodeKey,
        alert_id: Option<i64>,
        ts: i64,
        peak: f64,
    },
}

fn value_of(sample: &Sample, metric: MetricKind) -> f64 {
    match metric {
        MetricKind::Cpu => sample.cpu,
        MetricKind::Memory => sample.memory,
    }
}

fn threshold_of(t: &ThresholdPair, metric: MetricKind) -> f64 {
    match metric {
        MetricKind::Cpu => t.cpu,
        MetricKind::Memory => t.memory,
    }
}

#[derive(Debug, Default)]
pub struct Evaluator {
    open: HashMap<EpisodeKey, Episode>,
}

impl Evaluator {
    /// Resumes from the episodes the store says are still open, so a restart neither
    /// forgets a breach nor raises it a second time.
    pub fn resume(open_alerts: &[Alert]) -> Self {
        let mut open = HashMap::new();
        for a in open_alerts {
            let Some(metric) = MetricKind::parse(&a.metric) else {
                continue;
            };
            open.insert(
                EpisodeKey {
                    owner: a.owner_id,
                    host_id: a.host_id,
                    metric,
                },
                Episode {
                    alert_id: Some(a.id),
                    peak: a.peak.max(a.value),
                },
            );
        }
        Self { open }
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn is_open(&self, key: &EpisodeKey) -> bool {
        self.open.contains_key(key)
    }

    /// Evaluates one sample against every rule. `now` stamps resolutions; firing uses the
    /// sample's own time, when the breach was observed.
    pub fn evaluate(
        &mut self,
        sample: &Sample,
        rules: &[ThresholdRule],
        now: i64,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        for rule in rules {
            for metric in MetricKind::ALL {
                let key = EpisodeKey {
                    owner: rule.owner,
                    host_id: sample.host_id,
                    metric,
                };
                let value = value_of(sample, metric);
                let threshold = threshold_of(&rule.thresholds, metric);
                let breached = value > threshold;
                match (self.open.get_mut(&key), breached) {
                    (None, true) => {
                        self.open.insert(
                            key,
                            Episode {
                                alert_id: None,
                                peak: value,
                            },
                        );
                        out.push(Transition::Fire {
                            key,
                            value,
                            threshold,
                            ts: sample.ts,
                        });
                    }
                    (Some(ep), true) => ep.peak = ep.peak.max(value),
                    (Some(_), false) => {
                        if let Some(ep) = self.open.remove(&key) {
                            out.push(Transition::Resolve {
                                key,
                                alert_id: ep.alert_id,
                                ts: now,
                                peak: ep.peak,
                            });
                        }
                    }
                    (None, false) => {}
                }
            }
        }
        // Episodes whose rule is gone (thresholds removed, user disabled) end now.
        let orphans: Vec<EpisodeKey> = self
            .open
            .keys()
            .filter(|k| k.host_id == sample.host_id && !rules.iter().any(|r| r.owner == k.owner))
            .copied()
            .collect();
        for key in orphans {
            if let Some(ep) = self.open.remove(&key) {
                out.push(Transition::Resolve {
                    key,
                    alert_id: ep.alert_id,
                    ts: now,
                    peak: ep.peak,
                });
            }
        }
        out
    }

    /// Records the id the store gave a fired episode.
    pub fn confirm(&mut self, key: &EpisodeKey, alert_id: i64) {
        if let Some(ep) = self.open.get_mut(key) {
            ep.alert_id = Some(alert_id);
        }
    }

    /// Forgets a fired episode whose persistence failed, so the next breaching sample
    /// fires it again instead of the alert being lost.
    pub fn forget(&mut self, key: &EpisodeKey) {
        self.open.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeClock(std::sync::atomic::AtomicI64);
    impl FakeClock {
        fn tick(&self, ms: i64) -> i64 {
            self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst) + ms
        }
    }
    impl Clock for FakeClock {
        fn now_ms(&self) -> i64 {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    fn sample(ts: i64, cpu: f64, memory: f64) -> Sample {
        Sample {
            host_id: 1,
            ts,
            cpu,
            memory,
            ..Sample::default()
        }
    }

    const GLOBAL: ThresholdRule = ThresholdRule {
        owner: None,
        thresholds: ThresholdPair {
            cpu: 80.0,
            memory: 75.0,
        },
    };

    fn run(
        ev: &mut Evaluator,
        clock: &FakeClock,
        cpus: &[f64],
        rules: &[ThresholdRule],
    ) -> Vec<Transition> {
        let mut all = Vec::new();
        for &cpu in cpus {
            let now = clock.tick(1000);
            let t = ev.evaluate(&sample(now, cpu, 10.0), rules, clock.now_ms());
            for tr in &t {
                if let Transition::Fire { key, .. } = tr {
                    ev.confirm(key, now);
                }
            }
            all.extend(t);
        }
        all
    }

    fn fires(t: &[Transition]) -> usize {
        t.iter()
            .filter(|t| matches!(t, Transition::Fire { .. }))
            .count()
    }

    #[test]
    fn sustained_breach_fires_once() {
        let clock = FakeClock(0.into());
        let mut ev = Evaluator::default();
        let t = run(
            &mut ev,
            &clock,
            &[10.0, 90.0, 95.0, 99.0, 85.0, 81.0],
            &[GLOBAL],
        );
        assert_eq!(fires(&t), 1);
        assert!(
            matches!(t[0], Transition::Fire { value, threshold, ts: 2000, .. } if value == 90.0 && threshold == 80.0)
        );
        assert_eq!(ev.open_count(), 1);
    }

    #[test]
    fn drop_and_rebreach_fires_twice_and_resolves_with_peak() {
        let clock = FakeClock(0.into());
        let mut ev = Evaluator::default();
        let t = run(&mut ev, &clock, &[90.0, 97.0, 80.0, 50.0, 91.0], &[GLOBAL]);
        assert_eq!(fires(&t), 2);
        let resolves: Vec<_> = t
            .iter()
            .filter(|t| matches!(t, Transition::Resolve { .. }))
            .collect();
        assert_eq!(resolves.len(), 1);
        // Equal to the threshold is not a breach: the episode ends at the third sample.
        assert!(
            matches!(resolves[0], Transition::Resolve { peak, ts: 3000, alert_id: Some(1000), .. } if *peak == 97.0)
        );
    }

    #[test]
    fn owners_are_independent() {
        let clock = FakeClock(0.into());
        let mut ev = Evaluator::default();
        let user = ThresholdRule {
            owner: Some(7),
            thresholds: ThresholdPair {
                cpu: 50.0,
                memory: 90.0,
            },
        };
        let t = run(&mut ev, &clock, &[60.0, 85.0, 60.0], &[GLOBAL, user]);
        let owners: Vec<_> = t
            .iter()
            .filter_map(|t| match t {
                Transition::Fire { key, .. } => Some(key.owner),
                _ => None,
            })
            .collect();
        assert_eq!(owners, vec![Some(7), None]);
    }

    #[test]
    fn resumes_open_episode_without_refiring() {
        let alert = Alert {
            id: 42,
            host_id: 1,
            host: "h".into(),
            owner_id: None,
            metric: "cpu".into(),
            value: 90.0,
            threshold: 80.0,
            peak: 92.0,
            ts: 0,
            resolved_at: None,
        };
        let clock = FakeClock(0.into());
        let mut ev = Evaluator::resume(&[alert]);
        let t = run(&mut ev, &clock, &[95.0, 10.0], &[GLOBAL]);
        assert_eq!(t.len(), 1);
        assert!(
            matches!(t[0], Transition::Resolve { alert_id: Some(42), peak, .. } if peak == 95.0)
        );
    }

    #[test]
    fn removed_rule_resolves_its_episodes() {
        let clock = FakeClock(0.into());
        let mut ev = Evaluator::default();
        let user = ThresholdRule {
            owner: Some(3),
            thresholds: ThresholdPair {
                cpu: 50.0,
                memory: 90.0,
            },
        };
        run(&mut ev, &clock, &[60.0], &[user]);
        let t = run(&mut ev, &clock, &[60.0], &[]);
        assert!(matches!(t.as_slice(), [Transition::Resolve { key, .. }] if key.owner == Some(3)));
    }
}
