//! Host names (1–64 characters, hostname-like) and a host's status from its last-seen time.

use super::ParseError;

/// A host name an admin gives an agent host: 1–64 characters of `[A-Za-z0-9._-]`, starting
/// with a letter or digit. Narrow on purpose: names end up in URLs (`?host=`), rule host
/// selectors, log lines and Prometheus labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(String);

impl HostName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let name = raw.trim();
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(ParseError::new("host name must be 1 to 64 characters long"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(ParseError::new(
                "host name may contain only letters, digits, '.', '_' and '-'",
            ));
        }
        if !name.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(ParseError::new(
                "host name must start with a letter or a digit",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a host is reporting: `up`, `stale` after `stale_after` missed intervals, `down`
/// after `down_after` (or if it never reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    Up,
    Stale,
    Down,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Up => "up",
            HostStatus::Stale => "stale",
            HostStatus::Down => "down",
        }
    }

    /// The status of a host last seen at `last_seen` that reports every `interval_ms`.
    pub fn of(
        last_seen: Option<i64>,
        interval_ms: i64,
        now: i64,
        stale_after: u32,
        down_after: u32,
    ) -> Self {
        let Some(seen) = last_seen else {
            return HostStatus::Down;
        };
        // Below one second, scheduling jitter alone would look like missed intervals.
        let interval = interval_ms.max(1000);
        let silent = now.saturating_sub(seen);
        if silent > interval.saturating_mul(i64::from(down_after)) {
            HostStatus::Down
        } else if silent > interval.saturating_mul(i64::from(stale_after)) {
            HostStatus::Stale
        } else {
            HostStatus::Up
        }
    }
}

/// Whole reporting intervals a host has been silent at `now` (what the `missed_intervals`
/// rule metric measures); `None` for a host that never reported.
pub fn missed_intervals(last_seen: Option<i64>, interval_ms: i64, now: i64) -> Option<f64> {
    let seen = last_seen?;
    // The same floor as `HostStatus::of`: below a second, jitter looks like silence.
    let interval = interval_ms.max(1000);
    Some((now.saturating_sub(seen).max(0) / interval) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hostname_like_names() {
        for ok in ["web-1", "db.example.com", "a", "X_9", &"h".repeat(64)] {
            assert_eq!(HostName::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(HostName::parse("  web-1 ").unwrap().as_str(), "web-1");
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            " ",
            &"h".repeat(65),
            "-web",
            ".hidden",
            "web 1",
            "web/1",
            "<script>",
            "wéb",
            "a\nb",
            "a\"b",
        ] {
            assert!(HostName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn status_follows_missed_intervals() {
        let now = 1_000_000;
        let st = |seen: Option<i64>, interval| HostStatus::of(seen, interval, now, 3, 10);
        assert_eq!(st(None, 1000), HostStatus::Down);
        assert_eq!(st(Some(now), 1000), HostStatus::Up);
        assert_eq!(st(Some(now - 3000), 1000), HostStatus::Up);
        assert_eq!(st(Some(now - 3001), 1000), HostStatus::Stale);
        assert_eq!(st(Some(now - 10_000), 1000), HostStatus::Stale);
        assert_eq!(st(Some(now - 10_001), 1000), HostStatus::Down);
        // A 10 s agent is still up after 25 s of silence.
        assert_eq!(st(Some(now - 25_000), 10_000), HostStatus::Up);
        // Sub-second intervals count as one second.
        assert_eq!(st(Some(now - 2_000), 100), HostStatus::Up);
        // A sample stamped slightly ahead of our clock is up, not an overflow.
        assert_eq!(st(Some(now + 5_000), 1000), HostStatus::Up);
    }
}
