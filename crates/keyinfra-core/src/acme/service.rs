//! The ACME use cases behind `/acme/` (RFC 8555): verifying a signed request, and the
//! account resources (newAccount, an account's fetch, update and deactivation). The
//! server's handler reads the body and the URL it was sent to; everything it answers
//! comes from here, as an account or an [`AcmeError`] with its ACME problem type.
//!
//! Every signed request is checked in this order, each before anything costlier: the
//! body's size and shape (a flattened JWS, one of RS256, ES256, ES384, EdDSA), the `url`
//! against the URL it reached, the nonce (spent once, on any replica), the key (`jwk` for
//! newAccount, `kid` naming a valid account for everything else) and the signature.
//! Once a request has reached its nonce, the nonce is spent whatever follows.

use std::sync::Arc;

use keyinfra_db::acme::{
    self as store, AccountRecord, AccountStatus, AuthorizationRecord, ChallengeRecord, NewAccount,
    NewOrder, OrderRecord,
};
use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::{Actor, Database, DbError};
use keyinfra_pki::acme::jws::{ExternalAccountBinding, Jwk, Jws, JwsError, KeyReference};
use keyinfra_pki::acme::keyauth::{TOKEN_BYTES, token_text};
use keyinfra_pki::acme::wire::Identifier;
use keyinfra_pki::acme::wire::ProblemType;
use keyinfra_pki::{KeyAlgorithm, RandomSource};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::eab::EabKeys;
use super::nonce::AcmeNonces;
use super::validation::{AcmeValidator, ValidationSettings};
use crate::auth::token::JwtSecret;
use crate::authority::Authority;
use crate::ca_registry::CaRegistry;
use crate::error::CoreError;
use crate::issuer::{IssueRequest, Issuer, KeySource};
use crate::policy::Policies;
use crate::principal::{EnrollmentChannel, Principal, listed_owner};
use crate::revocation::Revocations;
use crate::{Clock, ErrorCode};

/// Contact URLs an account may list (RFC 8555 7.3: the server may bound them).
pub const MAX_CONTACTS: usize = 8;
/// The longest contact URL accepted.
pub const MAX_CONTACT_LEN: usize = 320;

/// What an operator decides about ACME.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// newAccount must carry an external account binding (KEYINFRA_ACME_EAB_REQUIRED,
    /// default true).
    pub eab_required: bool,
    /// Who owns accounts made without a binding when it is not required
    /// (KEYINFRA_ACME_DEFAULT_OWNER). With neither, every newAccount needs a binding.
    pub default_owner: Option<Uuid>,
    /// The directory's `meta.termsOfService` (KEYINFRA_ACME_TERMS_OF_SERVICE).
    pub terms_of_service: Option<String>,
    /// The directory's `meta.caaIdentities` (KEYINFRA_ACME_CAA_IDENTITIES): the names a
    /// domain's CAA records use for this CA (RFC 8555 7.1.1, RFC 8659).
    pub caa_identities: Vec<String>,
    /// Ports, excluded addresses and attempts of challenge validation.
    pub validation: ValidationSettings,
}

impl Default for AcmeSettings {
    fn default() -> Self {
        Self {
            eab_required: true,
            default_owner: None,
            terms_of_service: None,
            caa_identities: Vec::new(),
            validation: ValidationSettings::default(),
        }
    }
}

/// A refusal, as ACME answers it: a problem type, an HTTP status and a detail that
/// names no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct AcmeError {
    pub problem: ProblemType,
    pub status: u16,
    pub detail: String,
    /// Seconds to wait, for `rateLimited` and a busy database.
    pub retry_after: Option<u64>,
    /// The URL a 409 points at (keyChange to a key another account has).
    pub location: Option<String>,
}

impl AcmeError {
    pub fn new(problem: ProblemType, detail: impl Into<String>) -> Self {
        let status = match problem {
            ProblemType::Unauthorized => 401,
            ProblemType::RateLimited => 429,
            ProblemType::ServerInternal => 500,
            ProblemType::OrderNotReady => 403,
            _ => 400,
        };
        Self {
            problem,
            status,
            detail: detail.into(),
            retry_after: None,
            location: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

impl From<JwsError> for AcmeError {
    fn from(e: JwsError) -> Self {
        AcmeError::new(e.problem_type(), e.to_string())
    }
}

impl From<DbError> for AcmeError {
    fn from(e: DbError) -> Self {
        CoreError::from(e).into()
    }
}

impl From<CoreError> for AcmeError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid {
                code: ErrorCode::BadNonce,
                detail,
            } => AcmeError::new(ProblemType::BadNonce, detail),
            CoreError::RateLimited(wait) => AcmeError {
                retry_after: Some(u64::try_from(wait.whole_seconds().max(1)).unwrap_or(1)),
                ..AcmeError::new(ProblemType::RateLimited, "too many requests; retry later")
            },
            CoreError::Db(DbError::Unavailable { retry_after, .. }) => AcmeError {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..AcmeError::new(
                    ProblemType::ServerInternal,
                    "the server is busy; retry later",
                )
                .with_status(503)
            },
            other => {
                // The detail of an internal failure is for the log, not the client.
                tracing::error!(error = %other, "ACME request failed");
                AcmeError::new(ProblemType::ServerInternal, "internal error")
            }
        }
    }
}

/// An account as a verified request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    pub id: Uuid,
    pub owner_id: Uuid,
}

/// A request whose JWS verified.
#[derive(Debug)]
pub struct Verified {
    /// The payload bytes; empty for POST-as-GET.
    pub payload: Vec<u8>,
    /// The key that signed: the embedded `jwk` (newAccount), or the account's.
    pub jwk: Jwk,
    /// The account `kid` named; `None` for a request signed with `jwk`.
    pub account: Option<AccountRef>,
}

impl Verified {
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }
}

/// How a request must name its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule<'a> {
    /// newAccount (and revokeCert by certificate key): `jwk`.
    Jwk,
    /// Everything else: `kid`, the URL of a valid account: this prefix, then its id.
    Kid { account_url_prefix: &'a str },
    /// revokeCert (RFC 8555 7.6): an account's `kid`, or the certificate key's `jwk`.
    KidOrJwk { account_url_prefix: &'a str },
}

/// What an account resource answers: the row, and whether this request created it.
#[derive(Debug)]
pub struct AccountAnswer {
    pub account: AccountRecord,
    pub created: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccountPayload {
    contact: Option<Vec<String>>,
    terms_of_service_agreed: Option<bool>,
    only_return_existing: Option<bool>,
    external_account_binding: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountUpdatePayload {
    contact: Option<Vec<String>>,
    status: Option<String>,
}

/// The ACME use cases (module docs).
pub struct AcmeService {
    pub nonces: AcmeNonces,
    pub eab: EabKeys,
    pub settings: AcmeSettings,
    /// Checks started challenges; the server runs it ([`AcmeValidator::run`]).
    pub validator: Arc<AcmeValidator>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) issuer: Arc<Issuer>,
    pub(crate) policies: Arc<Policies>,
    pub(crate) cas: Arc<CaRegistry>,
    pub(crate) revocations: Arc<Revocations>,
}

impl std::fmt::Debug for AcmeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AcmeService {
    /// ACME over `authority`: its clock, write rate, issuer, policies and CAs.
    pub fn new(secret: &JwtSecret, authority: &Authority, settings: AcmeSettings) -> Self {
        let clock = Arc::clone(&authority.clock);
        Self {
            nonces: AcmeNonces::new(secret, Arc::clone(&clock)),
            eab: EabKeys::new(secret, Arc::clone(&clock), Arc::clone(&authority.writes)),
            validator: Arc::new(AcmeValidator::new(
                settings.validation.clone(),
                Arc::clone(&clock),
            )),
            settings,
            clock,
            issuer: Arc::clone(&authority.issuer),
            policies: Arc::clone(&authority.policies),
            cas: Arc::clone(&authority.cas),
            revocations: Arc::clone(&authority.revocations),
        }
    }

    /// A fresh nonce for a response's `Replay-Nonce`.
    pub fn new_nonce(&self, rng: &mut (dyn RandomSource + Send)) -> Result<String, AcmeError> {
        Ok(self.nonces.issue(rng)?)
    }

    /// Verifies a signed request that reached `url` (module docs for the order).
    pub async fn verify(
        &self,
        db: &Database,
        body: &[u8],
        url: &str,
        rule: KeyRule<'_>,
    ) -> Result<Verified, AcmeError> {
        let jws = Jws::parse(body)?;
        jws.header().require_url(url)?;
        let nonce = jws
            .header()
            .nonce
            .as_deref()
            .ok_or_else(|| AcmeError::new(ProblemType::BadNonce, "the request has no nonce"))?;
        self.nonces.spend(db, nonce).await?;
        match (rule, jws.key_reference()?) {
            (KeyRule::Jwk | KeyRule::KidOrJwk { .. }, KeyReference::Jwk(_)) => {
                let jwk = jws.verify_with_embedded_jwk()?.clone();
                Ok(Verified {
                    payload: jws.payload().to_vec(),
                    jwk,
                    account: None,
                })
            }
            (
                KeyRule::Kid { account_url_prefix } | KeyRule::KidOrJwk { account_url_prefix },
                KeyReference::Kid(kid),
            ) => {
                let id = kid
                    .strip_prefix(account_url_prefix)
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .ok_or_else(|| {
                        AcmeError::new(
                            ProblemType::AccountDoesNotExist,
                            "kid is not the URL of an account of this server",
                        )
                    })?;
                let mut tx = db.begin(&Actor::Anonymous).await?;
                let key = store::account_key(&mut tx, id).await?;
                tx.commit().await?;
                let key = key.ok_or_else(|| {
                    AcmeError::new(ProblemType::AccountDoesNotExist, "no such account")
                })?;
                let jwk = Jwk::from_json_bytes(key.jwk.to_string().as_bytes())
                    .map_err(|e| CoreError::Internal(format!("a stored account key: {e}")))?;
                jws.verify(&jwk)?;
                if key.status != AccountStatus::Valid {
                    return Err(AcmeError::new(
                        ProblemType::Unauthorized,
                        format!("the account is {}", key.status.as_str()),
                    ));
                }
                Ok(Verified {
                    payload: jws.payload().to_vec(),
                    jwk,
                    account: Some(AccountRef {
                        id,
                        owner_id: key.owner_id,
                    }),
                })
            }
            (KeyRule::Jwk, KeyReference::Kid(_)) => Err(AcmeError::new(
                ProblemType::Malformed,
                "this request must carry its key in jwk, not kid",
            )),
            (KeyRule::Kid { .. }, KeyReference::Jwk(_)) => Err(AcmeError::new(
                ProblemType::Malformed,
                "this request must name its account in kid, not carry a jwk",
            )),
        }
    }

    /// newAccount (RFC 8555 7.3): the account of the request's key if there is one, else a
    /// new account owned by the binding key's owner (or the configured default owner).
    pub async fn new_account(
        &self,
        db: &Database,
        request: &Verified,
        url: &str,
    ) -> Result<AccountAnswer, AcmeError> {
        let payload: NewAccountPayload = parse_payload(&request.payload)?;
        let thumbprint = thumbprint_bytes(&request.jwk)?;
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let existing = store::account_by_thumbprint(&mut tx, &thumbprint).await?;
        tx.commit().await?;
        if let Some((id, owner_id, _)) = existing {
            let mut tx = db.begin(&owner_actor(owner_id)).await?;
            let account = store::get_account(&mut tx, id).await?;
            tx.commit().await?;
            let account = account
                .ok_or_else(|| CoreError::Internal("an account its owner cannot see".into()))?;
            return Ok(AccountAnswer {
                account,
                created: false,
            });
        }
        if payload.only_return_existing == Some(true) {
            return Err(AcmeError::new(
                ProblemType::AccountDoesNotExist,
                "no account has this key",
            ));
        }
        let contact = checked_contacts(payload.contact.unwrap_or_default())?;
        if self.settings.terms_of_service.is_some() && payload.terms_of_service_agreed != Some(true)
        {
            return Err(AcmeError::new(
                ProblemType::UserActionRequired,
                "agree to the terms of service (termsOfServiceAgreed) to create an account",
            ));
        }
        let now = self.clock.now();
        let (owner_id, eab_key_id) = match payload.external_account_binding {
            Some(binding) => {
                let binding = ExternalAccountBinding::from_json(&binding)?;
                let kid = Uuid::parse_str(binding.kid()).map_err(|_| {
                    AcmeError::new(
                        ProblemType::Unauthorized,
                        "the external account binding's key is unknown, used or expired",
                    )
                })?;
                let mut tx = db.begin(&Actor::Anonymous).await?;
                let owner = store::eab_key_owner(&mut tx, kid, now).await?;
                tx.commit().await?;
                let owner = owner.ok_or_else(|| {
                    AcmeError::new(
                        ProblemType::Unauthorized,
                        "the external account binding's key is unknown, used or expired",
                    )
                })?;
                binding.verify(&self.eab.mac_key(kid), url, &request.jwk)?;
                (owner, Some(kid))
            }
            None if self.settings.eab_required => {
                return Err(AcmeError::new(
                    ProblemType::ExternalAccountRequired,
                    "this server requires an external account binding: ask KeyInfra for a key (POST /api/v1/acme/eab)",
                ));
            }
            None => match self.settings.default_owner {
                Some(owner) => (owner, None),
                None => {
                    return Err(AcmeError::new(
                        ProblemType::ExternalAccountRequired,
                        "no default owner is configured for accounts without a binding",
                    ));
                }
            },
        };

        let jwk_json: serde_json::Value = serde_json::from_str(&request.jwk.to_json())
            .map_err(|e| CoreError::Internal(format!("a JWK's JSON: {e}")))?;
        let mut tx = db.begin(&owner_actor(owner_id)).await?;
        let inserted = store::insert_account(
            &mut tx,
            &NewAccount {
                owner_id,
                jwk: &jwk_json,
                jwk_thumbprint: &thumbprint,
                contact: &contact,
                terms_agreed: payload.terms_of_service_agreed == Some(true),
                eab_key_id,
                created_at: now,
            },
        )
        .await;
        let account = match inserted {
            Ok(account) => account,
            // The same key's newAccount won on another connection: answer with its account.
            Err(DbError::UniqueViolation { .. }) => {
                drop(tx);
                return Box::pin(self.new_account(db, request, url)).await;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(kid) = eab_key_id
            && !store::use_eab_key(&mut tx, kid, account.id, now).await?
        {
            // Used by a concurrent newAccount since the look-up: nothing is written.
            return Err(AcmeError::new(
                ProblemType::Unauthorized,
                "the external account binding's key is unknown, used or expired",
            ));
        }
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: Some(owner_id),
                actor_name: "acme".into(),
                action: AuditAction::AcmeAccountCreated,
                target_type: Some("acme_account"),
                target_id: Some(account.id),
                details: json!({ "owner_id": owner_id, "eab_kid": eab_key_id }),
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(account_id = %account.id, owner_id = %owner_id, "ACME account created");
        Ok(AccountAnswer {
            account,
            created: true,
        })
    }

    /// POST to an account's URL (RFC 8555 7.3.2, 7.3.6): POST-as-GET or `{}` fetches it,
    /// `contact` replaces its contacts, `"status": "deactivated"` deactivates it for good.
    pub async fn update_account(
        &self,
        db: &Database,
        request: &Verified,
        id: Uuid,
    ) -> Result<AccountRecord, AcmeError> {
        let account = signer_of(request, id)?;
        let payload: AccountUpdatePayload = if request.is_post_as_get() {
            AccountUpdatePayload::default()
        } else {
            parse_payload(&request.payload)?
        };
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        if let Some(contact) = payload.contact {
            let contact = checked_contacts(contact)?;
            store::set_account_contact(&mut tx, id, &contact).await?;
        }
        match payload.status.as_deref() {
            None => {}
            Some("deactivated") => {
                // Once: a second deactivation changes nothing and is not audited again.
                let deactivated = store::deactivate_account(&mut tx, id, self.clock.now()).await?;
                if deactivated {
                    audit::append(
                        &mut tx,
                        &NewAuditEvent {
                            actor_id: Some(account.owner_id),
                            actor_name: "acme".into(),
                            action: AuditAction::AcmeAccountDeactivated,
                            target_type: Some("acme_account"),
                            target_id: Some(id),
                            details: json!({ "owner_id": account.owner_id, "by": "account" }),
                        },
                    )
                    .await?;
                }
            }
            Some(_) => {
                return Err(AcmeError::new(
                    ProblemType::Malformed,
                    "an account's status may only be set to \"deactivated\"",
                ));
            }
        }
        let current = store::get_account(&mut tx, id).await?;
        tx.commit().await?;
        current.ok_or_else(|| AcmeError::new(ProblemType::AccountDoesNotExist, "no such account"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyChangePayload {
    account: String,
    old_key: serde_json::Value,
}

impl AcmeService {
    /// keyChange (RFC 8555 7.3.5): the outer JWS is signed by the account's key (verified
    /// already); its payload is an inner JWS signed by the new key (`jwk`), for the same
    /// URL, naming the account and its old key. The account then signs with the new key
    /// only. A key another account has is 409 with that account's URL in Location.
    pub async fn key_change(
        &self,
        db: &Database,
        request: &Verified,
        url: &str,
        account_url_prefix: &str,
    ) -> Result<AccountRecord, AcmeError> {
        let account = signer(request)?;
        let account_url = format!("{account_url_prefix}{}", account.id);
        let inner = Jws::parse(&request.payload)?;
        inner.header().require_url(url)?;
        let new_key = match inner.key_reference()? {
            KeyReference::Jwk(_) => inner.verify_with_embedded_jwk()?.clone(),
            KeyReference::Kid(_) => {
                return Err(AcmeError::new(
                    ProblemType::Malformed,
                    "the inner JWS of keyChange carries the new key in jwk",
                ));
            }
        };
        let payload: KeyChangePayload = parse_payload(inner.payload())?;
        if payload.account != account_url {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "keyChange's account is not the account that signed the request",
            ));
        }
        let old_key = Jwk::from_json_bytes(payload.old_key.to_string().as_bytes())?;
        if old_key != request.jwk {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "keyChange's oldKey is not the account's current key",
            ));
        }
        let thumbprint = thumbprint_bytes(&new_key)?;
        let taken = |id: Uuid| AcmeError {
            status: 409,
            location: Some(format!("{account_url_prefix}{id}")),
            ..AcmeError::new(
                ProblemType::Malformed,
                "another account already has the new key",
            )
        };
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let holder = store::account_by_thumbprint(&mut tx, &thumbprint).await?;
        tx.commit().await?;
        if let Some((id, _, _)) = holder.filter(|(id, _, _)| *id != account.id) {
            return Err(taken(id));
        }
        let jwk_json: serde_json::Value = serde_json::from_str(&new_key.to_json())
            .map_err(|e| CoreError::Internal(format!("a JWK's JSON: {e}")))?;
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        match store::set_account_key(&mut tx, account.id, &jwk_json, &thumbprint).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(AcmeError::new(
                    ProblemType::Unauthorized,
                    "the account is not valid",
                ));
            }
            // Taken by a concurrent newAccount or keyChange since the look-up.
            Err(DbError::UniqueViolation { .. }) => {
                drop(tx);
                let mut tx = db.begin(&Actor::Anonymous).await?;
                let holder = store::account_by_thumbprint(&mut tx, &thumbprint).await?;
                tx.commit().await?;
                return Err(match holder {
                    Some((id, _, _)) => taken(id),
                    None => AcmeError::new(ProblemType::Malformed, "the new key is taken"),
                });
            }
            Err(e) => return Err(e.into()),
        }
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: Some(account.owner_id),
                actor_name: "acme".into(),
                action: AuditAction::AcmeAccountKeyChanged,
                target_type: Some("acme_account"),
                target_id: Some(account.id),
                details: json!({ "owner_id": account.owner_id, "new_key": new_key.thumbprint() }),
            },
        )
        .await?;
        let current = store::get_account(&mut tx, account.id).await?;
        tx.commit().await?;
        tracing::info!(account_id = %account.id, "ACME account key changed");
        current.ok_or_else(|| AcmeError::new(ProblemType::AccountDoesNotExist, "no such account"))
    }
}

impl AcmeService {
    /// RFC 9773 5: `replaces` names a certificate the account's owner holds, which no
    /// other live order replaces already.
    async fn check_replaces(
        &self,
        db: &Database,
        account: &AccountRef,
        replaces: &str,
    ) -> Result<(), AcmeError> {
        let id = keyinfra_pki::acme::keyauth::CertId::parse(replaces)
            .map_err(|e| AcmeError::new(ProblemType::Malformed, format!("replaces: {e}")))?;
        let (_, cert) = self.certificate_by_cert_id(db, &id).await?;
        if cert.owner_id != Some(account.owner_id) {
            return Err(AcmeError::new(
                ProblemType::Unauthorized,
                "replaces names a certificate of another owner",
            ));
        }
        let mut tx = db.begin(&Actor::System).await?;
        let replaced = store::order_replacing(&mut tx, replaces).await?;
        tx.commit().await?;
        if replaced {
            return Err(AcmeError::new(
                ProblemType::AlreadyReplaced,
                "another order already replaces that certificate",
            )
            .with_status(409));
        }
        Ok(())
    }
}

/// How long a new order, and its authorizations, may wait to be validated and finalized.
pub const ORDER_LIFETIME: time::Duration = time::Duration::hours(24);
/// Orders one account may make in an hour (`rateLimited` beyond).
pub const MAX_ORDERS_PER_HOUR: i64 = 300;
/// Identifiers one order may name.
pub const MAX_ORDER_IDENTIFIERS: usize = 100;
/// The profile ACME certificates are issued under: TLS servers.
pub const ACME_PROFILE: &str = "server";

/// An order with its authorizations, as the order resource shows it.
#[derive(Debug)]
pub struct OrderAnswer {
    pub order: OrderRecord,
    pub authorizations: Vec<Uuid>,
}

/// An authorization with its challenges, as the authorization resource shows it.
#[derive(Debug)]
pub struct AuthorizationAnswer {
    pub authorization: AuthorizationRecord,
    pub challenges: Vec<ChallengeRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewOrderPayload {
    identifiers: Vec<serde_json::Value>,
    not_before: Option<String>,
    not_after: Option<String>,
    /// RFC 9773 5: the certID of the certificate this order renews.
    replaces: Option<String>,
}

impl AcmeService {
    /// newOrder (RFC 8555 7.4): the identifiers are read strictly, the account's policy is
    /// asked first (a name it refuses is `rejectedIdentifier` now, not at finalize), and the
    /// order is written with one pending authorization per identifier and its challenges:
    /// http-01 and tls-alpn-01 for a name or an address, dns-01 for a name (a wildcard gets
    /// dns-01 only; an address never does, RFC 8738).
    pub async fn new_order(
        &self,
        db: &Database,
        request: &Verified,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<OrderAnswer, AcmeError> {
        let account = signer(request)?;
        let payload: NewOrderPayload = parse_payload(&request.payload)?;
        if payload.identifiers.is_empty() || payload.identifiers.len() > MAX_ORDER_IDENTIFIERS {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                format!("an order names 1 to {MAX_ORDER_IDENTIFIERS} identifiers"),
            ));
        }
        let mut identifiers: Vec<Identifier> = Vec::with_capacity(payload.identifiers.len());
        for raw in &payload.identifiers {
            let identifier = Identifier::from_json(raw)
                .map_err(|e| AcmeError::new(e.problem_type(), e.to_string()))?;
            if !identifiers.contains(&identifier) {
                identifiers.push(identifier);
            }
        }
        if payload.not_before.is_some() {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "notBefore is not supported: certificates are valid from their issue",
            ));
        }
        let now = self.clock.now();
        let not_after = payload
            .not_after
            .as_deref()
            .map(|text| {
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .ok()
                    .filter(|at| *at > now)
                    .ok_or_else(|| {
                        AcmeError::new(
                            ProblemType::Malformed,
                            "notAfter must be an RFC 3339 time in the future",
                        )
                    })
            })
            .transpose()?;

        // The rate, before the policy's work.
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        let recent =
            store::count_orders_since(&mut tx, account.id, now - time::Duration::hours(1)).await?;
        tx.commit().await?;
        if recent >= MAX_ORDERS_PER_HOUR {
            return Err(AcmeError {
                retry_after: Some(60),
                ..AcmeError::new(
                    ProblemType::RateLimited,
                    format!("at most {MAX_ORDERS_PER_HOUR} new orders an hour per account"),
                )
            });
        }

        // A renewal names what it replaces: a certificate of this owner, replaced once.
        if let Some(replaces) = &payload.replaces {
            self.check_replaces(db, account, replaces).await?;
        }

        // The policy first: the owner's, for these names, as a dry run of the issue.
        let principal = enrollment_principal(account.owner_id);
        let ca_id = self.cas.default_issuing_ca(db).await?;
        let policy = self.policies.for_owner(db, Some(account.owner_id)).await?;
        let algorithm = KeyAlgorithm::ALL
            .into_iter()
            .find(|a| policy.check_key_algorithm(*a).is_ok())
            .ok_or_else(|| {
                AcmeError::new(
                    ProblemType::RejectedIdentifier,
                    "the account owner's policy allows no key algorithm",
                )
            })?;
        let names: Vec<String> = identifiers.iter().map(Identifier::value).collect();
        self.issuer
            .preview(
                db,
                &principal,
                IssueRequest {
                    key: KeySource::Generate(algorithm),
                    subject: Some(format!("CN={}", names[0])),
                    san: Some(names.clone()),
                    profile: ACME_PROFILE.to_owned(),
                    validity_days: not_after.map(|at| validity_days_until(at, now)),
                    owner_id: Some(account.owner_id),
                    ca_id: Some(ca_id),
                    policy_id: None,
                },
            )
            .await
            .map_err(policy_refusal)?;

        let identifiers_json = serde_json::Value::Array(
            identifiers
                .iter()
                .map(|i| json!({ "type": i.type_name(), "value": i.value() }))
                .collect(),
        );
        let expires_at = now + ORDER_LIFETIME;
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        let order_id = store::insert_order(
            &mut tx,
            &NewOrder {
                account_id: account.id,
                owner_id: account.owner_id,
                ca_id,
                identifiers: &identifiers_json,
                not_after,
                expires_at,
                created_at: now,
                replaces: payload.replaces.as_deref(),
            },
        )
        .await?;
        let mut authorizations = Vec::with_capacity(identifiers.len());
        for identifier in &identifiers {
            let target = identifier.authorization_identifier();
            let authorization = store::insert_authorization(
                &mut tx,
                order_id,
                account.id,
                account.owner_id,
                target.type_name(),
                &target.value(),
                identifier.is_wildcard(),
                expires_at,
            )
            .await?;
            let kinds: &[&str] = match identifier {
                Identifier::Dns(_) if identifier.is_wildcard() => &["dns-01"],
                Identifier::Dns(_) => &["http-01", "tls-alpn-01", "dns-01"],
                Identifier::Ip(_) => &["http-01", "tls-alpn-01"],
            };
            for kind in kinds {
                let mut random = [0u8; TOKEN_BYTES];
                rng.fill(&mut random).map_err(CoreError::from)?;
                store::insert_challenge(
                    &mut tx,
                    authorization,
                    account.id,
                    account.owner_id,
                    kind,
                    &token_text(&random),
                )
                .await?;
            }
            authorizations.push(authorization);
        }
        // The order's later reads list its authorizations by id (store::order_authorizations);
        // list them so here too. The database's time-ordered ids are not in insertion order
        // within a millisecond, so the identifiers' order would differ now and then.
        authorizations.sort_unstable();
        let order = store::get_order(&mut tx, order_id)
            .await?
            .ok_or_else(|| CoreError::Internal("a new order its owner cannot see".into()))?;
        tx.commit().await?;
        metrics::counter!("keyinfra_acme_orders_total", "outcome" => "created").increment(1);
        Ok(OrderAnswer {
            order,
            authorizations,
        })
    }

    /// POST-as-GET of an order: the signing account's only.
    pub async fn order(
        &self,
        db: &Database,
        request: &Verified,
        id: Uuid,
    ) -> Result<OrderAnswer, AcmeError> {
        let account = signer(request)?;
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        let order = store::get_order(&mut tx, id)
            .await?
            .filter(|o| o.account_id == account.id)
            .ok_or_else(|| {
                AcmeError::new(ProblemType::Malformed, "no such order").with_status(404)
            })?;
        let authorizations = store::order_authorizations(&mut tx, id)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        tx.commit().await?;
        Ok(OrderAnswer {
            order,
            authorizations,
        })
    }

    /// POST-as-GET of an authorization: the signing account's only.
    pub async fn authorization(
        &self,
        db: &Database,
        request: &Verified,
        id: Uuid,
    ) -> Result<AuthorizationAnswer, AcmeError> {
        let account = signer(request)?;
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        let authorization = store::get_authorization(&mut tx, id)
            .await?
            .filter(|a| a.account_id == account.id)
            .ok_or_else(|| {
                AcmeError::new(ProblemType::Malformed, "no such authorization").with_status(404)
            })?;
        let challenges = store::authorization_challenges(&mut tx, id).await?;
        tx.commit().await?;
        Ok(AuthorizationAnswer {
            authorization,
            challenges,
        })
    }
}

/// Orders an account's orders list shows (RFC 8555 7.1.2.1 lets a server page it; the
/// newest this many are shown, which covers every order of the last hours at the new-order
/// rate).
pub const MAX_LISTED_ORDERS: i64 = 1000;

impl AcmeService {
    /// POST-as-GET of an account's orders URL: the ids of its orders that are not invalid,
    /// newest first. The signing account's only.
    pub async fn account_orders(
        &self,
        db: &Database,
        request: &Verified,
        id: Uuid,
    ) -> Result<Vec<Uuid>, AcmeError> {
        let account = signer_of(request, id)?;
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        let orders = store::account_orders(&mut tx, id, MAX_LISTED_ORDERS).await?;
        tx.commit().await?;
        Ok(orders)
    }
}

/// The whole days of validity that reach `not_after` from `now`, rounded up: certificates
/// are issued in whole days, so an order's notAfter is met or passed by less than a day.
pub(super) fn validity_days_until(
    not_after: time::OffsetDateTime,
    now: time::OffsetDateTime,
) -> u32 {
    let seconds = (not_after - now).whole_seconds().max(1);
    u32::try_from((seconds + 86_399) / 86_400).unwrap_or(u32::MAX)
}

/// The account a `kid` request was verified for.
pub(super) fn signer(request: &Verified) -> Result<&AccountRef, AcmeError> {
    request.account.as_ref().ok_or_else(|| {
        AcmeError::from(CoreError::Internal(
            "an account resource reached without kid".into(),
        ))
    })
}

/// The signing account, when the request is about that account's own URLs (`id`).
fn signer_of(request: &Verified, id: Uuid) -> Result<&AccountRef, AcmeError> {
    let account = signer(request)?;
    if account.id != id {
        return Err(AcmeError::new(
            ProblemType::Unauthorized,
            "the request is signed by another account",
        ));
    }
    Ok(account)
}

pub(super) fn enrollment_principal(owner: Uuid) -> Principal {
    Principal::Enrollment {
        channel: EnrollmentChannel::Acme,
        owner,
        challenge_id: None,
    }
}

/// What the policy's dry run refused, as ACME says it: names and addresses the policy does
/// not allow are `rejectedIdentifier` (RFC 8555 7.4), a quota reached is `rateLimited`.
pub(super) fn policy_refusal(e: CoreError) -> AcmeError {
    match e {
        CoreError::Invalid {
            code: ErrorCode::QuotaExceeded,
            detail,
        } => AcmeError::new(ProblemType::RateLimited, detail),
        // The order's notAfter, not its names.
        CoreError::Invalid {
            code: ErrorCode::ValidityTooLong | ErrorCode::InvalidValidity,
            detail,
        } => AcmeError::new(
            ProblemType::Malformed,
            format!("notAfter is beyond what the policy allows: {detail}"),
        ),
        // name_not_allowed, invalid_san, subject_not_allowed and the like: all say why.
        CoreError::Invalid { detail, .. } => {
            AcmeError::new(ProblemType::RejectedIdentifier, detail)
        }
        CoreError::Denied { detail, .. } => AcmeError::new(ProblemType::Unauthorized, detail),
        CoreError::Forbidden => AcmeError::new(
            ProblemType::Unauthorized,
            "the account owner may not issue from this CA",
        ),
        other => other.into(),
    }
}

impl AcmeService {
    /// The ACME accounts the caller may see, newest first (a USER's own; an ADMIN's
    /// `owner_id` filter, or everyone's), after the keyset `after`.
    pub async fn list_accounts(
        &self,
        db: &Database,
        by: &Principal,
        owner_id: Option<Uuid>,
        after: Option<(time::OffsetDateTime, Uuid)>,
        limit: i64,
    ) -> Result<Vec<AccountRecord>, CoreError> {
        let owner = listed_owner(by, owner_id)?;
        let mut tx = db.begin(&by.actor()).await?;
        let rows = store::list_accounts(&mut tx, owner, after, limit).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Deactivates an account from the API or the UI (its owner, or an ADMIN): it signs
    /// nothing afterwards. 404 for one the caller may not see; deactivating twice changes
    /// nothing (and is audited once).
    pub async fn deactivate_account(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
    ) -> Result<AccountRecord, CoreError> {
        let mut tx = db.begin(&by.actor()).await?;
        let deactivated = store::deactivate_account(&mut tx, id, self.clock.now()).await?;
        let account = store::get_account(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("ACME account"))?;
        if deactivated {
            audit::append(
                &mut tx,
                &NewAuditEvent {
                    actor_id: by.user_id(),
                    actor_name: by.audit_name(),
                    action: AuditAction::AcmeAccountDeactivated,
                    target_type: Some("acme_account"),
                    target_id: Some(id),
                    details: json!({ "owner_id": account.owner_id, "by": "api" }),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(account)
    }
}

/// An account's requests write as its owner with a USER's powers, as an EST device does.
pub(super) fn owner_actor(owner: Uuid) -> Actor {
    enrollment_principal(owner).actor()
}

pub(super) fn parse_payload<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, AcmeError> {
    serde_json::from_slice(payload).map_err(|_| {
        AcmeError::new(
            ProblemType::Malformed,
            "the payload is not the JSON object this resource takes",
        )
    })
}

fn thumbprint_bytes(jwk: &Jwk) -> Result<Vec<u8>, AcmeError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk.thumbprint())
        .map_err(|e| CoreError::Internal(format!("a thumbprint's base64: {e}")).into())
}

/// Contacts as RFC 8555 7.3 has a server check them: `mailto:` URLs only (the one scheme
/// it supports), one address each, no header fields, bounded in number and length.
fn checked_contacts(contact: Vec<String>) -> Result<Vec<String>, AcmeError> {
    if contact.len() > MAX_CONTACTS {
        return Err(AcmeError::new(
            ProblemType::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    for url in &contact {
        let Some(address) = url.strip_prefix("mailto:") else {
            return Err(AcmeError::new(
                ProblemType::UnsupportedContact,
                "only mailto: contacts are supported",
            ));
        };
        let valid = url.len() <= MAX_CONTACT_LEN
            && !address.contains([',', '?', '%', ' '])
            && address
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !url.chars().any(char::is_control);
        if !valid {
            return Err(AcmeError::new(
                ProblemType::InvalidContact,
                "a contact is not one mailto: address",
            ));
        }
    }
    Ok(contact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_one_mailto_address_each() {
        assert!(checked_contacts(vec!["mailto:noc@example.net".into()]).is_ok());
        for (bad, problem) in [
            ("tel:+15555550100", ProblemType::UnsupportedContact),
            ("mailto:", ProblemType::InvalidContact),
            (
                "mailto:a@b.example,c@d.example",
                ProblemType::InvalidContact,
            ),
            ("mailto:a@b.example?subject=x", ProblemType::InvalidContact),
            ("mailto:nodomain", ProblemType::InvalidContact),
            (
                "mailto:a@b.example\r\nBcc: x@y.example",
                ProblemType::InvalidContact,
            ),
        ] {
            assert_eq!(
                checked_contacts(vec![bad.into()]).unwrap_err().problem,
                problem,
                "{bad}"
            );
        }
        let many = vec!["mailto:a@b.example".to_owned(); MAX_CONTACTS + 1];
        assert_eq!(
            checked_contacts(many).unwrap_err().problem,
            ProblemType::InvalidContact
        );
    }

    #[test]
    fn statuses_follow_the_problem_type() {
        assert_eq!(AcmeError::new(ProblemType::Unauthorized, "").status, 401);
        assert_eq!(AcmeError::new(ProblemType::BadNonce, "").status, 400);
        assert_eq!(AcmeError::new(ProblemType::RateLimited, "").status, 429);
        let nonce: AcmeError = CoreError::invalid(ErrorCode::BadNonce, "spent").into();
        assert_eq!((nonce.problem, nonce.status), (ProblemType::BadNonce, 400));
        let internal: AcmeError = CoreError::Internal("secret path /x".into()).into();
        assert_eq!(internal.detail, "internal error");
    }
}
