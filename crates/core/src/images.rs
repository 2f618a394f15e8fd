//! The image registry's record (docs/images.md): the built-in catalogue images and the images
//! accounts make (from an instance, or uploaded through Glance), one record shown by every
//! dialect. Tencent and Alibaba name an image by its `img-` ID, Glance and Nova by its UUID.
//!
//! A built-in image is not stored: it is made from [`crate::catalog::IMAGES`] at start-up.

use crate::catalog;
use crate::ids;
use crate::model::{OsFamily, Principal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Images one account may own (Alibaba's default custom-image quota per region; Tencent's is
/// larger). A create past it is refused with the dialect's quota code.
pub const IMAGES_PER_ACCOUNT: usize = 100;
/// Glance's `image_member_quota` default.
pub const MEMBERS_PER_IMAGE: usize = 128;
/// Glance's `image_tag_quota` default.
pub const TAGS_PER_IMAGE: usize = 128;
/// Glance's `image_property_quota` default.
pub const PROPERTIES_PER_IMAGE: usize = 128;
/// Longest name (Glance: 255; Tencent: 60; Alibaba: 128 — each dialect checks its own).
pub const NAME_MAX: usize = 255;

/// Where an image is in its life, in Glance's words (each dialect renders its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// Created without data (Glance `POST /v2/images`).
    Queued,
    /// Being made from an instance.
    Saving,
    /// Data being uploaded.
    Uploading,
    /// Usable.
    Active,
    /// Making it failed (a snapshot whose instance step failed, an upload cut short).
    Killed,
    /// Hidden from non-admin downloads (Glance deactivate).
    Deactivated,
    /// Deleted: kept only until its deletion is committed everywhere.
    Deleted,
}

impl ImageStatus {
    pub fn glance(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Saving => "saving",
            Self::Uploading => "uploading",
            Self::Active => "active",
            Self::Killed => "killed",
            Self::Deactivated => "deactivated",
            Self::Deleted => "deleted",
        }
    }
}

/// Who sees an image (Glance's four visibilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Private,
    /// The owner and the projects it is shared with ([`Member`]).
    Shared,
    /// Everyone may use it; listed only to its owner and members.
    Community,
}

impl Visibility {
    pub const ALL: [Visibility; 4] = [Self::Public, Self::Private, Self::Shared, Self::Community];

    pub fn glance(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Shared => "shared",
            Self::Community => "community",
        }
    }

    pub fn from_glance(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.glance() == s)
    }
}

/// A member's answer to a share (Glance image members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Pending,
    Accepted,
    Rejected,
}

impl MemberStatus {
    pub fn glance(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }

    pub fn from_glance(s: &str) -> Option<Self> {
        [Self::Pending, Self::Accepted, Self::Rejected]
            .into_iter()
            .find(|m| m.glance() == s)
    }
}

/// A project an image is shared with (a Keystone project ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub project: String,
    pub status: MemberStatus,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// The uploaded or snapshotted bytes of an image: where the image directory keeps them and
/// what they are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageData {
    /// Size in bytes.
    pub size: u64,
    /// MD5 hex digest (Glance `checksum`).
    pub md5: String,
    /// SHA-512 hex digest (Glance `os_hash_value`, `os_hash_algo` sha512).
    pub sha512: String,
    /// Size of the disk it holds (qcow2's virtual size; the file size for raw).
    pub virtual_size: Option<u64>,
}

/// A finished Glance import of staged data (glance-direct): who asked, when, by which request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportTask {
    pub id: Uuid,
    /// The import method (`glance-direct`).
    pub method: String,
    pub request_id: String,
    /// The Keystone user who asked (empty for a caller without one).
    pub user_id: String,
    pub created_ms: i64,
}

/// One image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `img-` + 8 (Tencent's and Alibaba's ID; canonical).
    pub id: String,
    /// Glance's and Nova's ID.
    pub uuid: Uuid,
    /// The owner account; `None`: a built-in image.
    pub account: Option<String>,
    /// The owner Keystone project (Glance `owner`); `None`: the account's default project.
    pub project: Option<String>,
    pub name: String,
    pub description: String,
    pub os_name: String,
    /// Distribution (TencentOS, Ubuntu, Debian, Windows, …).
    pub platform: String,
    pub os: OsFamily,
    /// The image's administrator account (root, ubuntu, Administrator).
    pub default_user: String,
    /// The system disk it needs, GiB.
    pub size_gib: u32,
    pub status: ImageStatus,
    pub visibility: Visibility,
    pub protected: bool,
    /// Glance tags.
    pub tags: Vec<String>,
    pub members: Vec<Member>,
    /// Glance's additional properties (`os_distro`, `hw_*`, anything a client sets).
    pub properties: BTreeMap<String, String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub min_disk: u32,
    pub min_ram: u32,
    /// The bytes, once uploaded or snapshotted.
    pub data: Option<ImageData>,
    /// The instance it was made from.
    pub source_instance: Option<Uuid>,
    /// Making an image from an instance is idempotent per (account, ClientToken).
    pub client_token: Option<String>,
    /// A Nova backup (createBackup): how many backups of its instance and `backup_type` to
    /// keep once it is made (the oldest beyond are deleted in its commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_rotation: Option<u32>,
    /// The Glance import (`POST /v2/images/{id}/import`) that made it active, shown as its
    /// task (`GET /v2/images/{id}/tasks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_task: Option<ImportTask>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Every stored write names the next generation and lands only over the one before
    /// (migration 0014), like an instance's.
    #[serde(default)]
    pub generation: u64,
}

/// What the rules need of an image: a create's or a reinstall's image, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub id: String,
    pub os: OsFamily,
    pub os_name: String,
    pub default_user: String,
    pub size_gib: u32,
    /// The memory an instance of it needs (Glance `min_ram`), MiB; 0: any.
    pub min_ram_mib: u32,
}

/// Glance ID of a built-in image: a name-based UUID, stable across restarts and nodes.
pub fn builtin_uuid(image_id: &str) -> Uuid {
    const NS: Uuid = Uuid::from_u128(0x6e75_6269_735f_4f53_8a00_0000_0000_0001);
    Uuid::new_v5(&NS, format!("image:{image_id}").as_bytes())
}

/// The facts of a listed built-in image (core's tests and the driver's use them).
pub fn builtin_facts(id: &str) -> Option<ImageFacts> {
    catalog::image(id)
        .filter(|c| c.public)
        .map(|c| Image::builtin(c).facts())
}

pub fn new_image_id() -> String {
    format!("img-{}", ids::random_alnum(8))
}

impl Image {
    /// A built-in catalogue image as a registry record (the rescue image is nobody's to list).
    pub fn builtin(c: &catalog::Image) -> Self {
        Self {
            id: c.id.to_string(),
            uuid: builtin_uuid(c.id),
            account: None,
            project: None,
            name: c.name.to_string(),
            description: String::new(),
            os_name: c.os_name.to_string(),
            platform: c.platform.to_string(),
            os: c.os,
            default_user: c.default_user.to_string(),
            size_gib: c.size_gib,
            status: ImageStatus::Active,
            visibility: if c.public {
                Visibility::Public
            } else {
                Visibility::Private
            },
            protected: true,
            tags: Vec::new(),
            members: Vec::new(),
            properties: BTreeMap::new(),
            disk_format: Some("qcow2".into()),
            container_format: Some("bare".into()),
            min_disk: 0,
            min_ram: 0,
            data: Some(ImageData {
                size: u64::from(c.size_gib) << 30,
                ..ImageData::default()
            }),
            source_instance: None,
            client_token: None,
            backup_rotation: None,
            import_task: None,
            created_ms: 0,
            updated_ms: 0,
            generation: 0,
        }
    }

    pub fn builtin_all() -> impl Iterator<Item = Image> {
        catalog::IMAGES.iter().map(Self::builtin)
    }

    pub fn is_builtin(&self) -> bool {
        self.account.is_none()
    }

    pub fn facts(&self) -> ImageFacts {
        ImageFacts {
            id: self.id.clone(),
            os: self.os,
            os_name: self.os_name.clone(),
            default_user: self.default_user.clone(),
            size_gib: self.size_gib,
            min_ram_mib: self.min_ram,
        }
    }

    /// Does `p` own it (its account, and for a project-scoped Keystone caller, its project)?
    pub fn owned_by(&self, p: &Principal) -> bool {
        self.account
            .as_deref()
            .is_some_and(|a| p.sees(a) && p.sees_project(self.project.as_deref()))
    }

    fn member(&self, p: &Principal) -> Option<&Member> {
        let project = p.project.as_ref()?;
        self.members.iter().find(|m| m.project == project.id)
    }

    /// May `p` see it and boot from it? Public and community images: everyone; private: its
    /// owner; shared: its owner and its members (whatever they answered). The built-in
    /// rescue image: nobody.
    pub fn usable_by(&self, p: &Principal) -> bool {
        if self.status == ImageStatus::Deleted {
            return false;
        }
        match self.visibility {
            Visibility::Public | Visibility::Community => {
                self.account.is_some() || self.visibility == Visibility::Public
            }
            Visibility::Private => self.owned_by(p),
            Visibility::Shared => self.owned_by(p) || self.member(p).is_some(),
        }
    }

    /// Is it in `p`'s default listing? Glance lists public images, the caller's own, and
    /// shared ones the caller accepted; community images only to their owner.
    pub fn listed_to(&self, p: &Principal) -> bool {
        if !self.usable_by(p) {
            return false;
        }
        match self.visibility {
            Visibility::Public => true,
            Visibility::Private => true,
            Visibility::Community => self.owned_by(p),
            Visibility::Shared => {
                self.owned_by(p)
                    || self
                        .member(p)
                        .is_some_and(|m| m.status == MemberStatus::Accepted)
            }
        }
    }

    /// Can an instance boot from it now?
    pub fn bootable(&self) -> bool {
        self.status == ImageStatus::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProjectScope;

    fn principal(account: &str, project: Option<&str>) -> Principal {
        Principal {
            account: account.into(),
            project: project.map(|id| ProjectScope {
                id: id.into(),
                is_default: false,
            }),
            ..Principal::default()
        }
    }

    fn private(account: &str, project: Option<&str>) -> Image {
        Image {
            account: Some(account.into()),
            project: project.map(str::to_string),
            visibility: Visibility::Private,
            ..Image::builtin(&catalog::IMAGES[0])
        }
    }

    #[test]
    fn builtin_uuids_are_stable() {
        // The UUIDs Glance showed before the registry existed: clients keep them.
        assert_eq!(
            builtin_uuid("img-tos31x64"),
            Uuid::new_v5(
                &Uuid::from_u128(0x6e75_6269_735f_4f53_8a00_0000_0000_0001),
                b"image:img-tos31x64"
            )
        );
        assert!(ids::is_image_id(&new_image_id()));
    }

    #[test]
    fn the_rescue_image_is_nobodys() {
        let rescue = Image::builtin(catalog::image(catalog::RESCUE_IMAGE).unwrap());
        let admin = Principal {
            is_admin: true,
            ..principal("a", None)
        };
        assert!(!rescue.usable_by(&admin));
        assert!(Image::builtin(&catalog::IMAGES[0]).listed_to(&principal("a", None)));
    }

    #[test]
    fn private_images_are_their_owners() {
        let img = private("a", None);
        assert!(img.usable_by(&principal("a", None)));
        assert!(!img.usable_by(&principal("b", None)));
        let in_project = private("a", Some("p1"));
        assert!(in_project.usable_by(&principal("a", Some("p1"))));
        assert!(!in_project.usable_by(&principal("a", Some("p2"))));
        assert!(in_project.usable_by(&principal("a", None)));
    }

    #[test]
    fn shared_images_are_listed_once_accepted() {
        let mut img = Image {
            visibility: Visibility::Shared,
            ..private("a", Some("p1"))
        };
        img.members.push(Member {
            project: "p9".into(),
            status: MemberStatus::Pending,
            created_ms: 0,
            updated_ms: 0,
        });
        let member = principal("b", Some("p9"));
        assert!(img.usable_by(&member));
        assert!(!img.listed_to(&member));
        img.members[0].status = MemberStatus::Accepted;
        assert!(img.listed_to(&member));
        assert!(!img.usable_by(&principal("b", Some("p8"))));
    }

    #[test]
    fn community_images_are_usable_by_all_listed_to_their_owner() {
        let img = Image {
            visibility: Visibility::Community,
            ..private("a", None)
        };
        assert!(img.usable_by(&principal("b", None)));
        assert!(!img.listed_to(&principal("b", None)));
        assert!(img.listed_to(&principal("a", None)));
    }

    #[test]
    fn deleted_images_are_gone() {
        let img = Image {
            status: ImageStatus::Deleted,
            ..private("a", None)
        };
        assert!(!img.usable_by(&principal("a", None)));
    }
}
