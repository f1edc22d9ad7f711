//! SCEP challenge passwords (issue 19): a user creates a one-time secret for a device (an
//! ADMIN for anyone), and the device presents it as its PKCS#10 challengePassword. The
//! secret is shown once and stored only as its SHA-256 (migration 0020 says why a fast
//! hash is right); the SCEP handler claims it with [`Challenges::claim`], and the
//! certificate the enrollment produces belongs to the challenge's owner.
//!
//! Limits: a challenge lives 1 minute to 7 days (60 minutes by default), and an owner holds
//! at most [`MAX_LIVE_CHALLENGES`] live ones (unused, unwithdrawn, unexpired), counted under
//! a per-owner lock; used, withdrawn and expired ones do not count. Creating one takes a
//! write from the per-user rate that issues, renewals and revocations share
//! (`KEYINFRA_ISSUE_RATE`), so that create and withdraw cannot grow the table without end.

use std::fmt;
use std::sync::{Arc, OnceLock};

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::enrollment_challenges::{
    self as store, ChallengeFilter, ChallengeRecord, ChallengeState, ClaimedChallenge, NewChallenge,
};
use keyinfra_db::{Actor, Database, DbError};
use keyinfra_pki::RandomSource;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::claim_batch::ClaimBatcher;
use super::live::{LiveChallenges, Lookup};
use crate::authority::AuthoritySettings;
use crate::error::CoreError;
use crate::principal::{Principal, check_credential_owner, credential_owner};
use crate::rate::WriteLimiter;
use crate::{Clock, ErrorCode};

/// The symbols of a challenge: digits and lowercase letters without 0, 1, l and o, which
/// read alike. 32 symbols, so each is 5 bits of a random byte with no bias, and a router
/// CLI (Cisco IOS treats `?` as help, some shells `!` and `#`) takes them as typed.
pub const CHALLENGE_ALPHABET: &[u8; 32] = b"23456789abcdefghijkmnpqrstuvwxyz";
/// Symbols in a challenge: 32 × 5 = 160 random bits.
pub const CHALLENGE_LENGTH: usize = 32;
/// The profile a challenge grants when the request names none.
pub const DEFAULT_PROFILE: &str = "device";
pub const DEFAULT_EXPIRES_IN_MINUTES: u32 = 60;
/// Seven days.
pub const MAX_EXPIRES_IN_MINUTES: u32 = 7 * 24 * 60;
/// Live challenges (unused, unwithdrawn, unexpired) one owner may hold.
pub const MAX_LIVE_CHALLENGES: i64 = 100;

/// What a create asks for; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct CreateChallenge {
    /// ADMIN only (another user's): whose device enrolls. Default: the caller.
    pub owner_id: Option<Uuid>,
    /// A known profile; default `device`.
    pub profile: Option<String>,
    /// The certificate's validity; default: the profile's (and the policy's) default.
    pub validity_days: Option<u32>,
    /// 1 to 10080 (7 days); default 60.
    pub expires_in_minutes: Option<u32>,
    /// RFC 4514: the subject the certificate gets.
    pub subject: Option<String>,
    /// DNS names, IP addresses, `EMAIL:` and `URI:` names, as the issue API takes them.
    pub names: Option<Vec<String>>,
    /// The enrollment waits for an ADMIN's approval (SCEP PENDING).
    pub approval: Option<bool>,
}

/// The secret, shown once. Its `Debug` does not print it, and it is wiped on drop.
#[derive(Clone)]
pub struct ChallengeSecret(Zeroizing<String>);

impl ChallengeSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChallengeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeSecret(..)")
    }
}

/// A new challenge with its secret: the only time the secret exists outside the device.
#[derive(Debug, Clone)]
pub struct CreatedChallenge {
    pub challenge: ChallengeSecret,
    pub view: ChallengeView,
}

/// A challenge as the API lists it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeView {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub created_by: Option<Uuid>,
    pub profile: String,
    pub validity_days: Option<u32>,
    /// RFC 4514, as parsed and written again.
    pub subject: Option<String>,
    /// Typed names (`DNS:router.example.net`, `IP:192.0.2.1`).
    pub names: Option<Vec<String>>,
    pub approval: bool,
    pub state: ChallengeState,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub withdrawn_at: Option<OffsetDateTime>,
    pub certificate_id: Option<Uuid>,
}

/// What a claimed challenge lets its device have: the SCEP handler issues under these
/// terms, for `owner_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeGrant {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub profile: String,
    pub validity_days: Option<u32>,
    /// RFC 4514, already parsed once (it parses again).
    pub subject: Option<String>,
    /// Typed names that `SubjectAltName::parse_list` (and the issue request's `san`) read.
    pub names: Option<Vec<String>>,
    pub approval: bool,
    pub expires_at: OffsetDateTime,
}

/// The challenge use cases.
#[derive(Debug)]
pub struct Challenges {
    settings: Arc<AuthoritySettings>,
    clock: Arc<dyn Clock>,
    /// The per-user write rate shared with issues, renewals and revocations.
    writes: Arc<WriteLimiter>,
    /// Started by the first claim, on the runtime that serves it.
    claims: OnceLock<ClaimBatcher>,
    /// The challenges this replica made: claimed with no statement (live's docs).
    live: Arc<LiveChallenges>,
}

impl Challenges {
    pub(crate) fn new(
        settings: Arc<AuthoritySettings>,
        clock: Arc<dyn Clock>,
        writes: Arc<WriteLimiter>,
        live: Arc<LiveChallenges>,
    ) -> Self {
        Self {
            settings,
            clock,
            writes,
            claims: OnceLock::new(),
            live,
        }
    }

    /// Creates a challenge. Every field is checked before anything is written; the secret
    /// is drawn from `rng`, returned once, stored as its SHA-256, and never audited.
    pub async fn create(
        &self,
        db: &Database,
        by: &Principal,
        request: CreateChallenge,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CreatedChallenge, CoreError> {
        // The rate comes first: a refused request costs nothing else.
        self.writes.take(by, self.clock.now())?;
        let owner_id = credential_owner(by, request.owner_id)?;
        let profile = self
            .settings
            .profile(request.profile.as_deref().unwrap_or(DEFAULT_PROFILE))?;
        if let Some(days) = request.validity_days {
            if days == 0 {
                return Err(CoreError::invalid(
                    ErrorCode::InvalidValidity,
                    "validity_days must be at least 1",
                ));
            }
            if days > profile.max_validity_days {
                return Err(CoreError::invalid(
                    ErrorCode::ValidityTooLong,
                    format!(
                        "validity_days {days} exceeds the {} profile's maximum of {}",
                        profile.name, profile.max_validity_days
                    ),
                ));
            }
        }
        let minutes = request
            .expires_in_minutes
            .unwrap_or(DEFAULT_EXPIRES_IN_MINUTES);
        if !(1..=MAX_EXPIRES_IN_MINUTES).contains(&minutes) {
            return Err(CoreError::invalid(
                ErrorCode::InvalidExpiry,
                format!(
                    "expires_in_minutes must be between 1 and {MAX_EXPIRES_IN_MINUTES} (7 days)"
                ),
            ));
        }
        let subject = request
            .subject
            .as_deref()
            .map(|s| {
                DistinguishedName::parse(s)
                    .map(|dn| dn.to_string())
                    .map_err(|e| CoreError::invalid(ErrorCode::InvalidSubject, e.to_string()))
            })
            .transpose()?;
        let names = request.names.as_deref().map(parse_names).transpose()?;
        let approval = request.approval.unwrap_or(false);
        let validity_days = request
            .validity_days
            .map(|d| i32::try_from(d).map_err(|_| CoreError::Internal("validity_days".into())))
            .transpose()?;

        let secret = new_secret(rng)?;
        let hash = keyinfra_pki::sha256_fingerprint(secret.expose().as_bytes());
        // In microseconds, as PostgreSQL keeps it: the answer shows what is stored.
        let now = self.clock.now();
        let now = now
            .replace_nanosecond(now.nanosecond() / 1000 * 1000)
            .unwrap_or(now);
        let expires_at = now + Duration::minutes(i64::from(minutes));
        let names_json = names.as_ref().map(|n| json!(n));

        let mut tx = db.begin(&by.actor()).await?;
        check_credential_owner(&mut tx, by, owner_id).await?;
        let live = store::lock_and_count_live(&mut tx, owner_id, now).await?;
        if live >= MAX_LIVE_CHALLENGES {
            return Err(CoreError::invalid(
                ErrorCode::TooManyChallenges,
                format!(
                    "the owner already has {live} unused, unexpired challenges and the limit is {MAX_LIVE_CHALLENGES}; withdraw some or let them expire"
                ),
            ));
        }
        let id = store::insert(
            &mut tx,
            &NewChallenge {
                owner_id,
                created_by: by.user_id(),
                secret_hash: &hash,
                profile: &profile.name,
                validity_days,
                subject: subject.as_deref(),
                names: names_json.as_ref(),
                approval,
                created_at: now,
                expires_at,
            },
        )
        .await
        .map_err(|e| match e {
            // The owner was deleted since the check.
            DbError::ForeignKeyViolation { .. } => CoreError::invalid(
                ErrorCode::UnknownOwner,
                format!("no user has id {owner_id}"),
            ),
            other => other.into(),
        })?;
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: by.user_id(),
                actor_name: by.audit_name(),
                action: AuditAction::EnrollmentChallengeCreated,
                target_type: Some("enrollment_challenge"),
                target_id: Some(id),
                details: json!({
                    "owner_id": owner_id,
                    "profile": profile.name,
                    "validity_days": request.validity_days,
                    "subject": subject,
                    "names": names,
                    "approval": approval,
                    "expires_at": expires_at.unix_timestamp(),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        // A held request needs the database's claim; any other challenge is kept here so
        // that its device is signed for with no statement first.
        if !approval {
            self.live.remember(
                hash,
                ClaimedChallenge {
                    id,
                    owner_id,
                    profile: profile.name.clone(),
                    validity_days,
                    subject: subject.clone(),
                    names: names_json,
                    approval,
                    expires_at,
                },
                now,
            );
        }
        Ok(CreatedChallenge {
            challenge: secret,
            view: ChallengeView {
                id,
                owner_id,
                created_by: by.user_id(),
                profile: profile.name.clone(),
                validity_days: request.validity_days,
                subject,
                names,
                approval,
                state: ChallengeState::Active,
                created_at: now,
                expires_at,
                used_at: None,
                withdrawn_at: None,
                certificate_id: None,
            },
        })
    }

    /// The caller's challenges, or everyone's for an ADMIN (a USER naming another owner gets
    /// none), newest first, with their state now. Never a secret or its hash.
    pub async fn list(
        &self,
        db: &Database,
        by: &Principal,
        mut filter: ChallengeFilter,
        limit: i64,
    ) -> Result<Vec<ChallengeView>, CoreError> {
        if !by.is_admin() {
            match filter.owner_id {
                Some(owner) if Some(owner) != by.user_id() => return Ok(Vec::new()),
                // Naming the owner lets the owner index serve the query.
                _ => filter.owner_id = by.user_id(),
            }
        }
        let now = *filter.as_of.get_or_insert(self.clock.now());
        let mut tx = db.begin(&by.actor()).await?;
        let rows = store::list(&mut tx, &filter, limit).await?;
        tx.commit().await?;
        rows.into_iter().map(|r| view(r, now)).collect()
    }

    /// Withdraws an unused challenge: no device can claim it afterwards. 404 for one the
    /// caller may not see, 409 `challenge_used` for a used one; withdrawing twice changes
    /// nothing (and is audited once).
    pub async fn withdraw(&self, db: &Database, by: &Principal, id: Uuid) -> Result<(), CoreError> {
        let now = self.clock.now();
        let mut tx = db.begin(&by.actor()).await?;
        let Some(owner_id) = store::withdraw(&mut tx, id, now).await? else {
            let current = store::get(&mut tx, id)
                .await?
                .ok_or(CoreError::NotFound("enrollment challenge"))?;
            if current.used_at.is_some() {
                return Err(CoreError::Conflict {
                    code: ErrorCode::ChallengeUsed,
                    detail:
                        "the challenge has been used; revoke the certificate it produced instead"
                            .into(),
                });
            }
            // Already withdrawn.
            return Ok(());
        };
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: by.user_id(),
                actor_name: by.audit_name(),
                action: AuditAction::EnrollmentChallengeWithdrawn,
                target_type: Some("enrollment_challenge"),
                target_id: Some(id),
                details: json!({ "owner_id": owner_id }),
            },
        )
        .await?;
        tx.commit().await?;
        self.live.forget(id);
        Ok(())
    }

    /// For the SCEP and EST handlers: claims the challenge a device presented and returns
    /// its terms, or `None` when it is unknown, used, withdrawn, expired or its owner
    /// disabled (the device gets the same answer for all). Of two requests with the same
    /// secret on one replica one wins.
    ///
    /// A challenge this replica made is taken from memory, and the certificate's own
    /// statement uses it (migration 0032): a withdrawal, a disabled owner or a use on
    /// another replica since then refuses the certificate there, as
    /// [`ErrorCode::ChallengeUsed`]. Any other is marked used in the database now.
    ///
    /// Runs with no identity, as [`Actor::Anonymous`] would (one statement, one round
    /// trip): the device is nobody yet, and an anonymous statement sees no per-user row, so
    /// all it can do is what the definer function does with the secret (SYSTEM would open
    /// every row to a request that has proven nothing).
    pub async fn claim(
        &self,
        db: &Database,
        secret: &str,
    ) -> Result<Option<ChallengeGrant>, CoreError> {
        let Some(hash) = secret_hash(secret) else {
            return Ok(None);
        };
        match self.live.take(&hash, self.clock.now()) {
            Lookup::Granted(terms) => {
                metrics::counter!("keyinfra_challenge_claims_total", "source" => "memory")
                    .increment(1);
                return grant(terms).map(Some);
            }
            Lookup::Refused => return Ok(None),
            Lookup::Unknown => {}
        }
        metrics::counter!("keyinfra_challenge_claims_total", "source" => "database").increment(1);
        // Concurrent claims share one statement (claim_batch's docs).
        let claims = self.claims.get_or_init(ClaimBatcher::start);
        let claimed = claims.claim(db, hash, self.clock.now()).await?;
        claimed.map(grant).transpose()
    }

    /// For the SCEP handler: gives a claimed challenge back when the enrollment failed
    /// through no fault of the device, so that it may try again (until it expires). True
    /// if it was released; a challenge that produced a certificate never is. Anonymous,
    /// as [`Challenges::claim`].
    pub async fn release(&self, db: &Database, challenge_id: Uuid) -> Result<bool, CoreError> {
        // Taken from memory: the database holds no claim (and may hold another replica's).
        if self.live.give_back(challenge_id) {
            return Ok(true);
        }
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let released = store::release(&mut tx, challenge_id).await?;
        tx.commit().await?;
        Ok(released)
    }
}

/// A fresh secret: each symbol is the low 5 bits of one random byte (256 = 8 × 32, so
/// every symbol is equally likely).
fn new_secret(rng: &mut (dyn RandomSource + Send)) -> Result<ChallengeSecret, CoreError> {
    let mut bytes = Zeroizing::new([0u8; CHALLENGE_LENGTH]);
    rng.fill(bytes.as_mut())?;
    let text: String = bytes
        .iter()
        .map(|b| char::from(CHALLENGE_ALPHABET[usize::from(b & 31)]))
        .collect();
    Ok(ChallengeSecret(Zeroizing::new(text)))
}

/// The stored hash of what a device presented: SHA-256 of the secret with surrounding
/// white space removed and letters lowercased (a secret typed in capitals still works).
/// `None` for anything that is not a challenge's shape, which then needs no lookup.
fn secret_hash(presented: &str) -> Option<[u8; 32]> {
    let text = Zeroizing::new(presented.trim().to_ascii_lowercase());
    (text.len() == CHALLENGE_LENGTH && text.bytes().all(|b| CHALLENGE_ALPHABET.contains(&b)))
        .then(|| keyinfra_pki::sha256_fingerprint(text.as_bytes()))
}

/// Parses names as the issue API parses its SANs, into their typed form.
fn parse_names(names: &[String]) -> Result<Vec<String>, CoreError> {
    if names.is_empty() {
        return Err(CoreError::invalid(
            ErrorCode::InvalidSan,
            "names is empty; leave it out to let the device ask for its own names",
        ));
    }
    SubjectAltName::parse_list(names)
        .map(|list| list.iter().map(SubjectAltName::to_tagged).collect())
        .map_err(|e| CoreError::invalid(ErrorCode::InvalidSan, e.to_string()))
}

pub(crate) fn stored_names(
    names: Option<serde_json::Value>,
) -> Result<Option<Vec<String>>, CoreError> {
    names
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| CoreError::Internal(format!("stored challenge names: {e}")))
}

pub(crate) fn stored_days(days: Option<i32>) -> Result<Option<u32>, CoreError> {
    days.map(u32::try_from)
        .transpose()
        .map_err(|_| CoreError::Internal("stored challenge validity_days is negative".into()))
}

fn view(r: ChallengeRecord, now: OffsetDateTime) -> Result<ChallengeView, CoreError> {
    Ok(ChallengeView {
        state: r.state(now),
        id: r.id,
        owner_id: r.owner_id,
        created_by: r.created_by,
        profile: r.profile,
        validity_days: stored_days(r.validity_days)?,
        subject: r.subject,
        names: stored_names(r.names)?,
        approval: r.approval,
        created_at: r.created_at,
        expires_at: r.expires_at,
        used_at: r.used_at,
        withdrawn_at: r.withdrawn_at,
        certificate_id: r.certificate_id,
    })
}

fn grant(c: ClaimedChallenge) -> Result<ChallengeGrant, CoreError> {
    Ok(ChallengeGrant {
        id: c.id,
        owner_id: c.owner_id,
        profile: c.profile,
        validity_days: stored_days(c.validity_days)?,
        subject: c.subject,
        names: stored_names(c.names)?,
        approval: c.approval,
        expires_at: c.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts up from a seed: deterministic bytes.
    struct Counting(u8);

    impl RandomSource for Counting {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), keyinfra_pki::PkiError> {
            for b in dest {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
            Ok(())
        }
    }

    #[test]
    fn the_alphabet_has_32_distinct_unambiguous_symbols() {
        let mut seen = std::collections::HashSet::new();
        for b in CHALLENGE_ALPHABET {
            assert!(seen.insert(*b));
            assert!(b.is_ascii_digit() || b.is_ascii_lowercase());
            assert!(!b"01lo".contains(b), "{}", char::from(*b));
        }
    }

    #[test]
    fn a_secret_is_32_symbols_from_the_random_source() {
        let secret = new_secret(&mut Counting(0)).unwrap();
        assert_eq!(secret.expose(), "23456789abcdefghijkmnpqrstuvwxyz");
        // Bytes 32..64 map to the same symbols: the top 3 bits do not matter.
        let again = new_secret(&mut Counting(32)).unwrap();
        assert_eq!(again.expose(), secret.expose());
        assert_eq!(format!("{secret:?}"), "ChallengeSecret(..)");
        assert!(!format!("{secret:?}").contains("2345"));
    }

    #[test]
    fn the_presented_secret_is_hashed_as_typed_modulo_case_and_white_space() {
        let secret = "23456789abcdefghijkmnpqrstuvwxyz";
        let hash = keyinfra_pki::sha256_fingerprint(secret.as_bytes());
        assert_eq!(secret_hash(secret), Some(hash));
        assert_eq!(
            secret_hash(&format!(" {}\n", secret.to_uppercase())),
            Some(hash)
        );
        for wrong in [
            "",
            "23456789abcdefghijkmnpqrstuvwxy",
            "23456789abcdefghijkmnpqrstuvwxyz2",
            "03456789abcdefghijkmnpqrstuvwxyz",
            "2345678 abcdefghijkmnpqrstuvwxyz",
            "23456789abcdéfghijkmnpqrstuvwxyz",
        ] {
            assert_eq!(secret_hash(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn names_are_parsed_like_the_issue_apis_sans() {
        assert_eq!(
            parse_names(&["Router.Example.net".into(), "192.0.2.1".into()]).unwrap(),
            ["DNS:router.example.net", "IP:192.0.2.1"]
        );
        for bad in [
            vec![],
            vec!["a..b".to_owned()],
            vec!["x.example".into(), "X.example".into()],
        ] {
            assert!(matches!(
                parse_names(&bad),
                Err(CoreError::Invalid {
                    code: ErrorCode::InvalidSan,
                    ..
                })
            ));
        }
    }

    #[test]
    fn state_prefers_used_and_withdrawn_over_expiry() {
        let at = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut r = ChallengeRecord {
            id: Uuid::nil(),
            owner_id: Uuid::nil(),
            created_by: None,
            profile: "device".into(),
            validity_days: None,
            subject: None,
            names: None,
            approval: false,
            created_at: at,
            expires_at: at + Duration::hours(1),
            used_at: None,
            withdrawn_at: None,
            certificate_id: None,
        };
        assert_eq!(r.state(at), ChallengeState::Active);
        assert_eq!(r.state(at + Duration::hours(1)), ChallengeState::Expired);
        r.withdrawn_at = Some(at);
        assert_eq!(r.state(at + Duration::hours(2)), ChallengeState::Withdrawn);
        r.withdrawn_at = None;
        r.used_at = Some(at);
        assert_eq!(r.state(at + Duration::hours(2)), ChallengeState::Used);
    }
}
