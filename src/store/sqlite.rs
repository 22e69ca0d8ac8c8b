//! SQLite implementation: WAL, `synchronous=FULL`, one writer connection and a pool of
//! readers, so collector writes never block API reads and our own writers never meet
//! `SQLITE_BUSY`.

use super::shared::impl_store;
use super::*;
use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
}

impl SqliteStore {
    const BACKEND: Backend = Backend::Sqlite;

    pub async fn connect(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        let base = SqliteConnectOptions::from_str(&settings.database_url)
            .context("invalid SQLite URL")?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let acquire = Duration::from_secs(settings.db_acquire_timeout_secs);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire)
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
            .connect_with(base.read_only(true))
            .await
            .context("opening SQLite read pool")?;
        Ok(Self { reader, writer })
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

    async fn close_pools(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

impl_store!(SqliteStore);
