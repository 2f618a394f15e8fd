//! What the two backends share: the JSON form of records, the error of an unreachable store
//! and the hand-off of writes to the backend's single writer (see docs/postgres.md).

use crate::{StoreError, Write};
use nubis_core::audit::AuditQuery;
use tokio::sync::oneshot;

/// Upper bound on writes merged into one transaction.
const MAX_GROUP: usize = 512;

/// A write as the backend's writer takes it: beside the JSON document it stores, encoded on
/// the caller's thread. The writer is the store's one serial section (docs/postgres.md):
/// it only binds and commits; encoding there was a seventh of its time at a million.
pub(crate) struct Prepared {
    pub(crate) write: Write,
    pub(crate) doc: String,
}

/// What the writer hands back: the outcome, and the batch itself, so that it is dropped on
/// the caller's thread too.
pub(crate) type Reply = (Result<(), StoreError>, Vec<Prepared>);

/// A batch of writes for the writer, and where its outcome goes.
pub(crate) type Job = (Vec<Prepared>, oneshot::Sender<Reply>);

/// The JSON document `w` stores (empty for a write that stores none).
fn document(w: &Write) -> String {
    match w {
        Write::Account(a) => json(a),
        Write::Quota(q) => json(q),
        Write::SubUser(u) => json(u),
        Write::Policy(p) => json(p),
        Write::AccessKey(k) => json(k),
        Write::Instance(i) => json(i),
        Write::Operation(o) => json(o),
        Write::KeyPair(k) => json(k),
        Write::PlacementGroup(g) => json(g),
        Write::Image(i) => json(i),
        Write::SystemEvent(e) => json(e),
        Write::InstanceType(f) => json(f),
        Write::Guest { data, .. } => data.to_string(),
        Write::InjectedFiles { files, .. } => json(files),
        Write::AuditEvent(e) => json(e),
        Write::Role(r) => json(r),
        Write::MfaDevice(d) => json(d),
        Write::MfaFlags(f) => json(f),
        Write::TempCredential(c) => json(c),
        Write::ClientToken { instances, .. } => crate::cluster::ids_json(instances),
        Write::DeleteAccount(_)
        | Write::DeleteQuota(_)
        | Write::DeleteSubUser(_)
        | Write::DeletePolicy(_)
        | Write::Attach(_)
        | Write::Detach(_)
        | Write::DeleteAccessKey(_)
        | Write::DeleteKeyPair(_)
        | Write::DeletePlacementGroup(_)
        | Write::DeleteInstanceType(_)
        | Write::DeleteGuest(_)
        | Write::UserData { .. }
        | Write::DeleteUserData(_)
        | Write::DeleteInjectedFiles(_)
        | Write::Meta { .. }
        | Write::DeleteMeta(_)
        | Write::DeleteRole(_)
        | Write::DeleteMfaDevice(_)
        | Write::SweepTempCredentials(_)
        | Write::Keystone { .. }
        | Write::DeleteKeystone { .. }
        | Write::Lease { .. }
        | Write::Fence { .. }
        | Write::EndLease(_) => String::new(),
    }
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// An instance's generation as the column stores it (SQL integers are signed).
pub(crate) fn generation(i: &nubis_core::Instance) -> i64 {
    i64::try_from(i.generation).unwrap_or(i64::MAX)
}

/// The message of a refused instance write: the stored record is not the one before it.
pub(crate) fn stale(i: &nubis_core::Instance) -> String {
    format!(
        "instance {} changed meanwhile: generation {} does not follow the stored one",
        i.uuid, i.generation
    )
}

/// An image's generation as the column stores it.
pub(crate) fn image_generation(i: &nubis_core::images::Image) -> i64 {
    i64::try_from(i.generation).unwrap_or(i64::MAX)
}

/// The message of a refused image write.
pub(crate) fn stale_image(i: &nubis_core::images::Image) -> String {
    format!(
        "image {} changed meanwhile: generation {} does not follow the stored one",
        i.id, i.generation
    )
}

/// A system event's generation as the column stores it.
pub(crate) fn event_generation(e: &nubis_core::events::SystemEvent) -> i64 {
    i64::try_from(e.generation).unwrap_or(i64::MAX)
}

/// The message of a refused system event write.
pub(crate) fn stale_event(e: &nubis_core::events::SystemEvent) -> String {
    format!(
        "system event {} changed meanwhile: generation {} does not follow the stored one",
        e.id, e.generation
    )
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialize")
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Rows decoded on every core, a chunk at a time as they are read: a million instance records
/// at start-up are seconds of JSON on one core, and a gigabyte of text if all were read first.
/// In the rows' order; the first error wins.
pub(crate) fn decode_rows<T: Send>(
    rows: impl Iterator<Item = Result<String, StoreError>>,
    decode: impl Fn(&str) -> Result<T, StoreError> + Sync,
) -> Result<Vec<T>, StoreError> {
    const CHUNK: usize = 32_768;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut rows = rows.peekable();
    let mut all = Vec::new();
    while rows.peek().is_some() {
        let chunk = rows
            .by_ref()
            .take(CHUNK)
            .collect::<Result<Vec<String>, StoreError>>()?;
        if threads < 2 || chunk.len() < 4096 {
            for r in &chunk {
                all.push(decode(r)?);
            }
            continue;
        }
        let decode = &decode;
        let parts: Vec<Result<Vec<T>, StoreError>> = std::thread::scope(|s| {
            let running: Vec<_> = chunk
                .chunks(chunk.len().div_ceil(threads))
                .map(|part| s.spawn(move || part.iter().map(|r| decode(r)).collect()))
                .collect();
            running
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err(StoreError::Corrupt("decoding panicked".into())))
                })
                .collect()
        });
        for part in parts {
            all.extend(part?);
        }
    }
    Ok(all)
}

/// `Store::commit` of both backends: hands `writes` to the writer through `send` (false when
/// the writer is gone) and waits for it to commit them in one transaction.
pub(crate) async fn commit(
    writes: Vec<Write>,
    send: impl FnOnce(Job) -> bool,
) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    let prepared = writes
        .into_iter()
        .map(|write| Prepared {
            doc: document(&write),
            write,
        })
        .collect();
    let (reply, rx) = oneshot::channel();
    if !send((prepared, reply)) {
        return Err(StoreError::Unavailable("writer stopped".into()));
    }
    let (outcome, _written) = rx
        .await
        .map_err(|_| StoreError::Unavailable("writer stopped".into()))?;
    outcome
}

/// The writer's group commit: `first`, then the jobs already queued (`next` returns `None`
/// when there is none), up to `MAX_GROUP` writes, for one transaction.
pub(crate) fn group(first: Job, mut next: impl FnMut() -> Option<Job>) -> Vec<Job> {
    let mut count = first.0.len();
    let mut jobs = vec![first];
    while count < MAX_GROUP {
        let Some(job) = next() else { break };
        count += job.0.len();
        jobs.push(job);
    }
    jobs
}

/// Tell every job of a committed group that its writes are durable.
pub(crate) fn committed(jobs: Vec<Job>) {
    for (writes, reply) in jobs {
        // A caller that stopped waiting still had its writes committed.
        let _ = reply.send((Ok(()), writes));
    }
}

/// The order of an audit page, the same in both dialects: time, then ID as the tie-break the
/// page cursor names.
pub(crate) fn audit_order(q: &AuditQuery) -> &'static str {
    if q.oldest_first {
        " ORDER BY time_ms ASC, id ASC"
    } else {
        " ORDER BY time_ms DESC, id DESC"
    }
}

/// The row limit of an audit page: one more than the page, so the caller knows whether
/// another page follows.
pub(crate) fn audit_limit(q: &AuditQuery) -> i64 {
    i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX)
}
