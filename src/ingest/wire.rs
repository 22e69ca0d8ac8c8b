//! What agents send to `POST /ingest` and get back, and the checks a batch must pass.

use crate::domain::format_rfc3339;
use crate::store::Sample;
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One sample on the wire. Times are RFC 3339 (`2026-11-27T10:00:00.000Z`; other offsets are
/// converted to UTC); percentages are 0–100; everything else is a non-negative number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WireSample {
    /// When the sample was taken, RFC 3339 (UTC with `Z` recommended).
    #[schema(example = "2026-11-27T10:00:00.000Z")]
    pub ts: String,
    /// CPU busy, percent of all cores.
    #[schema(minimum = 0, maximum = 100)]
    pub cpu: f64,
    /// Memory in use, percent.
    #[schema(minimum = 0, maximum = 100)]
    pub memory: f64,
    /// Memory in use, bytes (at most `memory_total`).
    #[schema(minimum = 0)]
    pub memory_used: i64,
    #[schema(minimum = 0)]
    pub memory_total: i64,
    /// Swap in use, percent.
    #[schema(minimum = 0, maximum = 100)]
    pub swap: f64,
    #[schema(minimum = 0)]
    pub load1: f64,
    #[schema(minimum = 0)]
    pub load5: f64,
    #[schema(minimum = 0)]
    pub load15: f64,
    /// Fullest real filesystem, percent used.
    #[schema(minimum = 0, maximum = 100)]
    pub disk: f64,
    #[schema(minimum = 0)]
    pub disk_read_bps: f64,
    #[schema(minimum = 0)]
    pub disk_write_bps: f64,
    #[schema(minimum = 0)]
    pub net_rx_bps: f64,
    #[schema(minimum = 0)]
    pub net_tx_bps: f64,
    #[schema(minimum = 0)]
    pub processes: i64,
    /// Seconds since boot.
    #[schema(minimum = 0)]
    pub uptime: i64,
}

impl WireSample {
    /// The wire form of a collected sample.
    pub fn from_sample(s: &Sample) -> Self {
        Self {
            ts: format_rfc3339(s.ts),
            cpu: s.cpu,
            memory: s.memory,
            memory_used: s.memory_used,
            memory_total: s.memory_total,
            swap: s.swap,
            load1: s.load1,
            load5: s.load5,
            load15: s.load15,
            disk: s.disk,
            disk_read_bps: s.disk_read_bps,
            disk_write_bps: s.disk_write_bps,
            net_rx_bps: s.net_rx_bps,
            net_tx_bps: s.net_tx_bps,
            processes: s.processes,
            uptime: s.uptime,
        }
    }

    /// Checks every value and converts to a stored sample for `host_id`; the error names
    /// the offending field.
    pub fn to_sample(&self, host_id: i64) -> Result<Sample, String> {
        let ts = parse_ts(&self.ts).ok_or_else(|| {
            "ts must be an RFC 3339 timestamp such as 2026-11-27T10:00:00.000Z".to_owned()
        })?;
        for (name, v) in [
            ("cpu", self.cpu),
            ("memory", self.memory),
            ("swap", self.swap),
            ("disk", self.disk),
        ] {
            if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                return Err(format!("{name} must be a percentage between 0 and 100"));
            }
        }
        for (name, v) in [
            ("load1", self.load1),
            ("load5", self.load5),
            ("load15", self.load15),
            ("disk_read_bps", self.disk_read_bps),
            ("disk_write_bps", self.disk_write_bps),
            ("net_rx_bps", self.net_rx_bps),
            ("net_tx_bps", self.net_tx_bps),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a finite number >= 0"));
            }
        }
        for (name, v) in [
            ("memory_used", self.memory_used),
            ("memory_total", self.memory_total),
            ("processes", self.processes),
            ("uptime", self.uptime),
        ] {
            if v < 0 {
                return Err(format!("{name} must not be negative"));
            }
        }
        if self.memory_used > self.memory_total {
            return Err("memory_used must not exceed memory_total".into());
        }
        Ok(Sample {
            host_id,
            ts,
            cpu: self.cpu,
            memory: self.memory,
            memory_used: self.memory_used,
            memory_total: self.memory_total,
            swap: self.swap,
            load1: self.load1,
            load5: self.load5,
            load15: self.load15,
            disk: self.disk,
            disk_read_bps: self.disk_read_bps,
            disk_write_bps: self.disk_write_bps,
            net_rx_bps: self.net_rx_bps,
            net_tx_bps: self.net_tx_bps,
            processes: self.processes,
            uptime: self.uptime,
        })
    }
}

/// Strict RFC 3339 (the lenient forms `/metrics/history` accepts are for humans, not
/// agents); epoch milliseconds.
fn parse_ts(raw: &str) -> Option<i64> {
    if raw.len() > 40 {
        return None;
    }
    let ms = DateTime::parse_from_rfc3339(raw).ok()?.timestamp_millis();
    (ms >= 0).then_some(ms)
}

/// `POST /ingest` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// Chosen by the agent, 1–64 characters of `[A-Za-z0-9._:-]` (a UUID fits); reused
    /// when the same batch is retried, so a retry is recognised and not stored twice.
    #[schema(example = "5f0c6a4e-2b1d-4c55-9a6f-0d9b7e3c1a20", max_length = 64)]
    pub batch_id: String,
    /// The agent's version, up to 64 printable characters.
    #[schema(example = "0.1.0", max_length = 64)]
    #[serde(default)]
    pub agent_version: Option<String>,
    /// The agent's collection period in milliseconds (100 to 86 400 000); drives the
    /// host's up/stale/down status.
    #[schema(example = 1000, minimum = 100, maximum = 86_400_000)]
    #[serde(default)]
    pub interval_ms: Option<i64>,
    /// Oldest first is usual but not required; 1 to `ingest_max_samples` (default 10 000).
    pub samples: Vec<WireSample>,
}

/// `POST /ingest` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    /// Samples newly stored by this request (samples whose timestamp the host already has
    /// are skipped, so this can be below the batch size; 0 for a duplicate).
    pub accepted: u64,
    /// The batch id was stored before: nothing was stored again.
    pub duplicate: bool,
    pub batch_id: String,
}

/// Limits a batch is checked against.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_samples: usize,
    /// How far ahead of the server's clock a sample may be stamped.
    pub max_future_ms: i64,
}

/// A batch that passed every check, ready for the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidBatch {
    pub batch_id: String,
    pub agent_version: Option<String>,
    pub interval_ms: Option<i64>,
    /// Distinct timestamps, in the order received.
    pub samples: Vec<Sample>,
}

impl IngestBody {
    /// Checks the whole batch; any bad sample rejects all of it (nothing is stored), with
    /// a message naming the sample and field.
    pub fn validate(
        self,
        host_id: i64,
        now: i64,
        limits: BatchLimits,
    ) -> Result<ValidBatch, String> {
        let id = self.batch_id.as_str();
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(
                "batch_id must be 1 to 64 characters of letters, digits, '.', '_', ':' and '-'"
                    .into(),
            );
        }
        if let Some(v) = &self.agent_version {
            if v.is_empty() || v.chars().count() > 64 || v.chars().any(|c| c.is_control()) {
                return Err("agent_version must be 1 to 64 printable characters".into());
            }
        }
        if let Some(i) = self.interval_ms {
            if !(100..=86_400_000).contains(&i) {
                return Err("interval_ms must be between 100 and 86400000".into());
            }
        }
        if self.samples.is_empty() {
            return Err("samples must not be empty".into());
        }
        if self.samples.len() > limits.max_samples {
            return Err(format!(
                "too many samples in one batch ({}; at most {})",
                self.samples.len(),
                limits.max_samples
            ));
        }
        let latest_allowed = now.saturating_add(limits.max_future_ms);
        let mut seen = std::collections::HashSet::with_capacity(self.samples.len());
        let mut samples = Vec::with_capacity(self.samples.len());
        for (i, w) in self.samples.iter().enumerate() {
            let s = w
                .to_sample(host_id)
                .map_err(|e| format!("samples[{i}]: {e}"))?;
            if s.ts > latest_allowed {
                return Err(format!(
                    "samples[{i}]: ts {} is more than {} s ahead of the server's clock",
                    format_rfc3339(s.ts),
                    limits.max_future_ms / 1000
                ));
            }
            // One row per (host, ts): a repeated timestamp within a batch keeps the first.
            if seen.insert(s.ts) {
                samples.push(s);
            }
        }
        Ok(ValidBatch {
            batch_id: self.batch_id,
            agent_version: self.agent_version,
            interval_ms: self.interval_ms,
            samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000;
    const LIMITS: BatchLimits = BatchLimits {
        max_samples: 3,
        max_future_ms: 300_000,
    };

    fn good(ts: i64) -> WireSample {
        WireSample::from_sample(&Sample {
            ts,
            cpu: 12.5,
            memory: 40.0,
            memory_used: 4,
            memory_total: 10,
            load1: 0.5,
            processes: 100,
            uptime: 1000,
            ..Sample::default()
        })
    }

    fn body(samples: Vec<WireSample>) -> IngestBody {
        IngestBody {
            batch_id: "b-1".into(),
            agent_version: Some("0.1.0".into()),
            interval_ms: Some(1000),
            samples,
        }
    }

    #[test]
    fn a_good_batch_round_trips() {
        let b = body(vec![good(NOW - 2000), good(NOW - 1000)])
            .validate(7, NOW, LIMITS)
            .unwrap();
        assert_eq!(b.samples.len(), 2);
        assert_eq!(b.samples[0].host_id, 7);
        assert_eq!(b.samples[0].ts, NOW - 2000);
        assert_eq!(WireSample::from_sample(&b.samples[1]), good(NOW - 1000));
    }

    #[test]
    fn offsets_are_converted_and_repeats_kept_once() {
        let mut s = good(0);
        s.ts = "2026-01-02T04:04:05.250+01:00".into();
        let mut z = good(0);
        z.ts = "2026-01-02T03:04:05.250Z".into();
        let b = body(vec![s, z]).validate(1, NOW, LIMITS).unwrap();
        assert_eq!(b.samples.len(), 1);
        assert_eq!(format_rfc3339(b.samples[0].ts), "2026-01-02T03:04:05.250Z");
    }

    #[test]
    fn bad_values_are_named() {
        type Spoil = Box<dyn Fn(&mut WireSample)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (Box::new(|s| s.cpu = 150.0), "samples[0]: cpu"),
            (Box::new(|s| s.disk = -1.0), "samples[0]: disk"),
            (Box::new(|s| s.swap = f64::NAN), "samples[0]: swap"),
            (
                Box::new(|s| s.net_rx_bps = f64::INFINITY),
                "samples[0]: net_rx_bps",
            ),
            (Box::new(|s| s.load5 = -0.1), "samples[0]: load5"),
            (Box::new(|s| s.processes = -1), "samples[0]: processes"),
            (Box::new(|s| s.memory_used = 11), "samples[0]: memory_used"),
            (Box::new(|s| s.ts = "yesterday".into()), "samples[0]: ts"),
            (
                Box::new(|s| s.ts = "2026-01-02T03:04:05".into()),
                "samples[0]: ts",
            ),
            (
                Box::new(|s| s.ts = format_rfc3339(NOW + 300_001)),
                "ahead of the server's clock",
            ),
        ];
        for (spoil, expect) in cases {
            let mut s = good(NOW);
            spoil(&mut s);
            let err = body(vec![s]).validate(1, NOW, LIMITS).unwrap_err();
            assert!(err.contains(expect), "{err:?} lacks {expect:?}");
        }
        // Exactly at the future limit is fine.
        assert!(body(vec![good(NOW + 300_000)])
            .validate(1, NOW, LIMITS)
            .is_ok());
    }

    #[test]
    fn batch_fields_are_checked() {
        assert!(body(vec![]).validate(1, NOW, LIMITS).is_err());
        assert!(body((0..4).map(|i| good(NOW - i)).collect())
            .validate(1, NOW, LIMITS)
            .unwrap_err()
            .contains("too many samples"));
        for bad_id in ["", "a b", &"x".repeat(65), "é", "a/b"] {
            let mut b = body(vec![good(NOW)]);
            b.batch_id = bad_id.into();
            assert!(b.validate(1, NOW, LIMITS).is_err(), "{bad_id:?}");
        }
        let mut b = body(vec![good(NOW)]);
        b.batch_id = "5f0c6a4e-2b1d-4c55-9a6f-0d9b7e3c1a20".into();
        assert!(b.validate(1, NOW, LIMITS).is_ok());
        let mut b = body(vec![good(NOW)]);
        b.interval_ms = Some(50);
        assert!(b.validate(1, NOW, LIMITS).is_err());
        let mut b = body(vec![good(NOW)]);
        b.agent_version = Some("1.0\n".into());
        assert!(b.validate(1, NOW, LIMITS).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = serde_json::json!({
            "batch_id": "x", "samples": [], "host_id": 1
        });
        assert!(serde_json::from_value::<IngestBody>(json).is_err());
    }

    proptest::proptest! {
        /// Sample times: never a panic; whatever is accepted is not before 1970 and reads
        /// back the same from the server's own RFC 3339 form.
        #[test]
        fn parse_ts_never_panics_and_round_trips(s in "\\PC{0,48}") {
            if let Some(ms) = parse_ts(&s) {
                proptest::prop_assert!(ms >= 0);
                proptest::prop_assert_eq!(parse_ts(&crate::domain::format_rfc3339(ms)), Some(ms));
            }
        }

        /// Whole batches of any sample times (mostly real ones), any cpu value (NaN and
        /// infinities included) and any batch id: a batch is accepted exactly when its id,
        /// size, times and values are all acceptable, and what is accepted keeps the limits.
        #[test]
        fn batches_are_accepted_exactly_when_every_part_is_valid(
            ts in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => "20[0-2][0-9]-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,3})?Z",
                    1 => "\\PC{0,30}",
                ],
                0..5,
            ),
            cpu in proptest::prop_oneof![4 => 0.0..=100.0, 1 => proptest::num::f64::ANY],
            id in proptest::prop_oneof![4 => "[A-Za-z0-9._:-]{1,64}", 1 => "\\PC{0,70}"],
        ) {
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
            let times_ok = ts.iter().all(|t| {
                parse_ts(t).is_some_and(|ms| ms <= NOW + LIMITS.max_future_ms)
            });
            let size_ok = (1..=LIMITS.max_samples).contains(&ts.len());
            let cpu_ok = (0.0..=100.0).contains(&cpu);
            let samples: Vec<WireSample> = ts
                .iter()
                .map(|t| WireSample { ts: t.clone(), cpu, ..good(0) })
                .collect();
            let body = IngestBody { batch_id: id, agent_version: None, interval_ms: None, samples };
            let result = body.validate(1, NOW, LIMITS);
            proptest::prop_assert_eq!(
                result.is_ok(),
                id_ok && times_ok && size_ok && cpu_ok,
                "{:?}",
                result
            );
            if let Ok(v) = result {
                proptest::prop_assert!(!v.samples.is_empty() && v.samples.len() <= LIMITS.max_samples);
                for s in &v.samples {
                    proptest::prop_assert!(s.ts >= 0 && s.ts <= NOW + LIMITS.max_future_ms);
                    proptest::prop_assert_eq!(s.cpu, cpu);
                }
            }
        }
    }
}
