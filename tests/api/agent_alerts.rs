//! Alert evaluation for agent hosts on one replica at a time: the lease, its fencing, the
//! hand-over with committed cursors, and the built-in "host down" rule. Rounds are driven
//! by hand with explicit times; the server's own evaluator is switched off.

use crate::helpers::*;
use crate::ingest::create_host;
use serde_json::json;
use std::time::Duration;
use watchpost::store::{Fence, Sample};
use watchpost::tasks::agent_alerts::{AgentAlerts, Round, LEASE};

const TTL: Duration = Duration::from_secs(10);

async fn app_without_leader_jobs() -> TestApp {
    spawn_app_with(|s| s.leader_jobs = false).await
}

fn replica(app: &TestApp, name: &str) -> AgentAlerts {
    AgentAlerts::new(app.store.clone(), name.to_owned(), TTL, 1000)
}

/// Stores samples for a host the way ingest does (rows, rollups, last seen).
async fn push(app: &TestApp, host_id: i64, samples: &[Sample], batch: &str) {
    let b = watchpost::store::IngestBatch {
        host_id,
        batch_id: batch.to_owned(),
        agent_version: Some("test".into()),
        interval_ms: Some(1000),
        samples: samples.to_vec(),
    };
    let now = samples.iter().map(|s| s.ts).max().unwrap_or_else(now_ms);
    app.store.ingest(&[b], now).await.expect("ingest");
}

async fn cpu_rule(app: &TestApp, token: &str) -> i64 {
    let body =
        json!({"name": "agent cpu", "metric": "cpu", "comparison": ">", "threshold": 90, "for": 0});
    let created = json_with_status(
        app.post_json("/rules", &body, token).await,
        reqwest::StatusCode::CREATED,
    )
    .await;
    created["id"].as_i64().expect("rule id")
}

/// Open alerts of one rule on one host.
async fn open_of(app: &TestApp, host_id: i64, rule: i64) -> Vec<watchpost::store::Alert> {
    let mut all = alerts_of(app, host_id).await;
    all.retain(|a| a.rule_id == Some(rule));
    all
}

async fn alerts_of(app: &TestApp, host_id: i64) -> Vec<watchpost::store::Alert> {
    let mut all = app.store.open_alerts().await.expect("open alerts");
    all.retain(|a| a.host_id == host_id);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_and_a_lost_lease_writes_nothing() {
    let app = app_without_leader_jobs().await;
    let s = app.store.as_ref();
    let t = now_ms();
    assert!(s.try_lease("job", "a", t, 10_000).await.unwrap());
    assert!(!s.try_lease("job", "b", t + 1, 10_000).await.unwrap());
    // The holder renews; the lease keeps its acquisition time.
    assert!(s.try_lease("job", "a", t + 5_000, 10_000).await.unwrap());
    let l = s.lease("job").await.unwrap().expect("lease row");
    assert_eq!(
        (l.holder.as_str(), l.acquired_at, l.expires_at),
        ("a", t, t + 15_000)
    );
    // Not before it expires...
    assert!(!s.try_lease("job", "b", t + 15_000, 10_000).await.unwrap());
    // ...but right after.
    assert!(s.try_lease("job", "b", t + 15_001, 10_000).await.unwrap());
    let l = s.lease("job").await.unwrap().unwrap();
    assert_eq!((l.holder.as_str(), l.acquired_at), ("b", t + 15_001));

    // The old holder's fenced write is refused whole: no state, no cursor.
    let (host_id, _) = create_host(&app, "fenced-1").await;
    push(&app, host_id, &[sample(host_id, t, 50.0, 40.0)], "f1").await;
    let fence = Fence {
        lease: "job".into(),
        holder: "a".into(),
        expires_at: t + 30_000,
        cursors: vec![(host_id, t)],
    };
    assert_eq!(
        s.apply_fenced_rule_changes(&[], &fence, t + 16_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.unevaluated_agent_samples(0, 10).await.unwrap().len(), 1);

    // Release: free at once for anyone.
    s.release_lease("job", "a").await.unwrap(); // not the holder: no effect
    assert_eq!(s.lease("job").await.unwrap().unwrap().holder, "b");
    s.release_lease("job", "b").await.unwrap();
    assert!(s.lease("job").await.unwrap().is_none());
    assert!(s.try_lease("job", "c", t + 16_000, 10_000).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_samples_fire_once_and_a_successor_resumes_without_judging_twice() {
    let app = app_without_leader_jobs().await;
    let (user_id, token) = app.register_and_login_user().await;
    let rule = cpu_rule(&app, &token).await;
    let (host, _) = create_host(&app, "agent-a").await;
    let t0 = now_ms() - 60_000;

    let mut a = replica(&app, "replica-a");
    let mut b = replica(&app, "replica-b");
    assert_eq!(
        a.step(t0).await.unwrap(),
        Round::Leader {
            samples: 0,
            changes: 0
        }
    );
    assert_eq!(b.step(t0).await.unwrap(), Round::Follower);

    // A breach through ingest fires on the holder, once.
    push(&app, host, &[sample(host, t0 + 1_000, 95.0, 40.0)], "b1").await;
    let r = a.step(t0 + 1_500).await.unwrap();
    assert!(matches!(r, Round::Leader { samples: 1, .. }), "{r:?}");
    let open = open_of(&app, host, rule).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (open[0].rule_id, open[0].value, open[0].ts),
        (Some(rule), 95.0, t0 + 1_000)
    );
    // The same sample is not judged again by the same holder.
    assert_eq!(
        a.step(t0 + 2_000).await.unwrap(),
        Round::Leader {
            samples: 0,
            changes: 0
        }
    );

    // A dies without releasing (no more renewals). B waits out the lease, then takes over
    // from A's committed cursor: the old breaching sample is not seen again, and the open
    // alert is B's to resolve.
    push(&app, host, &[sample(host, t0 + 3_000, 97.0, 40.0)], "b2").await;
    assert_eq!(b.step(t0 + 5_000).await.unwrap(), Round::Follower);
    let takeover = t0 + 2_000 + TTL.as_millis() as i64 + 1;
    let r = b.step(takeover).await.unwrap();
    assert!(matches!(r, Round::Leader { samples: 1, .. }), "{r:?}");
    assert_eq!(
        open_of(&app, host, rule).await.len(),
        1,
        "still one episode"
    );
    // A comes back: its lease is gone, and its round writes nothing.
    push(&app, host, &[sample(host, t0 + 4_000, 10.0, 40.0)], "b3").await;
    assert_eq!(a.step(takeover + 1).await.unwrap(), Round::LostLease);
    assert_eq!(
        open_of(&app, host, rule).await.len(),
        1,
        "A must not resolve it"
    );
    assert!(!a.is_leader());
    // B resolves it with the recovering sample.
    let r = b.step(takeover + 2).await.unwrap();
    assert!(matches!(r, Round::Leader { samples: 1, .. }), "{r:?}");
    assert!(open_of(&app, host, rule).await.is_empty());
    let all = app.store.list_alerts(user_id, 100).await.unwrap();
    let mine: Vec<_> = all
        .iter()
        .filter(|a| a.host_id == host && a.rule_id == Some(rule))
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].resolved_at, Some(t0 + 4_000));

    // The server's own host is not an agent host: its samples are left to its collector.
    app.insert_samples(&[sample(app.local_host_id, takeover + 3, 99.0, 40.0)])
        .await;
    assert_eq!(
        b.step(takeover + 4).await.unwrap(),
        Round::Leader {
            samples: 0,
            changes: 0
        }
    );
    // Released on shutdown: A may take it at once.
    b.release().await;
    assert!(matches!(
        a.step(takeover + 5).await.unwrap(),
        Round::Leader { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_host_raises_the_built_in_host_down_alert() {
    let hook = crate::receivers::WebhookReceiver::start().await;
    let url = hook.url();
    let app = spawn_app_with(|s| {
        s.leader_jobs = false;
        s.alert_webhook_url = Some(watchpost::config::Secret::new(url));
    })
    .await;
    let (host, _) = create_host(&app, "quiet-1").await;
    let (never, _) = create_host(&app, "never-reported").await;
    let t0 = now_ms() - 3_600_000;
    push(&app, host, &[sample(host, t0, 10.0, 40.0)], "q1").await;
    let mut a = replica(&app, "replica-a");

    // 9 intervals of silence: nothing; 10: the built-in rule fires (critical).
    a.step(t0 + 9_999).await.unwrap();
    assert!(alerts_of(&app, host).await.is_empty());
    a.step(t0 + 10_000).await.unwrap();
    let open = alerts_of(&app, host).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].metric, "missed_intervals");
    assert_eq!(open[0].rule_name, "Host down");
    assert_eq!(open[0].severity, "critical");
    assert_eq!(open[0].value, 10.0);
    assert!(
        alerts_of(&app, never).await.is_empty(),
        "never reported: not judged"
    );
    // Delivered through the outbox like any other alert.
    let got = hook.wait_for(1, Duration::from_secs(20)).await;
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).expect("JSON body");
    assert_eq!(body["host"], "quiet-1");
    assert_eq!(body["rule"], "Host down");
    assert_eq!(body["type"], "missed_intervals");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["severity"], "critical");
    // Still silent: no second alert.
    a.step(t0 + 60_000).await.unwrap();
    assert_eq!(alerts_of(&app, host).await.len(), 1);

    // It reports again: resolved on the next round.
    push(&app, host, &[sample(host, t0 + 61_000, 10.0, 40.0)], "q2").await;
    a.step(t0 + 61_500).await.unwrap();
    assert!(alerts_of(&app, host).await.is_empty());

    // Disabled, the rule stays quiet however long the silence.
    let rules = app.store.active_rules().await.unwrap();
    let builtin = rules
        .iter()
        .find(|r| r.managed.as_deref() == Some("host_down"))
        .expect("built-in rule");
    let resp = app
        .client
        .put(app.url(&format!("/rules/{}", builtin.id)))
        .header("x-admin-token", ADMIN_TOKEN)
        .json(&json!({"metric": "missed_intervals", "comparison": ">=", "threshold": 10, "enabled": false}))
        .send()
        .await
        .unwrap();
    json_with_status(resp, reqwest::StatusCode::OK).await;
    a.step(t0 + 200_000).await.unwrap();
    assert!(alerts_of(&app, host).await.is_empty());
    // And it cannot be deleted.
    let resp = app
        .client
        .delete(app.url(&format!("/rules/{}", builtin.id)))
        .header("x-admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(resp, reqwest::StatusCode::CONFLICT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_older_than_the_lag_limit_are_stored_but_not_judged() {
    let app = app_without_leader_jobs().await;
    let token = app.register_and_login().await;
    cpu_rule(&app, &token).await;
    let (host, _) = create_host(&app, "spooled-1").await;
    let now = now_ms();
    let old = now - watchpost::tasks::agent_alerts::MAX_LAG_MS - 1_000;
    push(&app, host, &[sample(host, old, 99.0, 40.0)], "old").await;
    let mut a = replica(&app, "replica-a");
    let r = a.step(now).await.unwrap();
    // (The host's silence is judged: it last reported more than 10 minutes ago.)
    assert!(matches!(r, Round::Leader { samples: 0, .. }), "{r:?}");
    let open = alerts_of(&app, host).await;
    assert!(open.iter().all(|a| a.metric != "cpu"), "{open:?}");
    assert_eq!(crate::ingest::count(&app, host).await, 1);
    assert_eq!(
        app.store.lease(LEASE).await.unwrap().map(|l| l.holder),
        Some("replica-a".to_owned())
    );
}
