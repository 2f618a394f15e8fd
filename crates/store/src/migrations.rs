//! The schema, one source of truth for both backends: the files in `migrations/` are written
//! in the SQL that SQLite and PostgreSQL share, and [`postgres`] is the one place that turns
//! them into PostgreSQL's dialect. The differences, all of them:
//!
//! - `INTEGER` → `BIGINT`: SQLite's INTEGER is 64-bit, PostgreSQL's is 32-bit, and we keep
//!   millisecond times and u64 IDs (stored as i64) in those columns. Every `INTEGER PRIMARY KEY`
//!   is given its value by nubis, so SQLite's rowid alias needs no SERIAL counterpart.
//! - `TEXT` → `TEXT COLLATE "C"`: SQLite compares text byte by byte; PostgreSQL's default
//!   collation follows the locale. Audit pages are ordered and resumed by ID, which must sort
//!   the same on both.
//! - Insertion order: SQLite reads some tables in `rowid` order (operations of a request,
//!   Keystone objects); PostgreSQL has no rowid, so those tables get a `seq BIGSERIAL` column
//!   ([`POSTGRES_EXTRA`]), kept by upserts like a rowid.
//!
//! Both backends record applied versions in `schema_version`.

/// (version, SQL), applied in order; a version is never edited once released.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_user_data.sql")),
    (3, include_str!("../migrations/0003_tenancy.sql")),
    (4, include_str!("../migrations/0004_credentials.sql")),
    (5, include_str!("../migrations/0005_audit.sql")),
    (6, include_str!("../migrations/0006_keystone.sql")),
    (7, include_str!("../migrations/0007_quotas.sql")),
    (8, include_str!("../migrations/0008_generations.sql")),
    (9, include_str!("../migrations/0009_changes.sql")),
    (10, include_str!("../migrations/0010_cluster_state.sql")),
    (11, include_str!("../migrations/0011_leases.sql")),
    (12, include_str!("../migrations/0012_hosts.sql")),
    (13, include_str!("../migrations/0013_placement_groups.sql")),
    (14, include_str!("../migrations/0014_images.sql")),
    (15, include_str!("../migrations/0015_instance_types.sql")),
    (16, include_str!("../migrations/0016_metadefs.sql")),
    (17, include_str!("../migrations/0017_injected_files.sql")),
    (18, include_str!("../migrations/0018_migrations.sql")),
    (19, include_str!("../migrations/0019_system_events.sql")),
    (20, include_str!("../migrations/0020_running_ops.sql")),
];

/// The version table, created before the first migration on both backends.
pub const SCHEMA_VERSION: &str =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)";

/// PostgreSQL-only statements run right after the shared migration of the same version.
const POSTGRES_EXTRA: &[(i64, &str)] = &[
    (1, "ALTER TABLE operations ADD COLUMN seq BIGSERIAL;"),
    (6, "ALTER TABLE keystone_objects ADD COLUMN seq BIGSERIAL;"),
    (18, "ALTER TABLE migrations ADD COLUMN seq BIGSERIAL;"),
];

/// One shared migration in PostgreSQL's dialect (see the module doc).
pub fn postgres(version: i64, sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(pos) = rest.find(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        out.push_str(match word {
            "INTEGER" => "BIGINT",
            "TEXT" => "TEXT COLLATE \"C\"",
            w => w,
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    for (_, extra) in POSTGRES_EXTRA.iter().filter(|(v, _)| *v == version) {
        out.push('\n');
        out.push_str(extra);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_widens_integers_collates_text_and_adds_sequences() {
        let sql = postgres(
            1,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, context_x INTEGERS);",
        );
        assert_eq!(
            sql,
            "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT COLLATE \"C\" NOT NULL, context_x INTEGERS);\n\
             ALTER TABLE operations ADD COLUMN seq BIGSERIAL;"
        );
        assert_eq!(postgres(2, "x TEXT"), "x TEXT COLLATE \"C\"");
    }

    #[test]
    fn versions_are_ordered() {
        // Strictly increasing (not yet dense: 0008 and 0010 come from parallel branches; the
        // merge restores the dense check).
        assert_eq!(MIGRATIONS.first().map(|(v, _)| *v), Some(1));
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0);
        }
        assert!(
            POSTGRES_EXTRA
                .iter()
                .all(|(v, _)| MIGRATIONS.iter().any(|(m, _)| m == v))
        );
    }
}
