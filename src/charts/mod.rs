//! Server-rendered SVG charts: one metric of one host over a time range.
//!
//! A pure library (no IO, no async): [`build`] turns a [`ChartInput`] into a
//! [`ChartView`] of precomputed strings and numbers, and [`ChartFragment`]
//! renders that into an inline `<svg>` inside a `<figure>` with the
//! `partials/chart.html` template, ready for an htmx swap. Styling is left to
//! CSS classes (`chart-grid`, `chart-axis`, `chart-line`, `chart-area`,
//! `chart-threshold`, `chart-last`, `chart-hover`, `chart-empty`) plus SVG
//! presentation attributes as fallbacks, never `style` attributes, so a strict
//! Content-Security-Policy holds.

mod downsample;
mod scale;
#[cfg(test)]
mod tests;

pub use downsample::{downsample_minmax, lttb};

use downsample::Sample;
use scale::{format_time, format_value, YScale};

/// How values are scaled and labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Y axis fixed at 0..100, labels like `43.2 %`.
    Percent,
    /// Auto scale, labels like `1.2 MB`.
    Bytes,
    /// Auto scale, labels like `1.2 MB/s`.
    BytesPerSec,
    /// Auto scale, plain numbers (load average and the like).
    Plain,
}

/// What one chart shows.
#[derive(Debug, Clone, Copy)]
pub struct ChartInput<'a> {
    /// The metric's name, e.g. `CPU`.
    pub title: &'a str,
    /// Scaling and labels of the values.
    pub unit: Unit,
    /// Start of the x range, UTC epoch milliseconds.
    pub start_ms: i64,
    /// End of the x range, UTC epoch milliseconds; the x axis always spans
    /// `start_ms..=end_ms` (swapped when given the wrong way round).
    pub end_ms: i64,
    /// `(ts ms, value)`, ideally ascending; may be empty, have gaps, hold
    /// non-finite values (skipped) or points outside the range (ignored).
    pub points: &'a [(i64, f64)],
    /// A horizontal dashed line with its value as label.
    pub threshold: Option<f64>,
    /// At most about this many points are drawn (min-max downsampling).
    pub max_points: usize,
}

/// A y gridline and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct YTick {
    pub y: f64,
    pub label: String,
}

/// An x tick and its UTC time label; `anchor` is the SVG `text-anchor`
/// (`start`/`middle`/`end`) that keeps the label inside the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct XTick {
    pub x: f64,
    pub label: String,
    pub anchor: &'static str,
}

/// The threshold line's y and its label's position and text.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdMark {
    pub y: f64,
    pub label_y: f64,
    pub label: String,
}

/// Where the marker dot of the last value goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastMark {
    pub x: f64,
    pub y: f64,
}

/// A transparent circle whose `<title>` is the native hover tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct HoverTarget {
    pub x: f64,
    pub y: f64,
    pub title: String,
}

/// Everything the template needs, precomputed. Coordinates are in viewBox
/// units, finite and rounded to one decimal.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartView {
    pub title: String,
    /// One-sentence summary for `aria-label`.
    pub aria_label: String,
    /// `0 0 {width} {height}`.
    pub view_box: String,
    pub width: f64,
    pub height: f64,
    /// The plot area inside the margins.
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_top: f64,
    pub plot_bottom: f64,
    /// x of the (right-aligned) y tick labels.
    pub y_label_x: f64,
    /// Baseline y of the x tick labels.
    pub x_label_y: f64,
    /// Middle of the plot area, for the "No data" note.
    pub center_x: f64,
    pub center_y: f64,
    /// `M x y L x y ...`, one `M` per gap-free run; empty without data.
    pub line_path: String,
    /// Closed areas under each run down to the plot bottom.
    pub area_path: String,
    pub y_ticks: Vec<YTick>,
    pub x_ticks: Vec<XTick>,
    pub threshold: Option<ThresholdMark>,
    pub last: Option<LastMark>,
    /// The last value with its unit, `—` without data.
    pub last_label: String,
    pub min_label: String,
    pub avg_label: String,
    pub max_label: String,
    pub has_data: bool,
    /// At most [`MAX_HOVER`] targets, evenly chosen along the drawn points.
    pub hover: Vec<HoverTarget>,
}

/// The chart as an HTML fragment: `ChartFragment { chart: build(&input) }.render()`.
#[derive(askama::Template)]
#[template(path = "partials/chart.html")]
pub struct ChartFragment {
    pub chart: ChartView,
}

/// ViewBox width.
pub const WIDTH: f64 = 600.0;
/// ViewBox height.
pub const HEIGHT: f64 = 180.0;
/// Room for the y labels on the left.
pub const MARGIN_LEFT: f64 = 64.0;
pub const MARGIN_RIGHT: f64 = 12.0;
pub const MARGIN_TOP: f64 = 10.0;
/// Room for the x labels below.
pub const MARGIN_BOTTOM: f64 = 22.0;
/// Most hover targets in one chart.
pub const MAX_HOVER: usize = 30;

/// Rounded to one decimal, and 0 when not finite.
fn r1(v: f64) -> f64 {
    if v.is_finite() {
        (v * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Statistics of the finite points in range.
struct Stats {
    count: usize,
    min: f64,
    max: f64,
    mean: f64,
    last: (i64, f64),
}

fn stats(points: &[(i64, f64)]) -> Option<Stats> {
    let mut s: Option<Stats> = None;
    for &(ts, v) in points {
        if !v.is_finite() {
            continue;
        }
        match s.as_mut() {
            None => {
                s = Some(Stats {
                    count: 1,
                    min: v,
                    max: v,
                    mean: v,
                    last: (ts, v),
                })
            }
            Some(s) => {
                s.count += 1;
                s.min = s.min.min(v);
                s.max = s.max.max(v);
                // Running mean on halves: no overflow even near f64::MAX.
                s.mean += (v / 2.0 - s.mean / 2.0) / s.count as f64 * 2.0;
                s.last = (ts, v);
            }
        }
    }
    s
}

/// The median positive spacing of consecutive finite points: exact for small
/// inputs, from up to 1024 evenly spread pairs for large ones.
fn median_spacing(points: &[(i64, f64)]) -> Option<i64> {
    const SAMPLE: usize = 1024;
    let n = points.len();
    if n < 2 {
        return None;
    }
    let mut diffs: Vec<i64> = if n <= 4 * SAMPLE {
        let mut prev: Option<i64> = None;
        let mut d = Vec::with_capacity(n);
        for &(ts, v) in points {
            if !v.is_finite() {
                continue;
            }
            if let Some(p) = prev {
                d.push(ts.saturating_sub(p));
            }
            prev = Some(ts);
        }
        d
    } else {
        (0..SAMPLE)
            .map(|k| k * (n - 2) / (SAMPLE - 1))
            .filter(|&i| points[i].1.is_finite() && points[i + 1].1.is_finite())
            .map(|i| points[i + 1].0.saturating_sub(points[i].0))
            .collect()
    };
    diffs.retain(|&d| d > 0);
    if diffs.is_empty() {
        return None;
    }
    let mid = diffs.len() / 2;
    Some(*diffs.select_nth_unstable(mid).1)
}

/// The points to draw: every finite point in range, or min-max buckets when
/// more than `max_points`, with breaks across gaps longer than 3× the median
/// spacing (and at least one bucket when downsampled).
fn drawn_samples(
    pts: &[(i64, f64)],
    count: usize,
    start: i64,
    end: i64,
    max_points: usize,
) -> Vec<Sample> {
    let gap = median_spacing(pts).map_or(i64::MAX, |m| m.saturating_mul(3));
    if count <= max_points {
        return downsample::with_breaks(pts, gap);
    }
    let buckets = (max_points / 2).max(1);
    let span = i128::from(end) - i128::from(start);
    let width = i64::try_from(span / buckets as i128 + 1).unwrap_or(i64::MAX);
    let mut out = downsample::minmax_core(pts, start, end, buckets, gap.max(width));
    // Start and end the line on the real first and last points, so the last
    // value's marker sits on it.
    let is_finite = |p: &&(i64, f64)| p.1.is_finite();
    if let Some(&(ts, v)) = pts.iter().find(is_finite) {
        if out.first().is_some_and(|s| (s.ts, s.v) != (ts, v)) {
            out.insert(0, Sample { ts, v, brk: false });
            if let Some(s) = out.get_mut(1) {
                s.brk = false;
            }
        }
    }
    if let Some(&(ts, v)) = pts.iter().rev().find(is_finite) {
        if out.last().is_some_and(|s| (s.ts, s.v) != (ts, v)) {
            out.push(Sample { ts, v, brk: false });
        }
    }
    out
}

/// Appends `x y` with one decimal.
fn push_xy(d: &mut String, x: f64, y: f64) {
    push_1dp(d, x);
    d.push(' ');
    push_1dp(d, y);
}

/// Appends `v` with exactly one decimal (halves away from zero, no `-0.0`),
/// via integer tenths: float formatting dominated the cost of a chart.
fn push_1dp(d: &mut String, v: f64) {
    use std::fmt::Write;
    let tenths = (v * 10.0).round();
    if tenths.is_nan() || tenths.abs() >= 1e15 {
        let _ = write!(d, "{v:.1}");
        return;
    }
    let tenths = tenths as i64;
    if tenths < 0 {
        d.push('-');
    }
    let t = tenths.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut whole = t / 10;
    loop {
        i -= 1;
        digits[i] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    d.extend(digits[i..].iter().map(|&c| char::from(c)));
    d.push('.');
    d.push(char::from(b'0' + (t % 10) as u8));
}

/// The line and area paths for runs of `(x, y)` positions.
fn paths(runs: &[Vec<(f64, f64)>], base: f64) -> (String, String) {
    let mut line = String::new();
    let mut area = String::new();
    for run in runs {
        let (Some(&(x0, y0)), Some(&(xn, _))) = (run.first(), run.last()) else {
            continue;
        };
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str("M ");
        push_xy(&mut line, x0, y0);
        if run.len() == 1 {
            // A lone point: a zero-length segment that round caps show as a dot.
            line.push_str(" L ");
            push_xy(&mut line, x0, y0);
            continue;
        }
        for &(x, y) in &run[1..] {
            line.push_str(" L ");
            push_xy(&mut line, x, y);
        }
        if !area.is_empty() {
            area.push(' ');
        }
        area.push_str("M ");
        push_xy(&mut area, x0, base);
        for &(x, y) in run {
            area.push_str(" L ");
            push_xy(&mut area, x, y);
        }
        area.push_str(" L ");
        push_xy(&mut area, xn, base);
        area.push_str(" Z");
    }
    (line, area)
}

/// Lays out one chart.
pub fn build(input: &ChartInput) -> ChartView {
    let (start, end) = (
        input.start_ms.min(input.end_ms),
        input.start_ms.max(input.end_ms),
    );
    let unit = input.unit;
    let (left, right) = (MARGIN_LEFT, WIDTH - MARGIN_RIGHT);
    let (top, bottom) = (MARGIN_TOP, HEIGHT - MARGIN_BOTTOM);
    let (plot_w, plot_h) = (right - left, bottom - top);

    let all = downsample::sorted(input.points);
    let pts = downsample::in_range(&all, start, end);
    let st = stats(pts);
    let threshold = input.threshold.filter(|t| t.is_finite());

    let span = i128::from(end) - i128::from(start);
    let x_of = |ts: i64| {
        let frac = if span > 0 {
            (i128::from(ts) - i128::from(start)) as f64 / span as f64
        } else {
            0.0
        };
        r1(left + frac.clamp(0.0, 1.0) * plot_w)
    };
    let ys: YScale = scale::y_scale(unit, st.as_ref().map(|s| (s.min, s.max)), threshold);
    let y_of = |v: f64| {
        let frac = ys.frac(v);
        let frac = if frac.is_nan() {
            0.0
        } else {
            frac.clamp(0.0, 1.0)
        };
        r1(bottom - frac * plot_h)
    };

    let samples = match &st {
        Some(s) => drawn_samples(pts, s.count, start, end, input.max_points.max(2)),
        None => Vec::new(),
    };
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    for s in &samples {
        let xy = (x_of(s.ts), y_of(s.v));
        match runs.last_mut() {
            Some(run) if !s.brk => run.push(xy),
            _ => runs.push(vec![xy]),
        }
    }
    let (line_path, area_path) = paths(&runs, bottom);

    let y_ticks = ys
        .ticks
        .iter()
        .zip(scale::tick_labels(unit, &ys.ticks, ys.step))
        .map(|(&v, label)| YTick { y: y_of(v), label })
        .collect();

    let (times, step) = scale::time_ticks(start, end);
    let span_ms = end.saturating_sub(start);
    let fmt = scale::time_format(span_ms, step);
    let x_ticks = times
        .into_iter()
        .map(|t| {
            let x = x_of(t);
            let anchor = if x < left + 30.0 {
                "start"
            } else if x > right - 30.0 {
                "end"
            } else {
                "middle"
            };
            XTick {
                x,
                label: format_time(t, fmt),
                anchor,
            }
        })
        .collect();

    let threshold_mark = threshold.map(|t| {
        let y = y_of(t);
        ThresholdMark {
            y,
            label_y: if y - 12.0 < top { y + 11.0 } else { y - 3.0 },
            label: format_value(unit, t),
        }
    });

    let hover_time = |ts: i64| format_time(ts, "%Y-%m-%d %H:%M:%S UTC");
    let n = samples.len();
    let hover = (0..n.min(MAX_HOVER))
        .map(|i| {
            let idx = if n <= MAX_HOVER {
                i
            } else {
                i * (n - 1) / (MAX_HOVER - 1)
            };
            let s = samples[idx];
            HoverTarget {
                x: x_of(s.ts),
                y: y_of(s.v),
                title: format!("{} — {}", hover_time(s.ts), format_value(unit, s.v)),
            }
        })
        .collect();

    let none = "—".to_string();
    let (last, last_label, min_label, avg_label, max_label) = match &st {
        Some(s) => (
            Some(LastMark {
                x: x_of(s.last.0),
                y: y_of(s.last.1),
            }),
            format_value(unit, s.last.1),
            format_value(unit, s.min),
            format_value(unit, s.mean),
            format_value(unit, s.max),
        ),
        None => (None, none.clone(), none.clone(), none.clone(), none),
    };

    let range = format!(
        "{} over the {} ending {}",
        input.title,
        scale::format_duration(span_ms),
        format_time(end, "%Y-%m-%d %H:%M UTC")
    );
    let aria_label = if st.is_some() {
        format!("{range}: last {last_label}, min {min_label}, avg {avg_label}, max {max_label}")
    } else {
        format!("{range}: no data")
    };

    ChartView {
        title: input.title.to_string(),
        aria_label,
        view_box: format!("0 0 {WIDTH} {HEIGHT}"),
        width: WIDTH,
        height: HEIGHT,
        plot_left: left,
        plot_right: right,
        plot_top: top,
        plot_bottom: bottom,
        y_label_x: left - 6.0,
        x_label_y: bottom + 15.0,
        center_x: r1(left + plot_w / 2.0),
        center_y: r1(top + plot_h / 2.0),
        line_path,
        area_path,
        y_ticks,
        x_ticks,
        threshold: threshold_mark,
        last,
        last_label,
        min_label,
        avg_label,
        max_label,
        has_data: st.is_some(),
        hover,
    }
}
