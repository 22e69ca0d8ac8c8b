//! Periodic clean-up: expired tokens, stale login-failure counters and old ingest batch ids.

use super::Stop;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

pub async fn step(
    store: &dyn Store,
    now: i64,
    window_ms: i64,
    batch_retention_ms: i64,
) -> anyhow::Result<()> {
    let tokens = store.purge_expired_tokens(now).await?;
    let counters = store.purge_login_failures(now - window_ms).await?;
    // Batch ids only matter while an agent may still retry that batch.
    let batches = store
        .purge_ingest_batches(now.saturating_sub(batch_retention_ms))
        .await?;
    if tokens + counters + batches > 0 {
        tracing::debug!(tokens, counters, batches, "janitor purged");
    }
    Ok(())
}

pub async fn run(store: Arc<dyn Store>, window_ms: i64, batch_retention_ms: i64, mut stop: Stop) {
    while stop.sleep(Duration::from_secs(300)).await {
        if let Err(e) = step(
            store.as_ref(),
            crate::domain::now_ms(),
            window_ms,
            batch_retention_ms,
        )
        .await
        {
            tracing::warn!(error = %e, "janitor step failed");
        }
    }
}
