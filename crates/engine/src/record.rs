//! The table's compact form of an instance (issue 16, docs/fleet-index.md "Memory and
//! start-up"): what a million instances cost in memory.
//!
//! `Instance` is the record every rule, dialect and store write speaks; it is built for
//! clarity (a `String` per text, an `Option<String>` per rarely-set attribute: 1,160 bytes
//! inline, ~350 more in small allocations). The table keeps each instance as a [`Record`]
//! instead: texts that many instances hold alike (account, region, zone, type, image, key
//! pairs, …) as numbers into the table's [`Symbols`], the instance's own texts as boxed
//! strings, its type's facts as a number into a pool, and the attributes that most instances
//! never set in one optional box. A reader gets an `Instance` back ([`Record::instance`]),
//! built for it: a few small allocations, the price of a record a third the size.

use nubis_core::catalog::InstanceType;
use nubis_core::model::{Disk, Instance, LatestOp, OpLock, OsFamily, UserAttrs};
use nubis_core::{Action, InstanceState, OpState, Restriction};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Texts many instances share, one copy each, numbered in order of first use and kept for
/// the process's life (zones, types, images, accounts, key pairs: few distinct values). 0 is
/// `""`. Some are chosen by callers (a Nova key pair's name is its ID): the standard hasher.
pub(crate) struct Symbols {
    ids: HashMap<Arc<str>, u32>,
    texts: Vec<Arc<str>>,
}

impl Default for Symbols {
    fn default() -> Self {
        let empty: Arc<str> = Arc::from("");
        Self {
            ids: HashMap::from_iter([(empty.clone(), 0)]),
            texts: vec![empty],
        }
    }
}

impl Symbols {
    /// The number of `s`, given one on first use.
    pub(crate) fn id(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        let text: Arc<str> = Arc::from(s);
        self.texts.push(text.clone());
        self.ids.insert(text, id);
        id
    }

    /// The number of `s` if it was ever used.
    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The text of a number this table gave.
    pub(crate) fn text(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or("", |t| t)
    }

    /// An optional text: [`NONE`] for `None`.
    fn opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.id(s))
    }

    fn opt_str(&self, id: u32) -> Option<&str> {
        (id != NONE).then(|| self.text(id))
    }

    fn opt_text(&self, id: u32) -> Option<String> {
        self.opt_str(id).map(str::to_string)
    }
}

/// The number standing for an absent optional text.
const NONE: u32 = u32::MAX;

/// Instance types' facts, one copy of each distinct one (every instance keeps its type's
/// facts; a fleet has few types).
#[derive(Default)]
pub(crate) struct Flavors {
    all: Vec<InstanceType>,
    by_name: HashMap<String, Vec<u32>>,
}

impl Flavors {
    fn id(&mut self, t: Option<&InstanceType>) -> u32 {
        let Some(t) = t else { return NONE };
        let same = |i: &&u32| self.all.get(**i as usize) == Some(t);
        if let Some(id) = self
            .by_name
            .get(&*t.name)
            .and_then(|ids| ids.iter().find(same))
        {
            return *id;
        }
        let id = u32::try_from(self.all.len()).unwrap_or(NONE - 1);
        self.all.push(t.clone());
        self.by_name.entry(t.name.to_string()).or_default().push(id);
        id
    }

    fn get(&self, id: u32) -> Option<InstanceType> {
        self.all.get(id as usize).cloned()
    }

    /// The type names whose every known version — each kept copy of that name, and the
    /// built-in type of that name (an instance without a kept copy has its facts) — `wanted`
    /// accepts; `None` when some name has versions on both sides (then only a test of each
    /// instance's facts is exact).
    pub(crate) fn names_where(
        &self,
        wanted: impl Fn(&InstanceType) -> bool,
    ) -> Option<Vec<String>> {
        let mut names = Vec::new();
        let known = self
            .all
            .iter()
            .chain(nubis_core::catalog::INSTANCE_TYPES.iter());
        for name in known.map(|t| &*t.name) {
            if names.iter().any(|n: &String| n == name) {
                continue;
            }
            let versions = self
                .by_name
                .get(name)
                .into_iter()
                .flatten()
                .filter_map(|id| self.all.get(*id as usize))
                .chain(nubis_core::catalog::instance_type(name));
            let (mut yes, mut no) = (false, false);
            for t in versions {
                if wanted(t) { yes = true } else { no = true }
            }
            match (yes, no) {
                (true, true) => return None,
                (true, false) => names.push(name.to_string()),
                _ => {}
            }
        }
        Some(names)
    }
}

/// What a record's numbers mean: the table's symbols and type pool.
#[derive(Default)]
pub(crate) struct Dictionary {
    pub(crate) symbols: Symbols,
    pub(crate) flavors: Flavors,
}

/// The latest operation (its error, rare, is kept with the other rare attributes).
struct Latest {
    request_id: RequestId,
    action: Action,
    state: OpState,
}

/// A RequestId in a form the dialects make — a UUID (Tencent), the same in capitals
/// (Alibaba), `req-` and a UUID (OpenStack) — kept as its 16 bytes; any other text boxed.
enum RequestId {
    Lower(Uuid),
    Upper(Uuid),
    Req(Uuid),
    Text(Box<str>),
}

impl RequestId {
    fn new(text: &str) -> Self {
        let (uuid, req) = match text.strip_prefix("req-") {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let Ok(u) = Uuid::try_parse(uuid) else {
            return Self::Text(text.into());
        };
        let mut buf = Uuid::encode_buffer();
        if u.hyphenated().encode_lower(&mut buf) == uuid {
            return if req { Self::Req(u) } else { Self::Lower(u) };
        }
        if !req && u.hyphenated().encode_upper(&mut buf) == uuid {
            return Self::Upper(u);
        }
        Self::Text(text.into())
    }

    fn text(&self) -> String {
        match self {
            Self::Lower(u) => u.hyphenated().to_string(),
            Self::Upper(u) => {
                let mut buf = Uuid::encode_buffer();
                u.hyphenated().encode_upper(&mut buf).to_string()
            }
            Self::Req(u) => format!("req-{}", u.hyphenated()),
            Self::Text(t) => t.to_string(),
        }
    }
}

/// The attributes most instances never set, out of line (one pointer when none is).
#[derive(Default, PartialEq)]
struct Rare {
    application_role: Option<String>,
    client_token: Option<String>,
    kms_key_id: Option<String>,
    description: String,
    locked: Option<String>,
    ssh_endpoint: Option<String>,
    attrs: UserAttrs,
    resize_from: Option<String>,
    soft_deleted_at_ms: Option<i64>,
    shelved_image: Option<String>,
    data_disks: Vec<Disk>,
    tags: Vec<(String, String)>,
    /// The latest operation's error.
    latest_error: Option<String>,
}

const STOP_CHARGING: u8 = 1;
const REINSTALL_FAILED: u8 = 2;
const DISK_ERROR: u8 = 4;

/// One instance as the table keeps it (see the module's comment).
pub(crate) struct Record {
    pub(crate) uuid: Uuid,
    created_at_ms: i64,
    updated_at_ms: i64,
    generation: u64,
    project_id: i64,
    pub(crate) tencent_id: Box<str>,
    pub(crate) aliyun_id: Box<str>,
    name: Box<str>,
    host_name: Box<str>,
    private_ip: Box<str>,
    system_disk_id: Box<str>,
    latest_op: Option<Latest>,
    lock: Option<OpLock>,
    key_ids: Box<[u32]>,
    security_group_ids: Box<[u32]>,
    rare: Option<Box<Rare>>,
    pub(crate) account: u32,
    pub(crate) region: u32,
    zone: u32,
    instance_type: u32,
    image_id: u32,
    charge_type: u32,
    system_disk_type: u32,
    image_os_name: u32,
    image_user: u32,
    /// Optional texts: [`NONE`] when absent.
    project: u32,
    user_id: u32,
    host: u32,
    placement_group: u32,
    flavor: u32,
    resize_from_flavor: u32,
    system_disk_size: u32,
    internet_max_bandwidth_out: u32,
    pub(crate) state: InstanceState,
    os: OsFamily,
    restriction: Restriction,
    flags: u8,
}

impl Record {
    /// The compact form of `inst`; shared texts numbered in `dict`.
    pub(crate) fn new(dict: &mut Dictionary, inst: &Instance) -> Self {
        // Every field named, none skipped: a field added to `Instance` fails to compile here
        // until the record keeps it.
        let Instance {
            uuid,
            tencent_id,
            aliyun_id,
            account,
            region,
            zone,
            name,
            host_name,
            instance_type,
            image_id,
            os,
            state,
            restriction,
            lock,
            latest_op,
            created_at_ms,
            system_disk,
            data_disks,
            private_ip,
            key_ids,
            project_id,
            charge_type,
            security_group_ids,
            tags,
            stop_charging,
            reinstall_failed,
            application_role,
            client_token,
            disk_error,
            kms_key_id,
            description,
            locked,
            ssh_endpoint,
            attrs,
            updated_at_ms,
            generation,
            internet_max_bandwidth_out,
            project,
            user_id,
            host,
            resize_from,
            flavor,
            resize_from_flavor,
            placement_group,
            image_os_name,
            image_user,
            soft_deleted_at_ms,
            shelved_image,
        } = inst;
        let s = &mut dict.symbols;
        let rare = Rare {
            application_role: application_role.clone(),
            client_token: client_token.clone(),
            kms_key_id: kms_key_id.clone(),
            description: description.clone(),
            locked: locked.clone(),
            ssh_endpoint: ssh_endpoint.clone(),
            attrs: attrs.clone(),
            resize_from: resize_from.clone(),
            soft_deleted_at_ms: *soft_deleted_at_ms,
            shelved_image: shelved_image.clone(),
            data_disks: data_disks.clone(),
            tags: tags.clone(),
            latest_error: latest_op.as_ref().and_then(|l| l.error.clone()),
        };
        let flags = (u8::from(*stop_charging) * STOP_CHARGING)
            | (u8::from(*reinstall_failed) * REINSTALL_FAILED)
            | (u8::from(*disk_error) * DISK_ERROR);
        Record {
            uuid: *uuid,
            created_at_ms: *created_at_ms,
            updated_at_ms: *updated_at_ms,
            generation: *generation,
            project_id: *project_id,
            tencent_id: tencent_id.as_str().into(),
            aliyun_id: aliyun_id.as_str().into(),
            name: name.as_str().into(),
            host_name: host_name.as_str().into(),
            private_ip: private_ip.as_str().into(),
            system_disk_id: system_disk.id.as_str().into(),
            latest_op: latest_op.as_ref().map(|l| Latest {
                request_id: RequestId::new(&l.request_id),
                action: l.action,
                state: l.state,
            }),
            lock: lock.clone(),
            key_ids: key_ids.iter().map(|k| s.id(k)).collect(),
            security_group_ids: security_group_ids.iter().map(|g| s.id(g)).collect(),
            rare: (rare != Rare::default()).then(|| Box::new(rare)),
            account: s.id(account),
            region: s.id(region),
            zone: s.id(zone),
            instance_type: s.id(instance_type),
            image_id: s.id(image_id),
            charge_type: s.id(charge_type),
            system_disk_type: s.id(&system_disk.disk_type),
            image_os_name: s.id(image_os_name),
            image_user: s.id(image_user),
            project: s.opt(project.as_deref()),
            user_id: s.opt(user_id.as_deref()),
            host: s.opt(host.as_deref()),
            placement_group: s.opt(placement_group.as_deref()),
            flavor: dict.flavors.id(flavor.as_ref()),
            resize_from_flavor: dict.flavors.id(resize_from_flavor.as_ref()),
            system_disk_size: system_disk.size_gib,
            internet_max_bandwidth_out: *internet_max_bandwidth_out,
            state: *state,
            os: *os,
            restriction: *restriction,
            flags,
        }
    }

    /// The instance this record keeps.
    pub(crate) fn instance(&self, dict: &Dictionary) -> Instance {
        let s = &dict.symbols;
        let text = |id: u32| s.text(id).to_string();
        let Rare {
            application_role,
            client_token,
            kms_key_id,
            description,
            locked,
            ssh_endpoint,
            attrs,
            resize_from,
            soft_deleted_at_ms,
            shelved_image,
            data_disks,
            tags,
            latest_error,
        } = self.rare.as_deref().map_or_else(Rare::default, |r| Rare {
            application_role: r.application_role.clone(),
            client_token: r.client_token.clone(),
            kms_key_id: r.kms_key_id.clone(),
            description: r.description.clone(),
            locked: r.locked.clone(),
            ssh_endpoint: r.ssh_endpoint.clone(),
            attrs: r.attrs.clone(),
            resize_from: r.resize_from.clone(),
            soft_deleted_at_ms: r.soft_deleted_at_ms,
            shelved_image: r.shelved_image.clone(),
            data_disks: r.data_disks.clone(),
            tags: r.tags.clone(),
            latest_error: r.latest_error.clone(),
        });
        Instance {
            uuid: self.uuid,
            tencent_id: self.tencent_id.to_string(),
            aliyun_id: self.aliyun_id.to_string(),
            account: text(self.account),
            region: text(self.region),
            zone: text(self.zone),
            name: self.name.to_string(),
            host_name: self.host_name.to_string(),
            instance_type: text(self.instance_type),
            image_id: text(self.image_id),
            os: self.os,
            state: self.state,
            restriction: self.restriction,
            lock: self.lock.clone(),
            latest_op: self.latest_op.as_ref().map(|l| LatestOp {
                action: l.action,
                state: l.state,
                request_id: l.request_id.text(),
                error: latest_error.clone(),
            }),
            created_at_ms: self.created_at_ms,
            system_disk: Disk {
                id: self.system_disk_id.to_string(),
                size_gib: self.system_disk_size,
                disk_type: text(self.system_disk_type),
            },
            data_disks,
            private_ip: self.private_ip.to_string(),
            key_ids: self.key_ids.iter().map(|&k| text(k)).collect(),
            project_id: self.project_id,
            charge_type: text(self.charge_type),
            security_group_ids: self.security_group_ids.iter().map(|&g| text(g)).collect(),
            tags,
            stop_charging: self.flags & STOP_CHARGING != 0,
            reinstall_failed: self.flags & REINSTALL_FAILED != 0,
            application_role,
            client_token,
            disk_error: self.flags & DISK_ERROR != 0,
            kms_key_id,
            description,
            locked,
            ssh_endpoint,
            attrs,
            updated_at_ms: self.updated_at_ms,
            generation: self.generation,
            internet_max_bandwidth_out: self.internet_max_bandwidth_out,
            project: s.opt_text(self.project),
            user_id: s.opt_text(self.user_id),
            host: s.opt_text(self.host),
            resize_from,
            flavor: dict.flavors.get(self.flavor),
            resize_from_flavor: dict.flavors.get(self.resize_from_flavor),
            placement_group: s.opt_text(self.placement_group),
            image_os_name: text(self.image_os_name),
            image_user: text(self.image_user),
            soft_deleted_at_ms,
            shelved_image,
        }
    }

    /// Its Keystone project, if any (what tenancy checks read without building the instance).
    pub(crate) fn project<'a>(&self, dict: &'a Dictionary) -> Option<&'a str> {
        dict.symbols.opt_str(self.project)
    }
}

/// A record read in place: for scans that look at a few fields of every instance, which
/// would otherwise build a million instances to read their accounts.
#[derive(Clone, Copy)]
pub(crate) struct Row<'a> {
    pub(crate) record: &'a Record,
    pub(crate) dict: &'a Dictionary,
}

impl<'a> Row<'a> {
    pub(crate) fn uuid(&self) -> Uuid {
        self.record.uuid
    }

    pub(crate) fn state(&self) -> InstanceState {
        self.record.state
    }

    pub(crate) fn lock(&self) -> Option<&'a OpLock> {
        self.record.lock.as_ref()
    }

    pub(crate) fn image_id(&self) -> &'a str {
        self.dict.symbols.text(self.record.image_id)
    }

    pub(crate) fn account(&self) -> &'a str {
        self.dict.symbols.text(self.record.account)
    }

    pub(crate) fn project(&self) -> Option<&'a str> {
        self.record.project(self.dict)
    }

    pub(crate) fn host(&self) -> Option<&'a str> {
        self.dict.symbols.opt_str(self.record.host)
    }

    pub(crate) fn placement_group(&self) -> Option<&'a str> {
        self.dict.symbols.opt_str(self.record.placement_group)
    }

    pub(crate) fn has_key_pairs(&self) -> bool {
        !self.record.key_ids.is_empty()
    }

    /// The instance, built.
    pub(crate) fn instance(&self) -> Instance {
        self.record.instance(self.dict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_core::catalog::{INSTANCE_TYPES, TypeKind};
    use nubis_core::rules::fixture;
    use std::borrow::Cow;

    /// An instance with every field set to something other than its default.
    fn everything() -> Instance {
        let custom = InstanceType {
            name: Cow::Owned("m1.custom".into()),
            aliyun: Cow::Owned("ecs.custom".into()),
            family: Cow::Owned("custom".into()),
            kind: TypeKind::Special,
            ..INSTANCE_TYPES[0].clone()
        };
        Instance {
            uuid: Uuid::from_u128(7),
            os: OsFamily::Windows,
            restriction: Restriction::Frozen,
            lock: Some(OpLock {
                operation_id: Uuid::from_u128(9),
                action: Action::Reboot,
            }),
            latest_op: Some(LatestOp {
                action: Action::Stop,
                state: OpState::Failed,
                request_id: "req-1".into(),
                error: Some("it broke".into()),
            }),
            created_at_ms: 1,
            data_disks: vec![Disk {
                id: "disk-2".into(),
                size_gib: 20,
                disk_type: "CLOUD_SSD".into(),
            }],
            key_ids: vec!["skey-1".into(), "skey-2".into()],
            project_id: 3,
            security_group_ids: vec!["sg-1".into()],
            tags: vec![("k".into(), "v".into())],
            stop_charging: true,
            reinstall_failed: true,
            application_role: Some("role".into()),
            client_token: Some("token".into()),
            disk_error: true,
            kms_key_id: Some("kms-1".into()),
            description: "described".into(),
            locked: Some("why".into()),
            ssh_endpoint: Some("127.0.0.1:40022".into()),
            attrs: UserAttrs {
                access_ipv4: Some("192.0.2.1".into()),
                access_ipv6: Some("2001:db8::1".into()),
                auto_disk_config: true,
                scheduler_hints: Some("{}".into()),
            },
            updated_at_ms: 2,
            generation: 4,
            internet_max_bandwidth_out: 5,
            project: Some("p-1".into()),
            user_id: Some("u-1".into()),
            host: Some("host-1".into()),
            resize_from: Some("m1.custom".into()),
            flavor: Some(INSTANCE_TYPES[1].clone()),
            resize_from_flavor: Some(custom),
            placement_group: Some("ps-1".into()),
            image_os_name: "Windows Server".into(),
            image_user: "Administrator".into(),
            soft_deleted_at_ms: Some(6),
            shelved_image: Some("img-2".into()),
            ..fixture::inst(nubis_core::InstanceState::Stopped)
        }
    }

    #[test]
    fn a_record_keeps_every_field() {
        let mut dict = Dictionary::default();
        for inst in [
            everything(),
            fixture::inst(nubis_core::InstanceState::Running),
        ] {
            let r = Record::new(&mut dict, &inst);
            assert_eq!(r.instance(&dict), inst);
        }
        // Texts are numbered once: a second instance of the same shape adds no symbol, and
        // one type's facts are kept once.
        let (symbols, flavors) = (dict.symbols.texts.len(), dict.flavors.all.len());
        let again = Record::new(&mut dict, &everything());
        assert_eq!(again.instance(&dict), everything());
        assert_eq!(dict.symbols.texts.len(), symbols);
        assert_eq!(dict.flavors.all.len(), flavors);
        // An instance that sets none of the rare attributes keeps no box for them.
        let plain = Record::new(
            &mut dict,
            &fixture::inst(nubis_core::InstanceState::Running),
        );
        assert!(plain.rare.is_none());
    }

    #[test]
    fn a_row_reads_what_the_instance_says() {
        let mut dict = Dictionary::default();
        let inst = everything();
        let record = Record::new(&mut dict, &inst);
        let row = Row {
            record: &record,
            dict: &dict,
        };
        assert_eq!(row.uuid(), inst.uuid);
        assert_eq!(row.state(), inst.state);
        assert_eq!(row.lock(), inst.lock.as_ref());
        assert_eq!(row.image_id(), inst.image_id);
        assert_eq!(row.account(), inst.account);
        assert_eq!(row.project(), inst.project.as_deref());
        assert_eq!(row.host(), inst.host.as_deref());
        assert_eq!(row.placement_group(), inst.placement_group.as_deref());
        assert!(row.has_key_pairs());
    }

    #[test]
    fn request_ids_keep_their_text() {
        let lower = "01a242c8-d9f0-754d-a2d3-761f06b3bca9";
        let upper = "01A242C8-D9F0-754D-A2D3-761F06B3BCA9";
        for (text, uuid) in [
            (lower.to_string(), true),
            (upper.to_string(), true),
            (format!("req-{lower}"), true),
            (format!("req-{upper}"), false),
            ("01a242c8-D9F0-754d-a2d3-761f06b3bca9".to_string(), false),
            ("01a242c8d9f0754da2d3761f06b3bca9".to_string(), false),
            (format!("{{{lower}}}"), false),
            ("req-".to_string(), false),
            (String::new(), false),
        ] {
            let id = RequestId::new(&text);
            assert_eq!(id.text(), text);
            assert_eq!(!matches!(id, RequestId::Text(_)), uuid, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_request_id_keeps_its_text(text in "(req-)?[0-9a-fA-F-]{0,40}|.{0,40}") {
            proptest::prop_assert_eq!(RequestId::new(&text).text(), text);
        }
    }

    /// The record is a fraction of the instance it keeps (the reason it exists).
    #[test]
    fn a_record_is_small() {
        assert!(
            std::mem::size_of::<Record>() * 3 < std::mem::size_of::<Instance>()
                // The allocator's size class: one byte more costs 64.
                && std::mem::size_of::<Record>() <= 320,
            "record {} bytes, instance {}",
            std::mem::size_of::<Record>(),
            std::mem::size_of::<Instance>()
        );
    }
}
