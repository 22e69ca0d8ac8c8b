//! Notifications end to end, with real peers on loopback: the rule engine fires, the
//! outbox worker of the running app delivers to a real HTTP receiver (signatures checked
//! by the independent `standardwebhooks` crate) or a real SMTP sink, through failures,
//! outages, restarts and a second worker.

use crate::helpers::*;
use crate::receivers::{Received, SmtpSink, WebhookReceiver};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use watchpost::alerts::SystemClock;
use watchpost::config::{Secret, Settings};
use watchpost::notify::worker::Notifier;
use watchpost::tasks::alerting::AlertEngine;

/// A fixed global webhook secret, so the test can verify signatures.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) fn global_webhook(url: &str) -> impl FnOnce(&mut Settings) + '_ {
    move |s: &mut Settings| {
        s.alert_webhook_url = Some(Secret::new(url));
        s.alert_webhook_secret = Some(Secret::new(SECRET));
        s.alert_webhook_backoff = 0.05;
    }
}

fn body(r: &Received) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("webhook body is not JSON: {e}"))
}

/// Stores samples of the given CPU values one second apart (ending now) and runs them
/// through a fresh engine, as the collector would.
pub(crate) async fn breach(app: &TestApp, cpus: &[f64]) {
    let mut eng = AlertEngine::new(app.store.clone()).await.expect("engine");
    feed_with(app, &mut eng, cpus).await;
}

async fn feed_with(app: &TestApp, eng: &mut AlertEngine, cpus: &[f64]) {
    let t0 = now_ms() - cpus.len() as i64 * 1000;
    // Past the samples already stored, so none collides.
    let latest = app
        .store
        .recent_samples(app.local_host_id, 1)
        .await
        .unwrap()
        .first()
        .map_or(0, |s| s.ts);
    let t0 = t0.max(latest + 1000);
    let samples: Vec<_> = cpus
        .iter()
        .enumerate()
        .map(|(i, &c)| sample(app.local_host_id, t0 + i as i64 * 1000, c, 10.0))
        .collect();
    app.insert_samples(&samples).await;
    for s in &samples {
        eng.observe(std::slice::from_ref(s), s.ts)
            .await
            .expect("observe");
    }
}

pub(crate) async fn admin_get(app: &TestApp, path: &str) -> Value {
    let resp = app
        .client
        .get(app.url(path))
        .header("x-admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    json_with_status(resp, StatusCode::OK).await
}

/// Polls the admin's view of `/deliveries` until `pred` holds (bounded).
pub(crate) async fn wait_deliveries(
    app: &TestApp,
    query: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let list = admin_get(app, &format!("/deliveries?{query}")).await;
        let list = list.as_array().cloned().unwrap_or_default();
        if pred(&list) || std::time::Instant::now() >= deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_firing_and_resolved_webhooks_are_signed_and_complete() {
    let rx = WebhookReceiver::start().await;
    let app = spawn_app_with(global_webhook(&rx.url())).await;
    breach(&app, &[50.0, 90.0, 95.0, 40.0]).await;
    let got = rx.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2, "firing and resolved");
    for r in &got {
        assert!(
            WebhookReceiver::verify(r, SECRET),
            "signature verifies with standardwebhooks"
        );
        assert_eq!(r.headers["content-type"], "application/json");
    }
    assert_ne!(
        got[0].webhook_id, got[1].webhook_id,
        "one message id per notification"
    );
    let (fire, resolve) = (body(&got[0]), body(&got[1]));
    let token = app.register_and_login().await;
    let alerts = json_with_status(app.get("/alerts", &token).await, StatusCode::OK).await;
    let alert = &alerts[0];
    assert_eq!(fire["type"], "cpu");
    assert_eq!(fire["value"], 90.0);
    assert_eq!(fire["threshold"], 80.0);
    assert_eq!(fire["status"], "firing");
    assert_eq!(fire["event"], "firing");
    assert_eq!(fire["comparison"], ">");
    assert_eq!(fire["rule"], "CPU above global threshold");
    assert_eq!(fire["host"], app.local_host);
    assert_eq!(fire["severity"], "warning");
    assert_eq!(fire["alert_id"], alert["id"]);
    assert_eq!(fire["ts"], alert["ts"], "ts is the breaching sample's time");
    assert!(fire["generated_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(resolve["status"], "resolved");
    assert_eq!(resolve["event"], "resolved");
    assert_eq!(resolve["alert_id"], alert["id"]);
    assert_eq!(resolve["peak"], 95.0);
    assert_eq!(resolve["resolved_at"], alert["resolved_at"]);
    // The delivery log agrees.
    let log = wait_deliveries(&app, "", |l| l.iter().all(|d| d["state"] == "delivered")).await;
    assert_eq!(log.len(), 2);
    for d in &log {
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["attempt_log"][0]["status"], 200);
        assert_eq!(d["attempt_log"][0]["outcome"], "delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_retries_500_twice_then_delivers_with_the_same_id() {
    let rx = WebhookReceiver::start().await;
    rx.respond_with(vec![500, 500]);
    let app = spawn_app_with(global_webhook(&rx.url())).await;
    breach(&app, &[90.0]).await;
    let got = rx.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3, "two failures and the success");
    let ids: BTreeSet<_> = got.iter().map(|r| r.webhook_id.clone()).collect();
    assert_eq!(ids.len(), 1, "webhook-id is stable across retries: {ids:?}");
    assert!(got.iter().all(|r| WebhookReceiver::verify(r, SECRET)));
    let log = wait_deliveries(&app, "", |l| {
        l.first().is_some_and(|d| d["state"] == "delivered")
    })
    .await;
    let d = &log[0];
    assert_eq!(d["attempts"], 3);
    let outcomes: Vec<_> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["status"].clone(), a["outcome"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (json!(500), json!("retry")),
            (json!(500), json!("retry")),
            (json!(200), json!("delivered"))
        ]
    );
    assert_eq!(
        Some(d["message_id"].as_str().unwrap().to_owned()),
        got[0].webhook_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_receiver_down_for_a_while_then_up_is_delivered() {
    let rx = WebhookReceiver::start().await;
    rx.stop().await;
    let app = spawn_app_with(global_webhook(&rx.url())).await;
    breach(&app, &[90.0]).await;
    // Several attempts fail while the receiver is down…
    let failing = wait_deliveries(&app, "", |l| {
        l.first().is_some_and(|d| d["attempts"].as_i64() >= Some(2))
    })
    .await;
    assert_eq!(failing[0]["state"], "pending", "{failing:?}");
    assert!(failing[0]["last_error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
    // …and it arrives once the receiver is back.
    rx.restart().await;
    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].webhook_id.as_deref(),
        failing[0]["message_id"].as_str()
    );
    let log = wait_deliveries(&app, "", |l| {
        l.first().is_some_and(|d| d["state"] == "delivered")
    })
    .await;
    assert_eq!(log[0]["state"], "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_410_disables_the_channel() {
    let rx = WebhookReceiver::start().await;
    rx.default_status(410);
    let app = spawn_app_with(global_webhook(&rx.url())).await;
    breach(&app, &[90.0, 10.0]).await;
    let log = wait_deliveries(&app, "state=dead", |l| l.len() == 2).await;
    // The firing notification met the 410; the resolved one, queued behind it, found the
    // channel disabled.
    let gone: Vec<_> = log
        .iter()
        .filter(|d| d["attempt_log"][0]["outcome"] == "gone")
        .collect();
    assert_eq!(gone.len(), 1, "{log:?}");
    assert_eq!(gone[0]["event"], "firing");
    assert_eq!(rx.received().len(), 1, "nothing was sent after the 410");
    let channels = admin_get(&app, "/channels").await;
    let ch = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"] == "env")
        .unwrap()
        .clone();
    assert_eq!(ch["enabled"], false);
    assert!(
        ch["disabled_reason"].as_str().unwrap().contains("410"),
        "{ch}"
    );
    // Later notifications are not queued for it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    breach(&app, &[95.0]).await;
    let all = admin_get(&app, "/deliveries").await;
    assert!(all.as_array().unwrap().len() <= 2, "{all}");
    assert_eq!(rx.received().len(), 1, "nothing sent after the 410");
}

/// A 302 is a failed attempt: retried on the schedule (never followed) until the retry
/// horizon runs out, then dead-lettered with the redirect hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_302_is_a_failure_retried_and_not_followed() {
    let rx = WebhookReceiver::start().await;
    rx.redirect(true);
    let app = spawn_app_with(|s| {
        global_webhook(&rx.url())(s);
        s.alert_webhook_retries = 2;
    })
    .await;
    breach(&app, &[90.0]).await;
    let log = wait_deliveries(&app, "state=dead", |l| !l.is_empty()).await;
    assert_eq!(log.len(), 1, "{log:?}");
    let d = &log[0];
    assert_eq!(d["last_status"], 302);
    assert_eq!(d["attempts"], 3, "first attempt plus two retries: {d}");
    let error = d["last_error"].as_str().unwrap();
    assert!(error.contains("redirects are not followed"), "{error}");
    assert!(error.contains("gave up after 3 attempts"), "{error}");
    let outcomes: Vec<_> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        vec![json!("retry"), json!("retry"), json!("dead")]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.received();
    assert_eq!(got.len(), 3, "one request per attempt");
    assert!(
        got.iter().all(|r| !r.path.contains("redirected")),
        "the redirect target was never requested"
    );
    assert!(got.iter().all(|r| r.webhook_id == got[0].webhook_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_retry_after_is_honoured() {
    let rx = WebhookReceiver::start().await;
    rx.respond_with(vec![429]);
    rx.retry_after(Some("2"));
    let app = spawn_app_with(global_webhook(&rx.url())).await;
    breach(&app, &[90.0]).await;
    let got = rx.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2);
    let gap = got[1].at.duration_since(got[0].at);
    // The back-off alone would wait ~50 ms; the receiver asked for 2 s.
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_dead_letter_can_be_sent_again_with_the_same_id() {
    let rx = WebhookReceiver::start().await;
    rx.default_status(503);
    let app = spawn_app_with(|s| {
        global_webhook(&rx.url())(s);
        s.alert_webhook_retries = 1;
    })
    .await;
    breach(&app, &[90.0]).await;
    let dead = wait_deliveries(&app, "state=dead", |l| !l.is_empty()).await;
    assert_eq!(dead[0]["attempts"], 2, "first attempt plus one retry");
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("gave up"),
        "{}",
        dead[0]
    );
    rx.default_status(200);
    let id = dead[0]["id"].as_i64().unwrap();
    let resp = app
        .client
        .post(app.url(&format!("/deliveries/{id}/retry")))
        .header("x-admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let again = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(again["state"], "pending");
    let log = wait_deliveries(&app, "", |l| {
        l.first().is_some_and(|d| d["state"] == "delivered")
    })
    .await;
    assert_eq!(log[0]["state"], "delivered");
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.webhook_id == got[0].webhook_id));
    // Only dead letters can be sent again.
    let resp = app
        .client
        .post(app.url(&format!("/deliveries/{id}/retry")))
        .header("x-admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::CONFLICT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_user_channels_get_their_own_rules_only() {
    let global = WebhookReceiver::start().await;
    let mine = WebhookReceiver::start().await;
    let app = spawn_app_with(|s| {
        global_webhook(&global.url())(s);
        s.allow_private_webhooks = true;
    })
    .await;
    let alice = app.register_and_login().await;
    let bob = app.register_and_login().await;
    let ch = json_with_status(
        app.post_json(
            "/channels",
            &json!({"kind": "webhook", "url": mine.url(), "name": "mine"}),
            &alice,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let secret = ch["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    json_with_status(
        app.post_json(
            "/rules",
            &json!({"metric": "cpu", "threshold": 60, "name": "alice cpu"}),
            &alice,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    // 70: above Alice's 60, below the global 80.
    breach(&app, &[70.0]).await;
    let got = mine.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert!(WebhookReceiver::verify(&got[0], &secret));
    assert!(
        !WebhookReceiver::verify(&got[0], SECRET),
        "signed with the channel's own secret"
    );
    assert_eq!(body(&got[0])["rule"], "alice cpu");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        global.received().is_empty(),
        "a user's alert does not go to the global channel"
    );
    // Deliveries are Alice's alone.
    let hers = json_with_status(app.get("/deliveries", &alice).await, StatusCode::OK).await;
    assert_eq!(hers.as_array().unwrap().len(), 1);
    let his = json_with_status(app.get("/deliveries", &bob).await, StatusCode::OK).await;
    assert!(his.as_array().unwrap().is_empty());
    let id = hers[0]["id"].as_i64().unwrap();
    assert_error(
        app.get(&format!("/deliveries/{id}"), &bob).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // A test notification arrives too.
    let resp = app
        .post_json(&format!("/channels/{}/test", ch["id"]), &json!({}), &alice)
        .await;
    let queued = json_with_status(resp, StatusCode::ACCEPTED).await;
    let got = mine.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2);
    assert_eq!(body(&got[1])["event"], "test");
    assert_eq!(got[1].webhook_id.as_deref(), queued["message_id"].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_ssrf_targets_are_refused() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    for url in [
        "http://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.7:8080/hook",
        "http://localhost:9/",
    ] {
        let resp = app
            .post_json("/channels", &json!({"kind": "webhook", "url": url}), &token)
            .await;
        let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(!detail.is_empty(), "{url}");
    }
    let resp = app
        .post_json(
            "/channels",
            &json!({"kind": "webhook", "url": "ftp://example.com/"}),
            &token,
        )
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    let list = json_with_status(app.get("/channels", &token).await, StatusCode::OK).await;
    assert!(list.as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_restart_does_not_notify_a_firing_alert_again() {
    let rx = WebhookReceiver::start().await;
    let app = spawn_app_with(global_webhook(&rx.url())).await;
    let mut eng = AlertEngine::new(app.store.clone()).await.unwrap();
    feed_with(&app, &mut eng, &[90.0, 91.0]).await;
    assert_eq!(rx.wait_for(1, WAIT).await.len(), 1);
    drop(eng);
    // "Restart": a new engine from the database; the breach goes on, then ends.
    let mut eng = AlertEngine::new(app.store.clone()).await.unwrap();
    feed_with(&app, &mut eng, &[92.0, 93.0, 20.0]).await;
    let got = rx.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events: Vec<Value> = rx
        .received()
        .iter()
        .map(|r| body(r)["event"].clone())
        .collect();
    assert_eq!(events, vec![json!("firing"), json!("resolved")], "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_email_is_delivered_retried_and_dead_lettered() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(|s| {
        s.alert_smtp_host = Some("127.0.0.1".into());
        s.alert_smtp_port = sink.port();
        s.alert_from = Some("watchpost@example.com".into());
        s.alert_to = Some("ops@example.com".into());
        s.alert_webhook_backoff = 0.05;
        s.alert_webhook_retries = 2;
    })
    .await;
    // Delivered.
    breach(&app, &[90.0]).await;
    let msgs = sink.wait_for(1, WAIT).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].rcpt_to, vec!["ops@example.com".to_owned()]);
    assert!(msgs[0].data.contains("Subject:"), "{}", msgs[0].data);
    assert!(msgs[0].data.contains("FIRING"), "{}", msgs[0].data);
    assert!(msgs[0].data.contains("text/plain") && msgs[0].data.contains("text/html"));
    // 451 (transient) then accepted: retried and delivered.
    sink.respond_with(vec![451]);
    breach(&app, &[10.0]).await;
    let msgs = sink.wait_for(2, WAIT).await;
    assert_eq!(msgs.len(), 2);
    assert!(msgs[1].data.contains("RESOLVED"), "{}", msgs[1].data);
    let log = wait_deliveries(&app, "", |l| {
        l.iter().all(|d| d["state"] == "delivered") && l.len() == 2
    })
    .await;
    let resolved = log.iter().find(|d| d["event"] == "resolved").unwrap();
    assert_eq!(resolved["attempts"], 2);
    assert_eq!(resolved["attempt_log"][0]["status"], 451);
    // 550 (permanent): dead-lettered at once.
    sink.respond_with(vec![550]);
    breach(&app, &[95.0]).await;
    let dead = wait_deliveries(&app, "state=dead", |l| !l.is_empty()).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["attempts"], 1);
    assert_eq!(dead[0]["last_status"], 550);
}

/// Two workers on one database (two pools, as two replicas would have) share the queue
/// and never send the same delivery twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notify_two_workers_deliver_every_alert_exactly_once() {
    let rx = WebhookReceiver::start().await;
    let app = spawn_app_with(|s| {
        global_webhook(&rx.url())(s);
        s.notifier = false;
    })
    .await;
    let n = 30;
    for i in 0..n {
        let resp = app
            .client
            .post(app.url("/rules"))
            .header("x-admin-token", ADMIN_TOKEN)
            .json(&json!({"metric": "cpu", "comparison": ">=", "threshold": 1 + i}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    // 50 % breaches the 30 new rules (thresholds 1–30), not the managed 80 %.
    breach(&app, &[50.0]).await;
    let settings = Settings {
        database_url: app.database_url.clone(),
        notify_concurrency: 4,
        ..Settings::default()
    };
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = watchpost::store::connect(&settings)
            .await
            .expect("second pool");
        let w = Notifier::new(store, &settings, Arc::new(SystemClock)).unwrap();
        workers.push(tokio::spawn(async move {
            let mut sent = 0;
            let deadline = std::time::Instant::now() + WAIT;
            while std::time::Instant::now() < deadline {
                match w.step().await {
                    Ok(0) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Ok(k) => sent += k,
                    Err(e) => panic!("worker step: {e}"),
                }
                if sent >= n {
                    break;
                }
            }
            sent
        }));
    }
    rx.wait_for(n, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for w in workers {
        w.abort();
    }
    let got = rx.received();
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for r in &got {
        *per_id
            .entry(r.webhook_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), n, "every alert delivered");
    assert!(
        per_id.values().all(|&c| c == 1),
        "no duplicates: {per_id:?}"
    );
    let log = wait_deliveries(&app, "limit=200", |l| {
        l.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    assert_eq!(log.len(), n);
    assert!(log.iter().all(|d| d["attempts"] == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_test_sends_are_rate_limited_per_owner() {
    let app = spawn_app_with(|s| {
        s.allow_private_webhooks = true;
        s.notifier = false;
    })
    .await;
    let alice = app.register_and_login().await;
    let bob = app.register_and_login().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let ch = json_with_status(
            app.post_json(
                "/channels",
                &json!({"kind": "webhook", "url": "http://127.0.0.1:9/"}),
                &alice,
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        ids.push(ch["id"].as_i64().unwrap());
    }
    // Five in a minute, spread over two channels, then 429: the limit is per owner.
    for i in 0..5 {
        let resp = app
            .post_json(
                &format!("/channels/{}/test", ids[i % 2]),
                &json!({}),
                &alice,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "test {i}");
    }
    let resp = app
        .post_json(&format!("/channels/{}/test", ids[0]), &json!({}), &alice)
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "60");
    assert!(assert_error(resp, StatusCode::TOO_MANY_REQUESTS)
        .await
        .contains("too many test"));
    // Bob is not affected.
    let ch = json_with_status(
        app.post_json(
            "/channels",
            &json!({"kind": "webhook", "url": "http://127.0.0.1:9/"}),
            &bob,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let resp = app
        .post_json(&format!("/channels/{}/test", ch["id"]), &json!({}), &bob)
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}
