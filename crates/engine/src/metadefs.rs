//! Glance's metadata definitions (docs/images.md, "Metadata definitions"). Unlike the fleet
//! they are not cached: each request reads the namespace from the store, and each change is a
//! read, a change by `nubis_core::metadefs` and a write conditional on the generation read,
//! tried again when another writer (another node) got there first.

use crate::{Engine, now_ms};
use nubis_core::Principal;
use nubis_core::metadefs::{
    DOCUMENT_MAX, MetadefError, NAME_MAX, NAMESPACES_MAX, Namespace, RESOURCE_TYPES, check_name,
};
use nubis_store::{MetadefCatalog, StoreError};
use std::collections::BTreeSet;

/// How often a change is tried after losing to another writer, with a short random pause
/// growing with each try (at most ~1.3 s in all): many writers of one namespace at once (20
/// tag creates spread over several nodes) all land.
const RETRIES: u64 = 24;

async fn back_off(attempt: u64) {
    if attempt > 0 {
        let ms = rand::random_range(1..=4 * attempt.min(8));
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

fn store(e: StoreError) -> MetadefError {
    match e {
        StoreError::Conflict(m) => MetadefError::Conflict(m),
        other => MetadefError::Unavailable(other.to_string()),
    }
}

fn not_found(name: &str) -> MetadefError {
    MetadefError::NotFound(format!(
        "Metadata definition namespace={name} was not found."
    ))
}

fn bounded(ns: &Namespace) -> Result<(), MetadefError> {
    let size = serde_json::to_vec(ns).map_or(usize::MAX, |v| v.len());
    if size > DOCUMENT_MAX {
        return Err(MetadefError::TooMany(format!(
            "The namespace {} would exceed {DOCUMENT_MAX} bytes.",
            ns.namespace
        )));
    }
    Ok(())
}

impl Engine {
    fn metadef_store(&self) -> Result<&dyn MetadefCatalog, MetadefError> {
        self.inner.store.metadefs().ok_or_else(|| {
            MetadefError::Unavailable("this store keeps no metadata definitions".into())
        })
    }

    /// The namespaces `p` may see, oldest first.
    pub async fn metadef_namespaces(&self, p: &Principal) -> Result<Vec<Namespace>, MetadefError> {
        let all = self
            .metadef_store()?
            .metadef_namespaces()
            .await
            .map_err(store)?;
        Ok(all.into_iter().filter(|n| n.visible_to(p)).collect())
    }

    /// The namespace `name` if `p` may see it.
    pub async fn metadef_namespace(
        &self,
        p: &Principal,
        name: &str,
    ) -> Result<Namespace, MetadefError> {
        match self
            .metadef_store()?
            .metadef_namespace(name)
            .await
            .map_err(store)?
        {
            Some(ns) if ns.visible_to(p) => Ok(ns),
            _ => Err(not_found(name)),
        }
    }

    /// Creates a namespace (`ns` at generation 1, filled by the caller).
    pub async fn create_metadef_namespace(&self, ns: Namespace) -> Result<Namespace, MetadefError> {
        check_name("namespace", &ns.namespace, NAME_MAX)?;
        bounded(&ns)?;
        let s = self.metadef_store()?;
        if s.metadef_namespaces().await.map_err(store)?.len() >= NAMESPACES_MAX {
            return Err(MetadefError::TooMany(format!(
                "Maximum number of metadata definition namespaces exceeded: at most {NAMESPACES_MAX}."
            )));
        }
        let taken = || {
            MetadefError::Conflict(format!(
                "Metadata definition namespace={} already exists.",
                ns.namespace
            ))
        };
        match s.put_metadef_namespace(&ns).await {
            Ok(true) => Ok(ns),
            Ok(false) | Err(StoreError::Conflict(_)) => Err(taken()),
            Err(e) => Err(store(e)),
        }
    }

    /// Changes the namespace `name` by `change` (which sees the stored namespace and may
    /// refuse), writing it back conditionally; the namespace as written and `change`'s answer.
    pub async fn change_metadef_namespace<R>(
        &self,
        p: &Principal,
        name: &str,
        mut change: impl FnMut(&mut Namespace) -> Result<R, MetadefError> + Send,
    ) -> Result<(Namespace, R), MetadefError> {
        let s = self.metadef_store()?;
        for attempt in 0..RETRIES {
            back_off(attempt).await;
            let mut ns = self.metadef_namespace(p, name).await?;
            if !ns.writable_by(p) {
                return Err(MetadefError::Forbidden(format!(
                    "You are not permitted to modify namespace {name}."
                )));
            }
            let answer = change(&mut ns)?;
            check_name("namespace", &ns.namespace, NAME_MAX)?;
            ns.generation += 1;
            ns.updated_ms = now_ms();
            bounded(&ns)?;
            match s.put_metadef_namespace(&ns).await {
                Ok(true) => return Ok((ns, answer)),
                Ok(false) => continue,
                Err(StoreError::Conflict(_)) => {
                    return Err(MetadefError::Conflict(format!(
                        "Metadata definition namespace={} already exists.",
                        ns.namespace
                    )));
                }
                Err(e) => return Err(store(e)),
            }
        }
        Err(MetadefError::Unavailable(format!(
            "The namespace {name} kept changing; try again."
        )))
    }

    /// Deletes the namespace `name` (not a protected one).
    pub async fn delete_metadef_namespace(
        &self,
        p: &Principal,
        name: &str,
    ) -> Result<(), MetadefError> {
        let s = self.metadef_store()?;
        for attempt in 0..RETRIES {
            back_off(attempt).await;
            let ns = self.metadef_namespace(p, name).await?;
            if !ns.writable_by(p) {
                return Err(MetadefError::Forbidden(format!(
                    "You are not permitted to delete namespace {name}."
                )));
            }
            ns.check_deletable()?;
            if s.delete_metadef_namespace(&ns.id, ns.generation)
                .await
                .map_err(store)?
            {
                return Ok(());
            }
        }
        Err(MetadefError::Unavailable(format!(
            "The namespace {name} kept changing; try again."
        )))
    }

    /// The resource types: Glance's built-in ones and any other name a namespace `p` sees is
    /// associated with, by name.
    pub async fn metadef_resource_types(&self, p: &Principal) -> Result<Vec<String>, MetadefError> {
        let mut names: BTreeSet<String> = RESOURCE_TYPES.iter().map(|s| s.to_string()).collect();
        for ns in self.metadef_namespaces(p).await? {
            names.extend(ns.associations.into_iter().map(|a| a.name));
        }
        Ok(names.into_iter().collect())
    }
}
