//! Placement groups (docs/placement-groups.md): created, listed, changed and deleted here,
//! kept in the fleet like key pairs and written through to the store; their members are the
//! listed instances that name them, placed by `nubis_core::hosts::place_with`.

use crate::{Engine, Fleet, IdKind, now_ms};
use nubis_core::groups::{self, Flavour, PlacementGroup, Policy};
use nubis_core::hosts::Spot;
use nubis_core::{DomainError, Instance, InstanceState, Principal, ResourceKind};
use nubis_store::Write;
use std::collections::HashMap;

/// What a create asks for; the dialect has checked every field's shape and range.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub name: String,
    pub description: String,
    pub policy: Policy,
    pub flavour: Flavour,
    pub max_per_host: u32,
    pub group_count: u32,
    pub on_unable_to_redeploy: String,
    pub client_token: Option<String>,
}

/// What a modify changes (`None`: kept).
#[derive(Debug, Clone, Default)]
pub struct GroupChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub max_per_host: Option<u32>,
}

/// One member as the listings show it: its ID in the dialect's namespace and its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub zone: String,
}

/// Does an instance in `state`, placed in `placed_in`, count as a member of `group`?
fn member(state: InstanceState, placed_in: Option<&str>, group: &str) -> bool {
    state.is_listed() && placed_in == Some(group)
}

impl Fleet {
    /// The members of `group`, committed and being created.
    pub(crate) fn group_members<R>(
        &self,
        group: &str,
        f: impl FnOnce(&mut dyn Iterator<Item = &Instance>) -> R,
    ) -> R {
        // Committed members are found by reading the records in place, then built.
        let committed: Vec<Instance> = (self.instances.read().rows())
            .filter(|r| member(r.state(), r.placement_group(), group))
            .map(|r| r.instance())
            .collect();
        let pending = (self.pending_creates.iter())
            .filter(|i| member(i.state, i.placement_group.as_deref(), group));
        let mut members = committed.iter().chain(pending);
        f(&mut members)
    }

    /// Where the members of `group` run, for its rule: an instance that was never placed
    /// (accepted as failed, Nova) runs nowhere.
    pub(crate) fn group_spots(&self, group: &str) -> Vec<Spot> {
        self.group_members(group, |m| {
            m.filter(|i| i.state != InstanceState::LaunchFailed)
                .map(Spot::of)
                .collect()
        })
    }

    /// The most members `group` holds: a Nova group's is the `server_group_members` quota
    /// of its project (and its maker's user quota); the other clouds' are fixed per flavour.
    pub(crate) fn group_member_limit(&self, group: &PlacementGroup) -> u32 {
        if group.flavour != Flavour::Nova {
            return group.max_members();
        }
        let limit = self.item_limit(
            &group.account,
            group.project.as_deref(),
            group.user_id.as_deref(),
            nubis_core::ItemQuota::ServerGroupMembers,
        );
        u32::try_from(limit).unwrap_or(u32::MAX)
    }

    /// Refuse a create of `count` instances in `zone` that `group` cannot hold.
    pub(crate) fn check_group_room(
        &self,
        group: &PlacementGroup,
        zone: &str,
        count: u32,
    ) -> Result<(), DomainError> {
        let limit = self.group_member_limit(group);
        let now = self.group_members(&group.id, |m| {
            m.filter(|i| !group.flavour.per_zone() || i.zone == zone)
                .count()
        });
        if now.saturating_add(count as usize) > limit as usize {
            return Err(DomainError::GroupFull {
                group: group.id.clone(),
                limit,
            });
        }
        Ok(())
    }
}

impl IdKind {
    /// `g`'s ID in this namespace.
    pub fn group_id_of(self, g: &PlacementGroup) -> String {
        match self {
            Self::Tencent => g.tencent_id.clone(),
            Self::Aliyun => g.aliyun_id.clone(),
            Self::Uuid => g.id.clone(),
        }
    }
}

impl Engine {
    /// Create a placement group in the caller's account (and Keystone project). A repeated
    /// ClientToken answers the group it made.
    pub async fn create_placement_group(
        &self,
        p: &Principal,
        new: NewGroup,
    ) -> Result<PlacementGroup, DomainError> {
        let g = {
            let mut fleet = self.inner.fleet.lock();
            if let Some(token) = &new.client_token
                && let Some(found) = fleet
                    .placement_groups
                    .values()
                    .find(|g| g.account == p.account && g.client_token.as_ref() == Some(token))
            {
                return Ok(found.clone());
            }
            fleet.check_group_quota(p)?;
            let mut tencent_id = groups::new_tencent_id();
            while fleet
                .placement_groups
                .values()
                .any(|g| g.tencent_id == tencent_id)
            {
                tencent_id = groups::new_tencent_id();
            }
            let g = PlacementGroup {
                id: uuid::Uuid::new_v4().to_string(),
                tencent_id,
                aliyun_id: groups::new_aliyun_id(),
                account: p.account.clone(),
                project: p.project.as_ref().map(|s| s.id.clone()),
                user_id: p.keystone_user.clone(),
                name: new.name,
                description: new.description,
                policy: new.policy,
                flavour: new.flavour,
                max_per_host: new.max_per_host.max(1),
                group_count: new.group_count,
                on_unable_to_redeploy: new.on_unable_to_redeploy,
                client_token: new.client_token,
                created_at_ms: now_ms(),
            };
            // In the fleet before the commit (taken out again if it fails), so a concurrent
            // create counts it against the quota.
            fleet.placement_groups.insert(g.id.clone(), g.clone());
            g
        };
        if let Err(e) = self.commit(vec![Write::PlacementGroup(g.clone())]).await {
            self.inner.fleet.lock().placement_groups.remove(&g.id);
            return Err(e);
        }
        Ok(g)
    }

    /// The most members `group` holds now ([`Fleet::group_member_limit`]).
    pub fn group_member_limit(&self, group: &PlacementGroup) -> u32 {
        self.inner.fleet.lock().group_member_limit(group)
    }

    /// The placement groups `p` sees (its account's; an admin's: every account's), oldest
    /// first.
    pub fn placement_groups(&self, p: &Principal) -> Vec<PlacementGroup> {
        let fleet = self.inner.fleet.lock();
        let mut out: Vec<PlacementGroup> = fleet
            .placement_groups
            .values()
            .filter(|g| p.sees(&g.account))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        out
    }

    /// The group `p` sees under `id`, an ID of namespace `kind`.
    pub fn placement_group(&self, p: &Principal, kind: IdKind, id: &str) -> Option<PlacementGroup> {
        let fleet = self.inner.fleet.lock();
        fleet
            .placement_groups
            .values()
            .find(|g| kind.group_id_of(g) == id && p.sees(&g.account))
            .cloned()
    }

    /// Group (canonical ID) → its members, oldest first, named in `kind`'s namespace.
    pub fn placement_group_members(&self, kind: IdKind) -> HashMap<String, Vec<Member>> {
        let fleet = self.inner.fleet.lock();
        let mut out: HashMap<String, Vec<Member>> = HashMap::new();
        let table = fleet.instances.read();
        let placed = (table.rows()).filter(|r| {
            r.state().is_listed()
                && r.placement_group()
                    .is_some_and(|g| fleet.placement_groups.contains_key(g))
        });
        for inst in placed.map(|r| r.instance()) {
            if let Some(g) = &inst.placement_group {
                out.entry(g.clone()).or_default().push(Member {
                    id: kind.id_of(&inst),
                    zone: inst.zone.clone(),
                });
            }
        }
        out
    }

    /// Canonical ID → ID in `kind`'s namespace, of every group (for rendering instances).
    pub fn placement_group_ids(&self, kind: IdKind) -> HashMap<String, String> {
        let fleet = self.inner.fleet.lock();
        fleet
            .placement_groups
            .values()
            .map(|g| (g.id.clone(), kind.group_id_of(g)))
            .collect()
    }

    /// Change a group's name, description or members-per-host limit.
    pub async fn update_placement_group(
        &self,
        p: &Principal,
        id: &str,
        change: GroupChange,
    ) -> Result<PlacementGroup, DomainError> {
        let g = {
            let fleet = self.inner.fleet.lock();
            let mut g = fleet
                .placement_groups
                .get(id)
                .filter(|g| p.sees(&g.account))
                .cloned()
                .ok_or_else(|| not_found(id))?;
            if let Some(name) = change.name {
                g.name = name;
            }
            if let Some(d) = change.description {
                g.description = d;
            }
            if let Some(n) = change.max_per_host {
                g.max_per_host = n.max(1);
            }
            g
        };
        self.commit(vec![Write::PlacementGroup(g.clone())]).await?;
        self.inner
            .fleet
            .lock()
            .placement_groups
            .insert(g.id.clone(), g.clone());
        Ok(g)
    }

    /// Delete groups (canonical IDs), all or nothing. A group with members is refused
    /// ([`DomainError::GroupNotEmpty`]) unless `with_members` (Nova, whose members simply
    /// leave it).
    pub async fn delete_placement_groups(
        &self,
        p: &Principal,
        ids: &[String],
        with_members: bool,
    ) -> Result<(), DomainError> {
        {
            let fleet = self.inner.fleet.lock();
            for id in ids {
                if !fleet
                    .placement_groups
                    .get(id)
                    .is_some_and(|g| p.sees(&g.account))
                {
                    return Err(not_found(id));
                }
                if !with_members && fleet.group_members(id, |m| m.next().is_some()) {
                    return Err(DomainError::GroupNotEmpty(id.clone()));
                }
            }
        }
        self.commit(
            ids.iter()
                .map(|id| Write::DeletePlacementGroup(id.clone()))
                .collect(),
        )
        .await?;
        let mut fleet = self.inner.fleet.lock();
        for id in ids {
            fleet.placement_groups.remove(id);
        }
        Ok(())
    }
}

fn not_found(id: &str) -> DomainError {
    DomainError::NotFound {
        kind: ResourceKind::PlacementGroup,
        id: id.to_string(),
    }
}
