//! The pipeline's [`Authorizer`] for the Tencent and Alibaba APIs: CAM / RAM policies of the
//! caller's account, evaluated by `nubis_identity::evaluate` (through the engine, which holds
//! them compiled).
//!
//! The gate runs before the request's parameters are parsed, so it decides about the
//! service-level resource of the principal's account in the request's region —
//! `qcs::cvm:<region>:uin/<owner>:*`, `acs:ecs:<region>:<account>:*` (the cloud's region
//! name). A statement whose resources that name does not match (`…:instance/ins-1`,
//! `…:instance/*`) applies only to particular resources: for an action the registry marks
//! `per_resource`, the gate then admits the request with a [`ResourceGuard`] that the engine
//! asks about every instance the action touches (`…:instance/<the cloud's ID>`): a named
//! instance the policies refuse is refused with the cloud's authorization error, a listed
//! one is left out. For any other action such statements do not count (a statement allowing
//! `RunInstances` on one instance allows no creation). Conditions see the request time, the
//! credential's MFA time and the request's source address (the TCP peer); tags are not
//! passed yet, so a condition on them does not hold (docs/identity.md "Wiring"). Tencent operation protection (D6, D8) is
//! decided here too, by the same evaluation; the dialect renders its `MfaDenial`.

use nubis_core::{Instance, Principal, ResourceGuard, ResourcePolicy, catalog};
use nubis_engine::Engine;
use nubis_identity::{Decision, Denied as Why, MfaSource, OperationProtection, RequestContext};
use nubis_pipeline::{Authorizer, Denied, DenyDetail, MfaDenial};
use std::sync::Arc;

/// Actions every authenticated caller may perform whatever its policies say: asking who one
/// is (STS GetCallerIdentity needs no permission on either cloud).
const NEEDS_NO_PERMISSION: &[&str] = &["sts:GetCallerIdentity"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cloud {
    Tencent,
    Aliyun,
}

/// CAM (Tencent) or RAM (Alibaba) policies gate every action of a sub-user and of an
/// assumed role's session; Tencent operation protection (D6, D8) gates a protected
/// sub-user's sensitive actions.
pub struct PolicyAuthorizer {
    engine: Engine,
    cloud: Cloud,
    /// Tencent operation protection (sensitive actions, MFA validity).
    protection: Option<OperationProtection>,
}

impl PolicyAuthorizer {
    pub fn tencent(engine: Engine) -> Self {
        Self {
            engine,
            cloud: Cloud::Tencent,
            protection: Some(OperationProtection::tencent()),
        }
    }

    pub fn aliyun(engine: Engine) -> Self {
        Self {
            engine,
            cloud: Cloud::Aliyun,
            protection: None,
        }
    }

    /// How long an MFA authentication covers sensitive actions (`NUBIS_MFA_MAX_AGE_SECS`,
    /// default 1800 s) and keeps `qcs:mfaPresent` true.
    pub fn with_mfa_max_age(mut self, max_age: std::time::Duration) -> Self {
        if let Some(p) = &mut self.protection {
            p.validity = time::Duration::try_from(max_age).unwrap_or(p.validity);
        }
        self
    }
}

/// How a cloud names the principal's account and the resources in it.
#[derive(Debug, Clone)]
struct Names {
    cloud: Cloud,
    service: String,
    /// The account's number in this cloud (owner UIN, Alibaba account ID); empty if unknown.
    owner_id: Arc<str>,
}

impl Names {
    fn of(engine: &Engine, cloud: Cloud, policy_action: &str, account: &str) -> Self {
        let service = policy_action
            .split_once(':')
            .map_or("", |(s, _)| s)
            .to_string();
        // The account's numbers from the tenancy directory (shared strings under a read
        // lock), not a clone of the account under the fleet mutex.
        let owner_id = engine
            .account_numbers(account)
            .map(|n| match cloud {
                Cloud::Tencent => n.tencent,
                Cloud::Aliyun => n.aliyun,
            })
            .unwrap_or_else(|| Arc::from(""));
        Self {
            cloud,
            service,
            owner_id,
        }
    }

    /// The cloud's name of a canonical region ID (empty: no region).
    fn region(&self, canonical: Option<&str>) -> &'static str {
        canonical
            .and_then(catalog::region)
            .map_or("", |r| match self.cloud {
                Cloud::Tencent => r.tencent,
                Cloud::Aliyun => r.aliyun,
            })
    }

    /// `…:<relative>` in the account and region: `*` for the service-level name.
    fn resource(&self, region: Option<&str>, relative: &str) -> String {
        let (service, region, owner) = (&self.service, self.region(region), &self.owner_id);
        match self.cloud {
            Cloud::Tencent => format!("qcs::{service}:{region}:uin/{owner}:{relative}"),
            Cloud::Aliyun => format!("acs:{service}:{region}:{owner}:{relative}"),
        }
    }

    fn instance(&self, inst: &Instance) -> String {
        let id = match self.cloud {
            Cloud::Tencent => &inst.tencent_id,
            Cloud::Aliyun => &inst.aliyun_id,
        };
        self.resource(Some(&inst.region), &format!("instance/{id}"))
    }
}

impl PolicyAuthorizer {
    /// The decision about `resource`, as the pipeline's refusal.
    fn decide(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        names: &Names,
        resource: String,
    ) -> Result<(), Denied> {
        let context = RequestContext {
            source_ip: principal.source_ip,
            ..RequestContext::at(time::OffsetDateTime::now_utc())
        };
        let (explicit, mfa) = match self.engine.authorize_with(
            principal,
            policy_action,
            &resource,
            context,
            self.protection.as_ref(),
        ) {
            Decision::Allow(_) => return Ok(()),
            Decision::Deny(Why::ExplicitDeny(_)) => (true, MfaDenial::None),
            // A statement that holds only with MFA is a policy refusal in both clouds (D6,
            // D9): explicit when it is a `Deny … MFAPresent false`. Only operation
            // protection answers with Tencent's MFA codes.
            Decision::Deny(Why::MfaNotFound(MfaSource::Statement(s))) => (
                self.engine.statement_is_deny(principal, &s),
                MfaDenial::None,
            ),
            Decision::Deny(Why::MfaNotFound(MfaSource::OperationProtection)) => {
                (false, MfaDenial::NotFound)
            }
            Decision::Deny(Why::MfaExpired { .. }) => (false, MfaDenial::Expired),
            Decision::Deny(_) => (false, MfaDenial::None),
        };
        Err(Denied {
            principal: principal.user.clone(),
            policy_action,
            detail: DenyDetail {
                explicit,
                owner_id: names.owner_id.to_string(),
                principal_type: if principal.role().is_some() {
                    "AssumedRoleUser"
                } else {
                    "SubUser"
                },
                resource,
                mfa,
            },
        })
    }
}

impl Authorizer for PolicyAuthorizer {
    fn authorize(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        region: Option<&str>,
    ) -> Result<(), Denied> {
        self.authorize_scoped(principal, policy_action, region, false)
            .map(|_| ())
    }

    fn authorize_scoped(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        region: Option<&str>,
        per_resource: bool,
    ) -> Result<Option<ResourceGuard>, Denied> {
        // The bootstrap admin and account roots need no policy (tenancy is
        // `Principal::sees`'s, when resources are touched); sub-users and role sessions do.
        if principal.is_root() || NEEDS_NO_PERMISSION.contains(&policy_action) {
            return Ok(None);
        }
        let names = Names::of(&self.engine, self.cloud, policy_action, &principal.account);
        let service_wide = names.resource(region, "*");
        let particular = per_resource
            && self
                .engine
                .names_resources(principal, policy_action, &service_wide);
        match self.decide(principal, policy_action, &names, service_wide) {
            // Statements on particular instances may still refuse some (a deny) or allow
            // some (an allow); an explicit service-wide deny is final.
            Ok(()) if particular => Ok(Some(self.guard(principal, policy_action, names))),
            Err(d) if particular && !d.detail.explicit => {
                Ok(Some(self.guard(principal, policy_action, names)))
            }
            other => other.map(|()| None),
        }
    }
}

impl PolicyAuthorizer {
    fn guard(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        names: Names,
    ) -> ResourceGuard {
        ResourceGuard(Arc::new(InstanceGuard {
            authorizer: PolicyAuthorizer {
                engine: self.engine.clone(),
                cloud: self.cloud,
                protection: self.protection.clone(),
            },
            principal: principal.clone(),
            policy_action,
            names,
        }))
    }
}

/// The policies' decision per instance, for one admitted request.
struct InstanceGuard {
    authorizer: PolicyAuthorizer,
    principal: Principal,
    policy_action: &'static str,
    names: Names,
}

impl ResourcePolicy for InstanceGuard {
    fn instance(&self, inst: &Instance) -> Result<(), String> {
        let resource = self.names.instance(inst);
        self.authorizer
            .decide(&self.principal, self.policy_action, &self.names, resource)
            .map_err(|d| {
                format!(
                    "you are not authorized to perform operation ({})\nresource ({}) has no permission",
                    d.policy_action, d.detail.resource
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_core::PolicyGrammar;

    const READ_ONLY_CAM: &str = r#"{"version":"2.0","statement":[{"effect":"allow","action":["cvm:Describe*"],"resource":"*"}]}"#;

    /// Account `team-a` (both clouds' numbers) with sub-user `dev`: the engine, its
    /// directory, and the principals of the root's and of dev's access keys.
    pub(super) async fn setup() -> (Engine, tempfile::TempDir, Principal, Principal) {
        let (engine, dir) = nubis_testkit::engine().await;
        engine
            .create_account(nubis_engine::NewAccount {
                name: "team-a".into(),
                tencent_owner_uin: Some(100000000001),
                aliyun_account_id: Some("1000000000000001".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        engine.create_sub_user("team-a", "dev").await.unwrap();
        let (root, _) = engine
            .create_access_key_for(Some("team-a"), None)
            .await
            .unwrap();
        let (dev, _) = engine
            .create_access_key_for(Some("team-a"), Some("dev"))
            .await
            .unwrap();
        let root = engine.access_key(&root.id).unwrap().0;
        let dev = engine.access_key(&dev.id).unwrap().0;
        (engine, dir, root, dev)
    }

    async fn policy(engine: &Engine, name: &str, grammar: PolicyGrammar, doc: &str) {
        engine
            .create_policy("team-a", name, grammar, doc)
            .await
            .unwrap();
        engine
            .set_attached("team-a", "dev", name, true)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn roots_pass_sub_users_need_a_policy_and_deny_wins() {
        let (engine, _d, root, dev) = setup().await;
        let tc = PolicyAuthorizer::tencent(engine.clone());
        let ali = PolicyAuthorizer::aliyun(engine.clone());
        let admin = engine.admin_principal().unwrap();
        for p in [&admin, &root] {
            assert!(
                tc.authorize(p, "cvm:RebootInstances", Some("local"))
                    .is_ok()
            );
            assert!(
                ali.authorize(p, "ecs:RebootInstance", Some("local"))
                    .is_ok()
            );
        }
        // No policy: everything refused, implicitly.
        let e = tc
            .authorize(&dev, "cvm:DescribeInstances", Some("local"))
            .unwrap_err();
        assert!(!e.detail.explicit);
        assert_eq!(e.principal, "dev");
        assert_eq!(
            e.detail.resource,
            "qcs::cvm:ap-guangzhou:uin/100000000001:*"
        );
        assert_eq!(e.detail.owner_id, "100000000001");
        // Read-only CAM: describe passes, reboot does not; RAM is another grammar and
        // another action namespace, so the Alibaba side stays closed.
        policy(&engine, "ro", PolicyGrammar::Cam, READ_ONLY_CAM).await;
        assert!(
            tc.authorize(&dev, "cvm:DescribeInstances", Some("local"))
                .is_ok()
        );
        assert!(tc.authorize(&dev, "cvm:DescribeInstances", None).is_ok());
        assert!(
            tc.authorize(&dev, "cvm:RebootInstances", Some("local"))
                .is_err()
        );
        let e = ali
            .authorize(&dev, "ecs:DescribeInstances", Some("local"))
            .unwrap_err();
        assert_eq!(e.detail.owner_id, "1000000000000001");
        assert_eq!(e.detail.resource, "acs:ecs:cn-hangzhou:1000000000000001:*");
        // An explicit deny beats the allow, whatever the order of policies.
        policy(
            &engine,
            "no-describe",
            PolicyGrammar::Cam,
            r#"{"version":"2.0","statement":[{"effect":"deny","action":"cvm:DescribeInstances","resource":"*"}]}"#,
        )
        .await;
        let e = tc
            .authorize(&dev, "cvm:DescribeInstances", Some("local"))
            .unwrap_err();
        assert!(e.detail.explicit);
        assert!(
            tc.authorize(&dev, "cvm:DescribeImages", Some("local"))
                .is_ok()
        );
        // Detaching the deny gives the permission back.
        engine
            .set_attached("team-a", "dev", "no-describe", false)
            .await
            .unwrap();
        assert!(
            tc.authorize(&dev, "cvm:DescribeInstances", Some("local"))
                .is_ok()
        );
    }

    /// At the gate only the service-level resource is known: statements naming particular
    /// resources match nothing (neither allow nor deny); a wildcard covering every resource
    /// of the service does.
    #[tokio::test]
    async fn resource_specific_statements_match_only_service_wide_patterns() {
        let (engine, _d, _root, dev) = setup().await;
        let ali = PolicyAuthorizer::aliyun(engine.clone());
        policy(
            &engine,
            "one-instance",
            PolicyGrammar::Ram,
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:RebootInstance","Resource":"acs:ecs:*:*:instance/i-1"}]}"#,
        )
        .await;
        assert!(
            ali.authorize(&dev, "ecs:RebootInstance", Some("local"))
                .is_err()
        );
        policy(
            &engine,
            "deny-one",
            PolicyGrammar::Ram,
            r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"ecs:StopInstance","Resource":"acs:ecs:*:*:instance/*"}]}"#,
        )
        .await;
        policy(
            &engine,
            "all-ecs",
            PolicyGrammar::Ram,
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"acs:ecs:*:*:*"}]}"#,
        )
        .await;
        assert!(
            ali.authorize(&dev, "ecs:RebootInstance", Some("local"))
                .is_ok()
        );
        assert!(
            ali.authorize(&dev, "ecs:StopInstance", Some("local"))
                .is_ok(),
            "a deny on instance/* does not cover the service-level name"
        );
        // A pattern of another account's number does not cover this account's resources.
        policy(
            &engine,
            "other-account",
            PolicyGrammar::Ram,
            r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"ecs:*","Resource":"acs:ecs:*:1999999999999999:*"}]}"#,
        )
        .await;
        assert!(
            ali.authorize(&dev, "ecs:RebootInstance", Some("local"))
                .is_ok()
        );
    }
    /// Operation protection (D6, D8) as the Tencent gate sees it: a protected sub-user's
    /// sensitive action without MFA is `MfaDenial::NotFound`, with an MFA older than the
    /// validity `Expired`; a policy refusal stays a policy refusal; the root is never gated;
    /// GetCallerIdentity needs no permission.
    #[tokio::test]
    async fn operation_protection_renders_both_mfa_refusals() {
        let (engine, _d, root, dev) = setup().await;
        policy(
            &engine,
            "all",
            PolicyGrammar::Cam,
            r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:*","resource":"*"}]}"#,
        )
        .await;
        let tc = PolicyAuthorizer::tencent(engine.clone())
            .with_mfa_max_age(std::time::Duration::from_secs(60));
        let region = Some("ap-guangzhou");
        assert!(
            tc.authorize(&dev, "cvm:ResetInstancesPassword", region)
                .is_ok()
        );
        engine
            .set_mfa_flags(
                dev.sub_user.unwrap(),
                None,
                Some(nubis_core::MfaFactors {
                    stoken: 1,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        let e = tc
            .authorize(&dev, "cvm:ResetInstancesPassword", region)
            .unwrap_err();
        assert_eq!(e.detail.mfa, MfaDenial::NotFound);
        assert!(tc.authorize(&dev, "cvm:DescribeInstances", region).is_ok());
        assert!(
            tc.authorize(&root, "cvm:ResetInstancesPassword", region)
                .is_ok()
        );
        let issue = |mfa_ago_ms: i64| {
            let engine = engine.clone();
            let dev = dev.clone();
            async move {
                let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
                let c = engine
                    .issue_session_token(
                        &dev,
                        nubis_engine::Issuer::Tencent,
                        600,
                        Some(now - mfa_ago_ms),
                    )
                    .await
                    .unwrap();
                engine
                    .temp_credential(&c.id, Some(&c.token), now)
                    .unwrap()
                    .0
            }
        };
        let fresh = issue(1_000).await;
        assert!(
            tc.authorize(&fresh, "cvm:ResetInstancesPassword", region)
                .is_ok()
        );
        let stale = issue(120_000).await;
        let e = tc
            .authorize(&stale, "cvm:AssociateInstancesKeyPairs", region)
            .unwrap_err();
        assert_eq!(e.detail.mfa, MfaDenial::Expired);
        // Alibaba has no operation protection.
        let ali = PolicyAuthorizer::aliyun(engine.clone());
        assert_eq!(
            ali.authorize(&dev, "ecs:RebootInstance", Some("cn-hangzhou"))
                .unwrap_err()
                .detail
                .mfa,
            MfaDenial::None
        );
        assert!(ali.authorize(&dev, "sts:GetCallerIdentity", None).is_ok());
    }

    /// D9: RAM callers with an AccessKey have `acs:MFAPresent` false: an Allow that needs
    /// MFA leaves an implicit deny, a Deny on its absence is explicit.
    #[tokio::test]
    async fn ram_mfa_present_is_false_for_access_key_callers() {
        let (engine, _d, _root, dev) = setup().await;
        let ali = PolicyAuthorizer::aliyun(engine.clone());
        policy(
            &engine,
            "needs-mfa",
            PolicyGrammar::Ram,
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"Bool":{"acs:MFAPresent":"true"}}}]}"#,
        )
        .await;
        let e = ali
            .authorize(&dev, "ecs:DescribeInstances", Some("cn-hangzhou"))
            .unwrap_err();
        assert!(!e.detail.explicit);
        assert_eq!(e.detail.mfa, MfaDenial::None);
        policy(
            &engine,
            "deny-without-mfa",
            PolicyGrammar::Ram,
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"},{"Effect":"Deny","Action":"ecs:*","Resource":"*","Condition":{"Bool":{"acs:MFAPresent":"false"}}}]}"#,
        )
        .await;
        let e = ali
            .authorize(&dev, "ecs:DescribeInstances", Some("cn-hangzhou"))
            .unwrap_err();
        assert!(e.detail.explicit);
    }

    /// `acs:SourceIp` / `qcs:ip` see the request's peer address: an Allow limited to a
    /// network allows callers from it only (and none whose address is unknown); a Deny on a
    /// network refuses only callers from it.
    #[tokio::test]
    async fn source_ip_conditions_see_the_peer() {
        let (engine, _d, _root, dev) = setup().await;
        let from = |ip: Option<&str>| Principal {
            source_ip: ip.map(|ip| ip.parse().unwrap()),
            ..dev.clone()
        };
        let (inside, outside, unknown) =
            (from(Some("127.0.0.1")), from(Some("10.1.2.3")), from(None));
        let ali = PolicyAuthorizer::aliyun(engine.clone());
        policy(
            &engine,
            "office-only",
            PolicyGrammar::Ram,
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:Describe*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":["127.0.0.0/8"]}}}]}"#,
        )
        .await;
        let region = Some("cn-hangzhou");
        assert!(
            ali.authorize(&inside, "ecs:DescribeInstances", region)
                .is_ok()
        );
        for p in [&outside, &unknown] {
            let e = ali
                .authorize(p, "ecs:DescribeInstances", region)
                .unwrap_err();
            assert!(!e.detail.explicit);
        }
        let tc = PolicyAuthorizer::tencent(engine.clone());
        policy(
            &engine,
            "no-reboot-from-10",
            PolicyGrammar::Cam,
            r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:RebootInstances","resource":"*"},{"effect":"deny","action":"cvm:RebootInstances","resource":"*","condition":{"ip_equal":{"qcs:ip":["10.0.0.0/8"]}}}]}"#,
        )
        .await;
        assert!(
            tc.authorize(&inside, "cvm:RebootInstances", Some("local"))
                .is_ok()
        );
        assert!(
            tc.authorize(&unknown, "cvm:RebootInstances", Some("local"))
                .is_ok()
        );
        let e = tc
            .authorize(&outside, "cvm:RebootInstances", Some("local"))
            .unwrap_err();
        assert!(e.detail.explicit);
    }
}

#[cfg(test)]
mod per_instance {
    use super::*;
    use nubis_core::{DomainError, PolicyGrammar};
    use nubis_engine::IdKind;

    /// Account `team-a` with sub-user `dev` holding `docs` (RAM documents), two instances of
    /// the account (made by its root) and the admin's engine.
    async fn setup(docs: &[&str]) -> (Engine, tempfile::TempDir, Principal, [Instance; 2]) {
        let (engine, dir, root, dev) = super::tests::setup().await;
        for (i, doc) in docs.iter().enumerate() {
            let name = format!("p{i}");
            engine
                .create_policy("team-a", &name, PolicyGrammar::Ram, doc)
                .await
                .unwrap();
            engine
                .set_attached("team-a", "dev", &name, true)
                .await
                .unwrap();
        }
        let mut made = Vec::new();
        for _ in 0..2 {
            made.extend(
                engine
                    .create(&root, "r", nubis_testkit::linux_spec(), false)
                    .await
                    .unwrap(),
            );
        }
        let [a, b]: [Instance; 2] = made.try_into().unwrap();
        (engine, dir, dev, [a, b])
    }

    fn admitted(
        ali: &PolicyAuthorizer,
        dev: &Principal,
        action: &'static str,
        per_resource: bool,
    ) -> Result<Principal, Denied> {
        let guard = ali.authorize_scoped(dev, action, Some("local"), per_resource)?;
        Ok(Principal {
            guard,
            ..dev.clone()
        })
    }

    fn reboot_one(id: &str) -> String {
        format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"ecs:RebootInstance","Resource":"acs:ecs:cn-hangzhou:*:instance/{id}"}}]}}"#
        )
    }

    /// An allow naming one instance: that instance may be rebooted, another is refused with
    /// the policy's reason, listings show only it, and an action that names no instance is
    /// not opened by it.
    #[tokio::test]
    async fn an_allow_naming_an_instance_covers_only_it() {
        let (engine, _d, dev, [a, b]) = setup(&[]).await;
        let doc = reboot_one(&a.aliyun_id);
        engine
            .create_policy("team-a", "one", PolicyGrammar::Ram, &doc)
            .await
            .unwrap();
        engine
            .set_attached("team-a", "dev", "one", true)
            .await
            .unwrap();
        let ali = PolicyAuthorizer::aliyun(engine.clone());
        let p = admitted(&ali, &dev, "ecs:RebootInstance", true).unwrap();
        assert!(p.guard.is_some());
        assert_eq!(
            engine.resolve(&p, IdKind::Aliyun, std::slice::from_ref(&a.aliyun_id)),
            Ok(vec![a.uuid])
        );
        match engine.resolve(&p, IdKind::Aliyun, std::slice::from_ref(&b.aliyun_id)) {
            Err(DomainError::PolicyDenied(m)) => assert!(
                m.contains(&format!(
                    "acs:ecs:cn-hangzhou:1000000000000001:instance/{}",
                    b.aliyun_id
                )),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        let (total, listed) = engine.query(&p, |_| true, 0, 10);
        assert_eq!((total, listed[0].uuid), (1, a.uuid));
        // Without per-resource checking the statement does not count: refused at the gate.
        assert!(admitted(&ali, &dev, "ecs:RebootInstance", false).is_err());
        assert!(admitted(&ali, &dev, "ecs:RunInstances", false).is_err());
        // Another instance's ID in the resource allows nothing on this one.
        assert!(admitted(&ali, &dev, "ecs:StopInstance", true).is_err());
    }

    /// A deny naming instances beats a service-wide allow for those instances only; a
    /// service-wide deny is final at the gate.
    #[tokio::test]
    async fn a_deny_naming_an_instance_refuses_only_it() {
        let (engine, _d, dev, [a, b]) = setup(&[
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}"#,
        ])
        .await;
        let deny = format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Deny","Action":["ecs:StopInstance","ecs:DescribeInstances"],"Resource":"acs:ecs:*:*:instance/{}"}}]}}"#,
            b.aliyun_id
        );
        engine
            .create_policy("team-a", "deny-b", PolicyGrammar::Ram, &deny)
            .await
            .unwrap();
        engine
            .set_attached("team-a", "dev", "deny-b", true)
            .await
            .unwrap();
        let ali = PolicyAuthorizer::aliyun(engine.clone());
        let p = admitted(&ali, &dev, "ecs:StopInstance", true).unwrap();
        assert!(
            engine
                .resolve(&p, IdKind::Aliyun, std::slice::from_ref(&a.aliyun_id))
                .is_ok()
        );
        assert!(matches!(
            engine.resolve(&p, IdKind::Aliyun, std::slice::from_ref(&b.aliyun_id)),
            Err(DomainError::PolicyDenied(_))
        ));
        let p = admitted(&ali, &dev, "ecs:DescribeInstances", true).unwrap();
        let (total, listed) = engine.query(&p, |_| true, 0, 10);
        assert_eq!((total, listed[0].uuid), (1, a.uuid));
        // Actions the deny does not name need no guard.
        assert_eq!(
            admitted(&ali, &dev, "ecs:RebootInstance", true)
                .unwrap()
                .guard,
            None
        );
        // A service-wide explicit deny is final, whatever else names instances.
        engine
            .create_policy(
                "team-a",
                "no-stop",
                PolicyGrammar::Ram,
                r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"ecs:StopInstance","Resource":"*"}]}"#,
            )
            .await
            .unwrap();
        engine
            .set_attached("team-a", "dev", "no-stop", true)
            .await
            .unwrap();
        let e = admitted(&ali, &dev, "ecs:StopInstance", true).unwrap_err();
        assert!(e.detail.explicit);
    }

    /// Tencent names instances by `ins-` ID in the cloud's region name.
    #[tokio::test]
    async fn tencent_resources_use_the_ins_id_and_region_name() {
        let (engine, _d, dev, [a, b]) = setup(&[]).await;
        let doc = format!(
            r#"{{"version":"2.0","statement":[{{"effect":"allow","action":"cvm:RebootInstances","resource":"qcs::cvm:ap-guangzhou:uin/100000000001:instance/{}"}}]}}"#,
            a.tencent_id
        );
        engine
            .create_policy("team-a", "cam-one", PolicyGrammar::Cam, &doc)
            .await
            .unwrap();
        engine
            .set_attached("team-a", "dev", "cam-one", true)
            .await
            .unwrap();
        let tc = PolicyAuthorizer::tencent(engine.clone());
        let guard = tc
            .authorize_scoped(&dev, "cvm:RebootInstances", Some("local"), true)
            .unwrap();
        let p = Principal { guard, ..dev };
        assert!(
            engine
                .resolve(&p, IdKind::Tencent, std::slice::from_ref(&a.tencent_id))
                .is_ok()
        );
        assert!(
            engine
                .resolve(&p, IdKind::Tencent, std::slice::from_ref(&b.tencent_id))
                .is_err()
        );
    }
}
