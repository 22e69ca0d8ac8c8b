//! Notification transports against real loopback peers: signed webhooks, outcome classification, SMTP.

use crate::receivers::{SmtpSink, WebhookReceiver};
use std::time::{Duration, Instant};
use watchpost::notify::email::{parse_recipients, Mailer, SmtpConfig, SmtpTls};
use watchpost::notify::payload::AlertPayload;
use watchpost::notify::sign::{generate_secret, new_message_id, parse_secret, sign};
use watchpost::notify::webhook::{WebhookClient, WebhookTarget};
use watchpost::notify::Outcome;

const WAIT: Duration = Duration::from_secs(5);

fn payload(event: &str) -> AlertPayload {
    AlertPayload {
        kind: "cpu".into(),
        value: 93.2,
        ts: "2024-05-01T12:00:00Z".into(),
        generated_at: "2024-05-01T12:00:01Z".into(),
        status: "firing".into(),
        event: event.into(),
        threshold: 80.0,
        comparison: ">".into(),
        rule: "High <CPU> & friends".into(),
        rule_id: Some(1),
        host: "web-1".into(),
        severity: "critical".into(),
        alert_id: Some(7),
        started_at: "2024-05-01T11:58:00Z".into(),
        resolved_at: None,
        peak: 95.0,
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A client with the SSRF guard off, since every peer here is on loopback.
fn lab_client(timeout: Duration) -> WebhookClient {
    WebhookClient::new(timeout, true).unwrap()
}

/// Sends one webhook, bounded so a transport bug cannot hang the test run.
async fn send_once(
    client: &WebhookClient,
    url: &str,
    key: &[u8],
    trusted: bool,
) -> watchpost::notify::Attempt {
    let target = WebhookTarget {
        url,
        secret: key,
        trusted,
    };
    let body = serde_json::to_vec(&payload("firing")).unwrap();
    tokio::time::timeout(
        Duration::from_secs(15),
        client.send(&target, &new_message_id(), &body, now_secs()),
    )
    .await
    .expect("webhook send must finish")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_webhook_delivers_a_signed_post() {
    let rx = WebhookReceiver::start().await;
    let client = lab_client(Duration::from_secs(10));
    let secret = generate_secret();
    let key = parse_secret(&secret).unwrap();
    let body = serde_json::to_vec(&payload("firing")).unwrap();
    let id = new_message_id();
    let ts = now_secs();
    let target = WebhookTarget {
        url: &format!("{}hooks/alerts?token=abc", rx.url()),
        secret: &key,
        trusted: false,
    };
    let attempt = client.send(&target, &id, &body, ts).await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: Some(200) });
    assert!(attempt.duration_ms >= 0);

    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hooks/alerts");
    assert_eq!(r.body, body);
    assert_eq!(r.webhook_id.as_deref(), Some(id.as_str()));
    assert_eq!(r.webhook_timestamp, Some(ts.to_string()));
    assert_eq!(r.headers["content-type"], "application/json");
    let ua = r.headers["user-agent"].to_str().unwrap();
    assert_eq!(ua, format!("watchpost/{}", env!("CARGO_PKG_VERSION")));
    // Verified by the independent implementation and by recomputing with ours.
    assert!(WebhookReceiver::verify(r, &secret));
    assert!(!WebhookReceiver::verify(r, &generate_secret()));
    assert_eq!(
        r.webhook_signature.as_deref(),
        Some(sign(&key, &id, ts, &body).as_str())
    );
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json["type"], "cpu");
    assert_eq!(json["event"], "firing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_webhook_500_is_retried_with_the_status_and_body_snippet() {
    let rx = WebhookReceiver::start().await;
    rx.respond_with(vec![500]);
    rx.body("database\r\nis down");
    let key = parse_secret(&generate_secret()).unwrap();
    let client = lab_client(Duration::from_secs(10));
    let attempt = send_once(&client, &rx.url(), &key, false).await;
    assert_eq!(
        attempt.outcome,
        Outcome::Retry {
            status: Some(500),
            error: "HTTP 500: database  is down".into(),
            retry_after: None
        }
    );
    // The queue is used up: the next attempt gets the default 200.
    let again = send_once(&client, &rx.url(), &key, false).await;
    assert_eq!(again.outcome, Outcome::Delivered { status: Some(200) });
    assert_eq!(rx.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_webhook_429_carries_retry_after() {
    let rx = WebhookReceiver::start().await;
    rx.respond_with(vec![429]);
    rx.retry_after(Some("7"));
    let key = parse_secret(&generate_secret()).unwrap();
    let attempt = send_once(&lab_client(Duration::from_secs(10)), &rx.url(), &key, false).await;
    match attempt.outcome {
        Outcome::Retry {
            status,
            retry_after,
            error,
        } => {
            assert_eq!(status, Some(429));
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(error.starts_with("HTTP 429"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_webhook_410_means_gone_and_404_is_retried() {
    let rx = WebhookReceiver::start().await;
    rx.respond_with(vec![410, 404]);
    let key = parse_secret(&generate_secret()).unwrap();
    let client = lab_client(Duration::from_secs(10));
    let attempt = send_once(&client, &rx.url(), &key, false).await;
    assert_eq!(attempt.outcome, Outcome::Gone { status: 410 });
    // Any other 4xx is a failed attempt to retry (Standard Webhooks), with a hint.
    let attempt = send_once(&client, &rx.url(), &key, false).await;
    assert_eq!(
        attempt.outcome,
        Outcome::Retry {
            status: Some(404),
            error: "HTTP 404: status 404 (check the webhook URL)".into(),
            retry_after: None
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_webhook_redirect_is_retried_and_not_followed() {
    let rx = WebhookReceiver::start().await;
    rx.redirect(true);
    let key = parse_secret(&generate_secret()).unwrap();
    let attempt = send_once(&lab_client(Duration::from_secs(10)), &rx.url(), &key, false).await;
    match &attempt.outcome {
        Outcome::Retry { status, error, .. } => {
            assert_eq!(*status, Some(302));
            assert!(error.contains("redirects are not followed"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // Give a (wrongly) followed redirect time to arrive before checking it did not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "/");
}

/// F10 at the transport: a receiver verifying with the standard ±5 minute tolerance
/// refuses a webhook-timestamp 10 minutes ahead with 401; that is a failed attempt to
/// retry, and its error says what to check. The same message on time verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_webhook_skewed_timestamp_is_refused_and_retried_with_a_clear_error() {
    let rx = WebhookReceiver::start().await;
    let secret = generate_secret();
    rx.verify_with(&secret);
    let key = parse_secret(&secret).unwrap();
    let client = lab_client(Duration::from_secs(10));
    let target = WebhookTarget {
        url: &rx.url(),
        secret: &key,
        trusted: false,
    };
    let body = serde_json::to_vec(&payload("firing")).unwrap();
    let id = new_message_id();
    let skewed = client.send(&target, &id, &body, now_secs() + 600).await;
    match &skewed.outcome {
        Outcome::Retry {
            status: Some(401),
            error,
            retry_after: None,
        } => {
            assert!(
                error.starts_with(
                    "HTTP 401: invalid signature or timestamp (receiver refused the request"
                ),
                "{error}"
            );
            assert!(error.contains("signing secret"), "{error}");
            assert!(error.contains("NTP-synced"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let on_time = client.send(&target, &id, &body, now_secs()).await;
    assert_eq!(on_time.outcome, Outcome::Delivered { status: Some(200) });
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].verified, Some(false));
    assert_eq!(got[1].verified, Some(true));
    assert_eq!(got[0].webhook_id, got[1].webhook_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_webhook_hanging_receiver_times_out_as_retry() {
    let rx = WebhookReceiver::start().await;
    rx.hang(true);
    let key = parse_secret(&generate_secret()).unwrap();
    let started = Instant::now();
    let attempt = send_once(&lab_client(Duration::from_secs(1)), &rx.url(), &key, false).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(attempt.duration_ms >= 900, "{}", attempt.duration_ms);
    match &attempt.outcome {
        Outcome::Retry { status, error, .. } => {
            assert_eq!(*status, None);
            assert!(error.contains("timed out"), "{error}");
            assert!(!error.contains("127.0.0.1"), "no URL in errors: {error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rx.received().len(), 1, "the request did arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_webhook_stopped_receiver_is_retry_and_restart_recovers() {
    let rx = WebhookReceiver::start().await;
    let key = parse_secret(&generate_secret()).unwrap();
    let client = lab_client(Duration::from_secs(5));
    assert_eq!(
        send_once(&client, &rx.url(), &key, false).await.outcome,
        Outcome::Delivered { status: Some(200) }
    );
    rx.stop().await;
    let url = format!("{}secret-path/T000/B000/XXXX", rx.url());
    let attempt = send_once(&client, &url, &key, false).await;
    match &attempt.outcome {
        Outcome::Retry { status, error, .. } => {
            assert_eq!(*status, None);
            assert!(
                !error.contains("XXXX") && !error.contains("secret-path"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    rx.restart().await;
    assert_eq!(
        send_once(&client, &rx.url(), &key, false).await.outcome,
        Outcome::Delivered { status: Some(200) }
    );
    assert_eq!(rx.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_webhook_guard_refuses_loopback_but_trusted_targets_are_delivered() {
    let rx = WebhookReceiver::start().await;
    let key = parse_secret(&generate_secret()).unwrap();
    let guarded = WebhookClient::new(Duration::from_secs(5), false).unwrap();
    let attempt = send_once(&guarded, &rx.url(), &key, false).await;
    match &attempt.outcome {
        Outcome::Permanent { status, error } => {
            assert_eq!(*status, None);
            assert!(
                error.contains("127.0.0.1") && error.contains("refused"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A name that resolves to loopback is refused at connect time by the resolver.
    let by_name = format!("http://localhost:{}/", rx.addr().port());
    let attempt = send_once(&guarded, &by_name, &key, false).await;
    assert!(
        matches!(attempt.outcome, Outcome::Permanent { status: None, .. }),
        "{:?}",
        attempt.outcome
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.received().is_empty(), "nothing may reach the receiver");

    let attempt = send_once(&guarded, &rx.url(), &key, true).await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: Some(200) });
    assert_eq!(rx.wait_for(1, WAIT).await.len(), 1);
}

// ---------------------------------------------------------------------------------------
// SMTP

fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        user: None,
        password: None,
        from: "Watchpost <alerts@watchpost.test>".into(),
        tls: SmtpTls::Auto,
        timeout: Duration::from_secs(5),
    }
}

async fn mail_once(mailer: &Mailer, to: &str, event: &str) -> watchpost::notify::Attempt {
    let to = parse_recipients(to).unwrap();
    let (subject, text, html) = payload(event).email();
    tokio::time::timeout(
        Duration::from_secs(40),
        mailer.send(&to, &subject, &text, &html),
    )
    .await
    .expect("SMTP send must finish")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_email_is_delivered_with_headers_and_both_parts() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&smtp_config(sink.port())).unwrap();
    let attempt = mail_once(&mailer, "ops@example.com, oncall@example.org", "firing").await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: Some(250) });

    let msgs = sink.wait_for(1, WAIT).await;
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.mail_from, "alerts@watchpost.test");
    assert_eq!(m.rcpt_to, ["ops@example.com", "oncall@example.org"]);
    let data = &m.data;
    assert!(
        data.contains("Subject: [watchpost] FIRING critical: cpu > 80 on web-1 (value 93.2)\r\n"),
        "{data}"
    );
    assert!(
        data.contains("From: Watchpost <alerts@watchpost.test>\r\n"),
        "{data}"
    );
    assert!(
        data.contains("To: ops@example.com, oncall@example.org\r\n"),
        "{data}"
    );
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(
        data.contains("Content-Type: text/plain; charset=utf-8"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/html; charset=utf-8"),
        "{data}"
    );
    assert!(data.contains("Rule: High <CPU> & friends"), "{data}");
    assert!(data.contains("High &lt;CPU&gt; &amp; friends"), "{data}");
    assert!(!data.contains("<td>High <CPU>"), "{data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_email_451_is_retry_and_550_is_permanent() {
    let sink = SmtpSink::start().await;
    sink.respond_with(vec![451, 550]);
    let mailer = Mailer::new(&smtp_config(sink.port())).unwrap();

    let attempt = mail_once(&mailer, "ops@example.com", "repeat").await;
    match &attempt.outcome {
        Outcome::Retry { status, error, .. } => {
            assert_eq!(*status, Some(451));
            assert!(error.contains("451"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let attempt = mail_once(&mailer, "ops@example.com", "resolved").await;
    match &attempt.outcome {
        Outcome::Permanent { status, error } => {
            assert_eq!(*status, Some(550));
            assert!(error.contains("550"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(sink.messages().is_empty());
    assert_eq!(sink.data_attempts(), 2);

    // Plan used up: the next one is accepted.
    let attempt = mail_once(&mailer, "ops@example.com", "test").await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: Some(250) });
    let msgs = sink.wait_for(1, WAIT).await;
    assert!(msgs[0]
        .data
        .contains("Subject: [watchpost] test notification\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_email_to_a_stopped_sink_is_retry_and_restart_recovers() {
    let sink = SmtpSink::start().await;
    let mut cfg = smtp_config(sink.port());
    cfg.user = Some("watchpost".into());
    cfg.password = Some("hunter2-smtp-password".into());
    let mailer = Mailer::new(&cfg).unwrap();
    sink.stop().await;
    let attempt = mail_once(&mailer, "ops@example.com", "firing").await;
    match &attempt.outcome {
        Outcome::Retry { status, error, .. } => {
            assert_eq!(*status, None);
            assert!(!error.contains("hunter2"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    sink.restart().await;
    // The sink offers no AUTH, so a mailer with credentials refuses to go on (a
    // configuration problem, not worth retrying) rather than send unauthenticated.
    let attempt = mail_once(&mailer, "ops@example.com", "firing").await;
    assert!(
        matches!(&attempt.outcome, Outcome::Permanent { status: None, error } if error.contains("authentication") && !error.contains("hunter2")),
        "{:?}",
        attempt.outcome
    );
    let anonymous = Mailer::new(&smtp_config(sink.port())).unwrap();
    let attempt = mail_once(&anonymous, "ops@example.com", "firing").await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: Some(250) });
    assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_email_refuses_plaintext_to_a_remote_relay() {
    let mut cfg = smtp_config(25);
    cfg.host = "mail.example.com".into();
    cfg.tls = SmtpTls::None;
    let err = Mailer::new(&cfg).unwrap_err();
    assert!(err.contains("without TLS"), "{err}");
    cfg.host = "localhost".into();
    assert!(Mailer::new(&cfg).is_ok());
}
