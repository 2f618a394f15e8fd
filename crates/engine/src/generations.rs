//! Generation-checked writes, commit-then-apply (docs/postgres.md, "Generations"). A
//! mutation of instances plans on copies under the fleet lock, gives each copy the next
//! generation, releases the lock and commits; only a committed record reaches the fleet, and
//! only over the generation its plan read. The store refuses a record whose previous
//! generation is not the stored one ([`StoreError::Conflict`]): the writer then reads those
//! instances back ([`Engine::reload_instances`]) and plans again, a bounded number of times.

use crate::{Engine, Fleet, store_err};
use nubis_core::{DomainError, Instance, InstanceState};
use nubis_store::{StoreError, Write};
use uuid::Uuid;

/// How many times a request plans again after losing a race on an instance's generation;
/// each loss means another writer changed it, so the next plan usually answers that change's
/// state or lock error instead.
pub(crate) const RETRIES: usize = 3;

/// What a request answers when it lost every race it was given.
pub(crate) fn busy() -> DomainError {
    DomainError::Unavailable("the instance is changing; try again".into())
}

/// A commit's outcome for a writer that re-plans: lost a race, or failed.
pub(crate) enum Refused {
    /// An instance record (or a unique ID) was taken by another writer meanwhile.
    Stale,
    Failed(DomainError),
}

impl From<DomainError> for Refused {
    fn from(e: DomainError) -> Self {
        Self::Failed(e)
    }
}

impl Fleet {
    /// Put a committed record in memory if the fleet's copy is the generation it follows (an
    /// instance not in memory is taken only as a new one, generation 1). Otherwise memory
    /// already holds a newer record (read back after another writer won) and keeps it. A
    /// terminated record leaves the fleet. True when applied.
    pub(crate) fn apply_committed(&mut self, inst: Instance) -> bool {
        match self.instances.get(&inst.uuid).map(|cur| cur.generation) {
            Some(cur) if cur.checked_add(1) == Some(inst.generation) => {
                if inst.state == InstanceState::Terminated {
                    self.remove_instance(inst.uuid);
                } else {
                    self.instances.put(inst);
                }
                true
            }
            Some(_) => false,
            None if inst.state == InstanceState::Terminated || inst.generation > 1 => false,
            None => {
                self.insert_instance(inst);
                true
            }
        }
    }

    /// Put a record read back from the store in memory if it is newer than the fleet's copy.
    pub(crate) fn apply_reloaded(&mut self, inst: Instance) {
        match self.instances.get(&inst.uuid).map(|cur| cur.generation) {
            Some(cur) if cur >= inst.generation => {}
            Some(_) if inst.state == InstanceState::Terminated => self.remove_instance(inst.uuid),
            Some(_) => self.instances.put(inst),
            None if inst.state == InstanceState::Terminated => {}
            None => self.insert_instance(inst),
        }
    }
}

/// `inst` as its next write: one generation on.
pub(crate) fn bump(inst: &mut Instance) {
    inst.generation = inst.generation.saturating_add(1);
}

impl Engine {
    /// Commit, telling a lost race ([`StoreError::Conflict`]) from a failure.
    pub(crate) async fn commit_fenced(&self, writes: Vec<Write>) -> Result<(), Refused> {
        self.check_store()?;
        match self.inner.store.commit(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(m)) => {
                tracing::debug!(reason = %m, "lost a race on an instance record; planning again");
                Err(Refused::Stale)
            }
            Err(e) => Err(Refused::Failed(store_err(e))),
        }
    }

    /// Read these instances back from the store and keep the newer records: what a writer
    /// does after losing a race, before it plans again.
    pub(crate) async fn reload_instances(&self, ids: &[Uuid]) -> Result<(), DomainError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.check_store()?;
        let found = self.inner.store.instances(ids).await.map_err(store_err)?;
        let mut fleet = self.inner.fleet.lock();
        for inst in found {
            let id = inst.uuid;
            fleet.apply_reloaded(inst);
            if !fleet.instances.contains_key(&id) {
                self.inner.gates.lock().remove(&id);
            }
        }
        Ok(())
    }
}
