//! Properties: parsers never panic on arbitrary input; explicit deny wins whatever the order;
//! a policy's decision does not depend on the order of its statements.

use nubis_identity::policy::oslo::{self, RuleDefault};
use nubis_identity::policy::{cam, ram};
use nubis_identity::{AuthzRequest, Principal, RequestContext, evaluate};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::BTreeMap;
use time::macros::datetime;

const ACTIONS: &[&str] = &[
    "ecs:*",
    "ecs:Reboot*",
    "ecs:RebootInstance",
    "ecs:Describe*",
    "*",
];
const RESOURCES: &[&str] = &["*", "acs:ecs:*:*:instance/*", "acs:ecs:*:*:instance/i-a"];
const CONDITIONS: &[&str] = &[
    "",
    r#","Condition":{"Bool":{"acs:MFAPresent":"true"}}"#,
    r#","Condition":{"Bool":{"acs:MFAPresent":"false"}}"#,
    r#","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}"#,
];

fn statement() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        prop::sample::subsequence(ACTIONS, 1..3),
        prop::sample::select(RESOURCES),
        prop::sample::select(CONDITIONS),
    )
        .prop_map(|(allow, actions, resource, cond)| {
            let actions: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
            format!(
                r#"{{"Effect":"{}","Action":[{}],"Resource":"{resource}"{cond}}}"#,
                if allow { "Allow" } else { "Deny" },
                actions.join(",")
            )
        })
}

fn document(statements: &[String]) -> String {
    format!(
        r#"{{"Version":"1","Statement":[{}]}}"#,
        statements.join(",")
    )
}

#[derive(Debug, Clone)]
struct Req {
    action: &'static str,
    resource: &'static str,
    mfa: bool,
    ip: &'static str,
}

fn request() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(
            &[
                "ecs:RebootInstance",
                "ecs:DescribeInstances",
                "ecs:StopInstance",
            ][..],
        ),
        prop::sample::select(
            &[
                "acs:ecs:cn-hangzhou:1:instance/i-a",
                "acs:ecs:cn-hangzhou:1:instance/i-b",
            ][..],
        ),
        prop::bool::ANY,
        prop::sample::select(&["10.1.1.1", "192.0.2.1"][..]),
    )
        .prop_map(|(action, resource, mfa, ip)| Req {
            action,
            resource,
            mfa,
            ip,
        })
}

fn decide(doc_parts: &[&[String]], r: &Req) -> String {
    // A policy has at least one statement: an empty part stands for no policy.
    let policies: Vec<_> = doc_parts
        .iter()
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| ram::compile(&format!("p{i}"), &document(s)).unwrap())
        .collect();
    let refs: Vec<_> = policies.iter().collect();
    let p = Principal::user("acct", "alice");
    let now = datetime!(2026-12-01 12:00 UTC);
    let mut context = RequestContext::at(now);
    context.source_ip = r.ip.parse().ok();
    context.mfa_authenticated_at = r.mfa.then_some(now);
    let req = AuthzRequest {
        principal: &p,
        action: r.action,
        resource: r.resource,
        resource_account: Some("acct"),
        target: BTreeMap::new(),
        context,
        protection: None,
    };
    evaluate(&refs, &req).kind().to_string()
}

/// 512 cases; failures are read from and saved to props.proptest-regressions beside this file.
/// Said explicitly: proptest's default (`SourceParallel`) walks up to the first directory with a
/// `main.rs`, tests/it, and would use tests/proptest-regressions/props.txt instead.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::with_cases(512)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsers_never_panic(s in ".{0,400}") {
        let _ = cam::compile("p", &s);
        let _ = ram::compile("p", &s);
        let _ = oslo::nova(Some(&s));
        let _ = oslo::compile("p", &[RuleDefault { name: "x".into(), check: s.clone(), scope_types: vec![] }], true);
    }

    #[test]
    fn parsers_never_panic_on_near_valid_json(
        s in r#"\{"(Version|version)":"(1|2\.0)","(Statement|statement)":\[\{("(Effect|effect|Action|action|Resource|resource|Condition|condition|NotAction)":("[a-zA-Z:*/?%()]{0,12}"|\[\]|\{\}|1|null|\["[a-z:*]{0,6}"\]|\{"[A-Za-z_:]{0,20}":\{"[a-zA-Z:/]{0,14}":("[0-9./:TZ-]{0,20}"|[0-9]{1,3}|true|\[\])\}\}),?){0,5}\}\]\}"#
    ) {
        let _ = cam::compile("p", &s);
        let _ = ram::compile("p", &s);
    }

    #[test]
    fn oslo_rules_never_panic(s in r"(\(|\)|not |and |or |role:[a-z]{1,5} |rule:[a-z_]{1,20} |@ |! |is_admin:True |project_id:%\(project_id\)s |user_id:%\([a-z_]{0,8}\)?s? ){0,30}") {
        let rules = oslo::nova_rules(&[("custom".to_string(), s)]);
        let _ = oslo::compile("p", &rules, true);
    }

    #[test]
    fn explicit_deny_always_wins(
        mut statements in prop::collection::vec(statement(), 0..8),
        at in 0usize..9,
        r in request(),
    ) {
        let deny = format!(r#"{{"Effect":"Deny","Action":"{}","Resource":"*"}}"#, r.action);
        let at = at.min(statements.len());
        statements.insert(at, deny);
        prop_assert_eq!(decide(&[&statements], &r), "ExplicitDeny");
        // Also when the deny sits in its own policy, before or after the others.
        let deny = statements.remove(at);
        let alone = vec![deny];
        prop_assert_eq!(decide(&[&statements, &alone], &r), "ExplicitDeny");
        prop_assert_eq!(decide(&[&alone, &statements], &r), "ExplicitDeny");
    }

    #[test]
    fn statement_order_does_not_matter(
        (statements, shuffled) in prop::collection::vec(statement(), 1..8)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        r in request(),
    ) {
        prop_assert_eq!(decide(&[&statements], &r), decide(&[&shuffled], &r));
    }
}
