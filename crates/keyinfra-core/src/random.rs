//! The operating system's CSPRNG, as the pki crate's [`RandomSource`].

use keyinfra_pki::{PkiError, RandomSource};

#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
        getrandom::fill(dest).map_err(|_| PkiError::RandomSourceFailed)
    }
}
