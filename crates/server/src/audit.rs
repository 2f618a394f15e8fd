//! The audit trail's recorder for the pipeline's gates (docs/audit.md): the engine's store.

use nubis_core::audit::AuditEvent;
use nubis_engine::Engine;

/// Commits each event through the engine (the store's grouped writer) and returns once it is
/// committed — a read's right after (`Engine::record_audit`): the reply of an authenticated
/// change leaves only after its event is durable.
pub struct EngineAuditor(pub Engine);

#[async_trait::async_trait]
impl nubis_pipeline::Auditor for EngineAuditor {
    async fn record(&self, event: AuditEvent) {
        // The reply is already decided (an accepted operation stays accepted): a lost event
        // is logged and counted by the engine, never hidden.
        let _ = self.0.record_audit(event).await;
    }
}
