//! The pipeline's [`Authorizer`] for the Tencent and Alibaba APIs: CAM / RAM policies of the
//! caller's account, evaluated by `nubis_identity::evaluate` (through the engine, which holds
//! them compiled).
//!
//! The gate runs before the request's parameters are parsed, so the resources a request
//! names are not known here: the decision is about the service-level resource of the
//! principal's account in the request's region — `qcs::cvm:<region>:uin/<owner>:*` and
//! `acs:ecs:<region>:<account>:*`. A statement therefore applies only if its `resource` is
//! `*` or a wildcard that covers that name (`qcs::cvm:*:*:*`, `acs:ecs:*:*:*`, …); a
//! statement naming particular instances (`…:instance/ins-1`, `…:instance/*`) matches
//! nothing yet — neither to allow nor to deny — until resource-level authorization arrives.
//! Conditions see the request time and the credential's MFA time; the source address and
//! tags are not passed yet, so a condition on them does not hold (docs/identity.md
//! "Wiring"). Tencent operation protection (D6, D8) is decided here too, by the same
//! evaluation; the dialect renders its `MfaDenial`.

use nubis_core::Principal;
use nubis_engine::Engine;
use nubis_identity::{Decision, Denied as Why, MfaSource, OperationProtection, RequestContext};
use nubis_pipeline::{Authorizer, Denied, DenyDetail, MfaDenial};

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

/// The service-level resource name of `service` for the account in `region` (see the
/// module docs), and the account's number in this cloud.
fn service_resource(
    cloud: Cloud,
    service: &str,
    region: &str,
    account: &nubis_core::Account,
) -> (String, String) {
    match cloud {
        Cloud::Tencent => {
            let uin = account.tencent_owner_uin.to_string();
            (format!("qcs::{service}:{region}:uin/{uin}:*"), uin)
        }
        Cloud::Aliyun => (
            format!("acs:{service}:{region}:{}:*", account.aliyun_account_id),
            account.aliyun_account_id.clone(),
        ),
    }
}

impl Authorizer for PolicyAuthorizer {
    fn authorize(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        region: Option<&str>,
    ) -> Result<(), Denied> {
        // The bootstrap admin and account roots need no policy (tenancy is
        // `Principal::sees`'s, when resources are touched); sub-users and role sessions do.
        if principal.is_root() || NEEDS_NO_PERMISSION.contains(&policy_action) {
            return Ok(());
        }
        let service = policy_action.split_once(':').map_or("", |(s, _)| s);
        let (resource, owner_id) = match self.engine.account(&principal.account) {
            Some(a) => service_resource(self.cloud, service, region.unwrap_or(""), &a),
            None => (String::new(), String::new()),
        };
        let context = RequestContext::at(time::OffsetDateTime::now_utc());
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
                owner_id,
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

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_core::PolicyGrammar;

    const READ_ONLY_CAM: &str = r#"{"version":"2.0","statement":[{"effect":"allow","action":["cvm:Describe*"],"resource":"*"}]}"#;

    async fn setup() -> (Engine, tempfile::TempDir, Principal, Principal) {
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
                tc.authorize(p, "cvm:RebootInstances", Some("ap-guangzhou"))
                    .is_ok()
            );
            assert!(
                ali.authorize(p, "ecs:RebootInstance", Some("cn-hangzhou"))
                    .is_ok()
            );
        }
        // No policy: everything refused, implicitly.
        let e = tc
            .authorize(&dev, "cvm:DescribeInstances", Some("ap-guangzhou"))
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
            tc.authorize(&dev, "cvm:DescribeInstances", Some("ap-guangzhou"))
                .is_ok()
        );
        assert!(tc.authorize(&dev, "cvm:DescribeInstances", None).is_ok());
        assert!(
            tc.authorize(&dev, "cvm:RebootInstances", Some("ap-guangzhou"))
                .is_err()
        );
        let e = ali
            .authorize(&dev, "ecs:DescribeInstances", Some("cn-hangzhou"))
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
            .authorize(&dev, "cvm:DescribeInstances", Some("ap-guangzhou"))
            .unwrap_err();
        assert!(e.detail.explicit);
        assert!(
            tc.authorize(&dev, "cvm:DescribeImages", Some("ap-guangzhou"))
                .is_ok()
        );
        // Detaching the deny gives the permission back.
        engine
            .set_attached("team-a", "dev", "no-describe", false)
            .await
            .unwrap();
        assert!(
            tc.authorize(&dev, "cvm:DescribeInstances", Some("ap-guangzhou"))
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
            ali.authorize(&dev, "ecs:RebootInstance", Some("cn-hangzhou"))
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
            ali.authorize(&dev, "ecs:RebootInstance", Some("cn-hangzhou"))
                .is_ok()
        );
        assert!(
            ali.authorize(&dev, "ecs:StopInstance", Some("cn-hangzhou"))
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
            ali.authorize(&dev, "ecs:RebootInstance", Some("cn-hangzhou"))
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
}
