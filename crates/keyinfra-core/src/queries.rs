//! Reading certificates: one, the inventory, the expiring, the renewal chain.

use keyinfra_db::Database;
use keyinfra_db::certificates::{self, CertificateFilter, CertificateRecord};
use time::Duration;
use uuid::Uuid;

use crate::ErrorCode;
use std::sync::Arc;

use crate::Clock;
use crate::error::CoreError;
use crate::principal::Principal;

/// Reads certificates as the requester may see them (row-level security decides).
#[derive(Debug, Clone)]
pub struct Queries {
    clock: Arc<dyn Clock>,
}

impl Queries {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }

    /// One certificate (404 when the requester may not see it).
    pub async fn get(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
    ) -> Result<CertificateRecord, CoreError> {
        let mut tx = db.begin(&by.actor()).await?;
        let cert = certificates::get(&mut tx, id).await?;
        tx.commit().await?;
        cert.ok_or(CoreError::NotFound("certificate"))
    }

    /// The inventory page: a USER's own certificates, an ADMIN's choice.
    pub async fn list(
        &self,
        db: &Database,
        by: &Principal,
        mut filter: CertificateFilter,
        limit: i64,
    ) -> Result<Vec<CertificateRecord>, CoreError> {
        if !by.is_admin() {
            match filter.owner_id {
                Some(owner) if Some(owner) != by.user_id() => return Ok(Vec::new()),
                // Naming the owner lets the owner index serve the query.
                _ => filter.owner_id = by.user_id(),
            }
        }
        filter.as_of.get_or_insert(self.clock.now());
        let mut tx = db.begin(&by.actor()).await?;
        let page = certificates::list(&mut tx, &filter, limit).await?;
        tx.commit().await?;
        Ok(page)
    }

    /// Active certificates expiring within `days`, through the database function.
    pub async fn expiring(
        &self,
        db: &Database,
        by: &Principal,
        days: u32,
        limit: i64,
    ) -> Result<Vec<keyinfra_db::certificates::CertificateSummary>, CoreError> {
        if days == 0 || days > 3650 {
            return Err(CoreError::invalid(
                ErrorCode::InvalidDays,
                "days must be between 1 and 3650",
            ));
        }
        let within = Duration::days(i64::from(days));
        let now = self.clock.now();
        let mut tx = db.begin(&by.actor()).await?;
        let rows = match (by.is_admin(), by.user_id()) {
            (false, Some(me)) => {
                certificates::expiring_for_owner(&mut tx, me, within, now, limit).await?
            }
            _ => certificates::expiring(&mut tx, within, now, limit).await?,
        };
        tx.commit().await?;
        Ok(rows)
    }

    /// The renewal chain of a certificate, oldest version first.
    pub async fn versions(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
    ) -> Result<Vec<CertificateRecord>, CoreError> {
        let mut tx = db.begin(&by.actor()).await?;
        let chain = certificates::versions(&mut tx, id).await?;
        tx.commit().await?;
        if chain.is_empty() {
            return Err(CoreError::NotFound("certificate"));
        }
        Ok(chain)
    }
}
