//! Shared application state handed to every handler.

use crate::auth::Hasher;
use crate::config::Settings;
use crate::store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub hasher: Hasher,
    /// The host this process samples, registered by hostname at start-up.
    pub local_host_id: i64,
    pub local_host: Arc<str>,
    /// Wakes the notification worker when deliveries were queued.
    pub notify_wake: Arc<tokio::sync::Notify>,
    /// Log analyses allowed to run at once.
    pub analysis_slots: Arc<tokio::sync::Semaphore>,
    /// The service's own counters, exposed at `/metrics/prometheus`.
    pub metrics: Arc<crate::prom::Metrics>,
    /// The queue to the group-commit writer that stores agent batches.
    pub ingest: crate::ingest::Ingester,
    /// Ingest counters (batches, rows, duplicates, refusals, commits), for metrics.
    pub ingest_stats: Arc<crate::ingest::IngestStats>,
}
