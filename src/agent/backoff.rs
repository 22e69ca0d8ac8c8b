//! Exponential back-off with jitter for the agent's retries, honouring `Retry-After`.

use std::time::Duration;

/// `base · 2^(attempt-1)`, capped at `cap`, then "equal jitter": a uniform pick in the
/// upper half. The jitter spreads agents that lost the server at the same moment, so they
/// do not all come back in the same millisecond; keeping the lower half out means a
/// retry never comes sooner than half the schedule says.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        let base = base.max(Duration::from_millis(1));
        Self {
            base,
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// Failures since the last success.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn cap(&self) -> Duration {
        self.cap
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The un-jittered delay for the current attempt count.
    fn ceiling(&self) -> Duration {
        let exp = self.attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << exp).min(self.cap)
    }

    /// Counts a failure and returns how long to wait. `retry_after` (from the server) is a
    /// floor, itself limited to `max_retry_after` so a misconfigured proxy cannot park the
    /// agent for a day. `unit` is a uniform random number in [0, 1).
    pub fn next_delay(
        &mut self,
        retry_after: Option<Duration>,
        max_retry_after: Duration,
        unit: f64,
    ) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self.ceiling();
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jittered = ceiling.mul_f64(0.5 + 0.5 * unit);
        match retry_after {
            Some(r) => jittered.max(r.min(max_retry_after)),
            None => jittered,
        }
    }
}

/// `Retry-After` in either form HTTP allows (delta-seconds or an HTTP-date), the same
/// parser the notifier uses for webhook receivers.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    crate::notify::retry::parse_retry_after(value, std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn grows_doubling_up_to_the_cap() {
        let mut b = Backoff::new(MS(500), Duration::from_secs(30));
        // With unit = 1.0 the delay is the ceiling itself.
        let delays: Vec<Duration> = (0..10)
            .map(|_| b.next_delay(None, Duration::from_secs(300), 1.0))
            .collect();
        assert_eq!(
            delays,
            vec![
                MS(500),
                MS(1000),
                MS(2000),
                MS(4000),
                MS(8000),
                MS(16000),
                MS(30000),
                MS(30000),
                MS(30000),
                MS(30000)
            ]
        );
        assert_eq!(b.attempt(), 10);
        b.reset();
        assert_eq!(b.next_delay(None, Duration::from_secs(300), 1.0), MS(500));
    }

    #[test]
    fn jitter_stays_within_the_upper_half_and_never_past_the_cap() {
        let cap = Duration::from_secs(30);
        for attempt in 1..=60u32 {
            for unit in [0.0, 0.1, 0.37, 0.5, 0.99, 0.999_999, f64::NAN, -3.0, 7.0] {
                let mut b = Backoff::new(MS(500), cap);
                b.attempt = attempt - 1;
                let ceiling = {
                    let mut c = b.clone();
                    c.attempt = attempt;
                    c.ceiling()
                };
                let d = b.next_delay(None, Duration::from_secs(300), unit);
                assert!(d <= ceiling && d <= cap, "{attempt} {unit}: {d:?}");
                assert!(d >= ceiling / 2, "{attempt} {unit}: {d:?} < {ceiling:?}/2");
            }
        }
        // Real randomness: spread, but inside the bounds.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut b = Backoff::new(MS(500), cap);
            b.attempt = 20;
            let d = b.next_delay(None, Duration::from_secs(300), rand::random::<f64>());
            assert!(d >= MS(15_000) && d <= cap, "{d:?}");
            seen.insert(d.as_millis());
        }
        assert!(seen.len() > 20, "jitter does not spread: {seen:?}");
    }

    #[test]
    fn retry_after_is_a_floor_with_a_limit() {
        let mut b = Backoff::new(MS(500), Duration::from_secs(30));
        let max = Duration::from_secs(300);
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(7)), max, 0.0),
            Duration::from_secs(7)
        );
        // A short Retry-After does not shorten a longer back-off.
        let mut b = Backoff::new(MS(500), Duration::from_secs(30));
        b.attempt = 10;
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(1)), max, 1.0),
            Duration::from_secs(30)
        );
        // An absurd one is limited.
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(86_400)), max, 1.0),
            max
        );
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        // A date in the past means "now"; one in the future, the time until then.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = chrono::Utc::now() + chrono::Duration::seconds(90);
        let waited = parse_retry_after(&later.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
            .expect("HTTP-date");
        assert!(
            (Duration::from_secs(88)..=Duration::from_secs(90)).contains(&waited),
            "{waited:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
