//! Extractors: JSON bodies and query strings whose rejections follow our error contract,
//! the API-token user, the admin header, and the client IP.

use super::error::{clip, ApiError};
use super::state::AppState;
use crate::auth::tokens;
use crate::store::User;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// `Json<T>` whose failures are 415 (wrong content type), 413 (too large) or 422.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Through `Value` first: serde would otherwise map a JSON array onto a struct's
        // fields by position, and every body of ours is an object.
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(rej) => return Err(json_rejection(rej)),
        };
        if !value.is_object() {
            return Err(ApiError::Validation(
                "invalid request body: expected a JSON object".into(),
            ));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| ApiError::Validation(clip(&format!("invalid request body: {e}"))))
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::Validation(clip(&format!(
            "malformed JSON: {}",
            e.body_text()
                .trim_start_matches("Failed to parse the request body as JSON: ")
        ))),
        JsonRejection::JsonDataError(e) => ApiError::Validation(clip(&format!(
            "invalid request body: {}",
            e.body_text()
                .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        ))),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("request body too large".into())
        }
        other => ApiError::BadRequest(clip(&other.body_text())),
    }
}

/// `Query<T>` whose failures are 422.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::Validation(clip(&format!(
                    "invalid query: {}",
                    e.body_text()
                        .trim_start_matches("Failed to deserialize query string: ")
                ))))
            }
            Err(e) => Err(ApiError::Validation(clip(&e.body_text()))),
        }
    }
}

/// The token presented in the `token` header or as `Authorization: Bearer`. Query strings
/// are never consulted: URLs end up in logs and browser history. An `Authorization`
/// header that is not a usable Bearer token, or one that disagrees with the `token`
/// header, is refused rather than silently ignored.
pub fn presented_token(parts: &Parts) -> Result<&str, ApiError> {
    // A blank or non-text `token` header is a broken client, not an absent one: it must
    // not fall through to a valid Bearer token sent beside it.
    let header = match parts.headers.get("token") {
        None => None,
        Some(v) => match v.to_str().map(str::trim) {
            Ok(t) if !t.is_empty() => Some(t),
            _ => return Err(ApiError::Unauthorized("malformed token header")),
        },
    };
    let bearer = match parts.headers.get(axum::http::header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let raw = v.to_str().map(str::trim).unwrap_or("");
            match raw.split_once(' ') {
                Some((scheme, rest))
                    if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() =>
                {
                    Some(rest.trim())
                }
                _ => return Err(ApiError::Unauthorized("malformed Authorization header")),
            }
        }
    };
    match (header, bearer) {
        (Some(a), Some(b)) if a != b => Err(ApiError::Unauthorized(
            "the token header and the Authorization header disagree",
        )),
        (Some(t), _) | (None, Some(t)) => Ok(t),
        (None, None) => Err(ApiError::Unauthorized("missing token")),
    }
}

/// A user authenticated by an API token.
pub struct ApiUser {
    pub user: User,
    pub token_hash: String,
}

/// Tokens are only written back as "last used" once a minute, so reads stay reads.
const TOUCH_EVERY_MS: i64 = 60_000;

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = presented_token(parts)?;
        // Valid tokens are 64 hex characters; anything else cannot match, skip the lookup.
        if token.len() > 256 {
            return Err(ApiError::Unauthorized("invalid or expired token"));
        }
        let token_hash = tokens::digest_hex(token);
        let owner = state
            .store
            .token_owner(&token_hash)
            .await?
            .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
        let now = crate::domain::now_ms();
        if owner.expires_at <= now || owner.user.disabled {
            return Err(ApiError::Unauthorized("invalid or expired token"));
        }
        if owner.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
            // Bookkeeping only: a failure here must not fail the request.
            if let Err(e) = state.store.touch_token(&token_hash, now).await {
                tracing::debug!(error = %e, "could not record token use");
            }
        }
        Ok(ApiUser {
            user: owner.user,
            token_hash,
        })
    }
}

/// Passes only requests carrying the right `x-admin-token`.
pub struct AdminGuard;

impl FromRequestParts<AppState> for AdminGuard {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts, state);
        let presented = parts
            .headers
            .get("x-admin-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        check_admin_token(state, ip, presented)
            .await
            .map(|()| AdminGuard)
    }
}

/// Checks a presented `ADMIN_TOKEN` in constant time (the API header and the dashboard's
/// elevation form); wrong tokens count as failures per client IP and lock it out like
/// failed logins.
pub async fn check_admin_token(
    state: &AppState,
    ip: IpAddr,
    presented: &str,
) -> Result<(), ApiError> {
    let Some(expected) = state.settings.admin_token.as_ref() else {
        return Err(ApiError::Forbidden("admin disabled"));
    };
    // A missing token is no guess: counting it would let a script that forgot the header
    // lock its operator's address out. The answer is the same as for a wrong token.
    if presented.is_empty() {
        return Err(ApiError::Forbidden("invalid admin token"));
    }
    let key = format!("admin-ip:{ip}");
    let now = crate::domain::now_ms();
    if let Some(until) = state
        .store
        .login_locked_until(std::slice::from_ref(&key), now)
        .await?
    {
        return Err(too_many(until, now));
    }
    if tokens::secrets_equal(presented, expected.expose()) {
        return Ok(());
    }
    tracing::warn!(%ip, "admin token rejected");
    super::api::auth::count_failure(state, &key, now, state.settings.login_max_failures_ip).await?;
    Err(ApiError::Forbidden("invalid admin token"))
}

pub fn too_many(until: i64, now: i64) -> ApiError {
    let secs = u64::try_from((until - now + 999) / 1000).unwrap_or(1);
    ApiError::TooManyRequests {
        retry_after_secs: secs,
        detail: "too many failed attempts; retry later",
    }
}

/// The client's IP: the socket peer, or the nearest untrusted `X-Forwarded-For` hop when
/// the peer is one of our configured proxies (a client cannot forge its way past that).
pub fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let proxies = &state.settings.trusted_proxies;
    if proxies.is_empty() || !proxies.contains(&peer) {
        return peer;
    }
    let Some(xff) = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    else {
        return peer;
    };
    xff.split(',')
        .rev()
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .find(|ip| !proxies.contains(ip))
        .unwrap_or(peer)
}

/// The client IP as an extractor.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, state)))
    }
}

/// The caller of a route that users and the admin share (`/rules`, `/channels`,
/// `/deliveries`): the admin when an `x-admin-token` header is present (and right),
/// otherwise the user of the API token.
pub enum Actor {
    User(User),
    Admin,
}

impl Actor {
    /// What the caller may see: the admin everything, a user what they own.
    pub fn scope(&self) -> crate::store::Scope {
        match self {
            Actor::User(u) => crate::store::Scope::Owner(u.id),
            Actor::Admin => crate::store::Scope::All,
        }
    }

    /// Owner of what the caller creates: the admin creates global items.
    pub fn owner(&self) -> Option<i64> {
        match self {
            Actor::User(u) => Some(u.id),
            Actor::Admin => None,
        }
    }

    /// The item if the caller may see it; otherwise (absent, or someone else's) a 404
    /// naming `what`, so other users' items do not even seem to exist.
    pub fn owned<T>(
        &self,
        item: Option<T>,
        owner: impl Fn(&T) -> Option<i64>,
        what: &str,
    ) -> Result<T, ApiError> {
        match item {
            Some(t) if self.may_touch(owner(&t)) => Ok(t),
            _ => Err(ApiError::NotFound(format!("{what} not found"))),
        }
    }

    /// Whether the caller may see and change an item owned by `owner`.
    pub fn may_touch(&self, owner: Option<i64>) -> bool {
        match self {
            Actor::User(u) => owner == Some(u.id),
            Actor::Admin => true,
        }
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key("x-admin-token") {
            AdminGuard::from_request_parts(parts, state).await?;
            return Ok(Actor::Admin);
        }
        Ok(Actor::User(
            ApiUser::from_request_parts(parts, state).await?.user,
        ))
    }
}
