//! Password hashing: HMAC-SHA256 under a server-side pepper, then Argon2id.
//!
//! The design asked for "HMAC-SHA256 password hashing"; a fast hash alone is brute-forced
//! cheaply, so the HMAC only keys the password with the pepper (a secret kept outside the
//! database, so a stolen database alone is useless), and Argon2id does the slow hashing:
//! OWASP's parameters (19 MiB, 2 passes, 1 lane), a 16-byte salt from the CSPRNG, stored as a
//! PHC string. Hashes made with other parameters still verify and are flagged for rehashing.

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
};
use aws_lc_rs::hmac;
use keyinfra_pki::RandomSource;
use zeroize::{Zeroize, Zeroizing};

/// Policy: at least this many characters...
pub const MIN_PASSWORD_CHARS: usize = 12;
/// ...and at most this many bytes, so that a huge password cannot burn CPU in the HMAC.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Salt length in bytes (the design's open question "exact salt length").
pub const SALT_BYTES: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the password must not be the username")]
    SameAsUsername,
    #[error("the random number generator failed")]
    Random,
    #[error("password hashing failed")]
    Hashing,
}

/// A password as typed. Its bytes are wiped on drop and never printed.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Checks the policy. `username` is compared case-insensitively.
    pub fn new(text: String, username: &str) -> Result<Self, PasswordError> {
        let text = Zeroizing::new(text);
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        if text.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if text.to_lowercase() == username.to_lowercase() {
            return Err(PasswordError::SameAsUsername);
        }
        Ok(Self(text))
    }

    /// A password to verify at login: only the length bound applies (the policy may have
    /// changed since it was set).
    pub fn for_login(text: String) -> Result<Self, PasswordError> {
        let text = Zeroizing::new(text);
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(text))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(redacted)")
    }
}

/// The server-side pepper: at least 32 bytes, never in the database.
pub struct Pepper(hmac::Key);

impl Pepper {
    pub fn new(mut bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < 32 {
            bytes.zeroize();
            return Err("the pepper must be at least 32 bytes".to_owned());
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        bytes.zeroize();
        Ok(Self(key))
    }
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(redacted)")
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    /// The password is right.
    Match {
        needs_rehash: bool,
    },
}

#[derive(Debug)]
pub struct PasswordHasher {
    pepper: Pepper,
    params: Params,
    /// A hash of a random password under the current parameters: unknown users are
    /// verified against it, so that they take as long as known ones.
    dummy: String,
}

impl PasswordHasher {
    /// OWASP's Argon2id parameters.
    pub fn new(pepper: Pepper, rng: &mut dyn RandomSource) -> Result<Self, PasswordError> {
        Self::with_params(pepper, Params::default(), rng)
    }

    /// Other Argon2id costs (memory in KiB, passes, lanes): for tests and for tuning.
    pub fn with_costs(
        pepper: Pepper,
        memory_kib: u32,
        passes: u32,
        lanes: u32,
        rng: &mut dyn RandomSource,
    ) -> Result<Self, PasswordError> {
        let params =
            Params::new(memory_kib, passes, lanes, None).map_err(|_| PasswordError::Hashing)?;
        Self::with_params(pepper, params, rng)
    }

    pub fn with_params(
        pepper: Pepper,
        params: Params,
        rng: &mut dyn RandomSource,
    ) -> Result<Self, PasswordError> {
        let mut hasher = Self {
            pepper,
            params,
            dummy: String::new(),
        };
        let mut filler = [0u8; 24];
        rng.fill(&mut filler).map_err(|_| PasswordError::Random)?;
        let dummy = Password(Zeroizing::new(hex_string(&filler)));
        hasher.dummy = hasher.hash(&dummy, rng)?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn peppered(&self, password: &Password) -> hmac::Tag {
        hmac::sign(&self.pepper.0, password.0.as_bytes())
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
    pub fn hash(
        &self,
        password: &Password,
        rng: &mut dyn RandomSource,
    ) -> Result<String, PasswordError> {
        let mut salt = [0u8; SALT_BYTES];
        rng.fill(&mut salt).map_err(|_| PasswordError::Random)?;
        self.hash_with_salt(password, &salt)
    }

    /// [`Self::hash`] with a salt drawn beforehand, so that the slow part can run on another
    /// thread than the one holding the caller's random source.
    pub fn hash_with_salt(
        &self,
        password: &Password,
        salt: &[u8; SALT_BYTES],
    ) -> Result<String, PasswordError> {
        let keyed = self.peppered(password);
        let hash = self
            .argon2()
            .hash_password_with_salt(keyed.as_ref(), salt)
            .map_err(|_| PasswordError::Hashing)?;
        Ok(hash.to_string())
    }

    /// Verifies against a stored PHC string. A malformed stored hash is a mismatch.
    pub fn verify(&self, password: &Password, stored: &str) -> Verification {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Verification::Mismatch;
        };
        let keyed = self.peppered(password);
        if self
            .argon2()
            .verify_password(keyed.as_ref(), &parsed)
            .is_err()
        {
            return Verification::Mismatch;
        }
        let current = Params::try_from(&parsed).ok();
        let needs_rehash = parsed.algorithm != argon2::ARGON2ID_IDENT
            || current.is_none_or(|p| {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            });
        Verification::Match { needs_rehash }
    }

    /// Spends the same time as a verification, for a user that does not exist.
    pub fn verify_dummy(&self, password: &Password) {
        let _ = self.verify(password, &self.dummy);
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    fn pepper(b: u8) -> Pepper {
        Pepper::new(vec![b; 32]).unwrap()
    }

    fn cheap() -> Params {
        Params::new(1024, 1, 1, None).unwrap()
    }

    #[test]
    fn policy_bounds() {
        assert_eq!(
            Password::new("short".into(), "bob").unwrap_err(),
            PasswordError::TooShort
        );
        assert_eq!(
            Password::new("x".repeat(1025), "bob").unwrap_err(),
            PasswordError::TooLong
        );
        assert_eq!(
            Password::new("Administrator1".into(), "administrator1").unwrap_err(),
            PasswordError::SameAsUsername
        );
        assert!(Password::new("correct horse battery".into(), "bob").is_ok());
        assert!(Password::for_login("x".repeat(1025)).is_err());
        assert!(Pepper::new(vec![0; 31]).is_err());
    }

    #[test]
    fn hash_is_argon2id_phc_and_the_pepper_matters() {
        let hasher = PasswordHasher::new(pepper(1), &mut OsRandom).unwrap();
        let pw = Password::new("correct horse battery".into(), "bob").unwrap();
        let phc = hasher.hash(&pw, &mut OsRandom).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            hasher.verify(&pw, &phc),
            Verification::Match {
                needs_rehash: false
            }
        );
        let wrong = Password::for_login("correct horse battery!".into()).unwrap();
        assert_eq!(hasher.verify(&wrong, &phc), Verification::Mismatch);
        let other_pepper =
            PasswordHasher::with_params(pepper(2), Params::default(), &mut OsRandom).unwrap();
        assert_eq!(other_pepper.verify(&pw, &phc), Verification::Mismatch);
        assert_eq!(
            hasher.verify(&pw, "not a phc string"),
            Verification::Mismatch
        );
    }

    #[test]
    fn other_parameters_verify_but_ask_for_a_rehash() {
        let old = PasswordHasher::with_params(pepper(1), cheap(), &mut OsRandom).unwrap();
        let pw = Password::new("correct horse battery".into(), "bob").unwrap();
        let phc = old.hash(&pw, &mut OsRandom).unwrap();
        let current = PasswordHasher::new(pepper(1), &mut OsRandom).unwrap();
        assert_eq!(
            current.verify(&pw, &phc),
            Verification::Match { needs_rehash: true }
        );
    }
}
