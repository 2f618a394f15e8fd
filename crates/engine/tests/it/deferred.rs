//! Deferred delete and the operator's state reset (docs/deferred-delete.md): soft delete,
//! restore, the reclaim, and resetState, through the engine with the sim driver.

use nubis_core::rules::ResetTo;
use nubis_core::{DomainError, InstanceState as S};
use nubis_engine::{Command, Engine};
use nubis_testkit::{KEY_ID, SECRET, admin, linux_spec as spec};
use std::time::Duration;

async fn settled(e: &Engine, id: uuid::Uuid) -> nubis_core::Instance {
    for _ in 0..1000 {
        match e.instance(id) {
            Some(i) if i.lock.is_none() => return i,
            Some(_) => {}
            None => panic!("instance {id} is gone"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("instance stayed locked");
}

async fn running(e: &Engine) -> uuid::Uuid {
    let inst = e
        .create(&admin(), "req-create", spec(), false)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(settled(e, inst.uuid).await.state, S::Running);
    inst.uuid
}

async fn submit(e: &Engine, id: uuid::Uuid, cmd: Command) -> Result<(), DomainError> {
    let rid = nubis_core::ids::new_request_id();
    e.submit(&admin(), &rid, &[id], cmd, false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn soft_delete_restore_and_reclaim() {
    let (e, _dir) = nubis_testkit::engine_with(Some((KEY_ID, SECRET)), None).await;
    let id = running(&e).await;
    submit(&e, id, Command::SoftDelete { admin: false })
        .await
        .unwrap();
    let i = settled(&e, id).await;
    assert_eq!(i.state, S::SoftDeleted);
    let at = i
        .soft_deleted_at_ms
        .expect("the soft delete's time is kept");
    assert!(at > 0);
    // Not due yet: nothing reclaimed; the guest is off and stays so.
    assert_eq!(e.reclaim_round(3_600_000).await, 0);
    // Restore powers it on; the time is forgotten.
    submit(&e, id, Command::Restore).await.unwrap();
    let i = settled(&e, id).await;
    assert_eq!(i.state, S::Running);
    assert_eq!(i.soft_deleted_at_ms, None);
    // Restore of a server that is not soft-deleted: a state conflict.
    assert!(matches!(
        submit(&e, id, Command::Restore).await,
        Err(DomainError::StateConflict {
            state: S::Running,
            ..
        })
    ));
    // Soft-deleted again, then reclaimed once the interval (0 here) has passed.
    submit(&e, id, Command::SoftDelete { admin: false })
        .await
        .unwrap();
    assert_eq!(settled(&e, id).await.state, S::SoftDeleted);
    assert_eq!(e.reclaim_round(0).await, 1);
    for _ in 0..1000 {
        if e.instance(id).is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the reclaimed instance was never deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_state_marks_error_and_back() {
    let (e, _dir) = nubis_testkit::engine_with(Some((KEY_ID, SECRET)), None).await;
    let id = running(&e).await;
    e.reset_state(&admin(), id, ResetTo::Error).await.unwrap();
    assert_eq!(e.instance(id).unwrap().state, S::Error);
    // Start is refused in error; a stop gets it out.
    assert!(matches!(
        submit(&e, id, Command::Start).await,
        Err(DomainError::StateConflict {
            state: S::Error,
            ..
        })
    ));
    // Back to active: the guest runs, so it shows running.
    e.reset_state(&admin(), id, ResetTo::Active).await.unwrap();
    assert_eq!(e.instance(id).unwrap().state, S::Running);
    // A soft delete from error is a soft delete too.
    e.reset_state(&admin(), id, ResetTo::Error).await.unwrap();
    submit(&e, id, Command::SoftDelete { admin: false })
        .await
        .unwrap();
    assert_eq!(settled(&e, id).await.state, S::SoftDeleted);
    // An active reset of a soft-deleted (powered-off) server shows it stopped.
    e.reset_state(&admin(), id, ResetTo::Active).await.unwrap();
    let i = e.instance(id).unwrap();
    assert_eq!(i.state, S::Stopped);
    assert_eq!(i.soft_deleted_at_ms, None);
}
