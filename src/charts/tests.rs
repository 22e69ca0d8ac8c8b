use super::*;
use askama::Template;
use proptest::prelude::*;

const T0: i64 = 1_795_773_600_000; // 2026-11-27 10:00:00 UTC
const HOUR: i64 = 3_600_000;

fn input<'a>(title: &'a str, unit: Unit, points: &'a [(i64, f64)]) -> ChartInput<'a> {
    ChartInput {
        title,
        unit,
        start_ms: T0,
        end_ms: T0 + HOUR,
        points,
        threshold: None,
        max_points: 300,
    }
}

/// One point a second over `secs` seconds from T0.
fn series(secs: i64, f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (0..secs).map(|i| (T0 + i * 1000, f(i))).collect()
}

fn render(view: ChartView) -> String {
    ChartFragment { chart: view }
        .render()
        .expect("template renders")
}

fn count_moves(path: &str) -> usize {
    path.matches('M').count()
}

#[test]
fn minmax_keeps_spike_within_bound_and_order() {
    let n = 1_000_000i64;
    let mut pts: Vec<(i64, f64)> = (0..n)
        .map(|i| (i * 10, 50.0 + (i % 97) as f64 / 10.0))
        .collect();
    pts[654_321].1 = 9_999.0;
    pts[123_457].1 = -42.0;
    let out = downsample_minmax(&pts, 0, (n - 1) * 10, 300);
    assert!(out.len() <= 600, "{} points", out.len());
    assert!(out.len() >= 300);
    assert!(out.iter().any(|p| p == &(6_543_210, 9_999.0)), "spike lost");
    assert!(out.iter().any(|p| p.1 == -42.0), "dip lost");
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "not ascending");
}

#[test]
fn minmax_drops_out_of_range_and_non_finite_and_passes_small_input() {
    let pts = [
        (-5, 1.0),
        (0, 2.0),
        (1, f64::NAN),
        (2, f64::INFINITY),
        (3, 3.0),
        (11, 4.0),
    ];
    assert_eq!(
        downsample_minmax(&pts, 0, 10, 100),
        vec![(0, 2.0), (3, 3.0)]
    );
    assert!(downsample_minmax(&pts, 0, 10, 0).is_empty());
    // Unsorted input comes back ascending.
    let unsorted = [(5, 1.0), (1, 2.0), (3, 3.0), (2, 0.0), (4, 9.0)];
    let out = downsample_minmax(&unsorted, 0, 10, 1);
    assert_eq!(out, vec![(2, 0.0), (4, 9.0)]);
}

#[test]
fn lttb_keeps_ends_and_exact_count() {
    let pts = series(10_000, |i| {
        ((i as f64) / 50.0).sin() * 10.0 + (i % 7) as f64
    });
    for threshold in [3, 10, 100, 300, 9_999] {
        let out = lttb(&pts, threshold);
        assert_eq!(out.len(), threshold);
        assert_eq!(out.first(), pts.first());
        assert_eq!(out.last(), pts.last());
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    }
    assert_eq!(lttb(&pts, 2), vec![pts[0], pts[9_999]]);
    assert_eq!(lttb(&pts, 1), vec![pts[0]]);
    assert!(lttb(&pts, 0).is_empty());
}

#[test]
fn lttb_is_identity_when_small_and_keeps_a_spike() {
    let pts = series(50, |i| i as f64);
    assert_eq!(lttb(&pts, 50), pts);
    assert_eq!(lttb(&pts, 500), pts);
    assert!(lttb(&[], 10).is_empty());

    let mut flat = series(1_000, |_| 1.0);
    flat[500].1 = 100.0;
    assert!(lttb(&flat, 20).iter().any(|p| p.1 == 100.0));
}

#[test]
fn empty_input_has_no_data_and_renders_note() {
    let view = build(&input("CPU", Unit::Percent, &[]));
    assert!(!view.has_data);
    assert!(view.line_path.is_empty());
    assert!(view.hover.is_empty());
    assert!(view.last.is_none());
    assert_eq!(view.last_label, "—");
    assert_eq!(view.y_ticks.len(), 5);
    assert!(!view.x_ticks.is_empty());
    assert!(view.aria_label.ends_with("no data"), "{}", view.aria_label);
    let html = render(view);
    assert!(html.contains("No data in this range"));
    assert!(!html.contains("chart-line"));
}

#[test]
fn threshold_maps_to_twenty_percent_below_top() {
    let pts = series(600, |i| (i % 100) as f64);
    let view = build(&ChartInput {
        threshold: Some(80.0),
        ..input("CPU", Unit::Percent, &pts)
    });
    let th = view.threshold.clone().expect("threshold");
    let expected = view.plot_top + 0.2 * (view.plot_bottom - view.plot_top);
    assert!((th.y - expected).abs() < 0.051, "{} vs {expected}", th.y);
    assert_eq!(th.label, "80.0 %");
    let ticks: Vec<&str> = view.y_ticks.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(ticks, ["0 %", "25 %", "50 %", "75 %", "100 %"]);
    assert!(render(view).contains("chart-threshold"));
}

#[test]
fn last_value_label_and_marker() {
    let pts = [(T0 + 30 * 60_000, 43.21)];
    let view = build(&input("CPU", Unit::Percent, &pts));
    assert!(view.has_data);
    assert_eq!(view.last_label, "43.2 %");
    assert_eq!(view.min_label, "43.2 %");
    let last = view.last.expect("marker");
    let mid = view.plot_left + (view.plot_right - view.plot_left) / 2.0;
    assert!((last.x - mid).abs() < 0.051);
    // A lone point still draws (a round-capped zero-length segment).
    assert_eq!(count_moves(&view.line_path), 1);
    assert!(view.line_path.contains(" L "));
    assert_eq!(view.hover.len(), 1);
    assert!(
        view.hover[0].title == "2026-11-27 10:30:00 UTC — 43.2 %",
        "{}",
        view.hover[0].title
    );
    assert!(
        view.aria_label
            .starts_with("CPU over the 1 h ending 2026-11-27 11:00 UTC: last 43.2 %"),
        "{}",
        view.aria_label
    );
}

#[test]
fn path_numbers_have_one_decimal() {
    let pts = series(100, |i| i as f64 / 3.0);
    let view = build(&input("CPU", Unit::Percent, &pts));
    assert!(view.line_path.starts_with("M "));
    for tok in view.line_path.split(' ').filter(|t| *t != "M" && *t != "L") {
        let (_, frac) = tok.split_once('.').unwrap_or_else(|| panic!("{tok}"));
        assert_eq!(frac.len(), 1, "{tok}");
    }
    assert!(view.area_path.ends_with('Z'));
}

#[test]
fn one_decimal_writer() {
    let mut s = String::new();
    for v in [0.0, 12.34, 99.96, -3.21, -0.04, 587.95, 1e20] {
        super::push_1dp(&mut s, v);
        s.push('|');
    }
    assert_eq!(s, "0.0|12.3|100.0|-3.2|0.0|588.0|100000000000000000000.0|");
}

#[test]
fn gaps_break_the_line() {
    // 10 minutes at 1 Hz, 20 minutes missing, 10 more minutes.
    let mut pts = series(600, |i| (i % 30) as f64);
    pts.extend((1_800..2_400).map(|i| (T0 + i * 1000, 5.0)));
    let small = build(&ChartInput {
        max_points: 5_000,
        ..input("CPU", Unit::Percent, &pts)
    });
    assert_eq!(
        count_moves(&small.line_path),
        2,
        "{}",
        &small.line_path[..80]
    );
    assert_eq!(small.area_path.matches('Z').count(), 2);
    // Also after downsampling.
    let down = build(&input("CPU", Unit::Percent, &pts));
    assert_eq!(count_moves(&down.line_path), 2);
    // Regular data draws one run, even downsampled.
    let regular = series(3_600, |i| (i % 13) as f64);
    assert_eq!(
        count_moves(&build(&input("CPU", Unit::Percent, &regular)).line_path),
        1
    );
}

#[test]
fn downsampled_line_is_bounded_keeps_spike_and_ends_on_last() {
    let mut pts = series(3_600, |i| 10.0 + (i % 5) as f64);
    pts[1_234].1 = 97.0;
    let view = build(&input("CPU", Unit::Percent, &pts));
    assert!(count_moves(&view.line_path) == 1);
    let drawn = view.line_path.matches(" L ").count() + 1;
    assert!(drawn <= 302, "{drawn}");
    assert_eq!(view.max_label, "97.0 %");
    // The spike's y (97 % → near the top) is on the line.
    let spike_y = format!(
        "{:.1}",
        view.plot_bottom - 0.97 * (view.plot_bottom - view.plot_top)
    );
    assert!(view.line_path.contains(&spike_y), "{spike_y}");
    let last = view.last.expect("marker");
    assert!(view
        .line_path
        .ends_with(&format!("{:.1} {:.1}", last.x, last.y)));
    assert!(view.hover.len() <= MAX_HOVER && view.hover.len() >= MAX_HOVER - 5);
}

#[test]
fn non_finite_points_are_skipped() {
    let pts = [
        (T0, 10.0),
        (T0 + 1_000, f64::NAN),
        (T0 + 2_000, 30.0),
        (T0 + 3_000, f64::INFINITY),
        (T0 + 4_000, f64::NEG_INFINITY),
        (T0 + 5_000, 20.0),
    ];
    let view = build(&input("CPU", Unit::Percent, &pts));
    assert!(view.has_data);
    assert_eq!(view.min_label, "10.0 %");
    assert_eq!(view.avg_label, "20.0 %");
    assert_eq!(view.max_label, "30.0 %");
    assert_eq!(view.last_label, "20.0 %");
    assert_eq!(view.hover.len(), 3);
    let html = render(view);
    assert!(!html.contains("NaN") && !html.contains("inf"));

    let only_nan = [(T0, f64::NAN)];
    assert!(!build(&input("CPU", Unit::Percent, &only_nan)).has_data);
}

#[test]
fn byte_rates_get_human_labels() {
    let pts = series(60, |i| 1_000_000.0 + i as f64 * 40_000.0);
    let view = build(&input("Net in", Unit::BytesPerSec, &pts));
    assert_eq!(view.last_label, "3.4 MB/s");
    assert_eq!(view.min_label, "1.0 MB/s");
    let labels: Vec<&str> = view.y_ticks.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["0 MB/s", "1 MB/s", "2 MB/s", "3 MB/s", "4 MB/s"]);
    assert!(view.y_ticks.windows(2).all(|w| w[0].y > w[1].y));
    let small = [(T0, 512.0)];
    assert_eq!(
        build(&input("Disk", Unit::Bytes, &small)).last_label,
        "512 B"
    );
}

#[test]
fn all_equal_and_plain_values_scale() {
    let pts = series(100, |_| 0.75);
    let view = build(&input("Load", Unit::Plain, &pts));
    assert_eq!(view.last_label, "0.75");
    let first = view.y_ticks.first().expect("ticks");
    let last = view.y_ticks.last().expect("ticks");
    assert_eq!(first.label, "0");
    assert!(last.label.parse::<f64>().expect("number") >= 0.75);
    assert!(view.y_ticks.len() >= 4 && view.y_ticks.len() <= 6);

    let zeros = series(10, |_| 0.0);
    let view = build(&input("Load", Unit::Plain, &zeros));
    assert!(view.line_path.contains(&format!("{:.1}", view.plot_bottom)));
}

#[test]
fn time_labels_follow_the_span() {
    let hour = build(&input("CPU", Unit::Percent, &[]));
    assert!(hour.x_ticks.iter().any(|t| t.label == "10:15"), "{hour:?}");
    let month = build(&ChartInput {
        start_ms: T0 - 30 * 24 * HOUR,
        ..input("CPU", Unit::Percent, &[])
    });
    assert!(
        month
            .x_ticks
            .iter()
            .all(|t| t.label.len() <= 6 && t.label.contains(' ')),
        "{:?}",
        month.x_ticks
    );
    let days = build(&ChartInput {
        start_ms: T0 - 2 * 24 * HOUR,
        ..input("CPU", Unit::Percent, &[])
    });
    assert!(
        days.x_ticks.iter().any(|t| t.label == "Nov 26 12:00"),
        "{:?}",
        days.x_ticks
    );
    assert!(hour.x_ticks.len() >= 3 && month.x_ticks.len() <= 7);
}

#[test]
fn degenerate_ranges_and_huge_values_do_not_break() {
    let pts = [(T0, f64::MAX), (T0, -f64::MAX), (T0, 1e300)];
    for unit in [Unit::Percent, Unit::Bytes, Unit::BytesPerSec, Unit::Plain] {
        let view = build(&ChartInput {
            end_ms: T0,
            threshold: Some(f64::MAX),
            ..input("X", unit, &pts)
        });
        assert!(view.has_data);
        let html = render(view);
        assert!(!html.contains("NaN") && !html.contains("inf"), "{html}");
    }
    // Reversed range is taken as the same range.
    let a = build(&input("CPU", Unit::Percent, &[(T0 + 5, 1.0)]));
    let b = build(&ChartInput {
        start_ms: T0 + HOUR,
        end_ms: T0,
        ..input("CPU", Unit::Percent, &[(T0 + 5, 1.0)])
    });
    assert_eq!(a, b);
}

#[test]
fn rendered_fragment_escapes_title() {
    let pts = series(10, |i| i as f64);
    let html = render(build(&input(
        "<script>alert(1)</script>",
        Unit::Percent,
        &pts,
    )));
    assert!(html.contains("<svg"));
    assert!(html.contains("role=\"img\""));
    assert!(html.contains("&#60;script") || html.contains("&lt;script"));
    assert!(!html.contains("<script>"));
    assert!(!html.contains("style="));
    for class in [
        "chart-grid",
        "chart-axis",
        "chart-line",
        "chart-area",
        "chart-last",
        "chart-hover",
    ] {
        assert!(html.contains(class), "{class}");
    }
    assert!(html.contains("<title>2026-11-27 10:00:09 UTC — 9.0 %</title>"));
}

fn unit_strategy() -> impl Strategy<Value = Unit> {
    prop_oneof![
        Just(Unit::Percent),
        Just(Unit::Bytes),
        Just(Unit::BytesPerSec),
        Just(Unit::Plain),
    ]
}

const LIM: i64 = 10_000_000_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn build_never_panics(
        points in prop::collection::vec(
            (prop_oneof![-LIM..=LIM, T0..T0 + HOUR], proptest::num::f64::ANY),
            0..400,
        ),
        start in prop_oneof![-LIM..=LIM, Just(T0)],
        end in prop_oneof![-LIM..=LIM, Just(T0 + HOUR), Just(T0)],
        threshold in proptest::option::of(proptest::num::f64::ANY),
        unit in unit_strategy(),
        max_points in 0usize..500,
    ) {
        let view = build(&ChartInput {
            title: "t",
            unit,
            start_ms: start,
            end_ms: end,
            points: &points,
            threshold,
            max_points,
        });
        prop_assert!(view.hover.len() <= MAX_HOVER);
        for p in [&view.line_path, &view.area_path] {
            prop_assert!(!p.contains("NaN") && !p.contains("inf"));
        }
        let html = render(view);
        prop_assert!(html.contains("<svg"));
    }

    #[test]
    fn downsamplers_never_panic(
        points in prop::collection::vec((any::<i64>(), proptest::num::f64::ANY), 0..300),
        start in any::<i64>(),
        end in any::<i64>(),
        buckets in 0usize..200,
    ) {
        let out = downsample_minmax(&points, start, end, buckets);
        prop_assert!(out.len() <= 2 * buckets);
        prop_assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        let out = lttb(&points, buckets);
        prop_assert_eq!(out.len(), buckets.min(points.len()));
    }
}

#[test]
fn idle_byte_rates_get_whole_byte_ticks() {
    let pts: Vec<(i64, f64)> = (0..60).map(|i| (T0 + i * 1000, 0.0)).collect();
    let view = build(&input("Network in", Unit::BytesPerSec, &pts));
    let labels: Vec<&str> = view.y_ticks.iter().map(|t| t.label.as_str()).collect();
    assert!(!labels.is_empty());
    assert!(
        labels.iter().all(|l| !l.contains('.')),
        "fractional byte ticks: {labels:?}"
    );
}
