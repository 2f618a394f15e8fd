//! The committed catalogues (docs/catalogue/openstack-*.md) are the registries' own: a test
//! fails when code and file drift (regenerate: `NUBIS_UPDATE_CATALOGUE=1 cargo test --release
//! -p nubis-api-openstack --test it catalogue::`).

use nubis_api_openstack::{COMPUTE, IDENTITY, IMAGE, catalogue_columns};
use nubis_testkit::check_catalogue;

#[test]
fn identity_catalogue_matches_the_registry() {
    check_catalogue(&IDENTITY, &catalogue_columns());
}

#[test]
fn compute_catalogue_matches_the_registry() {
    check_catalogue(&COMPUTE, &catalogue_columns());
}

#[test]
fn image_catalogue_matches_the_registry() {
    check_catalogue(&IMAGE, &catalogue_columns());
}
