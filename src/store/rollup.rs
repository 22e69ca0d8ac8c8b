//! The rollup tiers (`samples_1m`, `samples_1h`): one list of summarised metrics from which
//! every rollup statement (merge, history read, chart read, rebuild) is generated.

use super::{Sample, Tier};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// What a rollup keeps of a metric and how the history shows a bucket of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Minimum, maximum and sum; the history shows the average.
    Gauge,
    /// An integer gauge: minimum, maximum and sum; the history shows the rounded average.
    IntGauge,
    /// An integer gauge whose history shows the bucket's maximum (the process count: a
    /// short burst of processes is what one looks for).
    IntPeak,
    /// Only the maximum is kept and shown: uptime only grows between restarts.
    Counter,
}

/// One of the three aggregates a rollup column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stat {
    Min,
    Max,
    Sum,
}

impl Stat {
    fn suffix(self) -> &'static str {
        match self {
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Sum => "sum",
        }
    }
}

impl Kind {
    fn stats(self) -> &'static [Stat] {
        match self {
            Kind::Gauge | Kind::IntGauge | Kind::IntPeak => &[Stat::Min, Stat::Max, Stat::Sum],
            Kind::Counter => &[Stat::Max],
        }
    }
}

pub(super) struct Metric {
    /// Column prefix in the rollup tables: `cpu` → `cpu_min`, `cpu_max`, `cpu_sum`.
    pub name: &'static str,
    /// The `samples` column (and `Sample` field) it summarises.
    pub source: &'static str,
    pub kind: Kind,
    pub value: fn(&Sample) -> f64,
    /// Drawn on the dashboard: `chart_buckets` reads its minima and maxima.
    pub charted: bool,
}

/// Every `Sample` metric, so that a rollup row can stand in for the raw rows of its bucket.
/// The rollup tables have these columns (migrations 3 and 7); all are REAL / DOUBLE
/// PRECISION, integers included: f64 holds them exactly up to 2^53.
pub(super) const METRICS: &[Metric] = &[
    Metric {
        name: "cpu",
        source: "cpu",
        kind: Kind::Gauge,
        value: |s| s.cpu,
        charted: true,
    },
    Metric {
        name: "memory",
        source: "memory",
        kind: Kind::Gauge,
        value: |s| s.memory,
        charted: true,
    },
    Metric {
        name: "swap",
        source: "swap",
        kind: Kind::Gauge,
        value: |s| s.swap,
        charted: true,
    },
    Metric {
        name: "disk",
        source: "disk",
        kind: Kind::Gauge,
        value: |s| s.disk,
        charted: true,
    },
    Metric {
        name: "load1",
        source: "load1",
        kind: Kind::Gauge,
        value: |s| s.load1,
        charted: true,
    },
    Metric {
        name: "net_rx",
        source: "net_rx_bps",
        kind: Kind::Gauge,
        value: |s| s.net_rx_bps,
        charted: true,
    },
    Metric {
        name: "net_tx",
        source: "net_tx_bps",
        kind: Kind::Gauge,
        value: |s| s.net_tx_bps,
        charted: true,
    },
    Metric {
        name: "memory_used",
        source: "memory_used",
        kind: Kind::IntGauge,
        value: |s| s.memory_used as f64,
        charted: false,
    },
    Metric {
        name: "memory_total",
        source: "memory_total",
        kind: Kind::IntGauge,
        value: |s| s.memory_total as f64,
        charted: false,
    },
    Metric {
        name: "load5",
        source: "load5",
        kind: Kind::Gauge,
        value: |s| s.load5,
        charted: false,
    },
    Metric {
        name: "load15",
        source: "load15",
        kind: Kind::Gauge,
        value: |s| s.load15,
        charted: false,
    },
    Metric {
        name: "disk_read",
        source: "disk_read_bps",
        kind: Kind::Gauge,
        value: |s| s.disk_read_bps,
        charted: false,
    },
    Metric {
        name: "disk_write",
        source: "disk_write_bps",
        kind: Kind::Gauge,
        value: |s| s.disk_write_bps,
        charted: false,
    },
    Metric {
        name: "processes",
        source: "processes",
        kind: Kind::IntPeak,
        value: |s| s.processes as f64,
        charted: false,
    },
    Metric {
        name: "uptime",
        source: "uptime",
        kind: Kind::Counter,
        value: |s| s.uptime as f64,
        charted: false,
    },
];

const N: usize = METRICS.len();

/// The stored columns in table order: (metric index, aggregate, column name).
fn columns() -> impl Iterator<Item = (usize, Stat, String)> {
    METRICS.iter().enumerate().flat_map(|(i, m)| {
        m.kind
            .stats()
            .iter()
            .map(move |&stat| (i, stat, format!("{}_{}", m.name, stat.suffix())))
    })
}

/// Adds the count, minima, maxima and sums of some new samples to a bucket: one statement
/// per (host, bucket) however many samples fell into it.
fn merge_sql(table: &str) -> String {
    let params: Vec<String> = (1..=columns().count() + 3)
        .map(|i| format!("${i}"))
        .collect();
    merge_from(table, &format!("VALUES ({})", params.join(", ")))
}

/// PostgreSQL: [`merge_sql`] for many buckets at once, each column bound as an array
/// ([`bind_merge_arrays`]): one round trip per tier however many hosts a commit holds.
/// The buckets must be distinct (an upsert cannot touch a row twice in one statement).
fn merge_arrays_sql(table: &str) -> String {
    let types: Vec<String> = ["bigint[]"; 3]
        .into_iter()
        .map(str::to_owned)
        .chain(columns().map(|_| "float8[]".to_owned()))
        .enumerate()
        .map(|(i, t)| format!("${}::{t}", i + 1))
        .collect();
    merge_from(
        table,
        &format!("SELECT * FROM UNNEST({})", types.join(", ")),
    )
}

/// The upsert that adds the rows of `source` (host_id, bucket, n, then every column) to
/// their buckets.
fn merge_from(table: &str, source: &str) -> String {
    let cols: Vec<(usize, Stat, String)> = columns().collect();
    let names: Vec<&str> = cols.iter().map(|c| c.2.as_str()).collect();
    // CASE rather than MIN()/LEAST(): the one spelling both engines understand.
    let updates: Vec<String> = cols
        .iter()
        .map(|(_, stat, c)| match stat {
            Stat::Min => format!(
                "{c} = CASE WHEN excluded.{c} < {table}.{c} THEN excluded.{c} ELSE {table}.{c} END"
            ),
            Stat::Max => format!(
                "{c} = CASE WHEN excluded.{c} > {table}.{c} THEN excluded.{c} ELSE {table}.{c} END"
            ),
            Stat::Sum => format!("{c} = {table}.{c} + excluded.{c}"),
        })
        .collect();
    format!(
        "INSERT INTO {table} (host_id, bucket, n, {}) {source} \
         ON CONFLICT (host_id, bucket) DO UPDATE SET n = {table}.n + excluded.n, {}",
        names.join(", "),
        updates.join(", ")
    )
}

/// The `Sample` columns of a history read: averages (sum / n), or maxima where the kind
/// says so; over `SUM`/`MAX` of several buckets when `grouped`.
fn history_values(grouped: bool) -> String {
    let agg = |f: &str, col: String| if grouped { format!("{f}({col})") } else { col };
    METRICS
        .iter()
        .map(|m| {
            let (name, source) = (m.name, m.source);
            // SUM(n) is BIGINT (NUMERIC on PostgreSQL): divide by a float, not an integer.
            let avg = format!(
                "{} / CAST({} AS DOUBLE PRECISION)",
                agg("SUM", format!("{name}_sum")),
                agg("SUM", "n".to_owned())
            );
            match m.kind {
                Kind::Gauge => format!("{avg} AS {source}"),
                Kind::IntGauge => format!("CAST(ROUND({avg}) AS BIGINT) AS {source}"),
                Kind::IntPeak | Kind::Counter => {
                    format!(
                        "CAST({} AS BIGINT) AS {source}",
                        agg("MAX", format!("{name}_max"))
                    )
                }
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Buckets starting in [$2, $3], merged `$4` ms at a time from `$2`, each as one `Sample`
/// row.
fn history_grouped_sql(table: &str) -> String {
    format!(
        "SELECT host_id, MIN(bucket) AS ts, {} FROM {table} \
         WHERE host_id = $1 AND bucket >= $2 AND bucket <= $3 \
         GROUP BY host_id, (bucket - $2) / $4 ORDER BY MIN(bucket) ASC",
        history_values(true)
    )
}

/// [`history_grouped_sql`] for one bucket per point, the usual case: a plain walk along
/// the primary key, where grouping would sort every row for nothing (most of the cost of
/// a 30-day answer).
fn history_sql(table: &str) -> String {
    format!(
        "SELECT host_id, bucket AS ts, {} FROM {table} \
         WHERE host_id = $1 AND bucket >= $2 AND bucket <= $3 ORDER BY bucket ASC",
        history_values(false)
    )
}

/// Minima and maxima of the charted metrics per `$4`-wide group of buckets (`ChartBucket`).
fn chart_sql(table: &str) -> String {
    let values: Vec<String> = METRICS
        .iter()
        .filter(|m| m.charted)
        .map(|m| {
            let name = m.name;
            format!("MIN({name}_min) AS {name}_min, MAX({name}_max) AS {name}_max")
        })
        .collect();
    format!(
        "SELECT MIN(bucket) AS ts, {} FROM {table} \
         WHERE host_id = $1 AND bucket >= $2 AND bucket <= $3 \
         GROUP BY (bucket - $2) / $4 ORDER BY MIN(bucket) ASC",
        values.join(", ")
    )
}

/// Recomputes every bucket that has raw samples from those samples (replacing what the
/// bucket held): for raw rows written behind the server's back, e.g. a bulk import.
fn rebuild_sql(table: &str, step: i64) -> String {
    let cols: Vec<(usize, Stat, String)> = columns().collect();
    let names: Vec<&str> = cols.iter().map(|c| c.2.as_str()).collect();
    let aggregates: Vec<String> = cols
        .iter()
        .map(|(i, stat, _)| {
            let source = METRICS[*i].source;
            match stat {
                Stat::Min => format!("MIN({source})"),
                Stat::Max => format!("MAX({source})"),
                Stat::Sum => format!("SUM({source})"),
            }
        })
        .collect();
    let updates: Vec<String> = names
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    // `WHERE TRUE`: SQLite needs a WHERE before an upsert's ON CONFLICT after a SELECT.
    format!(
        "INSERT INTO {table} (host_id, bucket, n, {}) \
         SELECT host_id, ts / {step} * {step}, COUNT(*), {} FROM samples WHERE TRUE \
         GROUP BY host_id, ts / {step} * {step} \
         ON CONFLICT (host_id, bucket) DO UPDATE SET n = excluded.n, {}",
        names.join(", "),
        aggregates.join(", "),
        updates.join(", ")
    )
}

pub(super) static MERGE_1M: LazyLock<String> = LazyLock::new(|| merge_sql("samples_1m"));
pub(super) static MERGE_1H: LazyLock<String> = LazyLock::new(|| merge_sql("samples_1h"));
static MERGE_ARRAYS_1M: LazyLock<String> = LazyLock::new(|| merge_arrays_sql("samples_1m"));
static MERGE_ARRAYS_1H: LazyLock<String> = LazyLock::new(|| merge_arrays_sql("samples_1h"));
pub(super) static HISTORY_1M: LazyLock<String> = LazyLock::new(|| history_sql("samples_1m"));
pub(super) static HISTORY_1H: LazyLock<String> = LazyLock::new(|| history_sql("samples_1h"));
pub(super) static HISTORY_GROUPED_1M: LazyLock<String> =
    LazyLock::new(|| history_grouped_sql("samples_1m"));
pub(super) static HISTORY_GROUPED_1H: LazyLock<String> =
    LazyLock::new(|| history_grouped_sql("samples_1h"));
pub(super) static CHART_1M: LazyLock<String> = LazyLock::new(|| chart_sql("samples_1m"));
pub(super) static CHART_1H: LazyLock<String> = LazyLock::new(|| chart_sql("samples_1h"));
pub(super) static REBUILD_1M: LazyLock<String> =
    LazyLock::new(|| rebuild_sql("samples_1m", Tier::Minute.step_ms()));
pub(super) static REBUILD_1H: LazyLock<String> =
    LazyLock::new(|| rebuild_sql("samples_1h", Tier::Hour.step_ms()));

/// The merge statements with their bucket widths, finest first.
pub(super) fn merges() -> [(&'static str, i64); 2] {
    [
        (MERGE_1M.as_str(), Tier::Minute.step_ms()),
        (MERGE_1H.as_str(), Tier::Hour.step_ms()),
    ]
}

/// [`merges`] in the array form of [`merge_arrays_sql`] (PostgreSQL).
pub(super) fn merges_arrays() -> [(&'static str, i64); 2] {
    [
        (MERGE_ARRAYS_1M.as_str(), Tier::Minute.step_ms()),
        (MERGE_ARRAYS_1H.as_str(), Tier::Hour.step_ms()),
    ]
}

/// One rollup bucket's aggregate over some new samples.
pub(super) struct Acc {
    n: i64,
    min: [f64; N],
    max: [f64; N],
    sum: [f64; N],
}

impl Acc {
    fn new() -> Self {
        Self {
            n: 0,
            min: [f64::INFINITY; N],
            max: [f64::NEG_INFINITY; N],
            sum: [0.0; N],
        }
    }

    fn add(&mut self, s: &Sample) {
        self.n += 1;
        for (i, m) in METRICS.iter().enumerate() {
            let v = (m.value)(s);
            self.min[i] = self.min[i].min(v);
            self.max[i] = self.max[i].max(v);
            self.sum[i] += v;
        }
    }
}

/// Aggregates samples per host and `step`-wide bucket (keyed by host id and bucket start),
/// so a batch costs one statement per bucket and tier instead of one per sample.
pub(super) fn buckets(samples: &[&Sample], step: i64) -> BTreeMap<(i64, i64), Acc> {
    let mut out: BTreeMap<(i64, i64), Acc> = BTreeMap::new();
    for s in samples {
        out.entry((s.host_id, s.ts.div_euclid(step) * step))
            .or_insert_with(Acc::new)
            .add(s);
    }
    out
}

/// Binds a merge statement's parameters, in [`merge_sql`] column order.
pub(super) fn bind_merge<'q, DB: sqlx::Database>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    host_id: i64,
    bucket: i64,
    acc: &Acc,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = q.bind(host_id).bind(bucket).bind(acc.n);
    for (i, stat, _) in columns() {
        q = q.bind(match stat {
            Stat::Min => acc.min[i],
            Stat::Max => acc.max[i],
            Stat::Sum => acc.sum[i],
        });
    }
    q
}

/// Binds an array merge's parameters ([`merge_arrays_sql`]): one array per column, one
/// element per bucket.
pub(super) fn bind_merge_arrays<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    buckets: &BTreeMap<(i64, i64), Acc>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let keys = |f: fn(&(i64, i64), &Acc) -> i64| -> Vec<i64> {
        buckets.iter().map(|(k, a)| f(k, a)).collect()
    };
    let mut q = q
        .bind(keys(|k, _| k.0))
        .bind(keys(|k, _| k.1))
        .bind(keys(|_, a| a.n));
    for (i, stat, _) in columns() {
        let column: Vec<f64> = buckets
            .values()
            .map(|a| match stat {
                Stat::Min => a.min[i],
                Stat::Max => a.max[i],
                Stat::Sum => a.sum[i],
            })
            .collect();
        q = q.bind(column);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_every_column_once() {
        let cols: Vec<String> = columns().map(|c| c.2).collect();
        assert_eq!(cols.len(), 3 * 14 + 1);
        let mut unique = cols.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), cols.len());
        let merge = merge_sql("samples_1m");
        for c in &cols {
            assert!(merge.contains(&format!("{c} = ")), "{c} not updated");
        }
        // host_id, bucket, n and one parameter per column.
        assert!(merge.contains(&format!("${}", cols.len() + 3)));
        assert!(!merge.contains(&format!("${}", cols.len() + 4)));
        let arrays = merge_arrays_sql("samples_1m");
        assert!(arrays.contains(&format!("${}::float8[]", cols.len() + 3)));
        assert!(!arrays.contains(&format!("${}", cols.len() + 4)));
        assert_eq!(
            arrays.split_once(" ON CONFLICT").map(|p| p.1),
            merge.split_once(" ON CONFLICT").map(|p| p.1)
        );
        // The history reads yield every Sample field.
        let (plain, grouped) = (history_sql("samples_1h"), history_grouped_sql("samples_1h"));
        for field in [
            "host_id",
            "AS ts",
            "AS cpu",
            "AS memory",
            "AS memory_used",
            "AS memory_total",
            "AS swap",
            "AS load1",
            "AS load5",
            "AS load15",
            "AS disk",
            "AS disk_read_bps",
            "AS disk_write_bps",
            "AS net_rx_bps",
            "AS net_tx_bps",
            "AS processes",
            "AS uptime",
        ] {
            assert!(plain.contains(field), "{field} missing");
            assert!(grouped.contains(field), "{field} missing");
        }
    }

    #[test]
    fn buckets_split_hosts_and_windows() {
        let s = |host_id, ts, cpu| Sample {
            host_id,
            ts,
            cpu,
            uptime: ts / 1000,
            ..Default::default()
        };
        let (a, b, c, d) = (
            s(1, 0, 1.0),
            s(1, 59_999, 3.0),
            s(1, 60_000, 5.0),
            s(2, 0, 7.0),
        );
        let got = buckets(&[&a, &b, &c, &d], 60_000);
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            vec![(1, 0), (1, 60_000), (2, 0)]
        );
        let first = &got[&(1, 0)];
        assert_eq!(
            (first.n, first.min[0], first.max[0], first.sum[0]),
            (2, 1.0, 3.0, 4.0)
        );
        assert_eq!(first.max[N - 1], 59.0);
    }
}
