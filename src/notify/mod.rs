//! Notifications: Standard Webhooks signing, SSRF guard, webhook and SMTP transports, retry policy, payloads, and the outbox worker.
//!
//! The transports are free of database access: they take a target and a body and
//! report what one attempt came to, so the delivery queue can decide what to store and when
//! to try again.

pub mod email;
pub mod payload;
pub mod retry;
pub mod sign;
pub mod ssrf;
pub mod webhook;
pub mod worker;

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered {
        status: Option<u16>,
    },
    /// Worth trying again later; `retry_after` is what the receiver asked for, if anything.
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Trying again will not help (dead-letter it).
    Permanent {
        status: Option<u16>,
        error: String,
    },
    /// The receiver answered 410 Gone: the channel must be disabled.
    Gone {
        status: u16,
    },
}

/// One delivery attempt: its outcome and how long it took, wall clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub outcome: Outcome,
    pub duration_ms: i64,
}

/// Milliseconds since `start`, saturating instead of wrapping (an attempt never runs for
/// 292 million years, but the conversion must not be able to panic either).
pub(crate) fn elapsed_ms(start: std::time::Instant) -> i64 {
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// `outer: inner: innermost` on one line (control characters blanked), skipping messages
/// that merely repeat their cause: transport errors as a delivery log shows them.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let msg = err.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = err.source();
    }
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
