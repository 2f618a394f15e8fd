//! The committed catalogues of the CAM role/MFA actions and of STS (docs/catalogue/) are
//! their registries' (regenerate with `NUBIS_UPDATE_CATALOGUE=1`).

#[test]
fn sts_and_cam_catalogues_match_their_registries() {
    use nubis_api_tencent::{SERVICES, cam, sts};
    nubis_testkit::check_served(&SERVICES, &[&sts::REGISTRY, &cam::REGISTRY]);
}
