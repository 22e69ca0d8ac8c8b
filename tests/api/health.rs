//! `/healthz`, `/readyz` and `/openapi.json`, all without authentication.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_need_no_token() {
    let app = spawn_app().await;
    assert!(app.addr.ip().is_loopback() && app.addr.port() != 0);
    let resp = app.get_anon("/healthz").await;
    assert_security_headers(resp.headers());
    assert_eq!(
        json_with_status(resp, StatusCode::OK).await,
        json!({"status": "ok"})
    );
    let resp = app.get_anon("/readyz").await;
    assert_security_headers(resp.headers());
    assert_eq!(
        json_with_status(resp, StatusCode::OK).await,
        json!({"status": "ready"})
    );
    // A bad token is simply ignored there.
    let resp = app.get("/healthz", "garbage").await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let app = spawn_app().await;
    let resp = app.get_anon("/openapi.json").await;
    assert_security_headers(resp.headers());
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
    let doc = json_with_status(resp, StatusCode::OK).await;
    let version = doc["openapi"].as_str().expect("openapi version string");
    assert!(version.starts_with('3'), "{version}");
    let paths = doc["paths"].as_object().expect("paths object");
    let expected: &[(&str, &[&str])] = &[
        ("/register", &["post"]),
        ("/login", &["post"]),
        ("/logout", &["post"]),
        ("/metrics", &["get"]),
        ("/metrics/history", &["get"]),
        ("/metrics/prometheus", &["get"]),
        ("/alerts", &["get"]),
        ("/summary", &["get"]),
        ("/thresholds", &["get", "post"]),
        ("/admin/thresholds", &["get", "post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/rules", &["get", "post"]),
        ("/rules/{id}", &["get", "put", "delete"]),
        ("/channels", &["get", "post"]),
        ("/channels/{id}", &["get", "put", "delete"]),
        ("/channels/{id}/test", &["post"]),
        ("/channels/{id}/rotate-secret", &["post"]),
        ("/deliveries", &["get"]),
        ("/deliveries/{id}", &["get"]),
        ("/deliveries/{id}/retry", &["post"]),
        ("/hosts", &["get"]),
        ("/admin/hosts", &["get", "post"]),
        ("/admin/hosts/{id}", &["delete"]),
        ("/admin/hosts/{id}/token", &["post"]),
        ("/ingest", &["post"]),
    ];
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from openapi paths"));
        for m in *methods {
            assert!(item.get(*m).is_some(), "{m} {path} missing from openapi");
        }
    }
    // Rule bodies name the `for` duration as the API does, not the Rust field.
    let rule = &doc["components"]["schemas"]["RuleBody"]["properties"];
    assert!(
        rule.get("for").is_some() && rule.get("for_").is_none(),
        "{rule}"
    );
    let out = &doc["components"]["schemas"]["RuleOut"]["properties"];
    assert!(
        out.get("for").is_some() && out.get("for_").is_none(),
        "{out}"
    );
    // The security schemes the API uses are declared.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for s in ["token", "bearer", "admin_token", "agent_token"] {
        assert!(schemes.contains_key(s), "security scheme {s} missing");
    }
}
