//! Start-up: bind the listener, open storage, register the local host, spawn background
//! tasks, serve until told to stop, then drain and close.

use crate::alerts::SystemClock;
use crate::auth::Hasher;
use crate::config::Settings;
use crate::http::server::{serve, ServerLimits};
use crate::http::state::AppState;
use crate::store::Store;
use crate::tasks::{self, Stop};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    /// SQLite only: refuses a second server on the same database file.
    _lock: Option<crate::store::ServerLock>,
    /// The group-commit writer for agent batches, started with the server.
    ingest_writer: crate::ingest::IngestWriter,
}

impl App {
    /// Binds `settings.bind` (port 0 picks a free port), connects the store and applies
    /// migrations.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        settings.validate()?;
        let listener = TcpListener::bind(&settings.bind)
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let addr = listener.local_addr()?;
        let lock = match crate::store::Backend::from_url(&settings.database_url)? {
            crate::store::Backend::Sqlite => {
                Some(crate::store::ServerLock::acquire(&settings.database_url)?)
            }
            crate::store::Backend::Postgres => None,
        };
        let store = crate::store::connect(&settings).await?;
        let local_host = crate::collect::local_hostname();
        let local_host_id = store
            .upsert_host(&local_host, crate::domain::now_ms())
            .await?;
        sync_env_channels(store.as_ref(), &settings).await?;
        let hasher = Hasher::new(settings.hash_concurrency)?;
        let analysis_slots = Arc::new(tokio::sync::Semaphore::new(settings.analysis_concurrency));
        let ingest_stats = Arc::new(crate::ingest::IngestStats::default());
        let (ingest, ingest_writer) = crate::ingest::Ingester::new(
            store.clone(),
            crate::ingest::WriterConfig::from_settings(&settings),
            ingest_stats.clone(),
        );
        let state = AppState {
            store,
            settings: Arc::new(settings),
            hasher,
            local_host_id,
            local_host: local_host.into(),
            notify_wake: Arc::new(tokio::sync::Notify::new()),
            analysis_slots,
            metrics: Arc::new(crate::prom::Metrics::new()),
            ingest,
            ingest_stats,
        };
        Ok(App {
            listener,
            addr,
            state,
            _lock: lock,
            ingest_writer,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Serves until `shutdown` resolves, then stops background tasks, drains connections
    /// and closes the database pool.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        // The lock lives until the server has fully stopped.
        let App {
            listener,
            addr,
            state,
            _lock: lock,
            ingest_writer,
        } = self;
        let settings = state.settings.clone();
        let (stop_tx, stop) = Stop::new();
        let mut handles = Vec::new();
        // Stopped only after the listener has drained, and it commits what is still
        // queued before it ends: every request that got in is answered.
        handles.push(tokio::spawn(ingest_writer.run(stop.clone())));
        if settings.collector {
            let task = tasks::collector::CollectorTask::new(
                state.store.clone(),
                state.local_host_id,
                Arc::new(SystemClock),
                state.notify_wake.clone(),
            )
            .await?
            .with_metrics(state.metrics.clone());
            handles.push(tokio::spawn(task.run(settings.interval(), stop.clone())));
        }
        if settings.notifier {
            let notifier = crate::notify::worker::Notifier::new(
                state.store.clone(),
                &settings,
                Arc::new(SystemClock),
            )?;
            handles.push(tokio::spawn(
                notifier.run(state.notify_wake.clone(), stop.clone()),
            ));
        }
        // Every replica runs these; only each lease's holder does the work, the others
        // wait to take over.
        if settings.leader_jobs {
            let holder = tasks::agent_alerts::holder_name(&state.local_host);
            handles.push(tokio::spawn(tasks::retention::run(
                state.store.clone(),
                settings.retention(),
                holder.clone(),
                state.metrics.clone(),
                stop.clone(),
            )));
            let timing = tasks::agent_alerts::Timing::default();
            let agent_alerts = tasks::agent_alerts::AgentAlerts::new(
                state.store.clone(),
                holder,
                timing.ttl,
                i64::try_from(settings.interval_ms).unwrap_or(1000),
            )
            .with_wake(state.notify_wake.clone())
            .with_metrics(state.metrics.clone());
            handles.push(tokio::spawn(agent_alerts.run(timing, stop.clone())));
        }
        let window_ms =
            i64::try_from(settings.login_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let batch_retention_ms = i64::try_from(
            settings
                .ingest_batch_retention_hours
                .saturating_mul(3_600_000),
        )
        .unwrap_or(i64::MAX);
        handles.push(tokio::spawn(tasks::janitor::run(
            state.store.clone(),
            window_ms,
            batch_retention_ms,
            stop.clone(),
        )));

        tracing::info!(
            %addr,
            database = %crate::store::redact_url(&settings.database_url),
            host = %state.local_host,
            collector = settings.collector,
            "watchpost listening on http://{addr}"
        );
        let limits = ServerLimits {
            header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs),
            max_connections: settings.max_connections,
            shutdown_grace: Duration::from_secs(settings.shutdown_grace_secs),
        };
        let store = state.store.clone();
        let router = crate::http::router(state).await?;
        serve(listener, router, limits, shutdown).await;

        let _ = stop_tx.send(true);
        for h in handles {
            let _ = h.await;
        }
        store.close().await;
        drop(lock);
        tracing::info!("stopped");
        Ok(())
    }
}

/// Creates, updates or disables the channels configured by ALERT_* variables, so they
/// go through the same outbox as everyone else's.
pub async fn sync_env_channels(store: &dyn Store, settings: &Settings) -> anyhow::Result<()> {
    use crate::store::EnvChannel;
    let now = crate::domain::now_ms();
    let webhook = settings.alert_webhook_url.as_ref().map(|url| EnvChannel {
        kind: "webhook".into(),
        name: "Global webhook (ALERT_WEBHOOK_URL)".into(),
        target: url.expose().to_owned(),
        secret: settings
            .alert_webhook_secret
            .as_ref()
            .map(|s| s.expose().to_owned()),
    });
    let email = match (&settings.alert_smtp_host, &settings.alert_to) {
        (Some(_), Some(to)) => Some(EnvChannel {
            kind: "email".into(),
            name: "Global email (ALERT_TO)".into(),
            target: to.clone(),
            secret: None,
        }),
        _ => None,
    };
    let secret = crate::notify::sign::generate_secret();
    for (kind, channel, secret) in [("webhook", webhook, secret.as_str()), ("email", email, "")] {
        let sync = || store.sync_env_channel(kind, channel.as_ref(), secret, now);
        // Replicas starting together may race to create the row: the loser updates it.
        let result = match sync().await {
            Err(crate::store::StoreError::Conflict) => sync().await,
            other => other,
        };
        result.with_context(|| format!("configuring the global {kind} channel"))?;
    }
    Ok(())
}
