//! What every benchmark that runs a server starts from: a fresh database on the given
//! server, migrated, and the composition root's configuration for it (a random master
//! key, fixed test secrets, the system clock), with the benchmark's own settings.

use std::sync::Arc;

use keyinfra_core::auth::{JwtSecret, Pepper};
use keyinfra_core::authority::AuthoritySettings;
use keyinfra_core::{Clock, OsRandom, SystemClock};
use keyinfra_db::{Database, PoolSettings, migrations};
use keyinfra_pki::seal::MasterKeys;
use keyinfra_server::{AppConfig, UserSettings};

pub struct Fresh {
    /// The new database's URL.
    pub url: String,
    pub db: Database,
    pub clock: Arc<dyn Clock>,
    pub config: AppConfig,
}

/// (Re)creates `database` on `server_url`, migrates it, and configures an app for it;
/// `adjust` changes the authority's settings (quota, write rate) before the app exists.
pub async fn fresh_app(
    server_url: &str,
    database: &str,
    adjust: impl FnOnce(&mut AuthoritySettings),
) -> anyhow::Result<Fresh> {
    let url = keyinfra_db::bench::recreate_database(server_url, database).await?;
    migrations::up(&url).await?;
    let db = Database::connect(&url, &PoolSettings::default()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut masters = MasterKeys::new();
    let mut key = [0u8; 32];
    keyinfra_pki::RandomSource::fill(&mut OsRandom, &mut key)?;
    masters.insert(1, &key)?;
    let mut settings = AuthoritySettings::new("http://127.0.0.1:1");
    adjust(&mut settings);
    let users = UserSettings {
        pepper: Pepper::new(vec![1; 32]).map_err(anyhow::Error::msg)?,
        jwt_secret: JwtSecret::new(vec![2; 32]).map_err(anyhow::Error::msg)?,
        token_lifetime: time::Duration::hours(1),
    };
    let config = AppConfig::new(db.clone(), users, settings, masters, clock.clone());
    Ok(Fresh {
        url,
        db,
        clock,
        config,
    })
}
