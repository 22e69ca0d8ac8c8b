//! Agent ingest: the wire format, and the group-commit writer that stores every agent
//! batch through one task, many requests per durable transaction.
//!
//! Handlers hand validated batches to [`Ingester::submit`]; the [`IngestWriter`] task takes
//! whatever is queued (waiting up to `commit_delay` for more, at most `commit_max_rows`),
//! writes it all in one transaction and answers each request only after the commit
//! returned — so an acknowledged sample is on disk (SQLite `synchronous=FULL`, PostgreSQL
//! `synchronous_commit=on`). One fsync then serves many agents instead of one each.

pub mod wire;

use crate::store::{IngestBatch, IngestOutcome, Store};
use crate::tasks::Stop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// Counters for the ingest path, readable at any time (e.g. by a Prometheus exporter).
#[derive(Debug, Default)]
pub struct IngestStats {
    /// New batches committed.
    pub batches: AtomicU64,
    /// Samples stored.
    pub rows: AtomicU64,
    /// Batches recognised as retries and skipped.
    pub duplicates: AtomicU64,
    /// Requests refused before the queue: bad token, deleted host, invalid batch.
    pub rejected: AtomicU64,
    /// Requests refused because the queue was full (503).
    pub busy: AtomicU64,
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Transactions that failed (every request in them got a 503).
    pub failed_commits: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStatsSnapshot {
    pub batches: u64,
    pub rows: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub busy: u64,
    pub commits: u64,
    pub failed_commits: u64,
}

impl IngestStats {
    pub fn snapshot(&self) -> IngestStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IngestStatsSnapshot {
            batches: get(&self.batches),
            rows: get(&self.rows),
            duplicates: get(&self.duplicates),
            rejected: get(&self.rejected),
            busy: get(&self.busy),
            commits: get(&self.commits),
            failed_commits: get(&self.failed_commits),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn count_rejected(&self) {
        Self::add(&self.rejected, 1);
    }
}

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Samples that may wait in the queue; beyond that requests get 503.
    pub queue_rows: usize,
    /// How long the writer waits for more requests after the first one.
    pub commit_delay: Duration,
    /// Samples per transaction at most (a single larger batch still goes alone).
    pub commit_max_rows: usize,
}

impl WriterConfig {
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        Self {
            queue_rows: s.ingest_queue_rows,
            commit_delay: Duration::from_millis(s.ingest_commit_delay_ms),
            commit_max_rows: s.ingest_commit_max_rows,
        }
    }
}

/// Why a batch was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full; retry in a moment.
    Busy,
    /// The transaction failed or the writer stopped; nothing of the batch was stored.
    Failed,
    /// The transaction failed because the database's disk is full; nothing was stored.
    DiskFull,
}

struct Job {
    batch: IngestBatch,
    reply: oneshot::Sender<Result<IngestOutcome, SubmitError>>,
    /// Held until the batch is committed, so queued samples never exceed `queue_rows`.
    permit: OwnedSemaphorePermit,
}

/// The handlers' side of the writer: cheap to clone.
#[derive(Clone)]
pub struct Ingester {
    queue: mpsc::Sender<Job>,
    rows: Arc<Semaphore>,
    stats: Arc<IngestStats>,
}

impl Ingester {
    /// The handle and the writer task (run it with [`IngestWriter::run`]).
    pub fn new(
        store: Arc<dyn Store>,
        config: WriterConfig,
        stats: Arc<IngestStats>,
    ) -> (Ingester, IngestWriter) {
        let queue_rows = config.queue_rows.max(1);
        // Every queued request holds at least one row permit, so this bound is never
        // the one that bites; it only keeps the channel itself bounded.
        let (tx, rx) = mpsc::channel(queue_rows.min(65_536));
        let ingester = Ingester {
            queue: tx,
            rows: Arc::new(Semaphore::new(queue_rows)),
            stats: stats.clone(),
        };
        let writer = IngestWriter {
            store,
            queue: rx,
            config,
            stats,
        };
        (ingester, writer)
    }

    pub fn stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }

    /// Queues a batch and waits until it is committed (or refused). Never blocks on a full
    /// queue: that is an immediate `Busy`, so agents back off instead of piling up.
    pub async fn submit(&self, batch: IngestBatch) -> Result<IngestOutcome, SubmitError> {
        let n = u32::try_from(batch.samples.len().max(1)).unwrap_or(u32::MAX);
        let permit = match self.rows.clone().try_acquire_many_owned(n) {
            Ok(p) => p,
            Err(_) => {
                IngestStats::add(&self.stats.busy, 1);
                return Err(SubmitError::Busy);
            }
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            batch,
            reply,
            permit,
        };
        if let Err(e) = self.queue.try_send(job) {
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => {
                    IngestStats::add(&self.stats.busy, 1);
                    SubmitError::Busy
                }
                mpsc::error::TrySendError::Closed(_) => SubmitError::Failed,
            });
        }
        // A dropped reply means the writer stopped before committing the batch.
        answer.await.unwrap_or(Err(SubmitError::Failed))
    }
}

/// The single writer: owns the queue's receiving end.
pub struct IngestWriter {
    store: Arc<dyn Store>,
    queue: mpsc::Receiver<Job>,
    config: WriterConfig,
    stats: Arc<IngestStats>,
}

impl IngestWriter {
    /// Commits until stopped; what is queued at the stop is still committed and answered.
    pub async fn run(mut self, mut stop: Stop) {
        loop {
            let first = tokio::select! {
                job = self.queue.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                () = stop.stopped() => break,
            };
            let jobs = self.gather(first).await;
            self.commit(jobs).await;
        }
        // No new requests from here on; commit the ones already accepted.
        self.queue.close();
        while let Some(job) = self.queue.recv().await {
            let jobs = self.gather(job).await;
            self.commit(jobs).await;
        }
        tracing::debug!("ingest writer stopped");
    }

    /// `first` plus whatever else arrives within `commit_delay`, up to `commit_max_rows`.
    async fn gather(&mut self, first: Job) -> Vec<Job> {
        let max_rows = self.config.commit_max_rows.max(1);
        let mut rows = first.batch.samples.len();
        let mut jobs = vec![first];
        // Whatever queued up during the previous commit goes in without waiting.
        while rows < max_rows {
            match self.queue.try_recv() {
                Ok(job) => {
                    rows += job.batch.samples.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        if rows < max_rows && !self.config.commit_delay.is_zero() {
            let deadline = tokio::time::Instant::now() + self.config.commit_delay;
            while rows < max_rows {
                tokio::select! {
                    job = self.queue.recv() => match job {
                        Some(job) => {
                            rows += job.batch.samples.len();
                            jobs.push(job);
                        }
                        None => break,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
        }
        jobs
    }

    /// One transaction for all `jobs`; each request is answered after it returned.
    async fn commit(&self, jobs: Vec<Job>) {
        let mut batches = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            batches.push(job.batch);
            replies.push((job.reply, job.permit));
        }
        let result = self.store.ingest(&batches, crate::domain::now_ms()).await;
        match result {
            Ok(outcomes) => {
                IngestStats::add(&self.stats.commits, 1);
                for ((reply, _permit), outcome) in replies.into_iter().zip(outcomes) {
                    match outcome {
                        IngestOutcome::Stored { accepted } => {
                            IngestStats::add(&self.stats.batches, 1);
                            IngestStats::add(&self.stats.rows, accepted);
                        }
                        IngestOutcome::Duplicate => IngestStats::add(&self.stats.duplicates, 1),
                        IngestOutcome::HostGone => IngestStats::add(&self.stats.rejected, 1),
                    }
                    // The agent may have given up waiting; its retry finds a duplicate.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                IngestStats::add(&self.stats.failed_commits, 1);
                tracing::warn!(error = %e, batches = batches.len(), "ingest commit failed; every batch in it was refused (503) and nothing was stored");
                let why = match e {
                    crate::store::StoreError::Full(_) => SubmitError::DiskFull,
                    _ => SubmitError::Failed,
                };
                for (reply, _permit) in replies {
                    let _ = reply.send(Err(why));
                }
            }
        }
    }
}
