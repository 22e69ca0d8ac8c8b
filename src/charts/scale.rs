//! Axis scales, nice ticks and the formatting of values and times.

use super::Unit;

/// A value with `decimals` fixed decimals, scientific beyond what reads as a
/// number, `—` when not finite, and never `-0`.
fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    if v.abs() >= 1e15 {
        return format!("{v:.2e}");
    }
    let scale = 10f64.powi(decimals as i32);
    let v = if (v * scale).round() == 0.0 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

const SI: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];

/// The SI prefix index that shows `abs` as less than 1000 of its unit.
fn si_index(abs: f64) -> usize {
    let mut k = 0;
    while k + 1 < SI.len() && abs >= 999.95 * 1000f64.powi(k as i32) {
        k += 1;
    }
    k
}

fn bytes_suffix(unit: Unit) -> &'static str {
    if unit == Unit::BytesPerSec {
        "B/s"
    } else {
        "B"
    }
}

/// One value with its unit: `43.2 %`, `1.2 MB/s`, `512 B`, `0.37`.
pub(crate) fn format_value(unit: Unit, v: f64) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    match unit {
        Unit::Percent => format!("{} %", fixed(v, 1)),
        Unit::Bytes | Unit::BytesPerSec => {
            let k = si_index(v.abs());
            let shown = v / 1000f64.powi(k as i32);
            let decimals = if k == 0 { 0 } else { 1 };
            format!("{} {}{}", fixed(shown, decimals), SI[k], bytes_suffix(unit))
        }
        Unit::Plain => {
            let a = v.abs();
            let decimals = if a < 10.0 {
                2
            } else if a < 1000.0 {
                1
            } else {
                0
            };
            fixed(v, decimals)
        }
    }
}

/// How many decimals show every multiple of `step` exactly (at most 6).
fn decimals_for(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    (0..6)
        .find(|&d| {
            let s = step * 10f64.powi(d as i32);
            (s - s.round()).abs() <= 1e-6 * s.max(1.0)
        })
        .unwrap_or(6)
}

/// Labels for y ticks `step` apart, all in the same unit and precision.
pub(crate) fn tick_labels(unit: Unit, ticks: &[f64], step: f64) -> Vec<String> {
    match unit {
        Unit::Percent | Unit::Plain => {
            let d = decimals_for(step);
            let suffix = if unit == Unit::Percent { " %" } else { "" };
            ticks
                .iter()
                .map(|&t| format!("{}{suffix}", fixed(t, if t == 0.0 { 0 } else { d })))
                .collect()
        }
        Unit::Bytes | Unit::BytesPerSec => {
            let top = ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
            let k = si_index(top);
            let div = 1000f64.powi(k as i32);
            let d = decimals_for(step / div);
            ticks
                .iter()
                .map(|&t| {
                    let d = if t == 0.0 { 0 } else { d };
                    format!("{} {}{}", fixed(t / div, d), SI[k], bytes_suffix(unit))
                })
                .collect()
        }
    }
}

/// The vertical value range drawn and the tick values on it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct YScale {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
    pub ticks: Vec<f64>,
}

impl YScale {
    /// Where `v` falls between `lo` (0.0) and `hi` (1.0), without overflow for
    /// huge values; NaN when it cannot be told.
    pub fn frac(&self, v: f64) -> f64 {
        (v / 2.0 - self.lo / 2.0) / (self.hi / 2.0 - self.lo / 2.0)
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let e = raw.log10().floor();
    let base = 10f64.powi(e as i32);
    let f = raw / base;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * base
}

/// The y scale: Percent is fixed 0..100; other units fit the data and the
/// threshold, include zero when all values share a sign, and round out to
/// 4–6 nice ticks.
pub(crate) fn y_scale(unit: Unit, data: Option<(f64, f64)>, threshold: Option<f64>) -> YScale {
    if unit == Unit::Percent {
        return YScale {
            lo: 0.0,
            hi: 100.0,
            step: 25.0,
            ticks: vec![0.0, 25.0, 50.0, 75.0, 100.0],
        };
    }
    let (mut lo, mut hi) = data.unwrap_or((0.0, 1.0));
    if let Some(t) = threshold {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if lo > 0.0 {
        lo = 0.0;
    }
    if hi < 0.0 {
        hi = 0.0;
    }
    if hi <= lo {
        // Only when everything is zero.
        hi = lo + 1.0;
    }
    let mut step = nice_step((hi / 2.0 - lo / 2.0) / 2.0);
    // Bytes come in whole units: no "0.25 B/s" ticks on an idle interface.
    if matches!(unit, Unit::Bytes | Unit::BytesPerSec) && step < 1.0 {
        step = 1.0;
    }
    if step.is_finite() && step > 0.0 {
        let first = (lo / step).floor();
        let last = (hi / step).ceil();
        let (nlo, nhi) = (first * step, last * step);
        let count = last - first;
        if nlo.is_finite() && nhi.is_finite() && nhi > nlo && (1.0..=8.0).contains(&count) {
            let ticks = (0..=count as usize)
                .map(|i| (first + i as f64) * step)
                .collect();
            return YScale {
                lo: nlo,
                hi: nhi,
                step,
                ticks,
            };
        }
    }
    // Beyond nice rounding (values near f64::MAX, spans too small to step):
    // the plain range with its ends and middle.
    let mid = lo / 2.0 + hi / 2.0;
    YScale {
        lo,
        hi,
        step: hi / 2.0 - lo / 2.0,
        ticks: vec![lo, mid, hi],
    }
}

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
pub(crate) const DAY: i64 = 24 * HOUR;

const TIME_STEPS: [i64; 25] = [
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    90 * DAY,
    180 * DAY,
    365 * DAY,
];

/// Tick times for `[start, end]` (`start <= end`): multiples of a round step
/// (UTC-aligned), at most 5 or 6 of them, and the step.
pub(crate) fn time_ticks(start: i64, end: i64) -> (Vec<i64>, i64) {
    let span = i128::from(end) - i128::from(start);
    if span <= 0 {
        return (vec![start], SECOND);
    }
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|&s| span / i128::from(s) <= 5)
        .unwrap_or_else(|| {
            let years = span / 5 / i128::from(365 * DAY) + 1;
            i64::try_from(years * i128::from(365 * DAY)).unwrap_or(i64::MAX)
        });
    let s = i128::from(step);
    let mut t = (i128::from(start) + s - 1).div_euclid(s) * s;
    let mut out = Vec::new();
    while t <= i128::from(end) && out.len() < 8 {
        if let Ok(ts) = i64::try_from(t) {
            out.push(ts);
        }
        t += s;
    }
    (out, step)
}

/// `ms` since the epoch in UTC with a chrono format, or the raw number when
/// out of chrono's range.
pub(crate) fn format_time(ms: i64, fmt: &str) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format(fmt).to_string(),
        None => ms.to_string(),
    }
}

/// The tick label format for a span and tick step: `14:03` within a day,
/// `Nov 27 14:00` across days, `Nov 27` for day steps, with the year beyond one.
pub(crate) fn time_format(span: i64, step: i64) -> &'static str {
    if span <= DAY {
        if step < MINUTE {
            "%H:%M:%S"
        } else {
            "%H:%M"
        }
    } else if step < DAY {
        "%b %-d %H:%M"
    } else if span <= 366 * DAY {
        "%b %-d"
    } else {
        "%b %-d %Y"
    }
}

/// A duration in words for the accessible label: `15 min`, `1 h`, `30 d`, `1.5 h`.
pub(crate) fn format_duration(ms: i64) -> String {
    let units = [(DAY, "d"), (HOUR, "h"), (MINUTE, "min"), (SECOND, "s")];
    for (size, name) in units {
        if ms >= size {
            return if ms % size == 0 {
                format!("{} {name}", ms / size)
            } else {
                format!("{:.1} {name}", ms as f64 / size as f64)
            };
        }
    }
    format!("{ms} ms")
}
