//! CAM policy documents on attacker bytes: `cam::compile` never panics, stays within its
//! bounds, and what it accepts evaluates deterministically with explicit deny winning.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_identity::policy::{cam, limits};

#[path = "policy_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = cam::compile("fuzz", doc) {
        assert!(doc.chars().count() <= limits::CAM_MAX_CHARS);
        assert!(!policy.statements.is_empty() && policy.statements.len() <= limits::MAX_STATEMENTS);
        let deny_all = cam::compile(
            "deny",
            r#"{"version":"2.0","statement":[{"effect":"deny","action":"*","resource":"*"}]}"#,
        )
        .expect("deny-all compiles");
        common::exercise(&policy, &deny_all);
    }
});
