//! Every action the registry declares × the checks the pipeline makes before any work:
//! signature, region, rate limit, authorization, unknown parameters, DryRun. It walks
//! `REGISTRY` itself (every_action.rs walks a hand-written table with TC3 bodies), so an action
//! is covered the moment it is declared; requests are legacy-signed (HmacSHA256 GET).

use crate::legacy::{self, Client, REGION, code};
use nubis_api_tencent::REGISTRY;
use nubis_pipeline::RegionUse;
use nubis_testkit::DenyAll;

/// A valid request of each action that takes DryRun (must name every one that declares it);
/// `$INSTANCE` and `$IMAGE` stand for an instance and a private image the test makes first.
const DRY_RUN: &[(&str, &[(&str, &str)])] = &[
    (
        "RunInstances",
        &[
            ("Placement.Zone", "ap-guangzhou-3"),
            ("ImageId", "img-tos31x64"),
        ],
    ),
    (
        "CreateImage",
        &[("InstanceId", "$INSTANCE"), ("ImageName", "dry-run")],
    ),
    ("DeleteImages", &[("ImageIds.0", "$IMAGE")]),
];

#[tokio::test]
async fn a_bad_signature_is_refused_by_every_action() {
    let c = Client::new(true, |a| a).await;
    for a in REGISTRY.actions {
        let v = c.call_as("wrong", a.name, Some(REGION), &[]).await;
        assert_eq!(code(&v), Some("AuthFailure.SignatureFailure"), "{}", a.name);
    }
}

#[tokio::test]
async fn an_unknown_parameter_is_refused_by_every_action() {
    let c = Client::new(false, |a| a).await;
    for a in REGISTRY.actions {
        let v = c.call(a.name, &[("NoSuchParameter", "1")]).await;
        assert_eq!(code(&v), Some("UnknownParameter"), "{}: {v}", a.name);
    }
}

#[tokio::test]
async fn the_region_is_required_where_declared_and_checked_everywhere() {
    let c = Client::new(false, |a| a).await;
    for a in REGISTRY.actions {
        let v = c.call_as(legacy::SECRET, a.name, None, &[]).await;
        let missing = code(&v) == Some("MissingParameter")
            && v["Response"]["Error"]["Message"] == "the parameter `Region` is required";
        assert_eq!(missing, a.region == RegionUse::Required, "{}: {v}", a.name);
        let v = c
            .call_as(legacy::SECRET, a.name, Some("xx-nowhere"), &[])
            .await;
        assert_eq!(code(&v), Some("UnsupportedRegion"), "{}", a.name);
    }
}

/// The declared quota is exactly what an account gets: `rate_limit` requests in a burst pass
/// the limiter (even malformed ones: it counts before any work), a few more are refused.
#[tokio::test]
async fn every_action_is_throttled_at_its_declared_limit() {
    let c = Client::new(true, |a| a).await;
    for a in REGISTRY.actions {
        assert!(a.rate_limit > 0, "{} declares no limit", a.name);
        for i in 0..a.rate_limit {
            let v = c.call(a.name, &[("Bad", "1")]).await;
            assert_ne!(
                code(&v),
                Some("RequestLimitExceeded"),
                "{} call {i}",
                a.name
            );
        }
        let mut limited = false;
        for _ in 0..5 {
            let v = c.call(a.name, &[("Bad", "1")]).await;
            if code(&v) == Some("RequestLimitExceeded") {
                assert_eq!(
                    v["Response"]["Error"]["Message"],
                    format!("the request rate of {} exceeds the limit", a.name)
                );
                limited = true;
                break;
            }
        }
        assert!(
            limited,
            "{} never hit its limit of {}/s",
            a.name, a.rate_limit
        );
    }
}

#[tokio::test]
async fn every_action_asks_its_cam_policy_and_renders_the_refusal() {
    let asked = DenyAll::default();
    let deny = asked.clone();
    let c = Client::new(false, |a| a.with_authorizer(deny)).await;
    for a in REGISTRY.actions {
        let v = c.call(a.name, &[]).await;
        assert_eq!(
            code(&v),
            Some("AuthFailure.UnauthorizedOperation"),
            "{}",
            a.name
        );
        let message = v["Response"]["Error"]["Message"].as_str().unwrap_or("");
        assert!(
            message.contains(&format!("operation (cvm:{})", a.name)),
            "{message}"
        );
        assert_eq!(asked.pop(), Some(a.policy));
        assert_eq!(a.policy, format!("cvm:{}", a.name));
    }
}

/// DryRun is accepted exactly where declared: there a valid request answers DryRunOperation
/// and changes nothing; everywhere else the parameter is unknown.
#[tokio::test]
async fn dry_run_is_honoured_exactly_where_declared() {
    let c = Client::new(false, |a| a).await;
    let v = c
        .call(
            "RunInstances",
            &[
                ("Placement.Zone", "ap-guangzhou-3"),
                ("ImageId", "img-tos31x64"),
            ],
        )
        .await;
    let instance = v["Response"]["InstanceIdSet"][0]
        .as_str()
        .unwrap_or_else(|| panic!("RunInstances: {v}"))
        .to_string();
    // An image is made of a settled instance (and deleted once made).
    async fn wait_for(c: &Client, action: &str, params: &[(&str, &str)], at: &str, want: &str) {
        for _ in 0..500 {
            let v = c.call(action, params).await;
            if v.pointer(at).and_then(|s| s.as_str()) == Some(want) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{action} never showed {want}");
    }
    let ids = [("InstanceIds.0", instance.as_str())];
    let state = "/Response/InstanceSet/0/InstanceState";
    wait_for(&c, "DescribeInstances", &ids, state, "RUNNING").await;
    let v = c
        .call(
            "CreateImage",
            &[("InstanceId", &instance), ("ImageName", "kept")],
        )
        .await;
    let image = v["Response"]["ImageId"]
        .as_str()
        .unwrap_or_else(|| panic!("CreateImage: {v}"))
        .to_string();
    let ids = [("ImageIds.0", image.as_str())];
    let state = "/Response/ImageSet/0/ImageState";
    wait_for(&c, "DescribeImages", &ids, state, "NORMAL").await;
    async fn private(c: &Client) -> serde_json::Value {
        let v = c
            .call(
                "DescribeImages",
                &[
                    ("Filters.0.Name", "image-type"),
                    ("Filters.0.Values.0", "PRIVATE_IMAGE"),
                ],
            )
            .await;
        v["Response"]["TotalCount"].clone()
    }
    for a in REGISTRY.actions {
        let valid = DRY_RUN.iter().find(|(n, _)| *n == a.name).map(|(_, p)| *p);
        assert_eq!(
            valid.is_some(),
            a.dry_run,
            "{}: DRY_RUN must list exactly the actions that declare DryRun",
            a.name
        );
        let mut params: Vec<(&str, &str)> = valid
            .unwrap_or_default()
            .iter()
            .map(|&(k, v)| match v {
                "$INSTANCE" => (k, instance.as_str()),
                "$IMAGE" => (k, image.as_str()),
                v => (k, v),
            })
            .collect();
        params.push(("DryRun", "true"));
        let v = c.call(a.name, &params).await;
        let want = if a.dry_run {
            "DryRunOperation"
        } else {
            "UnknownParameter"
        };
        assert_eq!(code(&v), Some(want), "{}: {v}", a.name);
    }
    // Only what the test made itself: the one instance and the one image.
    let v = c.call("DescribeInstances", &[]).await;
    assert_eq!(
        v["Response"]["TotalCount"], 1,
        "a dry run left a trace: {v}"
    );
    assert_eq!(
        private(&c).await,
        1,
        "a dry run left an image or took one away"
    );
}
