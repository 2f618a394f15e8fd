//! Start, stop, reboot and delete, one instance or a batch.
use super::*;

fn stopped_mode(p: &Params) -> Result<bool, ApiError> {
    match p.opt("StoppedMode").as_deref() {
        None | Some("KeepCharging") => Ok(false),
        Some("StopCharging") => Ok(true),
        Some(other) => Err(ApiError::invalid("StoppedMode", other)),
    }
}

/// The command an action name stands for (power_one and power_batch share it; the batch's
/// body is left as it is while the engine's batch API changes under it).
fn command(ctx: &Ctx, p: &Params) -> Result<Command, ApiError> {
    let hard = |name: &str| -> Result<StopMode, ApiError> {
        Ok(if p.bool(name)? {
            StopMode::Hard
        } else {
            StopMode::SoftFirst
        })
    };
    Ok(match ctx.action {
        "StartInstance" | "StartInstances" => Command::Start,
        "StopInstance" | "StopInstances" => Command::Stop {
            mode: hard("ForceStop")?,
            stop_charging: stopped_mode(p)?,
        },
        "RebootInstance" => Command::Reboot {
            mode: hard("ForceStop")?,
        },
        "RebootInstances" => Command::Reboot {
            mode: hard("ForceReboot")?,
        },
        _ => Command::Terminate {
            force: p.bool("Force")?,
        },
    })
}

pub(super) async fn power_one(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let cmd = command(ctx, p)?;
    let uuid = one_instance(engine, ctx, p)?;
    engine
        .submit(
            &ctx.principal,
            &ctx.request_id,
            &[uuid],
            cmd,
            p.bool("DryRun")?,
        )
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

/// Batch actions: `AllTogether` (default) is all or nothing; `SuccessFirst` acts on each
/// instance it can and reports per instance.
pub(super) async fn power_batch(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let cmd = command(ctx, p)?;
    let ids = p.list("InstanceId");
    let targets = instances(engine, ctx, ids.clone(), "InstanceId")?;
    let dry = p.bool("DryRun")?;
    let before: Vec<&'static str> = targets
        .iter()
        .map(|u| {
            engine
                .instance(*u)
                .map(|i| render::status(i.state))
                .unwrap_or("")
        })
        .collect();
    let success_first = match p.opt("BatchOptimization").as_deref() {
        None | Some("AllTogether") => false,
        Some("SuccessFirst") => true,
        Some(other) => return Err(ApiError::invalid("BatchOptimization", other)),
    };
    let mut results: Vec<(String, String)> = Vec::new();
    if success_first {
        for uuid in &targets {
            match engine
                .submit(&ctx.principal, &ctx.request_id, &[*uuid], cmd.clone(), dry)
                .await
            {
                Ok(()) => results.push(("200".into(), "success".into())),
                Err(DomainError::DryRunOk) => results.push((
                    "DRYRUN.SUCCESS".into(),
                    "Request validation has been passed with DryRun flag set.".into(),
                )),
                Err(e) => {
                    let e = domain(engine, ctx, e);
                    results.push((e.code, e.message));
                }
            }
        }
    } else {
        engine
            .submit(&ctx.principal, &ctx.request_id, &targets, cmd, dry)
            .await
            .map_err(|e| domain(engine, ctx, e))?;
        results = targets
            .iter()
            .map(|_| ("200".to_string(), "success".to_string()))
            .collect();
    }
    let responses: Vec<Value> = targets
        .iter()
        .zip(&ids)
        .zip(before)
        .zip(results)
        .map(|(((uuid, id), prev), (code, message))| {
            let now = engine.instance(*uuid).map(|i| render::status(i.state)).unwrap_or("Stopping");
            json!({"InstanceId": id, "Code": code, "Message": message, "PreviousStatus": prev, "CurrentStatus": now})
        })
        .collect();
    Ok(obj(
        json!({"InstanceResponses": {"InstanceResponse": responses}}),
    ))
}
