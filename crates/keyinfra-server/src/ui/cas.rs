//! The certificate authorities page: each CA's certificate (with its public download links)
//! and its current CRL as published: number, thisUpdate, nextUpdate and the entries read back
//! from the signed DER, so the page shows what a relying party that downloads it sees.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use keyinfra_pki::RevocationReason;
use serde::Deserialize;
use uuid::Uuid;

use super::session::{UiError, UiSession, chrome, render};
use super::view::{self, Chrome};
use crate::AppState;

/// CRL entries listed per CA (newest revocations first); the CRL files have them all.
const ENTRIES_SHOWN: usize = 100;

#[derive(Debug)]
struct EntryRow {
    serial: String,
    revoked_at: String,
    reason: String,
}

#[derive(Debug)]
struct CrlView {
    number: i64,
    this_update: String,
    next_update: String,
    /// nextUpdate has passed: relying parties treat the CRL as stale.
    overdue: bool,
    size: String,
    total: usize,
    /// How many entries match the serial search (all when there is none).
    matching: usize,
    entries: Vec<EntryRow>,
    /// The newest delta CRL over it, if any.
    delta: Option<DeltaView>,
}

#[derive(Debug)]
struct DeltaView {
    number: i64,
    base: i64,
    this_update: String,
    overdue: bool,
    size: String,
    total: usize,
}

#[derive(Debug)]
struct CaView {
    id: Uuid,
    name: String,
    subject: String,
    not_before: String,
    not_after: String,
    /// "Valid", "Expired" or "Not yet valid".
    state: &'static str,
    state_class: &'static str,
    /// Whether KeyInfra holds its key (it signs certificates and CRLs).
    signing: bool,
    parent: Option<String>,
    crl: Option<CrlView>,
}

#[derive(Template)]
#[template(path = "ui/cas.html")]
struct CasPage {
    chrome: Chrome,
    cas: Vec<CaView>,
    serial: String,
}

#[derive(Debug, Deserialize)]
pub struct CasQuery {
    /// Only CRL entries whose serial contains this (hex, any case, `:` ignored).
    #[serde(default)]
    serial: String,
}

fn size_text(bytes: usize) -> String {
    if bytes < 10 * 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

pub async fn page(
    State(state): State<AppState>,
    session: UiSession,
    Query(query): Query<CasQuery>,
) -> Result<Response, UiError> {
    let chrome = chrome(&state, &session, "cas").await?;
    let needle: String = query
        .serial
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_uppercase();
    let now = state.clock.now();
    let records = state.authority.cas.list_cas(&state.db).await?;
    let mut cas = Vec::with_capacity(records.len());
    for ca in &records {
        let crl = state.authority.crls.published_crl(&state.db, ca.id).await?;
        let crl = crl.map(|crl| {
            let total = crl.entries.len();
            let mut matching: Vec<_> = crl
                .entries
                .into_iter()
                .filter(|e| needle.is_empty() || e.serial.to_hex().contains(&needle))
                .collect();
            matching.sort_by_key(|e| std::cmp::Reverse(e.revoked_at));
            let delta = crl.delta.map(|d| DeltaView {
                number: d.crl_number,
                base: d.base_crl_number,
                this_update: view::date_time(d.this_update),
                overdue: d.next_update <= now,
                size: size_text(d.size_bytes),
                total: d.entries.len(),
            });
            CrlView {
                delta,
                number: crl.crl_number,
                this_update: view::date_time(crl.this_update),
                next_update: view::date_time(crl.next_update),
                overdue: crl.next_update <= now,
                size: size_text(crl.size_bytes),
                total,
                matching: matching.len(),
                entries: matching
                    .into_iter()
                    .take(ENTRIES_SHOWN)
                    .map(|e| EntryRow {
                        serial: e.serial.to_hex(),
                        revoked_at: view::date_time(e.revoked_at),
                        reason: e.reason_code.map_or_else(
                            || "not given".to_owned(),
                            // Codes KeyInfra never writes (the hold codes) show as numbers.
                            |code| {
                                RevocationReason::from_code(code).map_or_else(
                                    || format!("reason code {code}"),
                                    |r| r.text().to_owned(),
                                )
                            },
                        ),
                    })
                    .collect(),
            }
        });
        let (state_text, state_class) = if ca.not_after <= now {
            ("Expired", "expired")
        } else if ca.not_before > now {
            ("Not yet valid", "superseded")
        } else {
            ("Valid", "active")
        };
        cas.push(CaView {
            id: ca.id,
            name: ca.name.clone(),
            subject: ca.subject_dn.clone(),
            not_before: view::date_time(ca.not_before),
            not_after: view::date_time(ca.not_after),
            state: state_text,
            state_class,
            signing: ca.private_key_id.is_some(),
            parent: ca
                .parent_ca_id
                .and_then(|p| records.iter().find(|r| r.id == p))
                .map(|p| p.name.clone()),
            crl,
        });
    }
    Ok(render(&CasPage {
        chrome,
        cas,
        serial: query.serial.trim().to_owned(),
    }))
}
