//! Webhook transport: one signed Standard Webhooks POST per attempt, classified into an [`Outcome`].

use super::retry::parse_retry_after;
use super::sign::sign;
use super::ssrf::{is_blocked, literal_ip, BlockedTarget, GuardedResolver};
use super::{elapsed_ms, Attempt, Outcome};
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How much of a response body we read at most: enough for an error message, not enough for
/// a hostile receiver to make us buffer gigabytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How much of a non-2xx body goes into the stored error text.
pub const ERROR_SNIPPET_CHARS: usize = 200;
/// Connecting should never take longer than this, whatever the overall timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where one delivery goes.
pub struct WebhookTarget<'a> {
    pub url: &'a str,
    pub secret: &'a [u8],
    /// Operator-configured (env) targets skip the SSRF guard.
    pub trusted: bool,
}

/// HTTP clients for webhook delivery: one for user-entered targets (SSRF-guarded, no
/// proxy), one for operator-configured ones.
pub struct WebhookClient {
    guarded: reqwest::Client,
    trusted: reqwest::Client,
    allow_private: bool,
}

/// `scheme://host[:port]` of a URL, for logs and messages: the path and query often carry
/// tokens (Slack, Discord), so the full URL is never logged.
pub fn target_label(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("?");
            match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            }
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

fn base_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // A redirect could lead a guarded request to an internal address, and receivers
        // that moved should be reconfigured rather than silently followed.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .user_agent(concat!("watchpost/", env!("CARGO_PKG_VERSION")))
}

impl WebhookClient {
    /// `allow_private` turns the SSRF guard off for every target (for labs and tests).
    pub fn new(timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        // A proxy would resolve the name itself and bypass the guarded resolver.
        let mut guarded = base_builder(timeout).no_proxy();
        if !allow_private {
            guarded = guarded.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            guarded: guarded.build()?,
            trusted: base_builder(timeout).build()?,
            allow_private,
        })
    }

    /// Sends one signed POST. `now_secs` is the webhook-timestamp.
    pub async fn send(
        &self,
        target: &WebhookTarget<'_>,
        msg_id: &str,
        body: &[u8],
        now_secs: i64,
    ) -> Attempt {
        let start = Instant::now();
        let outcome = self.send_inner(target, msg_id, body, now_secs).await;
        Attempt {
            outcome,
            duration_ms: elapsed_ms(start),
        }
    }

    async fn send_inner(
        &self,
        target: &WebhookTarget<'_>,
        msg_id: &str,
        body: &[u8],
        now_secs: i64,
    ) -> Outcome {
        let permanent = |error: String| Outcome::Permanent {
            status: None,
            error,
        };
        let Ok(url) = reqwest::Url::parse(target.url) else {
            return permanent("webhook URL is not a valid absolute URL".into());
        };
        if !matches!(url.scheme(), "http" | "https") {
            return permanent("webhook URL must use http or https".into());
        }
        let guarded = !target.trusted && !self.allow_private;
        if guarded {
            // reqwest skips the resolver for IP literals, so they are checked here.
            if let Some(ip) = url.host_str().and_then(literal_ip) {
                if is_blocked(ip) {
                    return permanent(format!(
                        "webhook URL points to a private, loopback or link-local address ({ip}); \
                         such targets are refused"
                    ));
                }
            }
        }
        let Ok(id_header) = HeaderValue::from_str(msg_id) else {
            return permanent("message id is not a valid header value".into());
        };
        let signature = sign(target.secret, msg_id, now_secs, body);
        let Ok(sig_header) = HeaderValue::from_str(&signature) else {
            return permanent("signature is not a valid header value".into());
        };
        let client = if target.trusted {
            &self.trusted
        } else {
            &self.guarded
        };
        let sent = client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", id_header)
            .header("webhook-timestamp", HeaderValue::from(now_secs))
            .header("webhook-signature", sig_header)
            .body(body.to_vec())
            .send()
            .await;
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(e) => return classify_send_error(e),
        };

        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // Read (a bounded amount of) the body either way: it frees the connection for reuse
        // and explains failures. A body that fails mid-way still classifies by status.
        let mut bytes = Vec::new();
        while bytes.len() < MAX_RESPONSE_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - bytes.len();
                    bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        classify_status(status, &bytes, retry_after)
    }
}

/// What a received status means for this delivery.
///
/// Standard Webhooks: every non-2xx answer is a failed attempt, retried on the back-off
/// schedule until the retry horizon runs out; only 410 Gone stops at once (and disables the
/// channel). A 4xx is often passing: a receiver that rejects our signature because this
/// host's clock is off (receivers allow ±5 minutes) or because its secret was rotated
/// answers 400/401/403 until the operator fixes that, and the notification must still arrive
/// then. The stored error says what to check.
fn classify_status(status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome {
    let http = {
        let snippet = snippet(body);
        if snippet.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {snippet}")
        }
    };
    let error = match status {
        200..=299 => {
            return Outcome::Delivered {
                status: Some(status),
            }
        }
        410 => return Outcome::Gone { status },
        300..=399 => format!("{http} (redirects are not followed; update the webhook URL)"),
        400 | 401 | 403 => format!(
            "{http} (receiver refused the request: check the channel's signing secret and that \
             this host's clock is NTP-synced; receivers reject a webhook-timestamp more than 5 \
             minutes off)"
        ),
        404 => format!("{http} (check the webhook URL)"),
        _ => http,
    };
    Outcome::Retry {
        status: Some(status),
        error,
        retry_after,
    }
}

/// The start of a response body as one printable line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut: String = text
        .trim()
        .chars()
        .take(ERROR_SNIPPET_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut.trim_end().to_owned()
}

/// A transport failure as an outcome. The message is built from the error chain with the
/// URL removed, since webhook URLs routinely embed tokens.
fn classify_send_error(e: reqwest::Error) -> Outcome {
    let e = e.without_url();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(blocked) = err.downcast_ref::<BlockedTarget>() {
            return Outcome::Permanent {
                status: None,
                error: format!("webhook target refused: {blocked}"),
            };
        }
        source = err.source();
    }
    let chain = super::error_chain(&e);
    let error = if e.is_timeout() {
        format!("timed out: {chain}")
    } else if e.is_connect() {
        format!("connection failed: {chain}")
    } else {
        chain
    };
    if e.is_builder() {
        return Outcome::Permanent {
            status: None,
            error,
        };
    }
    Outcome::Retry {
        status: None,
        error,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_classify() {
        assert_eq!(
            classify_status(204, b"", None),
            Outcome::Delivered { status: Some(204) }
        );
        assert_eq!(
            classify_status(410, b"bye", None),
            Outcome::Gone { status: 410 }
        );
        for s in [408, 425, 429, 500, 502, 503, 599] {
            assert!(
                matches!(classify_status(s, b"", None), Outcome::Retry { status: Some(x), .. } if x == s),
                "{s}"
            );
        }
        // Every other non-2xx is a failure to retry, not a dead letter.
        for s in [
            100, 301, 302, 307, 400, 401, 403, 404, 405, 409, 413, 415, 422, 451, 600,
        ] {
            assert!(
                matches!(classify_status(s, b"", None), Outcome::Retry { status: Some(x), .. } if x == s),
                "{s}"
            );
        }
        // What the operator reads: the status, the receiver's words, and what to check.
        for s in [400, 401, 403] {
            let Outcome::Retry { error, .. } = classify_status(s, b"invalid signature", None)
            else {
                panic!("{s}");
            };
            assert!(
                error.starts_with(&format!("HTTP {s}: invalid signature (receiver refused")),
                "{error}"
            );
            assert!(
                error.contains("signing secret") && error.contains("NTP-synced"),
                "{error}"
            );
        }
        assert_eq!(
            classify_status(302, b"", None),
            Outcome::Retry {
                status: Some(302),
                error: "HTTP 302 (redirects are not followed; update the webhook URL)".into(),
                retry_after: None
            }
        );
        assert_eq!(
            classify_status(404, b"no such hook", None),
            Outcome::Retry {
                status: Some(404),
                error: "HTTP 404: no such hook (check the webhook URL)".into(),
                retry_after: None
            }
        );
        assert_eq!(
            classify_status(422, b"", Some(Duration::from_secs(3))),
            Outcome::Retry {
                status: Some(422),
                error: "HTTP 422".into(),
                retry_after: Some(Duration::from_secs(3))
            }
        );
        let ra = Some(Duration::from_secs(7));
        assert_eq!(
            classify_status(429, b"slow down", ra),
            Outcome::Retry {
                status: Some(429),
                error: "HTTP 429: slow down".into(),
                retry_after: ra
            }
        );
    }

    #[test]
    fn snippets_are_short_single_lines() {
        let body = format!("line one\r\nline\ttwo\u{7}{}", "x".repeat(1000));
        let s = snippet(body.as_bytes());
        assert_eq!(s.chars().count(), ERROR_SNIPPET_CHARS);
        assert!(s.starts_with("line one  line two "), "{s:?}");
        assert!(!s.chars().any(char::is_control));
        assert_eq!(snippet(b"  \n "), "");
        assert_eq!(snippet(&[0xff, 0xfe, b'o', b'k']), "\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn labels_hide_path_and_query() {
        assert_eq!(
            target_label("https://hooks.slack.com/services/T000/B000/XXXX?token=abc"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            target_label("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(target_label("http://[::1]:81/x"), "http://[::1]:81");
        assert_eq!(target_label("nonsense"), "<invalid URL>");
    }

    #[tokio::test]
    async fn guarded_client_refuses_blocked_literals_without_a_request() {
        let client = WebhookClient::new(Duration::from_secs(1), false).unwrap();
        for url in [
            "http://127.0.0.1:9/",
            "http://[::1]:9/",
            "http://169.254.169.254/",
            "http://[::ffff:10.0.0.1]/",
        ] {
            let target = WebhookTarget {
                url,
                secret: b"0123456789abcdef01234567",
                trusted: false,
            };
            let attempt = client.send(&target, "msg_x", b"{}", 1).await;
            match attempt.outcome {
                Outcome::Permanent {
                    status: None,
                    error,
                } => {
                    assert!(error.contains("private"), "{url}: {error}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        let target = WebhookTarget {
            url: "ftp://example.com/",
            secret: b"k",
            trusted: true,
        };
        assert!(matches!(
            client.send(&target, "msg_x", b"{}", 1).await.outcome,
            Outcome::Permanent { .. }
        ));
    }
}
