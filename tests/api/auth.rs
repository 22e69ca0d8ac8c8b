//! `/register`, `/login`, `/logout`, `/password` and API-token handling.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use watchpost::auth::tokens::digest_hex;
use watchpost::store::NewToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_returns_201_with_id_and_username_and_rejects_duplicates() {
    let app = spawn_app().await;
    let name = unique_username("reg");
    let resp = app.register(&name, PASSWORD).await;
    assert_security_headers(resp.headers());
    let body = json_with_status(resp, StatusCode::CREATED).await;
    let obj = body.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{body}");
    assert!(body["id"].as_i64().unwrap() >= 1, "{body}");
    assert_eq!(body["username"], name.as_str());

    let second = unique_username("reg");
    let id2 = app.register_ok(&second, PASSWORD).await;
    assert_ne!(id2, body["id"].as_i64().unwrap());

    let dup = app.register(&name, "another password entirely").await;
    let detail = assert_error(dup, StatusCode::CONFLICT).await;
    assert_eq!(detail, "username already exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_validates_username() {
    let app = spawn_app().await;
    for bad in [
        "ab".to_owned(),
        String::new(),
        "x".repeat(65),
        "bob smith".into(),
        "émile".into(),
        "a/b".into(),
        "<script>".into(),
        "tab\tname".into(),
    ] {
        let resp = app.register(&bad, PASSWORD).await;
        let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(detail.contains("username"), "{bad:?}: {detail}");
    }
    // The boundaries are accepted.
    let three = format!("a{:02}", rand::random::<u8>() % 100);
    app.register_ok(&three, PASSWORD).await;
    let sixty_four = format!("{}{}", unique_username("u"), "x".repeat(64))[..64].to_owned();
    assert_eq!(sixty_four.len(), 64);
    app.register_ok(&sixty_four, PASSWORD).await;
    app.register_ok(&unique_username("A.b-C_d"), PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_validates_password() {
    let app = spawn_app().await;
    let cases: Vec<(String, &str)> = vec![
        ("short".into(), "at least 8"),
        ("1234567".into(), "at least 8"),
        ("🦀".repeat(7), "at least 8"), // 28 bytes but only 7 characters
        ("password123".into(), "too common"),
        ("PassWord123".into(), "too common"),
        ("12345678".into(), "too common"),
        ("a".repeat(1025), "at most 1024"),
        ("é".repeat(513), "at most 1024"), // 513 characters, 1026 bytes
    ];
    for (pw, expect) in cases {
        let resp = app.register(&unique_username("pw"), &pw).await;
        let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            detail.contains(expect),
            "password of {} bytes: detail {detail:?} lacks {expect:?}",
            pw.len()
        );
    }
    // Eight emoji are eight characters; 1024 bytes is the maximum.
    let emoji_user = unique_username("emoji");
    app.register_ok(&emoji_user, &"🦀".repeat(8)).await;
    let token = app.login(&emoji_user, &"🦀".repeat(8)).await;
    assert_eq!(token.len(), 64);
    app.register_ok(&unique_username("long"), &"a".repeat(1024))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_rejects_malformed_bodies() {
    let app = spawn_app().await;
    let url = app.url("/register");
    let name = unique_username("body");

    let extra = app
        .client
        .post(&url)
        .json(&json!({"username": name, "password": PASSWORD, "admin": true}))
        .send()
        .await
        .unwrap();
    let detail = assert_error(extra, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.contains("admin"), "{detail}");

    let missing = app
        .client
        .post(&url)
        .json(&json!({"username": name}))
        .send()
        .await
        .unwrap();
    let detail = assert_error(missing, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.contains("password"), "{detail}");

    let wrong_type = app
        .client
        .post(&url)
        .json(&json!({"username": 42, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_error(wrong_type, StatusCode::UNPROCESSABLE_ENTITY).await;

    let malformed = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"username\": \"abc\", ")
        .send()
        .await
        .unwrap();
    let detail = assert_error(malformed, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.starts_with("malformed JSON"), "{detail}");

    let form = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={name}&password=abcdefghijk"))
        .send()
        .await
        .unwrap();
    assert_error(form, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    let no_ct = app
        .client
        .post(&url)
        .body(json!({"username": name, "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    assert_error(no_ct, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    // 64 KiB is the limit; a little more is refused before it is parsed.
    let big = json!({"username": name, "password": "p".repeat(70 * 1024)}).to_string();
    let too_large = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_error(too_large, StatusCode::PAYLOAD_TOO_LARGE).await;

    // None of the above created the user.
    app.register_ok(&name, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_returns_hex_token_and_rfc3339_expiry() {
    let app = spawn_app().await;
    let name = unique_username("login");
    app.register_ok(&name, PASSWORD).await;
    let before = now_ms();
    let resp = app.login_raw(&name, PASSWORD).await;
    assert_security_headers(resp.headers());
    let body = json_with_status(resp, StatusCode::OK).await;
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 64, "{body}");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "token is not lowercase hex: {token}"
    );
    let expires = parse_z(body["expires_at"].as_str().unwrap());
    // Default TTL is 60 minutes.
    let ttl = expires - before;
    assert!(
        (59 * 60_000..=61 * 60_000).contains(&ttl),
        "expires_at {} is {ttl} ms from now",
        body["expires_at"]
    );
    // A second login gives a different token.
    let other = app.login(&name, PASSWORD).await;
    assert_ne!(other, token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_are_indistinguishable() {
    let app = spawn_app().await;
    let name = unique_username("who");
    app.register_ok(&name, PASSWORD).await;

    let wrong_pw = app.login_raw(&name, "not the password at all").await;
    assert_eq!(wrong_pw.status(), StatusCode::UNAUTHORIZED);
    assert_security_headers(wrong_pw.headers());
    let wrong_pw_body = wrong_pw.bytes().await.unwrap();

    let unknown = app
        .login_raw(&unique_username("ghost"), "not the password at all")
        .await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown_body = unknown.bytes().await.unwrap();

    // A syntactically impossible name gets the same answer too.
    let invalid_name = app.login_raw("x", "not the password at all").await;
    assert_eq!(invalid_name.status(), StatusCode::UNAUTHORIZED);
    let invalid_body = invalid_name.bytes().await.unwrap();

    assert_eq!(wrong_pw_body, unknown_body);
    assert_eq!(wrong_pw_body, invalid_body);
    let v: Value = serde_json::from_slice(&wrong_pw_body).unwrap();
    assert_eq!(v, json!({"detail": "invalid username or password"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rejects_oversized_password_and_bad_bodies() {
    let app = spawn_app().await;
    let name = unique_username("big");
    let resp = app.login_raw(&name, &"a".repeat(1025)).await;
    let detail = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.contains("1024"), "{detail}");

    let missing = app
        .client
        .post(app.url("/login"))
        .json(&json!({"username": name}))
        .send()
        .await
        .unwrap();
    assert_error(missing, StatusCode::UNPROCESSABLE_ENTITY).await;

    let text = app
        .client
        .post(app.url("/login"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_error(text, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let app = spawn_app().await;
    let name = unique_username("brute");
    app.register_ok(&name, PASSWORD).await;
    let bystander = unique_username("bystander");
    app.register_ok(&bystander, PASSWORD).await;

    for i in 1..=5 {
        let resp = app.login_raw(&name, &format!("wrong password {i}")).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(resp.headers().get("retry-after").is_none(), "attempt {i}");
    }
    // The sixth attempt is refused even with the right password.
    let locked = app.login_raw(&name, PASSWORD).await;
    let retry_after = locked
        .headers()
        .get("retry-after")
        .expect("Retry-After on 429")
        .to_str()
        .unwrap()
        .to_owned();
    let detail = assert_error(locked, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(detail.contains("too many"), "{detail}");
    let secs: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {retry_after:?} is not an integer"));
    assert!(
        (1..=30).contains(&secs),
        "Retry-After {secs} outside 1..=30"
    );
    // Case does not get around the lock (the account key is case-insensitive).
    let upper = app.login_raw(&name.to_uppercase(), PASSWORD).await;
    assert_eq!(upper.status(), StatusCode::TOO_MANY_REQUESTS);

    // The lock is per account: another user on the same address still gets in.
    let token = app.login(&bystander, PASSWORD).await;
    assert_eq!(token.len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_accepted_in_header_and_bearer_but_not_query() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;

    let via_header = app.get("/metrics", &token).await;
    assert_eq!(via_header.status(), StatusCode::OK);

    for scheme in ["Bearer", "bearer"] {
        let via_bearer = app
            .client
            .get(app.url("/metrics"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(via_bearer.status(), StatusCode::OK, "{scheme}");
    }

    let via_query = app
        .client
        .get(app.url(&format!("/metrics?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        via_query
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    assert_error(via_query, StatusCode::UNAUTHORIZED).await;

    let basic = app
        .client
        .get(app.url("/metrics"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_error(basic, StatusCode::UNAUTHORIZED).await;

    let none = app.get_anon("/metrics").await;
    assert_eq!(
        assert_error(none, StatusCode::UNAUTHORIZED).await,
        "missing token"
    );

    let bogus = app.get("/metrics", &"0".repeat(64)).await;
    assert_eq!(
        assert_error(bogus, StatusCode::UNAUTHORIZED).await,
        "invalid or expired token"
    );

    // The digest is not a token either.
    let digest = app.get("/metrics", &digest_hex(&token)).await;
    assert_error(digest, StatusCode::UNAUTHORIZED).await;

    let huge = app.get("/metrics", &"a".repeat(4000)).await;
    assert_error(huge, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_only_the_presented_token() {
    let app = spawn_app().await;
    let name = unique_username("bye");
    app.register_ok(&name, PASSWORD).await;
    let t1 = app.login(&name, PASSWORD).await;
    let t2 = app.login(&name, PASSWORD).await;

    let resp = app.post_json("/logout", &json!({}), &t1).await;
    let body = json_with_status(resp, StatusCode::OK).await;
    assert_eq!(body["message"], "logged out");

    let after = app.get("/metrics", &t1).await;
    assert_error(after, StatusCode::UNAUTHORIZED).await;
    let again = app
        .client
        .post(app.url("/logout"))
        .header("token", &t1)
        .send()
        .await
        .unwrap();
    assert_error(again, StatusCode::UNAUTHORIZED).await;
    assert!(app
        .store
        .token_owner(&digest_hex(&t1))
        .await
        .unwrap()
        .is_none());

    // The other session is untouched.
    assert_eq!(app.get("/metrics", &t2).await.status(), StatusCode::OK);

    let anon = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_error(anon, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refused() {
    let app = spawn_app().await;
    let name = unique_username("exp");
    let user_id = app.register_ok(&name, PASSWORD).await;
    let now = now_ms();

    let expired = "e".repeat(64);
    app.store
        .insert_token(&NewToken {
            token_hash: digest_hex(&expired),
            user_id,
            name: "test".into(),
            created_at: now - 10_000,
            expires_at: now - 1000,
        })
        .await
        .unwrap();
    // Control: a token inserted the same way but still valid works.
    let valid = "f".repeat(64);
    app.store
        .insert_token(&NewToken {
            token_hash: digest_hex(&valid),
            user_id,
            name: "test".into(),
            created_at: now,
            expires_at: now + 600_000,
        })
        .await
        .unwrap();

    let resp = app.get("/metrics", &expired).await;
    assert_eq!(
        assert_error(resp, StatusCode::UNAUTHORIZED).await,
        "invalid or expired token"
    );
    let bearer = app
        .client
        .get(app.url("/thresholds"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_error(bearer, StatusCode::UNAUTHORIZED).await;

    assert_eq!(app.get("/metrics", &valid).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_stored_hashed() {
    let app = spawn_app().await;
    let name = unique_username("hash");
    let user_id = app.register_ok(&name, PASSWORD).await;
    let token = app.login(&name, PASSWORD).await;
    // Use it once so last_used_at is written too.
    assert_eq!(app.get("/metrics", &token).await.status(), StatusCode::OK);

    let owner = app
        .store
        .token_owner(&digest_hex(&token))
        .await
        .unwrap()
        .expect("token digest is the key");
    assert_eq!(owner.user.id, user_id);
    assert_eq!(owner.user.username, name);
    assert!(owner.last_used_at.is_some());
    assert!(app.store.token_owner(&token).await.unwrap().is_none());
    // The password is not stored either, only an argon2id hash.
    assert!(owner.user.password_hash.starts_with("$argon2id$"));
    assert!(!owner.user.password_hash.contains(PASSWORD));

    match app.engine {
        Engine::Sqlite => {
            let path = app
                .database_url
                .strip_prefix("sqlite://")
                .unwrap()
                .to_owned();
            let mut bytes = Vec::new();
            for suffix in ["", "-wal"] {
                if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
                    bytes.extend(b);
                }
            }
            let contains =
                |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            // Control: the digest is there, so we are looking at the right files.
            assert!(
                contains(&digest_hex(&token)),
                "digest not found in db files"
            );
            assert!(!contains(&token), "plaintext token found in the database");
            assert!(
                !contains(PASSWORD),
                "plaintext password found in the database"
            );
        }
        Engine::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            let rows: Vec<(String,)> = sqlx::query_as("SELECT t::text FROM api_tokens t")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            assert!(rows[0].0.contains(&digest_hex(&token)), "{:?}", rows[0]);
            assert!(!rows[0].0.contains(&token), "plaintext token stored");
            let users: Vec<(String,)> = sqlx::query_as("SELECT u::text FROM users u")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            assert!(users.iter().all(|(u,)| !u.contains(PASSWORD)));
            conn.close().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_across_accounts_lock_the_client_address() {
    let app = spawn_app_with(|s| s.login_max_failures_ip = 3).await;
    let name = unique_username("victim");
    app.register_ok(&name, PASSWORD).await;
    // Different (unknown) accounts each time, so only the per-address counter reaches 3.
    // X-Forwarded-For is not trusted without configured proxies, so varying it changes
    // nothing.
    for i in 0..3 {
        let resp = app
            .client
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({"username": unique_username("spray"), "password": "guess guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let resp = app
        .client
        .post(app.url("/login"))
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("retry-after").is_some());
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_used_only_behind_a_trusted_proxy() {
    let app = spawn_app_with(|s| {
        s.login_max_failures_ip = 2;
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let name = unique_username("proxied");
    app.register_ok(&name, PASSWORD).await;
    let login = |xff: &'static str, user: String, pw: &'static str| {
        app.client
            .post(app.url("/login"))
            .header("x-forwarded-for", xff)
            .json(&json!({"username": user, "password": pw}))
            .send()
    };
    for _ in 0..2 {
        let r = login("203.0.113.9", unique_username("spray"), "guess guess")
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The client behind the proxy at 203.0.113.9 is locked out...
    let r = login("203.0.113.9", name.clone(), PASSWORD).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...while another client of the same proxy is not.
    let r = login("203.0.113.10", name.clone(), PASSWORD).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A client cannot escape by prepending a forged hop: the nearest untrusted hop counts.
    let r = login("198.51.100.1, 203.0.113.9", name.clone(), PASSWORD)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_are_unique_regardless_of_case_and_login_ignores_case() {
    let app = spawn_app().await;
    let name = unique_username("Case");
    let id = app.register_ok(&name, PASSWORD).await;
    let dup = app.register(&name.to_lowercase(), PASSWORD).await;
    assert_error(dup, StatusCode::CONFLICT).await;
    // The account logs in under any capitalisation and keeps its registered spelling.
    let token = app.login(&name.to_uppercase(), PASSWORD).await;
    assert_eq!(token.len(), 64);
    let owner = app
        .store
        .token_owner(&watchpost::auth::tokens::digest_hex(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.user.id, id);
    assert_eq!(owner.user.username, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_or_malformed_authorization_is_refused() {
    let app = spawn_app().await;
    let token = app.register_and_login().await;
    let send = |headers: Vec<(&'static str, String)>| {
        let mut req = app.client.get(app.url("/metrics"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    // The same token twice is fine.
    let ok = send(vec![
        ("token", token.clone()),
        ("authorization", format!("Bearer {token}")),
    ])
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    for headers in [
        vec![
            ("token", token.clone()),
            ("authorization", "Bearer nope".to_owned()),
        ],
        vec![
            ("token", token.clone()),
            ("authorization", "Basic YTpi".to_owned()),
        ],
        vec![("authorization", "Bearer".to_owned())],
        vec![("authorization", token.clone())],
        // A blank token header beside a valid Bearer is a broken client, not no header.
        vec![
            ("token", " ".to_owned()),
            ("authorization", format!("Bearer {token}")),
        ],
    ] {
        let resp = send(headers.clone()).await.unwrap();
        assert_error(resp, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_ends_every_token_and_session_and_returns_a_new_token() {
    use crate::pages::{assert_to_login, Browser};
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    let b = Browser::new(&app);
    let (_, name) = b.register_new().await;
    let t1 = app.login(&name, PASSWORD).await;
    let t2 = app.login(&name, PASSWORD).await;
    let other = app.register_and_login().await;
    let change = |token: String, current: &'static str, new: &'static str| {
        let app = &app;
        async move {
            app.post_json(
                "/password",
                &json!({"current_password": current, "new_password": new}),
                &token,
            )
            .await
        }
    };
    const NEW: &str = "a brand new passphrase";

    // Refusals change nothing.
    let detail = assert_error(
        change(t1.clone(), "not my password", NEW).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(detail, "current password is incorrect");
    assert_error(
        change(t1.clone(), PASSWORD, "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_error(
        change(t1.clone(), PASSWORD, "password123").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let resp = app
        .post_json(
            "/password",
            &json!({"current_password": PASSWORD, "new_password": NEW, "extra": 1}),
            &t1,
        )
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_error(
        app.post_json(
            "/password",
            &json!({"current_password": PASSWORD, "new_password": NEW}),
            "0".repeat(64).as_str(),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(app.get("/thresholds", &t2).await.status(), StatusCode::OK);
    b.page("/dashboard/tokens", StatusCode::OK).await;

    // The change: a new token; every old one and the dashboard session end.
    let got = json_with_status(change(t1.clone(), PASSWORD, NEW).await, StatusCode::OK).await;
    let t3 = got["token"].as_str().expect("new token").to_owned();
    assert_eq!(t3.len(), 64);
    assert!(got["expires_at"].as_str().unwrap().ends_with('Z'), "{got}");
    for old in [&t1, &t2] {
        assert_error(app.get("/thresholds", old).await, StatusCode::UNAUTHORIZED).await;
    }
    assert_eq!(app.get("/thresholds", &t3).await.status(), StatusCode::OK);
    assert_to_login(b.get("/dashboard/tokens").await).await;
    // Only this user was affected.
    assert_eq!(
        app.get("/thresholds", &other).await.status(),
        StatusCode::OK
    );
    // The old password is gone, the new one works.
    assert_eq!(
        app.login_raw(&name, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.login(&name, NEW).await.len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_current_passwords_count_towards_the_login_lockout() {
    let app = spawn_app_with(|s| s.login_max_failures_account = 3).await;
    let name = unique_username("changer");
    app.register_ok(&name, PASSWORD).await;
    let token = app.login(&name, PASSWORD).await;
    let body =
        |current: &str| json!({"current_password": current, "new_password": "another passphrase"});
    for i in 1..=3 {
        let resp = app
            .post_json("/password", &body(&format!("guess {i}")), &token)
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "guess {i}");
    }
    // Locked now: even the right password is refused, with Retry-After, and so is a login.
    let resp = app.post_json("/password", &body(PASSWORD), &token).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        app.login_raw(&name, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Nothing changed: the token still works.
    assert_eq!(
        app.get("/thresholds", &token).await.status(),
        StatusCode::OK
    );
}
