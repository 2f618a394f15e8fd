//! The store's cases, each run against both backends: a SQLite file in a temporary directory
//! (`sqlite::…`) and a fresh PostgreSQL database (`postgres::…`) made on the server named by
//! `NUBIS_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and dropped
//! when the case ends. An unreachable PostgreSQL fails the `postgres::` cases: never skipped.

use nubis_core::{Account, KeyPair};
use nubis_store::{EventQuery, PgStore, SqliteStore, Store, StoreError, Write};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One database of a case, which stores are opened on (again and again: a reopen is a
/// restart).
struct Db {
    dir: tempfile::TempDir,
    pg: Option<PgDb>,
}

impl Db {
    async fn new(backend: Backend) -> Self {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDb::create().await),
        };
        Db {
            dir: tempfile::tempdir().unwrap(),
            pg,
        }
    }

    async fn open(&self) -> Arc<dyn Store> {
        match &self.pg {
            None => Arc::new(SqliteStore::open(&self.dir.path().join("n.db")).unwrap()),
            Some(pg) => Arc::new(PgStore::open(&pg.url).await.unwrap()),
        }
    }
}

fn server_url() -> String {
    std::env::var("NUBIS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..host_end])
}

async fn admin_client() -> tokio_postgres::Client {
    let url = server_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} (NUBIS_TEST_DATABASE_URL): {e}"));
    tokio::spawn(conn);
    client
}

/// A database of its own, with a random name, dropped on drop (even when the case panics).
struct PgDb {
    name: String,
    url: String,
}

impl PgDb {
    async fn create() -> Self {
        let name = format!("nubis_test_{}", uuid::Uuid::new_v4().simple());
        admin_client()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        PgDb {
            url: with_database(&server_url(), &name),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs inside the case's runtime, which cannot be blocked on: a thread of its own.
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async { admin_client().await.batch_execute(&sql).await })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {done:?}", self.name);
        }
    }
}

/// Each case once per backend: `sqlite::case` and `postgres::case`.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(super::Backend::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(super::Backend::Postgres).await
            })*
        }
    };
}

on_both_backends!(
    writes_survive_reopen_and_migrations_run_once,
    concurrent_commits_are_grouped_and_all_land,
    a_conflicting_batch_fails_alone_and_commits_nothing,
    user_data_round_trips_and_is_deleted,
    injected_files_round_trip_and_are_deleted,
    a_database_from_before_tenancy_is_migrated,
    operations_and_directory_objects_keep_their_order,
    resizes_are_numbered_once_as_migrations,
    system_events_are_written_conditionally_and_read_by_account_window_and_id,
    audit_lookups_filter_page_and_sweep,
    the_root_filter_leaves_out_role_sessions,
    a_stale_instance_write_is_refused_and_changes_nothing,
    racing_writers_of_one_generation_exactly_one_wins,
    a_stale_batch_in_a_group_fails_alone,
    nonces_are_spent_once_until_they_expire,
    rate_windows_count_every_request_once,
    a_client_token_has_one_winner_and_records_its_instances,
    keystone_tokens_are_kept_by_digest_bounded_and_revoked,
    expired_cluster_state_is_swept,
    hosts_are_registered_reported_and_forgotten,
    placement_groups_are_written_read_by_id_and_deleted,
    images_are_written_conditionally_and_deleted_as_records,
    instance_types_are_written_read_by_id_and_deleted,
    metadef_namespaces_are_written_conditionally_renamed_and_deleted,
);

fn kp(id: &str) -> KeyPair {
    KeyPair {
        id: id.into(),
        key_type: Default::default(),
        account: "a".into(),
        name: id.into(),
        project_id: 0,
        description: String::new(),
        public_key: "ssh-ed25519 AAAA".into(),
        created_at_ms: 1,
        user_id: None,
    }
}

async fn writes_survive_reopen_and_migrations_run_once(backend: Backend) {
    let db = Db::new(backend).await;
    {
        let s = db.open().await;
        s.commit(vec![
            Write::Account(Account {
                id: "a".into(),
                name: "a".into(),
                is_admin: false,
                ..Account::default()
            }),
            Write::KeyPair(kp("skey-1")),
        ])
        .await
        .unwrap();
        s.commit(vec![
            Write::KeyPair(kp("skey-2")),
            Write::DeleteKeyPair("skey-1".into()),
        ])
        .await
        .unwrap();
        s.ping().await.unwrap();
    }
    let s = db.open().await;
    let snap = s.load().await.unwrap();
    assert_eq!(snap.accounts.len(), 1);
    assert_eq!(
        snap.key_pairs
            .iter()
            .map(|k| k.id.as_str())
            .collect::<Vec<_>>(),
        ["skey-2"]
    );
}

async fn concurrent_commits_are_grouped_and_all_land(backend: Backend) {
    let db = Db::new(backend).await;
    let s = db.open().await;
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                s.commit(vec![Write::KeyPair(kp(&format!("skey-{n}")))])
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.load().await.unwrap().key_pairs.len(), 200);
}

/// Migration 2 (issue 11): user data lives in its own table, read on demand, and goes with
/// its instance.
async fn user_data_round_trips_and_is_deleted(backend: Backend) {
    let db = Db::new(backend).await;
    let id = uuid::Uuid::new_v4();
    {
        let s = db.open().await;
        assert_eq!(s.user_data(id).await.unwrap(), None);
        s.commit(vec![Write::UserData {
            instance: id,
            data: "IyEvYmluL3NoCg==".into(),
        }])
        .await
        .unwrap();
    }
    let s = db.open().await;
    assert_eq!(
        s.user_data(id).await.unwrap().as_deref(),
        Some("IyEvYmluL3NoCg==")
    );
    s.commit(vec![Write::DeleteUserData(id)]).await.unwrap();
    assert_eq!(s.user_data(id).await.unwrap(), None);
}

/// Migration 17 (issue 15): a server's personality files, beside it like its user data.
async fn injected_files_round_trip_and_are_deleted(backend: Backend) {
    use nubis_core::InjectedFile;
    let db = Db::new(backend).await;
    let id = uuid::Uuid::new_v4();
    let files = vec![
        InjectedFile {
            path: "/etc/motd".into(),
            contents: "aGVsbG8K".into(),
        },
        InjectedFile {
            path: "rebuild.txt".into(),
            contents: String::new(),
        },
    ];
    {
        let s = db.open().await;
        assert_eq!(s.injected_files(id).await.unwrap(), Vec::new());
        s.commit(vec![Write::InjectedFiles {
            instance: id,
            files: files.clone(),
        }])
        .await
        .unwrap();
    }
    let s = db.open().await;
    assert_eq!(s.injected_files(id).await.unwrap(), files);
    s.commit(vec![Write::InjectedFiles {
        instance: id,
        files: files[1..].to_vec(),
    }])
    .await
    .unwrap();
    assert_eq!(s.injected_files(id).await.unwrap(), files[1..]);
    s.commit(vec![Write::DeleteInjectedFiles(id)])
        .await
        .unwrap();
    assert_eq!(s.injected_files(id).await.unwrap(), Vec::new());
}

/// A database written before migration 0003 (accounts and keys without the tenancy columns
/// and fields) opens, keeps its records, and takes the new tables and unique numbers.
async fn a_database_from_before_tenancy_is_migrated(backend: Backend) {
    use nubis_core::{Attachment, PolicyGrammar, PolicyRecord, SubUser};
    // Both dialects take these rows as they are.
    const OLD_ROWS: &str = "INSERT INTO schema_version VALUES (1), (2);
             INSERT INTO accounts VALUES ('admin', '{\"id\":\"admin\",\"name\":\"admin\",\"is_admin\":true}');
             INSERT INTO access_keys VALUES ('AKIDold', 'admin', '{\"id\":\"AKIDold\",\"account\":\"admin\",\"sealed_secret\":\"x\"}');";
    let db = Db::new(backend).await;
    match &db.pg {
        None => {
            let conn = rusqlite::Connection::open(db.dir.path().join("n.db")).unwrap();
            conn.execute_batch(include_str!("../migrations/0001_init.sql"))
                .unwrap();
            conn.execute_batch(include_str!("../migrations/0002_user_data.sql"))
                .unwrap();
            conn.execute_batch("CREATE TABLE schema_version (version INTEGER PRIMARY KEY);")
                .unwrap();
            conn.execute_batch(OLD_ROWS).unwrap();
        }
        Some(pg) => {
            use nubis_store::migrations::{MIGRATIONS, SCHEMA_VERSION, postgres};
            let (c, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            for (version, sql) in &MIGRATIONS[..2] {
                c.batch_execute(&postgres(*version, sql)).await.unwrap();
            }
            c.batch_execute(&postgres(0, SCHEMA_VERSION)).await.unwrap();
            c.batch_execute(OLD_ROWS).await.unwrap();
        }
    }
    let s = db.open().await;
    let snap = s.load().await.unwrap();
    assert_eq!(snap.accounts[0].tencent_owner_uin, 0);
    assert!(snap.accounts[0].is_admin);
    assert_eq!(snap.access_keys[0].user, None);
    s.commit(vec![
        Write::Account(team("a", 7)),
        Write::SubUser(SubUser {
            id: 100000000001,
            account: "a".into(),
            name: "dev".into(),
            created_at_ms: 1,
        }),
        Write::Policy(PolicyRecord {
            id: 10000001,
            account: "a".into(),
            name: "p".into(),
            grammar: PolicyGrammar::Cam,
            document: "{}".into(),
            description: String::new(),
            created_at_ms: 1,
        }),
        Write::Attach(Attachment {
            user: 100000000001,
            policy: 10000001,
        }),
    ])
    .await
    .unwrap();
    // The database keeps the numbers unique, whatever the memory of one node thinks.
    assert!(matches!(
        s.commit(vec![Write::Account(team("b", 7))]).await,
        Err(StoreError::Conflict(_))
    ));
    // And a sub-user name per account.
    let dup = SubUser {
        id: 100000000002,
        account: "a".into(),
        name: "dev".into(),
        created_at_ms: 1,
    };
    assert!(matches!(
        s.commit(vec![Write::SubUser(dup)]).await,
        Err(StoreError::Conflict(_))
    ));
    let snap = s.load().await.unwrap();
    assert_eq!(snap.accounts.len(), 2);
    assert_eq!(snap.sub_users.len(), 1);
    assert_eq!(snap.policies[0].name, "p");
    assert_eq!(
        snap.attachments,
        [Attachment {
            user: 100000000001,
            policy: 10000001
        }]
    );
    s.commit(vec![
        Write::Detach(Attachment {
            user: 100000000001,
            policy: 10000001,
        }),
        Write::DeletePolicy(10000001),
        Write::DeleteSubUser(100000000001),
        Write::DeleteAccount("a".into()),
    ])
    .await
    .unwrap();
    let snap = s.load().await.unwrap();
    assert_eq!(
        (
            snap.accounts.len(),
            snap.sub_users.len(),
            snap.policies.len(),
            snap.attachments.len()
        ),
        (1, 0, 0, 0)
    );
}

fn team(id: &str, uin: u64) -> Account {
    Account {
        id: id.into(),
        name: id.into(),
        tencent_owner_uin: uin,
        tencent_app_id: uin,
        aliyun_account_id: uin.to_string(),
        ..Account::default()
    }
}

/// A batch that breaks a uniqueness constraint answers Conflict, commits none of its writes,
/// and does not fail the batches committed beside it (the writers group them).
async fn a_conflicting_batch_fails_alone_and_commits_nothing(backend: Backend) {
    let db = Db::new(backend).await;
    let s = db.open().await;
    s.commit(vec![Write::Account(team("a", 7))]).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                if n == 20 {
                    s.commit(vec![
                        Write::KeyPair(kp("skey-bad")),
                        Write::Account(team("b", 7)),
                    ])
                    .await
                } else {
                    s.commit(vec![Write::KeyPair(kp(&format!("skey-{n}")))])
                        .await
                }
            })
        })
        .collect();
    for (n, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        if n == 20 {
            assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
        } else {
            r.unwrap();
        }
    }
    let snap = s.load().await.unwrap();
    assert_eq!(snap.key_pairs.len(), 39);
    assert!(snap.key_pairs.iter().all(|k| k.id != "skey-bad"));
    assert_eq!(snap.accounts.len(), 1);
}

fn op(instance: uuid::Uuid, request_id: &str, created_at_ms: i64) -> nubis_core::Operation {
    use nubis_core::{Action, InstanceState, OpState, Operation};
    Operation {
        id: uuid::Uuid::new_v4(),
        request_id: request_id.into(),
        account: "a".into(),
        instance,
        action: Action::Reboot,
        steps: Vec::new(),
        steps_done: 0,
        display: None,
        from_state: InstanceState::Running,
        state: OpState::Operating,
        attempts: 0,
        error: None,
        created_at_ms,
        finished_at_ms: None,
        settle: None,
        user_id: None,
        project_id: None,
    }
}

/// Operations created in the same millisecond list in the order they were written (their
/// IDs are random, so no other order passes); so do Keystone directory objects at load. A
/// rewrite keeps a record's place.
async fn operations_and_directory_objects_keep_their_order(backend: Backend) {
    use nubis_core::OpState;
    let db = Db::new(backend).await;
    let s = db.open().await;
    let instance = uuid::Uuid::new_v4();
    let ops: Vec<_> = (0..6).map(|_| op(instance, "req-1", 1000)).collect();
    for o in &ops {
        s.commit(vec![Write::Operation(o.clone())]).await.unwrap();
    }
    let mut done = ops[0].clone();
    done.steps_done = 1;
    done.state = OpState::Success;
    s.commit(vec![Write::Operation(done)]).await.unwrap();
    let ids = |v: Vec<nubis_core::Operation>| v.into_iter().map(|o| o.id).collect::<Vec<_>>();
    let written = ids(ops.clone());
    assert_eq!(
        ids(s.operations_of_request("req-1").await.unwrap()),
        written
    );
    assert!(s.operations_of_request("req-2").await.unwrap().is_empty());
    let newest: Vec<_> = written.iter().rev().take(4).copied().collect();
    assert_eq!(
        ids(s.operations_of_instance(instance, 4).await.unwrap()),
        newest
    );
    let ks = |kind: &'static str, id: &str, data: &str| Write::Keystone {
        kind,
        id: id.into(),
        name_key: id.into(),
        data: data.into(),
    };
    s.commit(vec![
        ks("project", "p1", "{\"v\":1}"),
        ks("domain", "d1", "{}"),
        ks("user", "u1", "{}"),
    ])
    .await
    .unwrap();
    s.commit(vec![ks("project", "p1", "{\"v\":2}")])
        .await
        .unwrap();
    let snap = db.open().await.load().await.unwrap();
    assert_eq!(ids(snap.unfinished), written[1..]);
    assert_eq!(
        snap.keystone,
        [
            ("project".to_string(), "{\"v\":2}".to_string()),
            ("domain".into(), "{}".into()),
            ("user".into(), "{}".into()),
        ]
    );
}

/// Every resize operation gets a migration number when first written, kept through its
/// rewrites; other operations get none. Newest first, by instance or all, bounded.
async fn resizes_are_numbered_once_as_migrations(backend: Backend) {
    use nubis_core::{Action, OpState};
    let db = Db::new(backend).await;
    let s = db.open().await;
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let resize = |instance, at| nubis_core::Operation {
        action: Action::Resize,
        ..op(instance, &format!("req-{at}"), at)
    };
    let (r1, r2, r3) = (resize(a, 1000), resize(b, 2000), resize(a, 3000));
    s.commit(vec![
        Write::Operation(r1.clone()),
        Write::Operation(op(a, "req-reboot", 1500)),
    ])
    .await
    .unwrap();
    s.commit(vec![Write::Operation(r2.clone())]).await.unwrap();
    s.commit(vec![Write::Operation(r3.clone())]).await.unwrap();
    let all = s.migrations(None, 10).await.unwrap();
    let ids: Vec<_> = all.iter().map(|(_, o)| o.id).collect();
    assert_eq!(ids, [r3.id, r2.id, r1.id]);
    let numbers: Vec<i64> = all.iter().map(|(n, _)| *n).collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "{numbers:?}");
    // A rewrite (the resize finishing) keeps its number and shows the new state.
    let mut done = r1.clone();
    done.state = OpState::Success;
    done.steps_done = 2;
    s.commit(vec![Write::Operation(done)]).await.unwrap();
    let again = s.migrations(None, 10).await.unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(again[2].0, numbers[2]);
    assert_eq!(again[2].1.state, OpState::Success);
    let of_a: Vec<_> = s
        .migrations(Some(a), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, o)| o.id)
        .collect();
    assert_eq!(of_a, [r3.id, r1.id]);
    assert_eq!(s.migrations(None, 1).await.unwrap().len(), 1);
    assert!(
        s.migrations(Some(uuid::Uuid::new_v4()), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// System events (migration 0019): a rewrite lands only over the generation before it; reads
/// are per account, newest published first, bounded by NotBefore and by count, or by ID.
async fn system_events_are_written_conditionally_and_read_by_account_window_and_id(
    backend: Backend,
) {
    use nubis_core::events::{EventKind, SystemEvent};
    let db = Db::new(backend).await;
    let s = db.open().await;
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let ev = |id: &str, account: &str, instance, published: i64, not_before: i64| SystemEvent {
        id: id.into(),
        account: account.into(),
        instance,
        kind: EventKind::SystemMaintenanceReboot,
        simulated: true,
        published_at_ms: published,
        not_before_ms: not_before,
        canceled_at_ms: None,
        generation: 1,
    };
    let (e1, e2, e3) = (
        ev("e-1", "acct", a, 1_000, 5_000),
        ev("e-2", "acct", b, 2_000, 50_000),
        ev("e-3", "other", a, 3_000, 60_000),
    );
    let put = |e: &SystemEvent| Write::SystemEvent(Box::new(e.clone()));
    s.commit(vec![put(&e1), put(&e2), put(&e3)]).await.unwrap();
    let ids = |v: Vec<SystemEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let q = |account: &str, instance, not_before_from, limit| EventQuery {
        account: account.to_string(),
        instance,
        not_before_from,
        limit,
    };
    assert_eq!(
        ids(s.system_events(q("acct", None, 0, 10)).await.unwrap()),
        ["e-2", "e-1"]
    );
    assert_eq!(
        ids(s.system_events(q("acct", Some(a), 0, 10)).await.unwrap()),
        ["e-1"]
    );
    // The window: only events whose NotBefore is at or after the bound.
    assert_eq!(
        ids(s.system_events(q("acct", None, 6_000, 10)).await.unwrap()),
        ["e-2"]
    );
    assert_eq!(
        s.system_events(q("acct", None, 0, 1)).await.unwrap().len(),
        1
    );
    assert!(
        s.system_events(q("nobody", None, 0, 10))
            .await
            .unwrap()
            .is_empty()
    );
    // A cancel over generation 1 lands; a second writer of the same generation is refused.
    let canceled = SystemEvent {
        canceled_at_ms: Some(3_000),
        generation: 2,
        ..e1.clone()
    };
    s.commit(vec![put(&canceled)]).await.unwrap();
    let late = SystemEvent {
        canceled_at_ms: Some(4_000),
        generation: 2,
        ..e1.clone()
    };
    assert!(matches!(
        s.commit(vec![put(&late), put(&e2)]).await,
        Err(StoreError::Conflict(_))
    ));
    let read = s
        .system_events_by_id(&["e-1".into(), "e-9".into()])
        .await
        .unwrap();
    assert_eq!(read, [canceled]);
}

/// Two nodes starting at once on an empty database: the advisory lock lets one migrate, the
/// others find every version applied (and none fails on another's tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_starting_together_migrate_once() {
    let db = Db::new(Backend::Postgres).await;
    let pg = db.pg.as_ref().unwrap();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = pg.url.clone();
            tokio::spawn(async move { PgStore::open(&url).await.map(drop) })
        })
        .collect();
    for o in opens {
        o.await.unwrap().unwrap();
    }
    let (c, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let versions: Vec<i64> = c
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i64> = nubis_store::migrations::MIGRATIONS
        .iter()
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(versions, expected);
}

/// An unreachable server is an error at open, not a hang or a panic.
#[tokio::test]
async fn postgres_unreachable_is_unavailable() {
    // Port 1 on the loopback: nothing listens there.
    let r = PgStore::open("postgres://postgres@127.0.0.1:1/none?connect_timeout=2").await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{:?}",
        r.err()
    );
}

fn event(id: &str, account: &str, time_ms: i64, action: &str) -> nubis_core::audit::AuditEvent {
    nubis_core::audit::AuditEvent {
        id: id.into(),
        time_ms,
        account: account.into(),
        user: "u".into(),
        sub_user: (account == "b").then_some(7),
        is_admin: false,
        role: None,
        credential: format!("AKID{account}"),
        cloud: "tencent".into(),
        service: "cvm".into(),
        version: "2017-03-12".into(),
        action: action.into(),
        read_only: Some(action.starts_with("Describe")),
        region: None,
        resources: vec![format!("ins-{id}")],
        source_ip: "127.0.0.1".into(),
        user_agent: "ua".into(),
        request_id: format!("req-{id}"),
        error_code: (action == "RebootInstances")
            .then(|| "AuthFailure.UnauthorizedOperation".into()),
        error_message: None,
        status: 200,
        parameters: "{}".into(),
    }
}

/// Every event of `account` (any time, newest first, 50 at most) that passes `filters`.
fn audit_query(
    account: &str,
    filters: Vec<nubis_core::audit::AuditFilter>,
) -> nubis_core::audit::AuditQuery {
    nubis_core::audit::AuditQuery {
        account: Some(account.into()),
        since_ms: 0,
        until_ms: i64::MAX,
        filters,
        after: None,
        limit: 50,
        oldest_first: false,
    }
}

fn ids(v: Vec<nubis_core::audit::AuditEvent>) -> Vec<String> {
    v.into_iter().map(|e| e.id).collect()
}

async fn audit_lookups_filter_page_and_sweep(backend: Backend) {
    use nubis_core::audit::{AuditCursor, AuditFilter};
    let db = Db::new(backend).await;
    let s = db.open().await;
    let mut writes = Vec::new();
    for i in 0..10i64 {
        let action = if i % 2 == 0 {
            "DescribeInstances"
        } else {
            "RebootInstances"
        };
        writes.push(Write::AuditEvent(Box::new(event(
            &format!("e{i:02}"),
            "a",
            1000 + i,
            action,
        ))));
    }
    writes.push(Write::AuditEvent(Box::new(event(
        "x",
        "b",
        1005,
        "RebootInstances",
    ))));
    s.commit(writes).await.unwrap();
    let q = |filters| audit_query("a", filters);
    // Tenancy: the account's own events only, newest first.
    let all = ids(s.audit_events(q(vec![])).await.unwrap());
    assert_eq!(all.len(), 10);
    assert_eq!(all[0], "e09");
    assert!(!all.contains(&"x".to_string()));
    // Filters are AND-ed.
    let got = ids(s
        .audit_events(q(vec![
            AuditFilter::Action("RebootInstances".into()),
            AuditFilter::Resource("ins-e03".into()),
        ]))
        .await
        .unwrap());
    assert_eq!(got, ["e03"]);
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::RequestId("req-e04".into())]))
            .await
            .unwrap()),
        ["e04"]
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::ErrorCode(String::new())]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::ErrorCode(
                "AuthFailure.UnauthorizedOperation".into()
            )]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::ReadOnly(true)]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::Credential("AKIDa".into())]))
            .await
            .unwrap())
        .len(),
        10
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::Principal("root".into())]))
            .await
            .unwrap())
        .len(),
        10
    );
    let mut other = q(vec![AuditFilter::Principal("7".into())]);
    other.account = Some("b".into());
    assert_eq!(ids(s.audit_events(other).await.unwrap()), ["x"]);
    assert_eq!(
        ids(s
            .audit_events(q(vec![
                AuditFilter::Cloud("tencent".into()),
                AuditFilter::ActionIn(vec!["RebootInstances".into(), "X".into()])
            ]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::ActionNotIn(vec![
                "RebootInstances".into()
            ])]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::Cloud("aliyun".into())]))
            .await
            .unwrap())
        .len(),
        0
    );
    // The window is inclusive.
    let mut window = q(vec![]);
    window.since_ms = 1002;
    window.until_ms = 1004;
    assert_eq!(
        ids(s.audit_events(window).await.unwrap()),
        ["e04", "e03", "e02"]
    );
    // Pages: limit + 1 rows, then from the cursor; both directions.
    let mut page = q(vec![]);
    page.limit = 3;
    let first = s.audit_events(page.clone()).await.unwrap();
    assert_eq!(first.len(), 4);
    page.after = Some(AuditCursor {
        time_ms: first[2].time_ms,
        id: first[2].id.clone(),
    });
    assert_eq!(
        ids(s.audit_events(page.clone()).await.unwrap()),
        ["e06", "e05", "e04", "e03"]
    );
    page.oldest_first = true;
    page.after = Some(AuditCursor {
        time_ms: 1001,
        id: "e01".into(),
    });
    assert_eq!(
        ids(s.audit_events(page).await.unwrap()),
        ["e02", "e03", "e04", "e05"]
    );
    // The total of a query counts every match, whatever its page and cursor.
    let mut paged = q(vec![AuditFilter::Action("RebootInstances".into())]);
    paged.limit = 2;
    paged.after = Some(AuditCursor {
        time_ms: 1009,
        id: "e09".into(),
    });
    assert_eq!(s.count_audit_events(paged).await.unwrap(), 5);
    assert_eq!(s.count_audit_events(q(vec![])).await.unwrap(), 10);
    let mut none = q(vec![AuditFilter::Cloud("aliyun".into())]);
    none.account = None;
    assert_eq!(s.count_audit_events(none).await.unwrap(), 0);
    // Every account's events for the admin.
    let mut admin = q(vec![]);
    admin.account = None;
    assert_eq!(s.audit_events(admin.clone()).await.unwrap().len(), 11);
    // Retention: only events older than the cut go, in bounded batches.
    assert_eq!(s.sweep_audit(1003, 2).await.unwrap(), 2);
    assert_eq!(s.sweep_audit(1003, 100).await.unwrap(), 1);
    assert_eq!(s.sweep_audit(1003, 100).await.unwrap(), 0);
    let left = ids(s.audit_events(admin).await.unwrap());
    assert_eq!(left.len(), 8);
    assert!(left.iter().all(|id| id.as_str() >= "e03" || id == "x"));
}

/// `Principal("root")` selects the account's own calls: not a sub-user's, nor a role
/// session's (which has no sub-user either).
async fn the_root_filter_leaves_out_role_sessions(backend: Backend) {
    use nubis_core::audit::{AuditFilter, AuditRole};
    let db = Db::new(backend).await;
    let s = db.open().await;
    let mut role = event("r", "c", 1000, "DescribeInstances");
    role.role = Some(AuditRole {
        id: 4,
        name: "ops".into(),
        session: "s1".into(),
    });
    let root = event("o", "c", 1001, "DescribeInstances");
    s.commit(vec![
        Write::AuditEvent(Box::new(role)),
        Write::AuditEvent(Box::new(root)),
    ])
    .await
    .unwrap();
    let q = |filters| audit_query("c", filters);
    assert_eq!(ids(s.audit_events(q(vec![])).await.unwrap()), ["o", "r"]);
    let by_root = q(vec![AuditFilter::Principal("root".into())]);
    assert_eq!(ids(s.audit_events(by_root).await.unwrap()), ["o"]);
}

/// The server dropping every connection (a restart, a failover, an operator's
/// pg_terminate_backend) costs no more than the requests in flight: the pool replaces the
/// dead connections and the next commits and reads succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_reconnects_after_its_connections_are_killed() {
    let db = Db::new(Backend::Postgres).await;
    let s = db.open().await;
    s.commit(vec![Write::KeyPair(kp("skey-1"))]).await.unwrap();
    s.ping().await.unwrap();
    let pg = db.pg.as_ref().unwrap();
    let killed: i64 = admin_client()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            &[&pg.name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "no connection of the store was found to kill");
    // The client learns of the kill from the server's message, asynchronously.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    s.commit(vec![Write::KeyPair(kp("skey-2"))]).await.unwrap();
    s.ping().await.unwrap();
    let snap = s.load().await.unwrap();
    assert_eq!(snap.key_pairs.len(), 2);
}

/// The change journal: each committed batch adds one row per record it wrote, numbered in
/// commit order across stores on one database; each store sees its own rows as `own`; a
/// cursor older than a prune asks for a reload; reads by ID find what the batches wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_journal_numbers_changes_in_commit_order() {
    use nubis_store::{Identity, Record};
    let db = Db::new(Backend::Postgres).await;
    let (one, two) = (db.open().await, db.open().await);
    assert!(one.shared());
    let head = one.journal_head().await.unwrap();
    let instance = instance(1, 1, "one");
    let op = op(instance.uuid, "req-1", 5);
    one.commit(vec![
        put(instance.clone()),
        Write::Operation(op.clone()),
        // Twice in one batch (its next generation): one row.
        put(nubis_core::Instance {
            generation: 2,
            ..instance.clone()
        }),
        Write::Guest {
            instance: instance.uuid,
            data: serde_json::json!({}),
        },
    ])
    .await
    .unwrap();
    two.commit(vec![
        Write::KeyPair(kp("skey-1")),
        Write::Meta {
            key: "k".into(),
            value: "v".into(),
        },
    ])
    .await
    .unwrap();
    let seen = two.changes_since(head, 100).await.unwrap();
    assert!(!seen.reset);
    let got: Vec<(u64, bool, Record)> = seen
        .changes
        .iter()
        .map(|c| (c.seq - head, c.own, c.record.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, false, Record::Instance(instance.uuid)),
            (2, false, Record::Operation(op.id)),
            (3, true, Record::KeyPair("skey-1".into())),
            (4, true, Record::Identity(Identity::Meta)),
        ]
    );
    assert_eq!(seen.cursor, head + 4);
    assert_eq!(one.journal_head().await.unwrap(), head + 4);
    // Pages: the cursor moves past what was returned, no further.
    let page = one.changes_since(head, 3).await.unwrap();
    assert_eq!((page.changes.len(), page.cursor), (3, head + 3));
    assert_eq!(page.changes[2].seq, head + 3);
    let rest = one.changes_since(page.cursor, 3).await.unwrap();
    assert_eq!((rest.changes.len(), rest.cursor), (1, head + 4));
    let none = one.changes_since(head + 4, 3).await.unwrap();
    assert_eq!((none.changes.len(), none.cursor), (0, head + 4));
    // Reads by ID.
    assert_eq!(
        one.instances(&[instance.uuid, uuid::Uuid::nil()])
            .await
            .unwrap()
            .iter()
            .map(|i| i.uuid)
            .collect::<Vec<_>>(),
        vec![instance.uuid]
    );
    assert_eq!(two.operations(&[op.id]).await.unwrap()[0].id, op.id);
    assert_eq!(
        one.key_pairs(&["skey-1".into(), "skey-2".into()])
            .await
            .unwrap()
            .len(),
        1
    );
    // The identity snapshot leaves the fleet out.
    let identity = two.load_identity().await.unwrap();
    assert!(identity.instances.is_empty() && identity.key_pairs.is_empty());
    assert_eq!(identity.meta, vec![("k".to_string(), "v".to_string())]);
    // Nothing is pruned younger than the retention; everything older than -1 min.
    assert_eq!(one.prune_changes(60_000).await.unwrap(), 0);
    assert_eq!(one.prune_changes(-60_000).await.unwrap(), 4);
    let behind = two.changes_since(head + 2, 100).await.unwrap();
    assert!(behind.reset, "rows past the cursor were pruned");
    assert_eq!(behind.cursor, head + 4, "reload from the head");
    let current = two.changes_since(head + 4, 100).await.unwrap();
    assert!(!current.reset && current.changes.is_empty());
}

/// SQLite is one process's store: no journal, nothing to catch up on.
#[tokio::test]
async fn sqlite_keeps_no_journal() {
    let db = Db::new(Backend::Sqlite).await;
    let s = db.open().await;
    assert!(!s.shared());
    s.commit(vec![Write::KeyPair(kp("skey-1"))]).await.unwrap();
    assert_eq!(s.journal_head().await.unwrap(), 0);
    let b = s.changes_since(0, 10).await.unwrap();
    assert!(b.changes.is_empty() && !b.reset);
    assert_eq!(s.key_pairs(&["skey-1".into()]).await.unwrap().len(), 1);
}

/// Instance `n` at generation `generation`, named `name`.
fn instance(n: u8, generation: u64, name: &str) -> nubis_core::Instance {
    nubis_core::Instance {
        uuid: uuid::Uuid::from_bytes([n; 16]),
        tencent_id: format!("ins-{n:08}"),
        aliyun_id: format!("i-{n:020}"),
        name: name.into(),
        generation,
        ..nubis_core::rules::fixture::inst(nubis_core::InstanceState::Running)
    }
}

fn put(i: nubis_core::Instance) -> Write {
    Write::Instance(Box::new(i))
}

/// The stored record of instance `n`.
async fn stored(s: &Arc<dyn Store>, n: u8) -> nubis_core::Instance {
    let mut found = s
        .instances(&[uuid::Uuid::from_bytes([n; 16])])
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

async fn a_stale_instance_write_is_refused_and_changes_nothing(backend: Backend) {
    let db = Db::new(backend).await;
    let s = db.open().await;
    s.commit(vec![put(instance(1, 1, "one"))]).await.unwrap();
    s.commit(vec![put(instance(1, 2, "two"))]).await.unwrap();
    // A delayed write of generation 2 (planned from generation 1, like the one above): the
    // whole batch is refused, its other writes with it.
    let r = s
        .commit(vec![
            Write::KeyPair(kp("skey-late")),
            put(instance(1, 2, "late")),
        ])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    // An older one, and one skipping a generation, likewise.
    for g in [1, 4] {
        let r = s.commit(vec![put(instance(1, g, "late"))]).await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{g}: {r:?}");
    }
    let now = stored(&s, 1).await;
    assert_eq!((now.generation, now.name.as_str()), (2, "two"));
    assert!(s.load().await.unwrap().key_pairs.is_empty());
    // The newer record survives a restart, and the next generation lands on it.
    drop(s);
    let s = db.open().await;
    let snap = s.load().await.unwrap();
    assert_eq!(snap.instances.len(), 1);
    assert_eq!(snap.instances[0].name, "two");
    s.commit(vec![put(instance(1, 3, "three"))]).await.unwrap();
    assert_eq!(stored(&s, 1).await.name, "three");
    // A terminated record keeps its row and generation: a write from before it is refused.
    let mut gone = instance(1, 4, "three");
    gone.state = nubis_core::InstanceState::Terminated;
    s.commit(vec![put(gone)]).await.unwrap();
    let r = s.commit(vec![put(instance(1, 4, "revived"))]).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert!(s.load().await.unwrap().instances.is_empty());
    assert_eq!(
        stored(&s, 1).await.state,
        nubis_core::InstanceState::Terminated
    );
    // Unknown IDs are left out of a read back.
    assert!(
        s.instances(&[uuid::Uuid::from_bytes([9; 16])])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn racing_writers_of_one_generation_exactly_one_wins(backend: Backend) {
    let db = Db::new(backend).await;
    // Two stores on one database: two nodes (on SQLite, two writer threads on one file).
    let a = db.open().await;
    let b = db.open().await;
    a.commit(vec![put(instance(1, 1, "start"))]).await.unwrap();
    for g in 2..12u64 {
        let wa = a.clone();
        let wb = b.clone();
        let ta = tokio::spawn(async move { wa.commit(vec![put(instance(1, g, "a"))]).await });
        let tb = tokio::spawn(async move { wb.commit(vec![put(instance(1, g, "b"))]).await });
        let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
        let won: Vec<&str> = [("a", &ra), ("b", &rb)]
            .into_iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(w, _)| w)
            .collect();
        assert_eq!(won.len(), 1, "generation {g}: {ra:?} {rb:?}");
        for r in [&ra, &rb] {
            assert!(
                r.is_ok() || matches!(r, Err(StoreError::Conflict(_))),
                "{r:?}"
            );
        }
        let now = stored(&a, 1).await;
        assert_eq!((now.generation, now.name.as_str()), (g, won[0]));
    }
}

async fn a_stale_batch_in_a_group_fails_alone(backend: Backend) {
    let db = Db::new(backend).await;
    let s = db.open().await;
    let base: Vec<Write> = (1..=30u8).map(|n| put(instance(n, 1, "v1"))).collect();
    s.commit(base).await.unwrap();
    // Many batches at once (grouped into shared transactions by the writer); instance 7's is
    // stale, the others each move their instance on.
    let tasks: Vec<_> = (1..=30u8)
        .map(|n| {
            let s = s.clone();
            let g = if n == 7 { 1 } else { 2 };
            tokio::spawn(async move { s.commit(vec![put(instance(n, g, "v2"))]).await })
        })
        .collect();
    for (n, t) in (1..=30u8).zip(tasks) {
        let r = t.await.unwrap();
        if n == 7 {
            assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
        } else {
            r.unwrap();
        }
    }
    let mut snap = s.load().await.unwrap().instances;
    snap.sort_by_key(|i| i.uuid);
    for (n, i) in (1..=30u8).zip(&snap) {
        let want = if n == 7 { (1, "v1") } else { (2, "v2") };
        assert_eq!((i.generation, i.name.as_str()), want, "instance {n}");
    }
}

// Cluster-wide state (migration 0010, docs/postgres.md "Cluster-wide state").

async fn nonces_are_spent_once_until_they_expire(backend: Backend) {
    use nubis_store::NonceSpend::{Full, Spent, Used};
    let db = Db::new(backend).await;
    let s = db.open().await;
    let c = s.cluster().expect("cluster state");
    assert_eq!(backend_is_shared(backend), s.shared());
    let t = 1_700_000_000;
    assert_eq!(
        c.spend_nonce("aliyun", "ak", "n1", t, t + 900, 3)
            .await
            .unwrap(),
        Spent
    );
    assert_eq!(
        c.spend_nonce("aliyun", "ak", "n1", t + 900, t + 1800, 3)
            .await
            .unwrap(),
        Used
    );
    // Other dialect, other key: their own.
    assert_eq!(
        c.spend_nonce("tencent", "ak", "n1", t, t + 300, 3)
            .await
            .unwrap(),
        Spent
    );
    assert_eq!(
        c.spend_nonce("aliyun", "ak2", "n1", t, t + 900, 3)
            .await
            .unwrap(),
        Spent
    );
    // The key's cap: two more fill it, a fourth is refused; a replay is still a replay.
    assert_eq!(
        c.spend_nonce("aliyun", "ak", "n2", t, t + 900, 3)
            .await
            .unwrap(),
        Spent
    );
    assert_eq!(
        c.spend_nonce("aliyun", "ak", "n3", t, t + 900, 3)
            .await
            .unwrap(),
        Spent
    );
    assert_eq!(
        c.spend_nonce("aliyun", "ak", "n4", t, t + 900, 3)
            .await
            .unwrap(),
        Full
    );
    assert_eq!(
        c.spend_nonce("aliyun", "ak", "n2", t, t + 900, 3)
            .await
            .unwrap(),
        Used
    );
    // Expired: spendable again, and it is remembered anew.
    assert_eq!(
        c.spend_nonce("aliyun", "ak", "n1", t + 901, t + 1801, 3)
            .await
            .unwrap(),
        Spent
    );
    assert_eq!(
        c.spend_nonce("aliyun", "ak", "n1", t + 902, t + 1802, 3)
            .await
            .unwrap(),
        Used
    );
    // A second store on the same database (another node) sees the same record, and of many
    // concurrent spends of one nonce exactly one wins.
    let other = db.open().await;
    let spends: Vec<_> = (0..16)
        .map(|i| {
            let s = if i % 2 == 0 { s.clone() } else { other.clone() };
            tokio::spawn(async move {
                s.cluster()
                    .unwrap()
                    .spend_nonce("aliyun", "race", "once", t, t + 900, 100)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for h in spends {
        if h.await.unwrap() == Spent {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

fn backend_is_shared(backend: Backend) -> bool {
    matches!(backend, Backend::Postgres)
}

async fn rate_windows_count_every_request_once(backend: Backend) {
    let db = Db::new(backend).await;
    let s = db.open().await;
    let other = db.open().await;
    let hits: Vec<_> = (0..40)
        .map(|i| {
            let s = if i % 2 == 0 { s.clone() } else { other.clone() };
            tokio::spawn(async move {
                s.cluster()
                    .unwrap()
                    .count_request("acct", "RunInstances", 100)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut counts = Vec::new();
    for h in hits {
        counts.push(h.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=40).collect::<Vec<u64>>(),
        "each count handed out once"
    );
    let c = s.cluster().unwrap();
    assert_eq!(
        c.count_request("acct", "RunInstances", 101).await.unwrap(),
        1
    );
    assert_eq!(
        c.count_request("acct", "StopInstances", 100).await.unwrap(),
        1
    );
    assert_eq!(
        c.count_request("other", "RunInstances", 100).await.unwrap(),
        1
    );
}

async fn a_client_token_has_one_winner_and_records_its_instances(backend: Backend) {
    let db = Db::new(backend).await;
    let s = db.open().await;
    let other = db.open().await;
    const TTL: i64 = 86_400_000;
    const STALE: i64 = 30_000;
    let now = 1_700_000_000_000;
    let claims: Vec<_> = (0..10)
        .map(|i| {
            let s = if i % 2 == 0 { s.clone() } else { other.clone() };
            tokio::spawn(async move {
                let won = s
                    .cluster()
                    .unwrap()
                    .claim_client_token(
                        "acct",
                        "tok",
                        &format!("c{i}"),
                        now,
                        now - TTL,
                        now - STALE,
                    )
                    .await
                    .unwrap();
                (i, won)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for h in claims {
        let (i, held) = h.await.unwrap();
        match held {
            None => winners.push(format!("c{i}")),
            Some(view) => assert!(view.instances.is_none(), "nothing committed yet"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = winners.pop().unwrap();
    // The winner's commit records its instances (with the instance rows themselves).
    let inst = nubis_core::Instance {
        uuid: uuid::Uuid::new_v4(),
        tencent_id: "ins-00000001".into(),
        aliyun_id: "i-00000000000000000001".into(),
        account: "acct".into(),
        client_token: Some("tok".into()),
        ..nubis_core::rules::fixture::inst(nubis_core::InstanceState::Running)
    };
    // A loser's claim ID recorded nothing.
    s.commit(vec![Write::ClientToken {
        account: "acct".into(),
        token: "tok".into(),
        claim: "not-the-winner".into(),
        instances: vec![inst.uuid],
    }])
    .await
    .unwrap();
    let c = other.cluster().unwrap();
    assert!(
        c.client_token("acct", "tok")
            .await
            .unwrap()
            .unwrap()
            .instances
            .is_none()
    );
    s.commit(vec![
        Write::Instance(Box::new(inst.clone())),
        Write::ClientToken {
            account: "acct".into(),
            token: "tok".into(),
            claim: winner.clone(),
            instances: vec![inst.uuid],
        },
    ])
    .await
    .unwrap();
    let view = c
        .claim_client_token(
            "acct",
            "tok",
            "late",
            now + 1,
            now + 1 - TTL,
            now + 1 - STALE,
        )
        .await
        .unwrap()
        .expect("held");
    assert_eq!(view.claim, winner);
    let found = view.instances.expect("recorded");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].uuid, inst.uuid);
    // Releasing with another claim does nothing; the holder's release frees the token.
    c.release_client_token("acct", "tok", "late").await.unwrap();
    assert!(c.client_token("acct", "tok").await.unwrap().is_some());
    c.release_client_token("acct", "tok", &winner)
        .await
        .unwrap();
    assert!(c.client_token("acct", "tok").await.unwrap().is_none());
    // A claim without instances goes stale (its create died) and is taken over; a recorded
    // one lasts the TTL.
    assert!(
        c.claim_client_token("acct", "t2", "a", now, now - TTL, now - STALE)
            .await
            .unwrap()
            .is_none()
    );
    let later = now + STALE + 1;
    assert!(
        c.claim_client_token("acct", "t2", "b", now + 1, now + 1 - TTL, now + 1 - STALE)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        c.claim_client_token("acct", "t2", "b", later, later - TTL, later - STALE)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        c.client_token("acct", "t2").await.unwrap().unwrap().claim,
        "b"
    );
    s.commit(vec![Write::ClientToken {
        account: "acct".into(),
        token: "t2".into(),
        claim: "b".into(),
        instances: vec![],
    }])
    .await
    .unwrap();
    let much_later = later + STALE * 10;
    assert!(
        c.claim_client_token(
            "acct",
            "t2",
            "c",
            much_later,
            much_later - TTL,
            much_later - STALE
        )
        .await
        .unwrap()
        .is_some()
    );
    let expired = later + TTL + 1;
    assert!(
        c.claim_client_token("acct", "t2", "c", expired, expired - TTL, expired - STALE)
            .await
            .unwrap()
            .is_none()
    );
}

async fn keystone_tokens_are_kept_by_digest_bounded_and_revoked(backend: Backend) {
    let db = Db::new(backend).await;
    let s = db.open().await;
    let c = s.cluster().unwrap();
    let now = 1_700_000_000;
    for i in 0..5 {
        c.put_keystone_token(
            &format!("d{i}"),
            "alice",
            1000 + i,
            now + 60,
            &format!("{{\"n\":{i}}}"),
            now,
            3,
        )
        .await
        .unwrap();
    }
    c.put_keystone_token("bob1", "bob", 1000, now + 60, "{}", now, 3)
        .await
        .unwrap();
    assert_eq!(c.keystone_tokens_of("alice", now).await.unwrap(), 3);
    // The oldest went; the newest three stay.
    assert_eq!(c.keystone_token("d0", now).await.unwrap(), None);
    assert_eq!(c.keystone_token("d1", now).await.unwrap(), None);
    assert_eq!(
        c.keystone_token("d4", now).await.unwrap().as_deref(),
        Some("{\"n\":4}")
    );
    assert_eq!(c.keystone_tokens_of("bob", now).await.unwrap(), 1);
    // Expired: not found, not counted.
    assert_eq!(c.keystone_token("d4", now + 60).await.unwrap(), None);
    assert_eq!(c.keystone_tokens_of("alice", now + 60).await.unwrap(), 0);
    // Another node (a restart, too) finds it; a revocation is seen by every store.
    let other = db.open().await;
    let o = other.cluster().unwrap();
    assert!(o.keystone_token("d3", now).await.unwrap().is_some());
    assert!(o.revoke_keystone_token("d3").await.unwrap());
    assert!(!o.revoke_keystone_token("d3").await.unwrap());
    assert_eq!(c.keystone_token("d3", now).await.unwrap(), None);
}

async fn expired_cluster_state_is_swept(backend: Backend) {
    let db = Db::new(backend).await;
    let s = db.open().await;
    let c = s.cluster().unwrap();
    let now_s = 1_700_000_000;
    let now_ms = now_s * 1000;
    c.spend_nonce("aliyun", "ak", "old", now_s - 1000, now_s - 100, 10)
        .await
        .unwrap();
    c.spend_nonce("aliyun", "ak", "live", now_s, now_s + 900, 10)
        .await
        .unwrap();
    c.count_request("a", "X", now_s - 120).await.unwrap();
    c.count_request("a", "X", now_s).await.unwrap();
    c.put_keystone_token("gone", "u", 1, now_s - 1, "{}", now_s - 10, 10)
        .await
        .unwrap();
    c.put_keystone_token("kept", "u", 2, now_s + 60, "{}", now_s - 10, 10)
        .await
        .unwrap();
    c.claim_client_token("a", "old", "x", now_ms - 100_000, 0, 0)
        .await
        .unwrap();
    c.claim_client_token("a", "new", "y", now_ms, 0, 0)
        .await
        .unwrap();
    let gone = c
        .sweep_cluster_state(now_ms, now_ms - 50_000)
        .await
        .unwrap();
    assert_eq!(gone, 4);
    assert_eq!(
        c.sweep_cluster_state(now_ms, now_ms - 50_000)
            .await
            .unwrap(),
        0
    );
    use nubis_store::NonceSpend::Used;
    assert_eq!(
        c.spend_nonce("aliyun", "ak", "live", now_s, now_s + 900, 10)
            .await
            .unwrap(),
        Used
    );
    assert!(c.keystone_token("kept", now_s).await.unwrap().is_some());
    assert!(c.client_token("a", "new").await.unwrap().is_some());
    assert!(c.client_token("a", "old").await.unwrap().is_none());
    assert_eq!(c.count_request("a", "X", now_s).await.unwrap(), 2);
}

// Operation leases (docs/cluster.md, "Leases and takeover").

/// An unfinished operation on instance `n`, with its lease for `ttl_ms` (negative: already
/// expired), as an acceptance commits them.
async fn leased_op(s: &Arc<dyn Store>, n: u8, ttl_ms: i64) -> nubis_core::Operation {
    let op = op(
        uuid::Uuid::from_bytes([n; 16]),
        &format!("req-{n}"),
        i64::from(n),
    );
    s.commit(vec![
        put(instance(n, 1, "leased")),
        Write::Operation(op.clone()),
        Write::Lease {
            operation: op.id,
            ttl_ms,
        },
    ])
    .await
    .unwrap();
    op
}

/// A lease is its node's until it expires; then exactly one other node takes it over, with
/// the next fence; the old holder's fenced writes are refused whole, and its renewals too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_lease_is_taken_over_only_once_expired_and_fences_the_old_holder() {
    let db = Db::new(Backend::Postgres).await;
    let (a, b) = (db.open().await, db.open().await);
    let live = leased_op(&a, 1, 60_000).await;
    assert!(b.take_over_leases(60_000, 10).await.unwrap().is_empty());
    // The holder records a step under its fence; another node cannot.
    let fence = |fence| Write::Fence {
        operation: live.id,
        fence,
    };
    a.commit(vec![fence(1), put(instance(1, 2, "step"))])
        .await
        .unwrap();
    let refused = b.commit(vec![fence(1), put(instance(1, 3, "b"))]).await;
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
    assert_eq!(stored(&a, 1).await.generation, 2, "nothing of it landed");
    // Renewals name the leases taken over: none of A's; B never held this one.
    assert!(
        a.renew_leases(&[(live.id, 1)], 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.renew_leases(&[(live.id, 1)], 60_000).await.unwrap(),
        vec![live.id]
    );

    // Expired: the first node to look takes it, fence 2; the next finds nothing.
    let dead = leased_op(&a, 2, -1).await;
    assert_eq!(
        b.take_over_leases(60_000, 10).await.unwrap(),
        vec![(dead.id, 2)]
    );
    assert!(a.take_over_leases(60_000, 10).await.unwrap().is_empty());
    let stale = a
        .commit(vec![
            Write::Fence {
                operation: dead.id,
                fence: 1,
            },
            put(instance(2, 2, "late")),
        ])
        .await;
    assert!(matches!(stale, Err(StoreError::Fenced(_))), "{stale:?}");
    assert_eq!(stored(&a, 2).await.generation, 1);
    assert_eq!(
        a.renew_leases(&[(dead.id, 1)], 60_000).await.unwrap(),
        vec![dead.id]
    );
    assert!(
        b.renew_leases(&[(dead.id, 2)], 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    b.commit(vec![
        Write::Fence {
            operation: dead.id,
            fence: 2,
        },
        put(instance(2, 2, "resumed")),
    ])
    .await
    .unwrap();

    // An operation that ended gives its lease up; one without a lease row (accepted before
    // leases existed) is an orphan, taken over at once.
    let mut done = dead.clone();
    done.state = nubis_core::OpState::Success;
    b.commit(vec![
        Write::Fence {
            operation: dead.id,
            fence: 2,
        },
        Write::Operation(done),
        Write::EndLease(dead.id),
    ])
    .await
    .unwrap();
    // An ended lease is not a lost one.
    assert!(
        b.renew_leases(&[(dead.id, 2)], 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    let orphan = op(uuid::Uuid::from_bytes([3; 16]), "req-3", 3);
    a.commit(vec![
        put(instance(3, 1, "o")),
        Write::Operation(orphan.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(
        a.take_over_leases(60_000, 10).await.unwrap(),
        vec![(orphan.id, 1)]
    );
    assert!(b.take_over_leases(60_000, 10).await.unwrap().is_empty());
}

/// Two nodes sweeping the same expired leases at once: every operation goes to exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_takeovers_hand_each_operation_to_one_node() {
    let db = Db::new(Backend::Postgres).await;
    let (a, b) = (db.open().await, db.open().await);
    let mut ops = Vec::new();
    for n in 1..=40 {
        ops.push(leased_op(&a, n, -1).await.id);
    }
    let sweep = |s: Arc<dyn Store>| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..8 {
                got.extend(s.take_over_leases(60_000, 7).await.unwrap());
            }
            got
        })
    };
    let (x, y) = (sweep(a.clone()), sweep(b.clone()));
    let (x, y) = (x.await.unwrap(), y.await.unwrap());
    let mut all: Vec<uuid::Uuid> = x.iter().chain(&y).map(|(id, _)| *id).collect();
    assert!(x.iter().chain(&y).all(|(_, fence)| *fence == 2));
    all.sort();
    ops.sort();
    assert_eq!(
        all,
        ops,
        "each taken exactly once: {} + {}",
        x.len(),
        y.len()
    );
}

/// The store's copy of a guest's driver state is read by ID (a node carries on a sim guest
/// another node stepped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_guest_is_read_by_id() {
    let db = Db::new(Backend::Postgres).await;
    let (a, b) = (db.open().await, db.open().await);
    let id = uuid::Uuid::from_bytes([9; 16]);
    assert_eq!(b.guest(id).await.unwrap(), None);
    let data = serde_json::json!({"power": "On", "turns": [1, 2]});
    a.commit(vec![Write::Guest {
        instance: id,
        data: data.clone(),
    }])
    .await
    .unwrap();
    assert_eq!(b.guest(id).await.unwrap(), Some(data));
}

/// SQLite is one process: no leases are kept, every fence holds, nothing is taken over.
#[tokio::test]
async fn sqlite_keeps_no_leases() {
    let db = Db::new(Backend::Sqlite).await;
    let s = db.open().await;
    let op = leased_op(&s, 1, -1).await;
    s.commit(vec![
        Write::Fence {
            operation: op.id,
            fence: 7,
        },
        put(instance(1, 2, "step")),
    ])
    .await
    .unwrap();
    assert!(s.take_over_leases(1_000, 10).await.unwrap().is_empty());
    assert!(
        s.renew_leases(&[(op.id, 7)], 1_000)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Renewals and runners' commits lock lease rows in one order: a node renewing all its
/// leases while groups of commits fence several of them (in any order) never deadlocks
/// (PostgreSQL would break the cycle after its 1-s deadlock timeout with an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_renewals_and_fenced_commits_do_not_deadlock() {
    let db = Db::new(Backend::Postgres).await;
    let s = db.open().await;
    let mut ops = Vec::new();
    for n in 1..=24 {
        ops.push(leased_op(&s, n, 60_000).await);
    }
    let held: Vec<(uuid::Uuid, u64)> = ops.iter().map(|o| (o.id, 1)).collect();
    let renewer = {
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..60 {
                assert!(s.renew_leases(&held, 60_000).await.unwrap().is_empty());
            }
        })
    };
    // Concurrent commits (grouped by the writer), each fencing three leases, highest first.
    let mut writers = Vec::new();
    for w in 0..8usize {
        let s = s.clone();
        let ops = ops.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..15usize {
                let mut batch: Vec<Write> = (0..3)
                    .map(|k| Write::Fence {
                        operation: ops[(w * 3 + round + k * 7) % ops.len()].id,
                        fence: 1,
                    })
                    .collect();
                batch.reverse();
                batch.push(Write::KeyPair(kp(&format!("skey-{w}-{round}"))));
                s.commit(batch).await.unwrap();
            }
        }));
    }
    renewer.await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
}

async fn hosts_are_registered_reported_and_forgotten(backend: Backend) {
    use nubis_core::hosts::{Capacity, HostRecord};
    use nubis_store::HostReport;
    let db = Db::new(backend).await;
    let s = db.open().await;
    let d = s.host_directory().expect("host directory");
    let h = HostRecord {
        id: "host-1".into(),
        zone: "local-a".into(),
        sealed_secret: "sealed".into(),
        created_at_ms: 5,
        address: String::new(),
        driver: String::new(),
        capacity: Capacity::default(),
        last_seen_ms: 0,
    };
    d.create_host(&h).await.unwrap();
    assert!(matches!(
        d.create_host(&h).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(d.hosts().await.unwrap(), vec![h.clone()]);
    let report = HostReport {
        address: "http://127.0.0.1:7001".into(),
        driver: "sim".into(),
        capacity: Capacity {
            vcpus: 8,
            memory_mib: 1 << 40,
            disk_gib: 100,
        },
        seen_ms: 1_000,
        signed_ms: 900,
    };
    assert!(d.report_host("host-1", &report).await.unwrap());
    // Not newer than the last signed report: a replay, not recorded.
    let replay = HostReport {
        seen_ms: 2_000,
        ..report.clone()
    };
    assert!(!d.report_host("host-1", &replay).await.unwrap());
    assert!(!d.report_host("nobody", &report).await.unwrap());
    let stored = d.hosts().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].address, report.address);
    assert_eq!(
        stored[0].capacity, report.capacity,
        "wide values round-trip"
    );
    assert_eq!(stored[0].last_seen_ms, 1_000);
    // Survives a reopen; forgotten once.
    drop(s);
    let s = db.open().await;
    let d = s.host_directory().expect("host directory");
    assert_eq!(d.hosts().await.unwrap().len(), 1);
    assert!(d.delete_host("host-1").await.unwrap());
    assert!(!d.delete_host("host-1").await.unwrap());
    assert!(d.hosts().await.unwrap().is_empty());
}

fn placement_group(id: &str, name: &str) -> nubis_core::groups::PlacementGroup {
    nubis_core::groups::PlacementGroup {
        id: id.into(),
        tencent_id: "ps-00000001".into(),
        aliyun_id: "ds-00000000000000000001".into(),
        account: "a".into(),
        project: None,
        user_id: None,
        name: name.into(),
        description: String::new(),
        policy: nubis_core::groups::Policy::AntiAffinity,
        flavour: nubis_core::groups::Flavour::TencentHost,
        max_per_host: 2,
        group_count: 0,
        on_unable_to_redeploy: String::new(),
        client_token: Some("tok".into()),
        created_at_ms: 7,
    }
}

/// Migration 0013: a group is written whole (a rewrite replaces it), loaded at start-up,
/// read by ID (what a node replaying the journal does on a shared store) and deleted; an
/// instance keeps the group it names.
async fn placement_groups_are_written_read_by_id_and_deleted(backend: Backend) {
    let db = Db::new(backend).await;
    let (g1, g2) = (
        placement_group("11111111-1111-1111-1111-111111111111", "one"),
        placement_group("22222222-2222-2222-2222-222222222222", "two"),
    );
    let member = nubis_core::Instance {
        placement_group: Some(g1.id.clone()),
        ..instance(1, 1, "member")
    };
    {
        let s = db.open().await;
        s.commit(vec![
            Write::PlacementGroup(g1.clone()),
            Write::PlacementGroup(g2.clone()),
            put(member.clone()),
        ])
        .await
        .unwrap();
        s.commit(vec![
            Write::PlacementGroup(nubis_core::groups::PlacementGroup {
                name: "renamed".into(),
                ..g1.clone()
            }),
            Write::DeletePlacementGroup(g2.id.clone()),
        ])
        .await
        .unwrap();
    }
    let s = db.open().await;
    let snap = s.load().await.unwrap();
    assert_eq!(
        snap.placement_groups,
        vec![nubis_core::groups::PlacementGroup {
            name: "renamed".into(),
            ..g1.clone()
        }]
    );
    assert_eq!(stored(&s, 1).await.placement_group, Some(g1.id.clone()));
    if s.shared() {
        let got = s
            .placement_groups(&[g1.id.clone(), g2.id.clone()])
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            [g1.id.as_str()]
        );
    }
    s.commit(vec![Write::DeletePlacementGroup(g1.id.clone())])
        .await
        .unwrap();
    assert!(s.load().await.unwrap().placement_groups.is_empty());
}

/// Migration 0014: an image is written by generation (a stale write is refused and changes
/// nothing), loaded at start-up, read by ID, and its deletion is a rewrite that keeps its
/// UUID taken.
async fn images_are_written_conditionally_and_deleted_as_records(backend: Backend) {
    use nubis_core::images::{Image, ImageStatus, Visibility};
    let db = Db::new(backend).await;
    let img = Image {
        id: "img-abcd1234".into(),
        uuid: uuid::Uuid::from_u128(0x1234),
        account: Some("a".into()),
        visibility: Visibility::Private,
        protected: false,
        status: ImageStatus::Queued,
        generation: 1,
        ..Image::builtin(&nubis_core::catalog::IMAGES[0])
    };
    let s = db.open().await;
    s.commit(vec![Write::Image(Box::new(img.clone()))])
        .await
        .unwrap();
    let active = Image {
        status: ImageStatus::Active,
        generation: 2,
        ..img.clone()
    };
    s.commit(vec![Write::Image(Box::new(active.clone()))])
        .await
        .unwrap();
    // A second writer of generation 2 lost the race: refused, nothing of its batch lands.
    let stale = Image {
        name: "stale".into(),
        generation: 2,
        ..img.clone()
    };
    let e = s
        .commit(vec![
            Write::Image(Box::new(stale)),
            Write::Meta {
                key: "image-test".into(),
                value: "x".into(),
            },
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, nubis_store::StoreError::Conflict(_)), "{e:?}");
    drop(s);
    let s = db.open().await;
    let snap = s.load().await.unwrap();
    assert_eq!(snap.images, vec![active.clone()]);
    assert!(!snap.meta.iter().any(|(k, _)| k == "image-test"));
    let gone = Image {
        status: ImageStatus::Deleted,
        generation: 3,
        ..active.clone()
    };
    s.commit(vec![Write::Image(Box::new(gone.clone()))])
        .await
        .unwrap();
    if s.shared() {
        assert_eq!(
            s.images(std::slice::from_ref(&img.id)).await.unwrap(),
            vec![gone.clone()]
        );
    }
    assert_eq!(s.load().await.unwrap().images, vec![gone]);
    // Its UUID stays taken: another image cannot reuse it.
    let twin = Image {
        id: "img-zzzz9999".into(),
        generation: 1,
        ..img
    };
    assert!(s.commit(vec![Write::Image(Box::new(twin))]).await.is_err());
}

fn flavor(id: &str, name: &str) -> nubis_core::flavors::Flavor {
    nubis_core::flavors::Flavor {
        id: id.into(),
        name: name.into(),
        vcpus: 2,
        ram_mib: 512,
        disk_gib: 1,
        ephemeral_gib: 0,
        swap_mib: 0,
        rxtx_factor: 1.0,
        is_public: false,
        description: Some("d".into()),
        extra_specs: [("hw:cpu_policy".to_string(), "shared".to_string())].into(),
        projects: vec!["p1".into()],
        created_at_ms: 7,
    }
}

/// Migration 0015: a created instance type is written whole (a rewrite replaces it: access
/// and extra specs live in it), loaded at start-up, read by ID on a shared store and deleted;
/// an instance of it keeps the type's facts after the type is gone.
async fn instance_types_are_written_read_by_id_and_deleted(backend: Backend) {
    let db = Db::new(backend).await;
    let (f1, f2) = (flavor("m1.one", "one"), flavor("m1.two", "two"));
    let of_f1 = nubis_core::Instance {
        instance_type: f1.id.clone(),
        flavor: Some(f1.instance_type()),
        ..instance(1, 1, "of-f1")
    };
    {
        let s = db.open().await;
        s.commit(vec![
            Write::InstanceType(f1.clone()),
            Write::InstanceType(f2.clone()),
            put(of_f1.clone()),
        ])
        .await
        .unwrap();
        s.commit(vec![
            Write::InstanceType(nubis_core::flavors::Flavor {
                projects: vec!["p1".into(), "p2".into()],
                ..f1.clone()
            }),
            Write::DeleteInstanceType(f2.id.clone()),
        ])
        .await
        .unwrap();
    }
    let s = db.open().await;
    let snap = s.load().await.unwrap();
    let shared_f1 = nubis_core::flavors::Flavor {
        projects: vec!["p1".into(), "p2".into()],
        ..f1.clone()
    };
    assert_eq!(snap.instance_types, vec![shared_f1]);
    if s.shared() {
        let got = s
            .instance_types(&[f1.id.clone(), f2.id.clone()])
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            [f1.id.as_str()]
        );
    }
    s.commit(vec![Write::DeleteInstanceType(f1.id.clone())])
        .await
        .unwrap();
    assert!(s.load().await.unwrap().instance_types.is_empty());
    let kept = stored(&s, 1).await;
    assert_eq!(kept.type_facts(), Some(&f1.instance_type()));
}

async fn metadef_namespaces_are_written_conditionally_renamed_and_deleted(backend: Backend) {
    use nubis_core::metadefs::{Entry, Namespace};
    use nubis_store::StoreError;
    let db = Db::new(backend).await;
    let s = db.open().await;
    let m = s.metadefs().expect("metadef catalog");
    let ns = Namespace::new("id-1".into(), "OS::Test".into(), "p".into(), 5);
    assert!(m.put_metadef_namespace(&ns).await.unwrap());
    // The same name again (another ID): the unique name refuses it.
    let twin = Namespace::new("id-2".into(), "OS::Test".into(), "p".into(), 6);
    assert!(matches!(
        m.put_metadef_namespace(&twin).await,
        Err(StoreError::Conflict(_))
    ));
    // Two writers read generation 1: the first lands, the second is stale.
    let mut a = ns.clone();
    a.generation = 2;
    a.tags.push(Entry {
        name: "t".into(),
        body: Default::default(),
        created_ms: 7,
        updated_ms: 7,
    });
    let mut b = ns.clone();
    b.generation = 2;
    b.description = Some("lost".into());
    assert!(m.put_metadef_namespace(&a).await.unwrap());
    assert!(!m.put_metadef_namespace(&b).await.unwrap());
    assert_eq!(
        m.metadef_namespace("OS::Test").await.unwrap(),
        Some(a.clone())
    );
    // A rename keeps the row; the old name is free, a taken one refused.
    let other = Namespace::new("id-3".into(), "Other".into(), "p".into(), 8);
    assert!(m.put_metadef_namespace(&other).await.unwrap());
    let mut renamed = a.clone();
    renamed.generation = 3;
    renamed.namespace = "Other".into();
    assert!(matches!(
        m.put_metadef_namespace(&renamed).await,
        Err(StoreError::Conflict(_))
    ));
    renamed.namespace = "Renamed".into();
    assert!(m.put_metadef_namespace(&renamed).await.unwrap());
    assert_eq!(m.metadef_namespace("OS::Test").await.unwrap(), None);
    // Oldest first, and it survives a reopen.
    drop(s);
    let s = db.open().await;
    let m = s.metadefs().expect("metadef catalog");
    let all = m.metadef_namespaces().await.unwrap();
    let names: Vec<&str> = all.iter().map(|n| n.namespace.as_str()).collect();
    assert_eq!(names, ["Renamed", "Other"]);
    // A delete at a stale generation changes nothing.
    assert!(!m.delete_metadef_namespace("id-1", 2).await.unwrap());
    assert!(m.delete_metadef_namespace("id-1", 3).await.unwrap());
    assert_eq!(m.metadef_namespaces().await.unwrap().len(), 1);
}
