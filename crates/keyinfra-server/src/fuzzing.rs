//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; never in a release).
//!
//! [`request_bodies`] runs a byte string through what every JSON endpoint does with a body
//! before its first database call: axum's `Json` deserialisation (the `ApiJson` extractor
//! minus the Content-Type check), the handler's own conversion, and the use case's checks
//! that need no database (names, CSR, the default issuance policy, profile, PIN, username,
//! password, e-mail, policy bodies).

use keyinfra_core::auth::Password;
use keyinfra_core::issuer::ParsedRequest;
use keyinfra_core::policy::{Candidate, Policy, PolicyChanges};
use keyinfra_core::users::{validate_email, validate_username};
use keyinfra_pki::profile::builtin_profiles;
use serde::de::DeserializeOwned;

use crate::api::auth::LoginRequest;
use crate::api::certificates::{
    IssueBody, Pkcs12Body, ReassignBody, RenewBody, RevokeBody, issue_request, pkcs12_options,
    revoke_options,
};
use crate::api::users::{ChangePassword, CreateUser, UpdateUser};

fn body<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    axum::Json::<T>::from_bytes(data)
        .ok()
        .map(|axum::Json(t)| t)
}

/// Every request body type of the API, tried on `data`. Returns how many accepted it (the
/// value does not matter; it keeps the work from being optimised away).
pub fn request_bodies(data: &[u8]) -> usize {
    let mut accepted = 0;
    if let Some(b) = body::<IssueBody>(data) {
        accepted += 1;
        issue_checks(b);
    }
    if let Some(b) = body::<RevokeBody>(data) {
        accepted += usize::from(revoke_options(&b).is_ok());
    }
    if let Some(b) = body::<Pkcs12Body>(data) {
        accepted += usize::from(pkcs12_options(b).is_ok());
    }
    if body::<RenewBody>(data).is_some() {
        accepted += 1;
    }
    if body::<ReassignBody>(data).is_some() {
        accepted += 1;
    }
    if let Some(b) = body::<LoginRequest>(data) {
        accepted += usize::from(Password::for_login(b.password).is_ok());
    }
    if let Some(b) = body::<CreateUser>(data) {
        accepted += usize::from(
            validate_username(&b.username).is_ok()
                && b.email.as_deref().is_none_or(|e| validate_email(e).is_ok())
                && Password::new(b.password, &b.username).is_ok(),
        );
    }
    if let Some(b) = body::<UpdateUser>(data) {
        accepted += usize::from(
            b.email
                .flatten()
                .as_deref()
                .is_none_or(|e| validate_email(e).is_ok()),
        );
    }
    if let Some(b) = body::<ChangePassword>(data) {
        accepted += usize::from(Password::new(b.new_password, "").is_ok());
    }
    if let Some(b) = body::<PolicyChanges>(data) {
        accepted += usize::from(policy_checks(b));
    }
    accepted
}

/// What `POST /api/v1/policies` checks before the database: the changes applied to the
/// default policy, validated and compiled.
pub fn policy_checks(changes: PolicyChanges) -> bool {
    let profiles = builtin_profiles(None);
    Policy::builtin_default(&profiles)
        .with(changes)
        .compile(&profiles)
        .is_ok()
}

/// The checks `Issuer::issue` makes before it first reads the database: the parse
/// (names, CSR), then the default policy's rules on what was parsed.
fn issue_checks(body: IssueBody) {
    let Ok(request) = issue_request(body) else {
        return;
    };
    let profiles = builtin_profiles(None);
    let Ok(parsed) = ParsedRequest::parse(&request) else {
        return;
    };
    let Ok(policy) = Policy::builtin_default(&profiles).compile(&profiles) else {
        return;
    };
    let _ = policy.check(
        &Candidate {
            subject: &parsed.subject,
            sans: &parsed.sans,
            profile: &parsed.profile,
            algorithm: parsed.key.algorithm(),
            validity_days: parsed.validity_days.unwrap_or(1),
            ca_id: uuid::Uuid::nil(),
        },
        Some(&keyinfra_core::policy::names::ReservedNames::new([], [])),
    );
}
