//! Stored log analyses: `analysis_id` from `POST /logs/analyze`, `/logs/analyses` (list,
//! one, delete; only one's own), the dashboard session on those routes (CSRF and
//! same-origin checks), and the `/dashboard/logs` pages without JavaScript: upload,
//! report with level counts, level filter, escaping of hostile log text.

use crate::helpers::*;
use crate::pages::{
    assert_csp_clean_markup, assert_redirect, assert_to_login, body_with_status, csrf_of, header,
    spawn_dashboard, table_rows, unescape_html, Browser,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::Write;

const LOG: &str =
    "2026-11-27 10:00:00,001 - app - ERROR - Connection refused to 10.0.0.1:5432 after 30 ms\n\
2026-11-27 10:00:01,002 - app - INFO - started worker 1\n\
2026-11-27 10:00:02,003 - app - ERROR - Connection refused to 10.0.0.2:5432 after 31 ms\n\
2026-11-27 10:00:03,004 - app - WARNING - slow query took 1200 ms\n\
2026-11-27 10:00:04,005 - app - ERROR - Connection refused to 10.0.0.3:5432 after 29 ms\n";

/// Log text that would run script or trigger htmx if it were ever rendered unescaped.
pub(crate) const XSS_LOG: &str =
    "2026-11-27 10:00:00,001 - web - ERROR - bad input <script>alert(1)</script> from client\n\
2026-11-27 10:00:01,002 - web - ERROR - bad attribute \"><img src=x onerror=alert(1)> in form\n\
2026-11-27 10:00:02,003 - web - WARNING - suspicious hx-get=\"/logout\" in message\n\
2026-11-27 10:00:03,004 - web - INFO - started worker 7\n\
2026-11-27 10:01:04,005 - web - INFO - started worker 8\n";

pub(crate) const XSS_RAW: [&str; 3] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "hx-get=\"/logout\"",
];

const BOUNDARY: &str = "wpboundaryQ8cXk2LmZt7";

/// A multipart body: `(field, file name, content)`; returns (content type, body).
fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, file, content) in fields {
        match file {
            Some(f) => write!(
                body,
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/plain\r\n\r\n"
            ),
            None => write!(
                body,
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
            ),
        }
        .unwrap();
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{BOUNDARY}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

async fn analyze_json(app: &TestApp, token: &str, logs: &str) -> Value {
    json_with_status(
        app.post_json("/logs/analyze", &json!({"logs": logs}), token)
            .await,
        StatusCode::OK,
    )
    .await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .header("token", token)
        .send()
        .await
        .unwrap()
}

fn total(resp: &reqwest::Response) -> i64 {
    header(resp.headers(), "x-total-count")
        .expect("x-total-count")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_analyses_are_stored_per_user_and_deleted() {
    let app = spawn_app().await;
    let (a_id, a) = app.register_and_login_user().await;
    let b = app.register_and_login().await;

    let first = analyze_json(&app, &a, LOG).await;
    // Every field scripts relied on is still there, plus the id.
    for key in [
        "counts",
        "top_errors",
        "lines",
        "bytes",
        "levels",
        "formats",
        "patterns",
        "histogram",
        "time_range",
        "truncated_lines",
        "elapsed_ms",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    assert_eq!(first["counts"]["ERROR"], 3);
    let first_id = first["analysis_id"].as_i64().expect("analysis_id");
    let (ct, body) = multipart(&[("file", Some("dir/app.log"), LOG.as_bytes())]);
    let second = json_with_status(
        app.client
            .post(app.url("/logs/analyze"))
            .header("authorization", format!("Bearer {a}"))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let second_id = second["analysis_id"].as_i64().unwrap();
    assert!(second_id > first_id);
    let raw = json_with_status(
        app.client
            .post(app.url("/logs/analyze"))
            .header("token", &a)
            .header("content-type", "text/plain")
            .body("")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let raw_id = raw["analysis_id"].as_i64().unwrap();

    let resp = app.get("/logs/analyses", &a).await;
    assert_eq!(total(&resp), 3);
    let list = json_with_status(resp, StatusCode::OK).await;
    let list = list.as_array().unwrap();
    let ids: Vec<i64> = list.iter().map(|x| x["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [raw_id, second_id, first_id], "newest first");
    assert_eq!(list[0]["name"], "upload");
    assert_eq!(list[0]["source"], "raw");
    assert_eq!(list[0]["lines"], 0);
    assert_eq!(list[1]["name"], "app.log", "the file name without its path");
    assert_eq!(list[1]["source"], "file");
    assert_eq!(list[2]["name"], "pasted text");
    assert_eq!(list[2]["source"], "json");
    assert_eq!(list[2]["errors"], 3);
    assert_eq!(list[2]["lines"], 5);
    assert_eq!(list[2]["bytes"], LOG.len());
    assert_eq!(list[2]["levels"], json!({"ERROR": 3, "INFO": 1, "WARN": 1}));
    let created = parse_z(list[2]["created_at"].as_str().unwrap());
    assert!((now_ms() - created).abs() < 60_000);
    assert!(list[0].get("report").is_none(), "lists carry no reports");

    let one = json_with_status(
        app.get(&format!("/logs/analyses/{first_id}"), &a).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(one["id"], first_id);
    assert_eq!(one["errors"], 3);
    assert_eq!(one["report"]["lines"], 5);
    assert_eq!(one["report"]["counts"]["WARNING"], 1);
    assert_eq!(one["report"]["top_errors"], first["top_errors"]);
    assert_eq!(one["report"]["patterns"], first["patterns"]);

    // Another user sees nothing of it, and cannot delete it.
    let resp = app.get("/logs/analyses", &b).await;
    assert_eq!(total(&resp), 0);
    assert_eq!(json_with_status(resp, StatusCode::OK).await, json!([]));
    let path = format!("/logs/analyses/{first_id}");
    assert_error(app.get(&path, &b).await, StatusCode::NOT_FOUND).await;
    assert_error(delete(&app, &path, &b).await, StatusCode::NOT_FOUND).await;
    assert_error(
        app.get("/logs/analyses/999999", &a).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        app.get("/logs/analyses/abc", &a).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_error(
        app.get_anon("/logs/analyses").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // The owner deletes it; it is gone, and a second delete is a 404.
    let resp = delete(&app, &path, &a).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_error(app.get(&path, &a).await, StatusCode::NOT_FOUND).await;
    assert_error(delete(&app, &path, &a).await, StatusCode::NOT_FOUND).await;
    assert_eq!(total(&app.get("/logs/analyses", &a).await), 2);
    // The store answers only by id and owner.
    assert!(app
        .store
        .log_analysis(second_id, a_id)
        .await
        .unwrap()
        .is_some());
    assert!(app
        .store
        .log_analysis(second_id, a_id + 1000)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_analyses_paginate_with_a_total() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let doc = analyze_json(&app, &token, &LOG.repeat(i + 1)).await;
        ids.push(doc["analysis_id"].as_i64().unwrap());
    }
    ids.reverse();
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let resp = app
            .get(&format!("/logs/analyses?limit=2&offset={offset}"), &token)
            .await;
        assert_eq!(total(&resp), 5);
        let page = json_with_status(resp, StatusCode::OK).await;
        let page = page.as_array().unwrap();
        assert_eq!(page.len(), if offset == 4 { 1 } else { 2 });
        seen.extend(page.iter().map(|x| x["id"].as_i64().unwrap()));
    }
    assert_eq!(seen, ids);
    let resp = app.get("/logs/analyses?offset=10", &token).await;
    assert_eq!(total(&resp), 5);
    assert_eq!(json_with_status(resp, StatusCode::OK).await, json!([]));
    for bad in ["limit=0", "limit=201", "offset=-1", "limit=x", "nope=1"] {
        let resp = app.get(&format!("/logs/analyses?{bad}"), &token).await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let resp = app.get("/logs/analyses?limit=200", &token).await;
    assert_eq!(
        json_with_status(resp, StatusCode::OK)
            .await
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // Documented in the OpenAPI document.
    let doc = json_with_status(app.get_anon("/openapi.json").await, StatusCode::OK).await;
    assert!(doc["paths"]["/logs/analyses"]["get"].is_object());
    assert!(doc["paths"]["/logs/analyses/{id}"]["get"].is_object());
    assert!(doc["paths"]["/logs/analyses/{id}"]["delete"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_routes_take_the_session_with_csrf_and_refuse_cross_site() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    let (_, name) = b.register_new().await;
    let csrf = b.csrf("/dashboard/logs").await;
    let post = || b.client.post(app.url("/logs/analyze"));

    // The cookie with the CSRF header: analysed and stored.
    let doc = json_with_status(
        post()
            .header("x-csrf-token", &csrf)
            .header("sec-fetch-site", "same-origin")
            .json(&json!({"logs": LOG}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(doc["lines"], 5);
    let first = doc["analysis_id"].as_i64().unwrap();

    // The cookie alone is not enough, nor a wrong token.
    for token in [None, Some("0".repeat(64))] {
        let mut req = post().json(&json!({"logs": LOG}));
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        let detail = assert_error(req.send().await.unwrap(), StatusCode::FORBIDDEN).await;
        assert!(detail.contains("CSRF"), "{detail}");
    }
    let resp = post()
        .header("content-type", "text/plain")
        .body(LOG)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN).await;
    // A cross-site form post (what a hostile page can make a browser send): refused even
    // with a leaked token.
    let (ct, body) = multipart(&[
        ("csrf_token", None, csrf.as_bytes()),
        ("file", Some("x.log"), LOG.as_bytes()),
    ]);
    for (h, v) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "http://evil.example"),
    ] {
        let resp = post()
            .header(h, v)
            .header("content-type", &ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::FORBIDDEN).await;
    }
    let (ct_nocsrf, body_nocsrf) = multipart(&[("file", Some("x.log"), LOG.as_bytes())]);
    let resp = post()
        .header("sec-fetch-site", "cross-site")
        .header("content-type", &ct_nocsrf)
        .body(body_nocsrf.clone())
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN).await;
    let resp = post()
        .header("content-type", &ct_nocsrf)
        .body(body_nocsrf)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN).await;
    // The token as a form field after the file is too late.
    let (ct_late, body_late) = multipart(&[
        ("file", Some("x.log"), LOG.as_bytes()),
        ("csrf_token", None, csrf.as_bytes()),
    ]);
    let resp = post()
        .header("content-type", &ct_late)
        .body(body_late)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN).await;
    // Same origin, token as the first field: accepted.
    let doc = json_with_status(
        post()
            .header("origin", app.base_url.as_str())
            .header("content-type", &ct)
            .body(body)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let second = doc["analysis_id"].as_i64().unwrap();

    // Reads need no CSRF token; the session sees what the user's API token sees.
    let resp = b.get("/logs/analyses").await;
    assert_eq!(total(&resp), 2);
    let list = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(list[0]["id"], second);
    assert_eq!(list[0]["name"], "x.log");
    let api_token = app.login(&name, PASSWORD).await;
    assert_eq!(total(&app.get("/logs/analyses", &api_token).await), 2);
    let one = json_with_status(
        b.get(&format!("/logs/analyses/{first}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(one["report"]["lines"], 5);

    // Delete: only with the token and from this site.
    let path = format!("/logs/analyses/{first}");
    let resp = b.client.delete(app.url(&path)).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN).await;
    let resp = b
        .client
        .delete(app.url(&path))
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN).await;
    let resp = b
        .client
        .delete(app.url(&path))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(total(&b.get("/logs/analyses").await), 1);

    // A logged-out session is no login; an anonymous call gets no session cookie.
    let anon = app.get_anon("/logs/analyses").await;
    assert!(anon.headers().get("set-cookie").is_none());
    assert_error(anon, StatusCode::UNAUTHORIZED).await;
    // A bad token is not rescued by a good cookie.
    let resp = b
        .client
        .get(app.url("/logs/analyses"))
        .header("token", "nope")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED).await;
}

/// The part of the report page between two section ids.
fn section<'a>(body: &'a str, id: &str, next: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = body[start..]
        .find(&format!("id=\"{next}\""))
        .map_or(body.len(), |e| start + e);
    &body[start..end]
}

/// The byte ranges of the elements that carry `hx-disable` (from the opening tag to the
/// matching close tag of the same name), so htmx ignores anything inside them.
fn hx_disabled_ranges(body: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(off) = body[from..].find(" hx-disable") {
        let attr = from + off;
        from = attr + 1;
        let open = body[..attr].rfind('<').expect("hx-disable outside a tag");
        let name: String = body[open + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "hx-disable on a closing tag");
        let (open_tag, close_tag) = (format!("<{name}"), format!("</{name}>"));
        // Walk to the close tag that matches, counting nested elements of the same name.
        let (mut depth, mut i) = (0usize, open);
        let end = loop {
            let next_open = body[i + 1..].find(&open_tag).map(|o| i + 1 + o);
            let next_close = body[i + 1..]
                .find(&close_tag)
                .map(|o| i + 1 + o)
                .unwrap_or_else(|| panic!("<{name} hx-disable> is never closed"));
            match next_open {
                Some(o) if o < next_close => {
                    depth += 1;
                    i = o;
                }
                _ if depth == 0 => break next_close,
                _ => {
                    depth -= 1;
                    i = next_close;
                }
            }
        };
        ranges.push((open, end));
    }
    ranges
}

/// Every occurrence of `needle` in the page's main content lies inside an `hx-disable`
/// element; returns how many there were.
fn assert_only_inside_hx_disable(body: &str, needle: &str) -> usize {
    let main = body.find("<main").expect("no <main>");
    let ranges = hx_disabled_ranges(body);
    let hits: Vec<usize> = body
        .match_indices(needle)
        .map(|(i, _)| i)
        .filter(|&i| i > main)
        .collect();
    for &i in &hits {
        assert!(
            ranges.iter().any(|&(s, e)| s < i && i < e),
            "{needle:?} at byte {i} is outside every hx-disable element: ...{}...",
            &body[i.saturating_sub(200)..i]
        );
    }
    hits.len()
}

#[test]
fn the_hx_disable_checker_finds_text_outside() {
    let page = "<main><div hx-disable><div>xq</div>xq</div><p>zq</p></main>";
    assert_eq!(assert_only_inside_hx_disable(page, "xq"), 2);
    let outside = std::panic::catch_unwind(|| assert_only_inside_hx_disable(page, "zq"));
    assert!(outside.is_err(), "text outside hx-disable was not caught");
}

async fn upload(b: &Browser<'_>, fields: &[(&str, Option<&str>, &[u8])]) -> reqwest::Response {
    let (ct, body) = multipart(fields);
    b.client
        .post(b.app.url("/dashboard/logs"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Uploads through the form; returns the report page's path.
async fn upload_ok(b: &Browser<'_>, fields: &[(&str, Option<&str>, &[u8])]) -> String {
    let resp = upload(b, fields).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{:?}", resp.headers());
    let to = header(resp.headers(), "location").unwrap();
    assert!(to.starts_with("/dashboard/logs/"), "{to}");
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_page_uploads_without_javascript_and_escapes_log_text() {
    let app = spawn_dashboard().await;
    assert_to_login(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/dashboard/logs"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let b = Browser::new(&app);
    let (uid, _) = b.register_new().await;
    let page = b.page("/dashboard/logs", StatusCode::OK).await;
    assert_csp_clean_markup(&page, "logs page");
    assert!(page.contains("href=\"/dashboard/logs\""), "nav link");
    assert!(page.contains("enctype=\"multipart/form-data\""));
    // The CSRF field precedes the file input in the form.
    let form = &page[page.find("action=\"/dashboard/logs\"").unwrap()..];
    assert!(form.find("name=\"csrf_token\"").unwrap() < form.find("type=\"file\"").unwrap());
    let csrf = csrf_of(&page);

    // Upload a hostile log, with an empty paste box after the file (as browsers send it).
    let report = upload_ok(
        &b,
        &[
            ("csrf_token", None, csrf.as_bytes()),
            ("file", Some("<i>web.log"), XSS_LOG.as_bytes()),
            ("logs", None, b""),
        ],
    )
    .await;
    let body = b.page(&report, StatusCode::OK).await;
    assert_csp_clean_markup(&body, "log report");
    for raw in XSS_RAW {
        assert!(!body.contains(raw), "raw {raw:?} in the report page");
        assert!(
            unescape_html(&body).contains(raw),
            "{raw:?} not shown as text"
        );
    }
    assert!(!body.contains("<i>web.log"));
    assert!(body.contains("&lt;i&gt;web.log") || body.contains("&#60;i&#62;web.log"));
    assert!(!body.contains("<img"), "no injected element");
    // Everything taken from the log (file name, templates, examples) sits where htmx
    // processes nothing.
    for needle in [
        "web.log",
        "bad input",
        "bad attribute",
        "suspicious",
        "started worker",
    ] {
        assert!(
            assert_only_inside_hx_disable(&body, needle) > 0,
            "{needle:?} not on the report page"
        );
    }
    // Level counts in the levels table.
    let rows = table_rows(section(&body, "levels", "formats"));
    let count = |level: &str| {
        rows.iter()
            .find(|r| r.first().map(String::as_str) == Some(level))
            .map(|r| r[1].clone())
            .unwrap_or_else(|| panic!("no {level} row in {rows:?}"))
    };
    assert_eq!(count("ERROR"), "2");
    assert_eq!(count("WARN"), "1");
    assert_eq!(count("INFO"), "2");
    assert_eq!(count("CRITICAL"), "0");
    assert!(
        body.contains("<svg") && body.contains("class=\"hist-bar\""),
        "histogram"
    );
    // Level filter: only patterns with that level.
    let patterns = |body: &str| section(body, "patterns", "top-errors").to_owned();
    let all = patterns(&body);
    assert!(all.contains("started worker") && all.contains("bad input"));
    let errors = patterns(
        &b.page(&format!("{report}?level=ERROR"), StatusCode::OK)
            .await,
    );
    assert!(errors.contains("bad input"), "{errors}");
    assert!(!errors.contains("started worker"), "{errors}");
    assert!(!errors.contains("suspicious"), "{errors}");
    let infos = patterns(
        &b.page(&format!("{report}?level=info"), StatusCode::OK)
            .await,
    );
    assert!(infos.contains("started worker") && !infos.contains("bad input"));
    let warns = patterns(
        &b.page(&format!("{report}?level=WARNING"), StatusCode::OK)
            .await,
    );
    assert!(warns.contains("suspicious") && !warns.contains("started worker"));
    let none = patterns(
        &b.page(&format!("{report}?level=CRITICAL"), StatusCode::OK)
            .await,
    );
    assert!(none.contains("No pattern has CRITICAL lines"), "{none}");
    // An unknown level shows everything.
    let junk = patterns(
        &b.page(&format!("{report}?level=%3Cx%3E"), StatusCode::OK)
            .await,
    );
    assert!(junk.contains("started worker") && junk.contains("bad input"));

    // The list shows it (name escaped), linked.
    let list = b.page("/dashboard/logs", StatusCode::OK).await;
    assert!(list.contains(&format!("href=\"{report}\"")));
    assert!(!list.contains("<i>web.log"));
    assert_eq!(assert_only_inside_hx_disable(&list, "web.log"), 1);

    // Pasted text instead of a file (the file input left empty).
    let pasted = upload_ok(
        &b,
        &[
            ("csrf_token", None, csrf.as_bytes()),
            ("file", Some(""), b""),
            ("logs", None, LOG.as_bytes()),
        ],
    )
    .await;
    let body = b.page(&pasted, StatusCode::OK).await;
    assert!(body.contains("pasted text"));
    assert!(body.contains("Connection refused"));

    // An empty log is a report with zero lines.
    let empty = upload_ok(
        &b,
        &[
            ("csrf_token", None, csrf.as_bytes()),
            ("file", Some("empty.log"), b""),
        ],
    )
    .await;
    let body = b.page(&empty, StatusCode::OK).await;
    assert_csp_clean_markup(&body, "empty report");
    assert!(body.contains("No timestamps were found"));
    assert!(body.contains("No patterns."));

    // Nothing chosen at all: a form error, nothing stored.
    let resp = upload(
        &b,
        &[
            ("csrf_token", None, csrf.as_bytes()),
            ("file", None::<&str>, b""),
        ],
    )
    .await;
    // (A field without a file name counts as an empty file.)
    assert!(resp.status().is_redirection() || resp.status() == StatusCode::UNPROCESSABLE_ENTITY);
    let resp = upload(&b, &[("csrf_token", None, csrf.as_bytes())]).await;
    let text = body_with_status(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(text.contains("Choose a log file"), "{text}");

    // Without the CSRF token, with it after the file, or cross-site: refused.
    let resp = upload(&b, &[("file", Some("a.log"), LOG.as_bytes())]).await;
    body_with_status(resp, StatusCode::FORBIDDEN).await;
    let resp = upload(
        &b,
        &[
            ("file", Some("a.log"), LOG.as_bytes()),
            ("csrf_token", None, csrf.as_bytes()),
        ],
    )
    .await;
    body_with_status(resp, StatusCode::FORBIDDEN).await;
    let (ct, body) = multipart(&[
        ("csrf_token", None, csrf.as_bytes()),
        ("file", Some("a.log"), LOG.as_bytes()),
    ]);
    let resp = b
        .client
        .post(app.url("/dashboard/logs"))
        .header("sec-fetch-site", "cross-site")
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    body_with_status(resp, StatusCode::FORBIDDEN).await;
    let (_, total) = app.store.list_log_analyses(uid, 50, 0).await.unwrap();
    let before = total;

    // Unknown ids and other users' analyses are the 404 page.
    let not_found = b
        .page("/dashboard/logs/999999", StatusCode::NOT_FOUND)
        .await;
    assert!(not_found.contains("<html"));
    b.page("/dashboard/logs/abc", StatusCode::NOT_FOUND).await;
    let other = Browser::new(&app);
    other.register_new().await;
    other.page(&report, StatusCode::NOT_FOUND).await;
    let other_csrf = other.csrf("/dashboard/logs").await;
    let resp = other
        .post_form(
            &format!("{report}/delete"),
            &[("csrf_token", other_csrf.as_str())],
        )
        .await;
    body_with_status(resp, StatusCode::NOT_FOUND).await;
    b.page(&report, StatusCode::OK).await;

    // Delete through the form (CSRF required).
    let resp = b.post_form(&format!("{report}/delete"), &[]).await;
    body_with_status(resp, StatusCode::FORBIDDEN).await;
    let resp = b
        .post_form(
            &format!("{report}/delete"),
            &[("csrf_token", csrf.as_str())],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/logs");
    b.page(&report, StatusCode::NOT_FOUND).await;
    let (_, after) = app.store.list_log_analyses(uid, 50, 0).await.unwrap();
    assert_eq!(after, before - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_analyses_are_capped_per_user_oldest_first() {
    let app = spawn_app_with(|s| s.log_analyses_per_user = 3).await;
    let a = app.register_and_login().await;
    let b = app.register_and_login().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let doc = analyze_json(&app, &a, &format!("ERROR failure number {i}\n")).await;
        ids.push(doc["analysis_id"].as_i64().expect("analysis id"));
    }
    let b_doc = analyze_json(&app, &b, "WARN only one\n").await;
    let resp = app.get("/logs/analyses", &a).await;
    assert_eq!(total(&resp), 3);
    let listed: Vec<i64> = json_with_status(resp, StatusCode::OK)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        listed,
        [ids[4], ids[3], ids[2]],
        "the newest three, newest first"
    );
    for old in &ids[..2] {
        let path = format!("/logs/analyses/{old}");
        assert_error(app.get(&path, &a).await, StatusCode::NOT_FOUND).await;
    }
    // Another user's analyses are not touched by this user's limit.
    let resp = app.get("/logs/analyses", &b).await;
    assert_eq!(total(&resp), 1);
    let path = format!("/logs/analyses/{}", b_doc["analysis_id"]);
    assert_eq!(app.get(&path, &b).await.status(), StatusCode::OK);
}
