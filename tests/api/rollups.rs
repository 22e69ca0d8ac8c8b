//! Rollup tiers: kept in step with raw samples on insert, and charts read the coarsest
//! tier that fits the requested resolution.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use watchpost::http::api::metrics::SampleOut;
use watchpost::store::{Sample, Tier};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

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
        .chart_buckets(host, Tier::Minute, t0, end, 60_000)
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
        .chart_buckets(host, Tier::Raw, t0, end, 30_000)
        .await
        .unwrap();
    assert_eq!(raw.len(), 6);
    assert_eq!(raw[2].cpu_min, 12.0);
    assert_eq!(raw[3].memory_max, 99.5);

    let hourly = app
        .store
        .chart_buckets(host, Tier::Hour, t0, end, 3_600_000)
        .await
        .unwrap();
    assert_eq!(hourly.len(), 1);
    assert_eq!(
        (hourly[0].cpu_min, hourly[0].cpu_max, hourly[0].memory_max),
        (0.0, 35.0, 99.5)
    );
}

/// A sample in which every metric moves, differently: averages, maxima and rounding all
/// show if a rollup column is missing or mixed up.
fn rich(host_id: i64, ts: i64, i: i64) -> Sample {
    let f = i as f64;
    Sample {
        host_id,
        ts,
        cpu: (f * 7.3) % 100.0,
        memory: 20.0 + (f * 3.1) % 70.0,
        memory_used: 4_000_000_000 + (i * 7919 % 1000) * 1_000_003,
        // Changes now and then, so an average and a maximum differ.
        memory_total: 16_000_000_000 + (i / 7 % 3) * 1_000_000_000,
        swap: (f * 0.37) % 10.0,
        load1: (f * 0.13) % 4.0,
        load5: (f * 0.11) % 3.0,
        load15: (f * 0.07) % 2.0,
        disk: 60.0 + (f * 0.01) % 5.0,
        disk_read_bps: (f * 1013.0) % 50_000.0,
        disk_write_bps: (f * 2027.0) % 70_000.0,
        net_rx_bps: (f * 4099.0) % 900_000.0,
        net_tx_bps: (f * 8191.0) % 300_000.0,
        processes: 150 + (i * 37 % 60),
        uptime: 1_000_000 + ts / 1000,
    }
}

type Metric = fn(&Sample) -> f64;

/// Asserts that one history item summarises `raw` (the samples of its buckets): averages,
/// rounded averages for byte counts, maxima for processes and uptime, stamped `ts`.
fn assert_summarises(item: &Value, ts: i64, raw: &[&Sample]) {
    assert!(!raw.is_empty(), "no raw samples for {item}");
    assert_eq!(parse_z(item["ts"].as_str().unwrap()), ts, "{item}");
    let n = raw.len() as f64;
    let avg = |f: fn(&Sample) -> f64| raw.iter().map(|s| f(s)).sum::<f64>() / n;
    let gauges: [(&str, Metric); 11] = [
        ("cpu", |s| s.cpu),
        ("memory", |s| s.memory),
        ("swap", |s| s.swap),
        ("load1", |s| s.load1),
        ("load5", |s| s.load5),
        ("load15", |s| s.load15),
        ("disk", |s| s.disk),
        ("disk_read_bps", |s| s.disk_read_bps),
        ("disk_write_bps", |s| s.disk_write_bps),
        ("net_rx_bps", |s| s.net_rx_bps),
        ("net_tx_bps", |s| s.net_tx_bps),
    ];
    for (field, f) in gauges {
        let (got, want) = (item[field].as_f64().unwrap(), avg(f));
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{field}: {got} vs raw average {want} at {ts}"
        );
    }
    for (field, f) in [
        ("memory_used_bytes", (|s| s.memory_used as f64) as Metric),
        ("memory_total_bytes", |s| s.memory_total as f64),
    ] {
        let (got, want) = (item[field].as_i64().unwrap(), avg(f));
        // Rounding halves differs between engines (and float sums by order).
        assert!(
            (got as f64 - want).abs() <= 1.0,
            "{field}: {got} vs raw average {want} at {ts}"
        );
    }
    let max = |f: fn(&Sample) -> i64| raw.iter().map(|s| f(s)).max().unwrap();
    assert_eq!(item["processes"].as_i64().unwrap(), max(|s| s.processes));
    assert_eq!(item["uptime_secs"].as_i64().unwrap(), max(|s| s.uptime));
}

async fn history_at(app: &TestApp, token: &str, start: i64, end: i64) -> (Option<i64>, Value) {
    let resp = app
        .client
        .get(app.url("/metrics/history"))
        .header("token", token)
        .query(&[
            ("start", watchpost::domain::format_rfc3339(start)),
            ("end", watchpost::domain::format_rfc3339(end)),
        ])
        .send()
        .await
        .unwrap();
    let bucket = resp
        .headers()
        .get("x-watchpost-bucket-ms")
        .map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
    (bucket, json_with_status(resp, StatusCode::OK).await)
}

/// Asserts a rollup answer: one item per `width`-wide group from `origin` that holds
/// samples, each summarising exactly the samples of its group.
fn assert_groups(body: &Value, samples: &[Sample], origin: i64, end: i64, width: i64) {
    let items = body.as_array().unwrap();
    let mut expected = Vec::new();
    let mut from = origin;
    while from <= end {
        let raw: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.ts >= from && s.ts < from + width)
            .collect();
        if !raw.is_empty() {
            expected.push((from, raw));
        }
        from += width;
    }
    assert_eq!(items.len(), expected.len(), "{body}");
    for (item, (ts, raw)) in items.iter().zip(&expected) {
        assert_summarises(item, *ts, raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_tiers_equal_aggregates_of_the_raw_rows() {
    let app = spawn_app_with(|s| s.history_max_points = 100).await;
    let token = app.register_and_login().await;
    let host = app.local_host_id;
    // Six hours, one sample every 20 s, ten hours ago.
    let base = (now_ms() / HOUR - 10) * HOUR;
    let samples: Vec<Sample> = (0..6 * 180)
        .map(|i| rich(host, base + i * 20_000, i))
        .collect();
    app.insert_samples(&samples).await;
    assert_rollup_columns_match_raw(&app).await;

    // 90 samples, within max_points: the raw rows, unchanged.
    let (start, end) = (base + 10 * MINUTE, base + 40 * MINUTE - 1);
    let (bucket, body) = history_at(&app, &token, start, end).await;
    assert_eq!(bucket, None);
    let want: Vec<Value> = samples
        .iter()
        .filter(|s| s.ts >= start && s.ts <= end)
        .map(|s| serde_json::to_value(SampleOut::new(s, &app.local_host)).unwrap())
        .collect();
    assert_eq!(body, Value::Array(want));

    // 79 minutes starting inside the range (it starts 30 s into a minute), 237 samples:
    // the 1-minute tier; the partial first minute is left out.
    let (start, end) = (base + 30_000, base + 80 * MINUTE - 1);
    let (bucket, body) = history_at(&app, &token, start, end).await;
    assert_eq!(bucket, Some(MINUTE));
    assert_eq!(body.as_array().unwrap().len(), 79);
    assert_groups(&body, &samples, base + MINUTE, end, MINUTE);

    // Six hours = 360 minutes, more than 100 points: the hour tier.
    let end = base + 6 * HOUR - 1;
    let (bucket, body) = history_at(&app, &token, base, end).await;
    assert_eq!(bucket, Some(HOUR));
    assert_eq!(body.as_array().unwrap().len(), 6);
    assert_groups(&body, &samples, base, end, HOUR);

    // 240 hours are still too many: three hours per point, from the range's first hour.
    let start = base - 234 * HOUR;
    let (bucket, body) = history_at(&app, &token, start, end).await;
    assert_eq!(bucket, Some(3 * HOUR));
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_groups(&body, &samples, start, end, 3 * HOUR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_days_are_read_from_the_hour_tier() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let host = app.local_host_id;
    // 30 days, one sample every 10 minutes, up to a minute ago.
    let now = now_ms();
    let last = (now - MINUTE) / (10 * MINUTE) * (10 * MINUTE);
    let samples: Vec<Sample> = (0..30 * 144)
        .rev()
        .map(|k| rich(host, last - k * 10 * MINUTE, k))
        .collect();
    app.insert_samples(&samples).await;

    let start = now - 30 * 24 * HOUR;
    let (bucket, body) = history_at(&app, &token, start, now).await;
    assert_eq!(bucket, Some(HOUR));
    let items = body.as_array().unwrap();
    assert!((719..=721).contains(&items.len()), "{} points", items.len());
    let origin = (start + HOUR - 1) / HOUR * HOUR;
    assert_groups(&body, &samples, origin, now, HOUR);

    // The last 15 minutes are still raw samples.
    let (bucket, body) = history_at(&app, &token, now - 15 * MINUTE, now).await;
    assert_eq!(bucket, None);
    let raw: Vec<i64> = samples
        .iter()
        .filter(|s| s.ts >= now - 15 * MINUTE)
        .map(|s| s.ts)
        .collect();
    assert!(!raw.is_empty());
    assert_eq!(
        body.as_array()
            .unwrap()
            .iter()
            .map(|i| parse_z(i["ts"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        raw
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reads_the_next_tier_where_retention_deleted_rows() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let host = app.local_host_id;
    // Two hours, one sample every 20 s, three days ago.
    let base = (now_ms() / HOUR - 72) * HOUR;
    let samples: Vec<Sample> = (0..360).map(|i| rich(host, base + i * 20_000, i)).collect();
    app.insert_samples(&samples).await;
    let half = 30 * MINUTE - 1;

    // Raw rows of the first hour gone: that half hour comes from the minute tier...
    let gone = app
        .store
        .delete_samples_before(Tier::Raw, base + HOUR, 1_000_000)
        .await
        .unwrap();
    assert_eq!(gone, 180);
    let (bucket, body) = history_at(&app, &token, base, base + half).await;
    assert_eq!(bucket, Some(MINUTE));
    assert_groups(&body, &samples, base, base + half, MINUTE);
    // ...a range the raw rows still cover does not.
    let (bucket, body) = history_at(&app, &token, base + HOUR, base + HOUR + half).await;
    assert_eq!(bucket, None);
    assert_eq!(body.as_array().unwrap().len(), 90);
    // Charts pick their tier the same way: 30 s points would read raw rows, which are
    // gone, so they come from the minute tier, one point per minute.
    let store = app.store.as_ref();
    let chart_tier =
        |start| watchpost::store::covering_tier(store, host, Tier::fitting(30_000), start);
    assert_eq!(chart_tier(base).await.unwrap(), Tier::Minute);
    assert_eq!(chart_tier(base + HOUR).await.unwrap(), Tier::Raw);
    let chart = store
        .chart_buckets(host, Tier::Minute, base, base + half, 30_000)
        .await
        .unwrap();
    assert_eq!(chart.len(), 30);
    let first_minute: Vec<&Sample> = samples.iter().filter(|s| s.ts < base + MINUTE).collect();
    assert_eq!(
        (chart[0].ts, chart[0].cpu_min, chart[0].cpu_max),
        (
            base,
            first_minute.iter().map(|s| s.cpu).fold(f64::MAX, f64::min),
            first_minute.iter().map(|s| s.cpu).fold(f64::MIN, f64::max)
        )
    );

    // Minute buckets gone too: the hour tier.
    app.store
        .delete_samples_before(Tier::Minute, base + HOUR, 1_000_000)
        .await
        .unwrap();
    let (bucket, body) = history_at(&app, &token, base, base + half).await;
    assert_eq!(bucket, Some(HOUR));
    assert_groups(&body, &samples, base, base + half, HOUR);
    let tier =
        watchpost::store::covering_tier(app.store.as_ref(), host, Tier::fitting(30_000), base)
            .await
            .unwrap();
    assert_eq!(tier, Tier::Hour);
    let chart = app
        .store
        .chart_buckets(host, tier, base, base + half, 30_000)
        .await
        .unwrap();
    assert_eq!(chart.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_can_be_rebuilt_from_raw_rows() {
    let app = spawn_app().await;
    let host = app.local_host_id;
    let base = (now_ms() / HOUR - 3) * HOUR;
    let samples: Vec<Sample> = (0..500).map(|i| rich(host, base + i * 7_000, i)).collect();
    app.insert_samples(&samples).await;
    // Raw rows written behind the store's back leave the rollups short...
    let more: Vec<Sample> = (500..600)
        .map(|i| rich(host, base + i * 7_000, i))
        .collect();
    let db = RawDb::connect(&app.database_url).await;
    for s in &more {
        db.exec(&raw_insert(&s.host_id.to_string(), s)).await;
    }
    db.close().await;
    // ...until they are rebuilt.
    let rows = app.store.rebuild_rollups().await.unwrap();
    assert_eq!(rows, 70 + 2);
    assert_rollup_columns_match_raw(&app).await;
}

/// Every rollup column, as (column, aggregate of the raw samples it must equal).
const ROLLUP_COLUMNS: &[(&str, &str)] = &[
    ("n", "COUNT(*)"),
    ("cpu_min", "MIN(cpu)"),
    ("cpu_max", "MAX(cpu)"),
    ("cpu_sum", "SUM(cpu)"),
    ("memory_min", "MIN(memory)"),
    ("memory_max", "MAX(memory)"),
    ("memory_sum", "SUM(memory)"),
    ("swap_min", "MIN(swap)"),
    ("swap_max", "MAX(swap)"),
    ("swap_sum", "SUM(swap)"),
    ("disk_min", "MIN(disk)"),
    ("disk_max", "MAX(disk)"),
    ("disk_sum", "SUM(disk)"),
    ("load1_min", "MIN(load1)"),
    ("load1_max", "MAX(load1)"),
    ("load1_sum", "SUM(load1)"),
    ("net_rx_min", "MIN(net_rx_bps)"),
    ("net_rx_max", "MAX(net_rx_bps)"),
    ("net_rx_sum", "SUM(net_rx_bps)"),
    ("net_tx_min", "MIN(net_tx_bps)"),
    ("net_tx_max", "MAX(net_tx_bps)"),
    ("net_tx_sum", "SUM(net_tx_bps)"),
    ("memory_used_min", "MIN(memory_used)"),
    ("memory_used_max", "MAX(memory_used)"),
    ("memory_used_sum", "SUM(memory_used)"),
    ("memory_total_min", "MIN(memory_total)"),
    ("memory_total_max", "MAX(memory_total)"),
    ("memory_total_sum", "SUM(memory_total)"),
    ("load5_min", "MIN(load5)"),
    ("load5_max", "MAX(load5)"),
    ("load5_sum", "SUM(load5)"),
    ("load15_min", "MIN(load15)"),
    ("load15_max", "MAX(load15)"),
    ("load15_sum", "SUM(load15)"),
    ("disk_read_min", "MIN(disk_read_bps)"),
    ("disk_read_max", "MAX(disk_read_bps)"),
    ("disk_read_sum", "SUM(disk_read_bps)"),
    ("disk_write_min", "MIN(disk_write_bps)"),
    ("disk_write_max", "MAX(disk_write_bps)"),
    ("disk_write_sum", "SUM(disk_write_bps)"),
    ("processes_min", "MIN(processes)"),
    ("processes_max", "MAX(processes)"),
    ("processes_sum", "SUM(processes)"),
    ("uptime_max", "MAX(uptime)"),
];

/// Every column of both rollup tiers equals the aggregate of the raw rows of its bucket
/// (sums up to float rounding: the store adds per batch, SQL per row).
async fn assert_rollup_columns_match_raw(app: &TestApp) {
    let db = RawDb::connect(&app.database_url).await;
    for (table, step) in [("samples_1m", MINUTE), ("samples_1h", HOUR)] {
        let cast = |e: &str| format!("CAST({e} AS DOUBLE PRECISION)");
        let cols: Vec<String> = ROLLUP_COLUMNS.iter().map(|c| cast(c.0)).collect();
        let aggs: Vec<String> = ROLLUP_COLUMNS.iter().map(|c| cast(c.1)).collect();
        let rollup = db
            .rows_f64(&format!(
                "SELECT CAST(host_id AS DOUBLE PRECISION), CAST(bucket AS DOUBLE PRECISION), {} \
                 FROM {table} ORDER BY host_id, bucket",
                cols.join(", ")
            ))
            .await;
        let raw = db
            .rows_f64(&format!(
                "SELECT CAST(host_id AS DOUBLE PRECISION), CAST(ts / {step} * {step} AS DOUBLE PRECISION), {} \
                 FROM samples GROUP BY host_id, ts / {step} * {step} ORDER BY host_id, ts / {step} * {step}",
                aggs.join(", ")
            ))
            .await;
        assert!(!raw.is_empty());
        assert_eq!(rollup.len(), raw.len(), "{table}: bucket count differs");
        for (r, a) in rollup.iter().zip(&raw) {
            assert_eq!((r[0], r[1]), (a[0], a[1]), "{table}: bucket keys differ");
            for (i, (p, q)) in r.iter().zip(a).enumerate().skip(2) {
                assert!(
                    (p - q).abs() <= 1e-9 * q.abs().max(1.0),
                    "{table}.{} of bucket {} host {}: rollup {p} vs raw {q}",
                    ROLLUP_COLUMNS[i - 2].0,
                    r[1],
                    r[0]
                );
            }
        }
    }
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_7_fills_the_new_rollup_columns_from_raw_rows() {
    let host_ts = (now_ms() / HOUR - 5) * HOUR;
    let samples: Vec<Sample> = (0..400).map(|i| rich(1, host_ts + i * 13_000, i)).collect();
    let prepared = samples.clone();
    let app = spawn_app_prepared(
        |url| async move {
            // The schema as it was before migration 7, holding samples and the rollups
            // migration 3 computed for them.
            let db = RawDb::connect(&url).await;
            db.migrate_before(20261127000007).await;
            db.exec(&format!(
                "INSERT INTO hosts (name, created_at) VALUES ('old-host', {host_ts})"
            ))
            .await;
            for s in &prepared {
                db.exec(&raw_insert(
                    "(SELECT id FROM hosts WHERE name = 'old-host')",
                    s,
                ))
                .await;
            }
            let dialect = match engine() {
                Engine::Sqlite => "sqlite",
                Engine::Postgres => "postgres",
            };
            let rollups = std::fs::read_to_string(format!(
                "{}/migrations/{dialect}/20261127000003_rollups.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            for statement in rollups
                .split(';')
                .filter(|s| s.contains("INSERT INTO samples_1"))
            {
                db.exec(statement).await;
            }
            db.close().await;
        },
        // 120 minutes fit, 400 samples do not: the minute tier answers.
        |s| s.history_max_points = 200,
    )
    .await;
    assert_rollup_columns_match_raw(&app).await;
    // And the history reads them.
    let token = app.register_and_login().await;
    let host_id = app.store.host_id("old-host").await.unwrap().unwrap();
    let resp = app
        .client
        .get(app.url("/metrics/history"))
        .header("token", &token)
        .query(&[
            ("start", watchpost::domain::format_rfc3339(host_ts)),
            (
                "end",
                watchpost::domain::format_rfc3339(host_ts + 2 * HOUR - 1),
            ),
            ("host", "old-host".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-watchpost-bucket-ms"], "60000");
    let body = json_with_status(resp, StatusCode::OK).await;
    let samples: Vec<Sample> = samples
        .into_iter()
        .map(|s| Sample { host_id, ..s })
        .collect();
    assert_groups(&body, &samples, host_ts, host_ts + 2 * HOUR - 1, MINUTE);
}

/// An INSERT of one raw sample behind the store's back (so no rollup is touched);
/// `host` is an SQL expression for the host id.
fn raw_insert(host: &str, s: &watchpost::store::Sample) -> String {
    format!(
        "INSERT INTO samples (host_id, ts, cpu, memory, memory_used, memory_total, swap, load1, load5, \
         load15, disk, disk_read_bps, disk_write_bps, net_rx_bps, net_tx_bps, processes, uptime) VALUES \
         ({host}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        s.ts,
        s.cpu,
        s.memory,
        s.memory_used,
        s.memory_total,
        s.swap,
        s.load1,
        s.load5,
        s.load15,
        s.disk,
        s.disk_read_bps,
        s.disk_write_bps,
        s.net_rx_bps,
        s.net_tx_bps,
        s.processes,
        s.uptime
    )
}
