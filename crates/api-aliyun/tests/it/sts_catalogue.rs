//! The committed catalogues of the RAM role/MFA actions and of STS (docs/catalogue/) are
//! their registries' (regenerate with `NUBIS_UPDATE_CATALOGUE=1`).

#[test]
fn sts_and_ram_catalogues_match_their_registries() {
    use nubis_api_aliyun::{SERVICES, ram, sts};
    nubis_testkit::check_served(&SERVICES, &[&sts::REGISTRY, &ram::REGISTRY]);
}
