//! PostgreSQL backend (`nubis serve --database postgres://…`): a deadpool pool of
//! tokio-postgres connections. Commits go through one writer task that, like the SQLite
//! writer, drains every batch waiting into a single transaction: batches land in the order
//! they were submitted (as on SQLite) and concurrent requests share one WAL flush. Reads take
//! any pooled connection. The schema is the SQLite one, translated in `migrations.rs`.

use crate::journal::{self, Change, ChangeBatch, Record};
use crate::migrations::{self, MIGRATIONS, SCHEMA_VERSION};
use crate::shared::{self, Job, Prepared, decode, unavailable};
use crate::{EventQuery, Snapshot, Store, StoreError, Write};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use nubis_core::audit::{AuditEvent, AuditFilter, AuditQuery};
use nubis_core::events::SystemEvent;
use nubis_core::flavors::Flavor;
use nubis_core::groups::PlacementGroup;
use nubis_core::images::Image;
use nubis_core::{Action, InjectedFile, Instance, KeyPair, Operation};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};
use uuid::Uuid;

/// Connections per node: the writer's plus concurrent reads (describes never read the
/// database; operation history, user data and audit lookups do).
const POOL_SIZE: usize = 16;
/// Advisory lock held by the migrating transaction, so that two nodes starting at once on an
/// empty database apply each migration once ("nubis_m1" in ASCII).
const MIGRATION_LOCK: i64 = 0x6e75_6269_735f_6d31;

type Param = Box<dyn ToSql + Sync + Send>;

pub struct PgStore {
    pool: Pool,
    tx: mpsc::UnboundedSender<Job>,
    /// This store's name in the change journal (random per process): the rows it wrote are
    /// [`Change::own`].
    node: String,
}

/// The server's own words (tokio-postgres' Display says only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The database's clock in unix milliseconds: every node compares lease expiries with the
/// same clock, whatever its own says.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(describe(&e))
}

/// Why a batch did not apply: the server's error, or an instance write whose generation does
/// not follow the stored one (`shared::stale`).
#[derive(Debug)]
enum Fail {
    Db(tokio_postgres::Error),
    Stale(String),
    /// A [`Write::Fence`] this node no longer holds.
    Fenced(String),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Db(e) => f.write_str(&describe(e)),
            Self::Stale(m) | Self::Fenced(m) => f.write_str(m),
        }
    }
}

/// A failed write: a broken integrity constraint (SQLSTATE class 23: unique, not-null, …) or
/// a stale instance generation is a [`StoreError::Conflict`], as on SQLite; anything else the
/// store being unavailable.
fn write_error(e: Fail) -> StoreError {
    match e {
        Fail::Stale(m) => StoreError::Conflict(m),
        Fail::Fenced(m) => StoreError::Fenced(m),
        Fail::Db(e) => match e.code() {
            Some(code) if code.code().starts_with("23") => StoreError::Conflict(describe(&e)),
            _ => pg(e),
        },
    }
}

/// [`write_error`] of a plain database error (the cluster-state tables' writes).
pub(crate) fn db_write_error(e: tokio_postgres::Error) -> StoreError {
    write_error(Fail::Db(e))
}

/// Column 0 of every row, decoded from JSON.
fn docs<T: serde::de::DeserializeOwned + Send>(rows: &[Row]) -> Result<Vec<T>, StoreError> {
    docs_as(rows, decode)
}

/// Every row's first column, decoded by `decode` (`shared::decode_rows`).
fn docs_as<T: Send>(
    rows: &[Row],
    decode: impl Fn(&str) -> Result<T, StoreError> + Sync,
) -> Result<Vec<T>, StoreError> {
    let texts = rows.iter().map(|r| r.try_get::<_, String>(0).map_err(pg));
    shared::decode_rows(texts, decode)
}

async fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), tokio_postgres::Error> {
    let st = tx.prepare_cached(sql).await?;
    tx.execute(&st, params).await.map(drop)
}

/// The same statements as SQLite's `apply`, in PostgreSQL's placeholders; statements are
/// prepared once per connection.
async fn apply(tx: &Transaction<'_>, node: &str, p: &Prepared) -> Result<(), Fail> {
    let (w, doc) = (&p.write, p.doc.as_str());
    match w {
        Write::Lease { operation, ttl_ms } => {
            exec(
                tx,
                &format!(
                    "INSERT INTO operation_leases (operation_id, node, expires_at_ms, fence) \
                     VALUES ($1, $2, {NOW_MS} + $3, 1)"
                ),
                &[&operation.to_string(), &node, ttl_ms],
            )
            .await?;
            return Ok(());
        }
        Write::Fence { operation, fence } => {
            // FOR SHARE: a takeover (an upsert of this row) waits for this commit, so a step
            // recorded under the lease lands before the next holder reads the operation.
            let st = tx
                .prepare_cached(
                    "SELECT 1 FROM operation_leases \
                     WHERE operation_id = $1 AND node = $2 AND fence = $3 FOR SHARE",
                )
                .await?;
            let fence = i64::try_from(*fence).unwrap_or(i64::MAX);
            if tx
                .query_opt(&st, &[&operation.to_string(), &node, &fence])
                .await?
                .is_none()
            {
                return Err(Fail::Fenced(format!(
                    "operation {operation}: lease (fence {fence}) taken over by another node"
                )));
            }
            return Ok(());
        }
        Write::EndLease(operation) => {
            exec(
                tx,
                "DELETE FROM operation_leases WHERE operation_id = $1",
                &[&operation.to_string()],
            )
            .await?;
            return Ok(());
        }
        _ => {}
    }
    if let Write::Instance(i) = w {
        // Conditional (docs/postgres.md, "Generations"): an update lands only over the
        // generation before this one. Under READ COMMITTED a concurrent writer of the same
        // row waits for the first to commit, then re-checks the condition against its row.
        let st = tx
            .prepare_cached(
                "INSERT INTO instances (uuid, account, tencent_id, aliyun_id, state, data, generation) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (uuid) DO UPDATE SET state = excluded.state, data = excluded.data, generation = excluded.generation \
                 WHERE instances.generation = excluded.generation - 1",
            )
            .await?;
        let changed = tx
            .execute(
                &st,
                &[
                    &i.uuid.to_string(),
                    &i.account,
                    &i.tencent_id,
                    &i.aliyun_id,
                    &i.state.as_str(),
                    &doc,
                    &shared::generation(i),
                ],
            )
            .await?;
        if changed == 0 {
            return Err(Fail::Stale(shared::stale(i)));
        }
        return Ok(());
    }
    if let Write::SystemEvent(e) = w {
        // Conditional like an image's write (migration 0019).
        let st = tx
            .prepare_cached(
                "INSERT INTO system_events (id, account, instance, generation, published_at_ms, not_before_ms, data) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, generation = excluded.generation \
                 WHERE system_events.generation = excluded.generation - 1",
            )
            .await?;
        let changed = tx
            .execute(
                &st,
                &[
                    &e.id,
                    &e.account,
                    &e.instance.to_string(),
                    &shared::event_generation(e),
                    &e.published_at_ms,
                    &e.not_before_ms,
                    &doc,
                ],
            )
            .await?;
        if changed == 0 {
            return Err(Fail::Stale(shared::stale_event(e)));
        }
        return Ok(());
    }
    if let Write::Image(i) = w {
        // Conditional like an instance's write (migration 0014).
        let st = tx
            .prepare_cached(
                "INSERT INTO images (id, uuid, account, status, generation, data) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data, generation = excluded.generation \
                 WHERE images.generation = excluded.generation - 1",
            )
            .await?;
        let changed = tx
            .execute(
                &st,
                &[
                    &i.id,
                    &i.uuid.to_string(),
                    &i.account.as_deref().unwrap_or(""),
                    &i.status.glance(),
                    &shared::image_generation(i),
                    &doc,
                ],
            )
            .await?;
        if changed == 0 {
            return Err(Fail::Stale(shared::stale_image(i)));
        }
        return Ok(());
    }
    Ok(apply_unconditional(tx, w, doc).await?)
}

/// Every other write: upserts and inserts whose failure is the server's.
async fn apply_unconditional(
    tx: &Transaction<'_>,
    w: &Write,
    doc: &str,
) -> Result<(), tokio_postgres::Error> {
    match w {
        Write::Account(a) => {
            // The bootstrap admin has no cloud numbers: NULL, so the unique indexes ignore it.
            // A plain insert: a second node creating the same ID or number conflicts.
            let uin = (a.tencent_owner_uin != 0).then_some(a.tencent_owner_uin as i64);
            let app = (a.tencent_app_id != 0).then_some(a.tencent_app_id as i64);
            let ali = (!a.aliyun_account_id.is_empty()).then_some(a.aliyun_account_id.as_str());
            exec(
                tx,
                "INSERT INTO accounts (id, data, tencent_owner_uin, tencent_app_id, aliyun_account_id) VALUES ($1, $2, $3, $4, $5)",
                &[&a.id, &doc, &uin, &app, &ali],
            )
            .await
        }
        Write::DeleteAccount(id) => exec(tx, "DELETE FROM accounts WHERE id = $1", &[id]).await,
        Write::Quota(q) => {
            exec(
                tx,
                "INSERT INTO quotas (account, data) VALUES ($1, $2) ON CONFLICT (account) DO UPDATE SET data = excluded.data",
                &[&q.account, &doc],
            )
            .await
        }
        Write::DeleteQuota(account) => {
            exec(tx, "DELETE FROM quotas WHERE account = $1", &[account]).await
        }
        Write::SubUser(u) => {
            exec(
                tx,
                "INSERT INTO sub_users (id, account, name, data) VALUES ($1, $2, $3, $4)",
                &[&(u.id as i64), &u.account, &u.name, &doc],
            )
            .await
        }
        Write::DeleteSubUser(id) => {
            exec(tx, "DELETE FROM sub_users WHERE id = $1", &[&(*id as i64)]).await
        }
        Write::Policy(p) => {
            exec(
                tx,
                "INSERT INTO policies (id, account, name, data) VALUES ($1, $2, $3, $4)",
                &[&(p.id as i64), &p.account, &p.name, &doc],
            )
            .await
        }
        Write::DeletePolicy(id) => {
            exec(tx, "DELETE FROM policies WHERE id = $1", &[&(*id as i64)]).await
        }
        Write::Attach(a) => {
            exec(
                tx,
                "INSERT INTO policy_attachments (user_id, policy_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&(a.user as i64), &(a.policy as i64)],
            )
            .await
        }
        Write::Detach(a) => {
            exec(
                tx,
                "DELETE FROM policy_attachments WHERE user_id = $1 AND policy_id = $2",
                &[&(a.user as i64), &(a.policy as i64)],
            )
            .await
        }
        Write::AccessKey(k) => {
            exec(
                tx,
                "INSERT INTO access_keys (id, account, data, user_id) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                &[&k.id, &k.account, &doc, &k.user.map(|u| u as i64)],
            )
            .await
        }
        Write::DeleteAccessKey(id) => {
            exec(tx, "DELETE FROM access_keys WHERE id = $1", &[id]).await
        }
        // Written by `apply`, conditionally.
        Write::Instance(_) | Write::Image(_) | Write::SystemEvent(_) => Ok(()),
        Write::Operation(o) => {
            exec(
                tx,
                "INSERT INTO operations (id, request_id, instance, state, created_at_ms, data) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, data = excluded.data",
                &[
                    &o.id.to_string(),
                    &o.request_id,
                    &o.instance.to_string(),
                    &o.state.as_str(),
                    &o.created_at_ms,
                    &doc,
                ],
            )
            .await?;
            if o.action != Action::Resize {
                return Ok(());
            }
            // Numbered once (migration 0018): the operation's later rewrites keep its seq.
            exec(
                tx,
                "INSERT INTO migrations (operation, instance, created_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (operation) DO NOTHING",
                &[&o.id.to_string(), &o.instance.to_string(), &o.created_at_ms],
            )
            .await
        }
        Write::KeyPair(k) => {
            exec(
                tx,
                "INSERT INTO key_pairs (id, account, data) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                &[&k.id, &k.account, &doc],
            )
            .await
        }
        Write::DeleteKeyPair(id) => exec(tx, "DELETE FROM key_pairs WHERE id = $1", &[id]).await,
        Write::PlacementGroup(g) => {
            exec(
                tx,
                "INSERT INTO placement_groups (id, account, data) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                &[&g.id, &g.account, &doc],
            )
            .await
        }
        Write::DeletePlacementGroup(id) => {
            exec(tx, "DELETE FROM placement_groups WHERE id = $1", &[id]).await
        }
        Write::InstanceType(f) => {
            exec(
                tx,
                "INSERT INTO instance_types (id, data) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                &[&f.id, &doc],
            )
            .await
        }
        Write::DeleteInstanceType(id) => {
            exec(tx, "DELETE FROM instance_types WHERE id = $1", &[id]).await
        }
        Write::Guest { instance, .. } => {
            exec(
                tx,
                "INSERT INTO guests (instance, data) VALUES ($1, $2) ON CONFLICT (instance) DO UPDATE SET data = excluded.data",
                &[&instance.to_string(), &doc],
            )
            .await
        }
        Write::DeleteGuest(id) => {
            exec(
                tx,
                "DELETE FROM guests WHERE instance = $1",
                &[&id.to_string()],
            )
            .await
        }
        Write::UserData { instance, data } => {
            exec(
                tx,
                "INSERT INTO user_data (instance, data) VALUES ($1, $2) ON CONFLICT (instance) DO UPDATE SET data = excluded.data",
                &[&instance.to_string(), data],
            )
            .await
        }
        Write::DeleteUserData(id) => {
            exec(
                tx,
                "DELETE FROM user_data WHERE instance = $1",
                &[&id.to_string()],
            )
            .await
        }
        Write::InjectedFiles { instance, .. } => {
            exec(
                tx,
                "INSERT INTO injected_files (instance, data) VALUES ($1, $2) ON CONFLICT (instance) DO UPDATE SET data = excluded.data",
                &[&instance.to_string(), &doc],
            )
            .await
        }
        Write::DeleteInjectedFiles(id) => {
            exec(
                tx,
                "DELETE FROM injected_files WHERE instance = $1",
                &[&id.to_string()],
            )
            .await
        }
        Write::Meta { key, value } => {
            exec(
                tx,
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[key, value],
            )
            .await
        }
        Write::DeleteMeta(key) => exec(tx, "DELETE FROM meta WHERE key = $1", &[key]).await,
        Write::AuditEvent(e) => {
            exec(
                tx,
                "INSERT INTO audit_events (id, account, time_ms, action, request_id, data) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO NOTHING",
                &[&e.id, &e.account, &e.time_ms, &e.action, &e.request_id, &doc],
            )
            .await
        }
        Write::Role(r) => {
            exec(
                tx,
                "INSERT INTO roles (id, account, name, data) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                &[&(r.id as i64), &r.account, &r.name, &doc],
            )
            .await
        }
        Write::DeleteRole(id) => {
            exec(tx, "DELETE FROM roles WHERE id = $1", &[&(*id as i64)]).await
        }
        Write::MfaDevice(d) => {
            exec(
                tx,
                "INSERT INTO mfa_devices (id, account, user_id, data) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, data = excluded.data",
                &[&d.id, &d.account, &d.user.map(|u| u as i64), &doc],
            )
            .await
        }
        Write::DeleteMfaDevice(id) => {
            exec(tx, "DELETE FROM mfa_devices WHERE id = $1", &[id]).await
        }
        Write::MfaFlags(f) => {
            exec(
                tx,
                "INSERT INTO mfa_flags (user_id, data) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET data = excluded.data",
                &[&(f.user as i64), &doc],
            )
            .await
        }
        Write::TempCredential(c) => {
            exec(
                tx,
                "INSERT INTO temp_credentials (id, account, expires_at_ms, data) VALUES ($1, $2, $3, $4)",
                &[&c.id, &c.account, &c.expires_at_ms, &doc],
            )
            .await
        }
        Write::SweepTempCredentials(before_ms) => {
            exec(
                tx,
                "DELETE FROM temp_credentials WHERE expires_at_ms < $1",
                &[before_ms],
            )
            .await
        }
        Write::Keystone {
            kind,
            id,
            name_key,
            data,
        } => {
            exec(
                tx,
                "INSERT INTO keystone_objects (kind, id, name_key, data) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, id) DO UPDATE SET name_key = excluded.name_key, data = excluded.data",
                &[kind, id, name_key, data],
            )
            .await
        }
        Write::DeleteKeystone { kind, id } => {
            exec(
                tx,
                "DELETE FROM keystone_objects WHERE kind = $1 AND id = $2",
                &[kind, id],
            )
            .await
        }
        // Handled in `apply`, which knows the node.
        Write::Lease { .. } | Write::Fence { .. } | Write::EndLease(_) => Ok(()),
        Write::ClientToken {
            account,
            token,
            claim,
            ..
        } => {
            exec(
                tx,
                crate::cluster::RECORD_CLAIM,
                &[account, token, claim, &doc],
            )
            .await
        }
    }
}

/// `writes` with the lease fences first, by operation ID: every transaction that locks
/// several lease rows (a group of runners' commits, a renewal) locks them in one order, so
/// none deadlocks with another.
fn fences_first<'a>(writes: &[&'a Prepared]) -> Vec<&'a Prepared> {
    let fence_key = |p: &&Prepared| match p.write {
        Write::Fence { operation, .. } => Some(operation),
        _ => None,
    };
    let mut fences: Vec<&Prepared> = writes
        .iter()
        .copied()
        .filter(|p| fence_key(p).is_some())
        .collect();
    fences.sort_by_key(|p| fence_key(p).map(|id| id.to_string()));
    fences.extend(writes.iter().copied().filter(|p| fence_key(p).is_none()));
    fences
}

/// Each job in a savepoint of one transaction: a job that fails is rolled back alone and
/// the others commit together (after a group commit failed on one stale job). `Err` only
/// when the transaction itself failed (the connection, the commit).
async fn run_each<'a>(
    client: &mut Object,
    node: &str,
    jobs: impl Iterator<Item = &'a Vec<Prepared>>,
) -> Result<Vec<Result<(), Fail>>, tokio_postgres::Error> {
    let mut tx = client.transaction().await?;
    let mut outcomes = Vec::new();
    let mut records = Vec::new();
    for writes in jobs {
        let all: Vec<&Prepared> = writes.iter().collect();
        let sp = tx.savepoint("job").await?;
        let mut failed = None;
        for w in fences_first(&all) {
            if let Err(e) = apply(&sp, node, w).await {
                failed = Some(e);
                break;
            }
        }
        match failed {
            None => {
                sp.commit().await?;
                records.extend(journal::records(writes.iter().map(|p| &p.write)));
                outcomes.push(Ok(()));
            }
            Some(e) => {
                sp.rollback().await?;
                outcomes.push(Err(e));
            }
        }
    }
    journal(&tx, node, &records).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Apply `writes` in one transaction on `client`, with their journal rows.
async fn run<'a>(
    client: &mut Object,
    node: &str,
    writes: impl Iterator<Item = &'a Prepared>,
) -> Result<(), Fail> {
    let writes: Vec<&Prepared> = writes.collect();
    let tx = client.transaction().await?;
    for w in fences_first(&writes) {
        apply(&tx, node, w).await?;
    }
    journal(
        &tx,
        node,
        &journal::records(writes.into_iter().map(|p| &p.write)),
    )
    .await?;
    Ok(tx.commit().await?)
}

/// The journal rows of a transaction's records, numbered by bumping the counter. Last
/// before the commit: the counter row's lock, which orders committers of every node, is
/// held only for the commit itself.
async fn journal(
    tx: &Transaction<'_>,
    node: &str,
    records: &[Record],
) -> Result<(), tokio_postgres::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let n = records.len() as i64;
    let bump = tx
        .prepare_cached("UPDATE change_counter SET seq = seq + $1 WHERE id = 1 RETURNING seq")
        .await?;
    let last: i64 = tx.query_one(&bump, &[&n]).await?.try_get(0)?;
    let (kinds, keys): (Vec<String>, Vec<String>) = records
        .iter()
        .map(|r| {
            let (kind, key) = r.columns();
            (kind.to_string(), key)
        })
        .unzip();
    // One statement for all rows; `at_ms` is the database's clock, the one the retention
    // sweep compares with (node clocks may differ).
    exec(
        tx,
        "INSERT INTO changes (seq, kind, key, node, at_ms) \
         SELECT $1 + t.i, t.kind, t.key, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
         FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS t(kind, key, i)",
        &[&(last - n), &node, &kinds, &keys],
    )
    .await
}

/// The writer task: take one job, then everything else already queued, commit once.
async fn writer(pool: Pool, node: String, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = shared::group(first, || rx.try_recv().ok());
        let mut client = match pool.get().await {
            Ok(c) => c,
            Err(e) => {
                let msg = e.to_string();
                for (writes, reply) in jobs {
                    let _ = reply.send((Err(StoreError::Unavailable(msg.clone())), writes));
                }
                continue;
            }
        };
        match run(&mut client, &node, jobs.iter().flat_map(|(w, _)| w)).await {
            Ok(()) => shared::committed(jobs),
            Err(e) if jobs.len() == 1 => {
                if let Some((writes, reply)) = jobs.pop() {
                    let _ = reply.send((Err(write_error(e)), writes));
                }
            }
            Err(e) if !client.is_closed() => {
                // One bad batch must not fail its neighbours: again, each job in a savepoint
                // of one transaction (one more round of statements, not one per job).
                tracing::debug!(error = %e, jobs = jobs.len(), "group commit failed; retrying with a savepoint per job");
                match run_each(&mut client, &node, jobs.iter().map(|(w, _)| w)).await {
                    Ok(outcomes) => {
                        for ((writes, reply), r) in jobs.into_iter().zip(outcomes) {
                            let _ = reply.send((r.map_err(write_error), writes));
                        }
                    }
                    Err(e) => {
                        let msg = describe(&e);
                        for (writes, reply) in jobs {
                            let _ = reply.send((Err(StoreError::Unavailable(msg.clone())), writes));
                        }
                    }
                }
            }
            Err(e) => {
                // The connection went with the group: retry each job alone on a new one.
                tracing::warn!(error = %e, jobs = jobs.len(), "group commit failed; retrying jobs one by one");
                for (writes, reply) in jobs {
                    // A group cut short by a lost connection is retried on a new one. (If
                    // its COMMIT landed and only the answer was lost, the upserts repeat
                    // harmlessly; a plain insert then reports Conflict.)
                    if client.is_closed() {
                        match pool.get().await {
                            Ok(c) => client = c,
                            Err(e) => {
                                let _ = reply.send((Err(unavailable(e)), writes));
                                continue;
                            }
                        }
                    }
                    let r = run(&mut client, &node, writes.iter()).await;
                    let _ = reply.send((r.map_err(write_error), writes));
                }
            }
        }
    }
}

impl PgStore {
    /// Connect to the database at `url` (a libpq-style URL or key=value string) and apply
    /// pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("database URL: {e}")))?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(10));
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("nubis");
        }
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(POOL_SIZE)
            .build()
            .map_err(unavailable)?;
        migrate(&pool).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let node = Uuid::new_v4().to_string();
        tokio::spawn(writer(pool.clone(), node.clone(), rx));
        Ok(Self { pool, tx, node })
    }

    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(unavailable)
    }

    /// The JSON documents of the rows whose key is among `ids` (`sql` takes them as `$1`).
    async fn by_ids<T: serde::de::DeserializeOwned + Send>(
        &self,
        sql: &str,
        ids: Vec<String>,
    ) -> Result<Vec<T>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let st = client.prepare_cached(sql).await.map_err(pg)?;
        docs(&client.query(&st, &[&ids]).await.map_err(pg)?)
    }

    /// One read-only snapshot transaction: the tables are read as of one instant. Without
    /// `fleet`, only the identity tables (for [`Store::load_identity`]).
    async fn snapshot(&self, fleet: bool) -> Result<Snapshot, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        let q = |sql: &'static str| {
            let tx = &tx;
            async move { tx.query(sql, &[]).await.map_err(pg) }
        };
        // The fleet's tables, read only for a full load.
        let fq = |sql: &'static str| {
            let tx = &tx;
            async move {
                match fleet {
                    true => tx.query(sql, &[]).await.map_err(pg),
                    false => Ok(Vec::new()),
                }
            }
        };
        let mut guests = Vec::new();
        for r in fq("SELECT instance, data FROM guests").await? {
            let id: String = r.try_get(0).map_err(pg)?;
            let data: String = r.try_get(1).map_err(pg)?;
            let id = Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            guests.push((id, data));
        }
        let text_pairs = |rows: Vec<Row>| -> Result<Vec<(String, String)>, StoreError> {
            rows.iter()
                .map(|r| Ok((r.try_get(0).map_err(pg)?, r.try_get(1).map_err(pg)?)))
                .collect()
        };
        let meta = text_pairs(q("SELECT key, value FROM meta").await?)?;
        let keystone =
            text_pairs(q("SELECT kind, data FROM keystone_objects ORDER BY seq").await?)?;
        let mut attachments = Vec::new();
        for r in q("SELECT user_id, policy_id FROM policy_attachments ORDER BY user_id, policy_id")
            .await?
        {
            attachments.push(nubis_core::Attachment {
                user: r.try_get::<_, i64>(0).map_err(pg)? as u64,
                policy: r.try_get::<_, i64>(1).map_err(pg)? as u64,
            });
        }
        let snap = Snapshot {
            keystone,
            accounts: docs(&q("SELECT data FROM accounts").await?)?,
            access_keys: docs(&q("SELECT data FROM access_keys").await?)?,
            sub_users: docs(&q("SELECT data FROM sub_users ORDER BY id").await?)?,
            policies: docs(&q("SELECT data FROM policies ORDER BY id").await?)?,
            attachments,
            instances: docs_as(
                &fq("SELECT data FROM instances WHERE state != 'terminated'").await?,
                |t| decode(t).map(std::sync::Arc::new),
            )?,
            unfinished: docs(
                &fq("SELECT data FROM operations WHERE state = 'OPERATING' ORDER BY created_at_ms, seq")
                    .await?,
            )?,
            key_pairs: docs(&fq("SELECT data FROM key_pairs").await?)?,
            placement_groups: docs(&fq("SELECT data FROM placement_groups").await?)?,
            images: docs(&fq("SELECT data FROM images").await?)?,
            instance_types: docs(&fq("SELECT data FROM instance_types").await?)?,
            quotas: docs(&q("SELECT data FROM quotas").await?)?,
            guests,
            meta,
            roles: docs(&q("SELECT data FROM roles ORDER BY id").await?)?,
            mfa_devices: docs(&q("SELECT data FROM mfa_devices ORDER BY id").await?)?,
            mfa_flags: docs(&q("SELECT data FROM mfa_flags ORDER BY user_id").await?)?,
            temp_credentials: docs(&q("SELECT data FROM temp_credentials").await?)?,
        };
        tx.commit().await.map_err(pg)?;
        Ok(snap)
    }
}

/// Every pending migration in one transaction under the advisory lock: a second node
/// starting at the same time waits, then finds them applied.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(unavailable)?;
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(&migrations::postgres(0, SCHEMA_VERSION))
        .await
        .map_err(pg)?;
    let current: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(&migrations::postgres(*version, sql))
            .await
            .map_err(pg)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(pg)?;
        tracing::info!(version, "applied migration");
    }
    tx.commit().await.map_err(pg)
}

fn bind(args: &mut Vec<Param>, v: impl ToSql + Sync + Send + 'static) -> String {
    args.push(Box::new(v));
    format!("${}", args.len())
}

/// The SQL of an audit lookup and its arguments, as SQLite's `audit_sql` (same filters, same
/// order), with PostgreSQL's JSON operators. Only fixed fragments are put into the text;
/// every value is a bound argument. With `count`, the SQL counts every match instead.
fn audit_sql(q: &AuditQuery, count: bool) -> (String, Vec<Param>) {
    let mut args: Vec<Param> = Vec::new();
    let since = bind(&mut args, q.since_ms);
    let until = bind(&mut args, q.until_ms);
    let mut sql = format!(
        "SELECT {} FROM audit_events WHERE time_ms >= {since} AND time_ms <= {until}",
        if count { "COUNT(*)" } else { "data" }
    );
    if let Some(a) = &q.account {
        let p = bind(&mut args, a.clone());
        sql.push_str(&format!(" AND account = {p}"));
    }
    if let Some(c) = q.after.as_ref().filter(|_| !count) {
        let t = bind(&mut args, c.time_ms);
        let id = bind(&mut args, c.id.clone());
        let cmp = if q.oldest_first { ">" } else { "<" };
        sql.push_str(&format!(
            " AND (time_ms {cmp} {t} OR (time_ms = {t} AND id {cmp} {id}))"
        ));
    }
    // A field of the event's JSON document, as text (NULL when absent or null, like
    // SQLite's json_extract).
    let field = |name: &str| format!("((data::jsonb)->>'{name}')");
    for f in &q.filters {
        let frag = match f {
            AuditFilter::ActionIn(names) => {
                // `= ANY` of an array: an empty list matches nothing, as SQLite's `IN ()`.
                let p = bind(&mut args, names.clone());
                format!(" AND action = ANY({p})")
            }
            AuditFilter::ActionNotIn(names) => {
                let p = bind(&mut args, names.clone());
                format!(" AND action <> ALL({p})")
            }
            AuditFilter::Cloud(v) => {
                format!(" AND {} = {}", field("cloud"), bind(&mut args, v.clone()))
            }
            AuditFilter::Action(v) => format!(" AND action = {}", bind(&mut args, v.clone())),
            AuditFilter::RequestId(v) => {
                format!(" AND request_id = {}", bind(&mut args, v.clone()))
            }
            AuditFilter::EventId(v) => format!(" AND id = {}", bind(&mut args, v.clone())),
            AuditFilter::Credential(v) => format!(
                " AND {} = {}",
                field("credential"),
                bind(&mut args, v.clone())
            ),
            AuditFilter::User(v) => {
                format!(" AND {} = {}", field("user"), bind(&mut args, v.clone()))
            }
            AuditFilter::Principal(v) => format!(
                // A role session has no sub-user either: it is not the root.
                " AND COALESCE({}, CASE WHEN {} IS NULL THEN 'root' END) = {}",
                field("sub_user"),
                field("role"),
                bind(&mut args, v.clone())
            ),
            AuditFilter::Resource(v) => format!(
                " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof((data::jsonb)->'resources') = 'array' THEN (data::jsonb)->'resources' END) r WHERE r = {})",
                bind(&mut args, v.clone())
            ),
            AuditFilter::ErrorCode(v) => format!(
                " AND COALESCE({}, '') = {}",
                field("error_code"),
                bind(&mut args, v.clone())
            ),
            AuditFilter::SourceIp(v) => format!(
                " AND {} = {}",
                field("source_ip"),
                bind(&mut args, v.clone())
            ),
            AuditFilter::Service(v) => {
                format!(" AND {} = {}", field("service"), bind(&mut args, v.clone()))
            }
            AuditFilter::ReadOnly(b) => format!(
                " AND {} = {}",
                field("read_only"),
                bind(&mut args, b.to_string())
            ),
        };
        sql.push_str(&frag);
    }
    if count {
        return (sql, args);
    }
    sql.push_str(shared::audit_order(q));
    let limit = bind(&mut args, shared::audit_limit(q));
    sql.push_str(&format!(" LIMIT {limit}"));
    (sql, args)
}

fn refs(args: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

#[async_trait]
impl Store for PgStore {
    fn cluster(&self) -> Option<&dyn crate::ClusterState> {
        Some(self)
    }

    fn host_directory(&self) -> Option<&dyn crate::HostDirectory> {
        Some(self)
    }

    fn metadefs(&self) -> Option<&dyn crate::MetadefCatalog> {
        Some(self)
    }

    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.snapshot(true).await
    }

    async fn load_identity(&self) -> Result<Snapshot, StoreError> {
        self.snapshot(false).await
    }

    fn shared(&self) -> bool {
        true
    }

    async fn journal_head(&self) -> Result<u64, StoreError> {
        let seq: i64 = self
            .client()
            .await?
            .query_one("SELECT seq FROM change_counter WHERE id = 1", &[])
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    /// One statement (one snapshot, one round trip): the counter row, joined with the rows
    /// past `cursor` (none: one row of NULLs).
    async fn changes_since(&self, cursor: u64, limit: usize) -> Result<ChangeBatch, StoreError> {
        let from = i64::try_from(cursor).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT k.seq, k.pruned, c.seq, c.kind, c.key, c.node FROM change_counter k \
                 LEFT JOIN LATERAL (SELECT seq, kind, key, node FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2) c ON true \
                 WHERE k.id = 1 ORDER BY c.seq",
            )
            .await
            .map_err(pg)?;
        let rows = client.query(&st, &[&from, &limit]).await.map_err(pg)?;
        let mut batch = ChangeBatch {
            changes: Vec::with_capacity(rows.len()),
            cursor,
            reset: false,
        };
        for r in &rows {
            let head: i64 = r.try_get(0).map_err(pg)?;
            let pruned: i64 = r.try_get(1).map_err(pg)?;
            if from < pruned {
                // Rows this node has not seen are gone: it reloads from the head.
                batch.changes.clear();
                batch.cursor = u64::try_from(head).unwrap_or(0);
                batch.reset = true;
                return Ok(batch);
            }
            let Some(seq) = r.try_get::<_, Option<i64>>(2).map_err(pg)? else {
                continue;
            };
            let kind: String = r.try_get(3).map_err(pg)?;
            let key: String = r.try_get(4).map_err(pg)?;
            let node: String = r.try_get(5).map_err(pg)?;
            let seq = u64::try_from(seq).unwrap_or(0);
            batch.cursor = batch.cursor.max(seq);
            batch.changes.push(Change {
                seq,
                own: node == self.node,
                record: Record::parse(&kind, &key),
            });
        }
        Ok(batch)
    }

    /// Rows older than `older_than_ms` by the database's clock. `pruned` moves up to the
    /// largest seq deleted, in the same statement, so no reader misses a deleted row unseen.
    async fn prune_changes(&self, older_than_ms: i64) -> Result<usize, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "WITH d AS (DELETE FROM changes \
                   WHERE at_ms < (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $1 RETURNING seq), \
                 m AS (SELECT MAX(seq) AS s, COUNT(*) AS n FROM d) \
                 UPDATE change_counter SET pruned = GREATEST(pruned, m.s) FROM m \
                 WHERE id = 1 AND m.n > 0 RETURNING m.n",
                &[&older_than_ms],
            )
            .await
            .map_err(pg)?;
        let n: i64 = match row {
            Some(r) => r.try_get(0).map_err(pg)?,
            None => 0,
        };
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn renew_leases(
        &self,
        held: &[(Uuid, u64)],
        ttl_ms: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, fences): (Vec<String>, Vec<i64>) = held
            .iter()
            .map(|(id, f)| (id.to_string(), i64::try_from(*f).unwrap_or(i64::MAX)))
            .unzip();
        let client = self.client().await?;
        let st = client
            // One statement: this node's rows renewed, locked in operation order as commits
            // lock their fences (`fences_first`); the rows now another holder's returned.
            // (The final SELECT reads the rows as they were before the update, whose
            // holders and fences it does not change.)
            .prepare_cached(&format!(
                "WITH h AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS h(id, fence)), \
                 mine AS (SELECT l.operation_id FROM operation_leases l \
                   JOIN h ON l.operation_id = h.id AND l.fence = h.fence AND l.node = $3 \
                   ORDER BY l.operation_id FOR UPDATE OF l), \
                 renewed AS (UPDATE operation_leases l SET expires_at_ms = {NOW_MS} + $4 \
                   FROM mine WHERE l.operation_id = mine.operation_id RETURNING l.operation_id) \
                 SELECT h.id FROM h JOIN operation_leases l ON l.operation_id = h.id \
                 WHERE NOT (l.fence = h.fence AND l.node = $3)"
            ))
            .await
            .map_err(pg)?;
        let rows = client
            .query(&st, &[&ids, &fences, &self.node, &ttl_ms])
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(pg)?;
                Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// One statement: the candidates (unfinished, lease missing or expired; in operation
    /// order, the order every transaction locks lease rows in) are upserted;
    /// the conflict arm re-checks the expiry on the row as it is when its lock is granted,
    /// so of two nodes racing for one operation only the first gets it.
    async fn take_over_leases(
        &self,
        ttl_ms: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let st = client
            .prepare_cached(&format!(
                "INSERT INTO operation_leases (operation_id, node, expires_at_ms, fence) \
                 SELECT o.id, $1, {NOW_MS} + $2, 1 FROM operations o \
                 LEFT JOIN operation_leases l ON l.operation_id = o.id \
                 WHERE o.state = 'OPERATING' AND (l.operation_id IS NULL OR l.expires_at_ms < {NOW_MS}) \
                 ORDER BY o.id LIMIT $3 \
                 ON CONFLICT (operation_id) DO UPDATE SET node = excluded.node, \
                   expires_at_ms = excluded.expires_at_ms, fence = operation_leases.fence + 1 \
                 WHERE operation_leases.expires_at_ms < {NOW_MS} \
                 RETURNING operation_id, fence"
            ))
            .await
            .map_err(pg)?;
        let rows = client
            .query(&st, &[&self.node, &ttl_ms, &limit])
            .await
            .map_err(pg)?;
        // Leases of operations that ended without their runner (superseded, or finished by
        // a node that then lost its lease) are forgotten once long expired.
        let sweep = client
            .prepare_cached(&format!(
                "DELETE FROM operation_leases l WHERE l.expires_at_ms < {NOW_MS} - 60000 \
                 AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.id = l.operation_id AND o.state = 'OPERATING')"
            ))
            .await
            .map_err(pg)?;
        client.execute(&sweep, &[]).await.map_err(pg)?;
        let mut taken: Vec<(Uuid, u64)> = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get(0).map_err(pg)?;
            let fence: i64 = r.try_get(1).map_err(pg)?;
            let id = Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            taken.push((id, u64::try_from(fence).unwrap_or(0)));
        }
        Ok(taken)
    }

    async fn guest(&self, id: Uuid) -> Result<Option<serde_json::Value>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached("SELECT data FROM guests WHERE instance = $1")
            .await
            .map_err(pg)?;
        match client
            .query_opt(&st, &[&id.to_string()])
            .await
            .map_err(pg)?
        {
            Some(r) => Ok(Some(decode(&r.try_get::<_, String>(0).map_err(pg)?)?)),
            None => Ok(None),
        }
    }

    async fn operations(&self, ids: &[Uuid]) -> Result<Vec<Operation>, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        self.by_ids("SELECT data FROM operations WHERE id = ANY($1)", ids)
            .await
    }

    async fn key_pairs(&self, ids: &[String]) -> Result<Vec<KeyPair>, StoreError> {
        self.by_ids(
            "SELECT data FROM key_pairs WHERE id = ANY($1)",
            ids.to_vec(),
        )
        .await
    }

    async fn images(&self, ids: &[String]) -> Result<Vec<Image>, StoreError> {
        self.by_ids("SELECT data FROM images WHERE id = ANY($1)", ids.to_vec())
            .await
    }

    async fn system_events(&self, q: EventQuery) -> Result<Vec<SystemEvent>, StoreError> {
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let instance = q.instance.map(|i| i.to_string());
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT data FROM system_events WHERE account = $1 AND not_before_ms >= $2 \
                 AND ($3::TEXT IS NULL OR instance = $3) ORDER BY published_at_ms DESC, id DESC LIMIT $4",
            )
            .await
            .map_err(pg)?;
        let rows = client
            .query(&st, &[&q.account, &q.not_before_from, &instance, &limit])
            .await
            .map_err(pg)?;
        docs(&rows)
    }

    async fn system_events_by_id(&self, ids: &[String]) -> Result<Vec<SystemEvent>, StoreError> {
        self.by_ids(
            "SELECT data FROM system_events WHERE id = ANY($1)",
            ids.to_vec(),
        )
        .await
    }

    async fn placement_groups(&self, ids: &[String]) -> Result<Vec<PlacementGroup>, StoreError> {
        self.by_ids(
            "SELECT data FROM placement_groups WHERE id = ANY($1)",
            ids.to_vec(),
        )
        .await
    }

    async fn instance_types(&self, ids: &[String]) -> Result<Vec<Flavor>, StoreError> {
        self.by_ids(
            "SELECT data FROM instance_types WHERE id = ANY($1)",
            ids.to_vec(),
        )
        .await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        shared::commit(writes, |job| self.tx.send(job).is_ok()).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client()
            .await?
            .query_one("SELECT 1", &[])
            .await
            .map_err(pg)
            .map(drop)
    }

    async fn operations_of_instance(
        &self,
        instance: Uuid,
        limit: usize,
    ) -> Result<Vec<Operation>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT data FROM operations WHERE instance = $1 ORDER BY created_at_ms DESC, seq DESC LIMIT $2",
            )
            .await
            .map_err(pg)?;
        let rows = client
            .query(&st, &[&instance.to_string(), &limit])
            .await
            .map_err(pg)?;
        docs(&rows)
    }

    async fn operations_of_request(&self, request_id: &str) -> Result<Vec<Operation>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached("SELECT data FROM operations WHERE request_id = $1 ORDER BY seq")
            .await
            .map_err(pg)?;
        let rows = client.query(&st, &[&request_id]).await.map_err(pg)?;
        docs(&rows)
    }

    async fn migrations(
        &self,
        instance: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(i64, Operation)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let instance = instance.map(|i| i.to_string());
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT m.seq, o.data FROM migrations m JOIN operations o ON o.id = m.operation \
                 WHERE $1::TEXT IS NULL OR m.instance = $1 ORDER BY m.seq DESC LIMIT $2",
            )
            .await
            .map_err(pg)?;
        let rows = client.query(&st, &[&instance, &limit]).await.map_err(pg)?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get(0).map_err(pg)?;
                Ok((n, decode(&r.try_get::<_, String>(1).map_err(pg)?)?))
            })
            .collect()
    }

    async fn audit_events(&self, q: AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let (sql, args) = audit_sql(&q, false);
        let client = self.client().await?;
        let rows = client.query(&sql, &refs(&args)).await.map_err(pg)?;
        docs(&rows)
    }

    async fn count_audit_events(&self, q: AuditQuery) -> Result<u64, StoreError> {
        let (sql, args) = audit_sql(&q, true);
        let client = self.client().await?;
        let n: i64 = client
            .query_one(&sql, &refs(&args))
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Beside the writer task (row locks, not a database lock), in bounded batches.
    async fn sweep_audit(&self, before_ms: i64, max: usize) -> Result<usize, StoreError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM audit_events WHERE id IN \
                 (SELECT id FROM audit_events WHERE time_ms < $1 ORDER BY time_ms LIMIT $2)",
                &[&before_ms, &max],
            )
            .await
            .map_err(pg)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn user_data(&self, instance: Uuid) -> Result<Option<String>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT data FROM user_data WHERE instance = $1",
                &[&instance.to_string()],
            )
            .await
            .map_err(pg)?;
        row.map(|r| r.try_get(0).map_err(pg)).transpose()
    }

    async fn injected_files(&self, instance: Uuid) -> Result<Vec<InjectedFile>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT data FROM injected_files WHERE instance = $1",
                &[&instance.to_string()],
            )
            .await
            .map_err(pg)?;
        match row {
            Some(r) => decode(&r.try_get::<_, String>(0).map_err(pg)?),
            None => Ok(Vec::new()),
        }
    }

    async fn instances(&self, ids: &[Uuid]) -> Result<Vec<Instance>, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows = self
            .client()
            .await?
            .query("SELECT data FROM instances WHERE uuid = ANY($1)", &[&ids])
            .await
            .map_err(pg)?;
        docs(&rows)
    }
}
