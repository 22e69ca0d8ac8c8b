//! Two `watchpost serve` processes on one PostgreSQL database behind a pretend load
//! balancer, with simulated agents: SIGKILL the replica that evaluates agent alerts in
//! mid-run, and check that every acknowledged sample is stored, every alert was delivered
//! once (or again with the same `webhook-id`), one alert per breach spell (nothing judged
//! twice across the hand-over), and that the survivor took the jobs over. PostgreSQL only.

use crate::binary::{read, Server};
use crate::helpers::*;
use crate::ingest::wire;
use crate::receivers::WebhookReceiver;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use watchpost::tasks::agent_alerts::LEASE;

/// Acknowledged (time, cpu) samples per host id.
type Acked = BTreeMap<i64, Vec<(i64, f64)>>;

const HOSTS: usize = 8;
const PERIOD_MS: i64 = 250;
/// Samples per spell: hosts with an even index alternate 5 s at 95 % CPU, 5 s at 10 %.
const SPELL: i64 = 20;
const RUN: Duration = Duration::from_secs(30);
const KILL_AFTER: Duration = Duration::from_secs(8);

fn cpu_of(host_index: usize, i: i64) -> f64 {
    if host_index.is_multiple_of(2) && (i / SPELL) % 2 == 1 {
        95.0
    } else {
        10.0
    }
}

/// A `watchpost serve` replica on `db` without the collector, notifying `hook`; `extra`
/// adds or overrides settings (environment variables) of its own.
pub(crate) async fn start_replica(
    dir: &std::path::Path,
    name: &str,
    db: &str,
    hook: &str,
    extra: impl FnOnce(&mut std::process::Command),
) -> Server {
    Server::start(dir, name, |c| {
        c.env("DATABASE_URL", db)
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("WATCHPOST_COLLECTOR", "false")
            .env("ALERT_WEBHOOK_URL", hook)
            .env("ALERT_WEBHOOK_BACKOFF", "0.05")
            .env("WATCHPOST_LOG", "info");
        extra(c);
    })
    .await
}

/// A request with the admin token to `{url}{path}`.
pub(crate) fn admin_request(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, format!("{url}{path}"))
        .header("x-admin-token", ADMIN_TOKEN)
}

/// A global rule `cpu > 90` (for 0 s) named `name`, with the built-in host-down rule
/// switched off (agents that stop at the end of a test are not what it is about); returns
/// the new rule's id.
pub(crate) async fn cpu_rule_without_host_down(
    client: &reqwest::Client,
    url: &str,
    name: &str,
) -> i64 {
    use reqwest::Method;
    let rule = admin_request(client, Method::POST, url, "/rules")
        .json(&json!({"name": name, "metric": "cpu", "comparison": ">", "threshold": 90, "for": 0}))
        .send()
        .await
        .unwrap();
    let rule_id = json_with_status(rule, StatusCode::CREATED).await["id"]
        .as_i64()
        .unwrap();
    let rules = admin_request(client, Method::GET, url, "/rules")
        .send()
        .await
        .unwrap();
    let rules = json_with_status(rules, StatusCode::OK).await;
    let builtin = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "missed_intervals")
        .expect("built-in rule")["id"]
        .as_i64()
        .unwrap();
    let off = admin_request(client, Method::PUT, url, &format!("/rules/{builtin}"))
        .json(&json!({"metric": "missed_intervals", "comparison": ">=", "threshold": 10, "enabled": false}))
        .send()
        .await
        .unwrap();
    json_with_status(off, StatusCode::OK).await;
    rule_id
}

/// Creates `n` agent hosts named `{prefix}-{i}`; returns (id, agent token) of each.
pub(crate) async fn create_agent_hosts(
    client: &reqwest::Client,
    url: &str,
    prefix: &str,
    n: usize,
) -> Vec<(i64, String)> {
    let mut hosts = Vec::new();
    for i in 0..n {
        let resp = admin_request(client, reqwest::Method::POST, url, "/admin/hosts")
            .json(&json!({"name": format!("{prefix}-{i}")}))
            .send()
            .await
            .unwrap();
        let body = json_with_status(resp, StatusCode::CREATED).await;
        hosts.push((
            body["id"].as_i64().unwrap(),
            body["token"].as_str().unwrap().to_owned(),
        ));
    }
    hosts
}

/// Posts one batch through the "load balancer": the preferred replica first, then the
/// other, until one acknowledges it (bounded).
async fn send(
    client: &reqwest::Client,
    urls: &[String],
    first: usize,
    token: &str,
    body: &Value,
) -> bool {
    for attempt in 0..8 {
        let url = &urls[(first + attempt) % urls.len()];
        let resp = client
            .post(format!("{url}/ingest"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await;
        if let Ok(r) = resp {
            if r.status() == StatusCode::OK {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_lead_replica_loses_no_sample_and_no_alert() {
    if engine() != Engine::Postgres {
        eprintln!("skipped: two replicas need PostgreSQL (set WATCHPOST_TEST_DATABASE_URL)");
        return;
    }
    let (db, _guard) = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start().await;
    let mut a = start_replica(dir.path(), "replica-a", &db, &hook.url(), |_| {}).await;
    let b = start_replica(dir.path(), "replica-b", &db, &hook.url(), |_| {}).await;
    let urls = vec![a.base_url.clone(), b.base_url.clone()];
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // One service: a user registered on A logs in on B; a token revoked on B is dead on
    // A at once (tokens live in the database, no replica caches them).
    let creds = json!({"username": unique_username("replica"), "password": PASSWORD});
    let reg = client
        .post(format!("{}/register", urls[0]))
        .json(&creds)
        .send()
        .await
        .unwrap();
    json_with_status(reg, StatusCode::CREATED).await;
    let login = client
        .post(format!("{}/login", urls[1]))
        .json(&creds)
        .send()
        .await
        .unwrap();
    let token = json_with_status(login, StatusCode::OK).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let on = |i: usize, path: &str| {
        client
            .get(format!("{}{path}", urls[i]))
            .header("token", token.clone())
    };
    assert_eq!(
        on(0, "/alerts").send().await.unwrap().status(),
        StatusCode::OK
    );
    let out = client
        .post(format!("{}/logout", urls[1]))
        .header("token", token.clone())
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success(), "logout: {}", out.status());
    assert_error(
        on(0, "/alerts").send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // A global rule on the agents' CPU; the built-in host-down rule off (the agents stop
    // at the end, and their silence is not what this test is about).
    let rule_id = cpu_rule_without_host_down(&client, &urls[0], "replica cpu").await;
    let hosts = create_agent_hosts(&client, &urls[0], "replica-agent", HOSTS).await;

    // The agents: one sample per period each, alternating between the replicas.
    let acked: Arc<Mutex<Acked>> = Default::default();
    let failed = Arc::new(Mutex::new(0usize));
    let t0 = now_ms();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, (host_id, token)) in hosts.clone().into_iter().enumerate() {
        let (client, urls, acked, failed) =
            (client.clone(), urls.clone(), acked.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0i64;
            while started.elapsed() < RUN {
                let ts = t0 + i * PERIOD_MS;
                let cpu = cpu_of(index, i);
                let mut s = wire(ts, 1.0);
                s["cpu"] = json!(cpu);
                let body = json!({
                    "batch_id": format!("h{host_id}-{i}"),
                    "agent_version": "replica-test",
                    "interval_ms": PERIOD_MS,
                    "samples": [s],
                });
                if send(&client, &urls, i as usize % 2, &token, &body).await {
                    acked
                        .lock()
                        .unwrap()
                        .entry(host_id)
                        .or_default()
                        .push((ts, cpu));
                } else {
                    *failed.lock().unwrap() += 1;
                }
                i += 1;
                let next = Duration::from_millis((i * PERIOD_MS) as u64);
                if let Some(wait) = next.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }));
    }

    // Mid-run: SIGKILL whichever replica holds the agent-alerting lease.
    tokio::time::sleep(KILL_AFTER).await;
    let mut settings = test_settings(&db);
    settings.admin_token = None;
    let store = watchpost::store::connect(&settings).await.expect("connect");
    let lease = store
        .lease(LEASE)
        .await
        .unwrap()
        .expect("someone holds the lease");
    let pid_of = |holder: &str| holder.split(':').nth(1).map(str::to_owned);
    let holder_pid = pid_of(&lease.holder).expect("pid in holder");
    let (mut victim, survivor) = if holder_pid == a.child.id().to_string() {
        (a, b)
    } else {
        assert_eq!(
            holder_pid,
            b.child.id().to_string(),
            "holder {}",
            lease.holder
        );
        (b, a)
    };
    victim.child.kill().expect("SIGKILL");
    victim.child.wait().unwrap();
    let killed_at = now_ms();
    a = survivor;

    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(*failed.lock().unwrap(), 0, "every batch reached a replica");

    // Every acknowledged sample is stored, once.
    let mut expected_spells = 0usize;
    for (host_id, samples) in &acked {
        let stored = store.samples_between(*host_id, 0, i64::MAX).await.unwrap();
        let stored: Vec<i64> = stored.iter().map(|s| s.ts).collect();
        let want: Vec<i64> = samples.iter().map(|(ts, _)| *ts).collect();
        assert_eq!(
            stored, want,
            "host {host_id}: stored samples differ from acknowledged"
        );
        let mut breach = false;
        for (_, cpu) in samples {
            if *cpu > 90.0 && !breach {
                expected_spells += 1;
            }
            breach = *cpu > 90.0;
        }
    }

    // The survivor took the lease over and judged everything, once: one alert per spell.
    let deadline = Instant::now() + Duration::from_secs(40);
    let ours = loop {
        let lease = store.lease(LEASE).await.unwrap();
        let rows = all_alerts(store.as_ref()).await;
        let ours: Vec<_> = rows
            .into_iter()
            .filter(|a| a.rule_id == Some(rule_id))
            .collect();
        let survivor_leads =
            lease.as_ref().and_then(|l| pid_of(&l.holder)) == Some(a.child.id().to_string());
        if survivor_leads && ours.len() >= expected_spells {
            break ours;
        }
        assert!(
            Instant::now() < deadline,
            "after 40 s: {} alerts for {expected_spells} spells; lease {lease:?}\nsurvivor log:\n{}",
            ours.len(),
            read(&a.stderr)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        ours.len(),
        expected_spells,
        "one alert per breach spell: {ours:?}"
    );
    assert!(
        ours.iter()
            .any(|al| al.ts > killed_at - 2_000 || al.resolved_at.is_some_and(|r| r > killed_at)),
        "the survivor judged spells after the kill"
    );

    // Deliveries: every alert's "firing" reached the receiver under exactly one
    // webhook-id (a retry of the same message keeps its id).
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let stats = store.outbox_stats().await.unwrap();
        if stats.pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "outbox not drained: {stats:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut ids: HashMap<(i64, String), BTreeSet<String>> = HashMap::new();
    for r in hook.received() {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let (Some(alert), Some(event)) = (body["alert_id"].as_i64(), body["event"].as_str()) else {
            continue;
        };
        ids.entry((alert, event.to_owned()))
            .or_default()
            .insert(r.webhook_id.clone().unwrap_or_default());
    }
    for al in all_alerts(store.as_ref()).await {
        let firing = ids.get(&(al.id, "firing".to_owned()));
        assert_eq!(
            firing.map(BTreeSet::len),
            Some(1),
            "alert {} ({}) firing deliveries: {firing:?}",
            al.id,
            al.rule_name
        );
        if al.resolved_at.is_some() {
            let resolved = ids.get(&(al.id, "resolved".to_owned()));
            assert_eq!(
                resolved.map(BTreeSet::len),
                Some(1),
                "alert {} resolved: {resolved:?}",
                al.id
            );
        }
    }
    eprintln!(
        "replicas: {} samples acknowledged, {expected_spells} spells, {} webhooks received, lease taken over",
        acked.values().map(Vec::len).sum::<usize>(),
        hook.received().len()
    );
    store.close().await;
}

async fn all_alerts(store: &dyn watchpost::store::Store) -> Vec<watchpost::store::Alert> {
    // Admin's view (viewer 0 sees global alerts; these rules are global).
    store.list_alerts(0, 10_000).await.unwrap()
}
