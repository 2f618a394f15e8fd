//! What an instance listing may ask for, in words the fleet's indexes understand.
//!
//! A dialect turns its documented filters into [`Clause`]s (its own names and spellings mapped
//! to the canonical values an instance holds: states, zone IDs, type IDs, …); the engine answers
//! from an index instead of a scan. A clause's meaning is [`Clause::matches`], and the index keys
//! of an instance are [`facet_value`] and [`lookup_values`] — the same functions, so the index
//! and the scan cannot disagree.

use crate::{Instance, InstanceState};

/// A field with few distinct values, each shared by many instances: indexed per account and
/// region, so a page at any offset and an exact total cost no scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Facet {
    /// Every listed instance (no field): the scope's whole set.
    Any,
    State,
    Zone,
    InstanceType,
    Image,
    ChargeType,
    /// Tencent's numeric project ID.
    Project,
    /// A key pair's canonical ID (an instance may hold several, or none).
    KeyPair,
    /// A security group's ID (several, or none).
    SecurityGroup,
}

impl Facet {
    /// Every facet an instance is indexed under.
    pub const ALL: [Facet; 9] = [
        Facet::Any,
        Facet::State,
        Facet::Zone,
        Facet::InstanceType,
        Facet::Image,
        Facet::ChargeType,
        Facet::Project,
        Facet::KeyPair,
        Facet::SecurityGroup,
    ];
}

/// A field whose values are (nearly) unique or several per instance: indexed fleet-wide, its
/// few candidates checked one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lookup {
    PrivateIp,
    /// The exact name.
    Name,
    TagKey,
    /// A tag key and value: the value is [`tag_term`]'s.
    Tag,
    /// A tag's value (whatever its key).
    TagValue,
}

impl Lookup {
    pub const ALL: [Lookup; 5] = [
        Lookup::PrivateIp,
        Lookup::Name,
        Lookup::TagKey,
        Lookup::Tag,
        Lookup::TagValue,
    ];
}

/// The key a tag pair is indexed under: the key's length first, so no two pairs share one.
pub fn tag_term(key: &str, value: &str) -> String {
    format!("{}:{key}{value}", key.len())
}

/// Calls `f` with each value an instance has for `facet` (what the index files it under):
/// one for most facets, none or several for key pairs and security groups.
pub fn for_each_facet_value(inst: &Instance, facet: Facet, mut f: impl FnMut(&str)) {
    match facet {
        Facet::Any => f(""),
        Facet::State => f(inst.state.as_str()),
        Facet::Zone => f(&inst.zone),
        Facet::InstanceType => f(&inst.instance_type),
        Facet::Image => f(&inst.image_id),
        Facet::ChargeType => f(&inst.charge_type),
        Facet::Project => f(&inst.project_id.to_string()),
        Facet::KeyPair => inst.key_ids.iter().for_each(|k| f(k)),
        Facet::SecurityGroup => inst.security_group_ids.iter().for_each(|g| f(g)),
    }
}

/// The values an instance has for `lookup` (none, one or several).
pub fn lookup_values(inst: &Instance, lookup: Lookup) -> Vec<String> {
    match lookup {
        Lookup::PrivateIp => vec![inst.private_ip.clone()],
        Lookup::Name => vec![inst.name.clone()],
        Lookup::TagKey => inst.tags.iter().map(|(k, _)| k.clone()).collect(),
        Lookup::Tag => inst.tags.iter().map(|(k, v)| tag_term(k, v)).collect(),
        Lookup::TagValue => {
            let mut values: Vec<String> = inst.tags.iter().map(|(_, v)| v.clone()).collect();
            values.sort_unstable();
            values.dedup();
            values
        }
    }
}

/// A name test a listing may ask for besides the exact name: answered from the exact-name
/// index by testing each distinct name once (a fleet has far fewer names than instances).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    /// The name contains the text (Tencent `instance-name`).
    Contains(String),
    /// Alibaba's `InstanceName`: exact, or with one `*` standing for any text.
    Wildcard(String),
}

impl NameMatch {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameMatch::Contains(part) => name.contains(part.as_str()),
            NameMatch::Wildcard(pattern) => wildcard(pattern, name),
        }
    }
}

/// `pattern` with at most its first `*` standing for any text; without one, equality.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len() && value.starts_with(pre) && value.ends_with(post)
        }
    }
}

/// One condition of a listing: the instance has one of `values` for the field. Clauses of a
/// [`Selection`] all hold (and); the values of one clause are alternatives (or).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    Facet(Facet, Vec<String>),
    Lookup(Lookup, Vec<String>),
    /// The name meets one of these tests.
    Name(Vec<NameMatch>),
    /// One of these instances (canonical IDs: a dialect resolves its own first).
    Instances(Vec<uuid::Uuid>),
}

impl Clause {
    /// A state clause: the canonical states a dialect's word stands for (several internal
    /// states may share one word).
    pub fn states(states: impl IntoIterator<Item = InstanceState>) -> Self {
        Clause::Facet(
            Facet::State,
            states.into_iter().map(|s| s.as_str().to_string()).collect(),
        )
    }

    pub fn matches(&self, inst: &Instance) -> bool {
        match self {
            Clause::Facet(f, values) => {
                let mut hit = false;
                for_each_facet_value(inst, *f, |have| hit |= values.iter().any(|v| v == have));
                hit
            }
            Clause::Lookup(l, values) => {
                let have = lookup_values(inst, *l);
                values.iter().any(|v| have.contains(v))
            }
            Clause::Name(tests) => tests.iter().any(|t| t.matches(&inst.name)),
            Clause::Instances(ids) => ids.contains(&inst.uuid),
        }
    }
}

/// An instance listing in index terms: the region (`None`: every region), the clauses that
/// must all hold, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub region: Option<String>,
    pub clauses: Vec<Clause>,
}

impl Selection {
    pub fn in_region(region: Option<String>) -> Self {
        Selection {
            region,
            clauses: Vec::new(),
        }
    }

    pub fn and(&mut self, clause: Clause) -> &mut Self {
        self.clauses.push(clause);
        self
    }

    /// Does `inst` meet the region and every clause (visibility aside)?
    pub fn matches(&self, inst: &Instance) -> bool {
        self.region.as_ref().is_none_or(|r| *r == inst.region)
            && self.clauses.iter().all(|c| c.matches(inst))
    }
}
