//! `DescribeAccountAttributes`: the account's quotas in the region (docs/quotas.md). The
//! vCPU attributes are the account's nubis quota and usage; the others are fixed facts of
//! this deployment.
use super::*;

/// Every attribute ECS documents (`AttributeName.N`), in its order.
const ATTRIBUTES: &[&str] = &[
    "instance-network-type",
    "max-security-groups",
    "max-elastic-network-interfaces",
    "max-postpaid-instance-vcpu-count",
    "max-spot-instance-vcpu-count",
    "used-postpaid-instance-vcpu-count",
    "used-spot-instance-vcpu-count",
    "max-postpaid-yundisk-capacity",
    "used-postpaid-yundisk-capacity",
    "max-dedicated-hosts",
    "supported-postpaid-instance-types",
    "max-axt-command-count",
    "max-axt-invocation-daily",
    "real-name-authentication",
    "max-cloud-assistant-activation-count",
];

/// `AttributeName.N`: N is 1 to 8.
const MAX_NAMES: usize = 8;

/// A limit as ECS shows it: a count (unlimited: the largest quota value).
fn shown(limit: i64) -> String {
    if limit < 0 {
        nubis_core::rules::quota::MAX_LIMIT.to_string()
    } else {
        limit.to_string()
    }
}

pub(super) fn describe_account_attributes(e: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region = catalog::region(&region(ctx)?).expect("resolved region");
    if p.max_index("AttributeName") > MAX_NAMES {
        return Err(ApiError::invalid(
            "AttributeName",
            format!("at most {MAX_NAMES} names"),
        ));
    }
    let names = p.list("AttributeName");
    if let Some(bad) = names.iter().find(|n| !ATTRIBUTES.contains(&n.as_str())) {
        return Err(ApiError::invalid("AttributeName", bad));
    }
    let zone = match p.opt("ZoneId") {
        Some(z) => Some(region.zones.iter().find(|x| x.aliyun == z).ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidZoneId.NotFound",
                "The specified zone does not exist.",
            )
        })?),
        None => None,
    };
    let q = e
        .quota(&ctx.principal.account)
        .map_err(|err| map(DomainError::Internal(err.to_string())))?;
    let one = |v: String| vec![json!({"Value": v})];
    let items: Vec<Value> = ATTRIBUTES
        .iter()
        .filter(|a| names.is_empty() || names.iter().any(|n| n == *a))
        .map(|a| {
            let values = match *a {
                "instance-network-type" => one("vpc".into()),
                "max-security-groups" => one("100".into()),
                "max-elastic-network-interfaces" => one("0".into()),
                "max-postpaid-instance-vcpu-count" => one(shown(q.limits.cores)),
                "used-postpaid-instance-vcpu-count" => one(q.usage.cores.to_string()),
                "max-spot-instance-vcpu-count" | "used-spot-instance-vcpu-count" => {
                    one("0".into())
                }
                "max-postpaid-yundisk-capacity" => one("-1".into()),
                "used-postpaid-yundisk-capacity" => one("0".into()),
                "max-dedicated-hosts" => one("0".into()),
                "supported-postpaid-instance-types" => region
                    .zones
                    .iter()
                    .filter(|z| zone.is_none_or(|x| x.aliyun == z.aliyun))
                    .flat_map(|z| {
                        super::instance_types(e).into_iter().map(|t| {
                            json!({"Value": t.aliyun, "ZoneId": z.aliyun, "InstanceChargeType": "PostPaid", "InstanceType": t.aliyun})
                        })
                    })
                    .collect(),
                "max-axt-command-count" => one("500".into()),
                "max-axt-invocation-daily" => one("10000".into()),
                "real-name-authentication" => one("yes".into()),
                _ => one("0".into()), // max-cloud-assistant-activation-count
            };
            json!({"AttributeName": a, "AttributeValues": {"ValueItem": values}})
        })
        .collect();
    Ok(obj(
        json!({"AccountAttributeItems": {"AccountAttributeItem": items}}),
    ))
}
