//! The error contract: `{"detail": ...}` JSON and security headers on every failure.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_json() {
    let app = spawn_app().await;
    for path in [
        "/nope",
        "/metrics/nope",
        "/admin",
        "/register/",
        "/%2e%2e/etc/passwd",
    ] {
        let resp = app.get_anon(path).await;
        assert_eq!(
            assert_error(resp, StatusCode::NOT_FOUND).await,
            "not found",
            "{path}"
        );
    }
    let resp = app
        .client
        .post(app.url("/nope"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_are_405_json() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let cases = [
        (Method::DELETE, "/metrics"),
        (Method::POST, "/metrics"),
        (Method::PUT, "/thresholds"),
        (Method::GET, "/login"),
        (Method::GET, "/register"),
        (Method::GET, "/logout"),
        (Method::POST, "/healthz"),
        (Method::PATCH, "/admin/thresholds"),
    ];
    for (method, path) in cases {
        let resp = app
            .client
            .request(method.clone(), app.url(path))
            .header("token", &token)
            .send()
            .await
            .unwrap();
        let allow = resp
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let detail = assert_error(resp, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(detail, "method not allowed", "{method} {path}");
        assert!(allow.is_some(), "{method} {path}: no Allow header");
    }
    let resp = app
        .client
        .delete(app.url("/metrics"))
        .header("token", &token)
        .send()
        .await
        .unwrap();
    let allow = resp
        .headers()
        .get("allow")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allow.contains("GET"), "Allow: {allow}");
    assert!(!allow.contains("DELETE"), "Allow: {allow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_is_never_served() {
    let app = spawn_app().await;
    for path in ["/", "/healthz", "/metrics", "/login"] {
        let resp = app
            .client
            .request(Method::TRACE, app.url(path))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert!(
            status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_FOUND,
            "TRACE {path} answered {status}"
        );
        assert_security_headers(resp.headers());
        let body = resp.text().await.unwrap();
        assert!(!body.contains("trace"), "TRACE {path} echoed: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_security_headers_and_json_detail() {
    let app = spawn_app().await;
    // 401
    let r = app.get_anon("/alerts").await;
    assert_error(r, StatusCode::UNAUTHORIZED).await;
    // 403
    let r = app.get_anon("/admin/thresholds").await;
    assert_error(r, StatusCode::FORBIDDEN).await;
    // 413 on the JSON endpoints
    let big = format!(
        "{{\"cpu_threshold\": 1, \"pad\": \"{}\"}}",
        "x".repeat(65 * 1024)
    );
    for path in ["/register", "/login", "/admin/thresholds"] {
        let r = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .header("x-admin-token", ADMIN_TOKEN)
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_error(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
    // Just under the limit is parsed (and then refused for its content, not its size).
    let under = format!(
        "{{\"username\": \"abc\", \"password\": \"{}\"}}",
        "p".repeat(64 * 1024 - 100)
    );
    let r = app
        .client
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body(under)
        .send()
        .await
        .unwrap();
    let detail = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.contains("1024"), "{detail}");
    // 415
    let r = app
        .client
        .post(app.url("/login"))
        .header("content-type", "text/xml")
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    // 422 for a bad query
    let token = app.register_and_login().await;
    let r = app
        .client
        .post(app.url("/thresholds"))
        .header("token", &token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    let r = app.get("/alerts?limit=zero", &token).await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    // Successful responses carry them too, and are not cached.
    let r = app.get("/alerts", &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_security_headers(r.headers());
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_details_do_not_echo_huge_inputs() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let long = "9".repeat(5000);
    let r = app.get(&format!("/alerts?limit={long}"), &token).await;
    let detail = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.len() < 1000, "detail is {} bytes", detail.len());
    let r = app
        .client
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body(format!("{{\"username\": {long}x"))
        .send()
        .await
        .unwrap();
    let detail = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.len() < 1000, "detail is {} bytes", detail.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_is_exactly_64_kib() {
    let app = spawn_app().await;
    // {"username":"abc","password":"ppp…"} padded to an exact length.
    let body_of = |len: usize| {
        let shell = r#"{"username":"abc","password":""}"#.len();
        format!(
            r#"{{"username":"abc","password":"{}"}}"#,
            "p".repeat(len - shell)
        )
    };
    let send = |body: String| {
        app.client
            .post(app.url("/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let at_limit = send(body_of(64 * 1024)).await.unwrap();
    // Parsed, then refused for the password length rather than the body size.
    let detail = assert_error(at_limit, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.contains("1024"), "{detail}");
    let over = send(body_of(64 * 1024 + 1)).await.unwrap();
    assert_eq!(
        assert_error(over, StatusCode::PAYLOAD_TOO_LARGE).await,
        "request body too large"
    );
}

/// serde maps a JSON array onto a struct's fields by position, so `["name", "password"]`
/// registers an account. The contract wants request bodies to be JSON objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_arrays_are_not_accepted_as_objects() {
    let app = spawn_app().await;
    let name = unique_username("arr");
    let r = app
        .client
        .post(app.url("/register"))
        .json(&json!([name, PASSWORD]))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let token = app.register_and_login().await;
    let r = app.post_json("/thresholds", &json!([50, 50]), &token).await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY).await;
}
