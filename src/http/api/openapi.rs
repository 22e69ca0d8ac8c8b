//! The OpenAPI 3 document served at `/openapi.json`.

use super::{
    alerts, auth, channels, deliveries, health, hosts, ingest, logs, metrics, prometheus, rules,
    thresholds,
};
use crate::http::error::ErrorBody;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "token",
                "API token from POST /login",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("API token from POST /login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "prometheus_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "WATCHPOST_PROMETHEUS_TOKEN; required only when the server sets it",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "agent_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A host's agent token from POST /admin/hosts (not a user token)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-admin-token",
                "The server's ADMIN_TOKEN",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "watchpost", description = "Host metrics, threshold alerts and log analysis. Errors are `{\"detail\": \"...\"}`; times are RFC 3339 UTC."),
    paths(
        auth::register, auth::login, auth::logout, auth::change_password,
        metrics::metrics, metrics::history, prometheus::scrape,
        alerts::alerts, alerts::summary,
        thresholds::get_own, thresholds::set_own, thresholds::get_global, thresholds::set_global,
        health::healthz, health::readyz,
        rules::list, rules::create, rules::get, rules::replace, rules::delete,
        channels::list, channels::create, channels::get, channels::replace, channels::delete,
        channels::test, channels::rotate_secret,
        deliveries::list, deliveries::get, deliveries::retry,
        logs::analyze, logs::list, logs::get_one, logs::delete,
        hosts::list, hosts::admin_list, hosts::create, hosts::rotate_token, hosts::delete,
        ingest::ingest,
    ),
    components(schemas(ErrorBody, deliveries::DeliveryState)),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

/// The OpenAPI document.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
