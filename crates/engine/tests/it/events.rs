//! System events through the engine over a real SQLite store (docs/system-events.md): the
//! pending limit, cancels (once, in scope), and what another account sees.

use nubis_core::events::{EventCycle, EventKind, MAX_PENDING_SIMULATED};
use nubis_engine::Engine;
use nubis_engine::events::CancelRefusal;
use nubis_testkit::{KEY_ID, SECRET, admin, linux_spec as spec};

async fn instance(e: &Engine) -> uuid::Uuid {
    e.create(&admin(), "req-create", spec(), false)
        .await
        .unwrap()
        .remove(0)
        .uuid
}

fn in_an_hour() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
        + 3_600_000
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_simulated_events_are_bounded_and_a_second_cancel_changes_nothing() {
    let (e, _dir) = nubis_testkit::engine_with(Some((KEY_ID, SECRET)), None).await;
    let id = instance(&e).await;
    let p = admin();
    let kind = EventKind::SystemMaintenanceReboot;
    let batch = vec![id; 100];
    for _ in 0..MAX_PENDING_SIMULATED / 100 {
        let made = e
            .schedule_system_events(&p, &batch, kind, in_an_hour())
            .await
            .unwrap()
            .expect("within the limit");
        assert_eq!(made.len(), 100);
    }
    // One more is refused, and nothing of it is stored.
    assert!(
        e.schedule_system_events(&p, &[id], kind, in_an_hour())
            .await
            .unwrap()
            .is_none()
    );
    let listed = e.system_events(&p, Some(id)).await.unwrap();
    assert_eq!(listed.len(), MAX_PENDING_SIMULATED);
    assert!(
        listed
            .iter()
            .all(|v| v.status.cycle == EventCycle::Scheduled)
    );
    // A cancel frees a place (an ID given twice counts once); a second cancel of the same
    // event is refused and writes nothing.
    let first = listed[0].event.clone();
    let twice = [first.id.clone(), first.id.clone()];
    assert_eq!(
        e.cancel_system_events(&p, &twice, |_| true).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        e.cancel_system_events(&p, &twice, |_| true).await.unwrap(),
        Err(CancelRefusal::Ended(first.id.clone(), EventCycle::Canceled))
    );
    assert_eq!(
        e.cancel_system_events(&p, &[listed[1].event.id.clone()], |_| false)
            .await
            .unwrap(),
        Err(CancelRefusal::NotFound(listed[1].event.id.clone()))
    );
    let again = e
        .system_events_by_id(&p, std::slice::from_ref(&first.id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(again.status.cycle, EventCycle::Canceled);
    assert_eq!(again.event.generation, first.generation + 1);
    assert!(again.instance.is_some_and(|i| i.uuid == id));
    assert!(
        e.schedule_system_events(&p, &[id], kind, in_an_hour())
            .await
            .unwrap()
            .is_some()
    );
    // Another account sees none of them, by listing or by ID.
    let other = nubis_core::Principal {
        account: "someone-else".into(),
        is_admin: false,
        ..admin()
    };
    assert!(e.system_events(&other, None).await.unwrap().is_empty());
    assert!(
        e.system_events_by_id(&other, &[first.id])
            .await
            .unwrap()
            .is_empty()
    );
}
