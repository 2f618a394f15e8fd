//! The change journal's vocabulary: which record a committed write touched. PostgreSQL adds
//! one `changes` row per record of each committed batch; the engine of every node replays
//! them into its cache (docs/postgres.md, "Several nodes, one fleet").

use crate::Write;
use std::collections::HashSet;
use uuid::Uuid;

/// An identity table, journaled by kind only: a change to any of them makes the nodes reload
/// the identity state (it is small next to the fleet, and read from one snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Identity {
    Accounts,
    AccessKeys,
    SubUsers,
    Policies,
    Attachments,
    Roles,
    Mfa,
    TempCredentials,
    Keystone,
    Quotas,
    Meta,
}

impl Identity {
    const ALL: [Identity; 11] = [
        Self::Accounts,
        Self::AccessKeys,
        Self::SubUsers,
        Self::Policies,
        Self::Attachments,
        Self::Roles,
        Self::Mfa,
        Self::TempCredentials,
        Self::Keystone,
        Self::Quotas,
        Self::Meta,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accounts => "accounts",
            Self::AccessKeys => "access_keys",
            Self::SubUsers => "sub_users",
            Self::Policies => "policies",
            Self::Attachments => "attachments",
            Self::Roles => "roles",
            Self::Mfa => "mfa",
            Self::TempCredentials => "temp_credentials",
            Self::Keystone => "keystone",
            Self::Quotas => "quotas",
            Self::Meta => "meta",
        }
    }
}

/// A record a committed batch wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Record {
    Instance(Uuid),
    Operation(Uuid),
    KeyPair(String),
    /// A placement group (canonical ID).
    PlacementGroup(String),
    /// An image (canonical ID).
    Image(String),
    /// A created instance type (its Nova flavor ID).
    InstanceType(String),
    Identity(Identity),
    /// A kind this version does not know (written by a newer node): the reader reloads
    /// everything rather than guess.
    Unknown(String),
}

impl Record {
    /// The record `w` changes; `None` for what no node caches (guest state and user data are
    /// read on demand or owned by the driver, audit events and ClientToken claims are read
    /// from the store).
    pub fn of(w: &Write) -> Option<Record> {
        use Identity as I;
        // No wildcard: a new kind of write must decide whether other nodes see it.
        Some(match w {
            Write::Account(_) | Write::DeleteAccount(_) => Record::Identity(I::Accounts),
            Write::Quota(_) | Write::DeleteQuota(_) => Record::Identity(I::Quotas),
            Write::SubUser(_) | Write::DeleteSubUser(_) => Record::Identity(I::SubUsers),
            Write::Policy(_) | Write::DeletePolicy(_) => Record::Identity(I::Policies),
            Write::Attach(_) | Write::Detach(_) => Record::Identity(I::Attachments),
            Write::AccessKey(_) | Write::DeleteAccessKey(_) => Record::Identity(I::AccessKeys),
            Write::Instance(i) => Record::Instance(i.uuid),
            Write::Operation(o) => Record::Operation(o.id),
            Write::KeyPair(k) => Record::KeyPair(k.id.clone()),
            Write::DeleteKeyPair(id) => Record::KeyPair(id.clone()),
            Write::PlacementGroup(g) => Record::PlacementGroup(g.id.clone()),
            Write::DeletePlacementGroup(id) => Record::PlacementGroup(id.clone()),
            Write::Image(i) => Record::Image(i.id.clone()),
            Write::InstanceType(f) => Record::InstanceType(f.id.clone()),
            Write::DeleteInstanceType(id) => Record::InstanceType(id.clone()),
            Write::Guest { .. }
            | Write::DeleteGuest(_)
            | Write::UserData { .. }
            | Write::DeleteUserData(_)
            | Write::InjectedFiles { .. }
            | Write::DeleteInjectedFiles(_)
            | Write::AuditEvent(_)
            | Write::SystemEvent(_)
            // ClientToken claims are read from the store on every use (cluster state).
            | Write::ClientToken { .. }
            // Leases are read from the store by the lease tick (docs/cluster.md).
            | Write::Lease { .. }
            | Write::Fence { .. }
            | Write::EndLease(_) => return None,
            Write::Meta { .. } | Write::DeleteMeta(_) => Record::Identity(I::Meta),
            Write::Role(_) | Write::DeleteRole(_) => Record::Identity(I::Roles),
            Write::MfaDevice(_) | Write::DeleteMfaDevice(_) | Write::MfaFlags(_) => {
                Record::Identity(I::Mfa)
            }
            Write::TempCredential(_) | Write::SweepTempCredentials(_) => {
                Record::Identity(I::TempCredentials)
            }
            Write::Keystone { .. } | Write::DeleteKeystone { .. } => Record::Identity(I::Keystone),
        })
    }

    /// Its `(kind, key)` columns.
    pub(crate) fn columns(&self) -> (&str, String) {
        match self {
            Record::Instance(id) => ("instance", id.to_string()),
            Record::Operation(id) => ("operation", id.to_string()),
            Record::KeyPair(id) => ("key_pair", id.clone()),
            Record::PlacementGroup(id) => ("placement_group", id.clone()),
            Record::Image(id) => ("image", id.clone()),
            Record::InstanceType(id) => ("instance_type", id.clone()),
            Record::Identity(i) => (i.as_str(), String::new()),
            Record::Unknown(kind) => (kind.as_str(), String::new()),
        }
    }

    /// The record a `(kind, key)` row names.
    pub(crate) fn parse(kind: &str, key: &str) -> Record {
        let uuid = || Uuid::parse_str(key).ok();
        match kind {
            "instance" => uuid().map(Record::Instance),
            "operation" => uuid().map(Record::Operation),
            "key_pair" => Some(Record::KeyPair(key.to_string())),
            "placement_group" => Some(Record::PlacementGroup(key.to_string())),
            "image" => Some(Record::Image(key.to_string())),
            "instance_type" => Some(Record::InstanceType(key.to_string())),
            other => Identity::ALL
                .into_iter()
                .find(|i| i.as_str() == other)
                .map(Record::Identity),
        }
        .unwrap_or_else(|| Record::Unknown(kind.to_string()))
    }
}

/// The distinct records a group of writes touches, in first-write order.
pub(crate) fn records<'a>(writes: impl Iterator<Item = &'a Write>) -> Vec<Record> {
    let mut seen = HashSet::new();
    writes
        .filter_map(Record::of)
        .filter(|r| seen.insert(r.clone()))
        .collect()
}

/// One journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    /// Written by this store (this node): its cache already has it.
    pub own: bool,
    pub record: Record,
}

/// What [`crate::Store::changes_since`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    pub changes: Vec<Change>,
    /// The cursor past these changes.
    pub cursor: u64,
    /// The requested cursor is older than the journal keeps (rows were pruned past it): the
    /// caller must reload everything; `cursor` is then the head to continue from.
    pub reset: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_their_columns() {
        let id = Uuid::from_bytes([7; 16]);
        let mut all = vec![
            Record::Instance(id),
            Record::Operation(id),
            Record::KeyPair("skey-1".into()),
            Record::PlacementGroup("0b1c2d3e-0000-0000-0000-000000000000".into()),
            Record::Image("img-abcd1234".into()),
            Record::InstanceType("m1.custom".into()),
        ];
        all.extend(Identity::ALL.into_iter().map(Record::Identity));
        for r in all {
            let (kind, key) = r.columns();
            assert_eq!(Record::parse(kind, &key), r);
        }
        assert_eq!(
            Record::parse("widgets", ""),
            Record::Unknown("widgets".into())
        );
        assert_eq!(
            Record::parse("instance", "not-a-uuid"),
            Record::Unknown("instance".into())
        );
    }

    #[test]
    fn a_group_journals_each_record_once() {
        let a = Write::DeleteKeyPair("k".into());
        let b = Write::Meta {
            key: "x".into(),
            value: "1".into(),
        };
        let c = Write::DeleteMeta("y".into());
        let d = Write::DeleteGuest(Uuid::nil());
        let got = records([&a, &b, &c, &a, &d].into_iter());
        assert_eq!(
            got,
            vec![
                Record::KeyPair("k".into()),
                Record::Identity(Identity::Meta)
            ]
        );
    }
}
