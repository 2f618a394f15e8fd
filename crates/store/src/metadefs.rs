//! Glance's metadata definitions (migration 0016, docs/images.md "Metadata definitions"): one
//! JSON document per namespace. Read on every request (no cache, so every node answers the
//! same), written one statement at a time outside the writer's group commit, each write
//! conditional on the generation it read. Written once in PostgreSQL's `$n` placeholders
//! (SQLite reads `?n`).

use crate::shared::unavailable;
use crate::{PgStore, SqliteStore, StoreError};
use async_trait::async_trait;
use nubis_core::metadefs::Namespace;
use rusqlite::{OptionalExtension, params};

#[async_trait]
pub trait MetadefCatalog: Send + Sync {
    /// Every namespace, oldest first.
    async fn metadef_namespaces(&self) -> Result<Vec<Namespace>, StoreError>;
    /// The namespace of that name.
    async fn metadef_namespace(&self, name: &str) -> Result<Option<Namespace>, StoreError>;
    /// Writes `ns`. Generation 1 inserts it (its name or ID taken: [`StoreError::Conflict`]);
    /// a later generation replaces the stored document only if that one is the generation
    /// before (false otherwise: another writer got there first, or it is gone). A rename to
    /// a taken name is a [`StoreError::Conflict`].
    async fn put_metadef_namespace(&self, ns: &Namespace) -> Result<bool, StoreError>;
    /// Deletes the namespace `id` if it is still at `generation`; whether it was.
    async fn delete_metadef_namespace(&self, id: &str, generation: u64)
    -> Result<bool, StoreError>;
}

const INSERT: &str =
    "INSERT INTO metadef_namespaces (id, name, generation, data) VALUES ($1, $2, $3, $4)";
const UPDATE: &str = "UPDATE metadef_namespaces SET name = $2, generation = $3, data = $4 \
     WHERE id = $1 AND generation = $5";
const DELETE: &str = "DELETE FROM metadef_namespaces WHERE id = $1 AND generation = $2";
const LIST: &str = "SELECT data FROM metadef_namespaces";
const ONE: &str = "SELECT data FROM metadef_namespaces WHERE name = $1";

fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

fn wide(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn encode(ns: &Namespace) -> Result<String, StoreError> {
    serde_json::to_string(ns).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode(data: &str) -> Result<Namespace, StoreError> {
    serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("metadef namespace: {e}")))
}

fn sorted(mut all: Vec<Namespace>) -> Vec<Namespace> {
    all.sort_by(|a, b| (a.created_ms, &a.namespace).cmp(&(b.created_ms, &b.namespace)));
    all
}

#[async_trait]
impl MetadefCatalog for SqliteStore {
    async fn metadef_namespaces(&self) -> Result<Vec<Namespace>, StoreError> {
        self.read(|conn| {
            let mut st = conn.prepare_cached(LIST).map_err(unavailable)?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            let all = rows
                .map(|r| decode(&r.map_err(unavailable)?))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(sorted(all))
        })
        .await
    }

    async fn metadef_namespace(&self, name: &str) -> Result<Option<Namespace>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            let data: Option<String> = conn
                .prepare_cached(&lite(ONE))
                .map_err(unavailable)?
                .query_row([name], |r| r.get(0))
                .optional()
                .map_err(unavailable)?;
            data.as_deref().map(decode).transpose()
        })
        .await
    }

    async fn put_metadef_namespace(&self, ns: &Namespace) -> Result<bool, StoreError> {
        let data = encode(ns)?;
        let (id, name, generation) = (ns.id.clone(), ns.namespace.clone(), wide(ns.generation));
        self.read(move |conn| {
            let done = if generation <= 1 {
                conn.execute(&lite(INSERT), params![id, name, generation, data])
            } else {
                conn.execute(
                    &lite(UPDATE),
                    params![id, name, generation, data, generation - 1],
                )
            };
            done.map(|n| n > 0).map_err(crate::sqlite::db_write_error)
        })
        .await
    }

    async fn delete_metadef_namespace(
        &self,
        id: &str,
        generation: u64,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.execute(&lite(DELETE), params![id, wide(generation)])
                .map(|n| n > 0)
                .map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl MetadefCatalog for PgStore {
    async fn metadef_namespaces(&self) -> Result<Vec<Namespace>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(LIST, &[]).await.map_err(crate::postgres::pg)?;
        let all = rows
            .iter()
            .map(|r| decode(&r.try_get::<_, String>(0).map_err(crate::postgres::pg)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sorted(all))
    }

    async fn metadef_namespace(&self, name: &str) -> Result<Option<Namespace>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(ONE, &[&name])
            .await
            .map_err(crate::postgres::pg)?;
        row.map(|r| decode(&r.try_get::<_, String>(0).map_err(crate::postgres::pg)?))
            .transpose()
    }

    async fn put_metadef_namespace(&self, ns: &Namespace) -> Result<bool, StoreError> {
        let data = encode(ns)?;
        let generation = wide(ns.generation);
        let client = self.client().await?;
        let done = if generation <= 1 {
            client
                .execute(INSERT, &[&ns.id, &ns.namespace, &generation, &data])
                .await
        } else {
            let before = generation - 1;
            client
                .execute(
                    UPDATE,
                    &[&ns.id, &ns.namespace, &generation, &data, &before],
                )
                .await
        };
        done.map(|n| n > 0).map_err(crate::postgres::db_write_error)
    }

    async fn delete_metadef_namespace(
        &self,
        id: &str,
        generation: u64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        client
            .execute(DELETE, &[&id, &wide(generation)])
            .await
            .map(|n| n > 0)
            .map_err(crate::postgres::pg)
    }
}
