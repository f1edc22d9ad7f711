//! The pages: dashboard, certificate list, certificate detail, PEM download.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyinfra_core::ErrorCode;
use keyinfra_core::Principal;
use keyinfra_db::CertificateStatus;
use keyinfra_db::audit::AuditFilter;
use keyinfra_db::certificates::CertificateFilter;
use keyinfra_pki::RevocationReason;
use serde::Deserialize;

use super::session::{UiError, UiId, UiSession, chrome, render};
use super::view::{self, CertRow, Chrome};
use crate::pagination::{decode_cursor, next_cursor};
use crate::{AppState, Problem};

/// Certificates per page of the list.
const PAGE_SIZE: i64 = 25;

/// One status's tile on the dashboard.
#[derive(Debug)]
struct StatusTile {
    label: &'static str,
    class: &'static str,
    count: i64,
}

#[derive(Debug)]
struct AuditRow {
    at: String,
    actor: String,
    action: String,
    target: String,
}

#[derive(Debug)]
struct ExpiringRow {
    id: uuid::Uuid,
    name: String,
    not_after: String,
    remaining: String,
    urgent: bool,
}

#[derive(Template)]
#[template(path = "ui/dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    total: i64,
    tiles: Vec<StatusTile>,
    expiring_7d: i64,
    expiring_30d: i64,
    refreshed_at: Option<String>,
    expiring: Vec<ExpiringRow>,
    audit: Vec<AuditRow>,
}

pub async fn dashboard(
    State(state): State<AppState>,
    session: UiSession,
) -> Result<Response, UiError> {
    let chrome = chrome(&state, &session, "dashboard").await?;
    let caller = session.caller;
    // The statistics view, as the user's identity: row-level security picks the rows.
    let rows = keyinfra_core::dashboard::certificate_stats(&state.db, &caller).await?;
    let count = |status: CertificateStatus| -> i64 {
        rows.iter()
            .filter(|r| r.status == status)
            .map(|r| r.certificates)
            .sum()
    };
    let tiles = vec![
        StatusTile {
            label: "Active",
            class: "active",
            count: count(CertificateStatus::Active),
        },
        StatusTile {
            label: "Superseded",
            class: "superseded",
            count: count(CertificateStatus::Superseded),
        },
        StatusTile {
            label: "Revoked",
            class: "revoked",
            count: count(CertificateStatus::Revoked),
        },
        StatusTile {
            label: "Expired",
            class: "expired",
            count: count(CertificateStatus::Expired),
        },
    ];
    let requester = Principal::User(caller);
    let now = state.clock.now();
    let expiring = state
        .authority
        .queries
        .expiring(&state.db, &requester, 30, 10)
        .await?
        .into_iter()
        .map(|c| ExpiringRow {
            id: c.id,
            name: view::common_name(&c.subject_dn),
            not_after: view::date(c.not_after),
            remaining: view::relative(c.not_after, now),
            urgent: c.not_after - now <= time::Duration::days(7),
        })
        .collect();
    let audit = if chrome.is_admin {
        let (events, _) =
            keyinfra_core::users::audit_log(&state.db, &caller, &AuditFilter::default(), 8).await?;
        // Users by name, as the audit page shows them (one lookup for the few rows).
        let ids: Vec<uuid::Uuid> = events
            .iter()
            .flat_map(|e| {
                let user_target = e
                    .target_id
                    .filter(|_| e.target_type.as_deref() == Some("user"));
                [e.actor_id, user_target]
            })
            .flatten()
            .collect();
        let names = state.users.usernames(&state.db, &caller, &ids).await?;
        let subjects = view::certificate_subjects(&events);
        events
            .into_iter()
            .map(|e| AuditRow {
                at: view::date_time(e.occurred_at),
                target: view::event_target(&e, &names, &subjects),
                actor: match (e.actor_name, e.actor_id) {
                    (Some(name), _) => name,
                    (None, Some(id)) if id == caller.id => chrome.username.clone(),
                    (None, Some(id)) => names
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| format!("user {}", view::short_id(id))),
                    (None, None) => "system".to_owned(),
                },
                action: e.action,
            })
            .collect()
    } else {
        Vec::new()
    };
    let page = Dashboard {
        chrome,
        total: tiles.iter().map(|t| t.count).sum(),
        tiles,
        expiring_7d: rows.iter().map(|r| r.expiring_7d).sum(),
        expiring_30d: rows.iter().map(|r| r.expiring_30d).sum(),
        refreshed_at: rows
            .iter()
            .map(|r| r.refreshed_at)
            .max()
            .map(view::date_time),
        expiring,
        audit,
    };
    Ok(render(&page))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    /// Admins: only this user's certificates (a user id from the owner list).
    owner: Option<String>,
    cursor: Option<String>,
}

/// One user in an owner menu.
#[derive(Debug, Clone)]
pub struct OwnerChoice {
    pub id: String,
    pub username: String,
}

/// Users an admin may pick as an owner or filter by (the first 500, in creation order).
pub(super) async fn owner_choices(
    state: &AppState,
    session: &UiSession,
) -> Result<Vec<OwnerChoice>, UiError> {
    users_as_choices(state, session, |_| true).await
}

/// Users an admin may make a credential for (an enrollment challenge, an ACME binding key):
/// the enabled ones other than the admin, who is the form's "Me" entry. None for a USER,
/// whose form has no owner menu.
pub(super) async fn credential_owner_choices(
    state: &AppState,
    session: &UiSession,
) -> Result<Vec<OwnerChoice>, UiError> {
    if session.caller.require_admin().is_err() {
        return Ok(Vec::new());
    }
    let me = session.caller.id;
    users_as_choices(state, session, |u| !u.disabled && u.id != me).await
}

/// The first 500 users the caller may list, those `keep` keeps, as menu entries.
async fn users_as_choices(
    state: &AppState,
    session: &UiSession,
    keep: impl Fn(&keyinfra_db::users::UserRecord) -> bool,
) -> Result<Vec<OwnerChoice>, UiError> {
    Ok(state
        .users
        .list(&state.db, &session.caller, None, 500)
        .await?
        .items
        .into_iter()
        .filter(|u| keep(u))
        .map(|u| OwnerChoice {
            id: u.id.to_string(),
            username: u.username,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "ui/certificates.html")]
struct CertificateList {
    chrome: Chrome,
    q: String,
    status: String,
    owner: String,
    owners: Vec<OwnerChoice>,
    statuses: [&'static str; 4],
    rows: Vec<CertRow>,
    next: Option<String>,
    first_page: bool,
    filtered: bool,
}

pub async fn certificates(
    State(state): State<AppState>,
    session: UiSession,
    Query(query): Query<ListQuery>,
) -> Result<Response, UiError> {
    let chrome = chrome(&state, &session, "certificates").await?;
    let q = query.q.as_deref().map(str::trim).unwrap_or("").to_owned();
    if q.chars().count() > 200 {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidQuery,
            "the search is longer than 200 characters",
        )
        .into());
    }
    let status_label = query.status.unwrap_or_default();
    let status = match status_label.as_str() {
        "" => None,
        label => Some(CertificateStatus::from_label(label).ok_or_else(|| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidStatus,
                "status must be ACTIVE, SUPERSEDED, REVOKED or EXPIRED",
            )
        })?),
    };
    let owner_label = query.owner.unwrap_or_default();
    let owner_id = match owner_label.trim() {
        "" => None,
        text => Some(text.parse::<uuid::Uuid>().map_err(|_| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidOwner,
                "choose the owner from the list",
            )
        })?),
    };
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(decode_cursor(c)?),
    };
    let now = state.clock.now();
    let filter = CertificateFilter {
        // The list use case confines a USER to their own certificates whatever this says.
        owner_id,
        status,
        expires_before: None,
        as_of: Some(now),
        search: (!q.is_empty()).then(|| q.clone()),
        after,
    };
    let items = state
        .authority
        .queries
        .list(
            &state.db,
            &Principal::User(session.caller),
            filter,
            PAGE_SIZE,
        )
        .await?;
    let next = next_cursor(&items, PAGE_SIZE, |c| (c.not_after, c.id));
    let (owners, names) = if chrome.is_admin {
        let ids: Vec<uuid::Uuid> = items.iter().filter_map(|c| c.owner_id).collect();
        (
            owner_choices(&state, &session).await?,
            state
                .users
                .usernames(&state.db, &session.caller, &ids)
                .await?,
        )
    } else {
        (Vec::new(), std::collections::HashMap::new())
    };
    let page = CertificateList {
        chrome,
        filtered: !q.is_empty() || status.is_some() || owner_id.is_some(),
        q,
        status: status_label,
        owner: owner_id.map(|o| o.to_string()).unwrap_or_default(),
        owners,
        statuses: ["ACTIVE", "SUPERSEDED", "REVOKED", "EXPIRED"],
        rows: items
            .iter()
            .map(|c| CertRow::new(c, now).named(&names))
            .collect(),
        next,
        first_page: after.is_none(),
    };
    Ok(render(&page))
}

/// How the certificate was revoked, as the detail page shows it.
#[derive(Debug)]
struct RevocationView {
    revoked_at: String,
    reason: String,
    invalidity_date: Option<String>,
    revoked_by: String,
}

/// What the detail page's forms say after a refused submission.
#[derive(Debug, Default)]
pub(super) struct DetailForms {
    pub pkcs12_error: Option<String>,
    pub renew_error: Option<String>,
    pub renew_validity_days: String,
    pub renew_rekey: bool,
    pub renew_revoke_previous: bool,
}

#[derive(Template)]
#[template(path = "ui/certificate.html")]
pub(super) struct CertificateDetail {
    chrome: Chrome,
    cert: CertRow,
    sans: Vec<String>,
    fingerprint: String,
    key_algorithm: String,
    has_key: bool,
    not_before: String,
    not_after: String,
    issued: String,
    versions: Vec<CertRow>,
    pem: String,
    revocable: bool,
    renewable: bool,
    revocation: Option<RevocationView>,
    reasons: [RevocationReason; 6],
    forms: DetailForms,
}

pub async fn certificate(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
) -> Result<Response, UiError> {
    let page = detail_page(&state, &session, id, DetailForms::default()).await?;
    Ok(render(&page))
}

/// The detail page, with what its forms say (errors are shown next to the form that
/// caused them, not on a page of their own).
pub(super) async fn detail_page(
    state: &AppState,
    session: &UiSession,
    id: uuid::Uuid,
    forms: DetailForms,
) -> Result<CertificateDetail, UiError> {
    let chrome = chrome(state, session, "certificates").await?;
    let requester = Principal::User(session.caller);
    // A USER asking for another user's certificate gets the use case's 404.
    let cert = state
        .authority
        .queries
        .get(&state.db, &requester, id)
        .await?;
    let versions = state
        .authority
        .queries
        .versions(&state.db, &requester, id)
        .await?;
    let revocation = match cert.status {
        CertificateStatus::Revoked => {
            state
                .authority
                .revocations
                .revocation(&state.db, &requester, id)
                .await?
        }
        _ => None,
    };
    let mut ids: Vec<uuid::Uuid> = cert.owner_id.into_iter().collect();
    ids.extend(revocation.as_ref().and_then(|r| r.revoked_by));
    // Row-level security shows a USER only their own name; anyone else who can revoke
    // their certificate is an administrator.
    let names = state
        .users
        .usernames(&state.db, &session.caller, &ids)
        .await?;
    let now = state.clock.now();
    let revocation = revocation.map(|r| RevocationView {
        revoked_at: view::date_time(r.revoked_at),
        reason: r.reason.text().to_owned(),
        invalidity_date: r.invalidity_date.map(view::date_time),
        revoked_by: match r.revoked_by {
            None => "the operator (command line) or a since deleted user".to_owned(),
            Some(by) => names
                .get(&by)
                .cloned()
                .unwrap_or_else(|| "an administrator".to_owned()),
        },
    });
    let live = cert.not_after > now;
    Ok(CertificateDetail {
        chrome,
        sans: cert
            .subject_alt_names
            .iter()
            .map(|s| view::san_text(s))
            .collect(),
        fingerprint: view::fingerprint(&cert.fingerprint_sha256),
        key_algorithm: cert.key_algorithm.as_str().to_owned(),
        has_key: cert.private_key_id.is_some(),
        not_before: view::date_time(cert.not_before),
        not_after: view::date_time(cert.not_after),
        issued: view::date_time(cert.created_at),
        versions: versions.iter().map(|c| CertRow::new(c, now)).collect(),
        pem: keyinfra_pki::certificate_pem(&cert.certificate_der),
        revocable: matches!(
            cert.status,
            CertificateStatus::Active | CertificateStatus::Superseded
        ) && live,
        // The renew use case takes only ACTIVE certificates.
        renewable: cert.status == CertificateStatus::Active,
        revocation,
        reasons: RevocationReason::END_ENTITY,
        forms,
        cert: CertRow::new(&cert, now).named(&names),
    })
}

/// The certificate and its CA chain, as the API's `/pem` serves it, as a download.
pub async fn pem(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
) -> Result<Response, UiError> {
    let text = state
        .authority
        .exports
        .pem_chain(&state.db, &Principal::User(session.caller), id)
        .await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{id}.pem\""))
        .map_err(|_| crate::problem::internal_error())?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pem-certificate-chain"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}
