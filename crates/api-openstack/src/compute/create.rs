//! `POST /servers`: Nova's create schema, checked field by field before anything is created.

use super::{
    Nova, Res, SERVER_DESCRIPTION, SERVER_NAME, access_ip, check_field, check_keys, json_body,
    metadata, opt_str, region, unexpected, user_data_field,
};
use crate::errors::{Fault, map};
use crate::{Reply, ids, render};
use nubis_core::{DomainError, limits, password, password::PasswordRule};
use nubis_engine::CreateSpec;
use serde_json::{Map, Value, json};

/// Nova hostnames come from the display name: lower-case letters, digits and hyphens.
fn hostname_of(name: &str) -> String {
    let mut h: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    h = h.trim_matches('-').chars().take(63).collect();
    if h.is_empty() { "server".into() } else { h }
}

/// A password that every OS's policy accepts (Nova generates 12 alphanumerics; ours is
/// longer so Windows' 12-character minimum is met too).
pub(super) fn generate_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    loop {
        let pw: String = (0..16)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
            .collect();
        if password::validate(
            &pw,
            nubis_core::OsFamily::Windows,
            &["Administrator", "root"],
        )
        .is_ok()
        {
            return pw;
        }
    }
}

impl Nova<'_> {
    pub(super) async fn create_server(&self) -> Res {
        let body = json_body(self.req.body)?;
        let top = body.as_object().ok_or_else(Fault::malformed)?;
        check_keys(
            top,
            &["server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"],
        )?;
        let group = self.hinted_group(top)?;
        let scheduler_hints = kept_hints(top)?;
        let s = top
            .get("server")
            .and_then(Value::as_object)
            .ok_or_else(|| Fault::bad_request("'server' is a required property"))?;
        check_keys(
            s,
            &[
                "name",
                "imageRef",
                "flavorRef",
                "adminPass",
                "key_name",
                "metadata",
                "availability_zone",
                "user_data",
                "min_count",
                "max_count",
                "return_reservation_id",
                "networks",
                "block_device_mapping",
                "block_device_mapping_v2",
                "security_groups",
                "description",
                "tags",
                "config_drive",
                "accessIPv4",
                "accessIPv6",
                "OS-DCF:diskConfig",
                "personality",
                "host",
                "hypervisor_hostname",
                "trusted_image_certificates",
                "hostname",
            ],
        )?;
        let name = opt_str(s, "name")?
            .ok_or_else(|| Fault::bad_request("'name' is a required property"))?;
        check_field(&SERVER_NAME, Some(name))?;
        // Flavor: an id or a URL ending in one.
        let flavor = match s.get("flavorRef") {
            Some(Value::String(f)) => f
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(Fault::bad_request("'flavorRef' is a required property")),
        };
        let flavor_type = self
            .api
            .engine
            .instance_type_for(&self.p, &flavor)
            .ok_or_else(|| Fault::bad_request(format!("Flavor {flavor} could not be found.")))?;
        // Image: imageRef, or the image of a boot_index 0 image mapping (the CLI sends both).
        let mut image_ref = opt_str(s, "imageRef")?.unwrap_or("").to_string();
        if image_ref.is_empty()
            && let Some(bdm) = s.get("block_device_mapping_v2").and_then(Value::as_array)
        {
            image_ref = bdm
                .iter()
                .find(|d| {
                    d.get("source_type").and_then(Value::as_str) == Some("image")
                        && d.get("boot_index")
                            .is_some_and(|b| b == &json!(0) || b == &json!("0"))
                })
                .and_then(|d| d.get("uuid").and_then(Value::as_str))
                .unwrap_or("")
                .to_string();
        }
        if image_ref.is_empty() {
            return Err(Fault::bad_request(
                "Booting from a volume is not supported: give imageRef",
            ));
        }
        let image = self
            .api
            .engine
            .image(&self.p, &image_ref)
            .ok()
            .ok_or_else(|| Fault::bad_request("Can not find requested image"))?;
        if !image.bootable() {
            return Err(Fault::bad_request(format!(
                "Image {} is not active.",
                image.uuid
            )));
        }
        // Networks: there is one built-in network and no Neutron.
        match s.get("networks") {
            None if self.v.at_least(37) => {
                return Err(Fault::bad_request("'networks' is a required property"));
            }
            None | Some(Value::Null) => {}
            Some(Value::String(n)) if n == "auto" || n == "none" => {}
            Some(Value::Array(list)) => {
                for n in list {
                    if let Some(port) = n.get("port").and_then(Value::as_str) {
                        return Err(Fault::bad_request(format!(
                            "Port {port} could not be found."
                        )));
                    }
                    match n.get("uuid").and_then(Value::as_str) {
                        Some(u) if u == ids::network_uuid().to_string() => {}
                        Some(u) => {
                            return Err(Fault::bad_request(format!(
                                "Network {u} could not be found."
                            )));
                        }
                        None => {
                            return Err(Fault::bad_request(
                                "Bad networks format: network uuid is not in proper format",
                            ));
                        }
                    }
                }
            }
            Some(_) => return Err(Fault::bad_request("Bad networks format")),
        }
        let zone = match opt_str(s, "availability_zone")? {
            None => region()
                .zones
                .iter()
                .find(|z| !z.edge)
                .unwrap_or(&region().zones[0]),
            Some(az) => {
                let az = az.split(':').next().unwrap_or(az);
                self.zone_named(az).ok_or_else(|| {
                    Fault::bad_request("The requested availability zone is not available")
                })?
            }
        };
        let key_ids = match opt_str(s, "key_name")? {
            None => Vec::new(),
            Some(k) => vec![self.key_id(k)?],
        };
        let metadata = match s.get("metadata") {
            None => Vec::new(),
            Some(m) => metadata::parse("metadata", m)?,
        };
        metadata::check_quota(metadata.len(), self.metadata_quota())?;
        let count_of = |key: &str| -> Result<Option<u32>, Fault> {
            match s.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|x| x.parse().ok()))
                    .filter(|n| (1..=u64::from(limits::batch::LAUNCH)).contains(n))
                    .map(|n| Some(n as u32))
                    .ok_or_else(|| {
                        Fault::bad_request(format!(
                            "Invalid input for field/attribute {key}. Value: {v}."
                        ))
                    }),
            }
        };
        let min = count_of("min_count")?.unwrap_or(1);
        let max = count_of("max_count")?.unwrap_or(min);
        if max < min {
            return Err(Fault::bad_request("min_count must be <= max_count"));
        }
        // tags (2.52+): Nova tags are tag keys with empty values; a metadata item of the same
        // key keeps its value (docs/tags.md).
        let tags = if self.v.at_least(52) {
            match s.get("tags") {
                None => Vec::new(),
                Some(t) => super::tags::parse_list(t, "tags")?,
            }
        } else if s.contains_key("tags") {
            return Err(unexpected("tags"));
        } else {
            Vec::new()
        };
        let mut metadata = metadata;
        for t in tags {
            if !metadata.iter().any(|(k, _)| *k == t) {
                metadata.push((t, String::new()));
            }
        }
        let description = if self.v.at_least(19) {
            let d = opt_str(s, "description")?;
            check_field(&SERVER_DESCRIPTION, d)?;
            d.map(str::to_string)
        } else if s.contains_key("description") {
            return Err(unexpected("description"));
        } else {
            None
        };
        let access_ipv4 = access_ip(s, "accessIPv4")?;
        let access_ipv6 = access_ip(s, "accessIPv6")?;
        let auto_disk_config = super::disk_config(s)?.unwrap_or(false);
        let user_data = user_data_field(s)?.flatten();
        // personality (before 2.57): Nova's schema, then core's limits (403).
        let files = if self.v.at_least(57) {
            if s.contains_key("personality") {
                return Err(unexpected("personality"));
            }
            Vec::new()
        } else {
            super::personality::of(s, self.file_limits())?
        };
        let admin_pass = match opt_str(s, "adminPass")? {
            Some(p) => p.to_string(),
            None => generate_password(),
        };
        let spec = CreateSpec {
            region: region().id.to_string(),
            zone: zone.id.to_string(),
            instance_type: flavor_type.name.to_string(),
            image_id: image.id.to_string(),
            count: max,
            name: Some(name.to_string()),
            host_name: Some(hostname_of(name)),
            password: Some(admin_pass.clone()),
            key_ids,
            client_token: None,
            system_disk_gib: render::ROOT_DISK_GIB,
            system_disk_type: "CLOUD_PREMIUM".into(),
            data_disks: Vec::new(),
            project_id: 0,
            charge_type: "POSTPAID_BY_HOUR".into(),
            security_group_ids: Vec::new(),
            tags: metadata,
            description,
            start: true,
            attrs: nubis_core::UserAttrs {
                access_ipv4,
                access_ipv6,
                auto_disk_config,
                scheduler_hints,
            },
            rule: PasswordRule::Free,
            user_data,
            files,
            internet_max_bandwidth_out: 0,
        };
        let created = self
            .api
            .engine
            .create_in(
                &self.p,
                self.request_id,
                spec,
                false,
                // Nova schedules after accepting: no room is a server in ERROR.
                nubis_engine::SoldOut::Fail(crate::errors::NO_VALID_HOST),
                group.as_deref(),
            )
            .await
            .map_err(|e| map(e, None))?;
        let first = created
            .first()
            .ok_or_else(|| map(DomainError::Internal("nothing created".into()), None))?;
        if s.get("return_reservation_id") == Some(&json!(true)) {
            return Ok(Reply::json(
                202,
                &json!({"reservation_id": format!("r-{}", &first.uuid.simple().to_string()[..8])}),
            ));
        }
        let links = render::links(&self.base, &format!("servers/{}", first.uuid));
        let location = links[0]["href"].as_str().unwrap_or_default().to_string();
        Ok(Reply::json(
            202,
            &json!({"server": {
                "id": first.uuid,
                "links": links,
                "OS-DCF:diskConfig": render::disk_config(auto_disk_config),
                "security_groups": [{"name": "default"}],
                "adminPass": admin_pass,
            }}),
        )
        .header("location", location))
    }
}

/// The scheduler hints as the server keeps them (2.100 shows them): the object's text, unless
/// empty; longer than `MAX_SCHEDULER_HINTS` is refused (Nova keeps any size; nubis bounds
/// what it stores per server). Their shape was checked by [`Nova::hinted_group`].
fn kept_hints(top: &Map<String, Value>) -> Result<Option<String>, Fault> {
    let Some(hints) = top
        .get("os:scheduler_hints")
        .or_else(|| top.get("OS-SCH-HNT:scheduler_hints"))
        .and_then(Value::as_object)
        .filter(|h| !h.is_empty())
    else {
        return Ok(None);
    };
    let text = Value::Object(hints.clone()).to_string();
    if text.len() > nubis_core::MAX_SCHEDULER_HINTS {
        return Err(Fault::bad_request(format!(
            "Invalid input for field/attribute os:scheduler_hints. Value is longer than {} bytes.",
            nubis_core::MAX_SCHEDULER_HINTS
        )));
    }
    Ok(Some(text))
}

impl Nova<'_> {
    /// The server group the scheduler hints name (`group`, a UUID), as its canonical ID. An
    /// unknown group is Nova's `InstanceGroupNotFound`, which its create answers 400.
    fn hinted_group(&self, top: &Map<String, Value>) -> Result<Option<String>, Fault> {
        let hints = top
            .get("os:scheduler_hints")
            .or_else(|| top.get("OS-SCH-HNT:scheduler_hints"));
        let Some(hints) = hints else { return Ok(None) };
        let hints = hints.as_object().ok_or_else(|| {
            Fault::bad_request(format!(
                "Invalid input for field/attribute os:scheduler_hints. Value: {hints}. {hints} is not of type 'object'"
            ))
        })?;
        let Some(group) = hints.get("group") else {
            return Ok(None);
        };
        let id = group
            .as_str()
            .filter(|g| uuid::Uuid::parse_str(g).is_ok())
            .ok_or_else(|| {
                Fault::bad_request(format!(
                    "Invalid input for field/attribute group. Value: {group}. {group} is not a 'uuid'"
                ))
            })?;
        match self.server_group(id) {
            Ok(g) => Ok(Some(g.id)),
            Err(f) => Err(Fault::bad_request(f.message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn generated_passwords_pass_every_policy() {
        for _ in 0..50 {
            let pw = generate_password();
            assert!(password::validate(&pw, nubis_core::OsFamily::Linux, &["root"]).is_ok());
            assert!(
                password::validate(&pw, nubis_core::OsFamily::Windows, &["Administrator"]).is_ok()
            );
        }
    }
}
