//! The audit log for administrators: newest first, filtered by action, actor, target and
//! date range, one page at a time (keyset). The same use case as `GET /api/v1/audit`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyinfra_db::audit::{ActionFilter, AuditAction, AuditFilter, AuditRecord};
use serde::Deserialize;
use time::macros::format_description;
use time::{Date, OffsetDateTime, Time};
use uuid::Uuid;

use super::pages::OwnerChoice;
use super::session::{UiError, UiSession, admin_only, chrome, render};
use super::view::{self, Chrome};
use crate::AppState;
use crate::pagination::{decode_cursor, encode_cursor};

/// Events per page.
const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    since: String,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

#[derive(Debug, Default)]
struct FilterErrors {
    action: Option<String>,
    actor: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl FilterErrors {
    fn any(&self) -> bool {
        self.action.is_some()
            || self.actor.is_some()
            || self.target.is_some()
            || self.since.is_some()
            || self.until.is_some()
    }
}

#[derive(Debug)]
struct EventRow {
    at: String,
    actor: String,
    action: String,
    /// "certificate", "user", ...
    target_type: String,
    /// How the target reads: a user's name, a certificate's CN, else its kind and short id.
    target_label: String,
    target_id: Option<Uuid>,
    /// Where the target's page is, if it has one.
    target_href: Option<String>,
    details: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "ui/audit.html")]
struct AuditPage {
    chrome: Chrome,
    query: AuditQuery,
    errors: FilterErrors,
    /// The filter's menu: every action KeyInfra records.
    actions: [&'static str; AuditAction::ALL.len()],
    actors: Vec<OwnerChoice>,
    rows: Vec<EventRow>,
    next: Option<String>,
    first_page: bool,
    filtered: bool,
}

fn parse_day(text: &str) -> Result<Option<Date>, String> {
    match text.trim() {
        "" => Ok(None),
        day => Date::parse(day, format_description!("[year]-[month]-[day]"))
            .map(Some)
            .map_err(|_| "Give a date as YYYY-MM-DD.".to_owned()),
    }
}

fn start_of(day: Date) -> OffsetDateTime {
    day.with_time(Time::MIDNIGHT).assume_utc()
}

/// A detail value as text: strings without quotes, everything else as compact JSON.
fn detail_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn page(
    State(state): State<AppState>,
    session: UiSession,
    Query(query): Query<AuditQuery>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let chrome = chrome(&state, &session, "audit").await?;
    let mut errors = FilterErrors::default();
    let action = query.action.trim();
    if action.chars().count() > 100 {
        errors.action = Some("The action is longer than 100 characters.".into());
    }
    let actor = match query.actor.trim() {
        "" => None,
        text => text.parse::<Uuid>().map(Some).unwrap_or_else(|_| {
            errors.actor = Some("Choose the actor from the list.".into());
            None
        }),
    };
    let target = match query.target.trim() {
        "" => None,
        text => text.parse::<Uuid>().map(Some).unwrap_or_else(|_| {
            errors.target = Some(
                "Give the id of a certificate or user (a UUID, as in its page's address).".into(),
            );
            None
        }),
    };
    let since = parse_day(&query.since).unwrap_or_else(|e| {
        errors.since = Some(e);
        None
    });
    let until = parse_day(&query.until).unwrap_or_else(|e| {
        errors.until = Some(e);
        None
    });
    if let (Some(a), Some(b)) = (since, until)
        && a > b
    {
        errors.until = Some("The last day is before the first day.".into());
    }
    let after = match query.cursor.as_str() {
        "" => None,
        c => Some(decode_cursor(c)?),
    };
    let actors = super::pages::owner_choices(&state, &session).await?;
    let filtered = !action.is_empty()
        || !query.actor.trim().is_empty()
        || !query.target.trim().is_empty()
        || !query.since.trim().is_empty()
        || !query.until.trim().is_empty();
    if errors.any() {
        // Nothing is searched with a filter that does not parse: an empty table under the
        // field's message, rather than everything (which would look like a match).
        let page = AuditPage {
            chrome,
            query,
            errors,
            actions: AuditAction::ALL.map(AuditAction::as_str),
            actors,
            rows: Vec::new(),
            next: None,
            first_page: true,
            filtered,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
    }
    let filter = AuditFilter {
        actor_id: actor,
        action: if action.is_empty() {
            ActionFilter::Any
        } else {
            ActionFilter::parse(action)
        },
        since: since.map(start_of),
        // Inclusive last day: events before the next midnight.
        until: until.and_then(Date::next_day).map(start_of),
        target_id: target,
        before: after,
    };
    let (events, more) =
        keyinfra_core::users::audit_log(&state.db, &session.caller, &filter, PAGE_SIZE).await?;
    let next = if more {
        events.last().map(|e| encode_cursor(e.occurred_at, e.id))
    } else {
        None
    };
    let ids: Vec<Uuid> = events
        .iter()
        .flat_map(|e| {
            let user_target = e
                .target_id
                .filter(|_| e.target_type.as_deref() == Some("user"));
            [e.actor_id, user_target]
        })
        .flatten()
        .collect();
    let names = state
        .users
        .usernames(&state.db, &session.caller, &ids)
        .await?;
    let subjects = view::certificate_subjects(&events);
    let rows = events
        .into_iter()
        .map(|e: AuditRecord| {
            let target_label = view::event_target(&e, &names, &subjects);
            EventRow {
                at: view::date_time(e.occurred_at),
                actor: match (e.actor_name, e.actor_id) {
                    (Some(name), _) => name,
                    (None, Some(id)) => names
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| format!("deleted user {}", view::short_id(id))),
                    (None, None) => "anonymous".to_owned(),
                },
                target_href: match (e.target_type.as_deref(), e.target_id) {
                    (Some("certificate"), Some(id)) => Some(format!("/ui/certificates/{id}")),
                    (Some("user"), Some(id)) => Some(format!("/ui/users/{id}")),
                    (Some("ca"), Some(_)) => Some("/ui/cas".to_owned()),
                    _ => None,
                },
                target_label,
                target_type: e.target_type.unwrap_or_default(),
                target_id: e.target_id,
                action: e.action,
                details: match e.details {
                    serde_json::Value::Object(map) => map
                        .iter()
                        .map(|(k, v)| (k.clone(), detail_text(v)))
                        .collect(),
                    serde_json::Value::Null => Vec::new(),
                    other => vec![("details".to_owned(), other.to_string())],
                },
            }
        })
        .collect();
    let page = AuditPage {
        chrome,
        query,
        errors,
        actions: AuditAction::ALL.map(AuditAction::as_str),
        actors,
        rows,
        next,
        first_page: after.is_none(),
        filtered,
    };
    Ok(render(&page))
}
