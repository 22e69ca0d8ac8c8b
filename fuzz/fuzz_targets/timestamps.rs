//! The timestamp parsers: `/metrics/history`'s lenient `parse_timestamp` / `TimeRange`,
//! and the agent ingest body (`IngestBody`, whose samples carry strict RFC 3339 times).
//!
//! Input: text before the first `\n` is one timestamp, the next line a second one (a
//! range); the whole input is also tried as an ingest body (JSON). Checked: no panic; a
//! parsed timestamp written back as RFC 3339 parses to the same millisecond; a parsed range
//! has start <= end; a batch that validates has distinct sample times, none later than
//! the allowed future and none before 1970.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchpost::domain::{format_rfc3339, parse_timestamp, TimeRange};
use watchpost::ingest::wire::{BatchLimits, IngestBody};

const NOW: i64 = 1_790_000_000_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let a = lines.next().unwrap_or("");
    let b = lines.next().unwrap_or("");
    for raw in [a, b] {
        if let Ok(ms) = parse_timestamp(raw) {
            let back = format_rfc3339(ms);
            assert_eq!(parse_timestamp(&back).ok(), Some(ms), "{raw:?} -> {back}");
        }
    }
    if let Ok(r) = TimeRange::parse(a, b) {
        assert!(r.start <= r.end, "{a:?}..{b:?}");
    }

    if let Ok(body) = serde_json::from_slice::<IngestBody>(data) {
        let limits = BatchLimits {
            max_samples: 100,
            max_future_ms: 60_000,
        };
        if let Ok(batch) = body.validate(7, NOW, limits) {
            let mut seen = std::collections::HashSet::new();
            for s in &batch.samples {
                assert_eq!(s.host_id, 7);
                assert!(s.ts >= 0 && s.ts <= NOW + limits.max_future_ms, "{}", s.ts);
                assert!(seen.insert(s.ts), "duplicate sample time {}", s.ts);
            }
            assert!(!batch.samples.is_empty() && batch.samples.len() <= limits.max_samples);
        }
    }
});
