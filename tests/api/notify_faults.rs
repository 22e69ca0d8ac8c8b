//! Notifier fault scenarios F9 and F10 (docs/security.md §3) and head-of-line isolation,
//! with real loopback receivers: a clock 10 minutes fast against a receiver verifying
//! Standard Webhooks signatures with the standard ±5 minute tolerance; a hung receiver
//! next to a healthy one; and the real binary killed and restarted five times while 500
//! deliveries are due.

use crate::binary::Server;
use crate::helpers::*;
use crate::notify::{breach, WAIT};
use crate::pages::{unescape_html, Browser};
use crate::receivers::WebhookReceiver;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use watchpost::alerts::Clock;
use watchpost::notify::sign::new_message_id;
use watchpost::notify::worker::{test_payload, Notifier};
use watchpost::store::{ChannelInput, Scope, Store};

/// Ten minutes: twice the tolerance of a Standard Webhooks receiver.
const SKEW_MS: i64 = 10 * 60 * 1000;

/// The machine's clock plus an offset the test can change (an NTP step).
struct SkewedClock(AtomicI64);

impl Clock for SkewedClock {
    fn now_ms(&self) -> i64 {
        now_ms() + self.0.load(Ordering::SeqCst)
    }
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    json_with_status(app.get(path, token).await, StatusCode::OK).await
}

/// Steps `worker` until `rx` has seen `n` requests (bounded by `WAIT`).
async fn step_until(worker: &Notifier, rx: &WebhookReceiver, n: usize) {
    let deadline = Instant::now() + WAIT;
    while rx.received().len() < n && Instant::now() < deadline {
        if let Err(e) = worker.step().await {
            panic!("worker step: {e}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rx.received().len(), n, "requests the receiver saw");
}

/// F10: with this host's clock 10 minutes fast the receiver refuses every attempt (401).
/// Each one is recorded as a failure and retried on the schedule, the error tells the
/// operator what to check (API and dashboard), nothing is marked delivered; once the
/// clock is right the same delivery arrives, same webhook-id, and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_clock_skew_is_retried_with_a_clear_error_then_delivered() {
    let rx = WebhookReceiver::start().await;
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        s.notifier = false;
        s.allow_private_webhooks = true;
        s.alert_webhook_backoff = 0.05;
    })
    .await;
    let browser = Browser::new(&app);
    let (_, name) = browser.register_new().await;
    let token = app.login(&name, PASSWORD).await;
    let ch = json_with_status(
        app.post_json(
            "/channels",
            &json!({"kind": "webhook", "url": rx.url(), "name": "skewed"}),
            &token,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    rx.verify_with(ch["secret"].as_str().unwrap());
    json_with_status(
        app.post_json(
            "/rules",
            &json!({"metric": "cpu", "threshold": 60, "name": "skew cpu"}),
            &token,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    breach(&app, &[70.0]).await;

    let clock = Arc::new(SkewedClock(AtomicI64::new(SKEW_MS)));
    let worker = Notifier::new(app.store.clone(), &app.settings, clock.clone()).unwrap();
    step_until(&worker, &rx, 3).await;
    let got = rx.received();
    let id = got[0].webhook_id.clone().expect("webhook-id");
    for r in &got {
        assert_eq!(r.verified, Some(false), "the receiver refused it");
        assert_eq!(r.webhook_id.as_deref(), Some(id.as_str()));
        let ts: i64 = r.webhook_timestamp.as_deref().unwrap().parse().unwrap();
        let ahead = ts - now_ms() / 1000;
        assert!((595..=605).contains(&ahead), "timestamp {ahead} s ahead");
    }

    // What the operator sees through the API: a pending delivery, three failed attempts,
    // the next one scheduled, and an error that says what to check.
    let list = get_json(&app, "/deliveries", &token).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let d = &list[0];
    assert_eq!(d["state"], "pending", "{d}");
    assert_eq!(d["attempts"], 3, "{d}");
    assert_eq!(d["message_id"].as_str(), Some(id.as_str()));
    assert_eq!(d["last_status"], 401);
    let error = d["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("HTTP 401: invalid signature or timestamp (receiver refused the request: check the channel's signing secret and that this host's clock is NTP-synced"),
        "{error}"
    );
    let log = d["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|a| a["status"] == 401 && a["outcome"] == "retry" && a["error"] == error),
        "{log:?}"
    );
    // Scheduled after the last attempt, on the worker's (fast) clock.
    let last_start = parse_z(log[2]["started_at"].as_str().unwrap());
    let next = parse_z(d["next_attempt_at"].as_str().unwrap());
    assert!(
        next > last_start,
        "next {next} after last attempt {last_start}"
    );
    assert!(next > now_ms() + SKEW_MS - 5000, "{next}");
    let delivered = get_json(&app, "/deliveries?state=delivered", &token).await;
    assert_eq!(delivered, json!([]));
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.delivered, stats.dead), (1, 0, 0));
    // And on the dashboard's delivery log.
    let page = unescape_html(&browser.page("/dashboard/deliveries", StatusCode::OK).await);
    assert!(
        page.contains(
            "check the channel's signing secret and that this host's clock is NTP-synced"
        ),
        "{page}"
    );

    // The clock is stepped back to the right time. The retry was scheduled on the fast
    // clock, so it is 10 minutes away now: the schedule is kept (nothing is sent early)…
    clock.0.store(0, Ordering::SeqCst);
    assert_eq!(
        worker.step().await.unwrap(),
        0,
        "not due on the corrected clock"
    );
    // …and the test lets those 10 minutes pass instead of waiting them out.
    let db = RawDb::connect(&app.database_url).await;
    db.exec(&format!(
        "UPDATE deliveries SET next_attempt_at = next_attempt_at - {SKEW_MS} WHERE state = 'pending'"
    ))
    .await;
    step_until(&worker, &rx, 4).await;
    let last = &rx.received()[3];
    assert_eq!(last.verified, Some(true), "verifies on time");
    assert_eq!(
        last.webhook_id.as_deref(),
        Some(id.as_str()),
        "same webhook-id"
    );
    let d = &get_json(&app, "/deliveries", &token).await[0];
    assert_eq!(d["state"], "delivered", "{d}");
    assert_eq!(d["attempts"], 4);
    assert_eq!(d["attempt_log"][3]["status"], 200);
    assert_eq!(d["attempt_log"][3]["outcome"], "delivered");
    assert_eq!(d["last_error"], Value::Null);
    db.close().await;
}

async fn webhook_channel(app: &TestApp, name: &str, url: &str) -> i64 {
    let input = ChannelInput {
        name: name.into(),
        kind: "webhook".into(),
        target: url.into(),
        enabled: true,
    };
    app.store
        .create_channel(None, &input, Some(crate::notify::SECRET), now_ms())
        .await
        .unwrap()
        .id
}

async fn enqueue(store: &dyn Store, channel: i64, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = new_message_id();
        let now = now_ms();
        store
            .enqueue_test(channel, &test_payload("x", now), &id, now)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

fn ids_of(rx: &WebhookReceiver) -> BTreeSet<String> {
    rx.received()
        .into_iter()
        .filter_map(|r| r.webhook_id)
        .collect()
}

/// F2(f)/F9: one receiver accepts and never answers. Its attempts hold at most the
/// per-channel limit of slots until they time out; the other channel's deliveries, queued
/// after them, arrive meanwhile. When it recovers, its deliveries follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_hung_channel_does_not_hold_up_other_channels() {
    let hung = WebhookReceiver::start().await;
    hung.hang(true);
    let healthy = WebhookReceiver::start().await;
    let app = spawn_app_with(|s| {
        s.allow_private_webhooks = true;
        s.webhook_timeout_secs = 3;
        s.alert_webhook_backoff = 0.05;
        s.notify_concurrency = 8;
        s.notify_channel_concurrency = 4;
    })
    .await;
    let a = webhook_channel(&app, "hung", &hung.url()).await;
    let b = webhook_channel(&app, "healthy", &healthy.url()).await;
    // The hung channel's deliveries are older, so they are claimed first.
    let a_ids = enqueue(app.store.as_ref(), a, 12).await;
    let b_ids = enqueue(app.store.as_ref(), b, 6).await;

    let got_b = healthy.wait_for(6, WAIT).await;
    let b_done = Instant::now();
    assert_eq!(ids_of(&healthy), b_ids.iter().cloned().collect());
    let hung_got = hung.received();
    assert_eq!(
        hung_got.len(),
        4,
        "the hung channel holds exactly its 4 slots, the rest wait"
    );
    assert_eq!(hung.in_flight(), 4);
    assert!(hung.max_in_flight() <= 4, "{}", hung.max_in_flight());
    let hung_since = hung_got[0].at;
    let last_b = got_b.iter().map(|r| r.at).max().unwrap();
    assert!(
        last_b < hung_since + Duration::from_secs(2),
        "the healthy channel waited {:?} for the hung one (timeout 3 s)",
        last_b.saturating_duration_since(hung_since)
    );
    assert!(b_done < hung_since + Duration::from_secs(3));

    // The hung attempts time out (3 s), free their slots, and are retried.
    hung.hang(false);
    let deadline = Instant::now() + WAIT;
    let list = loop {
        let (list, _) = app
            .store
            .list_deliveries(Scope::All, &Default::default(), 100, 0)
            .await
            .unwrap();
        if list.iter().all(|d| d.state == "delivered") || Instant::now() >= deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(list.len(), 18);
    assert!(
        list.iter().all(|d| d.state == "delivered"),
        "{:?}",
        list.iter()
            .map(|d| (&d.state, d.attempts))
            .collect::<Vec<_>>()
    );
    assert_eq!(ids_of(&hung), a_ids.iter().cloned().collect());
    let timed_out: Vec<_> = list
        .iter()
        .filter(|d| d.channel_id == a && d.attempts == 2)
        .collect();
    assert_eq!(timed_out.len(), 4, "the four hung attempts were retried");
    for d in timed_out {
        let log = app.store.delivery_attempts(d.id).await.unwrap();
        assert_eq!(log[0].outcome, "retry");
        assert!(
            log[0].error.as_deref().unwrap_or("").contains("timed out"),
            "{log:?}"
        );
    }
}

/// F9: the real binary is killed (SIGKILL) and started again five times within about a
/// minute while 500 deliveries to three receivers are due (one receiver refuses the
/// first attempt of every message, so retries are scheduled across the restarts).
/// Nothing is lost (500 distinct webhook-ids, repeats only under the same id, every one
/// delivered in the database), the killed processes' leases are reclaimed, retries
/// continue from the database, and no incarnation ever has more attempts in flight to one
/// receiver than the per-channel limit: no burst at start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_binary_restart_storm_loses_nothing_and_keeps_the_channel_limit() {
    const LIMIT: usize = 3;
    const LEASE_SECS: u64 = 6;
    let receivers = [
        WebhookReceiver::start().await,
        WebhookReceiver::start().await,
        WebhookReceiver::start().await,
    ];
    for rx in &receivers {
        rx.delay(Duration::from_millis(150));
    }
    receivers[2].fail_first_attempt(503);
    let (url, _guard) = fresh_database().await;
    let settings = watchpost::config::Settings {
        database_url: url.clone(),
        ..watchpost::config::Settings::default()
    };
    let store = watchpost::store::connect(&settings).await.unwrap();
    let mut expected: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (i, (rx, n)) in receivers.iter().zip([200, 200, 100]).enumerate() {
        let input = ChannelInput {
            name: format!("storm {i}"),
            kind: "webhook".into(),
            target: rx.url(),
            enabled: true,
        };
        let ch = store
            .create_channel(None, &input, Some(crate::notify::SECRET), now_ms())
            .await
            .unwrap();
        expected.insert(
            i,
            enqueue(store.as_ref(), ch.id, n)
                .await
                .into_iter()
                .collect(),
        );
    }
    store.close().await;
    let db = RawDb::connect(&url).await;
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
            .await,
        500
    );

    let dir = tempfile::tempdir().unwrap();
    let configure = |c: &mut std::process::Command| {
        c.env("DATABASE_URL", &url)
            .env("WATCHPOST_COLLECTOR", "false")
            .env("WATCHPOST_ALLOW_PRIVATE_WEBHOOKS", "true")
            .env("WATCHPOST_WEBHOOK_TIMEOUT_SECS", "1")
            .env("WATCHPOST_NOTIFY_LEASE_SECS", LEASE_SECS.to_string())
            .env("WATCHPOST_NOTIFY_CONCURRENCY", "8")
            .env("WATCHPOST_NOTIFY_CHANNEL_CONCURRENCY", LIMIT.to_string())
            .env("ALERT_WEBHOOK_BACKOFF", "0.2");
    };
    let started = Instant::now();
    let mut leased_at_kills = Vec::new();
    for (round, run_ms) in [1500u64, 2200, 1200, 2500, 1800].into_iter().enumerate() {
        let mut server = Server::start(dir.path(), &format!("storm{round}"), configure).await;
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("reap");
        // Claims the dead process held; its requests still being answered finish first,
        // so the next incarnation's concurrency is measured on its own.
        leased_at_kills.push(
            db.scalar(&format!(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND locked_until > {}",
                now_ms()
            ))
            .await,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while receivers.iter().any(|r| r.in_flight() > 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            receivers.iter().all(|r| r.in_flight() == 0),
            "requests of the killed process still open"
        );
    }
    let storm = started.elapsed();
    assert!(
        storm < Duration::from_secs(60),
        "five restarts took {storm:?}"
    );
    let delivered_during_storm = db
        .scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'")
        .await;

    let last = Server::start(dir.path(), "storm-final", configure).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let delivered = loop {
        let n = db
            .scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'")
            .await;
        if n == 500 || Instant::now() >= deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        delivered,
        500,
        "after the storm:\n{}",
        crate::binary::read(&last.stderr)
    );
    drop(last);

    // Every message arrived at its own receiver, signed; repeats only under the same id.
    let mut all = BTreeSet::new();
    let mut repeats = 0;
    for (i, rx) in receivers.iter().enumerate() {
        let got = rx.received();
        assert!(
            got.iter()
                .all(|r| WebhookReceiver::verify(r, crate::notify::SECRET)),
            "receiver {i}: a request did not verify"
        );
        let ids = ids_of(rx);
        assert_eq!(ids, expected[&i], "receiver {i} got exactly its messages");
        repeats += got.len() - ids.len();
        all.extend(ids);
        assert!(
            rx.max_in_flight() <= LIMIT,
            "receiver {i}: {} requests at once (limit {LIMIT})",
            rx.max_in_flight()
        );
    }
    assert_eq!(all.len(), 500, "500 distinct webhook-ids");
    // The third receiver refused every first attempt: each of its deliveries was retried
    // from the schedule in the database, whichever incarnation made the next attempt.
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM deliveries d JOIN channels c ON c.id = d.channel_id \
             WHERE c.name = 'storm 2' AND d.attempts >= 2"
        )
        .await,
        100
    );
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM deliveries WHERE state <> 'delivered' OR locked_by IS NOT NULL"
        )
        .await,
        0
    );
    // The kills caught claimed deliveries; they were taken over once their leases ran out
    // (everything is delivered), and the storm made progress before the final run.
    assert!(
        leased_at_kills.iter().sum::<i64>() > 0,
        "no kill caught a claimed delivery: {leased_at_kills:?}"
    );
    assert!(delivered_during_storm > 0);
    assert!(
        receivers.iter().all(|r| r.max_in_flight() >= 2),
        "the channels were worked in parallel"
    );
    eprintln!(
        "storm: {storm:?}, leased at kills {leased_at_kills:?}, delivered during the storm \
         {delivered_during_storm}, repeated requests {repeats}"
    );
    db.close().await;
}

/// The store side of the per-channel limit: a claim skips the channels it is told are
/// full, the next-due time ignores them too, and claimed deliveries the worker did not
/// start (stopping) go back to the queue at once with their attempt count restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_claims_skip_full_channels_and_unsent_claims_are_released() {
    let app = spawn_app_with(|s| {
        s.allow_private_webhooks = true;
        s.notifier = false;
    })
    .await;
    let a = webhook_channel(&app, "a", "http://127.0.0.1:9/a").await;
    let b = webhook_channel(&app, "b", "http://127.0.0.1:9/b").await;
    enqueue(app.store.as_ref(), a, 3).await;
    enqueue(app.store.as_ref(), b, 2).await;
    let store = app.store.as_ref();
    let now = now_ms();
    let due_b = store.next_delivery_due(&[a]).await.unwrap();
    assert!(due_b.is_some_and(|t| t <= now));
    let claimed = store
        .claim_deliveries_skipping("w#1", now, 60_000, 10, &[a])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|d| d.channel_id == b && d.attempts == 1));
    // B's are leased now: nothing of B's is due before the lease ends, A's are skipped.
    let next = store.next_delivery_due(&[a]).await.unwrap().unwrap();
    assert!(next >= now + 60_000, "{next}");
    assert!(store
        .claim_deliveries_skipping("w#2", now, 60_000, 10, &[a])
        .await
        .unwrap()
        .is_empty());
    let rest = store
        .claim_deliveries_skipping("w#3", now, 60_000, 10, &[])
        .await
        .unwrap();
    assert_eq!(rest.len(), 3);
    assert!(rest.iter().all(|d| d.channel_id == a));
    // Released: claimable again at once, as if never claimed; a wrong token releases nothing.
    let mut claims: Vec<(i64, String)> = rest.iter().map(|d| (d.id, "w#3".to_owned())).collect();
    claims.push((claimed[0].id, "w#3".to_owned()));
    assert_eq!(store.release_deliveries(&claims).await.unwrap(), 3);
    let again = store
        .claim_deliveries_skipping("w#4", now, 60_000, 10, &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|d| d.channel_id == a && d.attempts == 1));
}

/// R38 for the notifier: stopped (SIGTERM in the service) while a hung receiver holds its
/// four slots and four more of its deliveries are claimed but waiting, the worker makes
/// no new attempt, records the four in flight when they time out, and gives the four
/// waiting ones back at once (unleased, no attempt counted), so a restart or another
/// replica need not wait out their leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_stopping_worker_releases_claims_it_did_not_start() {
    let hung = WebhookReceiver::start().await;
    hung.hang(true);
    let app = spawn_app_with(|s| {
        s.allow_private_webhooks = true;
        s.notifier = false;
        s.webhook_timeout_secs = 2;
        s.notify_concurrency = 8;
        s.notify_channel_concurrency = 4;
        s.notify_startup_jitter_ms = 0;
    })
    .await;
    let a = webhook_channel(&app, "hung", &hung.url()).await;
    enqueue(app.store.as_ref(), a, 8).await;
    let worker = Notifier::new(
        app.store.clone(),
        &app.settings,
        Arc::new(watchpost::alerts::SystemClock),
    )
    .unwrap();
    let (stop_tx, stop) = watchpost::tasks::Stop::new();
    let running = tokio::spawn(worker.run(Arc::new(tokio::sync::Notify::new()), stop));
    let got = hung.wait_for(4, WAIT).await;
    assert_eq!(got.len(), 4);
    // All eight were claimed in the first round: four in flight, four waiting.
    let leased =
        |list: &[watchpost::store::Delivery]| list.iter().filter(|d| d.attempts == 1).count();
    let (list, _) = app
        .store
        .list_deliveries(Scope::All, &Default::default(), 100, 0)
        .await
        .unwrap();
    assert_eq!(leased(&list), 8, "claimed in one round");
    let stopped_at = Instant::now();
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the worker stops once its attempts time out")
        .unwrap();
    assert!(stopped_at.elapsed() < Duration::from_secs(5));
    assert_eq!(hung.received().len(), 4, "no attempt after the stop");
    let (list, _) = app
        .store
        .list_deliveries(Scope::All, &Default::default(), 100, 0)
        .await
        .unwrap();
    let mut attempts: Vec<i64> = list.iter().map(|d| d.attempts).collect();
    attempts.sort_unstable();
    assert_eq!(
        attempts,
        vec![0, 0, 0, 0, 1, 1, 1, 1],
        "attempts counted per delivery after the stop"
    );
    assert!(list.iter().all(|d| d.state == "pending"));
    for d in list.iter().filter(|d| d.attempts == 1) {
        assert!(
            d.last_error.as_deref().unwrap_or("").contains("timed out"),
            "{d:?}"
        );
    }
    // The released four can be claimed again right away; the four that timed out wait
    // for their retry (back-off), not for a lease.
    let released: BTreeSet<i64> = list
        .iter()
        .filter(|d| d.attempts == 0)
        .map(|d| d.id)
        .collect();
    let again = app
        .store
        .claim_deliveries("check", now_ms(), 60_000, 100)
        .await
        .unwrap();
    let again: BTreeSet<i64> = again.iter().map(|d| d.id).collect();
    assert_eq!(again, released);
    let retry_at = list
        .iter()
        .filter(|d| d.attempts == 1)
        .map(|d| d.next_attempt_at)
        .max()
        .unwrap();
    let later = app
        .store
        .claim_deliveries("check-later", retry_at, 60_000, 100)
        .await
        .unwrap();
    assert_eq!(
        later.len(),
        4,
        "no lease is left on the timed-out ones either"
    );
}
