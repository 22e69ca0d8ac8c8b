//! Domain newtypes that parse untrusted input once, at the edge ("parse, don't validate").

mod host;
mod metric;
mod password;
mod threshold;
mod time;
mod username;

pub use host::{missed_intervals, HostName, HostStatus};
pub use metric::MetricKind;
pub use password::Password;
pub use threshold::Threshold;
pub use time::{format_rfc3339, now_ms, parse_timestamp, TimeRange};
pub use username::Username;

/// Why an input was rejected; the message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
