//! Stateless access tokens: JWT, HS256 only, signed with a server secret that never enters
//! the database.
//!
//! The algorithm is pinned: a token whose header names anything else (`none`, RS256 over
//! our secret taken as a public key, ...) is refused before its signature is looked at.
//! Expiry is checked against our [`Clock`](crate::Clock), not the library's wall clock, so
//! that tests control time. Revocation (deleted, disabled or enabled, role or password
//! changed, logged out) is checked by the database as each request's transaction begins,
//! by the session epoch the token carries; see migrations 0008 and 0015.

use aws_lc_rs::hmac;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyinfra_db::UserRole;
use keyinfra_pki::RandomSource;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroize;

/// The server secret for HS256: at least 32 bytes.
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    /// An HMAC-SHA256 key of its own for one use of the secret, named by `label`: knowing
    /// one derived key tells nothing of the secret or of another label's key.
    pub(crate) fn derive_key(&self, label: &[u8]) -> hmac::Key {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &self.0), label);
        hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
    }

    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < 32 {
            let mut bytes = bytes;
            bytes.zeroize();
            return Err("the JWT secret must be at least 32 bytes".to_owned());
        }
        Ok(Self(bytes))
    }
}

impl Drop for JwtSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret(redacted)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// The user's session epoch at login, in microseconds since 1970 (migration 0015): the
    /// token is valid only while the users row holds exactly this value.
    pub sep: i64,
}

impl Claims {
    pub fn role(&self) -> Option<UserRole> {
        UserRole::from_label(&self.role)
    }

    pub fn session_epoch(&self) -> Option<OffsetDateTime> {
        keyinfra_db::epoch_from_micros(self.sep)
    }
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed, not ours, or uses another algorithm")]
    Invalid,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token could not be signed")]
    Signing,
}

pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
    /// HMAC key of the web UI's CSRF tokens, derived from the JWT secret under its own label.
    csrf: hmac::Key,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// Default lifetime: 15 minutes.
    pub const DEFAULT_LIFETIME: Duration = Duration::minutes(15);

    pub fn new(secret: &JwtSecret, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        // Expiry is checked against our clock in `verify`.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims = ["exp", "iat", "sub"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        Self {
            encoding: EncodingKey::from_secret(&secret.0),
            decoding: DecodingKey::from_secret(&secret.0),
            validation,
            lifetime,
            csrf: secret.derive_key(b"keyinfra/ui-csrf/v1"),
        }
    }

    /// The web UI's CSRF token of a session: HMAC-SHA256 of the token's `sub` and `jti`
    /// under a key derived from the server secret. It changes with every login, cannot be
    /// computed without the secret, and reveals nothing about the session token.
    pub fn csrf_token(&self, claims: &Claims) -> String {
        let tag = hmac::sign(
            &self.csrf,
            format!("{}|{}", claims.sub, claims.jti).as_bytes(),
        );
        hex::encode(tag.as_ref())
    }

    /// Whether `presented` is the session's CSRF token (compared in constant time).
    pub fn verify_csrf(&self, claims: &Claims, presented: &str) -> bool {
        let Ok(tag) = hex::decode(presented) else {
            return false;
        };
        hmac::verify(
            &self.csrf,
            format!("{}|{}", claims.sub, claims.jti).as_bytes(),
            &tag,
        )
        .is_ok()
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        role: UserRole,
        session_epoch: OffsetDateTime,
        now: OffsetDateTime,
        rng: &mut dyn RandomSource,
    ) -> Result<AccessToken, TokenError> {
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).map_err(|_| TokenError::Signing)?;
        let claims = Claims {
            sub: user_id,
            role: role.as_str().to_owned(),
            iat: now.unix_timestamp(),
            exp: (now + self.lifetime).unix_timestamp(),
            jti: uuid::Builder::from_random_bytes(jti).into_uuid(),
            sep: keyinfra_db::epoch_micros(session_epoch),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Signing)?;
        Ok(AccessToken {
            token,
            expires_in: self.lifetime,
        })
    }

    /// Checks signature, algorithm, claims and expiry.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        if claims.role().is_none() || claims.iat > claims.exp {
            return Err(TokenError::Invalid);
        }
        if now.unix_timestamp() >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}
