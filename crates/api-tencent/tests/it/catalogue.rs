//! The committed action catalogue (docs/catalogue/tencent-cvm.md) is the registry's: a test
//! fails when they drift (regenerate with `NUBIS_UPDATE_CATALOGUE=1`).

use nubis_api_tencent::{ACTIONS, REGISTRY, rate_limit};

#[test]
fn catalogue_matches_the_registry() {
    nubis_testkit::check_catalogue(&REGISTRY, &[]);
}

#[test]
fn derived_lists_follow_the_registry() {
    assert_eq!(REGISTRY.names().collect::<Vec<_>>(), ACTIONS);
    for a in REGISTRY.actions {
        assert_eq!(rate_limit(a.name), a.rate_limit);
        assert_eq!(REGISTRY.label(a.name), Some(a.name));
    }
    assert_eq!(rate_limit("NoSuchAction"), 0);
    assert_eq!(REGISTRY.label("NoSuchAction"), None);
}

#[test]
fn cloudaudit_catalogue_matches_its_registry() {
    nubis_testkit::check_catalogue(&nubis_api_tencent::cloudaudit::REGISTRY, &[]);
}
