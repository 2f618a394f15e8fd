//! The host directory (migration 0012, docs/agents.md): registered agents, their capacity
//! and their last report. Like the cluster state, each call is one statement outside the
//! writer's group commit, written once in PostgreSQL's `$n` placeholders (SQLite reads `?n`).

use crate::shared::unavailable;
use crate::{PgStore, SqliteStore, StoreError};
use async_trait::async_trait;
use nubis_core::hosts::{Capacity, HostRecord};
use rusqlite::params;

/// An agent's report: where it listens, what it runs and offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    pub address: String,
    pub driver: String,
    pub capacity: Capacity,
    /// When it arrived (the receiving node's clock).
    pub seen_ms: i64,
    /// When the agent signed it: a report not newer than the last one is not recorded.
    pub signed_ms: i64,
}

#[async_trait]
pub trait HostDirectory: Send + Sync {
    /// Registers a host; a host of that ID already there is a [`StoreError::Conflict`].
    async fn create_host(&self, host: &HostRecord) -> Result<(), StoreError>;
    /// Forgets a host; whether it was there.
    async fn delete_host(&self, id: &str) -> Result<bool, StoreError>;
    /// Records a report of host `id`; false when no such host is registered or the report is
    /// not newer than the last one recorded (a replay).
    async fn report_host(&self, id: &str, report: &HostReport) -> Result<bool, StoreError>;
    /// Every registered host, by ID.
    async fn hosts(&self) -> Result<Vec<HostRecord>, StoreError>;
}

const CREATE: &str = "INSERT INTO hosts (id, zone, sealed_secret, created_at_ms, address, driver, \
     vcpus, memory_mib, disk_gib, last_seen_ms, report_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)";
const DELETE: &str = "DELETE FROM hosts WHERE id = $1";
const REPORT: &str = "UPDATE hosts SET address = $2, driver = $3, vcpus = $4, memory_mib = $5, \
     disk_gib = $6, last_seen_ms = $7, report_ms = $8 WHERE id = $1 AND report_ms < $8";
const LIST: &str = "SELECT id, zone, sealed_secret, created_at_ms, address, driver, vcpus, \
     memory_mib, disk_gib, last_seen_ms FROM hosts ORDER BY id";

fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

fn wide(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn narrow(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A row's columns, in `LIST` order, as read by either backend.
type Row = (
    String,
    String,
    String,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
);

fn record(r: Row) -> HostRecord {
    HostRecord {
        id: r.0,
        zone: r.1,
        sealed_secret: r.2,
        created_at_ms: r.3,
        address: r.4,
        driver: r.5,
        capacity: Capacity {
            vcpus: u32::try_from(r.6).unwrap_or(0),
            memory_mib: narrow(r.7),
            disk_gib: narrow(r.8),
        },
        last_seen_ms: r.9,
    }
}

#[async_trait]
impl HostDirectory for SqliteStore {
    async fn create_host(&self, h: &HostRecord) -> Result<(), StoreError> {
        let h = h.clone();
        self.read(move |conn| {
            conn.execute(
                &lite(CREATE),
                params![
                    h.id,
                    h.zone,
                    h.sealed_secret,
                    h.created_at_ms,
                    h.address,
                    h.driver,
                    i64::from(h.capacity.vcpus),
                    wide(h.capacity.memory_mib),
                    wide(h.capacity.disk_gib),
                    h.last_seen_ms
                ],
            )
            .map(drop)
            .map_err(crate::sqlite::db_write_error)
        })
        .await
    }

    async fn delete_host(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.execute(&lite(DELETE), params![id])
                .map(|n| n > 0)
                .map_err(unavailable)
        })
        .await
    }

    async fn report_host(&self, id: &str, r: &HostReport) -> Result<bool, StoreError> {
        let (id, r) = (id.to_owned(), r.clone());
        self.read(move |conn| {
            conn.execute(
                &lite(REPORT),
                params![
                    id,
                    r.address,
                    r.driver,
                    i64::from(r.capacity.vcpus),
                    wide(r.capacity.memory_mib),
                    wide(r.capacity.disk_gib),
                    r.seen_ms,
                    r.signed_ms
                ],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }

    async fn hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        self.read(|conn| {
            let mut st = conn.prepare_cached(&lite(LIST)).map_err(unavailable)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                    ))
                })
                .map_err(unavailable)?;
            rows.map(|r| r.map(record).map_err(unavailable)).collect()
        })
        .await
    }
}

#[async_trait]
impl HostDirectory for PgStore {
    async fn create_host(&self, h: &HostRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                CREATE,
                &[
                    &h.id,
                    &h.zone,
                    &h.sealed_secret,
                    &h.created_at_ms,
                    &h.address,
                    &h.driver,
                    &i64::from(h.capacity.vcpus),
                    &wide(h.capacity.memory_mib),
                    &wide(h.capacity.disk_gib),
                    &h.last_seen_ms,
                ],
            )
            .await
            .map(drop)
            .map_err(crate::postgres::db_write_error)
    }

    async fn delete_host(&self, id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        client
            .execute(DELETE, &[&id])
            .await
            .map(|n| n > 0)
            .map_err(crate::postgres::pg)
    }

    async fn report_host(&self, id: &str, r: &HostReport) -> Result<bool, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                REPORT,
                &[
                    &id,
                    &r.address,
                    &r.driver,
                    &i64::from(r.capacity.vcpus),
                    &wide(r.capacity.memory_mib),
                    &wide(r.capacity.disk_gib),
                    &r.seen_ms,
                    &r.signed_ms,
                ],
            )
            .await
            .map(|n| n > 0)
            .map_err(crate::postgres::pg)
    }

    async fn hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(LIST, &[]).await.map_err(crate::postgres::pg)?;
        rows.iter()
            .map(|r| {
                Ok(record((
                    r.try_get(0).map_err(crate::postgres::pg)?,
                    r.try_get(1).map_err(crate::postgres::pg)?,
                    r.try_get(2).map_err(crate::postgres::pg)?,
                    r.try_get(3).map_err(crate::postgres::pg)?,
                    r.try_get(4).map_err(crate::postgres::pg)?,
                    r.try_get(5).map_err(crate::postgres::pg)?,
                    r.try_get(6).map_err(crate::postgres::pg)?,
                    r.try_get(7).map_err(crate::postgres::pg)?,
                    r.try_get(8).map_err(crate::postgres::pg)?,
                    r.try_get(9).map_err(crate::postgres::pg)?,
                )))
            })
            .collect()
    }
}
