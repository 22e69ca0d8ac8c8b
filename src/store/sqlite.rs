//! SQLite implementation: WAL, `synchronous=FULL`, one writer connection and a pool of
//! readers, so collector writes never block API reads and our own writers never meet
//! `SQLITE_BUSY`.

use super::outbox::impl_outbox;
use super::shared::impl_store;
use super::*;
use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    /// The directory of the database file, where its `-wal` and `-shm` live too.
    dir: std::path::PathBuf,
}

/// Holds an exclusive lock on `<database>.lock` for as long as it lives: SQLite's WAL
/// needs all writers on one host, and two servers on one file would each evaluate alerts
/// and run jobs as if alone. Other tools (`watchpost seed`, `sqlite3`) may still open the
/// database; only a second server is refused.
pub struct ServerLock {
    _file: std::fs::File,
}

impl ServerLock {
    pub fn acquire(database_url: &str) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(database_url).context("invalid SQLite URL")?;
        let mut path = opts.get_filename().as_os_str().to_owned();
        path.push(".lock");
        let path = std::path::PathBuf::from(path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("creating lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another watchpost server is already using {} (lock file {}); several replicas need PostgreSQL",
                opts.get_filename().display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
}

impl SqliteStore {
    const BACKEND: Backend = Backend::Sqlite;
    /// Moves evaluation cursors: `$1` is a JSON array of `[host_id, ts]` pairs.
    const CURSORS_SQL: &'static str = "INSERT INTO agent_cursors (host_id, evaluated_until) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1) WHERE true ON CONFLICT (host_id) DO UPDATE SET evaluated_until = excluded.evaluated_until";
    /// Agent samples past each host's evaluation cursor and `$1`. `CROSS JOIN` makes
    /// SQLite loop over hosts outside, searching each host's key range inside.
    const UNEVALUATED_SQL: &'static str = "SELECT s.host_id, s.ts, s.cpu, s.memory, s.memory_used, s.memory_total, s.swap, s.load1, s.load5, s.load15, s.disk, s.disk_read_bps, s.disk_write_bps, s.net_rx_bps, s.net_tx_bps, s.processes, s.uptime FROM hosts h LEFT JOIN agent_cursors c ON c.host_id = h.id CROSS JOIN samples s WHERE h.agent_token_hash IS NOT NULL AND s.host_id = h.id AND s.ts > MAX(COALESCE(c.evaluated_until, $1), $1) ORDER BY s.ts, s.host_id LIMIT $2";
    /// Leases due deliveries to a worker and counts the attempt. A notification waits
    /// while an earlier one about the same alert to the same channel is still pending,
    /// so a receiver never hears "resolved" before "firing". Channels in `$5` (a JSON array
    /// of ids) are skipped: the worker has as many attempts to them in flight as it allows.
    const CLAIM_SQL: &'static str = "UPDATE deliveries SET locked_until = $1, locked_by = $2, attempts = attempts + 1 WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until <= $3) AND deliveries.channel_id NOT IN (SELECT value FROM json_each($5)) AND (deliveries.alert_id IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.channel_id = deliveries.channel_id AND e.alert_id = deliveries.alert_id AND e.state = 'pending' AND e.id < deliveries.id)) ORDER BY next_attempt_at, id LIMIT $4)";
    /// The earliest time a pending delivery outside the channels in `$1` (a JSON array of
    /// ids) falls due or its lease runs out.
    const NEXT_DUE_SQL: &'static str = "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at THEN locked_until ELSE next_attempt_at END) FROM deliveries WHERE state = 'pending' AND channel_id NOT IN (SELECT value FROM json_each($1))";

    /// Deletes a batch of a tier's rows stamped before `$1`, at most `$2`. The inner scan
    /// walks the (host_id, time) primary key host by host, so each batch costs a seek per
    /// host plus the rows it deletes, however much younger data there is (the tables are
    /// WITHOUT ROWID: the key names the rows).
    fn prune_sql(tier: Tier) -> &'static str {
        macro_rules! prune {
            ($table:literal, $time:literal) => {
                concat!(
                    "DELETE FROM ",
                    $table,
                    " WHERE (host_id, ",
                    $time,
                    ") IN (SELECT host_id, ",
                    $time,
                    " FROM ",
                    $table,
                    " WHERE host_id IN (SELECT id FROM hosts) AND ",
                    $time,
                    " < $1 LIMIT $2)"
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
        let base = SqliteConnectOptions::from_str(&settings.database_url)
            .context("invalid SQLite URL")?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(settings.db_lock_timeout_secs))
            .foreign_keys(true);
        let dir = match base.get_filename().parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => std::path::PathBuf::from("."),
        };
        let acquire = Duration::from_secs(settings.db_acquire_timeout_secs);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire)
            // When a COMMIT fails with SQLITE_FULL (or IOERR), SQLite may already have
            // rolled the transaction back; sqlx's own ROLLBACK then fails, and it keeps
            // counting the connection as inside a transaction. Its next `begin()` issues
            // a SAVEPOINT instead of BEGIN, and after one more failure a `ROLLBACK TO`
            // leaves a real transaction open that nothing ever commits: every later write
            // on the one writer connection, acknowledged or not, is lost when the
            // connection closes (found by the disk-full test). So on release: flush the
            // queued rollback (the ping runs after it), and if sqlx still counts a
            // transaction, close the connection; the pool opens a clean one.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    conn.ping().await?;
                    if conn.is_in_transaction() {
                        tracing::warn!("SQLite writer connection left inside a failed transaction; reopening it");
                        return Ok(false);
                    }
                    Ok(true)
                })
            })
            .connect_with(base.clone().create_if_missing(true))
            .await
            .with_context(|| {
                format!(
                    "opening SQLite database {}",
                    redact_url(&settings.database_url)
                )
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .context("applying SQLite migrations")?;
        let reader = SqlitePoolOptions::new()
            .max_connections(settings.db_max_connections)
            .acquire_timeout(acquire)
            // Rows cross from SQLite's worker thread in a bounded channel; the default 50
            // made a 720-row rollup read stop and wake the worker over a dozen times.
            .connect_with(base.read_only(true).row_buffer_size(1024))
            .await
            .context("opening SQLite read pool")?;
        Ok(Self {
            reader,
            writer,
            dir,
        })
    }

    /// One `statvfs` call: cheap enough for every readiness probe.
    fn free_disk_bytes_impl(&self) -> Option<u64> {
        let st = rustix::fs::statvfs(&self.dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }

    fn r(&self) -> &SqlitePool {
        &self.reader
    }

    fn w(&self) -> &SqlitePool {
        &self.writer
    }

    /// Sessions are written on most dashboard requests: they go through the writer.
    fn session_pool_impl(&self) -> SessionPool {
        SessionPool::Sqlite(self.writer.clone())
    }

    fn pool_stats_impl(&self) -> Vec<PoolStats> {
        vec![
            pool_stats("read", &self.reader),
            pool_stats("write", &self.writer),
        ]
    }

    async fn close_pools(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Adds new samples to the rollup tiers: a statement per (host, bucket) and tier
    /// (in-process, so no round trips to save).
    async fn merge_rollups(
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        inserted: &[&Sample],
    ) -> Result<(), sqlx::Error> {
        for (sql, step) in super::rollup::merges() {
            for ((host_id, bucket), acc) in super::rollup::buckets(inserted, step) {
                super::rollup::bind_merge(sqlx::query(sql), host_id, bucket, &acc)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Stores a group commit's batches in one transaction, batch by batch in host order.
    async fn ingest_impl(
        &self,
        batches: &[IngestBatch],
        now: i64,
    ) -> Result<Vec<IngestOutcome>, sqlx::Error> {
        let mut outcomes = vec![IngestOutcome::HostGone; batches.len()];
        if batches.is_empty() {
            return Ok(outcomes);
        }
        let mut order: Vec<usize> = (0..batches.len()).collect();
        order.sort_by_key(|&i| batches[i].host_id);
        let mut tx = self.w().begin().await?;
        for i in order {
            let b = &batches[i];
            // A talking agent is alive even when it resends a batch; the server's clock
            // decides, so a skewed agent clock cannot fake liveness.
            let alive = sqlx::query(
                "UPDATE hosts SET last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < $1 THEN $1 ELSE last_seen_at END, \
                 agent_version = COALESCE($2, agent_version), interval_ms = COALESCE($3, interval_ms) WHERE id = $4",
            )
            .bind(now)
            .bind(b.agent_version.as_deref())
            .bind(b.interval_ms)
            .bind(b.host_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if !alive {
                continue;
            }
            let fresh = sqlx::query(
                "INSERT INTO ingest_batches (host_id, batch_id, received_at, rows) VALUES ($1, $2, $3, 0) \
                 ON CONFLICT (host_id, batch_id) DO NOTHING",
            )
            .bind(b.host_id)
            .bind(&b.batch_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if !fresh {
                outcomes[i] = IngestOutcome::Duplicate;
                continue;
            }
            let refs: Vec<&Sample> = b.samples.iter().collect();
            let inserted = Self::insert_new_samples(&mut tx, &refs).await?;
            Self::merge_rollups(&mut tx, &inserted).await?;
            let accepted = i64::try_from(inserted.len()).unwrap_or(i64::MAX);
            sqlx::query("UPDATE ingest_batches SET rows = $1 WHERE host_id = $2 AND batch_id = $3")
                .bind(accepted)
                .bind(b.host_id)
                .bind(&b.batch_id)
                .execute(&mut *tx)
                .await?;
            outcomes[i] = IngestOutcome::Stored {
                accepted: inserted.len() as u64,
            };
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Inserts samples, a statement each (in-process, so no round trips to save); returns
    /// the samples that were new, in order.
    async fn insert_new_samples<'s>(
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        samples: &[&'s Sample],
    ) -> Result<Vec<&'s Sample>, sqlx::Error> {
        let mut inserted = Vec::with_capacity(samples.len());
        for &s in samples {
            let done = bind_sample(sqlx::query(SAMPLE_INSERT), s)
                .execute(&mut **tx)
                .await?;
            if done.rows_affected() > 0 {
                inserted.push(s);
            }
        }
        Ok(inserted)
    }
}

fn pool_stats(name: &'static str, pool: &SqlitePool) -> PoolStats {
    PoolStats {
        pool: name,
        size: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
    }
}

/// One sample row; a timestamp the host already has is skipped. SQLite only: PostgreSQL
/// inserts a whole commit's samples in one `UNNEST` statement.
const SAMPLE_INSERT: &str = concat!(
    "INSERT INTO samples (",
    super::shared::sample_columns!(),
    ") ",
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ",
    "ON CONFLICT (host_id, ts) DO NOTHING"
);

/// Binds a sample's columns in [`SAMPLE_INSERT`] order.
fn bind_sample<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    s: &Sample,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    q.bind(s.host_id)
        .bind(s.ts)
        .bind(s.cpu)
        .bind(s.memory)
        .bind(s.memory_used)
        .bind(s.memory_total)
        .bind(s.swap)
        .bind(s.load1)
        .bind(s.load5)
        .bind(s.load15)
        .bind(s.disk)
        .bind(s.disk_read_bps)
        .bind(s.disk_write_bps)
        .bind(s.net_rx_bps)
        .bind(s.net_tx_bps)
        .bind(s.processes)
        .bind(s.uptime)
}

impl_store!(SqliteStore);
impl_outbox!(SqliteStore);
