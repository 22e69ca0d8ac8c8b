//! The multi-threaded driver: the caller's thread decodes and splits the input and merges the
//! results in input order; worker threads analyse blocks. Same report as [`Analyzer`] for any
//! thread count (blocks are cut by content, parts merged in order).
//!
//! [`Analyzer`]: super::Analyzer

use super::analyzer::{
    analyze_block, AnalyzeError, AnalyzerConfig, Block, Blocks, LineNote, Merger, Part, Report,
    TemplateRow,
};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Called by a worker before it analyses a block; what it returns is held until the block is
/// done. The server passes one that takes a slot of its CPU semaphore, so the blocks of all
/// uploads together use at most that many cores.
pub type Gate = Arc<dyn Fn() -> Box<dyn Any> + Send + Sync>;

type Outcome = Result<(Part, Vec<u8>), u64>;

/// Dropping it early (an aborted upload) closes the queue: workers finish their block and exit.
pub struct ParallelAnalyzer {
    cfg: Arc<AnalyzerConfig>,
    blocks: Blocks,
    merger: Merger,
    work: Option<SyncSender<Block>>,
    done: Receiver<Outcome>,
    workers: Vec<JoinHandle<()>>,
    sent: u64,
    received: u64,
    max_in_flight: u64,
}

impl ParallelAnalyzer {
    /// `threads` workers; with 0 (or if none can be started) blocks are analysed on the
    /// caller's thread.
    pub fn new(cfg: AnalyzerConfig, threads: usize, gate: Option<Gate>) -> Self {
        let cfg = Arc::new(cfg);
        let (work_tx, work_rx) = sync_channel::<Block>(threads.max(1));
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = sync_channel::<Outcome>(threads * 2 + 2);
        let mut workers = Vec::new();
        for i in 0..threads {
            let (cfg, rx, tx, gate) = (cfg.clone(), work_rx.clone(), done_tx.clone(), gate.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("log-analyzer-{i}"))
                .spawn(move || worker(&cfg, &rx, &tx, gate.as_ref()));
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => {
                    tracing::warn!(error = %e, "could not start a log analysis thread");
                    break;
                }
            }
        }
        Self {
            blocks: Blocks::new(&cfg),
            merger: Merger::new((*cfg).clone()),
            cfg,
            work: (!workers.is_empty()).then_some(work_tx),
            done: done_rx,
            max_in_flight: workers.len() as u64 + 1,
            workers,
            sent: 0,
            received: 0,
        }
    }

    /// Analyses the next bytes; may wait for workers when enough blocks are in flight.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), AnalyzeError> {
        self.blocks.feed(chunk)?;
        self.dispatch()
    }

    /// [`Blocks::feed_direct`] through this analyzer: `fill(buf, want)` appends about
    /// `want` input bytes to the analyzer's own buffer and returns how many (0 at the end).
    /// `Ok(None)`: use [`ParallelAnalyzer::feed`] for these bytes instead.
    pub fn feed_direct<E: From<AnalyzeError>>(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>, usize) -> Result<usize, E>,
    ) -> Result<Option<usize>, E> {
        let Some(result) = self.blocks.feed_direct(fill) else {
            return Ok(None);
        };
        // Blocks cut before a failed read are analysed like any others.
        self.dispatch()?;
        result.map(Some)
    }

    fn dispatch(&mut self) -> Result<(), AnalyzeError> {
        while let Some(block) = self.blocks.next_block() {
            if self.work.is_none() {
                let part = analyze_block(&self.cfg, &block);
                self.blocks.recycle(block.into_buffer());
                self.merger.push(part);
                continue;
            }
            while self.sent - self.received >= self.max_in_flight {
                self.collect(true)?;
            }
            let sent = self.work.as_ref().map(|w| w.send(block));
            if !matches!(sent, Some(Ok(()))) {
                return Err(lost());
            }
            self.sent += 1;
            self.collect(false)?;
        }
        Ok(())
    }

    /// Merges finished parts; with `wait`, waits for at least one.
    fn collect(&mut self, wait: bool) -> Result<(), AnalyzeError> {
        let mut first = wait;
        loop {
            let outcome = if first {
                first = false;
                self.done.recv().map_err(|_| lost())?
            } else {
                match self.done.try_recv() {
                    Ok(o) => o,
                    Err(_) => return Ok(()),
                }
            };
            self.received += 1;
            match outcome {
                Ok((part, buf)) => {
                    self.blocks.recycle(buf);
                    self.merger.push(part);
                }
                Err(seq) => {
                    return Err(AnalyzeError::Corrupt(format!(
                        "internal error while analysing block {seq}"
                    )))
                }
            }
        }
    }

    /// Line notes merged so far (with `annotate` on).
    pub fn take_notes(&mut self) -> Vec<LineNote> {
        self.merger.take_notes()
    }

    pub fn finish(self) -> Result<Report, AnalyzeError> {
        self.finish_with(false).map(|(r, _, _)| r)
    }

    /// The report, the last line notes and the template table.
    pub fn finish_annotated(
        self,
    ) -> Result<(Report, Vec<LineNote>, Vec<TemplateRow>), AnalyzeError> {
        self.finish_with(true)
    }

    /// Builds the template table (every id, aliases included) only when asked for.
    fn finish_with(
        mut self,
        table: bool,
    ) -> Result<(Report, Vec<LineNote>, Vec<TemplateRow>), AnalyzeError> {
        let totals = self.blocks.finish()?;
        self.dispatch()?;
        while self.received < self.sent {
            self.collect(true)?;
        }
        self.work = None;
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        let notes = self.merger.take_notes();
        let table = if table {
            self.merger.templates()
        } else {
            Vec::new()
        };
        Ok((self.merger.finish(totals), notes, table))
    }
}

fn lost() -> AnalyzeError {
    AnalyzeError::Corrupt("an analysis thread stopped".into())
}

fn worker(
    cfg: &AnalyzerConfig,
    rx: &Mutex<Receiver<Block>>,
    tx: &SyncSender<Outcome>,
    gate: Option<&Gate>,
) {
    loop {
        let block = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(block) = block else { return };
        let slot = gate.map(|g| g());
        let seq = block.seq;
        let outcome = catch_unwind(AssertUnwindSafe(|| analyze_block(cfg, &block)))
            .map(|part| (part, block.into_buffer()))
            .map_err(|_| seq);
        drop(slot);
        if tx.send(outcome).is_err() {
            return;
        }
    }
}
