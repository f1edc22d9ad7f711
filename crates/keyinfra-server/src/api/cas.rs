//! Certificate authorities and CRLs. CA certificates and CRLs are public: devices fetch them
//! from the URLs inside every certificate (AIA caIssuers, CRL distribution point) without
//! logging in.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyinfra_db::authorities::AuthorityRecord;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::timestamp;
use crate::pagination::Page;
use crate::{AppState, Problem};
use keyinfra_core::ErrorCode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_cas))
}

/// CA certificates and CRLs: what the public listener serves (see `crate::public_routes`).
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ca_certificate))
        .routes(routes!(crl))
        .routes(routes!(delta_crl))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateAuthority {
    pub id: Uuid,
    pub name: String,
    /// Unique, lower-case letters, digits and hyphens: the CA's label in EST URLs
    /// (`/.well-known/est/{short_name}/...`), made from the name.
    pub short_name: String,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    pub certificate_pem: String,
}

impl From<AuthorityRecord> for CertificateAuthority {
    fn from(ca: AuthorityRecord) -> Self {
        Self {
            id: ca.id,
            name: ca.name,
            short_name: ca.short_name,
            subject: ca.subject_dn,
            not_before: timestamp(ca.not_before),
            not_after: timestamp(ca.not_after),
            certificate_pem: keyinfra_pki::certificate_pem(&ca.certificate_der),
        }
    }
}

/// Every CA, oldest first (public).
#[utoipa::path(get, path = "/api/v1/cas", tag = "cas", security(()),
    responses((status = 200, body = Page<CertificateAuthority>)))]
async fn list_cas(
    State(state): State<AppState>,
) -> Result<Json<Page<CertificateAuthority>>, Problem> {
    let cas = state.authority.cas.list_cas(&state.db).await?;
    Ok(Json(Page {
        items: cas.into_iter().map(CertificateAuthority::from).collect(),
        next_cursor: None,
    }))
}

fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such resource",
    )
}

/// `<uuid>.<ext>` with ext one of `allowed`.
fn split_file(file: &str, allowed: &[&'static str]) -> Result<(Uuid, &'static str), Problem> {
    let (stem, ext) = file.rsplit_once('.').ok_or_else(not_found)?;
    let ext = allowed.iter().find(|a| **a == ext).ok_or_else(not_found)?;
    Ok((stem.parse().map_err(|_| not_found())?, ext))
}

fn body(content_type: &'static str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// A CA certificate: `{id}.crt` (DER) or `{id}.pem` (public, the AIA caIssuers URL).
#[utoipa::path(get, path = "/ca/{file}", tag = "cas", security(()), params(("file" = String, Path, description = "`<ca id>.crt` or `<ca id>.pem`")),
    responses((status = 200, content_type = "application/pkix-cert", body = Vec<u8>), (status = 404)))]
async fn ca_certificate(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, Problem> {
    let (id, ext) = split_file(&file, &["crt", "pem"])?;
    let ca = state.authority.cas.ca(&state.db, id).await?;
    Ok(match ext {
        "pem" => body(
            "application/x-pem-file",
            keyinfra_pki::certificate_pem(&ca.certificate_der).into_bytes(),
        ),
        _ => body("application/pkix-cert", ca.certificate_der),
    })
}

/// A CA's newest CRL: `{id}.crl` (DER) or `{id}.pem` (public, the CRL distribution point).
#[utoipa::path(get, path = "/crl/{file}", tag = "cas", security(()), params(("file" = String, Path, description = "`<ca id>.crl` or `<ca id>.pem`")),
    responses((status = 200, content_type = "application/pkix-crl", body = Vec<u8>), (status = 404)))]
async fn crl(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, Problem> {
    let (id, ext) = split_file(&file, &["crl", "pem"])?;
    let crl = state.authority.crls.latest_crl(&state.db, id).await?;
    Ok(match ext {
        "pem" => body(
            "application/x-pem-file",
            keyinfra_pki::crl_pem(&crl.crl_der).into_bytes(),
        ),
        _ => body("application/pkix-crl", crl.crl_der),
    })
}

/// A CA's newest delta CRL (RFC 5280 5.2.4): `delta.crl` (DER) or `delta.pem` (public, the
/// Freshest CRL URL of the CA's complete CRLs and certificates).
#[utoipa::path(get, path = "/crl/{id}/{file}", tag = "cas", security(()),
    params(("id" = Uuid, Path, description = "The CA's id"), ("file" = String, Path, description = "`delta.crl` or `delta.pem`")),
    responses((status = 200, content_type = "application/pkix-crl", body = Vec<u8>), (status = 404)))]
async fn delta_crl(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let crl = match file.as_str() {
        "delta.crl" | "delta.pem" => state.authority.crls.latest_delta_crl(&state.db, id).await?,
        _ => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "a CA's delta CRL is delta.crl (DER) or delta.pem",
            ));
        }
    };
    Ok(if file.ends_with(".pem") {
        body(
            "application/x-pem-file",
            keyinfra_pki::crl_pem(&crl.crl_der).into_bytes(),
        )
    } else {
        body("application/pkix-crl", crl.crl_der)
    })
}
