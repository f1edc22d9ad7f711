//! Replay nonces (RFC 8555 6.5): every ACME response carries a fresh one, and every signed
//! request spends one, on whichever replica it reaches.
//!
//! A nonce is 54 characters of base64url (no padding) over 40 bytes: the second it was
//! issued (u64, big endian), 16 random bytes, and the first 16 bytes of HMAC-SHA256 over
//! those 24, under a key derived from the server secret that replicas already share for
//! their tokens. Issuing writes nothing, so a client that asks for nonces and never uses
//! them costs no row and no round trip. Spending one checks, in this order and before any
//! database work: its shape, its tag (constant time), its age (at most [`NONCE_LIFETIME`],
//! and not from the future beyond [`CLOCK_SKEW`]); then the SHA-256 of the nonce goes into
//! `acme_spent_nonces` (migration 0028), where a second use, on any replica, finds it. A
//! spent row is useless once the nonce is too old anyway; the `acme-nonces` job deletes
//! those. A nonce a request spent is gone even if that request then fails: the client
//! takes the fresh nonce from the error's `Replay-Nonce`, as RFC 8555 6.5 has it do.
//!
//! Every refusal is one answer, [`ErrorCode::BadNonce`] (ACME's `badNonce`), with a reason
//! that says which check failed and nothing about the key.

use std::sync::Arc;

use aws_lc_rs::{constant_time, digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyinfra_db::{Actor, Database, acme as store};
use keyinfra_pki::RandomSource;
use time::{Duration, OffsetDateTime};

use crate::auth::token::JwtSecret;
use crate::error::CoreError;
use crate::{Clock, ErrorCode};

/// How long a nonce may wait between the response that carried it and the request that
/// spends it. Clients fetch one just before they sign, so minutes are plenty; the spent
/// table holds at most what clients spend in this time.
pub const NONCE_LIFETIME: Duration = Duration::minutes(10);

/// How far a nonce's issue time may be ahead of this replica's clock: replicas' clocks
/// differ a little.
pub const CLOCK_SKEW: Duration = Duration::seconds(30);

const ISSUED_BYTES: usize = 8;
const RANDOM_BYTES: usize = 16;
const TAG_BYTES: usize = 16;
const NONCE_BYTES: usize = ISSUED_BYTES + RANDOM_BYTES + TAG_BYTES;
/// The length of a nonce's text: 40 bytes in unpadded base64url.
pub const NONCE_CHARS: usize = 54;

/// Issues and spends nonces (module docs).
pub struct AcmeNonces {
    key: hmac::Key,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AcmeNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeNonces").finish_non_exhaustive()
    }
}

impl AcmeNonces {
    /// Nonces under a key derived from `secret`: replicas with the same secret accept each
    /// other's.
    pub fn new(secret: &JwtSecret, clock: Arc<dyn Clock>) -> Self {
        Self {
            key: secret.derive_key(b"keyinfra/acme-nonce/v1"),
            clock,
        }
    }

    /// A fresh nonce, for the `Replay-Nonce` header.
    pub fn issue(&self, rng: &mut (dyn RandomSource + Send)) -> Result<String, CoreError> {
        let issued = u64::try_from(self.clock.now().unix_timestamp()).unwrap_or(0);
        let mut bytes = [0u8; NONCE_BYTES];
        bytes[..ISSUED_BYTES].copy_from_slice(&issued.to_be_bytes());
        rng.fill(&mut bytes[ISSUED_BYTES..ISSUED_BYTES + RANDOM_BYTES])?;
        let tag = self.tag(&bytes[..ISSUED_BYTES + RANDOM_BYTES]);
        bytes[ISSUED_BYTES + RANDOM_BYTES..].copy_from_slice(&tag);
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Spends `nonce`: Ok the first time a nonce this service (or a replica with the same
    /// secret) issued is presented within its lifetime; `bad_nonce` otherwise. Its own
    /// statement, as nobody (the request's signer is not trusted yet).
    pub async fn spend(&self, db: &Database, nonce: &str) -> Result<(), CoreError> {
        let expires_at = self.check(nonce)?;
        let hash: [u8; 32] = digest::digest(&digest::SHA256, nonce.as_bytes())
            .as_ref()
            .try_into()
            .map_err(|_| CoreError::Internal("SHA-256 is 32 bytes".into()))?;
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let first = store::spend_nonce(&mut tx, &hash, expires_at).await?;
        tx.commit().await?;
        if first {
            Ok(())
        } else {
            Err(bad_nonce(
                "this nonce was already used; use the one in this answer's Replay-Nonce",
            ))
        }
    }

    /// The checks that need no database: shape, tag, age. Returns when the nonce expires.
    fn check(&self, nonce: &str) -> Result<OffsetDateTime, CoreError> {
        let unreadable = || bad_nonce("not a nonce this server issued");
        if nonce.len() != NONCE_CHARS {
            return Err(unreadable());
        }
        let bytes = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| unreadable())?;
        let bytes: [u8; NONCE_BYTES] = bytes.try_into().map_err(|_| unreadable())?;
        let (signed, tag) = bytes.split_at(ISSUED_BYTES + RANDOM_BYTES);
        constant_time::verify_slices_are_equal(&self.tag(signed), tag).map_err(|_| unreadable())?;
        let mut issued = [0u8; ISSUED_BYTES];
        issued.copy_from_slice(&signed[..ISSUED_BYTES]);
        let issued = i64::try_from(u64::from_be_bytes(issued))
            .ok()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .ok_or_else(unreadable)?;
        let now = self.clock.now();
        if issued > now + CLOCK_SKEW {
            return Err(bad_nonce(
                "this nonce was issued in the future; check the clocks",
            ));
        }
        let expires_at = issued + NONCE_LIFETIME;
        if expires_at <= now {
            return Err(bad_nonce(
                "this nonce has expired; use the one in this answer's Replay-Nonce",
            ));
        }
        Ok(expires_at)
    }

    fn tag(&self, signed: &[u8]) -> [u8; TAG_BYTES] {
        let full = hmac::sign(&self.key, signed);
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full.as_ref()[..TAG_BYTES]);
        tag
    }
}

fn bad_nonce(reason: &str) -> CoreError {
    CoreError::invalid(ErrorCode::BadNonce, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FixedClock, OsRandom};

    fn nonces(secret: u8, clock: &Arc<FixedClock>) -> AcmeNonces {
        let secret = JwtSecret::new(vec![secret; 32]).unwrap();
        AcmeNonces::new(&secret, Arc::clone(clock) as Arc<dyn Clock>)
    }

    fn code(result: Result<OffsetDateTime, CoreError>) -> Option<ErrorCode> {
        match result {
            Err(CoreError::Invalid { code, .. }) => Some(code),
            _ => None,
        }
    }

    #[test]
    fn a_nonce_is_54_url_safe_characters_and_each_is_new() {
        let clock = Arc::new(FixedClock::new(
            OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
        ));
        let keeper = nonces(1, &clock);
        let a = keeper.issue(&mut OsRandom).unwrap();
        let b = keeper.issue(&mut OsRandom).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), NONCE_CHARS);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert!(keeper.check(&a).is_ok());
    }

    #[test]
    fn another_secret_a_changed_byte_or_a_wrong_shape_is_refused() {
        let clock = Arc::new(FixedClock::new(
            OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
        ));
        let keeper = nonces(1, &clock);
        let replica = nonces(1, &clock);
        let stranger = nonces(2, &clock);
        let nonce = keeper.issue(&mut OsRandom).unwrap();
        assert!(
            replica.check(&nonce).is_ok(),
            "a replica with the same secret accepts it"
        );
        assert_eq!(code(stranger.check(&nonce)), Some(ErrorCode::BadNonce));
        // Every position matters: the time, the random part and the tag.
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        for i in [0, 7, 8, 23, 24, 39] {
            bytes[i] ^= 1;
            let forged = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(
                code(keeper.check(&forged)),
                Some(ErrorCode::BadNonce),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        for wrong in [
            "",
            "abc",
            &format!("{nonce}A"),
            &format!("{}=", &nonce[..53]),
            &nonce.replace(|c: char| c.is_ascii_alphabetic(), "+"),
        ] {
            assert_eq!(
                code(keeper.check(wrong)),
                Some(ErrorCode::BadNonce),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn a_nonce_lives_ten_minutes_and_none_comes_from_the_future() {
        let start = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let clock = Arc::new(FixedClock::new(start));
        let keeper = nonces(1, &clock);
        let nonce = keeper.issue(&mut OsRandom).unwrap();
        clock.set(start + NONCE_LIFETIME - Duration::seconds(1));
        assert_eq!(keeper.check(&nonce).unwrap(), start + NONCE_LIFETIME);
        clock.set(start + NONCE_LIFETIME);
        assert_eq!(code(keeper.check(&nonce)), Some(ErrorCode::BadNonce));
        // A replica whose clock is behind: a little is fine, much is refused.
        clock.set(start - CLOCK_SKEW);
        assert!(keeper.check(&nonce).is_ok());
        clock.set(start - CLOCK_SKEW - Duration::seconds(1));
        assert_eq!(code(keeper.check(&nonce)), Some(ErrorCode::BadNonce));
    }
}
