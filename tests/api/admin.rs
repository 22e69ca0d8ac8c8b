//! `/admin/thresholds` behind `x-admin-token`, and the admin-token configuration rules.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use watchpost::app::App;
use watchpost::config::{Secret, Settings, MIN_ADMIN_TOKEN_BYTES};
use watchpost::tasks::alerting::AlertEngine;

async fn admin_get(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url("/admin/thresholds"));
    if let Some(t) = token {
        req = req.header("x-admin-token", t);
    }
    req.send().await.unwrap()
}

async fn admin_post(app: &TestApp, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = app.client.post(app.url("/admin/thresholds")).json(body);
    if let Some(t) = token {
        req = req.header("x-admin-token", t);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_can_read_and_change_global_thresholds() {
    let app = spawn_app().await;
    let (_, user) = app.register_and_login_user().await;
    let (_, own) = app.register_and_login_user().await;
    let resp = app
        .post_json("/thresholds", &json!({"cpu_threshold": 60}), &own)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = admin_get(&app, Some(ADMIN_TOKEN)).await;
    assert_security_headers(resp.headers());
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 80.0, "memory_threshold": 75.0})
    );

    let resp = admin_post(&app, Some(ADMIN_TOKEN), &json!({"cpu_threshold": 30})).await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 30.0, "memory_threshold": 75.0})
    );
    let resp = admin_post(&app, Some(ADMIN_TOKEN), &json!({"memory_threshold": 65.5})).await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 30.0, "memory_threshold": 65.5})
    );

    let body = json_with_status(admin_get(&app, Some(ADMIN_TOKEN)).await, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 30.0, "memory_threshold": 65.5})
    );

    // A user without their own thresholds follows the global ones...
    let got = json_with_status(app.get("/thresholds", &user).await, StatusCode::OK).await;
    assert_eq!(
        got,
        json!({"cpu_threshold": 30.0, "memory_threshold": 65.5})
    );
    // ...one with their own keeps them (memory was copied from the global at the time).
    let got = json_with_status(app.get("/thresholds", &own).await, StatusCode::OK).await;
    assert_eq!(
        got,
        json!({"cpu_threshold": 60.0, "memory_threshold": 75.0})
    );

    // The engine uses the new global threshold.
    let mut eng = AlertEngine::new(app.store.clone()).await.unwrap();
    let s = sample(app.local_host_id, now_ms() - 60_000, 40.0, 10.0);
    app.insert_samples(std::slice::from_ref(&s)).await;
    eng.observe(std::slice::from_ref(&s), s.ts).await.unwrap();
    let list = json_with_status(app.get("/alerts", &user).await, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["threshold"].as_f64().unwrap(), 30.0);
    assert_eq!(list[0]["scope"], "global");

    // Invalid values are refused and change nothing.
    for bad in [
        json!({"cpu_threshold": 150}),
        json!({"memory_threshold": -3}),
        json!({"memory_threshold": null}),
        json!({"cpu_threshold": "high"}),
    ] {
        let resp = admin_post(&app, Some(ADMIN_TOKEN), &bad).await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let body = json_with_status(admin_get(&app, Some(ADMIN_TOKEN)).await, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 30.0, "memory_threshold": 65.5})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_admin_token_is_forbidden() {
    let app = spawn_app().await;
    let user_token = app.register_and_login().await;
    let wrong = format!("{ADMIN_TOKEN}x");
    let prefix = &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1];
    for token in [
        None,
        Some(""),
        Some(wrong.as_str()),
        Some(prefix),
        Some(user_token.as_str()),
    ] {
        let resp = admin_get(&app, token).await;
        let detail = assert_error(resp, StatusCode::FORBIDDEN).await;
        assert_eq!(detail, "invalid admin token", "{token:?}");
    }
    let resp = admin_post(&app, Some(&wrong), &json!({"cpu_threshold": 1})).await;
    assert_error(resp, StatusCode::FORBIDDEN).await;
    let resp = admin_post(&app, None, &json!({"cpu_threshold": 1})).await;
    assert_error(resp, StatusCode::FORBIDDEN).await;
    // The user's API token does not open admin endpoints in any header.
    let resp = app
        .client
        .get(app.url("/admin/thresholds"))
        .header("token", &user_token)
        .bearer_auth(&user_token)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN).await;

    // Nothing changed.
    let g = app.store.global_thresholds().await.unwrap();
    assert_eq!((g.cpu, g.memory), (80.0, 75.0));
    // The right token still works after a few failures.
    assert_eq!(
        admin_get(&app, Some(ADMIN_TOKEN)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_is_disabled_without_a_configured_token() {
    let app = spawn_app_with(|s| s.admin_token = None).await;
    for token in [None, Some(ADMIN_TOKEN), Some("")] {
        let resp = admin_get(&app, token).await;
        assert_eq!(
            assert_error(resp, StatusCode::FORBIDDEN).await,
            "admin disabled"
        );
        let resp = admin_post(&app, token, &json!({"cpu_threshold": 10})).await;
        assert_eq!(
            assert_error(resp, StatusCode::FORBIDDEN).await,
            "admin disabled"
        );
    }
    let g = app.store.global_thresholds().await.unwrap();
    assert_eq!((g.cpu, g.memory), (80.0, 75.0));
}

#[test]
fn short_admin_token_fails_validation() {
    assert_eq!(MIN_ADMIN_TOKEN_BYTES, 16);
    let with = |t: &str| Settings {
        admin_token: Some(Secret::new(t)),
        ..Settings::default()
    };
    assert!(with("short").validate().is_err());
    assert!(with("0123456789abcde").validate().is_err());
    assert!(with("0123456789abcdef").validate().is_ok());
    // Long enough but one repeated character: refused as not random.
    assert!(with(&"x".repeat(16)).validate().is_err());
    assert!(with(ADMIN_TOKEN).validate().is_ok());
    assert!(Settings::default().validate().is_ok());
    // The secret never shows up in Debug or printed config.
    let s = with("a-very-secret-admin-token-value");
    assert!(!format!("{s:?}").contains("a-very-secret-admin-token-value"));
    assert!(!s
        .to_redacted_toml()
        .contains("a-very-secret-admin-token-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_build_refuses_a_short_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/short.db", dir.path().display());
    let mut settings = test_settings(&url);
    settings.admin_token = Some(Secret::new("too-short"));
    match App::build(settings).await {
        Ok(_) => panic!("App::build accepted a 9-byte admin token"),
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(msg.contains("ADMIN_TOKEN"), "{msg}");
            assert!(!msg.contains("too-short"), "error echoes the secret: {msg}");
        }
    }
    // Validation runs before anything is opened.
    assert!(!dir.path().join("short.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_admin_tokens_are_throttled() {
    let app = spawn_app_with(|s| s.login_max_failures_ip = 3).await;
    for i in 0..3 {
        let resp = admin_get(&app, Some(&format!("wrong-admin-token-{i:04}"))).await;
        assert_error(resp, StatusCode::FORBIDDEN).await;
    }
    let resp = admin_get(&app, Some(ADMIN_TOKEN)).await;
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS).await;
    // Admin failures do not lock ordinary logins.
    let token = app.register_and_login().await;
    assert_eq!(token.len(), 64);
}
