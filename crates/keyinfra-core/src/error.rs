use keyinfra_db::DbError;
use keyinfra_pki::PkiError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Every serial drawn collided: with 127 random bits this means the random number
    /// generator is broken, not bad luck.
    #[error(
        "no unique serial number after {attempts} attempts; the random number generator is suspect"
    )]
    SerialRetriesExhausted { attempts: u32 },
}
