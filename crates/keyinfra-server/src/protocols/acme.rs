//! ACME over HTTPS (RFC 8555), under `/acme/`, on the TLS listener only (plain HTTP answers
//! 403 `https_required`, and the public listener does not route it): the directory,
//! newNonce, newAccount (with external account binding), an account's URL (fetch, contact
//! update, deactivation) and its orders, newOrder, orders, authorizations, challenges,
//! finalize, certificate download, revokeCert, keyChange and renewal information (RFC 9773).
//! The directory names only what is served.
//!
//! Every answer carries a fresh `Replay-Nonce`, `Cache-Control: no-store` and a `Link` to
//! the directory; every refusal is `application/problem+json` with an
//! `urn:ietf:params:acme:error:` type. URLs are built from the request's `Host`: the `url`
//! a client signs must be the one it sent the request to, so KeyInfra must be reached
//! under the name the client uses (a proxy in front must keep `Host`).

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keyinfra_core::acme::service::{AuthorizationAnswer, OrderAnswer};
use keyinfra_core::acme::{AcmeError, KeyRule};
use keyinfra_core::{ErrorCode, OsRandom};
use keyinfra_db::acme::{
    AccountRecord, AuthorizationStatus, ChallengeRecord, ChallengeStatus, OrderStatus,
};
use keyinfra_pki::acme::wire::ProblemType;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::extract::ClientAddress;
use crate::problem::Problem;
use crate::tls::TlsSession;

const DIRECTORY: &str = "/acme/directory";
const NEW_NONCE: &str = "/acme/new-nonce";
const NEW_ACCOUNT: &str = "/acme/new-account";
const ACCOUNT: &str = "/acme/account/";
const NEW_ORDER: &str = "/acme/new-order";
const ORDER: &str = "/acme/order/";
const AUTHZ: &str = "/acme/authz/";
const CHALLENGE: &str = "/acme/chall/";
const CERTIFICATE: &str = "/acme/cert/";
const REVOKE_CERT: &str = "/acme/revoke-cert";
const KEY_CHANGE: &str = "/acme/key-change";
const RENEWAL_INFO: &str = "/acme/renewal-info";
const PEM_CHAIN: &str = "application/pem-certificate-chain";
const JOSE_JSON: &str = "application/jose+json";

/// The routes (not in the OpenAPI document: ACME is its own protocol, RFC 8555).
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route(DIRECTORY, get(directory))
        .route(NEW_NONCE, get(new_nonce_get).head(new_nonce_head))
        .route(NEW_ACCOUNT, post(new_account))
        .route("/acme/account/{id}", post(account))
        .route("/acme/account/{id}/orders", post(account_orders))
        .route(NEW_ORDER, post(new_order))
        .route("/acme/order/{id}", post(order))
        .route("/acme/authz/{id}", post(authorization))
        .route("/acme/chall/{id}", post(challenge))
        .route("/acme/order/{id}/finalize", post(finalize))
        .route("/acme/cert/{id}", post(certificate))
        .route(REVOKE_CERT, post(revoke_cert))
        .route(KEY_CHANGE, post(key_change))
        .route("/acme/renewal-info/{cert_id}", get(renewal_info))
}

/// `https://{Host}`: the base of every URL this request may name.
fn base_url(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    // A Host is a name or an address and a port: nothing that could splice a URL.
    let plausible = !host.is_empty()
        && host.len() <= 261
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    plausible.then(|| format!("https://{host}"))
}

/// The headers every ACME answer carries.
fn acme_headers(state: &AppState, base: &str, response: &mut Response) {
    let headers = response.headers_mut();
    if let Ok(nonce) = state.acme.new_nonce(&mut OsRandom)
        && let Ok(value) = HeaderValue::from_str(&nonce)
    {
        headers.insert("replay-nonce", value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(link) = HeaderValue::from_str(&format!("<{base}{DIRECTORY}>;rel=\"index\"")) {
        headers.append(header::LINK, link);
    }
}

fn problem(state: &AppState, base: &str, error: &AcmeError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({
            "type": error.problem.urn(),
            "detail": error.detail,
            "status": error.status,
        })
        .to_string(),
    )
        .into_response();
    if let Some(seconds) = error.retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    if let Some(location) = &error.location
        && let Ok(value) = HeaderValue::from_str(location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    acme_headers(state, base, &mut response);
    response
}

/// Refuses plain HTTP and a request without a usable Host; else the base URL.
fn gate(request_is_tls: bool, headers: &HeaderMap) -> Result<String, Box<Response>> {
    if !request_is_tls {
        return Err(Box::new(
            Problem::new(
                StatusCode::FORBIDDEN,
                ErrorCode::HttpsRequired,
                "ACME is served over HTTPS only (start KeyInfra with --tls auto, or --tls-cert and --tls-key)",
            )
            .into_response(),
        ));
    }
    base_url(headers).ok_or_else(|| {
        Box::new(
            Problem::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidBody,
                "the request has no usable Host header",
            )
            .into_response(),
        )
    })
}

fn is_tls(request: &Request) -> bool {
    request.extensions().get::<TlsSession>().is_some()
}

async fn directory(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    request: Request,
) -> Response {
    let base = match gate(is_tls(&request), request.headers()) {
        Ok(base) => base,
        Err(refused) => return *refused,
    };
    if let Err(e) = limited(&state, address) {
        return answered(&state, &base, "directory", Err(e));
    }
    let mut meta = json!({ "externalAccountRequired": state.acme.settings.eab_required });
    if let Some(terms) = &state.acme.settings.terms_of_service {
        meta["termsOfService"] = json!(terms);
    }
    if !state.acme.settings.caa_identities.is_empty() {
        meta["caaIdentities"] = json!(state.acme.settings.caa_identities);
    }
    let body = json!({
        "newNonce": format!("{base}{NEW_NONCE}"),
        "newAccount": format!("{base}{NEW_ACCOUNT}"),
        "newOrder": format!("{base}{NEW_ORDER}"),
        "revokeCert": format!("{base}{REVOKE_CERT}"),
        "keyChange": format!("{base}{KEY_CHANGE}"),
        "renewalInfo": format!("{base}{RENEWAL_INFO}"),
        "meta": meta,
    });
    // The directory itself needs no nonce, but clients may take one from any answer.
    let response = json_response(&state, &base, StatusCode::OK, body);
    answered(&state, &base, "directory", Ok(response))
}

async fn new_nonce_head(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    request: Request,
) -> Response {
    nonce_answer(&state, address, &request, StatusCode::OK)
}

async fn new_nonce_get(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    request: Request,
) -> Response {
    nonce_answer(&state, address, &request, StatusCode::NO_CONTENT)
}

/// RFC 8555 7.2: HEAD answers 200, GET 204, both with a nonce and nothing else.
fn nonce_answer(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    request: &Request,
    status: StatusCode,
) -> Response {
    let base = match gate(is_tls(request), request.headers()) {
        Ok(base) => base,
        Err(refused) => return *refused,
    };
    if let Err(e) = limited(state, address) {
        return answered(state, &base, "new-nonce", Err(e));
    }
    let mut response = status.into_response();
    acme_headers(state, &base, &mut response);
    answered(state, &base, "new-nonce", Ok(response))
}

/// The body of a signed request: `application/jose+json` (RFC 8555 6.2), else 415.
fn signed_body(headers: &HeaderMap) -> Result<(), AcmeError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(JOSE_JSON) {
        Ok(())
    } else {
        Err(AcmeError {
            status: 415,
            ..AcmeError::new(
                ProblemType::Malformed,
                "a signed ACME request is application/jose+json",
            )
        })
    }
}

async fn new_account(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    request: Request,
) -> Response {
    let base = match gate(is_tls(&request), request.headers()) {
        Ok(base) => base,
        Err(refused) => return *refused,
    };
    let url = format!("{base}{NEW_ACCOUNT}");
    let (parts, body) = request.into_parts();
    let answer = async {
        limited(&state, address)?;
        signed_body(&parts.headers)?;
        let body = read_body(body).await?;
        let verified = state
            .acme
            .verify(&state.db, &body, &url, KeyRule::Jwk)
            .await?;
        state.acme.new_account(&state.db, &verified, &url).await
    }
    .await;
    answered(
        &state,
        &base,
        "new-account",
        answer.map(|answer| {
            let status = if answer.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            account_response(&state, &base, status, &answer.account)
        }),
    )
}

async fn account(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let state = &state;
    let path = format!("{ACCOUNT}{id}");
    signed_resource(
        state,
        address,
        request,
        Signed::by_account(&path, "account"),
        |verified, _| async move {
            let id = Uuid::parse_str(&id)
                .map_err(|_| AcmeError::new(ProblemType::AccountDoesNotExist, "no such account"))?;
            state.acme.update_account(&state.db, &verified, id).await
        },
        |base, account| account_response(state, base, StatusCode::OK, &account),
    )
    .await
}

/// `KEYINFRA_ACME_RATE`, checked before a body is read or a signature verified.
fn limited(state: &AppState, address: Option<std::net::IpAddr>) -> Result<(), AcmeError> {
    state
        .acme_limit
        .take(address, state.clock.now())
        .map_err(AcmeError::from)
}

/// Counts the request by resource and outcome (`ok`, or the problem type), and turns a
/// refusal into its problem document.
fn answered(
    state: &AppState,
    base: &str,
    resource: &'static str,
    answer: Result<Response, AcmeError>,
) -> Response {
    let outcome = match &answer {
        Ok(_) => "ok",
        Err(e) => e.problem.name(),
    };
    metrics::counter!("keyinfra_acme_requests_total", "resource" => resource, "outcome" => outcome)
        .increment(1);
    answer.unwrap_or_else(|e| problem(state, base, &e))
}

async fn read_body(body: axum::body::Body) -> Result<Bytes, AcmeError> {
    axum::body::to_bytes(body, keyinfra_pki::acme::jws::MAX_JWS_BYTES)
        .await
        .map_err(|_| {
            AcmeError::new(
                ProblemType::Malformed,
                format!(
                    "the request body is larger than {} bytes",
                    keyinfra_pki::acme::jws::MAX_JWS_BYTES
                ),
            )
        })
}

fn account_response(
    state: &AppState,
    base: &str,
    status: StatusCode,
    account: &AccountRecord,
) -> Response {
    let location = format!("{base}{ACCOUNT}{}", account.id);
    let body = json!({
        "status": account.status.as_str(),
        "contact": account.contact,
        "termsOfServiceAgreed": account.terms_agreed,
        "orders": format!("{location}/orders"),
        "createdAt": crate::api::timestamp(account.created_at),
    });
    let mut response = json_response(state, base, status, body);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A resource signed by an account: its path (after the base URL), its name in the metrics,
/// and whether the certificate's own key may sign instead (revokeCert).
struct Signed<'a> {
    path: &'a str,
    name: &'static str,
    or_jwk: bool,
}

impl<'a> Signed<'a> {
    fn by_account(path: &'a str, name: &'static str) -> Self {
        Self {
            path,
            name,
            or_jwk: false,
        }
    }
}

/// What every resource signed by an account does: the gate (TLS, a usable Host), the rate,
/// the body and its verification against the resource's URL, then `use_case` (given the
/// verified request and the base URL), answered by `respond` or as an ACME problem.
async fn signed_resource<T, Fut>(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    request: Request,
    resource: Signed<'_>,
    use_case: impl FnOnce(keyinfra_core::acme::Verified, String) -> Fut,
    respond: impl FnOnce(&str, T) -> Response,
) -> Response
where
    Fut: Future<Output = Result<T, AcmeError>>,
{
    let base = match gate(is_tls(&request), request.headers()) {
        Ok(base) => base,
        Err(refused) => return *refused,
    };
    let verified = verified_request(
        state,
        address,
        &base,
        resource.path,
        request,
        resource.or_jwk,
    )
    .await;
    let answer = match verified {
        Ok(verified) => use_case(verified, base.clone()).await,
        Err(e) => Err(e),
    };
    let answer = answer.map(|value| respond(&base, value));
    answered(state, &base, resource.name, answer)
}

/// A signed request to `path` by an account (`kid`): rate, content type, body, verification.
/// With `or_jwk`, a request signed by an embedded key is accepted too (revokeCert by the
/// certificate's key).
async fn verified_request(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    base: &str,
    path: &str,
    request: Request,
    or_jwk: bool,
) -> Result<keyinfra_core::acme::Verified, AcmeError> {
    limited(state, address)?;
    let (parts, body) = request.into_parts();
    signed_body(&parts.headers)?;
    let body = read_body(body).await?;
    let prefix = format!("{base}{ACCOUNT}");
    let rule = if or_jwk {
        KeyRule::KidOrJwk {
            account_url_prefix: &prefix,
        }
    } else {
        KeyRule::Kid {
            account_url_prefix: &prefix,
        }
    };
    state
        .acme
        .verify(&state.db, &body, &format!("{base}{path}"), rule)
        .await
}

/// An id from a path, or the 404 an unknown one gets.
fn path_id(id: &str, what: &str) -> Result<Uuid, AcmeError> {
    Uuid::parse_str(id).map_err(|_| AcmeError {
        status: 404,
        ..AcmeError::new(ProblemType::Malformed, format!("no such {what}"))
    })
}

async fn new_order(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    request: Request,
) -> Response {
    let state = &state;
    signed_resource(
        state,
        address,
        request,
        Signed::by_account(NEW_ORDER, "new-order"),
        |verified, _| async move {
            if verified.is_post_as_get() {
                return Err(AcmeError::new(
                    ProblemType::Malformed,
                    "newOrder needs a payload naming the identifiers",
                ));
            }
            state
                .acme
                .new_order(&state.db, &verified, &mut OsRandom)
                .await
        },
        |base, answer| order_response(state, base, StatusCode::CREATED, &answer),
    )
    .await
}

async fn order(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let state = &state;
    let path = format!("{ORDER}{id}");
    signed_resource(
        state,
        address,
        request,
        Signed::by_account(&path, "order"),
        |verified, _| async move {
            let id = path_id(&id, "order")?;
            state.acme.order(&state.db, &verified, id).await
        },
        |base, answer| order_response(state, base, StatusCode::OK, &answer),
    )
    .await
}

async fn authorization(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let state = &state;
    let path = format!("{AUTHZ}{id}");
    signed_resource(
        state,
        address,
        request,
        Signed::by_account(&path, "authz"),
        |verified, _| async move {
            let id = path_id(&id, "authorization")?;
            state.acme.authorization(&state.db, &verified, id).await
        },
        |base, answer| authorization_response(state, base, &answer),
    )
    .await
}

/// A JSON answer with the headers every ACME answer carries.
fn json_response(
    state: &AppState,
    base: &str,
    status: StatusCode,
    body: serde_json::Value,
) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    acme_headers(state, base, &mut response);
    response
}

/// RFC 8555 7.1.3's order object, with its URL in Location.
fn order_response(
    state: &AppState,
    base: &str,
    http_status: StatusCode,
    answer: &OrderAnswer,
) -> Response {
    let order = &answer.order;
    // An order past its expiry that never became valid is invalid (RFC 8555 7.1.6); the row
    // keeps what it was.
    let expired = order.expires_at <= state.clock.now()
        && !matches!(order.status, OrderStatus::Valid | OrderStatus::Invalid);
    let status = if expired {
        "invalid"
    } else {
        order.status.as_str()
    };
    let mut body = json!({
        "status": status,
        "expires": crate::api::timestamp(order.expires_at),
        "identifiers": order.identifiers,
        "authorizations": answer
            .authorizations
            .iter()
            .map(|id| format!("{base}{AUTHZ}{id}"))
            .collect::<Vec<_>>(),
        "finalize": format!("{base}{ORDER}{}/finalize", order.id),
    });
    if let Some(not_after) = order.not_after {
        body["notAfter"] = json!(crate::api::timestamp(not_after));
    }
    if let Some(error) = &order.error {
        body["error"] = error.clone();
    }
    if let Some(certificate) = order.certificate_id {
        body["certificate"] = json!(format!("{base}{CERTIFICATE}{certificate}"));
    }
    let mut response = json_response(state, base, http_status, body);
    if let Ok(value) = HeaderValue::from_str(&format!("{base}{ORDER}{}", order.id)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// RFC 8555 7.1.4's authorization object with its challenges (8).
fn authorization_response(state: &AppState, base: &str, answer: &AuthorizationAnswer) -> Response {
    let a = &answer.authorization;
    let challenges: Vec<serde_json::Value> = answer
        .challenges
        .iter()
        .map(|c| challenge_json(base, c))
        .collect();
    // A pending authorization past its expiry is expired (RFC 8555 7.1.6); the row keeps
    // what it was, and nothing can start its challenges any more.
    let status = if a.status == AuthorizationStatus::Pending && a.expires_at <= state.clock.now() {
        "expired"
    } else {
        a.status.as_str()
    };
    let mut body = json!({
        "status": status,
        "expires": crate::api::timestamp(a.expires_at),
        "identifier": { "type": a.identifier_type, "value": a.identifier_value },
        "challenges": challenges,
    });
    if a.wildcard {
        body["wildcard"] = json!(true);
    }
    json_response(state, base, StatusCode::OK, body)
}

async fn account_orders(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let state = &state;
    let path = format!("{ACCOUNT}{id}/orders");
    signed_resource(
        state,
        address,
        request,
        Signed::by_account(&path, "orders"),
        |verified, _| async move {
            let id = path_id(&id, "account")?;
            state.acme.account_orders(&state.db, &verified, id).await
        },
        |base, orders| {
            let urls: Vec<String> = orders
                .iter()
                .map(|id| format!("{base}{ORDER}{id}"))
                .collect();
            json_response(state, base, StatusCode::OK, json!({ "orders": urls }))
        },
    )
    .await
}

/// RFC 8555 8's challenge object. `validated` only for a valid one (an invalid challenge's
/// row records when it failed, for the failed-validation rate).
fn challenge_json(base: &str, c: &ChallengeRecord) -> serde_json::Value {
    let mut challenge = json!({
        "type": c.kind,
        "url": format!("{base}{CHALLENGE}{}", c.id),
        "status": c.status.as_str(),
        "token": c.token,
    });
    if c.status == ChallengeStatus::Valid
        && let Some(at) = c.validated_at
    {
        challenge["validated"] = json!(crate::api::timestamp(at));
    }
    if let Some(error) = &c.error {
        challenge["error"] = error.clone();
    }
    challenge
}

async fn challenge(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let state = &state;
    let path = format!("{CHALLENGE}{id}");
    signed_resource(
        state,
        address,
        request,
        Signed::by_account(&path, "challenge"),
        |verified, _| async move {
            let id = path_id(&id, "challenge")?;
            state.acme.challenge(&state.db, &verified, id).await
        },
        |base, answer| {
            let c = &answer.challenge;
            let mut response = json_response(state, base, StatusCode::OK, challenge_json(base, c));
            if let Ok(up) =
                HeaderValue::from_str(&format!("<{base}{AUTHZ}{}>;rel=\"up\"", c.authorization_id))
            {
                response.headers_mut().append(header::LINK, up);
            }
            response
        },
    )
    .await
}

async fn finalize(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let state = &state;
    let path = format!("{ORDER}{id}/finalize");
    signed_resource(
        state,
        address,
        request,
        Signed::by_account(&path, "finalize"),
        |verified, _| async move {
            let id = path_id(&id, "order")?;
            if verified.is_post_as_get() {
                return Err(AcmeError::new(
                    ProblemType::Malformed,
                    "finalize needs a payload with the CSR",
                ));
            }
            state
                .acme
                .finalize(&state.db, &verified, id, &mut OsRandom)
                .await
        },
        |base, answer| order_response(state, base, StatusCode::OK, &answer),
    )
    .await
}

async fn certificate(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let state = &state;
    let path = format!("{CERTIFICATE}{id}");
    signed_resource(
        state,
        address,
        request,
        Signed::by_account(&path, "certificate"),
        |verified, _| async move {
            let id = path_id(&id, "certificate")?;
            state.acme.certificate(&state.db, &verified, id).await
        },
        |base, chain| {
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, PEM_CHAIN)],
                chain.pem,
            )
                .into_response();
            acme_headers(state, base, &mut response);
            response
        },
    )
    .await
}

async fn revoke_cert(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    request: Request,
) -> Response {
    let state = &state;
    signed_resource(
        state,
        address,
        request,
        Signed {
            path: REVOKE_CERT,
            name: "revoke-cert",
            or_jwk: true,
        },
        |verified, _| async move { state.acme.revoke_certificate(&state.db, &verified).await },
        |base, ()| {
            let mut response = StatusCode::OK.into_response();
            acme_headers(state, base, &mut response);
            response
        },
    )
    .await
}

async fn key_change(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    request: Request,
) -> Response {
    let state = &state;
    signed_resource(
        state,
        address,
        request,
        Signed::by_account(KEY_CHANGE, "key-change"),
        |verified, base| async move {
            state
                .acme
                .key_change(
                    &state.db,
                    &verified,
                    &format!("{base}{KEY_CHANGE}"),
                    &format!("{base}{ACCOUNT}"),
                )
                .await
        },
        |base, account| account_response(state, base, StatusCode::OK, &account),
    )
    .await
}

/// RFC 9773 4: GET `renewalInfo/{certID}`, no authentication: the suggested window, and
/// Retry-After for when to ask again.
async fn renewal_info(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(cert_id): Path<String>,
    request: Request,
) -> Response {
    let base = match gate(is_tls(&request), request.headers()) {
        Ok(base) => base,
        Err(refused) => return *refused,
    };
    let answer = async {
        limited(&state, address)?;
        state.acme.renewal_info(&state.db, &cert_id).await
    }
    .await;
    answered(
        &state,
        &base,
        "renewal-info",
        answer.map(|window| {
            let body = json!({
                "suggestedWindow": {
                    "start": crate::api::timestamp(window.start),
                    "end": crate::api::timestamp(window.end),
                },
            });
            let mut response = json_response(&state, &base, StatusCode::OK, body);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(keyinfra_core::acme::renewal_info::RETRY_AFTER_SECONDS),
            );
            response
        }),
    )
}
