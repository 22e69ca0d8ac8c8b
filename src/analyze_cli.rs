//! `watchpost analyze FILE…`: streams each file (or stdin) through the analyzer and prints
//! a readable report, with `--json` the document `POST /logs/analyze` answers, or with
//! `--annotate` one JSON line per input line and then the template table.

use crate::cli::AnalyzeArgs;
use crate::logs::{AnalyzerConfig, LineNote, ParallelAnalyzer, Report, TemplateRow};
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

const READ_CHUNK: usize = 1 << 20;

/// Default worker threads: the CPUs, at most 8 (merging on one thread limits the gain).
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Runs the subcommand; exit code 1 if any file could not be analysed.
pub fn run(args: &AnalyzeArgs) -> ExitCode {
    let top = args.top.unwrap_or(if args.json { 50 } else { 20 }).max(1);
    let cfg = AnalyzerConfig {
        max_line_bytes: args.max_line_bytes.max(1),
        top_patterns: top,
        annotate: args.annotate,
        ..AnalyzerConfig::default()
    };
    let threads = args.threads.unwrap_or_else(default_threads).max(1);
    if args.annotate {
        return annotate(args, cfg, threads);
    }
    let mut failed = false;
    let mut docs = Vec::new();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.files {
        let started = Instant::now();
        match analyze_path(path, cfg.clone(), threads) {
            Ok(report) => {
                let elapsed = started.elapsed();
                if args.json {
                    docs.push((path.display().to_string(), json(&report, elapsed)));
                } else if let Err(e) = write_text(&mut out, path, &report, elapsed, top) {
                    // A closed pipe (`| head`) is not a failure worth a message.
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        eprintln!("watchpost: writing the report: {e}");
                    }
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("watchpost: {}: {e}", path.display());
                failed = true;
            }
        }
    }
    if args.json {
        let doc = if args.files.len() == 1 {
            docs.pop()
                .map(|(_, d)| d)
                .unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::Value::Array(
                docs.into_iter()
                    .map(|(file, report)| serde_json::json!({"file": file, "report": report}))
                    .collect(),
            )
        };
        if !(failed && doc.is_null()) {
            let _ = writeln!(out, "{doc}");
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn open(path: &Path) -> std::io::Result<Box<dyn Read>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    Ok(Box::new(std::fs::File::open(path)?))
}

fn analyze_path(path: &Path, cfg: AnalyzerConfig, threads: usize) -> anyhow::Result<Report> {
    analyze_reader(open(path)?, cfg, threads)
}

/// Streams a reader through the analyzer in 1 MiB chunks.
pub fn analyze_reader(
    reader: impl Read,
    cfg: AnalyzerConfig,
    threads: usize,
) -> anyhow::Result<Report> {
    let mut analyzer = ParallelAnalyzer::new(cfg, threads, None);
    pump(reader, &mut analyzer, |_| Ok(()))?;
    Ok(analyzer.finish()?)
}

/// Streams a reader into the analyzer, calling `after` once per read. Plain text is read
/// straight into the analyzer's blocks (one copy, by the kernel); the first bytes and gzip
/// go through 1 MiB chunks.
fn pump(
    mut reader: impl Read,
    analyzer: &mut ParallelAnalyzer,
    mut after: impl FnMut(&mut ParallelAnalyzer) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    loop {
        let direct = analyzer.feed_direct(|block: &mut Vec<u8>, want: usize| {
            retry_interrupted(|| (&mut reader).take(want as u64).read_to_end(block))
                .map_err(anyhow::Error::from)
        })?;
        let n = match direct {
            Some(n) => n,
            None => {
                buf.resize(READ_CHUNK, 0);
                let n = retry_interrupted(|| reader.read(&mut buf))?;
                analyzer.feed(buf.get(..n).unwrap_or(&[]))?;
                n
            }
        };
        after(analyzer)?;
        if n == 0 {
            return Ok(());
        }
    }
}

fn retry_interrupted(mut op: impl FnMut() -> std::io::Result<usize>) -> std::io::Result<usize> {
    loop {
        match op() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// `--annotate`: per-line JSON as the lines are merged, then the template table.
fn annotate(args: &AnalyzeArgs, cfg: AnalyzerConfig, threads: usize) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let many = args.files.len() > 1;
    let mut failed = false;
    for path in &args.files {
        let file = many.then(|| path.display().to_string());
        let result = (|| -> anyhow::Result<()> {
            let mut analyzer = ParallelAnalyzer::new(cfg.clone(), threads, None);
            pump(open(path)?, &mut analyzer, |analyzer| {
                write_notes(&mut out, file.as_deref(), &analyzer.take_notes())
            })?;
            let (_, notes, table) = analyzer.finish_annotated()?;
            write_notes(&mut out, file.as_deref(), &notes)?;
            write_table(&mut out, file.as_deref(), &table)
        })();
        if let Err(e) = result {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::FAILURE;
            }
            eprintln!("watchpost: {}: {e}", path.display());
            failed = true;
        }
    }
    if out.flush().is_err() || failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn write_notes(out: &mut impl Write, file: Option<&str>, notes: &[LineNote]) -> anyhow::Result<()> {
    for n in notes {
        let mut doc = serde_json::json!({
            "line": n.line,
            "level": n.level.as_str(),
            "format": n.format.as_str(),
            "template_id": n.template_id,
        });
        if let (Some(f), Some(o)) = (file, doc.as_object_mut()) {
            o.insert("file".into(), f.into());
        }
        writeln!(out, "{doc}")?;
    }
    Ok(())
}

fn write_table(
    out: &mut impl Write,
    file: Option<&str>,
    rows: &[TemplateRow],
) -> anyhow::Result<()> {
    for r in rows {
        let mut doc = serde_json::json!({
            "template_id": r.id,
            "canonical_id": r.canonical,
            "count": r.count,
            "template": r.template,
        });
        if let (Some(f), Some(o)) = (file, doc.as_object_mut()) {
            o.insert("file".into(), f.into());
        }
        writeln!(out, "{doc}")?;
    }
    Ok(())
}

/// The API's JSON document: the report plus the original service's `counts`.
pub fn json(report: &Report, elapsed: std::time::Duration) -> serde_json::Value {
    let mut doc = serde_json::to_value(report).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("counts".into(), counts(report));
        obj.insert(
            "elapsed_ms".into(),
            serde_json::Value::from(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
        );
    }
    doc
}

/// Level counts as the original service keyed them (`ERROR`, `WARNING`, `INFO`, `DEBUG`,
/// `CRITICAL`), alongside the normalised names.
pub fn counts(report: &Report) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &report.levels {
        m.insert((*k).to_owned(), (*v).into());
    }
    let warn = report.levels.get("WARN").copied().unwrap_or(0);
    m.insert("WARNING".into(), warn.into());
    serde_json::Value::Object(m)
}

fn write_text(
    out: &mut impl Write,
    path: &Path,
    r: &Report,
    elapsed: std::time::Duration,
    top: usize,
) -> std::io::Result<()> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mib = r.bytes as f64 / (1024.0 * 1024.0);
    writeln!(
        out,
        "{}: {} lines, {:.1} MiB in {:.2} s ({:.0} MiB/s){}",
        path.display(),
        r.lines,
        mib,
        secs,
        mib / secs,
        r.compressed_bytes
            .map(|c| format!(", gzip {:.1} MiB", c as f64 / (1024.0 * 1024.0)))
            .unwrap_or_default()
    )?;
    let levels: Vec<String> = r
        .levels
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(l, n)| format!("{l} {n}"))
        .collect();
    writeln!(out, "  levels:  {}", levels.join(", "))?;
    let total = r.lines.max(1) as f64;
    let mut formats: Vec<(&&str, &u64)> = r.formats.iter().collect();
    formats.sort_by(|a, b| b.1.cmp(a.1));
    let formats: Vec<String> = formats
        .iter()
        .map(|(f, n)| format!("{f} {:.1}%", **n as f64 * 100.0 / total))
        .collect();
    writeln!(out, "  formats: {}", formats.join(", "))?;
    if let Some(t) = &r.time_range {
        writeln!(out, "  time:    {} … {}", t.first, t.last)?;
    }
    if r.truncated_lines > 0 {
        writeln!(out, "  truncated lines: {}", r.truncated_lines)?;
    }
    writeln!(out, "  templates: {}", r.templates)?;
    let errors: Vec<_> = r
        .patterns
        .iter()
        .filter(|p| p.levels.contains_key("ERROR") || p.levels.contains_key("CRITICAL"))
        .take(top)
        .collect();
    if !errors.is_empty() {
        writeln!(out, "  top error patterns:")?;
        for p in errors {
            writeln!(out, "    {:>9}  {}", p.count, one_line(&p.template, 160))?;
            writeln!(out, "               e.g. {}", one_line(&p.example, 160))?;
        }
    }
    writeln!(out, "  top patterns:")?;
    for p in r.patterns.iter().take(top) {
        let levels: Vec<String> = p.levels.iter().map(|(l, n)| format!("{l} {n}")).collect();
        writeln!(
            out,
            "    {:>9}  {}  [{}]",
            p.count,
            one_line(&p.template, 140),
            levels.join(", ")
        )?;
    }
    Ok(())
}

/// Control characters from the log never reach the terminal (no escape sequences).
fn one_line(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { '␣' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}
