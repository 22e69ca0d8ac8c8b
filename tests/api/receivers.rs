//! Scriptable loopback peers for notification tests: a webhook receiver (axum) and an SMTP sink.
//!
//! Both listen on 127.0.0.1 with an OS-chosen port, record what arrives, answer per a plan
//! set by the test, and can be stopped (connections refused) and restarted on the same port
//! to simulate receiver downtime. Every wait is bounded so no test can hang.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How often `wait_for` looks again.
const POLL: Duration = Duration::from_millis(20);

/// Serves connections from `listener` with `serve_one` until the task is aborted. The
/// connection tasks live in a `JoinSet` owned by this task, so aborting it (stop/drop)
/// closes the listener AND every open connection, including hung and keep-alive ones.
fn spawn_accept_loop<F, Fut>(listener: TcpListener, serve_one: F) -> JoinHandle<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        conns.spawn(serve_one(stream));
                    }
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    })
}

/// Binds `addr`, retrying briefly: right after a stop the port can take a moment to free.
async fn bind_again(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Err(e) => panic!("rebinding {addr}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Webhook receiver

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub webhook_signature: Option<String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// With `verify_with`: whether the Standard Webhooks signature and timestamp checked out.
    pub verified: Option<bool>,
}

#[derive(Default)]
struct Plan {
    /// Statuses to answer with, in order; after that `default_status`.
    queue: VecDeque<u16>,
    default_status: Option<u16>,
    retry_after: Option<String>,
    body: Option<String>,
    hang: bool,
    redirect: bool,
    /// Verify every request as a Standard Webhooks consumer does (±5 min timestamp
    /// tolerance, against this machine's clock) and answer 401 when it fails.
    verify_secret: Option<String>,
    /// Wait this long before answering.
    delay: Option<Duration>,
    /// Answer the first request of each webhook-id with this status.
    fail_first: Option<u16>,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    plan: Mutex<Plan>,
    /// Requests being handled now, and the most there ever were at once.
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

/// Counts a request as in flight until dropped (answered, or abandoned by a client that
/// went away).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let now = shared.in_flight.fetch_add(1, SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, SeqCst);
        Self(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct HookState {
    shared: Arc<Shared>,
    base_url: String,
}

async fn hook_handler(
    State(state): State<HookState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let _in_flight = InFlight::enter(&state.shared);
    let mut rec = Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        webhook_id: header("webhook-id"),
        webhook_timestamp: header("webhook-timestamp"),
        webhook_signature: header("webhook-signature"),
        headers: headers.clone(),
        body: body.to_vec(),
        at: Instant::now(),
        verified: None,
    };
    let verify_secret = state.shared.plan.lock().unwrap().verify_secret.clone();
    if let Some(secret) = verify_secret {
        rec.verified = Some(WebhookReceiver::verify(&rec, &secret));
    }
    let verified = rec.verified;
    let first_of_its_id = {
        let mut received = state.shared.received.lock().unwrap();
        let first = !received
            .iter()
            .any(|r| r.webhook_id.is_some() && r.webhook_id == rec.webhook_id);
        received.push(rec);
        first
    };
    let (status, retry_after, text, hang, redirect, delay) = {
        let mut plan = state.shared.plan.lock().unwrap();
        let status = match (verified, plan.fail_first) {
            (Some(false), _) => 401,
            (_, Some(code)) if first_of_its_id => code,
            _ => plan
                .queue
                .pop_front()
                .or(plan.default_status)
                .unwrap_or(200),
        };
        let text = if verified == Some(false) {
            Some("invalid signature or timestamp".to_owned())
        } else {
            plan.body.clone()
        };
        (
            status,
            plan.retry_after.clone(),
            text,
            plan.hang,
            plan.redirect,
            plan.delay,
        )
    };
    if hang {
        // Never answers; the connection task is aborted on stop/drop.
        std::future::pending::<()>().await;
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let mut builder = Response::builder();
    let (status, text) = if redirect {
        builder = builder.header("location", format!("{}redirected", state.base_url));
        (302, text.unwrap_or_else(|| "moved".into()))
    } else {
        (status, text.unwrap_or_else(|| format!("status {status}")))
    };
    if let Some(ra) = retry_after {
        builder = builder.header("retry-after", ra);
    }
    builder
        .status(StatusCode::from_u16(status).unwrap())
        .body(Body::from(text))
        .unwrap()
}

/// An HTTP receiver for webhooks on 127.0.0.1.
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl WebhookReceiver {
    /// Starts a receiver that answers 200 until told otherwise.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = Self {
            addr,
            shared: Arc::new(Shared::default()),
            server: Mutex::new(None),
        };
        me.serve(listener);
        me
    }

    fn serve(&self, listener: TcpListener) {
        let app = Router::new().fallback(hook_handler).with_state(HookState {
            shared: self.shared.clone(),
            base_url: self.url(),
        });
        let handle = spawn_accept_loop(listener, move |stream| {
            let svc = TowerToHyperService::new(app.clone());
            async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            }
        });
        *self.server.lock().unwrap() = Some(handle);
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next requests with these statuses, then with the default (200).
    pub fn respond_with(&self, statuses: Vec<u16>) {
        self.shared.plan.lock().unwrap().queue = statuses.into();
    }

    /// Status once the queue is empty (200 unless set).
    pub fn default_status(&self, status: u16) {
        self.shared.plan.lock().unwrap().default_status = Some(status);
    }

    /// Adds `Retry-After: <value>` to every answer (None removes it).
    pub fn retry_after(&self, value: Option<&str>) {
        self.shared.plan.lock().unwrap().retry_after = value.map(str::to_owned);
    }

    /// Body of every answer (default `status <code>`).
    pub fn body(&self, text: &str) {
        self.shared.plan.lock().unwrap().body = Some(text.to_owned());
    }

    /// Records requests but never answers them.
    pub fn hang(&self, on: bool) {
        self.shared.plan.lock().unwrap().hang = on;
    }

    /// Checks every request's Standard Webhooks signature and timestamp (the
    /// `standardwebhooks` crate: ±5 minutes around this machine's clock) and answers 401
    /// `invalid signature or timestamp` when they do not verify.
    pub fn verify_with(&self, secret_whsec: &str) {
        self.shared.plan.lock().unwrap().verify_secret = Some(secret_whsec.to_owned());
    }

    /// Waits this long before every answer.
    pub fn delay(&self, d: Duration) {
        self.shared.plan.lock().unwrap().delay = Some(d);
    }

    /// Answers the first request of each webhook-id with `status` (later ones as planned).
    pub fn fail_first_attempt(&self, status: u16) {
        self.shared.plan.lock().unwrap().fail_first = Some(status);
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> usize {
        self.shared
            .in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most requests that were ever being handled at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Answers 302 with `Location: <url>redirected` (itself).
    pub fn redirect(&self, on: bool) {
        self.shared.plan.lock().unwrap().redirect = on;
    }

    /// Closes the listener and every open connection: new connections are refused.
    pub async fn stop(&self) {
        let handle = self.server.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Listens again on the same port, with the same plan and records.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = bind_again(self.addr).await;
        self.serve(listener);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// What arrived once at least `n` requests did, or when `timeout` ran out (bounded).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether a request carries a valid Standard Webhooks signature for `secret_whsec`,
    /// checked by the independent `standardwebhooks` implementation.
    pub fn verify(received: &Received, secret_whsec: &str) -> bool {
        let Ok(wh) = standardwebhooks::Webhook::new(secret_whsec) else {
            return false;
        };
        wh.verify(&received.body, &received.headers).is_ok()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(handle) = self.server.get_mut().ok().and_then(Option::take) {
            handle.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------
// SMTP sink

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct SmtpMessage {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA section with dot-stuffing undone, CRLF line ends kept.
    pub data: String,
    pub at: Instant,
}

#[derive(Default)]
struct SmtpShared {
    accepted: Mutex<Vec<SmtpMessage>>,
    /// Replies to end-of-DATA, in order; then 250.
    data_replies: Mutex<VecDeque<u16>>,
    /// How many complete DATA sections arrived, accepted or not.
    data_attempts: Mutex<usize>,
}

/// Longest line and longest message the sink reads, so a runaway client cannot exhaust memory.
const SMTP_MAX_LINE: u64 = 64 * 1024;
const SMTP_MAX_DATA: usize = 10 * 1024 * 1024;
/// A silent client is dropped after this long.
const SMTP_IDLE: Duration = Duration::from_secs(10);

/// Reads one line (with its CRLF) within `SMTP_IDLE`; None on EOF, timeout or error.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        SMTP_IDLE,
        (&mut *reader)
            .take(SMTP_MAX_LINE)
            .read_until(b'\n', &mut buf),
    )
    .await;
    match read {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf).into_owned()),
        _ => None,
    }
}

/// `<addr>` out of `MAIL FROM:<addr> SIZE=…`.
fn angle_addr(arg: &str) -> String {
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

async fn smtp_session(stream: TcpStream, shared: Arc<SmtpShared>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    macro_rules! reply {
        ($s:expr) => {
            if write.write_all($s.as_bytes()).await.is_err() {
                return;
            }
        };
    }
    reply!("220 sink.test ESMTP watchpost test sink\r\n");
    let mut from = String::new();
    let mut rcpt: Vec<String> = Vec::new();
    while let Some(line) = read_line(&mut reader).await {
        let line = line.trim_end_matches(['\r', '\n']);
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            reply!("250-sink.test greets you\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n");
        } else if upper.starts_with("HELO") {
            reply!("250 sink.test\r\n");
        } else if upper.starts_with("MAIL FROM:") {
            from = angle_addr(&line[10..]);
            rcpt.clear();
            reply!("250 2.1.0 ok\r\n");
        } else if upper.starts_with("RCPT TO:") {
            rcpt.push(angle_addr(&line[8..]));
            reply!("250 2.1.5 ok\r\n");
        } else if upper == "DATA" {
            reply!("354 end data with <CR><LF>.<CR><LF>\r\n");
            let mut data = String::new();
            loop {
                let Some(l) = read_line(&mut reader).await else {
                    return;
                };
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                // Undo dot-stuffing (RFC 5321 4.5.2).
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                if data.len() > SMTP_MAX_DATA {
                    reply!("552 5.3.4 message too big\r\n");
                    return;
                }
            }
            *shared.data_attempts.lock().unwrap() += 1;
            let code = shared
                .data_replies
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(250);
            if code == 250 {
                shared.accepted.lock().unwrap().push(SmtpMessage {
                    mail_from: std::mem::take(&mut from),
                    rcpt_to: std::mem::take(&mut rcpt),
                    data,
                    at: Instant::now(),
                });
                reply!("250 2.0.0 queued\r\n");
            } else {
                from.clear();
                rcpt.clear();
                reply!(format!("{code} scripted reply from the test sink\r\n"));
            }
        } else if upper == "RSET" {
            from.clear();
            rcpt.clear();
            reply!("250 2.0.0 reset\r\n");
        } else if upper.starts_with("NOOP") {
            reply!("250 2.0.0 ok\r\n");
        } else if upper == "QUIT" {
            reply!("221 2.0.0 bye\r\n");
            return;
        } else {
            reply!("502 5.5.2 command not implemented\r\n");
        }
    }
}

/// A minimal SMTP server on 127.0.0.1: no TLS, no AUTH.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<SmtpShared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let me = Self {
            addr: listener.local_addr().unwrap(),
            shared: Arc::new(SmtpShared::default()),
            server: Mutex::new(None),
        };
        me.serve(listener);
        me
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let handle =
            spawn_accept_loop(listener, move |stream| smtp_session(stream, shared.clone()));
        *self.server.lock().unwrap() = Some(handle);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Replies to the next end-of-DATA commands (e.g. `[451, 250]`, `[550]`); then 250.
    pub fn respond_with(&self, codes: Vec<u16>) {
        *self.shared.data_replies.lock().unwrap() = codes.into();
    }

    pub fn messages(&self) -> Vec<SmtpMessage> {
        self.shared.accepted.lock().unwrap().clone()
    }

    /// Complete DATA sections seen, including refused ones.
    pub fn data_attempts(&self) -> usize {
        *self.shared.data_attempts.lock().unwrap()
    }

    /// Accepted messages once there are at least `n`, or when `timeout` ran out (bounded).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SmtpMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Closes the listener and every open session: new connections are refused.
    pub async fn stop(&self) {
        let handle = self.server.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Listens again on the same port, keeping plan and records.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = bind_again(self.addr).await;
        self.serve(listener);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(handle) = self.server.get_mut().ok().and_then(Option::take) {
            handle.abort();
        }
    }
}
