//! Ingest load generator for `bench/ingest.sh`: N simulated agents, each on its own
//! keep-alive connection, POST batches to `/ingest` on a fixed schedule; prints acknowledged
//! samples/s, ack latency percentiles (from the scheduled send time) and errors by status.
//!
//! ```text
//! cargo bench --bench ingest_load -- --url http://127.0.0.1:8000 --tokens tokens.txt \
//!     [--create 1000 (with ADMIN_TOKEN in the environment)] --agents 1000 --rate 1 \
//!     --samples 1 --duration 60 [--server-pid PID] [--ts-end-ms MS]
//! ```
//!
//! Latency is measured from the moment a batch was *due*, not from when it went out: an
//! agent whose previous request was slow sends late, and that delay counts (no coordinated
//! omission). Each agent has one request in flight at most, as the real agent does.
//!
//! Sample timestamps: sample `n` of an agent (counting across the run) is stamped
//! `ts_end_ms - 1 - n` (1 ms apart, going back from `--ts-end-ms`, default now), so every
//! sample is new to the server however many samples per second an agent sends, and a
//! following run given `--ts-end-ms` = the previous run's `next_ts_end_ms` never collides
//! with it. The cost per stored row is the same as for 1 s spacing (one row, the same
//! rollup upserts per batch).

use anyhow::{bail, Context};
use clap::Parser;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::Instant as TokioInstant;
use watchpost::ingest::wire::IngestResponse;

#[derive(Parser, Debug)]
#[command(about = "POST /ingest load generator (see bench/ingest.sh)")]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Agent tokens, one per line (written first when --create is given).
    #[arg(long)]
    tokens: std::path::PathBuf,
    /// Create this many agent hosts through `POST /admin/hosts` first (needs ADMIN_TOKEN).
    #[arg(long, default_value_t = 0)]
    create: usize,
    /// The server's admin token: from the environment only, never the command line.
    #[arg(skip)]
    admin_token: Option<String>,
    /// Simulated agents (at most the number of tokens).
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Batches per second per agent.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Samples per batch.
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// Seconds of load (0: only create hosts).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Time limit of one request, seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Exclusive upper bound of sample timestamps (epoch ms); default now.
    #[arg(long)]
    ts_end_ms: Option<i64>,
    /// Measure this process's CPU time (the server) over the load window, from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also print p50/p99/max per second of the run (by due time), to see whether slow
    /// acks are spread out or come in bursts.
    #[arg(long)]
    timeline: bool,
    /// A label printed with the results.
    #[arg(long, default_value = "run")]
    label: String,
    /// `cargo bench` appends `--bench`; accepted and ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one simulated agent saw.
#[derive(Default)]
struct AgentReport {
    /// Ack latency of every 200, microseconds from the scheduled send time, with the
    /// second of the run in which the batch was due.
    latencies_us: Vec<(u32, u32)>,
    sent: u64,
    acked_samples: u64,
    duplicates: u64,
    /// Batches never sent because the hard deadline came first.
    skipped: u64,
    errors: BTreeMap<String, u64>,
    last_ack: Option<Instant>,
}

/// The parts of a batch body that never change; only the batch id and the times do.
struct Template {
    /// `,"cpu":…,"uptime":…}`: every field of a sample after `ts`.
    sample_tail: String,
}

impl Template {
    fn new() -> Self {
        let tail = concat!(
            r#","cpu":12.5,"memory":41.2,"memory_used":3311300608,"memory_total":8033554432,"#,
            r#""swap":0.0,"load1":0.42,"load5":0.38,"load15":0.35,"disk":61.3,"#,
            r#""disk_read_bps":0.0,"disk_write_bps":40960.0,"net_rx_bps":1830.0,"#,
            r#""net_tx_bps":912.0,"processes":212,"uptime":86400}"#
        );
        Self {
            sample_tail: tail.to_owned(),
        }
    }

    /// The JSON body of batch `k` of an agent sending `per_batch` samples per batch.
    fn body(&self, batch_id: &str, ts_end_ms: i64, k: u64, per_batch: usize) -> Vec<u8> {
        let mut out = String::with_capacity(96 + per_batch * (self.sample_tail.len() + 40));
        out.push_str(r#"{"batch_id":""#);
        out.push_str(batch_id);
        out.push_str(r#"","agent_version":"bench","interval_ms":1000,"samples":["#);
        let first = k.saturating_mul(per_batch as u64);
        for j in 0..per_batch as u64 {
            // Oldest first within the batch, as an agent sends them.
            let n = first + (per_batch as u64 - 1 - j);
            let ts = ts_end_ms - 1 - i64::try_from(n).unwrap_or(i64::MAX / 2);
            if j > 0 {
                out.push(',');
            }
            out.push_str(r#"{"ts":""#);
            out.push_str(&watchpost::domain::format_rfc3339(ts));
            out.push('"');
            out.push_str(&self.sample_tail);
        }
        out.push_str("]}");
        out.into_bytes()
    }
}

/// utime + stime of a process in seconds, from /proc (Linux; the kernel reports /proc
/// times in USER_HZ, which is 100 on every architecture Linux exports it for).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        // One connection per simulated agent, kept open between its batches.
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(Duration::from_secs(300))
        .user_agent("watchpost-bench/ingest_load")
        .build()
        .context("building an HTTP client")
}

/// Creates `n` agent hosts with 8 requests in flight and writes their tokens to `path`.
async fn create_hosts(args: &Args, n: usize) -> anyhow::Result<()> {
    let Some(admin) = args.admin_token.clone() else {
        bail!("--create needs ADMIN_TOKEN in the environment");
    };
    let http = client(Duration::from_secs(args.timeout))?;
    let url = format!("{}/admin/hosts", args.url.trim_end_matches('/'));
    // A random prefix so that hosts of an earlier run on the same database do not clash.
    let prefix = format!("bench-{:08x}", rand::random::<u32>());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (http, url, admin, prefix, next) = (
            http.clone(),
            url.clone(),
            admin.clone(),
            prefix.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let resp = http
                    .post(&url)
                    .header("x-admin-token", &admin)
                    .json(&serde_json::json!({ "name": format!("{prefix}-{i:05}") }))
                    .send()
                    .await
                    .context("POST /admin/hosts")?;
                let status = resp.status();
                if !status.is_success() {
                    let body = resp.text().await.unwrap_or_default();
                    bail!("POST /admin/hosts answered {status}: {body}");
                }
                let v: serde_json::Value = resp.json().await.context("host JSON")?;
                let token = v["token"]
                    .as_str()
                    .context("no token in the answer")?
                    .to_owned();
                tokens.push(token);
            }
            Ok::<_, anyhow::Error>(tokens)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for w in workers {
        all.extend(w.await.context("host creation task")??);
    }
    let mut f = std::fs::File::create(&args.tokens)
        .with_context(|| format!("creating {}", args.tokens.display()))?;
    for t in &all {
        writeln!(f, "{t}")?;
    }
    f.sync_all()?;
    eprintln!(
        "created {} hosts; tokens in {}",
        all.len(),
        args.tokens.display()
    );
    Ok(())
}

/// What every simulated agent of a run shares.
struct Plan {
    url: String,
    template: Template,
    agents: usize,
    period: Duration,
    batches: u64,
    per_batch: usize,
    ts_end_ms: i64,
    start: TokioInstant,
    hard_end: TokioInstant,
}

async fn run_agent(
    idx: usize,
    http: reqwest::Client,
    auth: HeaderValue,
    plan: Arc<Plan>,
) -> AgentReport {
    let (start, hard_end) = (plan.start, plan.hard_end);
    let mut rep = AgentReport::default();
    // Agents are spread evenly over one period, as independent hosts' clocks would be.
    let offset = plan.period.mul_f64(idx as f64 / plan.agents as f64);
    let run_id: u32 = rand::random();
    for k in 0..plan.batches {
        let due = start + offset + plan.period.mul_f64(k as f64);
        // An agent that fell behind stops at the hard end too, so a run against an
        // overloaded server still ends within `hard_end` + one request timeout.
        if due >= hard_end || TokioInstant::now() >= hard_end {
            rep.skipped += plan.batches - k;
            break;
        }
        tokio::time::sleep_until(due).await;
        let batch_id = format!("b{run_id:08x}-{idx}-{k}");
        let body = plan
            .template
            .body(&batch_id, plan.ts_end_ms, k, plan.per_batch);
        rep.sent += 1;
        let result = http
            .post(&plan.url)
            .header(AUTHORIZATION, auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let kind = match result {
            Ok(resp) if resp.status().is_success() => match resp.json::<IngestResponse>().await {
                Ok(answer) => {
                    let lat = u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX);
                    let second = u32::try_from(due.saturating_duration_since(start).as_secs())
                        .unwrap_or(u32::MAX);
                    rep.latencies_us.push((second, lat));
                    rep.acked_samples += answer.accepted;
                    rep.duplicates += u64::from(answer.duplicate);
                    rep.last_ack = Some(Instant::now());
                    continue;
                }
                Err(_) => "bad-answer".to_owned(),
            },
            Ok(resp) => resp.status().as_u16().to_string(),
            Err(e) if e.is_timeout() => "timeout".to_owned(),
            Err(e) if e.is_connect() => "connect".to_owned(),
            Err(_) => "transport".to_owned(),
        };
        *rep.errors.entry(kind).or_default() += 1;
    }
    rep
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// (second, acks, p50, p99, max) of the batches due in each second of the run.
fn per_second(timed: &mut [(u32, u32)]) -> Vec<(u32, usize, f64, f64, f64)> {
    timed.sort_unstable();
    timed
        .chunk_by(|a, b| a.0 == b.0)
        .map(|chunk| {
            // Sorted by (second, latency): each chunk's latencies are in order.
            let lat: Vec<u32> = chunk.iter().map(|&(_, l)| l).collect();
            (
                chunk[0].0,
                lat.len(),
                percentile(&lat, 0.50),
                percentile(&lat, 0.99),
                percentile(&lat, 1.0),
            )
        })
        .collect()
}

async fn load(args: &Args) -> anyhow::Result<()> {
    if !(args.rate > 0.0 && args.rate <= 1000.0) {
        bail!("--rate must be in (0, 1000]");
    }
    if args.samples == 0 || args.samples > 10_000 {
        bail!("--samples must be 1..=10000");
    }
    let text = std::fs::read_to_string(&args.tokens)
        .with_context(|| format!("reading {}", args.tokens.display()))?;
    let tokens: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if tokens.len() < args.agents {
        bail!(
            "{} agents wanted but {} has only {} tokens",
            args.agents,
            args.tokens.display(),
            tokens.len()
        );
    }
    let timeout = Duration::from_secs(args.timeout);
    let mut clients = Vec::with_capacity(args.agents);
    for token in tokens.iter().take(args.agents) {
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("a token a header cannot carry")?;
        auth.set_sensitive(true);
        clients.push((client(timeout)?, auth));
    }

    let server_pid = args.server_pid.map(|p| p.to_string());
    let server_cpu0 = server_pid.as_deref().and_then(cpu_seconds);
    let own_cpu0 = cpu_seconds("self");
    // A short lead so that every task is spawned before the first batch is due.
    let start = TokioInstant::now() + Duration::from_millis(200);
    let wall0 = Instant::now() + Duration::from_millis(200);
    // Batches are not sent after this (counted as `not-sent`): a run overloaded to the
    // point of falling a whole grace period behind stops anyway.
    let grace = Duration::from_secs(args.timeout.max(5));
    let hard_end = start + Duration::from_secs(args.duration) + grace;
    let plan = Arc::new(Plan {
        url: format!("{}/ingest", args.url.trim_end_matches('/')),
        template: Template::new(),
        agents: args.agents,
        period: Duration::from_secs_f64(1.0 / args.rate),
        batches: (args.duration as f64 * args.rate).round().max(1.0) as u64,
        per_batch: args.samples,
        ts_end_ms: args.ts_end_ms.unwrap_or_else(watchpost::domain::now_ms),
        start,
        hard_end,
    });
    let mut tasks = Vec::with_capacity(args.agents);
    for (idx, (http, auth)) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(run_agent(idx, http, auth, plan.clone())));
    }
    let mut reports = Vec::with_capacity(tasks.len());
    let mut lost_tasks = 0u64;
    // Every task ends by itself (bounded batches, each bounded by the request timeout);
    // this outer limit is the belt to those braces.
    let limit = hard_end + timeout + Duration::from_secs(5);
    for t in tasks {
        let abort = t.abort_handle();
        match tokio::time::timeout_at(limit, t).await {
            Ok(Ok(r)) => reports.push(r),
            _ => {
                abort.abort();
                lost_tasks += 1;
            }
        }
    }
    let end = Instant::now();
    let server_cpu1 = server_pid.as_deref().and_then(cpu_seconds);
    let own_cpu1 = cpu_seconds("self");

    let mut timed: Vec<(u32, u32)> = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut sent, mut acked, mut dups, mut skipped) = (0u64, 0u64, 0u64, 0u64);
    let mut last_ack = wall0;
    for r in reports {
        timed.extend_from_slice(&r.latencies_us);
        sent += r.sent;
        acked += r.acked_samples;
        dups += r.duplicates;
        skipped += r.skipped;
        for (k, v) in r.errors {
            *errors.entry(k).or_default() += v;
        }
        if let Some(t) = r.last_ack {
            last_ack = last_ack.max(t);
        }
    }
    if lost_tasks > 0 {
        errors.insert("lost-task".into(), lost_tasks);
    }
    if skipped > 0 {
        errors.insert("not-sent".into(), skipped);
    }
    let seconds = per_second(&mut timed);
    if args.timeline {
        for &(t, n, p50, p99, max) in &seconds {
            println!(
                "  t={t:>3}s acks {n:>6}  p50 {p50:>8.1} ms  p99 {p99:>8.1} ms  max {max:>8.1} ms"
            );
        }
    }
    // Slow acks bunched in one second point at a stall (a checkpoint, a CPU hog), spread
    // evenly at a steady shortfall.
    let worst = seconds
        .iter()
        .copied()
        .max_by(|a, b| a.3.total_cmp(&b.3))
        .unwrap_or((0, 0, f64::NAN, f64::NAN, f64::NAN));
    let mut lat: Vec<u32> = timed.iter().map(|&(_, l)| l).collect();
    lat.sort_unstable();
    // The load lasts `duration`; acks that trail in after it still count, over the time
    // they took (a server that falls behind is not flattered).
    let window = last_ack
        .saturating_duration_since(wall0)
        .max(Duration::from_secs(args.duration))
        .as_secs_f64();
    let wall = end.saturating_duration_since(wall0).as_secs_f64().max(1e-3);
    let cpu_pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (b - a) / wall * 100.0,
        _ => f64::NAN,
    };
    let offered = args.agents as f64 * args.rate * args.samples as f64;
    let error_total: u64 = errors.values().sum();
    let result = serde_json::json!({
        "label": args.label,
        "agents": args.agents,
        "rate": args.rate,
        "samples_per_batch": args.samples,
        "duration_s": args.duration,
        "offered_samples_per_s": offered,
        "batches_sent": sent,
        "batches_acked": lat.len(),
        "acked_samples": acked,
        "acked_samples_per_s": acked as f64 / window,
        "duplicates": dups,
        "p50_ms": percentile(&lat, 0.50),
        "p90_ms": percentile(&lat, 0.90),
        "p99_ms": percentile(&lat, 0.99),
        "max_ms": percentile(&lat, 1.0),
        "worst_second": worst.0,
        "worst_second_p99_ms": worst.3,
        "errors": errors,
        "error_total": error_total,
        "server_cpu_pct": cpu_pct(server_cpu0, server_cpu1),
        "generator_cpu_pct": cpu_pct(own_cpu0, own_cpu1),
        "wall_s": wall,
        "next_ts_end_ms": plan.ts_end_ms
            - i64::try_from(plan.batches.saturating_mul(plan.per_batch as u64)).unwrap_or(0)
            - 1000,
    });
    println!(
        "{}: {} agents x {} batch/s x {} samples, {} s: acked {:.0} samples/s (offered {:.0}); \
         ack latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (worst second \
         t={} s: p99 {:.1} ms); errors {}; server CPU {:.0} %, generator CPU {:.0} %",
        args.label,
        args.agents,
        args.rate,
        args.samples,
        args.duration,
        acked as f64 / window,
        offered,
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        worst.0,
        worst.3,
        serde_json::to_string(&result["errors"]).unwrap_or_default(),
        result["server_cpu_pct"].as_f64().unwrap_or(f64::NAN),
        result["generator_cpu_pct"].as_f64().unwrap_or(f64::NAN),
    );
    println!("JSON {result}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.admin_token = std::env::var("ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async {
        if args.create > 0 {
            create_hosts(&args, args.create).await?;
        }
        if args.duration > 0 {
            load(&args).await?;
        }
        Ok(())
    })
}
