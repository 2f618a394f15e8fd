//! SQLite backend: WAL, fsync on commit, and group commit — one writer thread drains every
//! batch waiting in its queue into a single transaction, so concurrent requests share an fsync.

use crate::migrations::{MIGRATIONS, SCHEMA_VERSION};
use crate::shared::{self, Job, Prepared, decode, unavailable};
use crate::{EventQuery, Snapshot, Store, StoreError, Write};
use async_trait::async_trait;
use nubis_core::audit::{AuditEvent, AuditFilter, AuditQuery};
use nubis_core::events::SystemEvent;
use nubis_core::flavors::Flavor;
use nubis_core::groups::PlacementGroup;
use nubis_core::images::Image;
use nubis_core::{Action, InjectedFile, Instance, KeyPair, Operation};
use rusqlite::types::FromSql;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub struct SqliteStore {
    tx: mpsc::Sender<Job>,
    /// Reads use their own connection: WAL lets them run beside the writer.
    reader: Arc<Mutex<Connection>>,
}

/// Why a batch did not apply: the database's error, or an instance write whose generation
/// does not follow the stored one (`shared::stale`).
#[derive(Debug)]
enum Fail {
    Db(rusqlite::Error),
    Stale(String),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e)
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Db(e) => e.fmt(f),
            Self::Stale(m) => f.write_str(m),
        }
    }
}

/// A failed write: a broken uniqueness constraint or a stale instance generation is a
/// [`StoreError::Conflict`] (the caller's domain error), anything else the store being
/// unavailable.
fn write_error(e: Fail) -> StoreError {
    match e {
        Fail::Stale(m) => StoreError::Conflict(m),
        Fail::Db(e) => match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
            _ => unavailable(e),
        },
    }
}

/// [`write_error`] of a plain database error (the cluster-state tables' writes).
pub(crate) fn db_write_error(e: rusqlite::Error) -> StoreError {
    write_error(Fail::Db(e))
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(unavailable)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=4000;",
    )
    .map_err(unavailable)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA_VERSION).map_err(unavailable)?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction().map_err(unavailable)?;
        tx.execute_batch(sql).map_err(unavailable)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )
        .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        tracing::info!(version, "applied migration");
    }
    Ok(())
}

/// Upserts update rows in place (no delete + insert of the row and its index entries), and
/// statements are prepared once per connection.
fn apply(tx: &rusqlite::Transaction<'_>, p: &Prepared) -> Result<(), Fail> {
    let doc = p.doc.as_str();
    match &p.write {
        Write::Account(a) => {
            // The bootstrap admin has no cloud numbers: NULL, so the unique indexes ignore it.
            let uin = (a.tencent_owner_uin != 0).then_some(a.tencent_owner_uin as i64);
            let app = (a.tencent_app_id != 0).then_some(a.tencent_app_id as i64);
            let ali = (!a.aliyun_account_id.is_empty()).then_some(a.aliyun_account_id.as_str());
            // Accounts, sub-users and policies are written once and never updated: a plain
            // insert, so a second node creating the same ID or name gets a constraint
            // violation (StoreError::Conflict), not a silent overwrite.
            tx.prepare_cached(
                "INSERT INTO accounts (id, data, tencent_owner_uin, tencent_app_id, aliyun_account_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![a.id, doc, uin, app, ali])?;
        }
        Write::DeleteAccount(id) => {
            tx.prepare_cached("DELETE FROM accounts WHERE id = ?1")?
                .execute([id])?;
        }
        Write::Quota(q) => {
            tx.prepare_cached(
                "INSERT INTO quotas (account, data) VALUES (?1, ?2) ON CONFLICT(account) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![q.account, doc])?;
        }
        Write::DeleteQuota(account) => {
            tx.prepare_cached("DELETE FROM quotas WHERE account = ?1")?
                .execute([account])?;
        }
        Write::SubUser(u) => {
            tx.prepare_cached(
                "INSERT INTO sub_users (id, account, name, data) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![u.id as i64, u.account, u.name, doc])?;
        }
        Write::DeleteSubUser(id) => {
            tx.prepare_cached("DELETE FROM sub_users WHERE id = ?1")?
                .execute([*id as i64])?;
        }
        Write::Policy(p) => {
            tx.prepare_cached(
                "INSERT INTO policies (id, account, name, data) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![p.id as i64, p.account, p.name, doc])?;
        }
        Write::DeletePolicy(id) => {
            tx.prepare_cached("DELETE FROM policies WHERE id = ?1")?
                .execute([*id as i64])?;
        }
        Write::Attach(a) => {
            tx.prepare_cached(
                "INSERT INTO policy_attachments (user_id, policy_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![a.user as i64, a.policy as i64])?;
        }
        Write::Detach(a) => {
            tx.prepare_cached(
                "DELETE FROM policy_attachments WHERE user_id = ?1 AND policy_id = ?2",
            )?
            .execute(params![a.user as i64, a.policy as i64])?;
        }
        Write::AccessKey(k) => {
            tx.prepare_cached(
                "INSERT INTO access_keys (id, account, data, user_id) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![k.id, k.account, doc, k.user.map(|u| u as i64)])?;
        }
        Write::DeleteAccessKey(id) => {
            tx.prepare_cached("DELETE FROM access_keys WHERE id = ?1")?
                .execute([id])?;
        }
        Write::Instance(i) => {
            // Conditional (docs/postgres.md, "Generations"): an update lands only over the
            // generation before this one; otherwise no row changes and the batch fails.
            let changed = tx
                .prepare_cached(
                    "INSERT INTO instances (uuid, account, tencent_id, aliyun_id, state, data, generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT(uuid) DO UPDATE SET state = excluded.state, data = excluded.data, generation = excluded.generation \
                     WHERE instances.generation = excluded.generation - 1",
                )?
                .execute(params![i.uuid.to_string(), i.account, i.tencent_id, i.aliyun_id, i.state.as_str(), doc, shared::generation(i)])?;
            if changed == 0 {
                return Err(Fail::Stale(shared::stale(i)));
            }
        }
        Write::Image(i) => {
            // Conditional like an instance's write (migration 0014).
            let changed = tx
                .prepare_cached(
                    "INSERT INTO images (id, uuid, account, status, generation, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT(id) DO UPDATE SET status = excluded.status, data = excluded.data, generation = excluded.generation \
                     WHERE images.generation = excluded.generation - 1",
                )?
                .execute(params![i.id, i.uuid.to_string(), i.account.as_deref().unwrap_or(""), i.status.glance(), shared::image_generation(i), doc])?;
            if changed == 0 {
                return Err(Fail::Stale(shared::stale_image(i)));
            }
        }
        Write::SystemEvent(e) => {
            // Conditional like an image's write (migration 0019).
            let changed = tx
                .prepare_cached(
                    "INSERT INTO system_events (id, account, instance, generation, published_at_ms, not_before_ms, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT(id) DO UPDATE SET data = excluded.data, generation = excluded.generation \
                     WHERE system_events.generation = excluded.generation - 1",
                )?
                .execute(params![e.id, e.account, e.instance.to_string(), shared::event_generation(e), e.published_at_ms, e.not_before_ms, doc])?;
            if changed == 0 {
                return Err(Fail::Stale(shared::stale_event(e)));
            }
        }
        Write::Operation(o) => {
            tx.prepare_cached(
                "INSERT INTO operations (id, request_id, instance, state, created_at_ms, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT(id) DO UPDATE SET state = excluded.state, data = excluded.data",
            )?
            .execute(params![o.id.to_string(), o.request_id, o.instance.to_string(), o.state.as_str(), o.created_at_ms, doc])?;
            if o.action == Action::Resize {
                tx.prepare_cached(MIGRATION_INSERT)?.execute(params![
                    o.id.to_string(),
                    o.instance.to_string(),
                    o.created_at_ms
                ])?;
            }
        }
        Write::KeyPair(k) => {
            tx.prepare_cached(
                "INSERT INTO key_pairs (id, account, data) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![k.id, k.account, doc])?;
        }
        Write::DeleteKeyPair(id) => {
            tx.prepare_cached("DELETE FROM key_pairs WHERE id = ?1")?
                .execute([id])?;
        }
        Write::PlacementGroup(g) => {
            tx.prepare_cached(
                "INSERT INTO placement_groups (id, account, data) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![g.id, g.account, doc])?;
        }
        Write::DeletePlacementGroup(id) => {
            tx.prepare_cached("DELETE FROM placement_groups WHERE id = ?1")?
                .execute([id])?;
        }
        Write::InstanceType(f) => {
            tx.prepare_cached(
                "INSERT INTO instance_types (id, data) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![f.id, doc])?;
        }
        Write::DeleteInstanceType(id) => {
            tx.prepare_cached("DELETE FROM instance_types WHERE id = ?1")?
                .execute([id])?;
        }
        Write::Guest { instance, .. } => {
            tx.prepare_cached("INSERT INTO guests (instance, data) VALUES (?1, ?2) ON CONFLICT(instance) DO UPDATE SET data = excluded.data")?
                .execute(params![instance.to_string(), doc])?;
        }
        Write::DeleteGuest(id) => {
            tx.prepare_cached("DELETE FROM guests WHERE instance = ?1")?
                .execute([id.to_string()])?;
        }
        Write::UserData { instance, data } => {
            tx.prepare_cached("INSERT INTO user_data (instance, data) VALUES (?1, ?2) ON CONFLICT(instance) DO UPDATE SET data = excluded.data")?
                .execute(params![instance.to_string(), data])?;
        }
        Write::DeleteUserData(id) => {
            tx.prepare_cached("DELETE FROM user_data WHERE instance = ?1")?
                .execute([id.to_string()])?;
        }
        Write::InjectedFiles { instance, .. } => {
            tx.prepare_cached("INSERT INTO injected_files (instance, data) VALUES (?1, ?2) ON CONFLICT(instance) DO UPDATE SET data = excluded.data")?
                .execute(params![instance.to_string(), doc])?;
        }
        Write::DeleteInjectedFiles(id) => {
            tx.prepare_cached("DELETE FROM injected_files WHERE instance = ?1")?
                .execute([id.to_string()])?;
        }
        Write::Meta { key, value } => {
            tx.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
                .execute(params![key, value])?;
        }
        Write::DeleteMeta(key) => {
            tx.prepare_cached("DELETE FROM meta WHERE key = ?1")?
                .execute([key])?;
        }
        Write::AuditEvent(e) => {
            tx.prepare_cached(
                "INSERT INTO audit_events (id, account, time_ms, action, request_id, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT(id) DO NOTHING",
            )?
            .execute(params![e.id, e.account, e.time_ms, e.action, e.request_id, doc])?;
        }
        Write::Role(r) => {
            tx.prepare_cached(
                "INSERT INTO roles (id, account, name, data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![r.id as i64, r.account, r.name, doc])?;
        }
        Write::DeleteRole(id) => {
            tx.prepare_cached("DELETE FROM roles WHERE id = ?1")?
                .execute([*id as i64])?;
        }
        Write::MfaDevice(d) => {
            tx.prepare_cached(
                "INSERT INTO mfa_devices (id, account, user_id, data) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, data = excluded.data",
            )?
            .execute(params![d.id, d.account, d.user.map(|u| u as i64), doc])?;
        }
        Write::DeleteMfaDevice(id) => {
            tx.prepare_cached("DELETE FROM mfa_devices WHERE id = ?1")?
                .execute([id])?;
        }
        Write::MfaFlags(f) => {
            tx.prepare_cached(
                "INSERT INTO mfa_flags (user_id, data) VALUES (?1, ?2) ON CONFLICT(user_id) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![f.user as i64, doc])?;
        }
        Write::TempCredential(c) => {
            tx.prepare_cached(
                "INSERT INTO temp_credentials (id, account, expires_at_ms, data) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![c.id, c.account, c.expires_at_ms, doc])?;
        }
        Write::SweepTempCredentials(before_ms) => {
            tx.prepare_cached("DELETE FROM temp_credentials WHERE expires_at_ms < ?1")?
                .execute([*before_ms])?;
        }
        Write::Keystone {
            kind,
            id,
            name_key,
            data,
        } => {
            tx.prepare_cached("INSERT INTO keystone_objects (kind, id, name_key, data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(kind, id) DO UPDATE SET name_key = excluded.name_key, data = excluded.data")?
                .execute(params![kind, id, name_key, data])?;
        }
        Write::DeleteKeystone { kind, id } => {
            tx.prepare_cached("DELETE FROM keystone_objects WHERE kind = ?1 AND id = ?2")?
                .execute(params![kind, id])?;
        }
        // One process runs every operation: no leases to keep or check.
        Write::Lease { .. } | Write::Fence { .. } | Write::EndLease(_) => {}
        Write::ClientToken {
            account,
            token,
            claim,
            ..
        } => {
            tx.prepare_cached(&crate::cluster::RECORD_CLAIM.replace('$', "?"))?
                .execute(params![account, token, claim, doc])?;
        }
    }
    Ok(())
}

/// The operations to resume at start-up, oldest first (through migration 0020's partial
/// index: never a walk of every operation ever run).
const RUNNING_OPERATIONS: &str =
    "SELECT data FROM operations WHERE state = 'OPERATING' ORDER BY created_at_ms";

/// The writer thread: take one job, then everything else already queued, commit once.
fn writer(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let jobs = shared::group(first, || rx.try_recv().ok());
        let result = (|| -> Result<(), Fail> {
            let tx = conn.transaction()?;
            for (writes, _) in &jobs {
                for w in writes {
                    apply(&tx, w)?;
                }
            }
            Ok(tx.commit()?)
        })();
        match result {
            Ok(()) => shared::committed(jobs),
            Err(e) => {
                // One bad batch must not fail its neighbours: retry each job alone.
                tracing::warn!(error = %e, jobs = jobs.len(), "group commit failed; retrying jobs one by one");
                for (writes, reply) in jobs {
                    let r = (|| -> Result<(), Fail> {
                        let tx = conn.transaction()?;
                        for w in &writes {
                            apply(&tx, w)?;
                        }
                        Ok(tx.commit()?)
                    })();
                    let _ = reply.send((r.map_err(write_error), writes));
                }
            }
        }
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and apply pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = open(path)?;
        migrate(&mut conn)?;
        let reader = open(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("nubis-sqlite-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(unavailable)?;
        Ok(Self {
            tx,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| StoreError::Unavailable("reader poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(unavailable)?
    }
}

fn all<T: serde::de::DeserializeOwned + Send>(
    conn: &Connection,
    sql: &str,
) -> Result<Vec<T>, StoreError> {
    all_as(conn, sql, decode)
}

/// Every row's first column, decoded by `decode` as the rows come (`shared::decode_rows`).
fn all_as<T: Send>(
    conn: &Connection,
    sql: &str,
    decode: impl Fn(&str) -> Result<T, StoreError> + Sync,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    shared::decode_rows(rows.map(|r| r.map_err(unavailable)), decode)
}

/// Every row of a query of two columns.
fn pairs<A: FromSql, B: FromSql>(conn: &Connection, sql: &str) -> Result<Vec<(A, B)>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, A>(0)?, r.get::<_, B>(1)?)))
        .map_err(unavailable)?;
    rows.map(|r| r.map_err(unavailable)).collect()
}

fn attachments(conn: &Connection) -> Result<Vec<nubis_core::Attachment>, StoreError> {
    let rows: Vec<(i64, i64)> = pairs(
        conn,
        "SELECT user_id, policy_id FROM policy_attachments ORDER BY user_id, policy_id",
    )?;
    Ok(rows
        .into_iter()
        .map(|(user, policy)| nubis_core::Attachment {
            user: user as u64,
            policy: policy as u64,
        })
        .collect())
}

/// A resize's migration row, once (its number is kept when the operation is rewritten).
const MIGRATION_INSERT: &str = "INSERT INTO migrations (operation, instance, created_at_ms) \
     VALUES (?1, ?2, ?3) ON CONFLICT(operation) DO NOTHING";

fn ops(conn: &Connection, sql: &str, arg: &str) -> Result<Vec<Operation>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map([arg], |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    rows.map(|r| decode(&r.map_err(unavailable)?)).collect()
}

/// The documents of the rows `sql` finds for each of `ids` (one lookup each; absent: none).
fn by_ids<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    ids: &[String],
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let data: Option<String> = stmt
            .query_row([id], |r| r.get(0))
            .optional()
            .map_err(unavailable)?;
        if let Some(d) = data {
            out.push(decode(&d)?);
        }
    }
    Ok(out)
}

/// The SQL of an audit lookup and its arguments. Only fixed fragments are put into the text;
/// every value is a bound argument.
/// With `count`, the SQL counts every match instead (the cursor, order and limit aside).
fn audit_sql(q: &AuditQuery, count: bool) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let mut sql = format!(
        "SELECT {} FROM audit_events WHERE time_ms >= ? AND time_ms <= ?",
        if count { "COUNT(*)" } else { "data" }
    );
    let mut args = vec![V::Integer(q.since_ms), V::Integer(q.until_ms)];
    if let Some(a) = &q.account {
        sql.push_str(" AND account = ?");
        args.push(V::Text(a.clone()));
    }
    if let Some(c) = q.after.as_ref().filter(|_| !count) {
        sql.push_str(if q.oldest_first {
            " AND (time_ms > ? OR (time_ms = ? AND id > ?))"
        } else {
            " AND (time_ms < ? OR (time_ms = ? AND id < ?))"
        });
        args.extend([
            V::Integer(c.time_ms),
            V::Integer(c.time_ms),
            V::Text(c.id.clone()),
        ]);
    }
    for f in &q.filters {
        let (frag, arg) = match f {
            AuditFilter::ActionIn(names) | AuditFilter::ActionNotIn(names) => {
                let not = if matches!(f, AuditFilter::ActionNotIn(_)) {
                    " NOT"
                } else {
                    ""
                };
                let marks = vec!["?"; names.len()].join(", ");
                sql.push_str(&format!(" AND action{not} IN ({marks})"));
                args.extend(names.iter().map(|n| V::Text(n.clone())));
                continue;
            }
            AuditFilter::Cloud(v) => (" AND json_extract(data, '$.cloud') = ?", V::Text(v.clone())),
            AuditFilter::Action(v) => (" AND action = ?", V::Text(v.clone())),
            AuditFilter::RequestId(v) => (" AND request_id = ?", V::Text(v.clone())),
            AuditFilter::EventId(v) => (" AND id = ?", V::Text(v.clone())),
            AuditFilter::Credential(v) => (
                " AND json_extract(data, '$.credential') = ?",
                V::Text(v.clone()),
            ),
            AuditFilter::User(v) => (" AND json_extract(data, '$.user') = ?", V::Text(v.clone())),
            AuditFilter::Principal(v) => (
                // A role session has no sub-user either: it is not the root.
                " AND COALESCE(CAST(json_extract(data, '$.sub_user') AS TEXT), \
                 CASE WHEN json_extract(data, '$.role') IS NULL THEN 'root' END) = ?",
                V::Text(v.clone()),
            ),
            AuditFilter::Resource(v) => (
                " AND EXISTS (SELECT 1 FROM json_each(audit_events.data, '$.resources') r WHERE r.value = ?)",
                V::Text(v.clone()),
            ),
            AuditFilter::ErrorCode(v) => (
                " AND COALESCE(json_extract(data, '$.error_code'), '') = ?",
                V::Text(v.clone()),
            ),
            AuditFilter::SourceIp(v) => (
                " AND json_extract(data, '$.source_ip') = ?",
                V::Text(v.clone()),
            ),
            AuditFilter::Service(v) => (
                " AND json_extract(data, '$.service') = ?",
                V::Text(v.clone()),
            ),
            AuditFilter::ReadOnly(b) => (
                " AND json_extract(data, '$.read_only') = ?",
                V::Integer(i64::from(*b)),
            ),
        };
        sql.push_str(frag);
        args.push(arg);
    }
    if count {
        return (sql, args);
    }
    sql.push_str(shared::audit_order(q));
    sql.push_str(" LIMIT ?");
    args.push(V::Integer(shared::audit_limit(q)));
    (sql, args)
}

#[async_trait]
impl Store for SqliteStore {
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
        self.read(|conn| {
            let mut guests = Vec::new();
            for (id, data) in pairs::<String, String>(conn, "SELECT instance, data FROM guests")? {
                let id = Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                guests.push((id, data));
            }
            let meta = pairs(conn, "SELECT key, value FROM meta")?;
            let keystone = pairs(
                conn,
                "SELECT kind, data FROM keystone_objects ORDER BY rowid",
            )?;
            Ok(Snapshot {
                keystone,
                accounts: all(conn, "SELECT data FROM accounts")?,
                access_keys: all(conn, "SELECT data FROM access_keys")?,
                sub_users: all(conn, "SELECT data FROM sub_users ORDER BY id")?,
                policies: all(conn, "SELECT data FROM policies ORDER BY id")?,
                attachments: attachments(conn)?,
                instances: all_as(
                    conn,
                    "SELECT data FROM instances WHERE state != 'terminated'",
                    |t| decode(t).map(Arc::new),
                )?,
                unfinished: all(conn, RUNNING_OPERATIONS)?,
                key_pairs: all(conn, "SELECT data FROM key_pairs")?,
                placement_groups: all(conn, "SELECT data FROM placement_groups")?,
                images: all(conn, "SELECT data FROM images")?,
                instance_types: all(conn, "SELECT data FROM instance_types")?,
                quotas: all(conn, "SELECT data FROM quotas")?,
                guests,
                meta,
                roles: all(conn, "SELECT data FROM roles ORDER BY id")?,
                mfa_devices: all(conn, "SELECT data FROM mfa_devices ORDER BY id")?,
                mfa_flags: all(conn, "SELECT data FROM mfa_flags ORDER BY user_id")?,
                temp_credentials: all(conn, "SELECT data FROM temp_credentials")?,
            })
        })
        .await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        shared::commit(writes, |job| self.tx.send(job).is_ok()).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn operations_of_instance(
        &self,
        instance: Uuid,
        limit: usize,
    ) -> Result<Vec<Operation>, StoreError> {
        let sql = format!(
            "SELECT data FROM operations WHERE instance = ?1 ORDER BY created_at_ms DESC, rowid DESC LIMIT {limit}"
        );
        self.read(move |conn| ops(conn, &sql, &instance.to_string()))
            .await
    }

    async fn operations_of_request(&self, request_id: &str) -> Result<Vec<Operation>, StoreError> {
        let rid = request_id.to_string();
        self.read(move |conn| {
            ops(
                conn,
                "SELECT data FROM operations WHERE request_id = ?1 ORDER BY rowid",
                &rid,
            )
        })
        .await
    }

    async fn migrations(
        &self,
        instance: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(i64, Operation)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT m.rowid, o.data FROM migrations m JOIN operations o ON o.id = m.operation \
                     WHERE ?1 IS NULL OR m.instance = ?1 ORDER BY m.rowid DESC LIMIT ?2",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![instance.map(|i| i.to_string()), limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(unavailable)?;
            rows.map(|r| {
                let (n, data) = r.map_err(unavailable)?;
                Ok((n, decode(&data)?))
            })
            .collect()
        })
        .await
    }

    async fn audit_events(&self, q: AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let (sql, args) = audit_sql(&q, false);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.map(|r| decode(&r.map_err(unavailable)?)).collect()
        })
        .await
    }

    async fn count_audit_events(&self, q: AuditQuery) -> Result<u64, StoreError> {
        let (sql, args) = audit_sql(&q, true);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
            let n: i64 = stmt
                .query_row(rusqlite::params_from_iter(args), |r| r.get(0))
                .map_err(unavailable)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// On the reader connection (WAL: one writer at a time, `busy_timeout` waits for the
    /// writer thread's transaction), in bounded batches so the writer is never held long.
    async fn sweep_audit(&self, before_ms: i64, max: usize) -> Result<usize, StoreError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.read(move |conn| {
            conn.execute(
                "DELETE FROM audit_events WHERE id IN \
                 (SELECT id FROM audit_events WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2)",
                params![before_ms, max],
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn operations(&self, ids: &[Uuid]) -> Result<Vec<Operation>, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        self.read(move |conn| by_ids(conn, "SELECT data FROM operations WHERE id = ?1", &ids))
            .await
    }

    async fn key_pairs(&self, ids: &[String]) -> Result<Vec<KeyPair>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |conn| by_ids(conn, "SELECT data FROM key_pairs WHERE id = ?1", &ids))
            .await
    }

    async fn images(&self, ids: &[String]) -> Result<Vec<Image>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |conn| by_ids(conn, "SELECT data FROM images WHERE id = ?1", &ids))
            .await
    }

    async fn system_events(&self, q: EventQuery) -> Result<Vec<SystemEvent>, StoreError> {
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let instance = q.instance.map(|i| i.to_string());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT data FROM system_events WHERE account = ?1 AND not_before_ms >= ?2 \
                     AND (?3 IS NULL OR instance = ?3) ORDER BY published_at_ms DESC, id DESC LIMIT ?4",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![q.account, q.not_before_from, instance, limit], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(unavailable)?;
            rows.map(|r| decode(&r.map_err(unavailable)?)).collect()
        })
        .await
    }

    async fn system_events_by_id(&self, ids: &[String]) -> Result<Vec<SystemEvent>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |conn| by_ids(conn, "SELECT data FROM system_events WHERE id = ?1", &ids))
            .await
    }

    async fn placement_groups(&self, ids: &[String]) -> Result<Vec<PlacementGroup>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |conn| {
            by_ids(
                conn,
                "SELECT data FROM placement_groups WHERE id = ?1",
                &ids,
            )
        })
        .await
    }

    async fn instance_types(&self, ids: &[String]) -> Result<Vec<Flavor>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |conn| by_ids(conn, "SELECT data FROM instance_types WHERE id = ?1", &ids))
            .await
    }

    async fn user_data(&self, instance: Uuid) -> Result<Option<String>, StoreError> {
        let id = instance.to_string();
        self.read(move |conn| {
            conn.query_row(
                "SELECT data FROM user_data WHERE instance = ?1",
                [&id],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    async fn injected_files(&self, instance: Uuid) -> Result<Vec<InjectedFile>, StoreError> {
        let id = instance.to_string();
        let text = self
            .read(move |conn| {
                conn.query_row(
                    "SELECT data FROM injected_files WHERE instance = ?1",
                    [&id],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(unavailable)
            })
            .await?;
        text.map_or_else(|| Ok(Vec::new()), |t| decode(&t))
    }

    async fn instances(&self, ids: &[Uuid]) -> Result<Vec<Instance>, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT data FROM instances WHERE uuid = ?1")
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                let found = stmt
                    .query_row([id], |r| r.get::<_, String>(0))
                    .optional()
                    .map_err(unavailable)?;
                if let Some(data) = found {
                    out.push(decode(&data)?);
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_operations_are_read_through_their_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("plan.db")).unwrap();
        migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {RUNNING_OPERATIONS}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("operations_running")),
            "{plan:?}"
        );
    }
}
