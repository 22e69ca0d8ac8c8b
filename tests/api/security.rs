//! Security checks from SECURITY.md that cut across features: no CORS, never-issued session
//! ids, database durability settings, unknown JSON fields on `/logs/analyze`, templates
//! that cannot disable escaping, re-hashing weak password hashes, where the admin token is
//! accepted, generic 500s for panics and database errors, and what the real binary writes
//! to its log at trace level.

use crate::binary::{command, free_port, read};
use crate::helpers::*;
use crate::pages::{assert_to_login, csrf_of, get_with_cookie, set_cookie_value, Browser, COOKIE};
use crate::receivers::{SmtpSink, WebhookReceiver};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use watchpost::config::{Secret, Settings};
use watchpost::store::SessionPool;

const EVIL_ORIGIN: &str = "https://evil.example";

fn assert_no_cors(h: &HeaderMap, what: &str) {
    let cors: Vec<_> = h
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{what}: CORS headers {cors:?}");
}

// ---------------------------------------------------------------------------------------
// S17: no CORS by default

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_get_no_cors_headers() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    for path in [
        "/metrics",
        "/login",
        "/logs/analyze",
        "/dashboard/login",
        "/healthz",
    ] {
        // A preflight: no route answers OPTIONS, so the browser never gets a grant.
        let resp = app
            .client
            .request(Method::OPTIONS, app.url(path))
            .header("origin", EVIL_ORIGIN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "token, content-type")
            .send()
            .await
            .unwrap();
        assert_no_cors(resp.headers(), &format!("OPTIONS {path}"));
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "OPTIONS {path}"
        );
        // A simple request: served (or refused) as usual, but without any grant for the
        // foreign origin, so its script cannot read the answer.
        let resp = app
            .client
            .get(app.url(path))
            .header("origin", EVIL_ORIGIN)
            .header("token", &token)
            .send()
            .await
            .unwrap();
        assert_no_cors(resp.headers(), &format!("GET {path}"));
    }
}

// ---------------------------------------------------------------------------------------
// S09: session ids the server never issued are never adopted

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_issued_session_ids_are_not_adopted() {
    use base64::Engine as _;
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    let name = unique_username("sid");
    app.register_ok(&name, PASSWORD).await;
    // The shape tower-sessions issues (128 random bits, base64url), but never issued.
    let well_formed =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    let long = "A".repeat(300);
    for planted in [
        well_formed.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAA",
        "not-a-session",
        "' OR 1=1--",
        long.as_str(),
        "",
    ] {
        // Anonymous where a login is needed (and no 500).
        assert_to_login(get_with_cookie(&app, "/dashboard", planted).await).await;
        // A page that needs a session starts one under a fresh id.
        let resp = get_with_cookie(&app, "/dashboard/login", planted).await;
        assert_eq!(resp.status(), StatusCode::OK, "planted {planted:?}");
        let issued = set_cookie_value(&resp)
            .unwrap_or_else(|| panic!("no new session cookie for planted {planted:?}"));
        assert_ne!(issued, planted);
        assert_eq!(issued.len(), 22, "issued id {issued:?}");
    }

    // Logging in with a planted id in the jar: the session that ends up logged in has
    // another id, and the planted one stays worthless.
    let b = Browser::new(&app);
    let url: reqwest::Url = app.base_url.parse().unwrap();
    b.jar
        .add_cookie_str(&format!("{COOKIE}={well_formed}; Path=/"), &url);
    assert_eq!(b.cookie().as_deref(), Some(well_formed.as_str()));
    b.login(&name).await;
    let after = b.cookie().expect("session cookie after login");
    assert_ne!(after, well_formed);
    assert_eq!(
        get_with_cookie(&app, "/dashboard", &after).await.status(),
        StatusCode::OK
    );
    assert_to_login(get_with_cookie(&app, "/dashboard", &well_formed).await).await;
}

// ---------------------------------------------------------------------------------------
// R35/R36: durability settings on the connections the app really uses

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_durability_settings_are_in_force() {
    let app = spawn_app_prepared(
        |url| async move {
            // Make the server default the unsafe one, so only the app's own connection
            // options can produce `on` below.
            if !url.starts_with("sqlite:") {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::raw_sql(
                    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', \
                     current_database()); END $$",
                )
                .execute(&pool)
                .await
                .unwrap();
                pool.close().await;
            }
        },
        |_| {},
    )
    .await;
    match app.store.session_pool() {
        SessionPool::Sqlite(pool) => {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            for (pragma, expected) in [
                // 2 = FULL: a commit is on disk before it is acknowledged.
                ("synchronous", 2),
                ("foreign_keys", 1),
                ("busy_timeout", 5000),
            ] {
                let v: i64 = sqlx::query_scalar(&format!("PRAGMA {pragma}"))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert_eq!(v, expected, "PRAGMA {pragma}");
            }
        }
        SessionPool::Postgres(pool) => {
            let fresh = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            let default: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&fresh)
                .await
                .unwrap();
            fresh.close().await;
            assert_eq!(default, "off", "the test's database default did not apply");
            // Several connections at once, so more than one pooled connection is asked.
            let mut conns = Vec::new();
            for _ in 0..3 {
                conns.push(pool.acquire().await.unwrap());
            }
            for conn in &mut conns {
                let v: String = sqlx::query_scalar("SHOW synchronous_commit")
                    .fetch_one(&mut **conn)
                    .await
                    .unwrap();
                assert_eq!(v, "on");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// S19: unknown fields in the `{"logs": ...}` body

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_json_body_refuses_unknown_fields() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    for (body, field) in [
        (json!({"logs": "x", "admin": true}), "admin"),
        (json!({"user_id": 1, "logs": "x"}), "user_id"),
        (json!({"logs": "x", "name": "evil.log"}), "name"),
    ] {
        let resp = app.post_json("/logs/analyze", &body, &token).await;
        let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(detail, format!("unknown field `{field}`, expected `logs`"));
    }
    // A long field name is not echoed in full.
    let long = "k".repeat(5000);
    let resp = app
        .post_json(
            "/logs/analyze",
            &json!({"logs": "x", long.as_str(): 1}),
            &token,
        )
        .await;
    let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.len() < 200, "detail is {} bytes", detail.len());
    // Nothing was stored; the plain body still works.
    let list = json_with_status(app.get("/logs/analyses", &token).await, StatusCode::OK).await;
    assert_eq!(list, json!([]));
    let resp = app
        .post_json(
            "/logs/analyze",
            &json!({"logs": "2026-11-27 10:00:00,001 - web - ERROR - boom\n"}),
            &token,
        )
        .await;
    let report = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(report["lines"], 1, "{report}");
    let list = json_with_status(app.get("/logs/analyses", &token).await, StatusCode::OK).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

// ---------------------------------------------------------------------------------------
// S16: templates cannot switch escaping off

/// What in one template file (`name` relative to `templates/`) could turn off or bypass
/// askama's HTML escaping.
fn template_problems(name: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    // askama escapes by extension; only .html is known to be escaped here.
    if !name.ends_with(".html") {
        problems.push(format!("{name}: not an .html template"));
    }
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for (pattern, why) in [
        ("|safe", "marks a value safe"),
        ("|escape(\"none\")", "escapes with the none escaper"),
        ("|e(\"none\")", "escapes with the none escaper"),
        ("|escape(\"txt\")", "escapes as plain text"),
        ("|e(\"txt\")", "escapes as plain text"),
        ("{%autoescape", "changes autoescaping"),
    ] {
        if squeezed.contains(pattern) {
            problems.push(format!("{name}: {why} ({pattern})"));
        }
    }
    problems
}

/// What in one `#[template(...)]` attribute could turn off escaping.
fn template_attr_problems(attr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let squeezed: String = attr.chars().filter(|c| !c.is_whitespace()).collect();
    for key in ["escape=", "source=", "ext=", "config=", "syntax="] {
        if squeezed.contains(key) {
            problems.push(format!("{attr}: sets {key}"));
        }
    }
    if !squeezed.starts_with("#[template(path=\"") || !squeezed.contains(".html\"") {
        problems.push(format!("{attr}: not a path to an .html template"));
    }
    problems
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn templates_never_disable_escaping() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("templates");
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    assert!(files.len() >= 10, "templates: {files:?}");
    let mut problems = Vec::new();
    for f in &files {
        let name = f.strip_prefix(&dir).unwrap().display().to_string();
        problems.extend(template_problems(&name, &read(f)));
    }
    // An askama config could add escapers that do nothing, or map .html to one.
    for cfg in ["askama.toml", "rinja.toml"] {
        assert!(
            !root.join(cfg).exists(),
            "{cfg} present: review its escapers"
        );
    }
    let mut sources = Vec::new();
    files_under(&root.join("src"), &mut sources);
    let mut attrs = 0;
    for f in sources
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let text = read(f);
        for (i, _) in text.match_indices("#[template(") {
            let end = text[i..].find(")]").map_or(text.len(), |e| i + e + 2);
            attrs += 1;
            problems.extend(template_attr_problems(&text[i..end]));
        }
    }
    assert!(attrs >= 10, "found only {attrs} #[template] attributes");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_template_checker_catches_what_disables_escaping() {
    assert!(template_problems("a.html", "<p>{{ x }}</p>").is_empty());
    assert_eq!(template_problems("a.txt", "{{ x }}").len(), 1);
    assert_eq!(template_problems("a.html", "{{ x|safe }}").len(), 1);
    assert_eq!(template_problems("a.html", "{{ x | safe }}").len(), 1);
    assert_eq!(template_problems("a.html", "{{ x|e(\"none\") }}").len(), 1);
    assert_eq!(
        template_problems("a.html", "{{ x|escape( \"none\" ) }}").len(),
        1
    );
    assert!(template_attr_problems("#[template(path = \"pages/a.html\")]").is_empty());
    assert!(
        template_attr_problems("#[template(path = \"pages/a.html\", block = \"table\")]")
            .is_empty()
    );
    assert!(
        !template_attr_problems("#[template(path = \"a.html\", escape = \"none\")]").is_empty()
    );
    assert!(!template_attr_problems("#[template(source = \"{{ x }}\", ext = \"txt\")]").is_empty());
    assert!(!template_attr_problems("#[template(path = \"a.txt\")]").is_empty());
}

// ---------------------------------------------------------------------------------------
// S01: weaker hashes are re-hashed at the next login

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_password_hashes_are_upgraded_at_login() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};
    let app = spawn_app().await;
    let name = unique_username("old");
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).unwrap();
    let weak = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(4096, 1, 1, None).unwrap(),
    )
    .hash_password(PASSWORD.as_bytes(), &salt)
    .unwrap()
    .to_string();
    assert!(weak.starts_with("$argon2id$v=19$m=4096,t=1,p=1$"), "{weak}");
    app.store.create_user(&name, &weak, now_ms()).await.unwrap();
    let stored = || async {
        app.store
            .user_by_name(&name)
            .await
            .unwrap()
            .expect("user")
            .password_hash
    };

    // A wrong password changes nothing.
    assert_eq!(
        app.login_raw(&name, "not the password 1").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(stored().await, weak);

    app.login(&name, PASSWORD).await;
    let upgraded = stored().await;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    assert_ne!(upgraded, weak);
    // The new hash opens the account, and is current, so it is kept as it is.
    app.login(&name, PASSWORD).await;
    assert_eq!(stored().await, upgraded);
    assert_eq!(
        app.login_raw(&name, "not the password 1").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------------------------------
// S06: the admin token only in its header (API) or the form body (dashboard)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_in_the_query_string_does_not_authenticate() {
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        // Many failures on purpose: none of them may turn into a 429 here.
        s.login_max_failures_ip = 1000;
    })
    .await;
    for key in ["x-admin-token", "admin_token", "token", "x_admin_token"] {
        let path = format!("/admin/thresholds?{key}={ADMIN_TOKEN}");
        let resp = app.client.get(app.url(&path)).send().await.unwrap();
        let detail = assert_error(resp, StatusCode::FORBIDDEN).await;
        assert_eq!(detail, "invalid admin token", "{path}");
        let resp = app
            .client
            .post(app.url(&path))
            .json(&json!({"cpu_threshold": 1, "memory_threshold": 1}))
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::FORBIDDEN).await;
    }
    let g = app.store.global_thresholds().await.unwrap();
    assert_eq!((g.cpu, g.memory), (80.0, 75.0));

    // Wrong tokens of very different lengths get byte-identical answers.
    let mut answers = Vec::new();
    for len in [1, 31, ADMIN_TOKEN.len(), 64, 200] {
        let resp = app
            .client
            .get(app.url("/admin/thresholds"))
            .header("x-admin-token", "x".repeat(len))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let mut headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter(|(k, _)| k.as_str() != "date")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        let body = resp.bytes().await.unwrap();
        answers.push((len, status, headers, body));
    }
    let (_, status, headers, body) = &answers[0];
    assert_eq!(*status, StatusCode::FORBIDDEN);
    assert_eq!(
        std::str::from_utf8(body).unwrap(),
        r#"{"detail":"invalid admin token"}"#
    );
    for (len, s, h, b) in &answers[1..] {
        assert_eq!((s, h, b), (status, headers, body), "length {len}");
    }

    // The dashboard: a session is not elevated by a token in the URL, on GET or POST.
    let b = Browser::new(&app);
    b.register_new().await;
    let path = format!("/dashboard/admin?admin_token={ADMIN_TOKEN}");
    let page = b.page(&path, StatusCode::OK).await;
    assert!(page.contains(r#"name="admin_token""#), "not the token form");
    assert!(!page.contains(r#"id="users""#), "admin page shown");
    let csrf = csrf_of(&page);
    let resp = b
        .client
        .post(app.url(&path))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_ne!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "elevated by the query"
    );
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let page = b.page("/dashboard/admin", StatusCode::OK).await;
    assert!(page.contains(r#"name="admin_token""#), "not the token form");
    assert!(!page.contains(r#"id="users""#), "admin page shown");
}

/// The admin token of the shipped example configuration.
fn example_admin_token() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/watchpost.env.example");
    read(&path)
        .lines()
        .find_map(|l| l.strip_prefix("ADMIN_TOKEN="))
        .unwrap_or_else(|| panic!("no ADMIN_TOKEN= line in {}", path.display()))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholder_admin_tokens_are_refused() {
    let example = example_admin_token();
    assert!(
        example.len() >= 16,
        "{example:?} would fail the length rule anyway"
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/weak.db", dir.path().display());
    for weak in [
        example.as_str(),
        "changemechangeme",
        "Change_Me_Please_0123",
        "your-token-here-0123456789",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "abababababababababababab",
    ] {
        let mut settings = test_settings(&url);
        settings.admin_token = Some(Secret::new(weak));
        match watchpost::app::App::build(settings).await {
            Ok(_) => panic!("App::build accepted the admin token {weak:?}"),
            Err(e) => {
                let msg = format!("{e:#}");
                assert!(msg.contains("ADMIN_TOKEN"), "{msg}");
                assert!(!msg.contains(weak), "error echoes the secret: {msg}");
            }
        }
        let mut settings = test_settings(&url);
        settings.prometheus_token = Some(Secret::new(weak));
        assert!(settings.validate().is_err(), "prometheus token {weak:?}");
    }
    assert!(!dir.path().join("weak.db").exists());
    // Random-looking values pass, whatever their alphabet.
    let hex = hex::encode(rand::random::<[u8; 32]>());
    for good in [ADMIN_TOKEN, hex.as_str(), "0123456789abcdef"] {
        let mut settings = test_settings(&url);
        settings.admin_token = Some(Secret::new(good));
        settings.prometheus_token = Some(Secret::new(good));
        assert!(settings.validate().is_ok(), "{good:?} refused");
    }
}

// ---------------------------------------------------------------------------------------
// S20/S15: panics and database errors get a generic 500 with the security headers

async fn boom() -> &'static str {
    panic!("secret panic text at /src/secret.rs: SELECT password_hash FROM users")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_gets_a_generic_500() {
    let router = axum::Router::new().route("/boom", axum::routing::get(boom));
    let app = watchpost::http::harden(
        router,
        &Settings::default(),
        Arc::new(watchpost::prom::Metrics::new()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // Twice: the server survives the first panic.
    for _ in 0..2 {
        let resp = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_security_headers(resp.headers());
        assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/json"
        );
        let text = resp.text().await.unwrap();
        assert_eq!(text, r#"{"detail":"internal server error"}"#);
    }
    // Everything else behind the same stack still answers.
    let resp = client
        .get(format!("http://{addr}/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND).await;
    server.abort();
}

/// Words that would show a database error, a query or a source path reached the client.
const LEAKS: [&str; 7] = [
    "trigger says",
    "SELECT",
    "sqlx",
    "/src/",
    "password_hash",
    "panicked",
    "error returned from database",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_errors_get_a_generic_500() {
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    let db = RawDb::connect(&app.database_url).await;
    let message = "trigger says SELECT password_hash FROM users at /src/store/x.rs";
    match app.engine {
        Engine::Sqlite => {
            db.exec(&format!(
                "CREATE TRIGGER refuse_users BEFORE INSERT ON users \
                 BEGIN SELECT RAISE(ABORT, '{message}'); END"
            ))
            .await
        }
        Engine::Postgres => {
            db.exec(&format!(
                "CREATE FUNCTION refuse_users() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql"
            ))
            .await;
            db.exec(
                "CREATE TRIGGER refuse_users BEFORE INSERT ON users \
                 FOR EACH ROW EXECUTE FUNCTION refuse_users()",
            )
            .await;
        }
    }
    db.close().await;

    // The API: exactly the generic body.
    let resp = app.register(&unique_username("dberr"), PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_security_headers(resp.headers());
    let text = resp.text().await.unwrap();
    assert_eq!(text, r#"{"detail":"internal server error"}"#);

    // The dashboard form: an error page that says nothing about the cause.
    let b = Browser::new(&app);
    let csrf = b.csrf("/dashboard/register").await;
    let resp = b
        .post_form(
            "/dashboard/register",
            &[
                ("csrf_token", csrf.as_str()),
                ("username", &unique_username("dberr")),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_security_headers(resp.headers());
    let page = resp.text().await.unwrap();
    for leak in LEAKS {
        assert!(!page.contains(leak), "{leak:?} in the error page: {page}");
    }
}

// ---------------------------------------------------------------------------------------
// S26/S27: the real binary's log at trace level

/// A username that tries to forge a log record of its own.
const FORGED: &str = "bob\n2026-11-27T00:00:00.000000Z  INFO watchpost: admin logged in";

async fn wait_for_attempt(client: &reqwest::Client, base: &str, admin: &str, delivery: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let d: Value = client
            .get(format!("{base}/deliveries/{delivery}"))
            .header("x-admin-token", admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d["attempts"].as_i64().unwrap_or(0) >= 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "delivery {delivery} not attempted: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GETs a page and returns its text.
async fn page_text(client: &reqwest::Client, url: String) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// POSTs a JSON body.
async fn post_json(client: &reqwest::Client, url: String, body: &Value) -> reqwest::Response {
    client.post(url).json(body).send().await.unwrap()
}

/// POSTs a form.
async fn post_form(
    client: &reqwest::Client,
    url: String,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(url).form(form).send().await.unwrap()
}

/// Runs the real binary at trace level in `log_format`, drives registration, logins (one
/// failed, two with a forged name), API and form admin access, and test sends on the
/// environment's webhook and email channels and on a user's webhook; returns the captured
/// log and every secret that went over the wire.
async fn trace_level_scenario(log_format: &str) -> (String, Vec<(&'static str, String)>) {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let receiver = WebhookReceiver::start().await;
    let smtp = SmtpSink::start().await;
    let password = "hygiene pass Vq7Lr2x";
    let wrong_password = "wrong pass Zt93kdQ";
    let admin_token = "hygiene-admin-Kx8Pq2Wm4Rt6";
    let smtp_pass = "smtp-pass-Hn4Wc8Ju";
    let env_hook_path = "envhook-Ys5Jd2Mb";
    let user_hook_path = "userhook-Pb6Nf3Tc";
    let env_secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    );
    let env_url = format!("{}{env_hook_path}?key=envquery-Rk2", receiver.url());
    let user_url = format!("{}{user_hook_path}?key=userquery-Wd5", receiver.url());

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (mut cmd, _out, err) = command(dir.path(), "hygiene");
    cmd.arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/h.db", dir.path().display()),
        )
        .env("WATCHPOST_LOG", "trace")
        .env("WATCHPOST_COLLECTOR", "false")
        .env("WATCHPOST_COOKIE_SECURE", "false")
        .env("WATCHPOST_ALLOW_PRIVATE_WEBHOOKS", "true")
        .env("WATCHPOST_LOG_FORMAT", log_format)
        .env("ADMIN_TOKEN", admin_token)
        .env("ALERT_WEBHOOK_URL", &env_url)
        .env("ALERT_WEBHOOK_SECRET", &env_secret)
        .env("ALERT_SMTP_HOST", "127.0.0.1")
        .env("ALERT_SMTP_PORT", smtp.port().to_string())
        .env("ALERT_SMTP_USER", "alerts")
        .env("ALERT_SMTP_PASS", smtp_pass)
        .env("WATCHPOST_SMTP_TLS", "none")
        .env("ALERT_FROM", "watchpost@example.com")
        .env("ALERT_TO", "ops@example.com");
    let child = cmd.spawn().expect("spawn watchpost");
    let _kill = KillOnDrop(child);
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .no_proxy()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "not healthy:\n{}", read(&err));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The API: register, log in, use the token, fail a login, forge a record.
    let creds = json!({"username": "hygiene", "password": password});
    let resp = post_json(&client, format!("{base}/register"), &creds).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = post_json(&client, format!("{base}/login"), &creds).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let api_token = resp.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_hash = watchpost::auth::tokens::digest_hex(&api_token);
    let resp = client
        .get(format!("{base}/metrics"))
        .header("token", &api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .get(format!("{base}/metrics"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = post_json(
        &client,
        format!("{base}/login"),
        &json!({"username": "hygiene", "password": wrong_password}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = post_json(
        &client,
        format!("{base}/login"),
        &json!({"username": FORGED, "password": wrong_password}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Admin over the API, and test sends on the environment's channels.
    let channels: Value = client
        .get(format!("{base}/channels"))
        .header("x-admin-token", admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let env_channels: Vec<i64> = channels
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"] == "env")
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(env_channels.len(), 2, "{channels}");
    let mut deliveries = Vec::new();
    for id in &env_channels {
        let resp = client
            .post(format!("{base}/channels/{id}/test"))
            .header("x-admin-token", admin_token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{status} {body}");
        deliveries.push(body["delivery_id"].as_i64().unwrap());
    }

    // A user's own webhook channel with its generated secret.
    let resp = client
        .post(format!("{base}/channels"))
        .header("token", &api_token)
        .json(&json!({"kind": "webhook", "name": "mine", "url": user_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let channel: Value = resp.json().await.unwrap();
    let user_secret = channel["secret"].as_str().unwrap().to_owned();
    let resp = client
        .post(format!("{base}/channels/{}/test", channel["id"]))
        .header("token", &api_token)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    deliveries.push(
        resp.json::<Value>().await.unwrap()["delivery_id"]
            .as_i64()
            .unwrap(),
    );
    for d in &deliveries {
        wait_for_attempt(&client, &base, admin_token, *d).await;
    }
    let hooks = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert!(hooks.iter().any(|h| h.path.contains(env_hook_path)));
    assert!(hooks.iter().any(|h| h.path.contains(user_hook_path)));

    // The dashboard: log in and elevate through the forms, and a forged name there too.
    let page = page_text(&client, format!("{base}/dashboard/login")).await;
    let csrf = csrf_of(&page);
    let cookie_of = |jar: &reqwest::cookie::Jar| {
        use reqwest::cookie::CookieStore;
        let url: reqwest::Url = base.parse().unwrap();
        jar.cookies(&url)
            .map(|v| v.to_str().unwrap().to_owned())
            .and_then(|c| {
                c.split("; ")
                    .find_map(|p| p.strip_prefix(&format!("{COOKIE}=")).map(str::to_owned))
            })
            .expect("session cookie")
    };
    let pre_login_cookie = cookie_of(&jar);
    let resp = post_form(
        &client,
        format!("{base}/dashboard/login"),
        &[
            ("csrf_token", csrf.as_str()),
            ("username", FORGED),
            ("password", wrong_password),
        ],
    )
    .await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let resp = post_form(
        &client,
        format!("{base}/dashboard/login"),
        &[
            ("csrf_token", csrf.as_str()),
            ("username", "hygiene"),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let user_cookie = cookie_of(&jar);
    let page = page_text(&client, format!("{base}/dashboard/admin")).await;
    let user_csrf = csrf_of(&page);
    let resp = post_form(
        &client,
        format!("{base}/dashboard/admin"),
        &[
            ("csrf_token", user_csrf.as_str()),
            ("admin_token", admin_token),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let admin_cookie = cookie_of(&jar);
    let page = page_text(&client, format!("{base}/dashboard/admin")).await;
    assert!(page.contains(r#"id="users""#), "not elevated");
    let admin_csrf = csrf_of(&page);

    let log = read(&err);
    drop(smtp);
    let smtp_auth =
        base64::engine::general_purpose::STANDARD.encode(format!("\0alerts\0{smtp_pass}"));
    let secrets = vec![
        ("password", password.to_owned()),
        ("wrong password", wrong_password.to_owned()),
        ("ADMIN_TOKEN", admin_token.to_owned()),
        ("SMTP password", smtp_pass.to_owned()),
        ("SMTP AUTH PLAIN", smtp_auth),
        ("env webhook path", env_hook_path.to_owned()),
        ("env webhook query", "envquery-Rk2".to_owned()),
        ("user webhook path", user_hook_path.to_owned()),
        ("user webhook query", "userquery-Wd5".to_owned()),
        (
            "env webhook secret",
            env_secret.trim_start_matches("whsec_").to_owned(),
        ),
        (
            "user webhook secret",
            user_secret.trim_start_matches("whsec_").to_owned(),
        ),
        ("API token", api_token),
        ("API token hash", token_hash),
        ("pre-login session id", pre_login_cookie),
        ("user session id", user_cookie),
        ("admin session id", admin_cookie),
        ("CSRF token", csrf),
        ("user CSRF token", user_csrf),
        ("admin CSRF token", admin_csrf),
    ];
    (log, secrets)
}

/// Asserts the log holds none of the secrets and was written at trace level, as plain
/// text (no terminal escape sequences).
fn assert_no_secrets(log: &str, secrets: &[(&str, String)]) {
    assert!(log.contains("TRACE"), "no TRACE records:\n{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escapes in the log file");
    let mut leaks = Vec::new();
    for (what, secret) in secrets {
        assert!(secret.len() >= 8, "{what} is too short to search for");
        for (i, _) in log.match_indices(secret.as_str()) {
            let line_start = log[..i].rfind('\n').map_or(0, |s| s + 1);
            let line_end = log[i..].find('\n').map_or(log.len(), |e| i + e);
            leaks.push(format!("{what}: {}", &log[line_start..line_end]));
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in the log:\n{}",
        leaks.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_no_secrets_at_trace_level() {
    let (log, secrets) = trace_level_scenario("pretty").await;
    assert_no_secrets(&log, &secrets);

    // The forged name: each attempt is one record with the newline escaped, and no line
    // of the log starts with the forged timestamp.
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-11-27T00:00:00.000000Z")),
        "forged record in the log:\n{log}"
    );
    let forged: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r"bob\n2026-11-27T00:00:00"))
        .collect();
    assert_eq!(forged.len(), 2, "{forged:#?}");
    for l in &forged {
        assert!(
            l.contains("login failed") && l.contains("ip=127.0.0.1"),
            "{l}"
        );
    }
    // One record for the plain failed login, with the user and the address.
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("login failed") && l.contains(r#"username="hygiene""#))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0].contains("ip=127.0.0.1"), "{}", failed[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_json_records_without_secrets() {
    let (log, secrets) = trace_level_scenario("json").await;
    assert_no_secrets(&log, &secrets);
    // One JSON object per line: a name with a newline cannot start a record of its own.
    let records: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let failed: Vec<&Value> = records
        .iter()
        .filter(|r| r["message"] == "login failed")
        .collect();
    assert_eq!(failed.len(), 3, "{failed:#?}");
    for r in &failed {
        assert_eq!(r["ip"], "127.0.0.1", "{r}");
    }
    let names: Vec<&str> = failed
        .iter()
        .map(|r| r["username"].as_str().unwrap())
        .collect();
    // Debug formatting keeps the newline escaped inside the field, too.
    let forged_debug = format!("{FORGED:?}");
    assert_eq!(
        names.iter().filter(|n| **n == forged_debug).count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| **n == "\"hygiene\"").count(),
        1,
        "{names:?}"
    );
}

/// Kills the server process when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// S15: HSTS where the operator declared HTTPS (Secure cookies), on every kind of answer.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_sent_only_when_the_service_is_declared_https() {
    let secure = spawn_app().await; // cookie_secure defaults to true
    let plain = spawn_app_with(|s| s.cookie_secure = false).await;
    let off = spawn_app_with(|s| s.hsts_max_age_secs = 0).await;
    for path in [
        "/healthz",
        "/no/such/route",
        "/dashboard/login",
        "/dashboard/alerts",
        "/static/app.css",
    ] {
        let resp = secure.get_anon(path).await;
        assert_eq!(
            resp.headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000"),
            "{path}"
        );
        for (app, what) in [(&plain, "plain HTTP"), (&off, "max-age 0")] {
            let resp = app.get_anon(path).await;
            assert!(
                resp.headers().get("strict-transport-security").is_none(),
                "{path} ({what})"
            );
        }
    }
    // An error answer carries it too.
    let resp = secure
        .post_json("/login", &serde_json::json!({"username": 1}), "")
        .await;
    assert!(resp.status().is_client_error());
    assert!(resp.headers().contains_key("strict-transport-security"));
}
