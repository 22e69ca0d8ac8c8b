//! Reducing a time series to what a few hundred pixels can show: min-max
//! buckets (spikes survive) and Largest-Triangle-Three-Buckets (shape survives).

use std::borrow::Cow;

/// One point of the series as drawn: `brk` is true when the line must not be
/// joined to the previous point (missing data in between).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub ts: i64,
    pub v: f64,
    pub brk: bool,
}

/// The points sorted by timestamp, borrowing when they already are.
pub(crate) fn sorted(points: &[(i64, f64)]) -> Cow<'_, [(i64, f64)]> {
    if points.is_sorted_by_key(|p| p.0) {
        Cow::Borrowed(points)
    } else {
        let mut owned = points.to_vec();
        owned.sort_by_key(|p| p.0);
        Cow::Owned(owned)
    }
}

/// The part of sorted `points` with `start <= ts <= end` (needs `start <= end`).
pub(crate) fn in_range(points: &[(i64, f64)], start: i64, end: i64) -> &[(i64, f64)] {
    let lo = points.partition_point(|p| p.0 < start);
    let hi = points.partition_point(|p| p.0 <= end).max(lo);
    &points[lo..hi]
}

/// Which of `buckets` equal slices of `[start, end]` holds a timestamp:
/// `floor((ts - start) * buckets / span)`, clamped. Remembers the current
/// bucket's bounds so ascending input costs two comparisons a point, not a
/// 128-bit division.
struct Bucketer {
    start: i128,
    span: i128,
    buckets: usize,
    /// The current bucket and the timestamps `[lo, hi)` it covers.
    cur: usize,
    lo: i128,
    hi: i128,
}

impl Bucketer {
    fn new(start: i64, end: i64, buckets: usize) -> Self {
        Self {
            start: i128::from(start),
            span: (i128::from(end) - i128::from(start)).max(1),
            buckets: buckets.max(1),
            cur: 0,
            lo: 0,
            hi: 0,
        }
    }

    /// The first timestamp of bucket `k` (`ceil(k * span / buckets)` past start).
    fn bound(&self, k: usize) -> i128 {
        let b = self.buckets as i128;
        self.start + (self.span.saturating_mul(k as i128) + b - 1) / b
    }

    fn index(&mut self, ts: i64) -> usize {
        let t = i128::from(ts);
        if t < self.lo || t >= self.hi {
            let off = (t - self.start).clamp(0, self.span);
            let k = off.saturating_mul(self.buckets as i128) / self.span;
            self.cur = usize::try_from(k)
                .unwrap_or(usize::MAX)
                .min(self.buckets - 1);
            self.lo = if self.cur == 0 {
                i128::MIN
            } else {
                self.bound(self.cur)
            };
            self.hi = if self.cur + 1 == self.buckets {
                i128::MAX
            } else {
                self.bound(self.cur + 1)
            };
        }
        self.cur
    }
}

/// Every finite point, marking a break wherever consecutive timestamps are
/// more than `gap` apart.
pub(crate) fn with_breaks(points: &[(i64, f64)], gap: i64) -> Vec<Sample> {
    let mut out = Vec::with_capacity(points.len());
    let mut prev: Option<i64> = None;
    for &(ts, v) in points {
        if !v.is_finite() {
            continue;
        }
        let brk = prev.is_some_and(|p| ts.saturating_sub(p) > gap);
        prev = Some(ts);
        out.push(Sample { ts, v, brk });
    }
    out
}

/// A run of points in one bucket with no gap inside: indices of its min and max.
struct Group {
    bucket: usize,
    min: usize,
    max: usize,
    brk: bool,
}

fn flush(out: &mut Vec<Sample>, points: &[(i64, f64)], g: &Group) {
    let (a, b) = if g.min <= g.max {
        (g.min, g.max)
    } else {
        (g.max, g.min)
    };
    out.push(Sample {
        ts: points[a].0,
        v: points[a].1,
        brk: g.brk,
    });
    if b != a {
        out.push(Sample {
            ts: points[b].0,
            v: points[b].1,
            brk: false,
        });
    }
}

/// Min-max bucketing of sorted, in-range `points` (non-finite values skipped).
/// A gap longer than `gap` ms closes the current group and marks a break, so
/// each bucket yields two points per gap-free run (two in total when `gap` is
/// `i64::MAX`).
pub(crate) fn minmax_core(
    points: &[(i64, f64)],
    start: i64,
    end: i64,
    buckets: usize,
    gap: i64,
) -> Vec<Sample> {
    if buckets == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(buckets.saturating_mul(2).min(points.len()));
    let mut bucketer = Bucketer::new(start, end, buckets);
    let mut cur: Option<Group> = None;
    let mut prev: Option<i64> = None;
    for (i, &(ts, v)) in points.iter().enumerate() {
        if !v.is_finite() {
            continue;
        }
        let bucket = bucketer.index(ts);
        let brk = prev.is_some_and(|p| ts.saturating_sub(p) > gap);
        prev = Some(ts);
        match cur.as_mut() {
            Some(g) if g.bucket == bucket && !brk => {
                if v < points[g.min].1 {
                    g.min = i;
                }
                if v > points[g.max].1 {
                    g.max = i;
                }
            }
            _ => {
                if let Some(g) = cur.take() {
                    flush(&mut out, points, &g);
                }
                cur = Some(Group {
                    bucket,
                    min: i,
                    max: i,
                    brk,
                });
            }
        }
    }
    if let Some(g) = cur {
        flush(&mut out, points, &g);
    }
    out
}

/// Min-max downsampling: `[start_ms, end_ms]` is cut into `buckets` equal time
/// slices and each slice keeps its minimum and maximum point, in time order,
/// so short spikes survive. Points outside the range and non-finite values are
/// dropped; the result is ascending by timestamp (unsorted input is sorted
/// first) and never longer than `2 * buckets`. When the remaining points
/// already fit, they are returned as they are.
pub fn downsample_minmax(
    points: &[(i64, f64)],
    start_ms: i64,
    end_ms: i64,
    buckets: usize,
) -> Vec<(i64, f64)> {
    let (start, end) = (start_ms.min(end_ms), start_ms.max(end_ms));
    let all = sorted(points);
    let pts = in_range(&all, start, end);
    let finite = pts.iter().filter(|p| p.1.is_finite()).count();
    if finite <= buckets.saturating_mul(2) {
        return pts.iter().filter(|p| p.1.is_finite()).copied().collect();
    }
    minmax_core(pts, start, end, buckets, i64::MAX)
        .into_iter()
        .map(|s| (s.ts, s.v))
        .collect()
}

/// Largest-Triangle-Three-Buckets (Steinarsson 2013): keeps the first and last
/// point and, from each of `threshold - 2` buckets in between, the point that
/// spans the largest triangle with the previously kept point and the next
/// bucket's average. Returns the input unchanged when it has at most
/// `threshold` points, else exactly `threshold` points. Expects ascending
/// timestamps and finite values; other input is never a panic, only a worse pick.
pub fn lttb(points: &[(i64, f64)], threshold: usize) -> Vec<(i64, f64)> {
    let n = points.len();
    if threshold >= n {
        return points.to_vec();
    }
    match threshold {
        0 => return Vec::new(),
        1 => return vec![points[0]],
        2 => return vec![points[0], points[n - 1]],
        _ => {}
    }
    let t0 = i128::from(points[0].0);
    let x = |p: &(i64, f64)| (i128::from(p.0) - t0) as f64;
    let every = (n - 2) as f64 / (threshold - 2) as f64;
    let edge = |k: usize| ((k as f64 * every) as usize + 1).min(n - 1);

    let mut out = Vec::with_capacity(threshold);
    out.push(points[0]);
    let mut a = 0usize;
    for i in 0..threshold - 2 {
        // Average of the next bucket (the last point when this is the last bucket).
        let next_start = edge(i + 1);
        let next_end = if i + 3 == threshold {
            n
        } else {
            edge(i + 2).max(next_start + 1)
        };
        let len = (next_end - next_start) as f64;
        let (mut avg_x, mut avg_y) = (0.0, 0.0);
        for p in &points[next_start..next_end] {
            avg_x += x(p) / len;
            avg_y += p.1 / len;
        }

        let from = edge(i);
        let to = edge(i + 1).max(from + 1).min(n - 1);
        let (ax, ay) = (x(&points[a]), points[a].1);
        let mut best = from;
        let mut best_area = -1.0;
        for (j, p) in points.iter().enumerate().take(to).skip(from) {
            let area = ((ax - avg_x) * (p.1 - ay) - (ax - x(p)) * (avg_y - ay)).abs();
            if area > best_area {
                best_area = area;
                best = j;
            }
        }
        out.push(points[best]);
        a = best;
    }
    out.push(points[n - 1]);
    out
}

#[cfg(test)]
mod tests {
    use super::Bucketer;

    fn direct(ts: i64, start: i64, end: i64, buckets: usize) -> usize {
        let span = (i128::from(end) - i128::from(start)).max(1);
        let off = (i128::from(ts) - i128::from(start)).clamp(0, span);
        usize::try_from(off * buckets as i128 / span)
            .unwrap_or(usize::MAX)
            .min(buckets - 1)
    }

    #[test]
    fn bucketer_matches_the_formula_in_any_order() {
        for (start, end, buckets) in [(0, 999, 7), (-50, 50, 3), (10, 10, 4), (0, 1_000_000, 150)] {
            let mut b = Bucketer::new(start, end, buckets);
            let mut ts: Vec<i64> = (start - 20..=end + 20)
                .step_by(((end - start) / 500).max(1) as usize)
                .collect();
            ts.extend([i64::MIN, i64::MAX, start, end, 3, 2, 1]);
            for t in ts {
                assert_eq!(
                    b.index(t),
                    direct(t, start, end, buckets),
                    "{t} in {start}..{end}/{buckets}"
                );
            }
        }
    }
}
