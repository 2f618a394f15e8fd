//! Start, stop, reboot and delete, one instance or a batch.
use super::*;

fn stopped_mode(p: &Params) -> Result<bool, ApiError> {
    match p.opt("StoppedMode").as_deref() {
        None | Some("KeepCharging") => Ok(false),
        Some("StopCharging") => Ok(true),
        Some(other) => Err(ApiError::invalid("StoppedMode", other)),
    }
}

/// What a power action does, as its registry entry declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Power {
    Start,
    Stop,
    /// `force`: the parameter that asks for a hard reboot (RebootInstance `ForceStop`,
    /// RebootInstances `ForceReboot`).
    Reboot {
        force: &'static str,
    },
    Delete,
}

/// The command of a power action (power_one and power_batch share it; the batch's body is
/// left as it is while the engine's batch API changes under it).
fn command(power: Power, p: &Params) -> Result<Command, ApiError> {
    let hard = |name: &str| -> Result<StopMode, ApiError> {
        Ok(if p.bool(name)? {
            StopMode::Hard
        } else {
            StopMode::SoftFirst
        })
    };
    Ok(match power {
        Power::Start => Command::Start,
        Power::Stop => Command::Stop {
            mode: hard("ForceStop")?,
            stop_charging: stopped_mode(p)?,
        },
        Power::Reboot { force } => Command::Reboot { mode: hard(force)? },
        Power::Delete => Command::Terminate {
            force: p.bool("Force")?,
        },
    })
}

pub(super) async fn power_one(engine: &Engine, ctx: &Ctx, p: &Params, power: Power) -> Out {
    let cmd = command(power, p)?;
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
pub(super) async fn power_batch(engine: &Engine, ctx: &Ctx, p: &Params, power: Power) -> Out {
    region(ctx)?;
    let cmd = command(power, p)?;
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
    let mode = match p.opt("BatchOptimization").as_deref() {
        None | Some("AllTogether") => BatchMode::AllOrNothing,
        Some("SuccessFirst") => BatchMode::SuccessFirst,
        Some(other) => return Err(ApiError::invalid("BatchOptimization", other)),
    };
    let batch = Batch {
        dry_run: dry,
        ..Batch::new(&targets, cmd, mode)
    };
    let results: Vec<(String, String)> = engine
        .submit_batch(&ctx.principal, &ctx.request_id, batch)
        .await
        .map_err(|e| domain(engine, ctx, e))?
        .into_iter()
        .map(|r| match r {
            Ok(()) => ("200".into(), "success".into()),
            Err(DomainError::DryRunOk) => (
                "DRYRUN.SUCCESS".into(),
                "Request validation has been passed with DryRun flag set.".into(),
            ),
            Err(e) => {
                let e = domain(engine, ctx, e);
                (e.code, e.message)
            }
        })
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each power action reads its own parameters: a reboot is hard by the parameter its
    /// entry names and no other, a delete is forced by `Force`.
    #[test]
    fn each_action_reads_its_own_parameters() {
        let one = Power::Reboot { force: "ForceStop" };
        let batch = Power::Reboot {
            force: "ForceReboot",
        };
        let hard = |mode| Command::Reboot { mode };
        let cases = [
            (one, &[("ForceStop", "true")], hard(StopMode::Hard)),
            (one, &[("ForceReboot", "true")], hard(StopMode::SoftFirst)),
            (batch, &[("ForceReboot", "true")], hard(StopMode::Hard)),
            (batch, &[("ForceStop", "true")], hard(StopMode::SoftFirst)),
            (Power::Start, &[("ForceStop", "true")], Command::Start),
            (
                Power::Stop,
                &[("StoppedMode", "StopCharging")],
                Command::Stop {
                    mode: StopMode::SoftFirst,
                    stop_charging: true,
                },
            ),
            (
                Power::Delete,
                &[("Force", "true")],
                Command::Terminate { force: true },
            ),
            (
                Power::Delete,
                &[("ForceStop", "true")],
                Command::Terminate { force: false },
            ),
        ];
        for (power, pairs, want) in cases {
            let got = command(power, &params::test_params(pairs)).unwrap();
            assert_eq!(got, want, "{power:?} {pairs:?}");
        }
    }
}
