//! The streaming analyzer: byte chunks of any size in (plain or gzip), a `Report` out.
//! Memory is bounded by the configuration (line cap, template cap, histogram buckets),
//! never by the size of the input.

use super::formats::parse_line;
use super::model::{Format, Level};
use super::parallel::ParallelAnalyzer;
use super::template::{Miner, MinerConfig, TemplateId};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Most histogram buckets before neighbours are merged (the width doubles).
const MAX_BUCKETS: usize = 512;
/// Bytes of a line kept as a template's example.
const EXAMPLE_BYTES: usize = 1024;

#[derive(Debug, Clone)]
pub struct AnalyzerConfig {
    /// Longer lines are truncated to this many bytes (and counted).
    pub max_line_bytes: usize,
    pub miner: MinerConfig,
    /// Templates listed in the report, most frequent first.
    pub top_patterns: usize,
    /// Most bytes a gzip input may decompress to.
    pub max_decompressed_bytes: u64,
    /// Largest decompressed/compressed ratio tolerated (zip bombs run to 1000:1 and more;
    /// real logs compress 5–20:1).
    pub max_ratio: u64,
    /// Year for timestamps that carry none (RFC 3164 syslog, klog).
    pub year: i32,
    /// Size of the blocks of whole lines analysed independently and then merged (the unit
    /// of parallel work); the report does not depend on chunking or thread count.
    pub block_bytes: usize,
    /// Keep per-line notes for `--annotate`.
    pub annotate: bool,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self {
            max_line_bytes: 64 * 1024,
            miner: MinerConfig::default(),
            top_patterns: 50,
            max_decompressed_bytes: 4 << 30,
            max_ratio: 100,
            year: current_year(),
            block_bytes: 4 << 20,
            annotate: false,
        }
    }
}

fn current_year() -> i32 {
    use chrono::Datelike;
    chrono::Utc::now().year()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyzeError {
    #[error("the gzip input decompresses to more than {0} bytes")]
    TooLarge(u64),
    #[error("the gzip input expands more than {0}:1 (a zip bomb?)")]
    Bomb(u64),
    #[error("the gzip input is corrupt: {0}")]
    Corrupt(String),
}

/// Counts for one template.
#[derive(Debug, Clone, Default)]
struct TemplateStats {
    count: u64,
    levels: [u64; 8],
    first_line: u64,
    last_line: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    example: Vec<u8>,
}

/// Timestamp counts in buckets whose width doubles as the covered span grows.
#[derive(Debug, Clone)]
struct Histogram {
    width_ms: i64,
    buckets: BTreeMap<i64, u64>,
    /// The bucket lines are falling into (start, lines) and not yet added to `buckets`:
    /// neighbouring lines nearly always share a bucket, so a line costs a compare, not a
    /// division and a map lookup. [`Histogram::settle`] adds it.
    pending: Option<(i64, u64)>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            width_ms: 1000,
            buckets: BTreeMap::new(),
            pending: None,
        }
    }
}

impl Histogram {
    /// Counts one line's timestamp.
    #[inline]
    fn add_line(&mut self, ts: i64) {
        if let Some((start, n)) = &mut self.pending {
            if ts
                .checked_sub(*start)
                .is_some_and(|d| (0..self.width_ms).contains(&d))
            {
                *n += 1;
                return;
            }
        }
        self.settle();
        self.pending = Some((ts.div_euclid(self.width_ms) * self.width_ms, 1));
    }

    /// Moves the pending bucket into `buckets`; call before reading them.
    fn settle(&mut self) {
        if let Some((start, n)) = self.pending.take() {
            self.add(start, n);
        }
    }

    fn add(&mut self, ts: i64, n: u64) {
        let start = ts.div_euclid(self.width_ms) * self.width_ms;
        *self.buckets.entry(start).or_default() += n;
        while self.buckets.len() > MAX_BUCKETS {
            self.widen();
        }
    }

    /// Adds another histogram's counts (widths are 1 s × a power of two, so buckets nest).
    fn absorb(&mut self, o: &Histogram) {
        debug_assert!(o.pending.is_none(), "absorb a settled histogram");
        while self.width_ms < o.width_ms {
            self.widen();
        }
        for (&start, &n) in &o.buckets {
            self.add(start, n);
        }
    }

    fn widen(&mut self) {
        self.width_ms = self.width_ms.saturating_mul(2);
        let width = self.width_ms;
        let old = std::mem::take(&mut self.buckets);
        for (start, n) in old {
            *self
                .buckets
                .entry(start.div_euclid(width) * width)
                .or_default() += n;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Splitting the input into blocks.

/// A run of whole lines cut from the input: the unit of work, analysed on its own (possibly
/// on another thread) into a [`Part`].
#[derive(Debug)]
pub struct Block {
    /// Position in the input, from 0.
    pub seq: u64,
    data: Vec<u8>,
    /// Lines the splitter already cut at the cap (they arrive here exactly `cap` long).
    truncated: u64,
}

impl Block {
    /// The block's buffer, for [`Blocks::recycle`].
    pub fn into_buffer(self) -> Vec<u8> {
        self.data
    }
}

/// Cuts the decompressed stream into blocks of whole lines. A block ends at the first line
/// end at or after `block_bytes` from its start, a place that depends on the content only —
/// never on how the input was chunked — so any chunking and any number of workers give the
/// same report. The one unfinished line is bounded: once it is longer than the line cap it
/// is cut there and the rest of it dropped, so memory stays near `block_bytes` whatever the
/// input.
#[derive(Debug)]
struct Splitter {
    cap: usize,
    block_bytes: usize,
    max_bytes: u64,
    buf: Vec<u8>,
    /// Inside a line already cut at the cap: drop bytes up to its end.
    skipping: bool,
    truncated: u64,
    bytes: u64,
    seq: u64,
    ready: VecDeque<Block>,
    spare: Vec<Vec<u8>>,
}

/// Buffers kept for reuse (blocks in flight plus a few).
const SPARE_BUFFERS: usize = 8;

/// The least [`Blocks::feed_direct`] asks for, so a read is never tiny.
const DIRECT_MIN: usize = 64 << 10;

impl Splitter {
    fn new(cfg: &AnalyzerConfig) -> Self {
        Self {
            cap: cfg.max_line_bytes.max(1),
            block_bytes: cfg.block_bytes.max(1),
            max_bytes: cfg.max_decompressed_bytes,
            buf: Vec::new(),
            skipping: false,
            truncated: 0,
            bytes: 0,
            seq: 0,
            ready: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    fn push(&mut self, mut chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        if self.skipping {
            match memchr::memchr(b'\n', chunk) {
                None => return,
                Some(i) => {
                    chunk = chunk.get(i + 1..).unwrap_or_default();
                    self.skipping = false;
                }
            }
        }
        self.buf.extend_from_slice(chunk);
        self.cut();
    }

    /// Lets `fill` append input bytes to the block being filled, up to about the size that
    /// completes it (so the copy into the next block at a cut stays small).
    fn append_with<E>(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>, usize) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let want = self
            .block_bytes
            .saturating_sub(self.buf.len())
            .max(DIRECT_MIN);
        let before = self.buf.len();
        let result = fill(&mut self.buf, want);
        // Whatever was appended is input, even if `fill` failed afterwards.
        let n = self.buf.len().saturating_sub(before);
        self.bytes += n as u64;
        self.cut();
        result
    }

    fn cut(&mut self) {
        while self.buf.len() >= self.block_bytes {
            let from = self.block_bytes - 1;
            let tail = self.buf.get(from..).unwrap_or_default();
            if let Some(i) = memchr::memchr(b'\n', tail) {
                self.emit(from + i + 1);
                continue;
            }
            // The line across the boundary has not ended yet: it is the only unfinished one.
            let head = self.buf.get(..from).unwrap_or_default();
            let start = memchr::memrchr(b'\n', head).map_or(0, |i| i + 1);
            // `cap + 1`: a line of exactly `cap` bytes may still end in `\r\n`.
            if self.buf.len() - start > self.cap.saturating_add(1) {
                self.buf.truncate(start + self.cap);
                self.buf.push(b'\n');
                self.truncated += 1;
                self.skipping = true;
                let end = self.buf.len();
                self.emit(end);
            }
            return;
        }
    }

    fn emit(&mut self, end: usize) {
        let mut next = self.spare.pop().unwrap_or_default();
        next.clear();
        next.extend_from_slice(self.buf.get(end..).unwrap_or_default());
        let mut data = std::mem::replace(&mut self.buf, next);
        data.truncate(end);
        self.ready.push_back(Block {
            seq: self.seq,
            data,
            truncated: std::mem::take(&mut self.truncated),
        });
        self.seq += 1;
    }

    /// The end of the input: what is left is the last block.
    fn flush(&mut self) {
        if !self.buf.is_empty() || self.truncated > 0 {
            let end = self.buf.len();
            self.emit(end);
        }
    }
}

impl Write for Splitter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let limit = self.max_bytes;
        if self.bytes.saturating_add(buf.len() as u64) > limit {
            return Err(std::io::Error::other(AnalyzeError::TooLarge(limit)));
        }
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum State {
    /// Fewer than two bytes seen: gzip or text is not known yet.
    Sniffing(Splitter, Vec<u8>),
    Plain(Splitter),
    Gzip {
        decoder: Box<flate2::write::MultiGzDecoder<Splitter>>,
        compressed: u64,
    },
    /// The input has ended.
    Done(Splitter),
    /// A fatal error happened; the analysis is over.
    Failed(AnalyzeError),
}

/// Totals of the input as received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputTotals {
    /// Bytes analysed (after decompression).
    pub bytes: u64,
    /// Bytes received, when the input was gzip.
    pub compressed: Option<u64>,
}

/// Bytes in (plain text, or gzip told apart by its magic bytes and decompressed in a stream
/// with limits on size and ratio), [`Block`]s of whole lines out.
pub struct Blocks {
    state: State,
    max_ratio: u64,
    totals: InputTotals,
}

impl Blocks {
    pub fn new(cfg: &AnalyzerConfig) -> Self {
        Self {
            state: State::Sniffing(Splitter::new(cfg), Vec::new()),
            max_ratio: cfg.max_ratio,
            totals: InputTotals::default(),
        }
    }

    /// Takes the next bytes; complete blocks become available from [`Blocks::next_block`].
    /// After an error every further call returns it again.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), AnalyzeError> {
        if chunk.is_empty() {
            return self.status();
        }
        let state = std::mem::replace(
            &mut self.state,
            State::Failed(AnalyzeError::Corrupt(String::new())),
        );
        self.state = match state {
            State::Sniffing(sp, mut head) => {
                head.extend_from_slice(chunk);
                if head.len() < GZIP_MAGIC.len() {
                    State::Sniffing(sp, head)
                } else if head.starts_with(&GZIP_MAGIC) {
                    let decoder = Box::new(flate2::write::MultiGzDecoder::new(sp));
                    gzip_feed(decoder, &head, 0, self.max_ratio)
                } else {
                    let mut sp = sp;
                    sp.push(&head);
                    State::Plain(sp)
                }
            }
            State::Plain(mut sp) => {
                sp.push(chunk);
                State::Plain(sp)
            }
            State::Gzip {
                decoder,
                compressed,
            } => gzip_feed(decoder, chunk, compressed, self.max_ratio),
            State::Done(sp) => State::Done(sp),
            State::Failed(e) => State::Failed(e),
        };
        self.status()
    }

    /// Like [`Blocks::feed`] for plain text, without its copy: `fill(buf, want)` appends
    /// the next input bytes (about `want` of them; e.g. `Read::take(want)` then
    /// `read_to_end`) straight to the block being filled and returns how many it added (0 at
    /// the end of the input). `None` when the input is not known to be plain text yet, is
    /// gzip, or is inside a line cut at the cap: use `feed` then.
    pub fn feed_direct<E>(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>, usize) -> Result<usize, E>,
    ) -> Option<Result<usize, E>> {
        match &mut self.state {
            State::Plain(sp) if !sp.skipping => Some(sp.append_with(fill)),
            _ => None,
        }
    }

    fn status(&self) -> Result<(), AnalyzeError> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    fn splitter(&mut self) -> Option<&mut Splitter> {
        match &mut self.state {
            State::Sniffing(sp, _) | State::Plain(sp) | State::Done(sp) => Some(sp),
            State::Gzip { decoder, .. } => Some(decoder.get_mut()),
            State::Failed(_) => None,
        }
    }

    /// The next complete block, in input order.
    pub fn next_block(&mut self) -> Option<Block> {
        self.splitter()?.ready.pop_front()
    }

    /// Gives a block's buffer back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if let Some(sp) = self.splitter() {
            if sp.spare.len() < SPARE_BUFFERS {
                sp.spare.push(buf);
            }
        }
    }

    /// The end of the input: the last block becomes available, and the totals are known.
    pub fn finish(&mut self) -> Result<InputTotals, AnalyzeError> {
        let state = std::mem::replace(
            &mut self.state,
            State::Failed(AnalyzeError::Corrupt(String::new())),
        );
        let (mut sp, compressed) = match state {
            // Under two bytes: text.
            State::Sniffing(mut sp, head) => {
                sp.push(&head);
                (sp, None)
            }
            State::Plain(sp) => (sp, None),
            State::Gzip {
                decoder,
                compressed,
            } => match decoder.finish() {
                Ok(sp) => (sp, Some(compressed)),
                Err(e) => {
                    let e = io_to_error(e);
                    self.state = State::Failed(e.clone());
                    return Err(e);
                }
            },
            State::Done(sp) => {
                self.state = State::Done(sp);
                return Ok(self.totals);
            }
            State::Failed(e) => {
                self.state = State::Failed(e.clone());
                return Err(e);
            }
        };
        sp.flush();
        self.totals = InputTotals {
            bytes: sp.bytes,
            compressed,
        };
        self.state = State::Done(sp);
        Ok(self.totals)
    }
}

fn gzip_feed(
    mut decoder: Box<flate2::write::MultiGzDecoder<Splitter>>,
    chunk: &[u8],
    compressed: u64,
    max_ratio: u64,
) -> State {
    let compressed = compressed + chunk.len() as u64;
    let written = decoder
        .write_all(chunk)
        .map_err(io_to_error)
        .and_then(|()| {
            // A little slack so a tiny, highly compressible file is not refused.
            let out = decoder.get_ref().bytes;
            if out > compressed.saturating_mul(max_ratio).saturating_add(1 << 20) {
                Err(AnalyzeError::Bomb(max_ratio))
            } else {
                Ok(())
            }
        });
    match written {
        Ok(()) => State::Gzip {
            decoder,
            compressed,
        },
        Err(e) => State::Failed(e),
    }
}

fn io_to_error(e: std::io::Error) -> AnalyzeError {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<AnalyzeError>()) {
        return inner.clone();
    }
    AnalyzeError::Corrupt(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Analysing a block, merging parts.

/// What `--annotate` prints for one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineNote {
    /// 1-based line number in the whole input.
    pub line: u64,
    pub level: Level,
    pub format: Format,
    /// The template id when the line was counted; it may later become an alias of an
    /// earlier id (see [`TemplateRow::canonical`]).
    pub template_id: TemplateId,
}

/// One template of the finished analysis, aliases included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    pub id: TemplateId,
    /// The id this one was merged into (itself unless it became an alias).
    pub canonical: TemplateId,
    pub template: String,
    /// Lines counted under this id (aliases counted separately from their canonical id).
    pub count: u64,
}

/// The analysis of one block (or, inside [`Merger`], of everything merged so far).
#[derive(Debug)]
pub struct Part {
    pub seq: u64,
    miner: Miner,
    stats: Vec<TemplateStats>,
    levels: [u64; 8],
    formats: [u64; 10],
    lines: u64,
    truncated: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    histogram: Histogram,
    /// Per line when annotating: template id (local to this part), level, format.
    notes: Vec<(TemplateId, Level, Format)>,
}

impl Part {
    fn new(seq: u64, cfg: &AnalyzerConfig) -> Self {
        Self {
            seq,
            miner: Miner::new(cfg.miner.clone()),
            stats: Vec::new(),
            levels: [0; 8],
            formats: [0; 10],
            lines: 0,
            truncated: 0,
            first_ts: None,
            last_ts: None,
            histogram: Histogram::default(),
            notes: Vec::new(),
        }
    }

    fn stats_mut(&mut self, id: TemplateId) -> &mut TemplateStats {
        let id = id as usize;
        if self.stats.len() <= id {
            self.stats.resize_with(id + 1, TemplateStats::default);
        }
        &mut self.stats[id]
    }

    fn line(&mut self, cfg: &AnalyzerConfig, raw: &[u8], scratch: &mut Vec<u8>) {
        // The cap applies to the line without its `\r`, so CRLF and LF files count alike.
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = match line.get(..cfg.max_line_bytes.max(1)) {
            Some(cut) if cut.len() < line.len() => {
                self.truncated += 1;
                cut
            }
            _ => line,
        };
        self.lines += 1;
        let parsed = parse_line(line, cfg.year);
        self.levels[parsed.level.index()] += 1;
        self.formats[parsed.format.index()] += 1;
        let id = self.miner.add(parsed.full_message(scratch));
        if cfg.annotate {
            self.notes.push((id, parsed.level, parsed.format));
        }
        let n = self.lines;
        let s = self.stats_mut(id);
        if s.count == 0 {
            s.first_line = n;
            s.example = line.get(..EXAMPLE_BYTES).unwrap_or(line).to_vec();
        }
        s.count += 1;
        s.levels[parsed.level.index()] += 1;
        s.last_line = n;
        if let Some(ts) = parsed.ts_ms {
            s.first_ts.get_or_insert(ts);
            s.last_ts = Some(ts);
            self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
            self.histogram.add_line(ts);
        }
    }
}

/// Analyses one block: pure, so blocks can be analysed on any thread in any order.
pub fn analyze_block(cfg: &AnalyzerConfig, block: &Block) -> Part {
    let mut part = Part::new(block.seq, cfg);
    part.truncated = block.truncated;
    let mut scratch = Vec::new();
    let data = block.data.as_slice();
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', data) {
        part.line(cfg, data.get(start..nl).unwrap_or_default(), &mut scratch);
        start = nl + 1;
    }
    if start < data.len() {
        part.line(cfg, data.get(start..).unwrap_or_default(), &mut scratch);
    }
    part.histogram.settle();
    part
}

/// Folds parts, in input order whatever order they arrive in, into one analysis: templates
/// through [`Miner::merge`] (deterministic), counts and line numbers offset by the lines
/// before each part.
pub struct Merger {
    cfg: AnalyzerConfig,
    acc: Part,
    next: u64,
    waiting: BTreeMap<u64, Part>,
    notes: Vec<LineNote>,
}

impl Merger {
    pub fn new(cfg: AnalyzerConfig) -> Self {
        let acc = Part::new(0, &cfg);
        Self {
            cfg,
            acc,
            next: 0,
            waiting: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    pub fn push(&mut self, part: Part) {
        self.waiting.insert(part.seq, part);
        while let Some(p) = self.waiting.remove(&self.next) {
            self.absorb(p);
            self.next += 1;
        }
    }

    fn absorb(&mut self, mut p: Part) {
        p.histogram.settle();
        let map = self.acc.miner.merge(&p.miner);
        let offset = self.acc.lines;
        for (local, st) in p.stats.iter().enumerate() {
            if st.count == 0 {
                continue;
            }
            if let Some(&g) = map.get(local) {
                self.acc.stats_mut(g).absorb(st, offset);
            }
        }
        let acc = &mut self.acc;
        for (a, b) in acc.levels.iter_mut().zip(p.levels) {
            *a += b;
        }
        for (a, b) in acc.formats.iter_mut().zip(p.formats) {
            *a += b;
        }
        acc.lines += p.lines;
        acc.truncated += p.truncated;
        acc.first_ts = min_opt(acc.first_ts, p.first_ts);
        acc.last_ts = acc.last_ts.max(p.last_ts);
        acc.histogram.absorb(&p.histogram);
        for (i, (local, level, format)) in p.notes.into_iter().enumerate() {
            self.notes.push(LineNote {
                line: offset + i as u64 + 1,
                level,
                format,
                template_id: map.get(local as usize).copied().unwrap_or(local),
            });
        }
    }

    /// Line notes of the parts merged since the last call (annotating only).
    pub fn take_notes(&mut self) -> Vec<LineNote> {
        std::mem::take(&mut self.notes)
    }

    /// Every template id with its canonical id, text and own count.
    pub fn templates(&self) -> Vec<TemplateRow> {
        (0..self.acc.stats.len())
            .map(|i| {
                let id = i as TemplateId;
                TemplateRow {
                    id,
                    canonical: self.acc.miner.canonical(id),
                    template: self.acc.miner.template(id).into_owned(),
                    count: self.acc.stats[i].count,
                }
            })
            .filter(|r| r.count > 0)
            .collect()
    }

    pub fn finish(self, totals: InputTotals) -> Report {
        report(&self.cfg, self.acc, totals)
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Feed chunks, then `finish`: [`Blocks`] → [`analyze_block`] → [`Merger`] on the caller's
/// thread (see [`ParallelAnalyzer`] for worker threads; both give the same report).
pub struct Analyzer(ParallelAnalyzer);

impl Analyzer {
    pub fn new(cfg: AnalyzerConfig) -> Self {
        Self(ParallelAnalyzer::new(cfg, 0, None))
    }

    /// Analyses the next bytes. After an error every further call returns it again.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), AnalyzeError> {
        self.0.feed(chunk)
    }

    /// Line notes so far (with `annotate` on).
    pub fn take_notes(&mut self) -> Vec<LineNote> {
        self.0.take_notes()
    }

    pub fn finish(self) -> Result<Report, AnalyzeError> {
        self.0.finish()
    }

    /// The report, the last line notes and the template table.
    pub fn finish_annotated(
        self,
    ) -> Result<(Report, Vec<LineNote>, Vec<TemplateRow>), AnalyzeError> {
        self.0.finish_annotated()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PatternReport {
    pub id: TemplateId,
    pub template: String,
    pub count: u64,
    /// Non-zero level counts.
    pub levels: BTreeMap<&'static str, u64>,
    pub first_line: u64,
    pub last_line: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    /// The first line of this template (truncated to 1 KiB, invalid UTF-8 replaced).
    pub example: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistogramReport {
    pub bucket_secs: f64,
    /// `[bucket start (RFC 3339), lines]`, ascending, gaps included as zeros.
    pub buckets: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimeRangeReport {
    pub first: String,
    pub last: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub lines: u64,
    /// Bytes analysed (after decompression).
    pub bytes: u64,
    /// Bytes received, when the input was gzip.
    pub compressed_bytes: Option<u64>,
    /// Every level, zeros included.
    pub levels: BTreeMap<&'static str, u64>,
    /// Formats seen, with their line counts.
    pub formats: BTreeMap<&'static str, u64>,
    pub templates: usize,
    /// The most frequent templates, most frequent first.
    pub patterns: Vec<PatternReport>,
    /// The templates with ERROR or CRITICAL lines, most such lines first (text only).
    pub top_errors: Vec<String>,
    pub histogram: Option<HistogramReport>,
    pub time_range: Option<TimeRangeReport>,
    pub truncated_lines: u64,
}

impl TemplateStats {
    /// Folds another template's counts into this one (ids the miner merged, or a later part
    /// whose line numbers start after `line_offset` lines).
    fn absorb(&mut self, o: &TemplateStats, line_offset: u64) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 || o.first_line + line_offset < self.first_line {
            self.first_line = o.first_line + line_offset;
            self.example = o.example.clone();
        }
        self.count += o.count;
        for (a, b) in self.levels.iter_mut().zip(o.levels.iter()) {
            *a += b;
        }
        self.last_line = self.last_line.max(o.last_line + line_offset);
        self.first_ts = min_opt(self.first_ts, o.first_ts);
        self.last_ts = self.last_ts.max(o.last_ts);
    }
}

fn report(cfg: &AnalyzerConfig, mut core: Part, totals: InputTotals) -> Report {
    // The miner may have merged templates after lines were counted under the later id:
    // fold every id into the one that survived.
    let mut merged: Vec<TemplateStats> = vec![TemplateStats::default(); core.stats.len()];
    for (i, s) in core.stats.iter().enumerate() {
        let c = core.miner.canonical(i as TemplateId) as usize;
        if let Some(target) = merged.get_mut(c) {
            target.absorb(s, 0);
        }
    }
    core.stats = merged;
    let fmt = crate::domain::format_rfc3339;
    let levels = Level::ALL
        .iter()
        .map(|l| (l.as_str(), core.levels[l.index()]))
        .collect();
    let formats = Format::ALL
        .iter()
        .filter(|f| core.formats[f.index()] > 0)
        .map(|f| (f.as_str(), core.formats[f.index()]))
        .collect();
    let mut order: Vec<usize> = (0..core.stats.len())
        .filter(|&i| core.stats[i].count > 0)
        .collect();
    // Most frequent first; ties in order of first appearance, so reports are stable.
    order.sort_by(|&a, &b| {
        let (sa, sb) = (&core.stats[a], &core.stats[b]);
        sb.count
            .cmp(&sa.count)
            .then(sa.first_line.cmp(&sb.first_line))
    });
    let pattern = |i: usize| {
        let s = &core.stats[i];
        PatternReport {
            id: i as TemplateId,
            template: core.miner.template(i as TemplateId).into_owned(),
            count: s.count,
            levels: Level::ALL
                .iter()
                .filter(|l| s.levels[l.index()] > 0)
                .map(|l| (l.as_str(), s.levels[l.index()]))
                .collect(),
            first_line: s.first_line,
            last_line: s.last_line,
            first_ts: s.first_ts.map(fmt),
            last_ts: s.last_ts.map(fmt),
            example: String::from_utf8_lossy(&s.example).into_owned(),
        }
    };
    let patterns = order
        .iter()
        .take(cfg.top_patterns)
        .map(|&i| pattern(i))
        .collect();
    let bad =
        |s: &TemplateStats| s.levels[Level::Error.index()] + s.levels[Level::Critical.index()];
    let mut errors: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| bad(&core.stats[i]) > 0)
        .collect();
    errors.sort_by(|&a, &b| {
        let (sa, sb) = (&core.stats[a], &core.stats[b]);
        bad(sb)
            .cmp(&bad(sa))
            .then(sa.first_line.cmp(&sb.first_line))
    });
    let top_errors = errors
        .iter()
        .take(cfg.top_patterns)
        .map(|&i| core.miner.template(i as TemplateId).into_owned())
        .collect();
    let histogram = histogram_report(&core.histogram);
    let time_range = match (core.first_ts, core.last_ts) {
        (Some(f), Some(l)) => Some(TimeRangeReport {
            first: fmt(f),
            last: fmt(l),
        }),
        _ => None,
    };
    Report {
        lines: core.lines,
        bytes: totals.bytes,
        compressed_bytes: totals.compressed,
        levels,
        formats,
        templates: core.miner.len(),
        patterns,
        top_errors,
        histogram,
        time_range,
        truncated_lines: core.truncated,
    }
}

/// About 60 buckets over the covered span, gaps as zeros.
fn histogram_report(h: &Histogram) -> Option<HistogramReport> {
    let (&first, _) = h.buckets.first_key_value()?;
    let (&last, _) = h.buckets.last_key_value()?;
    let span = last - first + h.width_ms;
    // A width of a "round" number of base widths giving at most 60 buckets.
    let mut width = h.width_ms;
    while span / width > 60 {
        width = width.saturating_mul(2);
    }
    let mut out: BTreeMap<i64, u64> = BTreeMap::new();
    let origin = first.div_euclid(width) * width;
    let mut t = origin;
    while t <= last {
        out.insert(t, 0);
        t += width;
    }
    for (&start, &n) in &h.buckets {
        *out.entry(start.div_euclid(width) * width).or_default() += n;
    }
    Some(HistogramReport {
        bucket_secs: width as f64 / 1000.0,
        buckets: out
            .into_iter()
            .map(|(t, n)| (crate::domain::format_rfc3339(t), n))
            .collect(),
    })
}

/// Analyses a whole buffer (tests, small inputs).
pub fn analyze_bytes(cfg: AnalyzerConfig, bytes: &[u8]) -> Result<Report, AnalyzeError> {
    let mut a = Analyzer::new(cfg);
    a.feed(bytes)?;
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> AnalyzerConfig {
        AnalyzerConfig {
            year: 2026,
            ..AnalyzerConfig::default()
        }
    }

    fn level(r: &Report, l: Level) -> u64 {
        r.levels[l.as_str()]
    }

    const TEXT: &str = "ERROR disk 1 failed\r\nINFO started 2\nWARN slow 3 ms\nERROR disk 2 failed\nno level here\nINFO started 7";

    #[test]
    fn chunking_never_changes_the_result() {
        let whole = analyze_bytes(cfg(), TEXT.as_bytes()).unwrap();
        assert_eq!(whole.lines, 6);
        assert_eq!(whole.bytes, TEXT.len() as u64);
        assert_eq!(level(&whole, Level::Error), 2);
        assert_eq!(level(&whole, Level::Info), 2);
        assert_eq!(level(&whole, Level::Warn), 1);
        assert_eq!(level(&whole, Level::Unknown), 1);
        for size in 1..TEXT.len() {
            let mut a = Analyzer::new(cfg());
            for chunk in TEXT.as_bytes().chunks(size) {
                a.feed(chunk).unwrap();
            }
            assert_eq!(a.finish().unwrap(), whole, "chunk size {size}");
        }
    }

    #[test]
    fn carriage_returns_are_not_part_of_the_line() {
        let r = analyze_bytes(cfg(), b"ERROR a 1\r\nERROR a 2\r\n").unwrap();
        assert_eq!(r.lines, 2);
        assert!(!r.patterns[0].example.contains('\r'));
    }

    fn small_blocks(block_bytes: usize) -> AnalyzerConfig {
        AnalyzerConfig {
            block_bytes,
            ..cfg()
        }
    }

    /// A few hundred lines of every format, so small blocks hold many templates each.
    fn mixed(bytes: u64) -> Vec<u8> {
        let mut log = Vec::new();
        crate::logs::gen::generate(
            &crate::logs::gen::GenConfig {
                seed: 5,
                target_bytes: bytes,
                year: 2026,
            },
            &mut log,
        )
        .unwrap();
        log
    }

    #[test]
    fn blocks_are_cut_by_content_so_chunking_never_changes_the_report() {
        let log = mixed(200_000);
        for block in [1, 97, 4096, 65_536] {
            let whole = analyze_bytes(small_blocks(block), &log).unwrap();
            for size in [1, 13, 1000, 65_537] {
                let mut a = Analyzer::new(small_blocks(block));
                for chunk in log.chunks(size) {
                    a.feed(chunk).unwrap();
                }
                assert_eq!(a.finish().unwrap(), whole, "block {block} chunk {size}");
            }
        }
    }

    /// Feeding plain text straight into the blocks (the CLI's path) gives the same report as
    /// `feed`, whatever the read sizes, including across lines cut at the cap.
    #[test]
    fn direct_feeding_gives_the_same_report() {
        use crate::logs::parallel::ParallelAnalyzer;
        let mut log = mixed(150_000);
        // An overlong line in the middle, so the splitter skips (and direct feeding pauses).
        log.extend(std::iter::repeat_n(b'x', 5000));
        log.extend_from_slice(b"\nERROR tail 1\n");
        log.extend_from_slice(&mixed(20_000));
        for (block, cap, threads) in [(4096, 1000, 0), (65_536, 300, 2), (1, 70_000, 1)] {
            let cfg = AnalyzerConfig {
                max_line_bytes: cap,
                ..small_blocks(block)
            };
            let whole = analyze_bytes(cfg.clone(), &log).unwrap();
            for max_read in [1usize, 777, 100_000] {
                let mut a = ParallelAnalyzer::new(cfg.clone(), threads, None);
                let mut rest: &[u8] = &log;
                let mut direct = 0;
                while !rest.is_empty() {
                    let used = a
                        .feed_direct(
                            |buf: &mut Vec<u8>, want: usize| -> Result<usize, AnalyzeError> {
                                assert!(want >= DIRECT_MIN);
                                let n = want.min(max_read).min(rest.len());
                                buf.extend_from_slice(&rest[..n]);
                                rest = &rest[n..];
                                Ok(n)
                            },
                        )
                        .unwrap();
                    if let Some(n) = used {
                        direct += n;
                    } else {
                        let n = max_read.min(rest.len());
                        a.feed(&rest[..n]).unwrap();
                        rest = &rest[n..];
                    }
                }
                // The first read goes through `feed` (the input kind is not known yet).
                let expected = (log.len() - max_read) / 2;
                assert!(
                    direct > expected,
                    "{direct} bytes direct: block {block} read {max_read}"
                );
                let r = a.finish().unwrap();
                assert_eq!(r, whole, "block {block} cap {cap} read {max_read}");
            }
        }
    }

    #[test]
    fn block_size_changes_no_count() {
        let log = mixed(300_000);
        let one = analyze_bytes(small_blocks(usize::MAX), &log).unwrap();
        for block in [1, 500, 8192, 100_000] {
            let r = analyze_bytes(small_blocks(block), &log).unwrap();
            assert_eq!(
                (r.lines, r.bytes, &r.levels, &r.formats, &r.time_range),
                (
                    one.lines,
                    one.bytes,
                    &one.levels,
                    &one.formats,
                    &one.time_range
                ),
                "block {block}"
            );
            assert_eq!(r.histogram, one.histogram, "block {block}");
            let total: u64 = r.patterns.iter().map(|p| p.count).sum();
            assert!(total <= r.lines);
            // Line numbers are offset across blocks: first lines are real line numbers.
            for p in &r.patterns {
                assert!(p.first_line >= 1 && p.last_line <= r.lines && p.first_line <= p.last_line);
                let line = log
                    .split(|&b| b == b'\n')
                    .nth(p.first_line as usize - 1)
                    .unwrap();
                assert!(line.starts_with(p.example.as_bytes()), "block {block}");
            }
        }
    }

    #[test]
    fn threads_never_change_the_report() {
        let log = mixed(400_000);
        for block in [4096, 50_000] {
            let inline = analyze_bytes(small_blocks(block), &log).unwrap();
            for threads in 1..=3 {
                let mut p = crate::logs::ParallelAnalyzer::new(small_blocks(block), threads, None);
                for chunk in log.chunks(10_000) {
                    p.feed(chunk).unwrap();
                }
                assert_eq!(
                    p.finish().unwrap(),
                    inline,
                    "block {block} threads {threads}"
                );
            }
        }
    }

    #[test]
    fn annotations_number_every_line_and_name_known_templates() {
        let log = mixed(100_000);
        let c = AnalyzerConfig {
            annotate: true,
            ..small_blocks(10_000)
        };
        let mut p = crate::logs::ParallelAnalyzer::new(c, 2, None);
        let mut notes = Vec::new();
        for chunk in log.chunks(7_000) {
            p.feed(chunk).unwrap();
            notes.extend(p.take_notes());
        }
        let (report, rest, table) = p.finish_annotated().unwrap();
        notes.extend(rest);
        assert_eq!(notes.len() as u64, report.lines);
        for (i, n) in notes.iter().enumerate() {
            assert_eq!(n.line, i as u64 + 1);
            assert!(table.iter().any(|r| r.id == n.template_id));
        }
        let errors = notes.iter().filter(|n| n.level == Level::Error).count() as u64;
        assert_eq!(errors, level(&report, Level::Error));
        // Each row's count is what the notes say for that id.
        for row in &table {
            let n = notes.iter().filter(|n| n.template_id == row.id).count() as u64;
            assert_eq!(n, row.count, "template {}", row.id);
        }
    }

    #[test]
    fn an_overlong_line_across_block_boundaries_is_cut_once() {
        let mut input = b"INFO first\nERROR ".to_vec();
        input.extend(std::iter::repeat_n(b'y', 50_000));
        input.extend_from_slice(b"\nWARN after\n");
        for block in [1, 20, 1000, 30_000, 100_000] {
            for size in [1, 333, 4096, input.len()] {
                let c = AnalyzerConfig {
                    max_line_bytes: 1000,
                    ..small_blocks(block)
                };
                let mut a = Analyzer::new(c);
                for chunk in input.chunks(size) {
                    a.feed(chunk).unwrap();
                }
                let r = a.finish().unwrap();
                assert_eq!(
                    (r.lines, r.truncated_lines, r.bytes),
                    (3, 1, input.len() as u64),
                    "block {block} chunk {size}"
                );
                assert_eq!(
                    (
                        level(&r, Level::Info),
                        level(&r, Level::Error),
                        level(&r, Level::Warn)
                    ),
                    (1, 1, 1)
                );
            }
        }
    }

    #[test]
    fn overlong_lines_are_truncated_and_counted() {
        let c = AnalyzerConfig {
            max_line_bytes: 100,
            ..cfg()
        };
        let mut input = b"ERROR ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10_000));
        input.extend_from_slice(b"\nINFO short\n");
        for size in [1, 7, 64, 100, 101, 4096, input.len()] {
            let mut a = Analyzer::new(c.clone());
            for chunk in input.chunks(size) {
                a.feed(chunk).unwrap();
            }
            let r = a.finish().unwrap();
            assert_eq!((r.lines, r.truncated_lines), (2, 1), "chunk size {size}");
            assert_eq!(level(&r, Level::Error), 1);
            assert!(r.patterns.iter().all(|p| p.example.len() <= 100));
        }
    }

    #[test]
    fn empty_and_tiny_inputs() {
        let r = analyze_bytes(cfg(), b"").unwrap();
        assert_eq!((r.lines, r.bytes), (0, 0));
        assert!(r.histogram.is_none() && r.time_range.is_none());
        let r = analyze_bytes(cfg(), b"x").unwrap();
        assert_eq!(r.lines, 1);
        let r = analyze_bytes(cfg(), b"\n\n").unwrap();
        assert_eq!(r.lines, 2);
    }

    #[test]
    fn invalid_utf8_and_nul_bytes_are_fine() {
        let r = analyze_bytes(cfg(), b"ERROR \xff\xfe bad \x00 bytes 12\nINFO ok\n").unwrap();
        assert_eq!(r.lines, 2);
        assert_eq!(level(&r, Level::Error), 1);
        assert!(r.patterns.iter().any(|p| p.example.contains('\u{fffd}')));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_detected_and_streamed() {
        let plain = analyze_bytes(cfg(), TEXT.as_bytes()).unwrap();
        let gz = gzip(TEXT.as_bytes());
        for size in [1, 2, 3, 10, gz.len()] {
            let mut a = Analyzer::new(cfg());
            for chunk in gz.chunks(size) {
                a.feed(chunk).unwrap();
            }
            let r = a.finish().unwrap();
            assert_eq!(r.compressed_bytes, Some(gz.len() as u64));
            assert_eq!(r.levels, plain.levels, "chunk size {size}");
            assert_eq!(r.lines, plain.lines);
        }
        // Concatenated members (`cat a.gz b.gz`) are one stream.
        let mut two = gzip(b"ERROR x 1\n");
        two.extend(gzip(b"ERROR x 2\n"));
        assert_eq!(analyze_bytes(cfg(), &two).unwrap().lines, 2);
    }

    #[test]
    fn a_zip_bomb_is_refused_early() {
        // 64 MiB of zeros compresses to about 64 KiB: a 1000:1 ratio.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![0u8; 1 << 20];
        for _ in 0..64 {
            e.write_all(&block).unwrap();
        }
        let bomb = e.finish().unwrap();
        let mut a = Analyzer::new(cfg());
        let mut fed = 0;
        let mut err = None;
        for chunk in bomb.chunks(4096) {
            fed += chunk.len();
            if let Err(e) = a.feed(chunk) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(AnalyzeError::Bomb(100)));
        assert!(
            fed < bomb.len(),
            "stopped before the end ({fed} of {} bytes)",
            bomb.len()
        );
        assert_eq!(a.finish().unwrap_err(), AnalyzeError::Bomb(100));
        // And a hard cap on the decompressed size, whatever the ratio.
        let c = AnalyzerConfig {
            max_decompressed_bytes: 1000,
            ..cfg()
        };
        let gz = gzip(&vec![b'a'; 5000]);
        assert_eq!(
            analyze_bytes(c, &gz).unwrap_err(),
            AnalyzeError::TooLarge(1000)
        );
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let mut gz = gzip(TEXT.as_bytes());
        let n = gz.len();
        gz[n / 2] ^= 0xff;
        gz.truncate(n - 3);
        assert!(matches!(
            analyze_bytes(cfg(), &gz),
            Err(AnalyzeError::Corrupt(_))
        ));
    }

    #[test]
    fn histogram_stays_bounded() {
        let mut h = Histogram::default();
        for i in 0..100_000i64 {
            h.add(i * 37_000, 1);
        }
        assert!(h.buckets.len() <= MAX_BUCKETS);
        assert_eq!(h.buckets.values().sum::<u64>(), 100_000);
        let r = histogram_report(&h).unwrap();
        assert!(r.buckets.len() <= 61, "{}", r.buckets.len());
        assert_eq!(r.buckets.iter().map(|b| b.1).sum::<u64>(), 100_000);
    }

    proptest! {
        #[test]
        fn never_panics_and_counts_every_line(data in proptest::collection::vec(any::<u8>(), 0..2048), size in 1usize..300) {
            let c = AnalyzerConfig { max_line_bytes: 64, ..cfg() };
            let mut a = Analyzer::new(c);
            let mut ok = true;
            for chunk in data.chunks(size) {
                ok &= a.feed(chunk).is_ok();
            }
            if let (true, Ok(r)) = (ok, a.finish()) {
                if !data.starts_with(&GZIP_MAGIC) {
                    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
                    let tail = u64::from(!data.is_empty() && !data.ends_with(b"\n"));
                    prop_assert_eq!(r.lines, newlines + tail);
                    prop_assert_eq!(r.levels.values().sum::<u64>(), r.lines);
                }
            }
        }
    }
}

/// The analyzer against the project's own generator: levels and formats must equal the
/// generator's truth exactly.
#[cfg(test)]
mod generated {
    use super::*;
    use crate::logs::gen::{generate, normalize_template, GenConfig};

    #[test]
    fn levels_and_formats_match_the_generators_truth_exactly() {
        // The last file is big enough for every variable of the error templates to show
        // the miner its 4 distinct values (see `template::MIN_DISTINCT_VALUES`).
        for (seed, size) in [(1u64, 600_000), (42, 600_000), (7777, 4_000_000)] {
            let cfg = GenConfig {
                seed,
                target_bytes: size,
                year: 2026,
            };
            let mut log = Vec::new();
            let truth = generate(&cfg, &mut log).unwrap();
            let mut a = Analyzer::new(AnalyzerConfig {
                year: 2026,
                ..AnalyzerConfig::default()
            });
            // Odd chunk sizes, so lines straddle chunks.
            for chunk in log.chunks(65_537) {
                a.feed(chunk).unwrap();
            }
            let r = a.finish().unwrap();
            assert_eq!(r.lines, truth.lines, "seed {seed}");
            assert_eq!(r.bytes, truth.bytes, "seed {seed}");
            for (level, n) in &truth.levels {
                assert_eq!(
                    r.levels.get(level.as_str()).copied().unwrap_or(0),
                    *n,
                    "seed {seed} level {level}"
                );
            }
            for (format, n) in &truth.formats {
                assert_eq!(
                    r.formats.get(format.as_str()).copied().unwrap_or(0),
                    *n,
                    "seed {seed} format {format}"
                );
            }
            assert_eq!(
                r.time_range.as_ref().map(|t| t.first.clone()),
                truth.first_ts_ms.map(crate::domain::format_rfc3339)
            );
            if size < 4_000_000 {
                continue;
            }
            // Error templates: one pattern per generator template, with its exact count — no
            // template split by a variable value, no two templates merged.
            let mut found: BTreeMap<String, u64> = BTreeMap::new();
            for p in &r.patterns {
                let errors = p.levels.get("ERROR").copied().unwrap_or(0)
                    + p.levels.get("CRITICAL").copied().unwrap_or(0);
                if errors == 0 {
                    continue;
                }
                // A template seen with only one value of a variable (`for user carol`) cannot
                // know it is variable yet: it may be a specialisation of the truth, not wider.
                let text = normalize_template(&p.template);
                let words: Vec<&str> = text.split(' ').collect();
                let covers = |t: &str| {
                    let tw: Vec<&str> = t.split(' ').collect();
                    tw.len() == words.len()
                        && tw.iter().zip(&words).all(|(t, w)| *t == "<*>" || t == w)
                };
                let keys: Vec<_> = truth
                    .template_texts
                    .iter()
                    .filter(|(_, t)| covers(t))
                    .map(|(k, _)| k.clone())
                    .collect();
                assert_eq!(
                    keys.len(),
                    1,
                    "seed {seed}: pattern {:?} ({text})",
                    p.template
                );
                let prev = found.insert(keys[0].clone(), errors);
                assert!(prev.is_none(), "seed {seed}: {} split in two", keys[0]);
            }
            assert_eq!(found, truth.error_templates, "seed {seed}");
        }
    }
}
