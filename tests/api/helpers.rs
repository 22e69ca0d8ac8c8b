//! Shared test harness: one fresh database and one in-process server per test.
//!
//! SQLite (a file in a temporary directory) by default; PostgreSQL when
//! `WATCHPOST_TEST_DATABASE_URL` names an admin connection, in which case each test gets
//! its own `wp_test_<hex>` database that is dropped again when the `TestApp` is dropped.

use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use watchpost::app::App;
use watchpost::config::{Secret, Settings};
use watchpost::store::{Sample, Store};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const PASSWORD: &str = "correct horse battery staple";
const PG_ENV: &str = "WATCHPOST_TEST_DATABASE_URL";
const REQUIRE_PG_ENV: &str = "WATCHPOST_REQUIRE_PG";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Which engine the in-process tests run against (panics if PostgreSQL is required but
/// not configured).
pub fn engine() -> Engine {
    static ANNOUNCE: Once = Once::new();
    let pg = std::env::var(PG_ENV).ok().filter(|v| !v.trim().is_empty());
    let require_pg = std::env::var(REQUIRE_PG_ENV).is_ok_and(|v| v == "1");
    if require_pg && pg.is_none() {
        panic!(
            "{REQUIRE_PG_ENV}=1 but {PG_ENV} is not set: point it at a PostgreSQL admin URL, \
             e.g. postgres://postgres@127.0.0.1:5432/postgres"
        );
    }
    let engine = if pg.is_some() {
        Engine::Postgres
    } else {
        Engine::Sqlite
    };
    ANNOUNCE.call_once(|| {
        // Written straight to stderr so libtest's output capture does not swallow it.
        let _ = writeln!(
            std::io::stderr(),
            "watchpost integration tests: database engine = {engine:?}"
        );
    });
    engine
}

/// Keeps the test's database alive; removes it on drop.
pub enum DbGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let DbGuard::Postgres { admin_url, name } = self {
            let admin_url = admin_url.clone();
            let db = name.clone();
            // We may be inside a tokio runtime: do the async work on a thread of our own.
            let handle = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime for DROP DATABASE");
                rt.block_on(async {
                    use sqlx::{Connection, Executor};
                    let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                    conn.execute(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)").as_str())
                        .await?;
                    conn.close().await?;
                    Ok::<(), sqlx::Error>(())
                })
            });
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("warning: could not drop test database {name}: {e}"),
                Err(_) => eprintln!("warning: dropping test database {name} panicked"),
            }
        }
    }
}

/// Replaces the database name (the path) of a PostgreSQL URL, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

pub async fn fresh_database() -> (String, DbGuard) {
    match engine() {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/t.db", dir.path().display());
            (url, DbGuard::Sqlite(dir))
        }
        Engine::Postgres => {
            use sqlx::{Connection, Executor};
            let admin_url = std::env::var(PG_ENV).expect("checked by engine()");
            let name = format!("wp_test_{:016x}", rand::random::<u64>());
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("connecting to {admin_url}: {e}"));
            conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
                .await
                .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
            conn.close().await.ok();
            let url = with_database(&admin_url, &name);
            (url, DbGuard::Postgres { admin_url, name })
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base_url: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub local_host_id: i64,
    pub local_host: String,
    pub database_url: String,
    pub engine: Engine,
    /// What the server was started with (for `restart_server`).
    pub settings: Settings,
    /// The running server's ingest counters.
    pub ingest_stats: Arc<watchpost::ingest::IngestStats>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    // Declared last so the server is told to stop before the database goes away.
    _guard: DbGuard,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Test settings: loopback port 0, no collector, a known admin token, two hash workers.
pub fn test_settings(database_url: &str) -> Settings {
    Settings {
        bind: "127.0.0.1:0".into(),
        database_url: database_url.to_owned(),
        collector: false,
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        hash_concurrency: 2,
        ..Settings::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_prepared(|_| async {}, configure).await
}

/// Like `spawn_app_with`, but `prepare` gets the fresh database's URL first (to put an
/// older schema and data in place, say) and the app starts on what it left.
pub async fn spawn_app_prepared<F: std::future::Future<Output = ()>>(
    prepare: impl FnOnce(String) -> F,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let engine = engine();
    let (database_url, guard) = fresh_database().await;
    prepare(database_url.clone()).await;
    let mut settings = test_settings(&database_url);
    configure(&mut settings);
    let app = App::build(settings.clone())
        .await
        .unwrap_or_else(|e| panic!("App::build failed: {e:#}"));
    let port = app.port();
    let store = app.store();
    let local_host_id = app.state().local_host_id;
    let local_host = app.state().local_host.to_string();
    let ingest_stats = app.state().ingest_stats.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("reqwest client");
    TestApp {
        addr,
        base_url: format!("http://{addr}"),
        client,
        store,
        local_host_id,
        local_host,
        database_url,
        engine,
        settings,
        ingest_stats,
        shutdown: Some(tx),
        server: Some(server),
        _guard: guard,
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A username no other test in this process uses.
pub fn unique_username(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{:06x}",
        UNIQUE.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// Now as UTC epoch milliseconds.
pub fn now_ms() -> i64 {
    watchpost::domain::now_ms()
}

/// Parses an RFC 3339 timestamp that must be UTC with a `Z` suffix; returns epoch ms.
pub fn parse_z(ts: &str) -> i64 {
    assert!(ts.ends_with('Z'), "timestamp {ts:?} does not end in Z");
    chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap_or_else(|e| panic!("timestamp {ts:?} is not RFC 3339: {e}"))
        .timestamp_millis()
}

/// A sample for `host_id` with only the fields the tests care about.
pub fn sample(host_id: i64, ts: i64, cpu: f64, memory: f64) -> Sample {
    Sample {
        host_id,
        ts,
        cpu,
        memory,
        ..Default::default()
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would and waits until it is down; the database stays.
    pub async fn stop_server(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task panicked")
                .unwrap_or_else(|e| panic!("server failed: {e:#}"));
        }
    }

    /// Starts a new server on the same database and the same port (after `stop_server`).
    pub async fn restart_server(&mut self) {
        assert!(self.server.is_none(), "stop the server first");
        let mut settings = self.settings.clone();
        settings.bind = self.addr.to_string();
        let app = App::build(settings)
            .await
            .unwrap_or_else(|e| panic!("App::build (restart) failed: {e:#}"));
        self.store = app.store();
        self.ingest_stats = app.state().ingest_stats.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.server = Some(tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        })));
        self.shutdown = Some(tx);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.client
            .post(self.url("/register"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("POST /register")
    }

    /// Registers and returns the new user's id (asserting 201).
    pub async fn register_ok(&self, username: &str, password: &str) -> i64 {
        let resp = self.register(username, password).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("register body");
        assert_eq!(status, StatusCode::CREATED, "register {username}: {body}");
        assert_eq!(body["username"], username);
        body["id"].as_i64().expect("id is an integer")
    }

    pub async fn login_raw(&self, username: &str, password: &str) -> Response {
        self.client
            .post(self.url("/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("POST /login")
    }

    /// Logs in and returns the token (asserting 200).
    pub async fn login(&self, username: &str, password: &str) -> String {
        let resp = self.login_raw(username, password).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("login body");
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        body["token"].as_str().expect("token string").to_owned()
    }

    /// Registers a fresh user and logs in; returns the token.
    pub async fn register_and_login(&self) -> String {
        self.register_and_login_user().await.1
    }

    /// Registers a fresh user and logs in; returns (user id, token).
    pub async fn register_and_login_user(&self) -> (i64, String) {
        let name = unique_username("user");
        let id = self.register_ok(&name, PASSWORD).await;
        (id, self.login(&name, PASSWORD).await)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("token", token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn get_anon(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: &str) -> Response {
        self.client
            .post(self.url(path))
            .header("token", token)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub async fn insert_samples(&self, samples: &[Sample]) {
        self.store
            .insert_samples(samples)
            .await
            .expect("insert_samples");
    }
}

/// Reads a JSON body, asserting the status first (the body is shown on mismatch).
pub async fn json_with_status(resp: Response, expected: StatusCode) -> Value {
    let status = resp.status();
    let text = resp.text().await.expect("response body");
    assert_eq!(status, expected, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// Asserts an error response: exact status, JSON `{"detail": <string>}` and nothing else,
/// plus the security headers. Returns the detail.
pub async fn assert_error(resp: Response, expected: StatusCode) -> String {
    assert_security_headers(resp.headers());
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = json_with_status(resp, expected).await;
    assert!(
        ct.starts_with("application/json"),
        "error content-type {ct:?}"
    );
    let obj = body.as_object().expect("error body is an object");
    assert_eq!(obj.len(), 1, "error body has extra keys: {body}");
    let detail = obj["detail"].as_str().expect("detail is a string");
    assert!(!detail.is_empty(), "empty detail");
    detail.to_owned()
}

pub fn assert_security_headers(h: &HeaderMap) {
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("missing header {name}; headers: {h:?}"))
            .to_owned()
    };
    // The whole policy, so a weakened or dropped directive fails here.
    assert_eq!(
        get("content-security-policy"),
        "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    );
    assert_eq!(get("x-content-type-options"), "nosniff");
    assert_eq!(get("referrer-policy"), "no-referrer");
    assert_eq!(get("x-frame-options"), "DENY");
    assert_eq!(get("cross-origin-opener-policy"), "same-origin");
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
}

/// A direct connection to a test database, for what the store does not offer: an older
/// schema, rows written behind its back, counts of table rows.
pub enum RawDb {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl RawDb {
    pub async fn connect(url: &str) -> RawDb {
        if url.starts_with("sqlite:") {
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("SQLite URL");
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.create_if_missing(true).foreign_keys(true))
                .await
                .expect("SQLite connect");
            RawDb::Sqlite(pool)
        } else {
            RawDb::Postgres(
                sqlx::PgPool::connect(url)
                    .await
                    .expect("PostgreSQL connect"),
            )
        }
    }

    /// Applies the engine's migrations older than `version` only.
    pub async fn migrate_before(&self, version: i64) {
        let mut m = match self {
            RawDb::Sqlite(_) => sqlx::migrate!("./migrations/sqlite"),
            RawDb::Postgres(_) => sqlx::migrate!("./migrations/postgres"),
        };
        m.migrations = m
            .migrations
            .iter()
            .filter(|x| x.version < version)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        match self {
            RawDb::Sqlite(p) => m.run(p).await,
            RawDb::Postgres(p) => m.run(p).await,
        }
        .expect("older migrations");
    }

    pub async fn exec(&self, sql: &str) {
        match self {
            RawDb::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
            RawDb::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A single integer, e.g. `SELECT COUNT(*) ...`.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self {
            RawDb::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            RawDb::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Every row, every column read as f64 (cast them in the SQL).
    pub async fn rows_f64(&self, sql: &str) -> Vec<Vec<f64>> {
        use sqlx::Row;
        match self {
            RawDb::Sqlite(p) => sqlx::query(sql).fetch_all(p).await.map(|rows| {
                rows.iter()
                    .map(|r| (0..r.len()).map(|i| r.get::<f64, _>(i)).collect())
                    .collect()
            }),
            RawDb::Postgres(p) => sqlx::query(sql).fetch_all(p).await.map(|rows| {
                rows.iter()
                    .map(|r| (0..r.len()).map(|i| r.get::<f64, _>(i)).collect())
                    .collect()
            }),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn close(self) {
        match self {
            RawDb::Sqlite(p) => p.close().await,
            RawDb::Postgres(p) => p.close().await,
        }
    }
}
