//! The image registry (docs/images.md): the built-in catalogue images and the images accounts
//! make, in the fleet like placement groups and written through to the store (migration
//! 0014) with a generation, so a stale write from another node is refused. An image's bytes
//! (uploaded through Glance, or a snapshot) live in the image directory, named by its UUID.

use crate::{Engine, Fleet, now_ms, store_err};
use nubis_core::images::{
    IMAGES_PER_ACCOUNT, Image, ImageData, ImageFacts, ImageStatus, Visibility, new_image_id,
};
use nubis_core::{DomainError, InstanceState, OsFamily, Principal, ResourceKind};
use nubis_store::{StoreError, Write};
use std::collections::BTreeMap;
use std::path::PathBuf;
use uuid::Uuid;

/// What a new image is: the dialect checked every field's shape and range.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// Glance lets the client choose the UUID.
    pub uuid: Option<Uuid>,
    pub name: String,
    pub description: String,
    pub visibility: Visibility,
    pub protected: bool,
    pub tags: Vec<String>,
    pub properties: BTreeMap<String, String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub min_disk: u32,
    pub min_ram: u32,
    /// Names are unique per account (Tencent, Alibaba); Glance allows duplicates.
    pub unique_name: bool,
    /// Making an image is idempotent per (account, token) where the cloud says so.
    pub client_token: Option<String>,
    /// Nova createBackup's `rotation` ([`Image::backup_rotation`]).
    pub backup_rotation: Option<u32>,
}

impl NewImage {
    /// A private image of this name with no data (what Glance's create makes).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            uuid: None,
            name: name.into(),
            description: String::new(),
            visibility: Visibility::Private,
            protected: false,
            tags: Vec::new(),
            properties: BTreeMap::new(),
            disk_format: None,
            container_format: None,
            min_disk: 0,
            min_ram: 0,
            unique_name: false,
            client_token: None,
            backup_rotation: None,
        }
    }
}

/// The OS facts an uploaded image takes from its properties (Glance `os_type`, `os_distro`,
/// `os_admin_user`), with the defaults of a Linux cloud image.
fn os_of(props: &BTreeMap<String, String>) -> (OsFamily, String, String) {
    let os = match props.get("os_type").map(String::as_str) {
        Some("windows") => OsFamily::Windows,
        _ => OsFamily::Linux,
    };
    let platform = props.get("os_distro").cloned().unwrap_or_else(|| match os {
        OsFamily::Windows => "Windows".into(),
        OsFamily::Linux => "Linux".into(),
    });
    let user = props
        .get("os_admin_user")
        .cloned()
        .unwrap_or_else(|| match os {
            OsFamily::Windows => "Administrator".into(),
            OsFamily::Linux => "root".into(),
        });
    (os, platform, user)
}

/// What [`Fleet::admit_image`] decides for a new image.
enum Admit {
    /// The image this client token already made.
    Found(Box<Image>),
    /// A new image may be made: its ID and UUID.
    New { id: String, uuid: Uuid },
}

impl Fleet {
    /// May `p` make image `new`? The image its client token already made; the account's
    /// image quota; a name unique per account where the dialect says so; a UUID not taken.
    fn admit_image(&self, p: &Principal, new: &NewImage) -> Result<Admit, DomainError> {
        let mine = |i: &&Image| {
            i.account.as_deref() == Some(p.account.as_str()) && i.status != ImageStatus::Deleted
        };
        if let Some(token) = &new.client_token
            && let Some(found) = self
                .images
                .values()
                .filter(mine)
                .find(|i| i.client_token.as_ref() == Some(token))
        {
            return Ok(Admit::Found(Box::new(found.clone())));
        }
        let owned: Vec<&Image> = self.images.values().filter(mine).collect();
        if owned.len() >= IMAGES_PER_ACCOUNT {
            return Err(DomainError::ImageQuota {
                limit: IMAGES_PER_ACCOUNT as u32,
            });
        }
        if new.unique_name && owned.iter().any(|i| i.name == new.name) {
            return Err(DomainError::ImageNameInUse(new.name.clone()));
        }
        let uuid = new.uuid.unwrap_or_else(Uuid::new_v4);
        if self.image_uuids.contains_key(&uuid) {
            return Err(DomainError::Conflict(format!(
                "Image with identifier {uuid} already exists!"
            )));
        }
        let mut id = new_image_id();
        while self.images.contains_key(&id) {
            id = new_image_id();
        }
        Ok(Admit::New { id, uuid })
    }

    /// Put `image` in the registry unless it holds a newer generation of it.
    pub(crate) fn put_image(&mut self, image: Image) {
        if let Some(old) = self.images.get(&image.id)
            && old.generation > image.generation
        {
            return;
        }
        self.image_uuids.insert(image.uuid, image.id.clone());
        self.images.insert(image.id.clone(), image);
    }

    /// The image a reference names: its canonical ID, its UUID, or a URL ending in the UUID
    /// (Nova's imageRef). Deleted ones included.
    pub(crate) fn image_by_ref(&self, r: &str) -> Option<&Image> {
        let tail = r.trim().trim_end_matches('/').rsplit('/').next()?;
        if let Some(i) = self.images.get(tail) {
            return Some(i);
        }
        let uuid = Uuid::parse_str(tail).ok()?;
        self.images.get(self.image_uuids.get(&uuid)?)
    }

    /// Instances (listed, of any account) that run `image`.
    fn image_users(&self, image: &str) -> usize {
        self.instances
            .read()
            .rows()
            .filter(|r| r.state().is_listed() && r.state() != InstanceState::LaunchFailed)
            .filter(|r| r.image_id() == image)
            .count()
    }
}

/// The system disk an image with `data` needs: its disk's size in GiB, at least `min_disk`
/// and 1.
fn disk_gib(min_disk: u32, data: &ImageData) -> u32 {
    let gib = data.virtual_size.unwrap_or(data.size).div_ceil(1 << 30);
    min_disk.max(u32::try_from(gib).unwrap_or(u32::MAX)).max(1)
}

fn not_found(r: &str) -> DomainError {
    DomainError::NotFound {
        kind: ResourceKind::Image,
        id: r.to_string(),
    }
}

impl Engine {
    /// The image `r` names if `p` may see it (NotFound otherwise, like an unknown one).
    pub fn image(&self, p: &Principal, r: &str) -> Result<Image, DomainError> {
        let fleet = self.inner.fleet.lock();
        fleet
            .image_by_ref(r)
            .filter(|i| i.usable_by(p))
            .cloned()
            .ok_or_else(|| not_found(r))
    }

    /// The Glance/Nova UUID of image `id` (canonical), deleted ones included; a built-in's
    /// derived one when the registry does not know it.
    pub fn image_uuid(&self, id: &str) -> Uuid {
        self.inner
            .fleet
            .lock()
            .images
            .get(id)
            .map_or_else(|| nubis_core::images::builtin_uuid(id), |i| i.uuid)
    }

    /// The registry's record of image `id` (canonical), deleted ones included; `None` for a
    /// built-in the registry does not know.
    pub fn image_record(&self, id: &str) -> Option<Image> {
        self.inner.fleet.lock().images.get(id).cloned()
    }

    /// Is image `id` (canonical) a Nova backup (createBackup), deleted or not?
    pub fn image_is_backup(&self, id: &str) -> bool {
        let fleet = self.inner.fleet.lock();
        fleet
            .images
            .get(id)
            .is_some_and(|i| i.backup_rotation.is_some())
    }

    /// What the rules need of the image `r` names, if `p` may boot it now.
    pub fn image_facts(&self, p: &Principal, r: &str) -> Option<ImageFacts> {
        let fleet = self.inner.fleet.lock();
        fleet
            .image_by_ref(r)
            .filter(|i| i.usable_by(p) && i.bootable())
            .map(Image::facts)
    }

    /// Every image `p` may see (built-in first in catalogue order, then by creation, newest
    /// last). Dialects narrow it to their default listing ([`Image::listed_to`]).
    pub fn images(&self, p: &Principal) -> Vec<Image> {
        let fleet = self.inner.fleet.lock();
        let mut all: Vec<Image> = fleet
            .images
            .values()
            .filter(|i| i.usable_by(p))
            .cloned()
            .collect();
        let builtin_rank = |i: &Image| {
            nubis_core::catalog::IMAGES
                .iter()
                .position(|c| c.id == i.id)
                .unwrap_or(usize::MAX)
        };
        all.sort_by(|a, b| {
            (builtin_rank(a), a.created_ms, &a.id).cmp(&(builtin_rank(b), b.created_ms, &b.id))
        });
        all
    }

    /// How many instances run image `id` (the caller owns the image).
    pub fn image_in_use(&self, id: &str) -> usize {
        self.inner.fleet.lock().image_users(id)
    }

    /// Register a new image owned by `p`'s account (and Keystone project), with no data yet
    /// (status queued), or with `source`'s facts when it is made from an instance.
    pub async fn create_image(&self, p: &Principal, new: NewImage) -> Result<Image, DomainError> {
        let image = {
            let fleet = self.inner.fleet.lock();
            let (id, uuid) = match fleet.admit_image(p, &new)? {
                Admit::Found(found) => return Ok(*found),
                Admit::New { id, uuid } => (id, uuid),
            };
            let (os, platform, default_user) = os_of(&new.properties);
            let now = now_ms();
            Image {
                id,
                uuid,
                account: Some(p.account.clone()),
                project: p.project.as_ref().map(|s| s.id.clone()),
                os_name: new.name.clone(),
                name: new.name,
                description: new.description,
                platform,
                os,
                default_user,
                size_gib: new.min_disk,
                status: ImageStatus::Queued,
                visibility: new.visibility,
                protected: new.protected,
                tags: new.tags,
                members: Vec::new(),
                properties: new.properties,
                disk_format: new.disk_format,
                container_format: new.container_format,
                min_disk: new.min_disk,
                min_ram: new.min_ram,
                data: None,
                source_instance: None,
                client_token: new.client_token,
                backup_rotation: new.backup_rotation,
                import_task: None,
                created_ms: now,
                updated_ms: now,
                generation: 1,
            }
        };
        self.commit_image(image).await
    }

    /// Change image `r` as `change` says (its owner, or an admin), in one conditional write.
    /// `change` sees the current record and may refuse.
    pub async fn update_image(
        &self,
        p: &Principal,
        r: &str,
        change: impl FnOnce(&mut Image) -> Result<(), DomainError>,
    ) -> Result<Image, DomainError> {
        let mut image = self.owned_image(p, r)?;
        change(&mut image)?;
        image.updated_ms = now_ms();
        image.generation += 1;
        self.commit_image(image).await
    }

    /// Change image `r` as one of its members (Glance: a member answers a share): `change`
    /// gets the record and the caller's project.
    pub async fn update_image_as_member(
        &self,
        p: &Principal,
        r: &str,
        change: impl FnOnce(&mut Image, &str) -> Result<(), DomainError>,
    ) -> Result<Image, DomainError> {
        let mut image = self.image(p, r)?;
        let project = p
            .project
            .as_ref()
            .map(|s| s.id.clone())
            .ok_or_else(|| not_found(r))?;
        change(&mut image, &project)?;
        image.updated_ms = now_ms();
        image.generation += 1;
        self.commit_image(image).await
    }

    /// Delete image `r` (its owner, or an admin). A protected image is refused; with
    /// `refuse_in_use`, so is one that instances run. Its data file goes after the commit.
    pub async fn delete_image(
        &self,
        p: &Principal,
        r: &str,
        refuse_in_use: bool,
    ) -> Result<Image, DomainError> {
        let image = self.owned_image(p, r)?;
        if image.protected {
            return Err(DomainError::ImageProtected(image.id));
        }
        if refuse_in_use && self.image_in_use(&image.id) > 0 {
            return Err(DomainError::ImageInUse(image.id));
        }
        let gone = Image {
            status: ImageStatus::Deleted,
            data: None,
            updated_ms: now_ms(),
            generation: image.generation + 1,
            ..image
        };
        let gone = self.commit_image(gone).await?;
        if let Some(path) = self.image_path(&gone.id) {
            // Best effort: a file left behind is garbage, never shown.
            let _ = tokio::fs::remove_file(path).await;
        }
        Ok(gone)
    }

    /// The image `r` if `p` owns it (an admin owns every stored image). Built-in images are
    /// nobody's to change.
    fn owned_image(&self, p: &Principal, r: &str) -> Result<Image, DomainError> {
        let image = self.image(p, r)?;
        if image.is_builtin() || !image.owned_by(p) {
            return Err(DomainError::ImageNotOwned(image.id));
        }
        Ok(image)
    }

    /// Commit `image` (its generation already the next one) and put it in the registry.
    pub(crate) async fn commit_image(&self, image: Image) -> Result<Image, DomainError> {
        match self
            .inner
            .store
            .commit(vec![Write::Image(Box::new(image.clone()))])
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(e)) => {
                // Another node changed it meanwhile: show its version and refuse this one.
                if let Ok(found) = self
                    .inner
                    .store
                    .images(std::slice::from_ref(&image.id))
                    .await
                {
                    let mut fleet = self.inner.fleet.lock();
                    for i in found {
                        fleet.put_image(i);
                    }
                }
                return Err(DomainError::Conflict(e));
            }
            Err(e) => return Err(store_err(e)),
        }
        self.inner.fleet.lock().put_image(image.clone());
        Ok(image)
    }

    /// Where the bytes of image `id` (canonical) are kept: `<image dir>/<id>.img`, the name
    /// the qemu driver boots it by. `None` without an image directory.
    pub fn image_path(&self, id: &str) -> Option<PathBuf> {
        self.inner
            .image_dir
            .as_ref()
            .map(|d| d.join(format!("{id}.img")))
    }

    /// The image directory (`--data`/images), created on first use.
    pub fn image_dir(&self) -> Option<&std::path::Path> {
        self.inner.image_dir.as_deref()
    }

    /// Start an upload of image `r`'s bytes (Glance `PUT /file`): queued → uploading, in one
    /// conditional write, so two uploads cannot both start. Only its owner (or an admin).
    pub async fn begin_image_upload(&self, p: &Principal, r: &str) -> Result<Image, DomainError> {
        self.update_image(p, r, |i| {
            if i.status != ImageStatus::Queued {
                return Err(DomainError::ImageState {
                    id: i.id.clone(),
                    status: i.status,
                });
            }
            i.status = ImageStatus::Uploading;
            Ok(())
        })
        .await
    }

    /// An upload that did not finish (cut short, over the size cap, a digest refused): the
    /// image is queued again, as Glance leaves it, and its partial bytes are dropped by the
    /// caller. Only from uploading (a deletion meanwhile wins).
    pub async fn abort_image_upload(&self, p: &Principal, r: &str) -> Result<Image, DomainError> {
        self.update_image(p, r, |i| {
            if i.status != ImageStatus::Uploading {
                return Err(DomainError::ImageState {
                    id: i.id.clone(),
                    status: i.status,
                });
            }
            i.status = ImageStatus::Queued;
            Ok(())
        })
        .await
    }

    /// Glance's import of staged data (glance-direct): an uploading image whose data is
    /// staged becomes active, with `task` recorded; anything else is the image's state
    /// conflict. The import is done when this commits (Glance runs it in the background).
    pub async fn import_staged_image(
        &self,
        p: &Principal,
        r: &str,
        task: nubis_core::images::ImportTask,
    ) -> Result<Image, DomainError> {
        self.update_image(p, r, |i| {
            let Some(data) = i
                .data
                .clone()
                .filter(|_| i.status == ImageStatus::Uploading)
            else {
                return Err(DomainError::ImageState {
                    id: i.id.clone(),
                    status: i.status,
                });
            };
            i.size_gib = disk_gib(i.min_disk, &data);
            i.status = ImageStatus::Active;
            i.import_task = Some(task.clone());
            Ok(())
        })
        .await
    }

    /// Glance deactivate and reactivate: the owner's or an administrator's (Glance's default
    /// rule: project member or admin), only between active and deactivated (the same status
    /// again is no change). A deactivated image's data is downloadable only by an
    /// administrator and it boots nothing.
    pub async fn set_image_deactivated(
        &self,
        p: &Principal,
        r: &str,
        deactivated: bool,
    ) -> Result<Image, DomainError> {
        self.update_image(p, r, |i| {
            if !matches!(i.status, ImageStatus::Active | ImageStatus::Deactivated) {
                return Err(DomainError::ImageState {
                    id: i.id.clone(),
                    status: i.status,
                });
            }
            i.status = if deactivated {
                ImageStatus::Deactivated
            } else {
                ImageStatus::Active
            };
            Ok(())
        })
        .await
    }

    /// Record that image `r`'s bytes are in place (an upload finished): it becomes active with
    /// their size and digests. Only from queued or uploading.
    pub async fn image_uploaded(
        &self,
        p: &Principal,
        r: &str,
        data: ImageData,
        staged: bool,
    ) -> Result<Image, DomainError> {
        self.update_image(p, r, |i| {
            if !matches!(i.status, ImageStatus::Queued | ImageStatus::Uploading) {
                return Err(DomainError::ImageState {
                    id: i.id.clone(),
                    status: i.status,
                });
            }
            // Staged data (Glance `PUT /stage`) waits in uploading for its import.
            if staged {
                i.data = Some(data);
                return Ok(());
            }
            i.size_gib = disk_gib(i.min_disk, &data);
            i.data = Some(data);
            i.status = ImageStatus::Active;
            Ok(())
        })
        .await
    }

    /// Make image `new` of instance `instance`'s system disk (Nova createImage, Tencent and
    /// Alibaba CreateImage): the image (status saving, owned by `p`, the instance's OS facts),
    /// the instance's operation and its lock in one commit. The operation's snapshot step
    /// writes the bytes; when it ends the image becomes active with their facts, or killed
    /// ([`Engine::settle_snapshot`]). A client token that already made an image answers
    /// that image. With `dry_run` every check runs and nothing is written (`DryRunOk`).
    pub async fn create_image_from_instance(
        &self,
        p: &Principal,
        request_id: &str,
        instance: Uuid,
        new: NewImage,
        stop_first: bool,
        dry_run: bool,
    ) -> Result<Image, DomainError> {
        self.image_with(p, request_id, instance, new, dry_run, |image_id| {
            nubis_core::Command::CreateImage {
                image_id,
                stop_first,
            }
        })
        .await
    }

    /// Shelve instance `instance` (Nova), its powered-off system disk snapshotted as image
    /// `new` (Nova's `<name>-shelved`), registered with the operation like
    /// [`Engine::create_image_from_instance`]'s; its unshelve deletes it.
    pub async fn shelve_with_image(
        &self,
        p: &Principal,
        request_id: &str,
        instance: Uuid,
        new: NewImage,
        offload: bool,
    ) -> Result<Image, DomainError> {
        self.image_with(p, request_id, instance, new, false, |image_id| {
            nubis_core::Command::Shelve {
                offload,
                image_id: Some(image_id),
            }
        })
        .await
    }

    /// The image a request on `instance` makes (saving, the instance's facts) and the
    /// request `cmd` names it in, accepted in one commit.
    async fn image_with(
        &self,
        p: &Principal,
        request_id: &str,
        instance: Uuid,
        new: NewImage,
        dry_run: bool,
        cmd: impl FnOnce(String) -> nubis_core::Command,
    ) -> Result<Image, DomainError> {
        let image = {
            let fleet = self.inner.fleet.lock();
            let inst = crate::visible_or_not_found(fleet.instances.get(&instance), p, instance)?;
            let (id, uuid) = match fleet.admit_image(p, &new)? {
                Admit::Found(found) => return Ok(*found),
                Admit::New { id, uuid } => (id, uuid),
            };
            let source = fleet.images.get(&inst.image_id);
            let now = now_ms();
            let min_ram = new.min_ram.max(source.map_or(0, |s| s.min_ram));
            let min_disk = new.min_disk.max(inst.system_disk.size_gib);
            Image {
                id,
                uuid,
                account: Some(p.account.clone()),
                project: p.project.as_ref().map(|s| s.id.clone()),
                name: new.name,
                description: new.description,
                os_name: inst.os_name().to_string(),
                platform: source.map_or_else(
                    || match inst.os {
                        OsFamily::Windows => "Windows".to_string(),
                        OsFamily::Linux => "Linux".to_string(),
                    },
                    |s| s.platform.clone(),
                ),
                os: inst.os,
                default_user: inst.os_user().to_string(),
                size_gib: inst.system_disk.size_gib,
                status: ImageStatus::Saving,
                visibility: new.visibility,
                protected: new.protected,
                tags: new.tags,
                members: Vec::new(),
                properties: new.properties,
                disk_format: new.disk_format.or_else(|| Some("qcow2".into())),
                container_format: new.container_format.or_else(|| Some("bare".into())),
                min_disk,
                min_ram,
                data: None,
                source_instance: Some(inst.uuid),
                client_token: new.client_token,
                backup_rotation: new.backup_rotation,
                import_task: None,
                created_ms: now,
                updated_ms: now,
                generation: 1,
            }
        };
        let targets = [instance];
        let cmd = cmd(image.id.clone());
        let batch = crate::submit::Batch {
            dry_run,
            ..crate::submit::Batch::new(&targets, cmd, crate::submit::BatchMode::AllOrNothing)
        };
        self.submit_batch_with(p, request_id, batch, vec![image.clone()])
            .await?;
        Ok(image)
    }

    /// What an ending operation's snapshot step left: the image it makes and, if the
    /// operation succeeded, the facts of its bytes (size, digests; no bytes without an image
    /// directory). `None`: the operation makes no image.
    pub(crate) async fn snapshot_outcome(
        &self,
        op_id: Uuid,
        success: bool,
    ) -> Option<(String, Option<ImageData>)> {
        let image_id = {
            let fleet = self.inner.fleet.lock();
            fleet
                .running
                .get(&op_id)?
                .steps
                .iter()
                .find_map(|s| match s {
                    nubis_core::Step::Snapshot { image_id } => Some(image_id.clone()),
                    _ => None,
                })?
        };
        if !success {
            return Some((image_id, None));
        }
        let data = match self.image_path(&image_id) {
            Some(path) => tokio::task::spawn_blocking(move || file_data(&path))
                .await
                .ok()
                .and_then(Result::ok),
            None => Some(ImageData::default()),
        };
        Some((image_id, data))
    }

    /// The image write of a snapshot's end: the image (still saving) becomes active with
    /// `data`, or killed without it. Nothing when it is gone or no longer saving (deleted
    /// meanwhile: a deleted image stays deleted). Called under the fleet lock, in the
    /// runner's commit.
    pub(crate) fn settle_snapshot(
        fleet: &Fleet,
        image_id: &str,
        data: Option<ImageData>,
    ) -> Option<Image> {
        let mut image = fleet
            .images
            .get(image_id)
            .filter(|i| i.status == ImageStatus::Saving)?
            .clone();
        match data {
            Some(data) => {
                let gib = data.virtual_size.unwrap_or(data.size).div_ceil(1 << 30);
                image.size_gib = image
                    .size_gib
                    .max(u32::try_from(gib).unwrap_or(u32::MAX))
                    .max(1);
                image.data = Some(data);
                image.status = ImageStatus::Active;
            }
            None => image.status = ImageStatus::Killed,
        }
        image.updated_ms = now_ms();
        image.generation += 1;
        Some(image)
    }

    /// The backups a finished Nova backup `done` rotates out (compute/manager.py
    /// `_rotate_backups`): of the backups of its instance and `backup_type` in its account,
    /// newest first with `done` among them, all beyond the first `rotation` — `done` itself
    /// when the rotation is 0. Each returned deleted, next generation; called under the fleet
    /// lock, in the runner's commit.
    pub(crate) fn rotated_out(fleet: &Fleet, done: &Image) -> Vec<Image> {
        let Some(keep) = done.backup_rotation else {
            return Vec::new();
        };
        let prop = |i: &Image, k: &str| i.properties.get(k).cloned();
        let same = |i: &Image| {
            i.account == done.account
                && i.backup_rotation.is_some()
                && prop(i, "instance_uuid") == prop(done, "instance_uuid")
                && prop(i, "backup_type") == prop(done, "backup_type")
        };
        let mut backups: Vec<Image> = fleet
            .images
            .values()
            .filter(|i| i.id != done.id && i.status == ImageStatus::Active && same(i))
            .cloned()
            .chain(std::iter::once(done.clone()))
            .collect();
        backups.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
        let now = now_ms();
        backups
            .into_iter()
            .skip(keep as usize)
            .map(|i| Image {
                status: ImageStatus::Deleted,
                data: None,
                updated_ms: now,
                generation: i.generation + u64::from(i.id != done.id),
                ..i
            })
            .collect()
    }

    /// Read image `id` back from the store (a runner's image write lost a race).
    pub(crate) async fn reload_image(&self, id: &str) {
        if let Ok(found) = self.inner.store.images(&[id.to_string()]).await {
            let mut fleet = self.inner.fleet.lock();
            for i in found {
                fleet.put_image(i);
            }
        }
    }
}

/// Size, MD5 and SHA-512 of an image file, and the disk size a qcow2 header declares.
fn file_data(path: &std::path::Path) -> std::io::Result<ImageData> {
    use md5::Digest as _;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut md5 = md5::Md5::new();
    let mut sha = sha2::Sha512::new();
    let mut size = 0u64;
    let mut head = Vec::with_capacity(32);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        if head.len() < 32 {
            head.extend(chunk.iter().take(32 - head.len()));
        }
        md5.update(chunk);
        sha2::Digest::update(&mut sha, chunk);
        size += n as u64;
    }
    // qcow2: magic "QFI\xfb", the virtual size big-endian at offset 24.
    let virtual_size = match (head.get(..4), head.get(24..32)) {
        (Some(b"QFI\xfb"), Some(v)) => <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes),
        _ => None,
    };
    Ok(ImageData {
        size,
        md5: hex::encode(md5.finalize()),
        sha512: hex::encode(sha2::Digest::finalize(sha)),
        virtual_size,
    })
}
