//! The guest's console output (Alibaba GetInstanceConsoleOutput, Nova os-getConsoleOutput):
//! a read of the driver's facts for an instance the caller may see.

use crate::{Engine, visible_or_not_found};
use nubis_core::{DomainError, Principal};
use nubis_driver::ConsoleLog;
use uuid::Uuid;

impl Engine {
    /// The console output of instance `id`. An instance the driver holds no guest for yet
    /// (still being provisioned) has an empty console, dated at its creation.
    pub fn console_output(&self, p: &Principal, id: Uuid) -> Result<ConsoleLog, DomainError> {
        let created_at_ms = {
            let fleet = self.inner.fleet.lock();
            visible_or_not_found(fleet.instances.get(&id), p, id)?.created_at_ms
        };
        Ok(self.inner.driver.console_output(id).unwrap_or(ConsoleLog {
            text: String::new(),
            updated_at_ms: created_at_ms,
        }))
    }
}
