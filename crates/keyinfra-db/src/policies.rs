//! The `issuance_policies` table (migration 0016). The rules and their matching live in
//! `keyinfra_core::policy`; this is storage only.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;

/// The default policy's fixed id: users whose `policy_id` is NULL hold it.
pub const DEFAULT_POLICY_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);

/// A policy row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub allowed_dns: Vec<String>,
    pub denied_dns: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub allowed_emails: Vec<String>,
    pub allowed_uris: Vec<String>,
    pub subject_rules: serde_json::Value,
    pub profiles: Vec<String>,
    pub key_algorithms: Vec<String>,
    pub min_rsa_bits: i32,
    pub max_validity_days: i32,
    pub quota: Option<i32>,
    pub ca_ids: Vec<Uuid>,
    /// A device's renewal (EST simplereenroll) may change the names (migration 0025).
    pub renewal_name_changes: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What create and update write (every column but the timestamps).
#[derive(Debug, Clone)]
pub struct PolicyRow<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub description: &'a str,
    pub allowed_dns: &'a [String],
    pub denied_dns: &'a [String],
    pub allowed_ips: &'a [String],
    pub allowed_emails: &'a [String],
    pub allowed_uris: &'a [String],
    pub subject_rules: &'a serde_json::Value,
    pub profiles: &'a [String],
    pub key_algorithms: &'a [String],
    pub min_rsa_bits: i32,
    pub max_validity_days: i32,
    pub quota: Option<i32>,
    pub ca_ids: &'a [Uuid],
    pub renewal_name_changes: bool,
}

/// Inserts a policy; a taken name fails with
/// `UniqueViolation { constraint: "issuance_policies_name_key" }`. With `if_absent`, an
/// existing row of the same id is left alone (the default policy's creation, which several
/// replicas may race to do) and the answer is false.
pub async fn insert(tx: &mut Tx, row: &PolicyRow<'_>, if_absent: bool) -> Result<bool, DbError> {
    let result = sqlx::query!(
        r#"INSERT INTO issuance_policies
               (id, name, description, allowed_dns, denied_dns, allowed_ips, allowed_emails,
                allowed_uris, subject_rules, profiles, key_algorithms, min_rsa_bits,
                max_validity_days, quota, ca_ids, renewal_name_changes)
           SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $17
           WHERE NOT $16::boolean
              OR NOT EXISTS (SELECT 1 FROM issuance_policies WHERE id = $1)
           ON CONFLICT (id) DO NOTHING"#,
        row.id,
        row.name,
        row.description,
        row.allowed_dns,
        row.denied_dns,
        row.allowed_ips,
        row.allowed_emails,
        row.allowed_uris,
        row.subject_rules,
        row.profiles,
        row.key_algorithms,
        row.min_rsa_bits,
        row.max_validity_days,
        row.quota,
        row.ca_ids,
        if_absent,
        row.renewal_name_changes,
    )
    .execute(tx.conn())
    .await?;
    if !if_absent && result.rows_affected() == 0 {
        return Err(DbError::UniqueViolation {
            constraint: "issuance_policies_pkey".into(),
        });
    }
    Ok(result.rows_affected() == 1)
}

/// Replaces every column of an existing policy; false when no visible row has the id.
pub async fn update(tx: &mut Tx, row: &PolicyRow<'_>) -> Result<bool, DbError> {
    let result = sqlx::query!(
        r#"UPDATE issuance_policies SET
               name = $2, description = $3, allowed_dns = $4, denied_dns = $5,
               allowed_ips = $6, allowed_emails = $7, allowed_uris = $8, subject_rules = $9,
               profiles = $10, key_algorithms = $11, min_rsa_bits = $12,
               max_validity_days = $13, quota = $14, ca_ids = $15,
               renewal_name_changes = $16, updated_at = now()
           WHERE id = $1"#,
        row.id,
        row.name,
        row.description,
        row.allowed_dns,
        row.denied_dns,
        row.allowed_ips,
        row.allowed_emails,
        row.allowed_uris,
        row.subject_rules,
        row.profiles,
        row.key_algorithms,
        row.min_rsa_bits,
        row.max_validity_days,
        row.quota,
        row.ca_ids,
        row.renewal_name_changes,
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The policy with this id, if the actor may see it.
pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<PolicyRecord>, DbError> {
    let row = sqlx::query_as!(
        PolicyRecord,
        r#"SELECT id, name, description, allowed_dns, denied_dns, allowed_ips, allowed_emails,
                  allowed_uris, subject_rules, profiles, key_algorithms, min_rsa_bits,
                  max_validity_days, quota, ca_ids, renewal_name_changes, created_at, updated_at
           FROM issuance_policies WHERE id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// The policy a user holds (NULL in `users.policy_id` is the default policy, which may
/// have no row yet: then `None`). One round trip.
pub async fn for_user(tx: &mut Tx, user_id: Uuid) -> Result<Option<PolicyRecord>, DbError> {
    let row = sqlx::query_as!(
        PolicyRecord,
        r#"SELECT p.id, p.name, p.description, p.allowed_dns, p.denied_dns, p.allowed_ips,
                  p.allowed_emails, p.allowed_uris, p.subject_rules, p.profiles,
                  p.key_algorithms, p.min_rsa_bits, p.max_validity_days, p.quota, p.ca_ids,
                  p.renewal_name_changes, p.created_at, p.updated_at
           FROM users u
           JOIN issuance_policies p ON p.id = coalesce(u.policy_id, $2)
           WHERE u.id = $1"#,
        user_id,
        DEFAULT_POLICY_ID,
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// Every visible policy, by name. Policies are few (tens): no pagination.
pub async fn list(tx: &mut Tx) -> Result<Vec<PolicyRecord>, DbError> {
    let rows = sqlx::query_as!(
        PolicyRecord,
        r#"SELECT id, name, description, allowed_dns, denied_dns, allowed_ips, allowed_emails,
                  allowed_uris, subject_rules, profiles, key_algorithms, min_rsa_bits,
                  max_validity_days, quota, ca_ids, renewal_name_changes, created_at, updated_at
           FROM issuance_policies ORDER BY name, id LIMIT 1000"#
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Deletes a policy; false when no visible row has the id. A policy users hold fails with
/// `ForeignKeyViolation { constraint: "users_policy_id_fkey" }`.
pub async fn delete(tx: &mut Tx, id: Uuid) -> Result<bool, DbError> {
    let result = sqlx::query!("DELETE FROM issuance_policies WHERE id = $1", id)
        .execute(tx.conn())
        .await?;
    Ok(result.rows_affected() == 1)
}
