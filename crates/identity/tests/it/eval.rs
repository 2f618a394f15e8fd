//! Evaluation tables: allow, deny, explicit deny, wildcards, conditions (IP, time, tags),
//! MFA (policy conditions and Tencent operation protection), tenancy, and the Nova defaults
//! for reader / member / admin across projects.

use nubis_identity::model::{KeystoneScope, KeystoneUser, PrincipalKind};
use nubis_identity::policy::{cam, oslo, ram};
use nubis_identity::{
    Allowed, AuthzRequest, CompiledPolicy, Decision, Denied, MfaSource, OperationProtection,
    Principal, RequestContext, evaluate,
};
use std::collections::{BTreeMap, BTreeSet};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);
const INS_A: &str = "qcs::cvm:ap-guangzhou:uin/100000000001:instance/ins-aaaaaaaa";
const INS_B: &str = "qcs::cvm:ap-guangzhou:uin/100000000001:instance/ins-bbbbbbbb";
const ECS_I: &str = "acs:ecs:cn-hangzhou:1234567890:instance/i-bp1abc";

fn req<'a>(p: &'a Principal, action: &'a str, resource: &'a str) -> AuthzRequest<'a> {
    AuthzRequest {
        principal: p,
        action,
        resource,
        resource_account: Some(&p.account),
        target: BTreeMap::new(),
        context: RequestContext::at(NOW),
        protection: None,
    }
}

fn cam(doc: &str) -> CompiledPolicy {
    cam::compile("p", doc).unwrap()
}

fn ram(doc: &str) -> CompiledPolicy {
    ram::compile("p", doc).unwrap()
}

const READ_ONLY: &str = r#"{"version":"2.0","statement":[{"effect":"allow","action":["cvm:Describe*"],"resource":"*"}]}"#;
const ALL: &str =
    r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"}]}"#;
const DENY_REBOOT: &str = r#"{"version":"2.0","statement":[{"effect":"deny","action":"cvm:RebootInstances","resource":"*"}]}"#;

#[test]
fn root_sub_user_and_tenancy() {
    let root = Principal::root("acct-1");
    let alice = Principal::user("acct-1", "alice");
    let ro = cam(READ_ONLY);

    let d = evaluate(&[], &req(&root, "cvm:RebootInstances", INS_A));
    assert_eq!(d, Decision::Allow(Allowed::AccountRoot));
    let mut other = req(&root, "cvm:RebootInstances", INS_A);
    other.resource_account = Some("acct-2");
    assert_eq!(evaluate(&[], &other), Decision::Deny(Denied::OtherAccount));
    let mut accountless = req(&alice, "cvm:DescribeRegions", "");
    accountless.resource_account = None;
    assert!(evaluate(&[&ro], &accountless).is_allowed());

    // A sub-user is denied unless allowed.
    assert_eq!(
        evaluate(&[], &req(&alice, "cvm:DescribeInstances", INS_A)),
        Decision::Deny(Denied::NoStatementAllowed)
    );
    assert!(evaluate(&[&ro], &req(&alice, "cvm:DescribeInstances", INS_A)).is_allowed());
    assert_eq!(
        evaluate(&[&ro], &req(&alice, "cvm:RebootInstances", INS_A)).kind(),
        "NoStatementAllowed"
    );
    // A policy of the sub-user's account cannot reach another account's resource.
    let all = cam(ALL);
    let mut cross = req(&alice, "cvm:DescribeInstances", INS_A);
    cross.resource_account = Some("acct-2");
    assert_eq!(
        evaluate(&[&all], &cross),
        Decision::Deny(Denied::OtherAccount)
    );
}

#[test]
fn explicit_deny_wins_in_any_order() {
    let alice = Principal::user("acct-1", "alice");
    let (all, deny) = (cam(ALL), cam(DENY_REBOOT));
    for policies in [[&all, &deny], [&deny, &all]] {
        let d = evaluate(&policies, &req(&alice, "cvm:RebootInstances", INS_A));
        assert_eq!(d.kind(), "ExplicitDeny");
        assert!(evaluate(&policies, &req(&alice, "cvm:StopInstances", INS_A)).is_allowed());
    }
    let d = evaluate(&[&all, &deny], &req(&alice, "cvm:RebootInstances", INS_A));
    let Decision::Deny(Denied::ExplicitDeny(at)) = d else {
        panic!()
    };
    assert_eq!((at.policy.as_str(), at.statement), ("p", 0));
    // The root is not bound by policies.
    let root = Principal::root("acct-1");
    assert!(evaluate(&[&deny], &req(&root, "cvm:RebootInstances", INS_A)).is_allowed());
}

#[test]
fn resource_and_action_wildcards() {
    let alice = Principal::user("acct-1", "alice");
    let one = cam(&format!(
        r#"{{"version":"2.0","statement":[{{"effect":"allow","action":"cvm:*Instances","resource":"{INS_A}"}}]}}"#
    ));
    let table: &[(&str, &str, bool)] = &[
        ("cvm:RebootInstances", INS_A, true),
        ("cvm:StopInstances", INS_A, true),
        ("cvm:RebootInstances", INS_B, false),
        ("cvm:ResetInstancesPassword", INS_A, false),
        ("ecs:RebootInstances", INS_A, false),
    ];
    for &(action, res, want) in table {
        assert_eq!(
            evaluate(&[&one], &req(&alice, action, res)).is_allowed(),
            want,
            "{action} {res}"
        );
    }
    let star = cam(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:RebootInstances","resource":"qcs::cvm:*:uin/100000000001:instance/ins-a*"}]}"#,
    );
    assert!(evaluate(&[&star], &req(&alice, "cvm:RebootInstances", INS_A)).is_allowed());
    assert!(!evaluate(&[&star], &req(&alice, "cvm:RebootInstances", INS_B)).is_allowed());
    let not_action = ram(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","NotAction":"ecs:Delete*","Resource":"*"}]}"#,
    );
    assert!(evaluate(&[&not_action], &req(&alice, "ecs:RebootInstance", ECS_I)).is_allowed());
    assert!(!evaluate(&[&not_action], &req(&alice, "ecs:DeleteInstance", ECS_I)).is_allowed());
}

#[test]
fn ip_time_and_tag_conditions() {
    let alice = Principal::user("acct-1", "alice");
    let ip = ram(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":["10.0.0.0/8","192.168.1.1"]}}}]}"#,
    );
    let not_ip = cam(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*","condition":{"ip_not_equal":{"qcs:ip":["10.0.0.0/8"]}}}]}"#,
    );
    let cases: &[(Option<&str>, bool, bool)] = &[
        (Some("10.1.2.3"), true, false),
        (Some("192.168.1.1"), true, true),
        (Some("192.168.1.2"), false, true),
        (None, false, false),
    ];
    for &(src, want_ip, want_not) in cases {
        let mut r = req(&alice, "ecs:RebootInstance", ECS_I);
        r.context.source_ip = src.map(|s| s.parse().unwrap());
        assert_eq!(evaluate(&[&ip], &r).is_allowed(), want_ip, "{src:?}");
        assert_eq!(evaluate(&[&not_ip], &r).is_allowed(), want_not, "{src:?}");
    }

    let window = ram(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"DateGreaterThan":{"acs:CurrentTime":"2026-12-01T00:00:00Z"},"DateLessThan":{"acs:CurrentTime":"2026-12-01T20:00:00+07:00"}}}]}"#,
    );
    for (now, want) in [
        (NOW, true),
        (datetime!(2026-11-30 23:59 UTC), false),
        (datetime!(2026-12-01 13:00 UTC), false),
    ] {
        let mut r = req(&alice, "ecs:RebootInstance", ECS_I);
        r.context.now = now;
        assert_eq!(evaluate(&[&window], &r).is_allowed(), want, "{now}");
    }

    let tagged = cam(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:RebootInstances","resource":"*","condition":{"for_any_value:string_equal":{"qcs:resource_tag":["dept&rd"]}}}]}"#,
    );
    let ram_tag = ram(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"StringEquals":{"ecs:tag/env":"dev"}}}]}"#,
    );
    type Tags = &'static [(&'static str, &'static str)];
    let tags: &[(Tags, bool, bool)] = &[
        (&[("dept", "rd")], true, false),
        (&[("dept", "ops"), ("env", "dev")], false, true),
        (&[], false, false),
    ];
    for &(t, want_cam, want_ram) in tags {
        let mut r = req(&alice, "cvm:RebootInstances", INS_A);
        r.context.resource_tags = t
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(evaluate(&[&tagged], &r).is_allowed(), want_cam, "{t:?}");
        r.action = "ecs:RebootInstance";
        assert_eq!(evaluate(&[&ram_tag], &r).is_allowed(), want_ram, "{t:?}");
    }

    // for_all_value: every tag must match; no tags at all match vacuously.
    let all_tags = cam(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*","condition":{"for_all_value:string_like":{"qcs:resource_tag":["dept&*"]}}}]}"#,
    );
    let all_rows: &[(Tags, bool)] = &[
        (&[("dept", "rd")], true),
        (&[("dept", "rd"), ("dept", "ops")], true),
        (&[("dept", "rd"), ("env", "dev")], false),
        (&[], true),
    ];
    for &(t, want) in all_rows {
        let mut r = req(&alice, "cvm:RebootInstances", INS_A);
        r.context.resource_tags = t
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(evaluate(&[&all_tags], &r).is_allowed(), want, "{t:?}");
    }

    // `_if_exist`: met when the request has no value for the key.
    let if_exist = cam(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*","condition":{"string_equal_if_exist":{"cvm:region":"ap-guangzhou"}}}]}"#,
    );
    let mut r = req(&alice, "cvm:RunInstances", "*");
    assert!(evaluate(&[&if_exist], &r).is_allowed());
    r.context
        .extra
        .insert("cvm:region".into(), vec!["ap-shanghai".into()]);
    assert!(!evaluate(&[&if_exist], &r).is_allowed());
    r.context
        .extra
        .insert("cvm:region".into(), vec!["ap-guangzhou".into()]);
    assert!(evaluate(&[&if_exist], &r).is_allowed());
}

const MFA_ALLOW: &str = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"Bool":{"acs:MFAPresent":"true"}}}]}"#;
const MFA_DENY: &str = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"},{"Effect":"Deny","Action":"ecs:Delete*","Resource":"*","Condition":{"Bool":{"acs:MFAPresent":"false"}}}]}"#;

#[test]
fn mfa_conditions_in_policies() {
    let alice = Principal::user("acct-1", "alice");
    let (allow, deny) = (ram(MFA_ALLOW), ram(MFA_DENY));
    let mut r = req(&alice, "ecs:RebootInstance", ECS_I);
    let d = evaluate(&[&allow], &r);
    assert_eq!(
        d,
        Decision::Deny(Denied::MfaNotFound(MfaSource::Statement(
            nubis_identity::StatementRef {
                policy: "p".into(),
                statement: 0
            }
        )))
    );
    r.action = "ecs:DeleteInstance";
    assert_eq!(evaluate(&[&deny], &r).kind(), "MfaNotFound");
    r.action = "ecs:RebootInstance";
    assert!(evaluate(&[&deny], &r).is_allowed());

    r.context.mfa_authenticated_at = Some(NOW - Duration::minutes(5));
    assert!(evaluate(&[&allow], &r).is_allowed());
    r.action = "ecs:DeleteInstance";
    assert!(evaluate(&[&deny], &r).is_allowed());

    // Without any allow an MFA condition still reports itself; other denials do not.
    let unrelated = ram(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}]}"#,
    );
    let r = req(&alice, "ecs:RebootInstance", ECS_I);
    assert_eq!(evaluate(&[&unrelated], &r).kind(), "NoStatementAllowed");
    // CAM spells it qcs:mfa (numeric).
    let cam_mfa = cam(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*","condition":{"numeric_equal":{"qcs:mfa":1}}}]}"#,
    );
    let mut r = req(&alice, "cvm:RebootInstances", INS_A);
    assert_eq!(evaluate(&[&cam_mfa], &r).kind(), "MfaNotFound");
    r.context.mfa_authenticated_at = Some(NOW);
    assert!(evaluate(&[&cam_mfa], &r).is_allowed());
}

#[test]
fn tencent_operation_protection() {
    let guarded = Principal::user("acct-1", "alice").with_operation_protection(true);
    let unguarded = Principal::user("acct-1", "bob");
    let root = Principal::root("acct-1").with_operation_protection(true);
    let all = cam(ALL);
    let ro = cam(READ_ONLY);
    let protection = OperationProtection::tencent();
    let validity = protection.validity;

    type Row = (&'static str, &'static str, Option<Duration>, &'static str);
    let table: &[Row] = &[
        // principal, action, MFA age, outcome
        ("guarded", "cvm:ResetInstancesPassword", None, "MfaNotFound"),
        (
            "guarded",
            "cvm:AssociateInstancesKeyPairs",
            None,
            "MfaNotFound",
        ),
        ("guarded", "cvm:EnterRescueMode", None, "MfaNotFound"),
        (
            "guarded",
            "cvm:ResetInstancesPassword",
            Some(Duration::minutes(5)),
            "AllowedByStatement",
        ),
        (
            "guarded",
            "cvm:ResetInstancesPassword",
            Some(Duration::minutes(30)),
            "AllowedByStatement",
        ),
        (
            "guarded",
            "cvm:ResetInstancesPassword",
            Some(Duration::minutes(31)),
            "MfaExpired",
        ),
        (
            "guarded",
            "cvm:AssociateInstancesKeyPairs",
            Some(Duration::hours(3)),
            "MfaExpired",
        ),
        // The cloud's documented MFA list is guarded too; reads never are.
        ("guarded", "cvm:RebootInstances", None, "MfaNotFound"),
        ("guarded", "cvm:TerminateInstances", None, "MfaNotFound"),
        (
            "guarded",
            "cvm:DescribeInstances",
            None,
            "AllowedByStatement",
        ),
        (
            "unguarded",
            "cvm:ResetInstancesPassword",
            None,
            "AllowedByStatement",
        ),
        ("root", "cvm:ResetInstancesPassword", None, "MfaNotFound"),
        (
            "root",
            "cvm:ResetInstancesPassword",
            Some(Duration::minutes(1)),
            "AllowedAsRoot",
        ),
    ];
    for &(who, action, age, want) in table {
        let p = match who {
            "guarded" => &guarded,
            "unguarded" => &unguarded,
            _ => &root,
        };
        let mut r = req(p, action, INS_A);
        r.protection = Some(&protection);
        r.context.mfa_authenticated_at = age.map(|a| NOW - a);
        let d = evaluate(&[&all], &r);
        assert_eq!(d.kind(), want, "{who} {action} {age:?}");
        if let Decision::Deny(Denied::MfaExpired {
            authenticated_at,
            max_age,
            source,
        }) = d
        {
            assert_eq!((authenticated_at, max_age), (NOW - age.unwrap(), validity));
            assert_eq!(source, MfaSource::OperationProtection);
        }
    }
    // The policy decides first: no permission is UnauthorizedOperation, not an MFA code.
    let mut r = req(&guarded, "cvm:ResetInstancesPassword", INS_A);
    r.protection = Some(&protection);
    assert_eq!(evaluate(&[&ro], &r).kind(), "NoStatementAllowed");
    // A service without operation protection (Alibaba, Nova) never asks for it.
    r.protection = None;
    assert!(evaluate(&[&all], &r).is_allowed());
}

fn keystone(user: &str, project: &str, roles: &[&str]) -> Principal {
    let mut u = KeystoneUser {
        id: user.into(),
        name: user.into(),
        domain_id: "default".into(),
        project_roles: BTreeMap::new(),
    };
    u.project_roles.insert(
        project.into(),
        roles.iter().map(|r| r.to_string()).collect::<BTreeSet<_>>(),
    );
    Principal {
        account: "acct-1".into(),
        kind: PrincipalKind::Keystone(u.scoped_to_project(project, "default")),
        operation_protection: false,
    }
}

fn nova_req<'a>(p: &'a Principal, action: &'a str, project: &str, owner: &str) -> AuthzRequest<'a> {
    let mut r = req(p, action, "");
    r.resource_account = None;
    r.target.insert("project_id".into(), project.into());
    r.target.insert("user_id".into(), owner.into());
    r
}

#[test]
fn nova_defaults_reader_member_admin_across_projects() {
    let nova = oslo::nova(None).unwrap();
    let reader = keystone("u-reader", "proj-a", &["reader"]);
    let member = keystone("u-member", "proj-a", &["member"]);
    let admin = keystone("u-admin", "proj-a", &["admin"]);
    let none = keystone("u-none", "proj-a", &[]);

    type Row = (&'static str, &'static str, &'static str, bool);
    let table: &[Row] = &[
        // who, action, target project, allowed
        ("reader", "os_compute_api:servers:show", "proj-a", true),
        ("reader", "os_compute_api:servers:detail", "proj-a", true),
        ("reader", "os_compute_api:servers:reboot", "proj-a", false),
        ("reader", "os_compute_api:os-rescue", "proj-a", false),
        ("reader", "os_compute_api:servers:show", "proj-b", false),
        ("member", "os_compute_api:servers:show", "proj-a", true),
        ("member", "os_compute_api:servers:reboot", "proj-a", true),
        ("member", "os_compute_api:servers:create", "proj-a", true),
        ("member", "os_compute_api:os-admin-password", "proj-a", true),
        ("member", "os_compute_api:servers:reboot", "proj-b", false),
        ("member", "os_compute_api:servers:show", "proj-b", false),
        (
            "member",
            "os_compute_api:servers:index:get_all_tenants",
            "proj-a",
            false,
        ),
        (
            "member",
            "os_compute_api:os-lock-server:unlock:unlock_override",
            "proj-a",
            false,
        ),
        ("admin", "os_compute_api:servers:reboot", "proj-b", true),
        (
            "admin",
            "os_compute_api:servers:index:get_all_tenants",
            "proj-a",
            true,
        ),
        (
            "admin",
            "os_compute_api:os-instance-actions:events",
            "proj-b",
            true,
        ),
        ("none", "os_compute_api:servers:show", "proj-a", false),
        ("none", "os_compute_api:limits", "proj-a", true),
        (
            "none",
            "os_compute_api:os-availability-zone:list",
            "proj-a",
            true,
        ),
        ("member", "os_compute_api:no-such-rule", "proj-a", false),
    ];
    for &(who, action, project, want) in table {
        let p = match who {
            "reader" => &reader,
            "member" => &member,
            "admin" => &admin,
            _ => &none,
        };
        let d = evaluate(&[&nova], &nova_req(p, action, project, "someone"));
        assert_eq!(d.is_allowed(), want, "{who} {action} {project}: {d:?}");
    }

    // Key pairs belong to users: the owner, or an admin.
    let kp = "os_compute_api:os-keypairs:show";
    assert!(evaluate(&[&nova], &nova_req(&reader, kp, "proj-a", "u-reader")).is_allowed());
    assert!(!evaluate(&[&nova], &nova_req(&member, kp, "proj-a", "u-reader")).is_allowed());
    assert!(evaluate(&[&nova], &nova_req(&admin, kp, "proj-a", "u-reader")).is_allowed());

    // A target without the name a rule substitutes fails the check (oslo: KeyError → False).
    let mut bare = nova_req(&member, "os_compute_api:servers:reboot", "proj-a", "x");
    bare.target.clear();
    assert!(!evaluate(&[&nova], &bare).is_allowed());
}

#[test]
fn nova_scope_and_overrides() {
    let nova = oslo::nova(None).unwrap();
    // A system-scoped admin token is refused by project-scoped rules (enforce_scope).
    let mut sys = keystone("u-admin", "proj-a", &["admin"]);
    if let PrincipalKind::Keystone(k) = &mut sys.kind {
        k.scope = KeystoneScope::System;
    }
    let d = evaluate(
        &[&nova],
        &nova_req(&sys, "os_compute_api:servers:show", "proj-a", "x"),
    );
    assert_eq!(d.kind(), "ScopeNotAllowed");
    let mut lax = nova.clone();
    lax.enforce_scope = false;
    assert!(
        evaluate(
            &[&lax],
            &nova_req(&sys, "os_compute_api:servers:show", "proj-a", "x")
        )
        .is_allowed()
    );

    // An operator's policy file: readers may reboot their project's servers.
    let file = r#"{"os_compute_api:servers:reboot": "rule:project_reader_or_admin"}"#;
    let custom = oslo::nova(Some(file)).unwrap();
    let reader = keystone("u-reader", "proj-a", &["reader"]);
    let r = nova_req(&reader, "os_compute_api:servers:reboot", "proj-a", "x");
    assert!(!evaluate(&[&nova], &r).is_allowed());
    assert!(evaluate(&[&custom], &r).is_allowed());
    // `is_admin` follows the policy's context_is_admin rule.
    let file =
        r#"{"context_is_admin": "role:reader", "os_compute_api:servers:reboot": "is_admin:True"}"#;
    let custom = oslo::nova(Some(file)).unwrap();
    assert!(evaluate(&[&custom], &r).is_allowed());
    let member = keystone("u-member", "proj-a", &["member"]);
    let r = nova_req(&member, "os_compute_api:servers:reboot", "proj-a", "x");
    assert!(
        evaluate(&[&custom], &r).is_allowed(),
        "member implies reader"
    );
    let none = keystone("u-none", "proj-a", &["other"]);
    let r = nova_req(&none, "os_compute_api:servers:reboot", "proj-a", "x");
    assert!(!evaluate(&[&custom], &r).is_allowed());
}

#[test]
fn oslo_rules_ignore_cam_principals_and_vice_versa() {
    // A sub-user has no Keystone roles: role checks never hold for it.
    let nova = oslo::nova(None).unwrap();
    let alice = Principal::user("acct-1", "alice");
    let mut r = nova_req(&alice, "os_compute_api:servers:show", "proj-a", "x");
    r.resource_account = Some("acct-1");
    assert_eq!(evaluate(&[&nova], &r).kind(), "NoStatementAllowed");
    assert!(
        evaluate(
            &[&nova],
            &nova_req(&alice, "os_compute_api:limits", "p", "x")
        )
        .is_allowed()
    );
}

#[test]
fn implied_roles_expand() {
    let admin = keystone("u", "p", &["admin"]);
    let PrincipalKind::Keystone(k) = &admin.kind else {
        panic!()
    };
    let roles: Vec<&str> = k.roles.iter().map(String::as_str).collect();
    assert_eq!(roles, ["admin", "manager", "member", "reader"]);
    let none = keystone("u", "p", &[]);
    let PrincipalKind::Keystone(k) = &none.kind else {
        panic!()
    };
    assert!(k.roles.is_empty());
}

#[test]
fn secrets_stay_out_of_debug() {
    use nubis_identity::model::{AccessKey, MfaDevice, TemporaryCredential};
    use nubis_identity::{Credential, Secret};
    let p = Principal::user("acct-1", "alice");
    let creds = [
        Credential::AccessKey(AccessKey {
            id: "AKID1".into(),
            secret: Secret::new("s3cr3t-key".into()),
            principal: p.clone(),
            enabled: true,
        }),
        Credential::Temporary(TemporaryCredential {
            access_key_id: "STS.1".into(),
            secret: Secret::new("s3cr3t-tmp".into()),
            session_token: Secret::new("s3cr3t-token".into()),
            principal: p,
            expires_at: NOW,
            mfa_authenticated_at: Some(NOW),
        }),
    ];
    for c in &creds {
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
    let dev = MfaDevice {
        serial: "mfa-1".into(),
        seed: Secret::new(b"s3cr3t-seed".to_vec()),
        params: Default::default(),
        last_used_step: None,
    };
    assert!(!format!("{dev:?}").contains("115, 51"), "seed bytes");
    assert!(format!("{dev:?}").contains("[redacted]"));
    let Credential::Temporary(t) = &creds[1] else {
        panic!()
    };
    assert!(t.is_valid_at(NOW - Duration::seconds(1)));
    assert!(!t.is_valid_at(NOW));
    // An MFA device verifies through TOTP with its stored last step.
    let code =
        nubis_identity::totp::generate(b"s3cr3t-seed", &dev.params, NOW.unix_timestamp()).unwrap();
    let step = dev.verify(&code, NOW).unwrap();
    let used = MfaDevice {
        last_used_step: Some(step),
        ..dev
    };
    assert_eq!(
        used.verify(&code, NOW),
        Err(nubis_identity::totp::TotpError::Reused)
    );
}
