//! The resource names the policy grammars match, built the way each cloud writes them, so a
//! dialect names an instance once and CAM/RAM statements match it.

/// A Tencent resource name: `qcs::<service>:<region>:uin/<owner>:<type>/<id>` (the project
/// field is left empty, as CAM's examples do).
pub fn qcs(service: &str, region: &str, owner_uin: u64, kind: &str, id: &str) -> String {
    format!("qcs::{service}:{region}:uin/{owner_uin}:{kind}/{id}")
}

/// An Alibaba resource name: `acs:<service>:<region>:<account>:<type>/<id>`.
pub fn acs(service: &str, region: &str, account_id: &str, kind: &str, id: &str) -> String {
    format!("acs:{service}:{region}:{account_id}:{kind}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{cam, ram};

    #[test]
    fn names_match_the_grammars_resources() {
        let q = qcs(
            "cvm",
            "ap-guangzhou",
            100000000001,
            "instance",
            "ins-abcdefgh",
        );
        assert_eq!(
            q,
            "qcs::cvm:ap-guangzhou:uin/100000000001:instance/ins-abcdefgh"
        );
        let doc = format!(
            r#"{{"version":"2.0","statement":[{{"effect":"allow","action":"cvm:A","resource":"{q}"}}]}}"#
        );
        assert!(cam::compile("p", &doc).unwrap().statements[0].resources[0].matches(&q));

        let a = acs("ecs", "cn-hangzhou", "1234567890", "instance", "i-bp1abc");
        assert_eq!(a, "acs:ecs:cn-hangzhou:1234567890:instance/i-bp1abc");
        let doc = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:A","Resource":"acs:ecs:*:*:instance/*"}]}"#;
        assert!(ram::compile("p", doc).unwrap().statements[0].resources[0].matches(&a));
    }
}
