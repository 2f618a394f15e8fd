//! oslo.policy on attacker bytes: the input as a policy file over Nova's defaults, and as one
//! rule string. Parsing never panics or overflows the stack (2 MiB, like a tokio worker), and
//! what compiles evaluates deterministically with explicit deny winning.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_identity::policy::oslo::{self, RuleDefault};
use nubis_identity::policy::ram;

#[path = "policy_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let deny_all = ram::compile(
        "deny",
        r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
    )
    .expect("deny-all compiles");
    if let Ok(policy) = oslo::nova(Some(text)) {
        common::exercise(&policy, &deny_all);
    }
    let mut rules = oslo::nova_rules(&[]);
    rules.push(RuleDefault {
        name: "os_compute_api:servers:reboot:fuzz".into(),
        check: text.to_string(),
        scope_types: vec!["project".into()],
    });
    if let Some(r) = rules
        .iter_mut()
        .find(|r| r.name == "os_compute_api:servers:reboot")
    {
        r.check = "rule:os_compute_api:servers:reboot:fuzz".into();
    }
    if let Ok(policy) = oslo::compile("fuzz", &rules, true) {
        common::exercise(&policy, &deny_all);
    }
});
