//! The committed catalogues of the CAM role/MFA actions and of STS (docs/catalogue/) are
//! their registries' (regenerate with `NUBIS_UPDATE_CATALOGUE=1`).

#[test]
fn sts_and_cam_catalogues_match_their_registries() {
    nubis_testkit::check_catalogue(&nubis_api_tencent::sts::REGISTRY, &[]);
    nubis_testkit::check_catalogue(&nubis_api_tencent::cam::REGISTRY, &[]);
    for r in [
        &nubis_api_tencent::sts::REGISTRY,
        &nubis_api_tencent::cam::REGISTRY,
    ] {
        assert!(r.validate().is_ok());
        assert!(nubis_api_tencent::SERVICES.serves(r.version));
    }
}
