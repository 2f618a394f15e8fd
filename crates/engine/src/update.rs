//! Changes to an instance's attributes that are not operations: user data, the owner's lock,
//! names and descriptions, tags (Nova metadata). Each is one generation-checked commit; memory
//! takes the change once it is committed.

use crate::generations::{self, RETRIES, Refused, busy};
use crate::{Engine, now_ms, visible_or_not_found};
use nubis_core::{DomainError, Instance, Principal};
use nubis_store::Write;
use uuid::Uuid;

/// Descriptive attributes to change (None: keep): no operation, no lock. Given to
/// [`Engine::modify`], or with a batch ([`crate::Batch::attrs`]) to change them in the same
/// commit as the batch's operations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub host_name: Option<String>,
}

impl AttrChange {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none() && self.host_name.is_none()
    }

    pub(crate) fn apply(&self, inst: &mut Instance) {
        if let Some(n) = &self.name {
            inst.name = n.clone();
        }
        if let Some(d) = &self.description {
            inst.description = d.clone();
        }
        if let Some(h) = &self.host_name {
            inst.host_name = h.clone();
        }
    }
}

impl Engine {
    /// The user data a visible instance was created with (None: it was given none).
    pub async fn user_data(&self, p: &Principal, id: Uuid) -> Result<Option<String>, DomainError> {
        visible_or_not_found(self.inner.fleet.lock().instances.get(&id), p, id)?;
        self.inner
            .store
            .user_data(id)
            .await
            .map_err(crate::store_err)
    }

    /// Replace (or with None remove) a visible instance's user data (Nova rebuild `user_data`).
    pub async fn set_user_data(
        &self,
        p: &Principal,
        id: Uuid,
        data: Option<String>,
    ) -> Result<(), DomainError> {
        self.user_data(p, id).await?;
        let write = match data {
            Some(data) => Write::UserData { instance: id, data },
            None => Write::DeleteUserData(id),
        };
        self.commit(vec![write]).await
    }

    /// Lock (with a reason) or unlock an instance: an attribute, no operation.
    pub async fn set_locked(
        &self,
        p: &Principal,
        id: Uuid,
        locked: Option<String>,
    ) -> Result<(), DomainError> {
        self.update_instance(p, id, |i| i.locked = locked.clone())
            .await
    }

    /// Change what a user set and reads back (access addresses, user data): no operation.
    /// `f` runs once; should the write lose a race, the attributes it produced are written
    /// over the newer record (they are the user's own, set whole).
    pub async fn set_attrs(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&mut nubis_core::UserAttrs),
    ) -> Result<(), DomainError> {
        self.modify_with_attrs(p, id, AttrChange::default(), f)
            .await
    }

    /// [`Engine::modify`] and [`Engine::set_attrs`] in one commit.
    pub async fn modify_with_attrs(
        &self,
        p: &Principal,
        id: Uuid,
        change: AttrChange,
        f: impl FnOnce(&mut nubis_core::UserAttrs),
    ) -> Result<(), DomainError> {
        let mut f = Some(f);
        let mut made: Option<nubis_core::UserAttrs> = None;
        self.update_instance(p, id, |inst| {
            change.apply(inst);
            match (f.take(), &made) {
                (Some(f), _) => {
                    f(&mut inst.attrs);
                    made = Some(inst.attrs.clone());
                }
                (None, Some(attrs)) => inst.attrs = attrs.clone(),
                (None, None) => {}
            }
        })
        .await
    }

    /// Change descriptive attributes (name, description, host name): no operation, no lock.
    pub async fn modify(
        &self,
        p: &Principal,
        id: Uuid,
        change: AttrChange,
    ) -> Result<(), DomainError> {
        self.modify_with_attrs(p, id, change, |_| {}).await
    }

    /// Change the tags (Nova server metadata) of a visible instance: `f` sees the instance
    /// under the fleet lock and returns its new tags or refuses (so a rule such as
    /// [`nubis_core::rules::metadata_change`] and a count limit hold against concurrent
    /// writers in this node); the change is committed before this returns the tags written.
    /// Should the write lose a race, the tags `f` computed are written over the newer record.
    pub async fn update_tags<E: From<DomainError>>(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&Instance) -> Result<Vec<(String, String)>, E>,
    ) -> Result<Vec<(String, String)>, E> {
        let mut f = Some(f);
        let mut made: Option<Vec<(String, String)>> = None;
        self.try_update_instance(p, id, |inst| {
            let tags = match (f.take(), &made) {
                (Some(f), _) => f(inst)?,
                (None, Some(tags)) => tags.clone(),
                (None, None) => inst.tags.clone(),
            };
            made = Some(tags.clone());
            inst.tags = tags.clone();
            Ok(tags)
        })
        .await
    }

    /// Change an attribute of a visible instance and commit it; the fleet takes the change
    /// once committed.
    pub(crate) async fn update_instance(
        &self,
        p: &Principal,
        id: Uuid,
        mut f: impl FnMut(&mut Instance),
    ) -> Result<(), DomainError> {
        self.try_update_instance(p, id, |inst| {
            f(inst);
            Ok::<_, DomainError>(())
        })
        .await
    }

    /// The operator's state reset (Nova `os-resetState`): core decides the state
    /// ([`nubis_core::rules::reset_state`]) from the record and the guest's facts; one
    /// generation-checked commit.
    pub async fn reset_state(
        &self,
        p: &Principal,
        id: Uuid,
        to: nubis_core::rules::ResetTo,
    ) -> Result<(), DomainError> {
        let driver = self.inner.driver.clone();
        self.try_update_instance(p, id, |inst| {
            let observed = driver.facts(id).map(|f| f.power.observed(f.booted));
            inst.state = nubis_core::rules::reset_state(inst, to, observed)?;
            inst.soft_deleted_at_ms = None;
            Ok::<_, DomainError>(())
        })
        .await
    }

    /// [`Self::update_instance`] with a change that may refuse (nothing changes then). The
    /// change is made on a copy, one generation on, committed, then applied; after a lost
    /// race the instance is read back and `f` runs again on the newer record.
    async fn try_update_instance<T, E: From<DomainError>>(
        &self,
        p: &Principal,
        id: Uuid,
        mut f: impl FnMut(&mut Instance) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            let (after, out) = {
                let fleet = self.inner.fleet.lock();
                let inst = visible_or_not_found(fleet.instances.get(&id), p, id)?;
                let mut inst = std::sync::Arc::unwrap_or_clone(inst);
                let out = f(&mut inst)?;
                inst.updated_at_ms = now_ms();
                generations::bump(&mut inst);
                (inst, out)
            };
            match self
                .commit_fenced(vec![Write::Instance(Box::new(after.clone()))])
                .await
            {
                Ok(()) => {
                    self.inner.fleet.lock().apply_committed(after);
                    return Ok(out);
                }
                Err(Refused::Stale) if attempt < RETRIES => {
                    attempt += 1;
                    self.reload_instances(&[id]).await?;
                }
                Err(Refused::Stale) => return Err(busy().into()),
                Err(Refused::Failed(e)) => return Err(e.into()),
            }
        }
    }
}
