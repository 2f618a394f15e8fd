//! The HMACs the signature schemes compute: Tencent legacy and Alibaba RPC v1 (SHA-1 or
//! SHA-256, as the request's `SignatureMethod` says) and Alibaba ACS3 (SHA-256 or SM3).

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use sm3::Sm3;

/// The hash under the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha1,
    Sha256,
    Sm3,
}

fn keyed<M: Mac + KeyInit>(key: &[u8], msg: &str) -> M {
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg.as_bytes());
    mac
}

/// The HMAC of `msg` under `key`.
pub(crate) fn mac(hash: Hash, key: &[u8], msg: &str) -> Vec<u8> {
    match hash {
        Hash::Sha1 => keyed::<Hmac<Sha1>>(key, msg)
            .finalize()
            .into_bytes()
            .to_vec(),
        Hash::Sha256 => keyed::<Hmac<Sha256>>(key, msg)
            .finalize()
            .into_bytes()
            .to_vec(),
        Hash::Sm3 => keyed::<Hmac<Sm3>>(key, msg)
            .finalize()
            .into_bytes()
            .to_vec(),
    }
}

/// Constant-time check (hmac's `verify_slice`) of `expected` against the HMAC of `msg`.
pub(crate) fn mac_matches(hash: Hash, key: &[u8], msg: &str, expected: &[u8]) -> bool {
    match hash {
        Hash::Sha1 => keyed::<Hmac<Sha1>>(key, msg).verify_slice(expected),
        Hash::Sha256 => keyed::<Hmac<Sha256>>(key, msg).verify_slice(expected),
        Hash::Sm3 => keyed::<Hmac<Sm3>>(key, msg).verify_slice(expected),
    }
    .is_ok()
}
