//! An instance's page, its actions with their confirmations, and creation.

use super::*;

/// The instance `id` if the principal sees it.
pub(super) fn visible(s: &AppState, who: &Who, id: Uuid) -> Option<Instance> {
    if who.read_denied.is_some() {
        return None;
    }
    s.engine
        .instances_by_id(&who.principal, &[id])
        .into_iter()
        .next()
}

/// What the instance page shows besides the record: operations, audit events, guest facts,
/// key pair names.
pub struct Details {
    pub operations: Vec<nubis_core::Operation>,
    pub events: Vec<nubis_core::audit::AuditEvent>,
    pub guest: Option<serde_json::Value>,
    pub keys: Vec<KeyPair>,
}

pub(super) async fn details(s: &AppState, who: &Who, inst: &Instance) -> Details {
    let operations = s.engine.operations_of(inst.uuid).await.unwrap_or_default();
    let mut events = Vec::new();
    for id in [
        inst.tencent_id.clone(),
        inst.aliyun_id.clone(),
        inst.uuid.to_string(),
    ] {
        let q = nubis_core::audit::AuditQuery {
            filters: vec![nubis_core::audit::AuditFilter::Resource(id)],
            until_ms: i64::MAX,
            limit: 20,
            ..Default::default()
        };
        events.extend(
            s.engine
                .audit_events(&who.principal, q)
                .await
                .unwrap_or_default(),
        );
    }
    events.sort_by(|a, b| b.time_ms.cmp(&a.time_ms).then(b.id.cmp(&a.id)));
    events.dedup_by(|a, b| a.id == b.id);
    events.truncate(20);
    let keys = s
        .engine
        .key_pairs(&who.principal)
        .into_iter()
        .filter(|k| inst.key_ids.contains(&k.id))
        .collect();
    Details {
        operations,
        events,
        guest: s
            .engine
            .driver()
            .snapshot(inst.uuid)
            .map(pages::without_secrets),
        keys,
    }
}

pub(super) async fn instance_page(
    State(s): State<AppState>,
    Page(who): Page,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(inst) = instance_of(&s, &who, &id) else {
        return not_found(&who, "The instance");
    };
    let accepted = q
        .get("accepted")
        .filter(|r| r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let d = details(&s, &who, &inst).await;
    html(pages::instance(
        &who,
        &inst,
        &d,
        accepted.map(String::as_str),
    ))
}

/// The key pairs the principal may use, as the session's API names them.
pub(super) fn key_refs(s: &AppState, who: &Who) -> Vec<KeyRef> {
    s.engine
        .key_pairs(&who.principal)
        .into_iter()
        .map(|k| KeyRef {
            id: k.id,
            name: k.name,
        })
        .collect()
}

pub(super) async fn confirm_page(
    State(s): State<AppState>,
    Page(who): Page,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let Some(inst) = instance_of(&s, &who, &id) else {
        return not_found(&who, "The instance");
    };
    let Some((action, label)) = ACTIONS.iter().find(|(a, _)| *a == action) else {
        return not_found(&who, "The action");
    };
    html(pages::confirm(
        &who,
        &inst,
        action,
        label,
        &key_refs(&s, &who),
        None,
    ))
}

/// The action a confirmation form asks for, with its options checked against the clouds'
/// closed sets.
pub(super) fn parse_act(action: &str, f: &HashMap<String, String>) -> Option<Act> {
    let force_stop = field(f, "force_stop") == "on";
    let one_of = |v: &str, allowed: &[&str]| allowed.contains(&v).then(|| v.to_string());
    Some(match action {
        "start" => Act::Start,
        "stop" => Act::Stop(one_of(
            field(f, "stop_type"),
            &["SOFT", "HARD", "SOFT_FIRST"],
        )?),
        "reboot" => Act::Reboot(one_of(field(f, "reboot_type"), &["SOFT", "HARD"])?),
        "enter_rescue" => Act::EnterRescue {
            password: field(f, "password").to_string(),
            force_stop,
        },
        "exit_rescue" => Act::ExitRescue,
        "reset_password" => Act::ResetPassword {
            password: field(f, "password").to_string(),
            force_stop,
        },
        "associate" => Act::Associate {
            key_id: field(f, "key_id").to_string(),
            force_stop,
        },
        "disassociate" => Act::Disassociate {
            key_id: field(f, "key_id").to_string(),
            force_stop,
        },
        "terminate" => Act::Terminate,
        _ => return None,
    })
}

pub(super) async fn act(
    State(s): State<AppState>,
    Peer(peer): Peer,
    Path((id, action)): Path<(String, String)>,
    Posted { who, form: f }: Posted,
) -> Response {
    let Some(inst) = instance_of(&s, &who, &id) else {
        return not_found(&who, "The instance");
    };
    let Some((name, label)) = ACTIONS.iter().find(|(a, _)| *a == action) else {
        return not_found(&who, "The action");
    };
    let Some(a) = parse_act(name, &f).filter(|_| Act::offered(name, &who.session.kind)) else {
        return (
            StatusCode::BAD_REQUEST,
            html(pages::message(
                &who,
                "Bad request",
                "The form's options are not ones this action takes.",
            )),
        )
            .into_response();
    };
    let out = backend::act(&s, &who.session, peer, &inst, &a).await;
    match out.error {
        None => Redirect::to(&format!(
            "/console/instances/{}?accepted={}",
            inst.uuid, out.request_id
        ))
        .into_response(),
        Some(e) => html(pages::confirm(
            &who,
            &inst,
            name,
            label,
            &key_refs(&s, &who),
            Some((&e, &out.request_id)),
        )),
    }
}

pub(super) async fn create_page(State(s): State<AppState>, Page(who): Page) -> Response {
    html(pages::create(&who, &key_refs(&s, &who), None))
}

pub(super) async fn create(
    State(s): State<AppState>,
    Peer(peer): Peer,
    Posted { who, form: f }: Posted,
) -> Response {
    let keys = key_refs(&s, &who);
    let bad = |msg: &str| {
        html(pages::create(
            &who,
            &keys,
            Some((&("Console".to_string(), msg.to_string()), "")),
        ))
    };
    let Some(image) = catalog::IMAGES
        .iter()
        .find(|i| i.public && i.id == field(&f, "image"))
    else {
        return bad("Choose an image.");
    };
    let Some(zone) = catalog::ZONES.iter().find(|z| z.id == field(&f, "zone")) else {
        return bad("Choose a zone.");
    };
    let key = match field(&f, "key_id") {
        "" => None,
        id => match keys.iter().find(|k| k.id == id) {
            Some(k) => Some(k.clone()),
            None => return bad("Choose a key pair you have."),
        },
    };
    let new = NewInstance {
        name: field(&f, "name").to_string(),
        image,
        instance_type: field(&f, "instance_type").to_string(),
        zone,
        password: field(&f, "password").to_string(),
        key,
    };
    let (out, made) = backend::create(&s, &who.session, peer, &new).await;
    if let Some(e) = &out.error {
        return html(pages::create(&who, &keys, Some((e, &out.request_id))));
    }
    let uuid = made
        .and_then(|(kind, id)| s.engine.resolve(&who.principal, kind, &[id]).ok())
        .and_then(|u| u.into_iter().next());
    match uuid {
        Some(u) => Redirect::to(&format!(
            "/console/instances/{u}?accepted={}",
            out.request_id
        ))
        .into_response(),
        None => Redirect::to("/console/fleet").into_response(),
    }
}
