//! The process's footprint on the host: private files whatever the operator's umask, and an
//! open-file limit that fits the connection cap.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Mode of the data dir and every directory under it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file under the data dir (database, WAL, keys, credentials, qemu files).
pub const FILE_MODE: u32 = 0o600;

/// Everything the process creates from now on is private to its user (umask 077), whatever
/// umask the operator's shell or service manager gave it.
pub fn private_umask() {
    // SAFETY: umask only swaps the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Makes `dir` and everything under it private: directories 0700, files 0600. Fixes data
/// dirs made by older versions or under a permissive umask. Symbolic links are left alone
/// (never followed).
pub fn secure_tree(dir: &Path) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() {
        set_mode(dir, DIR_MODE)?;
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            secure_tree(&entry.path())?;
        }
    } else {
        set_mode(dir, FILE_MODE)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    let current = std::fs::symlink_metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if current != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting mode {mode:o} on {}", path.display()))?;
        tracing::info!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "made private");
    }
    Ok(())
}

/// Raises the soft open-file limit to the hard one (as Go's runtime does) and returns the
/// soft limit now in force, or `None` if it cannot be read.
pub fn raise_nofile() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack value of the right type.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    Some(lim.rlim_cur)
}

/// File descriptors kept back from the connection cap: the store, logs, qemu files, DNS.
pub const RESERVED_FDS: u64 = 128;
