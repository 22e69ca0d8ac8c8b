//! Fault injection (issue #7): a locked or exhausted database, slow and idle clients,
//! login bursts. Loopback only; every loop is bounded in count and time, and the time
//! bounds are generous because CI machines are small and noisy.

use crate::helpers::*;
use crate::ingest::{batch, count, create_host, ingest, wire};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use watchpost::store::SessionPool;

const UNAVAILABLE_DETAIL: &str = "service temporarily unavailable, retry shortly";

/// Asserts a 503 with `Retry-After` and the generic detail (no SQL, no lock details).
async fn assert_unavailable(resp: reqwest::Response, what: &str) {
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let detail = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(detail, UNAVAILABLE_DETAIL, "{what}");
    assert_eq!(retry.as_deref(), Some("5"), "{what}: Retry-After");
}

/// Another connection holding the database: SQLite `BEGIN EXCLUSIVE` (the write lock; WAL
/// readers go on), PostgreSQL `ACCESS EXCLUSIVE` on the tables the writes below need.
enum Holder {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Holder {
    async fn lock(app: &TestApp) -> Holder {
        use sqlx::Connection;
        match app.engine {
            Engine::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&app.database_url)
                    .await
                    .expect("second SQLite connection");
                sqlx::raw_sql("BEGIN EXCLUSIVE")
                    .execute(&mut c)
                    .await
                    .expect("BEGIN EXCLUSIVE");
                Holder::Sqlite(c)
            }
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(&app.database_url)
                    .await
                    .expect("second PostgreSQL connection");
                sqlx::raw_sql(
                    "BEGIN; LOCK TABLE user_thresholds, samples IN ACCESS EXCLUSIVE MODE",
                )
                .execute(&mut c)
                .await
                .expect("LOCK TABLE");
                Holder::Postgres(c)
            }
        }
    }

    async fn release(self) {
        match self {
            Holder::Sqlite(mut c) => sqlx::raw_sql("ROLLBACK").execute(&mut c).await.map(|_| ()),
            Holder::Postgres(mut c) => sqlx::raw_sql("ROLLBACK").execute(&mut c).await.map(|_| ()),
        }
        .expect("ROLLBACK");
    }
}

/// F5 + R36: writes under a lock held elsewhere fail fast with 503 + Retry-After and a
/// generic body, write nothing, and succeed again once the lock is gone; reads that do
/// not need the locked data keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_database_fails_writes_fast_and_recovers() {
    // The request timeout is far above the lock timeout, so a fast 503 can only come
    // from the lock timeout (SQLite busy_timeout, PostgreSQL lock_timeout).
    let app = spawn_app_with(|s| {
        s.db_lock_timeout_secs = 1;
        s.request_timeout_secs = 30;
    })
    .await;
    let (_, token) = app.register_and_login_user().await;
    let (host_id, agent) = create_host(&app, "locked-out").await;
    let resp = app
        .post_json("/thresholds", &json!({"cpu_threshold": 50}), &token)
        .await;
    json_with_status(resp, StatusCode::OK).await;
    // Uses the token once, so no token bookkeeping write is due while the lock is held.
    json_with_status(app.get("/hosts", &token).await, StatusCode::OK).await;
    let start = now_ms() - 60_000;
    let batch = batch(
        "locked-1",
        (0..5).map(|j| wire(start + j * 1000, j as f64)).collect(),
    );

    let raise = json!({"cpu_threshold": 70});
    let holder = Holder::lock(&app).await;
    let started = Instant::now();
    let (threshold, ingested) = tokio::join!(
        app.post_json("/thresholds", &raise, &token),
        ingest(&app, &agent, &batch),
    );
    let took = started.elapsed();
    assert_unavailable(threshold, "POST /thresholds under a lock").await;
    assert_unavailable(ingested, "POST /ingest under a lock").await;
    assert!(
        took < Duration::from_secs(15),
        "writes under a lock took {took:?}; expected about the 1 s lock timeout"
    );
    // Reads keep working while the lock is held. SQLite: WAL readers see the last commit.
    // PostgreSQL: ACCESS EXCLUSIVE blocks reads of the locked tables, not of others.
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let hosts = json_with_status(app.get("/hosts", &token).await, StatusCode::OK).await;
        let mine = match app.engine {
            Engine::Sqlite => {
                Some(json_with_status(app.get("/thresholds", &token).await, StatusCode::OK).await)
            }
            Engine::Postgres => None,
        };
        (hosts, mine)
    })
    .await
    .expect("reads must not wait for the lock");
    assert!(
        read.0.as_array().is_some_and(|a| !a.is_empty()),
        "{}",
        read.0
    );
    if let Some(t) = read.1 {
        assert_eq!(t["cpu_threshold"], json!(50.0), "{t}");
    }
    holder.release().await;

    // Nothing of the refused writes was stored...
    let t = json_with_status(app.get("/thresholds", &token).await, StatusCode::OK).await;
    assert_eq!(t["cpu_threshold"], json!(50.0), "{t}");
    assert_eq!(count(&app, host_id).await, 0);
    // ...and the same requests succeed without a restart; the batch is new, not a
    // duplicate, so the refused attempt left no batch id behind either.
    let resp = app
        .post_json("/thresholds", &json!({"cpu_threshold": 70}), &token)
        .await;
    json_with_status(resp, StatusCode::OK).await;
    let t = json_with_status(app.get("/thresholds", &token).await, StatusCode::OK).await;
    assert_eq!(t["cpu_threshold"], json!(70.0), "{t}");
    let body = json_with_status(ingest(&app, &agent, &batch).await, StatusCode::OK).await;
    assert_eq!(body["accepted"], json!(5), "{body}");
    assert_eq!(body["duplicate"], json!(false), "{body}");
    assert_eq!(count(&app, host_id).await, 5);
}

/// R36: with every connection of the write pool (SQLite) or the only pool (PostgreSQL)
/// taken, requests that need one get 503 + Retry-After after the acquire timeout, not a
/// hang or a 500, and everything works again once the connections are back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_pool_answers_503_and_recovers() {
    let app = spawn_app_with(|s| {
        s.db_acquire_timeout_secs = 1;
        s.db_max_connections = 2;
        s.request_timeout_secs = 30;
    })
    .await;
    let (_, token) = app.register_and_login_user().await;
    let resp = app
        .post_json("/thresholds", &json!({"cpu_threshold": 50}), &token)
        .await;
    json_with_status(resp, StatusCode::OK).await;
    json_with_status(app.get("/hosts", &token).await, StatusCode::OK).await;

    // Hold them all (bounded: background tasks give theirs back within moments).
    let held = tokio::time::timeout(Duration::from_secs(20), async {
        match app.store.session_pool() {
            SessionPool::Sqlite(p) => {
                let c = p.acquire().await.expect("writer connection");
                (vec![c], Vec::new())
            }
            SessionPool::Postgres(p) => {
                let mut v = Vec::new();
                for _ in 0..2 {
                    v.push(p.acquire().await.expect("pool connection"));
                }
                (Vec::new(), v)
            }
        }
    })
    .await
    .expect("taking every pool connection");

    let started = Instant::now();
    let resp = app
        .post_json("/thresholds", &json!({"cpu_threshold": 70}), &token)
        .await;
    let took = started.elapsed();
    assert_unavailable(resp, "POST /thresholds with the pool exhausted").await;
    assert!(took < Duration::from_secs(15), "503 took {took:?}");
    match app.engine {
        // The read pool is separate: reads go on.
        Engine::Sqlite => {
            let t = json_with_status(app.get("/thresholds", &token).await, StatusCode::OK).await;
            assert_eq!(t["cpu_threshold"], json!(50.0), "{t}");
        }
        // One pool for everything: even the token lookup cannot run.
        Engine::Postgres => {
            assert_unavailable(app.get("/thresholds", &token).await, "GET with no pool").await;
        }
    }
    drop(held);

    let resp = app
        .post_json("/thresholds", &json!({"cpu_threshold": 70}), &token)
        .await;
    json_with_status(resp, StatusCode::OK).await;
    let t = json_with_status(app.get("/thresholds", &token).await, StatusCode::OK).await;
    assert_eq!(t["cpu_threshold"], json!(70.0), "{t}");
}

/// Reads until EOF, an error or `cap`; returns what arrived and when the read ended.
async fn read_until_closed(stream: &mut (impl AsyncReadExt + Unpin), cap: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(cap, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    out
}

/// One `GET /healthz` on a fresh connection; returns its latency.
async fn timed_healthz(app: &TestApp) -> Duration {
    let started = Instant::now();
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("connection", "close")
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(resp.status(), StatusCode::OK);
    started.elapsed()
}

/// S22/F7: a client sending its headers one byte at a time is closed at the header read
/// timeout, and meanwhile normal requests are served as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_closed_at_the_header_timeout() {
    let app = spawn_app_with(|s| s.header_read_timeout_secs = 2).await;
    let stream = TcpStream::connect(app.addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    // 400 bytes at one per 50 ms would take 20 s: far longer than the timeout.
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(360)
    );
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for b in request.into_bytes() {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let closed = tokio::spawn(async move {
        let got = read_until_closed(&mut rd, Duration::from_secs(15)).await;
        (started.elapsed(), got)
    });
    let mut latencies = Vec::new();
    for _ in 0..10 {
        latencies.push(timed_healthz(&app).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (took, got) = closed.await.expect("reader");
    writer.abort();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "slowloris connection closed after {took:?}"
    );
    // hyper closes a header-timeout connection without answering: no request was served.
    assert!(
        !String::from_utf8_lossy(&got).contains("200 OK"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let worst = latencies.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_secs(1),
        "healthz latencies during slowloris: {latencies:?}"
    );
}

async fn raw_request(app: &TestApp, head: &str, body: &[u8]) -> (TcpStream, Instant) {
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    (s, Instant::now())
}

fn status_of(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines().next().unwrap_or("").to_owned()
}

/// S22/F7: an upload that stalls mid-body is cut off with 408 after the upload idle
/// timeout (not the 600 s analysis timeout), raw and multipart alike; one that keeps
/// sending, however slowly, goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_cut_at_the_idle_timeout() {
    let app = spawn_app_with(|s| s.upload_idle_timeout_secs = 2).await;
    let token = app.register_and_login().await;
    let line = "2026-01-01T00:00:00Z ERROR something failed\n";

    // Raw body: 10 lines of a declared 100 000 bytes, then silence.
    let head = format!(
        "POST /logs/analyze HTTP/1.1\r\nHost: x\r\ntoken: {token}\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"
    );
    let (mut s, sent) = raw_request(&app, &head, line.repeat(10).as_bytes()).await;
    let got = read_until_closed(&mut s, Duration::from_secs(20)).await;
    let took = sent.elapsed();
    assert_eq!(status_of(&got), "HTTP/1.1 408 Request Timeout", "{took:?}");
    assert!(
        String::from_utf8_lossy(&got).contains("\"detail\""),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "raw upload cut after {took:?}"
    );

    // Multipart: the file part starts, then silence.
    let boundary = "XyZfaultboundary";
    let part = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.log\"\r\nContent-Type: text/plain\r\n\r\n{}",
        line.repeat(10)
    );
    let head = format!(
        "POST /logs/analyze HTTP/1.1\r\nHost: x\r\ntoken: {token}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 100000\r\n\r\n"
    );
    let (mut s, sent) = raw_request(&app, &head, part.as_bytes()).await;
    let got = read_until_closed(&mut s, Duration::from_secs(20)).await;
    let took = sent.elapsed();
    assert_eq!(status_of(&got), "HTTP/1.1 408 Request Timeout", "{took:?}");
    assert!(
        took < Duration::from_secs(10),
        "multipart cut after {took:?}"
    );

    // Slow but steady: a line every 200 ms for 2 s in total is never idle for 2 s.
    let lines = 10;
    let head = format!(
        "POST /logs/analyze HTTP/1.1\r\nHost: x\r\ntoken: {token}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        line.len() * lines
    );
    let (mut s, _) = raw_request(&app, &head, b"").await;
    for _ in 0..lines {
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.write_all(line.as_bytes()).await.expect("write line");
    }
    let got = read_until_closed(&mut s, Duration::from_secs(20)).await;
    assert_eq!(
        status_of(&got),
        "HTTP/1.1 200 OK",
        "{}",
        String::from_utf8_lossy(&got)
    );
}

/// S22/F7: with `max_connections` sockets open and idle (two that never sent a byte, two
/// keep-alive connections idle after one request), the server accepts no more, and a new
/// client waits in the listen backlog until the header read timeout closes the idle ones
/// (hyper restarts that timer while a keep-alive connection waits for its next request).
/// It is then served: idle sockets delay service by at most the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_at_the_connection_cap_delay_service_only_until_the_header_timeout() {
    let app = spawn_app_with(|s| {
        s.max_connections = 4;
        s.header_read_timeout_secs = 2;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    for _ in 0..2 {
        let mut s = TcpStream::connect(app.addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("keep-alive request answered")
            .expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        idle.push(s);
    }
    let started = Instant::now();
    let (mut s, _) = raw_request(
        &app,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    let got = read_until_closed(&mut s, Duration::from_secs(15)).await;
    let took = started.elapsed();
    assert_eq!(status_of(&got), "HTTP/1.1 200 OK");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "the request past the cap was served after {took:?}"
    );
    // Every idle socket was closed by the server (EOF, not our read cap).
    for (i, mut s) in idle.into_iter().enumerate() {
        let t = Instant::now();
        let rest = read_until_closed(&mut s, Duration::from_secs(10)).await;
        assert!(
            t.elapsed() < Duration::from_secs(9),
            "idle socket {i} still open"
        );
        assert!(rest.is_empty(), "idle socket {i} got {rest:?}");
    }
}

/// F7: an upload declaring limit + 1 bytes gets 413 at once, before any of its body is
/// sent; a chunked one gets 413 as soon as it crosses the limit, without its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_limit_is_refused_without_reading_it_all() {
    const LIMIT: u64 = 64 * 1024;
    let app = spawn_app_with(|s| s.log_upload_max_bytes = LIMIT).await;
    let token = app.register_and_login().await;
    let head = format!(
        "POST /logs/analyze HTTP/1.1\r\nHost: x\r\ntoken: {token}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        LIMIT + 1
    );
    let (mut s, _) = raw_request(&app, &head, b"").await;
    let got = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert_eq!(status_of(&got), "HTTP/1.1 413 Payload Too Large");

    let head = format!(
        "POST /logs/analyze HTTP/1.1\r\nHost: x\r\ntoken: {token}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let (mut s, _) = raw_request(&app, &head, b"").await;
    let chunk = "x".repeat(8 * 1024);
    // limit + 1 bytes, then no terminating chunk.
    for _ in 0..8 {
        s.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await
            .expect("chunk");
    }
    s.write_all(b"1\r\nx\r\n").await.expect("last byte");
    let got = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert_eq!(status_of(&got), "HTTP/1.1 413 Payload Too Large");
}

async fn failure_row(db: &RawDb, key: &str) -> Option<(i64, i64)> {
    let n = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM login_failures WHERE key = '{key}'"
        ))
        .await;
    if n == 0 {
        return None;
    }
    let failures = db
        .scalar(&format!(
            "SELECT failures FROM login_failures WHERE key = '{key}'"
        ))
        .await;
    let locked_until = db
        .scalar(&format!(
            "SELECT locked_until FROM login_failures WHERE key = '{key}'"
        ))
        .await;
    Some((failures, locked_until))
}

/// S02/F8: 64 concurrent wrong-password logins (argon2 behind a 2-wide semaphore) do not
/// starve `/healthz`, and every one of them is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_burst_does_not_starve_healthz() {
    let app = spawn_app_with(|s| {
        s.hash_concurrency = 2;
        // High enough that all 64 are verified, not refused by a lockout.
        s.login_max_failures_account = 1000;
        s.login_max_failures_ip = 1000;
    })
    .await;
    let name = unique_username("burst");
    app.register_ok(&name, PASSWORD).await;

    let logins: Vec<_> = (0..64)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url("/login");
            let body = json!({"username": name, "password": format!("wrong password {i}")});
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    let all_done = async {
        let mut statuses = Vec::new();
        for l in logins {
            statuses.push(l.await.expect("login task").expect("POST /login"));
        }
        statuses
    };
    tokio::pin!(all_done);
    let mut latencies = Vec::new();
    let statuses = tokio::time::timeout(Duration::from_secs(120), async {
        // At most 2400 polls (120 s at 50 ms), stopping when the burst is over.
        for _ in 0..2400 {
            tokio::select! {
                s = &mut all_done => return s,
                l = timed_healthz(&app) => latencies.push(l),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (&mut all_done).await
    })
    .await
    .expect("the login burst finished");
    assert_eq!(statuses.len(), 64);
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        !latencies.is_empty(),
        "no healthz poll overlapped the burst"
    );
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    assert!(
        p99 < Duration::from_secs(1),
        "healthz p99 {p99:?} over {} polls",
        latencies.len()
    );
    // The counters saw every failure: one atomic increment each.
    let db = RawDb::connect(&app.database_url).await;
    let account = failure_row(&db, &format!("user:{}", name.to_ascii_lowercase())).await;
    assert_eq!(account.map(|r| r.0), Some(64));
    assert_eq!(
        failure_row(&db, "ip:127.0.0.1").await.map(|r| r.0),
        Some(64)
    );
    db.close().await;
}

/// F8: 50 concurrent logins for one account, right and wrong passwords mixed. Every
/// success gets its own working token, wrong passwords never succeed, the per-IP counter
/// holds exactly one count per 401, and the account's row agrees with what the next login
/// is told: locked (429 + Retry-After, even with the right password) exactly when the
/// failures in the row reached `login_max_failures_account`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_for_one_account_stay_consistent() {
    const MAX: u32 = 5;
    let app = spawn_app_with(|s| {
        s.hash_concurrency = 2;
        s.login_max_failures_account = MAX;
        // Only the account limit is under test here.
        s.login_max_failures_ip = 1000;
    })
    .await;
    let name = unique_username("race");
    let user_id = app.register_ok(&name, PASSWORD).await;

    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let right = i % 3 == 0;
            let client = app.client.clone();
            let url = app.url("/login");
            let password = if right {
                PASSWORD.to_owned()
            } else {
                format!("wrong password {i}")
            };
            let body = json!({"username": name, "password": password});
            tokio::spawn(async move {
                let resp = client.post(url).json(&body).send().await.expect("login");
                let status = resp.status();
                let retry = resp.headers().get("retry-after").is_some();
                let body: Value = resp.json().await.expect("login body");
                (right, status, retry, body)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(
            tokio::time::timeout(Duration::from_secs(120), t)
                .await
                .expect("login finished")
                .expect("login task"),
        );
    }
    let mut tokens = std::collections::HashSet::new();
    let mut unauthorized = 0i64;
    for (right, status, retry, body) in &results {
        match *status {
            StatusCode::OK => {
                assert!(*right, "a wrong password logged in: {body}");
                let token = body["token"].as_str().expect("token").to_owned();
                assert!(tokens.insert(token), "token issued twice: {body}");
            }
            StatusCode::UNAUTHORIZED => {
                assert!(!*right, "the right password got 401: {body}");
                unauthorized += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => assert!(*retry, "429 without Retry-After"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let rights = results.iter().filter(|r| r.0).count();
    assert!(!tokens.is_empty() || rights == 0, "no login succeeded");
    for t in &tokens {
        json_with_status(app.get("/thresholds", t).await, StatusCode::OK).await;
    }
    let listed = app
        .store
        .list_tokens(user_id, now_ms())
        .await
        .expect("list_tokens");
    assert_eq!(listed.len(), tokens.len());

    let db = RawDb::connect(&app.database_url).await;
    let ip = failure_row(&db, "ip:127.0.0.1").await.map_or(0, |r| r.0);
    assert_eq!(ip, unauthorized, "one IP count per 401");
    let account = failure_row(&db, &format!("user:{}", name.to_ascii_lowercase())).await;
    db.close().await;
    let locked = match account {
        Some((failures, locked_until)) => {
            assert!(failures <= unauthorized, "{failures} > {unauthorized}");
            let locked = locked_until > now_ms();
            assert_eq!(
                locked,
                failures >= i64::from(MAX),
                "failures {failures}, locked_until {locked_until}"
            );
            locked
        }
        None => false,
    };
    let resp = app.login_raw(&name, PASSWORD).await;
    if locked {
        assert!(resp.headers().get("retry-after").is_some());
        assert_error(resp, StatusCode::TOO_MANY_REQUESTS).await;
    } else {
        json_with_status(resp, StatusCode::OK).await;
    }
}
