//! Shared by the policy targets (included with `#[path]`): evaluates a compiled policy on a
//! fixed set of requests and checks the evaluation's invariants.

use nubis_identity::model::{KeystoneUser, PrincipalKind};
use nubis_identity::{
    AuthzRequest, CompiledPolicy, OperationProtection, Principal, RequestContext, evaluate,
};
use std::collections::BTreeMap;
use time::OffsetDateTime;

const ACTIONS: &[&str] = &[
    "cvm:RebootInstances",
    "cvm:ResetInstancesPassword",
    "ecs:RebootInstance",
    "ecs:DeleteInstance",
    "os_compute_api:servers:reboot",
    "os_compute_api:servers:show",
    "os_compute_api:os-keypairs:show",
];
const RESOURCES: &[&str] = &[
    "qcs::cvm:ap-guangzhou:uin/100000000001:instance/ins-abcdefgh",
    "acs:ecs:cn-hangzhou:1234567890:instance/i-bp1abc",
    "",
];

fn principals() -> Vec<Principal> {
    let mut ks = KeystoneUser {
        id: "u1".into(),
        name: "u1".into(),
        domain_id: "default".into(),
        project_roles: BTreeMap::new(),
    };
    ks.project_roles
        .insert("p1".into(), ["member".to_string()].into());
    vec![
        Principal::user("acct", "alice").with_operation_protection(true),
        Principal {
            account: "acct".into(),
            kind: PrincipalKind::Keystone(ks.scoped_to_project("p1", "default")),
            operation_protection: false,
        },
    ]
}

pub fn exercise(policy: &CompiledPolicy, deny_all: &CompiledPolicy) {
    let now = OffsetDateTime::from_unix_timestamp(nubis_fuzz::NOW).expect("time");
    let protection = OperationProtection::tencent();
    for p in &principals() {
        for action in ACTIONS {
            for resource in RESOURCES {
                for mfa in [None, Some(now), Some(now - time::Duration::hours(2))] {
                    let mut context = RequestContext::at(now);
                    context.mfa_authenticated_at = mfa;
                    context.source_ip = "10.1.2.3".parse().ok();
                    context.resource_tags = vec![("env".into(), "dev".into())];
                    let mut target = BTreeMap::new();
                    target.insert("project_id".to_string(), "p1".to_string());
                    target.insert("user_id".to_string(), "u1".to_string());
                    let req = AuthzRequest {
                        principal: p,
                        action,
                        resource,
                        resource_account: Some("acct"),
                        target,
                        context,
                        protection: Some(&protection),
                    };
                    let once = evaluate(&[policy], &req);
                    assert_eq!(once, evaluate(&[policy], &req), "deterministic");
                    // An unconditional deny of everything wins over whatever the policy says.
                    let both = evaluate(&[policy, deny_all], &req);
                    assert!(!both.is_allowed(), "explicit deny must win: {both:?}");
                    let both = evaluate(&[deny_all, policy], &req);
                    assert!(!both.is_allowed(), "explicit deny must win: {both:?}");
                }
            }
        }
    }
}
