//! `/thresholds`: each user's own thresholds, falling back to the global ones.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_default_to_global_and_can_be_set_per_user() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.register_and_login_user().await;
    let (_, bob) = app.register_and_login_user().await;

    let resp = app.get("/thresholds", &alice).await;
    assert_security_headers(resp.headers());
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 80.0, "memory_threshold": 75.0})
    );

    let resp = app
        .post_json("/thresholds", &json!({"cpu_threshold": 50}), &alice)
        .await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 50.0, "memory_threshold": 75.0})
    );

    let got = json_with_status(app.get("/thresholds", &alice).await, StatusCode::OK).await;
    assert_eq!(
        got,
        json!({"cpu_threshold": 50.0, "memory_threshold": 75.0})
    );

    // Omitted fields keep their current value.
    let resp = app
        .post_json("/thresholds", &json!({"memory_threshold": 33.5}), &alice)
        .await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 50.0, "memory_threshold": 33.5})
    );
    let resp = app
        .post_json(
            "/thresholds",
            &json!({"cpu_threshold": 0, "memory_threshold": 100}),
            &alice,
        )
        .await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 0.0, "memory_threshold": 100.0})
    );

    // Bob is unaffected.
    let got = json_with_status(app.get("/thresholds", &bob).await, StatusCode::OK).await;
    assert_eq!(
        got,
        json!({"cpu_threshold": 80.0, "memory_threshold": 75.0})
    );

    // The store agrees.
    let stored = app.store.user_thresholds(alice_id).await.unwrap().unwrap();
    assert_eq!((stored.cpu, stored.memory), (0.0, 100.0));
    let global = app.store.global_thresholds().await.unwrap();
    assert_eq!((global.cpu, global.memory), (80.0, 75.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_reject_invalid_values() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let bad: Vec<Value> = vec![
        json!({"cpu_threshold": -1}),
        json!({"cpu_threshold": -0.01}),
        json!({"cpu_threshold": 100.01}),
        json!({"memory_threshold": 101}),
        json!({"cpu_threshold": "50"}),
        json!({"cpu_threshold": true}),
        json!({"cpu_threshold": [50]}),
        json!({"cpu_threshold": null}),
        json!({"cpu_threshold": null, "memory_threshold": null}),
        json!({"cpu_threshold": 50, "memory_threshold": null}),
        json!({"cpu_threshold": 50, "disk_threshold": 50}),
        json!({"cpu_threshold": 50, "memory_threshold": 200}),
        json!(50),
    ];
    for body in bad {
        let resp = app.post_json("/thresholds", &body, &token).await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let malformed = app
        .client
        .post(app.url("/thresholds"))
        .header("token", &token)
        .header("content-type", "application/json")
        .body("{\"cpu_threshold\": ")
        .send()
        .await
        .unwrap();
    assert_error(malformed, StatusCode::UNPROCESSABLE_ENTITY).await;
    let not_json = app
        .client
        .post(app.url("/thresholds"))
        .header("token", &token)
        .body("cpu_threshold=50")
        .send()
        .await
        .unwrap();
    assert_error(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    // Nothing was saved by the rejected requests (a half-valid body changes nothing).
    let got = json_with_status(app.get("/thresholds", &token).await, StatusCode::OK).await;
    assert_eq!(
        got,
        json!({"cpu_threshold": 80.0, "memory_threshold": 75.0})
    );

    // Without a token.
    let anon = app
        .client
        .post(app.url("/thresholds"))
        .json(&json!({"cpu_threshold": 50}))
        .send()
        .await
        .unwrap();
    assert_error(anon, StatusCode::UNAUTHORIZED).await;
    assert_error(app.get_anon("/thresholds").await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_update_changes_nothing() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let resp = app.post_json("/thresholds", &json!({}), &token).await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 80.0, "memory_threshold": 75.0})
    );
    let resp = app
        .post_json("/thresholds", &json!({"memory_threshold": 60}), &token)
        .await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({"cpu_threshold": 80.0, "memory_threshold": 60.0})
    );
}
