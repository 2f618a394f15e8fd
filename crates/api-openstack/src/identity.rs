//! Keystone v3: version documents and password tokens (issue, validate, revoke).
//!
//! One user exists: `admin` in domain `Default`, member of project `admin`, with the roles
//! admin, member and reader. Its password is the admin account's Keystone password.

use crate::ids;
use crate::render::keystone_time;
use crate::routes::{self, Found, Need, Route, no_limit, op};
use crate::tokens::{ProjectRef, Scope, TOKEN_TTL_SECS, Token, digest, now};
use crate::{OpenStackApi, RawRequest, Reply};
use nubis_engine::keystone::{self as ks, DomainRef, UserRef};
use nubis_pipeline::{Refusal, Registry};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;

/// Keystone's error envelope (one title table: `errors::keystone_body`).
pub(crate) fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, &crate::errors::keystone_body(status, message))
}

pub(crate) const UNAUTHORIZED: &str = "The request you have made requires authentication.";

fn unauthorized(base: &str) -> Reply {
    error(401, UNAUTHORIZED).header(
        "www-authenticate",
        format!("Keystone uri=\"{base}/identity\""),
    )
}

fn v3(base: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

/// `GET /identity`: the version list (300 Multiple Choices, as Keystone answers).
fn versions(base: &str) -> Reply {
    Reply::json(300, &json!({"versions": {"values": [v3(base)]}}))
}

/// `GET /identity/v3`.
fn version(base: &str) -> Reply {
    Reply::json(200, &json!({"version": v3(base)}))
}

/// How a Keystone operation is answered.
pub enum Keystone {
    /// A version document, built from the public base URL.
    Doc(fn(&str) -> Reply),
    Call(KeystoneFn),
}

type KeystoneCall = for<'a> fn(&'a Ctx<'a>) -> Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

/// A handler of a Keystone request.
pub struct KeystoneFn(pub(crate) KeystoneCall);

impl std::fmt::Debug for Keystone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Doc(_) => "Doc",
            Self::Call(_) => "Call",
        })
    }
}

/// A Keystone request: the caller's token when the operation needs one.
pub(crate) struct Ctx<'a> {
    pub(crate) api: &'a OpenStackApi,
    pub(crate) req: &'a RawRequest<'a>,
    pub(crate) base: &'a str,
    pub(crate) caller: Option<Token>,
    /// The path's `{…}` segments, in order.
    pub(crate) params: Vec<&'a str>,
}

use crate::identity_admin::{self as a, On};
use Need::{Public, Token as AnyToken};

/// An admin operation: any token at the door, its Keystone rule at the gate; no rate limit
/// (Keystone has none of its own).
macro_rules! ks {
    ($name:literal, $method:literal, $path:literal, $policy:literal, $body:literal, $f:path $(, $arg:expr)*) => {
        no_limit(op(
            $name,
            $method,
            $path,
            AnyToken,
            $policy,
            $body,
            Keystone::Call(KeystoneFn(|c| Box::pin($f(c $(, $arg)*)))),
        ))
    };
}

/// A grant operation on one of the four (target, actor) path shapes.
macro_rules! grant {
    ($name:literal, $method:literal, $path:literal, $policy:literal, $f:ident $(, $arg:expr)+) => {
        no_limit(op(
            $name,
            $method,
            $path,
            AnyToken,
            $policy,
            "—",
            Keystone::Call(KeystoneFn(|c| Box::pin(a::$f(c $(, $arg)+)))),
        ))
    };
}

/// Every Keystone operation, declared once (docs/catalogue/openstack-identity.md). Keystone
/// has no rate limit of its own: failed logins are throttled per user and source instead.
#[rustfmt::skip]
pub static REGISTRY: Registry<Route<Keystone>> = Registry {
    cloud: "openstack",
    service: "identity",
    version: "",
    actions: &[
        op("identity.versions", "GET", "/identity", Public, NO_RULE, "—", Keystone::Doc(versions)),
        op("identity.version", "GET", "/identity/v3", Public, NO_RULE, "—", Keystone::Doc(version)),
        op("identity.token.issue", "POST", "/identity/v3/auth/tokens", Public, NO_RULE, "{\"auth\"}",
            Keystone::Call(KeystoneFn(|c| Box::pin(issue(c.api, c.req, c.base))))),
        op("identity.token.validate", "GET", "/identity/v3/auth/tokens", AnyToken, "identity:validate_token", "—",
            Keystone::Call(KeystoneFn(|c| Box::pin(validate(c))))),
        no_limit(op("identity.token.revoke", "DELETE", "/identity/v3/auth/tokens", AnyToken,
            "identity:revoke_token", "—", Keystone::Call(KeystoneFn(|c| Box::pin(revoke(c)))))),
        ks!("identity.auth.projects", "GET", "/identity/v3/auth/projects", "identity:get_auth_projects", "—", a::auth_projects),
        ks!("identity.auth.domains", "GET", "/identity/v3/auth/domains", "identity:get_auth_domains", "—", a::auth_domains),
        ks!("identity.auth.system", "GET", "/identity/v3/auth/system", "identity:get_auth_system", "—", a::auth_system),
        ks!("identity.auth.catalog", "GET", "/identity/v3/auth/catalog", "identity:get_auth_catalog", "—", a::catalog::auth_catalog),
        ks!("identity.credential.list", "GET", "/identity/v3/credentials", "identity:list_credentials", "—", a::credentials::list),
        ks!("identity.credential.create", "POST", "/identity/v3/credentials", "identity:create_credential", "{\"credential\"}", a::credentials::create),
        ks!("identity.credential.show", "GET", "/identity/v3/credentials/{credential_id}", "identity:get_credential", "—", a::credentials::show),
        ks!("identity.credential.update", "PATCH", "/identity/v3/credentials/{credential_id}", "identity:update_credential", "{\"credential\"}", a::credentials::update),
        ks!("identity.credential.delete", "DELETE", "/identity/v3/credentials/{credential_id}", "identity:delete_credential", "—", a::credentials::delete),
        ks!("identity.ec2_credential.list", "GET", "/identity/v3/users/{user_id}/credentials/OS-EC2", "identity:ec2_list_credentials", "—", a::credentials::ec2_list),
        ks!("identity.ec2_credential.create", "POST", "/identity/v3/users/{user_id}/credentials/OS-EC2", "identity:ec2_create_credential", "{\"tenant_id\"}", a::credentials::ec2_create),
        ks!("identity.ec2_credential.show", "GET", "/identity/v3/users/{user_id}/credentials/OS-EC2/{credential_id}", "identity:ec2_get_credential", "—", a::credentials::ec2_show),
        ks!("identity.ec2_credential.delete", "DELETE", "/identity/v3/users/{user_id}/credentials/OS-EC2/{credential_id}", "identity:ec2_delete_credential", "—", a::credentials::ec2_delete),
        ks!("identity.policy.list", "GET", "/identity/v3/policies", "identity:list_policies", "—", a::list::<ks::Policy>),
        ks!("identity.policy.create", "POST", "/identity/v3/policies", "identity:create_policy", "{\"policy\"}", a::catalog::create_policy),
        ks!("identity.policy.show", "GET", "/identity/v3/policies/{policy_id}", "identity:get_policy", "—", a::show::<ks::Policy>),
        ks!("identity.policy.update", "PATCH", "/identity/v3/policies/{policy_id}", "identity:update_policy", "{\"policy\"}", a::catalog::update_policy),
        ks!("identity.policy.delete", "DELETE", "/identity/v3/policies/{policy_id}", "identity:delete_policy", "—", a::delete::<ks::Policy>),
        ks!("identity.endpoint_group.list", "GET", "/identity/v3/OS-EP-FILTER/endpoint_groups", "identity:list_endpoint_groups", "—", a::catalog::list_endpoint_groups),
        ks!("identity.endpoint_group.create", "POST", "/identity/v3/OS-EP-FILTER/endpoint_groups", "identity:create_endpoint_group", "{\"endpoint_group\"}", a::catalog::create_endpoint_group),
        ks!("identity.endpoint_group.show", "GET", "/identity/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}", "identity:get_endpoint_group", "—", a::catalog::show_endpoint_group),
        ks!("identity.endpoint_group.update", "PATCH", "/identity/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}", "identity:update_endpoint_group", "{\"endpoint_group\"}", a::catalog::update_endpoint_group),
        ks!("identity.endpoint_group.delete", "DELETE", "/identity/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}", "identity:delete_endpoint_group", "—", a::delete::<ks::EndpointGroup>),
        ks!("identity.oauth_consumer.list", "GET", "/identity/v3/OS-OAUTH1/consumers", "identity:list_consumers", "—", a::credentials::consumer_list),
        ks!("identity.oauth_consumer.create", "POST", "/identity/v3/OS-OAUTH1/consumers", "identity:create_consumer", "{\"consumer\"}", a::credentials::consumer_create),
        ks!("identity.oauth_consumer.show", "GET", "/identity/v3/OS-OAUTH1/consumers/{consumer_id}", "identity:get_consumer", "—", a::credentials::consumer_show),
        ks!("identity.oauth_consumer.update", "PATCH", "/identity/v3/OS-OAUTH1/consumers/{consumer_id}", "identity:update_consumer", "{\"consumer\"}", a::credentials::consumer_update),
        ks!("identity.oauth_consumer.delete", "DELETE", "/identity/v3/OS-OAUTH1/consumers/{consumer_id}", "identity:delete_consumer", "—", a::credentials::consumer_delete),
        ks!("identity.trust.list", "GET", "/identity/v3/OS-TRUST/trusts", "identity:list_trusts", "—", a::trusts::list),
        ks!("identity.trust.create", "POST", "/identity/v3/OS-TRUST/trusts", "identity:create_trust", "{\"trust\"}", a::trusts::create),
        ks!("identity.trust.show", "GET", "/identity/v3/OS-TRUST/trusts/{trust_id}", "identity:get_trust", "—", a::trusts::show),
        ks!("identity.trust.delete", "DELETE", "/identity/v3/OS-TRUST/trusts/{trust_id}", "identity:delete_trust", "—", a::trusts::delete),
        ks!("identity.trust.roles", "GET", "/identity/v3/OS-TRUST/trusts/{trust_id}/roles", "identity:list_roles_for_trust", "—", a::trusts::roles),
        ks!("identity.trust.role", "GET", "/identity/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}", "identity:get_role_for_trust", "—", a::trusts::role),
        ks!("identity.region.list", "GET", "/identity/v3/regions", "identity:list_regions", "—", a::list::<ks::Region>),
        ks!("identity.region.create", "POST", "/identity/v3/regions", "identity:create_region", "{\"region\"}", a::catalog::create_region),
        ks!("identity.region.show", "GET", "/identity/v3/regions/{region_id}", "identity:get_region", "—", a::show::<ks::Region>),
        ks!("identity.region.put", "PUT", "/identity/v3/regions/{region_id}", "identity:create_region", "{\"region\"}", a::catalog::put_region),
        ks!("identity.region.update", "PATCH", "/identity/v3/regions/{region_id}", "identity:update_region", "{\"region\"}", a::catalog::update_region),
        ks!("identity.region.delete", "DELETE", "/identity/v3/regions/{region_id}", "identity:delete_region", "—", a::delete::<ks::Region>),
        ks!("identity.service.list", "GET", "/identity/v3/services", "identity:list_services", "—", a::list::<ks::Service>),
        ks!("identity.service.create", "POST", "/identity/v3/services", "identity:create_service", "{\"service\"}", a::catalog::create_service),
        ks!("identity.service.show", "GET", "/identity/v3/services/{service_id}", "identity:get_service", "—", a::show::<ks::Service>),
        ks!("identity.service.update", "PATCH", "/identity/v3/services/{service_id}", "identity:update_service", "{\"service\"}", a::catalog::update_service),
        ks!("identity.service.delete", "DELETE", "/identity/v3/services/{service_id}", "identity:delete_service", "—", a::delete::<ks::Service>),
        ks!("identity.endpoint.list", "GET", "/identity/v3/endpoints", "identity:list_endpoints", "—", a::list::<ks::Endpoint>),
        ks!("identity.endpoint.create", "POST", "/identity/v3/endpoints", "identity:create_endpoint", "{\"endpoint\"}", a::catalog::create_endpoint),
        ks!("identity.endpoint.show", "GET", "/identity/v3/endpoints/{endpoint_id}", "identity:get_endpoint", "—", a::show::<ks::Endpoint>),
        ks!("identity.endpoint.update", "PATCH", "/identity/v3/endpoints/{endpoint_id}", "identity:update_endpoint", "{\"endpoint\"}", a::catalog::update_endpoint),
        ks!("identity.endpoint.delete", "DELETE", "/identity/v3/endpoints/{endpoint_id}", "identity:delete_endpoint", "—", a::delete::<ks::Endpoint>),
        ks!("identity.domain.list", "GET", "/identity/v3/domains", "identity:list_domains", "—", a::list::<ks::Domain>),
        ks!("identity.domain.create", "POST", "/identity/v3/domains", "identity:create_domain", "{\"domain\"}", a::create_domain),
        ks!("identity.domain.show", "GET", "/identity/v3/domains/{domain_id}", "identity:get_domain", "—", a::show::<ks::Domain>),
        ks!("identity.domain.update", "PATCH", "/identity/v3/domains/{domain_id}", "identity:update_domain", "{\"domain\"}", a::update::<ks::Domain>),
        ks!("identity.domain.delete", "DELETE", "/identity/v3/domains/{domain_id}", "identity:delete_domain", "—", a::delete::<ks::Domain>),
        ks!("identity.domain_config.default", "GET", "/identity/v3/domains/config/default", "identity:get_domain_config_default", "—", a::domain_config::defaults),
        ks!("identity.domain_config.group_default", "GET", "/identity/v3/domains/config/{group}/default", "identity:get_domain_config_default", "—", a::domain_config::group_defaults),
        ks!("identity.domain_config.option_default", "GET", "/identity/v3/domains/config/{group}/{option}/default", "identity:get_domain_config_default", "—", a::domain_config::option_default),
        ks!("identity.domain_config.put", "PUT", "/identity/v3/domains/{domain_id}/config", "identity:create_domain_config", "{\"config\"}", a::domain_config::put),
        ks!("identity.domain_config.show", "GET", "/identity/v3/domains/{domain_id}/config", "identity:get_domain_config", "—", a::domain_config::show),
        ks!("identity.domain_config.update", "PATCH", "/identity/v3/domains/{domain_id}/config", "identity:update_domain_config", "{\"config\"}", a::domain_config::update),
        ks!("identity.domain_config.delete", "DELETE", "/identity/v3/domains/{domain_id}/config", "identity:delete_domain_config", "—", a::domain_config::delete),
        ks!("identity.domain_config.group.show", "GET", "/identity/v3/domains/{domain_id}/config/{group}", "identity:get_domain_config", "—", a::domain_config::show_group),
        ks!("identity.domain_config.group.update", "PATCH", "/identity/v3/domains/{domain_id}/config/{group}", "identity:update_domain_config", "{\"config\"}", a::domain_config::update_group),
        ks!("identity.domain_config.group.delete", "DELETE", "/identity/v3/domains/{domain_id}/config/{group}", "identity:delete_domain_config", "—", a::domain_config::delete_group),
        ks!("identity.domain_config.option.show", "GET", "/identity/v3/domains/{domain_id}/config/{group}/{option}", "identity:get_domain_config", "—", a::domain_config::show_option),
        ks!("identity.domain_config.option.update", "PATCH", "/identity/v3/domains/{domain_id}/config/{group}/{option}", "identity:update_domain_config", "{\"config\"}", a::domain_config::update_option),
        ks!("identity.domain_config.option.delete", "DELETE", "/identity/v3/domains/{domain_id}/config/{group}/{option}", "identity:delete_domain_config", "—", a::domain_config::delete_option),
        ks!("identity.project.list", "GET", "/identity/v3/projects", "identity:list_projects", "—", a::list_projects),
        ks!("identity.project.create", "POST", "/identity/v3/projects", "identity:create_project", "{\"project\"}", a::create_project),
        ks!("identity.project.show", "GET", "/identity/v3/projects/{project_id}", "identity:get_project", "—", a::show_project),
        ks!("identity.project.update", "PATCH", "/identity/v3/projects/{project_id}", "identity:update_project", "{\"project\"}", a::update_project),
        ks!("identity.project.tags.list", "GET", "/identity/v3/projects/{project_id}/tags", "identity:list_project_tags", "—", a::list_tags),
        ks!("identity.project.tags.put", "PUT", "/identity/v3/projects/{project_id}/tags", "identity:update_project_tags", "{\"tags\"}", a::put_tags),
        ks!("identity.project.tags.delete", "DELETE", "/identity/v3/projects/{project_id}/tags", "identity:delete_project_tags", "—", a::delete_tags),
        ks!("identity.project.tag.check", "GET", "/identity/v3/projects/{project_id}/tags/{tag}", "identity:get_project_tag", "—", a::check_tag),
        ks!("identity.project.tag.add", "PUT", "/identity/v3/projects/{project_id}/tags/{tag}", "identity:create_project_tag", "—", a::add_tag),
        ks!("identity.project.tag.delete", "DELETE", "/identity/v3/projects/{project_id}/tags/{tag}", "identity:delete_project_tag", "—", a::delete_tag),
        ks!("identity.project.delete", "DELETE", "/identity/v3/projects/{project_id}", "identity:delete_project", "—", a::delete_project),
        ks!("identity.user.list", "GET", "/identity/v3/users", "identity:list_users", "—", a::list::<ks::User>),
        ks!("identity.user.create", "POST", "/identity/v3/users", "identity:create_user", "{\"user\"}", a::create_user),
        ks!("identity.user.show", "GET", "/identity/v3/users/{user_id}", "identity:get_user", "—", a::show::<ks::User>),
        ks!("identity.user.update", "PATCH", "/identity/v3/users/{user_id}", "identity:update_user", "{\"user\"}", a::update_user),
        ks!("identity.user.delete", "DELETE", "/identity/v3/users/{user_id}", "identity:delete_user", "—", a::delete::<ks::User>),
        ks!("identity.user.password", "POST", "/identity/v3/users/{user_id}/password", "identity:change_password", "{\"user\"}", a::change_password),
        ks!("identity.user.projects", "GET", "/identity/v3/users/{user_id}/projects", "identity:list_user_projects", "—", a::user_projects),
        ks!("identity.user.groups", "GET", "/identity/v3/users/{user_id}/groups", "identity:list_groups_for_user", "—", a::user_groups),
        ks!("identity.group.list", "GET", "/identity/v3/groups", "identity:list_groups", "—", a::list::<ks::Group>),
        ks!("identity.group.create", "POST", "/identity/v3/groups", "identity:create_group", "{\"group\"}", a::create_group),
        ks!("identity.group.show", "GET", "/identity/v3/groups/{group_id}", "identity:get_group", "—", a::show::<ks::Group>),
        ks!("identity.group.update", "PATCH", "/identity/v3/groups/{group_id}", "identity:update_group", "{\"group\"}", a::update::<ks::Group>),
        ks!("identity.group.delete", "DELETE", "/identity/v3/groups/{group_id}", "identity:delete_group", "—", a::delete::<ks::Group>),
        ks!("identity.group.users", "GET", "/identity/v3/groups/{group_id}/users", "identity:list_users_in_group", "—", a::group_users),
        ks!("identity.group.member.add", "PUT", "/identity/v3/groups/{group_id}/users/{user_id}", "identity:add_user_to_group", "—", a::set_member, true),
        ks!("identity.group.member.remove", "DELETE", "/identity/v3/groups/{group_id}/users/{user_id}", "identity:remove_user_from_group", "—", a::set_member, false),
        ks!("identity.group.member.check", "GET", "/identity/v3/groups/{group_id}/users/{user_id}", "identity:check_user_in_group", "—", a::check_member),
        ks!("identity.role.list", "GET", "/identity/v3/roles", "identity:list_roles", "—", a::list::<ks::Role>),
        ks!("identity.role.create", "POST", "/identity/v3/roles", "identity:create_role", "{\"role\"}", a::create_role),
        ks!("identity.role.show", "GET", "/identity/v3/roles/{role_id}", "identity:get_role", "—", a::show::<ks::Role>),
        ks!("identity.role.update", "PATCH", "/identity/v3/roles/{role_id}", "identity:update_role", "{\"role\"}", a::update::<ks::Role>),
        ks!("identity.role.delete", "DELETE", "/identity/v3/roles/{role_id}", "identity:delete_role", "—", a::delete::<ks::Role>),
        ks!("identity.implied_role.list", "GET", "/identity/v3/roles/{prior_role_id}/implies", "identity:list_implied_roles", "—", a::list_implied),
        ks!("identity.implied_role.create", "PUT", "/identity/v3/roles/{prior_role_id}/implies/{implied_role_id}", "identity:create_implied_role", "—", a::create_implied),
        ks!("identity.implied_role.show", "GET", "/identity/v3/roles/{prior_role_id}/implies/{implied_role_id}", "identity:get_implied_role", "—", a::get_implied),
        ks!("identity.implied_role.delete", "DELETE", "/identity/v3/roles/{prior_role_id}/implies/{implied_role_id}", "identity:delete_implied_role", "—", a::delete_implied),
        ks!("identity.role_inference.list", "GET", "/identity/v3/role_inferences", "identity:list_role_inference_rules", "—", a::role_inferences),
        grant!("identity.grant.project_user.list", "GET", "/identity/v3/projects/{project_id}/users/{user_id}/roles", "identity:list_grants", list_grants, On::ProjectUser),
        grant!("identity.grant.project_user.put", "PUT", "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "identity:create_grant", set_grant, On::ProjectUser, true),
        grant!("identity.grant.project_user.check", "GET", "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "identity:check_grant", check_grant, On::ProjectUser),
        grant!("identity.grant.project_user.delete", "DELETE", "/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "identity:revoke_grant", set_grant, On::ProjectUser, false),
        grant!("identity.grant.project_group.list", "GET", "/identity/v3/projects/{project_id}/groups/{group_id}/roles", "identity:list_grants", list_grants, On::ProjectGroup),
        grant!("identity.grant.project_group.put", "PUT", "/identity/v3/projects/{project_id}/groups/{group_id}/roles/{role_id}", "identity:create_grant", set_grant, On::ProjectGroup, true),
        grant!("identity.grant.project_group.check", "GET", "/identity/v3/projects/{project_id}/groups/{group_id}/roles/{role_id}", "identity:check_grant", check_grant, On::ProjectGroup),
        grant!("identity.grant.project_group.delete", "DELETE", "/identity/v3/projects/{project_id}/groups/{group_id}/roles/{role_id}", "identity:revoke_grant", set_grant, On::ProjectGroup, false),
        grant!("identity.grant.domain_user.list", "GET", "/identity/v3/domains/{domain_id}/users/{user_id}/roles", "identity:list_grants", list_grants, On::DomainUser),
        grant!("identity.grant.domain_user.put", "PUT", "/identity/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "identity:create_grant", set_grant, On::DomainUser, true),
        grant!("identity.grant.domain_user.check", "GET", "/identity/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "identity:check_grant", check_grant, On::DomainUser),
        grant!("identity.grant.domain_user.delete", "DELETE", "/identity/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "identity:revoke_grant", set_grant, On::DomainUser, false),
        grant!("identity.grant.domain_group.list", "GET", "/identity/v3/domains/{domain_id}/groups/{group_id}/roles", "identity:list_grants", list_grants, On::DomainGroup),
        grant!("identity.grant.domain_group.put", "PUT", "/identity/v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}", "identity:create_grant", set_grant, On::DomainGroup, true),
        grant!("identity.grant.domain_group.check", "GET", "/identity/v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}", "identity:check_grant", check_grant, On::DomainGroup),
        grant!("identity.grant.domain_group.delete", "DELETE", "/identity/v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}", "identity:revoke_grant", set_grant, On::DomainGroup, false),
        grant!("identity.grant.system_user.list", "GET", "/identity/v3/system/users/{user_id}/roles", "identity:list_system_grants_for_user", list_grants, On::SystemUser),
        grant!("identity.grant.system_user.put", "PUT", "/identity/v3/system/users/{user_id}/roles/{role_id}", "identity:create_system_grant_for_user", set_grant, On::SystemUser, true),
        grant!("identity.grant.system_user.check", "GET", "/identity/v3/system/users/{user_id}/roles/{role_id}", "identity:check_system_grant_for_user", check_grant, On::SystemUser),
        grant!("identity.grant.system_user.delete", "DELETE", "/identity/v3/system/users/{user_id}/roles/{role_id}", "identity:revoke_system_grant_for_user", set_grant, On::SystemUser, false),
        grant!("identity.grant.system_group.list", "GET", "/identity/v3/system/groups/{group_id}/roles", "identity:list_system_grants_for_group", list_grants, On::SystemGroup),
        grant!("identity.grant.system_group.put", "PUT", "/identity/v3/system/groups/{group_id}/roles/{role_id}", "identity:create_system_grant_for_group", set_grant, On::SystemGroup, true),
        grant!("identity.grant.system_group.check", "GET", "/identity/v3/system/groups/{group_id}/roles/{role_id}", "identity:check_system_grant_for_group", check_grant, On::SystemGroup),
        grant!("identity.grant.system_group.delete", "DELETE", "/identity/v3/system/groups/{group_id}/roles/{role_id}", "identity:revoke_system_grant_for_group", set_grant, On::SystemGroup, false),
        grant!("identity.inherited.domain_user.list", "GET", "/identity/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/inherited_to_projects", "identity:list_grants_inherited", list_inherited, On::DomainUser),
        grant!("identity.inherited.domain_user.put", "PUT", "/identity/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "identity:create_grant_inherited", set_inherited, On::DomainUser, true),
        grant!("identity.inherited.domain_user.check", "GET", "/identity/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "identity:check_grant_inherited", check_inherited, On::DomainUser),
        grant!("identity.inherited.domain_user.delete", "DELETE", "/identity/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "identity:revoke_grant_inherited", set_inherited, On::DomainUser, false),
        grant!("identity.inherited.domain_group.list", "GET", "/identity/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/inherited_to_projects", "identity:list_grants_inherited", list_inherited, On::DomainGroup),
        grant!("identity.inherited.domain_group.put", "PUT", "/identity/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "identity:create_grant_inherited", set_inherited, On::DomainGroup, true),
        grant!("identity.inherited.domain_group.check", "GET", "/identity/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "identity:check_grant_inherited", check_inherited, On::DomainGroup),
        grant!("identity.inherited.domain_group.delete", "DELETE", "/identity/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "identity:revoke_grant_inherited", set_inherited, On::DomainGroup, false),
        grant!("identity.inherited.project_user.put", "PUT", "/identity/v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "identity:create_grant_inherited", set_inherited, On::ProjectUser, true),
        grant!("identity.inherited.project_user.check", "GET", "/identity/v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "identity:check_grant_inherited", check_inherited, On::ProjectUser),
        grant!("identity.inherited.project_user.delete", "DELETE", "/identity/v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "identity:revoke_grant_inherited", set_inherited, On::ProjectUser, false),
        grant!("identity.inherited.project_group.put", "PUT", "/identity/v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "identity:create_grant_inherited", set_inherited, On::ProjectGroup, true),
        grant!("identity.inherited.project_group.check", "GET", "/identity/v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "identity:check_grant_inherited", check_inherited, On::ProjectGroup),
        grant!("identity.inherited.project_group.delete", "DELETE", "/identity/v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "identity:revoke_grant_inherited", set_inherited, On::ProjectGroup, false),
        ks!("identity.role_assignment.list", "GET", "/identity/v3/role_assignments", "identity:list_role_assignments", "—", a::role_assignments),
        ks!("identity.application_credential.list", "GET", "/identity/v3/users/{user_id}/application_credentials", "identity:list_application_credentials", "—", a::list_app_creds),
        ks!("identity.application_credential.create", "POST", "/identity/v3/users/{user_id}/application_credentials", "identity:create_application_credential", "{\"application_credential\"}", a::create_app_cred),
        ks!("identity.application_credential.show", "GET", "/identity/v3/users/{user_id}/application_credentials/{credential_id}", "identity:get_application_credential", "—", a::get_app_cred),
        ks!("identity.application_credential.delete", "DELETE", "/identity/v3/users/{user_id}/application_credentials/{credential_id}", "identity:delete_application_credential", "—", a::delete_app_cred),
        ks!("identity.access_rule.list", "GET", "/identity/v3/users/{user_id}/access_rules", "identity:list_access_rules", "—", a::list_access_rules),
        ks!("identity.access_rule.show", "GET", "/identity/v3/users/{user_id}/access_rules/{access_rule_id}", "identity:get_access_rule", "—", a::get_access_rule),
        ks!("identity.access_rule.delete", "DELETE", "/identity/v3/users/{user_id}/access_rules/{access_rule_id}", "identity:delete_access_rule", "—", a::delete_access_rule),
    ],
};

/// The policy column of operations without a rule (Keystone checks none to issue a token).
const NO_RULE: &str = "(none)";

pub(crate) async fn handle(api: &OpenStackApi, req: &RawRequest<'_>, rest: &str) -> Reply {
    let base = api.base_url();
    let path = rest.trim_end_matches('/');
    let Some(segs) = routes::full_segments("identity", path) else {
        return error(404, "The resource could not be found.");
    };
    let (spec, params) = match routes::find(&REGISTRY, req.method, &segs, 0, routes::Scope::All) {
        Found::Op(spec, params) => (spec, params),
        Found::WrongMethod(label) => {
            return error(405, "The method is not allowed for the requested URL.").op(label);
        }
        Found::Nothing => return error(404, "The resource could not be found."),
    };
    let caller = if spec.handler.need == Public {
        None
    } else {
        let Some(caller) = api.request_token(req, "identity", rest).await else {
            return unauthorized(&base).op(spec.name);
        };
        let target = crate::identity_admin::target(spec.handler.path, &params);
        if let Err(r) = routes::admit(
            &api.gate,
            &REGISTRY,
            &caller,
            spec,
            &api.keystone_policy,
            target,
        )
        .await
        {
            return refused(r).op(spec.name);
        }
        Some(caller)
    };
    let reply = match &spec.handler.handler {
        Keystone::Doc(doc) => doc(&base),
        Keystone::Call(KeystoneFn(call)) => {
            let ctx = Ctx {
                api,
                req,
                base: &base,
                caller,
                params,
            };
            call(&ctx).await
        }
    };
    reply.op(spec.name)
}

/// The gate's refusal in Keystone's envelope.
fn refused(r: Refusal) -> Reply {
    match r {
        Refusal::Throttled(_) => error(429, "Too many requests.").header("retry-after", "1"),
        Refusal::Denied(d) => error(
            403,
            &format!(
                "You are not authorized to perform the requested action: {}.",
                d.policy_action
            ),
        ),
        Refusal::UnknownAction(_)
        | Refusal::UnknownVersion(_)
        | Refusal::MissingRegion
        | Refusal::UnknownRegion(_) => error(404, "The resource could not be found."),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// A domain named in a request body: `{"id": …}` or `{"name": …}`.
fn domain_ref(d: &Value) -> Option<DomainRef> {
    match (d.get("id"), d.get("name")) {
        (Some(Value::String(id)), _) => Some(DomainRef::Id(id.clone())),
        (None, Some(Value::String(name))) => Some(DomainRef::Name(name.clone())),
        _ => None,
    }
}

fn malformed(what: &str) -> Reply {
    error(
        400,
        &format!("Expecting to find {what} in the request body."),
    )
}

/// Who authenticated, before the scope is chosen.
struct Authenticated {
    user: ks::User,
    expires_at: i64,
    methods: Vec<String>,
    stamp: String,
    /// An application credential fixes the project and the roles.
    app_cred: Option<ks::AppCred>,
}

async fn issue(api: &OpenStackApi, req: &RawRequest<'_>, base: &str) -> Reply {
    let Ok(body) = serde_json::from_slice::<Value>(req.body) else {
        return error(400, "Malformed request body: not JSON.");
    };
    let Some(auth) = body.get("auth").filter(|a| a.is_object()) else {
        return malformed("auth");
    };
    let Some(identity) = auth.get("identity").filter(|a| a.is_object()) else {
        return malformed("identity");
    };
    let methods: Vec<String> = match identity.get("methods").and_then(Value::as_array) {
        Some(m) if !m.is_empty() && m.iter().all(Value::is_string) => m
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => return malformed("methods"),
    };
    let who = if methods.iter().any(|m| m == "password") {
        match by_password(api, req, base, identity, methods).await {
            Ok(w) => w,
            Err(r) => return *r,
        }
    } else if methods.iter().any(|m| m == "application_credential") {
        match by_app_cred(api, req, base, identity, methods).await {
            Ok(w) => w,
            Err(r) => return *r,
        }
    } else if methods.iter().any(|m| m == "token") {
        // Re-scoping keeps the original's expiry (and its application credential).
        let Some(id) = str_at(identity, &["token", "id"]) else {
            return malformed("token.id");
        };
        // Keystone's token method validates the token: one revoked, expired or unknown is
        // its TokenNotFound (404), not a failed login.
        let Some(t) = api.token(id).await else {
            return error(404, "Failed to validate token");
        };
        // A trust-scoped token is not re-scoped (Keystone: it would escape the trust).
        if t.trust.is_some() {
            return error(
                403,
                "You are not authorized to perform the requested action: a trust-scoped token cannot be re-scoped.",
            );
        }
        let Ok(user) = api.engine.ks_user(&t.user_id) else {
            return unauthorized(base);
        };
        let app_cred = match &t.app_cred {
            Some(ac) => match api.engine.ks_app_cred(&t.user_id, ac) {
                Ok(ac) => Some(ac),
                Err(_) => return unauthorized(base),
            },
            None => None,
        };
        // Keystone lists the original token's methods and `token`.
        let mut all = t.methods;
        for m in methods {
            if !all.contains(&m) {
                all.push(m);
            }
        }
        Authenticated {
            user,
            expires_at: t.expires_at,
            methods: all,
            stamp: t.stamp,
            app_cred,
        }
    } else {
        return unauthorized(base);
    };
    let proven = proven(api, &who);
    let trust_id = str_at(auth, &["scope", "OS-TRUST:trust", "id"]).map(str::to_string);
    if auth
        .get("scope")
        .and_then(|s| s.get("OS-TRUST:trust"))
        .is_some()
        && trust_id.is_none()
    {
        return malformed("scope.OS-TRUST:trust.id");
    }
    let scoped_token = match trust_id {
        Some(id) => trust_scoped(api, &id, who).await,
        None => scoped(api, auth, who),
    };
    let token = match scoped_token {
        Ok(t) => t,
        Err(mut e) => {
            // The user proved who it is: the refusal is theirs in the audit trail.
            e.refused_login = proven.map(Box::new);
            return *e;
        }
    };
    let Some((id, token)) = api.tokens.issue(token).await else {
        return error(
            503,
            "The service is unavailable: the token could not be stored.",
        );
    };
    let catalog = !req.query().iter().any(|(k, _)| k == "nocatalog");
    Reply::json(201, &token_body(api, &token, catalog)).header("x-subject-token", id)
}

async fn by_password(
    api: &OpenStackApi,
    req: &RawRequest<'_>,
    base: &str,
    identity: &Value,
    methods: Vec<String>,
) -> Result<Authenticated, Box<Reply>> {
    let Some(user) = identity
        .get("password")
        .and_then(|p| p.get("user"))
        .filter(|u| u.is_object())
    else {
        return Err(Box::new(malformed("password.user")));
    };
    let Some(password) = user.get("password").and_then(Value::as_str) else {
        return Err(Box::new(malformed("password.user.password")));
    };
    let who = match (user.get("id"), user.get("name")) {
        (Some(Value::String(id)), _) => UserRef::Id(id.clone()),
        (Some(_), _) => return Err(Box::new(malformed("password.user.id"))),
        (None, Some(Value::String(name))) => {
            let Some(domain) = user.get("domain") else {
                return Err(Box::new(malformed("password.user.domain")));
            };
            let Some(domain) = domain_ref(domain) else {
                return Err(Box::new(malformed("password.user.domain.id or name")));
            };
            UserRef::Name {
                name: name.clone(),
                domain,
            }
        }
        _ => return Err(Box::new(malformed("password.user.id or name"))),
    };
    // One throttle record per user however it is named (ID or name): the user's name when
    // it exists (the bootstrap users keep their name as before), else what was given.
    let resolved = match &who {
        UserRef::Id(id) => api.engine.ks_user(id).ok(),
        UserRef::Name { name, domain } => api.engine.ks_domain_by_ref(domain).and_then(|d| {
            api.engine
                .ks_users()
                .into_iter()
                .find(|u| &u.name == name && u.domain_id == d.id)
        }),
    };
    let throttle_key = match (&resolved, &who) {
        (Some(u), _) if u.domain_id == ks::DEFAULT_DOMAIN_ID => u.name.clone(),
        (Some(u), _) => format!("id:{}", u.id),
        (None, UserRef::Id(id)) => format!("id:{id}"),
        (None, UserRef::Name { name, .. }) => format!("name:{name}"),
    };
    if let Err(wait) = api.logins.attempt(&throttle_key, req.peer) {
        return Err(Box::new(too_many(wait.0)));
    }
    let user = match api.engine.ks_login(&who, password).await {
        Ok(user) => user,
        Err(why) => {
            let shown: String = throttle_key.chars().take(64).collect();
            tracing::info!(user = %shown, peer = ?req.peer, locked = matches!(why, ks::Login::Locked(_)), "keystone password login failed");
            return Err(Box::new(match why {
                // Keystone's AccountLocked (401), named by the user the caller named.
                ks::Login::Locked(_) => error(
                    401,
                    &format!(
                        "The account is locked for user: {}.",
                        resolved.as_ref().map_or("", |u| u.id.as_str())
                    ),
                )
                .header(
                    "www-authenticate",
                    format!("Keystone uri=\"{base}/identity\""),
                ),
                ks::Login::Refused => unauthorized(base),
            }));
        }
    };
    api.logins.succeed(&throttle_key, req.peer);
    let stamp = api.engine.ks_stamp(&user.id).unwrap_or_default();
    Ok(Authenticated {
        user,
        expires_at: now() + TOKEN_TTL_SECS,
        methods,
        stamp,
        app_cred: None,
    })
}

async fn by_app_cred(
    api: &OpenStackApi,
    req: &RawRequest<'_>,
    base: &str,
    identity: &Value,
    methods: Vec<String>,
) -> Result<Authenticated, Box<Reply>> {
    let Some(ac) = identity
        .get("application_credential")
        .filter(|a| a.is_object())
    else {
        return Err(Box::new(malformed("application_credential")));
    };
    let Some(secret) = ac.get("secret").and_then(Value::as_str) else {
        return Err(Box::new(malformed("application_credential.secret")));
    };
    // By ID, or by name with its user (ID, or name and domain).
    let id = match (ac.get("id"), ac.get("name")) {
        (Some(Value::String(id)), _) => Some(id.clone()),
        (None, Some(Value::String(name))) => {
            let user = ac.get("user").filter(|u| u.is_object());
            let uid = match user.map(|u| (u.get("id"), u.get("name"), u.get("domain"))) {
                Some((Some(Value::String(id)), _, _)) => Some(id.clone()),
                Some((None, Some(Value::String(n)), Some(d))) => domain_ref(d)
                    .and_then(|d| api.engine.ks_domain_by_ref(&d))
                    .and_then(|d| {
                        api.engine
                            .ks_users()
                            .into_iter()
                            .find(|u| &u.name == n && u.domain_id == d.id)
                            .map(|u| u.id)
                    }),
                _ => return Err(Box::new(malformed("application_credential.user"))),
            };
            uid.and_then(|u| api.engine.ks_app_cred_named(&u, name))
                .map(|a| a.id)
        }
        _ => return Err(Box::new(malformed("application_credential.id or name"))),
    };
    let throttle_key = format!("appcred:{}", id.as_deref().unwrap_or("?"));
    if let Err(wait) = api.logins.attempt(&throttle_key, req.peer) {
        return Err(Box::new(too_many(wait.0)));
    }
    let found = api
        .engine
        .ks_authenticate_app_cred(id.as_deref().unwrap_or_default(), secret)
        .await;
    let Some(ac) = found else {
        tracing::info!(peer = ?req.peer, "keystone application credential login failed");
        return Err(Box::new(unauthorized(base)));
    };
    api.logins.succeed(&throttle_key, req.peer);
    let Ok(user) = api.engine.ks_user(&ac.user_id) else {
        return Err(Box::new(unauthorized(base)));
    };
    let stamp = api.engine.ks_stamp(&user.id).unwrap_or_default();
    let ttl = now() + TOKEN_TTL_SECS;
    Ok(Authenticated {
        user,
        // A token never outlives its application credential (D18).
        expires_at: ac.expires_at.map_or(ttl, |us| (us / 1_000_000).min(ttl)),
        methods,
        stamp,
        app_cred: Some(ac),
    })
}

/// Who a login proved to be, before its scope is looked at: an unscoped identity that is
/// never issued (the audit trail's caller of a login refused on its scope).
fn proven(api: &OpenStackApi, who: &Authenticated) -> Option<Token> {
    let domain = api.engine.ks_domain(&who.user.domain_id).ok()?;
    Some(Token {
        account: domain.account.clone(),
        user_id: who.user.id.clone(),
        user_name: who.user.name.clone(),
        user_domain_id: domain.id,
        user_domain_name: domain.name,
        roles: Vec::new(),
        scope: Scope::Unscoped,
        project: None,
        domain: None,
        methods: who.methods.clone(),
        issued_at: now(),
        expires_at: who.expires_at,
        audit_id: String::new(),
        stamp: who.stamp.clone(),
        app_cred: who.app_cred.as_ref().map(|a| a.id.clone()),
        trust: None,
    })
}

/// The token for `who` on the scope the request asks for (an application credential's own
/// project when it names none); 401 when the user holds no role there.
fn scoped(api: &OpenStackApi, auth: &Value, who: Authenticated) -> Result<Token, Box<Reply>> {
    let e = &api.engine;
    let unauth = || Box::new(unauthorized(&api.base_url()));
    let user_domain = e.ks_domain(&who.user.domain_id).map_err(|_| unauth())?;
    let mut project = None;
    let mut domain = None;
    let scope = match (auth.get("scope"), &who.app_cred) {
        (None | Some(Value::Null), Some(ac)) => {
            project = Some(e.ks_project(&ac.project_id).map_err(|_| unauth())?);
            Scope::Project
        }
        // No scope: the user's default project, when it holds a role there (Keystone).
        (None | Some(Value::Null), None) => match who
            .user
            .default_project_id
            .as_ref()
            .and_then(|p| e.ks_project(p).ok())
            .filter(|p| {
                !e.ks_roles_on(&who.user.id, &ks::Target::Project(p.id.clone()))
                    .is_empty()
            }) {
            Some(p) => {
                project = Some(p);
                Scope::Project
            }
            None => Scope::Unscoped,
        },
        (Some(Value::String(s)), None) if s == "unscoped" => Scope::Unscoped,
        (Some(s @ Value::Object(_)), _) => {
            if let Some(p) = s.get("project") {
                let found = match (p.get("id"), p.get("name")) {
                    (Some(Value::String(id)), _) => e.ks_project(id).ok(),
                    (None, Some(Value::String(name))) => {
                        let Some(d) = p.get("domain").and_then(domain_ref) else {
                            return Err(Box::new(malformed("scope.project.domain")));
                        };
                        e.ks_project_named(name, &d)
                    }
                    _ => return Err(Box::new(malformed("scope.project.id or name"))),
                };
                let p = found.ok_or_else(unauth)?;
                if who
                    .app_cred
                    .as_ref()
                    .is_some_and(|ac| ac.project_id != p.id)
                {
                    return Err(unauth());
                }
                project = Some(p);
                Scope::Project
            } else if let Some(d) = s.get("domain") {
                let d = domain_ref(d)
                    .and_then(|d| e.ks_domain_by_ref(&d))
                    .ok_or_else(unauth)?;
                if who.app_cred.is_some() {
                    return Err(unauth());
                }
                domain = Some(d);
                Scope::Domain
            } else if let Some(sys) = s.get("system") {
                // Keystone's one system: `{"all": true}`.
                if sys.get("all") != Some(&Value::Bool(true)) {
                    return Err(Box::new(malformed("scope.system.all")));
                }
                if who.app_cred.is_some() {
                    return Err(unauth());
                }
                Scope::System
            } else {
                return Err(Box::new(malformed(
                    "scope.project, scope.domain or scope.system",
                )));
            }
        }
        (Some(_), _) => return Err(Box::new(malformed("scope"))),
    };
    let (account, roles, project_ref, domain_pair) = match (&project, &domain) {
        (Some(p), _) => {
            let d = e.ks_domain(&p.domain_id).map_err(|_| unauth())?;
            if !p.enabled || !d.enabled {
                return Err(unauth());
            }
            let mut roles = e.ks_roles_on(&who.user.id, &ks::Target::Project(p.id.clone()));
            if let Some(ac) = &who.app_cred {
                // The credential's roles, while the user still holds them.
                let names: std::collections::BTreeSet<String> = ac
                    .roles
                    .iter()
                    .filter_map(|r| e.ks_role(r).ok())
                    .map(|r| r.name.to_lowercase())
                    .collect();
                roles = nubis_identity::model::expand_implied(names)
                    .intersection(&roles)
                    .cloned()
                    .collect();
            }
            let pr = ProjectRef {
                id: p.id.clone(),
                name: p.name.clone(),
                domain_id: d.id.clone(),
                domain_name: d.name.clone(),
            };
            (d.account, roles, Some(pr), None)
        }
        (None, Some(d)) => {
            if !d.enabled {
                return Err(unauth());
            }
            let roles = e.ks_roles_on(&who.user.id, &ks::Target::Domain(d.id.clone()));
            (
                d.account.clone(),
                roles,
                None,
                Some((d.id.clone(), d.name.clone())),
            )
        }
        (None, None) if scope == Scope::System => (
            user_domain.account.clone(),
            e.ks_roles_on(&who.user.id, &ks::Target::System),
            None,
            None,
        ),
        (None, None) => (user_domain.account.clone(), Default::default(), None, None),
    };
    if scope != Scope::Unscoped && roles.is_empty() {
        return Err(unauth());
    }
    // Role order as before: admin, member, reader first (the bootstrap user's tokens look as
    // they did), then the rest by name.
    let mut roles: Vec<String> = roles.into_iter().collect();
    roles.sort_by_key(|r| {
        (
            ids::ROLES.iter().position(|x| x == r).unwrap_or(usize::MAX),
            r.clone(),
        )
    });
    Ok(Token {
        account,
        user_id: who.user.id.clone(),
        user_name: who.user.name.clone(),
        user_domain_id: user_domain.id.clone(),
        user_domain_name: user_domain.name.clone(),
        roles,
        scope,
        project: project_ref,
        domain: domain_pair,
        methods: who.methods,
        issued_at: now(),
        expires_at: who.expires_at,
        audit_id: String::new(),
        stamp: who.stamp,
        app_cred: who.app_cred.map(|a| a.id),
        trust: None,
    })
}

/// A trust-scoped token: the trust's project and the delegated roles the trustor still
/// holds, as the trustor (impersonation) or the trustee. A trust that cannot be used (not
/// the trustee's, expired, used up, the trustor's roles gone): 401.
async fn trust_scoped(
    api: &OpenStackApi,
    id: &str,
    who: Authenticated,
) -> Result<Token, Box<Reply>> {
    let e = &api.engine;
    let unauth = || Box::new(unauthorized(&api.base_url()));
    if who.app_cred.is_some() {
        return Err(unauth());
    }
    let (t, roles) = e
        .ks_use_trust(id, &who.user.id)
        .await
        .map_err(|_| unauth())?;
    let p = e
        .ks_project(t.project_id.as_deref().unwrap_or_default())
        .map_err(|_| unauth())?;
    let d = e.ks_domain(&p.domain_id).map_err(|_| unauth())?;
    if !p.enabled || !d.enabled {
        return Err(unauth());
    }
    let (user, stamp) = if t.impersonation {
        let u = e.ks_user(&t.trustor_user_id).map_err(|_| unauth())?;
        let s = e.ks_stamp(&u.id).ok_or_else(unauth)?;
        (u, s)
    } else {
        (who.user, who.stamp)
    };
    let user_domain = e.ks_domain(&user.domain_id).map_err(|_| unauth())?;
    let mut roles: Vec<String> = roles.into_iter().collect();
    roles.sort_by_key(|r| {
        (
            ids::ROLES.iter().position(|x| x == r).unwrap_or(usize::MAX),
            r.clone(),
        )
    });
    let expires_at = match t.expires_at {
        Some(us) => who.expires_at.min(us.div_euclid(1_000_000)),
        None => who.expires_at,
    };
    Ok(Token {
        account: d.account.clone(),
        user_id: user.id.clone(),
        user_name: user.name.clone(),
        user_domain_id: user_domain.id.clone(),
        user_domain_name: user_domain.name.clone(),
        roles,
        scope: Scope::Project,
        project: Some(ProjectRef {
            id: p.id.clone(),
            name: p.name.clone(),
            domain_id: d.id.clone(),
            domain_name: d.name.clone(),
        }),
        domain: None,
        methods: who.methods,
        issued_at: now(),
        expires_at,
        audit_id: String::new(),
        stamp,
        app_cred: None,
        trust: Some(t.id),
    })
}

/// The caller's own token must be valid; the subject token is the one looked at. A token may
/// be looked at (or revoked) by itself, by another token of the same user, or by an admin —
/// Keystone's `identity:validate_token` / `revoke_token` default rule (`token_subject` or
/// admin); anyone else gets 403.
async fn subject(c: &Ctx<'_>, action: &str) -> Result<(String, Token), Box<Reply>> {
    let Some(caller) = c.caller.as_ref() else {
        return Err(Box::new(unauthorized(c.base)));
    };
    let Some(id) = c.req.header("x-subject-token") else {
        // D20: Keystone's ValidationError.
        return Err(Box::new(error(
            400,
            "Expecting to find X-Subject-Token in the request headers.",
        )));
    };
    let Some(t) = c.api.token_digest(&digest(id)).await else {
        return Err(Box::new(error(404, "Could not find token.")));
    };
    if !(caller.is_admin() || caller.user_id == t.user_id) {
        return Err(Box::new(error(
            403,
            &format!("You are not authorized to perform the requested action: {action}."),
        )));
    }
    Ok((id.to_string(), t))
}

/// 429 in Keystone's envelope, with the wait in `Retry-After` (whole seconds).
fn too_many(wait: std::time::Duration) -> Reply {
    let secs = wait.as_secs().max(1);
    error(
        429,
        &format!("Too many failed authentication attempts; retry after {secs} seconds."),
    )
    .header("retry-after", secs.to_string())
}

async fn validate(c: &Ctx<'_>) -> Reply {
    match subject(c, "identity:validate_token").await {
        Ok((id, token)) => {
            let catalog = !c.req.query().iter().any(|(k, _)| k == "nocatalog");
            Reply::json(200, &token_body(c.api, &token, catalog)).header("x-subject-token", id)
        }
        Err(r) => *r,
    }
}

async fn revoke(c: &Ctx<'_>) -> Reply {
    match subject(c, "identity:revoke_token").await {
        Ok((id, _)) => {
            c.api.tokens.revoke(&id).await;
            Reply::empty(204)
        }
        Err(r) => *r,
    }
}

pub(crate) fn token_body(api: &OpenStackApi, t: &Token, with_catalog: bool) -> Value {
    let base = &api.base_url();
    let mut tok = json!({
        "methods": t.methods,
        "user": {
            "id": t.user_id,
            "name": t.user_name,
            "domain": {"id": t.user_domain_id, "name": t.user_domain_name},
            "password_expires_at": null,
        },
        "audit_ids": [t.audit_id],
        "issued_at": keystone_time(t.issued_at),
        "expires_at": keystone_time(t.expires_at),
    });
    let roles: Vec<Value> = t
        .roles
        .iter()
        .map(|r| json!({"id": role_id_of(api, r), "name": r}))
        .collect();
    match (&t.scope, &t.project, &t.domain) {
        (Scope::Project, Some(p), _) => {
            tok["project"] = json!({
                "id": p.id,
                "name": p.name,
                "domain": {"id": p.domain_id, "name": p.domain_name},
            });
            tok["is_domain"] = json!(false);
            tok["roles"] = json!(roles);
        }
        (Scope::Domain, _, Some((id, name))) => {
            tok["domain"] = json!({"id": id, "name": name});
            tok["roles"] = json!(roles);
        }
        (Scope::System, _, _) => {
            tok["system"] = json!({"all": true});
            tok["roles"] = json!(roles);
        }
        _ => {}
    }
    if let Some(ac) = &t.app_cred {
        tok["application_credential"] = json!({"id": ac, "restricted": true});
        let rules = api.engine.ks_app_cred_rules(ac);
        if !rules.is_empty() {
            tok["application_credential"]["access_rules"] = json!(
                rules
                    .iter()
                    .map(crate::identity_admin::access_rule_fields)
                    .collect::<Vec<_>>()
            );
        }
    }
    if let Some(id) = &t.trust
        && let Ok(tr) = api.engine.ks_get::<ks::trusts::Trust>(id)
    {
        tok["OS-TRUST:trust"] = json!({
            "id": tr.id,
            "impersonation": tr.impersonation,
            "trustor_user": {"id": tr.trustor_user_id},
            "trustee_user": {"id": tr.trustee_user_id},
        });
    }
    if t.scope != Scope::Unscoped && with_catalog {
        tok["catalog"] = crate::identity_admin::catalog::token_catalog(&api.engine, base);
    }
    json!({"token": tok})
}

/// A role's ID from its (lower-case) name.
fn role_id_of(api: &OpenStackApi, name: &str) -> String {
    api.engine
        .ks_roles()
        .into_iter()
        .find(|r| r.name.eq_ignore_ascii_case(name))
        .map_or_else(|| ids::role_id(name), |r| r.id)
}
