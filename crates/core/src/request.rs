//! The one request type, in two stages.
//!
//! A dialect parses a request into a [`Command`] (= `Request<Raw>`): dialect-neutral, with a
//! clear-text password and key pairs by ID. The engine checks it against its targets
//! ([`crate::rules::check_request`]), resolves the key pairs and hashes the password: the
//! [`ActionRequest`] (= `Request<Prepared>`) that [`crate::rules::plan`] decides on per
//! instance. The clear text goes no further than that step, and no stage prints a password:
//! `Debug` shows `<redacted>` in its place.

use crate::error::DomainError;
use crate::images::ImageFacts;
use crate::op::{ResizeEnd, StopMode, WhenRunning};
use crate::password::PasswordRule;
use crate::state::Action;
use std::fmt;

/// What varies between the stages: how a password and the key pairs are held.
pub trait Stage {
    type Secret: Clone + PartialEq + Eq;
    type Keys: Clone + PartialEq + Eq + fmt::Debug;
    /// A reinstall's image: its ID as given, then the registry's facts about it.
    type Image: Clone + PartialEq + Eq + fmt::Debug;
}

/// As a dialect parsed it: a clear-text password, key pairs by ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw;

/// Checked against its targets: a password hash, key pairs with their public keys, the image
/// resolved in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared;

impl Stage for Raw {
    type Secret = String;
    type Keys = Vec<String>;
    type Image = String;
}

impl Stage for Prepared {
    type Secret = PasswordHash;
    type Keys = Vec<PublicKey>;
    type Image = ImageFacts;
}

/// A SHA-512 crypt hash of a password (the form guests take). Not printed by `Debug` either.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A key pair a prepared request names: its ID and its public key (OpenSSH line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub id: String,
    pub key: String,
}

/// A mutating request on existing instances, in dialect-neutral terms.
#[derive(Clone, PartialEq, Eq)]
pub enum Request<S: Stage = Raw> {
    /// Simulated host maintenance (operator command).
    LiveMigrate,
    /// Reinstall the system disk from `image`, with a new password (or none).
    Rebuild {
        image: S::Image,
        password: Option<S::Secret>,
        rule: PasswordRule,
        /// Replace the instance's key pairs (None: keep them).
        key_ids: Option<S::Keys>,
        /// A running instance: stopped, reinstalled and started again (Nova rebuild, Tencent
        /// ResetInstance), or refused (Alibaba ReplaceSystemDisk needs it stopped).
        when_running: WhenRunning,
        /// Grow the system disk to this size (GiB) on the way (Tencent SystemDisk.DiskSize,
        /// Alibaba SystemDisk.Size); None: keep its size.
        system_disk_gib: Option<u32>,
    },
    Start,
    Stop {
        mode: StopMode,
        stop_charging: bool,
    },
    Reboot {
        mode: StopMode,
    },
    /// `force`: a running instance may be terminated (Alibaba needs `Force`; Tencent always).
    Terminate {
        force: bool,
    },
    /// Delete in any state (Nova's delete): an operation in flight is superseded, an instance
    /// already being deleted is left to finish. An owner's lock refuses it unless `admin`
    /// (Nova's `check_instance_lock`: admins pass).
    Delete {
        admin: bool,
    },
    /// Nova's delete when `reclaim_instance_interval` > 0: a settled, launched instance with no
    /// operation in flight is soft-deleted (powered off and kept until reclaimed); any other
    /// is deleted as by [`Request::Delete`] (Nova falls back to a delete when soft_delete
    /// refuses the state). `admin` as for [`Request::Delete`].
    SoftDelete {
        admin: bool,
    },
    /// Bring a soft-deleted instance back, powered on (Nova restore).
    Restore,
    /// `user`: None is each instance's image's administrator account.
    ResetPassword {
        user: Option<String>,
        password: S::Secret,
        when_running: WhenRunning,
        rule: PasswordRule,
    },
    /// `user`: None is `root` (the rescue system is Linux whatever the instance runs).
    EnterRescue {
        user: Option<String>,
        password: S::Secret,
        rule: PasswordRule,
        mode: StopMode,
        /// Boot this catalogue image instead of the rescue image (Nova rescue_image_ref).
        image_id: Option<String>,
    },
    ExitRescue,
    AssociateKeys {
        key_ids: S::Keys,
        when_running: WhenRunning,
    },
    DisassociateKeys {
        key_ids: S::Keys,
        when_running: WhenRunning,
    },
    /// Change the instance type to `instance_type` (a catalogue name). A running instance
    /// is stopped first when `when_running` allows it ([`WhenRunning::StopAndStart`]);
    /// `then` says how it ends.
    Resize {
        instance_type: String,
        when_running: WhenRunning,
        then: ResizeEnd,
    },
    /// Keep the new type of a resize awaiting confirmation.
    ConfirmResize,
    /// Go back to the type before the resize awaiting confirmation.
    RevertResize,
    // Pause, suspend and shelve (Nova; docs/pause-suspend-shelve.md).
    Pause,
    Unpause,
    Suspend,
    Resume,
    /// `offload`: remove the shelved guest from its host at once (Nova's default
    /// `shelved_offload_time = 0`); otherwise it stays shelved until a [`Request::ShelveOffload`].
    Shelve {
        offload: bool,
        /// Snapshot the shelved guest's system disk as this image (Nova's `<name>-shelved`,
        /// registered by the engine with the operation); unshelve deletes it.
        image_id: Option<String>,
    },
    ShelveOffload,
    /// `zone`: unshelve into this (canonical, checked) zone; only an offloaded guest may move.
    Unshelve {
        zone: Option<String>,
    },
    /// Make image `image_id` (canonical; registered by the engine in the same commit) of
    /// the system disk. `stop_first`: a running guest is powered off (soft, then hard), the
    /// copy made, and it is started again (Tencent ForcePoweroff); otherwise a running guest
    /// is copied live, crash-consistent (Nova, Alibaba, Tencent without ForcePoweroff).
    CreateImage {
        image_id: String,
        stop_first: bool,
    },
}

/// A request as a dialect hands it to the engine.
pub type Command = Request<Raw>;
/// A request as core decides on it.
pub type ActionRequest = Request<Prepared>;

const REDACTED: &str = "<redacted>";

/// Stands for a password in `Debug` output.
struct Hidden<'a, T>(&'a Option<T>);

impl<T> fmt::Debug for Hidden<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => write!(f, "Some({REDACTED})"),
            None => f.write_str("None"),
        }
    }
}

impl<S: Stage> fmt::Debug for Request<S> {
    /// Every field but the password, which shows as `<redacted>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LiveMigrate => f.write_str("LiveMigrate"),
            Self::Start => f.write_str("Start"),
            Self::ExitRescue => f.write_str("ExitRescue"),
            Self::ConfirmResize => f.write_str("ConfirmResize"),
            Self::RevertResize => f.write_str("RevertResize"),
            Self::Resize {
                instance_type,
                when_running,
                then,
            } => f
                .debug_struct("Resize")
                .field("instance_type", instance_type)
                .field("when_running", when_running)
                .field("then", then)
                .finish(),
            Self::Pause => f.write_str("Pause"),
            Self::Unpause => f.write_str("Unpause"),
            Self::Suspend => f.write_str("Suspend"),
            Self::Resume => f.write_str("Resume"),
            Self::ShelveOffload => f.write_str("ShelveOffload"),
            Self::Shelve { offload, image_id } => f
                .debug_struct("Shelve")
                .field("offload", offload)
                .field("image_id", image_id)
                .finish(),
            Self::Unshelve { zone } => f.debug_struct("Unshelve").field("zone", zone).finish(),
            Self::CreateImage {
                image_id,
                stop_first,
            } => f
                .debug_struct("CreateImage")
                .field("image_id", image_id)
                .field("stop_first", stop_first)
                .finish(),
            Self::Rebuild {
                image,
                password,
                rule,
                key_ids,
                when_running,
                system_disk_gib,
            } => f
                .debug_struct("Rebuild")
                .field("image", image)
                .field("password", &Hidden(password))
                .field("rule", rule)
                .field("key_ids", key_ids)
                .field("when_running", when_running)
                .field("system_disk_gib", system_disk_gib)
                .finish(),
            Self::Stop {
                mode,
                stop_charging,
            } => f
                .debug_struct("Stop")
                .field("mode", mode)
                .field("stop_charging", stop_charging)
                .finish(),
            Self::Reboot { mode } => f.debug_struct("Reboot").field("mode", mode).finish(),
            Self::Terminate { force } => f.debug_struct("Terminate").field("force", force).finish(),
            Self::Delete { admin } => f.debug_struct("Delete").field("admin", admin).finish(),
            Self::SoftDelete { admin } => {
                f.debug_struct("SoftDelete").field("admin", admin).finish()
            }
            Self::Restore => f.write_str("Restore"),
            Self::ResetPassword {
                user,
                when_running,
                rule,
                ..
            } => f
                .debug_struct("ResetPassword")
                .field("user", user)
                .field("password", &format_args!("{REDACTED}"))
                .field("when_running", when_running)
                .field("rule", rule)
                .finish(),
            Self::EnterRescue {
                user,
                rule,
                mode,
                image_id,
                ..
            } => f
                .debug_struct("EnterRescue")
                .field("user", user)
                .field("password", &format_args!("{REDACTED}"))
                .field("rule", rule)
                .field("mode", mode)
                .field("image_id", image_id)
                .finish(),
            Self::AssociateKeys {
                key_ids,
                when_running,
            } => f
                .debug_struct("AssociateKeys")
                .field("key_ids", key_ids)
                .field("when_running", when_running)
                .finish(),
            Self::DisassociateKeys {
                key_ids,
                when_running,
            } => f
                .debug_struct("DisassociateKeys")
                .field("key_ids", key_ids)
                .field("when_running", when_running)
                .finish(),
        }
    }
}

impl<S: Stage> Request<S> {
    pub fn action(&self) -> Action {
        match self {
            Self::Start => Action::Start,
            Self::Stop { .. } => Action::Stop,
            Self::Reboot { .. } => Action::Reboot,
            Self::Terminate { .. } | Self::Delete { .. } => Action::Terminate,
            Self::ResetPassword { .. } => Action::ResetPassword,
            Self::EnterRescue { .. } => Action::EnterRescue,
            Self::ExitRescue => Action::ExitRescue,
            Self::AssociateKeys { .. } => Action::AssociateKeys,
            Self::DisassociateKeys { .. } => Action::DisassociateKeys,
            Self::LiveMigrate => Action::LiveMigrate,
            Self::Rebuild { .. } => Action::Rebuild,
            Self::Resize { .. } => Action::Resize,
            Self::ConfirmResize => Action::ConfirmResize,
            Self::RevertResize => Action::RevertResize,
            Self::Pause => Action::Pause,
            Self::Unpause => Action::Unpause,
            Self::Suspend => Action::Suspend,
            Self::Resume => Action::Resume,
            Self::Shelve { .. } => Action::Shelve,
            Self::ShelveOffload => Action::ShelveOffload,
            Self::Unshelve { .. } => Action::Unshelve,
            Self::SoftDelete { .. } => Action::SoftDelete,
            Self::Restore => Action::Restore,
            Self::CreateImage { .. } => Action::CreateImage,
        }
    }

    /// Opens the Running state to actions that otherwise need a stopped instance.
    pub(crate) fn force(&self) -> bool {
        match self {
            Self::ResetPassword { when_running, .. }
            | Self::AssociateKeys { when_running, .. }
            | Self::DisassociateKeys { when_running, .. }
            | Self::Rebuild { when_running, .. }
            | Self::Resize { when_running, .. } => *when_running != WhenRunning::Refuse,
            Self::Terminate { force } => *force,
            _ => false,
        }
    }

    pub(crate) fn when_running(&self) -> WhenRunning {
        match self {
            Self::ResetPassword { when_running, .. }
            | Self::AssociateKeys { when_running, .. }
            | Self::DisassociateKeys { when_running, .. }
            | Self::Rebuild { when_running, .. }
            | Self::Resize { when_running, .. } => *when_running,
            _ => WhenRunning::Refuse,
        }
    }

    /// The key pairs the request names, if it names any.
    pub fn key_ids(&self) -> Option<&S::Keys> {
        match self {
            Self::AssociateKeys { key_ids, .. }
            | Self::DisassociateKeys { key_ids, .. }
            | Self::Rebuild {
                key_ids: Some(key_ids),
                ..
            } => Some(key_ids),
            _ => None,
        }
    }
}

impl Command {
    /// The image a reinstall names, as given.
    pub fn image_id(&self) -> Option<&str> {
        match self {
            Self::Rebuild { image, .. } => Some(image),
            _ => None,
        }
    }

    /// The clear-text password the request carries, if any.
    pub fn password(&self) -> Option<&str> {
        match self {
            Self::ResetPassword { password, .. } | Self::EnterRescue { password, .. } => {
                Some(password)
            }
            Self::Rebuild { password, .. } => password.as_deref(),
            _ => None,
        }
    }

    /// The prepared request: `keys` are the public keys of [`Request::key_ids`] in order (as
    /// the engine resolved them), `image` the registry's facts of [`Request::image_id`] (None:
    /// not found, or not the caller's to use), `hash` hashes the password. Key pairs a guest
    /// cannot take are refused here, before anything is hashed.
    pub fn prepare(
        self,
        keys: Vec<String>,
        image: Option<ImageFacts>,
        hash: impl FnOnce(&str) -> String,
    ) -> Result<ActionRequest, DomainError> {
        let ids = self.key_ids().cloned().unwrap_or_default();
        let keys: Vec<PublicKey> = ids
            .into_iter()
            .zip(keys)
            .map(|(id, key)| PublicKey { id, key })
            .collect();
        if matches!(self, Self::AssociateKeys { .. } | Self::Rebuild { .. }) {
            crate::keys::check_injectable(&keys)?;
        }
        Ok(match self {
            Self::LiveMigrate => Request::LiveMigrate,
            Self::Start => Request::Start,
            Self::ExitRescue => Request::ExitRescue,
            Self::ConfirmResize => Request::ConfirmResize,
            Self::RevertResize => Request::RevertResize,
            Self::Resize {
                instance_type,
                when_running,
                then,
            } => Request::Resize {
                instance_type,
                when_running,
                then,
            },
            Self::Pause => Request::Pause,
            Self::Unpause => Request::Unpause,
            Self::Suspend => Request::Suspend,
            Self::Resume => Request::Resume,
            Self::Shelve { offload, image_id } => Request::Shelve { offload, image_id },
            Self::ShelveOffload => Request::ShelveOffload,
            Self::Unshelve { zone } => Request::Unshelve { zone },
            Self::CreateImage {
                image_id,
                stop_first,
            } => Request::CreateImage {
                image_id,
                stop_first,
            },
            Self::Stop {
                mode,
                stop_charging,
            } => Request::Stop {
                mode,
                stop_charging,
            },
            Self::Reboot { mode } => Request::Reboot { mode },
            Self::Terminate { force } => Request::Terminate { force },
            Self::Delete { admin } => Request::Delete { admin },
            Self::SoftDelete { admin } => Request::SoftDelete { admin },
            Self::Restore => Request::Restore,
            Self::Rebuild {
                image: image_id,
                password,
                rule,
                key_ids,
                when_running,
                system_disk_gib,
            } => Request::Rebuild {
                image: image.ok_or(DomainError::NotFound {
                    kind: crate::error::ResourceKind::Image,
                    id: image_id,
                })?,
                password: password.map(|pw| PasswordHash(hash(&pw))),
                rule,
                key_ids: key_ids.map(|_| keys),
                when_running,
                system_disk_gib,
            },
            Self::ResetPassword {
                user,
                password,
                when_running,
                rule,
            } => Request::ResetPassword {
                user,
                password: PasswordHash(hash(&password)),
                when_running,
                rule,
            },
            Self::EnterRescue {
                user,
                password,
                rule,
                mode,
                image_id,
            } => Request::EnterRescue {
                user,
                password: PasswordHash(hash(&password)),
                rule,
                mode,
                image_id,
            },
            Self::AssociateKeys { when_running, .. } => Request::AssociateKeys {
                key_ids: keys,
                when_running,
            },
            Self::DisassociateKeys { when_running, .. } => Request::DisassociateKeys {
                key_ids: keys,
                when_running,
            },
        })
    }
}

/// RunInstances / CreateInstance / Nova create, in dialect-neutral terms (canonical region and
/// zone IDs); the raw stage of a create, planned by [`crate::rules::plan_create`].
#[derive(Clone)]
pub struct CreateSpec {
    pub region: String,
    pub zone: String,
    pub instance_type: String,
    pub image_id: String,
    pub count: u32,
    pub name: Option<String>,
    pub host_name: Option<String>,
    /// In clear; hashed before anything is recorded. Never printed (see `Debug`).
    pub password: Option<String>,
    pub key_ids: Vec<String>,
    pub client_token: Option<String>,
    pub system_disk_gib: u32,
    pub system_disk_type: String,
    pub data_disks: Vec<(u32, String)>,
    /// The rule the password is held to (the dialect's cloud's).
    pub rule: PasswordRule,
    pub project_id: i64,
    pub charge_type: String,
    pub security_group_ids: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub description: Option<String>,
    /// Boot after provisioning (RunInstances) or leave stopped (Alibaba CreateInstance).
    pub start: bool,
    /// Access addresses to show (Nova).
    pub attrs: crate::model::UserAttrs,
    /// User data (base64, as given), stored beside the instance (`Store::user_data`).
    pub user_data: Option<String>,
    /// Files to write into the guest at its first boot (Nova personality), checked with
    /// [`crate::inject::check_files`]; stored beside the instance (`Store::injected_files`).
    pub files: Vec<crate::inject::InjectedFile>,
    /// Public bandwidth cap in Mbit/s (Alibaba InternetMaxBandwidthOut).
    pub internet_max_bandwidth_out: u32,
}

impl fmt::Debug for CreateSpec {
    /// Every field but the password, the user data (cloud-init often carries secrets) and the
    /// files' contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateSpec")
            .field("region", &self.region)
            .field("zone", &self.zone)
            .field("instance_type", &self.instance_type)
            .field("image_id", &self.image_id)
            .field("count", &self.count)
            .field("name", &self.name)
            .field("host_name", &self.host_name)
            .field("password", &Hidden(&self.password))
            .field("key_ids", &self.key_ids)
            .field("client_token", &self.client_token)
            .field("system_disk_gib", &self.system_disk_gib)
            .field("system_disk_type", &self.system_disk_type)
            .field("data_disks", &self.data_disks)
            .field("rule", &self.rule)
            .field("project_id", &self.project_id)
            .field("charge_type", &self.charge_type)
            .field("security_group_ids", &self.security_group_ids)
            .field("tags", &self.tags)
            .field("description", &self.description)
            .field("start", &self.start)
            .field("attrs", &self.attrs)
            .field("user_data", &Hidden(&self.user_data))
            .field("files", &self.files)
            .field(
                "internet_max_bandwidth_out",
                &self.internet_max_bandwidth_out,
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "Sup3r$ecretPw";

    fn raw_requests() -> Vec<Command> {
        vec![
            Command::ResetPassword {
                user: Some("root".into()),
                password: PW.into(),
                when_running: WhenRunning::StopAndStart,
                rule: PasswordRule::Complexity,
            },
            Command::EnterRescue {
                user: None,
                password: PW.into(),
                rule: PasswordRule::Free,
                mode: StopMode::SoftFirst,
                image_id: None,
            },
            Command::Rebuild {
                image: "img-tos31x64".into(),
                password: Some(PW.into()),
                rule: PasswordRule::Free,
                key_ids: Some(vec!["skey-1".into()]),
                when_running: WhenRunning::StopAndStart,
                system_disk_gib: None,
            },
        ]
    }

    #[test]
    fn debug_never_shows_a_password() {
        for req in raw_requests() {
            let shown = format!("{req:?}");
            assert!(!shown.contains(PW), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
            let shown = format!("{req:#?}");
            assert!(!shown.contains(PW), "{shown}");
            // Nor the hash once prepared.
            let prepared = req
                .prepare(
                    vec!["ssh-ed25519 AAAA".into()],
                    crate::images::builtin_facts("img-tos31x64"),
                    |_| "$6$salt$HASH".into(),
                )
                .unwrap();
            let shown = format!("{prepared:?}");
            assert!(!shown.contains(PW) && !shown.contains("HASH"), "{shown}");
        }
        let spec = CreateSpec {
            password: Some(PW.into()),
            user_data: Some("cGFzc3dvcmQ6IGh1bnRlcjI=".into()),
            ..crate::rules::fixture::spec()
        };
        let shown = format!("{spec:?}");
        assert!(
            !shown.contains(PW) && !shown.contains("cGFzc3dvcmQ"),
            "{shown}"
        );
        assert!(shown.contains("img-tos31x64"), "{shown}");
    }

    #[test]
    fn prepare_hashes_and_pairs_keys_with_their_ids() {
        let req = Command::AssociateKeys {
            key_ids: vec!["skey-1".into(), "skey-2".into()],
            when_running: WhenRunning::Refuse,
        };
        let p = req
            .prepare(
                vec!["ssh-ed25519 A".into(), "ssh-rsa B".into()],
                None,
                |_| unreachable!("no password to hash"),
            )
            .unwrap();
        assert_eq!(
            p.key_ids()
                .map(|k| k.iter().map(|k| k.id.as_str()).collect::<Vec<_>>()),
            Some(vec!["skey-1", "skey-2"])
        );
        let req = raw_requests().swap_remove(0);
        let p = req.prepare(vec![], None, |pw| format!("h({pw})")).unwrap();
        let Request::ResetPassword { password, .. } = p else {
            panic!("variant kept")
        };
        assert_eq!(password.0, format!("h({PW})"));
        // An ssh-dss key cannot be associated (nor given at rebuild); it can be removed.
        let dss = vec!["ssh-dss AAAA".to_string()];
        let assoc = Command::AssociateKeys {
            key_ids: vec!["skey-9".into()],
            when_running: WhenRunning::Refuse,
        };
        assert_eq!(
            assoc.prepare(dss.clone(), None, |_| String::new()),
            Err(DomainError::KeyPairNotSupported("skey-9".into()))
        );
        let dis = Command::DisassociateKeys {
            key_ids: vec!["skey-9".into()],
            when_running: WhenRunning::Refuse,
        };
        assert!(dis.prepare(dss, None, |_| String::new()).is_ok());
    }
}
