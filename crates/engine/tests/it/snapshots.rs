//! Images made from instances (docs/images.md "Images from instances") over a real SQLite
//! store and the sim driver writing into an image directory: the image is saving with the
//! operation, then active with its file's facts; it boots a new instance; a refused request
//! leaves no image; the account's image quota; an image deleted while it is made stays
//! deleted; everything is read back after a restart.

use nubis_auth::secret::SecretBox;
use nubis_core::images::{IMAGES_PER_ACCOUNT, ImageStatus};
use nubis_core::{Command, CreateSpec, DomainError, InstanceState, StopMode};
use nubis_driver::sim::SimDriver;
use nubis_engine::{Engine, NewImage, Options};
use nubis_store::{SqliteStore, Store};
use nubis_testkit::{admin, linux_spec};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

async fn start(dir: &Path) -> Engine {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("nubis.db")).unwrap());
    let secrets = SecretBox::load_or_create(dir.join("master.key")).unwrap();
    let images = dir.join("images");
    let driver = Arc::new(SimDriver::new(0.0).with_image_store(images.clone()));
    let e = Engine::start_with(
        store,
        driver,
        secrets,
        Options {
            image_dir: Some(images),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    e.bootstrap(Some(("AKIDboot".into(), "boot-secret".into())), None)
        .await
        .unwrap();
    e
}

async fn wait_unlocked(e: &Engine, id: Uuid) -> nubis_core::Instance {
    for _ in 0..1000 {
        let i = e.instance(id).unwrap();
        if i.lock.is_none() {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("instance stayed locked");
}

async fn wait_image(e: &Engine, id: &str, status: ImageStatus) -> nubis_core::images::Image {
    for _ in 0..1000 {
        let i = e.image(&admin(), id).unwrap();
        if i.status == status {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("image {id} never {status:?}");
}

async fn running(e: &Engine) -> Uuid {
    let spec = CreateSpec {
        start: true,
        ..linux_spec()
    };
    let inst = e.create(&admin(), "c", spec, false).await.unwrap();
    let id = inst[0].uuid;
    assert_eq!(wait_unlocked(e, id).await.state, InstanceState::Running);
    id
}

#[tokio::test]
async fn an_image_of_a_running_instance_boots_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let p = admin();
    let image_id = {
        let e = start(dir.path()).await;
        let id = running(&e).await;
        let img = e
            .create_image_from_instance(&p, "r1", id, NewImage::named("snap"), false, false)
            .await
            .unwrap();
        assert_eq!(img.status, ImageStatus::Saving);
        assert_eq!(img.source_instance, Some(id));
        let inst = wait_unlocked(&e, id).await;
        assert_eq!(inst.state, InstanceState::Running);
        let img = wait_image(&e, &img.id, ImageStatus::Active).await;
        let data = img.data.clone().unwrap();
        let file = e.image_path(&img.id).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(data.size, bytes.len() as u64);
        assert_eq!(data.sha512.len(), 128);
        // The sim's file says where it came from.
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["instance"], id.to_string());
        assert_eq!(doc["source_image"], inst.image_id);
        // A new instance boots from it, with its OS facts.
        let spec = CreateSpec {
            image_id: img.id.clone(),
            start: true,
            ..linux_spec()
        };
        let new = e.create(&p, "c2", spec, false).await.unwrap()[0].uuid;
        let booted = wait_unlocked(&e, new).await;
        assert_eq!(booted.state, InstanceState::Running);
        assert_eq!(booted.image_id, img.id);
        assert_eq!(booted.os_name(), inst.os_name());
        img.id
    };
    let e = start(dir.path()).await;
    let img = e.image(&p, &image_id).unwrap();
    assert_eq!(img.status, ImageStatus::Active);
    assert!(img.data.is_some());
}

#[tokio::test]
async fn refusals_leave_no_image_and_the_quota_holds() {
    let dir = tempfile::tempdir().unwrap();
    let p = admin();
    let e = start(dir.path()).await;
    let id = running(&e).await;
    let count = || e.images(&p).iter().filter(|i| !i.is_builtin()).count();
    // A dry run, an unknown instance: no image.
    assert_eq!(
        e.create_image_from_instance(&p, "d", id, NewImage::named("a"), false, true)
            .await
            .unwrap_err(),
        DomainError::DryRunOk
    );
    assert!(
        e.create_image_from_instance(&p, "u", Uuid::new_v4(), NewImage::named("a"), false, false)
            .await
            .is_err()
    );
    // A state the table refuses (stopping): no image either.
    e.submit(
        &p,
        "s",
        &[id],
        Command::Stop {
            mode: StopMode::Hard,
            stop_charging: false,
        },
        false,
    )
    .await
    .unwrap();
    let busy = e
        .create_image_from_instance(&p, "b", id, NewImage::named("a"), false, false)
        .await;
    wait_unlocked(&e, id).await;
    if busy.is_err() {
        assert_eq!(count(), 0);
    }
    // Names unique where the dialect says so; the client token answers its image.
    let unique = NewImage {
        unique_name: true,
        client_token: Some("tok".into()),
        ..NewImage::named("same")
    };
    let first = e
        .create_image_from_instance(&p, "n1", id, unique.clone(), false, false)
        .await
        .unwrap();
    wait_unlocked(&e, id).await;
    let again = e
        .create_image_from_instance(&p, "n2", id, unique.clone(), false, false)
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    let other_token = NewImage {
        client_token: None,
        ..unique
    };
    assert_eq!(
        e.create_image_from_instance(&p, "n3", id, other_token, false, false)
            .await
            .unwrap_err(),
        DomainError::ImageNameInUse("same".into())
    );
    // The account's image quota.
    while count() < IMAGES_PER_ACCOUNT {
        e.create_image(&p, NewImage::named("fill")).await.unwrap();
    }
    assert_eq!(
        e.create_image_from_instance(&p, "q", id, NewImage::named("over"), false, false)
            .await
            .unwrap_err(),
        DomainError::ImageQuota {
            limit: IMAGES_PER_ACCOUNT as u32
        }
    );
}

#[tokio::test]
async fn an_image_deleted_while_it_is_made_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let p = admin();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("nubis.db")).unwrap());
    let secrets = SecretBox::load_or_create(dir.path().join("master.key")).unwrap();
    let images = dir.path().join("images");
    // Slow enough to delete the image while its step runs.
    let driver = Arc::new(SimDriver::new(0.2).with_image_store(images.clone()));
    let e = Engine::start_with(
        store,
        driver,
        secrets,
        Options {
            image_dir: Some(images),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    e.bootstrap(Some(("AKIDboot".into(), "boot-secret".into())), None)
        .await
        .unwrap();
    let id = running(&e).await;
    let img = e
        .create_image_from_instance(&p, "r", id, NewImage::named("gone"), false, false)
        .await
        .unwrap();
    e.delete_image(&p, &img.id, false).await.unwrap();
    wait_unlocked(&e, id).await;
    assert!(e.image(&p, &img.id).is_err());
    let all = e.images(&p);
    assert!(all.iter().all(|i| i.id != img.id));
}
