//! `/metrics/prometheus`: host gauges from the collector, request counters by route
//! template, the duration histogram, outbox gauges, the optional bearer token, and a strict
//! check of the whole exposition (plus `promtool check metrics` when it is installed).

use crate::helpers::*;
use crate::receivers::WebhookReceiver;
use reqwest::StatusCode;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use watchpost::config::Secret;
use watchpost::store::Sample;
use watchpost::tasks::alerting::AlertEngine;

const PATH: &str = "/metrics/prometheus";
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TOKEN: &str = "prometheus-scrape-token-0123456789";
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// A strict parser of the text format, independent of the server's encoder.

#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
pub(crate) struct Exposition {
    /// Family name → TYPE.
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
    series: Vec<Series>,
}

impl Exposition {
    /// The value of the series with exactly these labels.
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.series
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no series {name}{labels:?}"))
    }

    fn with_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| s.name == name)
    }
}

fn valid_name(name: &str, colon_ok: bool) -> bool {
    let mut chars = name.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon_ok && c == ':');
    matches!(chars.next(), Some(c) if ok_first(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon_ok && c == ':'))
}

fn parse_value(raw: &str) -> Result<f64, String> {
    match raw {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => raw.parse().map_err(|e| format!("bad value {raw:?}: {e}")),
    }
}

/// Parses `{k="v",...}` from the start of `rest`; returns the labels and what follows.
fn parse_labels(rest: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut s = rest.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without =")?;
        let name = &s[..eq];
        if !valid_name(name, false) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in label value")),
                },
                Some((_, '\n')) => return Err("raw line feed in label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        s = &s[end + 1..];
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// The family a sample belongs to: its own name, or a histogram's base name.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
    })
}

/// Checks the whole document against the text format 0.0.4 and our conventions: every
/// line is a comment or `name{labels} value`; every family has one HELP and one TYPE
/// before its samples and its samples in one group; counters end in `_total`; no series
/// twice; histograms have cumulative buckets ending in `+Inf` equal to `_count`.
pub(crate) fn parse_exposition(text: &str) -> Result<Exposition, String> {
    if !text.ends_with('\n') {
        return Err("the document must end with a line feed".into());
    }
    let mut expo = Exposition::default();
    let mut seen = BTreeSet::new();
    let mut finished_families = BTreeSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .ok_or_else(|| err("HELP without text".into()))?;
            if !valid_name(name, true) {
                return Err(err("bad metric name".into()));
            }
            let mut chars = help.chars();
            while let Some(c) = chars.next() {
                if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                    return Err(err("bad escape in HELP".into()));
                }
            }
            if expo
                .helps
                .insert(name.to_owned(), help.to_owned())
                .is_some()
            {
                return Err(err("second HELP".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| err("TYPE without kind".into()))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(err(format!("unknown type {kind}")));
            }
            if expo
                .series
                .iter()
                .any(|s| family_of(&s.name, &expo.types) == Some(name))
            {
                return Err(err("TYPE after samples".into()));
            }
            if expo
                .types
                .insert(name.to_owned(), kind.to_owned())
                .is_some()
            {
                return Err(err("second TYPE".into()));
            }
            if kind == "counter" && !name.ends_with("_total") {
                return Err(err("counter name without _total".into()));
            }
            if !name.starts_with("watchpost_") {
                return Err(err("metric without the watchpost_ prefix".into()));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name, true) {
            return Err(err("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(err)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let raw = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("expected one space before the value".into()))?;
        if raw.contains(' ') {
            return Err(err("unexpected timestamp or trailing text".into()));
        }
        let value = parse_value(raw).map_err(err)?;
        let family = family_of(name, &expo.types)
            .ok_or_else(|| err("sample before its TYPE".into()))?
            .to_owned();
        if !expo.helps.contains_key(&family) {
            return Err(err("family without HELP".into()));
        }
        if current.as_deref() != Some(family.as_str()) {
            if let Some(prev) = current.take() {
                finished_families.insert(prev);
            }
            if finished_families.contains(&family) {
                return Err(err("family samples not in one group".into()));
            }
            current = Some(family.clone());
        }
        let key = format!("{name}{labels:?}");
        if !seen.insert(key) {
            return Err(err("duplicate series".into()));
        }
        if expo.types[&family] == "counter" && (value.is_nan() || value < 0.0) {
            return Err(err("negative or NaN counter".into()));
        }
        expo.series.push(Series {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    for name in expo.helps.keys() {
        if !expo.types.contains_key(name) {
            return Err(format!("{name} has HELP but no TYPE"));
        }
    }
    for name in expo.types.keys() {
        if !expo.helps.contains_key(name) {
            return Err(format!("{name} has TYPE but no HELP"));
        }
    }
    check_histograms(&expo)?;
    Ok(expo)
}

fn check_histograms(expo: &Exposition) -> Result<(), String> {
    for (family, _) in expo.types.iter().filter(|(_, k)| *k == "histogram") {
        let bucket_name = format!("{family}_bucket");
        // Buckets grouped by their labels other than `le`.
        let mut groups: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in expo.with_name(&bucket_name) {
            let mut labels = s.labels.clone();
            let le = labels
                .remove("le")
                .ok_or_else(|| format!("{bucket_name} without le"))?;
            groups
                .entry(labels)
                .or_default()
                .push((parse_value(&le)?, s.value));
        }
        for (labels, buckets) in groups {
            let les: Vec<f64> = buckets.iter().map(|b| b.0).collect();
            if les.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("{family}{labels:?}: le not increasing: {les:?}"));
            }
            if les.last() != Some(&f64::INFINITY) {
                return Err(format!("{family}{labels:?}: no +Inf bucket"));
            }
            if buckets.windows(2).any(|w| w[0].1 > w[1].1) {
                return Err(format!(
                    "{family}{labels:?}: buckets not cumulative: {buckets:?}"
                ));
            }
            let label_refs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let count = expo
                .get(&format!("{family}_count"), &label_refs)
                .ok_or_else(|| format!("{family}{labels:?}: no _count"))?;
            expo.get(&format!("{family}_sum"), &label_refs)
                .ok_or_else(|| format!("{family}{labels:?}: no _sum"))?;
            let inf = buckets.last().map(|b| b.1);
            if inf != Some(count) {
                return Err(format!(
                    "{family}{labels:?}: +Inf {inf:?} != _count {count}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn the_parser_rejects_what_the_format_forbids() {
    let ok = "# HELP watchpost_x_total a\n# TYPE watchpost_x_total counter\nwatchpost_x_total{a=\"b\\\"\\n\\\\\"} 1\n";
    let expo = parse_exposition(ok).unwrap();
    assert_eq!(expo.value("watchpost_x_total", &[("a", "b\"\n\\")]), 1.0);
    for bad in [
        // no HELP
        "# TYPE watchpost_x gauge\nwatchpost_x 1\n",
        // bad escape in HELP
        "# HELP watchpost_x a\\tb\n# TYPE watchpost_x gauge\nwatchpost_x 1\n",
        // no TYPE
        "# HELP watchpost_x a\nwatchpost_x 1\n",
        // bad escape in a label value
        "# HELP watchpost_x a\n# TYPE watchpost_x gauge\nwatchpost_x{a=\"\\t\"} 1\n",
        // unterminated label value (a raw line feed split it)
        "# HELP watchpost_x a\n# TYPE watchpost_x gauge\nwatchpost_x{a=\"b\n\"} 1\n",
        // counter without _total
        "# HELP watchpost_x a\n# TYPE watchpost_x counter\nwatchpost_x 1\n",
        // duplicate series
        "# HELP watchpost_x a\n# TYPE watchpost_x gauge\nwatchpost_x 1\nwatchpost_x 2\n",
        // not a number
        "# HELP watchpost_x a\n# TYPE watchpost_x gauge\nwatchpost_x one\n",
        // histogram whose buckets are not cumulative
        "# HELP watchpost_h a\n# TYPE watchpost_h histogram\nwatchpost_h_bucket{le=\"1\"} 2\nwatchpost_h_bucket{le=\"+Inf\"} 1\nwatchpost_h_sum 1\nwatchpost_h_count 1\n",
        // histogram whose +Inf bucket is not the count
        "# HELP watchpost_h a\n# TYPE watchpost_h histogram\nwatchpost_h_bucket{le=\"1\"} 1\nwatchpost_h_bucket{le=\"+Inf\"} 2\nwatchpost_h_sum 1\nwatchpost_h_count 3\n",
        // no final line feed
        "# HELP watchpost_x a\n# TYPE watchpost_x gauge\nwatchpost_x 1",
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted: {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------

async fn scrape_raw(app: &TestApp, bearer: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(PATH));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("GET /metrics/prometheus")
}

/// Scrapes, asserts 200, the content type and the security headers, validates the whole
/// document (with promtool too, when installed) and parses it.
async fn scrape_with(app: &TestApp, bearer: Option<&str>) -> (String, Exposition) {
    let resp = scrape_raw(app, bearer).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_security_headers(resp.headers());
    assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
    let text = resp.text().await.expect("scrape body");
    let expo = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n--- scrape ---\n{text}"));
    promtool_check(&text);
    (text, expo)
}

async fn scrape(app: &TestApp) -> (String, Exposition) {
    scrape_with(app, None).await
}

/// `promtool check metrics` (Debian package `prometheus`) as a second, independent
/// validator; skipped with a note when it is not installed.
fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) => {
            static NOTE: std::sync::Once = std::sync::Once::new();
            NOTE.call_once(|| {
                eprintln!("promtool not installed (apt-get install prometheus): skipping its check of the scrape output");
            });
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .expect("writing to promtool");
    }
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn requests(expo: &Exposition, route: &str, method: &str, status: &str) -> f64 {
    expo.get(
        "watchpost_http_requests_total",
        &[("route", route), ("method", method), ("status", status)],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrape_shows_the_collectors_sample_as_host_gauges() {
    let app = spawn_app_with(|s| {
        s.collector = true;
        s.interval_ms = 200;
    })
    .await;
    // A second host whose name is hostile to the format: quote, backslash, line feed.
    let odd = "we\"ird\\host\nname";
    let odd_id = app.store.upsert_host(odd, now_ms()).await.unwrap();
    let ts = now_ms() - 1500;
    app.insert_samples(&[Sample {
        host_id: odd_id,
        ts,
        cpu: 12.5,
        memory: 50.0,
        memory_used: 4 << 30,
        memory_total: 8 << 30,
        swap: 1.5,
        load1: 0.25,
        load5: 0.5,
        load15: 0.75,
        disk: 90.0,
        disk_read_bps: 1024.0,
        disk_write_bps: 2048.5,
        net_rx_bps: 100.0,
        net_tx_bps: 200.0,
        processes: 321,
        uptime: 86_400,
    }])
    .await;

    // Wait until the collector has stored a sample and its engine has evaluated it.
    let local = app.local_host.as_str();
    let deadline = Instant::now() + WAIT;
    let (text, expo) = loop {
        let (text, expo) = scrape(&app).await;
        let evaluated = expo.value("watchpost_alert_evaluations_total", &[]) >= 1.0;
        let sampled = expo
            .get(
                "watchpost_host_sample_timestamp_seconds",
                &[("host", local)],
            )
            .is_some();
        if evaluated && sampled {
            break (text, expo);
        }
        assert!(
            Instant::now() < deadline,
            "no collector sample in time:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The local host's gauges are the stored sample with that timestamp.
    let g = |name: &str| expo.value(name, &[("host", local)]);
    let ts_local = (g("watchpost_host_sample_timestamp_seconds") * 1000.0).round() as i64;
    let stored = app
        .store
        .samples_between(app.local_host_id, ts_local, ts_local)
        .await
        .unwrap();
    let s = stored
        .first()
        .unwrap_or_else(|| panic!("no sample at {ts_local}:\n{text}"));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(g("watchpost_host_cpu_usage_ratio"), s.cpu / 100.0));
    assert!(close(
        g("watchpost_host_memory_usage_ratio"),
        s.memory / 100.0
    ));
    assert_eq!(g("watchpost_host_memory_used_bytes"), s.memory_used as f64);
    assert_eq!(
        g("watchpost_host_memory_total_bytes"),
        s.memory_total as f64
    );
    assert!(s.memory_total > 0);
    assert!(close(g("watchpost_host_load1"), s.load1));
    assert_eq!(g("watchpost_host_processes"), s.processes as f64);
    assert!(s.processes > 0);
    assert_eq!(g("watchpost_host_uptime_seconds"), s.uptime as f64);
    let age = g("watchpost_host_sample_age_seconds");
    assert!((0.0..30.0).contains(&age), "age {age}");

    // The odd host: exact values, its name back intact from the escaped label.
    let o = |name: &str| expo.value(name, &[("host", odd)]);
    assert_eq!(o("watchpost_host_cpu_usage_ratio"), 0.125);
    assert_eq!(o("watchpost_host_memory_usage_ratio"), 0.5);
    assert_eq!(o("watchpost_host_memory_used_bytes"), (4u64 << 30) as f64);
    assert_eq!(o("watchpost_host_memory_total_bytes"), (8u64 << 30) as f64);
    assert_eq!(o("watchpost_host_swap_usage_ratio"), 0.015);
    assert_eq!(o("watchpost_host_load1"), 0.25);
    assert_eq!(o("watchpost_host_load5"), 0.5);
    assert_eq!(o("watchpost_host_load15"), 0.75);
    assert_eq!(o("watchpost_host_disk_usage_ratio"), 0.9);
    assert_eq!(o("watchpost_host_disk_read_bytes_per_second"), 1024.0);
    assert_eq!(o("watchpost_host_disk_write_bytes_per_second"), 2048.5);
    assert_eq!(o("watchpost_host_network_receive_bytes_per_second"), 100.0);
    assert_eq!(o("watchpost_host_network_transmit_bytes_per_second"), 200.0);
    assert_eq!(o("watchpost_host_processes"), 321.0);
    assert_eq!(o("watchpost_host_uptime_seconds"), 86_400.0);
    assert_eq!(
        o("watchpost_host_sample_timestamp_seconds"),
        ts as f64 / 1000.0
    );
    assert!(o("watchpost_host_sample_age_seconds") >= 1.5);
    assert!(
        text.contains(r#"host="we\"ird\\host\nname""#),
        "escaped label missing:\n{text}"
    );
    // Exactly the two hosts with samples, one series each per gauge.
    assert_eq!(expo.with_name("watchpost_host_cpu_usage_ratio").count(), 2);

    // The service's own state.
    assert_eq!(expo.value("watchpost_database_up", &[]), 1.0);
    assert_eq!(expo.value("watchpost_ingest_batches_total", &[]), 0.0);
    assert_eq!(expo.value("watchpost_ingest_rows_total", &[]), 0.0);
    let engine = match app.engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    assert_eq!(
        expo.value(
            "watchpost_build_info",
            &[("version", env!("CARGO_PKG_VERSION")), ("engine", engine)]
        ),
        1.0
    );
    let pools: Vec<&str> = expo
        .with_name("watchpost_db_pool_max_connections")
        .map(|s| s.labels["pool"].as_str())
        .collect();
    match app.engine {
        Engine::Sqlite => {
            assert_eq!(pools, ["read", "write"]);
            assert_eq!(
                expo.value("watchpost_db_pool_max_connections", &[("pool", "write")]),
                1.0
            );
        }
        Engine::Postgres => assert_eq!(pools, ["main"]),
    }
    for s in expo.with_name("watchpost_db_pool_connections") {
        let pool = s.labels["pool"].as_str();
        let idle = expo.value("watchpost_db_pool_idle_connections", &[("pool", pool)]);
        let max = expo.value("watchpost_db_pool_max_connections", &[("pool", pool)]);
        assert!(
            idle <= s.value && s.value <= max,
            "{pool}: {idle} {} {max}",
            s.value
        );
    }
    // Public: no user names, no secrets.
    assert!(!text.contains(ADMIN_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_requests_are_counted_by_route_template_and_status() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let (_, before) = scrape(&app).await;
    let route = "/logs/analyses/{id}";
    assert_eq!(requests(&before, route, "GET", "404"), 0.0);

    // Two ids, one template; a 401 on the same route; a path no route matches.
    for id in [987_654_321, 123_456_789] {
        let resp = app.get(&format!("/logs/analyses/{id}"), &token).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    let resp = app.get_anon("/logs/analyses/5").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app.get_anon("/no/such/thing-42").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .client
        .request(
            reqwest::Method::from_bytes(b"BREW").unwrap(),
            app.url("/healthz"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    let (text, after) = scrape(&app).await;
    assert_eq!(requests(&after, route, "GET", "404"), 2.0, "{text}");
    assert_eq!(requests(&after, route, "GET", "401"), 1.0, "{text}");
    assert_eq!(requests(&after, "unmatched", "GET", "404"), 1.0, "{text}");
    assert_eq!(requests(&after, "/healthz", "OTHER", "405"), 1.0, "{text}");
    // The first scrape is counted under its own template by the second.
    assert_eq!(requests(&after, PATH, "GET", "200"), 1.0, "{text}");
    // Raw paths never become labels.
    for raw in [
        "987654321",
        "123456789",
        "/logs/analyses/5",
        "/no/such",
        "BREW",
    ] {
        assert!(!text.contains(raw), "{raw} leaked into the scrape:\n{text}");
    }

    // The histogram of the route: cumulative buckets, +Inf = _count = its 3 requests.
    let h = "watchpost_http_request_duration_seconds";
    assert_eq!(after.value(&format!("{h}_count"), &[("route", route)]), 3.0);
    let mut buckets: Vec<(f64, f64)> = after
        .with_name(&format!("{h}_bucket"))
        .filter(|s| s.labels["route"] == route)
        .map(|s| {
            (
                s.labels["le"].parse::<f64>().unwrap_or(f64::INFINITY),
                s.value,
            )
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, 3.0)));
    let sum = after.value(&format!("{h}_sum"), &[("route", route)]);
    assert!(sum > 0.0 && sum < 30.0, "{sum}");
    // _count of every route equals the requests counted for it.
    for s in after.with_name(&format!("{h}_count")) {
        let r = &s.labels["route"];
        let total: f64 = after
            .with_name("watchpost_http_requests_total")
            .filter(|c| &c.labels["route"] == r)
            .map(|c| c.value)
            .sum();
        assert_eq!(s.value, total, "route {r}");
    }

    // Scraping again adds exactly that scrape.
    let (_, third) = scrape(&app).await;
    assert_eq!(requests(&third, PATH, "GET", "200"), 2.0);
    assert_eq!(requests(&third, route, "GET", "404"), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_token_is_required_when_configured() {
    let app = spawn_app_with(|s| s.prometheus_token = Some(Secret::new(TOKEN))).await;
    let detail = assert_error(scrape_raw(&app, None).await, StatusCode::UNAUTHORIZED).await;
    assert!(detail.contains("token"), "{detail}");
    let resp = scrape_raw(&app, None).await;
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    for wrong in [
        "wrong-token-0123456789abcdef",
        &TOKEN[..TOKEN.len() - 1],
        &format!("{TOKEN}x"),
    ] {
        let resp = scrape_raw(&app, Some(wrong)).await;
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        assert_error(resp, StatusCode::UNAUTHORIZED).await;
    }
    // The token in another header, or an API token of a user, is not it.
    let resp = app.get(PATH, TOKEN).await;
    assert_error(resp, StatusCode::UNAUTHORIZED).await;
    let user_token = app.register_and_login().await;
    assert_error(
        scrape_raw(&app, Some(&user_token)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let (_, expo) = scrape_with(&app, Some(TOKEN)).await;
    // The refusals were counted too, under the route.
    assert!(requests(&expo, PATH, "GET", "401") >= 5.0);

    // Without a configured token the endpoint is public.
    let open = spawn_app().await;
    scrape(&open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_route_leaves_the_json_metrics_routes_alone() {
    let app = spawn_app().await;
    assert_error(app.get_anon("/metrics").await, StatusCode::UNAUTHORIZED).await;
    assert_error(
        app.get_anon("/metrics/history").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let token = app.register_and_login().await;
    let resp = app.get("/metrics?limit=1", &token).await;
    json_with_status(resp, StatusCode::OK).await;
    // Other methods are 405 with the JSON error shape.
    let resp = app.client.post(app.url(PATH)).send().await.unwrap();
    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED).await;

    // gzip when asked for, and the same document inside.
    let resp = app
        .client
        .get(app.url(PATH))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_security_headers(resp.headers());
    let bytes = resp.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .expect("gunzip");
    parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    // The OpenAPI document describes it truthfully: text/plain, optional bearer token.
    let doc = json_with_status(app.get_anon("/openapi.json").await, StatusCode::OK).await;
    let op = &doc["paths"][PATH]["get"];
    assert!(
        op["responses"]["200"]["content"][CONTENT_TYPE].is_object(),
        "{op}"
    );
    assert!(op["responses"]["401"].is_object(), "{op}");
    let security = op["security"].as_array().expect("security list");
    assert!(
        security
            .iter()
            .any(|s| s.as_object().is_some_and(|o| o.is_empty())),
        "{op}"
    );
    assert!(
        security.iter().any(|s| s.get("prometheus_token").is_some()),
        "{op}"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["prometheus_token"]["scheme"],
        "bearer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_outbox_gauges_follow_pending_and_dead_deliveries() {
    /// Fires one CPU alert through a fresh engine, as the collector would.
    async fn fire(app: &TestApp) {
        let mut eng = AlertEngine::new(app.store.clone()).await.expect("engine");
        let s = sample(app.local_host_id, now_ms() - 1000, 95.0, 10.0);
        app.insert_samples(std::slice::from_ref(&s)).await;
        eng.observe(std::slice::from_ref(&s), s.ts)
            .await
            .expect("observe");
    }
    let outbox =
        |e: &Exposition, state: &str| e.value("watchpost_outbox_deliveries", &[("state", state)]);

    // No worker: the delivery stays pending and ages.
    let rx = WebhookReceiver::start().await;
    let app = spawn_app_with(|s| {
        s.alert_webhook_url = Some(Secret::new(rx.url()));
        s.notifier = false;
    })
    .await;
    let (_, e) = scrape(&app).await;
    assert_eq!(outbox(&e, "pending"), 0.0);
    assert_eq!(
        e.value("watchpost_outbox_oldest_pending_age_seconds", &[]),
        0.0
    );
    fire(&app).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, e) = scrape(&app).await;
    assert_eq!(outbox(&e, "pending"), 1.0);
    assert_eq!(outbox(&e, "dead"), 0.0);
    assert!(e.value("watchpost_outbox_oldest_pending_age_seconds", &[]) > 0.0);

    // A receiver that always fails and no retries: the delivery goes dead.
    rx.default_status(503);
    let app = spawn_app_with(|s| {
        s.alert_webhook_url = Some(Secret::new(rx.url()));
        s.alert_webhook_retries = 0;
    })
    .await;
    fire(&app).await;
    let deadline = Instant::now() + WAIT;
    let e = loop {
        let (text, e) = scrape(&app).await;
        if outbox(&e, "dead") == 1.0 {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no dead delivery in time:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(outbox(&e, "pending"), 0.0);
    assert_eq!(outbox(&e, "delivered"), 0.0);
    assert_eq!(
        e.value("watchpost_outbox_oldest_pending_age_seconds", &[]),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_shows_which_replica_holds_the_agent_alerting_lease() {
    let app = spawn_app().await;
    let lease = [("lease", "agent-alerts")];
    // The only replica takes the free lease on its first round.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, expo) = scrape(&app).await;
        if expo.get("watchpost_lease_held", &lease) == Some(1.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lease not held after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // A replica that does not take part in leader jobs shows no lease at all.
    let follower = spawn_app_with(|s| s.leader_jobs = false).await;
    let (text, _) = scrape(&follower).await;
    assert!(!text.contains("watchpost_lease_held"), "{text}");
}
