//! The certificate authority's composition: its settings, and one service per use case,
//! each holding only the state it needs. The API, the UI, the CLI and the background jobs
//! reach a use case through its field (`authority.issuer.issue(..)`,
//! `authority.crls.publish_crl(..)`); [`Authority::new`] is the one place they are wired.

use std::sync::Arc;

use keyinfra_pki::ca::ParentUrls;
use keyinfra_pki::profile::Profile;
use keyinfra_pki::seal::MasterKeys;
use time::Duration;
use uuid::Uuid;

use crate::Clock;
use crate::ErrorCode;
use crate::ca_registry::CaRegistry;
use crate::ca_setup::CaSetup;
use crate::crl::CrlPublisher;
use crate::enrollment::live::LiveChallenges;
use crate::enrollment::{Challenges, EnrollmentRequests};
use crate::error::CoreError;
use crate::est::{EstParts, EstService};
use crate::export::Exports;
use crate::issuer::Issuer;
use crate::ocsp::OcspService;
use crate::policy::Policies;
use crate::queries::Queries;
use crate::rate::WriteLimiter;
use crate::reassign::Reassignment;
use crate::renewal::Renewals;
use crate::revocation::Revocations;
use crate::rotation::KeyRotation;
use crate::scep::{ScepParts, ScepService};

/// Settings of the CA (each is a `keyinfra serve` flag and environment variable).
#[derive(Debug, Clone)]
pub struct AuthoritySettings {
    /// Base URL clients reach this server at; CRL distribution points and AIA URLs are
    /// built from it (KEYINFRA_PUBLIC_URL).
    pub public_url: String,
    pub profiles: Vec<Profile>,
    /// Most active certificates a user may own; `None` = no limit.
    pub quota: Option<u32>,
    /// nextUpdate - thisUpdate of every CRL.
    pub crl_validity: Duration,
    /// A CRL is re-issued once it is this old, well before its nextUpdate.
    pub crl_republish_after: Duration,
    /// After revocations a delta CRL is always re-issued; the complete CRL only if its newest
    /// one is at least this old (KEYINFRA_CRL_FULL_MIN_INTERVAL). Zero, the default: the
    /// complete CRL too, for devices that never read delta CRLs.
    pub crl_full_min_interval: Duration,
    /// Revocations within this window are published in one CRL.
    pub crl_coalesce: std::time::Duration,
    /// Certificates are back-dated by this much, for devices with slightly slow clocks.
    pub backdate: Duration,
    /// Certificate writes (issue, renew, revoke) a user may make a minute; `None` = no
    /// limit (KEYINFRA_ISSUE_RATE).
    pub write_rate: Option<crate::rate::WriteRate>,
    /// thisUpdate to nextUpdate of each OCSP answer; cached answers are re-signed after
    /// half of it (KEYINFRA_OCSP_VALIDITY).
    pub ocsp_validity: Duration,
    /// Pre-signed OCSP answers kept per replica (KEYINFRA_OCSP_CACHE_ENTRIES).
    pub ocsp_cache_entries: usize,
    /// Whether new certificates carry the OCSP URL in their Authority Information Access
    /// (KEYINFRA_OCSP_IN_CERTIFICATES); off for CAs whose clients must not try OCSP.
    pub ocsp_in_certificates: bool,
    /// The names of KeyInfra's own TLS certificate (`--tls-names`, the listen address,
    /// localhost): only ADMIN, the operator and the server may get them.
    pub reserved_names: crate::policy::names::ReservedNames,
    /// Whether an EST CSR must carry the tls-exporter channel binding
    /// (KEYINFRA_EST_CHANNEL_BINDING=required); without it a binding is checked when sent.
    pub est_channel_binding_required: bool,
}

impl AuthoritySettings {
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            profiles: keyinfra_pki::profile::builtin_profiles(None),
            quota: Some(10),
            crl_validity: Duration::days(7),
            crl_republish_after: Duration::days(1),
            crl_full_min_interval: Duration::ZERO,
            crl_coalesce: std::time::Duration::from_millis(500),
            backdate: Duration::minutes(5),
            write_rate: Some(crate::rate::WriteRate {
                per_minute: crate::rate::WriteRate::DEFAULT_PER_MINUTE,
                admins_too: false,
            }),
            reserved_names: crate::policy::names::ReservedNames::new([], []),
            ocsp_validity: Duration::hours(1),
            ocsp_cache_entries: crate::ocsp::DEFAULT_CACHE_ENTRIES,
            ocsp_in_certificates: true,
            est_channel_binding_required: false,
        }
    }

    pub fn profile(&self, name: &str) -> Result<&Profile, CoreError> {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let known: Vec<_> = self.profiles.iter().map(|p| p.name.as_str()).collect();
                CoreError::invalid(
                    ErrorCode::UnknownProfile,
                    format!(
                        "unknown profile {name:?}; known profiles: {}",
                        known.join(", ")
                    ),
                )
            })
    }

    pub fn crl_url(&self, ca_id: Uuid) -> String {
        format!("{}/crl/{ca_id}.crl", self.public_url)
    }

    /// Where the CA's newest delta CRL is (the Freshest CRL extension).
    pub fn delta_crl_url(&self, ca_id: Uuid) -> String {
        format!("{}/crl/{ca_id}/delta.crl", self.public_url)
    }

    pub fn ca_certificate_url(&self, ca_id: Uuid) -> String {
        format!("{}/ca/{ca_id}.crt", self.public_url)
    }

    /// The OCSP responder's URL for new certificates, unless turned off.
    pub fn ocsp_url(&self) -> Option<String> {
        self.ocsp_in_certificates
            .then(|| format!("{}/ocsp", self.public_url))
    }

    /// Where CA `ca_id` publishes, for the certificate of a CA it signs: the same URLs its
    /// leaves carry.
    pub fn parent_urls(&self, ca_id: Uuid) -> ParentUrls {
        ParentUrls {
            crl_url: self.crl_url(ca_id),
            ca_issuers_url: self.ca_certificate_url(ca_id),
            ocsp_url: self.ocsp_url(),
            delta_crl_url: Some(self.delta_crl_url(ca_id)),
        }
    }
}

/// Every use case of the CA, wired together. It has no behaviour of its own.
#[derive(Debug)]
pub struct Authority {
    pub settings: Arc<AuthoritySettings>,
    /// The CAs, and the signers this replica has loaded.
    pub cas: Arc<CaRegistry>,
    /// Issuance policies and the per-replica cache the issuer reads them through.
    pub policies: Arc<Policies>,
    /// The one entry point that signs end-entity certificates.
    pub issuer: Arc<Issuer>,
    pub renewals: Arc<Renewals>,
    pub revocations: Arc<Revocations>,
    pub crls: Arc<CrlPublisher>,
    /// The OCSP responder.
    pub ocsp: Arc<OcspService>,
    pub exports: Exports,
    pub reassignment: Reassignment,
    pub queries: Queries,
    pub ca_setup: CaSetup,
    pub key_rotation: KeyRotation,
    /// SCEP challenge passwords: created and withdrawn by users, claimed by devices.
    pub challenges: Arc<Challenges>,
    /// Enrollments waiting for an ADMIN's approval (challenges with `approval`).
    pub enrollment_requests: Arc<EnrollmentRequests>,
    /// SCEP (RFC 8894): GetCACaps, GetCACert and PKIOperation, issuing through `issuer`.
    pub scep: ScepService,
    /// EST (RFC 7030): enroll, re-enroll, serverkeygen, csrattrs, issuing through `issuer`.
    pub est: EstService,
    /// The per-user write rate that issues, renewals, revocations and credential creation
    /// share (`KEYINFRA_ISSUE_RATE`); services built outside the authority (ACME's binding
    /// keys, which need the server secret) take from the same one.
    pub writes: Arc<WriteLimiter>,
    /// The clock every service here reads.
    pub clock: Arc<dyn Clock>,
}

impl Authority {
    pub fn new(settings: AuthoritySettings, masters: MasterKeys, clock: Arc<dyn Clock>) -> Self {
        let settings = Arc::new(settings);
        let masters = Arc::new(masters);
        let cas = Arc::new(CaRegistry::new(Arc::clone(&masters), Arc::clone(&clock)));
        let policies = Arc::new(Policies::new(settings.profiles.clone(), Arc::clone(&clock)));
        let writes = Arc::new(WriteLimiter::new(settings.write_rate));
        let crls = Arc::new(CrlPublisher::new(
            Arc::clone(&settings),
            Arc::clone(&clock),
            Arc::clone(&cas),
        ));
        let ocsp = Arc::new(OcspService::new(
            Arc::clone(&settings),
            Arc::clone(&clock),
            Arc::clone(&masters),
            Arc::clone(&cas),
        ));
        let queries = Queries::new(Arc::clone(&clock));
        let live_challenges = Arc::new(LiveChallenges::default());
        let issuer = Arc::new(Issuer::new(
            Arc::clone(&settings),
            Arc::clone(&clock),
            Arc::clone(&masters),
            Arc::clone(&cas),
            Arc::clone(&policies),
            Arc::clone(&writes),
            Arc::clone(&live_challenges),
        ));
        let challenges = Arc::new(Challenges::new(
            Arc::clone(&settings),
            Arc::clone(&clock),
            Arc::clone(&writes),
            live_challenges,
        ));
        let enrollment_requests = Arc::new(EnrollmentRequests::new(
            Arc::clone(&clock),
            Arc::clone(&issuer),
        ));
        let renewals = Arc::new(Renewals::new(
            Arc::clone(&issuer),
            Arc::clone(&crls),
            Arc::clone(&ocsp),
            queries.clone(),
        ));
        let scep = ScepService::new(ScepParts {
            clock: Arc::clone(&clock),
            masters: Arc::clone(&masters),
            cas: Arc::clone(&cas),
            issuer: Arc::clone(&issuer),
            challenges: Arc::clone(&challenges),
            requests: Arc::clone(&enrollment_requests),
            crls: Arc::clone(&crls),
            renewals: Arc::clone(&renewals),
        });
        let est = EstService::new(EstParts {
            settings: Arc::clone(&settings),
            clock: Arc::clone(&clock),
            cas: Arc::clone(&cas),
            issuer: Arc::clone(&issuer),
            renewals: Arc::clone(&renewals),
            policies: Arc::clone(&policies),
            challenges: Arc::clone(&challenges),
            requests: Arc::clone(&enrollment_requests),
            exports: Exports::new(Arc::clone(&masters), Arc::clone(&cas), queries.clone()),
        });
        Self {
            est,
            renewals,
            revocations: Arc::new(Revocations::new(
                Arc::clone(&clock),
                Arc::clone(&writes),
                Arc::clone(&crls),
                Arc::clone(&ocsp),
            )),
            exports: Exports::new(Arc::clone(&masters), Arc::clone(&cas), queries.clone()),
            reassignment: Reassignment::new(
                Arc::clone(&settings),
                Arc::clone(&clock),
                Arc::clone(&policies),
            ),
            ca_setup: CaSetup {
                settings: Arc::clone(&settings),
                clock: Arc::clone(&clock),
                masters: Arc::clone(&masters),
                cas: Arc::clone(&cas),
                crls: Arc::clone(&crls),
                policies: Arc::clone(&policies),
            },
            challenges,
            enrollment_requests,
            scep,
            key_rotation: KeyRotation::new(masters, Arc::clone(&clock)),
            queries,
            settings,
            cas,
            policies,
            issuer,
            crls,
            ocsp,
            writes,
            clock,
        }
    }
}
