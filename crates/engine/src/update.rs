//! Changes to an instance's attributes that are not operations: user data, the owner's lock,
//! names and descriptions, tags (Nova metadata). Each is one commit; memory is put back if the
//! store refuses.

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
        self.update_instance(p, id, |i| i.locked = locked).await
    }

    /// Change what a user set and reads back (access addresses, user data): no operation.
    pub async fn set_attrs(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&mut nubis_core::UserAttrs),
    ) -> Result<(), DomainError> {
        self.update_instance(p, id, |inst| f(&mut inst.attrs)).await
    }

    /// [`Engine::modify`] and [`Engine::set_attrs`] in one commit.
    pub async fn modify_with_attrs(
        &self,
        p: &Principal,
        id: Uuid,
        change: AttrChange,
        f: impl FnOnce(&mut nubis_core::UserAttrs),
    ) -> Result<(), DomainError> {
        self.update_instance(p, id, |inst| {
            change.apply(inst);
            f(&mut inst.attrs);
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
    /// writers); the change is committed before this returns the tags written.
    pub async fn update_tags<E: From<DomainError>>(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&Instance) -> Result<Vec<(String, String)>, E>,
    ) -> Result<Vec<(String, String)>, E> {
        self.try_update_instance(p, id, |inst| {
            let tags = f(inst)?;
            inst.tags = tags.clone();
            Ok(tags)
        })
        .await
    }

    /// Change an attribute of a visible instance and commit it; memory is put back if the
    /// store refuses.
    pub(crate) async fn update_instance(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&mut Instance),
    ) -> Result<(), DomainError> {
        self.try_update_instance(p, id, |inst| {
            f(inst);
            Ok::<_, DomainError>(())
        })
        .await
    }

    /// [`Self::update_instance`] with a change that may refuse (nothing changes then).
    async fn try_update_instance<T, E: From<DomainError>>(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&mut Instance) -> Result<T, E>,
    ) -> Result<T, E> {
        let (before, after, out) = {
            let mut fleet = self.inner.fleet.lock();
            let inst = visible_or_not_found(fleet.instances.get_mut(&id), p, id)?;
            let before = inst.clone();
            let out = f(inst);
            if out.is_err() {
                *inst = before;
                drop(fleet);
                return out;
            }
            inst.updated_at_ms = now_ms();
            (before, inst.clone(), out)
        };
        if let Err(e) = self.commit(vec![Write::Instance(Box::new(after))]).await {
            self.inner.fleet.lock().instances.insert(id, before);
            return Err(e.into());
        }
        out
    }
}
