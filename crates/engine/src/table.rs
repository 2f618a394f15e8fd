//! The fleet's instances as readers see them: one table behind its own read-write lock, apart
//! from the fleet's mutex, with secondary indexes for every listing filter.
//!
//! Writers are the fleet's (they hold its mutex and change a record only after its commit);
//! each write takes this table's lock for the few index updates of one record. Readers —
//! listings, lookups by ID — take only the read lock, never the fleet's mutex, and do work in
//! proportion to what they return: a page of a facet (state, zone, type, …) at any offset skips
//! whole chunks of the index, and its exact total is the index's size.
//!
//! Every instance gets a sequence number when it enters the table (creation order, as the
//! store lists them at start-up); listings are newest first, so by descending sequence.
//!
//! Each instance is kept as a compact [`Record`] (`record.rs`: a third of an `Instance`'s
//! size); a reader gets the `Instance` built from the record it read under the lock, and
//! scans that need a few fields read the records in place ([`Inner::rows`]).

use crate::record::{Dictionary, Record, Row, Symbols};
use nubis_core::select::{Clause, Facet, Lookup, Selection, for_each_facet_value, lookup_values};
use nubis_core::{Instance, InstanceState, Principal, QuotaUsage};
use parking_lot::{RwLock, RwLockReadGuard};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use uuid::Uuid;

/// Entries per chunk of a [`SeqSet`] before it splits: a rank skip walks chunk lengths
/// (≈ 2,000 for a million entries), an insert in the middle moves at most one chunk.
const CHUNK: usize = 512;

/// A sorted set of sequence numbers. Most lookup sets (a private IP, a name) hold one number
/// for life: that one is kept inline, with no allocation; larger sets are [`Chunks`].
#[derive(Debug, Default, Clone)]
pub(crate) enum SeqSet {
    #[default]
    Empty,
    One(u32),
    Many(Box<Chunks>),
}

impl SeqSet {
    pub(crate) fn len(&self) -> usize {
        match self {
            SeqSet::Empty => 0,
            SeqSet::One(_) => 1,
            SeqSet::Many(c) => c.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn insert(&mut self, s: u32) -> bool {
        match self {
            SeqSet::Empty => *self = SeqSet::One(s),
            SeqSet::One(x) if *x == s => return false,
            SeqSet::One(x) => {
                let mut c = Chunks::default();
                c.insert(*x);
                c.insert(s);
                *self = SeqSet::Many(Box::new(c));
            }
            SeqSet::Many(c) => return c.insert(s),
        }
        true
    }

    pub(crate) fn remove(&mut self, s: u32) -> bool {
        match self {
            SeqSet::Empty => false,
            SeqSet::One(x) if *x == s => {
                *self = SeqSet::Empty;
                true
            }
            SeqSet::One(_) => false,
            SeqSet::Many(c) => {
                let removed = c.remove(s);
                let last = (c.len() == 1).then(|| c.desc(0).next()).flatten();
                if let Some(last) = last {
                    *self = SeqSet::One(last);
                }
                removed
            }
        }
    }

    /// Descending, the first `skip` left out (see [`Chunks::desc`]).
    pub(crate) fn desc(&self, skip: usize) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            SeqSet::Many(c) => c.desc(skip),
            _ => Box::new(self.single().filter(move |_| skip == 0)),
        }
    }

    /// Descending from the largest element below `below`.
    pub(crate) fn desc_below(&self, below: u32) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            SeqSet::Many(c) => c.desc_below(below),
            _ => Box::new(self.single().filter(move |&x| x < below)),
        }
    }

    fn single(&self) -> std::option::IntoIter<u32> {
        match self {
            SeqSet::One(x) => Some(*x),
            _ => None,
        }
        .into_iter()
    }
}

/// A sorted set of sequence numbers, kept in chunks so that skipping `n` of them from the top
/// costs the number of chunks, not `n`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Chunks {
    /// Ascending; every chunk non-empty; chunk `k`'s last < chunk `k+1`'s first.
    chunks: Vec<Vec<u32>>,
    len: usize,
}

impl Chunks {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The chunk that holds `s` or would: the first whose last element is ≥ `s`.
    fn chunk_of(&self, s: u32) -> usize {
        self.chunks
            .partition_point(|c| c.last().is_some_and(|&last| last < s))
    }

    pub(crate) fn insert(&mut self, s: u32) -> bool {
        let i = self.chunk_of(s);
        if i == self.chunks.len() {
            // Past the end: the usual case (a new instance has the highest number).
            match self.chunks.last_mut() {
                Some(last) if last.len() < CHUNK => last.push(s),
                // A full chunk before it: this set grows, room for a whole chunk. The first
                // chunk starts small (most lookup sets hold one number for life).
                Some(_) => {
                    let mut c = Vec::with_capacity(CHUNK);
                    c.push(s);
                    self.chunks.push(c);
                }
                None => self.chunks.push(vec![s]),
            }
        } else {
            let c = &mut self.chunks[i];
            match c.binary_search(&s) {
                Ok(_) => return false,
                Err(at) => c.insert(at, s),
            }
            if c.len() > 2 * CHUNK {
                let upper = c.split_off(CHUNK);
                self.chunks.insert(i + 1, upper);
            }
        }
        self.len += 1;
        true
    }

    pub(crate) fn remove(&mut self, s: u32) -> bool {
        let i = self.chunk_of(s);
        let Some(c) = self.chunks.get_mut(i) else {
            return false;
        };
        let Ok(at) = c.binary_search(&s) else {
            return false;
        };
        c.remove(at);
        if c.is_empty() {
            self.chunks.remove(i);
        }
        self.len -= 1;
        true
    }

    /// Descending, the first `skip` left out: the chunks skipped whole by their lengths.
    pub(crate) fn desc(&self, skip: usize) -> Box<dyn Iterator<Item = u32> + '_> {
        let mut skip = skip;
        let mut upto = self.chunks.len();
        while let Some(c) = upto.checked_sub(1).and_then(|k| self.chunks.get(k)) {
            if skip < c.len() {
                break;
            }
            skip -= c.len();
            upto -= 1;
        }
        Box::new(
            self.chunks[..upto]
                .iter()
                .rev()
                .enumerate()
                .flat_map(move |(k, c)| {
                    let end = if k == 0 { c.len() - skip } else { c.len() };
                    c[..end].iter().rev().copied()
                }),
        )
    }

    /// Descending from the largest element below `below`: a binary search, then a walk.
    pub(crate) fn desc_below(&self, below: u32) -> Box<dyn Iterator<Item = u32> + '_> {
        let i = self.chunk_of(below);
        let (whole, part) = match self.chunks.get(i) {
            Some(c) => (i, &c[..c.partition_point(|&x| x < below)]),
            None => (self.chunks.len(), &[][..]),
        };
        Box::new(
            part.iter().rev().copied().chain(
                self.chunks[..whole]
                    .iter()
                    .rev()
                    .flat_map(|c| c.iter().rev().copied()),
            ),
        )
    }
}

/// A fast hasher for keys that are small numbers or interned: no caller chooses them freely
/// enough to aim collisions (user-chosen strings go through the standard hasher).
type Fast = foldhash::fast::RandomState;

/// Where a facet set applies: one account's or every account's (0) listed instances, in one
/// region or every region (0); the value interned too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FacetKey {
    account: u32,
    region: u32,
    facet: Facet,
    value: u32,
}

/// Puts in `keys` those an instance is filed under for `facet`: each of its values in the
/// four scopes (no allocation past the caller's buffer: start-up files a million).
fn facet_keys(names: &mut Symbols, inst: &Instance, facet: Facet, keys: &mut Vec<FacetKey>) {
    keys.clear();
    let account = names.id(&inst.account);
    let region = names.id(&inst.region);
    for_each_facet_value(inst, facet, |value| {
        let value = names.id(value);
        for (account, region) in [(account, region), (account, 0), (0, region), (0, 0)] {
            keys.push(FacetKey {
                account,
                region,
                facet,
                value,
            });
        }
    });
}

type Slots = Vec<Option<Box<Record>>>;

/// Sequence numbers found by a key their record holds (its UUID, `ins-…`, `i-…` ID), with
/// no copy of the key: the hash table holds only the numbers (4 bytes an instance, where a
/// map of the IDs' texts held ~70) and compares a candidate's key in its record.
#[derive(Default)]
struct ById {
    table: hashbrown::HashTable<u32>,
    hasher: Fast,
    key: KeyOf,
}

/// Which key of a record a [`ById`] is by.
#[derive(Default, Clone, Copy)]
enum KeyOf {
    #[default]
    Uuid,
    Tencent,
    Aliyun,
}

impl KeyOf {
    fn of(self, r: &Record) -> &[u8] {
        match self {
            KeyOf::Uuid => r.uuid.as_bytes(),
            KeyOf::Tencent => r.tencent_id.as_bytes(),
            KeyOf::Aliyun => r.aliyun_id.as_bytes(),
        }
    }
}

fn slot(slots: &Slots, s: u32) -> Option<&Record> {
    slots.get(s as usize).and_then(Option::as_deref)
}

impl ById {
    fn new(key: KeyOf) -> Self {
        Self {
            key,
            ..Default::default()
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, slots: &Slots, key: &[u8]) -> Option<u32> {
        let of = self.key;
        self.table
            .find(self.hash(key), |&s| {
                slot(slots, s).is_some_and(|r| of.of(r) == key)
            })
            .copied()
    }

    /// File `s`, whose record is already in `slots`.
    fn insert(&mut self, slots: &Slots, s: u32) {
        let Some(r) = slot(slots, s) else { return };
        let (of, hasher) = (self.key, &self.hasher);
        let hash = hasher.hash_one(of.of(r));
        self.table.insert_unique(hash, s, |&x| {
            slot(slots, x).map_or(0, |r| hasher.hash_one(of.of(r)))
        });
    }

    /// Unfile `s`, filed under `key`.
    fn remove(&mut self, key: &[u8], s: u32) {
        if let Ok(e) = self.table.find_entry(self.hash(key), |&x| x == s) {
            e.remove();
        }
    }

    fn reserve(&mut self, slots: &Slots, more: usize) {
        let (of, hasher) = (self.key, &self.hasher);
        self.table.reserve(more, |&x| {
            slot(slots, x).map_or(0, |r| hasher.hash_one(of.of(r)))
        });
    }
}

pub(crate) struct Inner {
    /// By sequence number; `None` once removed (numbers are not reused).
    slots: Slots,
    /// Keyed by IDs the server made (a per-process seed; no caller chooses them): the fast
    /// hasher. Names and tags, which callers choose, keep the standard one in `lookups`.
    seq: ById,
    by_tencent: ById,
    by_aliyun: ById,
    /// What the records' and the facet keys' numbers stand for.
    dict: Dictionary,
    facets: HashMap<FacetKey, SeqSet, Fast>,
    /// By lookup, then value (a value is looked up as `&str`, with no copy).
    lookups: HashMap<Lookup, HashMap<Box<str>, SeqSet>, Fast>,
    /// What the listed instances take, by (account, Keystone project, Keystone user) as
    /// symbols: quota checks sum a few of these instead of scanning the fleet.
    usage: HashMap<UsageKey, QuotaUsage, Fast>,
}

type UsageKey = (u32, Option<u32>, Option<u32>);

impl Default for Inner {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            seq: ById::new(KeyOf::Uuid),
            by_tencent: ById::new(KeyOf::Tencent),
            by_aliyun: ById::new(KeyOf::Aliyun),
            dict: Dictionary::default(),
            facets: HashMap::default(),
            lookups: HashMap::default(),
            usage: HashMap::default(),
        }
    }
}

impl Inner {
    fn seq_of(&self, id: &Uuid) -> Option<u32> {
        self.seq.find(&self.slots, id.as_bytes())
    }

    fn record(&self, s: u32) -> Option<&Record> {
        slot(&self.slots, s)
    }

    /// The instance `s` as its record keeps it, built for the caller.
    fn built(&self, s: u32) -> Option<Arc<Instance>> {
        self.record(s).map(|r| Arc::new(r.instance(&self.dict)))
    }

    pub(crate) fn get(&self, id: &Uuid) -> Option<Arc<Instance>> {
        self.built(self.seq_of(id)?)
    }

    pub(crate) fn contains(&self, id: &Uuid) -> bool {
        self.seq_of(id).is_some()
    }

    /// Is instance `id` listed and of an account and project `p` sees (`Engine::seen`, read
    /// from its record)?
    pub(crate) fn seen(&self, p: &Principal, id: &Uuid) -> bool {
        (self.seq_of(id).and_then(|s| self.record(s))).is_some_and(|r| self.sees(p, r))
    }

    /// [`Inner::seen`] of a record.
    fn sees(&self, p: &Principal, r: &Record) -> bool {
        let account = self.dict.symbols.text(r.account);
        crate::Engine::seen_as(p, r.state, account, r.project(&self.dict))
    }

    /// The type names a facet clause stands for when the test is `wanted` of a type's facts
    /// (Alibaba's type names): see `Flavors::names_where`.
    pub(crate) fn type_names_where(
        &self,
        wanted: impl Fn(&nubis_core::catalog::InstanceType) -> bool,
    ) -> Option<Vec<String>> {
        self.dict.flavors.names_where(wanted)
    }

    /// Does a listed instance have `value` for `facet` (a key pair in use, say)?
    pub(crate) fn uses(&self, facet: Facet, value: &str) -> bool {
        let Some(value) = self.dict.symbols.get(value) else {
            return false;
        };
        let every = FacetKey {
            account: 0,
            region: 0,
            facet,
            value,
        };
        self.facets.get(&every).is_some_and(|s| !s.is_empty())
    }

    pub(crate) fn by_tencent(&self, id: &str) -> Option<Uuid> {
        let s = self.by_tencent.find(&self.slots, id.as_bytes())?;
        self.record(s).map(|r| r.uuid)
    }

    pub(crate) fn by_aliyun(&self, id: &str) -> Option<Uuid> {
        let s = self.by_aliyun.find(&self.slots, id.as_bytes())?;
        self.record(s).map(|r| r.uuid)
    }

    /// Every instance, oldest first, each built from its record: the tests' scan (the server's
    /// scans read [`Inner::rows`]; listings use [`Inner::select`]).
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = Instance> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.as_deref())
            .map(|r| r.instance(&self.dict))
    }

    /// Every instance's state, without building the instances (metrics).
    pub(crate) fn states(&self) -> impl Iterator<Item = InstanceState> + '_ {
        self.rows().map(|r| r.state())
    }

    /// Every instance read in place, oldest first: for scans of a few fields.
    pub(crate) fn rows(&self) -> impl Iterator<Item = Row<'_>> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.as_deref())
            .map(|record| Row {
                record,
                dict: &self.dict,
            })
    }

    /// Move `s` in the indexes from what `old` was filed under to what `new` is (either
    /// `None`, or unlisted: filed nowhere). Only the facets and lookups whose values differ are
    /// touched: a state change moves four entries.
    fn reindex(&mut self, s: u32, old: Option<&Instance>, new: Option<&Instance>) {
        let old = old.filter(|i| i.state.is_listed());
        let new = new.filter(|i| i.state.is_listed());
        for (i, gone) in [(old, true), (new, false)] {
            if let Some(i) = i {
                self.tally(i, gone);
            }
        }
        let names = &mut self.dict.symbols;
        let (mut had, mut has) = (Vec::new(), Vec::new());
        for facet in Facet::ALL {
            had.clear();
            has.clear();
            if let Some(o) = old {
                facet_keys(names, o, facet, &mut had);
            }
            if let Some(n) = new {
                facet_keys(names, n, facet, &mut has);
            }
            if had == has {
                continue;
            }
            for k in &had {
                if let Some(set) = self.facets.get_mut(k) {
                    set.remove(s);
                    if set.is_empty() {
                        self.facets.remove(k);
                    }
                }
            }
            for k in &has {
                self.facets.entry(*k).or_default().insert(s);
            }
        }
        for l in Lookup::ALL {
            let had = old.map(|o| lookup_values(o, l)).unwrap_or_default();
            let has = new.map(|n| lookup_values(n, l)).unwrap_or_default();
            if had == has {
                continue;
            }
            let by_value = self.lookups.entry(l).or_default();
            for v in had.iter().filter(|v| !has.contains(v)) {
                if let Some(set) = by_value.get_mut(v.as_str()) {
                    set.remove(s);
                    if set.is_empty() {
                        by_value.remove(v.as_str());
                    }
                }
            }
            for v in has.into_iter().filter(|v| !had.contains(v)) {
                by_value.entry(v.into_boxed_str()).or_default().insert(s);
            }
        }
    }

    /// Count listed instance `i` in (or, `gone`, out of) its scope's usage.
    fn tally(&mut self, i: &Instance, gone: bool) {
        let names = &mut self.dict.symbols;
        let key = (
            names.id(&i.account),
            i.project.as_deref().map(|p| names.id(p)),
            i.user_id.as_deref().map(|u| names.id(u)),
        );
        let usage = self.usage.entry(key).or_default();
        usage.count_instance(i.type_facts(), gone);
        if usage.instances == 0 {
            self.usage.remove(&key);
        }
    }

    /// What the listed instances in the scopes `holds` accepts take (account, Keystone
    /// project, Keystone user): a sum over the few scopes that hold instances.
    pub(crate) fn usage(
        &self,
        holds: impl Fn(&str, Option<&str>, Option<&str>) -> bool,
    ) -> QuotaUsage {
        let names = &self.dict.symbols;
        let mut total = QuotaUsage::default();
        for ((account, project, user), u) in &self.usage {
            let text = |s: &Option<u32>| s.map(|s| names.text(s));
            if holds(names.text(*account), text(project), text(user)) {
                total.instances += u.instances;
                total.cores += u.cores;
                total.ram_mib += u.ram_mib;
            }
        }
        total
    }

    /// Insert or replace (same UUID: same sequence number, the indexes moved as its fields
    /// changed).
    fn put(&mut self, inst: &Instance) {
        let record = Box::new(Record::new(&mut self.dict, inst));
        match self.seq_of(&inst.uuid) {
            Some(s) => {
                let old = self.record(s).map(|r| r.instance(&self.dict));
                self.reindex(s, old.as_ref(), Some(inst));
                let Some(old) = self
                    .slots
                    .get_mut(s as usize)
                    .and_then(|x| x.replace(record))
                else {
                    return;
                };
                // External IDs do not change; were one to, its index would follow.
                if *old.tencent_id != *inst.tencent_id {
                    self.by_tencent.remove(old.tencent_id.as_bytes(), s);
                    self.by_tencent.insert(&self.slots, s);
                }
                if *old.aliyun_id != *inst.aliyun_id {
                    self.by_aliyun.remove(old.aliyun_id.as_bytes(), s);
                    self.by_aliyun.insert(&self.slots, s);
                }
            }
            None => {
                let s = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Some(record));
                self.seq.insert(&self.slots, s);
                self.by_tencent.insert(&self.slots, s);
                self.by_aliyun.insert(&self.slots, s);
                self.reindex(s, None, Some(inst));
            }
        }
    }

    fn remove(&mut self, id: &Uuid) -> Option<Arc<Instance>> {
        let s = self.seq_of(id)?;
        let old = self.slots.get_mut(s as usize).and_then(Option::take)?;
        self.seq.remove(old.uuid.as_bytes(), s);
        self.by_tencent.remove(old.tencent_id.as_bytes(), s);
        self.by_aliyun.remove(old.aliyun_id.as_bytes(), s);
        let old = old.instance(&self.dict);
        self.reindex(s, Some(&old), None);
        Some(Arc::new(old))
    }

    /// The index sets whose union holds every answer to `sel` for `p`: those of the clause
    /// with the fewest candidates (the scope's whole set when there is no clause), and
    /// whether they are facet sets (already scoped to `p`'s account and the region).
    fn candidates(&self, p: &Principal, sel: &Selection) -> (Vec<Cow<'_, SeqSet>>, bool) {
        let names = &self.dict.symbols;
        let account = names.get(if p.is_admin { "" } else { p.account.as_str() });
        let region = names.get(sel.region.as_deref().unwrap_or(""));
        let sets = |facet: Facet, values: &[String]| -> Vec<Cow<'_, SeqSet>> {
            // A name never interned has no instances.
            let (Some(account), Some(region)) = (account, region) else {
                return Vec::new();
            };
            values
                .iter()
                .filter_map(|v| names.get(v))
                .filter_map(|value| {
                    self.facets.get(&FacetKey {
                        account,
                        region,
                        facet,
                        value,
                    })
                })
                .map(Cow::Borrowed)
                .collect()
        };
        let mut best: Option<(usize, Vec<Cow<'_, SeqSet>>, bool)> = None;
        for c in &sel.clauses {
            let (found, facet) = match c {
                Clause::Facet(f, values) => (sets(*f, values), true),
                Clause::Lookup(l, values) => (
                    values
                        .iter()
                        .filter_map(|v| self.lookups.get(l)?.get(v.as_str()))
                        .map(Cow::Borrowed)
                        .collect(),
                    false,
                ),
                // Each distinct name tested once; its set holds the instances of that name.
                Clause::Name(tests) => (
                    self.lookups
                        .get(&Lookup::Name)
                        .into_iter()
                        .flatten()
                        .filter(|(name, _)| tests.iter().any(|t| t.matches(name)))
                        .map(|(_, set)| Cow::Borrowed(set))
                        .collect(),
                    false,
                ),
                Clause::Instances(ids) => {
                    let mut one = SeqSet::default();
                    for s in ids.iter().filter_map(|id| self.seq_of(id)) {
                        one.insert(s);
                    }
                    (vec![Cow::Owned(one)], false)
                }
            };
            let size: usize = found.iter().map(|s| s.len()).sum();
            if best.as_ref().is_none_or(|(b, _, _)| size < *b) {
                best = Some((size, found, facet));
            }
        }
        let (_, mut sources, facet) =
            best.unwrap_or_else(|| (0, sets(Facet::Any, &[String::new()]), true));
        sources.retain(|s| !s.is_empty());
        (sources, facet)
    }

    /// A page of `p`'s instances that meet `sel` and `rest`, newest first, and how many there
    /// are in all. From the smallest index set that covers the selection: when that set is
    /// exactly the answer (one clause, nothing else to check) the page is read at its offset
    /// and the total is the set's size; otherwise each candidate is checked.
    pub(crate) fn select(
        &self,
        p: &Principal,
        sel: &Selection,
        rest: Option<&dyn Fn(&Instance) -> bool>,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<Arc<Instance>>) {
        let (sources, facet) = self.candidates(p, sel);
        // The facet sets are already scoped to the account and region; a lookup's are not.
        let scoped_exactly = facet
            && p.guard.is_none()
            && (p.is_admin || p.project.is_none())
            && rest.is_none()
            && sel.clauses.len() <= 1;
        if let (true, [] | [_]) = (scoped_exactly, sources.as_slice()) {
            let total = sources.first().map_or(0, |s| s.len());
            let page = sources
                .first()
                .into_iter()
                .flat_map(|s| s.desc(offset))
                .filter_map(|s| self.built(s))
                .take(limit)
                .collect();
            return (total, page);
        }
        let mut total = 0;
        let mut page = Vec::new();
        for s in merge_desc(sources.iter().map(|s| s.desc(0)).collect()) {
            let Some(found) = self.answer(p, sel, rest, s, true) else {
                continue;
            };
            if total >= offset && page.len() < limit {
                page.push(found.built(self));
            }
            total += 1;
        }
        (total, page)
    }

    /// Up to `limit` of `p`'s instances that meet `sel` and `rest`, newest first, after the
    /// instance `after` (a marker: it must be one of them, else `None`). No total: the walk
    /// stops at the page's end.
    pub(crate) fn select_after(
        &self,
        p: &Principal,
        sel: &Selection,
        rest: Option<&dyn Fn(&Instance) -> bool>,
        after: Option<Uuid>,
        limit: usize,
    ) -> Option<Vec<Arc<Instance>>> {
        let below = match after {
            None => u32::MAX,
            Some(id) => {
                let s = self.seq_of(&id)?;
                self.answer(p, sel, rest, s, false)?;
                s
            }
        };
        let (sources, _) = self.candidates(p, sel);
        let walk = merge_desc(sources.iter().map(|s| s.desc_below(below)).collect());
        Some(
            walk.filter_map(|s| self.answer(p, sel, rest, s, true))
                .take(limit)
                .map(|found| found.built(self))
                .collect(),
        )
    }

    /// Is instance `s` one of `p`'s that meet `sel` and `rest`? Tenancy is read from the record;
    /// the instance is built only when a policy, a clause or `rest` must look at it. A
    /// `candidate` (from [`Inner::candidates`]' sets) of a selection that is one lookup or
    /// name clause alone already meets it — a lookup's set holds exactly the listed instances
    /// with its value, a name clause's sets are those of the names it accepts — so nothing is
    /// built for the instances a page skips or only counts.
    fn answer<'a>(
        &'a self,
        p: &Principal,
        sel: &Selection,
        rest: Option<&dyn Fn(&Instance) -> bool>,
        s: u32,
        candidate: bool,
    ) -> Option<Answer<'a>> {
        let r = self.record(s)?;
        let region = self.dict.symbols.text(r.region);
        if sel.region.as_deref().is_some_and(|g| g != region) || !self.sees(p, r) {
            return None;
        }
        let met = match sel.clauses.as_slice() {
            [] => true,
            [Clause::Lookup(..) | Clause::Name(_)] => candidate,
            _ => false,
        };
        if p.guard.is_none() && met && rest.is_none() {
            return Some(Answer::Record(r));
        }
        let i = r.instance(&self.dict);
        let wanted = p.may_touch(&i).is_ok() && sel.matches(&i) && rest.is_none_or(|f| f(&i));
        wanted.then(|| Answer::Built(Arc::new(i)))
    }
}

/// An answer of a walk: its record, or the instance already built to check it.
enum Answer<'a> {
    Record(&'a Record),
    Built(Arc<Instance>),
}

impl Answer<'_> {
    fn built(self, table: &Inner) -> Arc<Instance> {
        match self {
            Answer::Record(r) => Arc::new(r.instance(&table.dict)),
            Answer::Built(i) => i,
        }
    }
}

/// The union of descending walks, descending, each number once: a lazy merge, so a walk
/// that stops early reads no further. A few walks are compared head by head; many (a name
/// pattern that many names meet) go through a heap, so each number costs O(log walks).
fn merge_desc<'a>(
    walks: Vec<Box<dyn Iterator<Item = u32> + 'a>>,
) -> Box<dyn Iterator<Item = u32> + 'a> {
    const FEW: usize = 8;
    let mut walks = walks;
    if walks.len() == 1 {
        return walks.remove(0);
    }
    if walks.len() > FEW {
        let mut heap: std::collections::BinaryHeap<(u32, usize)> = walks
            .iter_mut()
            .enumerate()
            .filter_map(|(i, w)| w.next().map(|s| (s, i)))
            .collect();
        let mut last = None;
        return Box::new(std::iter::from_fn(move || {
            loop {
                let (s, i) = heap.pop()?;
                if let Some(next) = walks.get_mut(i).and_then(Iterator::next) {
                    heap.push((next, i));
                }
                if last != Some(s) {
                    last = Some(s);
                    return Some(s);
                }
            }
        }));
    }
    let mut heads: Vec<std::iter::Peekable<Box<dyn Iterator<Item = u32> + 'a>>> =
        walks.into_iter().map(Iterator::peekable).collect();
    Box::new(std::iter::from_fn(move || {
        let top = heads.iter_mut().filter_map(|h| h.peek().copied()).max()?;
        for h in &mut heads {
            if h.peek() == Some(&top) {
                h.next();
            }
        }
        Some(top)
    }))
}

/// The table: shared by the fleet (the writer) and every reader.
#[derive(Default, Clone)]
pub(crate) struct Table(Arc<RwLock<Inner>>);

impl Table {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.0.read()
    }

    pub(crate) fn get(&self, id: &Uuid) -> Option<Arc<Instance>> {
        self.0.read().get(id)
    }

    pub(crate) fn contains_key(&self, id: &Uuid) -> bool {
        self.0.read().contains(id)
    }

    /// A copy of the record, for a writer's next version of it.
    pub(crate) fn cloned(&self, id: &Uuid) -> Option<Instance> {
        self.0.read().get(id).map(Arc::unwrap_or_clone)
    }

    pub(crate) fn keys(&self) -> Vec<Uuid> {
        let t = self.0.read();
        t.slots
            .iter()
            .filter_map(|s| s.as_ref().map(|r| r.uuid))
            .collect()
    }

    /// Room for `more` instances, before a bulk load (start-up): the ID maps grow once, not
    /// twenty times over with a rehash each.
    pub(crate) fn reserve(&mut self, more: usize) {
        let mut guard = self.0.write();
        let t = &mut *guard;
        t.slots.reserve(more);
        t.seq.reserve(&t.slots, more);
        t.by_tencent.reserve(&t.slots, more);
        t.by_aliyun.reserve(&t.slots, more);
    }

    /// Write paths only: the fleet's mutex is held.
    pub(crate) fn put(&mut self, inst: impl std::borrow::Borrow<Instance>) {
        self.0.write().put(inst.borrow());
    }

    pub(crate) fn remove(&mut self, id: &Uuid) -> Option<Arc<Instance>> {
        self.0.write().remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_core::select::NameMatch;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn seqset_is_a_sorted_set(ops in proptest::collection::vec((any::<bool>(), 0u32..3000), 0..4000),
                                  skip in 0usize..3000, below in 0u32..3100) {
            let mut s = SeqSet::default();
            let mut model = BTreeSet::new();
            for (add, x) in ops {
                if add {
                    prop_assert_eq!(s.insert(x), model.insert(x));
                } else {
                    prop_assert_eq!(s.remove(x), model.remove(&x));
                }
                prop_assert_eq!(s.len(), model.len());
            }
            let want: Vec<u32> = model.iter().rev().skip(skip).copied().collect();
            prop_assert_eq!(s.desc(skip).collect::<Vec<_>>(), want);
            let want: Vec<u32> = model.range(..below).rev().copied().collect();
            prop_assert_eq!(s.desc_below(below).collect::<Vec<_>>(), want);
        }
    }

    proptest! {
        #[test]
        fn merged_walks_are_their_union_descending(
            sets in proptest::collection::vec(proptest::collection::btree_set(0u32..200, 0..40), 0..20)
        ) {
            let want: Vec<u32> = sets.iter().flatten().copied().collect::<BTreeSet<_>>().into_iter().rev().collect();
            let walks = sets
                .iter()
                .map(|s| Box::new(s.iter().rev().copied()) as Box<dyn Iterator<Item = u32>>)
                .collect();
            prop_assert_eq!(merge_desc(walks).collect::<Vec<_>>(), want);
        }
    }

    /// A small instance drawn from few values per field, so that filters hit.
    fn arb_instance() -> impl Strategy<Value = Instance> {
        (
            (0usize..3, 0usize..2, 0usize..3, 0usize..4),
            (0usize..3, 0usize..3, 0usize..3, 0usize..4),
            proptest::collection::vec((0usize..3, 0usize..2), 0..3),
            any::<u128>(),
        )
            .prop_map(
                |((acct, region, zone, state), (ty, img, ip, name), tags, uuid)| {
                    let states = [
                        nubis_core::InstanceState::Running,
                        nubis_core::InstanceState::Stopped,
                        nubis_core::InstanceState::Rebooting,
                        nubis_core::InstanceState::Terminated,
                    ];
                    let mut i = nubis_core::rules::fixture::inst(states[state]);
                    i.uuid = Uuid::from_u128(uuid);
                    i.tencent_id = format!("ins-{uuid:x}");
                    i.aliyun_id = format!("i-{uuid:x}");
                    i.account = ["a", "b", "c"][acct].into();
                    i.region = ["r1", "r2"][region].into();
                    i.zone = format!("z{zone}");
                    // One type of the catalogue: its vCPUs and memory count in quota usage.
                    i.instance_type = match ty {
                        2 => "S5.MEDIUM4".into(),
                        _ => format!("t{ty}"),
                    };
                    i.project = (name == 3).then(|| "p1".into());
                    i.image_id = format!("img{img}");
                    i.private_ip = format!("10.0.0.{ip}");
                    i.name = format!("n{name}");
                    i.project_id = (ty % 2) as i64;
                    i.key_ids = vec![format!("k{img}")];
                    i.security_group_ids = vec![format!("sg{zone}"), format!("sg{ty}")];
                    i.tags = tags
                        .into_iter()
                        .map(|(k, v)| (format!("k{k}"), format!("v{v}")))
                        .collect();
                    i
                },
            )
    }

    fn arb_clause() -> impl Strategy<Value = Clause> {
        let few = |prefix: &'static str, n: usize| {
            proptest::collection::vec((0..n).prop_map(move |k| format!("{prefix}{k}")), 0..3)
        };
        prop_oneof![
            proptest::collection::vec(0usize..4, 1..3).prop_map(|v| Clause::states(
                v.into_iter().map(|k| [
                    nubis_core::InstanceState::Running,
                    nubis_core::InstanceState::Stopped,
                    nubis_core::InstanceState::Rebooting,
                    nubis_core::InstanceState::Pending,
                ][k])
            )),
            few("z", 4).prop_map(|v| Clause::Facet(Facet::Zone, v)),
            few("t", 3).prop_map(|v| Clause::Facet(Facet::InstanceType, v)),
            few("img", 3).prop_map(|v| Clause::Facet(Facet::Image, v)),
            few("", 2).prop_map(|v| Clause::Facet(Facet::Project, v)),
            Just(Clause::Facet(Facet::Any, vec![String::new()])),
            few("10.0.0.", 3).prop_map(|v| Clause::Lookup(Lookup::PrivateIp, v)),
            few("n", 4).prop_map(|v| Clause::Lookup(Lookup::Name, v)),
            few("k", 3).prop_map(|v| Clause::Lookup(Lookup::TagKey, v)),
            (0usize..3, 0usize..2).prop_map(|(k, v)| Clause::Lookup(
                Lookup::Tag,
                vec![nubis_core::select::tag_term(
                    &format!("k{k}"),
                    &format!("v{v}")
                )]
            )),
            few("k", 3).prop_map(|v| Clause::Facet(Facet::KeyPair, v)),
            few("sg", 3).prop_map(|v| Clause::Facet(Facet::SecurityGroup, v)),
            few("v", 3).prop_map(|v| Clause::Lookup(Lookup::TagValue, v)),
            proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(vec!["n", "1", "n2", "x", ""])
                        .prop_map(|t| NameMatch::Contains(t.into())),
                    proptest::sample::select(vec!["n*", "*1", "n2", "*", "x*"])
                        .prop_map(|t| NameMatch::Wildcard(t.into())),
                ],
                0..3
            )
            .prop_map(Clause::Name),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever was put, replaced and removed, a selection answers what a scan of every
        /// instance answers: the same total, the same page, newest first.
        #[test]
        fn select_answers_as_a_scan(
            puts in proptest::collection::vec(arb_instance(), 1..60),
            changes in proptest::collection::vec((0usize..60, arb_instance(), any::<bool>()), 0..40),
            clauses in proptest::collection::vec(arb_clause(), 0..3),
            region in proptest::option::of(0usize..2),
            who in 0usize..4,
            with_rest in any::<bool>(),
            offset in 0usize..20,
            limit in 1usize..10,
        ) {
            let mut t = Inner::default();
            let mut ids = Vec::new();
            for i in puts {
                ids.push(i.uuid);
                t.put(&i);
            }
            for (k, mut i, remove) in changes {
                let id = ids[k % ids.len()];
                if remove {
                    t.remove(&id);
                } else {
                    i.uuid = id;
                    // External IDs never change.
                    if let Some(old) = t.get(&id) {
                        i.tencent_id = old.tencent_id.clone();
                        i.aliyun_id = old.aliyun_id.clone();
                    }
                    t.put(&i);
                }
            }
            let p = Principal {
                account: ["a", "b", "c", ""][who].into(),
                is_admin: who == 3,
                ..Default::default()
            };
            let sel = Selection {
                region: region.map(|r| ["r1", "r2"][r].to_string()),
                clauses,
            };
            let odd = |i: &Instance| i.uuid.as_u128() % 2 == 1;
            let rest: Option<&dyn Fn(&Instance) -> bool> = with_rest.then_some(&odd);
            let (total, page) = t.select(&p, &sel, rest, offset, limit);
            let all: Vec<Instance> = t
                .values()
                .rev()
                .filter(|i| crate::Engine::visible(&p, i) && sel.matches(i))
                .filter(|i| rest.is_none_or(|r| r(i)))
                .collect();
            prop_assert_eq!(total, all.len());
            let want: Vec<Uuid> = all.iter().skip(offset).take(limit).map(|i| i.uuid).collect();
            let got: Vec<Uuid> = page.iter().map(|i| i.uuid).collect();
            prop_assert_eq!(got, want);
            // After a marker: the answers that follow it; a marker that is no answer: None.
            let marker = ids[offset % ids.len()];
            let after = t.select_after(&p, &sel, rest, Some(marker), limit);
            match all.iter().position(|i| i.uuid == marker) {
                None => prop_assert!(after.is_none()),
                Some(k) => {
                    let want: Vec<Uuid> = all.iter().skip(k + 1).take(limit).map(|i| i.uuid).collect();
                    let got: Vec<Uuid> = after.unwrap_or_default().iter().map(|i| i.uuid).collect();
                    prop_assert_eq!(got, want);
                }
            }
            // Quota usage as the table keeps it is what a scan of the listed instances counts.
            for (a, project) in [("a", None), ("b", None), ("c", None), ("a", Some("p1"))] {
                let mut want = QuotaUsage::default();
                let counted = |i: &&Instance| {
                    i.state.is_listed()
                        && i.account == a
                        && project.is_none_or(|p| i.project.as_deref() == Some(p))
                };
                for i in t.values().collect::<Vec<_>>().iter().filter(counted) {
                    want.count_instance(i.type_facts(), false);
                }
                let got = t.usage(|acc, p, _| acc == a && project.is_none_or(|want| p == Some(want)));
                prop_assert_eq!(
                    (got.instances, got.cores, got.ram_mib),
                    (want.instances, want.cores, want.ram_mib)
                );
            }
            // A key pair is in use exactly when a listed instance holds it.
            for k in ["k0", "k1", "k2", "k9"] {
                let held = t.values().any(|i| i.state.is_listed() && i.key_ids.iter().any(|x| x == k));
                prop_assert_eq!(t.uses(Facet::KeyPair, k), held);
            }
            let first: Vec<Uuid> = t.select_after(&p, &sel, rest, None, limit)
                .unwrap_or_default().iter().map(|i| i.uuid).collect();
            let want: Vec<Uuid> = all.iter().take(limit).map(|i| i.uuid).collect();
            prop_assert_eq!(first, want);
        }
    }

    #[test]
    fn appends_fill_chunks_and_split_in_the_middle() {
        let mut s = Chunks::default();
        for x in (0..5000).map(|x| x * 2) {
            s.insert(x);
        }
        assert_eq!(s.chunks.len(), 5000_usize.div_ceil(CHUNK));
        for x in 0..2000 {
            s.insert(2 * x + 1);
        }
        assert!(
            s.chunks
                .iter()
                .all(|c| !c.is_empty() && c.len() <= 2 * CHUNK)
        );
        assert_eq!(s.desc(0).count(), 7000);
        assert_eq!(s.desc(6999).collect::<Vec<_>>(), vec![0]);
        assert_eq!(s.desc(7000).count(), 0);
    }
}

/// What the table holds in memory per instance, counted by a test allocator (issue 16's
/// budget: ≤ 1.5 KB an instance for the whole server).
#[cfg(test)]
mod memory {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        /// Bytes allocated and not freed by this thread (each test counts on its own).
        static LIVE: Cell<isize> = const { Cell::new(0) };
    }

    struct Counting;

    // SAFETY: every call is passed on to the system allocator unchanged; the count is a
    // thread-local integer (no allocation).
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let _ = LIVE.try_with(|c| c.set(c.get() + l.size() as isize));
            // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
            unsafe { System.alloc(l) }
        }

        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            let _ = LIVE.try_with(|c| c.set(c.get() - l.size() as isize));
            // SAFETY: `p` was allocated by `alloc` above with this layout.
            unsafe { System.dealloc(p, l) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// An instance as the benchmark's fleet holds them (docs/fleet-index.md): made through
    /// RunInstances, 100 to a batch sharing a name, a key pair each, a password.
    fn bench_like(n: u32) -> Instance {
        let mut i = nubis_core::rules::fixture::inst(nubis_core::InstanceState::Running);
        i.uuid = Uuid::from_u128(u128::from(n) * 0x9e37_79b9_7f4a_7c15 + 1);
        i.tencent_id = format!("ins-{n:08x}");
        i.aliyun_id = format!("i-{n:020x}");
        i.account = "admin".into();
        i.name = format!("bench-{}", n / 100);
        i.host_name = format!("VM-100-{}-{}", n / 256 % 256, n % 256);
        i.private_ip = format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
        i.system_disk.id = format!("disk-{n:08x}");
        i.key_ids = vec!["skey-hwhv104a".into()];
        i.latest_op = Some(nubis_core::LatestOp {
            action: nubis_core::Action::Create,
            state: nubis_core::OpState::Success,
            request_id: format!("01A242C8-D9F0-754D-A2D3-{n:012X}"),
            error: None,
        });
        i.flavor = nubis_core::catalog::instance_type("S5.SMALL2").cloned();
        i.image_os_name = "TencentOS Server 3.1 (TK4)".into();
        i.image_user = "root".into();
        i
    }

    #[test]
    fn an_instance_costs_the_table_less_than_700_bytes() {
        const N: u32 = 20_000;
        let instances: Vec<Instance> = (0..N).map(bench_like).collect();
        let before = LIVE.with(Cell::get);
        let mut t = Inner::default();
        for i in &instances {
            t.put(i);
        }
        let per = (LIVE.with(Cell::get) - before) / N as isize;
        eprintln!("the table holds {per} bytes an instance");
        assert!(per < 700, "{per} bytes an instance");
        assert_eq!(t.get(&instances[7].uuid).as_deref(), Some(&instances[7]));
    }
}
