//! What a guest is given at its first boot besides its credentials: the user data and the
//! files to inject (Nova's `personality`, before microversion 2.57). Both are stored beside
//! the instance, not in it (`Store::user_data`, `Store::injected_files`), and read by the
//! engine's runner when it provisions or rebuilds the system disk (docs/qemu-driver.md,
//! "User data and injected files").
//!
//! The limits are Nova's `injected_files`, `injected_file_path_bytes` and
//! `injected_file_content_bytes` quotas (nova/compute/api.py `_check_injected_file_quota`),
//! fixed at Nova's defaults: one rule, which the Nova dialect renders and its `/limits` and
//! `os-quota-sets` views show.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Files a server may be given (`injected_files`, `maxPersonality`).
pub const MAX_FILES: usize = 5;
/// Bytes of a file's path (`injected_file_path_bytes`).
pub const MAX_PATH_BYTES: usize = 255;
/// Bytes of a file's contents as sent, base64 (`injected_file_content_bytes`,
/// `maxPersonalitySize`): Nova measures the encoded text, so a file holds at most 7680 bytes.
pub const MAX_CONTENT_BYTES: usize = 10240;

/// One file to write into the guest: its path as given and its contents in base64 (checked
/// by the dialect that took it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedFile {
    pub path: String,
    pub contents: String,
}

impl fmt::Debug for InjectedFile {
    /// The path and the size: the contents may carry secrets, as user data does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InjectedFile")
            .field("path", &self.path)
            .field("contents_len", &self.contents.len())
            .finish()
    }
}

impl InjectedFile {
    /// Where the guest writes it: the path made absolute (a relative path is taken from `/`,
    /// as Nova's file injection and cloud-init do), `.` segments and repeated slashes dropped.
    /// Only for a path [`check_files`] accepted.
    pub fn guest_path(&self) -> String {
        let mut out = String::with_capacity(self.path.len() + 1);
        for seg in self.path.split('/').filter(|s| !s.is_empty() && *s != ".") {
            out.push('/');
            out.push_str(seg);
        }
        out
    }
}

/// Why the files cannot be given to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRefusal {
    /// More than [`MAX_FILES`] files (Nova `OnsetFileLimitExceeded`).
    TooMany { max: usize },
    /// A path longer than [`MAX_PATH_BYTES`] bytes (`OnsetFilePathLimitExceeded`).
    PathTooLong { max: usize },
    /// Contents longer than [`MAX_CONTENT_BYTES`] bytes (`OnsetFileContentLimitExceeded`).
    ContentTooLong { max: usize },
    /// A path that names no file of the guest's tree: empty, ending in `/` or `.`, a `..` segment
    /// (it would leave the tree it is resolved in) or a control character (the config drive
    /// is line-based). nubis's own rule: Nova takes any string.
    BadPath { path: String },
}

/// May a server be given these files? Nova's order: the count first, then the longest path
/// (reported before the contents), then the largest contents; then nubis's path rule.
pub fn check_files(files: &[InjectedFile]) -> Result<(), FileRefusal> {
    check_files_within(files, FileLimits::MAX)
}

/// How many files, and how long their paths and contents, a server may be given: the
/// `injected_file*` quotas, never above the fixed maxima.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    pub files: usize,
    pub path_bytes: usize,
    pub content_bytes: usize,
}

impl FileLimits {
    pub const MAX: Self = Self {
        files: MAX_FILES,
        path_bytes: MAX_PATH_BYTES,
        content_bytes: MAX_CONTENT_BYTES,
    };

    /// The quotas' values (`-1`: unlimited) held under [`FileLimits::MAX`].
    pub fn from_quotas(items: &crate::ItemLimits) -> Self {
        use crate::ItemQuota as Q;
        let under = |q: Q, max: usize| usize::try_from(items.get(q)).map_or(max, |n| n.min(max));
        Self {
            files: under(Q::InjectedFiles, MAX_FILES),
            path_bytes: under(Q::InjectedFilePathBytes, MAX_PATH_BYTES),
            content_bytes: under(Q::InjectedFileContentBytes, MAX_CONTENT_BYTES),
        }
    }
}

/// [`check_files`] under `limits`.
pub fn check_files_within(files: &[InjectedFile], limits: FileLimits) -> Result<(), FileRefusal> {
    if files.len() > limits.files {
        return Err(FileRefusal::TooMany { max: limits.files });
    }
    if files.iter().any(|f| f.path.len() > limits.path_bytes) {
        return Err(FileRefusal::PathTooLong {
            max: limits.path_bytes,
        });
    }
    if files
        .iter()
        .any(|f| f.contents.len() > limits.content_bytes)
    {
        return Err(FileRefusal::ContentTooLong {
            max: limits.content_bytes,
        });
    }
    for f in files {
        let last = f.path.rsplit('/').next().unwrap_or_default();
        let bad = matches!(last, "" | "." | "..")
            || f.path.split('/').any(|s| s == "..")
            || f.path.chars().any(char::is_control);
        if bad {
            return Err(FileRefusal::BadPath {
                path: f.path.clone(),
            });
        }
    }
    Ok(())
}

/// What the engine hands the driver with a (re)provisioning step: the instance's user data
/// and the files given with the create or the rebuild. Read from the store when the step
/// runs, never kept in the operation's plan.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestData {
    /// Base64, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<InjectedFile>,
}

impl GuestData {
    pub fn is_empty(&self) -> bool {
        self.user_data.is_none() && self.files.is_empty()
    }
}

impl fmt::Debug for GuestData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestData")
            .field("user_data_len", &self.user_data.as_ref().map(String::len))
            .field("files", &self.files)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &str) -> InjectedFile {
        InjectedFile {
            path: path.into(),
            contents: contents.into(),
        }
    }

    #[test]
    fn nova_limits_in_nova_order() {
        let ok = file("/etc/motd", "aGk=");
        assert_eq!(check_files(&vec![ok.clone(); 5]), Ok(()));
        assert_eq!(check_files(&[]), Ok(()));
        // Six files: the count is reported whatever else is wrong.
        let mut six = vec![file(&"p".repeat(300), &"A".repeat(20000)); 6];
        assert_eq!(check_files(&six), Err(FileRefusal::TooMany { max: 5 }));
        // A long path is reported before large contents.
        six.truncate(5);
        assert_eq!(
            check_files(&six),
            Err(FileRefusal::PathTooLong { max: 255 })
        );
        let at_limit = format!("/{}", "p".repeat(254));
        assert_eq!(check_files(&[file(&at_limit, "aGk=")]), Ok(()));
        assert_eq!(
            check_files(&[file(&format!("{at_limit}p"), "aGk=")]),
            Err(FileRefusal::PathTooLong { max: 255 })
        );
        // Contents are measured as sent (base64).
        assert_eq!(check_files(&[file("/a", &"A".repeat(10240))]), Ok(()));
        assert_eq!(
            check_files(&[ok, file("/a", &"A".repeat(10244))]),
            Err(FileRefusal::ContentTooLong { max: 10240 })
        );
    }

    #[test]
    fn paths_stay_in_the_guest_tree() {
        for bad in [
            "",
            "/",
            "//",
            "/./",
            "/etc/",
            "/etc/.",
            "../etc/passwd",
            "/etc/../../x",
            "/a/..",
            "/a\nb",
        ] {
            assert_eq!(
                check_files(&[file(bad, "")]),
                Err(FileRefusal::BadPath { path: bad.into() }),
                "{bad:?}"
            );
        }
        // Relative paths are taken from the root (Tempest's rebuild test sends `rebuild.txt`).
        for (given, guest) in [
            ("rebuild.txt", "/rebuild.txt"),
            ("etc/test0.txt", "/etc/test0.txt"),
            ("/test.txt", "/test.txt"),
            ("//a/./b//c", "/a/b/c"),
            ("/a b/..c", "/a b/..c"),
        ] {
            let f = file(given, "");
            assert_eq!(check_files(std::slice::from_ref(&f)), Ok(()), "{given}");
            assert_eq!(f.guest_path(), guest);
        }
    }

    #[test]
    fn debug_hides_contents_and_user_data() {
        let g = GuestData {
            user_data: Some("c2VjcmV0".into()),
            files: vec![file("/root/key", "c2VjcmV0a2V5")],
        };
        let shown = format!("{g:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("/root/key"), "{shown}");
    }

    #[test]
    fn quotas_lower_the_maxima_but_never_raise_them() {
        let mut items = crate::ItemLimits::NOVA_DEFAULTS;
        assert_eq!(FileLimits::from_quotas(&items), FileLimits::MAX);
        items.set(crate::ItemQuota::InjectedFiles, 1);
        items.set(crate::ItemQuota::InjectedFileContentBytes, 20480);
        items.set(crate::ItemQuota::InjectedFilePathBytes, -1);
        let l = FileLimits::from_quotas(&items);
        assert_eq!(
            (l.files, l.content_bytes, l.path_bytes),
            (1, MAX_CONTENT_BYTES, MAX_PATH_BYTES)
        );
        let f = file("/a", "eA==");
        assert_eq!(check_files_within(std::slice::from_ref(&f), l), Ok(()));
        assert_eq!(
            check_files_within(&[f.clone(), f], l),
            Err(FileRefusal::TooMany { max: 1 })
        );
    }
}
