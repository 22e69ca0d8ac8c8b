//! The dashboard pages for alert rules, notification channels and the delivery log, over
//! HTTP: forms that create, change and delete through the same validation as the API,
//! inline errors (422) that keep the input, ownership (other users' items are 404
//! pages), managed threshold rules, SSRF refusals, test sends, dead letters sent again,
//! CSRF, and escaping.

use crate::helpers::*;
use crate::pages::{
    assert_csp_clean_markup, assert_redirect, assert_to_login, attr_after, body_with_status,
    csrf_of, full_page, table_rows, unescape_html, Browser,
};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use watchpost::config::Settings;
use watchpost::store::{AttemptRecord, ChannelInput};

/// A dashboard app (cookies over http) with the given extra settings. The notification
/// worker is off: deliveries stay as the test leaves them.
async fn spawn_pages(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|s| {
        s.cookie_secure = false;
        s.notifier = false;
        configure(s);
    })
    .await
}

impl Browser<'_> {
    /// POSTs a form the way a browser does from our own page: same-origin fetch metadata
    /// and our Origin.
    async fn submit(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.app.url(path))
            .header("sec-fetch-site", "same-origin")
            .header("origin", self.app.base_url.as_str())
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Registers a fresh user through the form; returns (id, API token).
    async fn user_with_token(&self) -> (i64, String) {
        let (id, name) = self.register_new().await;
        (id, self.app.login(&name, PASSWORD).await)
    }

    /// Elevates the session to admin through the admin form.
    async fn elevate(&self) {
        let csrf = self.csrf("/dashboard/admin").await;
        let resp = self
            .submit(
                "/dashboard/admin",
                &[("csrf_token", &csrf), ("admin_token", ADMIN_TOKEN)],
            )
            .await;
        assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/admin");
    }
}

async fn api(app: &TestApp, path: &str, token: &str) -> Value {
    let mut req = app.client.get(app.url(path));
    req = if token == ADMIN_TOKEN {
        req.header("x-admin-token", token)
    } else {
        req.header("token", token)
    };
    json_with_status(req.send().await.expect("API GET"), StatusCode::OK).await
}

/// A complete, valid rule form (without the CSRF token).
fn rule_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("name", "Disk nearly full"),
        ("metric", "disk"),
        ("comparison", ">="),
        ("threshold", "90"),
        ("for", "5m"),
        ("hysteresis", "2.5"),
        ("keep_firing_for", "90"),
        ("repeat_interval", "1h"),
        ("severity", "critical"),
        ("hosts", "web1, web2,"),
        ("enabled", "on"),
    ]
}

fn with_csrf<'a>(csrf: &'a str, fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("csrf_token", csrf)];
    v.extend_from_slice(fields);
    v
}

/// Replaces (or adds) one field of a form.
fn set<'a>(fields: &[(&'a str, &'a str)], key: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut v: Vec<(&str, &str)> = fields.iter().filter(|(k, _)| *k != key).copied().collect();
    v.push((key, value));
    v
}

fn without<'a>(fields: &[(&'a str, &'a str)], key: &str) -> Vec<(&'a str, &'a str)> {
    fields.iter().filter(|(k, _)| *k != key).copied().collect()
}

/// The value attribute of the input with this `id`, decoded.
fn input_value(body: &str, id: &str) -> String {
    let marker = format!(r#"id="{id}""#);
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let tag = &body[start..start + body[start..].find('>').unwrap()];
    unescape_html(&attr_after(tag, r#"value=""#).unwrap_or_default())
}

/// The text of the `<p id="form-error">`, decoded.
fn form_error(body: &str) -> String {
    let start = body
        .find(r#"id="form-error""#)
        .unwrap_or_else(|| panic!("no form error in {body}"));
    let rest = &body[start..];
    let text = &rest[rest.find('>').unwrap() + 1..rest.find("</p>").unwrap()];
    unescape_html(text)
}

// ---------------------------------------------------------------------------------------
// Rules

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_rule_form_creates_edits_and_deletes() {
    let app = spawn_pages(|_| {}).await;
    let anon = Browser::new(&app);
    for path in [
        "/dashboard/rules",
        "/dashboard/rules/new",
        "/dashboard/channels",
        "/dashboard/deliveries",
    ] {
        assert_to_login(anon.get(path).await).await;
    }

    let b = Browser::new(&app);
    let (_, token) = b.user_with_token().await;
    let body = full_page(b.get("/dashboard/rules").await, StatusCode::OK, "rules").await;
    assert!(body.contains(r#"href="/dashboard/rules" aria-current="page">Rules</a>"#));
    assert!(body.contains(r#"href="/dashboard/channels" >Channels</a>"#));
    assert!(body.contains(r#"href="/dashboard/deliveries" >Deliveries</a>"#));
    assert!(body.contains("You have no rules yet"), "{body}");
    assert!(!body.contains("Global rules"), "{body}");

    let body = full_page(b.get("/dashboard/rules/new").await, StatusCode::OK, "new").await;
    for field in [
        "name",
        "metric",
        "comparison",
        "threshold",
        "for",
        "hysteresis",
        "keep_firing_for",
        "repeat_interval",
        "severity",
        "hosts",
        "enabled",
    ] {
        assert!(body.contains(&format!(r#"name="{field}""#)), "{field}");
    }
    assert!(body.contains(r#"<option value="load5" >Load average (5 min)</option>"#));
    assert!(
        !body.contains(r#"name="global""#),
        "global checkbox for a user"
    );
    assert!(body.contains("Hysteresis</strong>"));
    let csrf = csrf_of(&body);

    let resp = b
        .submit("/dashboard/rules/new", &with_csrf(&csrf, &rule_fields()))
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/rules");
    let rules = api(&app, "/rules", &token).await;
    let rules = rules.as_array().unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    let r = &rules[0];
    assert_eq!(r["name"], "Disk nearly full");
    assert_eq!(r["scope"], "user");
    assert_eq!(r["metric"], "disk");
    assert_eq!(r["comparison"], ">=");
    assert_eq!(r["threshold"], 90.0);
    assert_eq!(r["for"], 300);
    assert_eq!(r["hysteresis"], 2.5);
    assert_eq!(r["keep_firing_for"], 90);
    assert_eq!(r["repeat_interval"], 3600);
    assert_eq!(r["severity"], "critical");
    assert_eq!(r["hosts"], json!(["web1", "web2"]));
    assert_eq!(r["enabled"], true);
    assert_eq!(r["managed"], false);
    let id = r["id"].as_i64().unwrap();

    // The list shows it (once with the notice, which then goes away).
    let body = full_page(b.get("/dashboard/rules").await, StatusCode::OK, "rules").await;
    assert!(body.contains("Rule “Disk nearly full” created."), "{body}");
    let rows = table_rows(&body);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "Disk nearly full");
    assert_eq!(unescape_html(&rows[0][2]), "disk >= 90");
    assert_eq!(rows[0][3], "5m");
    assert_eq!(rows[0][4], "critical");
    assert_eq!(rows[0][5], "web1, web2");
    assert_eq!(rows[0][6], "yes");
    assert!(body.contains(&format!(r#"href="/dashboard/rules/{id}""#)));
    let body = b.page("/dashboard/rules", StatusCode::OK).await;
    assert!(!body.contains("created."), "notice shown twice");

    // The edit page is prefilled, durations written short.
    let edit = format!("/dashboard/rules/{id}");
    let body = full_page(b.get(&edit).await, StatusCode::OK, "edit").await;
    assert_eq!(input_value(&body, "rule-name"), "Disk nearly full");
    assert_eq!(input_value(&body, "rule-threshold"), "90");
    assert_eq!(input_value(&body, "rule-for"), "5m");
    assert_eq!(input_value(&body, "rule-hysteresis"), "2.5");
    assert_eq!(input_value(&body, "rule-keep"), "1m30s");
    assert_eq!(input_value(&body, "rule-repeat"), "1h");
    assert_eq!(input_value(&body, "rule-hosts"), "web1, web2");
    assert!(body.contains(r#"<option value="disk" selected>"#), "{body}");
    assert!(
        body.contains(r#"<option value=">=" selected>"#)
            || body.contains(r#"<option value="&#62;=" selected>"#)
            || body.contains(r#"<option value="&gt;=" selected>"#),
        "{body}"
    );
    assert!(body.contains(r#"<option value="critical" selected>"#));
    assert!(body.contains(r#"name="enabled" value="on" checked"#));
    assert!(body.contains(&format!(r#"action="/dashboard/rules/{id}/delete""#)));
    assert!(
        !body.contains("disabled>"),
        "selects disabled on a plain rule"
    );

    // Invalid input: 422, the reason, and what was typed.
    let cases: [(&str, &str, &str); 5] = [
        (
            "threshold",
            "150",
            "threshold for disk must be between 0 and 100",
        ),
        ("threshold", "lots", "threshold must be a number"),
        ("for", "5x", "for: invalid duration \"5x\""),
        (
            "repeat_interval",
            "1s",
            "repeat_interval must be between 10s and 30d",
        ),
        ("metric", "cpuu", "metric must be one of"),
    ];
    for (field, value, want) in cases {
        let fields = set(&rule_fields(), field, value);
        let fields = set(&fields, "name", "Typed <name>");
        for path in ["/dashboard/rules/new", edit.as_str()] {
            let resp = b.submit(path, &with_csrf(&csrf, &fields)).await;
            let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, want).await;
            let err = form_error(&body);
            assert!(err.contains(want), "{path} {field}={value}: {err}");
            assert_eq!(input_value(&body, "rule-name"), "Typed <name>");
            assert_eq!(input_value(&body, "rule-hosts"), "web1, web2,");
            assert_eq!(input_value(&body, "rule-keep"), "90");
            if field != "metric" {
                assert_eq!(
                    input_value(
                        &body,
                        &format!("rule-{}", field.replace('_', "-").replace("-interval", ""))
                    ),
                    value
                );
            }
        }
    }
    assert_eq!(
        api(&app, "/rules", &token).await.as_array().unwrap().len(),
        1
    );
    let again = api(&app, &format!("/rules/{id}"), &token).await;
    assert_eq!(again["threshold"], 90.0, "a refused edit changed the rule");

    // A valid edit: unchecked "enabled" disables; empty hosts means every host.
    let fields = set(&without(&rule_fields(), "enabled"), "threshold", "95");
    let fields = set(&fields, "hosts", " ");
    let fields = set(&fields, "for", "");
    let resp = b.submit(&edit, &with_csrf(&csrf, &fields)).await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/rules");
    let r = api(&app, &format!("/rules/{id}"), &token).await;
    assert_eq!(r["threshold"], 95.0);
    assert_eq!(r["enabled"], false);
    assert_eq!(r["hosts"], json!([]));
    assert_eq!(r["for"], 0);
    let body = full_page(b.get("/dashboard/rules").await, StatusCode::OK, "rules").await;
    assert!(body.contains("Rule “Disk nearly full” saved."));
    let rows = table_rows(&body);
    assert_eq!(rows[0][5], "all hosts");
    assert_eq!(rows[0][6], "no");

    // Delete.
    let resp = b
        .submit(&format!("{edit}/delete"), &[("csrf_token", &csrf)])
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/rules");
    assert!(api(&app, "/rules", &token)
        .await
        .as_array()
        .unwrap()
        .is_empty());
    let body = full_page(b.get("/dashboard/rules").await, StatusCode::OK, "rules").await;
    assert!(body.contains("Rule “Disk nearly full” deleted."));
    full_page(b.get(&edit).await, StatusCode::NOT_FOUND, "deleted rule").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_other_users_rules_are_not_found() {
    let app = spawn_pages(|_| {}).await;
    let owner = Browser::new(&app);
    let (_, owner_token) = owner.user_with_token().await;
    let rule = app
        .create_rule(
            &owner_token,
            json!({"name": "mine", "metric": "cpu", "threshold": 50}),
        )
        .await;
    let id = rule["id"].as_i64().unwrap();
    let global = api(&app, "/rules", ADMIN_TOKEN).await;
    let global_id = global.as_array().unwrap()[0]["id"].as_i64().unwrap();

    let other = Browser::new(&app);
    other.register_new().await;
    let csrf = other.csrf("/dashboard/rules").await;
    let body = full_page(other.get("/dashboard/rules").await, StatusCode::OK, "rules").await;
    assert!(!body.contains("mine"), "{body}");
    for target in [id, global_id] {
        let path = format!("/dashboard/rules/{target}");
        let body = full_page(other.get(&path).await, StatusCode::NOT_FOUND, &path).await;
        assert!(body.contains("There is nothing at this address."), "{body}");
        assert!(body.contains(r#"<nav aria-label="Main">"#));
        let resp = other
            .submit(
                &path,
                &with_csrf(&csrf, &set(&rule_fields(), "metric", "cpu")),
            )
            .await;
        full_page(resp, StatusCode::NOT_FOUND, "foreign update").await;
        let resp = other
            .submit(&format!("{path}/delete"), &[("csrf_token", &csrf)])
            .await;
        full_page(resp, StatusCode::NOT_FOUND, "foreign delete").await;
    }
    for path in [
        "/dashboard/rules/abc",
        "/dashboard/rules/0",
        "/dashboard/rules/99999999",
    ] {
        full_page(other.get(path).await, StatusCode::NOT_FOUND, path).await;
    }
    let r = api(&app, &format!("/rules/{id}"), &owner_token).await;
    assert_eq!(r["name"], "mine");
    assert_eq!(r["threshold"], 50.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_managed_rules_keep_metric_and_cannot_be_deleted() {
    let app = spawn_pages(|_| {}).await;
    let b = Browser::new(&app);
    let (_, token) = b.user_with_token().await;
    json_with_status(
        app.post_json(
            "/thresholds",
            &json!({"cpu_threshold": 55, "memory_threshold": 66}),
            &token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let rules = api(&app, "/rules", &token).await;
    let cpu = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "cpu")
        .expect("managed cpu rule")
        .clone();
    assert_eq!(cpu["managed"], true);
    let id = cpu["id"].as_i64().unwrap();

    let body = full_page(b.get("/dashboard/rules").await, StatusCode::OK, "rules").await;
    assert!(body.contains(r#"title="Managed by watchpost: cannot be deleted">thresholds</span>"#));
    let path = format!("/dashboard/rules/{id}");
    let body = full_page(b.get(&path).await, StatusCode::OK, "managed edit").await;
    assert!(
        body.contains(r#"<select id="rule-metric" name="metric" disabled>"#),
        "{body}"
    );
    assert!(body.contains(r#"<select id="rule-comparison" name="comparison" disabled>"#));
    assert!(
        !body.contains("/delete"),
        "delete offered for a managed rule: {body}"
    );
    assert!(!body.contains("Delete rule"));
    let csrf = csrf_of(&body);

    // A forged metric change is refused.
    let fields = set(&rule_fields(), "metric", "memory");
    let fields = set(&fields, "comparison", ">");
    let resp = b.submit(&path, &with_csrf(&csrf, &fields)).await;
    let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "metric change").await;
    assert!(
        form_error(&body).contains("its metric and comparison cannot change"),
        "{body}"
    );
    // What a browser sends (disabled selects are not submitted): saved, and the
    // threshold reaches /thresholds.
    let fields = without(&without(&rule_fields(), "metric"), "comparison");
    let fields = set(&fields, "threshold", "61");
    let resp = b.submit(&path, &with_csrf(&csrf, &fields)).await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/rules");
    let r = api(&app, &format!("/rules/{id}"), &token).await;
    assert_eq!(
        (r["metric"].as_str(), r["comparison"].as_str()),
        (Some("cpu"), Some(">"))
    );
    assert_eq!(r["threshold"], 61.0);
    let t = api(&app, "/thresholds", &token).await;
    assert_eq!(t["cpu_threshold"], 61.0);
    // And a forged delete is refused.
    let resp = b
        .submit(&format!("{path}/delete"), &[("csrf_token", &csrf)])
        .await;
    let body = full_page(resp, StatusCode::CONFLICT, "managed delete").await;
    assert!(body.contains("cannot be deleted"), "{body}");
    assert_eq!(
        api(&app, "/rules", &token).await.as_array().unwrap().len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_admin_manages_global_rules() {
    let app = spawn_pages(|_| {}).await;
    let b = Browser::new(&app);
    b.register_new().await;
    let csrf = b.csrf("/dashboard/rules/new").await;
    // Not elevated: no global checkbox, and a forged one is refused.
    let fields = set(&rule_fields(), "global", "on");
    let resp = b
        .submit("/dashboard/rules/new", &with_csrf(&csrf, &fields))
        .await;
    full_page(resp, StatusCode::FORBIDDEN, "global without admin").await;
    assert_eq!(
        api(&app, "/rules", ADMIN_TOKEN)
            .await
            .as_array()
            .unwrap()
            .len(),
        3,
        "the two threshold rules and the built-in host-down rule"
    );

    b.elevate().await;
    let body = full_page(
        b.get("/dashboard/rules").await,
        StatusCode::OK,
        "admin rules",
    )
    .await;
    assert!(body.contains(r#"id="global-rules""#), "{body}");
    assert!(
        body.contains(r#"title="Managed by watchpost: cannot be deleted">built-in</span>"#),
        "the host-down rule is marked built-in"
    );
    assert!(
        body.contains("cpu &#62; 80") || body.contains("cpu &gt; 80"),
        "{body}"
    );
    let body = full_page(b.get("/dashboard/rules/new").await, StatusCode::OK, "new").await;
    assert!(body.contains(r#"name="global""#));
    let csrf = csrf_of(&body);
    let fields = set(&set(&rule_fields(), "global", "on"), "name", "Fleet disk");
    let resp = b
        .submit("/dashboard/rules/new", &with_csrf(&csrf, &fields))
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/rules");
    let all = api(&app, "/rules", ADMIN_TOKEN).await;
    let fleet = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Fleet disk")
        .expect("global rule");
    assert_eq!(fleet["scope"], "global");
    // The admin edits global rules.
    let path = format!("/dashboard/rules/{}", fleet["id"]);
    full_page(b.get(&path).await, StatusCode::OK, "edit global").await;
    let fields = set(&rule_fields(), "name", "Fleet disk 2");
    let resp = b.submit(&path, &with_csrf(&csrf, &fields)).await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/rules");
    let r = api(&app, &format!("/rules/{}", fleet["id"]), ADMIN_TOKEN).await;
    assert_eq!(r["name"], "Fleet disk 2");
    assert_eq!(r["scope"], "global");
}

// ---------------------------------------------------------------------------------------
// Channels

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_private_webhooks_are_refused_inline() {
    let app = spawn_pages(|_| {}).await;
    let b = Browser::new(&app);
    let (_, token) = b.user_with_token().await;
    let body = full_page(
        b.get("/dashboard/channels").await,
        StatusCode::OK,
        "channels",
    )
    .await;
    assert!(body.contains(r#"href="/dashboard/channels" aria-current="page""#));
    let csrf = csrf_of(&body);
    let resp = b
        .submit(
            "/dashboard/channels",
            &[
                ("csrf_token", &csrf),
                ("kind", "webhook"),
                ("name", "Local hook"),
                ("url", "http://127.0.0.1:9/"),
                ("to", ""),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "ssrf").await;
    assert!(!form_error(&body).trim().is_empty(), "{body}");
    assert_eq!(input_value(&body, "channel-url"), "http://127.0.0.1:9/");
    assert_eq!(input_value(&body, "channel-name"), "Local hook");
    // Other check_channel errors show the same way.
    let resp = b
        .submit(
            "/dashboard/channels",
            &[("csrf_token", &csrf), ("kind", "webhook"), ("url", "")],
        )
        .await;
    let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "no url").await;
    assert_eq!(form_error(&body), "a webhook channel needs a url");
    let resp = b
        .submit(
            "/dashboard/channels",
            &[
                ("csrf_token", &csrf),
                ("kind", "email"),
                ("to", "a@example.com"),
            ],
        )
        .await;
    let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "no smtp").await;
    assert!(form_error(&body).contains("ALERT_SMTP_HOST"), "{body}");
    assert!(api(&app, "/channels", &token)
        .await
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_webhook_channel_test_rotate_switch_and_delete() {
    let app = spawn_pages(|s| s.allow_private_webhooks = true).await;
    let b = Browser::new(&app);
    let (_, token) = b.user_with_token().await;
    let csrf = b.csrf("/dashboard/channels").await;
    let resp = b
        .submit(
            "/dashboard/channels",
            &[
                ("csrf_token", &csrf),
                ("kind", "webhook"),
                ("name", "Local hook"),
                ("url", "http://127.0.0.1:9/"),
                ("to", ""),
            ],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    let channels = api(&app, "/channels", &token).await;
    let ch = channels.as_array().unwrap()[0].clone();
    assert_eq!(ch["name"], "Local hook");
    assert_eq!(ch["url"], "http://127.0.0.1:9/");
    assert_eq!(ch["enabled"], true);
    let id = ch["id"].as_i64().unwrap();
    let secret = ch["secret"].as_str().expect("webhook secret").to_owned();

    let body = full_page(
        b.get("/dashboard/channels").await,
        StatusCode::OK,
        "channels",
    )
    .await;
    assert!(body.contains("Channel “Local hook” added."), "{body}");
    let rows = table_rows(&body);
    assert_eq!(rows[0][0], "Local hook");
    assert_eq!(rows[0][1], "webhook");
    assert!(rows[0][2].starts_with("http://127.0.0.1:9/"), "{rows:?}");
    assert!(body.contains("<summary>Show signing secret</summary>"));
    assert!(body.contains(&format!("<code>{secret}</code>")));
    assert!(body.contains("webhook-signature"));
    for action in ["test", "rotate-secret", "disable", "delete"] {
        assert!(
            body.contains(&format!(r#"action="/dashboard/channels/{id}/{action}""#)),
            "{action}"
        );
    }

    // Send test: a delivery to see on the deliveries page.
    let resp = b
        .submit(
            &format!("/dashboard/channels/{id}/test"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    let body = full_page(
        b.get("/dashboard/channels").await,
        StatusCode::OK,
        "after test",
    )
    .await;
    assert!(
        body.contains("Test notification to “Local hook” queued."),
        "{body}"
    );
    assert!(body.contains(&format!(r#"<a href="/dashboard/deliveries?channel={id}">"#)));
    let body = full_page(
        b.get(&format!("/dashboard/deliveries?channel={id}")).await,
        StatusCode::OK,
        "deliveries",
    )
    .await;
    let rows = table_rows(&body);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0][0].ends_with(" UTC"), "{rows:?}");
    assert!(rows[0][1].starts_with("Local hook"), "{rows:?}");
    assert_eq!(rows[0][2], "test");
    assert_eq!(rows[0][3], "pending");
    assert!(rows[0][6].ends_with(" UTC"), "next attempt: {rows:?}");
    assert!(!body.contains("Send again"));
    let deliveries = api(&app, "/deliveries", &token).await;
    assert_eq!(deliveries[0]["event"], "test");
    assert_eq!(deliveries[0]["payload"]["event"], "test");

    // Rotate the secret.
    let resp = b
        .submit(
            &format!("/dashboard/channels/{id}/rotate-secret"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    let body = b.page("/dashboard/channels", StatusCode::OK).await;
    assert!(
        body.contains("New signing secret for “Local hook”"),
        "{body}"
    );

    // Disable, then enable again.
    let resp = b
        .submit(
            &format!("/dashboard/channels/{id}/disable"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    assert_eq!(
        api(&app, &format!("/channels/{id}"), &token).await["enabled"],
        false
    );
    let body = b.page("/dashboard/channels", StatusCode::OK).await;
    assert!(body.contains(&format!(r#"action="/dashboard/channels/{id}/enable""#)));
    assert!(body.contains(r#"<span class="badge firing">disabled</span>"#));
    let resp = b
        .submit(
            &format!("/dashboard/channels/{id}/enable"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    assert_eq!(
        api(&app, &format!("/channels/{id}"), &token).await["enabled"],
        true
    );

    // Another user can neither see nor touch it.
    let other = Browser::new(&app);
    other.register_new().await;
    let other_csrf = other.csrf("/dashboard/channels").await;
    let body = other.page("/dashboard/channels", StatusCode::OK).await;
    assert!(!body.contains("Local hook"));
    for action in ["test", "delete", "disable", "rotate-secret", "bogus"] {
        let resp = other
            .submit(
                &format!("/dashboard/channels/{id}/{action}"),
                &[("csrf_token", &other_csrf)],
            )
            .await;
        full_page(resp, StatusCode::NOT_FOUND, action).await;
    }
    let body = other.page("/dashboard/deliveries", StatusCode::OK).await;
    assert!(body.contains("No deliveries match."), "{body}");

    // Delete.
    let resp = b
        .submit(
            &format!("/dashboard/channels/{id}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    assert!(api(&app, "/channels", &token)
        .await
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_admin_sees_env_and_global_channels() {
    let app = spawn_pages(|s| {
        s.alert_webhook_url = Some(watchpost::config::Secret::new(
            "https://hooks.example.com/services/SECRET-TOKEN",
        ));
        s.allow_private_webhooks = true;
    })
    .await;
    let b = Browser::new(&app);
    b.register_new().await;
    let body = b.page("/dashboard/channels", StatusCode::OK).await;
    assert!(!body.contains("Global webhook"), "{body}");
    assert!(!body.contains(r#"name="global""#));
    b.elevate().await;
    let body = full_page(b.get("/dashboard/channels").await, StatusCode::OK, "admin").await;
    assert!(body.contains(r#"id="global-channels""#));
    assert!(
        body.contains("Global webhook (ALERT_WEBHOOK_URL)"),
        "{body}"
    );
    assert!(
        !body.contains("SECRET-TOKEN"),
        "env webhook URL not redacted: {body}"
    );
    assert!(body.contains("environment"));
    let env = api(&app, "/channels", ADMIN_TOKEN).await;
    let env_id = env.as_array().unwrap()[0]["id"].as_i64().unwrap();
    assert!(!body.contains(&format!("/dashboard/channels/{env_id}/delete")));
    assert!(!body.contains(&format!("/dashboard/channels/{env_id}/disable")));
    assert!(body.contains(&format!("/dashboard/channels/{env_id}/test")));
    assert!(body.contains(&format!("/dashboard/channels/{env_id}/rotate-secret")));
    let csrf = csrf_of(&body);
    let resp = b
        .submit(
            &format!("/dashboard/channels/{env_id}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    let body = full_page(resp, StatusCode::CONFLICT, "delete env").await;
    assert!(body.contains("ALERT_*"), "{body}");
    // A global channel through the form.
    let resp = b
        .submit(
            "/dashboard/channels",
            &[
                ("csrf_token", &csrf),
                ("kind", "webhook"),
                ("name", "Ops hook"),
                ("url", "http://127.0.0.1:9/ops"),
                ("global", "on"),
            ],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    let all = api(&app, "/channels", ADMIN_TOKEN).await;
    let ops = all
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Ops hook")
        .expect("global channel");
    assert_eq!(ops["scope"], "global");
}

// ---------------------------------------------------------------------------------------
// Deliveries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_dead_deliveries_can_be_sent_again() {
    let app = spawn_pages(|_| {}).await;
    let b = Browser::new(&app);
    let (uid, token) = b.user_with_token().await;
    // A dead letter, written through the store (no transport needed).
    let now = now_ms();
    let ch = app
        .store
        .create_channel(
            Some(uid),
            &ChannelInput {
                name: "Closed port".into(),
                kind: "webhook".into(),
                target: "http://127.0.0.1:9/".into(),
                enabled: true,
            },
            Some("whsec_test"),
            now,
        )
        .await
        .unwrap();
    let payload = json!({"event": "test", "type": "test"});
    let dead_id = app
        .store
        .enqueue_test(ch.id, &payload, "msg_dead", now - 5000)
        .await
        .unwrap();
    let claimed = app
        .store
        .claim_deliveries("test-worker", now, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(app
        .store
        .record_attempt(&AttemptRecord {
            delivery_id: dead_id,
            worker: "test-worker".into(),
            started_at: now,
            duration_ms: 12,
            status: Some(503),
            error: Some("HTTP 503 <Service Unavailable>".into()),
            outcome: "dead".into(),
            next_attempt_at: None,
            disable_channel: None,
        })
        .await
        .unwrap());
    // And a pending one, newer.
    app.store
        .enqueue_test(ch.id, &payload, "msg_pending", now + 60_000)
        .await
        .unwrap();

    let body = full_page(b.get("/dashboard/deliveries").await, StatusCode::OK, "log").await;
    let rows = table_rows(&body);
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Newest first.
    assert!(
        body.find(&format!("/dashboard/deliveries/{dead_id}/retry")) > body.find("pending</span>"),
        "{body}"
    );
    assert_eq!(rows[1][3], "dead");
    assert!(rows[1][4].starts_with('1'), "{rows:?}");
    assert!(
        rows[1][4].contains("12 ms") && rows[1][4].contains("status 503"),
        "{rows:?}"
    );
    assert!(rows[1][5].contains("503"), "{rows:?}");
    assert!(!body.contains("<Service"), "unescaped error: {body}");
    assert!(body.contains(r#"<details class="attempts">"#));
    assert_eq!(rows[0][3], "pending");
    assert_eq!(body.matches("Send again").count(), 1, "{body}");
    assert!(body.contains(&format!(
        r#"action="/dashboard/deliveries/{dead_id}/retry""#
    )));

    // Filters.
    let body = b
        .page("/dashboard/deliveries?state=dead", StatusCode::OK)
        .await;
    assert_eq!(table_rows(&body).len(), 1);
    assert!(body.contains(r#"<option value="dead" selected>"#));
    let body = b
        .page(
            &format!("/dashboard/deliveries?state=pending&channel={}", ch.id),
            StatusCode::OK,
        )
        .await;
    assert_eq!(table_rows(&body).len(), 1);
    assert!(!body.contains("Send again"));
    let body = b
        .page("/dashboard/deliveries?state=delivered", StatusCode::OK)
        .await;
    assert!(body.contains("No deliveries match."));
    // htmx gets the table alone.
    let resp = b
        .client
        .get(app.url("/dashboard/deliveries?state=dead"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    let part = body_with_status(resp, StatusCode::OK).await;
    assert!(
        part.trim_start()
            .starts_with(r#"<div id="deliveries-table""#),
        "{part}"
    );
    assert_csp_clean_markup(&part, "deliveries partial");

    // Another user cannot resend it.
    let other = Browser::new(&app);
    other.register_new().await;
    let other_csrf = other.csrf("/dashboard/deliveries").await;
    let resp = other
        .submit(
            &format!("/dashboard/deliveries/{dead_id}/retry"),
            &[("csrf_token", &other_csrf)],
        )
        .await;
    full_page(resp, StatusCode::NOT_FOUND, "foreign retry").await;

    // Send again.
    let csrf = b.csrf("/dashboard/deliveries").await;
    let resp = b
        .submit(
            &format!("/dashboard/deliveries/{dead_id}/retry"),
            &[
                ("csrf_token", &csrf),
                ("state", "dead"),
                ("channel", "all"),
                ("page", "1"),
            ],
        )
        .await;
    assert_redirect(
        &resp,
        StatusCode::SEE_OTHER,
        "/dashboard/deliveries?state=dead&channel=all&page=1",
    );
    let d = api(&app, &format!("/deliveries/{dead_id}"), &token).await;
    assert_eq!(d["state"], "pending", "{d}");
    assert_eq!(d["message_id"], "msg_dead");
    let body = b.page("/dashboard/deliveries", StatusCode::OK).await;
    assert!(
        body.contains(&format!("Delivery {dead_id} to “Closed port” queued again")),
        "{body}"
    );
    assert!(!body.contains("Send again"));
    // Only dead letters can be sent again.
    let resp = b
        .submit(
            &format!("/dashboard/deliveries/{dead_id}/retry"),
            &[("csrf_token", &csrf)],
        )
        .await;
    full_page(resp, StatusCode::CONFLICT, "retry pending").await;
    let resp = b
        .submit("/dashboard/deliveries/abc/retry", &[("csrf_token", &csrf)])
        .await;
    full_page(resp, StatusCode::NOT_FOUND, "bad id").await;
}

/// The same through real transports: a webhook to a closed loopback port, no retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_dead_letter_from_a_real_failed_send() {
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        s.allow_private_webhooks = true;
        s.alert_webhook_retries = 0;
    })
    .await;
    let b = Browser::new(&app);
    let (_, token) = b.user_with_token().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let csrf = b.csrf("/dashboard/channels").await;
    let resp = b
        .submit(
            "/dashboard/channels",
            &[("csrf_token", &csrf), ("kind", "webhook"), ("url", &url)],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    let id = api(&app, "/channels", &token).await[0]["id"]
        .as_i64()
        .unwrap();
    let resp = b
        .submit(
            &format!("/dashboard/channels/{id}/test"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    let deadline = Instant::now() + Duration::from_secs(15);
    let dead_id = loop {
        let dead = api(&app, "/deliveries?state=dead", &token).await;
        if let Some(d) = dead.as_array().unwrap().first() {
            break d["id"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "no dead letter within 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let body = b
        .page("/dashboard/deliveries?state=dead", StatusCode::OK)
        .await;
    assert!(body.contains(&format!(
        r#"action="/dashboard/deliveries/{dead_id}/retry""#
    )));
    let resp = b
        .submit(
            &format!("/dashboard/deliveries/{dead_id}/retry"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let d = api(&app, &format!("/deliveries/{dead_id}"), &token).await;
    assert!(
        d["state"] == "pending" || d["attempt_log"].as_array().unwrap().len() >= 2,
        "{d}"
    );
}

// ---------------------------------------------------------------------------------------
// CSRF and escaping

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_forms_without_csrf_are_refused() {
    let app = spawn_pages(|s| s.allow_private_webhooks = true).await;
    let b = Browser::new(&app);
    let (uid, token) = b.user_with_token().await;
    let rule = app
        .create_rule(
            &token,
            json!({"name": "keep", "metric": "cpu", "threshold": 50}),
        )
        .await;
    let rid = rule["id"].as_i64().unwrap();
    let now = now_ms();
    let ch = app
        .store
        .create_channel(
            Some(uid),
            &ChannelInput {
                name: "keep".into(),
                kind: "webhook".into(),
                target: "http://127.0.0.1:9/".into(),
                enabled: true,
            },
            Some("whsec_test"),
            now,
        )
        .await
        .unwrap();
    let did = app
        .store
        .enqueue_test(ch.id, &json!({"event": "test"}), "msg_x", now)
        .await
        .unwrap();
    let csrf = b.csrf("/dashboard/rules").await;
    let wrong = "0".repeat(csrf.len());
    let rule_form = rule_fields();
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/dashboard/rules/new".into(), rule_form.clone()),
        (format!("/dashboard/rules/{rid}"), rule_form.clone()),
        (format!("/dashboard/rules/{rid}/delete"), vec![]),
        (
            "/dashboard/channels".into(),
            vec![("kind", "webhook"), ("url", "http://127.0.0.1:9/x")],
        ),
        (format!("/dashboard/channels/{}/test", ch.id), vec![]),
        (format!("/dashboard/channels/{}/disable", ch.id), vec![]),
        (
            format!("/dashboard/channels/{}/rotate-secret", ch.id),
            vec![],
        ),
        (format!("/dashboard/channels/{}/delete", ch.id), vec![]),
        (format!("/dashboard/deliveries/{did}/retry"), vec![]),
    ];
    for (path, fields) in &posts {
        // No token, and a wrong one.
        let resp = b.submit(path, fields).await;
        let body = full_page(resp, StatusCode::FORBIDDEN, path).await;
        assert!(
            body.contains("did not come from this site"),
            "{path}: {body}"
        );
        let resp = b.submit(path, &with_csrf(&wrong, fields)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        // The right token from another site.
        let resp = b
            .client
            .post(app.url(path))
            .header("sec-fetch-site", "cross-site")
            .form(&with_csrf(&csrf, fields))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path} cross-site");
    }
    // Nothing changed.
    let rules = api(&app, "/rules", &token).await;
    assert_eq!(rules.as_array().unwrap().len(), 1);
    assert_eq!(rules[0]["name"], "keep");
    let channels = api(&app, "/channels", &token).await;
    assert_eq!(channels.as_array().unwrap().len(), 1);
    assert_eq!(channels[0]["enabled"], true);
    assert_eq!(channels[0]["secret"], "whsec_test");
    let deliveries = api(&app, "/deliveries", &token).await;
    assert_eq!(deliveries.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_notify_names_are_escaped() {
    let app = spawn_pages(|s| s.allow_private_webhooks = true).await;
    let b = Browser::new(&app);
    let (_, token) = b.user_with_token().await;
    let evil = "<script>alert(1)</script>";
    let csrf = b.csrf("/dashboard/rules/new").await;
    let fields = set(&rule_fields(), "name", evil);
    let fields = set(&fields, "hosts", r#"web"><img src=x>"#);
    let resp = b
        .submit("/dashboard/rules/new", &with_csrf(&csrf, &fields))
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/rules");
    let rules = api(&app, "/rules", &token).await;
    assert_eq!(rules[0]["name"], evil);
    let id = rules[0]["id"].as_i64().unwrap();

    let body = full_page(b.get("/dashboard/rules").await, StatusCode::OK, "rules").await;
    assert!(!body.contains("<script>alert"), "{body}");
    assert!(!body.contains("<img"), "{body}");
    let rows = table_rows(&body);
    assert_eq!(unescape_html(&rows[0][0]), evil);
    let body = full_page(
        b.get(&format!("/dashboard/rules/{id}")).await,
        StatusCode::OK,
        "edit",
    )
    .await;
    assert!(
        !body.contains("<script>alert") && !body.contains("<img"),
        "{body}"
    );
    assert_eq!(input_value(&body, "rule-name"), evil);
    // Refused input comes back escaped too.
    let fields = set(&fields, "threshold", "<b>x</b>");
    let resp = b
        .submit("/dashboard/rules/new", &with_csrf(&csrf, &fields))
        .await;
    let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "bad").await;
    assert!(
        !body.contains("<b>x") && !body.contains("<script>alert"),
        "{body}"
    );
    assert_eq!(input_value(&body, "rule-threshold"), "<b>x</b>");

    // Channel names and URLs, and the deliveries that name them.
    let url = "http://127.0.0.1:9/?q=\"><script>alert(2)</script>";
    let resp = b
        .submit(
            "/dashboard/channels",
            &[
                ("csrf_token", &csrf),
                ("kind", "webhook"),
                ("name", evil),
                ("url", url),
            ],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/channels");
    let body = full_page(
        b.get("/dashboard/channels").await,
        StatusCode::OK,
        "channels",
    )
    .await;
    assert!(!body.contains("<script>alert"), "{body}");
    let id = api(&app, "/channels", &token).await[0]["id"]
        .as_i64()
        .unwrap();
    let resp = b
        .submit(
            &format!("/dashboard/channels/{id}/test"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let body = full_page(b.get("/dashboard/channels").await, StatusCode::OK, "flash").await;
    assert!(!body.contains("<script>alert"), "{body}");
    let body = full_page(b.get("/dashboard/deliveries").await, StatusCode::OK, "log").await;
    assert!(!body.contains("<script>alert"), "{body}");
    // Probing query strings are not reflected raw.
    let body = b
        .page(
            "/dashboard/deliveries?state=%3Cimg%3E&channel=%22%3E",
            StatusCode::OK,
        )
        .await;
    assert!(!body.contains("<img"));
    assert_csp_clean_markup(&body, "deliveries with probe query");
}
