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
        ("/logs/analyze", &["post"]),
        ("/logs/analyses", &["get"]),
        ("/logs/analyses/{id}", &["get", "delete"]),
    ];
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from openapi paths"));
        for m in *methods {
            assert!(item.get(*m).is_some(), "{m} {path} missing from openapi");
        }
    }
    // Parameters are declared where they are read: a path parameter names a segment of
    // its path, and query parameters (all optional here) are not mistaken for path ones.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                match p["in"].as_str().unwrap() {
                    "path" => assert!(
                        path.contains(&format!("{{{name}}}")) && p["required"] == true,
                        "{method} {path}: path parameter {name} is not in the path"
                    ),
                    // Optional headers such as `Idempotency-Key`.
                    "query" | "header" => assert_ne!(
                        p["required"], true,
                        "{method} {path}: {} parameter {name} marked required",
                        p["in"]
                    ),
                    other => panic!("{method} {path}: parameter {name} in {other}"),
                }
            }
        }
    }
    // Every schema reference resolves (an unresolved one silently drops the parameter or
    // field it describes from what clients and fuzzers see).
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_owned());
                }
                m.values().for_each(|x| refs(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
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
