//! REST API v1. Each module registers its routes (and their OpenAPI descriptions) on an
//! `OpenApiRouter`, so the document served at /api/v1/openapi.json cannot drift from the
//! routes.

pub mod acme;
pub mod audit;
pub mod auth;
pub mod cas;
pub mod certificates;
pub mod enrollment;
pub mod jobs;
pub mod policies;
pub mod users;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 in UTC, the API's only timestamp format.
pub fn timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `Cache-Control: no-store` on an answer that carries a secret (an access token, an
/// enrollment challenge): no shared cache, proxy or browser keeps a copy.
#[derive(Debug, Clone, Copy)]
pub struct NoStore;

impl axum::response::IntoResponseParts for NoStore {
    type Error = std::convert::Infallible;

    fn into_response_parts(
        self,
        mut parts: axum::response::ResponseParts,
    ) -> Result<axum::response::ResponseParts, Self::Error> {
        parts.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        Ok(parts)
    }
}
