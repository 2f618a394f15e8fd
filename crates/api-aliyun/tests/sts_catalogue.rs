//! The committed catalogues of the RAM role/MFA actions and of STS (docs/catalogue/) are
//! their registries' (regenerate with `NUBIS_UPDATE_CATALOGUE=1`).

#[test]
fn sts_and_ram_catalogues_match_their_registries() {
    nubis_testkit::check_catalogue(&nubis_api_aliyun::sts::REGISTRY, &[]);
    nubis_testkit::check_catalogue(&nubis_api_aliyun::ram::REGISTRY, &[]);
    for r in [
        &nubis_api_aliyun::sts::REGISTRY,
        &nubis_api_aliyun::ram::REGISTRY,
    ] {
        assert!(r.validate().is_ok());
        assert!(nubis_api_aliyun::SERVICES.serves(r.version));
    }
}
