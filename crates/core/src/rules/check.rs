//! Checks of a raw request against its targets, before anything is hashed or locked: the
//! parameters whose validity depends on the instances (password rules follow the strictest OS
//! of the batch) or on the catalogue (a rebuild's image).

use super::action::default_user;
use super::table::keys_unsupported;
use crate::error::{DomainError, ResourceKind};
use crate::images::ImageFacts;
use crate::model::{Instance, OsFamily};
use crate::password::{self, PasswordRule};
use crate::request::{Command, Request};

/// Check `user` (if given) and `pw` under `rule` for `os`; `users` are the accounts the
/// password is for when no user is given.
fn check_login(
    user: &Option<String>,
    pw: &str,
    os: OsFamily,
    rule: PasswordRule,
    targets: &[Instance],
) -> Result<(), DomainError> {
    if let Some(u) = user {
        password::check_username_len("UserName", u)?;
        password::validate_username(u).map_err(|r| DomainError::invalid("UserName", r))?;
    }
    let users: Vec<&str> = match user {
        Some(u) => vec![u.as_str()],
        None => targets.iter().map(default_user).collect(),
    };
    password::check(rule, pw, os, &users).map_err(DomainError::InvalidPassword)
}

/// Check a request's parameters against its targets. Key pairs are resolved and checked by
/// [`Command::prepare`]; the instances' states by [`super::plan`].
/// `image`: the registry's facts of a reinstall's image, if the caller may use it.
pub fn check_request(
    cmd: &Command,
    targets: &[Instance],
    image: Option<&ImageFacts>,
) -> Result<(), DomainError> {
    match cmd {
        Request::Rebuild {
            image: image_id,
            password,
            rule,
            key_ids,
            system_disk_gib,
            ..
        } => {
            // The system disk grows or keeps its size; it never shrinks.
            if let Some(gib) = system_disk_gib
                && let Some(i) = targets.iter().find(|i| *gib < i.system_disk.size_gib)
            {
                return Err(DomainError::invalid(
                    "SystemDisk.DiskSize",
                    format!(
                        "{gib} GiB is smaller than the system disk ({} GiB): it can only grow",
                        i.system_disk.size_gib
                    ),
                ));
            }
            let image = image.ok_or_else(|| DomainError::NotFound {
                kind: ResourceKind::Image,
                id: image_id.clone(),
            })?;
            for ty in targets.iter().filter_map(Instance::type_facts) {
                super::create::fits_image(image, ty)?;
            }
            // Key pairs are Linux-only: the new image's OS decides.
            if key_ids.as_ref().is_some_and(|k| !k.is_empty())
                && let Some(why) = keys_unsupported(image.os)
            {
                return Err(DomainError::Unsupported {
                    id: targets
                        .first()
                        .map(|i| i.uuid.to_string())
                        .unwrap_or_default(),
                    why,
                });
            }
            if let Some(pw) = password {
                password::check(*rule, pw, image.os, &[image.default_user.as_str()])
                    .map_err(DomainError::InvalidPassword)?;
            }
            Ok(())
        }
        // One password for the batch: held to the strictest OS in it.
        Request::ResetPassword {
            user,
            password,
            rule,
            ..
        } => check_login(
            user,
            password,
            password::batch_os(targets.iter().map(|i| i.os)),
            *rule,
            targets,
        ),
        // The rescue system is Linux whatever the instance runs.
        Request::EnterRescue {
            user,
            password,
            rule,
            ..
        } => check_login(user, password, OsFamily::Linux, *rule, targets),
        Request::Resize { .. } | Request::ConfirmResize | Request::RevertResize => Ok(()),
        // The image's ID is the engine's, registered with the operation.
        Request::CreateImage { .. } => Ok(()),
        Request::Pause
        | Request::Unpause
        | Request::Suspend
        | Request::Resume
        | Request::Shelve { .. }
        | Request::ShelveOffload
        | Request::Unshelve { .. }
        | Request::SoftDelete { .. }
        | Request::Restore => Ok(()),
        Request::LiveMigrate
        | Request::Start
        | Request::Stop { .. }
        | Request::Reboot { .. }
        | Request::Terminate { .. }
        | Request::Delete { .. }
        | Request::ExitRescue
        | Request::AssociateKeys { .. }
        | Request::DisassociateKeys { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{StopMode, WhenRunning};
    use crate::rules::fixture::inst;
    use crate::state::InstanceState;

    /// The check with the built-in catalogue as the registry.
    fn check_request(cmd: &Command, targets: &[Instance]) -> Result<(), DomainError> {
        let image = cmd.image_id().and_then(crate::images::builtin_facts);
        super::check_request(cmd, targets, image.as_ref())
    }

    fn reset(pw: &str, user: Option<&str>) -> Command {
        Command::ResetPassword {
            user: user.map(str::to_string),
            password: pw.into(),
            when_running: WhenRunning::Refuse,
            rule: PasswordRule::Complexity,
        }
    }

    /// A password fit for Linux (8 characters) is refused as soon as one Windows instance
    /// is in the batch (12 at least), and a Windows password may not hold the user name.
    #[test]
    fn a_batch_is_held_to_its_strictest_os() {
        let linux = inst(InstanceState::Stopped);
        let mut windows = inst(InstanceState::Stopped);
        windows.os = OsFamily::Windows;
        windows.image_id = "img-win22x64".into();
        let short = "Abcdef1!";
        assert_eq!(
            check_request(&reset(short, None), std::slice::from_ref(&linux)),
            Ok(())
        );
        assert!(matches!(
            check_request(&reset(short, None), &[linux.clone(), windows.clone()]),
            Err(DomainError::InvalidPassword(_))
        ));
        assert_eq!(
            check_request(
                &reset("Abcdefgh12!x", None),
                &[linux.clone(), windows.clone()]
            ),
            Ok(())
        );
        assert!(matches!(
            check_request(&reset("Xroot12345!a", Some("root")), &[windows]),
            Err(DomainError::InvalidPassword(_))
        ));
        // Rescue is Linux whatever the instance.
        let mut w = inst(InstanceState::Stopped);
        w.os = OsFamily::Windows;
        let rescue = Command::EnterRescue {
            user: None,
            password: short.into(),
            rule: PasswordRule::Complexity,
            mode: StopMode::SoftFirst,
            image_id: None,
        };
        assert_eq!(check_request(&rescue, &[w]), Ok(()));
    }

    #[test]
    fn user_names_and_images_are_checked() {
        let i = inst(InstanceState::Stopped);
        assert!(matches!(
            check_request(
                &reset("Abcdef1!", Some("bad name")),
                std::slice::from_ref(&i)
            ),
            Err(DomainError::InvalidValue { .. })
        ));
        assert!(matches!(
            check_request(
                &reset("Abcdef1!", Some(&"u".repeat(65))),
                std::slice::from_ref(&i)
            ),
            Err(DomainError::TooLong { .. })
        ));
        let rebuild = |image: &str| Command::Rebuild {
            image: image.into(),
            password: Some("Abcdef1!".into()),
            rule: PasswordRule::Complexity,
            key_ids: None,
            when_running: WhenRunning::StopAndStart,
            system_disk_gib: None,
        };
        assert!(matches!(
            check_request(
                &rebuild(crate::catalog::RESCUE_IMAGE),
                std::slice::from_ref(&i)
            ),
            Err(DomainError::NotFound {
                kind: ResourceKind::Image,
                ..
            })
        ));
        assert_eq!(
            check_request(&rebuild("img-tos31x64"), std::slice::from_ref(&i)),
            Ok(())
        );
        // Key pairs are refused for a Windows image (the new OS decides), kept for Linux.
        let with_keys = |image: &str| Command::Rebuild {
            image: image.into(),
            password: None,
            rule: PasswordRule::Complexity,
            key_ids: Some(vec!["skey-1".into()]),
            when_running: WhenRunning::Refuse,
            system_disk_gib: None,
        };
        assert!(matches!(
            check_request(&with_keys("img-win22x64"), std::slice::from_ref(&i)),
            Err(DomainError::Unsupported {
                why: crate::error::Unsupported::WindowsOs,
                ..
            })
        ));
        assert_eq!(check_request(&with_keys("img-tos31x64"), &[i]), Ok(()));
    }
}
