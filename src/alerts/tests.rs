//! State-machine tests driven by a fake clock: one sample per second unless stated.

use super::*;

fn rule(id: i64, threshold: f64) -> RuleSpec {
    RuleSpec {
        id,
        owner: None,
        name: format!("rule {id}"),
        metric: RuleMetric::Cpu,
        comparison: Comparison::Gt,
        threshold,
        for_ms: 0,
        hysteresis: 0.0,
        keep_firing_for_ms: 0,
        severity: Severity::Warning,
        repeat_ms: 4 * 3_600_000,
        hosts: None,
    }
}

fn sample(host_id: i64, ts: i64, cpu: f64) -> Sample {
    Sample {
        host_id,
        ts,
        cpu,
        ..Sample::default()
    }
}

#[derive(Debug, Default, PartialEq)]
struct Counts {
    fired: usize,
    repeated: usize,
    resolved: usize,
}

/// Feeds `values` one per second starting at `t0` (ms) and counts notifications.
fn feed(ev: &mut Evaluator, rules: &[RuleSpec], t0: i64, values: &[f64]) -> (Counts, Vec<Change>) {
    let mut counts = Counts::default();
    let mut all = Vec::new();
    for (i, &v) in values.iter().enumerate() {
        let ts = t0 + i as i64 * 1000;
        let mut changes = ev.evaluate(&sample(1, ts, v), rules, ts);
        changes.extend(ev.tick(rules, ts));
        for c in &changes {
            match c {
                Change::Fired { key, .. } => {
                    counts.fired += 1;
                    ev.confirm(key, ts);
                }
                Change::Repeated { .. } => counts.repeated += 1,
                Change::Resolved { .. } => counts.resolved += 1,
                _ => {}
            }
        }
        all.extend(changes);
    }
    (counts, all)
}

#[test]
fn for_suppresses_a_ten_second_spike() {
    let mut r = rule(1, 80.0);
    r.for_ms = 30_000;
    let mut ev = Evaluator::default();
    let mut values = vec![95.0; 10];
    values.extend([10.0; 5]);
    let (c, changes) = feed(&mut ev, &[r], 0, &values);
    assert_eq!(c, Counts::default());
    assert!(
        matches!(changes.first(), Some(Change::Saved { state, .. }) if state.phase == Phase::Pending)
    );
    assert!(matches!(changes.last(), Some(Change::Cancelled { .. })));
    assert!(ev
        .state(&StateKey {
            rule_id: 1,
            host_id: 1
        })
        .is_none());
}

#[test]
fn breach_longer_than_for_fires_once_at_for() {
    let mut r = rule(1, 80.0);
    r.for_ms = 30_000;
    let mut ev = Evaluator::default();
    let (c, changes) = feed(&mut ev, &[r], 0, &[95.0; 45]);
    assert_eq!(c.fired, 1);
    let fired_at = changes.iter().find_map(|c| match c {
        Change::Fired { state, .. } => state.fired.as_ref().map(|f| f.ts),
        _ => None,
    });
    assert_eq!(fired_at, Some(30_000));
}

#[test]
fn oscillation_every_ten_seconds_with_for_sixty_never_notifies() {
    let mut r = rule(1, 80.0);
    r.for_ms = 60_000;
    let mut ev = Evaluator::default();
    let values: Vec<f64> = (0..600)
        .map(|i| if (i / 10) % 2 == 0 { 95.0 } else { 20.0 })
        .collect();
    let (c, _) = feed(&mut ev, &[r], 0, &values);
    assert_eq!(c, Counts::default());
}

#[test]
fn sustained_breach_fires_once_repeats_at_interval_and_resolves_once() {
    let mut r = rule(1, 80.0);
    r.repeat_ms = 10 * 60_000;
    let mut ev = Evaluator::default();
    let mut values = vec![90.0; 35 * 60];
    values.extend([50.0; 10]);
    let (c, _) = feed(&mut ev, &[r], 0, &values);
    assert_eq!(
        c,
        Counts {
            fired: 1,
            repeated: 3,
            resolved: 1
        }
    );
}

#[test]
fn hysteresis_prevents_flapping_around_the_threshold() {
    let mut r = rule(1, 80.0);
    r.hysteresis = 5.0;
    let mut ev = Evaluator::default();
    let values: Vec<f64> = (0..120)
        .map(|i| if i % 2 == 0 { 81.0 } else { 79.0 })
        .collect();
    let (c, _) = feed(&mut ev, std::slice::from_ref(&r), 0, &values);
    assert_eq!(c.fired, 1);
    assert_eq!(c.resolved, 0, "79 is not below 80 - 5");
    let (c, changes) = feed(&mut ev, &[r], 200_000, &[76.0, 75.0]);
    assert_eq!(c.resolved, 1, "75 is no longer above 75");
    assert!(matches!(
        changes.last(),
        Some(Change::Resolved { ts: 201_000, .. })
    ));
}

#[test]
fn without_hysteresis_the_same_signal_flaps() {
    let r = rule(1, 80.0);
    let mut ev = Evaluator::default();
    let values: Vec<f64> = (0..20)
        .map(|i| if i % 2 == 0 { 81.0 } else { 79.0 })
        .collect();
    let (c, _) = feed(&mut ev, &[r], 0, &values);
    assert_eq!((c.fired, c.resolved), (10, 10));
}

#[test]
fn keep_firing_for_holds_through_short_dips() {
    let mut r = rule(1, 80.0);
    r.keep_firing_for_ms = 30_000;
    let mut ev = Evaluator::default();
    let mut values = vec![90.0; 5];
    values.extend([50.0; 20]); // a 20 s dip: still firing
    values.extend([90.0; 5]);
    values.extend([50.0; 31]); // 30 s clear: resolves at the 31st sample
    let (c, changes) = feed(&mut ev, &[r], 0, &values);
    assert_eq!((c.fired, c.resolved), (1, 1));
    assert!(matches!(
        changes.last(),
        Some(Change::Resolved { ts: 60_000, .. })
    ));
}

#[test]
fn lower_bound_rules_fire_below_and_track_the_minimum() {
    let mut r = rule(1, 10.0);
    r.comparison = Comparison::Lt;
    r.hysteresis = 2.0;
    let mut ev = Evaluator::default();
    let (c, changes) = feed(&mut ev, &[r], 0, &[20.0, 9.0, 4.0, 11.0, 12.0]);
    assert_eq!((c.fired, c.resolved), (1, 1));
    match changes.last() {
        Some(Change::Resolved { state, ts, .. }) => {
            assert_eq!(state.peak, 4.0);
            assert_eq!(*ts, 4000);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn restart_in_the_middle_keeps_state_and_repeat_schedule() {
    let mut r = rule(1, 80.0);
    r.repeat_ms = 10 * 60_000;
    let mut ev = Evaluator::default();
    let (c, _) = feed(&mut ev, std::slice::from_ref(&r), 0, &vec![90.0; 7 * 60]);
    assert_eq!(c.fired, 1);
    // "Restart": a new evaluator from the persisted states.
    let saved: Vec<(StateKey, RuleState)> =
        ev.states.iter().map(|(k, s)| (*k, s.clone())).collect();
    let mut ev = Evaluator::resume(saved);
    let (c, _) = feed(&mut ev, &[r], 7 * 60_000, &vec![90.0; 5 * 60]);
    assert_eq!(c.fired, 0, "a restart must not fire again");
    assert_eq!(
        c.repeated, 1,
        "the repeat falls due 10 min after firing, not after the restart"
    );
}

#[test]
fn removed_rule_resolves_firing_and_drops_pending() {
    let r1 = rule(1, 80.0);
    let mut r2 = rule(2, 80.0);
    r2.for_ms = 60_000;
    let mut ev = Evaluator::default();
    feed(&mut ev, &[r1, r2], 0, &[90.0, 90.0]);
    let changes = ev.tick(&[], 5000);
    assert_eq!(changes.len(), 2);
    assert!(matches!(
        changes[0],
        Change::Resolved {
            key: StateKey { rule_id: 1, .. },
            ts: 5000,
            ..
        }
    ));
    assert!(matches!(
        changes[1],
        Change::Cancelled {
            key: StateKey { rule_id: 2, .. }
        }
    ));
}

#[test]
fn host_selector_limits_the_rule() {
    let mut r = rule(1, 80.0);
    r.hosts = Some(vec![2]);
    let mut ev = Evaluator::default();
    assert!(ev
        .evaluate(&sample(1, 0, 99.0), std::slice::from_ref(&r), 0)
        .is_empty());
    let changes = ev.evaluate(&sample(2, 0, 99.0), std::slice::from_ref(&r), 0);
    assert!(matches!(
        changes.as_slice(),
        [Change::Fired {
            key: StateKey { host_id: 2, .. },
            ..
        }]
    ));
    // The rule stops covering host 2: its alert resolves.
    r.hosts = Some(vec![3]);
    assert!(matches!(
        ev.tick(&[r], 10).as_slice(),
        [Change::Resolved { .. }]
    ));
}

#[test]
fn quiet_host_still_gets_repeats_from_the_clock() {
    let mut r = rule(1, 80.0);
    r.repeat_ms = 60_000;
    let mut ev = Evaluator::default();
    feed(&mut ev, std::slice::from_ref(&r), 0, &[90.0]);
    assert!(ev.tick(std::slice::from_ref(&r), 59_000).is_empty());
    assert!(matches!(
        ev.tick(std::slice::from_ref(&r), 60_000).as_slice(),
        [Change::Repeated { .. }]
    ));
    assert!(ev.tick(&[r], 61_000).is_empty());
}

#[test]
fn equal_to_threshold_is_not_a_breach_for_gt_but_is_for_ge() {
    let gt = rule(1, 80.0);
    let mut ge = rule(2, 80.0);
    ge.comparison = Comparison::Ge;
    let mut ev = Evaluator::default();
    let changes = ev.evaluate(&sample(1, 0, 80.0), &[gt, ge], 0);
    assert!(matches!(
        changes.as_slice(),
        [Change::Fired {
            key: StateKey { rule_id: 2, .. },
            ..
        }]
    ));
}

#[test]
fn changing_a_firing_rules_metric_resolves_its_episode() {
    let mut r = rule(1, 80.0);
    let mut ev = Evaluator::default();
    feed(&mut ev, std::slice::from_ref(&r), 0, &[90.0]);
    r.metric = RuleMetric::Memory;
    assert!(matches!(
        ev.tick(std::slice::from_ref(&r), 2000).as_slice(),
        [Change::Resolved { ts: 2000, .. }]
    ));
    // A threshold change alone keeps it.
    let mut r = rule(1, 80.0);
    feed(&mut ev, std::slice::from_ref(&r), 3000, &[90.0]);
    r.threshold = 85.0;
    assert!(ev.tick(std::slice::from_ref(&r), 5000).is_empty());
}
