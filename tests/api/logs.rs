//! `POST /logs/analyze`: the original JSON body, raw text and gzip uploads, multipart
//! files, and the limits (size, zip bombs, content types, authentication).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::Write;

const LOG: &str =
    "2026-11-27 10:00:00,001 - app - ERROR - Connection refused to 10.0.0.1:5432 after 30 ms\n\
2026-11-27 10:00:01,002 - app - INFO - started worker 1\n\
2026-11-27 10:00:02,003 - app - ERROR - Connection refused to 10.0.0.2:5432 after 31 ms\n\
2026-11-27 10:00:03,004 - app - WARNING - slow query took 1200 ms\n\
2026-11-27 10:00:04,005 - app - ERROR - Connection refused to 10.0.0.3:5432 after 29 ms\n";

async fn post_raw(app: &TestApp, token: &str, ct: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/logs/analyze"))
        .header("token", token)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn check(report: &Value) {
    assert_eq!(report["lines"], 5, "{report}");
    assert_eq!(report["counts"]["ERROR"], 3);
    assert_eq!(report["counts"]["INFO"], 1);
    assert_eq!(
        report["counts"]["WARNING"], 1,
        "the original's name for warnings"
    );
    assert_eq!(report["counts"]["WARN"], 1);
    assert_eq!(report["levels"]["ERROR"], 3);
    let top = report["top_errors"].as_array().unwrap();
    assert!(!top.is_empty(), "{report}");
    assert!(
        top[0].as_str().unwrap().contains("Connection refused"),
        "{report}"
    );
    assert!(report["elapsed_ms"].is_u64());
    assert!(report["patterns"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_original_json_body_is_analysed() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let resp = app
        .post_json("/logs/analyze", &json!({"logs": LOG}), &token)
        .await;
    let report = json_with_status(resp, StatusCode::OK).await;
    check(&report);
    // The original's error shape for bad bodies.
    let resp = app
        .post_json("/logs/analyze", &json!({"log": LOG}), &token)
        .await;
    assert!(assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY)
        .await
        .contains("logs"));
    let resp = app
        .post_json("/logs/analyze", &json!({"logs": 5}), &token)
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    let resp = app
        .post_json("/logs/analyze", &json!({"logs": ""}), &token)
        .await;
    let empty = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(empty["lines"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_raw_gzip_and_multipart_uploads_are_analysed() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    for ct in ["text/plain; charset=utf-8", "application/octet-stream"] {
        let report = json_with_status(
            post_raw(&app, &token, ct, LOG.as_bytes().to_vec()).await,
            StatusCode::OK,
        )
        .await;
        check(&report);
    }
    let gz = gzip(LOG.as_bytes());
    let report = json_with_status(
        post_raw(&app, &token, "application/gzip", gz.clone()).await,
        StatusCode::OK,
    )
    .await;
    check(&report);
    assert_eq!(report["compressed_bytes"], gz.len());
    // A multipart form with other fields before the file.
    let boundary = "wpboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    write!(
        body,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
    )
    .unwrap();
    write!(body, "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app.log.gz\"\r\nContent-Type: application/gzip\r\n\r\n").unwrap();
    body.extend_from_slice(&gz);
    write!(body, "\r\n--{boundary}--\r\n").unwrap();
    let ct = format!("multipart/form-data; boundary={boundary}");
    let report = json_with_status(post_raw(&app, &token, &ct, body).await, StatusCode::OK).await;
    check(&report);
    // A form without a file field.
    let mut body = Vec::new();
    write!(body, "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{boundary}--\r\n").unwrap();
    let resp = post_raw(&app, &token, &ct, body).await;
    assert!(assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY)
        .await
        .contains("file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_limits_and_refusals() {
    let app = spawn_app_with(|s| {
        s.log_upload_max_bytes = 10_000;
        s.log_json_max_bytes = 2_000;
    })
    .await;
    let token = app.register_and_login().await;
    assert_error(
        app.client
            .post(app.url("/logs/analyze"))
            .header("content-type", "text/plain")
            .body(LOG)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let resp = post_raw(&app, &token, "image/png", LOG.as_bytes().to_vec()).await;
    assert_error(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let big = LOG.repeat(50).into_bytes();
    assert!(big.len() > 10_000);
    assert_error(
        post_raw(&app, &token, "text/plain", big.clone()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    // Without a Content-Length (chunked), the limit is enforced while streaming.
    let stream = futures_util::stream::iter(
        big.chunks(1000)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let resp = app
        .client
        .post(app.url("/logs/analyze"))
        .header("token", &token)
        .header("content-type", "text/plain")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE).await;
    let resp = app
        .post_json("/logs/analyze", &json!({"logs": LOG.repeat(10)}), &token)
        .await;
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE).await;
    // A gzip bomb: small on the wire, huge inflated.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![b'A'; 8 << 20]).unwrap();
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 10_000, "{}", bomb.len());
    let detail = assert_error(
        post_raw(&app, &token, "application/gzip", bomb).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(detail.contains("gzip"), "{detail}");
    // Corrupt gzip.
    let mut gz = gzip(LOG.as_bytes());
    let n = gz.len();
    gz[n / 2] ^= 0x55;
    gz.truncate(n - 4);
    assert_error(
        post_raw(&app, &token, "application/gzip", gz).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

/// A burst of uploads with one analysis slot: all are analysed, and the server keeps
/// answering other requests meanwhile (no timing asserted; bounded by the client timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_a_burst_of_uploads_is_queued_not_refused() {
    let app = spawn_app_with(|s| s.analysis_concurrency = 1).await;
    let token = app.register_and_login().await;
    let body = LOG.repeat(4000).into_bytes();
    let uploads: Vec<_> = (0..6)
        .map(|_| post_raw(&app, &token, "text/plain", body.clone()))
        .collect();
    let (results, health) = tokio::join!(
        futures_util::future::join_all(uploads),
        app.get_anon("/healthz")
    );
    assert_eq!(health.status(), StatusCode::OK);
    for resp in results {
        let report = json_with_status(resp, StatusCode::OK).await;
        assert_eq!(report["lines"], 20_000);
        assert_eq!(report["counts"]["ERROR"], 12_000);
    }
}
