//! Admin › Hosts in the dashboard: admin sessions only, CSRF on every form, the agent
//! token shown once, rotation and deletion, everything escaped.

use crate::helpers::*;
use crate::pages::{
    assert_redirect, attr_after, csrf_of, full_page, spawn_dashboard, table_rows, Browser,
};
use reqwest::StatusCode;
use serde_json::json;

fn token_on(body: &str) -> Option<String> {
    attr_after(body, r#"id="new-token" value=""#)
}

async fn ingest_status(app: &TestApp, token: &str, batch_id: &str) -> StatusCode {
    let body = json!({
        "batch_id": batch_id,
        "samples": [{
            "ts": watchpost::domain::format_rfc3339(now_ms() - 1000),
            "cpu": 1.0, "memory": 2.0, "memory_used": 1, "memory_total": 2, "swap": 0.0,
            "load1": 0.1, "load5": 0.1, "load15": 0.1, "disk": 3.0, "disk_read_bps": 0.0,
            "disk_write_bps": 0.0, "net_rx_bps": 0.0, "net_tx_bps": 0.0, "processes": 1, "uptime": 1
        }]
    });
    app.client
        .post(app.url("/ingest"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_create_rotate_and_delete_hosts_on_the_hosts_page() {
    let app = spawn_dashboard().await;
    let b = Browser::new(&app);
    b.register_new().await;

    // A plain session may not see the page.
    let body = full_page(
        b.get("/dashboard/admin/hosts").await,
        StatusCode::FORBIDDEN,
        "hosts without admin",
    )
    .await;
    assert!(body.contains("This needs an admin session."));
    let csrf = b.csrf("/dashboard/admin").await;
    let resp = b
        .post_form(
            "/dashboard/admin",
            &[("csrf_token", &csrf), ("admin_token", ADMIN_TOKEN)],
        )
        .await;
    assert_redirect(&resp, StatusCode::SEE_OTHER, "/dashboard/admin");
    let admin_page = full_page(b.get("/dashboard/admin").await, StatusCode::OK, "admin").await;
    assert!(admin_page.contains(r#"href="/dashboard/admin/hosts""#));

    let body = full_page(
        b.get("/dashboard/admin/hosts").await,
        StatusCode::OK,
        "hosts",
    )
    .await;
    let rows = table_rows(&body);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], format!("{} (this server)", app.local_host));
    assert!(token_on(&body).is_none());
    let csrf = csrf_of(&body);

    // A bad name: 422, the reason, the input escaped.
    let resp = b
        .post_form(
            "/dashboard/admin/hosts",
            &[("csrf_token", &csrf), ("name", "<b>x</b>")],
        )
        .await;
    let body = full_page(resp, StatusCode::UNPROCESSABLE_ENTITY, "bad name").await;
    assert!(body.contains("host name may contain only"), "{body}");
    assert!(!body.contains("<b>x</b>"));
    // No CSRF token: refused, nothing created.
    let resp = b
        .post_form("/dashboard/admin/hosts", &[("name", "web-9")])
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Created: the token is on this page only.
    let resp = b
        .post_form(
            "/dashboard/admin/hosts",
            &[("csrf_token", &csrf), ("name", "web-9")],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "created").await;
    let token = token_on(&body).expect("token shown after creation");
    assert_eq!(token.len(), 64);
    assert_eq!(ingest_status(&app, &token, "p1").await, StatusCode::OK);
    let body = full_page(
        b.get("/dashboard/admin/hosts").await,
        StatusCode::OK,
        "reload",
    )
    .await;
    assert!(!body.contains(&token), "token shown twice");
    let rows = table_rows(&body);
    let row = rows.iter().find(|r| r[0] == "web-9").expect("web-9 row");
    assert_eq!(row[1], "agent");
    assert_eq!(row[2], "up");
    let host_id = app.store.host_id("web-9").await.unwrap().unwrap();
    // The same name again: 409 with the reason.
    let resp = b
        .post_form(
            "/dashboard/admin/hosts",
            &[("csrf_token", &csrf), ("name", "web-9")],
        )
        .await;
    let body = full_page(resp, StatusCode::CONFLICT, "duplicate").await;
    assert!(body.contains("already exists"));

    // Rotate: a new token, shown once; the old one is dead.
    let resp = b
        .post_form(
            &format!("/dashboard/admin/hosts/{host_id}/rotate"),
            &[("csrf_token", &csrf)],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "rotated").await;
    let new = token_on(&body).expect("new token shown");
    assert_ne!(new, token);
    assert_eq!(
        ingest_status(&app, &token, "p2").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(ingest_status(&app, &new, "p2").await, StatusCode::OK);
    // This server's own host offers no actions, and refuses them.
    let local = app.local_host_id;
    assert!(!body.contains(&format!("/dashboard/admin/hosts/{local}/")));
    let resp = b
        .post_form(
            &format!("/dashboard/admin/hosts/{local}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    full_page(resp, StatusCode::CONFLICT, "delete local").await;

    // Delete: gone from the list, its agent refused.
    let resp = b
        .post_form(
            &format!("/dashboard/admin/hosts/{host_id}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    let body = full_page(resp, StatusCode::OK, "deleted").await;
    assert!(table_rows(&body).iter().all(|r| r[0] != "web-9"));
    assert_eq!(ingest_status(&app, &new, "p3").await, StatusCode::FORBIDDEN);
    let resp = b
        .post_form(
            &format!("/dashboard/admin/hosts/{host_id}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = b
        .post_form(
            &format!("/dashboard/admin/hosts/{host_id}/explode"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
