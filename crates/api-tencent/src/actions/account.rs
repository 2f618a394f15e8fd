//! `DescribeAccountQuota`: the account's instance quota per zone of the region
//! (docs/quotas.md). nubis's quota is one per account: every zone shows the same
//! `TotalQuota`, its own `UsedQuota` and the account's `RemainingQuota`.

use super::Out;
use super::obj;
use super::params::{Filter, check_filters};
use crate::Ctx;
use crate::errors::ApiError;
use nubis_core::catalog;
use nubis_core::rules::quota::MAX_LIMIT;
use nubis_engine::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DescribeAccountQuotaReq {
    filters: Option<Vec<Filter>>,
}

/// The sets of `AccountQuota`, in the SDK model's order.
const QUOTA_TYPES: &[&str] = &[
    "PostPaidQuotaSet",
    "PrePaidQuotaSet",
    "SpotPaidQuotaSet",
    "ImageQuotaSet",
    "DisasterRecoverGroupQuotaSet",
];

pub(super) async fn describe_account_quota(
    e: &Engine,
    ctx: &Ctx,
    r: DescribeAccountQuotaReq,
) -> Out {
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    let region = ctx
        .region
        .as_deref()
        .and_then(catalog::region)
        .expect("region checked");
    let mut zones: Option<Vec<String>> = None;
    let mut types: Option<Vec<String>> = None;
    for f in &filters {
        match f.name.as_str() {
            "zone" => zones = Some(f.values.clone()),
            "quota-type" => {
                if let Some(bad) = f.values.iter().find(|v| !QUOTA_TYPES.contains(&v.as_str())) {
                    return Err(ApiError::new(
                        "InvalidFilterValue",
                        format!("unknown quota-type `{bad}`"),
                    ));
                }
                types = Some(f.values.clone());
            }
            other => {
                return Err(ApiError::new(
                    "InvalidFilter",
                    format!("unknown filter `{other}`"),
                ));
            }
        }
    }
    let account = &ctx.principal.account;
    let q = e
        .quota(account)
        .map_err(|err| ctx.err(nubis_core::DomainError::Internal(err.to_string())))?;
    let app_id = e.account(account).map_or(0, |a| a.tencent_app_id);
    let total = if q.limits.instances < 0 {
        MAX_LIMIT
    } else {
        q.limits.instances
    };
    let remaining = (total - q.usage.instances as i64).max(0);
    let per_zone: Vec<(&str, i64)> = region
        .zones
        .iter()
        .filter(|z| {
            zones
                .as_ref()
                .is_none_or(|v| v.iter().any(|x| x == z.tencent))
        })
        .map(|z| {
            let used = e
                .query(
                    &ctx.principal,
                    |i| i.account == *account && i.zone == z.id,
                    0,
                    0,
                )
                .0;
            (z.tencent, used as i64)
        })
        .collect();
    let wanted = |t: &str| types.as_ref().is_none_or(|v| v.iter().any(|x| x == t));
    let set = |t: &str, once: bool| -> Vec<Value> {
        if !wanted(t) {
            return Vec::new();
        }
        per_zone
            .iter()
            .map(|(zone, used)| {
                let mut v = json!({"Zone": zone, "TotalQuota": total, "UsedQuota": used, "RemainingQuota": remaining});
                if once {
                    v["OnceQuota"] = json!(remaining);
                }
                v
            })
            .collect()
    };
    let quota = json!({
        "PostPaidQuotaSet": set("PostPaidQuotaSet", false),
        "PrePaidQuotaSet": set("PrePaidQuotaSet", true),
        "SpotPaidQuotaSet": [],
        "ImageQuotaSet": if wanted("ImageQuotaSet") { json!([{"UsedQuota": 0, "TotalQuota": 500}]) } else { json!([]) },
        "DisasterRecoverGroupQuotaSet": [],
    });
    Ok(obj(json!({
        "AppId": app_id,
        "AccountQuotaOverview": {"Region": region.tencent, "AccountQuota": quota},
    })))
}
