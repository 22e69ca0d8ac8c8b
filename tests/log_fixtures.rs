//! Hand-written log fixtures (one small file per format in `tests/fixtures/logs/`) with
//! per-level and per-format counts worked out by hand from the format rules, plus hostile
//! inputs generated at run time (random binary, NUL bytes, a 10 MB line, latin-1, UTF-16,
//! emoji, CRLF, empty input, no trailing newline, only newlines).
//!
//! Only the public library API is used: `watchpost::logs::…`.

use std::collections::BTreeMap;
use std::io::Write;
use watchpost::logs::formats::parse_line;
use watchpost::logs::{analyze_bytes, Analyzer, AnalyzerConfig, Report};

/// Level order of the expectation arrays.
const LEVELS: [&str; 8] = [
    "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRITICAL", "UNKNOWN",
];

struct Fixture {
    file: &'static str,
    /// TRACE, DEBUG, INFO, NOTICE, WARN, ERROR, CRITICAL, UNKNOWN.
    levels: [u64; 8],
    formats: &'static [(&'static str, u64)],
}

/// The expectations, derived line by line in the comments of each entry.
const FIXTURES: &[Fixture] = &[
    // With PRI (13 lines, level = PRI % 8): 34→2 crit, 13→5 notice, 86→6 info,
    // 83→3 err, 84→4 warn, 78→6 info, 0→0 emerg, 31→7 debug, 28→4 warn, 27→3 err,
    // 30→6 info, 189→5 notice, 14→6 info (ISO timestamp after PRI).
    // Without PRI (10 lines, level from a leading `level:` label, `ERROR logger:`, or a
    // level word among the first three words): CRON ×1 and postfix `connect from
    // unknown[…]` are UNKNOWN; `error:`, `EXT4-fs error`, `ERROR app.db:` ERROR;
    // `warning:` WARN; `INFO app.http:` INFO; `Critical:` CRITICAL; `notice:` NOTICE;
    // `debug:` DEBUG.
    Fixture {
        file: "syslog_rfc3164.log",
        levels: [0, 2, 5, 3, 3, 5, 3, 2],
        formats: &[("syslog_rfc3164", 23)],
    },
    // PRI % 8: 165→5, 34→2, 165→5, 11→3, 12→4, 14→6, 15→7, 8→0, 9→1, 10→2, 13→5,
    // 134→6, 131→3, 190→6, 191→7, 12→4.
    Fixture {
        file: "syslog_rfc5424.log",
        levels: [0, 2, 3, 3, 2, 2, 4, 0],
        formats: &[("syslog_rfc5424", 16)],
    },
    // [module:level]: error, notice, notice, warn, error, error, error, emerg, crit, alert,
    // debug, trace3, info; 2.2 style [error], [notice]; [:error]; [ssl:info].
    Fixture {
        file: "apache_error.log",
        levels: [1, 1, 2, 3, 1, 6, 3, 0],
        formats: &[("apache_error", 17)],
    },
    // notice ×3, error ×2, warn, crit, emerg, alert, info, debug, warn, error ×3.
    Fixture {
        file: "nginx_error.log",
        levels: [0, 1, 1, 3, 2, 5, 3, 0],
        formats: &[("apache_error", 15)],
    },
    // Status: 200 304 401 404 502 502 503 500 200 301 200 400 408 200 204 403 206 200 504
    // 413 302 429 → 2xx/3xx ×10, 4xx ×7, 5xx ×5 (`?q=error` in a 200 path is no level).
    Fixture {
        file: "access.log",
        levels: [0, 0, 10, 0, 7, 5, 0, 0],
        formats: &[("access_log", 22)],
    },
    // `- LEVEL -`: INFO DEBUG WARNING ERROR CRITICAL WARNING INFO ERROR×4;
    // `LEVEL:name:`: ERROR WARNING DEBUG INFO CRITICAL; `,ms INFO name:` INFO; INFO.
    Fixture {
        file: "python.log",
        levels: [0, 2, 5, 0, 3, 6, 2, 0],
        formats: &[("python", 18)],
    },
    // logback/log4j/Spring Boot: INFO WARN ERROR DEBUG TRACE ERROR FATAL INFO WARN ERROR
    // INFO INFO ERROR ERROR SEVERE; a stack trace (exception line and two `at` frames) is
    // generic with no level.
    Fixture {
        file: "java.log",
        levels: [1, 1, 4, 0, 2, 6, 1, 3],
        formats: &[("java", 15), ("generic", 3)],
    },
    // info ERROR warn Debug CRITICAL NOTICE crit 30 50 60 10 20 40 severity:3 Warning error
    // (none) (nested only) Information error error FATAL "30" TRACE.
    Fixture {
        file: "json.log",
        levels: [2, 2, 4, 1, 3, 6, 4, 2],
        formats: &[("json", 24)],
    },
    // info error error warn debug warn error info INFO fatal panic notice trace (none)
    // warning error.
    Fixture {
        file: "logfmt.log",
        levels: [1, 1, 3, 1, 3, 4, 2, 1],
        formats: &[("logfmt", 16)],
    },
    // I I W E E F I E E W I.
    Fixture {
        file: "klog.log",
        levels: [0, 0, 4, 0, 2, 4, 1, 0],
        formats: &[("klog", 11)],
    },
    // WARN [INFO] ERROR `ERROR:` `error` (4th word) none [WARNING] warning CRITICAL info
    // none `panic:` none DEBUG `Notice:` `| ERROR |` none.
    Fixture {
        file: "generic.log",
        levels: [0, 1, 2, 1, 3, 4, 2, 4],
        formats: &[("generic", 17)],
    },
];

fn cfg() -> AnalyzerConfig {
    AnalyzerConfig {
        year: 2024,
        ..AnalyzerConfig::default()
    }
}

fn read(file: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/logs/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn analyze(bytes: &[u8]) -> Report {
    analyze_bytes(cfg(), bytes).expect("analysis failed")
}

fn analyze_chunks(bytes: &[u8], chunk: usize) -> Report {
    let mut a = Analyzer::new(cfg());
    for c in bytes.chunks(chunk) {
        a.feed(c).expect("feed failed");
    }
    a.finish().expect("finish failed")
}

fn levels(arr: [u64; 8]) -> BTreeMap<&'static str, u64> {
    LEVELS.iter().copied().zip(arr).collect()
}

fn formats(list: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    list.iter().copied().collect()
}

/// Lines, levels, formats, truncated lines: what every test compares.
type Counts = (
    u64,
    BTreeMap<&'static str, u64>,
    BTreeMap<&'static str, u64>,
    u64,
);

fn counts(r: &Report) -> Counts {
    (
        r.lines,
        r.levels.clone(),
        r.formats.clone(),
        r.truncated_lines,
    )
}

#[track_caller]
fn assert_counts(
    r: &Report,
    lines: u64,
    lv: [u64; 8],
    fm: &[(&'static str, u64)],
    truncated: u64,
    what: &str,
) {
    assert_eq!(
        counts(r),
        (lines, levels(lv), formats(fm), truncated),
        "{what}"
    );
}

fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 40);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn fixtures_have_exact_level_and_format_counts() {
    let mut failures = Vec::new();
    for f in FIXTURES {
        let bytes = read(f.file);
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(
            f.levels.iter().sum::<u64>(),
            lines,
            "{}: the expectation does not add up",
            f.file
        );
        let r = analyze(&bytes);
        let got = counts(&r);
        let want = (lines, levels(f.levels), formats(f.formats), 0);
        if got != want {
            failures.push(format!("{}:\n  want {want:?}\n  got  {got:?}", f.file));
        }
        assert_eq!(r.bytes, bytes.len() as u64, "{}", f.file);
        assert_eq!(r.compressed_bytes, None, "{}", f.file);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every fixture line, parsed on its own, gives the same counts as the analyzer (no state
/// leaks from one line to the next), and the message is never empty.
#[test]
fn fixture_lines_parse_alone_like_in_a_stream() {
    for f in FIXTURES {
        let bytes = read(f.file);
        let mut lv = [0u64; 8];
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let p = parse_line(line, 2024);
            lv[p.level.index()] += 1;
            assert!(!p.message.is_empty(), "{}: {line:?}", f.file);
        }
        assert_eq!(lv, f.levels, "{}", f.file);
    }
}

#[test]
fn all_fixtures_concatenated_add_up() {
    let mut all = Vec::new();
    let mut lv = [0u64; 8];
    let mut fm: BTreeMap<&'static str, u64> = BTreeMap::new();
    for f in FIXTURES {
        all.extend(read(f.file));
        for (a, b) in lv.iter_mut().zip(f.levels) {
            *a += b;
        }
        for &(name, n) in f.formats {
            *fm.entry(name).or_default() += n;
        }
    }
    let lines = lv.iter().sum::<u64>();
    assert_eq!(lines, 197);
    let r = analyze(&all);
    let fm: Vec<_> = fm.into_iter().collect();
    assert_counts(&r, lines, lv, &fm, 0, "concatenated");
    // Chunking, CRLF, a missing final newline and gzip change nothing.
    for chunk in [1, 7, 4096] {
        assert_eq!(analyze_chunks(&all, chunk), r, "chunks of {chunk}");
    }
    assert_counts(&analyze(&crlf(&all)), lines, lv, &fm, 0, "CRLF");
    assert_counts(
        &analyze(all.strip_suffix(b"\n").unwrap()),
        lines,
        lv,
        &fm,
        0,
        "no final newline",
    );
    let gz = gzip(&all);
    let rz = analyze(&gz);
    assert_counts(&rz, lines, lv, &fm, 0, "gzip");
    assert_eq!(
        (rz.bytes, rz.compressed_bytes),
        (all.len() as u64, Some(gz.len() as u64))
    );
    let rz = analyze_chunks(&gz, 100);
    assert_counts(&rz, lines, lv, &fm, 0, "gzip in chunks");
}

#[test]
fn crlf_and_missing_final_newline_count_like_lf() {
    for f in FIXTURES {
        let bytes = read(f.file);
        let lf = analyze(&bytes);
        let cr = analyze(&crlf(&bytes));
        assert_eq!(counts(&cr), counts(&lf), "{} CRLF", f.file);
        let templates = |r: &Report| -> Vec<(String, u64)> {
            r.patterns
                .iter()
                .map(|p| (p.template.clone(), p.count))
                .collect()
        };
        assert_eq!(templates(&cr), templates(&lf), "{} CRLF templates", f.file);
        assert_eq!(cr.top_errors, lf.top_errors, "{} CRLF top errors", f.file);
        let cut = analyze(bytes.strip_suffix(b"\n").unwrap());
        assert_eq!(counts(&cut), counts(&lf), "{} no final newline", f.file);
        assert_eq!(
            templates(&cut),
            templates(&lf),
            "{} no final newline",
            f.file
        );
    }
}

/// The top error template of the fixtures that repeat one error with variable parts.
#[test]
fn top_error_templates() {
    let cases: &[(&str, &str, u64)] = &[
        // 502 502 503 504 on GET /api/v1/orders/N: the path, protocol and status vary.
        ("access.log", "GET <*> <*> <*>", 4),
        (
            "python.log",
            "Login failed for user <*> invalid password",
            4,
        ),
        ("java.log", "Failed to process order <*>", 3),
        ("json.log", "request failed", 3),
        ("logfmt.log", "failed to connect", 3),
    ];
    for &(file, template, errors) in cases {
        let r = analyze(&read(file));
        assert_eq!(
            r.top_errors.first().map(String::as_str),
            Some(template),
            "{file}: {:?}",
            r.top_errors
        );
        let p = r
            .patterns
            .iter()
            .find(|p| p.template == template)
            .unwrap_or_else(|| panic!("{file}: no pattern {template:?}"));
        let bad = p.levels.get("ERROR").copied().unwrap_or(0)
            + p.levels.get("CRITICAL").copied().unwrap_or(0);
        assert_eq!(bad, errors, "{file}: {template}");
    }
    // nginx: the three `upstream timed out` lines differ only in variables (connection,
    // client, request, upstream URL; the errno and quoted values are masked too) and make
    // one template, the most frequent error.
    let r = analyze(&read("nginx_error.log"));
    let top = r.top_errors.first().expect("no error template");
    assert_eq!(
        top,
        "upstream timed out (<*>: Connection timed out) while reading response header from \
         upstream, client: <*>, server: api.example.com, request: <*>, upstream: <*>, host: <*>"
    );
    let p = r.patterns.iter().find(|p| p.template == *top).unwrap();
    assert_eq!((p.count, p.levels.get("ERROR").copied()), (3, Some(3)));
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs, generated here (nothing big is committed).

/// xorshift64*: deterministic bytes without a dependency.
fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Counts computed line by line with `parse_line` (what the analyzer must agree with).
fn expected_by_lines(bytes: &[u8], cap: usize) -> (u64, [u64; 8], u64) {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        lines.pop();
    }
    let mut lv = [0u64; 8];
    let mut truncated = 0;
    for l in &lines {
        let l = if l.len() > cap {
            truncated += 1;
            &l[..cap]
        } else {
            l
        };
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        lv[parse_line(l, 2024).level.index()] += 1;
    }
    (lines.len() as u64, lv, truncated)
}

#[test]
fn random_binary() {
    for seed in 1..=4u64 {
        let mut bytes = random_bytes(seed, 1 << 20);
        bytes[0] = b'x'; // not gzip
        let (lines, lv, truncated) = expected_by_lines(&bytes, 64 * 1024);
        let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(lines, newlines + u64::from(!bytes.ends_with(b"\n")));
        let r = analyze(&bytes);
        assert_eq!(r.lines, lines, "seed {seed}");
        assert_eq!(r.levels, levels(lv), "seed {seed}");
        assert_eq!(r.formats.values().sum::<u64>(), lines);
        assert_eq!(r.truncated_lines, truncated);
        assert_eq!(r.bytes, bytes.len() as u64);
        assert_eq!(analyze_chunks(&bytes, 4093), r, "seed {seed}");
    }
    // Random bytes behind a gzip magic: a corrupt-input error, not a panic.
    let mut bytes = random_bytes(9, 4096);
    bytes[0] = 0x1f;
    bytes[1] = 0x8b;
    assert!(analyze_bytes(cfg(), &bytes).is_err());
    // Random lines: no long lines, every byte value but `\n`.
    let mut bytes = random_bytes(5, 200_000);
    bytes[0] = b'x';
    for (i, b) in bytes.iter_mut().enumerate() {
        if i % 97 == 96 {
            *b = b'\n';
        }
    }
    let (lines, lv, _) = expected_by_lines(&bytes, 64 * 1024);
    let r = analyze(&bytes);
    assert_eq!((r.lines, r.levels.clone()), (lines, levels(lv)));
}

#[test]
fn nul_bytes_inside_lines() {
    let input: &[u8] = b"2024-01-14 11:00:00 ERROR disk\0 failure\n\
        {\"level\":\"warn\",\"msg\":\"a\0b\"}\n\
        <11>Jan 14 09:00:00 host app[1]: x\0y\n\
        \0\0\0\0\n\
        level=info msg=\"nul\0inside\"\n\
        E0114 10:50:00.000000 1 a.go:1] \0\n";
    let r = analyze(input);
    assert_counts(
        &r,
        6,
        // generic ERROR, json warn, syslog <11> (3), NULs only, logfmt info, klog E.
        [0, 0, 1, 0, 1, 3, 0, 1],
        &[
            ("syslog_rfc3164", 1),
            ("json", 1),
            ("logfmt", 1),
            ("klog", 1),
            ("generic", 2),
        ],
        0,
        "NUL bytes",
    );
}

#[test]
fn ten_megabyte_single_line() {
    let mut line = b"ERROR ".to_vec();
    line.resize(10 << 20, b'a');
    let mut with_nl = line.clone();
    with_nl.push(b'\n');
    for (what, bytes) in [("with newline", &with_nl), ("without newline", &line)] {
        for chunk in [usize::MAX, 1 << 20, 4096, 65_535] {
            let r = analyze_chunks(bytes, chunk);
            assert_counts(
                &r,
                1,
                [0, 0, 0, 0, 0, 1, 0, 0],
                &[("generic", 1)],
                1,
                &format!("{what}, chunks of {chunk}"),
            );
            assert_eq!(r.bytes, bytes.len() as u64);
            assert_eq!(r.templates, 1);
        }
    }
    // A short line after the long one is intact.
    let mut two = with_nl;
    two.extend_from_slice(b"level=warn msg=after\n");
    for chunk in [usize::MAX, 4096] {
        let r = analyze_chunks(&two, chunk);
        assert_counts(
            &r,
            2,
            [0, 0, 0, 0, 1, 1, 0, 0],
            &[("generic", 1), ("logfmt", 1)],
            1,
            &format!("long then short, chunks of {chunk}"),
        );
    }
}

/// At the cap exactly: not truncated; one byte more: truncated. The line terminator is not
/// part of the line, so `\r\n` must count like `\n`.
#[test]
fn line_cap_boundary() {
    let cap = 64 * 1024;
    for (len, truncated) in [(cap - 1, 0), (cap, 0), (cap + 1, 1)] {
        let mut line = vec![b'x'; len];
        line.push(b'\n');
        for chunk in [usize::MAX, 1000] {
            let r = analyze_chunks(&line, chunk);
            assert_eq!(
                (r.lines, r.truncated_lines),
                (1, truncated),
                "LF, {len} bytes, chunks of {chunk}"
            );
            let r = analyze_chunks(&crlf(&line), chunk);
            assert_eq!(
                (r.lines, r.truncated_lines),
                (1, truncated),
                "CRLF, {len} bytes, chunks of {chunk}"
            );
        }
    }
}

#[test]
fn mixed_encodings() {
    // latin-1 (invalid UTF-8) in the message.
    let latin1: &[u8] = b"2024-01-14 11:00:00,123 - app - ERROR - caf\xe9 ferm\xe9\n\
        Jan 14 09:00:00 h app[1]: warning: \xe9chec de connexion\n\
        level=info msg=\"r\xe9sum\xe9 saved\"\n";
    assert_counts(
        &analyze(latin1),
        3,
        [0, 0, 1, 0, 1, 1, 0, 0],
        &[("syslog_rfc3164", 1), ("python", 1), ("logfmt", 1)],
        0,
        "latin-1",
    );
    // Valid UTF-8 with emoji and accents.
    let utf8 = "{\"level\":\"error\",\"msg\":\"💥 payment failed for José\"}\n\
        2024-01-14 11:00:00.000 [main] INFO  c.e.App - ✅ ready 🚀\n\
        level=warn msg=\"⚠️ disk at 91%\"\n\
        E0114 10:50:00.000000 1 a.go:1] 日本語のエラー\n";
    assert_counts(
        &analyze(utf8.as_bytes()),
        4,
        [0, 0, 1, 0, 1, 2, 0, 0],
        &[("java", 1), ("json", 1), ("logfmt", 1), ("klog", 1)],
        0,
        "UTF-8",
    );
    // UTF-16LE with a BOM is not decoded: every level word has NULs inside, so nothing is
    // recognised. `\n` is `0a 00`, so the lines split after `0a` and the trailing `00`
    // is a third, unterminated line.
    let mut utf16 = vec![0xff, 0xfe];
    for u in "ERROR: disk full\nWARN: low memory\n".encode_utf16() {
        utf16.extend(u.to_le_bytes());
    }
    assert_counts(
        &analyze(&utf16),
        3,
        [0, 0, 0, 0, 0, 0, 0, 3],
        &[("generic", 3)],
        0,
        "UTF-16LE",
    );
}

#[test]
fn empty_and_degenerate_inputs() {
    let r = analyze(b"");
    assert_counts(&r, 0, [0; 8], &[], 0, "empty");
    assert_eq!((r.bytes, r.templates), (0, 0));
    assert!(r.patterns.is_empty() && r.top_errors.is_empty());
    assert!(r.histogram.is_none() && r.time_range.is_none());
    // An empty analyzer that was never fed.
    let r = Analyzer::new(cfg()).finish().unwrap();
    assert_counts(&r, 0, [0; 8], &[], 0, "never fed");
    // Only newlines: five empty lines.
    let r = analyze(b"\n\n\n\n\n");
    assert_counts(&r, 5, [0, 0, 0, 0, 0, 0, 0, 5], &[("generic", 5)], 0, "LF");
    let r = analyze(b"\r\n\r\n\r\n\r\n\r\n");
    assert_counts(
        &r,
        5,
        [0, 0, 0, 0, 0, 0, 0, 5],
        &[("generic", 5)],
        0,
        "CRLF",
    );
    // One byte, no newline.
    let r = analyze(b"x");
    assert_counts(&r, 1, [0, 0, 0, 0, 0, 0, 0, 1], &[("generic", 1)], 0, "x");
    // A single line without a trailing newline still counts.
    let r = analyze(b"level=error msg=last");
    assert_counts(&r, 1, [0, 0, 0, 0, 0, 1, 0, 0], &[("logfmt", 1)], 0, "last");
    // The gzip magic alone, then nothing: a truncated gzip is an error, not a panic.
    assert!(analyze_bytes(cfg(), &[0x1f, 0x8b]).is_err());
    // One byte that could start a gzip magic is text.
    let r = analyze(&[0x1f]);
    assert_eq!(r.lines, 1);
}
