//! External ID shapes. Each dialect has its own ID for the same instance.

use rand::Rng;

const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

pub(crate) fn random_alnum(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

pub(crate) fn has_shape(s: &str, prefix: &str, len: usize) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == len
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

pub fn new_tencent_instance_id() -> String {
    format!("ins-{}", random_alnum(8))
}
pub fn new_aliyun_instance_id() -> String {
    format!("i-{}", random_alnum(20))
}
pub fn new_key_id() -> String {
    format!("skey-{}", random_alnum(8))
}
pub fn new_disk_id() -> String {
    format!("disk-{}", random_alnum(8))
}
/// A RequestId: a UUID. Version 7 (time-ordered), so the store's request-ID indexes
/// (operations, audit events) grow at their end instead of at a random page per request.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
/// OpenStack's `x-openstack-request-id`: `req-` + a RequestId.
pub fn new_openstack_request_id() -> String {
    format!("req-{}", new_request_id())
}

/// `ins-` + 8 lower-case alphanumerics.
pub fn is_tencent_instance_id(s: &str) -> bool {
    has_shape(s, "ins-", 8)
}
/// `i-` + 20 lower-case alphanumerics.
pub fn is_aliyun_instance_id(s: &str) -> bool {
    has_shape(s, "i-", 20)
}
/// `skey-` + 8 lower-case alphanumerics.
pub fn is_key_id(s: &str) -> bool {
    has_shape(s, "skey-", 8)
}
/// `img-` + 8 lower-case alphanumerics.
pub fn is_image_id(s: &str) -> bool {
    has_shape(s, "img-", 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_have_their_shape() {
        for _ in 0..100 {
            assert!(is_tencent_instance_id(&new_tencent_instance_id()));
            assert!(is_aliyun_instance_id(&new_aliyun_instance_id()));
            assert!(is_key_id(&new_key_id()));
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "ins-1122",
            "ins-ABCDEFGH",
            "ins-abcdefghi",
            "abc-12345678",
            "",
            "ins-",
            "ins-abcd efg",
        ] {
            assert!(!is_tencent_instance_id(bad), "{bad}");
        }
        assert!(!is_key_id("skey-12"));
        assert!(is_image_id("img-tos31x64"));
    }

    proptest! {
        #[test]
        fn shape_check_never_panics(s in ".*") {
            let _ = is_tencent_instance_id(&s);
            let _ = is_aliyun_instance_id(&s);
            let _ = is_key_id(&s);
        }
    }
}
