//! The `enrollment_challenges` table (migration 0020): SCEP challenge passwords, stored as
//! their SHA-256 only. The secret itself, its alphabet and the rules live in
//! `keyinfra_core::enrollment`; this is storage only.
//!
//! keyinfra_app cannot read `secret_hash` nor write the claim state (`used_at`,
//! `certificate_id`, and since migration 0033 the rows of `enrollment_challenge_uses`, the
//! uses): [`claim`], [`release`] and the certificate's own statement go through the
//! migrations' SECURITY DEFINER functions, which work in a transaction without identity.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;

/// A challenge as stored, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub created_by: Option<Uuid>,
    pub profile: String,
    pub validity_days: Option<i32>,
    pub subject: Option<String>,
    /// A JSON array of typed names (`DNS:...`), or `None`.
    pub names: Option<serde_json::Value>,
    pub approval: bool,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub withdrawn_at: Option<OffsetDateTime>,
    pub certificate_id: Option<Uuid>,
}

/// What create writes.
#[derive(Debug, Clone)]
pub struct NewChallenge<'a> {
    pub owner_id: Uuid,
    pub created_by: Option<Uuid>,
    /// SHA-256 of the secret (32 bytes).
    pub secret_hash: &'a [u8],
    pub profile: &'a str,
    pub validity_days: Option<i32>,
    pub subject: Option<&'a str>,
    pub names: Option<&'a serde_json::Value>,
    pub approval: bool,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// What a successful claim returns: the challenge's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedChallenge {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub profile: String,
    pub validity_days: Option<i32>,
    pub subject: Option<String>,
    pub names: Option<serde_json::Value>,
    pub approval: bool,
    pub expires_at: OffsetDateTime,
}

/// A challenge's state at a moment, as the list filters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeState {
    /// Unused, not withdrawn, not expired: a device may still present it.
    Active,
    Used,
    Expired,
    Withdrawn,
}

impl ChallengeState {
    pub const ALL: [ChallengeState; 4] = [
        ChallengeState::Active,
        ChallengeState::Used,
        ChallengeState::Expired,
        ChallengeState::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeState::Active => "active",
            ChallengeState::Used => "used",
            ChallengeState::Expired => "expired",
            ChallengeState::Withdrawn => "withdrawn",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == label)
    }
}

impl ChallengeRecord {
    /// The state at `now`: used and withdrawn first (they are final), then expiry.
    pub fn state(&self, now: OffsetDateTime) -> ChallengeState {
        if self.used_at.is_some() {
            ChallengeState::Used
        } else if self.withdrawn_at.is_some() {
            ChallengeState::Withdrawn
        } else if self.expires_at <= now {
            ChallengeState::Expired
        } else {
            ChallengeState::Active
        }
    }
}

/// Takes the owner's challenge lock (until the transaction ends) and counts the owner's
/// live challenges (unused, unwithdrawn, unexpired at `now`), so that a cap checked with
/// it holds against concurrent creates.
pub async fn lock_and_count_live(
    tx: &mut Tx,
    owner_id: Uuid,
    now: OffsetDateTime,
) -> Result<i64, DbError> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('keyinfra.challenges.' || $1::uuid::text, 0))",
        owner_id
    )
    .execute(tx.conn())
    .await?;
    let live = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM enrollment_challenges AS c
           WHERE c.owner_id = $1 AND c.used_at IS NULL AND c.withdrawn_at IS NULL
             AND c.expires_at > $2
             AND NOT EXISTS (SELECT 1 FROM enrollment_challenge_uses AS u
                             WHERE u.challenge_id = c.id)"#,
        owner_id,
        now
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(live)
}

/// Inserts a challenge and returns its id. An owner that names no user fails with
/// `ForeignKeyViolation { constraint: "enrollment_challenges_owner_id_fkey" }`.
pub async fn insert(tx: &mut Tx, new: &NewChallenge<'_>) -> Result<Uuid, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO enrollment_challenges
             (owner_id, created_by, secret_hash, profile, validity_days, subject, names,
              approval, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING id",
        new.owner_id,
        new.created_by,
        new.secret_hash,
        new.profile,
        new.validity_days,
        new.subject,
        new.names,
        new.approval,
        new.created_at,
        new.expires_at,
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// The challenge with this id, if the actor may see it. Used means a use row (migration
/// 0033) or a database claim holding it; the certificate is the use's.
pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<ChallengeRecord>, DbError> {
    let row = sqlx::query_as!(
        ChallengeRecord,
        r#"SELECT c.id, c.owner_id, c.created_by, c.profile, c.validity_days, c.subject,
                  c.names, c.approval, c.created_at, c.expires_at,
                  coalesce(u.used_at, c.used_at) AS used_at, c.withdrawn_at,
                  coalesce(u.certificate_id, c.certificate_id) AS certificate_id
           FROM enrollment_challenges AS c
           LEFT JOIN enrollment_challenge_uses AS u ON u.challenge_id = c.id
           WHERE c.id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ChallengeFilter {
    pub owner_id: Option<Uuid>,
    pub state: Option<ChallengeState>,
    /// The time `state` is judged at.
    pub as_of: Option<OffsetDateTime>,
    /// Keyset: the (created_at, id) of the previous page's last item.
    pub after: Option<(OffsetDateTime, Uuid)>,
}

/// The visible challenges, newest first.
pub async fn list(
    tx: &mut Tx,
    filter: &ChallengeFilter,
    limit: i64,
) -> Result<Vec<ChallengeRecord>, DbError> {
    let (after_at, after_id) = match filter.after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let state = filter.state.map(ChallengeState::as_str);
    let rows = sqlx::query_as!(
        ChallengeRecord,
        r#"SELECT c.id, c.owner_id, c.created_by, c.profile, c.validity_days, c.subject,
                  c.names, c.approval, c.created_at, c.expires_at,
                  coalesce(u.used_at, c.used_at) AS used_at, c.withdrawn_at,
                  coalesce(u.certificate_id, c.certificate_id) AS certificate_id
           FROM enrollment_challenges AS c
           LEFT JOIN enrollment_challenge_uses AS u ON u.challenge_id = c.id
           WHERE ($1::uuid IS NULL OR c.owner_id = $1)
             AND CASE $2::text
                   WHEN 'used' THEN coalesce(u.used_at, c.used_at) IS NOT NULL
                   WHEN 'withdrawn' THEN c.withdrawn_at IS NOT NULL
                   WHEN 'expired' THEN coalesce(u.used_at, c.used_at) IS NULL
                                       AND c.withdrawn_at IS NULL AND c.expires_at <= $3
                   WHEN 'active' THEN coalesce(u.used_at, c.used_at) IS NULL
                                      AND c.withdrawn_at IS NULL AND c.expires_at > $3
                   ELSE true
                 END
             AND ($4::timestamptz IS NULL OR (c.created_at, c.id) < ($4, $5::uuid))
           ORDER BY c.created_at DESC, c.id DESC
           LIMIT $6"#,
        filter.owner_id,
        state,
        filter.as_of,
        after_at,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Withdraws an unused challenge at `now` and returns its owner; `None` when a used,
/// already withdrawn or invisible one was left alone (the caller tells them apart with
/// [`get`]).
///
/// Two statements: the row is locked first, which waits for a certificate being recorded
/// under the challenge (its statement holds the row FOR SHARE, migration 0033), and the
/// update then looks for a use with a snapshot taken after that wait. One UPDATE would
/// wait as well, but re-check only the challenge row, not the use that just committed.
pub async fn withdraw(tx: &mut Tx, id: Uuid, now: OffsetDateTime) -> Result<Option<Uuid>, DbError> {
    sqlx::query!(
        "SELECT id FROM enrollment_challenges WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    let owner = sqlx::query_scalar!(
        "UPDATE enrollment_challenges AS c SET withdrawn_at = $2
         WHERE c.id = $1 AND c.used_at IS NULL AND c.withdrawn_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM enrollment_challenge_uses AS u
                           WHERE u.challenge_id = c.id)
         RETURNING c.owner_id",
        id,
        now
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(owner)
}

/// Marks the challenge whose secret hashes to `secret_hash` used, if it is unused,
/// unwithdrawn, unexpired at `now` and its owner enabled, and returns its terms; else
/// `None`. Works under any identity (a definer function).
///
/// One statement in a transaction of its own (one round trip: a device is nobody, so no
/// identity is set, and the definer function is all it may do), committed without
/// waiting for its WAL flush (`synchronous_commit` off for it alone): the claim is
/// visible to every other transaction at once, so no second claim can win, and the
/// certificate it leads to commits synchronously later in the same WAL, which flushes
/// the claim first. A crash in between loses only a claim that produced nothing, and the
/// device may use the challenge again. This saves two round trips and an fsync on every
/// SCEP and EST enrollment.
pub async fn claim(
    db: &crate::Database,
    secret_hash: &[u8],
    now: OffsetDateTime,
) -> Result<Option<ClaimedChallenge>, DbError> {
    let mut conn = db.acquire().await?;
    let row = sqlx::query_as!(
        ClaimedChallenge,
        r#"SELECT id AS "id!", owner_id AS "owner_id!", profile AS "profile!", validity_days,
                  subject, names, approval AS "approval!", expires_at AS "expires_at!"
           FROM keyinfra_claim_enrollment_challenge($1, $2),
                set_config('synchronous_commit', 'off', true)"#,
        secret_hash,
        now
    )
    .fetch_optional(&mut *conn)
    .await?;
    conn.finished();
    Ok(row)
}

/// Makes a claimed challenge that produced no certificate usable again: true if it did.
pub async fn release(tx: &mut Tx, id: Uuid) -> Result<bool, DbError> {
    let released = sqlx::query_scalar!(
        r#"SELECT keyinfra_release_enrollment_challenge($1) AS "released!""#,
        id
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(released)
}

/// Claims several challenges in one statement, each as [`claim`] would (with its own
/// `now`): element `i` of the answer is what `secret_hashes[i]` claimed. Of two equal
/// hashes only the first is tried. One UPDATE whatever the number (migration 0030), one
/// round trip, committed without waiting for the WAL flush, as [`claim`] is; a failure
/// claims nothing.
pub async fn claim_many(
    db: &crate::Database,
    secret_hashes: &[Vec<u8>],
    nows: &[OffsetDateTime],
) -> Result<Vec<Option<ClaimedChallenge>>, DbError> {
    let mut conn = db.acquire().await?;
    let rows = sqlx::query!(
        r#"SELECT c.claim_position AS "position!", c.id AS "id!", c.owner_id AS "owner_id!",
                  c.profile AS "profile!", c.validity_days, c.subject, c.names,
                  c.approval AS "approval!", c.expires_at AS "expires_at!"
           FROM keyinfra_claim_enrollment_challenges($1::bytea[], $2::timestamptz[]) AS c,
                set_config('synchronous_commit', 'off', true)"#,
        secret_hashes,
        nows
    )
    .fetch_all(&mut *conn)
    .await?;
    conn.finished();
    let mut claimed: Vec<Option<ClaimedChallenge>> = secret_hashes.iter().map(|_| None).collect();
    for row in rows {
        let slot = usize::try_from(row.position - 1)
            .ok()
            .and_then(|i| claimed.get_mut(i))
            .ok_or_else(|| DbError::Internal("a claim's position out of range".into()))?;
        *slot = Some(ClaimedChallenge {
            id: row.id,
            owner_id: row.owner_id,
            profile: row.profile,
            validity_days: row.validity_days,
            subject: row.subject,
            names: row.names,
            approval: row.approval,
            expires_at: row.expires_at,
        });
    }
    Ok(claimed)
}
