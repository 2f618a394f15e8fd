//! Cluster-wide state (migration 0010, docs/postgres.md "Cluster-wide state"): signature
//! nonces, per-second rate windows, ClientToken claims and Keystone tokens, which one process
//! keeps in memory and several nodes of one database must share. Each operation is one or two
//! single-statement round trips outside the writer's group commit: they are not part of a
//! mutation's batch (except a claim's instances, [`crate::Write::ClientToken`]), and must not
//! wait behind it.
//!
//! The SQL is written once, in PostgreSQL's `$n` placeholders; SQLite reads `?n` for them
//! ([`lite`]). Both accept `INSERT … ON CONFLICT … DO UPDATE … WHERE` and `RETURNING`.

use crate::shared::{decode, unavailable};
use crate::{PgStore, SqliteStore, StoreError};
use async_trait::async_trait;
use nubis_core::Instance;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

/// The outcome of spending a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceSpend {
    /// Recorded: the first use of this nonce while it is live.
    Spent,
    /// Still live: a replay.
    Used,
    /// The key already holds its maximum of live nonces.
    Full,
}

/// A ClientToken claim held by some create.
#[derive(Debug, Clone)]
pub struct ClaimView {
    /// The create that holds it.
    pub claim: String,
    pub claimed_ms: i64,
    /// The instances its commit recorded (their stored records, those still in the store);
    /// `None` while that create has not committed.
    pub instances: Option<Vec<Instance>>,
}

/// The cluster-wide state a shared store keeps (see the module doc).
#[async_trait]
pub trait ClusterState: Send + Sync {
    /// Spends `nonce` of `access_key_id` in `scope` (the dialect) until `expires_at` (unix
    /// seconds): [`NonceSpend::Used`] while a live row (expiry `>= now`) holds it,
    /// [`NonceSpend::Full`] when the key already holds `max_per_key` live nonces (a replay
    /// is reported first). Of two concurrent spends of one nonce, on any nodes, one wins.
    async fn spend_nonce(
        &self,
        scope: &str,
        access_key_id: &str,
        nonce: &str,
        now: i64,
        expires_at: i64,
        max_per_key: usize,
    ) -> Result<NonceSpend, StoreError>;
    /// Counts one request of `action` by `account` in the one-second window `window_s` (unix
    /// seconds) and returns the window's count, this request included.
    async fn count_request(
        &self,
        account: &str,
        action: &str,
        window_s: i64,
    ) -> Result<u64, StoreError>;
    /// Claims `(account, token)` for the create `claim` at `now_ms`: `None` when it won (no
    /// claim, or one older than `expired_before_ms`, or one still without instances older
    /// than `stale_before_ms`: its create died), else the claim that holds it.
    async fn claim_client_token(
        &self,
        account: &str,
        token: &str,
        claim: &str,
        now_ms: i64,
        expired_before_ms: i64,
        stale_before_ms: i64,
    ) -> Result<Option<ClaimView>, StoreError>;
    /// The claim on `(account, token)`, if any.
    async fn client_token(
        &self,
        account: &str,
        token: &str,
    ) -> Result<Option<ClaimView>, StoreError>;
    /// Drops the claim on `(account, token)` if `claim` still holds it.
    async fn release_client_token(
        &self,
        account: &str,
        token: &str,
        claim: &str,
    ) -> Result<(), StoreError>;
    /// Stores a Keystone token under its digest, first dropping `user`'s expired tokens and
    /// its oldest beyond `max_per_user - 1` live ones.
    #[allow(clippy::too_many_arguments)] // the row's columns, the clock and the bound
    async fn put_keystone_token(
        &self,
        digest: &str,
        user: &str,
        issued_ms: i64,
        expires_at: i64,
        data: &str,
        now: i64,
        max_per_user: usize,
    ) -> Result<(), StoreError>;
    /// A token's document, if stored and not expired at `now` (unix seconds).
    async fn keystone_token(&self, digest: &str, now: i64) -> Result<Option<String>, StoreError>;
    /// Forgets a token; whether it was stored.
    async fn revoke_keystone_token(&self, digest: &str) -> Result<bool, StoreError>;
    /// How many live tokens `user` holds.
    async fn keystone_tokens_of(&self, user: &str, now: i64) -> Result<usize, StoreError>;
    /// Deletes what expired: nonces and Keystone tokens past their expiry, rate windows over
    /// a minute old, ClientToken claims claimed before `claims_before_ms`. Returns how many
    /// rows went.
    async fn sweep_cluster_state(
        &self,
        now_ms: i64,
        claims_before_ms: i64,
    ) -> Result<u64, StoreError>;
}

/// The statement in SQLite's placeholders.
fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const SPEND_NONCE: &str = "INSERT INTO signature_nonces (scope, access_key_id, nonce, expires_at) \
     SELECT $1, $2, $3, CAST($4 AS BIGINT) \
     WHERE (SELECT COUNT(*) FROM (SELECT 1 FROM signature_nonces \
            WHERE scope = $1 AND access_key_id = $2 AND expires_at >= $5 LIMIT $6) AS live) < $6 \
     ON CONFLICT (scope, access_key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at \
     WHERE signature_nonces.expires_at < $5";
const NONCE_LIVE: &str = "SELECT COUNT(*) FROM signature_nonces \
     WHERE scope = $1 AND access_key_id = $2 AND nonce = $3 AND expires_at >= $4";
const COUNT_REQUEST: &str = "INSERT INTO rate_windows (account, action, window_s, n) VALUES ($1, $2, $3, 1) \
     ON CONFLICT (account, action, window_s) DO UPDATE SET n = rate_windows.n + 1 RETURNING n";
const CLAIM: &str = "INSERT INTO client_tokens (account, token, claim, claimed_ms, instances) \
     VALUES ($1, $2, $3, $4, NULL) \
     ON CONFLICT (account, token) DO UPDATE SET claim = excluded.claim, \
        claimed_ms = excluded.claimed_ms, instances = NULL \
     WHERE client_tokens.claimed_ms < $5 \
        OR (client_tokens.instances IS NULL AND client_tokens.claimed_ms < $6) \
     RETURNING claim";
const CLAIM_VIEW: &str =
    "SELECT claim, claimed_ms, instances FROM client_tokens WHERE account = $1 AND token = $2";
const INSTANCE: &str = "SELECT data FROM instances WHERE uuid = $1";
const RELEASE: &str = "DELETE FROM client_tokens WHERE account = $1 AND token = $2 AND claim = $3";
/// Recording a create's instances on its claim (the `Write::ClientToken` of its commit).
pub(crate) const RECORD_CLAIM: &str = "UPDATE client_tokens SET instances = $4 \
     WHERE account = $1 AND token = $2 AND claim = $3";
const DROP_EXPIRED_TOKENS: &str =
    "DELETE FROM keystone_tokens WHERE user_name = $1 AND expires_at <= $2";
const EVICT_TOKENS: &str = "DELETE FROM keystone_tokens WHERE digest IN \
     (SELECT digest FROM keystone_tokens WHERE user_name = $1 \
      ORDER BY issued_ms DESC, digest DESC LIMIT $2 OFFSET $3)";
const PUT_TOKEN: &str = "INSERT INTO keystone_tokens (digest, user_name, issued_ms, expires_at, data) \
     VALUES ($1, $2, $3, $4, $5)";
const GET_TOKEN: &str = "SELECT data FROM keystone_tokens WHERE digest = $1 AND expires_at > $2";
const REVOKE_TOKEN: &str = "DELETE FROM keystone_tokens WHERE digest = $1";
const COUNT_TOKENS: &str =
    "SELECT COUNT(*) FROM keystone_tokens WHERE user_name = $1 AND expires_at > $2";
/// (statement, which bound it takes: 0 = now in seconds, 1 = a minute ago, 2 = the claims'
/// cut-off in ms).
const SWEEPS: &[(&str, u8)] = &[
    ("DELETE FROM signature_nonces WHERE expires_at < $1", 0),
    ("DELETE FROM keystone_tokens WHERE expires_at <= $1", 0),
    ("DELETE FROM rate_windows WHERE window_s < $1", 1),
    ("DELETE FROM client_tokens WHERE claimed_ms < $1", 2),
];

fn sweep_bound(which: u8, now_ms: i64, claims_before_ms: i64) -> i64 {
    let now = now_ms.div_euclid(1000);
    match which {
        0 => now,
        1 => now - 60,
        _ => claims_before_ms,
    }
}

/// The UUIDs a claim's `instances` column names.
fn claim_ids(column: Option<String>) -> Result<Option<Vec<Uuid>>, StoreError> {
    column.map(|s| decode::<Vec<Uuid>>(&s)).transpose()
}

/// The JSON a claim's `instances` column holds.
pub(crate) fn ids_json(ids: &[Uuid]) -> String {
    crate::shared::json(&ids)
}

#[async_trait]
impl ClusterState for SqliteStore {
    async fn spend_nonce(
        &self,
        scope: &str,
        access_key_id: &str,
        nonce: &str,
        now: i64,
        expires_at: i64,
        max_per_key: usize,
    ) -> Result<NonceSpend, StoreError> {
        let (scope, key, nonce) = (scope.to_owned(), access_key_id.to_owned(), nonce.to_owned());
        let max = count(max_per_key);
        self.read(move |conn| {
            let inserted = conn
                .prepare_cached(&lite(SPEND_NONCE))
                .and_then(|mut st| st.execute(params![scope, key, nonce, expires_at, now, max]))
                .map_err(unavailable)?;
            if inserted > 0 {
                return Ok(NonceSpend::Spent);
            }
            let live: i64 = conn
                .query_row(&lite(NONCE_LIVE), params![scope, key, nonce, now], |r| {
                    r.get(0)
                })
                .map_err(unavailable)?;
            Ok(if live > 0 {
                NonceSpend::Used
            } else {
                NonceSpend::Full
            })
        })
        .await
    }

    async fn count_request(
        &self,
        account: &str,
        action: &str,
        window_s: i64,
    ) -> Result<u64, StoreError> {
        let (account, action) = (account.to_owned(), action.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(&lite(COUNT_REQUEST))
                .and_then(|mut st| {
                    st.query_row(params![account, action, window_s], |r| r.get::<_, i64>(0))
                })
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(unavailable)
        })
        .await
    }

    async fn claim_client_token(
        &self,
        account: &str,
        token: &str,
        claim: &str,
        now_ms: i64,
        expired_before_ms: i64,
        stale_before_ms: i64,
    ) -> Result<Option<ClaimView>, StoreError> {
        let (account, token, claim) = (account.to_owned(), token.to_owned(), claim.to_owned());
        self.read(move |conn| {
            let won = conn
                .query_row(
                    &lite(CLAIM),
                    params![
                        account,
                        token,
                        claim,
                        now_ms,
                        expired_before_ms,
                        stale_before_ms
                    ],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(unavailable)?;
            if won.is_some() {
                return Ok(None);
            }
            lite_claim_view(conn, &account, &token)
        })
        .await
    }

    async fn client_token(
        &self,
        account: &str,
        token: &str,
    ) -> Result<Option<ClaimView>, StoreError> {
        let (account, token) = (account.to_owned(), token.to_owned());
        self.read(move |conn| lite_claim_view(conn, &account, &token))
            .await
    }

    async fn release_client_token(
        &self,
        account: &str,
        token: &str,
        claim: &str,
    ) -> Result<(), StoreError> {
        let (account, token, claim) = (account.to_owned(), token.to_owned(), claim.to_owned());
        self.read(move |conn| {
            conn.execute(&lite(RELEASE), params![account, token, claim])
                .map(drop)
                .map_err(unavailable)
        })
        .await
    }

    async fn put_keystone_token(
        &self,
        digest: &str,
        user: &str,
        issued_ms: i64,
        expires_at: i64,
        data: &str,
        now: i64,
        max_per_user: usize,
    ) -> Result<(), StoreError> {
        let (digest, user, data) = (digest.to_owned(), user.to_owned(), data.to_owned());
        let keep = count(max_per_user.saturating_sub(1));
        self.read(move |conn| {
            conn.execute(&lite(DROP_EXPIRED_TOKENS), params![user, now])
                .map_err(unavailable)?;
            conn.execute(&lite(EVICT_TOKENS), params![user, i64::MAX, keep])
                .map_err(unavailable)?;
            conn.execute(
                &lite(PUT_TOKEN),
                params![digest, user, issued_ms, expires_at, data],
            )
            .map(drop)
            .map_err(crate::sqlite::db_write_error)
        })
        .await
    }

    async fn keystone_token(&self, digest: &str, now: i64) -> Result<Option<String>, StoreError> {
        let digest = digest.to_owned();
        self.read(move |conn| {
            conn.query_row(&lite(GET_TOKEN), params![digest, now], |r| r.get(0))
                .optional()
                .map_err(unavailable)
        })
        .await
    }

    async fn revoke_keystone_token(&self, digest: &str) -> Result<bool, StoreError> {
        let digest = digest.to_owned();
        self.read(move |conn| {
            conn.execute(&lite(REVOKE_TOKEN), params![digest])
                .map(|n| n > 0)
                .map_err(unavailable)
        })
        .await
    }

    async fn keystone_tokens_of(&self, user: &str, now: i64) -> Result<usize, StoreError> {
        let user = user.to_owned();
        self.read(move |conn| {
            conn.query_row(&lite(COUNT_TOKENS), params![user, now], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(unavailable)
        })
        .await
    }

    async fn sweep_cluster_state(
        &self,
        now_ms: i64,
        claims_before_ms: i64,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| {
            let mut gone = 0u64;
            for (sql, which) in SWEEPS {
                let bound = sweep_bound(*which, now_ms, claims_before_ms);
                gone += conn
                    .execute(&lite(sql), params![bound])
                    .map_err(unavailable)? as u64;
            }
            Ok(gone)
        })
        .await
    }
}

fn lite_claim_view(
    conn: &rusqlite::Connection,
    account: &str,
    token: &str,
) -> Result<Option<ClaimView>, StoreError> {
    let row = conn
        .query_row(&lite(CLAIM_VIEW), params![account, token], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()
        .map_err(unavailable)?;
    let Some((claim, claimed_ms, ids)) = row else {
        return Ok(None);
    };
    let instances = match claim_ids(ids)? {
        None => None,
        Some(ids) => {
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                let doc = conn
                    .query_row(&lite(INSTANCE), params![id.to_string()], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()
                    .map_err(unavailable)?;
                if let Some(doc) = doc {
                    found.push(decode(&doc)?);
                }
            }
            Some(found)
        }
    };
    Ok(Some(ClaimView {
        claim,
        claimed_ms,
        instances,
    }))
}

#[async_trait]
impl ClusterState for PgStore {
    async fn spend_nonce(
        &self,
        scope: &str,
        access_key_id: &str,
        nonce: &str,
        now: i64,
        expires_at: i64,
        max_per_key: usize,
    ) -> Result<NonceSpend, StoreError> {
        let client = self.client().await?;
        let max = count(max_per_key);
        let st = client
            .prepare_cached(SPEND_NONCE)
            .await
            .map_err(crate::postgres::pg)?;
        let inserted = client
            .execute(
                &st,
                &[&scope, &access_key_id, &nonce, &expires_at, &now, &max],
            )
            .await
            .map_err(crate::postgres::pg)?;
        if inserted > 0 {
            return Ok(NonceSpend::Spent);
        }
        let live: i64 = client
            .query_one(NONCE_LIVE, &[&scope, &access_key_id, &nonce, &now])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(crate::postgres::pg)?;
        Ok(if live > 0 {
            NonceSpend::Used
        } else {
            NonceSpend::Full
        })
    }

    async fn count_request(
        &self,
        account: &str,
        action: &str,
        window_s: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(COUNT_REQUEST)
            .await
            .map_err(crate::postgres::pg)?;
        let n: i64 = client
            .query_one(&st, &[&account, &action, &window_s])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(crate::postgres::pg)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn claim_client_token(
        &self,
        account: &str,
        token: &str,
        claim: &str,
        now_ms: i64,
        expired_before_ms: i64,
        stale_before_ms: i64,
    ) -> Result<Option<ClaimView>, StoreError> {
        let client = self.client().await?;
        let won = client
            .query_opt(
                CLAIM,
                &[
                    &account,
                    &token,
                    &claim,
                    &now_ms,
                    &expired_before_ms,
                    &stale_before_ms,
                ],
            )
            .await
            .map_err(crate::postgres::pg)?;
        if won.is_some() {
            return Ok(None);
        }
        pg_claim_view(&client, account, token).await
    }

    async fn client_token(
        &self,
        account: &str,
        token: &str,
    ) -> Result<Option<ClaimView>, StoreError> {
        let client = self.client().await?;
        pg_claim_view(&client, account, token).await
    }

    async fn release_client_token(
        &self,
        account: &str,
        token: &str,
        claim: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(RELEASE, &[&account, &token, &claim])
            .await
            .map(drop)
            .map_err(crate::postgres::pg)
    }

    async fn put_keystone_token(
        &self,
        digest: &str,
        user: &str,
        issued_ms: i64,
        expires_at: i64,
        data: &str,
        now: i64,
        max_per_user: usize,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let keep = count(max_per_user.saturating_sub(1));
        let pg = crate::postgres::pg;
        client
            .execute(DROP_EXPIRED_TOKENS, &[&user, &now])
            .await
            .map_err(pg)?;
        client
            .execute(EVICT_TOKENS, &[&user, &i64::MAX, &keep])
            .await
            .map_err(pg)?;
        client
            .execute(PUT_TOKEN, &[&digest, &user, &issued_ms, &expires_at, &data])
            .await
            .map(drop)
            .map_err(crate::postgres::db_write_error)
    }

    async fn keystone_token(&self, digest: &str, now: i64) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(GET_TOKEN)
            .await
            .map_err(crate::postgres::pg)?;
        let row = client
            .query_opt(&st, &[&digest, &now])
            .await
            .map_err(crate::postgres::pg)?;
        row.map(|r| r.try_get(0).map_err(crate::postgres::pg))
            .transpose()
    }

    async fn revoke_keystone_token(&self, digest: &str) -> Result<bool, StoreError> {
        self.client()
            .await?
            .execute(REVOKE_TOKEN, &[&digest])
            .await
            .map(|n| n > 0)
            .map_err(crate::postgres::pg)
    }

    async fn keystone_tokens_of(&self, user: &str, now: i64) -> Result<usize, StoreError> {
        let n: i64 = self
            .client()
            .await?
            .query_one(COUNT_TOKENS, &[&user, &now])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(crate::postgres::pg)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn sweep_cluster_state(
        &self,
        now_ms: i64,
        claims_before_ms: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let mut gone = 0;
        for (sql, which) in SWEEPS {
            let bound = sweep_bound(*which, now_ms, claims_before_ms);
            gone += client
                .execute(*sql, &[&bound])
                .await
                .map_err(crate::postgres::pg)?;
        }
        Ok(gone)
    }
}

async fn pg_claim_view(
    client: &tokio_postgres::Client,
    account: &str,
    token: &str,
) -> Result<Option<ClaimView>, StoreError> {
    let pg = crate::postgres::pg;
    let Some(row) = client
        .query_opt(CLAIM_VIEW, &[&account, &token])
        .await
        .map_err(pg)?
    else {
        return Ok(None);
    };
    let claim: String = row.try_get(0).map_err(pg)?;
    let claimed_ms: i64 = row.try_get(1).map_err(pg)?;
    let instances = match claim_ids(row.try_get(2).map_err(pg)?)? {
        None => None,
        Some(ids) => {
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(r) = client
                    .query_opt(INSTANCE, &[&id.to_string()])
                    .await
                    .map_err(pg)?
                {
                    found.push(decode(&r.try_get::<_, String>(0).map_err(pg)?)?);
                }
            }
            Some(found)
        }
    };
    Ok(Some(ClaimView {
        claim,
        claimed_ms,
        instances,
    }))
}
