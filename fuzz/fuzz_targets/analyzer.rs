//! The whole streaming analyzer over arbitrary bytes, fed in arbitrary chunks.
//!
//! Input layout: byte 0 is a mode (bit 0: gzip the rest before feeding it, so the
//! decompressing path sees real content; bits 1–7: the line cap, small caps exercise
//! truncation across chunk boundaries), byte 1 is how many chunk-size bytes follow (0–15);
//! each chunk-size byte is a chunk length (0 means 1). The rest is the log. An input whose
//! log starts with `1f 8b` goes the gzip way by itself.
//!
//! Checked: no panic; level and format counts add up to `lines`; `truncated_lines <= lines`;
//! for text, `bytes` is the input length and the report is identical whatever the chunking
//! (one `feed` of everything vs the fuzzed chunks vs one byte at a time for short inputs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use watchpost::logs::{Analyzer, AnalyzerConfig, Report};

fn config(mode: u8) -> AnalyzerConfig {
    let cap = usize::from(mode >> 1);
    AnalyzerConfig {
        // 0 → the default 64 KiB; otherwise 1–127 bytes.
        max_line_bytes: if cap == 0 { 64 * 1024 } else { cap },
        top_patterns: 8,
        // Bounded so a fuzzed gzip cannot use gigabytes.
        max_decompressed_bytes: 16 << 20,
        year: 2024,
        ..AnalyzerConfig::default()
    }
}

fn run<'a>(
    cfg: &AnalyzerConfig,
    chunks: impl Iterator<Item = &'a [u8]>,
) -> Result<Report, watchpost::logs::AnalyzeError> {
    let mut a = Analyzer::new(cfg.clone());
    for c in chunks {
        a.feed(c)?;
    }
    a.finish()
}

/// The fuzzed chunk sizes, cycled over the whole input.
fn chunked<'a>(data: &'a [u8], sizes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut k = 0usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = match sizes.get(k % sizes.len().max(1)) {
            Some(&s) => usize::from(s.max(1)),
            None => rest.len(),
        };
        k += 1;
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        Some(head)
    })
}

fn check(r: &Report) {
    let levels: u64 = r.levels.values().sum();
    let formats: u64 = r.formats.values().sum();
    assert_eq!(levels, r.lines, "level counts vs lines");
    assert_eq!(formats, r.lines, "format counts vs lines");
    assert_eq!(r.levels.len(), 8);
    assert!(r.truncated_lines <= r.lines);
    let listed: u64 = r.patterns.iter().map(|p| p.count).sum();
    assert!(listed <= r.lines);
    assert!(r.patterns.len() <= 8 && r.top_errors.len() <= 8);
    for w in r.patterns.windows(2) {
        assert!(w[0].count >= w[1].count, "patterns not sorted");
    }
    for p in &r.patterns {
        assert!(p.count > 0 && p.first_line >= 1 && p.first_line <= p.last_line);
        assert!(p.last_line <= r.lines);
        assert_eq!(p.levels.values().sum::<u64>(), p.count);
    }
}

fuzz_target!(|input: &[u8]| {
    let [mode, n, rest @ ..] = input else {
        return;
    };
    let n = usize::from(n & 15).min(rest.len());
    let (sizes, body) = rest.split_at(n);
    let cfg = config(*mode);
    let gz;
    let data: &[u8] = if mode & 1 == 1 {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(body).unwrap();
        gz = enc.finish().unwrap();
        &gz
    } else {
        body
    };
    let whole = run(&cfg, std::iter::once(data));
    let pieces = run(&cfg, chunked(data, sizes));
    let is_gzip = data.starts_with(&[0x1f, 0x8b]);
    if let Ok(r) = &whole {
        check(r);
        if !is_gzip {
            assert_eq!(r.bytes, data.len() as u64);
            assert_eq!(r.compressed_bytes, None);
        }
    }
    if let Ok(r) = &pieces {
        check(r);
    }
    if !is_gzip {
        // Text never fails, and chunking never changes the result.
        let whole = whole.expect("text input failed");
        let pieces = pieces.expect("text input failed");
        assert_eq!(whole, pieces, "chunking changed the report");
        if data.len() <= 512 {
            let bytewise = run(&cfg, data.chunks(1)).expect("text input failed");
            assert_eq!(whole, bytewise, "byte-at-a-time feeding changed the report");
        }
    } else if mode & 1 == 1 {
        // Well-formed gzip of a small body: decompresses to exactly the body, and the
        // counts do not depend on how the compressed bytes were split.
        let whole = whole.expect("valid gzip failed");
        assert_eq!(whole.bytes, body.len() as u64);
        if let Ok(p) = &pieces {
            assert_eq!(
                (
                    whole.lines,
                    &whole.levels,
                    &whole.formats,
                    whole.truncated_lines
                ),
                (p.lines, &p.levels, &p.formats, p.truncated_lines),
                "gzip chunking changed the counts"
            );
        }
    }
});
