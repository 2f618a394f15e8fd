//! A store that hands every call to another store, with a hook the test runs before each
//! commit: to count commits, hold one, or fail it.

use async_trait::async_trait;
use nubis_core::audit::{AuditEvent, AuditQuery};
use nubis_core::events::SystemEvent;
use nubis_core::{InjectedFile, Instance, Operation};
use nubis_store::{EventQuery, Snapshot, Store, StoreError, Write};
use std::sync::Arc;
use uuid::Uuid;

/// What a test does before each commit of a [`Hooked`] store.
#[async_trait]
pub trait CommitHook: Send + Sync + 'static {
    /// Runs before the commit reaches the inner store; an error fails the commit unwritten.
    async fn before_commit(&self) -> Result<(), StoreError>;
}

/// `inner` with `hook` run before each commit. The store's optional parts (cluster state,
/// journal, reads by ID) are left at the trait's defaults, as for a one-process store.
pub struct Hooked<H> {
    pub inner: Arc<dyn Store>,
    pub hook: H,
}

#[async_trait]
impl<H: CommitHook> Store for Hooked<H> {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.load().await
    }
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.hook.before_commit().await?;
        self.inner.commit(writes).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn operations_of_instance(
        &self,
        instance: Uuid,
        limit: usize,
    ) -> Result<Vec<Operation>, StoreError> {
        self.inner.operations_of_instance(instance, limit).await
    }
    async fn operations_of_request(&self, request_id: &str) -> Result<Vec<Operation>, StoreError> {
        self.inner.operations_of_request(request_id).await
    }
    async fn migrations(
        &self,
        instance: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(i64, Operation)>, StoreError> {
        self.inner.migrations(instance, limit).await
    }
    async fn system_events(&self, q: EventQuery) -> Result<Vec<SystemEvent>, StoreError> {
        self.inner.system_events(q).await
    }
    async fn system_events_by_id(&self, ids: &[String]) -> Result<Vec<SystemEvent>, StoreError> {
        self.inner.system_events_by_id(ids).await
    }
    async fn user_data(&self, instance: Uuid) -> Result<Option<String>, StoreError> {
        self.inner.user_data(instance).await
    }
    async fn injected_files(&self, instance: Uuid) -> Result<Vec<InjectedFile>, StoreError> {
        self.inner.injected_files(instance).await
    }
    async fn audit_events(&self, q: AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_events(q).await
    }
    async fn sweep_audit(&self, before_ms: i64, max: usize) -> Result<usize, StoreError> {
        self.inner.sweep_audit(before_ms, max).await
    }
    async fn instances(&self, ids: &[Uuid]) -> Result<Vec<Instance>, StoreError> {
        self.inner.instances(ids).await
    }
}
