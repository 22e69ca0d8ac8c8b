//! TEMPORARY STUBS (replaced by the real transports).
pub mod email;
pub mod payload;
pub mod retry;
pub mod sign;
pub mod ssrf;
pub mod webhook;
pub mod worker;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered {
        status: Option<u16>,
    },
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    Permanent {
        status: Option<u16>,
        error: String,
    },
    Gone {
        status: u16,
    },
}
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub outcome: Outcome,
    pub duration_ms: i64,
}
