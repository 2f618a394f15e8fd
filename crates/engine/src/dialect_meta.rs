//! Small durable records a dialect keeps for itself (Nova's aggregates and service states,
//! docs/nova-operator.md): rows of the store's meta table under one namespace, held in
//! memory for reads and written through before a change is visible.

use crate::Engine;
use nubis_core::DomainError;
use nubis_store::Write;

/// The meta-table prefix of dialect records; keys outside it (the admin password hash,
/// Keystone users, KMS keys) cannot be reached through this API.
pub(crate) const NAMESPACE: &str = "dialect:";

impl Engine {
    /// Every dialect record whose key starts with `prefix`, in key order.
    pub fn dialect_records(&self, prefix: &str) -> Vec<(String, String)> {
        self.inner
            .fleet
            .lock()
            .dialect_meta
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// One dialect record.
    pub fn dialect_record(&self, key: &str) -> Option<String> {
        self.inner.fleet.lock().dialect_meta.get(key).cloned()
    }

    /// Write (`Some`) or forget (`None`) dialect records in one commit; memory changes only
    /// once the store has them.
    pub async fn put_dialect_records(
        &self,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<(), DomainError> {
        let writes = changes
            .iter()
            .map(|(k, v)| match v {
                Some(value) => Write::Meta {
                    key: format!("{NAMESPACE}{k}"),
                    value: value.clone(),
                },
                None => Write::DeleteMeta(format!("{NAMESPACE}{k}")),
            })
            .collect();
        self.commit(writes).await?;
        let mut fleet = self.inner.fleet.lock();
        for (k, v) in changes {
            match v {
                Some(value) => fleet.dialect_meta.insert(k, value),
                None => fleet.dialect_meta.remove(&k),
            };
        }
        Ok(())
    }
}
