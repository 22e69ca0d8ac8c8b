//! `/register`, `/login`, `/logout`, `/password`.

use crate::auth::password::Verified;
use crate::auth::tokens;
use crate::domain::{format_rfc3339, now_ms, Password, Username};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{too_many, ApiJson, ApiUser, ClientIp};
use crate::http::state::AppState;
use crate::store::{NewToken, StoreError, User};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// 3–64 characters of `[A-Za-z0-9_.-]`.
    #[schema(
        min_length = 3,
        max_length = 64,
        pattern = "^[A-Za-z0-9_.-]{3,64}$",
        example = "alice"
    )]
    pub username: String,
    /// 8–1024 bytes, any Unicode; very common passwords are refused at registration.
    #[schema(min_length = 8, max_length = 1024, example = "correct horse battery")]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredUser {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Opaque bearer token (64 hex characters), shown only here.
    pub token: String,
    /// RFC 3339 UTC.
    pub expires_at: String,
    pub token_type: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}

/// Create an account.
#[utoipa::path(post, path = "/register", tag = "auth", request_body = Credentials,
    responses(
        (status = 201, description = "Account created", body = RegisteredUser),
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid username or password", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<RegisteredUser>), ApiError> {
    let user = create_account(&state, &body.username, &body.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredUser {
            id: user.id,
            username: user.username,
        }),
    ))
}

/// Creates an account (API and dashboard registration).
pub(crate) async fn create_account(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<User, ApiError> {
    let username = Username::parse(username)?;
    let password = Password::parse_new(password)?;
    let hash = state.hasher.hash(password.expose()).await?;
    let user = match state
        .store
        .create_user(username.as_str(), &hash, now_ms())
        .await
    {
        Ok(u) => u,
        Err(StoreError::Conflict) => return Err(ApiError::Conflict("username already exists")),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user_id = user.id, username = ?user.username, "user registered");
    Ok(user)
}

const LOGIN_FAILED: &str = "invalid username or password";

/// Counts a failed attempt for `key` and starts (or extends) a lockout once `max` is
/// reached: the lockout doubles with each further failure up to the configured cap.
pub(crate) async fn count_failure(
    state: &AppState,
    key: &str,
    now: i64,
    max: u32,
) -> Result<(), ApiError> {
    let s = &state.settings;
    let window_ms = i64::try_from(s.login_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let failures = state
        .store
        .record_login_failure(key, now, window_ms)
        .await?;
    if failures >= i64::from(max) {
        let exponent = u32::try_from(failures - i64::from(max))
            .unwrap_or(u32::MAX)
            .min(20);
        let secs = s
            .login_lockout_secs
            .saturating_mul(1u64 << exponent)
            .min(s.login_lockout_max_secs);
        let until =
            now.saturating_add(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX));
        state.store.lock_login(key, until).await?;
    }
    Ok(())
}

/// Exchange a username and password for an API token.
///
/// Unknown users and wrong passwords get the same 401 body and the same work (a dummy
/// argon2 verification). Repeated failures per account and per client IP answer 429 with
/// `Retry-After`; counters live in the database so every replica sees them.
#[utoipa::path(post, path = "/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "Invalid username or password", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed request", body = ErrorBody),
        (status = 429, description = "Too many failures; see Retry-After", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<LoginResponse>, ApiError> {
    let user = authenticate(&state, ip, &body.username, &body.password).await?;
    issue_login_token(&state, &user).await.map(Json)
}

/// A new API token named "login" with the configured lifetime.
async fn issue_login_token(state: &AppState, user: &User) -> Result<LoginResponse, ApiError> {
    let now = now_ms();
    let (token, token_hash) = tokens::generate();
    let ttl_ms =
        i64::try_from(state.settings.token_ttl_minutes.saturating_mul(60_000)).unwrap_or(i64::MAX);
    let expires_at = now.saturating_add(ttl_ms);
    state
        .store
        .insert_token(&NewToken {
            token_hash,
            user_id: user.id,
            name: "login".into(),
            created_at: now,
            expires_at,
        })
        .await?;
    Ok(LoginResponse {
        token,
        expires_at: format_rfc3339(expires_at),
        token_type: "bearer",
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    /// 8–1024 bytes, any Unicode; very common passwords are refused.
    #[schema(min_length = 8, max_length = 1024, example = "a longer passphrase now")]
    pub new_password: String,
}

/// Change the password. Every API token of the user (this one too) and every dashboard
/// session end; the answer carries a new token.
#[utoipa::path(post, path = "/password", tag = "auth", request_body = PasswordChange,
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Password changed; a new token (all others were revoked)", body = LoginResponse),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "The current password is wrong", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid new password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds"))),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: ApiUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Json<LoginResponse>, ApiError> {
    let user = replace_password(
        &state,
        ip,
        &user.user,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    issue_login_token(&state, &user).await.map(Json)
}

/// Checks the current password (with the login's lockouts and failure counts, so a stolen
/// token or session cannot be used to guess it) and stores the new one. Sessions and
/// tokens live in the database, so the change ends them on every replica at once.
/// Returns the user as it now is (new session epoch).
pub(crate) async fn replace_password(
    state: &AppState,
    ip: std::net::IpAddr,
    user: &User,
    current: &str,
    new: &str,
) -> Result<User, ApiError> {
    let new = Password::parse_new(new)?;
    match authenticate(state, ip, &user.username, current).await {
        Ok(_) => {}
        // Not 401: the caller's credentials are fine, only the password they typed is not.
        Err(ApiError::Unauthorized(_)) => {
            return Err(ApiError::Forbidden("current password is incorrect"))
        }
        Err(e) => return Err(e),
    }
    let hash = state.hasher.hash(new.expose()).await?;
    state.store.change_password(user.id, &hash).await?;
    tracing::info!(
        user_id = user.id,
        "password changed; sessions and API tokens ended"
    );
    state
        .store
        .user_by_id(user.id)
        .await?
        .ok_or(ApiError::Unauthorized("account no longer exists"))
}

/// Checks a username and password with lockouts, equal-cost failures and re-hashing: the
/// one place where both the API and the dashboard log people in.
pub(crate) async fn authenticate(
    state: &AppState,
    ip: std::net::IpAddr,
    username: &str,
    password: &str,
) -> Result<User, ApiError> {
    let password = Password::parse_login(password)?;
    let now = now_ms();
    let account_key = format!("user:{}", username.to_ascii_lowercase());
    let ip_key = format!("ip:{ip}");
    if let Some(until) = state
        .store
        .login_locked_until(&[account_key.clone(), ip_key.clone()], now)
        .await?
    {
        tracing::warn!(username = ?username, %ip, "login refused: locked out");
        return Err(too_many(until, now));
    }
    // Only well-formed names can exist; others still pay for a (dummy) verification.
    let user = match Username::parse(username) {
        Ok(name) => state.store.user_by_name(name.as_str()).await?,
        Err(_) => None,
    };
    let verified = state
        .hasher
        .verify(
            password.expose(),
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await?;
    let user = match (user, verified) {
        (Some(u), Verified::Yes | Verified::YesNeedsRehash) if !u.disabled => u,
        _ => {
            tracing::warn!(username = ?username, %ip, "login failed");
            count_failure(
                state,
                &account_key,
                now,
                state.settings.login_max_failures_account,
            )
            .await?;
            count_failure(state, &ip_key, now, state.settings.login_max_failures_ip).await?;
            return Err(ApiError::Unauthorized(LOGIN_FAILED));
        }
    };
    if verified == Verified::YesNeedsRehash {
        let fresh = state.hasher.hash(password.expose()).await?;
        state.store.set_password_hash(user.id, &fresh).await?;
        tracing::info!(
            user_id = user.id,
            "password re-hashed with current parameters"
        );
    }
    state.store.clear_login_failures(&account_key).await?;
    tracing::info!(user_id = user.id, username = ?user.username, %ip, "login succeeded");
    Ok(user)
}

/// Revoke the presented token.
#[utoipa::path(post, path = "/logout", tag = "auth",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Token revoked", body = Message),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Message>, ApiError> {
    state.store.delete_token(&user.token_hash).await?;
    tracing::info!(user_id = user.user.id, "logged out");
    Ok(Json(Message {
        message: "logged out".into(),
    }))
}
