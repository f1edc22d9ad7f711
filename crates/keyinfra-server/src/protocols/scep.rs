//! SCEP over HTTP (RFC 8894 4): `GET|POST {public}/scep?operation=...`, and the same at
//! `/cgi-bin/pkiclient.exe`, the path Cisco IOS and many other clients use by default.
//! Served on the plain-HTTP listener and the TLS one, without login: SCEP protects its own
//! messages, and a device proves its right to a certificate with a challenge inside them.
//!
//! * `GetCACaps`: text, one capability per line.
//! * `GetCACert`: the RA and the CA chain, a degenerate PKCS#7 as
//!   `application/x-x509-ca-ra-cert` (scepclient parses no other type).
//! * `PKIOperation`: by POST (the body, whatever its Content-Type: strongSwan sends none)
//!   or by GET (`message=`, base64 that clients encode three ways: scepclient URL-safe and
//!   query-escaped, strongSwan with `%2B` and line breaks, certmonger fully
//!   percent-encoded). The answer is a CertRep, `application/x-pki-message`; a body that
//!   is no pkiMessage at all is a 400 problem.
//! * `GetNextCACert`: while a CA rollover is prepared (an issuing CA whose validity starts
//!   later), its RA and chain, signed by the current RA, as
//!   `application/x-x509-next-ca-cert`; 404 when none is.

use axum::extract::{RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use keyinfra_core::scep::{CAPABILITIES, PkiOperationAnswer};
use keyinfra_core::{ErrorCode, OsRandom};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::extract::ClientAddress;
use crate::problem::Problem;

const CA_RA_CERT: &str = "application/x-x509-ca-ra-cert";
const PKI_MESSAGE: &str = "application/x-pki-message";
const NEXT_CA_CERT: &str = "application/x-x509-next-ca-cert";

pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(scep_get, scep_post))
        .routes(routes!(pkiclient_get, pkiclient_post))
}

/// SCEP's GET operations: GetCACaps, GetCACert, GetNextCACert, and PKIOperation with
/// the message in the query.
#[utoipa::path(get, path = "/scep", tag = "scep", security(()),
    params(
        ("operation" = String, Query, description = "GetCACaps, GetCACert, GetNextCACert or PKIOperation"),
        ("message" = Option<String>, Query, description = "PKIOperation: the pkiMessage, base64 (then percent-encoded)")),
    responses(
        (status = 200, description = "GetCACaps: text/plain; GetCACert: application/x-x509-ca-ra-cert; GetNextCACert: application/x-x509-next-ca-cert; PKIOperation: a CertRep, application/x-pki-message (a refusal is a CertRep FAILURE)"),
        (status = 400, description = "No or an unknown operation, or a message that is no pkiMessage"),
        (status = 404, description = "GetNextCACert: no CA rollover is prepared")))]
async fn scep_get(state: State<AppState>, address: ClientAddress, query: RawQuery) -> Response {
    get(state, address, query).await
}

/// PKIOperation with the pkiMessage (DER) as the body.
#[utoipa::path(post, path = "/scep", tag = "scep", security(()),
    params(("operation" = String, Query, description = "PKIOperation")),
    request_body(content = Vec<u8>, content_type = "application/x-pki-message",
        description = "A DER pkiMessage (RFC 8894 3.2); any Content-Type is read"),
    responses(
        (status = 200, content_type = "application/x-pki-message", body = Vec<u8>, description = "A CertRep: SUCCESS, FAILURE with its failInfo, or PENDING"),
        (status = 400, description = "Not PKIOperation, or a body that is no pkiMessage"),
        (status = 429, description = "rate_limited: over KEYINFRA_SCEP_RATE PKIOperations a minute from this address; Retry-After says when")))]
async fn scep_post(
    state: State<AppState>,
    address: ClientAddress,
    query: RawQuery,
    request: Request,
) -> Response {
    post(state, address, query, request).await
}

/// `/scep`'s GET operations at the path Cisco IOS and others default to.
#[utoipa::path(get, path = "/cgi-bin/pkiclient.exe", tag = "scep", security(()),
    params(
        ("operation" = String, Query, description = "GetCACaps, GetCACert, GetNextCACert or PKIOperation"),
        ("message" = Option<String>, Query, description = "PKIOperation: the pkiMessage, base64 (then percent-encoded)")),
    responses(
        (status = 200, description = "As GET /scep"),
        (status = 400, description = "As GET /scep")))]
async fn pkiclient_get(
    state: State<AppState>,
    address: ClientAddress,
    query: RawQuery,
) -> Response {
    get(state, address, query).await
}

/// `/scep`'s PKIOperation by POST at the path Cisco IOS and others default to.
#[utoipa::path(post, path = "/cgi-bin/pkiclient.exe", tag = "scep", security(()),
    params(("operation" = String, Query, description = "PKIOperation")),
    request_body(content = Vec<u8>, content_type = "application/x-pki-message"),
    responses(
        (status = 200, content_type = "application/x-pki-message", body = Vec<u8>, description = "As POST /scep"),
        (status = 400, description = "As POST /scep")))]
async fn pkiclient_post(
    state: State<AppState>,
    address: ClientAddress,
    query: RawQuery,
    request: Request,
) -> Response {
    post(state, address, query, request).await
}

async fn get(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    match parameter(&query, "operation").as_deref() {
        Some("GetCACaps") => (
            [(header::CONTENT_TYPE, "text/plain; charset=us-ascii")],
            CAPABILITIES,
        )
            .into_response(),
        Some("GetCACert") => {
            match state
                .authority
                .scep
                .ca_certificates(&state.db, &mut OsRandom)
                .await
            {
                Ok(der) => ([(header::CONTENT_TYPE, CA_RA_CERT)], der).into_response(),
                Err(e) => Problem::from(e).into_response(),
            }
        }
        Some("GetNextCACert") => match state
            .authority
            .scep
            .next_ca_certificates(&state.db, &mut OsRandom)
            .await
        {
            Ok(Some(der)) => ([(header::CONTENT_TYPE, NEXT_CA_CERT)], der).into_response(),
            Ok(None) => Problem::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "no CA rollover is prepared (`keyinfra ca create --starts-at` prepares one)",
            )
            .into_response(),
            Err(e) => Problem::from(e).into_response(),
        },
        Some("PKIOperation") => {
            if let Err(e) = state.scep_limit.take(address, state.clock.now()) {
                return Problem::from(e).into_response();
            }
            let limit = state.authority.scep.max_message_bytes();
            let Some(message) = parameter(&query, "message") else {
                return malformed("PKIOperation by GET needs a message parameter");
            };
            // Base64 is 4/3 of the bytes; line breaks and percent-escapes are gone by now.
            if message.len() > limit.div_ceil(3) * 4 + 4 {
                return malformed("the message is larger than a SCEP request may be");
            }
            let Some(der) = decode_message(&message) else {
                return malformed("the message parameter is not base64");
            };
            pki_operation(&state, &der).await
        }
        Some(_) => unknown_operation(),
        None => malformed("the operation parameter is missing"),
    }
}

async fn post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let query = query.unwrap_or_default();
    if parameter(&query, "operation").as_deref() != Some("PKIOperation") {
        return unknown_operation();
    }
    // Anyone may send one, and each costs an RSA decryption and signature: the address's
    // rate comes before anything else (KEYINFRA_SCEP_RATE).
    if let Err(e) = state.scep_limit.take(address, state.clock.now()) {
        return Problem::from(e).into_response();
    }
    // The edge has read the body already (within its limit and deadline): this takes it.
    let limit = state.authority.scep.max_message_bytes();
    let Ok(body) = axum::body::to_bytes(request.into_body(), limit).await else {
        return malformed("the message is larger than a SCEP request may be");
    };
    pki_operation(&state, &body).await
}

async fn pki_operation(state: &AppState, der: &[u8]) -> Response {
    match state
        .authority
        .scep
        .pki_operation(&state.db, der, &mut OsRandom)
        .await
    {
        Ok(PkiOperationAnswer::CertRep(der)) => {
            ([(header::CONTENT_TYPE, PKI_MESSAGE)], der).into_response()
        }
        Ok(PkiOperationAnswer::Unreadable(reason)) => malformed(reason),
        Err(e) => Problem::from(e).into_response(),
    }
}

fn malformed(detail: &'static str) -> Response {
    Problem::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::ScepMalformedMessage,
        detail,
    )
    .into_response()
}

fn unknown_operation() -> Response {
    Problem::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::ScepUnknownOperation,
        "operation must be GetCACaps, GetCACert, GetNextCACert or PKIOperation (POST: PKIOperation only)",
    )
    .into_response()
}

/// One query parameter, percent-decoded but with `+` kept as `+`: base64 uses it, and
/// clients that do not escape it mean a plus, not a space.
fn parameter(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A GET message's bytes: whitespace (strongSwan's line breaks) dropped, the URL-safe
/// alphabet (scepclient) mapped to the standard one, padding optional.
fn decode_message(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    LENIENT.decode(cleaned).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clients_message_encoding_decodes() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        let standard = base64::engine::general_purpose::STANDARD.encode(&bytes);
        // certmonger: fully percent-encoded.
        let certmonger = standard
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        // strongSwan: `+` escaped, a %0A line break every 64 characters.
        let strongswan: String = standard
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap().replace('+', "%2B"))
            .collect::<Vec<_>>()
            .join("%0A");
        // scepclient: the URL-safe alphabet, query-escaped (its `=` as %3D).
        let scepclient = base64::engine::general_purpose::URL_SAFE
            .encode(&bytes)
            .replace('=', "%3D");
        // A client that escapes nothing: `+` stays `+`.
        for query in [certmonger, strongswan, scepclient, standard] {
            let query = format!("operation=PKIOperation&message={query}");
            let message = parameter(&query, "message").unwrap();
            assert_eq!(decode_message(&message).unwrap(), bytes, "{query}");
        }
        assert_eq!(decode_message("not base64!"), None);
        assert_eq!(parameter("operation=GetCACaps", "message"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
