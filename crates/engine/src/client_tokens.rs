//! ClientToken idempotency across the nodes of a shared store (docs/postgres.md "Cluster-wide
//! state"). One process remembers its tokens in the fleet (`Fleet::token_instances`); several
//! nodes decide in the store: a create with a ClientToken first inserts a claim row
//! `(account, token)` — the unique key picks one winner among any number of concurrent
//! creates on any nodes. The winner creates, and its commit records the instance IDs on the
//! claim ([`Write::ClientToken`]); a failed create drops its claim. Every other create waits
//! (polling the store, bounded) for those instances and answers them as a replay does on one
//! node. On SQLite nothing here runs.

use crate::{CLIENT_TOKEN_TTL_MS, Engine, now_ms, store_err};
use nubis_core::{CreateSpec, DomainError, Instance, Principal};
use nubis_store::{Store, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a create waits for the winner of its token to commit.
const WAIT: Duration = Duration::from_secs(10);
/// How often it looks.
const POLL: Duration = Duration::from_millis(50);
/// A claim still without instances this long after it was taken belongs to a create that
/// died (a node killed mid-create): the next create with the token takes it over. A create
/// commits within milliseconds of its claim; one slower than this would make a second set of
/// instances (documented).
pub(crate) const STALE_MS: i64 = 30_000;
/// Times a create retakes a token whose instances are all gone before it gives up.
const RETAKES: u32 = 3;

/// What a create does about its ClientToken.
pub(crate) enum Claimed {
    /// Create: the claim (if any) is this create's.
    Go(TokenClaim),
    /// Answer these: the token's instances, as a replay.
    Replay(Vec<Instance>),
}

/// A create's claim on its ClientToken; dropped before [`TokenClaim::committed`], it is
/// released so that the next create with the token may try.
#[derive(Default)]
pub(crate) struct TokenClaim {
    held: Option<Held>,
}

struct Held {
    store: Arc<dyn Store>,
    account: String,
    token: String,
    claim: String,
}

impl TokenClaim {
    /// The write that records the created instances on the claim, in the create's commit.
    pub(crate) fn write(&self, instances: &[Uuid]) -> Option<Write> {
        self.held.as_ref().map(|h| Write::ClientToken {
            account: h.account.clone(),
            token: h.token.clone(),
            claim: h.claim.clone(),
            instances: instances.to_vec(),
        })
    }

    /// The create committed: the claim stays, with its instances.
    pub(crate) fn committed(mut self) {
        self.held = None;
    }
}

impl Drop for TokenClaim {
    fn drop(&mut self) {
        let Some(h) = self.held.take() else {
            return;
        };
        // The create failed: in the background, as drop cannot wait (a claim left behind
        // goes stale after STALE_MS anyway).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Some(state) = h.store.cluster()
                    && let Err(e) = state
                        .release_client_token(&h.account, &h.token, &h.claim)
                        .await
                {
                    tracing::warn!(error = %e, "releasing a ClientToken claim");
                }
            });
        }
    }
}

impl Engine {
    /// Before a create: on a shared store, claim the spec's ClientToken, or wait for the
    /// create that holds it and return its instances. A dry run claims nothing (it only
    /// looks). Without a token or a shared store: [`Claimed::Go`] with no claim.
    pub(crate) async fn claim_client_token(
        &self,
        p: &Principal,
        spec: &CreateSpec,
        dry_run: bool,
    ) -> Result<Claimed, DomainError> {
        let store = &self.inner.store;
        let (Some(token), true, Some(state)) =
            (&spec.client_token, store.shared(), store.cluster())
        else {
            return Ok(Claimed::Go(TokenClaim::default()));
        };
        let account = p.account.as_str();
        let claim = Uuid::new_v4().to_string();
        let deadline = Instant::now() + WAIT;
        let mut retakes = 0;
        loop {
            self.check_store()?;
            let now = now_ms();
            let held = if dry_run {
                state
                    .client_token(account, token)
                    .await
                    .map_err(store_err)?
                    .filter(|v| now.saturating_sub(v.claimed_ms) < CLIENT_TOKEN_TTL_MS)
            } else {
                state
                    .claim_client_token(
                        account,
                        token,
                        &claim,
                        now,
                        now.saturating_sub(CLIENT_TOKEN_TTL_MS),
                        now.saturating_sub(STALE_MS),
                    )
                    .await
                    .map_err(store_err)?
            };
            let Some(view) = held else {
                return Ok(Claimed::Go(TokenClaim {
                    held: (!dry_run).then(|| Held {
                        store: Arc::clone(store),
                        account: account.to_string(),
                        token: token.clone(),
                        claim,
                    }),
                }));
            };
            match view.instances {
                Some(stored) => {
                    let live = self.token_replay(stored);
                    if !live.is_empty() {
                        return Ok(Claimed::Replay(live));
                    }
                    if dry_run {
                        return Ok(Claimed::Go(TokenClaim::default()));
                    }
                    // Every instance it made is gone: the token launches anew, as on one
                    // node. Its claim goes; the next turn claims it for this create.
                    retakes += 1;
                    if retakes > RETAKES {
                        return Err(DomainError::Unavailable(
                            "the ClientToken is contended; retry".into(),
                        ));
                    }
                    state
                        .release_client_token(account, token, &view.claim)
                        .await
                        .map_err(store_err)?;
                }
                None if dry_run => return Ok(Claimed::Go(TokenClaim::default())),
                None => {
                    if Instant::now() >= deadline {
                        return Err(DomainError::Unavailable(
                            "another request with this ClientToken is still creating its instances"
                                .into(),
                        ));
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// The token's instances as a replay answers them: this node's copy where it has one
    /// (it may be newer than the stored record it was read with), the stored record
    /// otherwise; only those still listed, in their order.
    fn token_replay(&self, stored: Vec<Instance>) -> Vec<Instance> {
        let fleet = self.inner.fleet.lock();
        stored
            .into_iter()
            .map(|i| fleet.instances.cloned(&i.uuid).unwrap_or(i))
            .filter(|i| i.state.is_listed())
            .collect()
    }
}
