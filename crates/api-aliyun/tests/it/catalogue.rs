//! The committed action catalogue (docs/catalogue/aliyun-ecs.md) is what the registry
//! declares; regenerate with `NUBIS_UPDATE_CATALOGUE=1 cargo test --release -p
//! nubis-api-aliyun --test it catalogue::`.

use nubis_api_aliyun::{ACTIONS, REGISTRY, rate_limit};
use nubis_pipeline::RegionUse;

#[test]
fn catalogue_matches_the_registry() {
    nubis_testkit::check_catalogue(&REGISTRY, &[]);
}

/// The conventions the declarations follow: RAM's `ecs:<Action>`, the SDKs' `<Action>Request`
/// model, reads never mutate and get the read quota, and the derived lists agree.
#[test]
fn declarations_follow_ecs_conventions() {
    assert_eq!(REGISTRY.version, "2014-05-26");
    assert_eq!(ACTIONS, REGISTRY.names().collect::<Vec<_>>());
    for a in REGISTRY.actions {
        assert_eq!(a.policy, format!("ecs:{}", a.name), "{}", a.name);
        assert_eq!(a.params, format!("{}Request", a.name), "{}", a.name);
        assert_ne!(
            a.region,
            RegionUse::Required,
            "{}: ECS checks RegionId late",
            a.name
        );
        let read = a.name.starts_with("Describe")
            || a.name.starts_with("Get")
            || a.name.starts_with("List");
        assert_eq!(a.mutates, !read, "{}", a.name);
        assert_eq!(a.rate_limit, if read { 40 } else { 20 }, "{}", a.name);
        assert_eq!(rate_limit(a.name), a.rate_limit);
    }
    assert_eq!(rate_limit("NoSuchAction"), 0);
}

#[test]
fn actiontrail_catalogue_matches_its_registry() {
    nubis_testkit::check_catalogue(&nubis_api_aliyun::actiontrail::REGISTRY, &[]);
}
