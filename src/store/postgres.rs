//! PostgreSQL implementation: one pool, `synchronous_commit=on`, its own migrations.

use super::outbox::impl_outbox;
use super::shared::impl_store;
use super::*;
use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
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
    /// so a receiver never hears "resolved" before "firing". Channels in `$5` (a JSON array
    /// of ids) are skipped: the worker has as many attempts to them in flight as it allows.
    const CLAIM_SQL: &'static str = "UPDATE deliveries SET locked_until = $1, locked_by = $2, attempts = attempts + 1 WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until <= $3) AND deliveries.channel_id NOT IN (SELECT (value)::bigint FROM json_array_elements_text($5::json)) AND (deliveries.alert_id IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.channel_id = deliveries.channel_id AND e.alert_id = deliveries.alert_id AND e.state = 'pending' AND e.id < deliveries.id)) ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)";
    /// The earliest time a pending delivery outside the channels in `$1` (a JSON array of
    /// ids) falls due or its lease runs out.
    const NEXT_DUE_SQL: &'static str = "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at THEN locked_until ELSE next_attempt_at END) FROM deliveries WHERE state = 'pending' AND channel_id NOT IN (SELECT (value)::bigint FROM json_array_elements_text($1::json))";

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
        let base = PgConnectOptions::from_str(&settings.database_url)
            .context("invalid PostgreSQL URL")?
            // Acknowledged writes must survive a server crash. JIT off: our queries are
            // short, and JIT compiling one whose row estimate is high (a per-host scan of
            // the samples key) costs 100+ ms for a 5 ms query.
            .options([("synchronous_commit", "on"), ("jit", "off")]);
        // Migrations run on a connection of their own without the lock and statement
        // timeouts: sqlx's migrator waits on an advisory lock while another replica
        // migrates, and a migration may legitimately run long on a big table.
        {
            let mut conn = PgConnection::connect_with(&base).await.with_context(|| {
                format!(
                    "connecting to PostgreSQL at {}",
                    redact_url(&settings.database_url)
                )
            })?;
            sqlx::migrate!("./migrations/postgres")
                .run(&mut conn)
                .await
                .context("applying PostgreSQL migrations")?;
            let _ = conn.close().await;
        }
        // A statement waiting on a lock held elsewhere (a table lock, a long transaction
        // of another replica or an operator's session) gives up after the lock timeout
        // instead of holding its request until the request timeout; 55P03 and 57014 map
        // to 503 + Retry-After (`StoreError::Unavailable`).
        let lock_timeout = format!("{}s", settings.db_lock_timeout_secs);
        let statement_timeout = format!("{}s", settings.db_statement_timeout_secs);
        let opts = base.options([
            ("lock_timeout", lock_timeout.as_str()),
            ("statement_timeout", statement_timeout.as_str()),
        ]);
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

    /// The server's disk is not ours to measure; a full one shows as SQLSTATE 53100.
    fn free_disk_bytes_impl(&self) -> Option<u64> {
        None
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

    /// Adds new samples to the rollup tiers: one statement per tier for the whole commit,
    /// every bucket's aggregates bound as arrays.
    async fn merge_rollups(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        inserted: &[&Sample],
    ) -> Result<(), sqlx::Error> {
        if inserted.is_empty() {
            return Ok(());
        }
        for (sql, step) in super::rollup::merges_arrays() {
            // Keyed by (host, bucket), so distinct, and in key order: concurrent replicas
            // upsert the same rows in the same order.
            let buckets = super::rollup::buckets(inserted, step);
            super::rollup::bind_merge_arrays(sqlx::query(sql), &buckets)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Stores a group commit's batches with a fixed handful of set-based statements, however
    /// many batches it holds: at ~0.2 ms per round trip, six statements per batch capped a
    /// commit of 1,000 agents' batches at several hundred milliseconds.
    async fn ingest_impl(
        &self,
        batches: &[IngestBatch],
        now: i64,
    ) -> Result<Vec<IngestOutcome>, sqlx::Error> {
        use std::collections::{BTreeMap, HashMap, HashSet};
        let mut outcomes = vec![IngestOutcome::HostGone; batches.len()];
        if batches.is_empty() {
            return Ok(outcomes);
        }
        // Per host, the last version and interval its batches name (as if applied in turn).
        let mut hosts: BTreeMap<i64, (Option<&str>, Option<i64>)> = BTreeMap::new();
        for b in batches {
            let e = hosts.entry(b.host_id).or_default();
            e.0 = b.agent_version.as_deref().or(e.0);
            e.1 = b.interval_ms.or(e.1);
        }
        let ids: Vec<i64> = hosts.keys().copied().collect();
        let versions: Vec<Option<&str>> = hosts.values().map(|h| h.0).collect();
        let intervals: Vec<Option<i64>> = hosts.values().map(|h| h.1).collect();
        let mut tx = self.w().begin().await?;
        // The host rows are locked first, in id order (the materialised CTE), so two
        // replicas committing batches of the same hosts queue instead of deadlocking, and
        // everything below touches only rows of hosts this transaction holds. A talking
        // agent is alive even when it resends a batch; the server's clock decides.
        let alive: HashSet<i64> = sqlx::query_scalar(
            "WITH locked AS MATERIALIZED (SELECT id FROM hosts WHERE id = ANY($1) ORDER BY id FOR UPDATE) \
             UPDATE hosts h SET last_seen_at = GREATEST(h.last_seen_at, $4), \
             agent_version = COALESCE(u.agent_version, h.agent_version), interval_ms = COALESCE(u.interval_ms, h.interval_ms) \
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[]) AS u(id, agent_version, interval_ms) \
             JOIN locked ON locked.id = u.id WHERE h.id = u.id RETURNING h.id",
        )
        .bind(&ids)
        .bind(&versions)
        .bind(&intervals)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let live: Vec<usize> = (0..batches.len())
            .filter(|&i| alive.contains(&batches[i].host_id))
            .collect();
        if live.is_empty() {
            tx.commit().await?;
            return Ok(outcomes);
        }
        let batch_hosts: Vec<i64> = live.iter().map(|&i| batches[i].host_id).collect();
        let batch_ids: Vec<&str> = live.iter().map(|&i| batches[i].batch_id.as_str()).collect();
        // A batch id seen twice in one statement is stored once: DO NOTHING skips the
        // second like any other conflict.
        let stored: Vec<(i64, String)> = sqlx::query_as(
            "INSERT INTO ingest_batches (host_id, batch_id, received_at, rows) \
             SELECT h, b, $3, 0 FROM UNNEST($1::bigint[], $2::text[]) AS u(h, b) \
             ON CONFLICT (host_id, batch_id) DO NOTHING RETURNING host_id, batch_id",
        )
        .bind(&batch_hosts)
        .bind(&batch_ids)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut new_ids: HashMap<i64, HashSet<String>> = HashMap::new();
        for (host, id) in stored {
            new_ids.entry(host).or_default().insert(id);
        }
        // The first of equal batches in the commit is the new one; later ones are retries.
        let mut fresh = Vec::with_capacity(live.len());
        for i in live {
            let b = &batches[i];
            let is_new = new_ids
                .get_mut(&b.host_id)
                .is_some_and(|ids| ids.remove(b.batch_id.as_str()));
            if is_new {
                fresh.push(i);
            } else {
                outcomes[i] = IngestOutcome::Duplicate;
            }
        }
        let candidates: Vec<&Sample> = fresh.iter().flat_map(|&i| &batches[i].samples).collect();
        let mut new_rows = Self::insert_rows(&mut tx, &candidates).await?;
        // Each new row belongs to the first batch that carried its (host, ts).
        let mut inserted = Vec::with_capacity(new_rows.len());
        let mut accepted = Vec::with_capacity(fresh.len());
        for &i in &fresh {
            let before = inserted.len();
            for s in &batches[i].samples {
                if new_rows.remove(&(s.host_id, s.ts)) {
                    inserted.push(s);
                }
            }
            let n = inserted.len() - before;
            outcomes[i] = IngestOutcome::Stored { accepted: n as u64 };
            accepted.push(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Self::merge_rollups(&mut tx, &inserted).await?;
        let fresh_hosts: Vec<i64> = fresh.iter().map(|&i| batches[i].host_id).collect();
        let fresh_ids: Vec<&str> = fresh
            .iter()
            .map(|&i| batches[i].batch_id.as_str())
            .collect();
        sqlx::query(
            "UPDATE ingest_batches b SET rows = u.n FROM UNNEST($1::bigint[], $2::text[], $3::bigint[]) AS u(h, id, n) \
             WHERE b.host_id = u.h AND b.batch_id = u.id",
        )
        .bind(&fresh_hosts)
        .bind(&fresh_ids)
        .bind(&accepted)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// [`Self::insert_rows`], returning the samples that were new, in order (the first of
    /// equal keys).
    async fn insert_new_samples<'s>(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        samples: &[&'s Sample],
    ) -> Result<Vec<&'s Sample>, sqlx::Error> {
        let mut new_rows = Self::insert_rows(tx, samples).await?;
        Ok(samples
            .iter()
            .copied()
            .filter(|s| new_rows.remove(&(s.host_id, s.ts)))
            .collect())
    }

    /// Inserts samples in ONE statement (a round trip per row would dominate a group
    /// commit or a bulk load); returns the (host, ts) keys of the rows that were new.
    /// Equal keys within `samples` are stored once.
    async fn insert_rows(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        samples: &[&Sample],
    ) -> Result<std::collections::HashSet<(i64, i64)>, sqlx::Error> {
        if samples.is_empty() {
            return Ok(Default::default());
        }
        fn col<T>(samples: &[&Sample], f: impl Fn(&Sample) -> T) -> Vec<T> {
            samples.iter().map(|s| f(s)).collect()
        }
        let new_rows: Vec<(i64, i64)> = sqlx::query_as(concat!(
            "INSERT INTO samples (",
            super::shared::sample_columns!(),
            ") SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::float8[], $4::float8[], $5::bigint[], $6::bigint[], \
             $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::float8[], \
             $14::float8[], $15::float8[], $16::bigint[], $17::bigint[]) \
             ON CONFLICT (host_id, ts) DO NOTHING RETURNING host_id, ts"
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
        Ok(new_rows.into_iter().collect())
    }
}

impl_store!(PgStore);
impl_outbox!(PgStore);
