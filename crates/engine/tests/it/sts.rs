//! Temporary credentials, roles, MFA devices and operation protection over a real SQLite
//! store (issue 13: D4–D9): every refusal of a temporary credential, durability across a
//! restart, the sweep, a code accepted once, role sessions narrowed by their session policy,
//! operation protection's two MFA refusals.

use nubis_core::{MfaFactors, PolicyGrammar, Principal, RoleRecord};
use nubis_engine::{
    AssumeRole, CredentialError, Engine, IssuedCredential, Issuer, MfaRefusal, NewAccount,
    TempRefusal, unbase32,
};
use nubis_identity::totp::{self, TotpParams};
use nubis_identity::{Decision, Denied, MfaSource, OperationProtection, RequestContext};
use std::path::Path;

const ALL_CVM: &str =
    r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:*","resource":"*"}]}"#;
const READ_CVM: &str =
    r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:Describe*","resource":"*"}]}"#;
const TRUST: &str = r#"{"version":"2.0","statement":[{"action":"name/sts:AssumeRole","effect":"allow","principal":{"qcs":["qcs::cam::uin/100000000001:root"]}}]}"#;

fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() * 1000
}

async fn start(dir: &Path) -> Engine {
    nubis_testkit::engine_in(dir, 0.0, Some(("AKIDtest", "secret")), None).await
}

/// An account `team` with sub-user `dev` (all of CVM allowed) and its key's principal.
async fn team(e: &Engine) -> Principal {
    e.create_account(NewAccount {
        name: "team".into(),
        tencent_owner_uin: Some(100000000001),
        ..Default::default()
    })
    .await
    .unwrap();
    e.create_sub_user("team", "dev").await.unwrap();
    e.create_policy("team", "all", PolicyGrammar::Cam, ALL_CVM)
        .await
        .unwrap();
    e.set_attached("team", "dev", "all", true).await.unwrap();
    let (k, _) = e
        .create_access_key_for(Some("team"), Some("dev"))
        .await
        .unwrap();
    e.access_key(&k.id).unwrap().0
}

/// A new engine in a temporary directory with [`team`]: the directory, the engine, `dev`.
async fn with_team() -> (tempfile::TempDir, Engine, Principal) {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path()).await;
    let dev = team(&e).await;
    (dir, e, dev)
}

/// A session token of `p` for `secs` seconds (GetSessionToken).
async fn session_token(
    e: &Engine,
    p: &Principal,
    issuer: Issuer,
    secs: u64,
    mfa_at_ms: Option<i64>,
) -> IssuedCredential {
    e.issue_session_token(p, issuer, secs, mfa_at_ms)
        .await
        .unwrap()
}

/// Session `s1` of `role` for 900 seconds, narrowed by `policy`, without MFA.
fn assume_request<'a>(role: &'a RoleRecord, policy: Option<&'a str>) -> AssumeRole<'a> {
    AssumeRole {
        role,
        session_name: "s1",
        duration_secs: 900,
        policy,
        mfa_at_ms: None,
    }
}

fn ask(e: &Engine, p: &Principal, action: &str, validity_secs: i64) -> Decision {
    let mut prot = OperationProtection::tencent();
    prot.validity = time::Duration::seconds(validity_secs);
    e.authorize_with(
        p,
        action,
        "qcs::cvm:ap-guangzhou:uin/100000000001:*",
        RequestContext::at(time::OffsetDateTime::now_utc()),
        Some(&prot),
    )
}

fn code_now(seed_b32: &str, offset_steps: i64) -> String {
    let seed = unbase32(seed_b32).unwrap();
    let t = time::OffsetDateTime::now_utc().unix_timestamp() + offset_steps * 30;
    totp::generate(&seed, &TotpParams::default(), t).unwrap()
}

#[tokio::test]
async fn temporary_credential_refusals_and_durability() {
    let (dir, e, dev) = with_team().await;
    let c = session_token(&e, &dev, Issuer::Tencent, 60, None).await;
    assert!(c.id.starts_with("AKID") && c.id.len() == 36);
    let now = now_ms();
    let (p, secret) = e.temp_credential(&c.id, Some(&c.token), now).unwrap();
    assert_eq!(secret, c.secret);
    assert_eq!(p.sub_user, dev.sub_user);
    assert_eq!(p.credential, c.id);
    assert!(p.session.as_ref().is_some_and(|s| s.mfa_at_ms.is_none()));
    assert_eq!(
        e.temp_credential(&c.id, None, now),
        Err(TempRefusal::MissingToken)
    );
    assert_eq!(
        e.temp_credential(&c.id, Some("junk"), now),
        Err(TempRefusal::Malformed)
    );
    let other = session_token(&e, &dev, Issuer::Aliyun, 60, None).await;
    assert!(other.id.starts_with("STS."));
    assert_eq!(
        e.temp_credential(&c.id, Some(&other.token), now),
        Err(TempRefusal::Mismatch)
    );
    assert_eq!(
        e.temp_credential(&c.id, Some(&c.token), c.expires_at_ms),
        Err(TempRefusal::Expired)
    );
    assert_eq!(
        e.temp_credential("AKIDunknown", Some(&c.token), now),
        Err(TempRefusal::Unknown)
    );
    // A restarted server honours it (the token itself is not stored, only its hash).
    drop(e);
    let e = start(dir.path()).await;
    assert!(e.temp_credential(&c.id, Some(&c.token), now_ms()).is_ok());
    let db = std::fs::read(dir.path().join("nubis.db")).unwrap();
    let hay = String::from_utf8_lossy(&db);
    assert!(
        !hay.contains(&c.token) && !hay.contains(&c.secret),
        "no token or secret in clear"
    );
}

#[tokio::test]
async fn an_expired_credential_is_kept_during_the_sweep_grace() {
    let (dir, e, dev) = with_team().await;
    // A zero duration expires at once (the API's minimum forbids it; the engine does not
    // care).
    let old = session_token(&e, &dev, Issuer::Tencent, 0, None).await;
    assert_eq!(
        e.temp_credential(&old.id, Some(&old.token), old.expires_at_ms),
        Err(TempRefusal::Expired)
    );
    // The next issue sweeps only what expired more than the grace ago.
    session_token(&e, &dev, Issuer::Tencent, 60, None).await;
    assert!(e.is_temp_credential(&old.id), "kept during the grace");
    drop(e);
    let e = start(dir.path()).await;
    assert!(
        e.is_temp_credential(&old.id),
        "kept across a restart during the grace"
    );
}

#[tokio::test]
async fn mfa_codes_are_accepted_once_and_operation_protection_answers_both_codes() {
    let (dir, e, dev) = with_team().await;
    let serial = nubis_engine::tencent_serial(100000000001);
    // No device yet.
    assert_eq!(
        e.verify_mfa_code(&dev, &serial, "123456").await,
        Err(MfaRefusal::NoDevice)
    );
    let (bound_serial, seed) = e.bind_soft_token("team", "dev").await.unwrap();
    assert_eq!(bound_serial, serial);
    assert!(matches!(
        e.bind_soft_token("team", "dev").await,
        Err(CredentialError::Conflict(_))
    ));
    let code = code_now(&seed, 0);
    let mfa_at = e.verify_mfa_code(&dev, &serial, &code).await.unwrap();
    assert_eq!(
        e.verify_mfa_code(&dev, &serial, &code).await,
        Err(MfaRefusal::WrongCode),
        "a code is accepted once"
    );
    // Operation protection off: the policy decides.
    assert!(ask(&e, &dev, "cvm:ResetInstancesPassword", 1800).is_allowed());
    e.set_mfa_flags(
        dev.sub_user.unwrap(),
        None,
        Some(MfaFactors {
            stoken: 1,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        ask(&e, &dev, "cvm:ResetInstancesPassword", 1800),
        Decision::Deny(Denied::MfaNotFound(MfaSource::OperationProtection))
    );
    assert!(ask(&e, &dev, "cvm:DescribeInstances", 1800).is_allowed());
    let c = session_token(&e, &dev, Issuer::Tencent, 600, Some(mfa_at - 10_000)).await;
    let (session, _) = e.temp_credential(&c.id, Some(&c.token), now_ms()).unwrap();
    assert!(ask(&e, &session, "cvm:AssociateInstancesKeyPairs", 1800).is_allowed());
    assert!(matches!(
        ask(&e, &session, "cvm:AssociateInstancesKeyPairs", 5),
        Decision::Deny(Denied::MfaExpired { .. })
    ));
    // Flags are durable.
    drop(e);
    let e = start(dir.path()).await;
    assert_eq!(e.mfa_flags(dev.sub_user.unwrap()).action.stoken, 1);
}

#[tokio::test]
async fn role_sessions_are_allowed_what_the_role_and_the_session_policy_allow() {
    let (dir, e, dev) = with_team().await;
    let role = e
        .create_role("team", "reader", PolicyGrammar::Cam, TRUST, "", 3600)
        .await
        .unwrap();
    assert!(matches!(
        e.create_role("team", "reader", PolicyGrammar::Cam, TRUST, "", 3600)
            .await,
        Err(CredentialError::Conflict(_))
    ));
    assert!(matches!(
        e.create_role("team", "bad", PolicyGrammar::Cam, "[1]", "", 3600)
            .await,
        Err(CredentialError::Invalid { .. })
    ));
    e.create_policy("team", "read", PolicyGrammar::Cam, READ_CVM)
        .await
        .unwrap();
    let read = e.policy("team", "read").unwrap().id;
    e.set_role_policy("team", role.id, read, true)
        .await
        .unwrap();
    assert!(matches!(
        e.set_role_policy("team", role.id, read, true).await,
        Err(CredentialError::Conflict(_))
    ));
    assert!(
        matches!(
            e.delete_policy("team", "read").await,
            Err(CredentialError::Conflict(_))
        ),
        "a policy attached to a role is not deleted under it"
    );
    let role = e.role_by_id("team", role.id).unwrap();
    assert!(e.may_assume(&dev, &role));
    let assume = |policy: Option<&'static str>| {
        let e = e.clone();
        let dev = dev.clone();
        let role = role.clone();
        async move {
            let c = e
                .assume_role(&dev, Issuer::Tencent, assume_request(&role, policy))
                .await
                .unwrap();
            e.temp_credential(&c.id, Some(&c.token), now_ms())
                .unwrap()
                .0
        }
    };
    let session = assume(None).await;
    assert!(session.role().is_some() && !session.is_root());
    assert!(ask(&e, &session, "cvm:DescribeZones", 1800).is_allowed());
    assert!(!ask(&e, &session, "cvm:RebootInstances", 1800).is_allowed());
    let narrow = assume(Some(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:DescribeInstances","resource":"*"}]}"#,
    ))
    .await;
    assert!(ask(&e, &narrow, "cvm:DescribeInstances", 1800).is_allowed());
    assert!(!ask(&e, &narrow, "cvm:DescribeZones", 1800).is_allowed());
    // A session policy that does not compile is refused.
    assert!(matches!(
        e.assume_role(&dev, Issuer::Tencent, assume_request(&role, Some("{}")))
            .await,
        Err(CredentialError::Invalid { .. })
    ));
    // Roles are durable.
    drop(e);
    let e = start(dir.path()).await;
    assert_eq!(
        e.role_by_name("team", "reader").unwrap().policies,
        vec![read]
    );
}

#[tokio::test]
async fn virtual_mfa_devices_bind_with_two_successive_codes() {
    let (_dir, e, _) = with_team().await;
    let (serial, seed) = e.create_virtual_mfa("team", "phone").await.unwrap();
    assert!(serial.ends_with(":mfa/phone"));
    assert!(matches!(
        e.create_virtual_mfa("team", "phone").await,
        Err(CredentialError::Conflict(_))
    ));
    assert!(matches!(
        e.bind_virtual_mfa("team", &serial, "dev", "000000", "000000")
            .await,
        Err(CredentialError::Invalid { .. })
    ));
    // The same code twice is not two successive codes.
    let now = code_now(&seed, 0);
    assert!(
        e.bind_virtual_mfa("team", &serial, "dev", &now, &now)
            .await
            .is_err()
    );
    e.bind_virtual_mfa("team", &serial, "dev", &code_now(&seed, -1), &now)
        .await
        .unwrap();
    assert!(matches!(
        e.bind_virtual_mfa("team", &serial, "dev", &code_now(&seed, -1), &now)
            .await,
        Err(CredentialError::Conflict(_))
    ));
}
