//! Describing and modifying instances: DescribeInstances/InstanceStatus, ModifyInstanceAttribute,
//! DescribeInstanceAttribute, DescribeUserData, DescribeInstanceVncUrl.
use super::create::host_name_rule;
use super::*;
use nubis_core::InstanceState;
use nubis_core::select::{self, Clause, Facet, Lookup, NameMatch, Selection};

pub(super) fn describe_instances(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region = region(ctx)?;
    let ids = p.json_list("InstanceIds")?;
    params::check_count(&params::INSTANCE_IDS, ids.as_ref().map_or(0, Vec::len))?;
    let token_mode = p.str("NextToken").is_some() || p.str("MaxResults").is_some();
    if token_mode && (p.str("PageNumber").is_some() || p.str("PageSize").is_some()) {
        return Err(ApiError::new(
            400,
            "InvalidParameter",
            "NextToken/MaxResults and PageNumber/PageSize cannot be used together.",
        ));
    }
    let (offset, size) = if token_mode {
        let size = p.int(&params::MAX_RESULTS, 10)?.max(1) as usize;
        let offset = match p.opt("NextToken") {
            None => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("NextToken", &t))?,
        };
        (offset, size)
    } else {
        page(p, &params::PAGE_SIZE_100)?
    };
    let zone = p.opt("ZoneId");
    let status = p.opt("Status");
    let name = p.opt("InstanceName");
    let image = p.opt("ImageId");
    let itype = p.opt("InstanceType");
    let lock = p.opt("LockReason");
    let key_name = p.opt("KeyPairName");
    let key_id = key_name
        .as_ref()
        .and_then(|n| engine.key_pair_by_name(&ctx.principal, n))
        .map(|k| k.id);
    params::check_count(&params::TAGS, p.max_index("Tag"))?;
    let tags: Vec<(String, Option<String>)> = p
        .groups("Tag")
        .into_iter()
        .filter_map(|g| Some((g.get("Key")?.clone(), g.get("Value").cloned())))
        .collect();
    // What the fleet indexes, in canonical values (each the same test as the parameter's);
    // the rest is checked on each candidate.
    let mut sel = selection(
        engine,
        ctx,
        region,
        ids.as_deref(),
        zone.as_deref(),
        status.as_deref(),
    );
    if let Some(m) = &image {
        sel.and(Clause::Facet(Facet::Image, vec![m.clone()]));
    }
    if key_name.is_some() {
        sel.and(Clause::Facet(Facet::KeyPair, key_id.into_iter().collect()));
    }
    if let Some(n) = &name {
        sel.and(Clause::Name(vec![NameMatch::Wildcard(n.clone())]));
    }
    // The type by its Alibaba name, as the canonical names that spell it (each instance's
    // facts are tested instead only when no set of names is exactly that test).
    let itype = match itype {
        Some(t) => match engine.type_names_where(|ty| *ty.aliyun == *t) {
            Some(names) => {
                sel.and(Clause::Facet(Facet::InstanceType, names));
                None
            }
            None => Some(t),
        },
        None => None,
    };
    for (k, v) in &tags {
        sel.and(match v {
            Some(v) => Clause::Lookup(Lookup::Tag, vec![select::tag_term(k, v)]),
            None => Clause::Lookup(Lookup::TagKey, vec![k.clone()]),
        });
    }
    let filter = |i: &Instance| {
        itype
            .as_deref()
            .is_none_or(|t| i.type_facts().is_some_and(|ty| ty.aliyun == t))
            && lock
                .as_deref()
                .is_none_or(|l| render::locks(i).iter().any(|x| x["LockReason"] == l))
    };
    let rest: Option<&dyn Fn(&Instance) -> bool> =
        (itype.is_some() || lock.is_some()).then_some(&filter);
    let (total, page) = engine.select(&ctx.principal, &sel, rest, offset, size);
    let sets = engine.placement_group_ids(IdKind::Aliyun);
    let list: Vec<Value> = page
        .iter()
        .map(|i| render::instance(i, &key_name_of(engine, ctx, i), &set_of(&sets, i)))
        .collect();
    let mut out = json!({"Instances": {"Instance": list}, "TotalCount": total});
    if token_mode {
        let next = offset + page.len();
        out["NextToken"] = json!(if next < total {
            next.to_string()
        } else {
            String::new()
        });
    } else {
        out["PageNumber"] = json!(offset / size + 1);
        out["PageSize"] = json!(size);
        out["NextToken"] = json!("");
    }
    Ok(obj(out))
}

/// The index clauses of the filters the describe actions share, in canonical values: the
/// region, the instance IDs (`Some`: only these; an unknown or invisible one is simply absent),
/// the zone and the status in Alibaba's words.
fn selection(
    engine: &Engine,
    ctx: &Ctx,
    region: String,
    ids: Option<&[String]>,
    zone: Option<&str>,
    status: Option<&str>,
) -> Selection {
    let mut sel = Selection::in_region(Some(region));
    if let Some(ids) = ids {
        let found = ids
            .iter()
            .filter_map(|id| {
                engine
                    .resolve(&ctx.principal, IdKind::Aliyun, std::slice::from_ref(id))
                    .ok()
            })
            .flatten()
            .collect();
        sel.and(Clause::Instances(found));
    }
    if let Some(z) = zone {
        sel.and(Clause::Facet(
            Facet::Zone,
            catalog::zones_spelled(z, |z| z.aliyun),
        ));
    }
    if let Some(s) = status {
        sel.and(Clause::states(
            InstanceState::ALL
                .into_iter()
                .filter(|st| render::status(*st) == s),
        ));
    }
    sel
}

pub(super) fn describe_instance_status(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region = region(ctx)?;
    let (offset, size) = page(p, &params::PAGE_SIZE_50)?;
    let ids = p.list("InstanceId");
    params::check_count(&params::INSTANCE_IDS, ids.len())?;
    let zone = p.opt("ZoneId");
    let ids = (!ids.is_empty()).then_some(ids.as_slice());
    let sel = selection(engine, ctx, region, ids, zone.as_deref(), None);
    let (total, page) = engine.select(&ctx.principal, &sel, None, offset, size);
    let list: Vec<Value> = page
        .iter()
        .map(|i| json!({"InstanceId": i.aliyun_id, "Status": render::status(i.state)}))
        .collect();
    Ok(obj(
        json!({"InstanceStatuses": {"InstanceStatus": list}, "TotalCount": total, "PageNumber": offset / size + 1, "PageSize": size}),
    ))
}

pub(super) async fn modify(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    // Every limit before any change: a refused request changes nothing.
    let name = p.text(&params::INSTANCE_NAME)?;
    let description = p.text(&params::DESCRIPTION)?;
    p.text(&params::USER_DATA)?;
    let uuid = one_instance(engine, ctx, p)?;
    let host_name = p.opt("HostName");
    params::check_text(
        host_name_rule(engine.instance(uuid).map(|i| i.os)),
        "HostName",
        host_name.as_deref(),
    )?;
    let attrs = AttrChange {
        name,
        description,
        host_name,
    };
    if let Some(password) = p.opt("Password") {
        // Alibaba: the new password takes effect after the next restart; nothing restarts now.
        let cmd = Command::ResetPassword {
            user: None,
            password,
            when_running: WhenRunning::NextBoot,
            rule: nubis_core::password::PasswordRule::Complexity,
        };
        // The password and the attributes in one commit.
        let batch = Batch {
            attrs,
            ..Batch::new(std::slice::from_ref(&uuid), cmd, BatchMode::AllOrNothing)
        };
        engine
            .submit_batch(&ctx.principal, &ctx.request_id, batch)
            .await
            .map_err(|e| domain(engine, ctx, e))?;
        return Ok(Map::new());
    }
    engine
        .modify(&ctx.principal, uuid, attrs)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

/// DescribeInstanceAttribute: one instance by ID (no RegionId), the fields of the Tea
/// model `DescribeInstanceAttributeResponseBody`.
pub(super) fn describe_instance_attribute(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let uuid = one_instance(engine, ctx, p)?;
    let inst = engine.instance(uuid).ok_or_else(|| {
        map(DomainError::NotFound {
            kind: ResourceKind::Instance,
            id: p.opt("InstanceId").unwrap_or_default(),
        })
    })?;
    let sets = engine.placement_group_ids(IdKind::Aliyun);
    let full = render::instance(
        &inst,
        &key_name_of(engine, ctx, &inst),
        &set_of(&sets, &inst),
    );
    let mut out = Map::new();
    for field in [
        "InstanceId",
        "InstanceName",
        "Description",
        "HostName",
        "RegionId",
        "ZoneId",
        "InstanceType",
        "Cpu",
        "Memory",
        "Status",
        "OperationLocks",
        "ImageId",
        "CreationTime",
        "ExpiredTime",
        "InstanceChargeType",
        "InternetChargeType",
        "InternetMaxBandwidthIn",
        "InternetMaxBandwidthOut",
        "InstanceNetworkType",
        "VpcAttributes",
        "PublicIpAddress",
        "InnerIpAddress",
        "EipAddress",
        "SecurityGroupIds",
        "StoppedMode",
        "SerialNumber",
        "CreditSpecification",
        "ClusterId",
        "VlanId",
    ] {
        if let Some(v) = full.get(field) {
            out.insert(field.to_string(), v.clone());
        }
    }
    // Typed as a string here ("optimized" / "none"), a boolean in DescribeInstances.
    out.insert("IoOptimized".into(), json!("optimized"));
    out.insert(
        "DedicatedHostAttribute".into(),
        json!({"DedicatedHostId": "", "DedicatedHostName": ""}),
    );
    Ok(out)
}

/// DescribeUserData: the UserData given at create, base64 as given ("" when none).
pub(super) async fn describe_user_data(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region_name = catalog::region(&region(ctx)?)
        .map(|r| r.aliyun)
        .unwrap_or_default();
    let uuid = one_instance(engine, ctx, p)?;
    let data = engine
        .user_data(&ctx.principal, uuid)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    let id = engine
        .instance(uuid)
        .map(|i| i.aliyun_id)
        .unwrap_or_default();
    Ok(obj(
        json!({"InstanceId": id, "RegionId": region_name, "UserData": data.unwrap_or_default()}),
    ))
}

/// DescribeInstanceVncUrl: a one-time WebSocket address under this server's `/console`
/// (docs/aliyun-errors.md "DescribeInstanceVncUrl"). The token is random per call and
/// recorded nowhere: the address grants nothing until the web console serves it.
pub(super) fn describe_instance_vnc_url(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let uuid = one_instance(engine, ctx, p)?;
    let id = engine
        .instance(uuid)
        .map(|i| i.aliyun_id)
        .unwrap_or_default();
    let token: String = uuid::Uuid::new_v4().simple().to_string();
    // ws:// or wss:// beside the public http(s) URL (checked at start to be one of them).
    let base = ctx.public_url.trim_end_matches('/');
    let base = match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", base.strip_prefix("http://").unwrap_or(base)),
    };
    let url = format!("{base}/console/vnc/{id}?s={token}");
    // Percent-encoded, as ECS returns it (the console page takes it as one query value).
    let encoded: String = url
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok(obj(json!({"VncUrl": encoded})))
}

/// DescribeInstancesFullStatus: each instance's lifecycle status and health and its active
/// system events (docs/system-events.md). A filter by event (ID or type) lists only instances
/// with a matching active event; the event time ranges narrow the events shown.
pub(super) async fn describe_instances_full_status(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region = region(ctx)?;
    let (offset, size) = page(p, &params::PAGE_SIZE_100)?;
    let ids = p.list("InstanceId");
    params::check_count(&params::FULL_STATUS_INSTANCE_IDS, ids.len())?;
    let filter = super::events::EventFilter::parse(p)?;
    let status = p.opt("Status");
    // ECS's health names; one version of its reference spells the healthy one `OK`.
    let health = p
        .opt("HealthStatus")
        .map(|h| if h == "OK" { "Ok".into() } else { h });
    let events = engine
        .system_events(&ctx.principal, None)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    let ids = (!ids.is_empty()).then_some(ids.as_slice());
    let sel = selection(engine, ctx, region, ids, None, status.as_deref());
    let rest = |i: &Instance| {
        health
            .as_deref()
            .is_none_or(|h| render::health(i.state).1 == h)
            && (!filter.narrows()
                || events.iter().any(|v| {
                    v.event.instance == i.uuid
                        && v.status.cycle.active()
                        && filter.matches(&v.event)
                }))
    };
    let rest: Option<&dyn Fn(&Instance) -> bool> =
        (health.is_some() || filter.narrows()).then_some(&rest);
    let (total, page) = engine.select(&ctx.principal, &sel, rest, offset, size);
    let list: Vec<Value> = page
        .iter()
        .map(|i| {
            let (code, name) = render::status_code(i.state);
            let (health_code, health) = render::health(i.state);
            json!({
                "InstanceId": i.aliyun_id,
                "Status": {"Code": code, "Name": name},
                "HealthStatus": {"Code": health_code, "Name": health},
                "ScheduledSystemEventSet": super::events::scheduled_set(&events, i.uuid, &filter),
            })
        })
        .collect();
    Ok(obj(
        json!({"InstanceFullStatusSet": {"InstanceFullStatusType": list}, "TotalCount": total, "PageNumber": offset / size + 1, "PageSize": size}),
    ))
}

/// GetInstanceConsoleOutput: the guest's serial console since its last boot, base64. Windows
/// guests have none on Alibaba Cloud ("Windows instances do not support"): their output is
/// empty (docs/aliyun-errors.md). `RemoveSymbols=true` strips terminal control sequences.
pub(super) fn get_instance_console_output(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let remove_symbols = p.bool("RemoveSymbols")?;
    let uuid = one_instance(engine, ctx, p)?;
    let log = engine
        .console_output(&ctx.principal, uuid)
        .map_err(|e| domain(engine, ctx, e))?;
    let inst = engine.instance(uuid);
    let windows = inst
        .as_ref()
        .is_some_and(|i| i.os == nubis_core::OsFamily::Windows);
    let text = match (windows, remove_symbols) {
        (true, _) => String::new(),
        (false, true) => log.without_symbols(),
        (false, false) => log.text,
    };
    use base64::Engine as _;
    Ok(obj(json!({
        "InstanceId": inst.map(|i| i.aliyun_id).unwrap_or_default(),
        "ConsoleOutput": base64::engine::general_purpose::STANDARD.encode(text),
        "LastUpdateTime": nubis_pipeline::shapes::iso_seconds(log.updated_at_ms),
    })))
}

/// The `ds-` ID of `i`'s deployment set, or "".
fn set_of(sets: &std::collections::HashMap<String, String>, i: &Instance) -> String {
    i.placement_group
        .as_ref()
        .and_then(|g| sets.get(g))
        .cloned()
        .unwrap_or_default()
}
