//! Which public keys a guest can take.

use crate::error::DomainError;
use crate::request::PublicKey;

/// Key types the guests accept; a key of another type parses but cannot be injected.
pub const INJECTABLE: &[&str] = &[
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
];

/// Can a guest take this OpenSSH public key line?
pub fn injectable(public_key: &str) -> bool {
    public_key
        .split_whitespace()
        .next()
        .is_some_and(|t| INJECTABLE.contains(&t))
}

/// Refuse the first key a guest cannot take, naming its key pair.
pub fn check_injectable(keys: &[PublicKey]) -> Result<(), DomainError> {
    match keys.iter().find(|k| !injectable(&k.key)) {
        Some(k) => Err(DomainError::KeyPairNotSupported(k.id.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_types_are_injectable() {
        assert!(injectable("ssh-ed25519 AAAA x@y"));
        assert!(injectable("ecdsa-sha2-nistp521 AAAA"));
        assert!(!injectable("ssh-dss AAAA"));
        assert!(!injectable(""));
    }
}
