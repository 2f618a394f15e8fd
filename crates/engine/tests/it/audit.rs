//! The audit trail's two commit paths (docs/audit.md, "Durability and cost"): a change's event
//! is committed when `record_audit` returns; a read's after it, yet every trail query on the
//! node sees it.

use nubis_core::audit::{AuditEvent, AuditQuery};
use nubis_store::Store;

fn event(action: &str, read_only: bool) -> AuditEvent {
    serde_json::from_value(serde_json::json!({
        "id": AuditEvent::new_id(), "time_ms": 1_700_000_000_000i64, "account": "admin",
        "user": "admin", "is_admin": true, "credential": "AKID", "cloud": "tencent",
        "service": "cvm", "version": "2017-03-12", "action": action, "read_only": read_only,
        "resources": [], "source_ip": "127.0.0.1", "user_agent": "test",
        "request_id": AuditEvent::new_id(), "status": 200, "parameters": "{}"
    }))
    .expect("an event")
}

fn everything() -> AuditQuery {
    AuditQuery {
        until_ms: i64::MAX,
        limit: 10_000,
        ..Default::default()
    }
}

#[tokio::test]
async fn reads_are_seen_by_the_next_query_and_changes_are_durable_on_return() {
    let (engine, dir) = nubis_testkit::engine().await;
    let store = nubis_store::SqliteStore::open(&dir.path().join("nubis.db")).unwrap();
    let change = event("RunInstances", false);
    engine.record_audit(change.clone()).await.unwrap();
    let stored = store.audit_events(everything()).await.unwrap();
    assert!(
        stored.iter().any(|e| e.id == change.id),
        "a change's event is committed when record_audit returns"
    );
    let reads: Vec<AuditEvent> = (0..300).map(|_| event("DescribeInstances", true)).collect();
    for r in &reads {
        engine.record_audit(r.clone()).await.unwrap();
    }
    let seen = engine.admin_audit_events(everything()).await.unwrap();
    for r in &reads {
        assert!(
            seen.iter().any(|e| e.id == r.id),
            "a read's event is seen by the node's next query"
        );
    }
    // And it is in the store, not only in memory.
    let stored = store.audit_events(everything()).await.unwrap();
    assert_eq!(stored.len(), 301);
}
