//! ModifyInstanceSpec: the instance type of a pay-as-you-go instance (docs/resize.md).
use super::*;

/// The longest InstanceType taken (ECS type names are well under it).
const INSTANCE_TYPE_MAX: usize = 64;

/// "The specified InstanceType does not exist or beyond the permitted range."
fn type_not_supported(message: String) -> ApiError {
    ApiError::new(400, "InvalidInstanceType.ValueNotSupported", message)
}

/// ModifyInstanceSpec: `InstanceType` of a Stopped instance (ECS changes a pay-as-you-go
/// instance's type only while it is stopped; it stays stopped), `DryRun`, `ClientToken`
/// (checked), `Async` (taken: the change is recorded before the answer either way). A public
/// bandwidth change (`InternetMaxBandwidthOut`/`In`) is not served.
pub(super) async fn modify_instance_spec(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    p.text(&params::CLIENT_TOKEN)?;
    p.bool("Async")?;
    let dry_run = p.bool("DryRun")?;
    if p.str("InternetMaxBandwidthOut").is_some() || p.str("InternetMaxBandwidthIn").is_some() {
        return Err(ApiError::new(
            403,
            "OperationDenied",
            "Changing the public bandwidth with ModifyInstanceSpec is not supported.",
        ));
    }
    let wanted = p
        .opt("InstanceType")
        .ok_or_else(|| ApiError::missing("InstanceType"))?;
    if wanted.is_empty() || wanted.len() > INSTANCE_TYPE_MAX {
        return Err(type_not_supported(
            "The specified InstanceType does not exist or beyond the permitted range.".into(),
        ));
    }
    let ty = super::instance_type_by_aliyun(engine, ctx, &wanted).ok_or_else(|| {
        type_not_supported(format!(
            "The specified InstanceType {wanted} does not exist or beyond the permitted range."
        ))
    })?;
    let uuid = one_instance(engine, ctx, p)?;
    let cmd = Command::Resize {
        instance_type: ty.name.to_string(),
        when_running: WhenRunning::Refuse,
        then: nubis_core::ResizeEnd::AsBefore,
    };
    engine
        .submit(&ctx.principal, &ctx.request_id, &[uuid], cmd, dry_run)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}
