//! The dashboard in a real headless Chromium: one user's journey through every page, with
//! htmx polling, CSRF-protected forms, sessions and the strict CSP all live. Also saves the
//! screenshots in docs/screenshots/.
//!
//! Needs `chromium` and `chromedriver` (see browser_support.rs); skipped without them
//! unless `WATCHPOST_REQUIRE_BROWSER=1`.

use crate::browser_support::{bounded, wait_for, wait_for_within, Browser};
use crate::helpers::*;
use fantoccini::Locator;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use watchpost::config::Secret;
use watchpost::store::{Sample, Store};
use watchpost::tasks::alerting::AlertEngine;

const BROWSER_ADMIN_TOKEN: &str = "browser-admin-token-0123456789";
const SECOND_HOST: &str = "db-01";

/// Deterministic noise in [0, 1) so the screenshots are reproducible in shape.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The shape of a host's seeded history. The local host's is centred on what its real
/// collector reports, so the seeded lines run on into the live ones without a jump.
struct Profile {
    cpu: f64,
    cpu_swing: f64,
    /// Seconds into the window (as `[from, to)`) where CPU breaches 80 %.
    cpu_bursts: &'static [(f64, f64)],
    memory: f64,
    /// Where memory breaches 75 %.
    memory_burst: Option<(f64, f64)>,
    memory_total: i64,
    swap: f64,
    disk: f64,
    load: f64,
    rx: f64,
    tx: f64,
    uptime: i64,
}

impl Profile {
    fn busy() -> Profile {
        Profile {
            cpu: 55.0,
            cpu_swing: 12.0,
            cpu_bursts: &[(420.0, 450.0), (860.0, f64::INFINITY)],
            memory: 64.0,
            memory_burst: None,
            memory_total: 64_000_000_000,
            swap: 4.0,
            disk: 71.0,
            load: 3.0,
            rx: 4.0e6,
            tx: 2.5e6,
            uptime: 3 * 86_400,
        }
    }

    fn like(real: &Sample) -> Profile {
        Profile {
            cpu: 32.0,
            cpu_swing: 16.0,
            cpu_bursts: &[(240.0, 262.0), (540.0, 556.0), (780.0, 792.0)],
            memory: real.memory.clamp(5.0, 66.0),
            memory_burst: Some((650.0, 700.0)),
            memory_total: real.memory_total,
            swap: real.swap,
            disk: real.disk,
            load: real.load1.max(0.2),
            rx: real.net_rx_bps,
            tx: real.net_tx_bps,
            uptime: (real.uptime - 900).max(0),
        }
    }

    /// The sample `secs` seconds into the 15-minute window (900 = now).
    fn at(&self, host_id: i64, ts: i64, secs: f64, n: &mut Noise) -> Sample {
        use std::f64::consts::TAU;
        let wave = (TAU * secs / 300.0).sin();
        let mut cpu = self.cpu + self.cpu_swing * wave + 8.0 * n.next();
        if self.cpu_bursts.iter().any(|&(a, b)| secs >= a && secs < b) {
            cpu = 84.0 + 10.0 * n.next();
        }
        let mut memory = self.memory + 4.0 * (TAU * secs / 600.0).sin() + 1.5 * n.next();
        if self
            .memory_burst
            .is_some_and(|(a, b)| secs >= a && secs < b)
        {
            memory = 77.0 + 4.0 * n.next();
        }
        Sample {
            host_id,
            ts,
            cpu,
            memory,
            memory_total: self.memory_total,
            memory_used: (self.memory_total as f64 * memory / 100.0) as i64,
            swap: if self.swap > 0.0 {
                self.swap + 0.5 * n.next()
            } else {
                0.0
            },
            load1: self.load * (0.6 + cpu / 100.0) + 0.2 * n.next(),
            load5: self.load * (0.6 + self.cpu / 100.0),
            load15: self.load,
            disk: (self.disk - 0.002 * (900.0 - secs)).max(0.0),
            net_rx_bps: self.rx * (1.0 + 0.5 * wave + 0.6 * n.next()),
            net_tx_bps: self.tx * (1.0 + 0.4 * n.next()),
            processes: 180,
            uptime: self.uptime + secs as i64,
            ..Default::default()
        }
    }
}

/// Stores 15 minutes of varied samples per host (one every 2 s, ending just before now)
/// and runs them through the real alert engine, which raises a handful of alerts.
async fn seed_history(app: &TestApp, second: i64) {
    let store = &app.store;
    let local = app.local_host_id;
    let real = wait_for("the collector's first sample", async || {
        let s = store.recent_samples(local, 1).await?;
        s.into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("none yet"))
    })
    .await;
    let now = now_ms();
    let start = now - 15 * 60_000;
    let mut engine = AlertEngine::new(store.clone()).await.expect("alert engine");
    let mut noise = Noise(0x5eed);
    for (host, profile) in [(local, Profile::like(&real)), (second, Profile::busy())] {
        let samples: Vec<Sample> = (0..450)
            .map(|i| {
                profile.at(
                    host,
                    start + i64::from(i) * 2000,
                    f64::from(i) * 2.0,
                    &mut noise,
                )
            })
            .collect();
        store
            .insert_samples(&samples)
            .await
            .expect("insert history");
        for chunk in samples.chunks(30) {
            let at = chunk.last().expect("chunk").ts;
            engine.observe(chunk, at).await.expect("observe");
        }
    }
}

/// The second host's sample at `ts`, continuing its seeded history.
fn second_host_sample(host: i64, ts: i64, t0: i64, noise: &mut Noise) -> Sample {
    Profile::busy().at(host, ts, 900.0 + (ts - t0) as f64 / 1000.0, noise)
}

/// Keeps the second host reporting (so its card says "up") until aborted.
fn keep_reporting(store: Arc<dyn Store>, host: i64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut noise = Noise(7);
        let t0 = now_ms();
        loop {
            let s = second_host_sample(host, now_ms(), t0, &mut noise);
            let _ = store.insert_samples(&[s]).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// A web server's log for the Logs page: an hour of mixed levels with an error burst,
/// and lines whose text is markup that must never become markup.
fn journey_log() -> String {
    let mut s = String::new();
    for i in 0..360u32 {
        let t = 10 * 3600 + i * 10;
        let ts = format!(
            "2026-11-27 {:02}:{:02}:{:02},{:03}",
            t / 3600,
            t / 60 % 60,
            t % 60,
            (i * 37) % 1000
        );
        let burst = (150..190).contains(&i);
        let line = match i % 12 {
            _ if burst && i % 2 == 0 => format!(
                "{ts} - api - ERROR - Connection refused to 10.0.0.{}:5432 after {} ms",
                i % 7,
                20 + i % 13
            ),
            0 | 5 => format!(
                "{ts} - api - ERROR - Connection refused to 10.0.0.{}:5432 after {} ms",
                i % 7,
                20 + i % 13
            ),
            3 | 9 => format!("{ts} - api - WARNING - slow query took {} ms", 900 + i),
            7 => format!("{ts} - worker - INFO - started worker {}", i % 9),
            11 => format!(
                "{ts} - auth - CRITICAL - token store unreachable after {} retries",
                i % 5
            ),
            _ => format!(
                "{ts} - api - INFO - GET /api/items/{i} answered 200 in {} ms",
                i % 40
            ),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str(crate::logs_store::XSS_LOG);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_journey_in_a_real_browser() {
    let started = Instant::now();
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        s.collector = true;
        s.interval_ms = 200;
        s.admin_token = Some(Secret::new(BROWSER_ADMIN_TOKEN));
        // The journey's webhook receiver listens on loopback.
        s.allow_private_webhooks = true;
    })
    .await;
    let receiver = crate::receivers::WebhookReceiver::start().await;
    let second = app
        .store
        .upsert_host(SECOND_HOST, now_ms())
        .await
        .expect("second host");
    seed_history(&app, second).await;
    let feeder = keep_reporting(app.store.clone(), second);

    bounded(
        Duration::from_secs(90),
        "the browser journey",
        journey(&app, &browser, second, &receiver),
    )
    .await;

    feeder.abort();
    browser.close().await;
    eprintln!(
        "browser journey took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn journey(
    app: &TestApp,
    b: &Browser,
    second: i64,
    receiver: &crate::receivers::WebhookReceiver,
) {
    let base = app.base_url.as_str();
    let local = app.local_host_id;

    // --- Not logged in: the dashboard sends us to the login page.
    b.goto(base, "/dashboard").await;
    b.find_text("main h1", "Log in").await;
    assert_eq!(b.path().await, "/dashboard/login");

    // --- Register through the form; the session cookie logs us in.
    b.click("main a[href=\"/dashboard/register\"]").await;
    b.find_text("main h1", "Create an account").await;
    let username = unique_username("browser");
    b.fill("#username", &username).await;
    b.fill("#password", PASSWORD).await;
    b.click("main form button.primary").await;
    b.find_text("main h1", "Hosts").await;
    assert_eq!(b.path().await, "/dashboard");
    assert_eq!(b.find(".who .user").await.text().await.unwrap(), username);
    let user_id = app
        .store
        .user_by_name(&username)
        .await
        .unwrap()
        .expect("the form created the user")
        .id;

    // --- Overview: a card per host, each with its SVG charts.
    let card = format!("#host-{local}");
    b.find_text(&format!("{card} h2"), &app.local_host).await;
    b.find_text(&format!("#host-{second} h2"), SECOND_HOST)
        .await;
    let svgs = b
        .client
        .find_all(Locator::Css(&format!("{card} figure.chart svg")))
        .await
        .unwrap();
    assert_eq!(svgs.len(), 7, "one chart per metric");
    let lines = b
        .client
        .find_all(Locator::Css(&format!("{card} .chart-line")))
        .await
        .unwrap();
    assert!(
        lines.len() >= 5,
        "charts with data draw a line; got {}",
        lines.len()
    );
    assert_eq!(
        b.find(&format!("{card} .status"))
            .await
            .text()
            .await
            .unwrap(),
        "up"
    );
    assert_eq!(
        b.find("a.chip.selected").await.text().await.unwrap(),
        "1 hour"
    );
    let cpu_svg = format!("{card} figure.chart:nth-child(1) svg");
    let aria_1h = b
        .find(&cpu_svg)
        .await
        .attr("aria-label")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(aria_1h.starts_with("CPU over the 1 h ending"), "{aria_1h}");

    // --- Live charts: htmx replaces each card every 2 s; new samples show in the next poll.
    // Polls are counted per host; the marker proves the page itself is never reloaded.
    b.js(
        "window.__wpMarker = 'same document'; window.__wpPolls = {};\
         document.addEventListener('htmx:afterRequest', function (e) {\
           var m = /[?&]host=(\\d+)/.exec(e.detail.pathInfo && e.detail.pathInfo.requestPath || '');\
           if (e.detail.successful && m) { window.__wpPolls[m[1]] = (window.__wpPolls[m[1]] || 0) + 1; }\
         });\
         return true;",
    )
    .await;
    let polls = async |host: i64| -> anyhow::Result<u64> {
        let v = b
            .client
            .execute(
                "return window.__wpPolls[arguments[0]] || 0;",
                vec![host.to_string().into()],
            )
            .await?;
        v.as_u64()
            .ok_or_else(|| anyhow::anyhow!("no poll counter: {v}"))
    };
    let attr = async |css: &str, name: &str| -> anyhow::Result<String> {
        let e = b.client.find(Locator::Css(css)).await?;
        e.attr(name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{css} has no {name}"))
    };
    let text = async |css: &str| -> anyhow::Result<String> {
        Ok(b.client.find(Locator::Css(css)).await?.text().await?)
    };
    let next_poll = async |host: i64, after: u64| {
        wait_for_within(
            Duration::from_secs(6),
            &format!("an htmx poll of host {host}"),
            async || {
                let n = polls(host).await?;
                anyhow::ensure!(n > after, "no new poll yet");
                Ok(n)
            },
        )
        .await
    };
    let local_cpu = format!("{card} figure.chart:nth-child(1) .chart-line");
    let second_cpu = format!("#host-{second} figure.chart:nth-child(1)");
    let local_seen = next_poll(local, 0).await;
    let second_seen = next_poll(second, 0).await;
    let local_before = wait_for("the CPU line", async || attr(&local_cpu, "d").await).await;
    let second_before = wait_for("the CPU chart", async || text(&second_cpu).await).await;
    assert!(!second_before.contains("max 97.5 %"), "{second_before}");
    // A CPU value above anything seeded (at most 94 %): it has to show up in the next render.
    let now = now_ms();
    let spike = Sample {
        cpu: 97.5,
        ..second_host_sample(second, now + 3, now, &mut Noise(1))
    };
    app.insert_samples(&[spike]).await;
    next_poll(local, local_seen).await;
    next_poll(second, second_seen).await;
    let local_after = wait_for("the CPU line", async || attr(&local_cpu, "d").await).await;
    assert_ne!(
        local_before, local_after,
        "the CPU line of {} did not change between polls",
        app.local_host
    );
    let second_after = wait_for("the CPU chart", async || text(&second_cpu).await).await;
    assert!(
        second_after.contains("max 97.5 %"),
        "the new sample is not in the CPU chart: {second_after}"
    );
    let line = wait_for("the CPU line", async || {
        attr(&format!("{second_cpu} .chart-line"), "d").await
    })
    .await;
    assert!(line.starts_with('M'), "{line}");
    assert_eq!(
        b.js("return window.__wpMarker;").await,
        "same document",
        "the page reloaded instead of swapping the cards"
    );

    // --- Range picker: "15 min" re-renders the charts over 15 minutes.
    b.client
        .find(Locator::LinkText("15 min"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the 15 min range to be selected", async || {
        let chip = b.client.find(Locator::Css("a.chip.selected")).await?;
        anyhow::ensure!(chip.text().await? == "15 min", "still the old range");
        Ok(())
    })
    .await;
    assert!(
        b.path().await.contains("range=15m"),
        "URL: {}",
        b.path().await
    );
    let aria_15m = b
        .find(&cpu_svg)
        .await
        .attr("aria-label")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        aria_15m.starts_with("CPU over the 15 min ending"),
        "{aria_15m}"
    );
    let hx = b
        .find(&card)
        .await
        .attr("hx-get")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        hx.contains("range=15m"),
        "the card keeps polling the old range: {hx}"
    );
    // Let every chart settle, then photograph the overview.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shot = b.screenshot("docs/screenshots/overview.png").await;
    eprintln!("saved {}", shot.display());

    // --- My thresholds: an invalid value shows the inline error, a valid one is saved.
    b.click("nav a[href=\"/dashboard/thresholds\"]").await;
    b.find_text("main h1", "My thresholds").await;
    b.fill("#cpu_threshold", "150").await;
    b.click("#thresholds-form button[type=submit]").await;
    let err = b.find("#cpu-error").await;
    assert!(
        err.text().await.unwrap().contains("between 0 and 100"),
        "error text"
    );
    let input = b.find("#cpu_threshold").await;
    assert_eq!(
        input.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        input.prop("value").await.unwrap().as_deref(),
        Some("150"),
        "the bad value is kept for editing"
    );
    assert_eq!(
        app.store.user_thresholds(user_id).await.unwrap(),
        None,
        "nothing saved"
    );
    b.fill("#cpu_threshold", "42").await;
    b.click("#thresholds-form button[type=submit]").await;
    b.find_text("#thresholds-form .notice", "Saved").await;
    let input = b.find("#cpu_threshold").await;
    assert_eq!(input.prop("value").await.unwrap().as_deref(), Some("42"));
    assert!(b
        .client
        .find_all(Locator::Css("#cpu-error"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        app.store
            .user_thresholds(user_id)
            .await
            .unwrap()
            .map(|t| t.cpu),
        Some(42.0)
    );

    // --- API tokens: create one, see it once, use it, revoke it.
    b.click("nav a[href=\"/dashboard/tokens\"]").await;
    b.find_text("main h1", "API tokens").await;
    b.fill("#token-name", "ci").await;
    b.click("form.row-form button.primary").await;
    let token = b
        .find("#new-token")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(token.len(), 64, "token {token:?}");
    assert!(
        token.bytes().all(|c| c.is_ascii_hexdigit()),
        "token {token:?}"
    );
    let rows = b
        .client
        .find_all(Locator::Css("#tokens tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].text().await.unwrap().starts_with("ci"),
        "{}",
        rows[0].text().await.unwrap()
    );
    assert_eq!(
        app.get("/alerts", &token).await.status(),
        StatusCode::OK,
        "the new token works"
    );
    b.click("#tokens button.danger").await;
    wait_for("the revoked token to leave the list", async || {
        anyhow::ensure!(
            b.client.find_all(Locator::Css("#tokens")).await?.is_empty(),
            "still listed"
        );
        let text = b.client.find(Locator::Css("main")).await?.text().await?;
        anyhow::ensure!(text.contains("No active tokens."), "no empty-state text");
        Ok(())
    })
    .await;
    assert!(b
        .client
        .find_all(Locator::Css("#new-token"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        app.get("/alerts", &token).await.status(),
        StatusCode::UNAUTHORIZED,
        "revoked"
    );

    // --- Alerts raised by the engine from the seeded history.
    b.click("nav a[href=\"/dashboard/alerts\"]").await;
    b.find_text("main h1", "Alerts").await;
    let rows = wait_for("alert rows", async || {
        let rows = b
            .client
            .find_all(Locator::Css("#alerts-table tbody tr"))
            .await?;
        anyhow::ensure!(rows.len() >= 4, "{} rows", rows.len());
        Ok(rows)
    })
    .await;
    let mut texts = Vec::new();
    for r in &rows {
        texts.push(r.text().await.unwrap());
    }
    assert!(texts.iter().any(|t| t.contains("firing")), "{texts:#?}");
    assert!(texts.iter().any(|t| t.contains("resolved")), "{texts:#?}");
    assert!(texts.iter().any(|t| t.contains(SECOND_HOST)), "{texts:#?}");
    assert!(texts.iter().any(|t| t.starts_with("memory")), "{texts:#?}");
    let shot = b.screenshot("docs/screenshots/alerts.png").await;
    eprintln!("saved {}", shot.display());

    // --- Admin: elevate with ADMIN_TOKEN, change the global CPU threshold.
    b.click("nav a[href=\"/dashboard/admin\"]").await;
    b.find_text("main h1", "Admin").await;
    b.fill("#admin_token", BROWSER_ADMIN_TOKEN).await;
    b.click("main form button.primary").await;
    b.find_text("main h1", "Global thresholds").await;
    assert_eq!(b.path().await, "/dashboard/admin");
    b.find_text("nav a[href=\"/dashboard/admin\"]", "✓").await;
    b.find_text("#users td", &username).await;
    b.fill("#cpu_threshold", "85").await;
    b.click("#thresholds-form button[type=submit]").await;
    b.find_text("#thresholds-form .notice", "Saved: CPU 85 %")
        .await;
    assert_eq!(app.store.global_thresholds().await.unwrap().cpu, 85.0);
    assert_eq!(
        b.find("#cpu_threshold")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("85")
    );
    let shot = b.screenshot("docs/screenshots/admin.png").await;
    eprintln!("saved {}", shot.display());

    // --- Rules: create one through the form; it lands in the API with every field.
    b.click("nav a[href=\"/dashboard/rules\"]").await;
    b.find_text("main h1", "Alert rules").await;
    b.click("a[href=\"/dashboard/rules/new\"]").await;
    b.js("document.querySelector('#rule-metric').value = 'disk'; return true;")
        .await;
    b.fill("#rule-name", "Disk filling up").await;
    b.fill("#rule-threshold", "90").await;
    b.fill("#rule-for", "5m").await;
    b.fill("#rule-hysteresis", "2").await;
    b.click("#rule-form button[type=submit]").await;
    b.find_text("main", "Disk filling up").await;
    let rules = app
        .store
        .list_rules(watchpost::store::Scope::All)
        .await
        .unwrap();
    let disk = rules
        .iter()
        .find(|r| r.name == "Disk filling up")
        .expect("rule created through the form");
    assert_eq!(
        (
            disk.metric.as_str(),
            disk.threshold,
            disk.for_secs,
            disk.hysteresis
        ),
        ("disk", 90.0, 300, 2.0)
    );
    let shot = b.screenshot("docs/screenshots/rules.png").await;
    eprintln!("saved {}", shot.display());

    // --- Channels: add a webhook, send a test; the receiver gets it, signed.
    b.click("nav a[href=\"/dashboard/channels\"]").await;
    b.find_text("main h1", "Notification channels").await;
    b.fill("#channel-name", "On-call hook").await;
    b.fill("#channel-url", &receiver.url()).await;
    b.click("#add-channel button[type=submit]").await;
    b.find_text("main", "On-call hook").await;
    b.click("form[action$=\"/test\"] button").await;
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "the test notification arrived");
    let channel = app
        .store
        .list_channels(watchpost::store::Scope::All)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "On-call hook")
        .expect("channel");
    assert!(crate::receivers::WebhookReceiver::verify(
        &got[0],
        channel.secret.as_deref().unwrap_or("")
    ));
    let shot = b.screenshot("docs/screenshots/channels.png").await;
    eprintln!("saved {}", shot.display());

    // --- Deliveries: the test shows as delivered with its attempt.
    b.click("nav a[href=\"/dashboard/deliveries\"]").await;
    b.find_text("main h1", "Deliveries").await;
    wait_for("the delivered test", async || {
        b.client.refresh().await?;
        let text = b.client.find(Locator::Css("main")).await?.text().await?;
        anyhow::ensure!(text.contains("delivered"), "{text}");
        Ok(())
    })
    .await;
    let shot = b.screenshot("docs/screenshots/deliveries.png").await;
    eprintln!("saved {}", shot.display());

    // --- Logs: upload a log full of markup through the real form; it shows as text only.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("web-01.log");
    std::fs::write(&file, journey_log()).expect("writing the log");
    b.click("nav a[href=\"/dashboard/logs\"]").await;
    b.find_text("main h1", "Log analysis").await;
    b.find("#log-file")
        .await
        .send_keys(file.to_str().expect("utf-8 path"))
        .await
        .expect("choosing the file");
    b.click("#upload button[type=submit]").await;
    b.find_text("main h1", "Log report: web-01.log").await;
    assert!(
        b.path().await.starts_with("/dashboard/logs/"),
        "{}",
        b.path().await
    );
    assert!(
        b.client.get_alert_text().await.is_err(),
        "the log opened an alert dialog"
    );
    let injected = b
        .js(r#"return document.querySelectorAll('img[src="x"], main script, [hx-get="/logout"], [onerror]').length;"#)
        .await;
    assert_eq!(injected, 0, "the log injected elements or attributes");
    let patterns = b
        .find("#patterns")
        .await
        .text()
        .await
        .expect("patterns text");
    for raw in crate::logs_store::XSS_RAW {
        assert!(
            patterns.contains(raw),
            "{raw:?} not shown as text: {patterns}"
        );
    }
    b.find("#histogram svg rect.hist-bar").await;
    let shot = b.screenshot("docs/screenshots/log_report.png").await;
    eprintln!("saved {}", shot.display());
    // The level filter is a plain link.
    b.click("#patterns a[href$=\"level=ERROR#patterns\"]").await;
    wait_for("the ERROR filter", async || {
        let text = b
            .client
            .find(Locator::Css("#patterns"))
            .await?
            .text()
            .await?;
        anyhow::ensure!(
            text.contains("Connection refused") && !text.contains("started worker"),
            "{text}"
        );
        Ok(())
    })
    .await;
    b.click("nav a[href=\"/dashboard/logs\"]").await;
    b.find_text("#analyses td a", "web-01.log").await;
    let shot = b.screenshot("docs/screenshots/logs.png").await;
    eprintln!("saved {}", shot.display());

    // --- Log out: the session is gone, the dashboard asks for a login again.
    b.find_text(".who button", "Log out")
        .await
        .click()
        .await
        .unwrap();
    wait_for("the login page after logging out", async || {
        let h1 = b.client.find(Locator::Css("main h1")).await?.text().await?;
        anyhow::ensure!(h1 == "Log in", "on {h1:?}");
        Ok(())
    })
    .await;
    assert_eq!(b.path().await, "/dashboard/login");
    b.goto(base, "/dashboard").await;
    b.find_text("main h1", "Log in").await;
    assert_eq!(
        b.path().await,
        "/dashboard/login",
        "still logged in after logging out"
    );
    b.goto(base, "/dashboard/tokens").await;
    b.find_text("main h1", "Log in").await;
    assert_eq!(b.path().await, "/dashboard/login");

    // --- No script errors and no Content-Security-Policy violations anywhere.
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
