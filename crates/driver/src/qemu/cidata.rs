//! The config drive ("cidata"): the changes a stopped guest applies to its own system disk at
//! its next boot (password, keys, hostname, and at its first boot the user data and injected
//! files; see guest/README.md), and the ext4 image that carries them.

use super::process::run_tool;
use super::{QemuDriver, failed};
use crate::DriverError;
use nubis_core::GuestData;
use serde::{Deserialize, Serialize};
use std::path::Path;
use uuid::Uuid;

/// A change the guest applies to its own system disk (config drive line, see guest/README.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Change {
    Password {
        user: String,
        hash: String,
    },
    KeyAdd {
        user: String,
        key: String,
    },
    KeyRemove {
        user: String,
        key: String,
    },
    Hostname {
        name: String,
    },
    /// Write a file (contents in base64; the path absolute, without `..`, one line).
    File {
        path: String,
        contents: String,
    },
    /// Keep the user data (base64) and run it once if it is a script (`#!`).
    UserData {
        data: String,
    },
}

impl Change {
    /// What the change sets: a later change of the same target overrides an earlier one.
    fn target(&self) -> (&str, &str) {
        match self {
            Change::Password { user, .. } => ("password", user),
            Change::KeyAdd { key, .. } | Change::KeyRemove { key, .. } => ("key", key),
            Change::Hostname { .. } => ("hostname", ""),
            Change::File { path, .. } => ("file", path),
            Change::UserData { .. } => ("user-data", ""),
        }
    }

    /// Queue `self` for the next boot unless the last queued change of its target already is
    /// `self` (a repeated step): the queue, and so the config drive, stays as one run left it.
    pub(super) fn queue(self, pending: &mut Vec<Change>) {
        let last = pending.iter().rev().find(|c| c.target() == self.target());
        if last != Some(&self) {
            pending.push(self);
        }
    }

    pub(super) fn line(&self) -> String {
        match self {
            Change::Password { user, hash } => format!("password {user} {hash}"),
            Change::KeyAdd { user, key } => format!("key-add {user} {}", one_line(key)),
            Change::KeyRemove { user, key } => format!("key-remove {user} {}", one_line(key)),
            Change::Hostname { name } => format!("hostname {name}"),
            // The path last: it is the rest of the line (it may hold spaces).
            Change::File { path, contents } => format!("file {contents} {path}"),
            Change::UserData { data } => format!("user-data {data}"),
        }
    }

    /// What the admin view shows of a queued change: its kind and target, never a secret
    /// (hash, key, contents, user data).
    pub(super) fn summary(&self) -> String {
        match self {
            Change::Password { user, .. } => format!("password {user}"),
            Change::KeyAdd { user, .. } => format!("key-add {user}"),
            Change::KeyRemove { user, .. } => format!("key-remove {user}"),
            Change::Hostname { name } => format!("hostname {name}"),
            Change::File { path, .. } => format!("file {path}"),
            Change::UserData { .. } => "user-data".into(),
        }
    }
}

/// What a fresh system disk is told at its first boot: hostname, the user's password ("*" =
/// none), the instance's keys, then the files to inject and the user data (applied after the
/// credentials, so a file may replace what they wrote, as cloud-init's order has it).
pub(super) fn first_boot(
    id: Uuid,
    user: &str,
    hash: Option<&str>,
    keys: &[String],
    guest: &GuestData,
) -> Vec<Change> {
    let mut changes = vec![
        Change::Hostname {
            name: format!("ins-{}", &id.simple().to_string()[..8]),
        },
        Change::Password {
            user: user.into(),
            hash: hash.unwrap_or("*").into(),
        },
    ];
    changes.extend(keys.iter().map(|k| Change::KeyAdd {
        user: user.into(),
        key: k.clone(),
    }));
    changes.extend(guest.files.iter().map(|f| Change::File {
        path: f.guest_path(),
        contents: f.contents.clone(),
    }));
    if let Some(data) = &guest.user_data {
        changes.push(Change::UserData { data: data.clone() });
    }
    changes
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl QemuDriver {
    pub(super) async fn write_config_drive(
        &self,
        dir: &Path,
        img: &Path,
        changes: &[Change],
    ) -> Result<(), DriverError> {
        let src = dir.join("cidata");
        let _ = std::fs::remove_dir_all(&src);
        std::fs::create_dir_all(&src).map_err(failed)?;
        let mut text: String = changes.iter().map(|c| c.line() + "\n").collect();
        if text.is_empty() {
            text.push('\n');
        }
        std::fs::write(src.join("nubis.conf"), text).map_err(failed)?;
        let f = std::fs::File::create(img).map_err(failed)?;
        f.set_len(4 << 20).map_err(failed)?;
        drop(f);
        let (img_s, src_s) = (img.display().to_string(), src.display().to_string());
        let r = run_tool(
            "mkfs.ext4",
            &["-q", "-F", "-L", "cidata", "-d", &src_s, &img_s],
        )
        .await;
        let _ = std::fs::remove_dir_all(&src);
        r
    }
}
