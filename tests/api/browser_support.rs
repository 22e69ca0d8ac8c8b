//! Real-browser harness for the dashboard tests: a chromedriver of our own (in its own
//! process group, killed with everything it started on drop), a headless Chromium session
//! through fantoccini, and bounded polling helpers.
//!
//! Chromium and chromedriver come from the system (`apt-get install chromium
//! chromium-driver`). Without chromedriver the browser tests print why and pass, unless
//! `WATCHPOST_REQUIRE_BROWSER=1` (CI) makes that a failure. `WATCHPOST_CHROMEDRIVER` and
//! `WATCHPOST_CHROMIUM` override the binaries' paths.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REQUIRE_ENV: &str = "WATCHPOST_REQUIRE_BROWSER";
const DRIVER_ENV: &str = "WATCHPOST_CHROMEDRIVER";
const CHROMIUM_ENV: &str = "WATCHPOST_CHROMIUM";

/// How long any single wait for the page may take.
pub const WAIT: Duration = Duration::from_secs(10);

fn require_browser() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The first existing file among the override and the usual places, then `$PATH`.
fn locate(env: &str, candidates: &[&str], path_name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let from_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(path_name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    candidates
        .iter()
        .map(PathBuf::from)
        .chain(from_path)
        .find(|p| p.is_file())
}

fn not_found(env: &str, what: &str) -> String {
    match std::env::var(env) {
        Ok(v) if !v.is_empty() => format!("{env}={v} is not a file"),
        _ => format!("{what} not found (looked in /usr/bin and $PATH)"),
    }
}

/// Skips (returns `None` after saying why) or, with `WATCHPOST_REQUIRE_BROWSER=1`, panics.
fn unavailable(reason: &str) -> Option<Browser> {
    if require_browser() {
        panic!("{REQUIRE_ENV}=1 but the browser tests cannot run: {reason}");
    }
    // Straight to stderr so libtest's capture does not hide the reason.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED browser test: {reason}. Install them with `apt-get install chromium chromium-driver` \
         (or set {DRIVER_ENV}/{CHROMIUM_ENV}); set {REQUIRE_ENV}=1 to make this a failure."
    );
    None
}

/// A chromedriver process group; dropping it kills chromedriver and every Chromium process
/// it started, even when the test panicked.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // process_group(0) made the child's pid its process group id.
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// chromedriver answers `/status` but keeps the connection open: read with a short timeout
/// and look for `"ready":true` in what arrived.
async fn driver_ready(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).replace(' ', "");
            if text.contains("\"ready\":true") {
                return Some(());
            }
        }
        None
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Some(()))
    )
}

/// A headless Chromium session. Call [`Browser::close`] at the end of a test; on a panic
/// the drop of the driver kills the processes instead.
pub struct Browser {
    pub client: Client,
    driver: Driver,
    // Removed after the driver (declared later, dropped later).
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium, or `None` (skip) when they are
    /// not installed and not required.
    pub async fn start() -> Option<Browser> {
        let Some(driver_bin) = locate(
            DRIVER_ENV,
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
            "chromedriver",
        ) else {
            return unavailable(&not_found(DRIVER_ENV, "chromedriver"));
        };
        let Some(chromium) = locate(
            CHROMIUM_ENV,
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
            "chromium",
        ) else {
            return unavailable(&not_found(CHROMIUM_ENV, "chromium"));
        };
        let profile = tempfile::tempdir().expect("temp dir for the Chromium profile");
        let port = free_port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(&driver_bin)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", driver_bin.display()))
        };
        let driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !driver_ready(port).await {
            assert!(
                Instant::now() < deadline,
                "chromedriver on port {port} not ready after 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--window-size=1280,900",
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {"session": {"restore_on_startup": 4, "startup_urls": ["about:blank"]}},
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        // Two rustls providers are compiled into the tests (see Cargo.toml): name one.
        // Err means another test installed it already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientBuilder::rustls()
                .expect("rustls connector")
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .expect("Chromium session not created within 30 s")
        .unwrap_or_else(|e| panic!("creating the Chromium session: {e}"));
        Some(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Ends the WebDriver session (Chromium exits); the driver dies on drop.
    pub async fn close(self) {
        let Browser {
            client,
            driver,
            _profile,
        } = self;
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        drop(driver);
    }

    /// Console entries Chromium logged since the last call (`goog:loggingPrefs`), or
    /// `None` when this chromedriver does not offer the log endpoint.
    pub async fn console_log(&self) -> Option<Vec<Value>> {
        let id = self.client.session_id().await.ok()??;
        let url = format!("http://127.0.0.1:{}/session/{id}/se/log", self.driver.port);
        let resp = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .ok()?
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let body: Value = resp.json().await.ok()?;
        body["value"].as_array().cloned()
    }

    /// Errors in the console other than failed network loads (4xx pages are expected):
    /// script exceptions and Content-Security-Policy violations.
    pub async fn console_errors(&self) -> Vec<String> {
        let Some(entries) = self.console_log().await else {
            let _ = writeln!(
                std::io::stderr(),
                "note: chromedriver has no log endpoint; console not checked"
            );
            return Vec::new();
        };
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE" || e["message"].as_str().is_some_and(is_csp_message))
            .filter(|e| e["source"] != "network")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .filter(|m| !m.contains("Failed to load resource"))
            .collect()
    }

    pub async fn goto(&self, base: &str, path: &str) {
        let url = format!("{base}{path}");
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    /// The path (and query) of the current page.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits for an element to exist and be displayed.
    pub async fn find(&self, css: &str) -> Element {
        let c = &self.client;
        wait_for(&format!("element {css:?}"), async || {
            let e = c.find(Locator::Css(css)).await?;
            anyhow::ensure!(e.is_displayed().await?, "present but hidden");
            Ok(e)
        })
        .await
    }

    /// Waits for an element whose text contains `text`.
    pub async fn find_text(&self, css: &str, text: &str) -> Element {
        let c = &self.client;
        wait_for(
            &format!("element {css:?} containing {text:?}"),
            async || {
                for e in c.find_all(Locator::Css(css)).await? {
                    if e.text().await?.contains(text) {
                        return Ok(e);
                    }
                }
                anyhow::bail!("no match yet")
            },
        )
        .await
    }

    /// Replaces an input's value by typing.
    pub async fn fill(&self, css: &str, value: &str) {
        let input = self.find(css).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clearing {css}: {e}"));
        input
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("clicking {css}: {err}"));
    }

    /// Runs a script and returns its result.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Saves a PNG of the page (the viewport grown to the page's height, at most 2400 px)
    /// to `rel` under the crate root.
    pub async fn screenshot(&self, rel: &str) -> PathBuf {
        let dims = self
            .js("return [Math.ceil(document.documentElement.scrollHeight), window.outerHeight - window.innerHeight];")
            .await;
        let page = dims[0].as_u64().unwrap_or(900).clamp(900, 2400);
        let chrome = dims[1].as_u64().unwrap_or(0).min(400);
        let (w, h) = self.client.get_window_size().await.expect("window size");
        let _ = self
            .client
            .set_window_size(1280, u32::try_from(page + chrome).unwrap_or(900))
            .await;
        // Let layout settle at the new size.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self.client.screenshot().await.expect("screenshot");
        let _ = self
            .client
            .set_window_size(
                u32::try_from(w).unwrap_or(1280),
                u32::try_from(h).unwrap_or(900),
            )
            .await;
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        // The README's screenshots are refreshed only on request
        // (WATCHPOST_UPDATE_SCREENSHOTS=1), so a plain test run leaves the tree clean.
        let base = if std::env::var_os("WATCHPOST_UPDATE_SCREENSHOTS").is_some() {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        } else {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        };
        let path = base.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("screenshot dir");
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

fn is_csp_message(m: &str) -> bool {
    m.contains("Content Security Policy") || m.contains("Content-Security-Policy")
}

/// Retries `f` until it succeeds, for at most [`WAIT`]; panics with the last error.
pub async fn wait_for<T>(what: &str, f: impl AsyncFnMut() -> anyhow::Result<T>) -> T {
    wait_for_within(WAIT, what, f).await
}

pub async fn wait_for_within<T>(
    limit: Duration,
    what: &str,
    mut f: impl AsyncFnMut() -> anyhow::Result<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("timed out after {limit:?} waiting for {what}: {e:#}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs `f` with a deadline; used to keep whole journeys bounded.
pub async fn bounded<F: Future>(limit: Duration, what: &str, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}
