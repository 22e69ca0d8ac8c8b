//! Server-side chart cost: `charts::build` plus template rendering, for a live
//! 15-minute chart and for a 30-day chart at the same 1 Hz resolution.
//!
//! peer: Chart.js client-side rendering in the original service (it shipped
//! every point to the browser). Here the browser gets one SVG fragment of a
//! few kilobytes whatever the range; the 30-day case shows what that costs
//! the server (min-max downsampling 2,592,000 points to 300 first).

use askama::Template;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::Duration;
use watchpost::charts::{build, ChartFragment, ChartInput, Unit};

const T0: i64 = 1_795_773_600_000; // 2026-11-27 10:00:00 UTC

/// One CPU-like sample a second for `secs` seconds.
fn series(secs: i64) -> Vec<(i64, f64)> {
    (0..secs)
        .map(|i| {
            let wave = ((i as f64) / 300.0).sin() * 20.0 + 40.0;
            let spike = if i % 7_919 == 0 { 50.0 } else { 0.0 };
            (T0 + i * 1_000, (wave + (i % 11) as f64 + spike).min(100.0))
        })
        .collect()
}

fn render(points: &[(i64, f64)]) -> String {
    let input = ChartInput {
        title: "CPU",
        unit: Unit::Percent,
        start_ms: T0,
        end_ms: T0 + (points.len() as i64 - 1) * 1_000,
        points,
        threshold: Some(80.0),
        max_points: 300,
    };
    ChartFragment {
        chart: build(&input),
    }
    .render()
    .expect("chart renders")
}

fn charts(c: &mut Criterion) {
    let mut group = c.benchmark_group("chart build+render");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let live = series(15 * 60);
    group.bench_function("15 min, 900 points", |b| {
        b.iter(|| render(black_box(&live)))
    });
    let month = series(30 * 24 * 3_600);
    group.bench_function("30 d, 2592000 points", |b| {
        b.iter(|| render(black_box(&month)))
    });
    group.finish();
}

criterion_group!(benches, charts);
criterion_main!(benches);
