//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; never in a release).
//!
//! [`request_bodies`] runs a byte string through what every JSON endpoint does with a body
//! before its first database call: axum's `Json` deserialisation (the `ApiJson` extractor
//! minus the Content-Type check), the handler's own conversion, and the use case's checks
//! that need no database (names, CSR, profile, PIN, username, password, e-mail).

use keyinfra_core::auth::Password;
use keyinfra_core::lifecycle::KeySource;
use keyinfra_core::users::{validate_email, validate_username};
use keyinfra_pki::csr::parse_csr;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
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
    accepted
}

/// The checks `Authority::issue` makes before it first reads the database, in its order.
fn issue_checks(body: IssueBody) {
    let Ok(request) = issue_request(body) else {
        return;
    };
    let profiles = builtin_profiles(None);
    if !profiles.iter().any(|p| p.name == request.profile) {
        return;
    }
    if let KeySource::Csr(bytes) = &request.key
        && parse_csr(bytes).is_err()
    {
        return;
    }
    if let Some(subject) = &request.subject {
        let _ = DistinguishedName::parse(subject);
    }
    if let Some(list) = &request.san {
        let _ = SubjectAltName::parse_list(list);
    }
}
