//! Credential lifecycle over a real SQLite store: the bootstrap environment rotates keys and
//! the admin password across restarts; admin-API keys are created, disabled, enabled and
//! deleted; the last enabled admin key stays; Keystone users are validated and never replaced
//! silently; unknown users cost the same work as wrong passwords.

use nubis_core::KeyOrigin;
use nubis_engine::{CredentialError, Engine, KeyLookup};
use std::path::Path;
use std::time::{Duration, Instant};

async fn start(dir: &Path, key: Option<(&str, &str)>, password: Option<&str>) -> Engine {
    nubis_testkit::engine_in(dir, 0.0, key, password).await
}

/// Restarts `e` with no bootstrap environment; key `id` then looks up as `want` (durable).
async fn restart_and_look_up(e: Engine, dir: &Path, id: &str, want: KeyLookup) -> Engine {
    drop(e);
    let e = start(dir, None, None).await;
    assert_eq!(e.lookup_access_key(id), want, "{id}: durable");
    e
}

fn secret_of(e: &Engine, id: &str) -> Option<String> {
    e.access_key(id).map(|(_, s)| s)
}

#[tokio::test]
async fn changed_secret_for_the_same_id_replaces_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    // Each start (a restart of the last) with this secret and password: the key has the
    // secret. The last start changes nothing, and the secret stays replaced.
    for (secret, password) in [
        ("old-secret", Some("Old@Passw0rd")),
        ("new-secret", Some("Old@Passw0rd")),
        ("new-secret", None),
    ] {
        let e = start(dir.path(), Some(("AKIDboot", secret)), password).await;
        assert_eq!(secret_of(&e, "AKIDboot").as_deref(), Some(secret));
    }
}

#[tokio::test]
async fn changed_key_id_revokes_the_old_bootstrap_key_but_not_admin_api_keys() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path(), Some(("AKIDfirst", "s1")), None).await;
    let (created, created_secret) = e.create_access_key().await.unwrap();
    drop(e);
    let e = start(dir.path(), Some(("AKIDsecond", "s2")), None).await;
    assert_eq!(e.lookup_access_key("AKIDfirst"), KeyLookup::Unknown);
    assert_eq!(secret_of(&e, "AKIDsecond").as_deref(), Some("s2"));
    assert_eq!(
        secret_of(&e, &created.id).as_deref(),
        Some(created_secret.as_str()),
        "keys made through the admin API survive a rotation"
    );
    // Durable: the old key does not come back from the store.
    let e = restart_and_look_up(e, dir.path(), "AKIDfirst", KeyLookup::Unknown).await;
    let ids: Vec<_> = e.access_keys().into_iter().map(|k| k.id).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[tokio::test]
async fn generated_key_is_replaced_by_a_given_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = nubis_testkit::start_in(dir.path(), 0.0).await;
    let generated = e.bootstrap(None, None).await.unwrap().unwrap();
    let (gid, _) = generated.access_key.unwrap();
    drop(e);
    let e = start(dir.path(), Some(("AKIDgiven", "given")), None).await;
    assert_eq!(e.lookup_access_key(&gid), KeyLookup::Unknown);
    assert!(e.access_key("AKIDgiven").is_some());
}

#[tokio::test]
async fn changed_password_replaces_the_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path(), Some(("AKIDboot", "s")), Some("Old@Passw0rd")).await;
    assert!(e.verify_admin_password("Old@Passw0rd").await);
    let old_stamp = e.keystone_stamp("admin").unwrap();
    drop(e);
    let e = start(dir.path(), Some(("AKIDboot", "s")), Some("New@Passw0rd")).await;
    assert!(!e.verify_admin_password("Old@Passw0rd").await);
    assert!(e.verify_admin_password("New@Passw0rd").await);
    assert_ne!(e.keystone_stamp("admin").unwrap(), old_stamp);
    drop(e);
    // Unchanged env: the stored hash is kept (same stamp).
    let e = start(dir.path(), Some(("AKIDboot", "s")), Some("New@Passw0rd")).await;
    let stamp = e.keystone_stamp("admin").unwrap();
    drop(e);
    let e = start(dir.path(), Some(("AKIDboot", "s")), Some("New@Passw0rd")).await;
    assert_eq!(e.keystone_stamp("admin").unwrap(), stamp);
}

#[tokio::test]
async fn access_key_lifecycle_and_the_last_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path(), Some(("AKIDboot", "s")), None).await;
    // The only key can be neither disabled nor deleted.
    assert!(matches!(
        e.set_access_key_enabled("AKIDboot", false).await,
        Err(CredentialError::Conflict(_))
    ));
    assert!(matches!(
        e.delete_access_key("AKIDboot").await,
        Err(CredentialError::Conflict(_))
    ));
    let (k, secret) = e.create_access_key().await.unwrap();
    assert_eq!(k.origin, KeyOrigin::AdminApi);
    assert!(k.id.starts_with("AKID") && k.id.len() == 36, "{}", k.id);
    assert_eq!(secret_of(&e, &k.id).as_deref(), Some(secret.as_str()));
    // Now the bootstrap key may be disabled, and then the new one is the last.
    e.set_access_key_enabled("AKIDboot", false).await.unwrap();
    assert_eq!(e.lookup_access_key("AKIDboot"), KeyLookup::Disabled);
    assert!(e.access_key("AKIDboot").is_none());
    assert!(matches!(
        e.delete_access_key(&k.id).await,
        Err(CredentialError::Conflict(_))
    ));
    // A disabled key may go.
    let e = restart_and_look_up(e, dir.path(), "AKIDboot", KeyLookup::Disabled).await;
    e.delete_access_key("AKIDboot").await.unwrap();
    assert_eq!(e.lookup_access_key("AKIDboot"), KeyLookup::Unknown);
    assert!(matches!(
        e.delete_access_key("AKIDboot").await,
        Err(CredentialError::NotFound(_))
    ));
    let e = restart_and_look_up(e, dir.path(), "AKIDboot", KeyLookup::Unknown).await;
    assert_eq!(e.access_keys().len(), 1);
}

#[tokio::test]
async fn concurrent_disables_leave_one_key_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path(), Some(("AKIDboot", "s")), None).await;
    let (k, _) = e.create_access_key().await.unwrap();
    let (a, b) = tokio::join!(
        e.set_access_key_enabled("AKIDboot", false),
        e.set_access_key_enabled(&k.id, false)
    );
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    assert_eq!(e.access_keys().iter().filter(|k| k.enabled).count(), 1);
}

#[tokio::test]
async fn keystone_users_are_checked_and_never_replaced_silently() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path(), Some(("AKIDboot", "s")), None).await;
    let reader = || vec!["reader".to_string()];
    for (name, pw) in [
        ("empty-password", ""),
        ("", "Auditor@2026pw"),
        ("a:b", "Auditor@2026pw"),
        ("line\nbreak", "Auditor@2026pw"),
        ("ctl\u{7}", "Auditor@2026pw"),
        (&"x".repeat(256), "Auditor@2026pw"),
    ] {
        assert!(
            matches!(
                e.add_keystone_user(name, pw, reader()).await,
                Err(CredentialError::Invalid { .. })
            ),
            "{name:?}/{pw:?}"
        );
    }
    assert!(e.keystone_users().is_empty());
    e.add_keystone_user(&"x".repeat(255), "Auditor@2026pw", reader())
        .await
        .unwrap();
    e.add_keystone_user("auditor", "Auditor@2026pw", reader())
        .await
        .unwrap();
    assert!(matches!(
        e.add_keystone_user("auditor", "Other@2026pw", vec!["admin".into()])
            .await,
        Err(CredentialError::Conflict(_))
    ));
    assert_eq!(
        e.verify_keystone_user("auditor", "Auditor@2026pw").await,
        Some(reader()),
        "the first user is untouched"
    );
    let stamp = e.keystone_stamp("auditor").unwrap();
    e.update_keystone_user("auditor", Some("Changed@2026pw"), None)
        .await
        .unwrap();
    assert_ne!(e.keystone_stamp("auditor").unwrap(), stamp);
    assert_eq!(
        e.verify_keystone_user("auditor", "Auditor@2026pw").await,
        None
    );
    assert!(
        e.verify_keystone_user("auditor", "Changed@2026pw")
            .await
            .is_some()
    );
    e.delete_keystone_user("auditor").await.unwrap();
    assert!(e.keystone_stamp("auditor").is_none());
    drop(e);
    let e = start(dir.path(), None, None).await;
    assert_eq!(e.keystone_users().len(), 1, "the delete is durable");
    assert!(matches!(
        e.update_keystone_user("auditor", None, None).await,
        Err(CredentialError::NotFound(_))
    ));
}

/// An unknown user costs the same work as a wrong password (one SHA-crypt verification).
#[tokio::test]
async fn unknown_user_costs_what_a_wrong_password_costs() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path(), Some(("AKIDboot", "s")), None).await;
    e.add_keystone_user("auditor", "Auditor@2026pw", vec!["reader".into()])
        .await
        .unwrap();
    // Warm the dummy hash.
    e.verify_keystone_user("nobody", "x").await;
    // Interleaved, and compared by their fastest attempt: load on the machine only ever
    // adds time, so the minimum of many attempts is the work itself (a mean let one
    // preempted attempt fail the test on a busy CI machine).
    const N: u32 = 30;
    let (mut wrong, mut unknown) = (Duration::MAX, Duration::MAX);
    for _ in 0..N {
        for (user, fastest) in [("auditor", &mut wrong), ("nobody", &mut unknown)] {
            let t = Instant::now();
            assert!(
                e.verify_keystone_user(user, "Wrong@2026pw").await.is_none(),
                "{user}"
            );
            *fastest = (*fastest).min(t.elapsed());
        }
    }
    eprintln!("wrong password {wrong:?}, unknown user {unknown:?} (fastest of {N})");
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
    assert!(
        unknown > Duration::from_micros(200),
        "{unknown:?}: no hash work done"
    );
}
