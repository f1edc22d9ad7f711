//! The database side of `keyinfra backup`: a consistent snapshot streamed out with
//! `COPY ... TO STDOUT`, and a restore streamed in with `COPY ... FROM STDIN`. The file
//! format and its encryption live in `keyinfra_core::backup`; this module sees only table
//! names, columns and PostgreSQL's binary COPY bytes.
//!
//! Which connection (a design decision): both directions run on one connection as the
//! URL's own role, the owner of every table (the role `keyinfra migrate up` uses), never on
//! the application pool:
//! * `keyinfra_app` is subject to row-level security. `Actor::System` sees every row of
//!   today's policies, but only because each policy says so; a table whose policy forgot
//!   SYSTEM would silently be backed up short. The owner is not subject to row-level
//!   security (no table uses FORCE ROW LEVEL SECURITY), and the session also sets
//!   `row_security = off`, which makes PostgreSQL raise an error instead of filtering rows
//!   if a policy would ever apply: a backup is complete or it fails.
//! * `COPY ... FROM` is refused for a role that row-level security applies to, and disabling
//!   triggers during the restore needs the table owner.
//!
//! The tables are discovered from the catalog (every table of the `public` schema except
//! sqlx's bookkeeping; partitions through their parent), ordered so that foreign keys point
//! backwards, so a table a later migration adds is backed up without a change here.
//! Materialized views are derived data: not copied, refreshed after a restore.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
use sqlx::postgres::PgCopyIn;
use sqlx::{Executor, PgConnection, Row};
use time::OffsetDateTime;

use crate::error::DbError;
use crate::migrations::MIGRATIONS_TABLE;
use crate::pool::owner_connection;

/// One table as the backup holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub name: String,
    /// The columns copied, in order (generated columns are left out: PostgreSQL computes them).
    pub columns: Vec<String>,
    /// Rows in the snapshot.
    pub rows: i64,
}

/// A sequence's position, restored with `setval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceValue {
    pub name: String,
    /// `None` when the sequence was never used.
    pub last_value: Option<i64>,
}

/// The monthly partitions of `certificates` that existed: the restore creates the same
/// months so that rows land in their month, not in the default partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSpan {
    pub first_month: OffsetDateTime,
    /// Months after `first_month` that also exist (0 = only the first).
    pub months_after: i32,
}

/// What a snapshot holds, apart from the rows themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// `keyinfra_schema_version()` of the database.
    pub schema_version: i64,
    /// Every table, parents before the tables whose foreign keys point at them.
    pub tables: Vec<TableSpec>,
    pub sequences: Vec<SequenceValue>,
    pub certificate_partitions: Option<PartitionSpan>,
}

/// A failure while streaming a table out: the database's, or the sink's.
#[derive(Debug, thiserror::Error)]
pub enum CopyOutError<E> {
    #[error(transparent)]
    Database(DbError),
    #[error("{0}")]
    Sink(E),
}

/// Double-quotes an identifier from the catalog.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A database error that names what backups need when it is about privileges.
fn owner_error(error: sqlx::Error) -> DbError {
    if let sqlx::Error::Database(db) = &error
        && matches!(db.code().as_deref(), Some("42501"))
    {
        return DbError::Internal(format!(
            "backup and restore must run as the owner of KeyInfra's tables (the role `keyinfra migrate up` uses, in DATABASE_URL): {}",
            db.message()
        ));
    }
    DbError::from(error)
}

/// The session every backup connection uses: no timeouts (a table may take minutes to
/// stream) and an error rather than filtered rows if row-level security would apply.
async fn backup_connection(url: &str) -> Result<PgConnection, DbError> {
    let mut conn = owner_connection(url).await?;
    conn.execute(
        "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; \
         SET lock_timeout = 0; SET row_security = off",
    )
    .await
    .map_err(owner_error)?;
    Ok(conn)
}

/// The tables to copy, with their columns, parents first.
async fn discover_tables(conn: &mut PgConnection) -> Result<Vec<TableSpec>, DbError> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS name,
                array_agg(a.attname::text ORDER BY a.attnum) AS columns
         FROM pg_class AS c
         JOIN pg_namespace AS n ON n.oid = c.relnamespace
         JOIN pg_attribute AS a ON a.attrelid = c.oid
                               AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND c.relname <> $1
         GROUP BY c.relname",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_all(&mut *conn)
    .await
    .map_err(owner_error)?;
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        columns.insert(row.try_get("name")?, row.try_get("columns")?);
    }
    let edges = sqlx::query(
        "SELECT DISTINCT c.relname::text AS child, p.relname::text AS parent
         FROM pg_constraint AS k
         JOIN pg_class AS c ON c.oid = k.conrelid
         JOIN pg_class AS p ON p.oid = k.confrelid
         JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE k.contype = 'f' AND n.nspname = 'public' AND k.conrelid <> k.confrelid",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(owner_error)?;
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for edge in edges {
        let child: String = edge.try_get("child")?;
        let parent: String = edge.try_get("parent")?;
        // Partitions carry clones of their parent's foreign keys: only tables copied count.
        if columns.contains_key(&child) && columns.contains_key(&parent) {
            parents.entry(child).or_default().insert(parent);
        }
    }
    // Kahn's algorithm, alphabetical among the ready ones so that the order is stable.
    let mut ordered = Vec::with_capacity(columns.len());
    let mut placed = BTreeSet::new();
    while placed.len() < columns.len() {
        let ready: Vec<String> = columns
            .keys()
            .filter(|t| !placed.contains(*t))
            .filter(|t| {
                parents
                    .get(*t)
                    .is_none_or(|ps| ps.iter().all(|p| placed.contains(p)))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(DbError::Internal(
                "the foreign keys between the tables form a cycle; cannot order a restore"
                    .to_owned(),
            ));
        }
        for table in ready {
            placed.insert(table.clone());
            let cols = columns.get(&table).cloned().unwrap_or_default();
            ordered.push(TableSpec {
                name: table,
                columns: cols,
                rows: 0,
            });
        }
    }
    Ok(ordered)
}

async fn schema_version(conn: &mut PgConnection) -> Result<i64, DbError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(MIGRATIONS_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(0);
    }
    sqlx::query_scalar(
        "SELECT coalesce(max(version), 0)::bigint FROM _sqlx_migrations WHERE success",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(owner_error)
}

/// A consistent, read-only view of the whole database: one `REPEATABLE READ, READ ONLY`
/// transaction, so every table is copied as of the same instant while the server keeps
/// serving (readers and writers are not blocked).
#[derive(Debug)]
pub struct Snapshot {
    conn: PgConnection,
}

impl Snapshot {
    pub async fn begin(url: &str) -> Result<Self, DbError> {
        let mut conn = backup_connection(url).await?;
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(owner_error)?;
        Ok(Self { conn })
    }

    /// The tables (with their row counts in this snapshot), sequences and partitions.
    pub async fn catalog(&mut self) -> Result<Catalog, DbError> {
        let conn = &mut self.conn;
        let schema_version = schema_version(conn).await?;
        let mut tables = discover_tables(conn).await?;
        for table in &mut tables {
            table.rows = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {}",
                ident(&table.name)
            )))
            .fetch_one(&mut *conn)
            .await
            .map_err(owner_error)?;
        }
        let sequences = sqlx::query(
            "SELECT sequencename::text AS name, last_value FROM pg_sequences
             WHERE schemaname = 'public' ORDER BY sequencename",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(owner_error)?
        .into_iter()
        .map(|row| {
            Ok(SequenceValue {
                name: row.try_get("name")?,
                last_value: row.try_get("last_value")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let span = sqlx::query(
            "WITH bounds AS (
                 SELECT (regexp_match(pg_get_expr(p.relpartbound, p.oid),
                                      'FROM \\(''([^'']*)''\\)'))[1]::timestamptz AS lo
                 FROM pg_inherits AS i JOIN pg_class AS p ON p.oid = i.inhrelid
                 WHERE i.inhparent = to_regclass('public.certificates'))
             SELECT min(lo) AS first, max(lo) AS last,
                    (extract(year FROM age(max(lo), min(lo))) * 12
                     + extract(month FROM age(max(lo), min(lo))))::int AS months
             FROM bounds WHERE lo IS NOT NULL",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(owner_error)?;
        let first: Option<OffsetDateTime> = span.try_get("first")?;
        let months: Option<i32> = span.try_get("months")?;
        let certificate_partitions =
            first
                .zip(months)
                .map(|(first_month, months_after)| PartitionSpan {
                    first_month,
                    months_after,
                });
        Ok(Catalog {
            schema_version,
            tables,
            sequences,
            certificate_partitions,
        })
    }

    /// Streams `table` as PostgreSQL binary COPY data into `sink`, chunk by chunk.
    pub async fn copy_out<E>(
        &mut self,
        table: &TableSpec,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), CopyOutError<E>> {
        // A query rather than the table: COPY of a partitioned table needs one, and it
        // reads every partition.
        let statement = format!(
            "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
            column_list(&table.columns),
            ident(&table.name)
        );
        let mut stream = self
            .conn
            .copy_out_raw(&statement)
            .await
            .map_err(|e| CopyOutError::Database(owner_error(e)))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| CopyOutError::Database(DbError::from(e)))?;
            sink(&chunk).map_err(CopyOutError::Sink)?;
        }
        Ok(())
    }

    /// Ends the read-only transaction and closes the connection.
    pub async fn finish(mut self) -> Result<(), DbError> {
        self.conn.execute("COMMIT").await?;
        let _ = sqlx::Connection::close(self.conn).await;
        Ok(())
    }
}

/// The database a backup is restored into.
#[derive(Debug)]
pub struct RestoreTarget {
    conn: PgConnection,
}

impl RestoreTarget {
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        Ok(Self {
            conn: backup_connection(url).await?,
        })
    }

    /// The applied schema version (0 when no migration ever ran).
    pub async fn schema_version(&mut self) -> Result<i64, DbError> {
        schema_version(&mut self.conn).await
    }

    /// The tables that hold at least one row (none in an empty or schema-less database).
    pub async fn tables_with_rows(&mut self) -> Result<Vec<String>, DbError> {
        let tables = discover_tables(&mut self.conn).await?;
        let mut filled = Vec::new();
        for table in tables {
            let any: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT EXISTS (SELECT 1 FROM {})",
                ident(&table.name)
            )))
            .fetch_one(&mut self.conn)
            .await
            .map_err(owner_error)?;
            if any {
                filled.push(table.name);
            }
        }
        Ok(filled)
    }

    /// Opens the restore's one transaction: checks that this database's tables and columns
    /// are the backup's, creates the backup's certificate partitions, disables the tables'
    /// own triggers and checks (under the locks that takes) that every table is empty.
    pub async fn begin(&mut self, catalog: &Catalog) -> Result<Restore<'_>, DbError> {
        let conn = &mut self.conn;
        conn.execute("BEGIN").await?;
        let here = discover_tables(conn).await?;
        let described = |tables: &[TableSpec]| -> BTreeMap<String, Vec<String>> {
            tables
                .iter()
                .map(|t| (t.name.clone(), t.columns.clone()))
                .collect()
        };
        if described(&here) != described(&catalog.tables) {
            let _ = conn.execute("ROLLBACK").await;
            return Err(DbError::Migration(
                "this database's tables or columns differ from the backup's, although the schema versions match; refusing to restore".to_owned(),
            ));
        }
        if let Some(span) = catalog.certificate_partitions {
            // Before the triggers are disabled, so that new partitions clone them enabled.
            sqlx::query("SELECT count(*) FROM ensure_certificate_partitions($1, $2)")
                .bind(span.months_after.clamp(0, 240))
                .bind(span.first_month)
                .fetch_one(&mut *conn)
                .await
                .map_err(owner_error)?;
        }
        // The rows are copied exactly as they were, so no trigger may act on them again:
        // certificates_register_serial would insert a second registry row for every
        // certificate (the registry is restored from the backup, as it was), and a future
        // INSERT trigger could rewrite restored values. DISABLE TRIGGER USER leaves the
        // foreign-key (system) triggers on, so references are still checked. ALTER TABLE is
        // transactional and takes an ACCESS EXCLUSIVE lock until COMMIT: no other session
        // ever sees a table without its triggers (the audit log's append-only guard, the
        // immutability guards), and a rollback restores them too. Partitions follow their
        // parent. Being the table owner is what allows it.
        for table in &catalog.tables {
            conn.execute(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE {} DISABLE TRIGGER USER",
                ident(&table.name)
            )))
            .await
            .map_err(owner_error)?;
        }
        // Checked again under the locks: a server may have started on this database since.
        for table in &catalog.tables {
            let any: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT EXISTS (SELECT 1 FROM {})",
                ident(&table.name)
            )))
            .fetch_one(&mut *conn)
            .await?;
            if any {
                let _ = conn.execute("ROLLBACK").await;
                return Err(DbError::Migration(format!(
                    "the database is not empty (table {} has rows); restore only into an empty database",
                    table.name
                )));
            }
        }
        Ok(Restore { conn })
    }

    pub async fn close(self) {
        let _ = sqlx::Connection::close(self.conn).await;
    }
}

/// The restore's transaction: tables are loaded in the catalog's order, then
/// [`Restore::commit`]. Dropped without a commit, the connection's transaction is rolled
/// back (call [`Restore::rollback`] to do it at once).
#[derive(Debug)]
pub struct Restore<'c> {
    conn: &'c mut PgConnection,
}

/// One table's `COPY ... FROM STDIN` in progress.
pub struct TableLoader<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
}

impl std::fmt::Debug for TableLoader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableLoader")
    }
}

impl TableLoader<'_> {
    /// Sends the next bytes of the table's binary COPY data.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), DbError> {
        self.copy.send(data).await?;
        Ok(())
    }

    /// Ends the table; returns the rows PostgreSQL loaded.
    pub async fn finish(self) -> Result<u64, DbError> {
        Ok(self.copy.finish().await?)
    }

    /// Abandons the table (and so the transaction).
    pub async fn abort(self, why: &str) {
        let _ = self.copy.abort(why).await;
    }
}

impl Restore<'_> {
    /// Starts loading `table` (which must be the catalog's next one).
    pub async fn load(&mut self, table: &TableSpec) -> Result<TableLoader<'_>, DbError> {
        let statement = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            ident(&table.name),
            column_list(&table.columns)
        );
        let copy = self
            .conn
            .copy_in_raw(&statement)
            .await
            .map_err(owner_error)?;
        Ok(TableLoader { copy })
    }

    /// Sets the sequences, re-enables the triggers, refreshes the materialized views and
    /// commits.
    pub async fn commit(self, catalog: &Catalog) -> Result<(), DbError> {
        for sequence in &catalog.sequences {
            if let Some(value) = sequence.last_value {
                sqlx::query("SELECT setval($1::regclass, $2, true)")
                    .bind(format!("public.{}", ident(&sequence.name)))
                    .bind(value)
                    .fetch_one(&mut *self.conn)
                    .await?;
            }
        }
        for table in &catalog.tables {
            self.conn
                .execute(sqlx::AssertSqlSafe(format!(
                    "ALTER TABLE {} ENABLE TRIGGER USER",
                    ident(&table.name)
                )))
                .await?;
        }
        let views: Vec<String> = sqlx::query_scalar(
            "SELECT matviewname::text FROM pg_matviews WHERE schemaname = 'public' ORDER BY 1",
        )
        .fetch_all(&mut *self.conn)
        .await?;
        for view in views {
            self.conn
                .execute(sqlx::AssertSqlSafe(format!(
                    "REFRESH MATERIALIZED VIEW {}",
                    ident(&view)
                )))
                .await?;
        }
        self.conn.execute("COMMIT").await?;
        Ok(())
    }

    pub async fn rollback(self) {
        let _ = self.conn.execute("ROLLBACK").await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("users"), "\"users\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(
            column_list(&["a".to_owned(), "b".to_owned()]),
            "\"a\", \"b\""
        );
    }
}
