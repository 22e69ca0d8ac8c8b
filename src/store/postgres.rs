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
    /// Leases due deliveries to a worker and counts the attempt. A notification waits
    /// while an earlier one about the same alert to the same channel is still pending,
    /// so a receiver never hears "resolved" before "firing".
    const CLAIM_SQL: &'static str = "UPDATE deliveries SET locked_until = $1, locked_by = $2, attempts = attempts + 1 WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until <= $3) AND (deliveries.alert_id IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.channel_id = deliveries.channel_id AND e.alert_id = deliveries.alert_id AND e.state = 'pending' AND e.id < deliveries.id)) ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)";

    pub async fn connect(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(&settings.database_url)
            .context("invalid PostgreSQL URL")?
            // Acknowledged writes must survive a server crash.
            .options([("synchronous_commit", "on")]);
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
}

impl_store!(PgStore);
impl_outbox!(PgStore);
