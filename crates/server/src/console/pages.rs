//! The console's pages (maud: every inserted value is escaped).

use super::backend::KeyRef;
use super::{ACTIONS, Details, FleetPage, FleetQuery, Who};
use crate::console::session::Kind;
use maud::{DOCTYPE, Markup, html};
use nubis_core::{Instance, InstanceState, KeyPair, catalog};
use serde_json::Value;

/// A cloud's error: its code and message, and the RequestId it came with.
pub type Refusal<'a> = (&'a (String, String), &'a str);

fn time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn page(who: Option<&Who>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · nubis console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/console/fleet" { "nubis" }
                    @if let Some(w) = who {
                        nav {
                            a href="/console/fleet" { "Fleet" }
                            a href="/console/operations" { "Operations" }
                            a href="/console/keypairs" { "Key pairs" }
                            @if w.principal.is_admin { a href="/console/health" { "Health" } }
                        }
                        span.user { (w.user) }
                        form.inline method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(w.session.csrf);
                            button id="sign-out" type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn refusal(r: Option<Refusal<'_>>) -> Markup {
    html! {
        @if let Some(((code, message), request_id)) = r {
            div.error role="alert" {
                strong.code { (code) } " " span.message { (message) }
                @if !request_id.is_empty() { div.rid { "RequestId " code { (request_id) } } }
            }
        }
    }
}

pub fn message(who: &Who, title: &str, text: &str) -> Markup {
    page(
        Some(who),
        title,
        html! { p { (text) } p { a href="/console/fleet" { "Back to the fleet" } } },
    )
}

pub fn login(error: Option<(String, String)>) -> Markup {
    let e = error.as_ref().map(|e| (e, ""));
    page(
        None,
        "Sign in",
        html! {
            (refusal(e))
            div.cards {
                form.card id="keystone" method="post" action="/console/login" {
                    h2 { "Keystone user" }
                    input type="hidden" name="method" value="keystone";
                    label { "User" input name="user" autocomplete="username" required; }
                    label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                    label { "Project (default: the user's name)" input name="project"; }
                    label { "Domain" input name="domain" value="Default"; }
                    button type="submit" { "Sign in" }
                }
                form.card id="access-key" method="post" action="/console/login" {
                    h2 { "Access key" }
                    input type="hidden" name="method" value="access_key";
                    label { "SecretId / AccessKeyId" input name="key_id" autocomplete="username" required; }
                    label { "SecretKey / AccessKeySecret" input name="key_secret" type="password" autocomplete="current-password" required; }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// Each cloud's words for an instance's state.
fn states(i: &Instance) -> (&'static str, &'static str, &'static str) {
    let nova = nubis_api_openstack::state::nova_state(
        i.state,
        nubis_api_openstack::state::Extra {
            lock: i.lock.as_ref().map(|l| l.action),
            ..Default::default()
        },
    );
    (
        nubis_api_tencent::render::state(i.state),
        nubis_api_aliyun::render::status(i.state),
        nova.status,
    )
}

fn latest_op(i: &Instance) -> Markup {
    html! {
        @if let Some(op) = &i.latest_op {
            span.op { (op.action.as_str()) " " span class=(format!("opstate {}", op.state.as_str())) { (op.state.as_str()) } }
        } @else { "—" }
    }
}

pub fn rows(p: &FleetPage) -> Markup {
    html! {
        @for i in &p.rows {
            @let (t, a, n) = states(i);
            tr data-id=(i.uuid) {
                td { a.ids href=(format!("/console/instances/{}", i.uuid)) {
                    span.tid { (i.tencent_id) } br; span.aid { (i.aliyun_id) } br; span.uuid { (i.uuid) } } }
                td.name { (i.name) }
                td.state { span.t { (t) } " · " span.a { (a) } " · " span.n { (n) } }
                td { (catalog::zone(&i.zone).map_or(i.zone.as_str(), |z| z.tencent)) }
                td { (i.instance_type) }
                td { (i.image_id) }
                td { (latest_op(i)) }
            }
        }
        @if p.rows.is_empty() { tr { td colspan="7" { "No instances." } } }
    }
}

pub fn fleet(who: &Who, q: &FleetQuery, p: &FleetPage) -> Markup {
    let live = format!("/console/events?view=fleet&{}", q.to_query(p.page));
    page(
        Some(who),
        "Fleet",
        html! {
            @if let Some((code, msg)) = &who.read_denied {
                (refusal(Some(((&(code.clone(), msg.clone())), ""))))
            }
            form.filters method="get" action="/console/fleet" {
                input name="q" value=(q.q) placeholder="Search name or ID" maxlength="128";
                select name="state" {
                    option value="" { "Any state" }
                    @for s in InstanceState::ALL {
                        @if s.is_listed() {
                            option value=(s.as_str()) selected[q.state == s.as_str()] { (nubis_api_tencent::render::state(s)) }
                        }
                    }
                }
                select name="sort" {
                    @for (v, l) in [("", "Newest first"), ("oldest", "Oldest first"), ("name", "Name"), ("state", "State")] {
                        option value=(v) selected[q.sort == v] { (l) }
                    }
                }
                button type="submit" { "Filter" }
                @if who.can_act { a.button id="create" href="/console/instances/new" { "Create instance" } }
            }
            p.count { (p.total) @if p.total == 1 { " instance" } @else { " instances" } " · page " (p.page) " of " (p.pages) }
            table.fleet {
                thead { tr { th { "ID (Tencent · Alibaba · Nova)" } th { "Name" } th { "State (Tencent · Alibaba · Nova)" } th { "Zone" } th { "Type" } th { "Image" } th { "Latest operation" } } }
                tbody id="rows" data-live=(live) { (rows(p)) }
            }
            nav.pages {
                @if p.page > 1 { a href=(format!("/console/fleet?{}", q.to_query(p.page - 1))) { "← Previous" } }
                @if p.page < p.pages { a href=(format!("/console/fleet?{}", q.to_query(p.page + 1))) { "Next →" } }
            }
        },
    )
}

pub fn operations(who: &Who, recent: &[Instance]) -> Markup {
    page(
        Some(who),
        "Operations",
        html! {
            p { "The latest operation of each instance, most recently changed first." }
            table {
                thead { tr { th { "Instance" } th { "Operation" } th { "RequestId" } th { "Error" } th { "Changed" } } }
                tbody {
                    @for i in recent {
                        @if let Some(op) = &i.latest_op {
                            tr {
                                td { a href=(format!("/console/instances/{}", i.uuid)) { (i.tencent_id) } " " (i.name) }
                                td { (latest_op(i)) }
                                td { code { (op.request_id) } }
                                td { (op.error.as_deref().unwrap_or("")) }
                                td { (time(i.updated_at_ms)) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A driver's facts with anything secret-looking left out.
pub fn without_secrets(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase();
                    !["password", "hash", "secret", "token", "private"]
                        .iter()
                        .any(|s| k.contains(s))
                })
                .map(|(k, v)| (k, without_secrets(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_secrets).collect()),
        other => other,
    }
}

/// The part of the instance page that updates live.
pub fn panel(who: &Who, i: &Instance, d: &Details) -> Markup {
    let (t, a, n) = states(i);
    let zone = catalog::zone(&i.zone);
    html! {
        section {
            h2 { "Attributes" }
            table.attrs {
                tr { th { "State" } td id="state" { span.t { (t) } " · " span.a { (a) } " · " span.n { (n) } } }
                tr { th { "Latest operation" } td id="latest-op" { (latest_op(i)) } }
                tr { th { "IDs" } td { (i.tencent_id) " · " (i.aliyun_id) " · " (i.uuid) } }
                tr { th { "Name" } td { (i.name) } }
                tr { th { "Zone" } td { @if let Some(z) = zone { (z.tencent) " · " (z.aliyun) " · " (z.openstack) } @else { (i.zone) } } }
                tr { th { "Type" } td { (i.instance_type) } }
                tr { th { "Image" } td { (i.image_id) } }
                tr { th { "Private IP" } td { (i.private_ip) } }
                tr { th { "Created" } td { (time(i.created_at_ms)) } }
                @if let Some(ssh) = &i.ssh_endpoint { tr { th { "SSH" } td { (ssh) } } }
            }
            h2 { "Disks" }
            ul {
                li { "System: " (i.system_disk.id) " (" (i.system_disk.size_gib) " GiB " (i.system_disk.disk_type) ")" }
                @for disk in &i.data_disks { li { "Data: " (disk.id) " (" (disk.size_gib) " GiB " (disk.disk_type) ")" } }
            }
            h2 { "Key pairs" }
            ul id="keys" { @for k in &d.keys { li { (k.name) " (" (k.id) ")" } } @if d.keys.is_empty() { li { "None" } } }
            h2 { "Operations" }
            table id="operations" {
                thead { tr { th { "Action" } th { "State" } th { "Steps" } th { "Started" } th { "Took" } th { "Error" } th { "RequestId" } } }
                tbody {
                    @for op in &d.operations {
                        tr {
                            td { (op.action.as_str()) }
                            td { (op.state.as_str()) }
                            td { @for (n, step) in op.steps.iter().enumerate() {
                                @let name = serde_json::to_value(step).ok().and_then(|v| v["step"].as_str().map(str::to_string)).unwrap_or_default();
                                span class=(if (n as u32) < op.steps_done { "step done" } else { "step" }) { (name) } " "
                            } }
                            td { (time(op.created_at_ms)) }
                            td { @if let Some(f) = op.finished_at_ms { (format!("{:.1} s", (f - op.created_at_ms) as f64 / 1000.0)) } }
                            td { (op.error.as_deref().unwrap_or("")) }
                            td { code { (op.request_id) } }
                        }
                    }
                }
            }
            h2 { "Audit events" }
            table id="audit" {
                thead { tr { th { "Time" } th { "Cloud" } th { "Action" } th { "Who" } th { "Result" } th { "Source" } } }
                tbody {
                    @for e in &d.events {
                        tr {
                            td { (time(e.time_ms)) }
                            td { (e.cloud) }
                            td { (e.action) }
                            td { (e.user) }
                            td { (e.error_code.as_deref().unwrap_or("OK")) }
                            td { (e.source_ip) " " (e.user_agent) }
                        }
                    }
                }
            }
            h2 { "Guest" }
            pre id="guest" { @if let Some(g) = &d.guest { (serde_json::to_string_pretty(g).unwrap_or_default()) } @else { "No guest yet." } }
            @if !who.can_act { p.readonly { "Read-only: your permissions allow no changes." } }
        }
    }
}

pub fn instance(who: &Who, i: &Instance, d: &Details, accepted: Option<&str>) -> Markup {
    let live = format!("/console/events?view=instance&id={}", i.uuid);
    let title = if i.name.is_empty() {
        i.tencent_id.clone()
    } else {
        i.name.clone()
    };
    page(
        Some(who),
        &title,
        html! {
            @if let Some(rid) = accepted { div.ok role="status" { "Accepted. RequestId " code { (rid) } } }
            @if who.can_act {
                nav.actions {
                    @for (a, label) in ACTIONS {
                        @if super::Act::offered(a, &who.session.kind) {
                            a.button id=(format!("act-{a}")) href=(format!("/console/instances/{}/{a}", i.uuid)) { (label) }
                        }
                    }
                }
            }
            p { a id="serial-link" href=(format!("/console/instances/{}/serial", i.uuid)) { "Serial console" } }
            div id="panel" data-live=(live) { (panel(who, i, d)) }
        },
    )
}

pub fn confirm(
    who: &Who,
    i: &Instance,
    action: &str,
    label: &str,
    keys: &[KeyRef],
    error: Option<Refusal<'_>>,
) -> Markup {
    let keystone = who.session.kind == Kind::Keystone;
    page(
        Some(who),
        label,
        html! {
            (refusal(error))
            p { (label) " of instance " strong { (i.tencent_id) } " (" (i.name) ")?" }
            form id="confirm" method="post" action=(format!("/console/instances/{}/{action}", i.uuid)) {
                input type="hidden" name="csrf" value=(who.session.csrf);
                @match action {
                    "stop" => {
                        @if keystone { input type="hidden" name="stop_type" value="SOFT"; }
                        @else { label { "Stop type" select name="stop_type" { option { "SOFT" } option { "HARD" } option { "SOFT_FIRST" } } } }
                    }
                    "reboot" => { label { "Reboot type" select name="reboot_type" { option { "SOFT" } option { "HARD" } } } }
                    "enter_rescue" | "reset_password" => {
                        label { "Password" input name="password" type="password" autocomplete="new-password" required; }
                        @if !keystone { label.check { input type="checkbox" name="force_stop"; "ForceStop (stop a running instance first)" } }
                    }
                    "associate" | "disassociate" => {
                        label { "Key pair" select name="key_id" { @for k in keys { option value=(k.id) { (k.name) " (" (k.id) ")" } } } }
                        label.check { input type="checkbox" name="force_stop"; "ForceStop (stop a running instance first)" }
                    }
                    _ => {}
                }
                button id="confirm-button" type="submit" { "Confirm: " (label) }
                " " a href=(format!("/console/instances/{}", i.uuid)) { "Cancel" }
            }
        },
    )
}

pub fn create(who: &Who, keys: &[KeyRef], error: Option<Refusal<'_>>) -> Markup {
    page(
        Some(who),
        "Create instance",
        html! {
            (refusal(error))
            form id="create-form" method="post" action="/console/instances" {
                input type="hidden" name="csrf" value=(who.session.csrf);
                label { "Name" input name="name" maxlength="60"; }
                label { "Image" select name="image" { @for im in catalog::IMAGES { @if im.public { option value=(im.id) { (im.name) } } } } }
                label { "Type" select name="instance_type" {
                    @for t in catalog::INSTANCE_TYPES { option value=(t.name) selected[t.name == catalog::DEFAULT_INSTANCE_TYPE] { (t.name) " (" (t.cpu) " vCPU, " (t.memory_mib / 1024) " GiB)" } }
                } }
                label { "Zone" select name="zone" { @for z in catalog::ZONES { @if !z.edge { option value=(z.id) { (z.name) } } } } }
                label { "Password" input name="password" type="password" autocomplete="new-password"; }
                label { "Key pair (instead of the password)" select name="key_id" { option value="" { "None" } @for k in keys { option value=(k.id) { (k.name) } } } }
                button id="create-button" type="submit" { "Create" }
            }
        },
    )
}

pub fn keypairs(
    who: &Who,
    keys: &[KeyPair],
    private: Option<&str>,
    error: Option<Refusal<'_>>,
) -> Markup {
    page(
        Some(who),
        "Key pairs",
        html! {
            (refusal(error))
            @if let Some(pk) = private {
                div.ok role="status" {
                    p { "The private key is shown this once: save it now." }
                    textarea id="private-key" readonly rows="8" cols="70" { (pk) }
                }
            }
            table id="keypairs" {
                thead { tr { th { "Name" } th { "ID" } th { "Created" } th {} } }
                tbody {
                    @for k in keys {
                        tr {
                            td.name { (k.name) }
                            td { (k.id) }
                            td { (time(k.created_at_ms)) }
                            td { @if who.can_act { a.button href=(format!("/console/keypairs/{}/delete", k.id)) { "Delete" } } }
                        }
                    }
                    @if keys.is_empty() { tr { td colspan="4" { "No key pairs." } } }
                }
            }
            @if who.can_act {
                form id="key-form" method="post" action="/console/keypairs" {
                    h2 { "Create or import" }
                    input type="hidden" name="csrf" value=(who.session.csrf);
                    label { "Name" input name="name" required maxlength="60"; }
                    label { "Public key to import (empty: create a new key pair)" textarea name="public_key" rows="3" cols="70" {} }
                    button id="key-button" type="submit" { "Create key pair" }
                }
            }
        },
    )
}

pub fn confirm_delete_key(who: &Who, k: &KeyPair, error: Option<Refusal<'_>>) -> Markup {
    page(
        Some(who),
        "Delete key pair",
        html! {
            (refusal(error))
            p { "Delete key pair " strong { (k.name) } " (" (k.id) ")?" }
            form id="confirm" method="post" action=(format!("/console/keypairs/{}/delete", k.id)) {
                input type="hidden" name="csrf" value=(who.session.csrf);
                button id="confirm-button" type="submit" { "Confirm: delete" }
                " " a href="/console/keypairs" { "Cancel" }
            }
        },
    )
}

/// The serial console: the boot log so far, and the terminal attached to the port.
pub fn serial(who: &Who, i: &Instance, log: &str, available: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Serial console · " (i.tencent_id) " · nubis console" }
                link rel="stylesheet" href="/console/assets/console.css";
                link rel="stylesheet" href="/console/assets/xterm.css";
                script src="/console/assets/xterm.js" defer {}
                script src="/console/assets/serial.js" defer {}
            }
            body {
                main {
                    h1 { "Serial console of " (i.tencent_id) " (" (i.name) ")" }
                    p { a href=(format!("/console/instances/{}", i.uuid)) { "← Back to the instance" } " · " span id="serial-status" { "connecting…" } }
                    h2 { "Boot log" }
                    pre id="boot-log" { (log) }
                    @if available {
                        div id="terminal" data-ws=(format!("/console/instances/{}/serial/ws", i.uuid)) data-writable=(if who.can_act { "1" } else { "0" }) {}
                    } @else {
                        p.readonly { "No serial port to attach to: the guest is not running on this host's qemu driver (the sim driver has none)." }
                    }
                }
            }
        }
    }
}

/// The live part of the health page.
pub fn health_panel(
    charts: &[Markup],
    states: &[(String, usize)],
    samples: usize,
    since_ms: Option<i64>,
) -> Markup {
    html! {
        p { "This node's metrics every " (super::health::INTERVAL.as_secs()) " s: " (samples) " samples"
            @if let Some(t) = since_ms { " since " (time(t)) } " (ten minutes at most)." }
        div.charts { @for c in charts { (c) } }
        h2 { "Instances by state" }
        table id="states" {
            thead { tr { th { "State" } th { "Instances" } } }
            tbody { @for (st, n) in states { tr { td { (st) } td { (n) } } } }
        }
    }
}

pub fn health(who: &Who, panel: Markup) -> Markup {
    page(
        Some(who),
        "Health",
        html! {
            div id="health" data-live="/console/events?view=health" { (panel) }
        },
    )
}
