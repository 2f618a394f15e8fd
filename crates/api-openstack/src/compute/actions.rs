//! Server actions, `POST /servers/{id}/action`: reboot, start, stop, changePassword, rescue,
//! unrescue, lock, unlock, injectNetworkInfo, rebuild, os-getConsoleOutput, resize,
//! confirmResize, revertResize.
//! unrescue, lock, unlock, injectNetworkInfo, rebuild, os-getConsoleOutput, pause, unpause,
//! suspend, resume, shelve, shelveOffload, unshelve.

use super::create::generate_password;
use super::servers::ServerEdits;
use super::{
    LOCKED_REASON, Nova, Res, UNSHELVE_AZ, UNSHELVE_HOST, check_field, check_keys, invalid_value,
    metadata, opt_str, unexpected, user_data_field,
};
use crate::errors::{Fault, map};
use crate::{OpenStackApi, Reply};

use nubis_core::rules::ResetTo;
use nubis_core::{DomainError, ResizeEnd, StopMode, WhenRunning, catalog, password::PasswordRule};
use nubis_engine::{Batch, BatchMode, Command, RebuildGuest};
use serde_json::{Value, json};
use uuid::Uuid;

impl Nova<'_> {
    /// `reboot`.
    pub(super) async fn reboot(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        let m = arg
            .as_object()
            .ok_or_else(|| Fault::bad_request("Invalid input for field/attribute reboot."))?;
        check_keys(m, &["type"])?;
        let hard = match opt_str(m, "type")? {
            Some(t) if t.eq_ignore_ascii_case("hard") => true,
            Some(t) if t.eq_ignore_ascii_case("soft") => false,
            Some(t) => {
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute type. Value: {t}. '{t}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
                )));
            }
            None => return Err(Fault::bad_request("'type' is a required property")),
        };
        // A soft reboot falls back to a hard one when the guest ignores ACPI (as
        // libvirt does after its timeout).
        let mode = if hard {
            StopMode::Hard
        } else {
            StopMode::SoftFirst
        };
        remember_reboot(self.api, self.request_id, hard);
        self.submit(&inst, Command::Reboot { mode }).await?;
        Ok(Reply::empty(202))
    }

    /// `os-start`.
    pub(super) async fn start(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        empty_arg("os-start", arg)?;
        self.submit(&inst, Command::Start).await?;
        Ok(Reply::empty(202))
    }

    /// `os-stop`.
    pub(super) async fn stop(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        empty_arg("os-stop", arg)?;
        self.submit(
            &inst,
            Command::Stop {
                mode: StopMode::SoftFirst,
                stop_charging: false,
            },
        )
        .await?;
        Ok(Reply::empty(202))
    }

    /// `changePassword`.
    pub(super) async fn change_password(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        let m = arg.as_object().ok_or_else(|| {
            Fault::bad_request("Invalid input for field/attribute changePassword.")
        })?;
        check_keys(m, &["adminPass"])?;
        let pw = opt_str(m, "adminPass")?
            .ok_or_else(|| Fault::bad_request("'adminPass' is a required property"))?;
        // Set live, without a restart (the guest agent's way).
        self.submit(
            &inst,
            Command::ResetPassword {
                user: None,
                password: pw.to_string(),
                when_running: WhenRunning::Live,
                rule: PasswordRule::Free,
            },
        )
        .await?;
        Ok(Reply::empty(202))
    }

    /// `rescue`.
    pub(super) async fn rescue(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        let mut image_id = None;
        let given = match arg {
            Value::Null => None,
            // The seed's form; it means "the server's own image".
            Value::String(s) if s == "none" => None,
            Value::Object(m) => {
                check_keys(m, &["adminPass", "rescue_image_ref"])?;
                if let Some(r) = opt_str(m, "rescue_image_ref")? {
                    if Uuid::parse_str(r).is_err() {
                        return Err(Fault::bad_request(format!(
                            "Invalid input for field/attribute rescue_image_ref. Value: {r}. '{r}' is not a 'uuid'"
                        )));
                    }
                    let Ok(image) = self.api.engine.image(&self.p, r) else {
                        return Err(Fault::bad_request(format!(
                            "Requested rescue image '{r}' is not supported"
                        )));
                    };
                    image_id = Some(image.id.to_string());
                }
                opt_str(m, "adminPass")?.map(str::to_string)
            }
            _ => {
                return Err(Fault::bad_request(
                    "Invalid input for field/attribute rescue.",
                ));
            }
        };
        let pw = given.unwrap_or_else(generate_password);
        self.submit(
            &inst,
            Command::EnterRescue {
                user: None,
                password: pw.clone(),
                mode: StopMode::SoftFirst,
                image_id,
                rule: PasswordRule::Free,
            },
        )
        .await?;
        // 200, not 202: what Nova answers (shared/specs/openstack.md §2.5).
        Ok(Reply::json(200, &json!({"adminPass": pw})))
    }

    /// `lock`.
    pub(super) async fn lock(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        let reason = match arg {
            Value::Null => String::new(),
            Value::Object(m) => {
                check_keys(m, &["locked_reason"])?;
                let r = opt_str(m, "locked_reason")?;
                check_field(&LOCKED_REASON, r)?;
                r.unwrap_or("").to_string()
            }
            _ => {
                return Err(Fault::bad_request(
                    "Invalid input for field/attribute lock.",
                ));
            }
        };
        self.api
            .engine
            .set_locked(&self.p, inst.uuid, Some(reason))
            .await
            .map_err(|e| map(e, Some(inst.uuid)))?;
        Ok(Reply::empty(202))
    }

    /// `unlock`.
    pub(super) async fn unlock(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        empty_arg("unlock", arg)?;
        self.api
            .engine
            .set_locked(&self.p, inst.uuid, None)
            .await
            .map_err(|e| map(e, Some(inst.uuid)))?;
        Ok(Reply::empty(202))
    }

    /// `injectNetworkInfo` (admins): Nova asks the compute host to push the network info into
    /// the guest, which its current virt drivers do not do (the base driver's method is a
    /// no-op). So: the server must exist and the argument be empty, then 202.
    pub(super) fn inject_network_info(&self, id: &str, arg: &Value) -> Res {
        self.server(id)?;
        empty_arg("injectNetworkInfo", arg)?;
        Ok(Reply::empty(202))
    }

    /// `os-getConsoleOutput`: the guest's console since its last boot, its last `length` lines
    /// cut as Nova's compute manager cuts them (Python's `lines[-length:]`, so `-1` drops the
    /// first line and `0` gives nothing; absent or null: all of it), control characters
    /// removed as Nova's API removes them.
    pub(super) fn console_output(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        let m = arg.as_object().ok_or_else(|| {
            Fault::bad_request("Invalid input for field/attribute os-getConsoleOutput.")
        })?;
        check_keys(m, &["length"])?;
        let length = match m.get("length") {
            None | Some(Value::Null) => None,
            Some(v) => Some(console_length(v)?),
        };
        let log = self
            .api
            .engine
            .console_output(&self.p, inst.uuid)
            .map_err(|e| map(e, Some(inst.uuid)))?;
        let text = log.without_controls();
        let output = match length {
            None => text,
            Some(0) => String::new(),
            Some(n) => {
                let lines: Vec<&str> = text.split('\n').collect();
                // Python's lines[-n:]: for n > 0 the last n lines, for n = -1 all but the first.
                let from = if n > 0 {
                    lines
                        .len()
                        .saturating_sub(usize::try_from(n).unwrap_or(usize::MAX))
                } else {
                    1.min(lines.len())
                };
                lines.get(from..).unwrap_or_default().join("\n")
            }
        };
        Ok(Reply::json(200, &json!({ "output": output })))
    }

    /// `rebuild`.
    pub(super) async fn rebuild(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        let m = arg
            .as_object()
            .ok_or_else(|| Fault::bad_request("Invalid input for field/attribute rebuild."))?;
        // Nova's rebuild schemas by microversion.
        let mut allowed = vec![
            "imageRef",
            "adminPass",
            "name",
            "metadata",
            "accessIPv4",
            "accessIPv6",
            "OS-DCF:diskConfig",
            "preserve_ephemeral",
        ];
        for (key, from, until) in [
            ("personality", 1, 57),
            ("description", 19, u16::MAX),
            ("key_name", 54, u16::MAX),
            ("user_data", 57, u16::MAX),
            ("trusted_image_certificates", 63, u16::MAX),
            ("hostname", 90, u16::MAX),
        ] {
            if self.v.at_least(from) && !self.v.at_least(until) {
                allowed.push(key);
            }
        }
        check_keys(m, &allowed)?;
        let image_ref = opt_str(m, "imageRef")?
            .ok_or_else(|| Fault::bad_request("'imageRef' is a required property"))?;
        let edits = self.server_edits(m)?;
        let user_data = user_data_field(m)?;
        // personality (before 2.57; the allowed keys above refuse it later): Nova's schema
        // here, core's limits (403) once the state allows the rebuild.
        let files = match m.get("personality") {
            None => Vec::new(),
            Some(v) => super::personality::parse(v)?,
        };
        if let Some(certs) = m.get("trusted_image_certificates")
            && !certs.is_null()
        {
            // No image is signed: Nova refuses certificates for unsigned images.
            return Err(Fault::bad_request(
                "Image certificate validation is not supported for this image.",
            ));
        }
        // key_name (2.54+): a key pair of the caller, or null to remove the keys.
        let key_ids = match m.get("key_name") {
            None => None,
            Some(Value::Null) => Some(Vec::new()),
            Some(Value::String(k)) => Some(vec![self.key_id(k)?]),
            Some(other) => {
                return Err(invalid_value("key_name", &other.to_string()));
            }
        };
        let image = self
            .api
            .engine
            .image(&self.p, image_ref)
            .ok()
            .filter(|i| i.bootable())
            .ok_or_else(|| Fault::bad_request(format!("Invalid imageRef provided: {image_ref}")))?;
        let pw = opt_str(m, "adminPass")?
            .map(str::to_string)
            .unwrap_or_else(generate_password);
        // Given metadata replace the server's.
        let new_metadata = m
            .get("metadata")
            .map(|v| metadata::parse("metadata", v))
            .transpose()?;
        let target = [inst.uuid];
        let command = Command::Rebuild {
            image: image.id,
            password: Some(pw.clone()),
            rule: PasswordRule::Free,
            key_ids,
            when_running: WhenRunning::StopAndStart,
            system_disk_gib: None,
        };
        // Nova checks the server's state (409) before the request's quotas (403): every
        // rule first, writing nothing, then the file limits and the metadata quota.
        if !files.is_empty() || new_metadata.is_some() {
            let dry = Batch {
                dry_run: true,
                ..Batch::new(&target, command.clone(), BatchMode::AllOrNothing)
            };
            match self
                .api
                .engine
                .submit_batch(&self.p, self.request_id, dry)
                .await
            {
                Ok(_) | Err(DomainError::DryRunOk) => {}
                Err(e) => return Err(map(e, Some(inst.uuid))),
            }
        }
        super::personality::check(&files, self.file_limits())?;
        if let Some(items) = &new_metadata {
            metadata::check_quota(items.len(), self.metadata_quota())?;
        }
        // The user data and files go with the acceptance: the reprovisioning reads them.
        let batch = Batch {
            guest: RebuildGuest { user_data, files },
            ..Batch::new(&target, command, BatchMode::AllOrNothing)
        };
        self.api
            .engine
            .submit_batch(&self.p, self.request_id, batch)
            .await
            .map_err(|e| map(e, Some(inst.uuid)))?;
        if let Some(items) = new_metadata {
            self.api
                .engine
                .update_tags(&self.p, inst.uuid, |_| Ok::<_, DomainError>(items))
                .await
                .map_err(|e| map(e, Some(inst.uuid)))?;
        }
        // The rebuild is accepted and committed; its attributes follow (a server
        // deleted meanwhile has none to change).
        let _ = self.apply_edits(inst.uuid, edits).await;
        let now = self.api.engine.instance(inst.uuid).unwrap_or(inst.clone());
        let mut server = self.changed_view(&now, true).await;
        server["adminPass"] = json!(pw);
        Ok(Reply::json(202, &json!({ "server": server })))
    }

    /// `createImage` (nova/api/openstack/compute/servers.py `_action_create_image`): a
    /// private snapshot of the server's system disk, in Glance, with the properties Nova
    /// sets. 202; before 2.45 the image's address in `Location`, from 2.45 `{"image_id"}`.
    pub(super) async fn create_image(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        let m = arg
            .as_object()
            .ok_or_else(|| Fault::bad_request("Invalid input for field/attribute createImage."))?;
        check_keys(m, &["name", "metadata"])?;
        let name = match m.get("name") {
            None => return Err(Fault::bad_request("'name' is a required property")),
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(invalid_value("name", &other.to_string())),
        };
        check_field(&super::SERVER_NAME, Some(name))?;
        let extra = match m.get("metadata") {
            None => Vec::new(),
            Some(v) => metadata::parse("metadata", v)?,
        };
        // Nova's check_img_metadata_properties_quota: the metadata_items quota.
        if metadata::check_quota(extra.len(), self.metadata_quota()).is_err() {
            return Err(Fault::new(403, "Image metadata limit exceeded"));
        }
        let new = self.snapshot_image(&inst, name, extra);
        let image = self
            .api
            .engine
            .create_image_from_instance(&self.p, self.request_id, inst.uuid, new, false, false)
            .await
            .map_err(|e| map(e, Some(inst.uuid)))?;
        if self.v.at_least(45) {
            return Ok(Reply::json(202, &json!({ "image_id": image.uuid })));
        }
        // Nova's glance API `generate_image_url`: the image endpoint, then images/<id>.
        Ok(Reply::empty(202).header(
            "location",
            format!("{}/image/images/{}", self.base, image.uuid),
        ))
    }

    /// `createBackup` (nova/api/openstack/compute/create_backup.py): an image like
    /// createImage's (`image_type` backup, `backup_type`), after which only the newest
    /// `rotation` backups of the server and type are kept (docs/images.md). 202; the image's
    /// address in `Location` unless the rotation is 0; from 2.45 `{"image_id"}`.
    pub(super) async fn create_backup(&self, id: &str, arg: &Value) -> Res {
        let m = arg
            .as_object()
            .ok_or_else(|| Fault::bad_request("Invalid input for field/attribute createBackup."))?;
        check_keys(m, &["name", "backup_type", "rotation", "metadata"])?;
        for key in ["name", "backup_type", "rotation"] {
            if !m.contains_key(key) {
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute createBackup. '{key}' is a required property"
                )));
            }
        }
        let name = match m.get("name") {
            Some(Value::String(s)) => s.as_str(),
            other => return Err(invalid_value("name", &json!(other).to_string())),
        };
        check_field(&super::SERVER_NAME, Some(name))?;
        let backup_type = match m.get("backup_type") {
            Some(Value::String(s)) if s.len() <= 255 => s.clone(),
            other => return Err(invalid_value("backup_type", &json!(other).to_string())),
        };
        // parameter_types.non_negative_integer: an integer, or its decimal string.
        let rotation = match m.get("rotation") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse::<u64>().ok(),
            _ => None,
        }
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| invalid_value("rotation", &json!(m.get("rotation")).to_string()))?;
        let extra = match m.get("metadata") {
            None => Vec::new(),
            Some(v) => metadata::parse("metadata", v)?,
        };
        // The metadata_items quota, checked up to 2.38 (Nova's MAX_PROXY_API_SUPPORT_VERSION).
        if !self.v.at_least(39)
            && metadata::check_quota(extra.len(), self.metadata_quota()).is_err()
        {
            return Err(Fault::new(403, "Image metadata limit exceeded"));
        }
        let inst = self.server(id)?;
        let mut new = self.snapshot_image(&inst, name, extra);
        new.properties.insert("image_type".into(), "backup".into());
        new.properties.insert("backup_type".into(), backup_type);
        new.backup_rotation = Some(rotation);
        let image = self
            .api
            .engine
            .create_image_from_instance(&self.p, self.request_id, inst.uuid, new, false, false)
            .await
            .map_err(|e| match e {
                DomainError::StateConflict { state, .. } => {
                    crate::errors::state_conflict(&inst.uuid.to_string(), state, "createBackup")
                }
                other => map(other, Some(inst.uuid)),
            })?;
        if self.v.at_least(45) {
            return Ok(Reply::json(202, &json!({ "image_id": image.uuid })));
        }
        let reply = Reply::empty(202);
        if rotation == 0 {
            return Ok(reply);
        }
        Ok(reply.header(
            "location",
            format!("{}/image/images/{}", self.base, image.uuid),
        ))
    }

    /// The image Nova makes of a server (createImage, shelve): private, with the properties
    /// Nova's compute API writes (compute/api.py `_create_image` and
    /// `_initialize_instance_snapshot_metadata`), the caller's `extra` on top.
    fn snapshot_image(
        &self,
        inst: &nubis_core::Instance,
        name: &str,
        extra: Vec<(String, String)>,
    ) -> nubis_engine::NewImage {
        let mut new = nubis_engine::NewImage::named(name);
        let props = &mut new.properties;
        let user = self
            .p
            .keystone_user
            .clone()
            .unwrap_or_else(|| crate::ids::user_id(&inst.account));
        let project = self
            .p
            .project
            .as_ref()
            .map(|s| s.id.clone())
            .unwrap_or_else(|| crate::ids::project_id(&inst.account));
        props.insert("image_type".into(), "snapshot".into());
        props.insert("instance_uuid".into(), inst.uuid.to_string());
        props.insert("user_id".into(), user);
        props.insert("owner_project_name".into(), project.clone());
        props.insert(
            "base_image_ref".into(),
            self.api.engine.image_uuid(&inst.image_id).to_string(),
        );
        props.insert("image_location".into(), "snapshot".into());
        props.insert("image_state".into(), "available".into());
        props.insert("owner_id".into(), project);
        for (k, v) in extra {
            props.insert(k, v);
        }
        new
    }

    /// `pause`, `unpause`, `suspend`, `resume`, `shelve`, `shelveOffload`: no argument
    /// (`null`, or `{}` as Tempest sends it).
    pub(super) async fn hold(&self, id: &str, arg: &Value, h: Hold) -> Res {
        let inst = self.server(id)?;
        empty_arg(h.name(), arg)?;
        let cmd = match h {
            Hold::Pause => Command::Pause,
            Hold::Unpause => Command::Unpause,
            Hold::Suspend => Command::Suspend,
            Hold::Resume => Command::Resume,
            Hold::Shelve => {
                // Nova snapshots the shelved guest as `<name>-shelved` (compute/api.py
                // `shelve`); unshelve deletes that image.
                let new = self.snapshot_image(&inst, &format!("{}-shelved", inst.name), Vec::new());
                self.api
                    .engine
                    .shelve_with_image(
                        &self.p,
                        self.request_id,
                        inst.uuid,
                        new,
                        self.api.shelved_offload,
                    )
                    .await
                    .map_err(|e| map(e, Some(inst.uuid)))?;
                return Ok(Reply::empty(202));
            }
            Hold::ShelveOffload => Command::ShelveOffload,
        };
        self.submit(&inst, cmd).await?;
        Ok(Reply::empty(202))
    }

    /// `unshelve`: `null` or `{}` before 2.77 (Nova reads no argument there); from 2.77
    /// `{"availability_zone": <zone>}` for an offloaded server; from 2.91 also `null` for the
    /// zone (unpin: nubis pins none) and `host` (admins: a compute host, `nubis-<zone>`).
    pub(super) async fn unshelve(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        let mut zone = None;
        if !self.v.at_least(77) {
            // Nova reads nothing before 2.77; nubis takes only what it would (null or {}).
            empty_arg("unshelve", arg)?;
        } else {
            let (az, host) = self.unshelve_target(arg)?;
            if let Some(host) = host {
                let rule = "os_compute_api:os-shelve:unshelve_to_host";
                if !crate::routes::allowed(
                    &self.api.nova_policy,
                    self.token,
                    rule,
                    super::nova_target(self.token),
                ) {
                    return Err(Fault::new(
                        403,
                        format!("Policy doesn't allow {rule} to be performed."),
                    ));
                }
                let on = super::hosts::hosts()
                    .into_iter()
                    .find(|h| h.name() == host)
                    .ok_or_else(|| {
                        Fault::bad_request(format!("Compute host {host} could not be found."))
                    })?;
                if let Some(az) = az
                    && az.id != on.zone.id
                {
                    return Err(Fault::conflict(format!(
                        "Host '{host}' is not in availability zone '{}'.",
                        az.openstack
                    )));
                }
                zone = Some(on.zone.id.to_string());
            } else if let Some(az) = az {
                zone = Some(az.id.to_string());
            }
        }
        self.submit(&inst, Command::Unshelve { zone }).await?;
        // The shelve's image goes once the unshelve is accepted (the guest boots its own
        // disks); one its owner deleted already is gone.
        if let Some(image) = &inst.shelved_image {
            let _ = self.api.engine.delete_image(&self.p, image, false).await;
        }
        Ok(Reply::empty(202))
    }

    /// The zone and the host an unshelve names (Nova's `unshelve_v277` / `unshelve_v291`
    /// schemas), the zone checked to exist.
    fn unshelve_target<'v>(
        &self,
        arg: &'v Value,
    ) -> Result<(Option<&'static catalog::Zone>, Option<&'v str>), Fault> {
        let m = match arg {
            Value::Null => return Ok((None, None)),
            Value::Object(m) => m,
            other => {
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute unshelve. Value: {other}. {other} is not of type 'object', 'null'"
                )));
            }
        };
        let v291 = self.v.at_least(91);
        check_keys(
            m,
            if v291 {
                &["availability_zone", "host"]
            } else {
                &["availability_zone"]
            },
        )?;
        let az = match m.get("availability_zone") {
            None if v291 => None,
            None => {
                return Err(Fault::bad_request(
                    "'availability_zone' is a required property",
                ));
            }
            Some(Value::Null) if v291 => None,
            Some(_) => {
                let az = opt_str(m, "availability_zone")?;
                check_field(&UNSHELVE_AZ, az)?;
                let az = az.unwrap_or_default();
                Some(self.zone_named(az).ok_or_else(|| {
                    Fault::bad_request("The requested availability zone is not available")
                })?)
            }
        };
        let host = opt_str(m, "host")?;
        check_field(&UNSHELVE_HOST, host)?;
        Ok((az, host))
    }

    /// `unrescue`.
    pub(super) async fn unrescue(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        empty_arg("unrescue", arg)?;
        self.submit(&inst, Command::ExitRescue).await?;
        Ok(Reply::empty(202))
    }
    /// `resize`: `{"flavorRef": <flavor id>, "OS-DCF:diskConfig": "AUTO"|"MANUAL"}` (Nova's
    /// schema). A running server is stopped, moved and started on the new flavor; a stopped
    /// one stays stopped. Either ends in VERIFY_RESIZE, awaiting confirmResize or
    /// revertResize.
    pub(super) async fn resize(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        let m = arg
            .as_object()
            .ok_or_else(|| Fault::bad_request("Invalid input for field/attribute resize."))?;
        check_keys(m, &["flavorRef", "OS-DCF:diskConfig"])?;
        let flavor = match m.get("flavorRef") {
            None => return Err(Fault::bad_request("'flavorRef' is a required property")),
            Some(Value::String(f)) if f.is_empty() => {
                return Err(Fault::bad_request(
                    "Invalid input for field/attribute flavorRef. Value: . '' is too short",
                ));
            }
            Some(Value::String(f)) => f.clone(),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            Some(other) => {
                return Err(invalid_value("flavorRef", &other.to_string()));
            }
        };
        let auto_disk = super::disk_config(m)?;
        // nova/api/openstack/compute/servers.py `_resize`: FlavorNotFound.
        if self
            .api
            .engine
            .instance_type_for(&self.p, &flavor)
            .is_none()
        {
            return Err(Fault::bad_request("Unable to locate requested flavor."));
        }
        self.submit(
            &inst,
            Command::Resize {
                instance_type: flavor,
                when_running: WhenRunning::StopAndStart,
                then: ResizeEnd::Verify,
            },
        )
        .await?;
        if let Some(auto) = auto_disk {
            // Best effort after the accepted resize, as a rebuild's attributes.
            let _ = self
                .apply_edits(inst.uuid, ServerEdits::disk_config(auto))
                .await;
        }
        Ok(Reply::empty(202))
    }

    /// `confirmResize`: keep the new flavor. 204, as Nova answers.
    pub(super) async fn confirm_resize(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        empty_arg("confirmResize", arg)?;
        self.submit(&inst, Command::ConfirmResize).await?;
        Ok(Reply::empty(204))
    }

    /// `revertResize`: back to the previous flavor, powered as before the resize.
    pub(super) async fn revert_resize(&self, id: &str, arg: &Value) -> Res {
        let inst = self.server(id)?;
        empty_arg("revertResize", arg)?;
        self.submit(&inst, Command::RevertResize).await?;
        Ok(Reply::empty(202))
    }
}

impl Nova<'_> {
    /// `restore` (os-deferred-delete): a soft-deleted server back, powered on. Nova's action
    /// validates no body (`{"restore": null}` as openstacksdk sends it, `{}` as Tempest
    /// does, anything else alike).
    pub(super) async fn restore(&self, id: &str, _arg: &Value) -> Res {
        let inst = self.server(id)?;
        self.submit(&inst, Command::Restore).await?;
        Ok(Reply::empty(202))
    }

    /// `forceDelete` (os-deferred-delete): delete now, in any state, soft-deleted or not
    /// (Nova's `force_delete`; an owner's lock refuses it unless the caller is an admin).
    /// No body validation, as in Nova.
    pub(super) async fn force_delete(&self, id: &str, _arg: &Value) -> Res {
        let inst = self.server(id)?;
        self.submit(
            &inst,
            Command::Delete {
                admin: self.admin_role,
            },
        )
        .await?;
        Ok(Reply::empty(202))
    }

    /// `os-resetState` (admins): `{"state": "active" | "error"}` (Nova's `reset_state`
    /// schema: required, nothing else). The vm_state is set, the task cleared; core refuses
    /// it while an operation runs (docs/deferred-delete.md).
    pub(super) async fn reset_state(&self, id: &str, arg: &Value) -> Res {
        let m = arg.as_object().ok_or_else(|| {
            Fault::bad_request(format!(
                "Invalid input for field/attribute os-resetState. Value: {arg}. {arg} is not of type 'object'"
            ))
        })?;
        check_keys(m, &["state"])?;
        let to = match m.get("state") {
            None => return Err(Fault::bad_request("'state' is a required property")),
            Some(Value::String(s)) if s == "active" => ResetTo::Active,
            Some(Value::String(s)) if s == "error" => ResetTo::Error,
            Some(other) => {
                let shown = other
                    .as_str()
                    .map_or_else(|| other.to_string(), super::shown);
                let quoted = if other.is_string() {
                    format!("'{shown}'")
                } else {
                    shown.clone()
                };
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute state. Value: {shown}. {quoted} is not one of ['active', 'error']"
                )));
            }
        };
        let inst = self.server(id)?;
        self.api
            .engine
            .reset_state(&self.p, inst.uuid, to)
            .await
            .map_err(|e| map(e, Some(inst.uuid)))?;
        Ok(Reply::empty(202))
    }

    /// `GET /servers/{id}/migrations` (2.23+, admins): the server's live migrations in
    /// progress. nubis's host maintenance is no Nova live migration (no source and
    /// destination host): always none.
    pub(super) fn server_migrations(&self, id: &str) -> Res {
        self.since(23)?;
        self.server(id)?;
        Ok(Reply::json(200, &json!({ "migrations": [] })))
    }
}

/// The server actions that hold a guest or let it go, taking no argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    Pause,
    Unpause,
    Suspend,
    Resume,
    Shelve,
    ShelveOffload,
}

impl Hold {
    fn name(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Unpause => "unpause",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Shelve => "shelve",
            Self::ShelveOffload => "shelveOffload",
        }
    }
}

/// `length` of os-getConsoleOutput as Nova's schema takes it: an integer or a string of
/// digits (`^-?[0-9]+$`), at least -1.
fn console_length(v: &Value) -> Result<i64, Fault> {
    let bad = |shown: String, why: String| {
        Fault::bad_request(format!(
            "Invalid input for field/attribute length. Value: {shown}. {why}"
        ))
    };
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            bad(
                n.to_string(),
                format!("{n} is not of type 'integer', 'string', 'null'"),
            )
        })?,
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                let s = super::shown(s);
                return Err(bad(s.clone(), format!("'{s}' does not match '^-?[0-9]+$'")));
            }
            // Digits beyond i64 are far more lines than any log has: all of it.
            s.parse::<i64>().unwrap_or(i64::MAX)
        }
        other => {
            return Err(bad(
                other.to_string(),
                format!("{other} is not of type 'integer', 'string', 'null'"),
            ));
        }
    };
    if n < -1 {
        return Err(bad(
            n.to_string(),
            format!("{n} is less than the minimum of -1"),
        ));
    }
    Ok(n)
}

fn empty_arg(name: &str, arg: &Value) -> Result<(), Fault> {
    match arg {
        Value::Null => Ok(()),
        Value::Object(m) if m.is_empty() => Ok(()),
        Value::Object(m) => Err(unexpected(m.keys().next().map_or("", |k| k))),
        _ => Err(Fault::bad_request(format!(
            "Invalid input for field/attribute {name}."
        ))),
    }
}

pub(super) fn remember_reboot(api: &OpenStackApi, request_id: &str, hard: bool) {
    let mut m = api.reboot_modes.lock();
    if m.len() > 10_000 {
        m.clear();
    }
    m.insert(request_id.to_string(), hard);
}
