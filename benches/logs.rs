//! Log analyzer hot path, per line: `formats::parse_line`, `template::Miner::add` on
//! pre-parsed messages, and the whole `Analyzer` (`feed` + `finish`), all over the same
//! ~4 MB mixed-format sample from `logs::gen::generate` (seed 42), reported as bytes of log
//! per second.
//!
//! peer: the naive Python analyzer in `bench/naive_analyzer.py` (one regex search for a level
//! word per line, regex masking of ERROR/CRITICAL messages, a `collections.Counter`), which
//! runs at about 80 MB/s per the issue. `bench/logs.sh` compares the two end to end on files
//! of 100 MiB and more; this bench isolates the three stages so a regression shows where.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use watchpost::logs::formats::parse_line;
use watchpost::logs::gen::{generate, GenConfig};
use watchpost::logs::template::{Miner, MinerConfig};
use watchpost::logs::{Analyzer, AnalyzerConfig};

const YEAR: i32 = 2026;

fn sample() -> Vec<u8> {
    let mut out = Vec::with_capacity(4 << 20);
    generate(
        &GenConfig {
            seed: 42,
            target_bytes: 4 << 20,
            year: YEAR,
        },
        &mut out,
    )
    .expect("generating into a Vec cannot fail");
    out
}

fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

fn bench(c: &mut Criterion) {
    let buf = sample();
    let bytes = buf.len() as u64;

    let mut g = c.benchmark_group("logs_parse_line");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("mixed_4MB", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for line in lines(&buf) {
                let p = parse_line(line, YEAR);
                n += p.level.index() + p.message.len();
            }
            black_box(n)
        })
    });
    g.finish();

    // The messages as the analyzer hands them to the miner (message + tail).
    let mut scratch = Vec::new();
    let messages: Vec<Vec<u8>> = lines(&buf)
        .map(|l| parse_line(l, YEAR).full_message(&mut scratch).to_vec())
        .collect();
    let mut g = c.benchmark_group("logs_miner_add");
    // Throughput in bytes of the original log, so the three groups compare directly.
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("mixed_4MB_messages", |b| {
        b.iter(|| {
            let mut miner = Miner::new(MinerConfig::default());
            let mut acc = 0u64;
            for m in &messages {
                acc = acc.wrapping_add(u64::from(miner.add(m)));
            }
            black_box((acc, miner.len()))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("logs_analyzer");
    g.throughput(Throughput::Bytes(bytes));
    let cfg = AnalyzerConfig {
        year: YEAR,
        ..AnalyzerConfig::default()
    };
    g.bench_function("mixed_4MB_feed_finish", |b| {
        b.iter(|| {
            let mut a = Analyzer::new(cfg.clone());
            // 64 KiB chunks, as an upload or a file read delivers them.
            for chunk in buf.chunks(64 * 1024) {
                a.feed(chunk).expect("text never fails");
            }
            black_box(a.finish().expect("text never fails").lines)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
