//! The figures the dashboard and `/metrics` show: the certificate statistics and the job
//! schedules. Each call is one transaction of its own, so that the HTTP layer opens none.

use keyinfra_db::jobs::JobSchedule;
use keyinfra_db::stats::{self, StatsRow};
use keyinfra_db::{Actor, Database};

use crate::CoreError;
use crate::users::Caller;

/// The statistics view as `by` may see it: row-level security picks the rows (an ADMIN
/// sees every owner's, a USER only their own).
pub async fn certificate_stats(db: &Database, by: &Caller) -> Result<Vec<StatsRow>, CoreError> {
    let mut tx = db.begin(&by.actor()).await?;
    let rows = stats::visible(&mut tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// What `/metrics` reports about the database, read as the system: every owner's
/// statistics and every job's schedule, in one transaction.
pub async fn operations_snapshot(
    db: &Database,
) -> Result<(Vec<StatsRow>, Vec<JobSchedule>), CoreError> {
    let mut tx = db.begin(&Actor::System).await?;
    let rows = stats::visible(&mut tx).await?;
    let schedules = keyinfra_db::jobs::schedules(&mut tx).await?;
    tx.commit().await?;
    Ok((rows, schedules))
}
