//! Every action the registry declares × what the pipeline promises for it, through the ACS3
//! scheme (every_action.rs covers the v1 one): a bad signature, the declared rate limit,
//! the declared region use, a RAM denial with the declared policy action, unknown parameters
//! (accepted, as ECS does) and DryRun where declared. A declaration that is not true fails
//! here.

use nubis_api_aliyun::{AliyunApi, REGISTRY, Reply};
use nubis_pipeline::RegionUse;
use nubis_testkit::{DenyAll, aliyun};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

const KEY: &str = "coverage-key";
const SECRET: &str = "coverage-secret";
const NO_SUCH_INSTANCE: &str = "i-aaaaaaaaaaaaaaaaaaaa";

struct Fixture {
    api: AliyunApi,
    _dir: tempfile::TempDir,
}

async fn fixture(rate_limits: bool, authorizer: Option<DenyAll>) -> Fixture {
    let (engine, dir) = nubis_testkit::engine_with(Some((KEY, SECRET)), None).await;
    let api = AliyunApi::new(engine, rate_limits);
    let api = match authorizer {
        Some(a) => api.with_authorizer(a),
        None => api,
    };
    Fixture { api, _dir: dir }
}

fn fresh_nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("coverage-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// An ACS3-HMAC-SHA256 request as the Tea SDKs send an RPC call: parameters in the query,
/// an empty POST body, every `x-acs-*` header signed.
async fn call(fx: &Fixture, action: &str, params: &[(&str, &str)], secret: &str) -> Reply {
    let ts = nubis_testkit::now();
    let query: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let headers = aliyun::acs3_headers_by((KEY, secret), action, &query, ts, &fresh_nonce());
    aliyun::request(&fx.api, "POST", &headers, &query, &[], ts).await
}

fn body(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("a JSON body")
}

fn code(reply: &Reply) -> String {
    reply.code.clone().unwrap_or_else(|| "OK".into())
}

/// What every action gets unless a test says otherwise: a region and an instance that does
/// not exist, so that no call changes anything.
const BASE: &[(&str, &str)] = &[
    ("RegionId", "cn-hangzhou"),
    ("InstanceId", NO_SUCH_INSTANCE),
];

#[tokio::test]
async fn every_action_refuses_a_bad_acs3_signature_and_is_labelled() {
    let fx = fixture(false, None).await;
    for a in REGISTRY.actions {
        let reply = call(&fx, a.name, BASE, "not-the-secret").await;
        assert_eq!(
            (reply.status, code(&reply).as_str()),
            (400, "SignatureDoesNotMatch"),
            "{}",
            a.name
        );
        assert_eq!(body(&reply)["Code"], "SignatureDoesNotMatch");
        // Refused or not, a declared action is its own metrics label.
        assert_eq!((reply.cloud, reply.label), ("aliyun", a.name));
    }
    let reply = call(&fx, "NoSuchAction", BASE, SECRET).await;
    assert_eq!(
        (reply.status, code(&reply).as_str(), reply.label),
        (404, "InvalidAction.NotFound", "other")
    );
}

/// Each action admits its declared quota in a burst and throttles the next request, with the
/// headers the SDKs back off by. (The GCRA cell refills while the burst runs, so a slow
/// machine may admit a few more; never fewer.)
#[tokio::test]
async fn every_action_is_throttled_at_its_declared_rate_limit() {
    let fx = fixture(true, None).await;
    for a in REGISTRY.actions {
        assert!(a.rate_limit > 0, "{} has no quota", a.name);
        let start = std::time::Instant::now();
        let mut admitted = 0u32;
        let throttled = loop {
            let reply = call(&fx, a.name, BASE, SECRET).await;
            if code(&reply) == "Throttling" {
                break reply;
            }
            admitted += 1;
            assert!(admitted <= 10 * a.rate_limit, "{} never throttled", a.name);
        };
        let refilled = (start.elapsed().as_secs_f64() * f64::from(a.rate_limit)).ceil() as u32;
        assert!(
            (a.rate_limit..=a.rate_limit + refilled + 1).contains(&admitted),
            "{}: {admitted} admitted, quota {}",
            a.name,
            a.rate_limit
        );
        assert_eq!(throttled.status, 400, "{}", a.name);
        assert_eq!(
            body(&throttled)["Message"],
            "Request was denied due to request throttling."
        );
        let header = |n: &str| {
            throttled
                .headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("retry-after"), Some("1"), "{}", a.name);
        assert_eq!(header("x-acs-retry-after"), Some("1000"), "{}", a.name);
    }
}

/// `RequiredByAction`: no RegionId is `MissingRegionId` (after the rate limit, as ECS
/// orders it); `Optional`: never. An unknown region is refused by every action.
#[tokio::test]
async fn every_action_uses_the_region_as_declared() {
    let fx = fixture(false, None).await;
    for a in REGISTRY.actions {
        let reply = call(&fx, a.name, &[("InstanceId", NO_SUCH_INSTANCE)], SECRET).await;
        let missing = (reply.status, code(&reply)) == (400, "MissingRegionId".to_string());
        assert_eq!(
            missing,
            a.region == RegionUse::RequiredByAction,
            "{}: {}",
            a.name,
            code(&reply)
        );
        let reply = call(&fx, a.name, &[("RegionId", "mars-north-1")], SECRET).await;
        assert_eq!(
            (reply.status, code(&reply).as_str()),
            (404, "InvalidRegionId.NotFound"),
            "{}",
            a.name
        );
    }
}

#[tokio::test]
async fn a_ram_denial_is_forbidden_ram_for_the_declared_policy_action() {
    let recorder = DenyAll::default();
    let fx = fixture(false, Some(recorder.clone())).await;
    for a in REGISTRY.actions {
        let reply = call(&fx, a.name, BASE, SECRET).await;
        assert_eq!(
            (reply.status, code(&reply).as_str()),
            (403, "Forbidden.RAM"),
            "{}",
            a.name
        );
        // RAM's denial detail, an object the Tea SDK copies into the exception (D11).
        let detail = &body(&reply)["AccessDeniedDetail"];
        assert_eq!(detail["AuthAction"], a.policy, "{}", a.name);
        assert_eq!(detail["NoPermissionType"], "ImplicitDeny");
        assert_eq!(detail["PolicyType"], "AccountLevelIdentityBasedPolicy");
        assert!(detail["EncodedDiagnosticMessage"].is_string());
        assert_eq!(recorder.pop(), Some(a.policy));
    }
    // Authentication comes first: a bad signature never reaches the authorizer.
    call(&fx, "DescribeRegions", BASE, "not-the-secret").await;
    assert!(recorder.is_empty());
}

/// ECS ignores parameters an action does not take; so does every action here.
#[tokio::test]
async fn every_action_accepts_unknown_parameters() {
    let fx = fixture(false, None).await;
    for a in REGISTRY.actions {
        let plain = call(&fx, a.name, BASE, SECRET).await;
        let mut extra = BASE.to_vec();
        extra.push(("NubisNoSuchParameter", "1"));
        let with_unknown = call(&fx, a.name, &extra, SECRET).await;
        assert_eq!(
            (with_unknown.status, code(&with_unknown)),
            (plain.status, code(&plain)),
            "{}",
            a.name
        );
    }
}

/// The instance a DryRun of each declaring action is checked against: one the real call
/// would act on, so that `DryRunOperation` means every check passed.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Target {
    /// A create: image and type, no instance.
    New,
    Running,
    Stopped,
}

const DRY_RUN: &[(&str, Target)] = &[
    ("CreateImage", Target::Stopped),
    ("RunInstances", Target::New),
    ("CreateInstance", Target::New),
    ("StartInstance", Target::Stopped),
    ("StartInstances", Target::Stopped),
    ("StopInstance", Target::Running),
    ("StopInstances", Target::Running),
    ("RebootInstance", Target::Running),
    ("RebootInstances", Target::Running),
    ("DeleteInstance", Target::Stopped),
    ("DeleteInstances", Target::Stopped),
    ("ModifyInstanceSpec", Target::Stopped),
];

async fn statuses(fx: &Fixture) -> Vec<(String, String)> {
    let reply = call(
        fx,
        "DescribeInstances",
        &[("RegionId", "cn-hangzhou")],
        SECRET,
    )
    .await;
    let v = body(&reply);
    let mut out: Vec<(String, String)> = v["Instances"]["Instance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["InstanceId"].as_str().unwrap().to_string(),
                i["Status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn dry_run_where_declared_and_nowhere_else() {
    // The table names exactly the actions that declare DryRun.
    let declared: Vec<&str> = REGISTRY
        .actions
        .iter()
        .filter(|a| a.dry_run)
        .map(|a| a.name)
        .collect();
    let tabled: Vec<&str> = DRY_RUN.iter().map(|(n, _)| *n).collect();
    assert_eq!(declared, tabled);

    let fx = fixture(false, None).await;
    let image = nubis_core::catalog::IMAGES
        .iter()
        .find(|i| i.public && i.os == nubis_core::OsFamily::Linux)
        .unwrap()
        .id;
    let itype = nubis_core::catalog::INSTANCE_TYPES[0].aliyun.as_ref();
    let create = [
        ("RegionId", "cn-hangzhou"),
        ("ImageId", image),
        ("InstanceType", itype),
    ];
    let running = body(&call(&fx, "RunInstances", &create, SECRET).await);
    let running = running["InstanceIdSets"]["InstanceIdSet"][0]
        .as_str()
        .unwrap()
        .to_string();
    let stopped = body(&call(&fx, "CreateInstance", &create, SECRET).await);
    let stopped = stopped["InstanceId"].as_str().unwrap().to_string();
    let want = {
        let mut w = vec![
            (running.clone(), "Running".to_string()),
            (stopped.clone(), "Stopped".to_string()),
        ];
        w.sort();
        w
    };
    for _ in 0..200 {
        if statuses(&fx).await == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(statuses(&fx).await, want);

    for (name, target) in DRY_RUN {
        let id = match target {
            Target::New => "",
            Target::Running => running.as_str(),
            Target::Stopped => stopped.as_str(),
        };
        let mut params = vec![("RegionId", "cn-hangzhou"), ("DryRun", "true")];
        match target {
            Target::New => params.extend_from_slice(&create[1..]),
            _ if name.ends_with("Instances") => params.push(("InstanceId.1", id)),
            _ => params.push(("InstanceId", id)),
        }
        if *name == "ModifyInstanceSpec" {
            // Another type than the one created (INSTANCE_TYPES[0]).
            params.push((
                "InstanceType",
                nubis_core::catalog::INSTANCE_TYPES[1].aliyun.as_ref(),
            ));
        }
        let reply = call(&fx, name, &params, SECRET).await;
        assert_eq!(
            (reply.status, code(&reply).as_str()),
            (400, "DryRunOperation"),
            "{name} on {target:?}"
        );
        assert_eq!(
            body(&reply)["Message"],
            "Request validation has been passed with DryRun flag set."
        );
        assert_eq!(statuses(&fx).await, want, "{name} left a trace");
    }

    // An action that does not take DryRun never answers as if it did (it ignores the
    // parameter, as ECS ignores unknown ones).
    for a in REGISTRY.actions.iter().filter(|a| !a.dry_run) {
        let mut params = BASE.to_vec();
        params.push(("DryRun", "true"));
        let reply = call(&fx, a.name, &params, SECRET).await;
        assert_ne!(code(&reply), "DryRunOperation", "{}", a.name);
    }
}
