//! The committed catalogues (docs/catalogue/openstack-*.md) are the registries' own: a test
//! fails when code and file drift (regenerate: `NUBIS_UPDATE_CATALOGUE=1 cargo test --release
//! -p nubis-api-openstack --test catalogue`).

use nubis_api_openstack::{COMPUTE, IDENTITY, IMAGE, catalogue_columns};
use std::path::PathBuf;

fn doc(service: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/catalogue")
        .join(format!("openstack-{service}.md"))
}

#[test]
fn identity_catalogue_matches_the_registry() {
    IDENTITY.validate().unwrap();
    IDENTITY
        .check_catalogue_with(&doc("identity"), &catalogue_columns())
        .unwrap();
}

#[test]
fn compute_catalogue_matches_the_registry() {
    COMPUTE.validate().unwrap();
    COMPUTE
        .check_catalogue_with(&doc("compute"), &catalogue_columns())
        .unwrap();
}

#[test]
fn image_catalogue_matches_the_registry() {
    IMAGE.validate().unwrap();
    IMAGE
        .check_catalogue_with(&doc("image"), &catalogue_columns())
        .unwrap();
}
