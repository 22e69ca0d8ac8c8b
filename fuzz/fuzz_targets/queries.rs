//! The query-string and duration parsers of the API: every JSON route's query struct as
//! axum's `Query` reads it (`serde_urlencoded`), the rule durations (`"1h30m"`), and the
//! `Retry-After` values the notifier reads from receivers.
//!
//! Input: the whole input as a query string for each struct, and each line as a duration
//! and as a `Retry-After` value. Checked: no panic; a parsed duration is not negative and
//! survives a round trip through `format_duration_secs`; a delta-seconds `Retry-After` is
//! exactly that many seconds (saturating), a negative one zero.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};
use watchpost::alerts::model::{format_duration_secs, parse_duration_secs};
use watchpost::http::api::{alerts, deliveries, logs, metrics};
use watchpost::notify::retry::parse_retry_after;

fuzz_target!(|data: &[u8]| {
    let _ = serde_urlencoded::from_bytes::<metrics::MetricsQuery>(data);
    let _ = serde_urlencoded::from_bytes::<metrics::HistoryQuery>(data);
    let _ = serde_urlencoded::from_bytes::<alerts::AlertsQuery>(data);
    let _ = serde_urlencoded::from_bytes::<alerts::SummaryQuery>(data);
    let _ = serde_urlencoded::from_bytes::<deliveries::DeliveryQuery>(data);
    let _ = serde_urlencoded::from_bytes::<logs::AnalysesQuery>(data);

    let text = String::from_utf8_lossy(data);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    for line in text.lines().take(16) {
        if let Ok(secs) = parse_duration_secs(line) {
            assert!(secs >= 0, "{line:?} -> {secs}");
            let written = format_duration_secs(secs);
            assert_eq!(parse_duration_secs(&written).ok(), Some(secs), "{written}");
        }
        // Delta-seconds give exactly that many seconds, saturating (callers cap the wait);
        // a negative number means "now".
        let v = line.trim();
        let got = parse_retry_after(line, now);
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            let want = Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX));
            assert_eq!(got, Some(want), "{line:?}");
        } else if v.len() > 1 && v.starts_with('-') && v[1..].bytes().all(|b| b.is_ascii_digit()) {
            assert_eq!(got, Some(Duration::ZERO), "{line:?}");
        }
    }
});
