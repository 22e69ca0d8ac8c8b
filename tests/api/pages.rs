//! The server-rendered dashboard over HTTP: cookie sessions (fixation, logout, idle and
//! absolute timeouts), CSRF and same-origin checks on every form, the pages themselves
//! (overview, alerts, thresholds, tokens, admin), error pages, markup that a strict CSP
//! allows, and the static assets.

use crate::helpers::*;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use watchpost::store::Sample;
use watchpost::tasks::alerting::AlertEngine;

/// The session cookie's name when `cookie_secure = false`.
pub(crate) const COOKIE: &str = "watchpost_session";

/// An app whose session cookie is not `Secure`, so reqwest sends it back over http.
pub(crate) async fn spawn_dashboard() -> TestApp {
    spawn_app_with(|s| s.cookie_secure = false).await
}

/// A client that follows no redirects and keeps no cookies.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// A browser-like client: a cookie jar, no automatic redirects.
pub(crate) struct Browser<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) client: reqwest::Client,
    pub(crate) jar: Arc<Jar>,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .no_proxy()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        Self { app, client, jar }
    }

    /// The session cookie's value as the jar would send it now.
    pub(crate) fn cookie(&self) -> Option<String> {
        let url: reqwest::Url = self.app.base_url.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix(&format!("{COOKIE}=")).map(str::to_owned))
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.app.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn get_htmx(&self, path: &str) -> Response {
        self.client
            .get(self.app.url(path))
            .header("hx-request", "true")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} (htmx): {e}"))
    }

    /// GETs a page, asserting the status; returns the body.
    pub(crate) async fn page(&self, path: &str, expected: StatusCode) -> String {
        body_with_status(self.get(path).await, expected).await
    }

    /// The CSRF token of the form on `path` (which must answer 200).
    pub(crate) async fn csrf(&self, path: &str) -> String {
        csrf_of(&self.page(path, StatusCode::OK).await)
    }

    pub(crate) async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.app.url(path))
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Registers `username` through the form; asserts the redirect to the overview.
    async fn register(&self, username: &str) {
        let csrf = self.csrf("/dashboard/register").await;
        let resp = self
            .post_form(
                "/dashboard/register",
                &[
                    ("csrf_token", &csrf),
                    ("username", username),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard");
    }

    /// Registers a fresh user through the form; returns (id, username).
    pub(crate) async fn register_new(&self) -> (i64, String) {
        let name = unique_username("web");
        self.register(&name).await;
        (user_id(self.app, &name).await, name)
    }

    /// Logs in through the form; returns the login response (asserted 303 to /dashboard).
    pub(crate) async fn login(&self, username: &str) -> Response {
        let csrf = self.csrf("/dashboard/login").await;
        let resp = self
            .post_form(
                "/dashboard/login",
                &[
                    ("csrf_token", &csrf),
                    ("username", username),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard");
        resp
    }
}

async fn user_id(app: &TestApp, username: &str) -> i64 {
    app.store
        .user_by_name(username)
        .await
        .expect("user_by_name")
        .unwrap_or_else(|| panic!("no user {username}"))
        .id
}

/// GETs `path` with only a hand-made session cookie (a fresh client without a jar).
pub(crate) async fn get_with_cookie(app: &TestApp, path: &str, value: &str) -> Response {
    plain_client()
        .get(app.url(path))
        .header("cookie", format!("{COOKIE}={value}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

pub(crate) async fn body_with_status(resp: Response, expected: StatusCode) -> String {
    let status = resp.status();
    let location = header(resp.headers(), "location");
    let text = resp.text().await.expect("response body");
    assert_eq!(
        status, expected,
        "unexpected status (location {location:?}); body: {text}"
    );
    text
}

pub(crate) fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .map(|v| v.to_str().expect("ascii header").to_owned())
}

pub(crate) fn assert_redirect(resp: &Response, status: StatusCode, to: &str) {
    assert_eq!(resp.status(), status, "{} {:?}", resp.url(), resp.headers());
    assert_eq!(
        header(resp.headers(), "location").as_deref(),
        Some(to),
        "{}",
        resp.url()
    );
}

pub(crate) async fn assert_to_login(resp: Response) {
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/login");
}

/// An htmx request that needs a login: not a redirect (XMLHttpRequest would follow it
/// silently and htmx would swap the login page in) but `HX-Redirect` to the login page.
async fn assert_htmx_to_login(resp: Response, what: &str) {
    let status = resp.status();
    assert!(
        status.is_client_error(),
        "{what}: htmx got {status}, which XHR would follow or htmx would swap"
    );
    assert_eq!(header(resp.headers(), "location"), None, "{what}");
    assert_eq!(
        header(resp.headers(), "hx-redirect").as_deref(),
        Some("/dashboard/login"),
        "{what}"
    );
    let body = resp.text().await.unwrap();
    assert!(!body.contains("<html"), "{what}: {body}");
}

/// The value of the session cookie a response sets, if it sets one.
pub(crate) fn set_cookie_value(resp: &Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{COOKIE}=")))
        .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
}

/// The text between `marker` and the next `"`.
pub(crate) fn attr_after(body: &str, marker: &str) -> Option<String> {
    let start = body.find(marker)? + marker.len();
    let len = body[start..].find('"')?;
    Some(body[start..start + len].to_owned())
}

pub(crate) fn csrf_of(body: &str) -> String {
    let t = attr_after(body, r#"name="csrf_token" value=""#)
        .unwrap_or_else(|| panic!("no csrf_token field in: {body}"));
    assert!(t.len() >= 32, "short CSRF token {t:?}");
    t
}

/// The cells (tags stripped) of every row of the first `<tbody>` in `body`.
pub(crate) fn table_rows(body: &str) -> Vec<Vec<String>> {
    let Some(start) = body.find("<tbody>") else {
        return Vec::new();
    };
    let end = body[start..].find("</tbody>").expect("unclosed tbody") + start;
    body[start..end]
        .split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let inner = &cell[cell.find('>').unwrap() + 1..];
                    let inner = &inner[..inner.find("</td>").unwrap_or(inner.len())];
                    strip_tags(inner).trim().to_owned()
                })
                .collect()
        })
        .collect()
}

/// Decodes the character references askama's HTML escaper produces.
pub(crate) fn unescape_html(s: &str) -> String {
    s.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Parses the tags of `body` and asserts what a strict CSP (no inline script, no inline
/// style) and htmx's `allowEval: false` need: every `<script>` has `src` and no content,
/// no `style` or `on*` event-handler attributes, no `hx-on`, no `javascript:` URLs, and
/// no unescaped `<` in text.
pub(crate) fn assert_csp_clean_markup(body: &str, what: &str) {
    let b = body.as_bytes();
    let mut i = 0;
    let mut tags = 0;
    while let Some(off) = body[i..].find('<') {
        let start = i + off;
        let rest = &body[start + 1..];
        if rest.starts_with("!--") {
            i = start + rest.find("-->").expect("unclosed comment") + 4;
            continue;
        }
        if rest.starts_with('!') || rest.starts_with('/') {
            i = start + 1;
            continue;
        }
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        assert!(
            name_len > 0,
            "{what}: unescaped '<' at byte {start}: {:?}",
            &body[start..(start + 40).min(body.len())]
        );
        let tag = rest[..name_len].to_ascii_lowercase();
        let mut j = start + 1 + name_len;
        let mut attrs: Vec<(String, String)> = Vec::new();
        loop {
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            assert!(j < b.len(), "{what}: unterminated <{tag}>");
            if b[j] == b'>' {
                j += 1;
                break;
            }
            if b[j] == b'/' {
                j += 1;
                continue;
            }
            let n0 = j;
            while j < b.len() && !b[j].is_ascii_whitespace() && !b"=>/".contains(&b[j]) {
                j += 1;
            }
            let name = body[n0..j].to_ascii_lowercase();
            let mut value = String::new();
            if j < b.len() && b[j] == b'=' {
                j += 1;
                if b[j] == b'"' || b[j] == b'\'' {
                    let q = b[j] as char;
                    let len = body[j + 1..]
                        .find(q)
                        .unwrap_or_else(|| panic!("{what}: unclosed attribute {name} in <{tag}>"));
                    value = body[j + 1..j + 1 + len].to_owned();
                    j += len + 2;
                } else {
                    let v0 = j;
                    while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                        j += 1;
                    }
                    value = body[v0..j].to_owned();
                }
            }
            attrs.push((name, value));
        }
        tags += 1;
        for (name, value) in &attrs {
            assert!(
                name != "style",
                "{what}: style attribute on <{tag}>: {value:?}"
            );
            assert!(
                !name.starts_with("on") && !name.starts_with("hx-on"),
                "{what}: inline event handler {name}={value:?} on <{tag}>"
            );
            assert!(
                !value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("javascript:"),
                "{what}: javascript: URL in {name} on <{tag}>"
            );
        }
        assert!(tag != "style", "{what}: inline <style> element");
        if tag == "script" {
            assert!(
                attrs.iter().any(|(n, v)| n == "src" && !v.is_empty()),
                "{what}: <script> without src: {attrs:?}"
            );
            assert!(
                body[j..].starts_with("</script>"),
                "{what}: <script src> with inline content"
            );
        }
        i = j;
    }
    assert!(tags > 0, "{what}: no tags at all");
}

/// Asserts a full HTML page: status, HTML content type, security headers, `no-store`,
/// the layout, markup a strict CSP accepts. Returns the body.
pub(crate) async fn full_page(resp: Response, expected: StatusCode, what: &str) -> String {
    assert_security_headers(resp.headers());
    let ct = header(resp.headers(), "content-type").unwrap_or_default();
    assert!(ct.starts_with("text/html"), "{what}: content-type {ct:?}");
    assert_eq!(
        header(resp.headers(), "cache-control").as_deref(),
        Some("no-store"),
        "{what}"
    );
    let body = body_with_status(resp, expected).await;
    assert!(body.starts_with("<!doctype html>"), "{what}: {body}");
    assert!(
        body.contains(r#"<nav aria-label="Main">"#),
        "{what}: no nav"
    );
    assert_csp_clean_markup(&body, what);
    body
}

// ---------------------------------------------------------------------------------------
// 1. Logged out

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_out_user_pages_redirect_to_login() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    for path in [
        "/dashboard",
        "/dashboard?range=6h",
        "/dashboard/alerts",
        "/dashboard/alerts?metric=cpu&state=firing&page=2",
        "/dashboard/thresholds",
        "/dashboard/tokens",
    ] {
        let resp = b.get(path).await;
        assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/login");

        let resp = b.get_htmx(path).await;
        assert_htmx_to_login(resp, path).await;
    }
    // The host-card poll too.
    let path = format!("/dashboard?host={}&range=15m", app.local_host_id);
    assert_htmx_to_login(b.get_htmx(&path).await, &path).await;

    // A logged-out form post with a valid (anonymous) CSRF token still needs a login.
    let csrf = b.csrf("/dashboard/login").await;
    let resp = b
        .post_form(
            "/dashboard/thresholds",
            &[
                ("csrf_token", &csrf),
                ("cpu_threshold", "50"),
                ("memory_threshold", "50"),
            ],
        )
        .await;
    assert_to_login(resp).await;

    // The entry points.
    assert_redirect(&b.get("/").await, StatusCode::SEE_OTHER, "/dashboard");
    assert_redirect(
        &b.get("/dashboard/").await,
        StatusCode::SEE_OTHER,
        "/dashboard",
    );
    let login = full_page(b.get("/dashboard/login").await, StatusCode::OK, "login").await;
    assert!(login.contains(r#"action="/dashboard/login""#));
    assert!(login.contains(r#"name="password""#));
    assert!(
        !login.contains(r#"href="/dashboard/tokens""#),
        "nav shows user links"
    );
    let register = full_page(
        b.get("/dashboard/register").await,
        StatusCode::OK,
        "register",
    )
    .await;
    assert!(register.contains(r#"action="/dashboard/register""#));
}

// ---------------------------------------------------------------------------------------
// 2. Registration, overview, host-card fragment

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_through_the_form_logs_in_and_shows_the_charts() {
    let app = spawn_dashboard().await;
    let now = now_ms();
    let samples: Vec<Sample> = (0..30)
        .map(|i| {
            sample(
                app.local_host_id,
                now - 60_000 + i * 2000,
                40.0 + i as f64 * 0.1,
                55.0,
            )
        })
        .collect();
    app.insert_samples(&samples).await;

    let b = Browser::new(&app);
    let name = unique_username("reg");
    let csrf = b.csrf("/dashboard/register").await;
    let resp = b
        .post_form(
            "/dashboard/register",
            &[
                ("csrf_token", &csrf),
                ("username", &name),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard");
    let set_cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{COOKIE}=")))
        .expect("registration sets the session cookie");
    let lower = set_cookie.to_ascii_lowercase();
    assert!(lower.contains("httponly"), "{set_cookie}");
    assert!(lower.contains("samesite=lax"), "{set_cookie}");
    assert!(lower.contains("path=/"), "{set_cookie}");
    assert!(
        !lower.contains("secure"),
        "cookie_secure=false: {set_cookie}"
    );
    assert!(app.store.user_by_name(&name).await.unwrap().is_some());

    let body = full_page(b.get("/dashboard").await, StatusCode::OK, "overview").await;
    assert!(body.contains("<svg"), "no chart");
    assert!(
        body.contains(&format!("<h2>{}</h2>", app.local_host)),
        "no host name"
    );
    assert!(body.contains(&format!(r#"id="host-{}""#, app.local_host_id)));
    assert!(body.contains(r#"<a class="user" href="/dashboard/password""#) && body.contains(&name));
    assert!(body.contains("42.9 %"), "latest CPU value missing");
    assert!(body.contains(r#"aria-label="Main""#));
    // The default range is one hour; another can be picked.
    assert!(body.contains(r#"href="/dashboard?range=1h" class="chip selected""#));
    let six = b.page("/dashboard?range=6h", StatusCode::OK).await;
    assert!(six.contains(r#"href="/dashboard?range=6h" class="chip selected""#));

    // The htmx poll: just the card.
    let resp = b
        .get_htmx(&format!("/dashboard?host={}&range=15m", app.local_host_id))
        .await;
    assert_security_headers(resp.headers());
    let frag = body_with_status(resp, StatusCode::OK).await;
    assert!(
        frag.trim_start()
            .starts_with(r#"<section class="panel host""#),
        "{frag}"
    );
    assert!(!frag.contains("<html"), "fragment has the layout");
    assert!(!frag.contains("<nav"), "fragment has the nav");
    assert!(frag.contains("<svg"));
    assert!(frag.contains(&app.local_host));
    assert!(frag.contains(&format!(
        r#"hx-get="/dashboard?host={}&amp;range=15m""#,
        app.local_host_id
    )));
    assert!(frag.contains(r#"hx-trigger="every 2s""#));
    assert_csp_clean_markup(&frag, "host card");
    // An unknown host is a 404.
    let resp = b.get_htmx("/dashboard?host=987654&range=15m").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Logged in, the login and register pages send you to the overview.
    assert_redirect(
        &b.get("/dashboard/login").await,
        StatusCode::SEE_OTHER,
        "/dashboard",
    );
    assert_redirect(
        &b.get("/dashboard/register").await,
        StatusCode::SEE_OTHER,
        "/dashboard",
    );

    // A taken username is refused inline.
    let other = Browser::new(&app);
    let csrf = other.csrf("/dashboard/register").await;
    let resp = other
        .post_form(
            "/dashboard/register",
            &[
                ("csrf_token", &csrf),
                ("username", &name),
                ("password", PASSWORD),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::CONFLICT, "register conflict").await;
    assert!(body.contains("That username is taken."), "{body}");
    // A wrong password is refused inline, without saying which part was wrong.
    let csrf = other.csrf("/dashboard/login").await;
    let resp = other
        .post_form(
            "/dashboard/login",
            &[
                ("csrf_token", &csrf),
                ("username", &name),
                ("password", "not the password at all"),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::UNAUTHORIZED, "bad login").await;
    assert!(body.contains("Invalid username or password."), "{body}");
    assert!(
        body.contains(&format!(r#"value="{name}""#)),
        "username not kept"
    );
    assert_to_login(other.get("/dashboard").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_use_the_host_prefix() {
    // The default: Secure cookie named `__Host-…`.
    let app = spawn_app().await;
    let resp = plain_client()
        .get(app.url("/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-watchpost="))
        .unwrap_or_else(|| panic!("no __Host- cookie: {:?}", resp.headers()));
    let lower = cookie.to_ascii_lowercase();
    assert!(lower.contains("; secure"), "{cookie}");
    assert!(lower.contains("path=/"), "{cookie}");
    assert!(lower.contains("httponly"), "{cookie}");
    assert!(!lower.contains("domain="), "{cookie}");
}

// ---------------------------------------------------------------------------------------
// 3. Session fixation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_issues_a_new_session_id() {
    let app = spawn_dashboard().await;
    let name = unique_username("fix");
    app.register_ok(&name, PASSWORD).await;

    let b = Browser::new(&app);
    let resp = b.get("/dashboard/login").await;
    let pre = set_cookie_value(&resp).expect("the login page starts a session");
    let page = body_with_status(resp, StatusCode::OK).await;
    let pre_csrf = csrf_of(&page);
    assert_eq!(b.cookie().as_deref(), Some(pre.as_str()));

    // Before login the cookie is worth nothing.
    assert_to_login(get_with_cookie(&app, "/dashboard", &pre).await).await;

    let resp = b.login(&name).await;
    let post = set_cookie_value(&resp).expect("login sets a new cookie");
    assert_ne!(pre, post, "session id not rotated at login");
    assert_eq!(b.cookie().as_deref(), Some(post.as_str()));

    // The new id works (also from another client), the planted one does not.
    let resp = get_with_cookie(&app, "/dashboard", &post).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_to_login(get_with_cookie(&app, "/dashboard", &pre).await).await;
    assert_to_login(get_with_cookie(&app, "/dashboard/tokens", &pre).await).await;

    // The CSRF token changed with the session.
    let post_csrf = b.csrf("/dashboard/thresholds").await;
    assert_ne!(pre_csrf, post_csrf, "CSRF token not rotated at login");
    let resp = b
        .post_form(
            "/dashboard/thresholds",
            &[
                ("csrf_token", &pre_csrf),
                ("cpu_threshold", "50"),
                ("memory_threshold", "50"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------------------------------
// 4. Logout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_deletes_the_session_on_the_server() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    b.register_new().await;
    let value = b.cookie().expect("session cookie");
    assert_eq!(
        get_with_cookie(&app, "/dashboard", &value).await.status(),
        StatusCode::OK
    );

    let csrf = b.csrf("/dashboard").await;
    // Logout is a CSRF-protected POST: a GET is not a logout, nor a POST without the token.
    assert_error(
        b.get("/dashboard/logout").await,
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    assert_eq!(
        b.post_form("/dashboard/logout", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get_with_cookie(&app, "/dashboard", &value).await.status(),
        StatusCode::OK
    );

    let resp = b
        .post_form("/dashboard/logout", &[("csrf_token", &csrf)])
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/login");
    // No Clear-Site-Data: it would clear cookies of sibling sites on the same domain too.
    assert_eq!(header(resp.headers(), "clear-site-data"), None);
    let removal = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .find(|c| c.starts_with(&format!("{COOKIE}=")))
        .expect("logout expires the cookie");
    assert!(
        removal.contains("max-age=0") || removal.contains("expires=thu, 01 jan 1970"),
        "{removal}"
    );

    assert_to_login(b.get("/dashboard").await).await;
    // Replaying the old value: the session is gone on the server, not just in the browser.
    assert_to_login(get_with_cookie(&app, "/dashboard", &value).await).await;
    assert_to_login(get_with_cookie(&app, "/dashboard/thresholds", &value).await).await;
}

// ---------------------------------------------------------------------------------------
// 5. CSRF and same-origin

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_sessions_csrf_token_and_a_same_origin_request() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    let (uid, name) = b.register_new().await;
    let api_token = app.login(&name, PASSWORD).await;
    let csrf = b.csrf("/dashboard/thresholds").await;
    let fields = [("cpu_threshold", "42"), ("memory_threshold", "43")];

    let unchanged = |label: &'static str| {
        let app = &app;
        let api_token = api_token.clone();
        async move {
            assert_eq!(
                app.store.user_thresholds(uid).await.unwrap(),
                None,
                "{label}: thresholds changed"
            );
            let got =
                json_with_status(app.get("/thresholds", &api_token).await, StatusCode::OK).await;
            assert_eq!(
                got,
                json!({"cpu_threshold": 80.0, "memory_threshold": 75.0}),
                "{label}"
            );
        }
    };

    // (a) no token
    let resp = b.post_form("/dashboard/thresholds", &fields).await;
    let body = full_page(resp, StatusCode::FORBIDDEN, "no csrf").await;
    assert!(body.contains("did not come from this site"), "{body}");
    unchanged("no token").await;

    // (b) a wrong token, an empty one, and another session's valid token
    let other = Browser::new(&app);
    other.register_new().await;
    let foreign = other.csrf("/dashboard/thresholds").await;
    let wrong = "0".repeat(csrf.len());
    for bad in [wrong.as_str(), "", foreign.as_str()] {
        let resp = b
            .post_form(
                "/dashboard/thresholds",
                &[("csrf_token", bad), fields[0], fields[1]],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "token {bad:?}");
    }
    // A wrong header token.
    let resp = b
        .client
        .post(app.url("/dashboard/thresholds"))
        .header("x-csrf-token", &wrong)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    unchanged("wrong token").await;

    let with_token = [("csrf_token", csrf.as_str()), fields[0], fields[1]];
    // (c) valid token, cross-site fetch metadata
    for site in ["cross-site", "same-site"] {
        let resp = b
            .client
            .post(app.url("/dashboard/thresholds"))
            .header("sec-fetch-site", site)
            .form(&with_token)
            .send()
            .await
            .unwrap();
        assert_security_headers(resp.headers());
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "sec-fetch-site {site}"
        );
    }
    // (d) valid token, foreign or opaque Origin
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let resp = b
            .client
            .post(app.url("/dashboard/thresholds"))
            .header("origin", origin)
            .form(&with_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "origin {origin}");
    }
    unchanged("cross-site").await;

    // (e) valid token, same-origin: saved.
    let resp = b
        .client
        .post(app.url("/dashboard/thresholds"))
        .header("sec-fetch-site", "same-origin")
        .header("origin", app.base_url.as_str())
        .form(&with_token)
        .send()
        .await
        .unwrap();
    let body = full_page(resp, StatusCode::OK, "same-origin save").await;
    assert!(body.contains("Saved: CPU 42 %, memory 43 %."), "{body}");
    let t = app
        .store
        .user_thresholds(uid)
        .await
        .unwrap()
        .expect("saved");
    assert_eq!((t.cpu, t.memory), (42.0, 43.0));

    // The htmx way: token in the x-csrf-token header, our own Origin.
    let resp = b
        .client
        .post(app.url("/dashboard/thresholds"))
        .header("x-csrf-token", &csrf)
        .header("origin", app.base_url.as_str())
        .header("hx-request", "true")
        .form(&[("cpu_threshold", "44"), ("memory_threshold", "45")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let t = app
        .store
        .user_thresholds(uid)
        .await
        .unwrap()
        .expect("saved");
    assert_eq!((t.cpu, t.memory), (44.0, 45.0));

    // The login and registration forms need the token too.
    let anon = Browser::new(&app);
    anon.get("/dashboard/login").await;
    let resp = anon
        .post_form(
            "/dashboard/login",
            &[("username", name.as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_to_login(anon.get("/dashboard").await).await;
    let newcomer = unique_username("nocsrf");
    let resp = anon
        .post_form(
            "/dashboard/register",
            &[("username", newcomer.as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(app.store.user_by_name(&newcomer).await.unwrap().is_none());
    // And a valid token from a cross-site login form is refused (login CSRF).
    let csrf = anon.csrf("/dashboard/login").await;
    let resp = anon
        .client
        .post(app.url("/dashboard/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", name.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_to_login(anon.get("/dashboard").await).await;
}

// ---------------------------------------------------------------------------------------
// 6. Idle and absolute timeouts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end() {
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        s.session_idle_secs = 2;
        s.session_absolute_secs = 60;
    })
    .await;
    let b = Browser::new(&app);
    b.register_new().await;
    let value = b.cookie().expect("cookie");
    assert_eq!(b.get("/dashboard").await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    // The server refuses the idle session even when the old cookie is presented again.
    assert_to_login(get_with_cookie(&app, "/dashboard", &value).await).await;
    assert_to_login(b.get("/dashboard").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_sessions_end_at_the_absolute_limit() {
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        s.session_idle_secs = 2;
        s.session_absolute_secs = 4;
    })
    .await;
    let b = Browser::new(&app);
    let name = unique_username("abs");
    app.register_ok(&name, PASSWORD).await;
    b.login(&name).await;
    let logged_in = Instant::now();
    let value = b.cookie().expect("cookie");
    let mut last_ok = Duration::ZERO;
    let mut out_at = None;
    // A request a second: never idle for 2 s, but older than 4 s after the fifth.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let elapsed = logged_in.elapsed();
        let status = b.get("/dashboard").await.status();
        if elapsed < Duration::from_millis(3500) {
            assert_eq!(status, StatusCode::OK, "logged out after {elapsed:?}");
            last_ok = elapsed;
        } else if elapsed > Duration::from_millis(4600) {
            assert_eq!(status, StatusCode::SEE_OTHER, "still in after {elapsed:?}");
            out_at.get_or_insert(elapsed);
        }
    }
    assert!(last_ok >= Duration::from_millis(2900), "{last_ok:?}");
    assert!(out_at.is_some());
    // Ended on the server: the cookie is dead everywhere.
    assert_to_login(get_with_cookie(&app, "/dashboard", &value).await).await;
}

// ---------------------------------------------------------------------------------------
// 7. Thresholds page

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_page_validates_inline_and_saves() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    let (uid, name) = b.register_new().await;
    let api_token = app.login(&name, PASSWORD).await;

    let body = full_page(
        b.get("/dashboard/thresholds").await,
        StatusCode::OK,
        "thresholds",
    )
    .await;
    assert!(
        body.contains(r#"id="cpu_threshold" name="cpu_threshold" value="80""#),
        "{body}"
    );
    assert!(body.contains(r#"name="memory_threshold" value="75""#));
    assert!(body.contains("You are using the global thresholds"));
    assert!(body.contains(r#"aria-current="page">Thresholds"#));
    let csrf = csrf_of(&body);

    for (cpu, memory, cpu_bad, memory_bad) in [
        ("abc", "150", true, true),
        ("", "50", true, false),
        ("-1", "50", true, false),
        ("50", "100.01", false, true),
        ("NaN", "inf", true, true),
    ] {
        let resp = b
            .post_form(
                "/dashboard/thresholds",
                &[
                    ("csrf_token", &csrf),
                    ("cpu_threshold", cpu),
                    ("memory_threshold", memory),
                ],
            )
            .await;
        let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid thresholds").await;
        assert_eq!(
            body.contains(r#"<small class="field-error" id="cpu-error">CPU threshold must be a number between 0 and 100</small>"#),
            cpu_bad,
            "cpu {cpu:?}: {body}"
        );
        assert_eq!(
            body.contains(r#"<small class="field-error" id="memory-error">Memory threshold must be a number between 0 and 100</small>"#),
            memory_bad,
            "memory {memory:?}: {body}"
        );
        // What was typed is shown again.
        assert!(body.contains(&format!(r#"name="cpu_threshold" value="{cpu}""#)));
        assert!(!body.contains("Saved:"));
    }
    assert_eq!(app.store.user_thresholds(uid).await.unwrap(), None);

    let resp = b
        .post_form(
            "/dashboard/thresholds",
            &[
                ("csrf_token", &csrf),
                ("cpu_threshold", " 55.5 "),
                ("memory_threshold", "66"),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "saved thresholds").await;
    assert!(body.contains("Saved: CPU 55.5 %, memory 66 %."), "{body}");
    assert!(!body.contains("field-error"));

    let body = b.page("/dashboard/thresholds", StatusCode::OK).await;
    assert!(
        body.contains(r#"name="cpu_threshold" value="55.5""#),
        "{body}"
    );
    assert!(body.contains(r#"name="memory_threshold" value="66""#));
    assert!(!body.contains("You are using the global thresholds"));
    let got = json_with_status(app.get("/thresholds", &api_token).await, StatusCode::OK).await;
    assert_eq!(
        got,
        json!({"cpu_threshold": 55.5, "memory_threshold": 66.0})
    );
    // Global thresholds are untouched.
    let g = app.store.global_thresholds().await.unwrap();
    assert_eq!((g.cpu, g.memory), (80.0, 75.0));
}

// ---------------------------------------------------------------------------------------
// 8. Tokens page

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_page_creates_shows_once_and_revokes() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    let (uid, _) = b.register_new().await;

    let body = full_page(b.get("/dashboard/tokens").await, StatusCode::OK, "tokens").await;
    assert!(body.contains("No active tokens."));
    assert!(!body.contains(r#"id="new-token""#));
    let csrf = csrf_of(&body);

    // Invalid names and lifetimes are refused inline, nothing is created.
    for (name, ttl, msg) in [
        ("", "30", "Give the token a name of 1 to 64 characters."),
        ("   ", "30", "Give the token a name of 1 to 64 characters."),
        (
            &"n".repeat(65),
            "30",
            "Give the token a name of 1 to 64 characters.",
        ),
        ("ok", "7", "Choose one of the offered lifetimes."),
        ("ok", "x", "The form was incomplete or malformed."),
    ] {
        let resp = b
            .post_form(
                "/dashboard/tokens",
                &[("csrf_token", &csrf), ("name", name), ("ttl_days", ttl)],
            )
            .await;
        let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "bad token form").await;
        assert!(body.contains(msg), "{name:?}/{ttl}: {body}");
        assert!(!body.contains(r#"id="new-token""#));
    }
    assert!(app
        .store
        .list_tokens(uid, now_ms())
        .await
        .unwrap()
        .is_empty());

    let resp = b
        .post_form(
            "/dashboard/tokens",
            &[
                ("csrf_token", &csrf),
                ("name", "ci script"),
                ("ttl_days", "90"),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "token created").await;
    let token = attr_after(&body, r#"id="new-token" value=""#).expect("token shown");
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|c| c.is_ascii_hexdigit()));
    let digest = watchpost::auth::tokens::digest_hex(&token);
    let rows = table_rows(&body);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "ci script");
    assert_eq!(rows[0][2], "never");
    let stored = app.store.list_tokens(uid, now_ms()).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].token_hash, digest);
    assert_eq!(stored[0].expires_at - stored[0].created_at, 90 * 86_400_000);

    // It works on the JSON API.
    let resp = app.get("/metrics", &token).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Shown once: the list no longer has it, only the digest as the revoke id.
    let body = b.page("/dashboard/tokens", StatusCode::OK).await;
    assert!(!body.contains(&token), "token shown again");
    assert!(!body.contains(r#"id="new-token""#));
    assert!(body.contains(&format!(r#"name="id" value="{digest}""#)));
    assert_eq!(table_rows(&body)[0][0], "ci script");

    // Another user cannot revoke it with its id.
    let mallory = Browser::new(&app);
    mallory.register_new().await;
    let m_csrf = mallory.csrf("/dashboard/tokens").await;
    let resp = mallory
        .post_form(
            "/dashboard/tokens/revoke",
            &[("csrf_token", &m_csrf), ("id", &digest)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.get("/metrics", &token).await.status(), StatusCode::OK);

    // Revoking needs the CSRF token.
    let resp = b
        .post_form("/dashboard/tokens/revoke", &[("id", &digest)])
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/metrics", &token).await.status(), StatusCode::OK);

    let resp = b
        .post_form(
            "/dashboard/tokens/revoke",
            &[("csrf_token", &csrf), ("id", &digest)],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "token revoked").await;
    assert!(body.contains("No active tokens."), "{body}");
    assert_error(app.get("/metrics", &token).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_and_api_tokens_do_not_cross_over() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    let (_, name) = b.register_new().await;
    let api_token = app.login(&name, PASSWORD).await;
    assert_eq!(b.get("/dashboard").await.status(), StatusCode::OK);

    // The cookie alone does not authorize the JSON API (the jar sends it).
    for path in ["/metrics", "/alerts", "/summary", "/thresholds"] {
        let resp = b.get(path).await;
        assert_error(resp, StatusCode::UNAUTHORIZED).await;
    }
    let resp = b
        .client
        .post(app.url("/thresholds"))
        .json(&json!({"cpu_threshold": 1}))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED).await;

    // A token does not log a browser in.
    for path in ["/dashboard", "/dashboard/tokens", "/dashboard/thresholds"] {
        let resp = plain_client()
            .get(app.url(path))
            .header("token", &api_token)
            .send()
            .await
            .unwrap();
        assert_to_login(resp).await;
        let resp = plain_client()
            .get(app.url(path))
            .header("authorization", format!("Bearer {api_token}"))
            .send()
            .await
            .unwrap();
        assert_to_login(resp).await;
    }
    // Nor does the session id work as a token.
    let value = b.cookie().unwrap();
    assert_error(app.get("/metrics", &value).await, StatusCode::UNAUTHORIZED).await;
}

// ---------------------------------------------------------------------------------------
// 9. Alerts page

async fn feed(app: &TestApp, engine: &mut AlertEngine, start: i64, values: &[(f64, f64)]) {
    let samples: Vec<Sample> = values
        .iter()
        .enumerate()
        .map(|(i, &(cpu, mem))| sample(app.local_host_id, start + i as i64 * 1000, cpu, mem))
        .collect();
    app.insert_samples(&samples).await;
    for s in &samples {
        engine
            .observe(std::slice::from_ref(s), s.ts)
            .await
            .expect("observe");
    }
}

/// (metric, value, state) of each alert row.
fn alert_rows(body: &str) -> Vec<(String, String, String)> {
    table_rows(body)
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), 8, "{r:?}");
            (r[0].clone(), r[2].clone(), r[6].clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_lists_filters_and_pages() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    b.register_new().await;

    let body = full_page(b.get("/dashboard/alerts").await, StatusCode::OK, "alerts").await;
    assert!(body.contains("No alerts match."));
    assert!(body.contains("Page 1 of 1 · 0 alerts"));

    // cpu 95 (resolved), memory 90 (firing), cpu 97 (firing), oldest first.
    let mut eng = AlertEngine::new(app.store.clone()).await.expect("engine");
    let t0 = now_ms() - 3_600_000;
    feed(
        &app,
        &mut eng,
        t0,
        &[(95.0, 10.0), (10.0, 10.0), (10.0, 90.0), (97.0, 90.0)],
    )
    .await;

    let cpu_firing = ("cpu".to_owned(), "97.0".to_owned(), "firing".to_owned());
    let mem_firing = ("memory".to_owned(), "90.0".to_owned(), "firing".to_owned());
    let cpu_resolved = ("cpu".to_owned(), "95.0".to_owned(), "resolved".to_owned());

    let body = full_page(b.get("/dashboard/alerts").await, StatusCode::OK, "alerts").await;
    assert_eq!(
        alert_rows(&body),
        vec![cpu_firing.clone(), mem_firing.clone(), cpu_resolved.clone()],
        "newest first"
    );
    assert!(body.contains("Page 1 of 1 · 3 alerts"));
    let rows = table_rows(&body);
    assert_eq!(rows[0][1], app.local_host);
    assert_eq!(rows[0][3], "80.0");
    assert_eq!(rows[1][3], "75.0");
    assert_eq!(rows[0][7], "global");

    let body = b.page("/dashboard/alerts?metric=cpu", StatusCode::OK).await;
    assert_eq!(
        alert_rows(&body),
        vec![cpu_firing.clone(), cpu_resolved.clone()]
    );
    assert!(body.contains(r#"<option value="cpu" selected>"#), "{body}");
    let body = b
        .page("/dashboard/alerts?metric=memory", StatusCode::OK)
        .await;
    assert_eq!(alert_rows(&body), vec![mem_firing.clone()]);
    let body = b
        .page("/dashboard/alerts?state=resolved", StatusCode::OK)
        .await;
    assert_eq!(alert_rows(&body), vec![cpu_resolved.clone()]);
    assert!(body.contains(r#"<option value="resolved" selected>"#));
    let body = b
        .page("/dashboard/alerts?state=firing", StatusCode::OK)
        .await;
    assert_eq!(
        alert_rows(&body),
        vec![cpu_firing.clone(), mem_firing.clone()]
    );
    let body = b
        .page("/dashboard/alerts?metric=cpu&state=firing", StatusCode::OK)
        .await;
    assert_eq!(alert_rows(&body), vec![cpu_firing.clone()]);
    let body = b
        .page(
            "/dashboard/alerts?metric=memory&state=resolved",
            StatusCode::OK,
        )
        .await;
    assert!(alert_rows(&body).is_empty());
    assert!(body.contains("No alerts match."));
    // Unknown filter values mean "all".
    let body = b
        .page("/dashboard/alerts?metric=bogus&state=bogus", StatusCode::OK)
        .await;
    assert_eq!(alert_rows(&body).len(), 3);

    // htmx gets the table alone.
    let resp = b.get_htmx("/dashboard/alerts?metric=cpu&state=all").await;
    assert_security_headers(resp.headers());
    let frag = body_with_status(resp, StatusCode::OK).await;
    assert!(
        frag.trim_start().starts_with(r#"<div id="alerts-table""#),
        "{frag}"
    );
    assert!(!frag.contains("<html"));
    assert!(!frag.contains(r#"<select id="f-metric""#));
    assert_eq!(alert_rows(&frag), vec![cpu_firing, cpu_resolved]);
    assert!(
        unescape_html(&frag).contains(r#"hx-get="/dashboard/alerts?metric=cpu&state=all&page=1""#)
    );
    assert_csp_clean_markup(&frag, "alerts table");

    // 28 more resolved cpu episodes: 31 alerts, two pages.
    // The first sample ends the two open episodes.
    let mut more = vec![(5.0, 10.0)];
    for _ in 0..28 {
        more.push((99.0, 10.0));
        more.push((5.0, 10.0));
    }
    feed(&app, &mut eng, t0 + 60_000, &more).await;
    let body = b.page("/dashboard/alerts", StatusCode::OK).await;
    let page1 = alert_rows(&body);
    assert_eq!(page1.len(), 25);
    assert!(body.contains("Page 1 of 2 · 31 alerts"), "{body}");
    let next = r#"href="/dashboard/alerts?metric=all&state=all&page=2""#;
    assert!(
        unescape_html(&body).contains(next),
        "no link to page 2: {body}"
    );
    assert!(!body.contains("page=0"));
    assert!(
        page1.iter().all(|r| r.0 == "cpu" && r.1 == "99.0"),
        "{page1:?}"
    );

    let body = b
        .page(
            "/dashboard/alerts?metric=all&state=all&page=2",
            StatusCode::OK,
        )
        .await;
    assert!(body.contains("Page 2 of 2 · 31 alerts"));
    assert!(
        unescape_html(&body).contains(r#"href="/dashboard/alerts?metric=all&state=all&page=1""#)
    );
    assert!(!body.contains("page=3"));
    let page2 = alert_rows(&body);
    assert_eq!(page2.len(), 6, "{page2:?}");
    // The three oldest of the 28, then the original three, all resolved by now.
    assert!(page2[..3].iter().all(|r| r.0 == "cpu" && r.1 == "99.0"));
    let resolved = |m: &str, v: &str| (m.to_owned(), v.to_owned(), "resolved".to_owned());
    assert_eq!(
        page2[3..].to_vec(),
        vec![
            resolved("cpu", "97.0"),
            resolved("memory", "90.0"),
            resolved("cpu", "95.0")
        ]
    );
    // Past the end: the last page is shown instead.
    let body = b.page("/dashboard/alerts?page=9", StatusCode::OK).await;
    assert_eq!(alert_rows(&body), page2);
    assert!(body.contains("Page 2 of 2"));
    // Filters carry into the pager links.
    let body = b
        .page("/dashboard/alerts?state=firing", StatusCode::OK)
        .await;
    assert!(body.contains("No alerts match."));
    let body = b
        .page("/dashboard/alerts?state=resolved", StatusCode::OK)
        .await;
    assert!(body.contains("Page 1 of 2 · 31 alerts"), "{body}");
    assert!(unescape_html(&body)
        .contains(r#"href="/dashboard/alerts?metric=all&state=resolved&page=2""#));
}

// ---------------------------------------------------------------------------------------
// 10. Admin

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_elevation_thresholds_and_user_management() {
    let app = spawn_dashboard().await;
    let admin = Browser::new(&app);
    let (_, admin_name) = admin.register_new().await;
    let victim = Browser::new(&app);
    let (victim_id, victim_name) = victim.register_new().await;
    let victim_token = app.login(&victim_name, PASSWORD).await;
    assert_eq!(
        app.get("/metrics", &victim_token).await.status(),
        StatusCode::OK
    );

    // Not elevated: the token form.
    let body = full_page(
        admin.get("/dashboard/admin").await,
        StatusCode::OK,
        "admin login",
    )
    .await;
    assert!(body.contains(r#"name="admin_token""#));
    assert!(!body.contains(r#"id="users""#));
    assert!(!body.contains(&victim_name));
    let csrf = csrf_of(&body);
    // Admin actions are refused to a plain session.
    let resp = admin
        .post_form(
            "/dashboard/admin/thresholds",
            &[
                ("csrf_token", &csrf),
                ("cpu_threshold", "1"),
                ("memory_threshold", "1"),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::FORBIDDEN, "not admin").await;
    assert!(body.contains("This needs an admin session."));
    let resp = admin
        .post_form(
            &format!("/dashboard/admin/users/{victim_id}/disable"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        !app.store
            .user_by_id(victim_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );

    // A wrong token: 403 with an inline message.
    let resp = admin
        .post_form(
            "/dashboard/admin",
            &[
                ("csrf_token", &csrf),
                ("admin_token", "not-the-admin-token-at-all"),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::FORBIDDEN, "wrong admin token").await;
    assert!(
        body.contains(r#"<p class="form-error" role="alert">That is not the admin token.</p>"#),
        "{body}"
    );
    assert!(!body.contains(r#"id="users""#));
    // The right token without CSRF: still refused.
    let resp = admin
        .post_form("/dashboard/admin", &[("admin_token", ADMIN_TOKEN)])
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let before = admin.cookie().expect("cookie");
    let resp = admin
        .post_form(
            "/dashboard/admin",
            &[("csrf_token", &csrf), ("admin_token", ADMIN_TOKEN)],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/admin");
    let after = set_cookie_value(&resp).expect("elevation sets a new cookie");
    assert_ne!(before, after, "session id not rotated at elevation");
    // The pre-elevation id is dead.
    assert_to_login(get_with_cookie(&app, "/dashboard", &before).await).await;

    let body = full_page(admin.get("/dashboard/admin").await, StatusCode::OK, "admin").await;
    assert!(body.contains("Global thresholds"));
    assert!(body.contains(r#"id="users""#));
    assert!(body.contains(&format!("<td>{admin_name}</td>")));
    assert!(body.contains(&format!("<td>{victim_name}</td>")));
    assert!(body.contains("Admin ✓"));
    assert!(body.contains(&format!(
        r#"action="/dashboard/admin/users/{victim_id}/disable""#
    )));
    let new_csrf = csrf_of(&body);
    assert_ne!(new_csrf, csrf, "CSRF token not rotated at elevation");
    // Still the same user.
    assert_eq!(admin.get("/dashboard").await.status(), StatusCode::OK);

    // Global thresholds: invalid, then valid.
    let resp = admin
        .post_form(
            "/dashboard/admin/thresholds",
            &[
                ("csrf_token", &new_csrf),
                ("cpu_threshold", "101"),
                ("memory_threshold", "60"),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "bad global").await;
    assert!(body.contains(r#"id="cpu-error""#));
    let g = app.store.global_thresholds().await.unwrap();
    assert_eq!((g.cpu, g.memory), (80.0, 75.0));
    let resp = admin
        .post_form(
            "/dashboard/admin/thresholds",
            &[
                ("csrf_token", &new_csrf),
                ("cpu_threshold", "55"),
                ("memory_threshold", "60.5"),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "global saved").await;
    assert!(body.contains("Saved: CPU 55 %, memory 60.5 %."), "{body}");
    let g = app.store.global_thresholds().await.unwrap();
    assert_eq!((g.cpu, g.memory), (55.0, 60.5));
    let got = json_with_status(app.get("/thresholds", &victim_token).await, StatusCode::OK).await;
    assert_eq!(
        got,
        json!({"cpu_threshold": 55.0, "memory_threshold": 60.5})
    );

    // Disabling a user ends their sessions and stops their tokens.
    assert_eq!(victim.get("/dashboard").await.status(), StatusCode::OK);
    let resp = admin
        .post_form(
            &format!("/dashboard/admin/users/{victim_id}/disable"),
            &[("csrf_token", &new_csrf)],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "disabled").await;
    assert!(body.contains("Account disabled; its sessions have ended."));
    assert!(body.contains(&format!(
        r#"action="/dashboard/admin/users/{victim_id}/enable""#
    )));
    assert!(
        app.store
            .user_by_id(victim_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert_to_login(victim.get("/dashboard").await).await;
    assert_error(
        app.get("/metrics", &victim_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // ...and they cannot log in again.
    let csrf_v = victim.csrf("/dashboard/login").await;
    let resp = victim
        .post_form(
            "/dashboard/login",
            &[
                ("csrf_token", &csrf_v),
                ("username", &victim_name),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Enable: they can log in again; "end sessions" logs them out once more.
    let resp = admin
        .post_form(
            &format!("/dashboard/admin/users/{victim_id}/enable"),
            &[("csrf_token", &new_csrf)],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "enabled").await;
    assert!(body.contains("Account enabled."));
    // Tokens from before the disable stay revoked (the account may have been compromised).
    assert_eq!(
        app.get("/metrics", &victim_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    victim.login(&victim_name).await;
    assert_eq!(victim.get("/dashboard").await.status(), StatusCode::OK);
    let resp = admin
        .post_form(
            &format!("/dashboard/admin/users/{victim_id}/end-sessions"),
            &[("csrf_token", &new_csrf)],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "sessions ended").await;
    assert!(body.contains("All sessions of the account have ended."));
    assert_to_login(victim.get("/dashboard").await).await;
    assert_eq!(admin.get("/dashboard").await.status(), StatusCode::OK);

    // Unknown users and actions.
    for path in [
        "/dashboard/admin/users/987654/disable".to_owned(),
        format!("/dashboard/admin/users/{victim_id}/delete"),
    ] {
        let resp = admin.post_form(&path, &[("csrf_token", &new_csrf)]).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // The old address redirects.
    let resp = admin.get("/dashboard/admin.html").await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert_eq!(
        header(resp.headers(), "location").as_deref(),
        Some("/dashboard/admin")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_is_disabled_without_an_admin_token() {
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        s.admin_token = None;
    })
    .await;
    let b = Browser::new(&app);
    b.register_new().await;
    let body = full_page(
        b.get("/dashboard/admin").await,
        StatusCode::FORBIDDEN,
        "admin off",
    )
    .await;
    assert!(body.contains("Admin is disabled"), "{body}");
    assert!(!body.contains(r#"name="admin_token""#));
    let csrf = csrf_of(&body);
    let resp = b
        .post_form(
            "/dashboard/admin",
            &[("csrf_token", &csrf), ("admin_token", ADMIN_TOKEN)],
        )
        .await;
    let body = full_page(resp, StatusCode::FORBIDDEN, "admin off post").await;
    assert!(body.contains("Admin is disabled"), "{body}");
    assert!(!body.contains(r#"id="users""#));
    // Not elevated after all: elevation would have rotated the session and its CSRF token.
    assert_eq!(b.csrf("/dashboard/thresholds").await, csrf);
}

// ---------------------------------------------------------------------------------------
// 11. Error pages, headers, strict-CSP markup, escaping

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_dashboard_paths_are_404_pages_in_the_layout() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    let body = full_page(
        b.get("/dashboard/nope").await,
        StatusCode::NOT_FOUND,
        "404 anon",
    )
    .await;
    assert!(body.contains("404 · Page not found"), "{body}");
    assert!(body.contains(r#"href="/dashboard/login""#));

    let (_, name) = b.register_new().await;
    for path in [
        "/dashboard/nope",
        "/dashboard/alerts/x/y",
        "/dashboard/static/app.css",
    ] {
        let body = full_page(b.get(path).await, StatusCode::NOT_FOUND, path).await;
        assert!(body.contains("404 · Page not found"), "{path}: {body}");
        assert!(body.contains("There is nothing at this address."));
        // The nav of a logged-in user.
        assert!(body.contains(r#"href="/dashboard/tokens""#), "{path}");
        assert!(body.contains(&name));
    }
    // POSTs too.
    let csrf = b.csrf("/dashboard").await;
    let resp = b
        .post_form("/dashboard/nope", &[("csrf_token", &csrf)])
        .await;
    full_page(resp, StatusCode::NOT_FOUND, "404 post").await;
    // htmx gets the small inline error.
    let resp = b.get_htmx("/dashboard/nope").await;
    let frag = body_with_status(resp, StatusCode::NOT_FOUND).await;
    assert!(
        frag.starts_with(r#"<div class="inline-error" role="alert">"#),
        "{frag}"
    );
    assert!(!frag.contains("<html"));
    // Outside /dashboard the JSON 404 stays.
    assert_error(b.get("/nope").await, StatusCode::NOT_FOUND).await;
    assert_error(b.get("/static/nope.css").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_security_headers_and_strict_csp_markup() {
    let app = spawn_dashboard().await;
    let now = now_ms();
    app.insert_samples(&[
        sample(app.local_host_id, now - 2000, 91.0, 80.0),
        sample(app.local_host_id, now - 1000, 12.0, 30.0),
    ])
    .await;
    let mut eng = AlertEngine::new(app.store.clone()).await.unwrap();
    feed(&app, &mut eng, now - 600_000, &[(95.0, 90.0), (10.0, 10.0)]).await;

    let b = Browser::new(&app);
    for path in [
        "/dashboard/login",
        "/dashboard/register",
        "/dashboard/admin",
    ] {
        full_page(b.get(path).await, StatusCode::OK, path).await;
    }
    b.register_new().await;
    let csrf = b.csrf("/dashboard/tokens").await;
    let resp = b
        .post_form(
            "/dashboard/tokens",
            &[("csrf_token", &csrf), ("name", "t"), ("ttl_days", "1")],
        )
        .await;
    full_page(resp, StatusCode::OK, "token created").await;
    for path in [
        "/dashboard",
        "/dashboard?range=30d",
        "/dashboard/alerts",
        "/dashboard/thresholds",
        "/dashboard/tokens",
        "/dashboard/admin",
    ] {
        let body = full_page(b.get(path).await, StatusCode::OK, path).await;
        assert!(body.contains(r#"<script src="/static/vendor/htmx-2.0.11.min.js" defer></script>"#));
        // htmx may not eval, run scripts in swapped content, or talk to other origins.
        for setting in [
            r#""allowEval":false"#,
            r#""allowScriptTags":false"#,
            r#""selfRequestsOnly":true"#,
        ] {
            assert!(body.contains(setting), "htmx {setting} missing on {path}");
        }
    }
    let admin_csrf = b.csrf("/dashboard/admin").await;
    let resp = b
        .post_form(
            "/dashboard/admin",
            &[("csrf_token", &admin_csrf), ("admin_token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let body = full_page(b.get("/dashboard/admin").await, StatusCode::OK, "admin").await;
    assert!(body.contains(r#"id="users""#));

    // Pages are never compressed (BREACH: secrets next to reflected input).
    let resp = b
        .client
        .get(app.url("/dashboard/tokens"))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(resp.headers(), "content-encoding"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflected_input_is_escaped() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);

    // A script-y username is refused, and shown back escaped.
    let csrf = b.csrf("/dashboard/register").await;
    let probe = "x<script>alert(1)</script>";
    let resp = b
        .post_form(
            "/dashboard/register",
            &[
                ("csrf_token", &csrf),
                ("username", probe),
                ("password", PASSWORD),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "xss username").await;
    assert!(body.contains(r#"id="form-error""#), "{body}");
    assert!(body.contains("username may contain only letters"), "{body}");
    assert!(!body.contains("<script>alert"), "unescaped: {body}");
    // Shown back in the form, escaped: it decodes to exactly what was typed.
    let shown = attr_after(&body, r#"name="username" value=""#).expect("username field");
    assert!(!shown.contains('<'), "{shown}");
    assert_eq!(unescape_html(&shown), probe);
    assert!(app.store.user_by_name(probe).await.unwrap().is_none());
    assert_to_login(b.get("/dashboard").await).await;
    // The login form keeps the typed username, escaped.
    let csrf = b.csrf("/dashboard/login").await;
    let quote = r#""><img src=x onerror=alert(1)>"#;
    let resp = b
        .post_form(
            "/dashboard/login",
            &[
                ("csrf_token", &csrf),
                ("username", quote),
                ("password", PASSWORD),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::UNAUTHORIZED, "xss login").await;
    assert!(!body.contains("<img"), "{body}");

    // A token name with markup is stored as is and rendered escaped.
    b.register_new().await;
    let csrf = b.csrf("/dashboard/tokens").await;
    let evil = "<img src=x onerror=alert(1)>";
    let resp = b
        .post_form(
            "/dashboard/tokens",
            &[("csrf_token", &csrf), ("name", evil), ("ttl_days", "30")],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "evil token").await;
    assert!(!body.contains("<img"), "{body}");
    let body = full_page(b.get("/dashboard/tokens").await, StatusCode::OK, "tokens").await;
    assert!(!body.contains("<img"), "{body}");
    let cell = &table_rows(&body)[0][0];
    assert!(!cell.contains('<'), "{cell}");
    assert_eq!(unescape_html(cell), evil);
    // And a too-long one comes back in the form, escaped.
    let long = format!("{}\"><img src=x>", "a".repeat(70));
    let resp = b
        .post_form(
            "/dashboard/tokens",
            &[("csrf_token", &csrf), ("name", &long), ("ttl_days", "30")],
        )
        .await;
    let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "long token name").await;
    assert!(!body.contains("<img"), "{body}");
    let shown = attr_after(&body, r#"id="token-name" name="name" value=""#).expect("name field");
    assert_eq!(unescape_html(&shown), long);

    // Query strings are not reflected raw either.
    let body = b
        .page(
            "/dashboard/alerts?metric=%3Cimg%3E&state=%22%3E",
            StatusCode::OK,
        )
        .await;
    assert!(!body.contains("<img"));
    assert_csp_clean_markup(&body, "alerts with probe query");
}

// ---------------------------------------------------------------------------------------
// 12. Static assets

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_assets_have_types_and_cache_headers() {
    let app = spawn_dashboard().await;
    let c = plain_client();
    for (path, ct, cache, needle) in [
        ("/static/app.css", "text/css", "public, max-age=3600", ""),
        (
            "/static/app.js",
            "javascript",
            "public, max-age=3600",
            "htmx:responseError",
        ),
        (
            "/static/vendor/htmx-2.0.11.min.js",
            "javascript",
            "public, max-age=31536000, immutable",
            "htmx",
        ),
    ] {
        let resp = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let got_ct = header(resp.headers(), "content-type").unwrap_or_default();
        assert!(got_ct.contains(ct), "{path}: content-type {got_ct:?}");
        assert_eq!(
            header(resp.headers(), "cache-control").as_deref(),
            Some(cache),
            "{path}"
        );
        assert_eq!(
            header(resp.headers(), "x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(
            header(resp.headers(), "set-cookie"),
            None,
            "{path} sets a cookie"
        );
        let body = resp.text().await.unwrap();
        assert!(body.len() > 100, "{path}: {} bytes", body.len());
        assert!(body.contains(needle), "{path}");
    }
    // Compressed when asked for.
    let resp = c
        .get(app.url("/static/vendor/htmx-2.0.11.min.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(resp.headers(), "content-encoding").as_deref(),
        Some("gzip")
    );
    // Missing files and escapes from the asset folder are 404.
    for path in [
        "/static/nope.js",
        "/static/vendor/",
        "/static/%2e%2e/Cargo.toml",
        "/static/..%2fCargo.toml",
        "/static/%2e%2e%2fsrc%2fmain.rs",
    ] {
        let resp = c.get(app.url(path)).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(
            !body.contains("[package]") && !body.contains("fn main"),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Throttling through the forms

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_and_admin_tokens_are_throttled_on_the_forms() {
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        s.login_max_failures_account = 3;
        s.login_max_failures_ip = 3;
    })
    .await;
    let name = unique_username("throttle");
    app.register_ok(&name, PASSWORD).await;
    let b = Browser::new(&app);

    // Wrong admin tokens: the third locks the client out, then even the right one is refused.
    let csrf = b.csrf("/dashboard/admin").await;
    for _ in 0..3 {
        let resp = b
            .post_form(
                "/dashboard/admin",
                &[
                    ("csrf_token", &csrf),
                    ("admin_token", "wrong-wrong-wrong-wrong"),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    let resp = b
        .post_form(
            "/dashboard/admin",
            &[("csrf_token", &csrf), ("admin_token", ADMIN_TOKEN)],
        )
        .await;
    let body = full_page(resp, StatusCode::TOO_MANY_REQUESTS, "admin throttled").await;
    assert!(
        body.contains("Too many wrong tokens. Try again in"),
        "{body}"
    );
    let body = b.page("/dashboard/admin", StatusCode::OK).await;
    assert!(!body.contains(r#"id="users""#), "elevated while locked out");

    // Wrong passwords: the same for the login form, with the username kept.
    let csrf = b.csrf("/dashboard/login").await;
    for _ in 0..3 {
        let resp = b
            .post_form(
                "/dashboard/login",
                &[
                    ("csrf_token", &csrf),
                    ("username", &name),
                    ("password", "wrong password, really"),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = b
        .post_form(
            "/dashboard/login",
            &[
                ("csrf_token", &csrf),
                ("username", &name),
                ("password", PASSWORD),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::TOO_MANY_REQUESTS, "login throttled").await;
    assert!(
        body.contains("Too many failed attempts. Try again in"),
        "{body}"
    );
    assert!(body.contains(&format!(r#"value="{name}""#)));
    assert_to_login(b.get("/dashboard").await).await;
}

// ---------------------------------------------------------------------------------------
// The markup checker itself

#[test]
fn the_markup_checker_catches_what_a_strict_csp_blocks() {
    let ok = r#"<!doctype html><html><head><meta content='{"a": 1}'><script src="/x.js" defer></script></head>
        <body hx-get="/a?b=1&amp;c=2"><!-- <b onclick=x> --><svg><line x1="0" y2="1"/></svg><input readonly value=x></body></html>"#;
    assert_csp_clean_markup(ok, "ok");
    for bad in [
        "<p><script>alert(1)</script></p>",
        "<script src=\"/x.js\">alert(1)</script>",
        "<p style=\"color: red\">x</p>",
        "<p STYLE=color:red>x</p>",
        "<img src=x onerror=alert(1)>",
        "<button hx-on:click=\"alert(1)\">x</button>",
        "<a href=\" javascript:alert(1)\">x</a>",
        "<style>p{}</style>",
        "<p>1 < 2</p>",
    ] {
        let caught = std::panic::catch_unwind(|| assert_csp_clean_markup(bad, "bad")).is_err();
        assert!(caught, "not caught: {bad}");
    }
}

// ---------------------------------------------------------------------------------------
// Regressions: htmx login redirects, history restores, malformed queries

/// htmx sends its requests with XMLHttpRequest, which follows a 303 by itself: htmx only
/// saw the final 200 login page (without `HX-Redirect`) and swapped it into the polling
/// element. The `hx-redirect` header must come on a response XHR does not follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htmx_login_redirect_is_visible_to_htmx() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    let resp = b.get_htmx("/dashboard/alerts").await;
    assert!(
        !resp.status().is_redirection(),
        "htmx gets a {}: XHR follows it and never shows htmx the hx-redirect header",
        resp.status()
    );
    assert_eq!(
        header(resp.headers(), "hx-redirect").as_deref(),
        Some("/dashboard/login")
    );
}

/// With `historyCacheSize: 0` every back/forward to a URL that htmx pushed (the alerts
/// filters and pager use `hx-push-url`) is a history-cache miss, and htmx 2 re-fetches the
/// URL with `HX-Request: true` plus `HX-History-Restore-Request: true` and swaps the answer
/// into `<body>`. Answered with the bare table, the layout disappeared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htmx_history_restore_gets_the_full_page() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    b.register_new().await;
    let resp = b
        .client
        .get(app.url("/dashboard/alerts?metric=cpu&state=all"))
        .header("hx-request", "true")
        .header("hx-history-restore-request", "true")
        .send()
        .await
        .unwrap();
    let body = body_with_status(resp, StatusCode::OK).await;
    assert!(
        body.contains("<html"),
        "history restore got a fragment: {body}"
    );
    assert!(body.contains(r#"<nav aria-label="Main">"#));
}

/// A malformed query on a dashboard URL (which users can edit) answered axum's rejection,
/// turned into API-style JSON by `normalize_errors`, instead of an error page in the layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_dashboard_queries_get_an_html_error_page() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    b.register_new().await;
    for path in ["/dashboard/alerts?page=abc", "/dashboard?host=abc"] {
        let body = full_page(b.get(path).await, StatusCode::BAD_REQUEST, path).await;
        assert!(!body.contains("detail"), "{path}: {body}");
    }
    // Well-formed but unknown values are not errors.
    b.page("/dashboard?range=zz", StatusCode::OK).await;
    b.page("/dashboard/alerts?page=-5&metric=zz", StatusCode::OK)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_revokes_their_api_tokens_for_good() {
    let app = spawn_dashboard().await;
    let (user_id, token) = app.register_and_login_user().await;
    assert_eq!(app.get("/metrics", &token).await.status(), StatusCode::OK);
    assert!(app.store.set_user_disabled(user_id, true).await.unwrap());
    assert!(app.store.set_user_disabled(user_id, false).await.unwrap());
    // Enabled again, but the token from before the disable stays dead.
    assert_eq!(
        app.get("/metrics", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_page_changes_it_and_ends_the_other_sessions() {
    let app = spawn_dashboard().await;
    let a = Browser::new(&app);
    let (_, name) = a.register_new().await;
    let b = Browser::new(&app);
    b.login(&name).await;
    let token = app.login(&name, PASSWORD).await;
    // The user's name in the header leads here.
    let body = a.page("/dashboard", StatusCode::OK).await;
    assert!(body.contains(r#"href="/dashboard/password""#));
    let form = a.page("/dashboard/password", StatusCode::OK).await;
    assert_csp_clean_markup(&form, "password page");
    let csrf = csrf_of(&form);
    const NEW: &str = "a brand new passphrase";
    let post = |current: &'static str, new: &'static str, confirm: &'static str| {
        let csrf = csrf.clone();
        let a = &a;
        async move {
            a.post_form(
                "/dashboard/password",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("current_password", current),
                    ("new_password", new),
                    ("confirm_password", confirm),
                ],
            )
            .await
        }
    };
    let body = full_page(
        post(PASSWORD, NEW, "something else").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "mismatch",
    )
    .await;
    assert!(body.contains("The two new passwords differ."), "{body}");
    let body = full_page(
        post("not it at all", NEW, NEW).await,
        StatusCode::FORBIDDEN,
        "wrong current",
    )
    .await;
    assert!(body.contains("The current password is wrong."), "{body}");
    let body = full_page(
        post(PASSWORD, "password123", "password123").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "common",
    )
    .await;
    assert!(body.contains("too common"), "{body}");
    // Nothing has changed yet.
    b.page("/dashboard/tokens", StatusCode::OK).await;
    assert_eq!(
        app.get("/thresholds", &token).await.status(),
        StatusCode::OK
    );

    let before = a.cookie().expect("cookie");
    let body = full_page(post(PASSWORD, NEW, NEW).await, StatusCode::OK, "changed").await;
    assert!(body.contains("Password changed."), "{body}");
    // This session goes on under a new id; the other one and the API token ended.
    let after = a.cookie().expect("cookie");
    assert_ne!(before, after, "session id not rotated");
    a.page("/dashboard/tokens", StatusCode::OK).await;
    assert_to_login(b.get("/dashboard/tokens").await).await;
    assert_error(
        app.get("/thresholds", &token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(app.login(&name, NEW).await.len(), 64);
}
