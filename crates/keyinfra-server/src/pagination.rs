//! Keyset pagination: `?limit=&cursor=`, answered with `{"items": [...], "next_cursor": ...}`.
//! A cursor is an opaque base64url string of `<RFC 3339 timestamp>|<uuid>`.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Problem;
use keyinfra_core::ErrorCode;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, Problem> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidLimit,
                format!("limit must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    pub fn keyset(&self) -> Result<Option<(OffsetDateTime, Uuid)>, Problem> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// The cursor of the next page of a keyset listing: the last item's key when the page is
/// full (there may be more), none when it is short (it was the last page).
pub fn next_cursor<T>(
    items: &[T],
    limit: i64,
    key: impl Fn(&T) -> (OffsetDateTime, Uuid),
) -> Option<String> {
    match items.last() {
        Some(last) if items.len() as i64 == limit => {
            let (at, id) = key(last);
            Some(encode_cursor(at, id))
        }
        _ => None,
    }
}

pub fn encode_cursor(at: OffsetDateTime, id: Uuid) -> String {
    let at = at.format(&Rfc3339).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{at}|{id}"))
}

pub fn decode_cursor(text: &str) -> Result<(OffsetDateTime, Uuid), Problem> {
    let bad = || {
        Problem::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidCursor,
            "the cursor is not one this server issued",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, id) = text.split_once('|').ok_or_else(bad)?;
    Ok((
        OffsetDateTime::parse(at, &Rfc3339).map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}
