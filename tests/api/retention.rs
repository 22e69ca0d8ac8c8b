//! Retention: each tier loses exactly its rows past their age, in batches, on both engines,
//! and two replicas pruning at once agree.

use crate::helpers::*;
use watchpost::config::{Retention, RetentionSettings};
use watchpost::store::{Sample, Tier};
use watchpost::tasks::retention::{step, RetentionReport};

const HOUR: i64 = 3_600_000;

/// Rows of every tier, per host, stamped before and from a cutoff.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Split {
    older: i64,
    kept: i64,
}

/// What a tier holds for `samples`: distinct bucket starts (sample times for raw).
fn keys(samples: &[Sample], step: i64) -> Vec<(i64, i64)> {
    let mut k: Vec<(i64, i64)> = samples
        .iter()
        .map(|s| (s.host_id, s.ts.div_euclid(step) * step))
        .collect();
    k.sort();
    k.dedup();
    k
}

fn split(keys: &[(i64, i64)], cutoff: i64) -> Split {
    let older = keys.iter().filter(|k| k.1 < cutoff).count() as i64;
    Split {
        older,
        kept: keys.len() as i64 - older,
    }
}

async fn rows(db: &RawDb, table: &str, time: &str, cutoff: i64) -> Split {
    Split {
        older: db
            .scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {time} < {cutoff}"
            ))
            .await,
        kept: db
            .scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {time} >= {cutoff}"
            ))
            .await,
    }
}

/// Two hosts: dense raw samples for the last four hours (10 s apart; 20 s for the second
/// host), one a millisecond before the raw cutoff, and a sample a minute (two for the
/// second host) for three days before that. Every cutoff falls on a sample of each host.
fn data(hosts: [i64; 2], now: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    for (h, host) in hosts.into_iter().enumerate() {
        let stretch = h + 1;
        let dense = (now - 4 * HOUR..now).step_by(10_000 * stretch);
        let sparse = (now - 76 * HOUR..now - 4 * HOUR).step_by(60_000 * stretch);
        for ts in dense.chain(sparse).chain([now - 2 * HOUR - 1]) {
            out.push(sample(host, ts, (ts / 1000 % 100) as f64, 50.0));
        }
    }
    out.sort_by_key(|s| (s.host_id, s.ts));
    out
}

fn settings() -> RetentionSettings {
    RetentionSettings {
        raw: Retention::hours(2),
        minute: Retention::days(1),
        hour: Retention::days(2),
        // Far fewer rows than each tier deletes: many batches per tier.
        batch_rows: 20,
        pause: std::time::Duration::ZERO,
    }
}

async fn insert(app: &TestApp, samples: &[Sample]) {
    for chunk in samples.chunks(2000) {
        app.insert_samples(chunk).await;
    }
}

async fn assert_pruned(app: &TestApp, samples: &[Sample], now: i64, report: RetentionReport) {
    let cfg = settings();
    let db = RawDb::connect(&app.database_url).await;
    for (tier, table, time, keep, deleted) in [
        (Tier::Raw, "samples", "ts", cfg.raw, report.raw),
        (
            Tier::Minute,
            "samples_1m",
            "bucket",
            cfg.minute,
            report.minute,
        ),
        (Tier::Hour, "samples_1h", "bucket", cfg.hour, report.hour),
    ] {
        let cutoff = now - keep.as_ms().unwrap();
        let expected = split(&keys(samples, tier.step_ms()), cutoff);
        assert!(
            expected.older > cfg.batch_rows as i64,
            "{tier:?}: test data too small"
        );
        assert_eq!(deleted as i64, expected.older, "{tier:?}: rows deleted");
        let left = rows(&db, table, time, cutoff).await;
        assert_eq!(
            left,
            Split {
                older: 0,
                kept: expected.kept
            },
            "{tier:?}"
        );
        // Nothing younger went: the oldest row left is the one exactly at the cutoff.
        for host in [samples[0].host_id, samples[samples.len() - 1].host_id] {
            assert_eq!(
                app.store.oldest_in_tier(host, tier).await.unwrap(),
                Some(cutoff),
                "{tier:?} host {host}"
            );
        }
    }
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_exactly_the_rows_past_their_age() {
    let app = spawn_app().await;
    let other = app.store.upsert_host("other", now_ms()).await.unwrap();
    let now = now_ms() / HOUR * HOUR;
    let samples = data([app.local_host_id, other], now);
    insert(&app, &samples).await;

    // One statement deletes no more than its limit.
    let cutoff = now - settings().raw.as_ms().unwrap();
    assert_eq!(
        app.store
            .delete_samples_before(Tier::Raw, cutoff, 7)
            .await
            .unwrap(),
        7
    );
    let mut report = step(app.store.as_ref(), now, &settings()).await.unwrap();
    report.raw += 7;
    assert_pruned(&app, &samples, now, report).await;

    // A second pass finds nothing to do.
    let again = step(app.store.as_ref(), now, &settings()).await.unwrap();
    assert_eq!(again, RetentionReport::default());

    // A tier that is off keeps everything.
    let off = RetentionSettings {
        raw: Retention::OFF,
        minute: Retention::OFF,
        hour: Retention::OFF,
        ..settings()
    };
    let later = now + 30 * 24 * HOUR;
    assert_eq!(
        step(app.store.as_ref(), later, &off).await.unwrap(),
        RetentionReport::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_pruning_at_once_share_the_work() {
    let app = spawn_app().await;
    let other = app.store.upsert_host("other", now_ms()).await.unwrap();
    let now = now_ms() / HOUR * HOUR;
    let samples = data([app.local_host_id, other], now);
    insert(&app, &samples).await;

    let cfg = settings();
    let (a, b) = tokio::join!(
        step(app.store.as_ref(), now, &cfg),
        step(app.store.as_ref(), now, &cfg)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    // A replica that loses a race stops early; the rows are gone all the same.
    let leftover = step(app.store.as_ref(), now, &cfg).await.unwrap();
    let total = RetentionReport {
        raw: a.raw + b.raw + leftover.raw,
        minute: a.minute + b.minute + leftover.minute,
        hour: a.hour + b.hour + leftover.hour,
    };
    assert_pruned(&app, &samples, now, total).await;
}
