//! Glance's metadata definitions (docs/images.md, "Metadata definitions"): namespaces of
//! property, object and tag definitions, associated with resource types. A catalogue that
//! describes metadata; nubis keeps it and serves it, it enforces nothing on images.
//!
//! A namespace is one document (its objects, properties, tags and resource-type associations
//! inside), stored whole under its generation: a change reads it, changes it here and writes it
//! back only if nobody wrote in between.

use crate::model::Principal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Namespaces one cloud may hold (a create past it is refused with 413). Glance ships ~30;
/// with [`DOCUMENT_MAX`] it bounds what a list reads (every document) to 64 MiB.
pub const NAMESPACES_MAX: usize = 256;
/// Objects, properties or tags one namespace may hold, each.
pub const ITEMS_PER_NAMESPACE: usize = 256;
/// Resource types one namespace may be associated with.
pub const ASSOCIATIONS_PER_NAMESPACE: usize = 64;
/// Longest namespace, object, property and resource type name (Glance's schemas: 80).
pub const NAME_MAX: usize = 80;
/// Longest tag name (Glance: 255).
pub const TAG_NAME_MAX: usize = 255;
/// Largest stored namespace document, in bytes of JSON (Glance's largest shipped namespace is
/// ~20 KiB).
pub const DOCUMENT_MAX: usize = 256 << 10;

/// The resource types Glance ships (`etc/metadefs`, loaded by `glance-manage
/// db_load_metadefs`), listed by `GET /v2/metadefs/resource_types` beside any other name a
/// namespace was associated with.
pub const RESOURCE_TYPES: &[&str] = &[
    "OS::Cinder::Volume",
    "OS::Glance::Image",
    "OS::Nova::Aggregate",
    "OS::Nova::Flavor",
    "OS::Nova::Server",
    "OS::Trove::Instance",
];

/// Who sees a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NsVisibility {
    /// Everyone.
    Public,
    /// Its owner project (and admins). Glance's default.
    #[default]
    Private,
}

impl NsVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
        }
    }
}

/// One definition inside a namespace: an object, a property, a tag or a resource-type
/// association, by name, with the attributes Glance's schema for it allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// The other attributes as sent (checked by the API against Glance's schema).
    #[serde(default)]
    pub body: Map<String, Value>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// The four kinds of definition a namespace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Property,
    Tag,
    Association,
}

impl Kind {
    /// Glance's word for it in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Object => "object",
            Self::Property => "property",
            Self::Tag => "tag",
            Self::Association => "resource type association",
        }
    }

    pub fn max(self) -> usize {
        match self {
            Self::Object | Self::Property | Self::Tag => ITEMS_PER_NAMESPACE,
            Self::Association => ASSOCIATIONS_PER_NAMESPACE,
        }
    }

    pub fn name_max(self) -> usize {
        match self {
            Self::Tag => TAG_NAME_MAX,
            Self::Object | Self::Property | Self::Association => NAME_MAX,
        }
    }
}

/// Why a metadata definition request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadefError {
    /// No such namespace (or one the caller may not see), or no such definition in it.
    #[error("{0}")]
    NotFound(String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// A protected namespace (or its content) cannot be deleted.
    #[error("{0}")]
    Protected(String),
    /// The caller may not change it.
    #[error("{0}")]
    Forbidden(String),
    /// A count or size limit.
    #[error("{0}")]
    TooMany(String),
    /// The value breaks a rule (a name too long, an empty one).
    #[error("{0}")]
    Invalid(String),
    /// The store did not answer, or another writer kept winning.
    #[error("{0}")]
    Unavailable(String),
}

/// A namespace and everything defined in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    /// A UUID, never shown: the store's key, so a rename keeps the row.
    pub id: String,
    /// Bumped by every write; a write lands only on the generation before it.
    pub generation: u64,
    pub namespace: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub visibility: NsVisibility,
    pub protected: bool,
    /// The owner project's ID.
    pub owner: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default)]
    pub objects: Vec<Entry>,
    #[serde(default)]
    pub properties: Vec<Entry>,
    #[serde(default)]
    pub tags: Vec<Entry>,
    #[serde(default)]
    pub associations: Vec<Entry>,
}

/// A name's checks: not empty, not too long.
pub fn check_name(kind: &str, name: &str, max: usize) -> Result<(), MetadefError> {
    if name.trim().is_empty() {
        return Err(MetadefError::Invalid(format!("The {kind} name is empty.")));
    }
    if name.chars().count() > max {
        return Err(MetadefError::Invalid(format!(
            "The {kind} name is longer than {max} characters."
        )));
    }
    Ok(())
}

impl Namespace {
    /// A new, empty namespace owned by `owner`.
    pub fn new(id: String, namespace: String, owner: String, now_ms: i64) -> Self {
        Self {
            id,
            generation: 1,
            namespace,
            display_name: None,
            description: None,
            visibility: NsVisibility::Private,
            protected: false,
            owner,
            created_ms: now_ms,
            updated_ms: now_ms,
            objects: Vec::new(),
            properties: Vec::new(),
            tags: Vec::new(),
            associations: Vec::new(),
        }
    }

    /// Glance's rule: admins see every namespace, others the public ones and their
    /// project's.
    pub fn visible_to(&self, p: &Principal) -> bool {
        p.is_admin
            || self.visibility == NsVisibility::Public
            || p.project.as_ref().is_some_and(|s| s.id == self.owner)
    }

    /// Whether the caller may change it (the policy already asked for a writer): admins, or
    /// the owner project.
    pub fn writable_by(&self, p: &Principal) -> bool {
        p.is_admin || p.project.as_ref().is_some_and(|s| s.id == self.owner)
    }

    pub fn entries(&self, kind: Kind) -> &[Entry] {
        match kind {
            Kind::Object => &self.objects,
            Kind::Property => &self.properties,
            Kind::Tag => &self.tags,
            Kind::Association => &self.associations,
        }
    }

    fn entries_mut(&mut self, kind: Kind) -> &mut Vec<Entry> {
        match kind {
            Kind::Object => &mut self.objects,
            Kind::Property => &mut self.properties,
            Kind::Tag => &mut self.tags,
            Kind::Association => &mut self.associations,
        }
    }

    pub fn entry(&self, kind: Kind, name: &str) -> Result<&Entry, MetadefError> {
        self.entries(kind)
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| self.missing(kind, name))
    }

    fn missing(&self, kind: Kind, name: &str) -> MetadefError {
        MetadefError::NotFound(format!(
            "Metadata definition {} not found for namespace={}: {name}",
            kind.noun(),
            self.namespace
        ))
    }

    fn taken(&self, kind: Kind, name: &str) -> MetadefError {
        MetadefError::Conflict(format!(
            "A metadata definition {} with name={name} already exists in namespace={}.",
            kind.noun(),
            self.namespace
        ))
    }

    /// Adds a definition; its name must be free and the namespace not full.
    pub fn add(&mut self, kind: Kind, entry: Entry) -> Result<&Entry, MetadefError> {
        check_name(kind.noun(), &entry.name, kind.name_max())?;
        if self.entries(kind).iter().any(|e| e.name == entry.name) {
            return Err(self.taken(kind, &entry.name));
        }
        if self.entries(kind).len() >= kind.max() {
            return Err(MetadefError::TooMany(format!(
                "Maximum number of metadata definition {} entries exceeded: at most {} per namespace.",
                kind.noun(),
                kind.max()
            )));
        }
        let list = self.entries_mut(kind);
        list.push(entry);
        list.last()
            .ok_or_else(|| MetadefError::Unavailable("lost the new entry".into()))
    }

    /// Replaces the definition named `old` (possibly renaming it; the new name must be free),
    /// keeping its creation time.
    pub fn replace(
        &mut self,
        kind: Kind,
        old: &str,
        mut entry: Entry,
    ) -> Result<&Entry, MetadefError> {
        check_name(kind.noun(), &entry.name, kind.name_max())?;
        let Some(at) = self.entries(kind).iter().position(|e| e.name == old) else {
            return Err(self.missing(kind, old));
        };
        if entry.name != old && self.entries(kind).iter().any(|e| e.name == entry.name) {
            return Err(self.taken(kind, &entry.name));
        }
        let list = self.entries_mut(kind);
        let slot = list
            .get_mut(at)
            .ok_or_else(|| MetadefError::Unavailable("lost the entry".into()))?;
        entry.created_ms = slot.created_ms;
        *slot = entry;
        Ok(slot)
    }

    /// Removes the definition named `name` (refused in a protected namespace).
    pub fn remove(&mut self, kind: Kind, name: &str) -> Result<Entry, MetadefError> {
        let Some(at) = self.entries(kind).iter().position(|e| e.name == name) else {
            return Err(self.missing(kind, name));
        };
        if self.protected {
            return Err(MetadefError::Protected(format!(
                "Metadata definition {} {name} is protected and cannot be deleted.",
                kind.noun()
            )));
        }
        Ok(self.entries_mut(kind).remove(at))
    }

    /// Removes every definition of a kind (refused in a protected namespace).
    pub fn clear(&mut self, kind: Kind) -> Result<(), MetadefError> {
        if self.protected {
            return Err(MetadefError::Protected(format!(
                "Namespace {} is protected and cannot be deleted.",
                self.namespace
            )));
        }
        self.entries_mut(kind).clear();
        Ok(())
    }

    /// Replaces every tag at once (Glance's create-multiple), refusing duplicate names.
    pub fn set_tags(&mut self, tags: Vec<Entry>, append: bool) -> Result<(), MetadefError> {
        let mut all: Vec<Entry> = if append {
            self.tags.clone()
        } else {
            Vec::new()
        };
        for t in tags {
            check_name("tag", &t.name, TAG_NAME_MAX)?;
            if all.iter().any(|e| e.name == t.name) {
                return Err(MetadefError::Conflict(format!(
                    "A metadata tag with name={} already exists in namespace={}.",
                    t.name, self.namespace
                )));
            }
            all.push(t);
        }
        if all.len() > ITEMS_PER_NAMESPACE {
            return Err(MetadefError::TooMany(format!(
                "Maximum number of metadata definition tag entries exceeded: at most {ITEMS_PER_NAMESPACE} per namespace."
            )));
        }
        self.tags = all;
        Ok(())
    }

    /// May the namespace be deleted?
    pub fn check_deletable(&self) -> Result<(), MetadefError> {
        if self.protected {
            return Err(MetadefError::Protected(format!(
                "Namespace {} is protected and cannot be deleted.",
                self.namespace
            )));
        }
        Ok(())
    }

    /// Is it associated with any of `types`?
    pub fn has_resource_type(&self, types: &[&str]) -> bool {
        self.associations
            .iter()
            .any(|a| types.contains(&a.name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProjectScope;

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.into(),
            body: Map::new(),
            created_ms: 1,
            updated_ms: 1,
        }
    }

    fn caller(project: &str, admin: bool) -> Principal {
        Principal {
            is_admin: admin,
            project: Some(ProjectScope {
                id: project.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn visibility_follows_glance() {
        let mut ns = Namespace::new("i".into(), "n".into(), "p1".into(), 0);
        assert!(ns.visible_to(&caller("p1", false)));
        assert!(!ns.visible_to(&caller("p2", false)));
        assert!(ns.visible_to(&caller("p2", true)));
        ns.visibility = NsVisibility::Public;
        assert!(ns.visible_to(&caller("p2", false)));
        assert!(!ns.writable_by(&caller("p2", false)));
    }

    #[test]
    fn names_are_unique_and_protection_guards_deletes() {
        let mut ns = Namespace::new("i".into(), "n".into(), "p".into(), 0);
        ns.add(Kind::Object, entry("a")).unwrap();
        assert!(matches!(
            ns.add(Kind::Object, entry("a")),
            Err(MetadefError::Conflict(_))
        ));
        ns.add(Kind::Object, entry("b")).unwrap();
        assert!(matches!(
            ns.replace(Kind::Object, "a", entry("b")),
            Err(MetadefError::Conflict(_))
        ));
        assert_eq!(ns.replace(Kind::Object, "a", entry("c")).unwrap().name, "c");
        assert!(matches!(
            ns.replace(Kind::Object, "zz", entry("d")),
            Err(MetadefError::NotFound(_))
        ));
        ns.protected = true;
        assert!(matches!(
            ns.remove(Kind::Object, "c"),
            Err(MetadefError::Protected(_))
        ));
        assert!(ns.check_deletable().is_err());
        ns.protected = false;
        ns.remove(Kind::Object, "c").unwrap();
        assert_eq!(ns.objects.len(), 1);
        assert!(matches!(
            ns.add(Kind::Tag, entry("")),
            Err(MetadefError::Invalid(_))
        ));
        assert!(ns.set_tags(vec![entry("x"), entry("x")], false).is_err());
        ns.set_tags(vec![entry("x"), entry("y")], false).unwrap();
        ns.set_tags(vec![entry("z")], true).unwrap();
        assert_eq!(ns.tags.len(), 3);
    }

    #[test]
    fn counts_are_bounded() {
        let mut ns = Namespace::new("i".into(), "n".into(), "p".into(), 0);
        for i in 0..ASSOCIATIONS_PER_NAMESPACE {
            ns.add(Kind::Association, entry(&format!("t{i}"))).unwrap();
        }
        assert!(matches!(
            ns.add(Kind::Association, entry("one-more")),
            Err(MetadefError::TooMany(_))
        ));
    }
}
