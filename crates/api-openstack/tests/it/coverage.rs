//! Every registered OpenStack operation (Keystone, Nova, Glance) against the checks every
//! operation must pass: no token → 401 in its service's envelope, an unknown body field → 400
//! where the schema forbids one, a burst over the write limit → 429. Operations a check does
//! not apply to are listed here by name, and the lists are checked against the registries, so
//! a new operation cannot be skipped silently.

use nubis_api_openstack::{COMPUTE, IDENTITY, IMAGE, Need, OpenStackApi, Route};
use nubis_pipeline::ActionSpec;
use serde_json::{Value, json};
use std::collections::BTreeSet;

use nubis_testkit::PASSWORD;
/// A server that does not exist: limited operations are counted before the lookup.
const MISSING: &str = "00000000-0000-4000-8000-000000000000";

/// Operations that need no token (the 401 check does not apply).
const PUBLIC: &[&str] = &[
    "identity.versions",
    "identity.version",
    "identity.token.issue",
    "compute.versions",
    "compute.version",
    "compute.version.v2",
    "image.versions",
    "image.versions.list",
];

/// Operations with a body whose schema allows fields it does not know (Keystone's auth; Nova's
/// deferred-delete actions, which validate no body).
const OPEN_BODY: &[&str] = &[
    "identity.token.issue",
    "server.action.restore",
    "server.action.forceDelete",
];

/// Operations without a rate limit: reads, the public ones, Keystone's token operations.
const UNLIMITED: &[&str] = &[
    "identity.versions",
    "identity.version",
    "identity.token.issue",
    "identity.token.validate",
    "identity.token.revoke",
    "compute.versions",
    "compute.version",
    "compute.version.v2",
    "extension.list",
    "extension.show",
    "server.ips.list",
    "server.ips.show",
    "server.password.show",
    "server.diagnostics",
    "os_host.list",
    "os_host.show",
    "os_host.startup",
    "os_host.shutdown",
    "os_host.reboot",
    "usage_audit_log.list",
    "usage_audit_log.show",
    "server.list",
    "server.detail",
    "server.show",
    "server.metadata.list",
    "server.metadata.show",
    "server.tags.list",
    "server.tags.show",
    "server.shares.list",
    "server.shares.show",
    "server.migrations.list",
    "instance_action.list",
    "instance_action.show",
    "flavor.list",
    "flavor.detail",
    "flavor.show",
    "flavor.extra_specs",
    "flavor.extra_spec.show",
    "flavor.access",
    "keypair.list",
    "keypair.show",
    "server_group.list",
    "server_group.show",
    "image.proxy.list",
    "image.proxy.detail",
    "image.proxy.show",
    "image.proxy.metadata.list",
    "image.proxy.metadata.show",
    "availability_zone.list",
    "availability_zone.detail",
    "hypervisor.list",
    "hypervisor.detail",
    "hypervisor.statistics",
    "hypervisor.show",
    "hypervisor.uptime",
    "hypervisor.search",
    "hypervisor.servers",
    "service.list",
    "aggregate.list",
    "aggregate.show",
    "usage.list",
    "usage.show",
    "limits",
    "quota_set.show",
    "quota_set.defaults",
    "quota_set.detail",
    "quota_class_set.show",
    "migration.list",
    "image.versions",
    "image.versions.list",
    "image.list",
    "image.show",
    "image.download",
    "image.member.list",
    "image.member.show",
    "image.schema.image",
    "image.schema.images",
    "image.schema.member",
    "image.schema.members",
    "image.info.import",
    "image.tasks",
    "image.task.list",
    "image.task.show",
    "image.metadef.namespace.list",
    "image.metadef.namespace.show",
    "image.metadef.object.list",
    "image.metadef.object.show",
    "image.metadef.property.list",
    "image.metadef.property.show",
    "image.metadef.tag.list",
    "image.metadef.tag.show",
    "image.metadef.resource_type.list",
    "image.metadef.association.list",
    "image.schema.metadef.namespace",
    "image.schema.metadef.namespaces",
    "image.schema.metadef.object",
    "image.schema.metadef.objects",
    "image.schema.metadef.property",
    "image.schema.metadef.properties",
    "image.schema.metadef.tag",
    "image.schema.metadef.tags",
    "image.schema.metadef.resource_type",
    "image.schema.metadef.resource_types",
    "identity.auth.projects",
    "identity.auth.domains",
    "identity.domain.list",
    "identity.domain.create",
    "identity.domain.show",
    "identity.domain.update",
    "identity.domain.delete",
    "identity.project.list",
    "identity.project.create",
    "identity.project.show",
    "identity.project.update",
    "identity.project.delete",
    "identity.user.list",
    "identity.user.create",
    "identity.user.show",
    "identity.user.update",
    "identity.user.delete",
    "identity.user.password",
    "identity.user.projects",
    "identity.user.groups",
    "identity.group.list",
    "identity.group.create",
    "identity.group.show",
    "identity.group.update",
    "identity.group.delete",
    "identity.group.users",
    "identity.group.member.add",
    "identity.group.member.remove",
    "identity.group.member.check",
    "identity.role.list",
    "identity.role.create",
    "identity.role.show",
    "identity.role.update",
    "identity.role.delete",
    "identity.grant.project_user.list",
    "identity.grant.project_user.put",
    "identity.grant.project_user.check",
    "identity.grant.project_user.delete",
    "identity.grant.project_group.list",
    "identity.grant.project_group.put",
    "identity.grant.project_group.check",
    "identity.grant.project_group.delete",
    "identity.grant.domain_user.list",
    "identity.grant.domain_user.put",
    "identity.grant.domain_user.check",
    "identity.grant.domain_user.delete",
    "identity.grant.domain_group.list",
    "identity.grant.domain_group.put",
    "identity.grant.domain_group.check",
    "identity.grant.domain_group.delete",
    "identity.role_assignment.list",
    "identity.application_credential.list",
    "identity.access_rule.delete",
    "identity.access_rule.list",
    "identity.access_rule.show",
    "identity.application_credential.create",
    "identity.application_credential.show",
    "identity.application_credential.delete",
    "identity.trust.list",
    "identity.trust.create",
    "identity.trust.show",
    "identity.trust.delete",
    "identity.trust.roles",
    "identity.trust.role",
    "identity.oauth_consumer.list",
    "identity.oauth_consumer.create",
    "identity.oauth_consumer.show",
    "identity.oauth_consumer.update",
    "identity.oauth_consumer.delete",
    "identity.domain_config.default",
    "identity.domain_config.group_default",
    "identity.domain_config.option_default",
    "identity.domain_config.put",
    "identity.domain_config.show",
    "identity.domain_config.update",
    "identity.domain_config.delete",
    "identity.domain_config.group.show",
    "identity.domain_config.group.update",
    "identity.domain_config.group.delete",
    "identity.domain_config.option.show",
    "identity.domain_config.option.update",
    "identity.domain_config.option.delete",
    "identity.policy.list",
    "identity.policy.create",
    "identity.policy.show",
    "identity.policy.update",
    "identity.policy.delete",
    "identity.endpoint_group.list",
    "identity.endpoint_group.create",
    "identity.endpoint_group.show",
    "identity.endpoint_group.update",
    "identity.endpoint_group.delete",
    "identity.inherited.domain_user.list",
    "identity.inherited.domain_user.put",
    "identity.inherited.domain_user.check",
    "identity.inherited.domain_user.delete",
    "identity.inherited.domain_group.list",
    "identity.inherited.domain_group.put",
    "identity.inherited.domain_group.check",
    "identity.inherited.domain_group.delete",
    "identity.inherited.project_user.put",
    "identity.inherited.project_user.check",
    "identity.inherited.project_user.delete",
    "identity.inherited.project_group.put",
    "identity.inherited.project_group.check",
    "identity.inherited.project_group.delete",
    "identity.auth.system",
    "identity.auth.catalog",
    "identity.credential.list",
    "identity.credential.create",
    "identity.credential.show",
    "identity.credential.update",
    "identity.credential.delete",
    "identity.ec2_credential.list",
    "identity.ec2_credential.create",
    "identity.ec2_credential.show",
    "identity.ec2_credential.delete",
    "identity.region.list",
    "identity.region.create",
    "identity.region.show",
    "identity.region.put",
    "identity.region.update",
    "identity.region.delete",
    "identity.service.list",
    "identity.service.create",
    "identity.service.show",
    "identity.service.update",
    "identity.service.delete",
    "identity.endpoint.list",
    "identity.endpoint.create",
    "identity.endpoint.show",
    "identity.endpoint.update",
    "identity.endpoint.delete",
    "identity.project.tags.list",
    "identity.project.tags.put",
    "identity.project.tags.delete",
    "identity.project.tag.check",
    "identity.project.tag.add",
    "identity.project.tag.delete",
    "identity.implied_role.list",
    "identity.implied_role.create",
    "identity.implied_role.show",
    "identity.implied_role.delete",
    "identity.role_inference.list",
    "identity.grant.system_user.list",
    "identity.grant.system_user.put",
    "identity.grant.system_user.check",
    "identity.grant.system_user.delete",
    "identity.grant.system_group.list",
    "identity.grant.system_group.put",
    "identity.grant.system_group.check",
    "identity.grant.system_group.delete",
];

/// One registered operation, whatever its service.
struct Op {
    service: &'static str,
    name: &'static str,
    method: &'static str,
    path: &'static str,
    action: Option<&'static str>,
    need: Need,
    rate_limit: u32,
    body: &'static str,
}

fn of<H>(service: &'static str, specs: &'static [ActionSpec<Route<H>>]) -> Vec<Op> {
    specs
        .iter()
        .map(|a| Op {
            service,
            name: a.name,
            method: a.handler.method,
            path: a.handler.path,
            action: a.handler.action,
            need: a.handler.need,
            rate_limit: a.rate_limit,
            body: a.params,
        })
        .collect()
}

fn every_op() -> Vec<Op> {
    let mut ops = of("identity", IDENTITY.actions);
    ops.extend(of("compute", COMPUTE.actions));
    ops.extend(of("image", IMAGE.actions));
    ops
}

fn names(ops: &[Op], keep: impl Fn(&Op) -> bool) -> BTreeSet<&'static str> {
    ops.iter().filter(|o| keep(o)).map(|o| o.name).collect()
}

fn set(list: &[&'static str]) -> BTreeSet<&'static str> {
    list.iter().copied().collect()
}

async fn api(rate_limits: bool) -> (OpenStackApi, tempfile::TempDir) {
    let (engine, dir) = nubis_testkit::engine_with(None, Some(PASSWORD)).await;
    (OpenStackApi::new(engine, rate_limits), dir)
}

async fn call(
    api: &OpenStackApi,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Vec<(String, String)>, Value) {
    call_at(api, method, path, token, body, None).await
}

/// The first microversion that has the operation (`None`: every one, 2.1 is sent).
fn since(op: &Op) -> Option<&'static str> {
    match op.name {
        n if n.starts_with("server.tags.") => Some("compute 2.26"),
        n if n.starts_with("server.shares.") => Some("compute 2.97"),
        "flavor.update" => Some("compute 2.55"),
        _ => None,
    }
}

/// [`call`] at a microversion.
async fn call_at(
    api: &OpenStackApi,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    version: Option<&str>,
) -> (u16, Vec<(String, String)>, Value) {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(v) = version {
        headers.push(("openstack-api-version", v));
    }
    if let Some(t) = token {
        headers.push(("x-auth-token", t));
        // A subject no token has: Keystone's token operations answer 404 and revoke nothing.
        headers.push(("x-subject-token", "missing"));
    }
    let r = nubis_testkit::openstack::call(api, method, path, &headers, body.cloned()).await;
    (r.status, r.headers, r.body)
}

async fn token(api: &OpenStackApi) -> String {
    let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let (status, headers, body) =
        call(api, "POST", "/identity/v3/auth/tokens", None, Some(&auth)).await;
    assert_eq!(status, 201, "{body}");
    headers
        .into_iter()
        .find(|(k, _)| k == "x-subject-token")
        .map(|(_, v)| v)
        .unwrap()
}

/// The operation's path with its `{…}` segments filled: `server` for `{id}`, `k` for names.
fn path_of(op: &Op, server: &str) -> String {
    op.path
        .replace("{id}", server)
        .replace("{key}", "k")
        .replace("{name}", "k")
}

/// A body naming a field the operation's schema does not have (`None`: it takes no body).
fn with_unknown_field(op: &Op) -> Option<Value> {
    if op.body == "—" {
        return None;
    }
    Some(match (op.action, op.name) {
        (Some(action), _) => json!({ action: {"bogus": 1} }),
        // Metadata bodies are maps of any keys: the unknown field is beside them.
        (
            None,
            "server.metadata.merge"
            | "server.metadata.replace"
            | "image.proxy.metadata.merge"
            | "image.proxy.metadata.replace",
        ) => {
            json!({"metadata": {"k": "v"}, "bogus": 1})
        }
        (None, "server.metadata.set" | "image.proxy.metadata.set") => {
            json!({"meta": {"k": "v"}, "bogus": 1})
        }
        (None, "server.tags.replace") => json!({"tags": [], "bogus": 1}),
        (None, "server.shares.attach") => json!({"share": {"share_id": "s", "bogus": 1}}),
        (None, "server.create" | "server.update") => json!({"server": {"bogus": 1}}),
        (None, "keypair.create") => json!({"keypair": {"bogus": 1}}),
        (None, "server_group.create") => json!({"server_group": {"bogus": 1}}),
        (None, "flavor.create" | "flavor.update") => json!({"flavor": {"bogus": 1}}),
        (None, "flavor.extra_specs.create") => json!({"extra_specs": {}, "bogus": 1}),
        // One extra spec named by the path: a second key is "too many items", not unknown.
        (None, "flavor.extra_spec.update") => return None,
        (None, "quota_set.update") => json!({"quota_set": {"bogus": 1}}),
        (None, "quota_class_set.update") => json!({"quota_class_set": {"bogus": 1}}),
        (None, "aggregate.create" | "aggregate.update") => {
            json!({"aggregate": {"name": "a", "bogus": 1}})
        }
        (None, "os_host.update") => json!({"status": "enable", "bogus": 1}),
        (None, "service.update") => {
            json!({"host": "nubis-nova", "binary": "nova-compute", "bogus": 1})
        }
        (None, "identity.token.issue") => {
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}}},
                "bogus": 1})
        }
        // Keystone's entity schemas (domain, project, user, group, role) allow attributes
        // they do not know (Keystone stores them as extras; nubis ignores them):
        // keystone_admin.rs covers the admin bodies.
        (None, other) if other.starts_with("identity.") => return None,
        // Glance's image schema takes any additional property (a string); its patch and
        // member bodies are checked by image/patch.rs's tests and the conformance suite.
        (None, other) if other.starts_with("image.") => return None,
        (None, other) => panic!("{other} declares a body this test does not know"),
    })
}

#[test]
fn the_lists_match_the_registries() {
    let ops = every_op();
    assert_eq!(names(&ops, |o| o.need == Need::Public), set(PUBLIC));
    assert_eq!(names(&ops, |o| o.rate_limit == 0), set(UNLIMITED));
    let all = names(&ops, |_| true);
    assert!(set(OPEN_BODY).is_subset(&all));
    assert_eq!(all.len(), ops.len(), "an operation name is declared twice");
}

#[tokio::test]
async fn no_token_is_401_in_the_services_envelope() {
    let (api, _d) = api(false).await;
    for op in every_op() {
        let path = path_of(&op, MISSING);
        let body = op.action.map(|a| json!({ a: null }));
        let (status, headers, json) = call(&api, op.method, &path, None, body.as_ref()).await;
        if op.need == Need::Public {
            assert_ne!(status, 401, "{}: needs no token", op.name);
            continue;
        }
        assert_eq!(status, 401, "{} {path}: {json}", op.name);
        let message = "The request you have made requires authentication.";
        match op.service {
            // Nova's fault envelope.
            "compute" => assert_eq!(
                json,
                json!({"unauthorized": {"code": 401, "message": message}}),
                "{}",
                op.name
            ),
            // Keystone's (Glance answers with Keystone's middleware).
            _ => assert_eq!(
                json,
                json!({"error": {"code": 401, "title": "Unauthorized", "message": message}}),
                "{}",
                op.name
            ),
        }
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "www-authenticate" && v.starts_with("Keystone uri=")),
            "{}",
            op.name
        );
    }
}

#[tokio::test]
async fn an_unknown_body_field_is_400() {
    let (api, _d) = api(false).await;
    let t = token(&api).await;
    let create =
        json!({"server": {"name": "cov", "imageRef": "img-deb12x64", "flavorRef": "S5.SMALL2"}});
    let (status, _, created) = call(
        &api,
        "POST",
        "/compute/v2.1/servers",
        Some(&t),
        Some(&create),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let server = created["server"]["id"].as_str().unwrap().to_string();
    let mut checked = 0;
    for op in every_op() {
        let Some(body) = with_unknown_field(&op) else {
            continue;
        };
        // forceDelete takes any body and deletes: a server of its own.
        let target = if op.name == "server.action.forceDelete" {
            let (status, _, other) = call(
                &api,
                "POST",
                "/compute/v2.1/servers",
                Some(&t),
                Some(&create),
            )
            .await;
            assert_eq!(status, 202, "{other}");
            other["server"]["id"].as_str().unwrap().to_string()
        } else {
            server.clone()
        };
        let path = path_of(&op, &target);
        let (status, _, json) =
            call_at(&api, op.method, &path, Some(&t), Some(&body), since(&op)).await;
        if OPEN_BODY.contains(&op.name) {
            // Accepted, or refused for another reason than the body (restore of a server
            // that is not soft-deleted: 409).
            assert!(
                status < 400 || (status == 409 && op.name == "server.action.restore"),
                "{}: extra fields are allowed: {json}",
                op.name
            );
            continue;
        }
        assert_eq!(status, 400, "{} {path}: {json}", op.name);
        let message = json["badRequest"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("'bogus' was unexpected"),
            "{}: {message}",
            op.name
        );
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} operations take a body");
}

#[tokio::test]
async fn writes_over_their_limit_are_429_and_reads_are_not_limited() {
    let (api, _d) = api(true).await;
    let t = token(&api).await;
    for op in every_op() {
        if op.need == Need::Public {
            continue;
        }
        let path = path_of(&op, MISSING);
        // A body that fails fast: limits are counted before any work.
        let body = with_unknown_field(&op).filter(|_| op.rate_limit > 0);
        let tries = op.rate_limit.max(20) * 3;
        let mut limited = None;
        for _ in 0..tries {
            let r = call(&api, op.method, &path, Some(&t), body.as_ref()).await;
            if r.0 == 429 {
                limited = Some(r);
                break;
            }
        }
        if op.rate_limit == 0 {
            assert!(limited.is_none(), "{} has no limit", op.name);
            continue;
        }
        let (_, headers, json) = limited.unwrap_or_else(|| panic!("{} was not limited", op.name));
        assert!(
            headers.iter().any(|(k, v)| k == "retry-after" && v == "1"),
            "{}",
            op.name
        );
        if op.service == "image" {
            // Glance answers in webob's plain text (the guard's Glance refusal too): no JSON.
            assert!(json.is_null(), "{}: {json}", op.name);
            continue;
        }
        assert_eq!(
            json,
            json!({"overLimit": {"code": 429, "message": "This request was rate-limited."}}),
            "{}",
            op.name
        );
    }
}
