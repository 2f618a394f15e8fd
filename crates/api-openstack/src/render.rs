//! Records as Nova, Glance and Keystone JSON. Every Nova view is built per request
//! microversion: Tempest validates bodies with `additionalProperties: false`, so a field added
//! in a later version must not appear at an earlier one.

use crate::ids;
use crate::microversion::Version;
use crate::state::{Extra, nova_state};
use nubis_core::flavors::Flavor;
use nubis_core::{Instance, KeyPair, OsFamily, catalog};
use serde_json::{Map, Value, json};
use sha2::Digest;

/// System disk of every server (GiB): what flavors advertise and create allocates.
pub const ROOT_DISK_GIB: u32 = 50;
fn datetime(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (Nova `created`/`updated`, Glance `created_at`).
pub fn iso_seconds(ms: i64) -> String {
    datetime(ms)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` without a zone (Nova `OS-SRV-USG:launched_at`, key pairs).
pub fn iso_micro(ms: i64) -> String {
    datetime(ms)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]"
        ))
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (Keystone).
pub fn keystone_time(secs: i64) -> String {
    iso_micro(secs * 1000) + "Z"
}

/// `[self, bookmark]` for a Nova resource path such as `servers/<id>`.
pub fn links(base: &str, path: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/compute/v2.1/{path}")},
        {"rel": "bookmark", "href": format!("{base}/compute/{path}")},
    ])
}

fn bookmark(base: &str, path: &str) -> Value {
    json!([{"rel": "bookmark", "href": format!("{base}/compute/{path}")}])
}

/// Nova flavors are the catalogue's instance types; the id is the type name.
pub fn flavor(f: &Flavor, v: Version, base: &str, detail: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(f.id));
    m.insert("name".into(), json!(f.name));
    m.insert("links".into(), links(base, &format!("flavors/{}", f.id)));
    if v.at_least(55) {
        m.insert("description".into(), json!(f.description));
    }
    if detail {
        m.insert("ram".into(), json!(f.ram_mib));
        m.insert("vcpus".into(), json!(f.vcpus));
        m.insert("disk".into(), json!(f.disk_gib));
        // Before 2.75 a flavor without swap shows "" (flavors view builder).
        m.insert(
            "swap".into(),
            if v.at_least(75) || f.swap_mib > 0 {
                json!(f.swap_mib)
            } else {
                json!("")
            },
        );
        m.insert("OS-FLV-EXT-DATA:ephemeral".into(), json!(f.ephemeral_gib));
        m.insert("OS-FLV-DISABLED:disabled".into(), json!(false));
        m.insert("os-flavor-access:is_public".into(), json!(f.is_public));
        m.insert("rxtx_factor".into(), json!(f.rxtx_factor));
        if v.at_least(61) {
            m.insert("extra_specs".into(), json!(f.extra_specs));
        }
    }
    Value::Object(m)
}

/// Glance's time format: `2024-01-01T00:00:00Z` (seconds, UTC).
pub fn glance_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Glance's `owner` of an image: its project (an account's default project when it has
/// none); a built-in image shows the caller's project, as Glance showed it before the
/// registry existed.
pub fn image_owner(i: &nubis_core::images::Image, caller_project: &str) -> String {
    match &i.account {
        None => caller_project.to_string(),
        Some(a) => i.project.clone().unwrap_or_else(|| ids::project_id(a)),
    }
}

/// A Glance v2 image (not wrapped) from the registry's record. Built-in images render as
/// they always did (their OS facts as properties, a fixed creation time).
pub fn image(i: &nubis_core::images::Image, caller_project: &str) -> Value {
    let id = i.uuid;
    let builtin = i.is_builtin();
    let when = |ms: i64| {
        if builtin {
            "2024-01-01T00:00:00Z".to_string()
        } else {
            glance_time(ms)
        }
    };
    let data = i.data.as_ref();
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("id", json!(id));
    put("name", json!(i.name));
    put("status", json!(i.status.glance()));
    put("visibility", json!(i.visibility.glance()));
    put("protected", json!(i.protected));
    put(
        "os_hidden",
        json!(i.properties.get("os_hidden").map(String::as_str) == Some("true")),
    );
    put("disk_format", json!(i.disk_format));
    put("container_format", json!(i.container_format));
    put(
        "min_disk",
        json!(if builtin { i.size_gib } else { i.min_disk }),
    );
    put("min_ram", json!(i.min_ram));
    put("size", json!(data.map(|d| d.size)));
    put(
        "virtual_size",
        json!(if builtin {
            data.map(|d| d.size)
        } else {
            data.and_then(|d| d.virtual_size)
        }),
    );
    put("checksum", json!(data.and_then(|d| nonempty(&d.md5))));
    let sha = data.and_then(|d| nonempty(&d.sha512));
    put("os_hash_algo", json!(sha.as_ref().map(|_| "sha512")));
    put("os_hash_value", json!(sha));
    put("owner", json!(image_owner(i, caller_project)));
    put("tags", json!(i.tags));
    put("created_at", json!(when(i.created_ms)));
    put("updated_at", json!(when(i.updated_ms)));
    put("file", json!(format!("/v2/images/{id}/file")));
    put("self", json!(format!("/v2/images/{id}")));
    put("schema", json!("/v2/schemas/image"));
    // Custom properties, as Glance shows them: top-level keys.
    if builtin {
        put(
            "os_type",
            json!(if i.os == OsFamily::Windows {
                "windows"
            } else {
                "linux"
            }),
        );
        put("os_distro", json!(i.platform.to_lowercase()));
        put("os_admin_user", json!(i.default_user));
        put("nubis_image_id", json!(i.id));
    } else {
        if !i.description.is_empty() {
            put("description", json!(i.description));
        }
        // An image made from a server carries Nova's snapshot properties.
        if let Some(server) = i.source_instance {
            put("image_type", json!("snapshot"));
            put("instance_uuid", json!(server));
        }
    }
    for (k, v) in &i.properties {
        if k != "os_hidden" {
            put(k, json!(v));
        }
    }
    Value::Object(m)
}

/// Catalogue image behind a Glance/Nova reference: its UUID, a URL ending in it, or the
/// catalogue ID itself.
pub fn image_by_ref(r: &str) -> Option<&'static catalog::Image> {
    let tail = r
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    catalog::IMAGES
        .iter()
        .find(|i| ids::image_uuid(i.id).to_string() == tail || i.id == tail)
}

pub(crate) fn mac_of(inst: &Instance) -> String {
    let b = inst.uuid.as_bytes();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[13], b[14], b[15])
}

/// How a server is rendered besides its record.
pub struct ServerCtx<'a> {
    pub base: &'a str,
    pub version: Version,
    /// The caller may see admin-only attributes.
    pub admin: bool,
    pub extra: Extra,
    pub key_name: Option<String>,
    /// `GET /servers/{id}` (some fields appear there and not in lists).
    pub show: bool,
    /// The stored user data, read only when the view shows it ([`shows_user_data`]).
    pub user_data: Option<String>,
    /// The zone an aggregate gives the server's host, which Nova shows instead of the one
    /// the server was created in (docs/nova-operator.md).
    pub host_zone: Option<String>,
    /// Whether the agent host the server runs on answers (`None`: the embedded driver's).
    pub host_health: Option<nubis_core::hosts::HostHealth>,
    /// The Glance ID of the server's image.
    pub image_uuid: uuid::Uuid,
    /// The image's properties as Nova keeps them for the server (2.98+; [`image_properties`]).
    pub image_properties: Option<Map<String, Value>>,
    /// The scheduler hints the server was created with (2.100+), as given.
    pub scheduler_hints: Option<Value>,
}

/// The image properties Nova copies into a server's system metadata when it boots
/// (`utils.get_system_metadata_from_image`: the Glance properties and the inheritable
/// `min_ram`, `min_disk`, `disk_format`, `container_format`; values cut to 255 characters),
/// which 2.98 shows under the server's `image`.
pub fn image_properties(image: &nubis_core::images::Image) -> Map<String, Value> {
    let cut = |v: &str| json!(v.chars().take(255).collect::<String>());
    let mut m: Map<String, Value> = image
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), cut(v)))
        .collect();
    m.insert("min_ram".into(), json!(image.min_ram.to_string()));
    m.insert("min_disk".into(), json!(image.min_disk.to_string()));
    for (k, v) in [
        ("disk_format", &image.disk_format),
        ("container_format", &image.container_format),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), cut(v));
        }
    }
    m
}

/// Does the full view show `OS-EXT-SRV-ATTR:user_data` (admin, 2.3+)?
pub fn shows_user_data(admin: bool, v: Version) -> bool {
    admin && v.at_least(3)
}

pub fn server_brief(inst: &Instance, base: &str) -> Value {
    json!({
        "id": inst.uuid,
        "name": inst.name,
        "links": links(base, &format!("servers/{}", inst.uuid)),
    })
}

/// Nova's `OS-DCF:diskConfig` value.
pub fn disk_config(auto: bool) -> &'static str {
    if auto { "AUTO" } else { "MANUAL" }
}

/// The statuses a server shows `progress` in (nova/api/openstack/compute/views/servers.py).
const PROGRESS_STATUSES: &[&str] = &[
    "ACTIVE",
    "BUILD",
    "REBUILD",
    "RESIZE",
    "VERIFY_RESIZE",
    "MIGRATING",
];

/// The full server view (`GET /servers/{id}`, `/servers/detail`).
pub fn server(inst: &Instance, c: &ServerCtx<'_>) -> Value {
    let v = c.version;
    let st = nova_state(inst.state, c.extra);
    let ty = inst.type_facts();
    let zone = catalog::zone(&inst.zone)
        .map(|z| z.openstack)
        .unwrap_or("nova");
    let project = inst
        .project
        .clone()
        .unwrap_or_else(|| ids::project_id(&inst.account));
    let scheduled = st.vm_state != "building";
    // The agent host it runs on, else the compute host of its zone (docs/nova-operator.md).
    let host = inst
        .host
        .clone()
        .unwrap_or_else(|| crate::compute::host_of_zone(&inst.zone));
    // Nova's host_status for a compute service whose reports stopped (docs/agents.md).
    let unknown = c
        .host_health
        .is_some_and(|h| h != nubis_core::hosts::HostHealth::Up);
    let host_id = if scheduled {
        hex::encode(sha2::Sha224::digest(format!("{project}{host}")))
    } else {
        String::new()
    };
    let mut image = json!({
        "id": c.image_uuid,
        "links": bookmark(c.base, &format!("images/{}", c.image_uuid)),
    });
    if v.at_least(98) {
        image["properties"] = Value::Object(c.image_properties.clone().unwrap_or_default());
    }
    let flavor = if v.at_least(47) {
        json!({
            "vcpus": ty.map(|t| t.cpu).unwrap_or(0),
            "ram": ty.map(|t| t.memory_mib).unwrap_or(0),
            "disk": inst.system_disk.size_gib,
            "ephemeral": 0,
            "swap": 0,
            "original_name": inst.instance_type,
            "extra_specs": {},
        })
    } else {
        json!({
            "id": inst.instance_type,
            "links": bookmark(c.base, &format!("flavors/{}", inst.instance_type)),
        })
    };
    let metadata: Map<String, Value> = inst
        .shown_tags()
        .map(|(k, val)| (k.to_string(), json!(val)))
        .collect();
    let created = iso_seconds(inst.created_at_ms);
    let instance_name = format!("instance-{}", &inst.uuid.simple().to_string()[..8]);
    let mut m = Map::new();
    let mut put = |k: &str, val: Value| {
        m.insert(k.to_string(), val);
    };
    put("id", json!(inst.uuid));
    put("name", json!(inst.name));
    put("status", json!(st.status));
    put("tenant_id", json!(project));
    let user = (inst.user_id.clone()).unwrap_or_else(|| ids::user_id(&inst.account));
    put("user_id", json!(user));
    put("metadata", Value::Object(metadata));
    put("hostId", json!(host_id));
    put("image", image);
    put("flavor", flavor);
    put("created", json!(created));
    put("updated", json!(iso_seconds(inst.updated_ms())));
    put(
        "addresses",
        json!({ ids::NETWORK_NAME: [{
            "version": 4,
            "addr": inst.private_ip,
            "OS-EXT-IPS:type": "fixed",
            "OS-EXT-IPS-MAC:mac_addr": mac_of(inst),
        }]}),
    );
    put(
        "accessIPv4",
        json!(inst.attrs.access_ipv4.as_deref().unwrap_or("")),
    );
    put(
        "accessIPv6",
        json!(inst.attrs.access_ipv6.as_deref().unwrap_or("")),
    );
    put("links", links(c.base, &format!("servers/{}", inst.uuid)));
    put(
        "OS-DCF:diskConfig",
        json!(disk_config(inst.attrs.auto_disk_config)),
    );
    // Nova's view builder shows progress only in these (`_progress_statuses`).
    if PROGRESS_STATUSES.contains(&st.status) {
        put("progress", json!(0));
    }
    put(
        "OS-EXT-AZ:availability_zone",
        json!(c.host_zone.as_deref().filter(|_| scheduled).unwrap_or(zone)),
    );
    put("config_drive", json!(""));
    put("key_name", json!(c.key_name));
    put(
        "OS-SRV-USG:launched_at",
        if scheduled {
            json!(iso_micro(inst.created_at_ms))
        } else {
            Value::Null
        },
    );
    put("OS-SRV-USG:terminated_at", Value::Null);
    put("security_groups", json!([{"name": "default"}]));
    put("OS-EXT-STS:task_state", json!(st.task_state));
    put("OS-EXT-STS:vm_state", json!(st.vm_state));
    put("OS-EXT-STS:power_state", json!(st.power_state));
    put("os-extended-volumes:volumes_attached", json!([]));
    if st.status == "ERROR" {
        let message = inst
            .latest_op
            .as_ref()
            .and_then(|o| o.error.clone())
            .unwrap_or_else(|| "Build of instance failed".into());
        put(
            "fault",
            json!({"code": 500, "message": message, "created": created}),
        );
    }
    if c.admin {
        put("OS-EXT-SRV-ATTR:host", json!(scheduled.then_some(&host)));
        put(
            "OS-EXT-SRV-ATTR:hypervisor_hostname",
            json!(scheduled.then_some(&host)),
        );
        put("OS-EXT-SRV-ATTR:instance_name", json!(instance_name));
        if v.at_least(3) {
            put(
                "OS-EXT-SRV-ATTR:reservation_id",
                json!(format!("r-{}", &inst.uuid.simple().to_string()[..8])),
            );
            put("OS-EXT-SRV-ATTR:launch_index", json!(0));
            put("OS-EXT-SRV-ATTR:hostname", json!(inst.host_name));
            put("OS-EXT-SRV-ATTR:kernel_id", json!(""));
            put("OS-EXT-SRV-ATTR:ramdisk_id", json!(""));
            put("OS-EXT-SRV-ATTR:root_device_name", json!("/dev/vda"));
            put("OS-EXT-SRV-ATTR:user_data", json!(c.user_data));
        }
        if v.at_least(16) {
            let status = match (scheduled, unknown) {
                (false, _) => "",
                (true, true) => "UNKNOWN",
                (true, false) => "UP",
            };
            put("host_status", json!(status));
        }
    } else {
        if v.at_least(90) {
            put("OS-EXT-SRV-ATTR:hostname", json!(inst.host_name));
        }
        // Nova's `servers:show:host_status:unknown-only` rule, granted to every reader: a
        // server whose host stopped reporting says so.
        if v.at_least(16) && scheduled && unknown {
            put("host_status", json!("UNKNOWN"));
        }
    }
    let locked = inst.locked.is_some() || inst.restriction != nubis_core::Restriction::None;
    if v.at_least(9) {
        put("locked", json!(locked));
    }
    if v.at_least(19) {
        put(
            "description",
            if inst.description.is_empty() {
                Value::Null
            } else {
                json!(inst.description)
            },
        );
    }
    if v.at_least(26) {
        // Nova tags: the keys of the instance's tags (docs/tags.md).
        let tags: Vec<&str> = inst.tags.iter().map(|(k, _)| k.as_str()).collect();
        put("tags", json!(tags));
    }
    if v.at_least(63) {
        put("trusted_image_certificates", Value::Null);
    }
    if v.at_least(71) && c.show {
        put(
            "server_groups",
            json!(inst.placement_group.iter().collect::<Vec<_>>()),
        );
    }
    if v.at_least(73) {
        put(
            "locked_reason",
            match &inst.locked {
                Some(reason) if !reason.is_empty() => json!(reason),
                Some(_) => Value::Null,
                None if locked => json!(format!("{:?}", inst.restriction).to_lowercase()),
                None => Value::Null,
            },
        );
    }
    if v.at_least(96) {
        put("pinned_availability_zone", Value::Null);
    }
    if v.at_least(100) {
        put(
            "scheduler_hints",
            c.scheduler_hints.clone().unwrap_or_else(|| json!({})),
        );
    }
    Value::Object(m)
}

/// The basic server view (`_view_builder.show` with every extension off): what PUT and
/// rebuild answer before 2.75.
const BASIC: &[&str] = &[
    "id",
    "name",
    "status",
    "tenant_id",
    "user_id",
    "metadata",
    "hostId",
    "image",
    "flavor",
    "created",
    "updated",
    "addresses",
    "accessIPv4",
    "accessIPv6",
    "links",
    "OS-DCF:diskConfig",
    "progress",
    "fault",
    // Added by microversions whatever the extensions (present in `full` only from theirs).
    "locked",
    "description",
    "tags",
    "trusted_image_certificates",
    "server_groups",
    "locked_reason",
];

/// The server as PUT (`rebuild` false) and rebuild answer, from the full show view (built
/// with `show`): before 2.75 the basic view, with rebuild's `key_name` (2.54) and `user_data`
/// (2.57); from 2.75 the full view, rebuild showing `user_data` instead of the admin
/// attribute `OS-EXT-SRV-ATTR:user_data`.
pub fn changed_server(full: Value, user_data: Option<&str>, v: Version, rebuild: bool) -> Value {
    let Value::Object(mut m) = full else {
        return full;
    };
    if v.at_least(75) {
        if rebuild {
            m.remove("OS-EXT-SRV-ATTR:user_data");
            m.insert("user_data".into(), json!(user_data));
        }
        return Value::Object(m);
    }
    let key_name = m.get("key_name").cloned().unwrap_or(Value::Null);
    m.retain(|k, _| BASIC.contains(&k.as_str()));
    // Addresses without the extended attributes.
    if let Some(Value::Object(nets)) = m.get_mut("addresses") {
        for list in nets.values_mut() {
            if let Value::Array(items) = list {
                for item in items.iter_mut() {
                    if let Value::Object(o) = item {
                        o.retain(|k, _| k == "version" || k == "addr");
                    }
                }
            }
        }
    }
    if rebuild && v.at_least(54) {
        m.insert("key_name".into(), key_name);
    }
    if rebuild && v.at_least(57) {
        m.insert("user_data".into(), json!(user_data));
    }
    Value::Object(m)
}

/// A key pair's fingerprint as Nova shows it: MD5 of an OpenSSH key blob, SHA-1 of an X.509
/// certificate's DER (`generate_x509_fingerprint`), colon-separated hex.
pub fn key_fingerprint(k: &KeyPair) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    match k.key_type {
        nubis_core::KeyType::Ssh => fingerprint(&k.public_key),
        nubis_core::KeyType::X509 => {
            let b64: String = k
                .public_key
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default();
            nubis_engine::colon_hex(&sha1::Sha1::digest(&der))
        }
    }
}

/// MD5 of the key blob, colon-separated (`ssh-keygen -E md5 -l`).
pub use nubis_engine::md5_fingerprint as fingerprint;

/// The key pair view shared by list, show and create.
pub fn key_pair(k: &KeyPair, v: Version) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(k.name));
    m.insert("public_key".into(), json!(k.public_key));
    m.insert("fingerprint".into(), json!(key_fingerprint(k)));
    if v.at_least(2) {
        let ty = match k.key_type {
            nubis_core::KeyType::Ssh => "ssh",
            nubis_core::KeyType::X509 => "x509",
        };
        m.insert("type".into(), json!(ty));
    }
    m
}

/// `GET /os-keypairs/{name}` adds the database-ish fields.
pub fn key_pair_detail(k: &KeyPair, v: Version) -> Value {
    let mut m = key_pair(k, v);
    let digest = sha2::Sha256::digest(k.id.as_bytes());
    let id = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    let user = (k.user_id.clone()).unwrap_or_else(|| ids::user_id(&k.account));
    m.insert("user_id".into(), json!(user));
    m.insert("deleted".into(), json!(false));
    m.insert("created_at".into(), json!(iso_micro(k.created_at_ms)));
    m.insert("updated_at".into(), Value::Null);
    m.insert("deleted_at".into(), Value::Null);
    m.insert("id".into(), json!(id));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(iso_seconds(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(iso_micro(1_700_000_000_123), "2023-11-14T22:13:20.123000");
        assert_eq!(keystone_time(1_700_000_000), "2023-11-14T22:13:20.000000Z");
    }

    #[test]
    fn images_resolve_by_uuid_url_or_catalogue_id() {
        let i = &catalog::IMAGES[0];
        let u = ids::image_uuid(i.id).to_string();
        assert_eq!(image_by_ref(&u).map(|x| x.id), Some(i.id));
        assert_eq!(
            image_by_ref(&format!("http://h/image/v2/images/{u}")).map(|x| x.id),
            Some(i.id)
        );
        assert_eq!(image_by_ref(i.id).map(|x| x.id), Some(i.id));
        assert!(image_by_ref("nope").is_none());
    }

    #[test]
    fn flavor_fields_follow_the_version() {
        let t = &catalog::INSTANCE_TYPES[0];
        let f = nubis_engine::built_in_flavor(t, ROOT_DISK_GIB);
        let at = |minor| flavor(&f, Version(2, minor), "http://h", true);
        assert_eq!(at(1)["swap"], json!(""));
        assert!(at(1).get("description").is_none() && at(1).get("extra_specs").is_none());
        assert_eq!(at(75)["swap"], json!(0));
        assert!(at(61).get("extra_specs").is_some() && at(55).get("description").is_some());
        assert_eq!(at(1)["ram"], json!(t.memory_mib));
    }

    #[test]
    fn fingerprint_is_md5_of_blob() {
        let k = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        let f = fingerprint(k);
        assert_eq!(f.len(), 47);
        assert_eq!(f.matches(':').count(), 15);
    }
}
