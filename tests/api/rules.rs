//! `/rules`: CRUD, validation, ownership, the threshold rules that mirror `/thresholds`,
//! and rule semantics (`for`, hysteresis, host selectors) through the real engine.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use watchpost::tasks::alerting::AlertEngine;

impl TestApp {
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: &str,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.url(path));
        req = if token == ADMIN_TOKEN {
            req.header("x-admin-token", token)
        } else {
            req.header("token", token)
        };
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub async fn create_rule(&self, token: &str, body: Value) -> Value {
        json_with_status(
            self.send_json(reqwest::Method::POST, "/rules", Some(&body), token)
                .await,
            StatusCode::CREATED,
        )
        .await
    }
}

async fn rules(app: &TestApp, token: &str) -> Vec<Value> {
    let body = json_with_status(
        app.send_json(reqwest::Method::GET, "/rules", None, token)
            .await,
        StatusCode::OK,
    )
    .await;
    body.as_array().expect("array").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_appear_as_managed_rules_and_stay_in_sync() {
    let app = spawn_app().await;
    let (uid, token) = app.register_and_login_user().await;
    // Admin sees the two global threshold rules.
    let all = rules(&app, ADMIN_TOKEN).await;
    let global: Vec<&Value> = all
        .iter()
        .filter(|r| r["scope"] == "global" && r["managed"] == true)
        .collect();
    // The two thresholds, and the built-in rule for silent agent hosts.
    assert_eq!(global.len(), 3, "{all:?}");
    assert!(
        global
            .iter()
            .any(|r| r["metric"] == "missed_intervals" && r["name"] == "Host down"),
        "{all:?}"
    );
    let cpu = global
        .iter()
        .find(|r| r["metric"] == "cpu")
        .expect("cpu rule");
    assert_eq!(cpu["threshold"], 80.0);
    assert_eq!(cpu["comparison"], ">");
    // The user has none until they set thresholds.
    assert!(rules(&app, &token).await.is_empty());
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
    let mine = rules(&app, &token).await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(mine
        .iter()
        .all(|r| r["owner_id"] == uid && r["managed"] == true));
    let mem = mine.iter().find(|r| r["metric"] == "memory").unwrap();
    assert_eq!(mem["threshold"], 66.0);
    // Editing the rule writes back to /thresholds.
    let id = mem["id"].as_i64().unwrap();
    let put = app
        .send_json(
            reqwest::Method::PUT,
            &format!("/rules/{id}"),
            Some(
                &json!({"metric": "memory", "threshold": 70, "for": "1m", "severity": "critical"}),
            ),
            &token,
        )
        .await;
    let updated = json_with_status(put, StatusCode::OK).await;
    assert_eq!(updated["for"], 60);
    let t = json_with_status(app.get("/thresholds", &token).await, StatusCode::OK).await;
    assert_eq!(t["memory_threshold"], 70.0);
    assert_eq!(t["cpu_threshold"], 55.0);
    // Metric cannot change, and managed rules cannot be deleted.
    let bad = app
        .send_json(
            reqwest::Method::PUT,
            &format!("/rules/{id}"),
            Some(&json!({"metric": "cpu", "threshold": 70})),
            &token,
        )
        .await;
    assert!(assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY)
        .await
        .contains("cannot change"));
    let del = app
        .send_json(
            reqwest::Method::DELETE,
            &format!("/rules/{id}"),
            None,
            &token,
        )
        .await;
    assert_error(del, StatusCode::CONFLICT).await;
    // Admin thresholds move the global rules.
    let resp = app
        .client
        .post(app.url("/admin/thresholds"))
        .header("x-admin-token", ADMIN_TOKEN)
        .json(&json!({"cpu_threshold": 91}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let all = rules(&app, ADMIN_TOKEN).await;
    let cpu = all
        .iter()
        .find(|r| r["scope"] == "global" && r["metric"] == "cpu")
        .unwrap();
    assert_eq!(cpu["threshold"], 91.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_crud_with_ownership() {
    let app = spawn_app().await;
    let alice = app.register_and_login().await;
    let bob = app.register_and_login().await;
    let created = app
        .create_rule(
            &alice,
            json!({"name": "disk nearly full", "metric": "disk", "comparison": ">=", "threshold": 90,
                   "for": "5m", "hysteresis": 2.5, "keep_firing_for": 30, "severity": "critical",
                   "repeat_interval": "1h", "hosts": ["web-1", "web-2", "web-1"]}),
        )
        .await;
    assert_eq!(created["name"], "disk nearly full");
    assert_eq!(created["scope"], "user");
    assert_eq!(created["for"], 300);
    assert_eq!(created["keep_firing_for"], 30);
    assert_eq!(created["repeat_interval"], 3600);
    assert_eq!(created["hosts"], json!(["web-1", "web-2"]));
    assert_eq!(created["managed"], false);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    let id = created["id"].as_i64().unwrap();
    let path = format!("/rules/{id}");

    // Bob cannot see, change or delete it; it does not exist for him.
    assert!(rules(&app, &bob).await.is_empty());
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        assert_error(
            app.send_json(method, &path, None, &bob).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let put = app
        .send_json(
            reqwest::Method::PUT,
            &path,
            Some(&json!({"metric": "cpu", "threshold": 1})),
            &bob,
        )
        .await;
    assert_error(put, StatusCode::NOT_FOUND).await;

    // Alice replaces it: omitted fields take their defaults.
    let put = app
        .send_json(
            reqwest::Method::PUT,
            &path,
            Some(&json!({"metric": "load1", "comparison": "<", "threshold": 0.5})),
            &alice,
        )
        .await;
    let r = json_with_status(put, StatusCode::OK).await;
    assert_eq!(r["metric"], "load1");
    assert_eq!(r["comparison"], "<");
    assert_eq!(r["repeat_interval"], 14400);
    assert_eq!(r["hosts"], json!([]));
    assert_eq!(r["name"], "load1 < 0.5");

    // The admin sees it as well as global ones, and creates global rules.
    let all = rules(&app, ADMIN_TOKEN).await;
    assert!(all.iter().any(|r| r["id"] == id));
    let g = app
        .create_rule(ADMIN_TOKEN, json!({"metric": "swap", "threshold": 50}))
        .await;
    assert_eq!(g["scope"], "global");
    assert!(g["owner_id"].is_null());
    assert!(!rules(&app, &alice).await.iter().any(|r| r["id"] == g["id"]));

    let del = app
        .send_json(reqwest::Method::DELETE, &path, None, &alice)
        .await;
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.send_json(reqwest::Method::GET, &path, None, &alice)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_validation_answers_422_with_detail() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let cases = [
        (json!({"metric": "cpuu", "threshold": 1}), "metric"),
        (
            json!({"metric": "cpu", "threshold": 120}),
            "between 0 and 100",
        ),
        (
            json!({"metric": "cpu", "threshold": "high"}),
            "invalid request body",
        ),
        (
            json!({"metric": "cpu", "threshold": 1, "comparison": "=="}),
            "comparison",
        ),
        (
            json!({"metric": "cpu", "threshold": 1, "severity": "page"}),
            "severity",
        ),
        (
            json!({"metric": "cpu", "threshold": 1, "for": "soon"}),
            "for",
        ),
        (
            json!({"metric": "cpu", "threshold": 1, "for": "30d"}),
            "for must be",
        ),
        (
            json!({"metric": "cpu", "threshold": 1, "repeat_interval": 1}),
            "repeat_interval",
        ),
        (
            json!({"metric": "cpu", "threshold": 1, "hysteresis": -1}),
            "hysteresis",
        ),
        (
            json!({"metric": "cpu", "threshold": 1, "name": "x\u{0}y"}),
            "control",
        ),
        (
            json!({"metric": "cpu", "threshold": 1, "owner_id": 5}),
            "unknown field",
        ),
        (json!({"threshold": 1}), "metric"),
    ];
    for (body, want) in cases {
        let resp = app
            .send_json(reqwest::Method::POST, "/rules", Some(&body), &token)
            .await;
        let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            detail.contains(want),
            "{body} -> {detail:?} (wanted {want:?})"
        );
    }
    assert_error(app.get_anon("/rules").await, StatusCode::UNAUTHORIZED).await;
    let wrong_admin = app
        .client
        .get(app.url("/rules"))
        .header("x-admin-token", "nope-nope-nope-nope")
        .send()
        .await
        .unwrap();
    assert_error(wrong_admin, StatusCode::FORBIDDEN).await;
    assert_error(
        app.send_json(reqwest::Method::GET, "/rules/abc", None, &token)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

/// A user rule with `for`, fed by the real engine: a short spike does nothing, a
/// sustained breach raises one alert scoped to the user, with the rule's details.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_rule_with_for_fires_once_through_the_engine() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    // Lift the global thresholds out of the way.
    app.client
        .post(app.url("/admin/thresholds"))
        .header("x-admin-token", ADMIN_TOKEN)
        .json(&json!({"cpu_threshold": 100, "memory_threshold": 100}))
        .send()
        .await
        .unwrap();
    let rule = app
        .create_rule(&token, json!({"name": "load", "metric": "load1", "threshold": 4, "for": 10, "severity": "critical", "hosts": [app.local_host]}))
        .await;
    let mut eng = AlertEngine::new(app.store.clone()).await.unwrap();
    let t0 = now_ms() - 120_000;
    let mut samples = Vec::new();
    for i in 0..60 {
        let mut s = sample(app.local_host_id, t0 + i * 1000, 10.0, 10.0);
        // 5 s spike, calm, then a 30 s breach.
        s.load1 = if (5..10).contains(&i) || (20..50).contains(&i) {
            8.0
        } else {
            1.0
        };
        samples.push(s);
    }
    app.insert_samples(&samples).await;
    for s in &samples {
        eng.observe(std::slice::from_ref(s), s.ts).await.unwrap();
    }
    let alerts = json_with_status(app.get("/alerts", &token).await, StatusCode::OK).await;
    let list = alerts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{alerts}");
    assert_eq!(list[0]["type"], "load1");
    assert_eq!(list[0]["scope"], "user");
    assert_eq!(list[0]["state"], "resolved");
    assert_eq!(
        parse_z(list[0]["ts"].as_str().unwrap()),
        t0 + 30_000,
        "fires once the breach held 10 s"
    );
    assert_eq!(list[0]["rule_id"], rule["id"]);
    assert_eq!(list[0]["severity"], "critical");
}
