//! What the two backends share: the JSON form of records, the error of an unreachable store
//! and the hand-off of writes to the backend's single writer (see docs/postgres.md).

use crate::{StoreError, Write};
use tokio::sync::oneshot;

/// A batch of writes for the writer, and where its outcome goes.
pub(crate) type Job = (Vec<Write>, oneshot::Sender<Result<(), StoreError>>);

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialize")
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
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
    let (reply, rx) = oneshot::channel();
    if !send((writes, reply)) {
        return Err(StoreError::Unavailable("writer stopped".into()));
    }
    rx.await
        .map_err(|_| StoreError::Unavailable("writer stopped".into()))?
}
