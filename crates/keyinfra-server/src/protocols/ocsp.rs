//! OCSP over HTTP (RFC 6960 appendix A, RFC 5019): `POST /ocsp` with the DER request as
//! the body, and `GET /ocsp/{base64 of the DER request}` (percent-encoded), on the public
//! listener and the TLS one alike, without login. The answer is always 200
//! `application/ocsp-response`: a bad request is an OCSP `malformedRequest`, a database
//! that cannot be reached `tryLater` (RFC 6960 says errors are OCSP statuses, and clients
//! treat an HTTP error as "no answer").
//!
//! GET answers without a nonce carry RFC 5019 caching headers: `Cache-Control: max-age`
//! up to nextUpdate, `ETag` (a digest of the response) and `Last-Modified` (thisUpdate),
//! so a proxy or CDN in front can serve repeat requests.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use keyinfra_core::OsRandom;
use keyinfra_core::ocsp::{OcspAnswer, OcspOutcome};
use keyinfra_pki::ocsp::{OcspResponseStatus, error_response};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

const OCSP_REQUEST: &str = "application/ocsp-request";
const OCSP_RESPONSE: &str = "application/ocsp-response";

pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ocsp_post))
        .routes(routes!(ocsp_get))
}

/// Answers an OCSP request sent as the body.
#[utoipa::path(post, path = "/ocsp", tag = "ocsp", security(()),
    request_body(content = Vec<u8>, content_type = "application/ocsp-request",
        description = "A DER OCSPRequest (RFC 6960 4.1)"),
    responses((status = 200, content_type = "application/ocsp-response", body = Vec<u8>,
        description = "A DER OCSPResponse; errors are OCSP statuses (malformedRequest, unauthorized, tryLater), never HTTP errors")))]
async fn ocsp_post(State(state): State<AppState>, request: Request) -> Response {
    // The request itself rather than a HeaderMap extractor, which would copy the headers.
    let is_ocsp = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(OCSP_REQUEST));
    if !is_ocsp {
        return malformed("wrong content type");
    }
    // The edge has read the body already (within its limit and deadline): this takes it.
    let Ok(body) = axum::body::to_bytes(request.into_body(), crate::BODY_LIMIT).await else {
        return malformed("request too large");
    };
    let answer = answer(&state, &body).await;
    respond(answer, false, state.clock.now())
}

/// Answers an OCSP request sent in the URL, base64 then percent-encoded (RFC 6960 A.1).
#[utoipa::path(get, path = "/ocsp/{request}", tag = "ocsp", security(()),
    params(("request" = String, Path, description = "The DER OCSPRequest, base64 then percent-encoded")),
    responses((status = 200, content_type = "application/ocsp-response", body = Vec<u8>,
        description = "A DER OCSPResponse with RFC 5019 caching headers when it carries no nonce")))]
async fn ocsp_get(State(state): State<AppState>, Path(encoded): Path<String>) -> Response {
    // axum has percent-decoded the segment already; base64's `+`, `/` and `=` arrive as
    // sent. Some clients send the URL-safe alphabet, or drop the padding: accept both.
    let max_encoded = state.authority.ocsp.max_request_bytes().div_ceil(3) * 4 + 4;
    if encoded.len() > max_encoded {
        return malformed("request too large");
    }
    let cleaned: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&cleaned))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&cleaned))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&cleaned));
    let Ok(der) = der else {
        return malformed("not base64");
    };
    let answer = answer(&state, &der).await;
    respond(answer, true, state.clock.now())
}

async fn answer(state: &AppState, der: &[u8]) -> OcspAnswer {
    let answer = state
        .authority
        .ocsp
        .respond(&state.db, der, &mut OsRandom)
        .await;
    count_answer(answer.outcome, answer.from_cache);
    answer
}

/// Counts an answer in `keyinfra_ocsp_responses_total`. Each series is registered on its
/// first answer (so /metrics lists the outcomes that happened) and its handle kept: finding
/// it in the recorder by its labels would allocate and hash them on every request.
fn count_answer(outcome: OcspOutcome, from_cache: bool) {
    const SERIES: usize = OcspOutcome::ALL.len() * 2;
    static COUNTERS: [OnceLock<metrics::Counter>; SERIES] = [const { OnceLock::new() }; SERIES];
    let Some(slot) = COUNTERS.get(outcome as usize * 2 + usize::from(from_cache)) else {
        return;
    };
    slot.get_or_init(|| {
        metrics::counter!("keyinfra_ocsp_responses_total",
            "outcome" => outcome.label(),
            "cached" => if from_cache { "true" } else { "false" })
    })
    .increment(1);
}

/// The answer to a body over the edge's limit (which the edge reads before any handler).
pub(crate) fn too_large() -> Response {
    malformed("request too large")
}

/// A malformedRequest answer for what never reached the parser.
fn malformed(why: &'static str) -> Response {
    tracing::debug!(why, "malformed OCSP request");
    count_answer(OcspOutcome::Malformed, false);
    let der = error_response(OcspResponseStatus::MalformedRequest);
    ([(header::CONTENT_TYPE, OCSP_RESPONSE)], der).into_response()
}

fn respond(answer: OcspAnswer, get: bool, now: OffsetDateTime) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(OCSP_RESPONSE),
        )],
        Bytes::from_owner(answer.der.clone()),
    )
        .into_response();
    let headers = response.headers_mut();
    match answer.cacheable {
        Some((this_update, next_update)) if get => {
            let max_age = (next_update - now).whole_seconds().max(0);
            let digest = keyinfra_pki::sha256_fingerprint(&answer.der);
            let values = [
                (
                    header::CACHE_CONTROL,
                    format!("max-age={max_age}, public, no-transform, must-revalidate"),
                ),
                (
                    header::ETAG,
                    format!(
                        "\"{}\"",
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
                    ),
                ),
                (header::LAST_MODIFIED, http_date(this_update)),
                (header::EXPIRES, http_date(next_update)),
            ];
            for (name, value) in values {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
        }
        _ => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    response
}

/// An HTTP date (RFC 9110 5.6.7), e.g. `Thu, 03 Dec 2026 18:00:00 GMT`.
fn http_date(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdate() {
        let at = OffsetDateTime::from_unix_timestamp(1_796_320_800).unwrap();
        assert_eq!(http_date(at), "Thu, 03 Dec 2026 18:00:00 GMT");
    }
}
