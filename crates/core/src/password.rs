//! Login password and user name policy, shared by every dialect.

use crate::model::OsFamily;

/// Special characters the clouds accept in passwords.
pub const SPECIALS: &str = "()`~!@#$%^&*-+=_|{}[]:;'<>,.?/";
pub const MAX_USERNAME_LEN: usize = 64;

/// The user name length rule as the error the dialects render (`field` is the parameter's
/// name). Checked by the engine; Tencent also checks it before resolving instance IDs, since
/// the cloud reports a parameter error before a missing instance.
pub fn check_username_len(field: &str, name: &str) -> Result<(), crate::DomainError> {
    if name.chars().count() > MAX_USERNAME_LEN {
        return Err(crate::DomainError::TooLong {
            name: field.into(),
            max: MAX_USERNAME_LEN,
        });
    }
    Ok(())
}

/// Checks `password` against the rules of `os` (Tencent's documented rules, which Alibaba and
/// Nova share in spirit). `usernames` are the accounts the password is for: a Windows password
/// may not contain any of them.
pub fn validate(password: &str, os: OsFamily, usernames: &[&str]) -> Result<(), String> {
    let (min, max) = match os {
        OsFamily::Linux => (8, 30),
        OsFamily::Windows => (12, 30),
    };
    let len = password.chars().count();
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters long"));
    }
    if password.starts_with('/') {
        return Err("must not begin with \"/\"".into());
    }
    let mut classes = [false; 4];
    for c in password.chars() {
        match c {
            'a'..='z' => classes[0] = true,
            'A'..='Z' => classes[1] = true,
            '0'..='9' => classes[2] = true,
            c if SPECIALS.contains(c) => classes[3] = true,
            c => return Err(format!("character {c:?} is not allowed")),
        }
    }
    if classes.iter().filter(|c| **c).count() < 3 {
        return Err(
            "must contain characters of at least three of: lower-case, upper-case, digits, special"
                .into(),
        );
    }
    if os == OsFamily::Windows {
        let lower = password.to_lowercase();
        if usernames
            .iter()
            .any(|u| !u.is_empty() && lower.contains(&u.to_lowercase()))
        {
            return Err("must not contain the user name".into());
        }
    }
    Ok(())
}

/// Which rule a new password is held to; the clouds differ. Tencent and Alibaba document a
/// complexity rule ([`validate`]); Nova has none (its schema asks only for a string), so any
/// string up to [`MAX_FREE_LEN`] characters is taken (the bound keeps hashing cheap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PasswordRule {
    #[default]
    Complexity,
    Free,
}

/// Longest password taken under [`PasswordRule::Free`] (Keystone's `max_password_length`).
pub const MAX_FREE_LEN: usize = 4096;

/// Check a new password under `rule`.
pub fn check(
    rule: PasswordRule,
    password: &str,
    os: OsFamily,
    usernames: &[&str],
) -> Result<(), String> {
    match rule {
        PasswordRule::Complexity => validate(password, os, usernames),
        PasswordRule::Free if password.chars().count() > MAX_FREE_LEN => {
            Err(format!("must be at most {MAX_FREE_LEN} characters long"))
        }
        PasswordRule::Free => Ok(()),
    }
}

/// The strictest rule set that covers every instance of a batch: Windows rules as soon as one
/// Windows instance is in it.
pub fn batch_os(oses: impl IntoIterator<Item = OsFamily>) -> OsFamily {
    if oses.into_iter().any(|o| o == OsFamily::Windows) {
        OsFamily::Windows
    } else {
        OsFamily::Linux
    }
}

/// A user name the guest can hold: 1..=64 characters, letters, digits, `_`, `-`, `.`.
pub fn validate_username(name: &str) -> Result<(), String> {
    if name.chars().count() > MAX_USERNAME_LEN {
        return Err(format!("longer than {MAX_USERNAME_LEN} characters"));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err("must be letters, digits, '_', '-' or '.'".into());
    }
    Ok(())
}

/// Keystone's limit on user names (the `name` column is 255 characters).
pub const MAX_KEYSTONE_NAME_LEN: usize = 255;
/// Shortest Keystone user password nubis accepts (Keystone itself has no minimum by default;
/// 8 is the floor the clouds' own password rules use).
pub const MIN_KEYSTONE_PASSWORD_LEN: usize = 8;
/// Keystone's `max_password_length` default.
pub const MAX_KEYSTONE_PASSWORD_LEN: usize = 4096;

/// A Keystone user name: 1 to 255 characters, none of them control characters (newlines
/// included) and no `:` (HTTP Basic and `user:password` forms could not carry it).
pub fn check_keystone_user_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if len == 0 || len > MAX_KEYSTONE_NAME_LEN {
        return Err(format!(
            "must be 1 to {MAX_KEYSTONE_NAME_LEN} characters long"
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || *c == ':') {
        return Err(format!("character {c:?} is not allowed"));
    }
    if name.trim() != name {
        return Err("must not begin or end with white space".into());
    }
    Ok(())
}

/// A Keystone user password: 8 to 4096 characters, no control characters.
pub fn check_keystone_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if !(MIN_KEYSTONE_PASSWORD_LEN..=MAX_KEYSTONE_PASSWORD_LEN).contains(&len) {
        return Err(format!(
            "must be {MIN_KEYSTONE_PASSWORD_LEN} to {MAX_KEYSTONE_PASSWORD_LEN} characters long"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("control characters are not allowed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use OsFamily::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let cases: &[(&str, OsFamily, &[&str], bool)] = &[
            ("Abcdef1!", Linux, &["root"], true),
            ("Abcde1!", Linux, &["root"], false), // 7
            ("Abcdefgh1!Abcdefgh1!Abcdefgh1!", Linux, &[], true), // 30
            ("Abcdefgh1!Abcdefgh1!Abcdefgh1!x", Linux, &[], false), // 31
            ("/Abcdef1!", Linux, &[], false),
            ("abcdefgh12", Linux, &[], false), // two classes
            ("abcdefgh1!", Linux, &[], true),
            ("Qcloud@TestApi123++", Linux, &[], true),
            ("abc def 1A!", Linux, &[], false), // space not allowed
            ("Abcdef1!xyz", Windows, &["Administrator"], false), // 11
            ("Abcdef1!wxyz", Windows, &["Administrator"], true), // 12
            ("xAdministrator1!", Windows, &["Administrator"], false),
            ("Alice@Passw0rd", Windows, &["alice"], false),
        ];
        for (pw, os, users, ok) in cases {
            assert_eq!(validate(pw, *os, users).is_ok(), *ok, "{pw} {os:?}");
        }
    }

    #[test]
    fn mixed_batch_takes_windows_rules() {
        assert_eq!(batch_os([Linux, Windows, Linux]), Windows);
        assert_eq!(batch_os([Linux]), Linux);
    }

    #[test]
    fn usernames() {
        assert!(validate_username("root").is_ok());
        assert!(validate_username(&"a".repeat(64)).is_ok());
        assert!(validate_username(&"a".repeat(65)).is_err());
        assert!(validate_username("").is_err());
        assert!(validate_username("a b").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(pw in ".{0,40}") {
            let _ = validate(&pw, Linux, &["root"]);
            let _ = validate(&pw, Windows, &["Administrator"]);
        }
        #[test]
        fn accepted_linux_passwords_have_length_8_to_30(pw in "[a-zA-Z0-9!@#]{0,40}") {
            if validate(&pw, Linux, &[]).is_ok() {
                prop_assert!((8..=30).contains(&pw.len()));
            }
        }
    }

    #[test]
    fn keystone_user_names_and_passwords() {
        for ok in ["auditor", "Jane Doe", "ops@example.com", &"x".repeat(255)] {
            assert!(check_keystone_user_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a:b", "a\nb", "tab\there", " lead", &"x".repeat(256)] {
            assert!(check_keystone_user_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_keystone_password("Auditor@2026pw").is_ok());
        for bad in ["", "short", "has\nnewline", &"p".repeat(4097)] {
            assert!(check_keystone_password(bad).is_err(), "{bad:?}");
        }
    }
}
