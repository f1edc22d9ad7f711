//! `/api/v1/certificates`: the certificate lifecycle over HTTP. Every rule lives in the
//! core's use-case modules (issuer, renewal, revocation, reassign, export, queries); this
//! module only translates JSON. (About 680 lines: one resource's eleven operations with
//! their bodies and OpenAPI descriptions, which read best together.)

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::renewal::RenewRequest;
use keyinfra_core::revocation::parse_reason;
use keyinfra_core::{CoreError, ErrorCode, OsRandom, Principal};
use keyinfra_db::CertificateStatus;
use keyinfra_db::certificates::{CertificateFilter, CertificateRecord, CertificateSummary};
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::RevocationReason;
use keyinfra_pki::pkcs12::{Pin, Pkcs12Compat, UnknownPkcs12Compat};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::timestamp;
use crate::extract::{ApiJson, Authenticated, IdPath};
use crate::pagination::{DEFAULT_LIMIT, MAX_LIMIT, Page, next_cursor};
use crate::{AppState, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue, list))
        .routes(routes!(expiring))
        .routes(routes!(get_one, reassign))
        .routes(routes!(pem))
        .routes(routes!(pkcs12))
        .routes(routes!(renew))
        .routes(routes!(revoke))
        .routes(routes!(versions))
}

/// A certificate as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Certificate {
    pub id: Uuid,
    pub ca_id: Uuid,
    pub owner_id: Option<Uuid>,
    /// Uppercase hex, no separators.
    pub serial_number: String,
    /// RFC 4514.
    pub subject: String,
    /// DNS names and IP addresses.
    pub san: Vec<String>,
    pub key_algorithm: String,
    pub profile: String,
    /// How it was requested: api (a user, by the REST API or the UI), cli (the operator),
    /// server (KeyInfra's own TLS certificate), scep, est or acme (a device enrolling).
    pub channel: String,
    pub not_before: String,
    pub not_after: String,
    /// ACTIVE, SUPERSEDED, REVOKED or EXPIRED.
    pub status: String,
    pub version: i32,
    pub renewed_from: Option<Uuid>,
    pub renewed_at: Option<String>,
    pub renewed_by: Option<Uuid>,
    pub has_private_key: bool,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
    pub certificate_pem: String,
}

fn untagged(san: &str) -> String {
    keyinfra_pki::names::SubjectAltName::parse(san)
        .map_or_else(|_| san.to_owned(), |n| n.to_string())
}

impl From<CertificateRecord> for Certificate {
    fn from(c: CertificateRecord) -> Self {
        Self {
            id: c.id,
            ca_id: c.ca_id,
            owner_id: c.owner_id,
            serial_number: c.serial_number,
            subject: c.subject_dn,
            san: c.subject_alt_names.iter().map(|s| untagged(s)).collect(),
            key_algorithm: c.key_algorithm.as_str().to_owned(),
            profile: c.profile,
            channel: c.channel,
            not_before: timestamp(c.not_before),
            not_after: timestamp(c.not_after),
            status: c.status.as_str().to_owned(),
            version: c.version,
            renewed_from: c.renewed_from,
            renewed_at: c.renewed_at.map(timestamp),
            renewed_by: c.renewed_by,
            has_private_key: c.private_key_id.is_some(),
            fingerprint_sha256: c
                .fingerprint_sha256
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            certificate_pem: keyinfra_pki::certificate_pem(&c.certificate_der),
        }
    }
}

/// Server-side key generation (`key_algorithm`) or CSR signing (`csr`), not both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// RFC 4514, e.g. `CN=edge-router-1,O=Example,C=NL`. Required without `csr`.
    pub subject: Option<String>,
    /// DNS names and IPv4/IPv6 addresses: at most 100, none twice. Without it, the CSR's,
    /// under the same rules.
    pub san: Option<Vec<String>>,
    /// ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096.
    pub key_algorithm: Option<String>,
    /// A PKCS#10 request, PEM.
    pub csr: Option<String>,
    /// device (default), server or client.
    pub profile: Option<String>,
    pub validity_days: Option<u32>,
    /// ADMIN only: issue for this user.
    pub owner_id: Option<Uuid>,
    /// ADMIN only (403 for a USER): the CA to sign with (default: the issuing CA). A
    /// self-signed root is refused (422 `root_ca_cannot_issue`) while an issuing CA exists.
    pub ca_id: Option<Uuid>,
    /// ADMIN only: check against this policy instead of the owner's.
    pub policy_id: Option<Uuid>,
}

/// `?dry_run=true`: answer what would be issued, or the refusal, and write nothing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct IssueQuery {
    /// `true` or `false` (default).
    pub dry_run: Option<String>,
}

/// What an issue would sign (the dry run's answer).
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuePreview {
    pub subject: String,
    pub subject_alt_names: Vec<String>,
    pub profile: String,
    pub key_algorithm: String,
    pub validity_days: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_after: OffsetDateTime,
    pub ca_id: Uuid,
    pub ca_name: String,
    pub owner_id: Option<Uuid>,
    pub policy_id: Uuid,
    pub policy_name: String,
}

impl From<keyinfra_core::issuer::IssuePlan> for IssuePreview {
    fn from(p: keyinfra_core::issuer::IssuePlan) -> Self {
        IssuePreview {
            subject: p.subject.to_string(),
            subject_alt_names: p.sans.iter().map(|s| s.to_tagged()).collect(),
            profile: p.profile.name,
            key_algorithm: p.key_algorithm.label().to_owned(),
            validity_days: p.validity_days,
            not_before: p.not_before,
            not_after: p.not_after,
            ca_id: p.ca_id,
            ca_name: p.ca_name,
            owner_id: p.owner_id,
            policy_id: p.policy_id,
            policy_name: p.policy_name,
        }
    }
}

fn parse_algorithm(label: &str) -> Result<KeyAlgorithm, Problem> {
    KeyAlgorithm::from_label(label).ok_or_else(|| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::UnknownAlgorithm,
            format!(
                "unknown key_algorithm {label:?}; use one of {}",
                KeyAlgorithm::labels()
            ),
        )
    })
}

/// Issue a certificate, or with `?dry_run=true` answer what would be issued.
///
/// The subject (from the request or the CSR) has single-valued RDNs, one CN, and no
/// control or invisible format characters (Unicode Cf, e.g. U+202E, U+200B). A CSR's RSA
/// key must use the public exponent 65537. The owner's issuance policy decides which
/// names, profiles, key algorithms, validity and CAs are allowed (422 `name_not_allowed`,
/// `profile_not_allowed`, `key_algorithm_not_allowed`, `validity_too_long`,
/// `ca_not_allowed`, `subject_not_allowed`). A dry run answers 200 with the preview (or
/// the same refusal), generates no key and writes nothing.
#[utoipa::path(post, path = "/api/v1/certificates", tag = "certificates", request_body = IssueBody,
    params(IssueQuery),
    responses((status = 201, body = Certificate), (status = 200, body = IssuePreview, description = "dry_run=true"),
        (status = 403, description = "a USER named ca_id, owner_id or policy_id"), (status = 422)))]
async fn issue(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(query): Query<IssueQuery>,
    ApiJson(body): ApiJson<IssueBody>,
) -> Result<axum::response::Response, Problem> {
    let request = issue_request(body)?;
    let by = Principal::User(caller);
    let dry_run = match query.dry_run.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(invalid_query(
                ErrorCode::InvalidDryRun,
                "dry_run must be true or false",
            ));
        }
    };
    if dry_run {
        let plan = state
            .authority
            .issuer
            .preview(&state.db, &by, request)
            .await?;
        return Ok((StatusCode::OK, Json(IssuePreview::from(plan))).into_response());
    }
    let cert = state
        .authority
        .issuer
        .issue(&state.db, &by, request, &mut OsRandom)
        .await?;
    Ok((StatusCode::CREATED, Json(Certificate::from(cert))).into_response())
}

/// The body as the use case's request; refuses what the body alone shows to be wrong.
pub(crate) fn issue_request(body: IssueBody) -> Result<IssueRequest, Problem> {
    let key = match (body.csr, body.key_algorithm) {
        (Some(_), Some(_)) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ConflictingKeySource,
                "give either csr (the device's key) or key_algorithm (a key made here), not both",
            ));
        }
        (Some(csr), None) => KeySource::Csr(csr.into_bytes()),
        (None, Some(label)) => KeySource::Generate(parse_algorithm(&label)?),
        (None, None) => KeySource::Generate(KeyAlgorithm::EcdsaP256),
    };
    Ok(IssueRequest {
        key,
        subject: body.subject,
        san: body.san,
        profile: body.profile.unwrap_or_else(|| "device".into()),
        validity_days: body.validity_days,
        owner_id: body.owner_id,
        ca_id: body.ca_id,
        policy_id: body.policy_id,
    })
}

/// Inventory query. All parameters are optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// ACTIVE, SUPERSEDED, REVOKED or EXPIRED.
    pub status: Option<String>,
    pub expiring_within_days: Option<String>,
    /// Substring of the subject or a SAN, or a serial-number prefix.
    pub q: Option<String>,
    /// ADMIN: one user's certificates.
    pub owner_id: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

fn invalid_query(code: ErrorCode, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
}

fn parse_limit(raw: Option<&str>) -> Result<i64, Problem> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                invalid_query(
                    ErrorCode::InvalidLimit,
                    format!("limit must be between 1 and {MAX_LIMIT}"),
                )
            }),
    }
}

/// List certificates, soonest expiry first (keyset pagination).
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates", params(ListQuery),
    responses((status = 200, body = Page<Certificate>), (status = 422)))]
async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<Certificate>>, Problem> {
    let limit = parse_limit(query.limit.as_deref())?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(label) => Some(CertificateStatus::from_label(label).ok_or_else(|| {
            invalid_query(
                ErrorCode::InvalidStatus,
                "status must be ACTIVE, SUPERSEDED, REVOKED or EXPIRED",
            )
        })?),
    };
    let now = state.clock.now();
    let expires_before = match query.expiring_within_days.as_deref() {
        None | Some("") => None,
        Some(text) => {
            let days = text
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    invalid_query(
                        ErrorCode::InvalidDays,
                        "expiring_within_days must be between 1 and 3650",
                    )
                })?;
            Some(now + time::Duration::days(days))
        }
    };
    let owner_id = match query.owner_id.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<Uuid>()
                .map_err(|_| invalid_query(ErrorCode::InvalidOwnerId, "owner_id must be a UUID"))?,
        ),
    };
    let search = match query.q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(q) if q.chars().count() > 200 => {
            return Err(invalid_query(
                ErrorCode::InvalidQuery,
                "q is longer than 200 characters",
            ));
        }
        Some(q) => Some(q.to_owned()),
    };
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(crate::pagination::decode_cursor(c)?),
    };
    let filter = CertificateFilter {
        owner_id,
        status,
        expires_before,
        as_of: Some(now),
        search,
        after,
    };
    let items = state
        .authority
        .queries
        .list(&state.db, &Principal::User(caller), filter, limit)
        .await?;
    let next_cursor = next_cursor(&items, limit, |c| (c.not_after, c.id));
    Ok(Json(Page {
        items: items.into_iter().map(Certificate::from).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExpiringQuery {
    /// Window in days (default 7).
    pub days: Option<String>,
    pub limit: Option<String>,
}

/// An expiring certificate (summary).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiringCertificate {
    pub id: Uuid,
    pub ca_id: Uuid,
    pub owner_id: Option<Uuid>,
    pub serial_number: String,
    pub subject: String,
    pub san: Vec<String>,
    pub not_after: String,
    pub status: String,
    pub profile: String,
}

impl From<CertificateSummary> for ExpiringCertificate {
    fn from(c: CertificateSummary) -> Self {
        Self {
            id: c.id,
            ca_id: c.ca_id,
            owner_id: c.owner_id,
            serial_number: c.serial_number,
            subject: c.subject_dn,
            san: c.subject_alt_names.iter().map(|s| untagged(s)).collect(),
            not_after: timestamp(c.not_after),
            status: c.status.as_str().to_owned(),
            profile: c.profile,
        }
    }
}

/// Active certificates expiring within `days`, soonest first (the database's
/// `certificates_expiring` function).
#[utoipa::path(get, path = "/api/v1/certificates/expiring", tag = "certificates", params(ExpiringQuery),
    responses((status = 200, body = Page<ExpiringCertificate>), (status = 422)))]
async fn expiring(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(query): Query<ExpiringQuery>,
) -> Result<Json<Page<ExpiringCertificate>>, Problem> {
    let limit = parse_limit(query.limit.as_deref())?;
    let days = match query.days.as_deref() {
        None | Some("") => 7,
        Some(text) => text.parse::<u32>().map_err(|_| {
            invalid_query(ErrorCode::InvalidDays, "days must be between 1 and 3650")
        })?,
    };
    let items = state
        .authority
        .queries
        .expiring(&state.db, &Principal::User(caller), days, limit)
        .await?;
    Ok(Json(Page {
        items: items.into_iter().map(ExpiringCertificate::from).collect(),
        next_cursor: None,
    }))
}

/// One certificate.
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "certificates", params(("id" = Uuid, Path)),
    responses((status = 200, body = Certificate), (status = 404)))]
async fn get_one(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
) -> Result<Json<Certificate>, Problem> {
    let cert = state
        .authority
        .queries
        .get(&state.db, &Principal::User(caller), id)
        .await?;
    Ok(Json(cert.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignBody {
    /// The new owner.
    pub owner_id: Uuid,
    /// Move it even though the new owner's policy does not allow it (audited).
    #[serde(default)]
    pub force: bool,
}

/// Move a certificate (with its whole renewal chain and stored keys) to another user (ADMIN).
#[utoipa::path(patch, path = "/api/v1/certificates/{id}", tag = "certificates", params(("id" = Uuid, Path)),
    request_body = ReassignBody,
    responses((status = 200, body = Certificate), (status = 403), (status = 404), (status = 422)))]
async fn reassign(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<ReassignBody>,
) -> Result<Json<Certificate>, Problem> {
    let cert = state
        .authority
        .reassignment
        .reassign(
            &state.db,
            &Principal::User(caller),
            id,
            body.owner_id,
            body.force,
        )
        .await?;
    Ok(Json(cert.into()))
}

/// The certificate and its CA chain, PEM.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/pem", tag = "certificates", params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "application/pem-certificate-chain", body = String), (status = 404)))]
async fn pem(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
) -> Result<Response, Problem> {
    let text = state
        .authority
        .exports
        .pem_chain(&state.db, &Principal::User(caller), id)
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pem-certificate-chain"),
        )],
        text,
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pkcs12Body {
    /// 8 to 128 characters (`legacy`: 6 to 128). Never stored or logged.
    pub pin: String,
    /// `modern` (default): PBES2 with PBKDF2-HMAC-SHA256 at 200,000 iterations, AES-256-CBC,
    /// SHA-256 MAC. `legacy`, only for firmware that cannot read that: 3DES and a SHA-1 MAC
    /// at 10,000 iterations and 6-character PINs. A legacy file is weak: 3DES and SHA-1 are
    /// retired, and every 6-digit PIN of a stolen file is tried in under an hour on one CPU
    /// core, far faster on a GPU. Prefer `modern`; delete a legacy file once imported.
    pub compat: Option<String>,
}

/// Export the key, certificate and chain as PKCS#12 (owner or ADMIN).
///
/// Refused with 409 `certificate_revoked` for a revoked certificate, for every role: its key
/// may be the compromised one, and no relying party accepts the certificate any more.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/pkcs12", tag = "certificates", params(("id" = Uuid, Path)),
    request_body = Pkcs12Body,
    responses((status = 200, content_type = "application/x-pkcs12", body = Vec<u8>), (status = 404), (status = 409, description = "no stored key (`no_private_key`), or the certificate is revoked (`certificate_revoked`)"), (status = 422)))]
async fn pkcs12(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<Pkcs12Body>,
) -> Result<Response, Problem> {
    let (pin, compat) = pkcs12_options(body)?;
    let bytes = state
        .authority
        .exports
        .export_pkcs12(&state.db, &Principal::User(caller), id, pin, compat)
        .await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pkcs12"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response())
}

/// The PIN (policy checked) and the flavour a PKCS#12 body asks for.
pub(crate) fn pkcs12_options(body: Pkcs12Body) -> Result<(Pin, Pkcs12Compat), Problem> {
    let compat = match body.compat.as_deref() {
        None => Pkcs12Compat::default(),
        Some(label) => label.parse().map_err(|e: UnknownPkcs12Compat| {
            invalid_query(ErrorCode::InvalidCompat, e.to_string())
        })?,
    };
    let pin = Pin::new(body.pin, compat)
        .map_err(|e| invalid_query(ErrorCode::InvalidPin, e.to_string()))?;
    Ok((pin, compat))
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    pub validity_days: Option<u32>,
    /// Make a new server-side key (same algorithm).
    pub rekey: Option<bool>,
    /// Revoke the previous version (reason superseded) instead of letting it run out.
    pub revoke_previous: Option<bool>,
}

/// Renew (ADMIN): a new version with a new serial; the previous becomes SUPERSEDED.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/renew", tag = "certificates", params(("id" = Uuid, Path)),
    request_body = RenewBody,
    responses((status = 201, body = Certificate), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn renew(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<RenewBody>,
) -> Result<(StatusCode, Json<Certificate>), Problem> {
    let cert = state
        .authority
        .renewals
        .renew(
            &state.db,
            &Principal::User(caller),
            id,
            RenewRequest {
                validity_days: body.validity_days,
                rekey: body.rekey.unwrap_or(false),
                revoke_previous: body.revoke_previous.unwrap_or(false),
            },
            &mut OsRandom,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(cert.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation or
    /// privilegeWithdrawn. (cACompromise is refused: these are end-entity certificates.)
    pub reason: String,
    /// RFC 3339: when the key is known or suspected to have been compromised; not after
    /// now, not before the certificate's notBefore.
    pub invalidity_date: Option<String>,
}

/// Revoke (owner or ADMIN).
#[utoipa::path(post, path = "/api/v1/certificates/{id}/revoke", tag = "certificates", params(("id" = Uuid, Path)),
    request_body = RevokeBody,
    responses((status = 200, body = Certificate), (status = 404), (status = 409, description = "already revoked"), (status = 422)))]
async fn revoke(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<Certificate>, Problem> {
    let (reason, invalidity_date) = revoke_options(&body)?;
    let cert = state
        .authority
        .revocations
        .revoke(
            &state.db,
            &Principal::User(caller),
            id,
            reason,
            invalidity_date,
        )
        .await?;
    Ok(Json(cert.into()))
}

/// The reason and the optional invalidity date a revoke body gives.
pub(crate) fn revoke_options(
    body: &RevokeBody,
) -> Result<(RevocationReason, Option<OffsetDateTime>), Problem> {
    let reason = parse_reason(&body.reason)?;
    let invalidity_date = match body.invalidity_date.as_deref() {
        None => None,
        Some(text) => Some(OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            Problem::from(CoreError::invalid(
                ErrorCode::InvalidInvalidityDate,
                "invalidity_date must be an RFC 3339 timestamp, e.g. 2026-11-20T08:00:00Z",
            ))
        })?),
    };
    Ok((reason, invalidity_date))
}

/// Every version of the certificate's renewal chain, oldest first.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/versions", tag = "certificates", params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<Certificate>), (status = 404)))]
async fn versions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
) -> Result<Json<Page<Certificate>>, Problem> {
    let chain = state
        .authority
        .queries
        .versions(&state.db, &Principal::User(caller), id)
        .await?;
    Ok(Json(Page {
        items: chain.into_iter().map(Certificate::from).collect(),
        next_cursor: None,
    }))
}
