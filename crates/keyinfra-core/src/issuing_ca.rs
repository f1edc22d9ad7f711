//! `keyinfra ca create --parent`: a new issuing CA under a CA whose key KeyInfra holds,
//! optionally with name constraints (RFC 5280 4.2.1.10).
//!
//! The new CA may sign only end-entity certificates (pathLenConstraint 0). The parent's
//! own constraints, and those of every CA above it, keep applying to the new CA's leaves
//! ([`crate::ca_registry::LoadedCa::check_name_constraints`]); the new CA's constraints need
//! not be narrower, since a relying party intersects them.

use keyinfra_db::Actor;
use keyinfra_db::Database;
use keyinfra_db::authorities::{self, AuthorityRecord};
use keyinfra_pki::ca::{CaSpec, inspect_ca_certificate};
use keyinfra_pki::constraints::NameConstraints;
use keyinfra_pki::names::DistinguishedName;
use keyinfra_pki::{KeyAlgorithm, RandomSource, SerialNumber};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::ErrorCode;
use crate::ca_setup::CaSetup;
use crate::error::CoreError;
use crate::keys::generate_key;
use crate::principal::Principal;

/// The longest a new issuing CA lives when no validity is asked for (if its parent lives
/// that long).
pub const DEFAULT_ISSUING_CA_VALIDITY: Duration = Duration::days(10 * 365 + 2);

/// What a new issuing CA is.
#[derive(Debug, Clone)]
pub struct IssuingCaOptions {
    /// The CA's name in KeyInfra (unique, 1 to 64 printable characters).
    pub name: String,
    /// Its subject (RFC 4514).
    pub subject: String,
    /// None: the parent's algorithm.
    pub algorithm: Option<KeyAlgorithm>,
    /// None: [`DEFAULT_ISSUING_CA_VALIDITY`], shortened to the parent's end.
    pub validity: Option<Duration>,
    pub name_constraints: Option<NameConstraints>,
    /// A prepared rollover: the CA's validity starts then, in the future, and it becomes
    /// the default issuing CA only then (SCEP announces it with GetNextCACert meanwhile).
    /// None: now (backdated like every certificate). `validity` counts from here.
    pub starts_at: Option<OffsetDateTime>,
}

impl CaSetup {
    /// Creates an issuing CA signed by `parent_id`, records it (audited as `ca.created`,
    /// with its constraints) and publishes its first CRL. Every check runs before the key
    /// is generated: the parent must be held here, unexpired and allowed to sign one more
    /// CA below it (pathLenConstraint), and the new CA must not outlive it.
    pub async fn create_issuing_ca(
        &self,
        db: &Database,
        by: &Principal,
        parent_id: Uuid,
        options: &IssuingCaOptions,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<AuthorityRecord, CoreError> {
        by.require_admin()?;
        let subject = DistinguishedName::parse(&options.subject).map_err(|e| {
            CoreError::invalid(ErrorCode::InvalidSubject, format!("CA subject: {e}"))
        })?;
        if let Some(c) = &options.name_constraints
            && !c.unsupported.is_empty()
        {
            return Err(CoreError::invalid(
                ErrorCode::InvalidNameConstraints,
                "only DNS and IP name constraints can be written",
            ));
        }
        if self
            .cas
            .list_cas(db)
            .await?
            .iter()
            .any(|ca| ca.name == options.name)
        {
            return Err(CoreError::Conflict {
                code: ErrorCode::CaNameTaken,
                detail: format!(
                    "a CA named {:?} exists; choose another --name",
                    options.name
                ),
            });
        }
        let parent = self.cas.signer(db, parent_id).await.map_err(|e| match e {
            CoreError::NotFound(_) => CoreError::invalid(
                ErrorCode::UnknownCa,
                format!("no certificate authority has id {parent_id}"),
            ),
            other => other,
        })?;
        let now = self.clock.now();
        let parent_end = parent.signer.not_after();
        if parent_end <= now {
            return Err(CoreError::invalid(
                ErrorCode::CaExpired,
                format!("the parent CA {:?} has expired", parent.name),
            ));
        }
        // The parent, and each CA above it, must allow this many CAs below it.
        for (below, der) in (1u32..).zip(&parent.chain) {
            let info = inspect_ca_certificate(der)?;
            if info.path_len.is_some_and(|limit| limit < below) {
                return Err(CoreError::invalid(
                    ErrorCode::CaPathLength,
                    format!(
                        "CA {} allows at most {} CA(s) below it (pathLenConstraint); a CA under {:?} would break it",
                        info.subject,
                        info.path_len.unwrap_or_default(),
                        parent.name
                    ),
                ));
            }
        }
        let start = match options.starts_at {
            Some(at) if at <= now => {
                return Err(CoreError::invalid(
                    ErrorCode::InvalidValidity,
                    "the start of a prepared CA must be in the future; leave it out to start now",
                ));
            }
            Some(at) if at >= parent_end => {
                return Err(CoreError::invalid(
                    ErrorCode::ValidityTooLong,
                    format!(
                        "the new CA would start after its parent {:?} ends ({})",
                        parent.name,
                        parent_end.date()
                    ),
                ));
            }
            Some(at) => at,
            None => now,
        };
        let not_after = match options.validity {
            Some(validity) if validity <= Duration::ZERO => {
                return Err(CoreError::invalid(
                    ErrorCode::ValidityTooShort,
                    "the CA's validity must be positive",
                ));
            }
            Some(validity) if start + validity > parent_end => {
                return Err(CoreError::invalid(
                    ErrorCode::ValidityTooLong,
                    format!(
                        "the new CA would outlive its parent {:?}, which is valid until {}; ask for at most {} days",
                        parent.name,
                        parent_end.date(),
                        (parent_end - start).whole_days()
                    ),
                ));
            }
            Some(validity) => start + validity,
            None => (start + DEFAULT_ISSUING_CA_VALIDITY).min(parent_end),
        };
        let algorithm = options
            .algorithm
            .unwrap_or_else(|| parent.signer.key_algorithm());
        let key = generate_key(algorithm).await?;
        let child = parent.signer.create_subordinate(
            key,
            &CaSpec {
                subject: &subject,
                serial: &SerialNumber::random(rng)?,
                not_before: match options.starts_at {
                    Some(at) => at,
                    None => now - self.settings.backdate,
                },
                not_after,
                path_len: Some(0),
                name_constraints: options.name_constraints.as_ref(),
            },
            &self.settings.parent_urls(parent.id),
        )?;
        let mut tx = db.begin(&Actor::System).await?;
        authorities::lock_for_creation(&mut tx).await?;
        let record = self
            .store_ca(&mut tx, by, &options.name, &child, Some(parent.id), rng)
            .await?;
        tx.commit().await?;
        self.cas.forget_default_ca();
        self.crls.publish_crl(db, record.id).await?;
        Ok(record)
    }
}
