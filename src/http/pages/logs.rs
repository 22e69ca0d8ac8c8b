//! Log analysis pages: upload a file (or paste text) without JavaScript, the list of the
//! user's stored analyses, and one report with level counts, format mix, an inline SVG
//! time histogram and the top patterns, filterable by level. Log text is untrusted: it is
//! only ever rendered as escaped text, never into attributes htmx reads or into scripts.

use super::render::{
    error_page, fmt_bytes, fmt_time, not_found_page, redirect_with, render, take_flash, Flash, Nav,
    PageError, PageQuery,
};
use super::rules::parse_id;
use super::session::{csrf_matches, CsrfForm, Ctx, CSRF_HEADER};
use crate::http::api::logs::{analyze_request, own_analysis, store_analysis};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::LogAnalysis;
use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Instant;

pub const PAGE_SIZE: i64 = 50;

/// The analyzer's levels in severity order, with their CSS class.
const LEVELS: [(&str, &str); 8] = [
    ("CRITICAL", "lvl-critical"),
    ("ERROR", "lvl-error"),
    ("WARN", "lvl-warn"),
    ("NOTICE", "lvl-notice"),
    ("INFO", "lvl-info"),
    ("DEBUG", "lvl-debug"),
    ("TRACE", "lvl-trace"),
    ("UNKNOWN", "lvl-unknown"),
];

fn level_class(name: &str) -> &'static str {
    LEVELS
        .iter()
        .find(|(l, _)| *l == name)
        .map_or("lvl-unknown", |(_, c)| c)
}

/// A level named in a link (`warning` is the original service's WARN); `None` if unknown.
fn parse_level(raw: &str) -> Option<&'static str> {
    let upper = raw.trim().to_ascii_uppercase();
    let upper = if upper == "WARNING" {
        "WARN".to_owned()
    } else {
        upper
    };
    LEVELS.iter().map(|(l, _)| *l).find(|l| *l == upper)
}

// ---------------------------------------------------------------------------------------
// The list and the upload form

pub struct AnalysisRow {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub lines: i64,
    pub errors: i64,
    pub size: String,
    /// `ERROR 3 · WARN 1`, most severe first.
    pub levels: String,
}

#[derive(Template)]
#[template(path = "pages/logs.html")]
pub struct LogsPage {
    pub nav: Nav,
    pub flash: Option<Flash>,
    pub rows: Vec<AnalysisRow>,
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub csrf: String,
    pub max_upload: String,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    pub page: Option<i64>,
}

fn levels_summary(json: &str) -> String {
    let levels: BTreeMap<String, i64> = serde_json::from_str(json).unwrap_or_default();
    LEVELS
        .iter()
        .filter_map(|(l, _)| {
            levels
                .get(*l)
                .filter(|n| **n > 0)
                .map(|n| format!("{l} {n}"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub async fn logs(
    State(state): State<AppState>,
    ctx: Ctx,
    PageQuery(q): PageQuery<ListQuery>,
) -> Result<Response, PageError> {
    let user = ctx.require_user()?.clone();
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let (mut rows, total) = state
        .store
        .list_log_analyses(user.id, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        .await?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    // A page past the end (an old link) shows the last page instead.
    let page = if page > pages {
        rows = state
            .store
            .list_log_analyses(user.id, PAGE_SIZE, (pages - 1) * PAGE_SIZE)
            .await?
            .0;
        pages
    } else {
        page
    };
    let rows = rows
        .into_iter()
        .map(|m| AnalysisRow {
            id: m.id,
            created: fmt_time(m.created_at),
            lines: m.lines,
            errors: m.errors,
            size: fmt_bytes(m.bytes as f64),
            levels: levels_summary(&m.levels),
            name: m.name,
        })
        .collect();
    Ok(render(&LogsPage {
        nav: Nav::new(&ctx, "logs"),
        flash: take_flash(&ctx).await?,
        rows,
        page,
        pages,
        total,
        csrf: ctx.csrf.clone(),
        max_upload: fmt_bytes(state.settings.log_upload_max_bytes as f64),
    }))
}

/// The upload form's POST: the same streaming analysis as `POST /logs/analyze`. The CSRF
/// token comes in the `csrf_token` field ahead of the file (or the `x-csrf-token`
/// header) and is checked before any of the log is read.
pub async fn upload(
    State(state): State<AppState>,
    ctx: Ctx,
    req: Request,
) -> Result<Response, PageError> {
    let user = ctx.require_user()?.clone();
    let header_ok = csrf_matches(
        &ctx,
        req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
    );
    let pending = (!header_ok).then(|| ctx.csrf.clone());
    let started = Instant::now();
    let analysed = match analyze_request(&state, req, pending.as_deref()).await {
        Ok(a) => a,
        Err(e) => return Ok(upload_error(e, &ctx)),
    };
    let id = store_analysis(&state, user.id, &analysed, started.elapsed(), None)
        .await?
        .id;
    let r = &analysed.report;
    let errors = ["ERROR", "CRITICAL"]
        .iter()
        .filter_map(|l| r.levels.get(l))
        .sum::<u64>();
    redirect_with(
        &ctx,
        &format!("/dashboard/logs/{id}"),
        Flash::new(format!(
            "Analysed “{}”: {} lines, {} errors.",
            analysed.name, r.lines, errors
        )),
    )
    .await
}

fn upload_error(e: ApiError, ctx: &Ctx) -> Response {
    let (status, message) = match e {
        ApiError::Forbidden(_) => (
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Reload the page and try again."
                .to_owned(),
        ),
        ApiError::UnsupportedMediaType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Upload the log with the form on the Logs page.".to_owned(),
        ),
        ApiError::Validation(m) if m.contains("no file field") => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a log file or paste some log text.".to_owned(),
        ),
        ApiError::Validation(m) | ApiError::BadRequest(m) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("The log could not be analysed: {m}"),
        ),
        ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
        ApiError::RequestTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "The upload stalled and was cut off; try again.".to_owned(),
        ),
        other => return PageError::from(other).into_response(),
    };
    error_page(status, &message, ctx)
}

/// The caller's analysis with this id, or the 404 page (a malformed, unknown or other user's
/// id all look the same).
async fn find_own(
    state: &AppState,
    ctx: &Ctx,
    user_id: i64,
    id: &str,
) -> Result<Result<LogAnalysis, Response>, PageError> {
    let Some(id) = parse_id(id) else {
        return Ok(Err(not_found_page(ctx)));
    };
    match own_analysis(state, user_id, id).await {
        Ok(a) => Ok(Ok(a)),
        Err(ApiError::NotFound(_)) => Ok(Err(not_found_page(ctx))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    f: CsrfForm<DeleteForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form: _ } = f;
    let user = ctx.require_user()?.clone();
    let analysis = match find_own(&state, &ctx, user.id, &id).await? {
        Ok(a) => a,
        Err(page) => return Ok(page),
    };
    if !state
        .store
        .delete_log_analysis(analysis.meta.id, user.id)
        .await?
    {
        return Ok(not_found_page(&ctx));
    }
    redirect_with(
        &ctx,
        "/dashboard/logs",
        Flash::new(format!("Deleted the analysis of “{}”.", analysis.meta.name)),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// One report

/// The stored report, read leniently: fields it lacks are empty.
#[derive(Deserialize, Default)]
#[serde(default)]
struct StoredReport {
    lines: u64,
    bytes: u64,
    compressed_bytes: Option<u64>,
    levels: BTreeMap<String, u64>,
    formats: BTreeMap<String, u64>,
    templates: u64,
    patterns: Vec<StoredPattern>,
    top_errors: Vec<String>,
    histogram: Option<serde_json::Value>,
    time_range: Option<StoredRange>,
    truncated_lines: u64,
    elapsed_ms: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StoredPattern {
    template: String,
    count: u64,
    levels: BTreeMap<String, u64>,
    first_line: u64,
    last_line: u64,
    first_ts: Option<String>,
    last_ts: Option<String>,
    example: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StoredRange {
    first: String,
    last: String,
}

pub struct LevelRow {
    pub name: &'static str,
    pub class: &'static str,
    pub count: u64,
    pub percent: String,
    /// Bar length in the 0..100 viewBox.
    pub bar: f64,
    pub selected: bool,
}

pub struct FormatRow {
    pub name: String,
    pub count: u64,
    pub percent: String,
}

pub struct LevelBadge {
    pub name: String,
    pub class: &'static str,
    pub count: u64,
}

pub struct PatternRow {
    pub template: String,
    pub count: u64,
    pub levels: Vec<LevelBadge>,
    pub example: String,
    pub lines: String,
    pub times: String,
}

pub struct HistBar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub title: String,
}

pub struct HistTick {
    pub y: f64,
    pub label: String,
}

pub struct HistLabel {
    pub x: f64,
    pub label: String,
    pub anchor: &'static str,
}

/// The time histogram as precomputed SVG geometry (viewBox units).
pub struct Histogram {
    pub view_box: String,
    pub aria_label: String,
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_bottom: f64,
    pub y_label_x: f64,
    pub x_label_y: f64,
    pub bars: Vec<HistBar>,
    pub y_ticks: Vec<HistTick>,
    pub x_labels: Vec<HistLabel>,
    pub bucket: String,
}

#[derive(Template)]
#[template(path = "pages/log_report.html")]
pub struct ReportPage {
    pub nav: Nav,
    pub flash: Option<Flash>,
    pub id: i64,
    pub name: String,
    pub created: String,
    pub csrf: String,
    pub lines: u64,
    pub size: String,
    pub compressed: Option<String>,
    pub templates: u64,
    pub time_range: Option<(String, String)>,
    pub truncated_lines: u64,
    pub elapsed_ms: u64,
    pub errors: u64,
    pub levels: Vec<LevelRow>,
    pub formats: Vec<FormatRow>,
    pub histogram: Option<Histogram>,
    pub level: Option<&'static str>,
    pub patterns: Vec<PatternRow>,
    pub patterns_total: usize,
    pub top_errors: Vec<String>,
}

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    pub level: Option<String>,
}

fn percent(n: u64, total: u64) -> String {
    if total == 0 {
        return "0 %".into();
    }
    let p = n as f64 * 100.0 / total as f64;
    if p > 0.0 && p < 0.1 {
        "<0.1 %".into()
    } else {
        format!("{p:.1} %")
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `2026-11-27T10:00:00Z` → `2026-11-27 10:00:00`.
fn short_ts(ts: &str) -> String {
    ts.trim_end_matches('Z')
        .replacen('T', " ", 1)
        .split('.')
        .next()
        .unwrap_or("")
        .to_owned()
}

fn fmt_secs(s: f64) -> String {
    if s >= 86_400.0 && s % 86_400.0 == 0.0 {
        format!("{} d", s / 86_400.0)
    } else if s >= 3600.0 && s % 3600.0 == 0.0 {
        format!("{} h", s / 3600.0)
    } else if s >= 60.0 && s % 60.0 == 0.0 {
        format!("{} min", s / 60.0)
    } else {
        format!("{s} s")
    }
}

/// Buckets as `(start label, lines)` from the report's histogram: `buckets` of
/// `[start, lines]` pairs (with `bucket_secs`), or `start` + `bucket_seconds` + `counts`.
fn histogram_buckets(h: &serde_json::Value) -> Option<(Vec<(String, u64)>, f64)> {
    let secs = h
        .get("bucket_secs")
        .or_else(|| h.get("bucket_seconds"))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    if let Some(buckets) = h.get("buckets").and_then(|b| b.as_array()) {
        let out = buckets
            .iter()
            .filter_map(|b| {
                let pair = b.as_array()?;
                let ts = pair.first()?.as_str()?.to_owned();
                let n = pair.get(1)?.as_u64()?;
                Some((ts, n))
            })
            .collect();
        return Some((out, secs));
    }
    let counts = h.get("counts")?.as_array()?;
    let start = h.get("start")?.as_str()?;
    let start = chrono::DateTime::parse_from_rfc3339(start).ok()?;
    let out = counts
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let at = start + chrono::Duration::milliseconds((secs * 1000.0 * i as f64) as i64);
            (
                at.to_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                n.as_u64().unwrap_or(0),
            )
        })
        .collect();
    Some((out, secs))
}

fn build_histogram(h: &serde_json::Value) -> Option<Histogram> {
    let (buckets, secs) = histogram_buckets(h)?;
    if buckets.is_empty() {
        return None;
    }
    const W: f64 = 800.0;
    const H: f64 = 200.0;
    let (left, right, top, bottom) = (48.0, W - 10.0, 10.0, H - 26.0);
    let max = buckets.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let n = buckets.len() as f64;
    let slot = (right - left) / n;
    let gap = if slot > 4.0 { slot * 0.15 } else { 0.0 };
    let plot_h = bottom - top;
    let bars = buckets
        .iter()
        .enumerate()
        .filter(|(_, (_, c))| *c > 0)
        .map(|(i, (ts, c))| {
            let h = (*c as f64 / max as f64 * plot_h).max(1.0);
            HistBar {
                x: round1(left + i as f64 * slot + gap / 2.0),
                y: round1(bottom - h),
                w: round1((slot - gap).max(0.5)),
                h: round1(h),
                title: format!(
                    "{}: {c} line{}",
                    short_ts(ts),
                    if *c == 1 { "" } else { "s" }
                ),
            }
        })
        .collect();
    let mut y_ticks = vec![HistTick {
        y: bottom,
        label: "0".into(),
    }];
    if max >= 2 {
        y_ticks.push(HistTick {
            y: round1(bottom - plot_h / 2.0),
            label: format!("{}", max as f64 / 2.0),
        });
    }
    y_ticks.push(HistTick {
        y: top,
        label: max.to_string(),
    });
    let mut x_labels = vec![HistLabel {
        x: left,
        label: short_ts(&buckets[0].0),
        anchor: "start",
    }];
    if buckets.len() >= 2 {
        x_labels.push(HistLabel {
            x: right,
            label: short_ts(&buckets[buckets.len() - 1].0),
            anchor: "end",
        });
    }
    if buckets.len() >= 5 {
        let mid = buckets.len() / 2;
        x_labels.push(HistLabel {
            x: round1(left + mid as f64 * slot),
            label: short_ts(&buckets[mid].0),
            anchor: "middle",
        });
    }
    let total: u64 = buckets.iter().map(|(_, c)| *c).sum();
    Some(Histogram {
        view_box: format!("0 0 {W} {H}"),
        aria_label: format!(
            "Lines over time: {total} timestamped lines in {} buckets, at most {max} per bucket",
            buckets.len()
        ),
        plot_left: left,
        plot_right: right,
        plot_bottom: bottom,
        y_label_x: left - 6.0,
        x_label_y: H - 8.0,
        bars,
        y_ticks,
        x_labels,
        bucket: if secs > 0.0 {
            fmt_secs(secs)
        } else {
            String::new()
        },
    })
}

pub async fn report(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    PageQuery(q): PageQuery<ReportQuery>,
) -> Result<Response, PageError> {
    let user = ctx.require_user()?.clone();
    let analysis = match find_own(&state, &ctx, user.id, &id).await? {
        Ok(a) => a,
        Err(page) => return Ok(page),
    };
    let r: StoredReport = serde_json::from_str(&analysis.report).unwrap_or_default();
    let level = q.level.as_deref().and_then(parse_level);
    let max_level = r.levels.values().copied().max().unwrap_or(0).max(1);
    let levels = LEVELS
        .iter()
        .map(|(name, class)| {
            let count = r.levels.get(*name).copied().unwrap_or(0);
            LevelRow {
                name,
                class,
                count,
                percent: percent(count, r.lines),
                bar: round1(count as f64 * 100.0 / max_level as f64),
                selected: level == Some(*name),
            }
        })
        .collect();
    let mut formats: Vec<FormatRow> = r
        .formats
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(f, n)| FormatRow {
            name: f.clone(),
            count: *n,
            percent: percent(*n, r.lines),
        })
        .collect();
    formats.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    let patterns_total = r.patterns.len();
    let patterns = r
        .patterns
        .into_iter()
        .filter(|p| level.is_none_or(|l| p.levels.get(l).is_some_and(|n| *n > 0)))
        .map(|p| {
            let mut badges: Vec<LevelBadge> = LEVELS
                .iter()
                .filter_map(|(l, class)| {
                    p.levels.get(*l).filter(|n| **n > 0).map(|n| LevelBadge {
                        name: (*l).to_owned(),
                        class,
                        count: *n,
                    })
                })
                .collect();
            // Levels this page does not know still show (as "unknown" styling).
            badges.extend(
                p.levels
                    .iter()
                    .filter(|(l, n)| **n > 0 && parse_level(l).is_none())
                    .map(|(l, n)| LevelBadge {
                        name: l.clone(),
                        class: level_class(l),
                        count: *n,
                    }),
            );
            let lines = if p.first_line == p.last_line {
                format!("line {}", p.first_line)
            } else {
                format!("lines {}–{}", p.first_line, p.last_line)
            };
            let times = match (&p.first_ts, &p.last_ts) {
                (Some(a), Some(b)) if a != b => format!("{} – {}", short_ts(a), short_ts(b)),
                (Some(a), _) => short_ts(a),
                _ => String::new(),
            };
            PatternRow {
                template: p.template,
                count: p.count,
                levels: badges,
                example: p.example,
                lines,
                times,
            }
        })
        .collect();
    let errors = ["ERROR", "CRITICAL"]
        .iter()
        .filter_map(|l| r.levels.get(*l))
        .sum::<u64>();
    let page = ReportPage {
        nav: Nav::new(&ctx, "logs"),
        flash: take_flash(&ctx).await?,
        id: analysis.meta.id,
        name: analysis.meta.name,
        created: fmt_time(analysis.meta.created_at),
        csrf: ctx.csrf.clone(),
        lines: r.lines,
        size: fmt_bytes(r.bytes as f64),
        compressed: r.compressed_bytes.map(|c| fmt_bytes(c as f64)),
        templates: r.templates,
        time_range: r
            .time_range
            .map(|t| (short_ts(&t.first), short_ts(&t.last))),
        truncated_lines: r.truncated_lines,
        elapsed_ms: r.elapsed_ms,
        errors,
        levels,
        formats,
        histogram: r.histogram.as_ref().and_then(build_histogram),
        level,
        patterns,
        patterns_total,
        top_errors: r.top_errors,
    };
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_with_the_original_alias() {
        assert_eq!(parse_level("error"), Some("ERROR"));
        assert_eq!(parse_level("WARNING"), Some("WARN"));
        assert_eq!(parse_level("nope"), None);
    }

    #[test]
    fn histogram_reads_both_shapes() {
        let a = serde_json::json!({"bucket_secs": 60.0, "buckets": [["2026-11-27T10:00:00Z", 3], ["2026-11-27T10:01:00Z", 0], ["2026-11-27T10:02:00Z", 1]]});
        let h = build_histogram(&a).unwrap();
        assert_eq!(h.bars.len(), 2, "zero buckets draw no bar");
        assert_eq!(h.bucket, "1 min");
        assert_eq!(h.x_labels[0].label, "2026-11-27 10:00:00");
        let b = serde_json::json!({"start": "2026-11-27T10:00:00Z", "bucket_seconds": 3600, "counts": [1, 2]});
        let h = build_histogram(&b).unwrap();
        assert_eq!(h.bars.len(), 2);
        assert_eq!(h.x_labels[1].label, "2026-11-27 11:00:00");
        assert!(build_histogram(&serde_json::json!({"buckets": []})).is_none());
    }

    #[test]
    fn names_are_cut_to_the_last_segment() {
        use crate::http::api::logs::clean_name;
        assert_eq!(clean_name("C:\\logs\\app.log", "upload"), "app.log");
        assert_eq!(clean_name("../../etc/passwd", "upload"), "passwd");
        assert_eq!(clean_name("", "upload"), "upload");
        assert_eq!(clean_name("a\u{0}b\nc", "upload"), "abc");
        assert_eq!(clean_name(&"x".repeat(300), "upload").chars().count(), 255);
    }
}
