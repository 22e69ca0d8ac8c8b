//! A deterministic mixed-format log generator with exact truth, for tests and benchmarks.
//!
//! [`generate`] streams lines into a writer and returns a [`Truth`]: the exact number of
//! lines and bytes, the count per [`Level`] and per [`Format`], the count of ERROR and
//! CRITICAL lines per message template, and the first/last timestamp. The same seed gives
//! byte-identical output on every platform and version: the PRNG is a local splitmix64.
//!
//! # Mix (by line, approximately)
//!
//! | format           | share  | level from                                                  |
//! |------------------|--------|-------------------------------------------------------------|
//! | `access_log`     | 25 %   | the status: 5xx ERROR, 4xx WARN, else INFO (85/10/5 %)       |
//! | `syslog_rfc3164` | 15 %   | `<PRI>` severity (half the lines), else a level word         |
//! | `syslog_rfc5424` | 5 %    | `<PRI>` severity                                            |
//! | `python`         | 10 %   | `- LEVEL -` (80 %) or `LEVEL:name:` (20 %, no timestamp)     |
//! | `java`           | 15 %   | logback `%-5level` (`FATAL` for CRITICAL)                   |
//! | `json`           | 10 %   | key `level`/`severity`/`lvl`, value in varying case         |
//! | `logfmt`         | 8 %    | `level=`                                                    |
//! | `klog`           | 5 %    | the `I`/`W`/`E`/`F` prefix (`F` is CRITICAL)                |
//! | `apache_error`   | 4 %    | Apache `[module:level]` (60 %) or nginx `[level]` (40 %)    |
//! | `generic`        | 3 %    | `2026-01-15 08:00:00 WARN message`                          |
//! | `generic`        | 0.5 %  | `2026-01-15 08:00:00 message`: no level word, `UNKNOWN`      |
//!
//! Overall about 70 % INFO, 12 % DEBUG, 10 % WARN, 6 % ERROR, 1 % CRITICAL, 0.5 % NOTICE,
//! 0.5 % UNKNOWN and a little TRACE. Formats that cannot express a level never carry it
//! (no TRACE behind a syslog `<PRI>`, no NOTICE in Python or Java, klog only has I/W/E/F).
//!
//! # What "the message" of a line is
//!
//! Every ERROR/CRITICAL line carries a message made from one template; the truth counts
//! them by template key and gives each template's text with `<*>` for the variables. Each
//! `<*>` is exactly one space-delimited token (an id, UUID, IPv4 or `[IPv6]` with port, hex
//! request id, path, number, `350ms` duration, email, user name, `'quoted'` word, host),
//! and constant text never sits inside a variable token. User names, `'quoted'` words and
//! hosts come from word lists, so some variable positions hold words only. The message is:
//!
//! * access log: `METHOD PATH PROTO STATUS` from the request line and status, e.g.
//!   `GET /api/v1/orders/48213 HTTP/1.1 502`. 5xx lines are keyed `http_5xx_get`
//!   (`GET <*> <*> <*>`, path `/api/v1/orders/ID`) and `http_5xx_post` (`POST <*> <*> <*>`,
//!   path `/api/v1/checkout/ID`); path, protocol (`HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0`) and
//!   status (500, 502, 503, 504) all vary;
//! * RFC 3164: the text after `tag[pid]: `; lines without `<PRI>` start it with a level word
//!   and `: ` (`error: `, `WARNING: `, …) that is not part of the message;
//! * RFC 5424: the text after the structured data (`-` or `[…]`);
//! * Python: after `- LEVEL - ` or `LEVEL:name:`; Java: after `logger - `;
//! * JSON: the `msg` or `message` value; logfmt: the `msg="…"` value;
//! * klog: after `file.go:NN] `; Apache: after `[pid N:tid M] `; nginx: after `*CONN `;
//! * generic: after the level word (or after the timestamp for UNKNOWN lines).
//!
//! An analyzer that masks inside tokens (`/api/v1/orders/<*>`) finds the same groups; compare
//! with [`normalize_template`], which turns every token containing `<*>` into `<*>`.
//!
//! # Level words
//!
//! The only level word (in the sense of [`Level::from_word`], tokens split at
//! non-alphanumerics) in a line is the one that states its level, except in three
//! deliberate traps among INFO-class messages (about 2 % of them): `job <*> finished: <*>
//! rows processed, 0 errors`, `configuration reloaded, log level for <*> set to ERROR` and
//! `retry of request <*> succeeded after previous error`. Access-log lines, syslog lines
//! with `<PRI>`, klog lines and UNKNOWN lines carry no level word at all (apart from
//! those traps; UNKNOWN lines never use them). Every message of a DEBUG, TRACE or NOTICE
//! line comes from the INFO templates.
//!
//! # Timestamps
//!
//! UTC throughout; lines without a zone (syslog, Python, Java, klog, Apache, nginx,
//! generic) mean UTC, and RFC 3164 and klog lines take their year from [`GenConfig::year`].
//! Time starts at `YEAR-01-15T08:00:00Z` and grows by 0–20 ms a line (about 12 hours of
//! logs per GiB). `first_ts_ms`/`last_ts_ms` are the smallest and largest timestamp as
//! written, at each format's precision (seconds for access, RFC 3164, nginx and generic;
//! klog's microseconds truncated to milliseconds); the short Python form has none.

use super::model::{Format, Level};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenConfig {
    pub seed: u64,
    /// Lines are written until at least this many bytes are out (the last line may overshoot).
    pub target_bytes: u64,
    /// Year of timestamps (RFC 3164/klog lines carry none), 1970–9999.
    pub year: i32,
}

/// Exact expected results for a generated file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub lines: u64,
    pub bytes: u64,
    /// Level name (Level::as_str) → count, every Level present (zeros included).
    pub levels: BTreeMap<String, u64>,
    /// Format name (Format::as_str) → count, every Format present (zeros included).
    pub formats: BTreeMap<String, u64>,
    /// Generator template key (e.g. "db_timeout") → count, for ERROR and CRITICAL lines
    /// (keys that occurred only).
    pub error_templates: BTreeMap<String, u64>,
    /// The generator template text with <*> for variables, by key (every template, so a test
    /// can compare with the analyzer's templates).
    pub template_texts: BTreeMap<String, String>,
    pub first_ts_ms: Option<i64>,
    pub last_ts_ms: Option<i64>,
}

/// Streams lines (each ending in `\n`) into `out` until `target_bytes` is reached; returns the truth.
pub fn generate(cfg: &GenConfig, out: &mut impl Write) -> io::Result<Truth> {
    generate_with(cfg, out, |_, _| {})
}

/// Replaces every space-separated token that contains `<*>` by `<*>`, so templates masked
/// inside tokens (`/api/v1/orders/<*>`, `<*>ms`) compare equal to the generator's.
pub fn normalize_template(template: &str) -> String {
    template
        .split(' ')
        .map(|t| if t.contains("<*>") { "<*>" } else { t })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the generator knows about one line.
#[derive(Debug, Clone, Copy)]
struct LineInfo {
    format: Format,
    level: Level,
    /// The timestamp as written, in ms.
    ts: Option<i64>,
    /// Index of the message template, if the message came from one.
    tpl: Option<usize>,
}

const CHUNK: usize = 256 * 1024;

fn generate_with<W: Write>(
    cfg: &GenConfig,
    out: &mut W,
    mut on_line: impl FnMut(&LineInfo, &[u8]),
) -> io::Result<Truth> {
    if !(1970..=9999).contains(&cfg.year) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("year {} is outside 1970–9999", cfg.year),
        ));
    }
    let mut g = Gen::new(cfg)?;
    let mut level_counts = [0u64; Level::ALL.len()];
    let mut format_counts = [0u64; Format::ALL.len()];
    let mut tpl_counts = vec![0u64; g.tpls.len()];
    let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
    let mut lines = 0u64;
    let mut bytes = 0u64;
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
    while bytes < cfg.target_bytes {
        let start = chunk.len();
        let info = g.line(&mut chunk);
        chunk.push(b'\n');
        bytes += (chunk.len() - start) as u64;
        lines += 1;
        level_counts[info.level.index()] += 1;
        format_counts[info.format.index()] += 1;
        if let (Some(t), Level::Error | Level::Critical) = (info.tpl, info.level) {
            tpl_counts[t] += 1;
        }
        if let Some(ts) = info.ts {
            first = Some(first.map_or(ts, |f| f.min(ts)));
            last = Some(last.map_or(ts, |l| l.max(ts)));
        }
        on_line(&info, &chunk[start..]);
        if chunk.len() >= CHUNK {
            out.write_all(&chunk)?;
            chunk.clear();
        }
    }
    out.write_all(&chunk)?;
    out.flush()?;
    Ok(Truth {
        lines,
        bytes,
        levels: Level::ALL
            .iter()
            .map(|l| (l.as_str().to_string(), level_counts[l.index()]))
            .collect(),
        formats: Format::ALL
            .iter()
            .map(|f| (f.as_str().to_string(), format_counts[f.index()]))
            .collect(),
        error_templates: g
            .tpls
            .iter()
            .zip(&tpl_counts)
            .filter(|(_, &n)| n > 0)
            .map(|(t, &n)| (t.key.to_string(), n))
            .collect(),
        template_texts: g
            .tpls
            .iter()
            .map(|t| (t.key.to_string(), t.text.clone()))
            .collect(),
        first_ts_ms: first,
        last_ts_ms: last,
    })
}

// ---------------------------------------------------------------------------------------
// PRNG

/// splitmix64: tiny, fast and fixed forever (unlike `rand`'s streams).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    fn pick_str(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn chance(&mut self, per_10k: u64) -> bool {
        self.below(10_000) < per_10k
    }

    /// An index drawn with the given relative weights.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total.max(1));
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }
}

// ---------------------------------------------------------------------------------------
// Templates

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    /// 1–999999.
    Num,
    /// 1–64.
    Small,
    /// 80–99.
    Pct,
    /// 64–16384.
    Mb,
    /// `1234ms`.
    Dur,
    Ip,
    IpPort,
    /// `[2001:db8:…]:port`.
    Ip6Port,
    Uuid,
    /// 16 hex digits, the first a digit.
    Hex,
    /// `/var/lib/watchpost/spool/123.dat`.
    File,
    /// `/api/v1/items/123`.
    Route,
    Email,
    User,
    Host,
    /// `'orders'`.
    Quoted,
}

impl Var {
    fn from_name(name: &str) -> Option<Var> {
        Some(match name {
            "num" => Var::Num,
            "small" => Var::Small,
            "pct" => Var::Pct,
            "mb" => Var::Mb,
            "dur" => Var::Dur,
            "ip" => Var::Ip,
            "ipport" => Var::IpPort,
            "ip6port" => Var::Ip6Port,
            "uuid" => Var::Uuid,
            "hex" => Var::Hex,
            "file" => Var::File,
            "route" => Var::Route,
            "email" => Var::Email,
            "user" => Var::User,
            "host" => Var::Host,
            "quoted" => Var::Quoted,
            _ => return None,
        })
    }
}

/// (key, text with `{var}` placeholders, relative weight)
type TplDef = (&'static str, &'static str, u32);

/// Used for INFO, DEBUG, TRACE and NOTICE lines. The last three are the level-word traps.
const INFO_TEMPLATES: &[TplDef] = &[
    ("request_done", "request {hex} completed in {dur}", 300),
    ("cache_hit", "cache hit for key {hex}", 200),
    ("user_login", "user {user} logged in from {ip}", 120),
    ("conn_opened", "opened connection to {ipport}", 100),
    ("health_ok", "health check passed for {host}", 100),
    ("metrics_flushed", "flushed {num} metrics to {file}", 80),
    ("session_started", "session {hex} started for {user}", 80),
    (
        "task_scheduled",
        "scheduled task {quoted} next run in {dur}",
        60,
    ),
    ("gc_pause", "gc pause {dur} heap {mb} MB", 60),
    ("mail_sent", "sent notification to {email}", 50),
    ("upload_stored", "stored upload {quoted} of {num} bytes", 40),
    ("peer_joined", "peer {ip6port} joined cluster", 30),
    (
        "job_done",
        "job {uuid} finished: {num} rows processed, 0 errors",
        12,
    ),
    (
        "log_level_set",
        "configuration reloaded, log level for {quoted} set to ERROR",
        5,
    ),
    (
        "retry_ok",
        "retry of request {hex} succeeded after previous error",
        8,
    ),
];
const TRAP_KEYS: [&str; 3] = ["job_done", "log_level_set", "retry_ok"];

const WARN_TEMPLATES: &[TplDef] = &[
    ("slow_query", "slow query took {dur} on table {quoted}", 100),
    (
        "retry_scheduled",
        "retrying request {hex} to {ipport} in {dur}",
        80,
    ),
    (
        "disk_usage_high",
        "disk usage at {pct} percent on {host}",
        60,
    ),
    ("pool_busy", "connection pool {small} of 64 in use", 50),
    (
        "deprecated_api",
        "deprecated endpoint {route} called by {user}",
        40,
    ),
    (
        "cert_expiring",
        "certificate for {host} expires in {small} days",
        30,
    ),
];

/// Used for ERROR and CRITICAL lines; distinct weights give a stable top 10.
const ERROR_TEMPLATES: &[TplDef] = &[
    (
        "db_timeout",
        "database query timed out after {dur} on {ipport}",
        40,
    ),
    ("upstream_refused", "connection to {ipport} refused", 30),
    ("cache_miss", "cache miss for key {hex}", 26),
    ("cache_evict", "cache evict for key {hex}", 22),
    (
        "payment_declined",
        "payment {uuid} declined for user {email}",
        19,
    ),
    (
        "auth_failed",
        "authentication failed for user {user} from {ip}",
        17,
    ),
    (
        "unhandled_exception",
        "unhandled exception in handler {route} request {hex}",
        15,
    ),
    (
        "disk_write_failed",
        "write to {file} failed with no space left on device",
        13,
    ),
    ("job_failed", "job {uuid} failed after {small} attempts", 12),
    (
        "queue_overflow",
        "queue {quoted} overflowed and dropped {num} messages",
        11,
    ),
    (
        "tls_handshake",
        "TLS handshake with {ipport} failed because certificate expired",
        10,
    ),
    (
        "worker_oom",
        "worker {small} killed after exceeding memory limit of {mb} MB",
        9,
    ),
    (
        "deadlock",
        "deadlock detected on table {quoted} in transaction {num}",
        8,
    ),
    ("dns_failed", "could not resolve host {host}", 7),
    ("replica_lag", "replica {ip} lag {dur} exceeds limit", 6),
    (
        "signature_mismatch",
        "session {hex} rejected due to signature mismatch for user {user}",
        5,
    ),
    (
        "client_abort",
        "request {hex} aborted by client after {dur}",
        4,
    ),
    (
        "mail_bounced",
        "mail to {email} bounced with mailbox unavailable",
        3,
    ),
    ("peer_lost", "lost contact with peer {ip6port}", 2),
    (
        "index_corrupt",
        "index {quoted} is corrupt at offset {num}",
        1,
    ),
];

/// Access-log 5xx lines: (key, method, template text as `METHOD PATH PROTO STATUS`).
const HTTP_5XX: [(&str, &str, &str); 2] = [
    ("http_5xx_get", "GET", "GET <*> <*> <*>"),
    ("http_5xx_post", "POST", "POST <*> <*> <*>"),
];

#[derive(Debug, Clone, Copy)]
enum Piece {
    Lit(&'static str),
    Var(Var),
}

#[derive(Debug)]
struct Compiled {
    key: &'static str,
    pieces: Vec<Piece>,
    /// With `<*>` for each variable.
    text: String,
}

fn compile(key: &'static str, src: &'static str) -> io::Result<Compiled> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("template {key}: {what}"),
        )
    };
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = src;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| bad("unclosed {"))?;
        if open > 0 {
            pieces.push(Piece::Lit(&rest[..open]));
            text.push_str(&rest[..open]);
        }
        let var = Var::from_name(&rest[open + 1..close]).ok_or_else(|| bad("unknown variable"))?;
        pieces.push(Piece::Var(var));
        text.push_str("<*>");
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Lit(rest));
        text.push_str(rest);
    }
    Ok(Compiled { key, pieces, text })
}

// ---------------------------------------------------------------------------------------
// Word lists (none of them is, or contains as a token, a level word)

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf", "zoe",
    "marta", "kenji", "priya", "lars", "ingrid", "omar", "chen", "fatima", "diego", "hana",
    "tomas",
];
const QUOTED: &[&str] = &[
    "orders",
    "invoices",
    "sessions",
    "payments",
    "users",
    "events",
    "audit_log",
    "shipments",
    "carts",
    "coupons",
    "reports",
    "webhooks",
];
const HOST_WORDS: &[&str] = &[
    "api", "db", "cache", "queue", "auth", "search", "billing", "mailer",
];
const SYSLOG_HOSTS: &[&str] = &[
    "web-01",
    "web-02",
    "web-03",
    "db-01",
    "db-02",
    "cache-01",
    "worker-01",
    "worker-02",
];
const SYSLOG_APPS: &[&str] = &[
    "sshd",
    "nginx",
    "orders-api",
    "worker",
    "cron",
    "dockerd",
    "postfix/smtpd",
    "kubelet",
];
const PY_LOGGERS: &[&str] = &[
    "app.db",
    "app.api",
    "worker.jobs",
    "celery.worker",
    "urllib3.connectionpool",
    "root",
];
const JAVA_LOGGERS: &[&str] = &[
    "com.example.orders.OrderService",
    "com.example.billing.PaymentClient",
    "org.hibernate.SQL",
    "com.zaxxer.hikari.pool.HikariPool",
    "o.s.web.servlet.DispatcherServlet",
];
const KLOG_FILES: &[&str] = &[
    "controller.go",
    "reconciler.go",
    "server.go",
    "cache.go",
    "leaderelection.go",
];
const APACHE_MODULES: &[&str] = &["core", "proxy", "ssl", "mpm_event", "authz_core"];
const SERVICES: &[&str] = &["orders", "billing", "gateway", "inventory", "notifier"];
const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "curl/8.5.0",
    "Prometheus/2.53.0",
    "python-requests/2.32.3",
];
const REFERERS: &[&str] = &[
    "-",
    "-",
    "https://example.com/",
    "https://example.com/shop/cart",
    "https://www.google.com/",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Relative weights of the overall level mix for lines whose level is not implied by
/// something else (everything except access logs and UNKNOWN lines), tuned so that the
/// whole file lands near the mix in the module documentation.
const LEVEL_WEIGHTS: [(Level, u32); 7] = [
    (Level::Info, 6400),
    (Level::Debug, 1700),
    (Level::Warn, 1000),
    (Level::Error, 640),
    (Level::Critical, 135),
    (Level::Notice, 115),
    (Level::Trace, 60),
];

/// Line kinds in the order of `KIND_WEIGHTS`.
const KINDS: [Option<Format>; 11] = [
    Some(Format::AccessLog),
    Some(Format::SyslogRfc3164),
    Some(Format::SyslogRfc5424),
    Some(Format::Python),
    Some(Format::Java),
    Some(Format::Json),
    Some(Format::Logfmt),
    Some(Format::Klog),
    Some(Format::ApacheError),
    Some(Format::Generic),
    // Generic lines without a level.
    None,
];
const KIND_WEIGHTS: [u32; 11] = [2500, 1500, 500, 1000, 1500, 1000, 800, 500, 400, 300, 50];

// ---------------------------------------------------------------------------------------
// Time

#[derive(Debug, Clone, Copy)]
struct Tm {
    year: u64,
    /// 0–11.
    mon: usize,
    day: u64,
    hour: u64,
    min: u64,
    sec: u64,
    ms: u64,
    /// 0 = Sunday.
    wday: usize,
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn tm(ms: i64) -> Tm {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) as u64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Tm {
        year: year.max(0) as u64,
        mon: (month - 1).clamp(0, 11) as usize,
        day: day.max(0) as u64,
        hour: rem / 3_600_000,
        min: rem / 60_000 % 60,
        sec: rem / 1000 % 60,
        ms: rem % 1000,
        wday: (days + 4).rem_euclid(7) as usize,
    }
}

fn trunc_s(ms: i64) -> i64 {
    ms - ms.rem_euclid(1000)
}

// ---------------------------------------------------------------------------------------
// Byte formatting

fn push_u64(b: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(&tmp[i..]);
}

/// `n` right-aligned in `width` columns, padded with `pad`.
fn push_padded(b: &mut Vec<u8>, n: u64, width: usize, pad: u8) {
    let mut digits = 1;
    let mut m = n / 10;
    while m > 0 {
        digits += 1;
        m /= 10;
    }
    for _ in digits..width {
        b.push(pad);
    }
    push_u64(b, n);
}

fn push2(b: &mut Vec<u8>, n: u64) {
    push_padded(b, n, 2, b'0');
}

fn push_hex(b: &mut Vec<u8>, rng: &mut Rng, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bits = rng.next_u64();
    for i in 0..len {
        if i % 16 == 0 && i > 0 {
            bits = rng.next_u64();
        }
        b.push(HEX[(bits & 15) as usize]);
        bits >>= 4;
    }
}

/// `2026-01-15`, then `sep`, then `08:00:00`.
fn push_date_time(b: &mut Vec<u8>, t: &Tm, sep: u8) {
    push_padded(b, t.year, 4, b'0');
    b.push(b'-');
    push2(b, t.mon as u64 + 1);
    b.push(b'-');
    push2(b, t.day);
    b.push(sep);
    push_hms(b, t);
}

fn push_hms(b: &mut Vec<u8>, t: &Tm) {
    push2(b, t.hour);
    b.push(b':');
    push2(b, t.min);
    b.push(b':');
    push2(b, t.sec);
}

fn push_ms3(b: &mut Vec<u8>, t: &Tm) {
    push_padded(b, t.ms, 3, b'0');
}

/// `2026-01-15T08:00:00.123Z`.
fn push_rfc3339(b: &mut Vec<u8>, t: &Tm) {
    push_date_time(b, t, b'T');
    b.push(b'.');
    push_ms3(b, t);
    b.push(b'Z');
}

/// Appends `s` escaped for a JSON string or a logfmt quoted value.
fn push_escaped(b: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        match c {
            b'"' => b.extend_from_slice(b"\\\""),
            b'\\' => b.extend_from_slice(b"\\\\"),
            b'\n' => b.extend_from_slice(b"\\n"),
            c if c < 0x20 => {
                b.extend_from_slice(b"\\u00");
                b.push(b"0123456789abcdef"[usize::from(c >> 4)]);
                b.push(b"0123456789abcdef"[usize::from(c & 15)]);
            }
            c => b.push(c),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The generator

struct Gen {
    rng: Rng,
    now_ms: i64,
    tpls: Vec<Compiled>,
    info: Vec<usize>,
    info_w: Vec<u32>,
    /// INFO templates without the traps (for UNKNOWN lines).
    plain: Vec<usize>,
    plain_w: Vec<u32>,
    warn: Vec<usize>,
    warn_w: Vec<u32>,
    err: Vec<usize>,
    err_w: Vec<u32>,
    /// Template indices of `HTTP_5XX`.
    http: [usize; 2],
    msg: Vec<u8>,
}

/// Which levels a line kind can express.
fn supports(format: Format, pri: bool, level: Level) -> bool {
    use Level::*;
    match format {
        Format::SyslogRfc3164 => !(pri && level == Trace),
        Format::SyslogRfc5424 | Format::ApacheError => level != Trace,
        Format::Python => !matches!(level, Trace | Notice),
        Format::Java => level != Notice,
        Format::Klog => matches!(level, Info | Warn | Error | Critical),
        _ => true,
    }
}

impl Gen {
    fn new(cfg: &GenConfig) -> io::Result<Gen> {
        let mut tpls = Vec::new();
        let mut add = |defs: &[TplDef]| -> io::Result<(Vec<usize>, Vec<u32>)> {
            let mut idx = Vec::new();
            let mut w = Vec::new();
            for &(key, text, weight) in defs {
                idx.push(tpls.len());
                w.push(weight);
                tpls.push(compile(key, text)?);
            }
            Ok((idx, w))
        };
        let (info, info_w) = add(INFO_TEMPLATES)?;
        let (warn, warn_w) = add(WARN_TEMPLATES)?;
        let (err, err_w) = add(ERROR_TEMPLATES)?;
        let mut http = [0usize; 2];
        for (slot, (key, _, text)) in http.iter_mut().zip(HTTP_5XX) {
            *slot = tpls.len();
            tpls.push(Compiled {
                key,
                pieces: Vec::new(),
                text: text.to_string(),
            });
        }
        let (plain, plain_w): (Vec<usize>, Vec<u32>) = info
            .iter()
            .zip(&info_w)
            .filter(|(&i, _)| !TRAP_KEYS.contains(&tpls[i].key))
            .map(|(&i, &w)| (i, w))
            .unzip();
        let start = (days_from_civil(i64::from(cfg.year), 1, 15) * 86_400 + 8 * 3600) * 1000;
        Ok(Gen {
            rng: Rng(cfg.seed),
            now_ms: start,
            tpls,
            info,
            info_w,
            plain,
            plain_w,
            warn,
            warn_w,
            err,
            err_w,
            http,
            msg: Vec::with_capacity(256),
        })
    }

    /// Writes one line (without `\n`) and says what it is.
    fn line(&mut self, b: &mut Vec<u8>) -> LineInfo {
        self.now_ms += self.rng.below(21) as i64;
        let kind = KINDS[self.rng.weighted(&KIND_WEIGHTS)];
        match kind {
            Some(Format::AccessLog) => self.access(b),
            Some(Format::SyslogRfc3164) => self.rfc3164(b),
            Some(Format::SyslogRfc5424) => self.rfc5424(b),
            Some(Format::Python) => self.python(b),
            Some(Format::Java) => self.java(b),
            Some(Format::Json) => self.json(b),
            Some(Format::Logfmt) => self.logfmt(b),
            Some(Format::Klog) => self.klog(b),
            Some(Format::ApacheError) => self.apache(b),
            Some(Format::Generic) => self.generic(b),
            None => self.unknown(b),
        }
    }

    fn pick_level(&mut self, format: Format, pri: bool) -> Level {
        let weights = LEVEL_WEIGHTS.map(|(_, w)| w);
        for _ in 0..8 {
            let level = LEVEL_WEIGHTS[self.rng.weighted(&weights)].0;
            if supports(format, pri, level) {
                return level;
            }
        }
        Level::Info
    }

    /// Fills `self.msg` with a message for `level`; returns its template index.
    fn message(&mut self, level: Level) -> usize {
        let (set, w) = match level {
            Level::Error | Level::Critical => (&self.err, &self.err_w),
            Level::Warn => (&self.warn, &self.warn_w),
            _ => (&self.info, &self.info_w),
        };
        let t = set[self.rng.weighted(w)];
        self.fill(t);
        t
    }

    fn fill(&mut self, t: usize) {
        let Gen { rng, msg, tpls, .. } = self;
        msg.clear();
        for piece in &tpls[t].pieces {
            match *piece {
                Piece::Lit(s) => msg.extend_from_slice(s.as_bytes()),
                Piece::Var(v) => push_var(msg, rng, v),
            }
        }
    }

    fn access(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let t = tm(self.now_ms);
        let rng = &mut self.rng;
        if rng.chance(1500) {
            b.extend_from_slice(b"2001:db8:");
            push_hex(b, rng, 4);
            b.extend_from_slice(b"::");
            push_hex(b, rng, 3);
        } else {
            push_ip(b, rng);
        }
        b.extend_from_slice(b" - ");
        if rng.chance(1000) {
            b.extend_from_slice(rng.pick(USERS).as_bytes());
        } else {
            b.push(b'-');
        }
        b.extend_from_slice(b" [");
        push2(b, t.day);
        b.push(b'/');
        b.extend_from_slice(MONTHS[t.mon].as_bytes());
        b.push(b'/');
        push_padded(b, t.year, 4, b'0');
        b.push(b':');
        push_hms(b, &t);
        b.extend_from_slice(b" +0000] \"");
        let r = rng.below(10_000);
        let mut tpl = None;
        let status: u64 = if r < 8500 {
            match rng.below(10) {
                0 | 1 => {
                    b.extend_from_slice(b"GET /api/v1/users/");
                    push_u64(b, rng.range(1, 99_999));
                    200
                }
                2 => {
                    b.extend_from_slice(b"GET /static/app.");
                    push_hex(b, rng, 8);
                    b.extend_from_slice(b".js");
                    if rng.chance(3000) {
                        304
                    } else {
                        200
                    }
                }
                3 => {
                    b.extend_from_slice(b"POST /api/v1/orders");
                    201
                }
                4 => {
                    b.extend_from_slice(b"GET /healthz");
                    200
                }
                5 => {
                    b.extend_from_slice(b"GET /search?q=");
                    b.extend_from_slice(rng.pick(QUOTED).as_bytes());
                    200
                }
                6 => {
                    b.extend_from_slice(b"GET /favicon.ico");
                    304
                }
                7 => {
                    b.extend_from_slice(b"GET /old-login");
                    *rng.pick(&[301, 302])
                }
                8 => {
                    b.extend_from_slice(b"DELETE /api/v1/carts/");
                    push_u64(b, rng.range(1, 99_999));
                    204
                }
                _ => {
                    b.extend_from_slice(b"GET /");
                    200
                }
            }
        } else if r < 9500 {
            match rng.below(6) {
                0 => {
                    b.extend_from_slice(b"GET /wp-login.php");
                    404
                }
                1 => {
                    b.extend_from_slice(b"GET /admin");
                    403
                }
                2 => {
                    b.extend_from_slice(b"POST /login");
                    401
                }
                3 => {
                    b.extend_from_slice(b"GET /api/v1/orders/");
                    push_u64(b, rng.range(1, 99_999));
                    404
                }
                4 => {
                    b.extend_from_slice(b"POST /api/v1/orders");
                    *rng.pick(&[400, 422])
                }
                _ => {
                    b.extend_from_slice(b"GET /api/v1/users/");
                    push_u64(b, rng.range(1, 99_999));
                    429
                }
            }
        } else {
            if rng.chance(7000) {
                b.extend_from_slice(b"GET /api/v1/orders/");
                tpl = Some(self.http[0]);
            } else {
                b.extend_from_slice(b"POST /api/v1/checkout/");
                tpl = Some(self.http[1]);
            }
            push_u64(b, rng.range(1, 999_999));
            *rng.pick(&[500, 502, 503, 504])
        };
        b.push(b' ');
        let proto: &[u8] = match rng.below(20) {
            0 => b"HTTP/1.0",
            1..=5 => b"HTTP/2.0",
            _ => b"HTTP/1.1",
        };
        b.extend_from_slice(proto);
        b.extend_from_slice(b"\" ");
        push_u64(b, status);
        b.push(b' ');
        if status == 304 || status == 204 {
            b.push(b'0');
        } else {
            push_u64(b, rng.range(120, 250_000));
        }
        b.extend_from_slice(b" \"");
        b.extend_from_slice(rng.pick(REFERERS).as_bytes());
        b.extend_from_slice(b"\" \"");
        b.extend_from_slice(rng.pick(UAS).as_bytes());
        b.push(b'"');
        LineInfo {
            format: Format::AccessLog,
            level: Level::from_http_status(status as u16),
            ts: Some(trunc_s(self.now_ms)),
            tpl,
        }
    }

    fn pri(&mut self, b: &mut Vec<u8>, level: Level) {
        let sev: u64 = match level {
            Level::Critical => self.rng.below(3),
            Level::Error => 3,
            Level::Warn => 4,
            Level::Notice => 5,
            Level::Info => 6,
            _ => 7,
        };
        let facility = *self.rng.pick(&[1u64, 3, 4, 16, 17, 20, 23]);
        b.push(b'<');
        push_u64(b, facility * 8 + sev);
        b.push(b'>');
    }

    fn rfc3164(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let with_pri = self.rng.chance(5000);
        let level = self.pick_level(Format::SyslogRfc3164, with_pri);
        let tpl = self.message(level);
        let t = tm(self.now_ms);
        if with_pri {
            self.pri(b, level);
        }
        b.extend_from_slice(MONTHS[t.mon].as_bytes());
        b.push(b' ');
        push_padded(b, t.day, 2, b' ');
        b.push(b' ');
        push_hms(b, &t);
        b.push(b' ');
        b.extend_from_slice(self.rng.pick(SYSLOG_HOSTS).as_bytes());
        b.push(b' ');
        b.extend_from_slice(self.rng.pick(SYSLOG_APPS).as_bytes());
        b.push(b'[');
        push_u64(b, self.rng.range(100, 65_000));
        b.extend_from_slice(b"]: ");
        if !with_pri {
            let words: &[&str] = match level {
                Level::Trace => &["trace"],
                Level::Debug => &["debug", "DEBUG"],
                Level::Info => &["info", "INFO"],
                Level::Notice => &["notice", "NOTICE"],
                Level::Warn => &["warning", "warn", "WARNING"],
                Level::Error => &["error", "err", "ERROR"],
                _ => &["crit", "critical", "CRITICAL", "emerg", "alert"],
            };
            b.extend_from_slice(self.rng.pick(words).as_bytes());
            b.extend_from_slice(b": ");
        }
        b.extend_from_slice(&self.msg);
        LineInfo {
            format: Format::SyslogRfc3164,
            level,
            ts: Some(trunc_s(self.now_ms)),
            tpl: Some(tpl),
        }
    }

    fn rfc5424(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let level = self.pick_level(Format::SyslogRfc5424, true);
        let tpl = self.message(level);
        let t = tm(self.now_ms);
        self.pri(b, level);
        b.extend_from_slice(b"1 ");
        push_rfc3339(b, &t);
        b.push(b' ');
        b.extend_from_slice(self.rng.pick(SYSLOG_HOSTS).as_bytes());
        b.push(b' ');
        b.extend_from_slice(self.rng.pick(SERVICES).as_bytes());
        b.push(b' ');
        push_u64(b, self.rng.range(100, 65_000));
        b.push(b' ');
        if self.rng.chance(5000) {
            b.extend_from_slice(b"ID");
            push_u64(b, self.rng.range(1, 99));
        } else {
            b.push(b'-');
        }
        b.push(b' ');
        match self.rng.below(3) {
            0 => b.push(b'-'),
            1 => {
                b.extend_from_slice(b"[meta sequenceId=\"");
                push_u64(b, self.rng.range(1, 999_999));
                b.extend_from_slice(b"\"]");
            }
            _ => {
                b.extend_from_slice(b"[origin ip=\"");
                push_ip(b, &mut self.rng);
                b.extend_from_slice(b"\"][meta sequenceId=\"");
                push_u64(b, self.rng.range(1, 999_999));
                b.extend_from_slice(b"\"]");
            }
        }
        b.push(b' ');
        b.extend_from_slice(&self.msg);
        LineInfo {
            format: Format::SyslogRfc5424,
            level,
            ts: Some(self.now_ms),
            tpl: Some(tpl),
        }
    }

    fn python(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let level = self.pick_level(Format::Python, false);
        let tpl = self.message(level);
        let name: &[u8] = match level {
            Level::Debug => b"DEBUG",
            Level::Info => b"INFO",
            Level::Warn => b"WARNING",
            Level::Error => b"ERROR",
            _ => b"CRITICAL",
        };
        let logger = self.rng.pick(PY_LOGGERS).as_bytes();
        let ts = if self.rng.chance(8000) {
            let t = tm(self.now_ms);
            push_date_time(b, &t, b' ');
            b.push(b',');
            push_ms3(b, &t);
            b.extend_from_slice(b" - ");
            b.extend_from_slice(logger);
            b.extend_from_slice(b" - ");
            b.extend_from_slice(name);
            b.extend_from_slice(b" - ");
            Some(self.now_ms)
        } else {
            b.extend_from_slice(name);
            b.push(b':');
            b.extend_from_slice(logger);
            b.push(b':');
            None
        };
        b.extend_from_slice(&self.msg);
        LineInfo {
            format: Format::Python,
            level,
            ts,
            tpl: Some(tpl),
        }
    }

    fn java(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let level = self.pick_level(Format::Java, false);
        let tpl = self.message(level);
        let t = tm(self.now_ms);
        push_date_time(b, &t, b' ');
        b.push(b'.');
        push_ms3(b, &t);
        b.extend_from_slice(b" [");
        match self.rng.below(4) {
            0 => b.extend_from_slice(b"main"),
            1 => {
                b.extend_from_slice(b"pool-");
                push_u64(b, self.rng.range(1, 4));
                b.extend_from_slice(b"-thread-");
                push_u64(b, self.rng.range(1, 16));
            }
            _ => {
                b.extend_from_slice(b"http-nio-8080-exec-");
                push_u64(b, self.rng.range(1, 10));
            }
        }
        b.extend_from_slice(b"] ");
        // logback's %-5level
        b.extend_from_slice(match level {
            Level::Trace => b"TRACE",
            Level::Debug => b"DEBUG",
            Level::Info => b"INFO ",
            Level::Warn => b"WARN ",
            Level::Error => b"ERROR",
            _ => b"FATAL",
        });
        b.push(b' ');
        b.extend_from_slice(self.rng.pick(JAVA_LOGGERS).as_bytes());
        b.extend_from_slice(b" - ");
        b.extend_from_slice(&self.msg);
        LineInfo {
            format: Format::Java,
            level,
            ts: Some(self.now_ms),
            tpl: Some(tpl),
        }
    }

    fn json(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let level = self.pick_level(Format::Json, false);
        let tpl = self.message(level);
        let t = tm(self.now_ms);
        let values: &[&str] = match level {
            Level::Trace => &["trace", "TRACE"],
            Level::Debug => &["debug", "DEBUG", "Debug"],
            Level::Info => &["info", "INFO", "Info"],
            Level::Notice => &["notice", "NOTICE"],
            Level::Warn => &["warn", "warning", "WARN", "Warning"],
            Level::Error => &["error", "ERROR", "Error", "err"],
            _ => &["critical", "fatal", "CRITICAL", "FATAL"],
        };
        let value = self.rng.pick(values).as_bytes();
        let level_key = *self.rng.pick(&["level", "level", "severity", "lvl"]);
        let msg_key = *self.rng.pick(&["msg", "message"]);
        let ts_key = *self.rng.pick(&["ts", "time", "timestamp", "@timestamp"]);
        let push_level = |b: &mut Vec<u8>| {
            b.push(b'"');
            b.extend_from_slice(level_key.as_bytes());
            b.extend_from_slice(b"\":\"");
            b.extend_from_slice(value);
            b.push(b'"');
        };
        let push_ts = |b: &mut Vec<u8>| {
            b.push(b'"');
            b.extend_from_slice(ts_key.as_bytes());
            b.extend_from_slice(b"\":\"");
            push_rfc3339(b, &t);
            b.push(b'"');
        };
        b.push(b'{');
        if self.rng.chance(6000) {
            push_ts(b);
            b.push(b',');
            push_level(b);
            b.extend_from_slice(b",\"logger\":\"");
            b.extend_from_slice(self.rng.pick(PY_LOGGERS).as_bytes());
            b.extend_from_slice(b"\",\"");
        } else {
            push_level(b);
            b.push(b',');
            push_ts(b);
            b.extend_from_slice(b",\"service\":\"");
            b.extend_from_slice(self.rng.pick(SERVICES).as_bytes());
            b.extend_from_slice(b"\",\"");
        }
        b.extend_from_slice(msg_key.as_bytes());
        b.extend_from_slice(b"\":\"");
        push_escaped(b, &self.msg);
        b.extend_from_slice(b"\",\"duration_ms\":");
        push_u64(b, self.rng.range(0, 5000));
        b.push(b'}');
        LineInfo {
            format: Format::Json,
            level,
            ts: Some(self.now_ms),
            tpl: Some(tpl),
        }
    }

    fn logfmt(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let level = self.pick_level(Format::Logfmt, false);
        let tpl = self.message(level);
        let t = tm(self.now_ms);
        b.extend_from_slice(if self.rng.chance(3000) {
            b"ts="
        } else {
            b"time="
        });
        push_rfc3339(b, &t);
        b.extend_from_slice(b" level=");
        let word: &str = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warn => "warn",
            Level::Error => "error",
            _ => "crit",
        };
        if self.rng.chance(1500) {
            b.extend_from_slice(word.to_ascii_uppercase().as_bytes());
        } else {
            b.extend_from_slice(word.as_bytes());
        }
        b.extend_from_slice(b" msg=\"");
        push_escaped(b, &self.msg);
        b.extend_from_slice(b"\" component=");
        b.extend_from_slice(self.rng.pick(SERVICES).as_bytes());
        b.extend_from_slice(b" request_id=");
        push_hex(b, &mut self.rng, 16);
        LineInfo {
            format: Format::Logfmt,
            level,
            ts: Some(self.now_ms),
            tpl: Some(tpl),
        }
    }

    fn klog(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let level = self.pick_level(Format::Klog, false);
        let tpl = self.message(level);
        let t = tm(self.now_ms);
        b.push(match level {
            Level::Info => b'I',
            Level::Warn => b'W',
            Level::Error => b'E',
            _ => b'F',
        });
        push2(b, t.mon as u64 + 1);
        push2(b, t.day);
        b.push(b' ');
        push_hms(b, &t);
        b.push(b'.');
        push_padded(b, t.ms * 1000 + self.rng.below(1000), 6, b'0');
        b.push(b' ');
        push_padded(b, self.rng.range(1, 99_999), 7, b' ');
        b.push(b' ');
        b.extend_from_slice(self.rng.pick(KLOG_FILES).as_bytes());
        b.push(b':');
        push_u64(b, self.rng.range(20, 900));
        b.extend_from_slice(b"] ");
        b.extend_from_slice(&self.msg);
        LineInfo {
            format: Format::Klog,
            level,
            ts: Some(self.now_ms),
            tpl: Some(tpl),
        }
    }

    fn apache(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let level = self.pick_level(Format::ApacheError, false);
        let tpl = self.message(level);
        let t = tm(self.now_ms);
        let word: &str = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warn => "warn",
            Level::Error => "error",
            _ => self.rng.pick_str(&["crit", "alert", "emerg"]),
        };
        let ts = if self.rng.chance(6000) {
            // [Thu Jan 15 08:00:00.123456 2026] [core:error] [pid 1234:tid 5678] message
            b.push(b'[');
            b.extend_from_slice(WEEKDAYS[t.wday].as_bytes());
            b.push(b' ');
            b.extend_from_slice(MONTHS[t.mon].as_bytes());
            b.push(b' ');
            push2(b, t.day);
            b.push(b' ');
            push_hms(b, &t);
            b.push(b'.');
            push_padded(b, t.ms * 1000 + self.rng.below(1000), 6, b'0');
            b.push(b' ');
            push_padded(b, t.year, 4, b'0');
            b.extend_from_slice(b"] [");
            b.extend_from_slice(self.rng.pick(APACHE_MODULES).as_bytes());
            b.push(b':');
            b.extend_from_slice(word.as_bytes());
            b.extend_from_slice(b"] [pid ");
            push_u64(b, self.rng.range(100, 65_000));
            b.extend_from_slice(b":tid ");
            push_u64(b, self.rng.range(100_000, 999_999_999));
            b.extend_from_slice(b"] ");
            self.now_ms
        } else {
            // 2026/01/15 08:00:00 [error] 1234#1234: *5678 message
            push_padded(b, t.year, 4, b'0');
            b.push(b'/');
            push2(b, t.mon as u64 + 1);
            b.push(b'/');
            push2(b, t.day);
            b.push(b' ');
            push_hms(b, &t);
            b.extend_from_slice(b" [");
            b.extend_from_slice(word.as_bytes());
            b.extend_from_slice(b"] ");
            let pid = self.rng.range(100, 65_000);
            push_u64(b, pid);
            b.push(b'#');
            push_u64(b, pid);
            b.extend_from_slice(b": *");
            push_u64(b, self.rng.range(1, 9_999_999));
            b.push(b' ');
            trunc_s(self.now_ms)
        };
        b.extend_from_slice(&self.msg);
        LineInfo {
            format: Format::ApacheError,
            level,
            ts: Some(ts),
            tpl: Some(tpl),
        }
    }

    fn generic(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let level = self.pick_level(Format::Generic, false);
        let tpl = self.message(level);
        let t = tm(self.now_ms);
        push_date_time(b, &t, b' ');
        b.push(b' ');
        let word: &str = match level {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Notice => "NOTICE",
            Level::Warn => self.rng.pick_str(&["WARN", "WARNING"]),
            Level::Error => "ERROR",
            _ => self.rng.pick_str(&["CRITICAL", "FATAL"]),
        };
        b.extend_from_slice(word.as_bytes());
        b.push(b' ');
        b.extend_from_slice(&self.msg);
        LineInfo {
            format: Format::Generic,
            level,
            ts: Some(trunc_s(self.now_ms)),
            tpl: Some(tpl),
        }
    }

    fn unknown(&mut self, b: &mut Vec<u8>) -> LineInfo {
        let tpl = self.plain[self.rng.weighted(&self.plain_w)];
        self.fill(tpl);
        let t = tm(self.now_ms);
        push_date_time(b, &t, b' ');
        b.push(b' ');
        b.extend_from_slice(&self.msg);
        LineInfo {
            format: Format::Generic,
            level: Level::Unknown,
            ts: Some(trunc_s(self.now_ms)),
            tpl: Some(tpl),
        }
    }
}

fn push_ip(b: &mut Vec<u8>, rng: &mut Rng) {
    let (a, bb) = *rng.pick(&[(10u64, 0u64), (192, 168), (172, 16), (203, 0)]);
    push_u64(b, a);
    b.push(b'.');
    push_u64(b, if a == 10 { rng.below(256) } else { bb });
    b.push(b'.');
    push_u64(b, rng.below(256));
    b.push(b'.');
    push_u64(b, rng.range(1, 254));
}

fn push_port(b: &mut Vec<u8>, rng: &mut Rng) {
    if rng.chance(5000) {
        push_u64(b, *rng.pick(&[443, 5432, 6379, 8080, 9092, 3306, 11211]));
    } else {
        push_u64(b, rng.range(1024, 65_535));
    }
}

fn push_var(b: &mut Vec<u8>, rng: &mut Rng, v: Var) {
    match v {
        Var::Num => push_u64(b, rng.range(1, 999_999)),
        Var::Small => push_u64(b, rng.range(1, 64)),
        Var::Pct => push_u64(b, rng.range(80, 99)),
        Var::Mb => push_u64(b, rng.range(64, 16_384)),
        Var::Dur => {
            push_u64(b, rng.range(1, 30_000));
            b.extend_from_slice(b"ms");
        }
        Var::Ip => push_ip(b, rng),
        Var::IpPort => {
            push_ip(b, rng);
            b.push(b':');
            push_port(b, rng);
        }
        Var::Ip6Port => {
            b.extend_from_slice(b"[2001:db8:");
            push_hex(b, rng, 4);
            b.extend_from_slice(b"::");
            push_hex(b, rng, 4);
            b.extend_from_slice(b"]:");
            push_port(b, rng);
        }
        Var::Uuid => {
            push_hex(b, rng, 8);
            b.push(b'-');
            push_hex(b, rng, 4);
            b.extend_from_slice(b"-4");
            push_hex(b, rng, 3);
            b.push(b'-');
            b.push(*rng.pick(b"89ab"));
            push_hex(b, rng, 3);
            b.push(b'-');
            push_hex(b, rng, 12);
        }
        Var::Hex => {
            push_u64(b, rng.below(10));
            push_hex(b, rng, 15);
        }
        Var::File => {
            b.extend_from_slice(b"/var/lib/watchpost/spool/");
            push_u64(b, rng.range(1, 999_999));
            b.extend_from_slice(b".dat");
        }
        Var::Route => {
            b.extend_from_slice(b"/api/v1/items/");
            push_u64(b, rng.range(1, 999_999));
        }
        Var::Email => {
            b.extend_from_slice(rng.pick(USERS).as_bytes());
            b.push(b'.');
            push_u64(b, rng.range(1, 999));
            b.extend_from_slice(b"@example.com");
        }
        Var::User => b.extend_from_slice(rng.pick(USERS).as_bytes()),
        Var::Host => {
            b.extend_from_slice(rng.pick(HOST_WORDS).as_bytes());
            b.push(b'-');
            push_u64(b, rng.range(1, 24));
            b.extend_from_slice(b".internal");
        }
        Var::Quoted => {
            b.push(b'\'');
            b.extend_from_slice(rng.pick(QUOTED).as_bytes());
            b.push(b'\'');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64, target_bytes: u64) -> GenConfig {
        GenConfig {
            seed,
            target_bytes,
            year: 2026,
        }
    }

    /// Generates and keeps every line with what the generator says about it.
    type Seen = Vec<(LineInfo, Vec<u8>)>;

    fn lines(seed: u64, size: u64) -> (Vec<u8>, Truth, Seen) {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let truth = generate_with(&cfg(seed, size), &mut out, |info, line| {
            seen.push((*info, line.to_vec()))
        })
        .unwrap();
        (out, truth, seen)
    }

    fn s(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn same_seed_same_bytes_and_truth() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let ta = generate(&cfg(7, 300_000), &mut a).unwrap();
        let tb = generate(&cfg(7, 300_000), &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        let mut c = Vec::new();
        let tc = generate(&cfg(8, 300_000), &mut c).unwrap();
        assert_ne!(a, c);
        assert_ne!(ta, tc);
    }

    #[test]
    fn output_is_pinned() {
        // The stream must never change silently: benchmark files and their truth depend on
        // it. If a change is deliberate, update the hash (FNV-1a 64 of seed 42, 100 kB).
        let mut out = Vec::new();
        generate(&cfg(42, 100_000), &mut out).unwrap();
        let hash = out.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!(format!("{hash:016x}"), "23875684ce437580");
    }

    #[test]
    fn truth_adds_up() {
        let (out, truth, seen) = lines(42, 2_000_000);
        assert_eq!(truth.bytes, out.len() as u64);
        assert!(truth.bytes >= 2_000_000 && truth.bytes < 2_000_000 + 4096);
        assert_eq!(
            truth.lines,
            out.iter().filter(|&&c| c == b'\n').count() as u64
        );
        assert_eq!(truth.lines, seen.len() as u64);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(truth.levels.len(), Level::ALL.len());
        assert_eq!(truth.formats.len(), Format::ALL.len());
        assert_eq!(truth.levels.values().sum::<u64>(), truth.lines);
        assert_eq!(truth.formats.values().sum::<u64>(), truth.lines);
        let errors = truth.levels["ERROR"] + truth.levels["CRITICAL"];
        assert_eq!(truth.error_templates.values().sum::<u64>(), errors);
        for key in truth.error_templates.keys() {
            assert!(truth.template_texts.contains_key(key), "{key}");
        }
        assert_eq!(truth.template_texts["cache_miss"], "cache miss for key <*>");
        assert_eq!(
            truth.template_texts["cache_evict"],
            "cache evict for key <*>"
        );
        assert_eq!(truth.template_texts["http_5xx_get"], "GET <*> <*> <*>");
        // Timestamps: from YEAR-01-15T08:00:00Z, monotonic (as written: never more than the
        // precision behind an earlier line), within the configured year.
        let start = days_from_civil(2026, 1, 15) * 86_400_000 + 8 * 3_600_000;
        let first = truth.first_ts_ms.unwrap();
        assert!((start..=start + 20).contains(&first), "{first}");
        let last = truth.last_ts_ms.unwrap();
        assert!(last > start && last < days_from_civil(2027, 1, 1) * 86_400_000);
        let mut max_seen = i64::MIN;
        for (info, _) in &seen {
            if let Some(ts) = info.ts {
                assert!(ts > max_seen.saturating_sub(1000), "{ts} {max_seen}");
                max_seen = max_seen.max(ts);
            }
        }
        assert_eq!(max_seen, last);
        // Every line is UTF-8 and ends with exactly one \n.
        let text = s(&out);
        for line in text.split_inclusive('\n') {
            assert!(line.ends_with('\n'));
            assert!(!line[..line.len() - 1].contains('\n'));
            assert!(!line.trim_end().is_empty());
        }
    }

    #[test]
    fn mix_is_roughly_as_documented() {
        let (_, truth, _) = lines(1, 8_000_000);
        let pct = |n: u64| n as f64 * 100.0 / truth.lines as f64;
        let level = |l: &str| pct(truth.levels[l]);
        let format = |f: &str| pct(truth.formats[f]);
        let near = |got: f64, want: f64, tol: f64, what: &str| {
            assert!((got - want).abs() <= tol, "{what}: {got:.2} % vs {want} %");
        };
        near(level("INFO"), 70.0, 3.0, "INFO");
        near(level("DEBUG"), 12.0, 2.0, "DEBUG");
        near(level("WARN"), 10.0, 1.5, "WARN");
        near(level("ERROR"), 6.0, 1.0, "ERROR");
        near(level("CRITICAL"), 1.0, 0.4, "CRITICAL");
        near(level("NOTICE"), 0.5, 0.3, "NOTICE");
        near(level("UNKNOWN"), 0.5, 0.2, "UNKNOWN");
        assert!(truth.levels["TRACE"] > 0);
        near(format("access_log"), 25.0, 1.0, "access");
        near(format("syslog_rfc3164"), 15.0, 1.0, "3164");
        near(format("java"), 15.0, 1.0, "java");
        near(format("klog"), 5.0, 0.5, "klog");
        near(format("generic"), 3.5, 0.5, "generic");
        // Every error template shows up, and the ranking follows the weights.
        assert_eq!(
            truth.error_templates.len(),
            ERROR_TEMPLATES.len() + HTTP_5XX.len()
        );
        assert!(truth.error_templates["db_timeout"] > truth.error_templates["cache_miss"]);
        assert!(truth.error_templates["cache_miss"] > truth.error_templates["index_corrupt"]);
    }

    fn level_tokens(line: &str) -> Vec<Level> {
        line.split(|c: char| !c.is_ascii_alphanumeric())
            .filter_map(|t| Level::from_word(t.as_bytes()))
            .collect()
    }

    #[test]
    fn word_lists_and_constant_text_hold_no_level_words() {
        let lists: [&[&str]; 13] = [
            USERS,
            QUOTED,
            HOST_WORDS,
            SYSLOG_HOSTS,
            SYSLOG_APPS,
            PY_LOGGERS,
            JAVA_LOGGERS,
            KLOG_FILES,
            APACHE_MODULES,
            SERVICES,
            UAS,
            REFERERS,
            &MONTHS,
        ];
        for list in lists {
            for w in list {
                assert!(level_tokens(w).is_empty(), "{w}");
            }
        }
        for (key, text, _) in INFO_TEMPLATES
            .iter()
            .chain(WARN_TEMPLATES)
            .chain(ERROR_TEMPLATES)
        {
            if TRAP_KEYS.contains(key) {
                assert!(text.to_ascii_lowercase().contains("error"), "{key}");
            } else {
                assert!(level_tokens(text).is_empty(), "{key}");
            }
        }
    }

    /// The level a line states, read the way the module documentation says.
    fn stated_level(format: Format, line: &str) -> Option<Level> {
        let word = |w: &str| Level::from_word(w.as_bytes());
        match format {
            Format::AccessLog => {
                let status = line.split("\" ").nth(1)?.split(' ').next()?;
                Some(Level::from_http_status(status.parse().ok()?))
            }
            Format::SyslogRfc3164 | Format::SyslogRfc5424 if line.starts_with('<') => {
                let pri: u8 = line[1..line.find('>')?].parse().ok()?;
                Some(Level::from_syslog_severity(pri % 8))
            }
            Format::SyslogRfc3164 => word(line.split("]: ").nth(1)?.split(':').next()?),
            Format::Python => match line.split(" - ").nth(2) {
                Some(l) => word(l),
                None => word(line.split(':').next()?),
            },
            Format::Java => word(line.split("] ").nth(1)?.split(' ').next()?),
            Format::Json => {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                let l = ["level", "severity", "lvl"]
                    .iter()
                    .find_map(|k| v.get(k))?
                    .as_str()?;
                word(l)
            }
            Format::Logfmt => word(line.split(" level=").nth(1)?.split(' ').next()?),
            Format::Klog => Some(match line.as_bytes().first()? {
                b'I' => Level::Info,
                b'W' => Level::Warn,
                b'E' => Level::Error,
                b'F' => Level::Critical,
                _ => return None,
            }),
            Format::ApacheError => {
                let inner = line.split(" [").nth(1)?.split(']').next()?;
                word(inner.rsplit(':').next()?)
            }
            Format::Generic => Some(word(line.split(' ').nth(2)?).unwrap_or(Level::Unknown)),
            _ => None,
        }
    }

    /// The message of a line, as documented.
    fn message_of(format: Format, level: Level, line: &str) -> Option<String> {
        let after = |sep: &str| line.split_once(sep).map(|(_, m)| m.to_string());
        Some(match format {
            Format::AccessLog => {
                let req = line.split('"').nth(1)?;
                let status = line.split("\" ").nth(1)?.split(' ').next()?;
                format!("{req} {status}")
            }
            Format::SyslogRfc3164 => {
                let m = after("]: ")?;
                if line.starts_with('<') {
                    m
                } else {
                    m.split_once(": ")?.1.to_string()
                }
            }
            Format::SyslogRfc5424 => {
                let rest: Vec<&str> = line.splitn(7, ' ').collect();
                let sd_and_msg = rest.get(6)?;
                match sd_and_msg.strip_prefix("- ") {
                    Some(m) => m.to_string(),
                    None => sd_and_msg.split_once("] ")?.1.to_string(),
                }
            }
            Format::Python => match line.split(" - ").nth(3) {
                Some(m) => m.to_string(),
                None => line.splitn(3, ':').nth(2)?.to_string(),
            },
            Format::Java => after(" - ")?,
            Format::Json => {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                v.get("msg")
                    .or_else(|| v.get("message"))?
                    .as_str()?
                    .to_string()
            }
            Format::Logfmt => line.split("msg=\"").nth(1)?.split('"').next()?.to_string(),
            Format::Klog | Format::ApacheError
                if !line.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                after("] ").map(|m| {
                    // Apache: skip the [module:level] and [pid …] fields.
                    let mut m = m.as_str();
                    while let Some(rest) = m.strip_prefix('[') {
                        m = rest.split_once("] ").map_or("", |(_, r)| r);
                    }
                    m.to_string()
                })?
            }
            Format::ApacheError => line.split_once(" *")?.1.split_once(' ')?.1.to_string(),
            Format::Generic if level == Level::Unknown => line.splitn(3, ' ').nth(2)?.to_string(),
            Format::Generic => line.splitn(4, ' ').nth(3)?.to_string(),
            _ => return None,
        })
    }

    fn matches_template(message: &str, template: &str) -> bool {
        let m: Vec<&str> = message.split(' ').collect();
        let t: Vec<&str> = template.split(' ').collect();
        m.len() == t.len() && m.iter().zip(&t).all(|(a, b)| *b == "<*>" || a == b)
    }

    #[test]
    fn every_line_states_its_level_and_message() {
        let (_, truth, seen) = lines(3, 3_000_000);
        let mut per_format = BTreeMap::new();
        for (info, raw) in &seen {
            let line = s(raw).strip_suffix('\n').unwrap();
            assert_eq!(
                stated_level(info.format, line),
                Some(info.level),
                "{:?}: {line}",
                info.format
            );
            if let Some(t) = info.tpl {
                let text = &truth.template_texts[key_of(t)];
                let msg = message_of(info.format, info.level, line).unwrap_or_default();
                assert!(matches_template(&msg, text), "{line}\n{msg:?} vs {text:?}");
            }
            // Level-word hygiene: the stated level word is the only one, bar the traps.
            let trap = info.tpl.is_some_and(|t| TRAP_KEYS.contains(&key_of(t)));
            if !trap {
                let words = level_tokens(line);
                let explicit = !(matches!(info.format, Format::AccessLog | Format::Klog)
                    || line.starts_with('<')
                    || info.level == Level::Unknown);
                assert_eq!(words.len(), usize::from(explicit), "{line}");
                assert!(words.iter().all(|&l| l == info.level), "{line}");
            }
            *per_format.entry(info.format).or_insert(0) += 1;
        }
        assert_eq!(per_format.len(), Format::ALL.len());
    }

    fn key_of(t: usize) -> &'static str {
        INFO_TEMPLATES
            .iter()
            .chain(WARN_TEMPLATES)
            .chain(ERROR_TEMPLATES)
            .map(|d| d.0)
            .chain(HTTP_5XX.iter().map(|h| h.0))
            .nth(t)
            .unwrap()
    }

    #[test]
    fn formats_look_like_themselves() {
        let (_, _, seen) = lines(11, 1_000_000);
        let mut checked = BTreeMap::new();
        for (info, raw) in &seen {
            let line = s(raw).trim_end_matches('\n');
            let n = checked.entry(info.format).or_insert(0);
            if *n >= 50 {
                continue;
            }
            *n += 1;
            match info.format {
                Format::AccessLog => {
                    // HOST - USER [dd/Mon/yyyy:HH:MM:SS +0000] "METHOD PATH PROTO" STATUS BYTES "REF" "UA"
                    let (host, rest) = line.split_once(" - ").unwrap();
                    assert!(!host.is_empty() && !host.contains(' '), "{line}");
                    let (_, rest) = rest.split_once(" [").unwrap();
                    let (ts, rest) = rest.split_once("] \"").unwrap();
                    let b = ts.as_bytes();
                    assert_eq!(ts.len(), 26, "{line}");
                    assert!(b[2] == b'/' && b[6] == b'/' && b[11] == b':', "{line}");
                    assert!(
                        MONTHS.contains(&&ts[3..6]) && ts.ends_with(" +0000"),
                        "{line}"
                    );
                    let (req, rest) = rest.split_once("\" ").unwrap();
                    let parts: Vec<&str> = req.split(' ').collect();
                    assert_eq!(parts.len(), 3, "{line}");
                    assert!(parts[1].starts_with('/') && parts[2].starts_with("HTTP/"));
                    let status: u16 = rest.split(' ').next().unwrap().parse().unwrap();
                    assert!((200..600).contains(&status));
                    assert!(line.ends_with('"'));
                }
                Format::Json => {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    let obj = v.as_object().unwrap();
                    assert!(["level", "severity", "lvl"]
                        .iter()
                        .any(|k| obj.contains_key(*k)));
                    assert!(obj.contains_key("msg") || obj.contains_key("message"));
                }
                Format::SyslogRfc3164 => {
                    let body = match line.strip_prefix('<') {
                        Some(r) => r.split_once('>').unwrap().1,
                        None => line,
                    };
                    assert!(MONTHS.contains(&&body[..3]), "{line}");
                    assert_eq!(&body[6..7], " ");
                    assert!(line.contains("]: "));
                }
                Format::SyslogRfc5424 => {
                    let (pri, rest) = line[1..].split_once('>').unwrap();
                    assert!(pri.parse::<u8>().unwrap() < 192);
                    assert!(rest.starts_with("1 2026-01-"), "{line}");
                }
                Format::Python => {
                    assert!(
                        line.starts_with("2026-01-") && line.as_bytes()[19] == b','
                            || ["DEBUG:", "INFO:", "WARNING:", "ERROR:", "CRITICAL:"]
                                .iter()
                                .any(|p| line.starts_with(p)),
                        "{line}"
                    );
                }
                Format::Java => {
                    assert!(line.starts_with("2026-01-") && line.as_bytes()[19] == b'.');
                    assert_eq!(&line[23..25], " [");
                }
                Format::Logfmt => {
                    assert!(line.starts_with("time=2026-") || line.starts_with("ts=2026-"));
                    assert!(line.contains(" level=") && line.contains(" msg=\""));
                }
                Format::Klog => {
                    let b = line.as_bytes();
                    assert!(b"IWEF".contains(&b[0]) && b[1..5].iter().all(u8::is_ascii_digit));
                    assert_eq!(b[5], b' ');
                    assert_eq!(b[14], b'.');
                    assert!(line.contains(".go:") && line.contains("] "));
                }
                Format::ApacheError => {
                    assert!(
                        WEEKDAYS.iter().any(|d| line.starts_with(&format!("[{d} ")))
                            || line.starts_with("2026/01/"),
                        "{line}"
                    );
                }
                Format::Generic => {
                    assert!(line.starts_with("2026-01-") && line.as_bytes()[10] == b' ');
                }
            }
        }
    }

    #[test]
    fn calendar_is_right() {
        let t = tm(days_from_civil(2026, 1, 15) * 86_400_000 + 8 * 3_600_000 + 123);
        assert_eq!((t.year, t.mon, t.day, t.hour, t.ms), (2026, 0, 15, 8, 123));
        assert_eq!(WEEKDAYS[t.wday], "Thu");
        let t = tm(days_from_civil(2024, 2, 29) * 86_400_000);
        assert_eq!((t.year, t.mon, t.day), (2024, 1, 29));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert!(generate(
            &GenConfig {
                seed: 1,
                target_bytes: 10,
                year: 1969
            },
            &mut Vec::new()
        )
        .is_err());
    }

    #[test]
    fn normalize_collapses_masked_tokens() {
        assert_eq!(
            normalize_template("GET /api/v1/orders/<*> HTTP/<*> <*>"),
            "GET <*> <*> <*>"
        );
        assert_eq!(normalize_template("took <*>ms"), "took <*>");
    }

    #[test]
    fn empty_target_writes_nothing() {
        let mut out = Vec::new();
        let t = generate(&cfg(1, 0), &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!((t.lines, t.bytes, t.first_ts_ms), (0, 0, None));
        assert_eq!(t.levels.values().sum::<u64>(), 0);
    }
}
