//! How a dialect names instances and key pairs in its messages: errors carry canonical IDs
//! (see [`nubis_core::DomainError::render`]); a dialect picks its names here.

use crate::{Engine, IdKind};
use nubis_core::{Names, Principal};
use uuid::Uuid;

/// How a dialect names key pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyNaming {
    /// By ID (Tencent `skey-`).
    Id,
    /// By name (Alibaba, Nova).
    Name,
}

/// One dialect's names, for one principal: only what the principal sees is named (anything
/// else keeps its canonical ID, which tells nothing about it).
pub struct DialectNames<'a> {
    engine: &'a Engine,
    principal: &'a Principal,
    instances: IdKind,
    keys: KeyNaming,
}

impl Engine {
    /// The names a dialect renders errors with for `p`.
    pub fn names<'a>(
        &'a self,
        p: &'a Principal,
        instances: IdKind,
        keys: KeyNaming,
    ) -> DialectNames<'a> {
        DialectNames {
            engine: self,
            principal: p,
            instances,
            keys,
        }
    }
}

impl Names for DialectNames<'_> {
    fn instance(&self, canonical: &str) -> Option<String> {
        let uuid = Uuid::parse_str(canonical).ok()?;
        let fleet = self.engine.inner.fleet.lock();
        let inst = fleet
            .instances
            .get(&uuid)
            .filter(|i| self.principal.sees(&i.account))?;
        Some(self.instances.id_of(&inst))
    }

    fn placement_group(&self, canonical: &str) -> Option<String> {
        let fleet = self.engine.inner.fleet.lock();
        let g = fleet
            .placement_groups
            .get(canonical)
            .filter(|g| self.principal.sees(&g.account))?;
        Some(self.instances.group_id_of(g))
    }

    fn key_pair(&self, id: &str) -> Option<String> {
        match self.keys {
            KeyNaming::Id => None,
            KeyNaming::Name => self.engine.key_pair_name(self.principal, id),
        }
    }
}
