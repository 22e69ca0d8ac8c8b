//! Rollup tiers: kept in step with raw samples on insert, and charts read the coarsest
//! tier that fits the requested resolution.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_track_raw_samples_and_ignore_duplicates() {
    let app = spawn_app().await;
    let host = app.local_host_id;
    // Three whole minutes, one sample every 5 s; cpu climbs 0..35, memory spikes once.
    let t0 = (now_ms() / 3_600_000 - 2) * 3_600_000 + 60_000;
    let mut samples = Vec::new();
    for i in 0..36 {
        let mut s = sample(host, t0 + i * 5_000, i as f64, 40.0);
        if i == 20 {
            s.memory = 99.5;
        }
        samples.push(s);
    }
    app.insert_samples(&samples).await;
    // A retried batch must not change anything.
    app.insert_samples(&samples).await;

    let end = t0 + 180_000 - 1;
    let per_minute = app
        .store
        .chart_buckets(host, t0, end, 60_000)
        .await
        .unwrap();
    assert_eq!(per_minute.len(), 3, "{per_minute:?}");
    assert_eq!(
        per_minute
            .iter()
            .map(|b| (b.ts, b.cpu_min, b.cpu_max))
            .collect::<Vec<_>>(),
        vec![
            (t0, 0.0, 11.0),
            (t0 + 60_000, 12.0, 23.0),
            (t0 + 120_000, 24.0, 35.0)
        ]
    );
    assert_eq!(per_minute[1].memory_max, 99.5);
    assert_eq!(per_minute[0].memory_max, 40.0);

    // The raw path (sub-minute buckets) agrees with the minute tier at minute width.
    let raw = app
        .store
        .chart_buckets(host, t0, end, 30_000)
        .await
        .unwrap();
    assert_eq!(raw.len(), 6);
    assert_eq!(raw[2].cpu_min, 12.0);
    assert_eq!(raw[3].memory_max, 99.5);

    let hourly = app
        .store
        .chart_buckets(host, t0, end, 3_600_000)
        .await
        .unwrap();
    assert_eq!(hourly.len(), 1);
    assert_eq!(
        (hourly[0].cpu_min, hourly[0].cpu_max, hourly[0].memory_max),
        (0.0, 35.0, 99.5)
    );
}
