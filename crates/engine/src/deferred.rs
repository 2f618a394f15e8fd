//! The reclaim of soft-deleted instances (Nova `reclaim_instance_interval`,
//! docs/deferred-delete.md): a tick deletes each instance soft-deleted longer ago than the
//! interval, as an operator's delete. Safe with several nodes on one store: each node may
//! find the same instance due, but the delete is a generation-checked commit and a second
//! one finds it already being deleted (core's deletion table), so it is deleted once.

use crate::{Command, Engine, now_ms};
use std::time::Duration;
use uuid::Uuid;

/// How often the tick looks at most (a short interval is looked at more often).
const MAX_TICK: Duration = Duration::from_secs(10);

/// At most this many deletes a round: the next round takes the rest.
const PER_ROUND: usize = 100;

impl Engine {
    pub(crate) fn spawn_reclaim_tick(&self, interval: Duration) {
        let every = (interval / 4).clamp(Duration::from_millis(200), MAX_TICK);
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        self.spawn_tick(every, move |e: Engine| async move {
            e.reclaim_round(interval_ms).await;
        });
    }

    /// Delete the soft-deleted instances that are due; returns how many deletes were
    /// accepted.
    pub async fn reclaim_round(&self, interval_ms: i64) -> usize {
        let now = now_ms();
        let due: Vec<Uuid> = {
            let fleet = self.inner.fleet.lock();
            // Only soft-deleted instances are built from their records to be checked.
            (fleet.instances.read().rows())
                .filter(|r| r.state() == nubis_core::InstanceState::SoftDeleted)
                .map(|r| r.instance())
                .filter(|i| nubis_core::rules::reclaim_due(i, interval_ms, now))
                .map(|i| i.uuid)
                .take(PER_ROUND)
                .collect()
        };
        let mut done = 0;
        for id in due {
            let rid = nubis_core::ids::new_request_id();
            match self
                .submit(
                    &crate::admin::operator(),
                    &rid,
                    &[id],
                    Command::Delete { admin: true },
                    false,
                )
                .await
            {
                Ok(()) => {
                    tracing::info!(instance = %id, request = %rid, "reclaiming a soft-deleted instance");
                    done += 1;
                }
                // Restored, deleted or reclaimed elsewhere meanwhile: nothing to do.
                Err(e) => tracing::debug!(instance = %id, error = %e, "not reclaimed"),
            }
        }
        done
    }
}
