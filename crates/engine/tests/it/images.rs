//! The image registry over a real SQLite store (docs/images.md): who sees and boots an image,
//! owner-only changes, protected and in-use deletes, an upload making an image bootable, a
//! create and a rebuild from it, and everything read back after a restart.

use nubis_core::images::{ImageData, ImageStatus, Visibility};
use nubis_core::{Command, CreateSpec, DomainError, Principal, ResourceKind, WhenRunning};
use nubis_engine::{NewImage, SoldOut};
use nubis_testkit::{admin, linux_spec};

fn tenant(account: &str) -> Principal {
    Principal {
        account: account.into(),
        user: account.into(),
        ..Default::default()
    }
}

async fn wait_unlocked(e: &nubis_engine::Engine, id: uuid::Uuid) -> nubis_core::Instance {
    for _ in 0..500 {
        let i = e.instance(id).unwrap();
        if i.lock.is_none() {
            return i;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("instance stayed locked");
}

fn data() -> ImageData {
    ImageData {
        size: 3 << 20,
        md5: "0".repeat(32),
        sha512: "0".repeat(128),
        virtual_size: Some(5 << 30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_image_boots_for_its_owner_only_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let e = nubis_testkit::engine_in(dir.path(), 0.0, None, None).await;
    let (a, b) = (tenant("team-a"), tenant("team-b"));
    for name in ["team-a", "team-b"] {
        nubis_testkit::account(&e, name).await;
    }
    let img = e.create_image(&a, NewImage::named("golden")).await.unwrap();
    assert_eq!(img.status, ImageStatus::Queued);
    assert!(nubis_core::ids::is_image_id(&img.id));
    // Queued: visible to its owner, not bootable; another account does not see it at all.
    assert_eq!(e.image(&a, &img.uuid.to_string()).unwrap().id, img.id);
    assert!(e.image_facts(&a, &img.id).is_none());
    assert_eq!(
        e.image(&b, &img.id),
        Err(DomainError::NotFound {
            kind: ResourceKind::Image,
            id: img.id.clone()
        })
    );
    let spec = |account: &str| CreateSpec {
        image_id: img.id.clone(),
        name: Some(account.into()),
        ..linux_spec()
    };
    assert!(matches!(
        e.create_in(&a, "r0", spec("a"), false, SoldOut::Refuse, None)
            .await,
        Err(DomainError::NotFound {
            kind: ResourceKind::Image,
            ..
        })
    ));
    let active = e.image_uploaded(&a, &img.id, data(), false).await.unwrap();
    assert_eq!(active.status, ImageStatus::Active);
    assert_eq!(active.size_gib, 5);
    // A second upload is refused: the data of an active image never changes.
    assert!(matches!(
        e.image_uploaded(&a, &img.id, data(), false).await,
        Err(DomainError::ImageState { .. })
    ));
    let made = e
        .create_in(&a, "r1", spec("a"), false, SoldOut::Refuse, None)
        .await
        .unwrap();
    assert_eq!(made[0].image_id, img.id);
    assert!(matches!(
        e.create_in(&b, "r2", spec("b"), false, SoldOut::Refuse, None)
            .await,
        Err(DomainError::NotFound {
            kind: ResourceKind::Image,
            ..
        })
    ));
    // Another account cannot change or delete it; a built-in image is nobody's to change.
    assert!(matches!(
        e.update_image(&b, &img.id, |_| Ok(())).await,
        Err(DomainError::NotFound { .. })
    ));
    assert_eq!(
        e.delete_image(&a, "img-tos31x64", false).await,
        Err(DomainError::ImageNotOwned("img-tos31x64".into()))
    );
    // Public: the other account sees it and boots from it.
    e.update_image(&a, &img.id, |i| {
        i.visibility = Visibility::Public;
        i.protected = true;
        Ok(())
    })
    .await
    .unwrap();
    assert!(e.image_facts(&b, &img.id).is_some());
    assert!(e.images(&b).iter().any(|i| i.id == img.id));
    // Protected, then in use: both refuse a delete (in use only where the caller says so).
    assert_eq!(
        e.delete_image(&a, &img.id, false).await,
        Err(DomainError::ImageProtected(img.id.clone()))
    );
    e.update_image(&a, &img.id, |i| {
        i.protected = false;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(
        e.delete_image(&a, &img.id, true).await,
        Err(DomainError::ImageInUse(img.id.clone()))
    );
    // The instance keeps what it needs of its image after the image is gone.
    e.delete_image(&a, &img.id, false).await.unwrap();
    assert!(e.image(&a, &img.id).is_err());
    let inst = e.instance(made[0].uuid).unwrap();
    assert_eq!(inst.os_name(), "golden");
    assert_eq!(inst.os_user(), "root");
    // After a restart: the deleted image is still gone and its UUID still taken.
    drop(e);
    let e = nubis_testkit::start_in(dir.path(), 0.0).await;
    assert!(e.image(&a, &img.id).is_err());
    let twin = NewImage {
        uuid: Some(img.uuid),
        ..NewImage::named("twin")
    };
    assert!(matches!(
        e.create_image(&a, twin).await,
        Err(DomainError::Conflict(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_takes_the_new_images_os_facts_and_names_are_unique_where_asked() {
    let (e, _dir) = nubis_testkit::engine().await;
    let p = admin();
    let mut new = NewImage::named("ubuntu-custom");
    new.properties
        .insert("os_admin_user".into(), "ubuntu".into());
    new.unique_name = true;
    let img = e.create_image(&p, new.clone()).await.unwrap();
    assert_eq!(
        e.create_image(&p, new).await,
        Err(DomainError::ImageNameInUse("ubuntu-custom".into()))
    );
    e.image_uploaded(&p, &img.uuid.to_string(), data(), false)
        .await
        .unwrap();
    let made = e
        .create_in(&p, "r1", linux_spec(), false, SoldOut::Refuse, None)
        .await
        .unwrap();
    let id = made[0].uuid;
    wait_unlocked(&e, id).await;
    e.submit(
        &p,
        "r2",
        &[id],
        Command::Rebuild {
            image: img.uuid.to_string(),
            password: None,
            rule: Default::default(),
            key_ids: None,
            when_running: WhenRunning::StopAndStart,
            system_disk_gib: None,
        },
        false,
    )
    .await
    .unwrap();
    let inst = wait_unlocked(&e, id).await;
    assert_eq!(inst.image_id, img.id);
    assert_eq!(inst.os_user(), "ubuntu");
    assert_eq!(inst.os_name(), "ubuntu-custom");
}

/// Glance glance-direct: staged data leaves the image uploading and unbootable until the
/// import, which makes it active with its task in one commit; an import without staged data,
/// or a second one, is the image's state conflict; the task survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_data_becomes_the_image_at_its_import() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant("team-a");
    let task = |n: u8| nubis_core::images::ImportTask {
        id: uuid::Uuid::from_bytes([n; 16]),
        method: "glance-direct".into(),
        request_id: format!("req-{n}"),
        user_id: String::new(),
        created_ms: 1,
    };
    let id = {
        let e = nubis_testkit::engine_in(dir.path(), 0.0, None, None).await;
        nubis_testkit::account(&e, "team-a").await;
        let img = e.create_image(&a, NewImage::named("staged")).await.unwrap();
        assert!(matches!(
            e.import_staged_image(&a, &img.id, task(1)).await,
            Err(DomainError::ImageState {
                status: ImageStatus::Queued,
                ..
            })
        ));
        e.begin_image_upload(&a, &img.id).await.unwrap();
        let staged = e.image_uploaded(&a, &img.id, data(), true).await.unwrap();
        assert_eq!(staged.status, ImageStatus::Uploading);
        assert!(
            e.image_facts(&a, &img.id).is_none(),
            "staged data boots nothing"
        );
        let active = e.import_staged_image(&a, &img.id, task(2)).await.unwrap();
        assert_eq!((active.status, active.size_gib), (ImageStatus::Active, 5));
        assert!(matches!(
            e.import_staged_image(&a, &img.id, task(3)).await,
            Err(DomainError::ImageState {
                status: ImageStatus::Active,
                ..
            })
        ));
        img.id
    };
    let e = nubis_testkit::engine_in(dir.path(), 0.0, None, None).await;
    let img = e.image(&a, &id).unwrap();
    assert_eq!(img.import_task, Some(task(2)));
    assert!(e.image_facts(&a, &id).is_some());
}
