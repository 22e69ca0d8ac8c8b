//! Wire timestamps: RFC 3339 in UTC with `Z` out; RFC 3339 with or without offset in
//! (no offset means UTC, as the original service assumed).

use super::ParseError;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// Current time as UTC epoch milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Renders epoch milliseconds as RFC 3339 UTC with a `Z` suffix and millisecond precision.
pub fn format_rfc3339(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// Parses an ISO 8601 / RFC 3339 timestamp into epoch milliseconds.
pub fn parse_timestamp(raw: &str) -> Result<i64, ParseError> {
    let s = raw.trim();
    let err = || {
        ParseError::new(format!(
            "invalid timestamp {raw:?}: expected ISO 8601 / RFC 3339, e.g. 2026-01-31T12:00:00Z"
        ))
    };
    if s.is_empty() || s.len() > 64 {
        return Err(err());
    }
    // ISO 8601 years are four digits. chrono's `%Y` also takes a sign and any width
    // ("-026-01-31"), which no client means and which does not survive a round trip
    // (found by the `timestamps` fuzz target).
    let b = s.as_bytes();
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return Err(err());
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc).timestamp_millis());
    }
    // Python's isoformat() allows a space separator and an offset without colon is common.
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Ok(dt.with_timezone(&Utc).timestamp_millis());
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(naive.and_utc().timestamp_millis());
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(dt) = date.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc().timestamp_millis());
        }
    }
    Err(err())
}

/// A validated, inclusive time range in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
}

impl TimeRange {
    pub fn parse(start: &str, end: &str) -> Result<Self, ParseError> {
        let start = parse_timestamp(start)?;
        let end = parse_timestamp(end)?;
        if start > end {
            return Err(ParseError::new("start must not be after end"));
        }
        Ok(Self { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn offsets_and_naive() {
        let z = parse_timestamp("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(parse_timestamp("2026-01-02T03:04:05").unwrap(), z);
        assert_eq!(parse_timestamp("2026-01-02 03:04:05").unwrap(), z);
        assert_eq!(parse_timestamp("2026-01-02T04:04:05+01:00").unwrap(), z);
        assert_eq!(parse_timestamp("2026-01-02T04:04:05+0100").unwrap(), z);
        assert_eq!(
            parse_timestamp("2026-01-02T03:04:05.250Z").unwrap(),
            z + 250
        );
        assert_eq!(
            parse_timestamp("2026-01-02").unwrap(),
            parse_timestamp("2026-01-02T00:00:00Z").unwrap()
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-01-02T25:00:00",
            "1",
            // Years other than four digits (the first from the `timestamps` fuzz target).
            "-026-01-31",
            "+2026-01-31T00:00:00Z",
            "20260-01-31",
            "226-01-31T00:00:00Z",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_has_z() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(1_767_322_245_250),
            "2026-01-02T02:50:45.250Z"
        );
    }

    #[test]
    fn range_order() {
        assert!(TimeRange::parse("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z").is_err());
        assert!(TimeRange::parse("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z").is_ok());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = parse_timestamp(&s);
        }

        /// Whatever is accepted is written back (RFC 3339, milliseconds) as the same time.
        #[test]
        fn accepted_times_round_trip(s in "[-+]?[0-9]{1,5}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?") {
            if let Ok(ms) = parse_timestamp(&s) {
                prop_assert_eq!(parse_timestamp(&format_rfc3339(ms)).ok(), Some(ms));
            }
        }

        #[test]
        fn roundtrip(ms in 0i64..4_102_444_800_000) {
            prop_assert_eq!(parse_timestamp(&format_rfc3339(ms)).unwrap(), ms);
        }
    }
}
