//! SHA-512-crypt (`$6$`) password hashes, as found in `/etc/shadow`, for the
//! simulated guest's users.

use sha_crypt::{Algorithm, Params, PasswordHashRef, PasswordHasher, PasswordVerifier, ShaCrypt};

/// Rounds for new hashes: glibc's default (5000), which also keeps tests and
/// guest provisioning fast.
const ROUNDS: u32 = Params::RECOMMENDED_ROUNDS;

/// Hashes `password` into a `$6$…` string with a fresh random salt.
///
/// # Panics
/// Only if the OS random number generator is unavailable.
pub fn hash(password: &str) -> String {
    let hasher = ShaCrypt::new(
        Algorithm::Sha512Crypt,
        Params::new(ROUNDS).expect("5000 rounds is within SHA-crypt limits"),
    );
    // 12 random bytes are 16 salt characters, SHA-crypt's maximum: glibc and libxcrypt use at
    // most 16 and write only those back, so a longer salt (the crate's default, 22) gives a
    // hash no real /etc/shadow accepts.
    let salt: [u8; 12] = rand::random();
    hasher
        .hash_password_with_salt(password.as_bytes(), &salt)
        .expect("12 salt bytes are within SHA-crypt limits")
        .to_string()
}

/// Checks `password` against a SHA-crypt hash (`$6$…`, and `$5$…` too).
/// Malformed or other-scheme hashes (e.g. `!`, `*` locked entries) never match.
/// The final comparison is constant-time.
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHashRef::new(hash).is_ok_and(|h| {
        ShaCrypt::default()
            .verify_password(password.as_bytes(), h)
            .is_ok()
    })
}

/// Checks `password` against `hash`, or — when there is no hash (the user does not exist) —
/// against a fixed hash of the same cost, and answers false. Unknown users and wrong
/// passwords then cost the same work, so response times do not reveal which user names exist.
pub fn verify_or_dummy(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match stored {
        Some(h) => verify(password, h),
        None => {
            let dummy = DUMMY.get_or_init(|| hash("nubis: no such user"));
            let _ = verify(password, dummy);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_never_matches_and_costs_the_same() {
        let h = hash("Nubis#2024");
        assert!(verify_or_dummy("Nubis#2024", Some(&h)));
        assert!(!verify_or_dummy("Nubis#2024", None));
        assert!(!verify_or_dummy("nubis: no such user", None));
        // Same rounds: the dummy is an ordinary hash of this module's cost.
        let _ = verify_or_dummy("x", None);
        let rounds = |h: &str| h.split('$').nth(2).map(str::to_string);
        let dummy = hash("y");
        assert_eq!(rounds(&dummy), rounds(&h));
    }

    #[test]
    fn hash_then_verify() {
        let h = hash("Nubis#2024");
        assert!(h.starts_with("$6$"), "{h}");
        assert!(verify("Nubis#2024", &h));
        assert!(!verify("nubis#2024", &h));
        assert!(!verify("", &h));
        assert_ne!(hash("Nubis#2024"), h, "salt must be random");
        // `$6$rounds=N$SALT$HASH`: the salt a real crypt(3) reads back whole.
        let salt = h.split('$').nth(3).unwrap();
        assert_eq!(salt.len(), 16, "{h}");
    }

    #[test]
    fn verifies_glibc_hashes() {
        // Test vectors from Ulrich Drepper's SHA-crypt specification, as produced
        // by glibc crypt(3): default rounds (implicit) and explicit rounds.
        assert!(verify(
            "Hello world!",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        ));
        assert!(verify(
            "Hello world!",
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
        ));
        assert!(!verify(
            "Hello world?",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        ));
    }

    #[test]
    fn malformed_hashes_never_match() {
        for bad in ["", "!", "*", "$6$", "$6$salt", "$1$abc$def", "plaintext"] {
            assert!(!verify("", bad), "{bad:?}");
            assert!(!verify("plaintext", bad), "{bad:?}");
        }
    }
}
