//! Retry policy for failed deliveries: capped exponential backoff with jitter, and `Retry-After` parsing.

use std::time::{Duration, SystemTime};

/// Longest wait a receiver's `Retry-After` can impose; beyond that we would rather give up
/// on the schedule than park a delivery for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// Jitter bounds: spreading retries keeps a recovering receiver from being hit by every
/// queued delivery in the same second.
const JITTER_MIN: f64 = 0.8;
const JITTER_MAX: f64 = 1.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt, before jitter.
    pub base: Duration,
    /// Attempts after the first one.
    pub retries: u32,
    /// Longest delay between two attempts, before jitter.
    pub cap: Duration,
}

impl RetryPolicy {
    /// 5 s, 10 s, 20 s … capped at 1 h, 12 retries: about 2.7 h at the least, so a receiver
    /// that is down for an hour still gets its events.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(5),
        retries: 12,
        cap: Duration::from_secs(3600),
    };

    /// Attempts in all = 1 + retries.
    pub fn max_attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// base·2^(n−1), capped at `cap`, before jitter. Saturating: huge `n` or `base` yield
    /// `cap` rather than overflowing.
    fn backoff(&self, attempts_made: u32) -> Duration {
        let exp = attempts_made.max(1) - 1;
        let factor = 1u128.checked_shl(exp.min(127)).unwrap_or(u128::MAX);
        let nanos = self.base.as_nanos().saturating_mul(factor);
        let capped = nanos.min(self.cap.as_nanos());
        Duration::from_nanos(u64::try_from(capped).unwrap_or(u64::MAX))
    }

    /// Delay before the next attempt after `attempts_made` (≥ 1) failed ones: base·2^(n−1)
    /// capped at `cap`, times a jitter factor in [0.8, 1.2]; at least `retry_after` when the
    /// receiver asked for it (itself capped at 6 h).
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        rng: &mut impl rand::Rng,
    ) -> Duration {
        let backoff = self.backoff(attempts_made);
        let jitter: f64 = rng.gen_range(JITTER_MIN..=JITTER_MAX);
        let jittered =
            Duration::try_from_secs_f64(backoff.as_secs_f64() * jitter).unwrap_or(backoff);
        match retry_after {
            Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    /// The shortest total time from the first to the last attempt (jitter at its minimum),
    /// for docs and the test that defaults ride out an hour of receiver downtime.
    pub fn min_horizon(&self) -> Duration {
        let shortest =
            |b: Duration| Duration::try_from_secs_f64(b.as_secs_f64() * JITTER_MIN).unwrap_or(b);
        let mut total = Duration::ZERO;
        for n in 1..=self.retries {
            let b = self.backoff(n);
            if self.backoff(n.saturating_add(1)) == b {
                // The delays have stopped growing (cap or saturation): multiply instead of
                // looping up to u32::MAX times.
                let rest = self.retries - n + 1;
                return total.saturating_add(shortest(b).saturating_mul(rest));
            }
            total = total.saturating_add(shortest(b));
        }
        total
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date (IMF-fixdate, e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`), relative to `now`. Negative or past → zero; garbage → None.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if v.starts_with('-') {
            return Some(Duration::ZERO);
        }
        // Absurdly long numbers saturate; callers cap the wait anyway.
        return Some(Duration::from_secs(
            digits.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let now = chrono::DateTime::<chrono::Utc>::from(now);
    Some(
        (when.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn defaults_ride_out_an_hour_of_downtime() {
        let p = RetryPolicy::DEFAULT;
        assert_eq!(p.max_attempts(), 13);
        assert!(p.min_horizon() >= secs(3600), "{:?}", p.min_horizon());
        // 0.8 · (5 · (2^10 − 1) + 2 · 3600) s.
        let expected = 0.8 * 12315.0;
        assert!((p.min_horizon().as_secs_f64() - expected).abs() < 1e-6);
    }

    #[test]
    fn delays_grow_monotonically_up_to_the_cap_within_jitter() {
        let p = RetryPolicy::DEFAULT;
        let mut rng = StdRng::seed_from_u64(7);
        let mut last = Duration::ZERO;
        for n in 1..=40 {
            let b = p.backoff(n);
            assert!(b >= last, "attempt {n}: {b:?} < {last:?}");
            assert!(b <= p.cap);
            last = b;
            for _ in 0..20 {
                let d = p.next_delay(n, None, &mut rng);
                let ratio = d.as_secs_f64() / b.as_secs_f64();
                assert!(
                    (0.8 - 1e-9..=1.2 + 1e-9).contains(&ratio),
                    "{n}: {d:?} vs {b:?}"
                );
            }
        }
        assert_eq!(p.backoff(1), secs(5));
        assert_eq!(p.backoff(2), secs(10));
        assert_eq!(p.backoff(3), secs(20));
        assert_eq!(p.backoff(11), secs(3600));
        assert_eq!(p.backoff(0), secs(5), "0 is treated as the first failure");
    }

    #[test]
    fn no_overflow_for_huge_attempts_or_bases() {
        let mut rng = StdRng::seed_from_u64(1);
        let huge = RetryPolicy {
            base: Duration::MAX,
            retries: u32::MAX,
            cap: Duration::MAX,
        };
        let _ = huge.next_delay(u32::MAX, Some(Duration::MAX), &mut rng);
        let _ = huge.next_delay(1, None, &mut rng);
        assert_eq!(huge.max_attempts(), u32::MAX);
        let _ = huge.min_horizon();
        let p = RetryPolicy::DEFAULT;
        let d = p.next_delay(u32::MAX, None, &mut rng);
        assert!(d <= secs(3600).mul_f64(1.2));
        let long = RetryPolicy {
            base: secs(1),
            retries: 200,
            cap: Duration::MAX,
        };
        let _ = long.min_horizon();
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = RetryPolicy::DEFAULT;
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            assert!(p.next_delay(1, Some(secs(120)), &mut rng) >= secs(120));
            // A shorter request does not shorten our own backoff.
            assert!(p.next_delay(5, Some(secs(1)), &mut rng) >= secs(80).mul_f64(0.8));
            let capped = p.next_delay(1, Some(secs(86_400)), &mut rng);
            assert_eq!(capped, MAX_RETRY_AFTER);
        }
    }

    #[test]
    fn parses_delta_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(secs(7)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(secs(120)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-5", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO),
            "past dates mean now"
        );
        for garbage in ["", "soon", "1.5", "7s", "-", "--3", "Sun, 99 Nov 1994"] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_retry_after_never_panics(s in ".*", t in 0u64..10_000_000_000) {
            let _ = parse_retry_after(&s, SystemTime::UNIX_EPOCH + Duration::from_secs(t));
        }

        #[test]
        fn next_delay_never_panics(base in 0u64..u64::MAX, cap in 0u64..u64::MAX, n in 0u32..u32::MAX, ra in proptest::option::of(0u64..u64::MAX)) {
            let p = RetryPolicy { base: Duration::from_nanos(base), retries: 3, cap: Duration::from_secs(cap) };
            let mut rng = StdRng::seed_from_u64(n as u64);
            let _ = p.next_delay(n, ra.map(Duration::from_secs), &mut rng);
            let _ = p.min_horizon();
        }
    }
}
