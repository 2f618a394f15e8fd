//! Migration records (Nova's os-migrations, docs/resize.md): every resize is one, whichever
//! dialect asked for it. The record is the resize operation; its status is derived here from
//! that operation and what followed it on the same instance, so every view agrees.

use crate::op::Outcome;
use crate::{Action, OpState, Operation};

/// Nova's migration statuses that a resize passes through (`nova/objects/migration.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationStatus {
    /// Accepted, no step run yet.
    PreMigrating,
    Migrating,
    /// Resized, awaiting confirmation (the server is in VERIFY_RESIZE).
    Finished,
    Confirming,
    Confirmed,
    Reverting,
    Reverted,
    Error,
}

impl MigrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreMigrating => "pre-migrating",
            Self::Migrating => "migrating",
            Self::Finished => "finished",
            Self::Confirming => "confirming",
            Self::Confirmed => "confirmed",
            Self::Reverting => "reverting",
            Self::Reverted => "reverted",
            Self::Error => "error",
        }
    }
}

/// The status of the migration that `resize` started, and when it last changed (`None`:
/// never since it was created). `later`: the operations on the same instance accepted after
/// it, oldest first. A resize that needs no confirmation (Tencent's and Alibaba's, Nova's
/// own when the server is resized in place) is confirmed when it succeeds; one awaiting
/// confirmation is ended by the first confirmation, revert or delete that follows (Nova
/// confirms a resize when the server is deleted).
pub fn migration_status(resize: &Operation, later: &[Operation]) -> (MigrationStatus, Option<i64>) {
    let changed = resize.finished_at_ms;
    match resize.state {
        OpState::Operating if resize.steps_done == 0 => {
            return (MigrationStatus::PreMigrating, None);
        }
        OpState::Operating => return (MigrationStatus::Migrating, None),
        OpState::Failed => return (MigrationStatus::Error, changed),
        OpState::Success => {}
    }
    if resize.settlement().success != Outcome::VerifyResize {
        return (MigrationStatus::Confirmed, changed);
    }
    let ended = later.iter().find(|o| {
        matches!(
            o.action,
            Action::ConfirmResize
                | Action::RevertResize
                | Action::Terminate
                | Action::SoftDelete
                | Action::Resize
        )
    });
    let Some(end) = ended else {
        return (MigrationStatus::Finished, changed);
    };
    let at = end.finished_at_ms.or(Some(end.created_at_ms));
    let status = match (end.action, end.state) {
        (_, OpState::Failed) => MigrationStatus::Error,
        (Action::RevertResize, OpState::Operating) => MigrationStatus::Reverting,
        (Action::RevertResize, OpState::Success) => MigrationStatus::Reverted,
        (_, OpState::Operating) => MigrationStatus::Confirming,
        (_, OpState::Success) => MigrationStatus::Confirmed,
    };
    (status, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InstanceState;
    use crate::op::Settle;

    fn op(action: Action, state: OpState, at: i64) -> Operation {
        Operation {
            id: uuid::Uuid::from_u128(at as u128),
            request_id: format!("req-{at}"),
            account: "a".into(),
            instance: uuid::Uuid::nil(),
            action,
            steps: Vec::new(),
            steps_done: 1,
            display: None,
            from_state: InstanceState::Running,
            state,
            attempts: 1,
            error: None,
            created_at_ms: at,
            finished_at_ms: (state != OpState::Operating).then_some(at + 5),
            settle: None,
            user_id: None,
            project_id: None,
        }
    }

    fn verify(state: OpState) -> Operation {
        let mut o = op(Action::Resize, state, 100);
        o.settle = Some(Settle {
            success: Outcome::VerifyResize,
            failure: Outcome::Observed,
        });
        o
    }

    #[test]
    fn a_resize_runs_then_waits_for_its_confirmation() {
        let mut r = verify(OpState::Operating);
        r.steps_done = 0;
        assert_eq!(migration_status(&r, &[]).0, MigrationStatus::PreMigrating);
        r.steps_done = 2;
        assert_eq!(migration_status(&r, &[]).0, MigrationStatus::Migrating);
        let r = verify(OpState::Success);
        assert_eq!(
            migration_status(&r, &[]),
            (MigrationStatus::Finished, Some(105))
        );
        // What came after without ending it (a reboot) leaves it waiting.
        let reboot = op(Action::Reboot, OpState::Success, 200);
        assert_eq!(migration_status(&r, &[reboot]).0, MigrationStatus::Finished);
        let failed = verify(OpState::Failed);
        assert_eq!(migration_status(&failed, &[]).0, MigrationStatus::Error);
    }

    #[test]
    fn the_first_confirmation_revert_or_delete_ends_it() {
        let r = verify(OpState::Success);
        let cases = [
            (
                Action::ConfirmResize,
                OpState::Operating,
                MigrationStatus::Confirming,
            ),
            (
                Action::ConfirmResize,
                OpState::Success,
                MigrationStatus::Confirmed,
            ),
            (
                Action::RevertResize,
                OpState::Operating,
                MigrationStatus::Reverting,
            ),
            (
                Action::RevertResize,
                OpState::Success,
                MigrationStatus::Reverted,
            ),
            (
                Action::RevertResize,
                OpState::Failed,
                MigrationStatus::Error,
            ),
            (
                Action::Terminate,
                OpState::Success,
                MigrationStatus::Confirmed,
            ),
        ];
        for (action, state, want) in cases {
            let end = op(action, state, 300);
            let later = [op(Action::Reboot, OpState::Success, 200), end];
            let (status, at) = migration_status(&r, &later);
            assert_eq!(status, want, "{action:?} {state:?}");
            assert_eq!(
                at,
                Some(if state == OpState::Operating {
                    300
                } else {
                    305
                })
            );
        }
        // Only the first counts: a revert after a confirmation is another migration's.
        let later = [
            op(Action::ConfirmResize, OpState::Success, 200),
            op(Action::RevertResize, OpState::Success, 300),
        ];
        assert_eq!(migration_status(&r, &later).0, MigrationStatus::Confirmed);
    }

    #[test]
    fn a_resize_without_confirmation_is_confirmed_when_done() {
        let r = op(Action::Resize, OpState::Success, 100);
        let revert = op(Action::RevertResize, OpState::Success, 300);
        assert_eq!(
            migration_status(&r, &[revert]),
            (MigrationStatus::Confirmed, Some(105))
        );
    }

    #[test]
    fn status_names_are_novas() {
        assert_eq!(MigrationStatus::PreMigrating.as_str(), "pre-migrating");
        assert_eq!(MigrationStatus::Finished.as_str(), "finished");
        assert_eq!(MigrationStatus::Reverted.as_str(), "reverted");
    }
}
