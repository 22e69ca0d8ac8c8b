//! Route-table sweep (S13, S18): the routes are read from the router's source, so a new
//! route cannot be added without passing through these checks: anonymous requests are
//! refused everywhere but an explicit allowlist, other users' ids are not found, no GET
//! writes, every dashboard form needs the session's CSRF token and a same-origin request,
//! and every JSON route is in the OpenAPI document.

use crate::helpers::*;
use crate::pages::{csrf_of, Browser};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const PROM_TOKEN: &str = "prometheus-scrape-token-for-the-sweep";

/// One method on one registered path, as written in the router (`{id}` placeholders).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Route {
    method: &'static str,
    path: String,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Every `.route("PATH", METHODS)` call in `source`, one entry per method. A hand-rolled
/// scan rather than a Rust parser: the router files only use this one shape, and the
/// counts asserted in `registered_routes` catch a scan that stopped finding them.
fn routes_in(source: &str) -> Vec<Route> {
    let mut out = Vec::new();
    // Unit tests below the router build routers of their own.
    let mut rest = source.split("#[cfg(test)]").next().unwrap_or(source);
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // Only literal paths; the router has no other kind.
        let Some(lit) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some(len) = lit.find('"') else { break };
        let path = lit[..len].to_owned();
        // The arguments run to the parenthesis that closes `.route(`.
        let mut depth = 1usize;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &rest[..end];
        for method in ["get", "post", "put", "delete"] {
            let call = format!("{method}(");
            let found = args.match_indices(&call).any(|(i, _)| {
                // `get(` as a method router, not the tail of `rules::get(` or `budget(`.
                let before = args[..i].chars().next_back();
                matches!(before, Some('.' | ':' | ' ' | '\n' | '('))
                    && !args[..i].ends_with("Redirect::")
            });
            if found {
                out.push(Route {
                    method: match method {
                        "get" => "GET",
                        "post" => "POST",
                        "put" => "PUT",
                        _ => "DELETE",
                    },
                    path: path.clone(),
                });
            }
        }
        rest = &rest[end..];
    }
    out
}

fn registered_routes() -> Vec<Route> {
    let mut all = routes_in(include_str!("../../src/http/mod.rs"));
    all.extend(routes_in(include_str!("../../src/http/pages/mod.rs")));
    all.sort();
    all.dedup();
    // Known entries of each shape, so a scan that silently finds less fails here.
    for (m, p) in [
        ("POST", "/register"),
        ("DELETE", "/rules/{id}"),
        ("PUT", "/channels/{id}"),
        ("DELETE", "/admin/hosts/{id}"),
        ("POST", "/logs/analyze"),
        ("GET", "/dashboard/logs"),
        ("POST", "/dashboard/logs"),
        ("POST", "/dashboard/admin/hosts/{id}/{action}"),
        ("GET", "/static/{*path}"),
        ("GET", "/"),
    ] {
        assert!(
            all.iter().any(|r| r.method == m && r.path == p),
            "route scan missed {m} {p}: {all:#?}"
        );
    }
    assert!(all.len() >= 70, "route scan found only {}", all.len());
    all
}

/// Routes anyone may call, each with the reason.
fn public(r: &Route) -> bool {
    matches!(
        (r.method, r.path.as_str()),
        // Getting an account and a token.
        ("POST", "/register" | "/login")
            | ("GET" | "POST", "/dashboard/login" | "/dashboard/register")
            // Probes and the API description.
            | ("GET", "/healthz" | "/readyz" | "/openapi.json")
            // Redirects and the not-found page, which show nothing.
            | ("GET", "/" | "/dashboard/" | "/dashboard/admin.html")
            | ("GET" | "POST", "/dashboard/{*rest}")
            // The admin elevation form: an operator may hold only the admin token, and
            // its POST checks that token, CSRF and the failure limit itself.
            | ("GET" | "POST", "/dashboard/admin")
            // Compiled-in CSS and JS.
            | ("GET", "/static/{*path}")
    )
}

/// The objects the sweep's ids point at, all owned by the first user.
struct Fixture {
    rule: i64,
    channel: i64,
    delivery: i64,
    analysis: i64,
    host: i64,
    owner_id: i64,
}

impl Fixture {
    async fn build(app: &TestApp, owner: &str, owner_id: i64) -> Fixture {
        let id = |v: &Value, what: &str| {
            v["id"]
                .as_i64()
                .or_else(|| v["delivery_id"].as_i64())
                .unwrap_or_else(|| panic!("{what} id in {v}"))
        };
        let rule = json_with_status(
            app.post_json(
                "/rules",
                &json!({"name": "sweep cpu", "metric": "cpu", "threshold": 95}),
                owner,
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let channel = json_with_status(
            app.post_json(
                "/channels",
                &json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook", "name": "sweep"}),
                owner,
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let channel = id(&channel, "channel");
        let delivery = json_with_status(
            app.post_json(&format!("/channels/{channel}/test"), &json!({}), owner)
                .await,
            StatusCode::ACCEPTED,
        )
        .await;
        let analysis = json_with_status(
            app.post_json(
                "/logs/analyze",
                &json!({"logs": "ERROR disk full on /dev/sda1\nINFO ok\n"}),
                owner,
            )
            .await,
            StatusCode::OK,
        )
        .await;
        let host = app
            .client
            .post(app.url("/admin/hosts"))
            .header("token", owner)
            .header("x-admin-token", ADMIN_TOKEN)
            .json(&json!({"name": "sweep-host"}))
            .send()
            .await
            .unwrap();
        let host = json_with_status(host, StatusCode::CREATED).await;
        Fixture {
            rule: id(&rule, "rule"),
            channel,
            delivery: id(&delivery, "delivery"),
            analysis: analysis["analysis_id"]
                .as_i64()
                .or_else(|| analysis["id"].as_i64())
                .unwrap_or_else(|| panic!("analysis id in {analysis}")),
            host: host["host"]["id"]
                .as_i64()
                .or_else(|| host["id"].as_i64())
                .unwrap_or_else(|| panic!("host id in {host}")),
            owner_id,
        }
    }

    /// `path` with its placeholders filled: ids of this fixture's objects, and a
    /// state-changing action where a route takes one (the most harmful request is the one
    /// worth refusing).
    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/rules") || path.starts_with("/dashboard/rules") {
            self.rule
        } else if path.contains("/channels") {
            self.channel
        } else if path.contains("/deliveries") {
            self.delivery
        } else if path.contains("/logs") {
            self.analysis
        } else if path.contains("/hosts") {
            self.host
        } else if path.contains("/users") {
            self.owner_id
        } else {
            1
        };
        let action = if path.contains("/channels/") {
            "rotate-secret"
        } else if path.contains("/users/") {
            "disable"
        } else {
            "delete"
        };
        path.replace("{id}", &id.to_string())
            .replace("{action}", action)
            .replace("{*rest}", "no-such-page")
            .replace("{*path}", "app.css")
    }
}

fn is_page(path: &str) -> bool {
    path == "/" || path.starts_with("/dashboard") || path.starts_with("/static")
}

/// Every table's rows as sorted text: two equal dumps mean nothing was written. `skip`
/// names whole tables (`"t"`) or single columns (`"t.c"`) that may change.
async fn dump(db: &RawDb, skip: &[&str]) -> BTreeMap<String, Vec<String>> {
    use sqlx::Row;
    let mut out = BTreeMap::new();
    match db {
        RawDb::Sqlite(p) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(p)
            .await
            .unwrap();
            for t in tables.into_iter().filter(|t| !skip.contains(&t.as_str())) {
                let cols: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{t}\")"))
                    .fetch_all(p)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>("name"))
                    .filter(|c| !skip.contains(&format!("{t}.{c}").as_str()))
                    .collect();
                let expr = cols
                    .iter()
                    .map(|c| format!("quote(\"{c}\")"))
                    .collect::<Vec<_>>()
                    .join(" || ',' || ");
                let mut rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT {expr} FROM \"{t}\""))
                        .fetch_all(p)
                        .await
                        .unwrap();
                rows.sort();
                out.insert(t, rows);
            }
        }
        RawDb::Postgres(p) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(p)
            .await
            .unwrap();
            for t in tables.into_iter().filter(|t| !skip.contains(&t.as_str())) {
                let mut expr = "to_jsonb(x)".to_owned();
                for c in skip.iter().filter_map(|s| s.strip_prefix(&format!("{t}."))) {
                    expr = format!("({expr} - '{c}')");
                }
                let mut rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT ({expr})::text FROM \"{t}\" x"))
                        .fetch_all(p)
                        .await
                        .unwrap();
                rows.sort();
                out.insert(t, rows);
            }
        }
    }
    out
}

/// What differs between two dumps, table by table, for the failure message.
fn changes(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut msg = String::new();
    for (t, rows) in after {
        let old = before.get(t).cloned().unwrap_or_default();
        if &old != rows {
            let old: BTreeSet<_> = old.iter().collect();
            let new: BTreeSet<_> = rows.iter().collect();
            msg += &format!(
                "\n{t}: removed {:?} added {:?}",
                old.difference(&new).collect::<Vec<_>>(),
                new.difference(&old).collect::<Vec<_>>()
            );
        }
    }
    msg
}

/// Fails with the differences when the database is not as `before`.
async fn assert_wrote_nothing(
    db: &RawDb,
    before: &BTreeMap<String, Vec<String>>,
    skip: &[&str],
    what: &str,
) {
    let after = dump(db, skip).await;
    assert!(*before == after, "{what}:{}", changes(before, &after));
}

/// `r` as a signed-in user: a form with the session's CSRF token on the pages, the
/// user's token on the API.
async fn as_user(b: &Browser<'_>, token: &str, r: &Route, path: &str) -> reqwest::Response {
    if is_page(&r.path) {
        let csrf = csrf_of(&b.page("/dashboard/rules", StatusCode::OK).await);
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        b.client
            .request(method, b.app.url(path))
            .form(&[("csrf_token", csrf.as_str()), ("name", "x")])
            .send()
            .await
            .unwrap()
    } else {
        send(&b.app.client, b.app, r, path, |req| {
            req.header("token", token)
        })
        .await
    }
}

/// A new user's dashboard session, elevated to admin.
async fn elevated(app: &TestApp) -> Browser<'_> {
    let b = Browser::new(app);
    b.register_new().await;
    let csrf = b.csrf("/dashboard/admin").await;
    let resp = b
        .post_form(
            "/dashboard/admin",
            &[("csrf_token", &csrf), ("admin_token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "elevation");
    b
}

/// What authenticated requests may change: tower-sessions rewrites a session's expiry on
/// activity (the idle timeout working), and a token's last use is kept for the tokens page.
const SESSION_TABLES: &[&str] = &["tower_sessions", "api_tokens.last_used_at"];

async fn sweep_app() -> TestApp {
    spawn_app_with(|s| {
        s.cookie_secure = false;
        s.allow_private_webhooks = true;
        s.prometheus_token = Some(watchpost::config::Secret::new(PROM_TOKEN));
    })
    .await
}

/// A body the route would accept from its owner, so a refusal is about who asks, not
/// about what was sent.
fn valid_body(path: &str) -> Value {
    if path.starts_with("/rules") {
        json!({"name": "changed", "metric": "cpu", "threshold": 50})
    } else if path.starts_with("/channels") {
        json!({"kind": "webhook", "url": "http://127.0.0.1:9/other", "name": "changed"})
    } else if path.starts_with("/logs") {
        json!({"logs": "ERROR x"})
    } else {
        json!({})
    }
}

async fn send(
    client: &reqwest::Client,
    app: &TestApp,
    r: &Route,
    path: &str,
    prepare: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> reqwest::Response {
    let method = Method::from_bytes(r.method.as_bytes()).unwrap();
    let mut req = client.request(method, app.url(path));
    if matches!(r.method, "POST" | "PUT") {
        req = if is_page(&r.path) {
            req.form(&[("name", "x")])
        } else {
            req.json(&valid_body(&r.path))
        };
    }
    prepare(req)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{r} ({path}): {e}"))
}

#[tokio::test]
async fn every_route_but_the_public_ones_refuses_anonymous_requests() {
    let app = sweep_app().await;
    let (owner_id, owner) = app.register_and_login_user().await;
    let fx = Fixture::build(&app, &owner, owner_id).await;
    let db = RawDb::connect(&app.database_url).await;
    let before = dump(&db, &[]).await;
    let anon = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut checked = 0;
    for r in registered_routes().iter().filter(|r| !public(r)) {
        let path = fx.fill(&r.path);
        let resp = send(&anon, &app, r, &path, |b| b).await;
        let status = resp.status();
        assert_security_headers(resp.headers());
        if is_page(&r.path) {
            // Pages send the visitor to the login form; forms without a session are
            // refused before any handler looks at them.
            let to_login = status == StatusCode::SEE_OTHER
                && resp.headers()["location"]
                    .to_str()
                    .unwrap()
                    .starts_with("/dashboard/login");
            assert!(
                to_login || status == StatusCode::FORBIDDEN,
                "{r}: anonymous got {status}"
            );
        } else {
            // The admin API asks for the admin token first, and a missing one is 403
            // (docs/security.md S06); every other route asks for a user's token.
            let expected = if r.path.starts_with("/admin") {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(status, expected, "{r}: anonymous");
            let body: Value = resp.json().await.unwrap();
            assert!(body["detail"].is_string(), "{r}: {body}");
        }
        checked += 1;
    }
    assert!(checked >= 55, "only {checked} protected routes");
    // Not one of those requests wrote anything, sessions included.
    assert_wrote_nothing(&db, &before, &[], "anonymous requests wrote").await;
    db.close().await;
}

#[tokio::test]
async fn other_users_ids_are_not_found_on_any_route() {
    let app = sweep_app().await;
    let (owner_id, owner) = app.register_and_login_user().await;
    let fx = Fixture::build(&app, &owner, owner_id).await;
    // The other user, on the API with a token and on the pages with a session.
    let b = Browser::new(&app);
    let (_, name) = b.register_new().await;
    let token = app.login(&name, PASSWORD).await;
    let db = RawDb::connect(&app.database_url).await;
    let before = dump(&db, SESSION_TABLES).await;
    let mut checked = 0;
    // User-owned objects only: hosts and users are the admin's, covered by the admin
    // checks below.
    let owned = |p: &str| {
        p.contains("{id}") && !p.contains("/hosts") && !p.contains("/users") && !p.contains("admin")
    };
    for r in registered_routes().iter().filter(|r| owned(&r.path)) {
        let path = fx.fill(&r.path);
        let resp = as_user(&b, &token, r, &path).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{r} as another user");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} id routes");
    assert_wrote_nothing(
        &db,
        &before,
        SESSION_TABLES,
        "another user's requests wrote",
    )
    .await;

    // Admin routes need the admin token (API) or an elevated session (pages), whatever
    // the user's own credentials.
    for r in registered_routes()
        .iter()
        .filter(|r| r.path.contains("admin") && r.path != "/dashboard/admin.html")
    {
        let path = fx.fill(&r.path);
        if r.path == "/dashboard/admin" {
            continue; // the elevation form itself
        }
        let resp = as_user(&b, &token, r, &path).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{r} without admin");
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} id and admin routes");
    assert_wrote_nothing(&db, &before, SESSION_TABLES, "non-admin requests wrote").await;
    db.close().await;
}

#[tokio::test]
async fn no_get_route_writes_anything() {
    let app = sweep_app().await;
    let (owner_id, owner) = app.register_and_login_user().await;
    let fx = Fixture::build(&app, &owner, owner_id).await;
    // An elevated dashboard session, so admin pages render too (the owner's page ids are
    // not this session's and answer 404, after the same lookups).
    let b = elevated(&app).await;
    let db = RawDb::connect(&app.database_url).await;
    let before = dump(&db, SESSION_TABLES).await;
    let mut checked = 0;
    for r in registered_routes().iter().filter(|r| r.method == "GET") {
        let path = fx.fill(&r.path);
        for htmx in [false, true] {
            let resp = if is_page(&r.path) {
                let mut req = b.client.get(app.url(&path));
                if htmx {
                    req = req.header("hx-request", "true");
                }
                req.send().await.unwrap()
            } else {
                // The owner's token for their own ids, and every credential a route may ask.
                let req = app.client.get(app.url(&path));
                let req = if path == "/metrics/prometheus" {
                    req.header("authorization", format!("Bearer {PROM_TOKEN}"))
                } else {
                    req.header("token", &owner)
                        .header("x-admin-token", ADMIN_TOKEN)
                };
                req.send().await.unwrap()
            };
            let status = resp.status();
            // The pages the sweep's session does not own (the first user's rule, log and
            // delivery ids) answer 404; everything else must succeed, or the sweep proves
            // nothing about the handler.
            assert!(
                status.is_success() || status.is_redirection() || status == StatusCode::NOT_FOUND,
                "{r} ({path}, htmx {htmx}): {status}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} GETs");
    assert_wrote_nothing(&db, &before, SESSION_TABLES, "GET requests wrote").await;
    db.close().await;
}

#[tokio::test]
async fn every_dashboard_form_needs_the_csrf_token_and_a_same_origin_request() {
    let app = sweep_app().await;
    let (owner_id, owner) = app.register_and_login_user().await;
    let fx = Fixture::build(&app, &owner, owner_id).await;
    let b = elevated(&app).await;
    let csrf = b.csrf("/dashboard/rules").await;
    let cookie = b.cookie().expect("session cookie");
    let db = RawDb::connect(&app.database_url).await;
    let before = dump(&db, SESSION_TABLES).await;
    let mut checked = 0;
    let unsafe_with_session = |r: &&Route| {
        r.method != "GET"
            && (r.path.starts_with("/dashboard") || r.path.starts_with("/logs"))
            && r.path != "/dashboard/{*rest}"
    };
    for r in registered_routes().iter().filter(unsafe_with_session) {
        let path = fx.fill(&r.path);
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        // Uploads are multipart, so the refusal is the CSRF check and not the media type.
        let upload = r.path == "/dashboard/logs" || r.path == "/logs/analyze";
        let body = |req: reqwest::RequestBuilder, csrf: Option<&str>| {
            if upload {
                // Hand-built: the test build of reqwest has no multipart feature.
                const B: &str = "sweepboundary42";
                let mut body = String::new();
                if let Some(c) = csrf {
                    body += &format!(
                        "--{B}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{c}\r\n"
                    );
                }
                body += &format!(
                    "--{B}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.log\"\r\n\r\nERROR x\n\r\n--{B}--\r\n"
                );
                req.header("content-type", format!("multipart/form-data; boundary={B}"))
                    .body(body)
            } else {
                let mut form = vec![("name", "x")];
                if let Some(c) = csrf {
                    form.push(("csrf_token", c));
                }
                req.form(&form)
            }
        };
        // (a) the session cookie and nothing else
        let resp = body(b.client.request(method.clone(), app.url(&path)), None)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "{r} without a CSRF token"
        );
        // (b) a valid token from a cross-site page, and (c) from a foreign Origin
        for (name, value) in [
            ("sec-fetch-site", "cross-site".to_owned()),
            ("origin", "http://evil.example".to_owned()),
        ] {
            let req = b
                .client
                .request(method.clone(), app.url(&path))
                .header(name, value)
                .header("x-csrf-token", &csrf);
            let resp = body(req, Some(&csrf)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{r} with {name}");
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} forms");
    // The session was there all along; only the checks stopped the requests.
    assert_eq!(b.cookie().as_deref(), Some(cookie.as_str()));
    assert_wrote_nothing(&db, &before, SESSION_TABLES, "refused forms wrote").await;
    db.close().await;
}

#[tokio::test]
async fn every_json_route_is_in_the_openapi_document_and_nothing_else_is() {
    let app = spawn_app().await;
    let doc = json_with_status(app.get_anon("/openapi.json").await, StatusCode::OK).await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = registered_routes()
        .into_iter()
        // The document does not describe itself.
        .filter(|r| !is_page(&r.path) && r.path != "/openapi.json")
        .map(|r| (r.method.to_owned(), r.path))
        .collect();
    assert_eq!(
        routed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes missing from /openapi.json"
    );
    assert_eq!(
        documented.difference(&routed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented operations with no route"
    );
}
