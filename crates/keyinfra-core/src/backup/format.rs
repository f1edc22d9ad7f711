//! The backup file's plaintext layout: its magic markers, the JSON header that describes
//! the tables, and the length-prefixed frames of COPY data.

use std::io::Write;

use keyinfra_db::backup::{Catalog, PartitionSpan, SequenceValue, TableSpec};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::BackupError;

pub(super) const MAGIC: &[u8; 16] = b"KEYINFRA-BACKUP\0";
pub(super) const END_MAGIC: &[u8; 16] = b"KEYINFRA-END\0\0\0\0";
pub(super) const FORMAT: &str = "keyinfra-backup";
pub(super) const FORMAT_VERSION: u32 = 1;
/// Largest frame (and so the largest plaintext buffer a reader holds).
pub(super) const MAX_FRAME: usize = 1 << 20;
pub(super) const MAX_HEADER: usize = 16 << 20;
/// The size `create` gathers rows into before it writes a frame.
pub(super) const FRAME_TARGET: usize = 256 << 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Header {
    pub(super) format: String,
    pub(super) format_version: u32,
    pub(super) schema_version: i64,
    /// RFC 3339, UTC.
    pub(super) created_at: String,
    pub(super) keyinfra_version: String,
    pub(super) tables: Vec<HeaderTable>,
    pub(super) sequences: Vec<HeaderSequence>,
    pub(super) certificate_partitions: Option<HeaderPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HeaderTable {
    pub(super) name: String,
    pub(super) columns: Vec<String>,
    pub(super) rows: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HeaderSequence {
    pub(super) name: String,
    pub(super) last_value: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HeaderPartitions {
    /// RFC 3339: the start of the first monthly partition.
    pub(super) first_month: String,
    pub(super) months_after: i32,
}

impl Header {
    pub(super) fn from_catalog(
        catalog: &Catalog,
        created_at: OffsetDateTime,
    ) -> Result<Self, BackupError> {
        let rfc3339 = |t: OffsetDateTime| {
            t.format(&Rfc3339)
                .map_err(|e| BackupError::Inconsistent(format!("cannot format a time: {e}")))
        };
        Ok(Header {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            schema_version: catalog.schema_version,
            created_at: rfc3339(created_at)?,
            keyinfra_version: env!("CARGO_PKG_VERSION").to_owned(),
            tables: catalog
                .tables
                .iter()
                .map(|t| HeaderTable {
                    name: t.name.clone(),
                    columns: t.columns.clone(),
                    rows: t.rows,
                })
                .collect(),
            sequences: catalog
                .sequences
                .iter()
                .map(|s| HeaderSequence {
                    name: s.name.clone(),
                    last_value: s.last_value,
                })
                .collect(),
            certificate_partitions: match catalog.certificate_partitions {
                Some(p) => Some(HeaderPartitions {
                    first_month: rfc3339(p.first_month)?,
                    months_after: p.months_after,
                }),
                None => None,
            },
        })
    }

    pub(super) fn catalog(&self) -> Result<Catalog, String> {
        let certificate_partitions = match &self.certificate_partitions {
            Some(p) => Some(PartitionSpan {
                first_month: OffsetDateTime::parse(&p.first_month, &Rfc3339)
                    .map_err(|e| format!("bad partition start in the header: {e}"))?,
                months_after: p.months_after,
            }),
            None => None,
        };
        if let Some(t) = self
            .tables
            .iter()
            .find(|t| t.rows < 0 || t.columns.is_empty())
        {
            return Err(format!("the header describes table {} wrongly", t.name));
        }
        Ok(Catalog {
            schema_version: self.schema_version,
            tables: self
                .tables
                .iter()
                .map(|t| TableSpec {
                    name: t.name.clone(),
                    columns: t.columns.clone(),
                    rows: t.rows,
                })
                .collect(),
            sequences: self
                .sequences
                .iter()
                .map(|s| SequenceValue {
                    name: s.name.clone(),
                    last_value: s.last_value,
                })
                .collect(),
            certificate_partitions,
        })
    }

    pub(super) fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows.max(0) as u64).sum()
    }
}

pub(super) fn write_frames(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    for chunk in data.chunks(MAX_FRAME) {
        // A chunk is at most MAX_FRAME (1 MiB) long: it fits.
        out.write_all(&(chunk.len() as u32).to_be_bytes())?;
        out.write_all(chunk)?;
    }
    Ok(())
}
