//! The streaming analyzer: byte chunks of any size in (plain or gzip), a `Report` out.
//! Memory is bounded by the configuration (line cap, template cap, histogram buckets),
//! never by the size of the input.

use super::formats::parse_line;
use super::model::{Format, Level};
use super::template::{Miner, MinerConfig, TemplateId};
use serde::Serialize;
use std::collections::BTreeMap;
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
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            width_ms: 1000,
            buckets: BTreeMap::new(),
        }
    }
}

impl Histogram {
    fn add(&mut self, ts: i64, n: u64) {
        let start = ts.div_euclid(self.width_ms) * self.width_ms;
        *self.buckets.entry(start).or_default() += n;
        while self.buckets.len() > MAX_BUCKETS {
            self.widen();
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

/// The line processor: what a plain input is fed to, and what a gzip decoder writes into.
#[derive(Debug)]
struct Core {
    cfg: AnalyzerConfig,
    miner: Miner,
    stats: Vec<TemplateStats>,
    levels: [u64; 8],
    formats: [u64; 10],
    lines: u64,
    bytes: u64,
    truncated_lines: u64,
    /// The unfinished line carried from the previous chunk.
    partial: Vec<u8>,
    /// The current line is over the cap: skip to its end.
    skipping: bool,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    histogram: Histogram,
    /// Reused to join a message with its tail.
    scratch: Vec<u8>,
}

impl Core {
    fn new(cfg: AnalyzerConfig) -> Self {
        Self {
            miner: Miner::new(cfg.miner.clone()),
            cfg,
            stats: Vec::new(),
            levels: [0; 8],
            formats: [0; 10],
            lines: 0,
            bytes: 0,
            truncated_lines: 0,
            partial: Vec::new(),
            skipping: false,
            first_ts: None,
            last_ts: None,
            histogram: Histogram::default(),
            scratch: Vec::new(),
        }
    }

    /// Splits on `\n`; complete lines go straight from the chunk, the tail waits.
    fn feed(&mut self, mut chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        while let Some(nl) = memchr(b'\n', chunk) {
            let (line, rest) = chunk.split_at(nl);
            chunk = rest.get(1..).unwrap_or(&[]);
            if self.partial.is_empty() && !self.skipping {
                let cap = self.cfg.max_line_bytes;
                if line.len() > cap {
                    self.truncated_lines += 1;
                    self.line(line.get(..cap).unwrap_or(line));
                } else {
                    self.line(line);
                }
            } else {
                self.append(line);
                let held = std::mem::take(&mut self.partial);
                self.line(&held);
                self.partial = held;
                self.partial.clear();
                self.skipping = false;
            }
        }
        if !chunk.is_empty() {
            self.append(chunk);
        }
    }

    /// Adds bytes to the held line, up to the cap.
    fn append(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        let room = self.cfg.max_line_bytes.saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.partial
                .extend_from_slice(bytes.get(..room).unwrap_or(bytes));
            self.truncated_lines += 1;
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    fn line(&mut self, raw: &[u8]) {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        self.lines += 1;
        let parsed = parse_line(line, self.cfg.year);
        let level = parsed.level.index();
        self.levels[level] += 1;
        self.formats[parsed.format.index()] += 1;
        let id = self.miner.add(parsed.full_message(&mut self.scratch)) as usize;
        if self.stats.len() <= id {
            self.stats.resize_with(id + 1, TemplateStats::default);
        }
        let n = self.lines;
        let s = &mut self.stats[id];
        if s.count == 0 {
            s.first_line = n;
            s.example = line.get(..EXAMPLE_BYTES).unwrap_or(line).to_vec();
        }
        s.count += 1;
        s.levels[level] += 1;
        s.last_line = n;
        if let Some(ts) = parsed.ts_ms {
            s.first_ts.get_or_insert(ts);
            s.last_ts = Some(ts);
            self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
            self.histogram.add(ts, 1);
        }
    }

    /// The last line, when the input does not end in a newline.
    fn flush(&mut self) {
        if !self.partial.is_empty() || self.skipping {
            let held = std::mem::take(&mut self.partial);
            self.line(&held);
            self.skipping = false;
        }
    }
}

impl Write for Core {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let limit = self.cfg.max_decompressed_bytes;
        if self.bytes.saturating_add(buf.len() as u64) > limit {
            return Err(std::io::Error::other(AnalyzeError::TooLarge(limit)));
        }
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

enum Input {
    /// Fewer than two bytes seen: gzip or text is not known yet.
    Sniffing(Core, Vec<u8>),
    Plain(Core),
    Gzip {
        decoder: flate2::write::MultiGzDecoder<Core>,
        compressed: u64,
    },
    /// A fatal error happened; the analysis is over.
    Failed(AnalyzeError),
}

/// Feed chunks, then `finish`.
pub struct Analyzer {
    input: Input,
}

impl Analyzer {
    pub fn new(cfg: AnalyzerConfig) -> Self {
        Self {
            input: Input::Sniffing(Core::new(cfg), Vec::new()),
        }
    }

    /// Analyses the next bytes. After an error every further call returns it again.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), AnalyzeError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let input = std::mem::replace(
            &mut self.input,
            Input::Failed(AnalyzeError::Corrupt(String::new())),
        );
        self.input = match input {
            Input::Sniffing(core, mut head) => {
                head.extend_from_slice(chunk);
                if head.len() < GZIP_MAGIC.len() {
                    Input::Sniffing(core, head)
                } else {
                    start(core, &head)
                }
            }
            Input::Plain(mut core) => {
                core.feed(chunk);
                Input::Plain(core)
            }
            Input::Gzip {
                decoder,
                compressed,
            } => gzip_feed(decoder, chunk, compressed),
            Input::Failed(e) => Input::Failed(e),
        };
        match &self.input {
            Input::Failed(e) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    pub fn finish(self) -> Result<Report, AnalyzeError> {
        let (mut core, compressed) = match self.input {
            // Under two bytes: text.
            Input::Sniffing(mut core, head) => {
                core.feed(&head);
                (core, None)
            }
            Input::Plain(core) => (core, None),
            Input::Gzip {
                decoder,
                compressed,
            } => match decoder.finish() {
                Ok(core) => (core, Some(compressed)),
                Err(e) => return Err(io_to_error(e)),
            },
            Input::Failed(e) => return Err(e),
        };
        core.flush();
        Ok(report(core, compressed))
    }
}

/// Decides between text and gzip on the first bytes and feeds them.
fn start(mut core: Core, head: &[u8]) -> Input {
    if head.starts_with(&GZIP_MAGIC) {
        gzip_feed(flate2::write::MultiGzDecoder::new(core), head, 0)
    } else {
        core.feed(head);
        Input::Plain(core)
    }
}

fn gzip_feed(
    mut decoder: flate2::write::MultiGzDecoder<Core>,
    chunk: &[u8],
    compressed: u64,
) -> Input {
    let compressed = compressed + chunk.len() as u64;
    match gzip_write(&mut decoder, chunk, compressed) {
        Ok(()) => Input::Gzip {
            decoder,
            compressed,
        },
        Err(e) => Input::Failed(e),
    }
}

fn gzip_write(
    decoder: &mut flate2::write::MultiGzDecoder<Core>,
    chunk: &[u8],
    compressed: u64,
) -> Result<(), AnalyzeError> {
    decoder.write_all(chunk).map_err(io_to_error)?;
    let core = decoder.get_ref();
    let max_ratio = core.cfg.max_ratio;
    // A little slack so a tiny, highly compressible file is not refused.
    if core.bytes > compressed.saturating_mul(max_ratio).saturating_add(1 << 20) {
        return Err(AnalyzeError::Bomb(max_ratio));
    }
    Ok(())
}

fn io_to_error(e: std::io::Error) -> AnalyzeError {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<AnalyzeError>()) {
        return inner.clone();
    }
    AnalyzeError::Corrupt(e.to_string())
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
    /// Folds another template's counts into this one (ids the miner later merged).
    fn absorb(&mut self, o: &TemplateStats) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 || o.first_line < self.first_line {
            self.first_line = o.first_line;
            self.example = o.example.clone();
        }
        self.count += o.count;
        for (a, b) in self.levels.iter_mut().zip(o.levels.iter()) {
            *a += b;
        }
        self.last_line = self.last_line.max(o.last_line);
        self.first_ts = match (self.first_ts, o.first_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ts = self.last_ts.max(o.last_ts);
    }
}

fn report(mut core: Core, compressed: Option<u64>) -> Report {
    // The miner may have merged templates after lines were counted under the later id:
    // fold every id into the one that survived.
    let mut merged: Vec<TemplateStats> = vec![TemplateStats::default(); core.stats.len()];
    for (i, s) in core.stats.iter().enumerate() {
        let c = core.miner.canonical(i as TemplateId) as usize;
        if let Some(target) = merged.get_mut(c) {
            target.absorb(s);
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
        .take(core.cfg.top_patterns)
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
        .take(core.cfg.top_patterns)
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
        bytes: core.bytes,
        compressed_bytes: compressed,
        levels,
        formats,
        templates: core.miner.len(),
        patterns,
        top_errors,
        histogram,
        time_range,
        truncated_lines: core.truncated_lines,
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
