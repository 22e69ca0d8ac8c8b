//! What a rule is made of: metric, comparison, severity and durations, parsed from untrusted input.

use crate::domain::ParseError;
use crate::store::Sample;
use serde::{Deserialize, Serialize};

/// Every collected metric a rule can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleMetric {
    Cpu,
    Memory,
    Swap,
    Disk,
    Load1,
    Load5,
    Load15,
    DiskReadBps,
    DiskWriteBps,
    NetRxBps,
    NetTxBps,
    Processes,
    MemoryUsed,
    /// Reporting intervals an agent host has missed: judged on the clock, not on samples
    /// (a silent host sends none), by the replica that evaluates agent hosts.
    MissedIntervals,
}

impl RuleMetric {
    pub const ALL: [RuleMetric; 14] = [
        RuleMetric::Cpu,
        RuleMetric::Memory,
        RuleMetric::Swap,
        RuleMetric::Disk,
        RuleMetric::Load1,
        RuleMetric::Load5,
        RuleMetric::Load15,
        RuleMetric::DiskReadBps,
        RuleMetric::DiskWriteBps,
        RuleMetric::NetRxBps,
        RuleMetric::NetTxBps,
        RuleMetric::Processes,
        RuleMetric::MemoryUsed,
        RuleMetric::MissedIntervals,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleMetric::Cpu => "cpu",
            RuleMetric::Memory => "memory",
            RuleMetric::Swap => "swap",
            RuleMetric::Disk => "disk",
            RuleMetric::Load1 => "load1",
            RuleMetric::Load5 => "load5",
            RuleMetric::Load15 => "load15",
            RuleMetric::DiskReadBps => "disk_read_bps",
            RuleMetric::DiskWriteBps => "disk_write_bps",
            RuleMetric::NetRxBps => "net_rx_bps",
            RuleMetric::NetTxBps => "net_tx_bps",
            RuleMetric::Processes => "processes",
            RuleMetric::MemoryUsed => "memory_used",
            RuleMetric::MissedIntervals => "missed_intervals",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RuleMetric::Cpu => "CPU %",
            RuleMetric::Memory => "Memory %",
            RuleMetric::Swap => "Swap %",
            RuleMetric::Disk => "Disk used % (fullest filesystem)",
            RuleMetric::Load1 => "Load average (1 min)",
            RuleMetric::Load5 => "Load average (5 min)",
            RuleMetric::Load15 => "Load average (15 min)",
            RuleMetric::DiskReadBps => "Disk read, bytes/s",
            RuleMetric::DiskWriteBps => "Disk write, bytes/s",
            RuleMetric::NetRxBps => "Network received, bytes/s",
            RuleMetric::NetTxBps => "Network sent, bytes/s",
            RuleMetric::Processes => "Processes",
            RuleMetric::MemoryUsed => "Memory used, bytes",
            RuleMetric::MissedIntervals => "Missed reports (agent hosts)",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Percentages are bounded; the others only have to be non-negative.
    pub fn is_percent(self) -> bool {
        matches!(
            self,
            RuleMetric::Cpu | RuleMetric::Memory | RuleMetric::Swap | RuleMetric::Disk
        )
    }

    pub fn value(self, s: &Sample) -> f64 {
        match self {
            RuleMetric::Cpu => s.cpu,
            RuleMetric::Memory => s.memory,
            RuleMetric::Swap => s.swap,
            RuleMetric::Disk => s.disk,
            RuleMetric::Load1 => s.load1,
            RuleMetric::Load5 => s.load5,
            RuleMetric::Load15 => s.load15,
            RuleMetric::DiskReadBps => s.disk_read_bps,
            RuleMetric::DiskWriteBps => s.disk_write_bps,
            RuleMetric::NetRxBps => s.net_rx_bps,
            RuleMetric::NetTxBps => s.net_tx_bps,
            RuleMetric::Processes => s.processes as f64,
            RuleMetric::MemoryUsed => s.memory_used as f64,
            // Not a property of any sample: `Evaluator::observe_silence` supplies it.
            RuleMetric::MissedIntervals => f64::NAN,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Comparison {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Comparison {
    pub const ALL: [Comparison; 4] = [
        Comparison::Gt,
        Comparison::Ge,
        Comparison::Lt,
        Comparison::Le,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
        }
    }

    /// Upper-bound rules (`>`, `>=`) alert on high values.
    pub fn is_upper(self) -> bool {
        matches!(self, Comparison::Gt | Comparison::Ge)
    }

    /// The threshold the value must cross back over before an alert clears: `hysteresis`
    /// below an upper bound, above a lower one.
    pub fn clear_threshold(self, threshold: f64, hysteresis: f64) -> f64 {
        if self.is_upper() {
            threshold - hysteresis
        } else {
            threshold + hysteresis
        }
    }

    /// The worse of two values in the alerting direction (the episode's peak).
    pub fn worse(self, a: f64, b: f64) -> f64 {
        if self.is_upper() {
            a.max(b)
        } else {
            a.min(b)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// Parses a duration given as whole seconds (`"90"`) or with units (`"90s"`, `"5m"`,
/// `"1h30m"`, `"2d"`), the way Prometheus writes them. Returns seconds.
pub fn parse_duration_secs(input: &str) -> Result<i64, ParseError> {
    let s = input.trim();
    let bad = || {
        ParseError::new(format!(
            "invalid duration {:?}: use seconds or units like 30s, 5m, 4h, 1d",
            truncate(input, 40)
        ))
    };
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = s.parse::<i64>() {
        return if n < 0 { Err(bad()) } else { Ok(n) };
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// Writes seconds the short way round (`"4h"`, `"90s"`, `"1h30m"`).
pub fn format_duration_secs(secs: i64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, name) in [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")] {
        if rest >= unit {
            out.push_str(&format!("{}{}", rest / unit, name));
            rest %= unit;
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_parse_in_both_spellings() {
        assert_eq!(parse_duration_secs("0").unwrap(), 0);
        assert_eq!(parse_duration_secs("90").unwrap(), 90);
        assert_eq!(parse_duration_secs("90s").unwrap(), 90);
        assert_eq!(parse_duration_secs("5m").unwrap(), 300);
        assert_eq!(parse_duration_secs("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration_secs("2d").unwrap(), 172_800);
        for bad in ["", "-5", "5x", "m", "1.5h", "5m3", "99999999999999999999d"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration_secs(14_400), "4h");
        assert_eq!(format_duration_secs(5400), "1h30m");
        assert_eq!(format_duration_secs(0), "0s");
        assert_eq!(format_duration_secs(61), "1m1s");
    }

    #[test]
    fn comparison_clear_threshold_moves_away_from_alerting_side() {
        assert_eq!(Comparison::Gt.clear_threshold(80.0, 5.0), 75.0);
        assert_eq!(Comparison::Lt.clear_threshold(10.0, 5.0), 15.0);
        assert_eq!(Comparison::Lt.worse(3.0, 1.0), 1.0);
        assert_eq!(Comparison::Ge.worse(3.0, 1.0), 3.0);
    }

    #[test]
    fn metric_names_round_trip() {
        for m in RuleMetric::ALL {
            assert_eq!(RuleMetric::parse(m.as_str()), Some(m));
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
    }

    proptest! {
        #[test]
        fn duration_parser_never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration_secs(&s);
        }

        #[test]
        fn formatted_durations_parse_back(n in 0i64..10_000_000) {
            prop_assert_eq!(parse_duration_secs(&format_duration_secs(n)).unwrap(), n);
        }
    }
}
