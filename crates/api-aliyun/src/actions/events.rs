//! System events (docs/system-events.md): CreateSimulatedSystemEvents,
//! CancelSimulatedSystemEvents, DescribeInstanceHistoryEvents, and the event filters and
//! scheduled events DescribeInstancesFullStatus shows. Events are stored records
//! ([`Engine::schedule_system_events`]); their lifecycle is derived in core.
use super::*;
use nubis_core::events::{EventCycle, EventKind, EventStatus, SystemEvent, WhenRefusal};
use nubis_engine::events::{CancelRefusal, EventView};
use nubis_pipeline::shapes::{iso_seconds, parse_iso_seconds};

/// A filter value ECS does not know (its reference: 403 InvalidParameter).
fn bad(name: &str) -> ApiError {
    ApiError::new(
        403,
        "InvalidParameter",
        format!("The Parameter \"{name}\" provided is not valid."),
    )
}

fn time_param(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    match p.str(name) {
        None | Some("") => Ok(None),
        Some(v) => parse_iso_seconds(v).map(Some).ok_or_else(|| bad(name)),
    }
}

/// A required parameter left out: these actions answer 404 (the current ECS reference).
fn missing(name: &str) -> ApiError {
    ApiError {
        status: 404,
        ..ApiError::missing(name)
    }
}

/// A `Name.Start`/`Name.End` range (either end open; the end not before the start).
fn range(p: &Params, name: &str) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let (start, end) = (
        time_param(p, &format!("{name}.Start"))?,
        time_param(p, &format!("{name}.End"))?,
    );
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return Err(ApiError::new(
            403,
            "InvalidParameter.TimeEndBeforeStart",
            "The event time end should be after event time start.",
        ));
    }
    Ok((start, end))
}

fn within(t: i64, (from, to): (Option<i64>, Option<i64>)) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t <= e)
}

/// The values of a repeat list (`Instance<one>.N`, within `limit`), or of its single form
/// `one` when the list is absent (ECS: the single form counts only then), each parsed.
fn list_or_one<T>(
    p: &Params,
    limit: &Constraint,
    one: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<T>, ApiError> {
    let list = format!("Instance{one}");
    let mut names = p.list(&list);
    params::check_count(limit, names.len().max(p.max_index(&list)))?;
    if names.is_empty()
        && let Some(v) = p.opt(one).filter(|v| !v.is_empty())
    {
        names.push(v);
    }
    names
        .iter()
        .map(|n| parse(n).ok_or_else(|| bad(one)))
        .collect()
}

/// What the event filters of DescribeInstanceHistoryEvents and DescribeInstancesFullStatus
/// ask for: event IDs, types (`InstanceEventType.N`, or `EventType` when it is absent), and
/// the publication and NotBefore ranges.
pub(super) struct EventFilter {
    ids: Vec<String>,
    kinds: Vec<EventKind>,
    published: (Option<i64>, Option<i64>),
    not_before: (Option<i64>, Option<i64>),
}

impl EventFilter {
    pub(super) fn parse(p: &Params) -> Result<Self, ApiError> {
        let ids = p.list("EventId");
        params::check_count(&params::EVENT_IDS, ids.len().max(p.max_index("EventId")))?;
        let kinds = list_or_one(p, &params::EVENT_TYPES, "EventType", EventKind::parse)?;
        Ok(Self {
            ids,
            kinds,
            published: range(p, "EventPublishTime")?,
            not_before: range(p, "NotBefore")?,
        })
    }

    /// Whether the request filters by event at all (DescribeInstancesFullStatus then lists
    /// only instances with a matching scheduled event).
    pub(super) fn narrows(&self) -> bool {
        !self.ids.is_empty() || !self.kinds.is_empty()
    }

    pub(super) fn matches(&self, e: &SystemEvent) -> bool {
        (self.ids.is_empty() || self.ids.contains(&e.id))
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && within(e.published_at_ms, self.published)
            && within(e.not_before_ms, self.not_before)
    }
}

fn code_name(code: i64, name: &str) -> Value {
    json!({"Code": code, "Name": name})
}

/// The fields both listings show for an event.
fn event_fields(e: &SystemEvent, s: &EventStatus) -> Map<String, Value> {
    obj(json!({
        "EventId": e.id,
        "EventType": code_name(e.kind.code(), e.kind.name()),
        "EventCycleStatus": code_name(s.cycle.code(), s.cycle.name()),
        "EventPublishTime": iso_seconds(e.published_at_ms),
        "NotBefore": iso_seconds(e.not_before_ms),
        // ECS's words for a simulated event.
        "Reason": if e.simulated { "A simulated event." } else { "" },
        "ImpactLevel": "",
        "ExtendedAttribute": {},
    }))
}

/// DescribeInstancesFullStatus's `ScheduledSystemEventSet` of one instance: its active events
/// that pass the filter.
pub(super) fn scheduled_set(events: &[EventView], instance: Uuid, filter: &EventFilter) -> Value {
    let list: Vec<Value> = events
        .iter()
        .filter(|v| {
            v.event.instance == instance && v.status.cycle.active() && filter.matches(&v.event)
        })
        .map(|v| Value::Object(event_fields(&v.event, &v.status)))
        .collect();
    json!({"ScheduledSystemEventType": list})
}

/// CreateSimulatedSystemEvents: one simulated event of `EventType` at `NotBefore` on each
/// instance of `InstanceId.N` (1–100), committed together; their IDs in order.
pub(super) async fn create_simulated_system_events(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let kind_name = p.opt("EventType").ok_or_else(|| missing("EventType"))?;
    let kind = EventKind::parse(&kind_name)
        .filter(|k| k.simulatable())
        .ok_or_else(|| bad("EventType"))?;
    let not_before = time_param(p, "NotBefore")?.ok_or_else(|| missing("NotBefore"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    match nubis_core::events::check_when(not_before, now) {
        Ok(()) => {}
        Err(WhenRefusal::Passed) => {
            return Err(ApiError::new(
                403,
                "InvalidNotBefore.Passed",
                "The NotBefore of system event has passed.",
            ));
        }
        Err(WhenRefusal::TooFar) => {
            return Err(ApiError::new(
                403,
                "InvalidParameter",
                "The specified NotBefore is more than a year ahead.",
            ));
        }
    }
    // nubis's simulated events never act on the instance.
    if p.bool("TriggerRealOps")? {
        return Err(ApiError::new(
            403,
            "InvalidParameter",
            "TriggerRealOps is not supported: simulated system events never operate on the instance.",
        ));
    }
    let ids = p.list("InstanceId");
    if ids.is_empty() {
        return Err(missing("InstanceId.N"));
    }
    params::check_count(
        &params::FULL_STATUS_INSTANCE_IDS,
        ids.len().max(p.max_index("InstanceId")),
    )?;
    let uuids = instances(engine, ctx, ids, "InstanceId.N")?;
    let events = engine
        .schedule_system_events(&ctx.principal, &uuids, kind, not_before)
        .await
        .map_err(|e| domain(engine, ctx, e))?
        .ok_or_else(|| {
            ApiError::new(
                403,
                "SimulatedEventLimitExceeded",
                format!(
                    "The amount of active simulated system event exceeds limit {}.",
                    nubis_core::events::MAX_PENDING_SIMULATED
                ),
            )
        })?;
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    Ok(obj(json!({"EventIdSet": {"EventId": ids}})))
}

/// CancelSimulatedSystemEvents: every one of `EventId.N` (1–100) must be a simulated event of
/// the caller still scheduled or executing; then all are canceled in one commit.
pub(super) async fn cancel_simulated_system_events(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let ids = p.list("EventId");
    if ids.is_empty() {
        return Err(missing("EventId.N"));
    }
    params::check_count(
        &params::CANCEL_EVENT_IDS,
        ids.len().max(p.max_index("EventId")),
    )?;
    // Events of instances in another region are not found here.
    let in_region = |v: &EventView| {
        v.instance
            .as_ref()
            .is_none_or(|i| Some(&i.region) == ctx.region.as_ref())
    };
    match engine
        .cancel_system_events(&ctx.principal, &ids, in_region)
        .await
        .map_err(|e| domain(engine, ctx, e))?
    {
        Ok(()) => Ok(Map::new()),
        Err(CancelRefusal::NotFound(id)) => Err(event_not_found(&id)),
        Err(CancelRefusal::Ended(id, now)) => Err(event_not_cancelable(&id, now)),
    }
}

fn event_not_found(id: &str) -> ApiError {
    ApiError::new(
        403,
        "InvalidEventId.NotFound",
        format!("Cannot find EventId: {id}."),
    )
}

fn event_not_cancelable(id: &str, now: EventCycle) -> ApiError {
    ApiError::new(
        403,
        "InvalidStatus.SystemEvent",
        format!(
            "The system event \"{id}\" is {} and can no longer be canceled.",
            now.name()
        ),
    )
}

/// DescribeInstanceHistoryEvents: the caller's events in the region, newest published first,
/// filtered; by default only ended ones (Avoided, Executed, Canceled, Failed).
pub(super) async fn describe_instance_history_events(
    engine: &Engine,
    ctx: &Ctx,
    p: &Params,
) -> Out {
    region(ctx)?;
    let filter = EventFilter::parse(p)?;
    let cycles = list_or_one(
        p,
        &params::EVENT_STATUSES,
        "EventCycleStatus",
        EventCycle::parse,
    )?;
    let resource_type = p.opt("ResourceType").filter(|t| !t.is_empty());
    match resource_type.as_deref() {
        // The SDK model spells the last `managedhost`, the reference `managehost`.
        None | Some("instance" | "ddh" | "managedhost" | "managehost") => {}
        Some(_) => return Err(bad("ResourceType")),
    }
    let resources = p.list("ResourceId");
    params::check_count(
        &params::EVENT_RESOURCE_IDS,
        resources.len().max(p.max_index("ResourceId")),
    )?;
    // ResourceId.N wins over InstanceId (the ECS reference).
    let wanted: Vec<String> = if resources.is_empty() {
        p.opt("InstanceId")
            .filter(|i| !i.is_empty())
            .into_iter()
            .collect()
    } else {
        resources
    };
    let tags: Vec<(String, String)> = p
        .groups("Tag")
        .into_iter()
        .filter_map(|g| {
            Some((
                g.get("Key")?.clone(),
                g.get("Value").cloned().unwrap_or_default(),
            ))
        })
        .collect();
    params::check_count(&params::TAGS, p.max_index("Tag"))?;
    let paging = Paging::parse(p)?;
    // nubis has no dedicated hosts nor managed hosts: their events are none.
    let events = if resource_type.as_deref().is_some_and(|t| t != "instance")
        || p.opt("ImpactLevel").is_some_and(|l| !l.is_empty())
    {
        Vec::new()
    } else {
        engine
            .system_events(&ctx.principal, None)
            .await
            .map_err(|e| domain(engine, ctx, e))?
    };
    let region = ctx.region.clone();
    let rows: Vec<Map<String, Value>> = events
        .iter()
        .filter(|v| {
            filter.matches(&v.event)
                && if cycles.is_empty() {
                    !v.status.cycle.active()
                } else {
                    cycles.contains(&v.status.cycle)
                }
        })
        .filter_map(|v| {
            // A released instance keeps its events: the store's last record names it.
            let inst = v.instance.as_deref();
            let aliyun = inst.map(|i| i.aliyun_id.clone()).unwrap_or_default();
            if inst.is_some_and(|i| Some(&i.region) != region.as_ref()) {
                return None;
            }
            if !wanted.is_empty() && !wanted.contains(&aliyun) {
                return None;
            }
            if !tags.iter().all(|(k, val)| {
                inst.is_some_and(|i| {
                    i.tags
                        .iter()
                        .any(|(tk, tv)| tk == k && (val.is_empty() || tv == val))
                })
            }) {
                return None;
            }
            let mut row = event_fields(&v.event, &v.status);
            row.insert("InstanceId".into(), json!(aliyun));
            row.insert("ResourceType".into(), json!("instance"));
            row.insert("ReasonCode".into(), json!(""));
            row.insert(
                "EventFinishTime".into(),
                json!(v.status.finished_at_ms.map(iso_seconds).unwrap_or_default()),
            );
            Some(row)
        })
        .collect();
    let total = rows.len();
    let (offset, size) = paging.window();
    let page: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(size)
        .map(Value::Object)
        .collect();
    let mut out = obj(json!({
        "InstanceSystemEventSet": {"InstanceSystemEventType": page},
        "TotalCount": total,
        "PageNumber": offset / size + 1,
        "PageSize": size,
    }));
    if paging.tokens && offset.saturating_add(size) < total {
        out.insert("NextToken".into(), json!((offset + size).to_string()));
    }
    Ok(out)
}

/// PageNumber/PageSize (1–100, default 10), or MaxResults (10–100: smaller values read as
/// 10, larger as 100) with NextToken (nubis's tokens: the offset of the next page).
struct Paging {
    offset: usize,
    size: usize,
    tokens: bool,
}

impl Paging {
    fn parse(p: &Params) -> Result<Self, ApiError> {
        let token = p.opt("NextToken").filter(|t| !t.is_empty());
        let max = p.opt("MaxResults").filter(|m| !m.is_empty());
        if token.is_none() && max.is_none() {
            let (offset, size) = page(p, &params::PAGE_SIZE_100)?;
            return Ok(Self {
                offset,
                size,
                tokens: false,
            });
        }
        let size = match max {
            None => 10,
            Some(m) => m
                .parse::<i64>()
                .map_err(|_| ApiError::invalid("MaxResults", &m))?
                .clamp(10, 100) as usize,
        };
        let offset = match token {
            None => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("NextToken", &t))?,
        };
        Ok(Self {
            offset,
            size,
            tokens: true,
        })
    }

    fn window(&self) -> (usize, usize) {
        (self.offset, self.size)
    }
}
