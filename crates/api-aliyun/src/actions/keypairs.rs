//! Key pairs: create, import, describe, delete, attach and detach.
use super::*;

/// `import`: ImportKeyPair (the caller's public key) rather than CreateKeyPair.
pub(super) async fn create_key_pair(engine: &Engine, ctx: &Ctx, p: &Params, import: bool) -> Out {
    region(ctx)?;
    let name = p.required("KeyPairName")?;
    params::check_text(&params::KEY_PAIR_NAME, "KeyPairName", Some(&name))?;
    let public = if import {
        Some(p.required("PublicKeyBody")?)
    } else {
        None
    };
    let created = engine
        .create_key_pair(&ctx.principal, &name, 0, public.as_deref())
        .await
        .map_err(|e| match e {
            DomainError::InvalidValue { reason, .. } => ApiError::new(
                400,
                "InvalidKeyPair.PublicKeyBody",
                format!("The public key is not valid: {reason}"),
            ),
            e => domain(engine, ctx, e),
        })?;
    let fp = render::fingerprint(&created.key_pair.public_key);
    if import {
        // ImportKeyPair answers no KeyPairId (the API's and the SDKs' response models have
        // none; CreateKeyPair's have one).
        Ok(obj(json!({"KeyPairName": name, "KeyPairFingerPrint": fp})))
    } else {
        Ok(obj(
            json!({"KeyPairName": name, "KeyPairFingerPrint": fp, "KeyPairId": created.key_pair.id, "PrivateKeyBody": created.private_key}),
        ))
    }
}

pub(super) fn describe_key_pairs(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let (offset, size) = page(p, &params::PAGE_SIZE_50)?;
    let name = p.opt("KeyPairName");
    let fp = p.opt("KeyPairFingerPrint");
    let include_public = p.bool("IncludePublicKey")?;
    let all: Vec<Value> = engine
        .key_pairs(&ctx.principal)
        .into_iter()
        .filter(|k| name.as_deref().is_none_or(|n| wildcard(n, &k.name)))
        .filter(|k| {
            fp.as_deref()
                .is_none_or(|f| render::fingerprint(&k.public_key) == f)
        })
        .map(|k| render::key_pair(&k, include_public))
        .collect();
    let total = all.len();
    let list: Vec<Value> = all.into_iter().skip(offset).take(size).collect();
    Ok(obj(
        json!({"KeyPairs": {"KeyPair": list}, "TotalCount": total, "PageNumber": offset / size + 1, "PageSize": size}),
    ))
}

/// The JSON list parameter of count row `c` (`c.param`), required and of 1 to the row's
/// maximum items; `items` names them in the error ("names", "IDs").
fn batch(p: &Params, c: &Constraint, items: &str) -> Result<Vec<String>, ApiError> {
    let list = p
        .json_list(c.param)?
        .ok_or_else(|| ApiError::missing(c.param))?;
    if list.is_empty() {
        let max = c.max_count().unwrap_or_default();
        return Err(ApiError::invalid(c.param, format!("1 to {max} {items}")));
    }
    params::check_count(c, list.len())?;
    Ok(list)
}

pub(super) async fn delete_key_pairs(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let names = batch(p, &params::KEY_PAIR_NAMES, "names")?;
    let ids: Vec<String> = names
        .iter()
        .map(|n| key_id_by_name(engine, ctx, n))
        .collect::<Result<_, _>>()?;
    engine
        .delete_key_pairs(&ctx.principal, &ids, true)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

/// Which way AttachKeyPair / DetachKeyPair change an instance's keys, as the registry entry
/// declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyChange {
    Attach,
    Detach,
}

impl KeyChange {
    /// The command for key pair `key_id`: written for the next boot on a running instance.
    fn command(self, key_id: String) -> Command {
        let key_ids = vec![key_id];
        let when_running = WhenRunning::NextBoot;
        match self {
            Self::Attach => Command::AssociateKeys {
                key_ids,
                when_running,
            },
            Self::Detach => Command::DisassociateKeys {
                key_ids,
                when_running,
            },
        }
    }
}

/// Attach/Detach report per instance (Results.Result); counts and Success are strings, as
/// the Tea models type them.
pub(super) async fn attach(engine: &Engine, ctx: &Ctx, p: &Params, change: KeyChange) -> Out {
    region(ctx)?;
    let name = p.required("KeyPairName")?;
    let ids = batch(p, &params::KEY_PAIR_INSTANCE_IDS, "IDs")?;
    let key_id = key_id_by_name(engine, ctx, &name)?;
    // Each ID resolved on its own (an unknown one fails alone); the known ones are accepted
    // together, each that can be, in one commit.
    let resolved: Vec<Result<Uuid, ApiError>> = ids
        .iter()
        .map(|id| {
            engine
                .resolve(&ctx.principal, IdKind::Aliyun, std::slice::from_ref(id))
                .map_err(|e| domain(engine, ctx, e))
                .and_then(|u| {
                    u.first().copied().ok_or_else(|| {
                        map(DomainError::NotFound {
                            kind: ResourceKind::Instance,
                            id: id.clone(),
                        })
                    })
                })
        })
        .collect();
    let known: Vec<Uuid> = resolved
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .copied()
        .collect();
    let cmd = change.command(key_id);
    let mut accepted = if known.is_empty() {
        Vec::new()
    } else {
        engine
            .submit_batch(
                &ctx.principal,
                &ctx.request_id,
                Batch::new(&known, cmd, BatchMode::SuccessFirst),
            )
            .await
            .map_err(|e| domain(engine, ctx, e))?
    }
    .into_iter();
    let mut results = Vec::new();
    let mut failed = 0;
    for (id, r) in ids.iter().zip(resolved) {
        let outcome = r.and_then(|_| {
            accepted
                .next()
                .unwrap_or(Ok(()))
                .map_err(|e| domain(engine, ctx, e))
        });
        match outcome {
            Ok(()) => results.push(json!({"InstanceId": id, "Success": "true", "Code": "200", "Message": "successful"})),
            Err(e) => {
                failed += 1;
                results.push(json!({"InstanceId": id, "Success": "false", "Code": e.code, "Message": e.message}));
            }
        }
    }
    Ok(obj(
        json!({"TotalCount": ids.len().to_string(), "FailCount": failed.to_string(), "KeyPairName": name, "Results": {"Result": results}}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AttachKeyPair associates, DetachKeyPair disassociates: each for the next boot.
    #[test]
    fn each_change_has_its_command() {
        let key_ids = vec!["k".to_string()];
        let when_running = WhenRunning::NextBoot;
        assert_eq!(
            KeyChange::Attach.command("k".into()),
            Command::AssociateKeys {
                key_ids: key_ids.clone(),
                when_running,
            }
        );
        assert_eq!(
            KeyChange::Detach.command("k".into()),
            Command::DisassociateKeys {
                key_ids,
                when_running,
            }
        );
    }
}
