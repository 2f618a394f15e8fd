//! Every Nova operation, declared once: its label, method and path, the token it needs, its
//! oslo.policy rule (nova/policies/*.py), its body and its handler. Routing, rate limits,
//! authorization, metrics labels and docs/catalogue/openstack-compute.md derive from here.

use super::actions::Hold;
use super::images::{MAX_IMAGE_METADATA_MINOR, MAX_PROXY_MINOR};
use super::{Nova, Res, version, version_v2, versions};
use crate::Reply;
use crate::routes::{Need, Route, op, resource_action, server_action, until};
use nubis_pipeline::Registry;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// How a Nova operation is answered.
pub enum Compute {
    /// A version document (no token): built from the public base URL.
    Doc(fn(&str) -> Reply),
    /// Everything else: the request's context, the path's `{…}` segments, the action's
    /// argument (`null` outside server actions).
    Nova(NovaFn),
}

type NovaCall = for<'a> fn(
    &'a Nova<'a>,
    &'a [&'a str],
    &'a Value,
) -> Pin<Box<dyn Future<Output = Res> + Send + 'a>>;

/// A handler that needs an authenticated Nova request.
pub struct NovaFn(pub(crate) NovaCall);

impl std::fmt::Debug for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Doc(_) => "Doc",
            Self::Nova(_) => "Nova",
        })
    }
}

/// The `i`-th `{…}` segment of the path (the route guarantees it is there).
fn at<'a>(params: &[&'a str], i: usize) -> &'a str {
    params.get(i).copied().unwrap_or_default()
}

/// A handler from an expression over `n` (the request), `p` (the path's segments) and `a`
/// (the action's argument).
macro_rules! nova {
    ($n:pat, $p:pat, $a:pat => $e:expr) => {
        Compute::Nova(NovaFn(|$n, $p, $a| Box::pin(async move { $e })))
    };
}

/// The policy column of operations Nova checks no rule for (version documents; flavors and
/// the image proxy, which any token may read).
const NO_RULE: &str = "(none)";
/// The body column of operations that take none.
const NO_BODY: &str = "—";

use Need::{Member, Public, Token};

/// The path of the flavor actions (flavor access).
const FLAVOR_ACTION: &str = "/compute/v2.1/flavors/{id}/action";
/// The path of the aggregate actions.
const AGGREGATE_ACTION: &str = "/compute/v2.1/os-aggregates/{id}/action";
/// `/os-hypervisors/statistics` and `/{id}/uptime` end at 2.87 (2.88 moved uptime into show).
const MAX_HYPERVISOR_STATS_MINOR: u16 = 87;
/// `/os-hosts` ends at 2.42 (2.43 removed it).
const MAX_OS_HOSTS_MINOR: u16 = 42;
/// `/os-hypervisors/{pattern}/search` and `/servers` end at 2.52 (2.53 added query filters).
const MAX_HYPERVISOR_SEARCH_MINOR: u16 = 52;

#[rustfmt::skip]
pub static REGISTRY: Registry<Route<Compute>> = Registry {
    cloud: "openstack",
    service: "compute",
    version: "",
    actions: &[
        op("compute.versions", "GET", "/compute", Public, NO_RULE, NO_BODY, Compute::Doc(versions)),
        op("compute.version", "GET", "/compute/v2.1", Public, NO_RULE, NO_BODY, Compute::Doc(version)),
        op("compute.version.v2", "GET", "/compute/v2", Public, NO_RULE, NO_BODY, Compute::Doc(version_v2)),
        op("extension.list", "GET", "/compute/v2.1/extensions", Token, "os_compute_api:extensions", NO_BODY,
            nova!(n, _, _ => n.list_extensions())),
        op("extension.show", "GET", "/compute/v2.1/extensions/{alias}", Token, "os_compute_api:extensions", NO_BODY,
            nova!(n, p, _ => n.show_extension(at(p, 0)))),
        // -- servers
        op("server.list", "GET", "/compute/v2.1/servers", Token, "os_compute_api:servers:index", NO_BODY,
            nova!(n, _, _ => n.list_servers(false).await)),
        op("server.detail", "GET", "/compute/v2.1/servers/detail", Token, "os_compute_api:servers:detail", NO_BODY,
            nova!(n, _, _ => n.list_servers(true).await)),
        op("server.create", "POST", "/compute/v2.1/servers", Member, "os_compute_api:servers:create", "{\"server\"}",
            nova!(n, _, _ => n.create_server().await)),
        op("server.show", "GET", "/compute/v2.1/servers/{id}", Token, "os_compute_api:servers:show", NO_BODY,
            nova!(n, p, _ => n.show_server(at(p, 0)).await)),
        op("server.update", "PUT", "/compute/v2.1/servers/{id}", Member, "os_compute_api:servers:update", "{\"server\"}",
            nova!(n, p, _ => n.update_server(at(p, 0)).await)),
        op("server.delete", "DELETE", "/compute/v2.1/servers/{id}", Member, "os_compute_api:servers:delete", NO_BODY,
            nova!(n, p, _ => n.delete_server(at(p, 0)).await)),
        // -- server actions
        server_action("server.action.reboot", "reboot", "os_compute_api:servers:reboot", "{\"reboot\"}",
            nova!(n, p, a => n.reboot(at(p, 0), a).await)),
        server_action("server.action.os-start", "os-start", "os_compute_api:servers:start", "{\"os-start\"}",
            nova!(n, p, a => n.start(at(p, 0), a).await)),
        server_action("server.action.os-stop", "os-stop", "os_compute_api:servers:stop", "{\"os-stop\"}",
            nova!(n, p, a => n.stop(at(p, 0), a).await)),
        server_action("server.action.changePassword", "changePassword", "os_compute_api:os-admin-password", "{\"changePassword\"}",
            nova!(n, p, a => n.change_password(at(p, 0), a).await)),
        server_action("server.action.rescue", "rescue", "os_compute_api:os-rescue", "{\"rescue\"}",
            nova!(n, p, a => n.rescue(at(p, 0), a).await)),
        server_action("server.action.unrescue", "unrescue", "os_compute_api:os-unrescue", "{\"unrescue\"}",
            nova!(n, p, a => n.unrescue(at(p, 0), a).await)),
        server_action("server.action.lock", "lock", "os_compute_api:os-lock-server:lock", "{\"lock\"}",
            nova!(n, p, a => n.lock(at(p, 0), a).await)),
        server_action("server.action.unlock", "unlock", "os_compute_api:os-lock-server:unlock", "{\"unlock\"}",
            nova!(n, p, a => n.unlock(at(p, 0), a).await)),
        server_action("server.action.injectNetworkInfo", "injectNetworkInfo", "os_compute_api:os-admin-actions:inject_network_info",
            "{\"injectNetworkInfo\"}", nova!(n, p, a => n.inject_network_info(at(p, 0), a))),
        server_action("server.action.os-getConsoleOutput", "os-getConsoleOutput", "os_compute_api:os-console-output",
            "{\"os-getConsoleOutput\"}", nova!(n, p, a => n.console_output(at(p, 0), a))),
        server_action("server.action.rebuild", "rebuild", "os_compute_api:servers:rebuild", "{\"rebuild\"}",
            nova!(n, p, a => n.rebuild(at(p, 0), a).await)),
        server_action("server.action.createImage", "createImage", "os_compute_api:servers:create_image",
            "{\"createImage\"}", nova!(n, p, a => n.create_image(at(p, 0), a).await)),
        server_action("server.action.createBackup", "createBackup", "os_compute_api:os-create-backup",
            "{\"createBackup\"}", nova!(n, p, a => n.create_backup(at(p, 0), a).await)),
        // -- server tags (2.26+)
        op("server.tags.list", "GET", "/compute/v2.1/servers/{id}/tags", Token,
            "os_compute_api:os-server-tags:index", NO_BODY,
            nova!(n, p, _ => n.tags_list(at(p, 0)))),
        op("server.tags.replace", "PUT", "/compute/v2.1/servers/{id}/tags", Member,
            "os_compute_api:os-server-tags:update_all", "{\"tags\"}",
            nova!(n, p, _ => n.tags_replace(at(p, 0)).await)),
        op("server.tags.delete_all", "DELETE", "/compute/v2.1/servers/{id}/tags", Member,
            "os_compute_api:os-server-tags:delete_all", NO_BODY,
            nova!(n, p, _ => n.tags_delete_all(at(p, 0)).await)),
        op("server.tags.show", "GET", "/compute/v2.1/servers/{id}/tags/{tag}", Token,
            "os_compute_api:os-server-tags:show", NO_BODY,
            nova!(n, p, _ => n.tags_show(at(p, 0), at(p, 1)))),
        op("server.tags.add", "PUT", "/compute/v2.1/servers/{id}/tags/{tag}", Member,
            "os_compute_api:os-server-tags:update", NO_BODY,
            nova!(n, p, _ => n.tags_add(at(p, 0), at(p, 1)).await)),
        op("server.tags.delete", "DELETE", "/compute/v2.1/servers/{id}/tags/{tag}", Member,
            "os_compute_api:os-server-tags:delete", NO_BODY,
            nova!(n, p, _ => n.tags_delete(at(p, 0), at(p, 1)).await)),
        // -- server shares (2.97+; docs/nova-servers.md: nubis has no share service)
        op("server.shares.list", "GET", "/compute/v2.1/servers/{id}/shares", Token,
            "os_compute_api:os-server-shares:index", NO_BODY,
            nova!(n, p, _ => n.shares_list(at(p, 0)))),
        op("server.shares.attach", "POST", "/compute/v2.1/servers/{id}/shares", Member,
            "os_compute_api:os-server-shares:create", "{\"share\"}",
            nova!(n, p, _ => n.shares_attach(at(p, 0)).await)),
        op("server.shares.show", "GET", "/compute/v2.1/servers/{id}/shares/{share}", Token,
            "os_compute_api:os-server-shares:show", NO_BODY,
            nova!(n, p, _ => n.shares_show(at(p, 0), at(p, 1)))),
        op("server.shares.detach", "DELETE", "/compute/v2.1/servers/{id}/shares/{share}", Member,
            "os_compute_api:os-server-shares:delete", NO_BODY,
            nova!(n, p, _ => n.shares_detach(at(p, 0), at(p, 1)).await)),
        server_action("server.action.resize", "resize", "os_compute_api:servers:resize", "{\"resize\"}",
            nova!(n, p, a => n.resize(at(p, 0), a).await)),
        server_action("server.action.confirmResize", "confirmResize", "os_compute_api:servers:confirm_resize",
            "{\"confirmResize\"}", nova!(n, p, a => n.confirm_resize(at(p, 0), a).await)),
        server_action("server.action.revertResize", "revertResize", "os_compute_api:servers:revert_resize",
            "{\"revertResize\"}", nova!(n, p, a => n.revert_resize(at(p, 0), a).await)),
        server_action("server.action.pause", "pause", "os_compute_api:os-pause-server:pause", "{\"pause\"}",
            nova!(n, p, a => n.hold(at(p, 0), a, Hold::Pause).await)),
        server_action("server.action.unpause", "unpause", "os_compute_api:os-pause-server:unpause", "{\"unpause\"}",
            nova!(n, p, a => n.hold(at(p, 0), a, Hold::Unpause).await)),
        server_action("server.action.suspend", "suspend", "os_compute_api:os-suspend-server:suspend", "{\"suspend\"}",
            nova!(n, p, a => n.hold(at(p, 0), a, Hold::Suspend).await)),
        server_action("server.action.resume", "resume", "os_compute_api:os-suspend-server:resume", "{\"resume\"}",
            nova!(n, p, a => n.hold(at(p, 0), a, Hold::Resume).await)),
        server_action("server.action.shelve", "shelve", "os_compute_api:os-shelve:shelve", "{\"shelve\"}",
            nova!(n, p, a => n.hold(at(p, 0), a, Hold::Shelve).await)),
        server_action("server.action.shelveOffload", "shelveOffload", "os_compute_api:os-shelve:shelve_offload",
            "{\"shelveOffload\"}", nova!(n, p, a => n.hold(at(p, 0), a, Hold::ShelveOffload).await)),
        server_action("server.action.unshelve", "unshelve", "os_compute_api:os-shelve:unshelve", "{\"unshelve\"}",
            nova!(n, p, a => n.unshelve(at(p, 0), a).await)),
        // -- deferred delete and the operator's state reset (docs/deferred-delete.md)
        server_action("server.action.restore", "restore", "os_compute_api:os-deferred-delete:restore", "{\"restore\"}",
            nova!(n, p, a => n.restore(at(p, 0), a).await)),
        server_action("server.action.forceDelete", "forceDelete", "os_compute_api:os-deferred-delete:force",
            "{\"forceDelete\"}", nova!(n, p, a => n.force_delete(at(p, 0), a).await)),
        server_action("server.action.os-resetState", "os-resetState", "os_compute_api:os-admin-actions:reset_state",
            "{\"os-resetState\"}", nova!(n, p, a => n.reset_state(at(p, 0), a).await)),
        op("migration.list", "GET", "/compute/v2.1/os-migrations", Token,
            "os_compute_api:os-migrations:index", NO_BODY, nova!(n, _, _ => n.list_migrations().await)),
        op("server.migrations.list", "GET", "/compute/v2.1/servers/{id}/migrations", Token,
            "os_compute_api:servers:migrations:index", NO_BODY,
            nova!(n, p, _ => n.server_migrations(at(p, 0)))),
        // -- server metadata
        op("server.metadata.list", "GET", "/compute/v2.1/servers/{id}/metadata", Token,
            "os_compute_api:server-metadata:index", NO_BODY,
            nova!(n, p, _ => n.metadata_list(at(p, 0)))),
        op("server.metadata.merge", "POST", "/compute/v2.1/servers/{id}/metadata", Member,
            "os_compute_api:server-metadata:create", "{\"metadata\"}",
            nova!(n, p, _ => n.metadata_write(at(p, 0), false).await)),
        op("server.metadata.replace", "PUT", "/compute/v2.1/servers/{id}/metadata", Member,
            "os_compute_api:server-metadata:update_all", "{\"metadata\"}",
            nova!(n, p, _ => n.metadata_write(at(p, 0), true).await)),
        op("server.metadata.show", "GET", "/compute/v2.1/servers/{id}/metadata/{key}", Token,
            "os_compute_api:server-metadata:show", NO_BODY,
            nova!(n, p, _ => n.metadata_show(at(p, 0), at(p, 1)))),
        op("server.metadata.set", "PUT", "/compute/v2.1/servers/{id}/metadata/{key}", Member,
            "os_compute_api:server-metadata:update", "{\"meta\"}",
            nova!(n, p, _ => n.metadata_set(at(p, 0), at(p, 1)).await)),
        op("server.metadata.delete", "DELETE", "/compute/v2.1/servers/{id}/metadata/{key}", Member,
            "os_compute_api:server-metadata:delete", NO_BODY,
            nova!(n, p, _ => n.metadata_delete(at(p, 0), at(p, 1)).await)),
        // -- addresses, password, diagnostics
        op("server.ips.list", "GET", "/compute/v2.1/servers/{id}/ips", Token, "os_compute_api:ips:index", NO_BODY,
            nova!(n, p, _ => n.list_addresses(at(p, 0)))),
        op("server.ips.show", "GET", "/compute/v2.1/servers/{id}/ips/{network}", Token, "os_compute_api:ips:show",
            NO_BODY, nova!(n, p, _ => n.show_addresses(at(p, 0), at(p, 1)))),
        op("server.password.show", "GET", "/compute/v2.1/servers/{id}/os-server-password", Token,
            "os_compute_api:os-server-password:show", NO_BODY, nova!(n, p, _ => n.show_server_password(at(p, 0)))),
        op("server.password.clear", "DELETE", "/compute/v2.1/servers/{id}/os-server-password", Member,
            "os_compute_api:os-server-password:clear", NO_BODY, nova!(n, p, _ => n.clear_server_password(at(p, 0)))),
        op("server.diagnostics", "GET", "/compute/v2.1/servers/{id}/diagnostics", Token,
            "os_compute_api:os-server-diagnostics", NO_BODY, nova!(n, p, _ => n.diagnostics(at(p, 0)))),
        // -- instance actions
        op("instance_action.list", "GET", "/compute/v2.1/servers/{id}/os-instance-actions", Token,
            "os_compute_api:os-instance-actions:list", NO_BODY,
            nova!(n, p, _ => n.list_instance_actions(at(p, 0)).await)),
        op("instance_action.show", "GET", "/compute/v2.1/servers/{id}/os-instance-actions/{request_id}",
            Token, "os_compute_api:os-instance-actions:show", NO_BODY,
            nova!(n, p, _ => n.show_instance_action(at(p, 0), at(p, 1)).await)),
        // -- flavors
        op("flavor.list", "GET", "/compute/v2.1/flavors", Token, NO_RULE, NO_BODY,
            nova!(n, _, _ => n.list_flavors(false))),
        op("flavor.detail", "GET", "/compute/v2.1/flavors/detail", Token, NO_RULE, NO_BODY,
            nova!(n, _, _ => n.list_flavors(true))),
        op("flavor.show", "GET", "/compute/v2.1/flavors/{id}", Token, NO_RULE, NO_BODY,
            nova!(n, p, _ => n.show_flavor(at(p, 0)))),
        op("flavor.extra_specs", "GET", "/compute/v2.1/flavors/{id}/os-extra_specs", Token,
            "os_compute_api:os-flavor-extra-specs:index", NO_BODY,
            nova!(n, p, _ => n.flavor_extra_specs(at(p, 0)))),
        op("flavor.create", "POST", "/compute/v2.1/flavors", Token,
            "os_compute_api:os-flavor-manage:create", "{\"flavor\"}",
            nova!(n, _, _ => n.create_flavor().await)),
        op("flavor.update", "PUT", "/compute/v2.1/flavors/{id}", Token,
            "os_compute_api:os-flavor-manage:update", "{\"flavor\"}",
            nova!(n, p, _ => n.update_flavor(at(p, 0)).await)),
        op("flavor.delete", "DELETE", "/compute/v2.1/flavors/{id}", Token,
            "os_compute_api:os-flavor-manage:delete", NO_BODY,
            nova!(n, p, _ => n.delete_flavor(at(p, 0)).await)),
        op("flavor.access", "GET", "/compute/v2.1/flavors/{id}/os-flavor-access", Token,
            "os_compute_api:os-flavor-access", NO_BODY,
            nova!(n, p, _ => n.flavor_access(at(p, 0)))),
        resource_action("flavor.action.addTenantAccess", FLAVOR_ACTION, "addTenantAccess",
            "os_compute_api:os-flavor-access:add_tenant_access", "{\"addTenantAccess\"}",
            nova!(n, p, a => n.change_flavor_access(at(p, 0), a, true).await)),
        resource_action("flavor.action.removeTenantAccess", FLAVOR_ACTION, "removeTenantAccess",
            "os_compute_api:os-flavor-access:remove_tenant_access", "{\"removeTenantAccess\"}",
            nova!(n, p, a => n.change_flavor_access(at(p, 0), a, false).await)),
        op("flavor.extra_specs.create", "POST", "/compute/v2.1/flavors/{id}/os-extra_specs", Token,
            "os_compute_api:os-flavor-extra-specs:create", "{\"extra_specs\"}",
            nova!(n, p, _ => n.create_flavor_extra_specs(at(p, 0)).await)),
        op("flavor.extra_spec.show", "GET", "/compute/v2.1/flavors/{id}/os-extra_specs/{key}", Token,
            "os_compute_api:os-flavor-extra-specs:show", NO_BODY,
            nova!(n, p, _ => n.flavor_extra_spec(at(p, 0), at(p, 1)))),
        op("flavor.extra_spec.update", "PUT", "/compute/v2.1/flavors/{id}/os-extra_specs/{key}", Token,
            "os_compute_api:os-flavor-extra-specs:update", "{\"<key>\"}",
            nova!(n, p, _ => n.update_flavor_extra_spec(at(p, 0), at(p, 1)).await)),
        op("flavor.extra_spec.delete", "DELETE", "/compute/v2.1/flavors/{id}/os-extra_specs/{key}", Token,
            "os_compute_api:os-flavor-extra-specs:delete", NO_BODY,
            nova!(n, p, _ => n.delete_flavor_extra_spec(at(p, 0), at(p, 1)).await)),
        // -- key pairs
        op("keypair.list", "GET", "/compute/v2.1/os-keypairs", Token, "os_compute_api:os-keypairs:index", NO_BODY,
            nova!(n, _, _ => n.list_keypairs())),
        op("keypair.create", "POST", "/compute/v2.1/os-keypairs", Member, "os_compute_api:os-keypairs:create",
            "{\"keypair\"}", nova!(n, _, _ => n.create_keypair().await)),
        op("keypair.show", "GET", "/compute/v2.1/os-keypairs/{name}", Token, "os_compute_api:os-keypairs:show",
            NO_BODY, nova!(n, p, _ => n.show_keypair(at(p, 0)))),
        op("keypair.delete", "DELETE", "/compute/v2.1/os-keypairs/{name}", Member,
            "os_compute_api:os-keypairs:delete", NO_BODY, nova!(n, p, _ => n.delete_keypair(at(p, 0)).await)),
        // -- server groups (docs/placement-groups.md)
        op("server_group.list", "GET", "/compute/v2.1/os-server-groups", Token,
            "os_compute_api:os-server-groups:index", NO_BODY, nova!(n, _, _ => n.list_server_groups())),
        op("server_group.create", "POST", "/compute/v2.1/os-server-groups", Member,
            "os_compute_api:os-server-groups:create", "{\"server_group\"}",
            nova!(n, _, _ => n.create_server_group().await)),
        op("server_group.show", "GET", "/compute/v2.1/os-server-groups/{id}", Token,
            "os_compute_api:os-server-groups:show", NO_BODY, nova!(n, p, _ => n.show_server_group(at(p, 0)))),
        op("server_group.delete", "DELETE", "/compute/v2.1/os-server-groups/{id}", Member,
            "os_compute_api:os-server-groups:delete", NO_BODY,
            nova!(n, p, _ => n.delete_server_group(at(p, 0)).await)),
        // -- the image proxy (gone from 2.36)
        until(op("image.proxy.list", "GET", "/compute/v2.1/images", Token, NO_RULE, NO_BODY,
            nova!(n, _, _ => n.list_images(false))), MAX_PROXY_MINOR),
        until(op("image.proxy.detail", "GET", "/compute/v2.1/images/detail", Token, NO_RULE, NO_BODY,
            nova!(n, _, _ => n.list_images(true))), MAX_PROXY_MINOR),
        until(op("image.proxy.show", "GET", "/compute/v2.1/images/{id}", Token, NO_RULE, NO_BODY,
            nova!(n, p, _ => n.show_image(at(p, 0)))), MAX_PROXY_MINOR),
        until(op("image.proxy.delete", "DELETE", "/compute/v2.1/images/{id}", Member, NO_RULE, NO_BODY,
            nova!(n, p, _ => n.delete_image(at(p, 0)).await)), MAX_PROXY_MINOR),
        until(op("image.proxy.metadata.list", "GET", "/compute/v2.1/images/{id}/metadata", Token, NO_RULE, NO_BODY,
            nova!(n, p, _ => n.image_metadata_list(at(p, 0)))), MAX_IMAGE_METADATA_MINOR),
        until(op("image.proxy.metadata.merge", "POST", "/compute/v2.1/images/{id}/metadata", Member, NO_RULE,
            "{\"metadata\"}", nova!(n, p, _ => n.image_metadata_write(at(p, 0), false).await)), MAX_IMAGE_METADATA_MINOR),
        until(op("image.proxy.metadata.replace", "PUT", "/compute/v2.1/images/{id}/metadata", Member, NO_RULE,
            "{\"metadata\"}", nova!(n, p, _ => n.image_metadata_write(at(p, 0), true).await)), MAX_IMAGE_METADATA_MINOR),
        until(op("image.proxy.metadata.show", "GET", "/compute/v2.1/images/{id}/metadata/{key}", Token, NO_RULE, NO_BODY,
            nova!(n, p, _ => n.image_metadata_show(at(p, 0), at(p, 1)))), MAX_IMAGE_METADATA_MINOR),
        until(op("image.proxy.metadata.set", "PUT", "/compute/v2.1/images/{id}/metadata/{key}", Member, NO_RULE,
            "{\"meta\"}", nova!(n, p, _ => n.image_metadata_set(at(p, 0), at(p, 1)).await)), MAX_IMAGE_METADATA_MINOR),
        until(op("image.proxy.metadata.delete", "DELETE", "/compute/v2.1/images/{id}/metadata/{key}", Member, NO_RULE,
            NO_BODY, nova!(n, p, _ => n.image_metadata_delete(at(p, 0), at(p, 1)).await)), MAX_IMAGE_METADATA_MINOR),
        // -- supporting endpoints
        op("availability_zone.list", "GET", "/compute/v2.1/os-availability-zone", Token,
            "os_compute_api:os-availability-zone:list", NO_BODY, nova!(n, _, _ => Ok(n.zones()))),
        op("availability_zone.detail", "GET", "/compute/v2.1/os-availability-zone/detail", Token,
            "os_compute_api:os-availability-zone:detail", NO_BODY, nova!(n, _, _ => Ok(n.zone_detail()))),
        op("limits", "GET", "/compute/v2.1/limits", Token, "os_compute_api:limits", NO_BODY,
            nova!(n, _, _ => n.limits())),
        // -- operator views (docs/nova-operator.md): admins only by Nova's default rules
        op("hypervisor.list", "GET", "/compute/v2.1/os-hypervisors", Token,
            "os_compute_api:os-hypervisors:list", NO_BODY, nova!(n, _, _ => n.list_hypervisors(false))),
        op("hypervisor.detail", "GET", "/compute/v2.1/os-hypervisors/detail", Token,
            "os_compute_api:os-hypervisors:list-detail", NO_BODY, nova!(n, _, _ => n.list_hypervisors(true))),
        until(op("hypervisor.statistics", "GET", "/compute/v2.1/os-hypervisors/statistics", Token,
            "os_compute_api:os-hypervisors:statistics", NO_BODY, nova!(n, _, _ => n.hypervisor_statistics())),
            MAX_HYPERVISOR_STATS_MINOR),
        op("hypervisor.show", "GET", "/compute/v2.1/os-hypervisors/{id}", Token,
            "os_compute_api:os-hypervisors:show", NO_BODY, nova!(n, p, _ => n.show_hypervisor(at(p, 0)))),
        until(op("hypervisor.uptime", "GET", "/compute/v2.1/os-hypervisors/{id}/uptime", Token,
            "os_compute_api:os-hypervisors:uptime", NO_BODY, nova!(n, p, _ => n.hypervisor_uptime(at(p, 0)))),
            MAX_HYPERVISOR_STATS_MINOR),
        until(op("hypervisor.search", "GET", "/compute/v2.1/os-hypervisors/{id}/search", Token,
            "os_compute_api:os-hypervisors:search", NO_BODY,
            nova!(n, p, _ => n.search_hypervisors(at(p, 0), false))), MAX_HYPERVISOR_SEARCH_MINOR),
        until(op("hypervisor.servers", "GET", "/compute/v2.1/os-hypervisors/{id}/servers", Token,
            "os_compute_api:os-hypervisors:servers", NO_BODY,
            nova!(n, p, _ => n.search_hypervisors(at(p, 0), true))), MAX_HYPERVISOR_SEARCH_MINOR),
        until(op("os_host.list", "GET", "/compute/v2.1/os-hosts", Token, "os_compute_api:os-hosts:list", NO_BODY,
            nova!(n, _, _ => n.list_os_hosts())), MAX_OS_HOSTS_MINOR),
        until(op("os_host.show", "GET", "/compute/v2.1/os-hosts/{host}", Token, "os_compute_api:os-hosts:show",
            NO_BODY, nova!(n, p, _ => n.show_os_host(at(p, 0)))), MAX_OS_HOSTS_MINOR),
        until(op("os_host.update", "PUT", "/compute/v2.1/os-hosts/{host}", Member, "os_compute_api:os-hosts:update",
            "{\"status\", \"maintenance_mode\"}", nova!(n, p, _ => n.update_os_host(at(p, 0)).await)), MAX_OS_HOSTS_MINOR),
        until(op("os_host.startup", "GET", "/compute/v2.1/os-hosts/{host}/startup", Token,
            "os_compute_api:os-hosts:start", NO_BODY, nova!(n, p, _ => n.os_host_power(at(p, 0)))), MAX_OS_HOSTS_MINOR),
        until(op("os_host.shutdown", "GET", "/compute/v2.1/os-hosts/{host}/shutdown", Token,
            "os_compute_api:os-hosts:shutdown", NO_BODY, nova!(n, p, _ => n.os_host_power(at(p, 0)))), MAX_OS_HOSTS_MINOR),
        until(op("os_host.reboot", "GET", "/compute/v2.1/os-hosts/{host}/reboot", Token,
            "os_compute_api:os-hosts:reboot", NO_BODY, nova!(n, p, _ => n.os_host_power(at(p, 0)))), MAX_OS_HOSTS_MINOR),
        op("service.list", "GET", "/compute/v2.1/os-services", Token, "os_compute_api:os-services:list",
            NO_BODY, nova!(n, _, _ => n.list_services())),
        op("service.update", "PUT", "/compute/v2.1/os-services/{id}", Member,
            "os_compute_api:os-services:update", "{\"host\", \"binary\"} (2.1–2.52) or {\"status\"} (2.53+)",
            nova!(n, p, _ => n.update_service(at(p, 0)).await)),
        op("service.delete", "DELETE", "/compute/v2.1/os-services/{id}", Member,
            "os_compute_api:os-services:delete", NO_BODY, nova!(n, p, _ => n.delete_service(at(p, 0)).await)),
        op("aggregate.list", "GET", "/compute/v2.1/os-aggregates", Token, "os_compute_api:os-aggregates:index",
            NO_BODY, nova!(n, _, _ => n.list_aggregates())),
        op("aggregate.create", "POST", "/compute/v2.1/os-aggregates", Member,
            "os_compute_api:os-aggregates:create", "{\"aggregate\"}", nova!(n, _, _ => n.create_aggregate().await)),
        op("aggregate.show", "GET", "/compute/v2.1/os-aggregates/{id}", Token,
            "os_compute_api:os-aggregates:show", NO_BODY, nova!(n, p, _ => n.show_aggregate(at(p, 0)))),
        op("aggregate.update", "PUT", "/compute/v2.1/os-aggregates/{id}", Member,
            "os_compute_api:os-aggregates:update", "{\"aggregate\"}",
            nova!(n, p, _ => n.update_aggregate(at(p, 0)).await)),
        op("aggregate.delete", "DELETE", "/compute/v2.1/os-aggregates/{id}", Member,
            "os_compute_api:os-aggregates:delete", NO_BODY, nova!(n, p, _ => n.delete_aggregate(at(p, 0)).await)),
        resource_action("aggregate.action.add_host", AGGREGATE_ACTION, "add_host",
            "os_compute_api:os-aggregates:add_host", "{\"add_host\"}",
            nova!(n, p, a => n.aggregate_host(at(p, 0), a, true).await)),
        resource_action("aggregate.action.remove_host", AGGREGATE_ACTION, "remove_host",
            "os_compute_api:os-aggregates:remove_host", "{\"remove_host\"}",
            nova!(n, p, a => n.aggregate_host(at(p, 0), a, false).await)),
        resource_action("aggregate.action.set_metadata", AGGREGATE_ACTION, "set_metadata",
            "os_compute_api:os-aggregates:set_metadata", "{\"set_metadata\"}",
            nova!(n, p, a => n.aggregate_metadata(at(p, 0), a).await)),
        op("usage.list", "GET", "/compute/v2.1/os-simple-tenant-usage", Token,
            "os_compute_api:os-simple-tenant-usage:list", NO_BODY, nova!(n, _, _ => n.list_usage())),
        op("usage.show", "GET", "/compute/v2.1/os-simple-tenant-usage/{tenant}", Token,
            "os_compute_api:os-simple-tenant-usage:show", NO_BODY, nova!(n, p, _ => n.show_usage(at(p, 0)))),
        op("usage_audit_log.list", "GET", "/compute/v2.1/os-instance_usage_audit_log", Token,
            "os_compute_api:os-instance-usage-audit-log:list", NO_BODY, nova!(n, _, _ => n.list_usage_audit_logs())),
        op("usage_audit_log.show", "GET", "/compute/v2.1/os-instance_usage_audit_log/{before}", Token,
            "os_compute_api:os-instance-usage-audit-log:show", NO_BODY,
            nova!(n, p, _ => n.show_usage_audit_log(at(p, 0)))),
        // -- quotas (docs/quotas.md): reads of the own project, the rest by admins
        op("quota_set.show", "GET", "/compute/v2.1/os-quota-sets/{project}", Token,
            "os_compute_api:os-quota-sets:show", NO_BODY, nova!(n, p, _ => n.show_quota_set(at(p, 0), "show"))),
        op("quota_set.defaults", "GET", "/compute/v2.1/os-quota-sets/{project}/defaults", Token,
            "os_compute_api:os-quota-sets:defaults", NO_BODY, nova!(n, p, _ => n.show_quota_set(at(p, 0), "defaults"))),
        op("quota_set.detail", "GET", "/compute/v2.1/os-quota-sets/{project}/detail", Token,
            "os_compute_api:os-quota-sets:detail", NO_BODY, nova!(n, p, _ => n.show_quota_set(at(p, 0), "detail"))),
        op("quota_set.update", "PUT", "/compute/v2.1/os-quota-sets/{project}", Member,
            "os_compute_api:os-quota-sets:update", "{\"quota_set\"}", nova!(n, p, _ => n.update_quota_set(at(p, 0)).await)),
        op("quota_set.delete", "DELETE", "/compute/v2.1/os-quota-sets/{project}", Member,
            "os_compute_api:os-quota-sets:delete", NO_BODY, nova!(n, p, _ => n.delete_quota_set(at(p, 0)).await)),
        op("quota_class_set.show", "GET", "/compute/v2.1/os-quota-class-sets/{class}", Token,
            "os_compute_api:os-quota-class-sets:show", NO_BODY, nova!(n, p, _ => n.show_quota_class_set(at(p, 0)))),
        op("quota_class_set.update", "PUT", "/compute/v2.1/os-quota-class-sets/{class}", Member,
            "os_compute_api:os-quota-class-sets:update", "{\"quota_class_set\"}", nova!(n, p, _ => n.update_quota_class_set(at(p, 0)).await)),
    ],
};
