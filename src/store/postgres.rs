//! PostgreSQL implementation: one pool, `synchronous_commit=on`, its own migrations.

use super::outbox::impl_outbox;
use super::shared::impl_store;
use super::*;
use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    const BACKEND: Backend = Backend::Postgres;
    /// Moves evaluation cursors: `$1` is a JSON array of `[host_id, ts]` pairs.
    const CURSORS_SQL: &'static str = "INSERT INTO agent_cursors (host_id, evaluated_until) SELECT (c.value->>0)::bigint, (c.value->>1)::bigint FROM json_array_elements($1::json) c ON CONFLICT (host_id) DO UPDATE SET evaluated_until = excluded.evaluated_until";
    /// Agent samples past each host's evaluation cursor and `$1`. The `LATERAL` subquery
    /// with its own `LIMIT` keeps PostgreSQL from flattening it into a full scan.
    const UNEVALUATED_SQL: &'static str = "SELECT s.* FROM hosts h LEFT JOIN agent_cursors c ON c.host_id = h.id CROSS JOIN LATERAL (SELECT s.host_id, s.ts, s.cpu, s.memory, s.memory_used, s.memory_total, s.swap, s.load1, s.load5, s.load15, s.disk, s.disk_read_bps, s.disk_write_bps, s.net_rx_bps, s.net_tx_bps, s.processes, s.uptime FROM samples s WHERE s.host_id = h.id AND s.ts > GREATEST(COALESCE(c.evaluated_until, $1), $1) ORDER BY s.ts LIMIT $2) s WHERE h.agent_token_hash IS NOT NULL ORDER BY s.ts, s.host_id LIMIT $2";
    /// Leases due deliveries to a worker and counts the attempt. A notification waits
    /// while an earlier one about the same alert to the same channel is still pending,
    /// so a receiver never hears "resolved" before "firing".
    const CLAIM_SQL: &'static str = "UPDATE deliveries SET locked_until = $1, locked_by = $2, attempts = attempts + 1 WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until <= $3) AND (deliveries.alert_id IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.channel_id = deliveries.channel_id AND e.alert_id = deliveries.alert_id AND e.state = 'pending' AND e.id < deliveries.id)) ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)";

    /// Deletes a batch of a tier's rows stamped before `$1`, at most `$2`. The LATERAL
    /// subquery walks the (host_id, time) primary key host by host (ORDER BY keeps the
    /// planner on the index: a sequential scan would crawl over the dead tuples of earlier
    /// batches), and the rows are then fetched by `ctid` (naming them by key lets the
    /// planner hash-join a scan of the whole table). Concurrent replicas are safe: a row
    /// another statement deleted or updated meanwhile no longer matches its `ctid` and is
    /// skipped.
    fn prune_sql(tier: Tier) -> &'static str {
        macro_rules! prune {
            ($table:literal, $time:literal) => {
                concat!(
                    "DELETE FROM ",
                    $table,
                    " WHERE ctid = ANY(ARRAY(SELECT o.ctid FROM hosts h CROSS JOIN LATERAL ",
                    "(SELECT ctid FROM ",
                    $table,
                    " WHERE host_id = h.id AND ",
                    $time,
                    " < $1 ORDER BY ",
                    $time,
                    " LIMIT $2) AS o LIMIT $2))"
                )
            };
        }
        match tier {
            Tier::Raw => prune!("samples", "ts"),
            Tier::Minute => prune!("samples_1m", "bucket"),
            Tier::Hour => prune!("samples_1h", "bucket"),
        }
    }

    pub async fn connect(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(&settings.database_url)
            .context("invalid PostgreSQL URL")?
            // Acknowledged writes must survive a server crash. JIT off: our queries are
            // short, and JIT compiling one whose row estimate is high (a per-host scan of
            // the samples key) costs 100+ ms for a 5 ms query.
            .options([("synchronous_commit", "on"), ("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.db_max_connections)
            .acquire_timeout(Duration::from_secs(settings.db_acquire_timeout_secs))
            .connect_with(opts)
            .await
            .with_context(|| {
                format!(
                    "connecting to PostgreSQL at {}",
                    redact_url(&settings.database_url)
                )
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .context("applying PostgreSQL migrations")?;
        Ok(Self { pool })
    }

    fn r(&self) -> &PgPool {
        &self.pool
    }

    fn w(&self) -> &PgPool {
        &self.pool
    }

    fn session_pool_impl(&self) -> SessionPool {
        SessionPool::Postgres(self.pool.clone())
    }

    fn pool_stats_impl(&self) -> Vec<PoolStats> {
        vec![PoolStats {
            pool: "main",
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }]
    }

    async fn close_pools(&self) {
        self.pool.close().await;
    }

    /// Inserts one batch's samples in ONE statement (a round trip per row would dominate a
    /// group commit); returns the samples that were new. Timestamps within a batch are
    /// distinct, so the returned `ts` identify the rows.
    async fn insert_new_samples<'s>(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        samples: &'s [Sample],
    ) -> Result<Vec<&'s Sample>, sqlx::Error> {
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        fn col<T>(samples: &[Sample], f: impl Fn(&Sample) -> T) -> Vec<T> {
            samples.iter().map(f).collect()
        }
        let new_ts: Vec<i64> = sqlx::query_scalar(concat!(
            "INSERT INTO samples (",
            super::shared::sample_columns!(),
            ") SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::float8[], $4::float8[], $5::bigint[], $6::bigint[], \
             $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::float8[], \
             $14::float8[], $15::float8[], $16::bigint[], $17::bigint[]) \
             ON CONFLICT (host_id, ts) DO NOTHING RETURNING ts"
        ))
        .bind(col(samples, |s| s.host_id))
        .bind(col(samples, |s| s.ts))
        .bind(col(samples, |s| s.cpu))
        .bind(col(samples, |s| s.memory))
        .bind(col(samples, |s| s.memory_used))
        .bind(col(samples, |s| s.memory_total))
        .bind(col(samples, |s| s.swap))
        .bind(col(samples, |s| s.load1))
        .bind(col(samples, |s| s.load5))
        .bind(col(samples, |s| s.load15))
        .bind(col(samples, |s| s.disk))
        .bind(col(samples, |s| s.disk_read_bps))
        .bind(col(samples, |s| s.disk_write_bps))
        .bind(col(samples, |s| s.net_rx_bps))
        .bind(col(samples, |s| s.net_tx_bps))
        .bind(col(samples, |s| s.processes))
        .bind(col(samples, |s| s.uptime))
        .fetch_all(&mut **tx)
        .await?;
        let new_ts: std::collections::HashSet<i64> = new_ts.into_iter().collect();
        Ok(samples.iter().filter(|s| new_ts.contains(&s.ts)).collect())
    }
}

impl_store!(PgStore);
impl_outbox!(PgStore);
