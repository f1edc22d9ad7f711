//! EST over HTTPS (RFC 7030): `/.well-known/est/{operation}` for the default issuing CA,
//! and `/.well-known/est/{label}/{operation}` for the CA whose id or short name is the
//! label. Served on the TLS listener only: without TLS the paths answer 403
//! `https_required` (plain HTTP carries passwords in the clear and has no client
//! certificates), and the plain public listener does not route them at all.
//!
//! * `GET cacerts`: the CA chain, base64 certs-only PKCS#7. No authentication.
//! * `POST simpleenroll`: a base64 PKCS#10 (one line or wrapped, PEM or DER accepted too),
//!   with HTTP Basic: a user's name and password, or `{challenge id}:{challenge}`.
//!   200 with the certificate as base64 certs-only PKCS#7; 202 + Retry-After while a
//!   challenge's request waits for approval (the client sends it again).
//! * `POST simplereenroll`: renews the TLS client certificate for the CSR's key.
//! * `POST serverkeygen`: the key made here; `multipart/mixed` with the PKCS#8 key and the
//!   certificate (RFC 7030 4.4.2).
//! * `GET csrattrs`: what the policy asks of a CSR, base64 DER, or 204.
//!
//! Answers are written whole, with Content-Length, one-line base64 and few headers:
//! strongSwan 5.9.8's `pki --est` reads only the first KiB for headers and neither
//! unwraps base64 nor reads chunked bodies. Failures are problem+json 4xx with a stable
//! code; a 401 asks for `Basic realm="keyinfra-est"`.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use keyinfra_core::enrollment::requests::PollAnswer;
use keyinfra_core::est::{Enrolled, EstClient, TlsFacts};
use keyinfra_core::{CoreError, ErrorCode, OsRandom};
use keyinfra_pki::est::body::{MAX_EST_BODY_BYTES, decode_base64_body, encode_one_line};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::AppState;
use crate::extract::ClientAddress;
use crate::problem::Problem;
use crate::tls::TlsSession;

const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";
const CSR_ATTRS: &str = "application/csrattrs";
const REALM: &str = "Basic realm=\"keyinfra-est\"";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(est_get, est_post))
        .routes(routes!(est_get_for_ca, est_post_for_ca))
}

/// The EST operations read by GET: `cacerts` (no authentication) and `csrattrs`.
#[utoipa::path(get, path = "/.well-known/est/{operation}", tag = "est", security(()),
    params(("operation" = String, Path, description = "cacerts or csrattrs")),
    responses(
        (status = 200, description = "cacerts: application/pkcs7-mime (base64 certs-only); csrattrs: application/csrattrs (base64 DER)"),
        (status = 204, description = "csrattrs: the policy asks for nothing in particular"),
        (status = 401, description = "csrattrs without valid credentials"),
        (status = 403, description = "https_required: not over TLS"),
        (status = 404, description = "An unknown operation")))]
async fn est_get(
    state: State<AppState>,
    address: ClientAddress,
    Path(operation): Path<String>,
    request: Request,
) -> Response {
    get(state, address, None, &operation, request).await
}

/// As `GET /.well-known/est/{operation}`, for the CA named by `label` (its id or short name).
#[utoipa::path(get, path = "/.well-known/est/{label}/{operation}", tag = "est", security(()),
    params(
        ("label" = String, Path, description = "A CA's id or short name"),
        ("operation" = String, Path, description = "cacerts or csrattrs")),
    responses(
        (status = 200, description = "As without a label"),
        (status = 404, description = "An unknown label or operation")))]
async fn est_get_for_ca(
    state: State<AppState>,
    address: ClientAddress,
    Path((label, operation)): Path<(String, String)>,
    request: Request,
) -> Response {
    get(state, address, Some(&label), &operation, request).await
}

/// The EST operations that take a CSR: `simpleenroll`, `simplereenroll`, `serverkeygen`.
#[utoipa::path(post, path = "/.well-known/est/{operation}", tag = "est", security(()),
    params(("operation" = String, Path, description = "simpleenroll, simplereenroll or serverkeygen")),
    request_body(content = String, content_type = "application/pkcs10",
        description = "A PKCS#10 CSR, base64 (one line or wrapped); PEM or DER are read too"),
    responses(
        (status = 200, description = "application/pkcs7-mime (base64 certs-only) with the certificate; serverkeygen: multipart/mixed with the PKCS#8 key and the certificate"),
        (status = 202, description = "simpleenroll: held for an ADMIN's approval; send the same request again after Retry-After"),
        (status = 400, description = "A body that is no base64 CSR"),
        (status = 401, description = "Missing or wrong credentials (WWW-Authenticate: Basic realm=\"keyinfra-est\")"),
        (status = 403, description = "https_required; simplereenroll: no, an unknown, a revoked or an expired client certificate"),
        (status = 415, description = "unsupported_media_type: not application/pkcs10"),
        (status = 422, description = "A CSR or names the policy refuses, a bad signature, a channel binding that does not match"),
        (status = 429, description = "rate_limited: over KEYINFRA_EST_RATE requests a minute from this address")))]
async fn est_post(
    state: State<AppState>,
    address: ClientAddress,
    Path(operation): Path<String>,
    request: Request,
) -> Response {
    post(state, address, None, &operation, request).await
}

/// As `POST /.well-known/est/{operation}`, issuing from the CA named by `label`.
#[utoipa::path(post, path = "/.well-known/est/{label}/{operation}", tag = "est", security(()),
    params(
        ("label" = String, Path, description = "A CA's id or short name"),
        ("operation" = String, Path, description = "simpleenroll, simplereenroll or serverkeygen")),
    request_body(content = String, content_type = "application/pkcs10"),
    responses(
        (status = 200, description = "As without a label"),
        (status = 404, description = "An unknown label or operation")))]
async fn est_post_for_ca(
    state: State<AppState>,
    address: ClientAddress,
    Path((label, operation)): Path<(String, String)>,
    request: Request,
) -> Response {
    post(state, address, Some(&label), &operation, request).await
}

async fn get(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    label: Option<&str>,
    operation: &str,
    request: Request,
) -> Response {
    if request.extensions().get::<TlsSession>().is_none() {
        return https_required();
    }
    let outcome = match operation {
        "cacerts" => cacerts(&state, label).await,
        "csrattrs" => {
            if let Err(e) = state.est_limit.take(address, state.clock.now()) {
                return Problem::from(e).into_response();
            }
            csrattrs(&state, address, label, request.headers()).await
        }
        "simpleenroll" | "simplereenroll" | "serverkeygen" => {
            return Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                format!("{operation} takes a CSR by POST"),
            )
            .into_response();
        }
        _ => return unknown_operation(operation),
    };
    finish(operation, outcome)
}

async fn post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    label: Option<&str>,
    operation: &str,
    request: Request,
) -> Response {
    let Some(session) = request.extensions().get::<TlsSession>().cloned() else {
        return https_required();
    };
    if !matches!(
        operation,
        "simpleenroll" | "simplereenroll" | "serverkeygen"
    ) {
        return if matches!(operation, "cacerts" | "csrattrs") {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                format!("{operation} is read by GET"),
            )
            .into_response()
        } else {
            unknown_operation(operation)
        };
    }
    // Before the body is read or a password hashed.
    if let Err(e) = state.est_limit.take(address, state.clock.now()) {
        return finish(operation, Err(e.into()));
    }
    if !is_pkcs10(request.headers()) {
        return finish(
            operation,
            Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "an EST request's body is a CSR: Content-Type: application/pkcs10",
            )),
        );
    }
    let headers = request.headers().clone();
    // The edge has read the body already (within its limit and deadline): this takes it.
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_EST_BODY_BYTES).await else {
        return finish(
            operation,
            Err(bad_request(format!(
                "the body is larger than {MAX_EST_BODY_BYTES} bytes"
            ))),
        );
    };
    let csr = match decode_base64_body(&body) {
        Ok(csr) => csr,
        Err(e) => return finish(operation, Err(bad_request(e.to_string()))),
    };
    let outcome = match operation {
        "simpleenroll" => enroll(&state, address, label, &headers, &session, &csr).await,
        "serverkeygen" => server_keygen(&state, address, label, &headers, &session, &csr).await,
        _ => reenroll(&state, label, &session, &csr).await,
    };
    finish(operation, outcome)
}

/// Counts the outcome and turns it into the answer.
fn finish(operation: &str, outcome: Result<Response, Problem>) -> Response {
    let response = outcome.unwrap_or_else(IntoResponse::into_response);
    let status = response.status();
    let outcome = match status.as_u16() {
        200 | 204 => "ok",
        202 => "pending",
        401 => "unauthenticated",
        403 => "forbidden",
        429 => "rate_limited",
        400..=499 => "refused",
        _ => "error",
    };
    let operation = match operation {
        "cacerts" => "cacerts",
        "csrattrs" => "csrattrs",
        "simpleenroll" => "simpleenroll",
        "simplereenroll" => "simplereenroll",
        "serverkeygen" => "serverkeygen",
        _ => "other",
    };
    metrics::counter!("keyinfra_est_operations_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
    response
}

async fn cacerts(state: &AppState, label: Option<&str>) -> Result<Response, Problem> {
    let ca = ca_for_label(state, label).await?;
    let der = state.authority.est.ca_certificates(&state.db, ca).await?;
    Ok(base64_answer(CERTS_ONLY, &der))
}

async fn csrattrs(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    label: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, Problem> {
    ca_for_label(state, label).await?;
    let owner = match authenticate(state, address, headers).await? {
        // Looking costs nothing: the challenge is given back.
        Credentials::Challenge(grant, _) => {
            state
                .authority
                .challenges
                .release(&state.db, grant.id)
                .await?;
            grant.owner_id
        }
        Credentials::User(id) => id,
        Credentials::UsedChallenge { .. } => return Err(unauthenticated()),
    };
    match state.authority.est.csr_attributes(&state.db, owner).await? {
        Some(der) => Ok(base64_answer(CSR_ATTRS, &der)),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

async fn enroll(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    label: Option<&str>,
    headers: &HeaderMap,
    session: &TlsSession,
    csr: &[u8],
) -> Result<Response, Problem> {
    let ca = ca_for_label(state, label).await?;
    let client = match authenticate(state, address, headers).await? {
        Credentials::User(id) => EstClient::User(id),
        Credentials::Challenge(grant, secret) => EstClient::Challenge { grant, secret },
        // A client polling a held request sends the same request with the same
        // (now used) challenge.
        Credentials::UsedChallenge { id, secret } => {
            return match state
                .authority
                .est
                .poll_held(&state.db, id, &secret, csr)
                .await?
            {
                PollAnswer::Unknown => Err(unauthenticated()),
                PollAnswer::Pending => Ok(pending()),
                PollAnswer::Refused => Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Forbidden,
                    "the enrollment request was rejected, or expired undecided",
                )),
                PollAnswer::Issued(der) => Ok(certificate_answer(&der)?),
            };
        }
    };
    let tls = TlsFacts {
        exporter: session.exporter(),
    };
    match state
        .authority
        .est
        .enroll(&state.db, &client, ca, csr, tls, &mut OsRandom)
        .await
        .map_err(spent_challenge_is_unauthenticated)?
    {
        Enrolled::Issued(record) => Ok(certificate_answer(&record.certificate_der)?),
        Enrolled::Pending => Ok(pending()),
    }
}

async fn server_keygen(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    label: Option<&str>,
    headers: &HeaderMap,
    session: &TlsSession,
    csr: &[u8],
) -> Result<Response, Problem> {
    let ca = ca_for_label(state, label).await?;
    let client = match authenticate(state, address, headers).await? {
        Credentials::User(id) => EstClient::User(id),
        Credentials::Challenge(grant, secret) => EstClient::Challenge { grant, secret },
        Credentials::UsedChallenge { .. } => return Err(unauthenticated()),
    };
    let tls = TlsFacts {
        exporter: session.exporter(),
    };
    let (key, record) = state
        .authority
        .est
        .server_keygen(&state.db, &client, ca, csr, tls, &mut OsRandom)
        .await
        .map_err(spent_challenge_is_unauthenticated)?;
    let certs_only = keyinfra_pki::cms::certs_only(&[&record.certificate_der])
        .map_err(|e| Problem::from(CoreError::from(e)))?;
    let (content_type, body) = keyinfra_pki::est::multipart::server_keygen_body(&key, &certs_only);
    let mut response = (StatusCode::OK, body.to_vec()).into_response();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn reenroll(
    state: &AppState,
    label: Option<&str>,
    session: &TlsSession,
    csr: &[u8],
) -> Result<Response, Problem> {
    // The label must name a CA; the renewal stays with the certificate's own terms.
    ca_for_label(state, label).await?;
    let tls = TlsFacts {
        exporter: session.exporter(),
    };
    let record = state
        .authority
        .est
        .reenroll(
            &state.db,
            session.client_certificate(),
            csr,
            tls,
            &mut OsRandom,
        )
        .await?;
    certificate_answer(&record.certificate_der)
}

/// Who sent the request, from HTTP Basic.
enum Credentials {
    User(Uuid),
    /// A challenge claimed for this request, and the secret (for a held request's poll).
    Challenge(
        keyinfra_core::enrollment::challenges::ChallengeGrant,
        Zeroizing<String>,
    ),
    /// A challenge's id with a secret that claims nothing now: maybe a held request's poll.
    UsedChallenge {
        id: Uuid,
        secret: Zeroizing<String>,
    },
}

/// HTTP Basic: a challenge when the user part is a UUID (a challenge id), else a user's
/// name and password. A user whose name is itself a UUID therefore cannot enroll with
/// their password over EST (docs/enrollment.md); falling back to the password would spend
/// an Argon2id check on every wrong challenge.
async fn authenticate(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<Credentials, Problem> {
    let Some((user, password)) = basic_credentials(headers) else {
        return Err(unauthenticated());
    };
    if let Ok(id) = Uuid::parse_str(&user) {
        return match state
            .authority
            .est
            .claim_challenge(&state.db, id, &password)
            .await?
        {
            Some(grant) => Ok(Credentials::Challenge(grant, password)),
            None => Ok(Credentials::UsedChallenge {
                id,
                secret: password,
            }),
        };
    }
    let user_id = state
        .users
        .verify_credentials(&state.db, &user, password.to_string(), address)
        .await
        .map_err(|e| match e {
            CoreError::InvalidCredentials => unauthenticated(),
            other => Problem::from(other),
        })?;
    Ok(Credentials::User(user_id))
}

/// `Authorization: Basic base64(user:password)`; `None` if absent or unreadable.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, Zeroizing<String>)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?,
    );
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), Zeroizing::new(password.to_owned())))
}

async fn ca_for_label(state: &AppState, label: Option<&str>) -> Result<Uuid, Problem> {
    state
        .authority
        .est
        .ca_for_label(&state.db, label)
        .await
        .map_err(|e| match e {
            CoreError::NotFound(_) => Problem::new(
                StatusCode::NOT_FOUND,
                ErrorCode::UnknownCa,
                "no CA has this label (a CA's id or short name; `keyinfra ca list` shows them)",
            ),
            other => other.into(),
        })
}

fn is_pkcs10(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/pkcs10"))
}

/// The certificate as a base64 certs-only PKCS#7.
fn certificate_answer(der: &[u8]) -> Result<Response, Problem> {
    let certs_only = keyinfra_pki::cms::certs_only(&[der]).map_err(CoreError::from)?;
    Ok(base64_answer(CERTS_ONLY, &certs_only))
}

/// One-line base64 with Content-Transfer-Encoding (as libest and OpenXPKI send it).
fn base64_answer(content_type: &'static str, der: &[u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                "base64",
            ),
        ],
        encode_one_line(der),
    )
        .into_response()
}

fn pending() -> Response {
    (
        StatusCode::ACCEPTED,
        [(
            header::RETRY_AFTER,
            keyinfra_core::est::RETRY_AFTER_SECONDS.to_string(),
        )],
    )
        .into_response()
}

fn unauthenticated() -> Problem {
    let mut problem = Problem::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthenticated,
        "EST needs HTTP Basic: a user's name and password, or an enrollment challenge as {challenge id}:{challenge}",
    );
    problem.www_authenticate = Some(REALM);
    problem
}

/// A challenge found spent when its certificate was recorded (withdrawn, its owner
/// disabled, or used by another request meanwhile) is a credential that no longer works:
/// the same 401 as presenting it afterwards.
fn spent_challenge_is_unauthenticated(error: CoreError) -> Problem {
    match error {
        CoreError::Conflict {
            code: ErrorCode::ChallengeUsed,
            ..
        } => unauthenticated(),
        other => other.into(),
    }
}

fn bad_request(detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidCsr, detail)
}

fn https_required() -> Response {
    Problem::new(
        StatusCode::FORBIDDEN,
        ErrorCode::HttpsRequired,
        "EST is served over HTTPS only (start KeyInfra with --tls auto, or --tls-cert and --tls-key)",
    )
    .into_response()
}

fn unknown_operation(operation: &str) -> Response {
    let shown: String = operation.chars().take(40).collect();
    Problem::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!(
            "{shown:?} is not an EST operation: cacerts, simpleenroll, simplereenroll, serverkeygen or csrattrs"
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_and_anything_else_is_none() {
        let mut headers = HeaderMap::new();
        assert!(basic_credentials(&headers).is_none());
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("basic {encoded}")).unwrap(),
        );
        let (user, password) = basic_credentials(&headers).unwrap();
        assert_eq!((user.as_str(), password.as_str()), ("alice", "pa:ss"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_credentials(&headers).is_none());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&headers).is_none());
    }

    #[test]
    fn only_application_pkcs10_is_a_csr() {
        let mut headers = HeaderMap::new();
        assert!(!is_pkcs10(&headers));
        for (value, ok) in [
            ("application/pkcs10", true),
            ("Application/PKCS10; charset=binary", true),
            ("application/x-www-form-urlencoded", false),
            ("text/plain", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_pkcs10(&headers), ok, "{value}");
        }
    }
}
