//! RAM policy documents on attacker bytes: `ram::compile` never panics, stays within its
//! bounds, and what it accepts evaluates deterministically with explicit deny winning.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_identity::policy::{limits, ram};

#[path = "policy_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = ram::compile("fuzz", doc) {
        assert!(doc.len() <= limits::RAM_MAX_BYTES);
        assert!(!policy.statements.is_empty() && policy.statements.len() <= limits::MAX_STATEMENTS);
        let deny_all = ram::compile(
            "deny",
            r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        )
        .expect("deny-all compiles");
        common::exercise(&policy, &deny_all);
    }
});
