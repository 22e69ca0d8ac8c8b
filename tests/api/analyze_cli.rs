//! `watchpost analyze` and `gen-logs` as a user runs them: files, stdin, gzip, --json,
//! --annotate, --threads, and a missing file.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_watchpost");

const LOG: &str = "\
2026-03-01 10:00:00,001 ERROR app.db: connection to 10.0.0.1:5432 failed after 3 retries
2026-03-01 10:00:01,002 INFO app.http: GET /api/orders/17 200 12ms
{\"ts\":\"2026-03-01T10:00:02Z\",\"level\":\"error\",\"msg\":\"connection to 10.0.0.2:5432 failed after 5 retries\"}
Mar  1 10:00:03 web-1 sshd[42]: warning: slow handshake from 192.0.2.7
10.1.2.3 - - [01/Mar/2026:10:00:04 +0000] \"GET /health HTTP/1.1\" 503 12 \"-\" \"curl\"
a line with no level at all
";

fn analyze(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("analyze")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(stdout: &str) -> Value {
    let mut v: Value = serde_json::from_str(stdout).unwrap();
    v.as_object_mut().unwrap().remove("elapsed_ms");
    v
}

#[test]
fn json_report_of_a_file_stdin_and_gzip_agree() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("app.log");
    std::fs::write(&plain, LOG).unwrap();
    let gz = dir.path().join("app.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(LOG.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();

    let (code, out, err) = analyze(&["--json", plain.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    let report = json_of(&out);
    assert_eq!(report["lines"], 6);
    assert_eq!(report["levels"]["ERROR"], 3);
    assert_eq!(report["levels"]["WARN"], 1);
    assert_eq!(report["levels"]["INFO"], 1);
    assert_eq!(report["levels"]["UNKNOWN"], 1);
    assert_eq!(report["counts"]["WARNING"], 1);
    // The Python and the JSON line are one error whatever their format and numbers.
    assert_eq!(
        report["top_errors"][0],
        "connection to <*> failed after <*> retries"
    );

    let (code, out, _) = analyze(&["--json", "-"], Some(LOG.as_bytes()));
    assert_eq!(code, 0);
    assert_eq!(json_of(&out), report);

    let (code, out, _) = analyze(&["--json", gz.to_str().unwrap()], None);
    assert_eq!(code, 0);
    let mut zipped = json_of(&out);
    assert!(zipped["compressed_bytes"].as_u64().unwrap() > 0);
    zipped["compressed_bytes"] = Value::Null;
    assert_eq!(zipped, report);

    // Text report: readable, and the error pattern is there.
    let (code, out, _) = analyze(&[plain.to_str().unwrap()], None);
    assert_eq!(code, 0);
    assert!(out.contains("ERROR 3"), "{out}");
    assert!(
        out.contains("connection to <*> failed after <*> retries"),
        "{out}"
    );
}

#[test]
fn annotate_prints_every_line_then_the_template_table() {
    let (code, out, err) = analyze(&["--annotate", "-"], Some(LOG.as_bytes()));
    assert_eq!(code, 0, "{err}");
    let docs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (lines, table): (Vec<_>, Vec<_>) = docs.iter().partition(|d| d.get("line").is_some());
    assert_eq!(lines.len(), 6);
    let levels: Vec<&str> = lines.iter().map(|d| d["level"].as_str().unwrap()).collect();
    assert_eq!(
        levels,
        ["ERROR", "INFO", "ERROR", "WARN", "ERROR", "UNKNOWN"]
    );
    let formats: Vec<&str> = lines
        .iter()
        .map(|d| d["format"].as_str().unwrap())
        .collect();
    assert_eq!(
        formats,
        [
            "python",
            "python",
            "json",
            "syslog_rfc3164",
            "access_log",
            "generic"
        ]
    );
    for (i, d) in lines.iter().enumerate() {
        assert_eq!(d["line"], i as u64 + 1);
    }
    // Lines 1 and 3 share a template, and the table names it.
    assert_eq!(lines[0]["template_id"], lines[2]["template_id"]);
    let id = &lines[0]["template_id"];
    let row = table.iter().find(|r| &r["template_id"] == id).unwrap();
    assert_eq!(
        row["template"],
        "connection to <*> failed after <*> retries"
    );
    assert_eq!(row["count"], 2);
    let total: u64 = table.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 6);
}

#[test]
fn thread_count_does_not_change_the_report_and_levels_match_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gen.log");
    let out = Command::new(BIN)
        .args([
            "gen-logs", "--size", "9MiB", "--seed", "11", "--year", "2026",
        ])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success());
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("gen.log.truth.json")).unwrap())
            .unwrap();
    let path = log.to_str().unwrap();
    let (code, one, err) = analyze(&["--json", "--threads", "1", path], None);
    assert_eq!(code, 0, "{err}");
    let one = json_of(&one);
    let (_, three, _) = analyze(&["--json", "--threads", "3", path], None);
    assert_eq!(json_of(&three), one);
    assert_eq!(one["lines"], truth["lines"]);
    for (level, n) in truth["levels"].as_object().unwrap() {
        assert_eq!(one["levels"][level.as_str()], *n, "{level}");
    }
}

#[test]
fn a_missing_file_fails_with_a_message_and_the_others_are_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("ok.log");
    std::fs::write(&plain, "ERROR boom\n").unwrap();
    let missing = dir.path().join("nope.log");
    let (code, out, err) = analyze(
        &["--json", plain.to_str().unwrap(), missing.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("nope.log"), "{err}");
    let docs: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(docs[0]["report"]["levels"]["ERROR"], 1);
}
