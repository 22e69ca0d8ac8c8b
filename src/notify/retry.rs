//! stub
use std::time::Duration;
pub struct RetryPolicy {
    pub base: Duration,
    pub retries: u32,
    pub cap: Duration,
}
impl RetryPolicy {
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(5),
        retries: 12,
        cap: Duration::from_secs(3600),
    };
    pub fn max_attempts(&self) -> u32 {
        13
    }
    pub fn next_delay(&self, _a: u32, _r: Option<Duration>, _rng: &mut impl rand::Rng) -> Duration {
        todo!()
    }
}
