//! `watchpost seed`: a demo user, 24 h of plausible samples for the local host with a few
//! breaches (turned into alerts by the real threshold engine), and a token to try the API.
//! Safe to run twice: samples sit on a fixed time grid and are skipped if present, alerts
//! are only generated for a window that has none yet, and the user is reused.

use crate::auth::{tokens, Hasher};
use crate::cli::SeedArgs;
use crate::config::Settings;
use crate::domain::{format_rfc3339, now_ms, Password, Username};
use crate::store::{NewToken, Sample, Store, StoreError};
use crate::tasks::alerting::AlertEngine;
use anyhow::{bail, Context};
use std::sync::Arc;

pub struct SeedReport {
    pub username: String,
    pub password: String,
    pub token: String,
    pub expires_at: String,
    pub samples: usize,
    pub alerts: usize,
}

/// Deterministic pseudo-random noise in [-1, 1].
fn noise(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    (x % 20_001) as f64 / 10_000.0 - 1.0
}

/// A day shaped like a real server: a daily wave, noise, CPU bursts every few hours and
/// one memory leak that is restarted away.
pub fn demo_samples(host_id: i64, end: i64, hours: u32, step_ms: i64) -> Vec<Sample> {
    let span = i64::from(hours) * 3_600_000;
    let first = (end - span) / step_ms * step_ms;
    let mut out = Vec::new();
    let mut ts = first;
    let mut i = 0u64;
    while ts <= end {
        let t = (ts - first) as f64 / 3_600_000.0; // hours into the series
        let wave = (t / 24.0 * std::f64::consts::TAU).sin();
        let burst = if (t % 3.0) > 1.5 && (t % 3.0) < 1.6 {
            55.0
        } else {
            0.0
        };
        let cpu = (30.0 + 12.0 * wave + 4.0 * noise(i) + burst).clamp(0.5, 99.5);
        let leak = if t > 14.0 && t < 14.5 {
            (t - 14.0) * 60.0
        } else {
            0.0
        };
        let memory = (52.0 + 6.0 * wave + 1.5 * noise(i + 7) + leak).clamp(1.0, 99.0);
        let total: i64 = 16 * 1024 * 1024 * 1024;
        out.push(Sample {
            host_id,
            ts,
            cpu: (cpu * 100.0).round() / 100.0,
            memory: (memory * 100.0).round() / 100.0,
            memory_used: (total as f64 * memory / 100.0) as i64,
            memory_total: total,
            swap: (3.0 + noise(i + 3).abs() * 2.0 + leak / 10.0).min(100.0),
            load1: (cpu / 25.0).max(0.0),
            load5: (cpu / 28.0).max(0.0),
            load15: (cpu / 30.0).max(0.0),
            disk: 61.0 + t * 0.05,
            disk_read_bps: (200_000.0 + 150_000.0 * noise(i + 11)).max(0.0).round(),
            disk_write_bps: (400_000.0 + 300_000.0 * noise(i + 13)).max(0.0).round(),
            net_rx_bps: (1_000_000.0 + 800_000.0 * noise(i + 17) + burst * 40_000.0)
                .max(0.0)
                .round(),
            net_tx_bps: (300_000.0 + 250_000.0 * noise(i + 19)).max(0.0).round(),
            processes: 180 + (noise(i + 23) * 20.0) as i64,
            uptime: 86_400 * 12 + (ts - first) / 1000,
        });
        ts += step_ms;
        i += 1;
    }
    out
}

pub async fn run(settings: &Settings, args: &SeedArgs) -> anyhow::Result<SeedReport> {
    let username =
        Username::parse(&args.username).map_err(|e| anyhow::anyhow!("--username: {e}"))?;
    let password =
        Password::parse_new(&args.password).map_err(|e| anyhow::anyhow!("--password: {e}"))?;
    if args.step_secs == 0 || args.hours == 0 || args.hours > 24 * 31 {
        bail!("--step-secs must be positive and --hours between 1 and 744");
    }
    let store: Arc<dyn Store> = crate::store::connect(settings).await?;
    let now = now_ms();
    let host_id = store
        .upsert_host(&crate::collect::local_hostname(), now)
        .await?;
    let hasher = Hasher::new(1)?;

    let user = match store.user_by_name(username.as_str()).await? {
        Some(u) => u,
        None => {
            let hash = hasher.hash(password.expose()).await?;
            match store.create_user(username.as_str(), &hash, now).await {
                Ok(u) => u,
                // Another seed raced us; use theirs.
                Err(StoreError::Conflict) => store
                    .user_by_name(username.as_str())
                    .await?
                    .context("demo user vanished")?,
                Err(e) => return Err(e.into()),
            }
        }
    };

    let samples = demo_samples(host_id, now, args.hours, i64::from(args.step_secs) * 1000);
    let window_start = samples.first().map_or(now, |s| s.ts);
    for chunk in samples.chunks(1000) {
        store.insert_samples(chunk).await?;
    }

    // Alerts come from the real engine, but only for a window that has none yet, so a
    // second run does not duplicate them.
    let existing = store.list_alerts(user.id, 1).await?;
    let mut alerts = 0;
    if existing.first().is_none_or(|a| a.ts < window_start) {
        // Replaying history: record the alerts, notify nobody.
        let mut engine = AlertEngine::for_host(store.clone(), host_id)
            .await?
            .silent();
        // Ten minutes of samples per round: each round is a transaction, and a commit per
        // sample made a 30-day seed at 1 s take most of an hour on PostgreSQL. Samples are
        // still judged one by one at their own time; only repeat reminders (silent here)
        // see the round's end as the clock.
        for chunk in samples.chunks(600) {
            let now = chunk.last().map_or(window_start, |s| s.ts);
            let transitions = engine.observe(chunk, now).await?;
            alerts += transitions
                .iter()
                .filter(|t| matches!(t, crate::alerts::Change::Fired { .. }))
                .count();
        }
    }

    let (token, token_hash) = tokens::generate();
    let ttl = i64::try_from(settings.token_ttl_minutes.saturating_mul(60_000)).unwrap_or(i64::MAX);
    let expires = now.saturating_add(ttl);
    store
        .insert_token(&NewToken {
            token_hash,
            user_id: user.id,
            name: "seed".into(),
            created_at: now,
            expires_at: expires,
        })
        .await?;
    store.close().await;
    Ok(SeedReport {
        username: username.as_str().to_owned(),
        password: args.password.clone(),
        token,
        expires_at: format_rfc3339(expires),
        samples: samples.len(),
        alerts,
    })
}
