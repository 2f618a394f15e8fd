//! The plan of a request on one instance, case by case.

use super::*;
use crate::error::Unsupported;
use crate::model::OsFamily;
use crate::request::PasswordHash;
use crate::rules::fixture::{inst, locked};
use InstanceState as S;

fn reset(force: bool) -> ActionRequest {
    ActionRequest::ResetPassword {
        user: Some("root".into()),
        password: PasswordHash("$6$x".into()),
        rule: Default::default(),
        when_running: if force {
            WhenRunning::StopAndStart
        } else {
            WhenRunning::Refuse
        },
    }
}

/// Rescue as root in `mode`.
fn rescue(mode: StopMode) -> ActionRequest {
    ActionRequest::EnterRescue {
        user: Some("root".into()),
        password: PasswordHash("h".into()),
        rule: Default::default(),
        mode,
        image_id: None,
    }
}

fn soft_reboot() -> ActionRequest {
    ActionRequest::Reboot {
        mode: StopMode::Soft,
    }
}

#[test]
fn running_without_force_is_a_state_conflict() {
    let e = plan(&inst(S::Running), &reset(false), &PlanContext::default()).unwrap_err();
    assert!(matches!(
        e,
        DomainError::StateConflict {
            state: S::Running,
            ..
        }
    ));
}

#[test]
fn force_stop_wraps_change_in_stop_and_start() {
    let p = plan(&inst(S::Running), &reset(true), &PlanContext::default()).unwrap();
    assert_eq!(
        p.steps.first(),
        Some(&Step::PowerOff {
            mode: StopMode::SoftFirst
        })
    );
    assert_eq!(p.steps.last(), Some(&Step::PowerOn));
    let p = plan(&inst(S::Stopped), &reset(true), &PlanContext::default()).unwrap();
    assert_eq!(p.steps.len(), 1);
}

#[test]
fn lock_gives_mutex_or_in_progress_after_state() {
    let i = locked(S::Stopped, Action::ResetPassword);
    let e = plan(&i, &reset(false), &PlanContext::default()).unwrap_err();
    assert!(matches!(
        e,
        DomainError::OperationInProgress {
            same_action: true,
            ..
        }
    ));
    let e = plan(&i, &rescue(StopMode::Soft), &PlanContext::default()).unwrap_err();
    assert!(matches!(
        e,
        DomainError::OperationInProgress {
            same_action: false,
            ..
        }
    ));
    // The state error wins when the state forbids the action anyway.
    let e = plan(&i, &soft_reboot(), &PlanContext::default()).unwrap_err();
    assert!(matches!(
        e,
        DomainError::StateConflict {
            state: S::Stopped,
            ..
        }
    ));
}

#[test]
fn a_lock_stops_everything_but_maintenance() {
    let mut i = inst(S::Running);
    i.locked = Some(String::new());
    let e = plan(&i, &soft_reboot(), &PlanContext::default()).unwrap_err();
    assert!(matches!(e, DomainError::Locked { .. }));
    assert!(plan(&i, &ActionRequest::LiveMigrate, &PlanContext::default()).is_ok());
}

#[test]
fn restriction_wins_over_state() {
    let mut i = inst(S::Rebooting);
    i.restriction = Restriction::Frozen;
    assert!(matches!(
        plan(&i, &reset(true), &PlanContext::default()).unwrap_err(),
        DomainError::Restricted { .. }
    ));
}

#[test]
fn catalogue_kinds() {
    let mut i = inst(S::Running);
    i.os = OsFamily::Windows;
    let e = plan(
        &i,
        &ActionRequest::AssociateKeys {
            key_ids: vec![],
            when_running: WhenRunning::StopAndStart,
        },
        &PlanContext::default(),
    )
    .unwrap_err();
    assert!(matches!(
        e,
        DomainError::Unsupported {
            why: Unsupported::WindowsOs,
            ..
        }
    ));
    let mut i = inst(S::Running);
    i.instance_type = "SR1.MEDIUM4".into();
    let rescue = rescue(StopMode::Soft);
    assert!(matches!(
        plan(&i, &rescue, &PlanContext::default()).unwrap_err(),
        DomainError::Unsupported {
            why: Unsupported::ArmArchitecture,
            ..
        }
    ));
    let mut i = inst(S::Stopped);
    i.stop_charging = true;
    assert!(matches!(
        plan(&i, &rescue, &PlanContext::default()).unwrap_err(),
        DomainError::Unsupported {
            why: Unsupported::StoppedModeStopCharging,
            ..
        }
    ));
}

#[test]
fn rescue_from_running_stops_first() {
    let rescue = rescue(StopMode::Hard);
    let p = plan(&inst(S::Running), &rescue, &PlanContext::default()).unwrap();
    assert_eq!(
        p.steps[0],
        Step::PowerOff {
            mode: StopMode::Hard
        }
    );
    assert_eq!(p.display, Some(S::EnteringRescue));
    let p = plan(&inst(S::Stopped), &rescue, &PlanContext::default()).unwrap();
    assert_eq!(p.steps.len(), 1);
}

#[test]
fn delete_in_every_state_supersedes_the_operation_in_flight() {
    let ctx = PlanContext::default();
    for s in S::ALL {
        let i = locked(s, Action::Reboot);
        let got = plan(&i, &ActionRequest::Delete { admin: false }, &ctx);
        match deletion(s) {
            Deletion::Destroy => {
                let p = got.unwrap();
                assert_eq!(p.steps, vec![Step::Destroy], "{s:?}");
                assert!(p.supersedes && p.action == Action::Terminate, "{s:?}");
            }
            Deletion::AlreadyDeleting => assert!(got.unwrap().is_empty(), "{s:?}"),
            Deletion::Gone => assert!(matches!(got, Err(DomainError::NotFound { .. }))),
        }
    }
    // Nothing in flight: nothing superseded.
    let p = plan(
        &inst(S::Pending),
        &ActionRequest::Delete { admin: false },
        &ctx,
    )
    .unwrap();
    assert!(!p.supersedes);
    // Terminate keeps its state rules (Tencent, Alibaba).
    assert!(matches!(
        plan(
            &inst(S::Pending),
            &ActionRequest::Terminate { force: true },
            &ctx
        ),
        Err(DomainError::StateConflict { .. })
    ));
}

#[test]
fn an_owner_lock_refuses_delete_unless_admin() {
    let ctx = PlanContext::default();
    let mut i = inst(S::Running);
    i.locked = Some("why".into());
    assert!(matches!(
        plan(&i, &ActionRequest::Delete { admin: false }, &ctx),
        Err(DomainError::Locked { .. })
    ));
    assert!(plan(&i, &ActionRequest::Delete { admin: true }, &ctx).is_ok());
    assert!(matches!(
        plan(&i, &ActionRequest::Terminate { force: true }, &ctx),
        Err(DomainError::Locked { .. })
    ));
}

fn keys(when_running: WhenRunning) -> ActionRequest {
    ActionRequest::AssociateKeys {
        key_ids: vec![PublicKey {
            id: "skey-1".into(),
            key: "ssh-ed25519 AAAA".into(),
        }],
        when_running,
    }
}

/// Regression (issue 11): a next-boot change on a running instance was an operation of
/// the guest-change duration holding the lock; it is recorded at once, with no lock.
#[test]
fn next_boot_on_running_is_accepted_without_an_operation() {
    let ctx = PlanContext::default();
    for req in [
        keys(WhenRunning::NextBoot),
        ActionRequest::ResetPassword {
            user: Some("root".into()),
            password: PasswordHash("h".into()),
            rule: Default::default(),
            when_running: WhenRunning::NextBoot,
        },
    ] {
        let p = plan(&inst(S::Running), &req, &ctx).unwrap();
        assert_eq!(p.accept, Accept::NextBoot);
        assert_eq!(p.steps.len(), 1);
        // On a stopped instance it is an ordinary operation (the lock shows it running).
        let p = plan(&inst(S::Stopped), &req, &ctx).unwrap();
        assert_eq!(p.accept, Accept::Operation);
    }
    // A lock still refuses it, as any other change.
    let i = locked(S::Running, Action::Reboot);
    assert!(matches!(
        plan(&i, &keys(WhenRunning::NextBoot), &ctx).unwrap_err(),
        DomainError::OperationInProgress { .. }
    ));
    // Live changes (Nova) and ForceStop (Tencent) stay operations.
    for w in [WhenRunning::Live, WhenRunning::StopAndStart] {
        let p = plan(&inst(S::Running), &keys(w), &ctx).unwrap();
        assert_eq!(p.accept, Accept::Operation);
    }
}

/// Regression (issue 11): StartInstance right after CreateInstance (libcloud's
/// create_node) was refused in Pending; it joins the create.
#[test]
fn start_joins_a_create_that_leaves_the_instance_stopped() {
    let i = locked(S::Pending, Action::Create);
    let joining = PlanContext {
        create_leaves_stopped: true,
        ..PlanContext::default()
    };
    let p = plan(&i, &ActionRequest::Start, &joining).unwrap();
    assert_eq!(p.accept, Accept::JoinCreate);
    assert_eq!(p.steps, vec![Step::PowerOn]);
    // A create that boots anyway (RunInstances): Pending refuses the start.
    assert!(matches!(
        plan(&i, &ActionRequest::Start, &PlanContext::default()).unwrap_err(),
        DomainError::StateConflict {
            state: S::Pending,
            ..
        }
    ));
    // Only a start joins; a stop in Pending is still a state conflict.
    assert!(matches!(
        plan(
            &i,
            &ActionRequest::Stop {
                mode: StopMode::Soft,
                stop_charging: false
            },
            &joining
        )
        .unwrap_err(),
        DomainError::StateConflict { .. }
    ));
}

/// What accepting a plan changes on the record, and how it settles: plan data, per request.
#[test]
fn effects_and_settlement_are_in_the_plan() {
    let ctx = PlanContext::default();
    let key = |id: &str| PublicKey {
        id: id.into(),
        key: "ssh-ed25519 AAAA".into(),
    };
    let cases: Vec<(InstanceState, ActionRequest, Vec<Effect>)> = vec![
        (
            S::Running,
            ActionRequest::Stop {
                mode: StopMode::Soft,
                stop_charging: true,
            },
            vec![Effect::StopCharging(true)],
        ),
        (
            S::Stopped,
            ActionRequest::Start,
            vec![Effect::StopCharging(false)],
        ),
        (
            S::Stopped,
            ActionRequest::AssociateKeys {
                key_ids: vec![key("skey-1")],
                when_running: WhenRunning::Refuse,
            },
            vec![Effect::AddKeys(vec!["skey-1".into()])],
        ),
        (
            S::Stopped,
            ActionRequest::DisassociateKeys {
                key_ids: vec![key("skey-1")],
                when_running: WhenRunning::Refuse,
            },
            vec![Effect::RemoveKeys(vec!["skey-1".into()])],
        ),
        (
            S::Running,
            ActionRequest::Rebuild {
                image: crate::images::builtin_facts("img-win22x64").unwrap(),
                password: None,
                rule: Default::default(),
                key_ids: Some(vec![key("skey-2")]),
                when_running: WhenRunning::StopAndStart,
                system_disk_gib: None,
            },
            vec![
                Effect::SetImage(crate::images::builtin_facts("img-win22x64").unwrap()),
                Effect::SetKeys(vec!["skey-2".into()]),
            ],
        ),
        (
            S::Running,
            ActionRequest::Reboot {
                mode: StopMode::Soft,
            },
            vec![],
        ),
    ];
    for (state, req, effects) in cases {
        let p = plan(&inst(state), &req, &ctx).unwrap();
        assert_eq!(p.effects, effects, "{req:?}");
        assert_eq!(p.settle, crate::op::Settle::for_action(req.action()));
    }
    let p = plan(
        &inst(S::Stopped),
        &ActionRequest::Terminate { force: false },
        &ctx,
    )
    .unwrap();
    assert_eq!(p.settle.state(true, None, S::Stopped), S::Terminated);
    // Effects on the record: keys associated once, removed, replaced.
    let mut i = inst(S::Stopped);
    Effect::AddKeys(vec!["k1".into(), "k2".into()]).apply(&mut i);
    Effect::AddKeys(vec!["k2".into()]).apply(&mut i);
    assert_eq!(i.key_ids, ["k1", "k2"]);
    Effect::RemoveKeys(vec!["k1".into()]).apply(&mut i);
    assert_eq!(i.key_ids, ["k2"]);
    Effect::SetKeys(vec!["k3".into()]).apply(&mut i);
    assert_eq!(i.key_ids, ["k3"]);
}

/// Without a user the password is set for each instance's image's administrator; rescue
/// logs in as root; a rebuild as the new image's administrator.
#[test]
fn users_default_per_instance_and_image() {
    let ctx = PlanContext::default();
    let mut i = inst(S::Stopped);
    i.image_id = "img-ubt22x64".into();
    let req = ActionRequest::ResetPassword {
        user: None,
        password: PasswordHash("h".into()),
        when_running: WhenRunning::Refuse,
        rule: Default::default(),
    };
    assert_eq!(
        plan(&i, &req, &ctx).unwrap().steps,
        vec![Step::SetPassword {
            user: "ubuntu".into(),
            password_hash: "h".into()
        }]
    );
    let rescue = ActionRequest::EnterRescue {
        user: None,
        password: PasswordHash("h".into()),
        rule: Default::default(),
        mode: StopMode::Soft,
        image_id: None,
    };
    assert!(matches!(
        &plan(&i, &rescue, &ctx).unwrap().steps[..],
        [Step::BootRescue { user, .. }] if user == "root"
    ));
    let rebuild = ActionRequest::Rebuild {
        image: crate::images::builtin_facts("img-win22x64").unwrap(),
        password: None,
        rule: Default::default(),
        key_ids: None,
        when_running: WhenRunning::StopAndStart,
        system_disk_gib: None,
    };
    assert!(matches!(
        &plan(&i, &rebuild, &ctx).unwrap().steps[..],
        [Step::Reprovision { user, keys: None, .. }] if user == "Administrator"
    ));
}

/// A rebuild that needs a stopped instance (Alibaba ReplaceSystemDisk) is refused on a running
/// one; one that may stop it (Nova, Tencent ResetInstance) stops, reinstalls and starts it.
#[test]
fn rebuild_on_running_follows_when_running() {
    let ctx = PlanContext::default();
    let rebuild = |when_running| ActionRequest::Rebuild {
        image: crate::images::builtin_facts("img-ubt22x64").unwrap(),
        password: None,
        rule: Default::default(),
        key_ids: None,
        when_running,
        system_disk_gib: None,
    };
    assert!(matches!(
        plan(&inst(S::Running), &rebuild(WhenRunning::Refuse), &ctx),
        Err(DomainError::StateConflict {
            state: S::Running,
            action: Action::Rebuild,
            ..
        })
    ));
    assert!(matches!(
        &plan(&inst(S::Stopped), &rebuild(WhenRunning::Refuse), &ctx)
            .unwrap()
            .steps[..],
        [Step::Reprovision { .. }]
    ));
    assert!(matches!(
        &plan(&inst(S::Running), &rebuild(WhenRunning::StopAndStart), &ctx)
            .unwrap()
            .steps[..],
        [
            Step::PowerOff { .. },
            Step::Reprovision { .. },
            Step::PowerOn
        ]
    ));
}

fn resize(to: &str, when_running: WhenRunning, then: ResizeEnd) -> ActionRequest {
    ActionRequest::Resize {
        instance_type: to.into(),
        when_running,
        then,
    }
}

fn resize_step(name: &str, cpu: u32, gib: u32) -> Step {
    Step::Resize {
        instance_type: name.into(),
        cpu,
        memory_mib: gib * 1024,
    }
}

#[test]
fn nova_resize_keeps_the_power_and_awaits_confirmation() {
    let ctx = PlanContext::default();
    let req = resize("S5.LARGE8", WhenRunning::StopAndStart, ResizeEnd::Verify);
    let p = plan(&inst(S::Running), &req, &ctx).unwrap();
    assert_eq!(
        p.steps,
        [
            Step::PowerOff {
                mode: StopMode::SoftFirst
            },
            resize_step("S5.LARGE8", 4, 8),
            Step::PowerOn
        ]
    );
    assert_eq!(p.shows(S::Running), S::Resizing);
    assert_eq!(p.settle.success, Outcome::VerifyResize);
    assert_eq!(
        p.effects,
        [Effect::SetType {
            to: catalog::instance_type("S5.LARGE8").unwrap().clone(),
            remember: Some(catalog::instance_type("S5.MEDIUM4").unwrap().clone())
        }]
    );
    // A stopped server is resized stopped and stays so.
    let p = plan(&inst(S::Stopped), &req, &ctx).unwrap();
    assert_eq!(p.steps, [resize_step("S5.LARGE8", 4, 8)]);
    let mut i = inst(S::Stopped);
    for e in &p.effects {
        e.apply(&mut i);
    }
    assert_eq!(
        (i.instance_type.as_str(), i.resize_from.as_deref()),
        ("S5.LARGE8", Some("S5.MEDIUM4"))
    );
}

#[test]
fn tencent_resize_starts_the_instance_and_needs_force_stop_when_running() {
    let ctx = PlanContext::default();
    let refuse = resize("S5.SMALL2", WhenRunning::Refuse, ResizeEnd::Start);
    assert!(matches!(
        plan(&inst(S::Running), &refuse, &ctx),
        Err(DomainError::StateConflict {
            state: S::Running,
            ..
        })
    ));
    let p = plan(&inst(S::Stopped), &refuse, &ctx).unwrap();
    assert_eq!(p.steps, [resize_step("S5.SMALL2", 1, 2), Step::PowerOn]);
    assert_eq!(p.display, None);
    assert_eq!(p.settle, Settle::for_action(Action::Resize));
    // Nothing to go back to: the change is final.
    assert_eq!(
        p.effects,
        [Effect::SetType {
            to: catalog::instance_type("S5.SMALL2").unwrap().clone(),
            remember: None
        }]
    );
    let force = resize("S5.SMALL2", WhenRunning::StopAndStart, ResizeEnd::Start);
    let p = plan(&inst(S::Running), &force, &ctx).unwrap();
    assert_eq!(p.steps.len(), 3);
    // Alibaba: stopped only, stays stopped.
    let ali = resize("S5.SMALL2", WhenRunning::Refuse, ResizeEnd::AsBefore);
    let p = plan(&inst(S::Stopped), &ali, &ctx).unwrap();
    assert_eq!(p.steps, [resize_step("S5.SMALL2", 1, 2)]);
}

/// The plan of a resize of a stopped instance to `t`.
fn resize_stopped(ctx: &PlanContext<'_>, t: &str) -> Result<Plan, DomainError> {
    plan(
        &inst(S::Stopped),
        &resize(t, WhenRunning::Refuse, ResizeEnd::AsBefore),
        ctx,
    )
}

#[test]
fn resize_targets_are_checked_against_the_catalogue() {
    let ctx = PlanContext::default();
    let to = |t: &str| resize_stopped(&ctx, t);
    assert!(matches!(
        to("S5.NOPE"),
        Err(DomainError::NotFound {
            kind: ResourceKind::InstanceType,
            ..
        })
    ));
    assert!(matches!(
        to("S5.MEDIUM4"),
        Err(DomainError::SameInstanceType { .. })
    ));
    for t in ["SR1.MEDIUM4", "HCCS5.MEDIUM4", "BMS5.LARGE8"] {
        assert!(
            matches!(to(t), Err(DomainError::InstanceTypeNotAllowed { .. })),
            "{t}"
        );
    }
    // The instance's own type: bare metal and special types are not resized.
    let mut bm = inst(S::Stopped);
    bm.instance_type = "BMS5.LARGE8".into();
    let e = plan(
        &bm,
        &resize("S5.SMALL2", WhenRunning::Refuse, ResizeEnd::AsBefore),
        &ctx,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        DomainError::Unsupported {
            why: Unsupported::InstanceKind,
            ..
        }
    ));
}

#[test]
fn a_resize_leaves_the_image_the_memory_it_needs() {
    let image = crate::images::ImageFacts {
        id: "img-big".into(),
        os: OsFamily::Linux,
        os_name: "Linux".into(),
        default_user: "root".into(),
        size_gib: 20,
        min_ram_mib: 8192,
    };
    let ctx = PlanContext {
        image: Some(&image),
        ..PlanContext::default()
    };
    let to = |t: &str| resize_stopped(&ctx, t);
    assert!(matches!(
        to("S5.SMALL2"),
        Err(DomainError::ImageNeedsMemory {
            min_ram_mib: 8192,
            ..
        })
    ));
    assert!(to("S5.LARGE8").is_ok());
}

#[test]
fn confirm_and_revert_a_resize_awaiting_confirmation() {
    let ctx = PlanContext::default();
    let mut i = inst(S::VerifyResize);
    i.instance_type = "S5.LARGE8".into();
    i.resize_from = Some("S5.MEDIUM4".into());
    let p = plan(&i, &ActionRequest::ConfirmResize, &ctx).unwrap();
    assert_eq!(p.steps, [Step::ConfirmResize]);
    assert_eq!(p.effects, [Effect::ForgetResize]);
    assert_eq!(p.settle.success, Outcome::Observed);
    let p = plan(&i, &ActionRequest::RevertResize, &ctx).unwrap();
    assert_eq!(
        p.steps,
        [
            Step::PowerOff {
                mode: StopMode::Hard
            },
            resize_step("S5.MEDIUM4", 2, 4),
            Step::PowerOn
        ]
    );
    assert_eq!(p.shows(i.state), S::RevertingResize);
    assert_eq!(
        p.effects,
        [Effect::SetType {
            to: catalog::instance_type("S5.MEDIUM4").unwrap().clone(),
            remember: None
        }]
    );
    // Powered off: reverted powered off.
    i.state = S::VerifyResizeStopped;
    let p = plan(&i, &ActionRequest::RevertResize, &ctx).unwrap();
    assert_eq!(p.steps, [resize_step("S5.MEDIUM4", 2, 4)]);
    // Neither is allowed outside VERIFY_RESIZE; a resize is not allowed in it.
    for (state, req) in [
        (S::Running, ActionRequest::ConfirmResize),
        (S::Stopped, ActionRequest::RevertResize),
    ] {
        assert!(matches!(
            plan(&inst(state), &req, &ctx),
            Err(DomainError::StateConflict { .. })
        ));
    }
    let e = plan(
        &i,
        &resize("S5.SMALL2", WhenRunning::StopAndStart, ResizeEnd::Verify),
        &ctx,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        DomainError::StateConflict {
            state: S::VerifyResizeStopped,
            action: Action::Resize,
            ..
        }
    ));
}

/// Pause, suspend and shelve: one step each (shelve two when it offloads), shown as the Nova
/// task state while it runs, settled from the driver's facts.
#[test]
fn pause_suspend_shelve_plans() {
    let ctx = PlanContext::default();
    let steps = |s: S, r: ActionRequest| plan(&inst(s), &r, &ctx).unwrap().steps;
    assert_eq!(steps(S::Running, Request::Pause), vec![Step::Pause]);
    assert_eq!(steps(S::Paused, Request::Unpause), vec![Step::Unpause]);
    assert_eq!(steps(S::Running, Request::Suspend), vec![Step::Suspend]);
    assert_eq!(steps(S::Suspended, Request::Resume), vec![Step::Resume]);
    for from in [S::Running, S::Stopped, S::Paused, S::Suspended] {
        assert_eq!(
            steps(
                from,
                Request::Shelve {
                    offload: true,
                    image_id: None,
                }
            ),
            vec![Step::Shelve, Step::Offload],
            "{from:?}"
        );
        assert_eq!(
            steps(
                from,
                Request::Shelve {
                    offload: false,
                    image_id: None,
                }
            ),
            vec![Step::Shelve]
        );
    }
    assert_eq!(
        steps(S::Shelved, Request::ShelveOffload),
        vec![Step::Offload]
    );
    for from in [S::Shelved, S::ShelvedOffloaded] {
        assert_eq!(
            steps(from, Request::Unshelve { zone: None }),
            vec![Step::Unshelve]
        );
    }
    let p = plan(&inst(S::Running), &Request::Pause, &ctx).unwrap();
    assert_eq!(p.shows(S::Running), S::Pausing);
    assert_eq!(p.settle, Settle::for_action(Action::Pause));
    let p = plan(
        &inst(S::Paused),
        &Request::Shelve {
            offload: true,
            image_id: None,
        },
        &ctx,
    )
    .unwrap();
    assert_eq!(p.shows(S::Paused), S::Shelving);
    assert_eq!(Step::Offload.showing(S::Shelving), S::ShelvingOffloading);
    assert_eq!(Step::Unshelve.showing(S::Shelved), S::Unshelving);
}

#[test]
fn held_states_refuse_other_actions_with_their_state() {
    let ctx = PlanContext::default();
    let cases: &[(S, ActionRequest)] = &[
        (S::Paused, Request::Start),
        (S::Paused, Request::Pause),
        (S::Paused, Request::Suspend),
        (
            S::Paused,
            Request::Stop {
                mode: StopMode::SoftFirst,
                stop_charging: false,
            },
        ),
        (S::Suspended, Request::Unpause),
        (S::Suspended, Request::Start),
        (S::Running, Request::Unpause),
        (S::Running, Request::Resume),
        (S::Running, Request::Unshelve { zone: None }),
        (S::Stopped, Request::Pause),
        (S::Stopped, Request::Suspend),
        (S::ShelvedOffloaded, Request::Start),
        (S::ShelvedOffloaded, Request::ShelveOffload),
        (
            S::ShelvedOffloaded,
            Request::Shelve {
                offload: true,
                image_id: None,
            },
        ),
        (S::Pausing, Request::Unpause),
        (S::Unshelving, Request::Unshelve { zone: None }),
        (S::Shelving, Request::Terminate { force: false }),
    ];
    for (s, r) in cases {
        let e = plan(&inst(*s), r, &ctx).unwrap_err();
        assert_eq!(
            e,
            DomainError::StateConflict {
                id: inst(*s).uuid.to_string(),
                state: *s,
                action: r.action(),
            },
            "{r:?} in {s:?}"
        );
    }
    // Terminate and Nova's delete destroy a held guest.
    for s in [S::Paused, S::Suspended, S::Shelved, S::ShelvedOffloaded] {
        let p = plan(&inst(s), &Request::Terminate { force: false }, &ctx).unwrap();
        assert_eq!(p.steps, vec![Step::Destroy], "{s:?}");
        let p = plan(&inst(s), &Request::Delete { admin: false }, &ctx).unwrap();
        assert_eq!(p.steps, vec![Step::Destroy], "{s:?}");
    }
}

#[test]
fn owner_lock_and_running_operation_refuse_pause() {
    let ctx = PlanContext::default();
    let mut i = inst(S::Running);
    i.locked = Some(String::new());
    for r in [
        Request::Pause,
        Request::Suspend,
        Request::Shelve {
            offload: true,
            image_id: None,
        },
    ] {
        assert!(matches!(
            plan(&i, &r, &ctx),
            Err(DomainError::Locked { .. })
        ));
    }
    let mut i = inst(S::Paused);
    i.locked = Some(String::new());
    assert!(matches!(
        plan(&i, &Request::Unpause, &ctx),
        Err(DomainError::Locked { .. })
    ));
    let i = locked(S::Running, Action::Pause);
    assert!(matches!(
        plan(&i, &Request::Pause, &ctx),
        Err(DomainError::OperationInProgress {
            same_action: true,
            ..
        })
    ));
}

#[test]
fn unshelve_zone_only_for_an_offloaded_guest() {
    let ctx = PlanContext::default();
    let to = |z: &str| Request::Unshelve {
        zone: Some(z.to_string()),
    };
    // Shelved (still on its host): refused after the state check passed.
    assert!(matches!(
        plan(&inst(S::Shelved), &to("local-b"), &ctx),
        Err(DomainError::Unsupported {
            why: Unsupported::UnshelveZoneNotOffloaded,
            ..
        })
    ));
    // In a state that allows no unshelve at all, the state answers first.
    assert!(matches!(
        plan(&inst(S::Running), &to("local-b"), &ctx),
        Err(DomainError::StateConflict { .. })
    ));
    let p = plan(&inst(S::ShelvedOffloaded), &to("local-b"), &ctx).unwrap();
    assert_eq!(p.effects, vec![Effect::SetZone("local-b".into())]);
    // Its own zone changes nothing.
    let p = plan(&inst(S::ShelvedOffloaded), &to("local-a"), &ctx).unwrap();
    assert!(p.effects.is_empty());
    // A broken disk stops an unshelve and a resume (they boot the guest).
    let mut i = inst(S::ShelvedOffloaded);
    i.disk_error = true;
    assert!(matches!(
        plan(&i, &Request::Unshelve { zone: None }, &ctx),
        Err(DomainError::DiskError { .. })
    ));
}

/// Deferred delete (docs/deferred-delete.md): Nova's delete with a reclaim interval powers a
/// settled server off and keeps it; anything else is deleted at once, as Nova falls back to a
/// delete when soft_delete refuses the state.
#[test]
fn soft_delete_keeps_a_settled_server_and_falls_back_to_delete() {
    let ctx = PlanContext::default();
    let soft = Request::SoftDelete { admin: false };
    for s in [S::Running, S::Stopped, S::Error] {
        let p = plan(&inst(s), &soft, &ctx).unwrap();
        assert_eq!(p.action, Action::SoftDelete, "{s:?}");
        assert_eq!(
            p.steps,
            vec![Step::PowerOff {
                mode: StopMode::Hard
            }]
        );
        assert_eq!(p.shows(s), S::SoftDeleting);
        assert_eq!(p.settle.state(true, Some(S::Stopped), s), S::SoftDeleted);
        // A power-off that failed leaves the server as its facts show it, not deleted.
        assert_eq!(p.settle.state(false, Some(S::Running), s), S::Running);
        assert!(!p.supersedes);
    }
    // Not settled, never launched, held, or a task in flight: deleted at once.
    for s in [
        S::Pending,
        S::LaunchFailed,
        S::Paused,
        S::Shelved,
        S::VerifyResize,
        S::SoftDeleted,
        S::Rebooting,
    ] {
        let p = plan(&inst(s), &soft, &ctx).unwrap();
        assert_eq!(p.action, Action::Terminate, "{s:?}");
        assert_eq!(p.steps, vec![Step::Destroy], "{s:?}");
    }
    let p = plan(&locked(S::Running, Action::Reboot), &soft, &ctx).unwrap();
    assert_eq!(p.action, Action::Terminate);
    assert!(p.supersedes);
    // Being deleted already: nothing more to do.
    assert!(plan(&inst(S::Terminating), &soft, &ctx).unwrap().is_empty());
    // The owner's lock refuses it, an admin passes.
    let mut i = inst(S::Running);
    i.locked = Some(String::new());
    assert_eq!(
        plan(&i, &soft, &ctx),
        Err(DomainError::Locked {
            id: i.uuid.to_string()
        })
    );
    let p = plan(&i, &Request::SoftDelete { admin: true }, &ctx).unwrap();
    assert_eq!(p.action, Action::SoftDelete);
}

#[test]
fn restore_powers_a_soft_deleted_server_on_and_nothing_else() {
    let ctx = PlanContext::default();
    let p = plan(&inst(S::SoftDeleted), &Request::Restore, &ctx).unwrap();
    assert_eq!(p.steps, vec![Step::PowerOn]);
    assert_eq!(p.shows(S::SoftDeleted), S::Restoring);
    assert_eq!(
        p.settle.state(true, Some(S::Running), S::SoftDeleted),
        S::Running
    );
    for s in [
        S::Running,
        S::Stopped,
        S::Error,
        S::SoftDeleting,
        S::Restoring,
    ] {
        assert_eq!(
            plan(&inst(s), &Request::Restore, &ctx),
            Err(DomainError::StateConflict {
                id: inst(s).uuid.to_string(),
                state: s,
                action: Action::Restore,
            }),
            "{s:?}"
        );
    }
    // A broken disk cannot boot.
    let mut i = inst(S::SoftDeleted);
    i.disk_error = true;
    assert!(matches!(
        plan(&i, &Request::Restore, &ctx),
        Err(DomainError::DiskError { .. })
    ));
    // forceDelete (Nova's delete) and a Tencent/Alibaba delete end it.
    for r in [
        Request::Delete { admin: false },
        Request::Terminate { force: false },
    ] {
        let p = plan(&inst(S::SoftDeleted), &r, &ctx).unwrap();
        assert_eq!(p.steps, vec![Step::Destroy], "{r:?}");
    }
}

/// An operator's error mark: rebuilt into a running server (powered off first, whatever its
/// power), stopped or deleted; nothing else.
#[test]
fn error_is_left_by_rebuild_stop_or_delete() {
    let ctx = PlanContext::default();
    let p = plan(&inst(S::Error), &reset_rebuild(), &ctx).unwrap();
    assert!(matches!(
        p.steps.as_slice(),
        [
            Step::PowerOff { .. },
            Step::Reprovision { .. },
            Step::PowerOn
        ]
    ));
    let stop = Request::Stop {
        mode: StopMode::SoftFirst,
        stop_charging: false,
    };
    assert_eq!(plan(&inst(S::Error), &stop, &ctx).unwrap().steps.len(), 1);
    for r in [Request::Start, Request::Pause, Request::Restore] {
        assert!(
            matches!(
                plan(&inst(S::Error), &r, &ctx),
                Err(DomainError::StateConflict { .. })
            ),
            "{r:?}"
        );
    }
}

fn reset_rebuild() -> ActionRequest {
    Request::Rebuild {
        image: crate::images::builtin_facts(&inst(S::Running).image_id).unwrap(),
        password: None,
        rule: crate::password::PasswordRule::Free,
        key_ids: None,
        when_running: WhenRunning::StopAndStart,
        system_disk_gib: None,
    }
}

/// Tencent's recycle bin: a PREPAID instance's first terminate keeps it powered off
/// (SoftDeleted, shown SHUTDOWN), the second destroys it; pay-as-you-go goes at once.
#[test]
fn prepaid_terminate_recycles_then_destroys() {
    let ctx = PlanContext::default();
    let term = Request::Terminate { force: true };
    for s in [S::Running, S::Stopped] {
        let mut i = inst(s);
        i.charge_type = PREPAID.into();
        let p = plan(&i, &term, &ctx).unwrap();
        assert_eq!(p.action, Action::SoftDelete, "{s:?}");
        assert_eq!(p.settle.state(true, Some(S::Stopped), s), S::SoftDeleted);
        let mut recycled = inst(S::SoftDeleted);
        recycled.charge_type = PREPAID.into();
        assert_eq!(
            plan(&recycled, &term, &ctx).unwrap().steps,
            vec![Step::Destroy]
        );
    }
    let mut i = inst(S::Running);
    i.charge_type = "POSTPAID_BY_HOUR".into();
    assert_eq!(plan(&i, &term, &ctx).unwrap().steps, vec![Step::Destroy]);
    // Without force a running PREPAID instance is refused as any other.
    i.charge_type = PREPAID.into();
    assert!(matches!(
        plan(&i, &Request::Terminate { force: false }, &ctx),
        Err(DomainError::StateConflict { .. })
    ));
}

/// An image of the system disk: copied as the instance is (live when it runs), or — Tencent
/// ForcePoweroff — stopped around the copy; its state shows through (the operation's lock
/// says what runs); the states of the table only; a shelve with an image snapshots the
/// shelved guest and remembers the image for its unshelve.
#[test]
fn create_image_plans() {
    let ctx = PlanContext::default();
    let req = |stop_first| Request::CreateImage {
        image_id: "img-snap0001".into(),
        stop_first,
    };
    let snap = Step::Snapshot {
        image_id: "img-snap0001".into(),
    };
    for from in [S::Running, S::Stopped, S::Paused, S::Suspended] {
        let p = plan(&inst(from), &req(false), &ctx).unwrap();
        assert_eq!(p.steps, vec![snap.clone()], "{from:?}");
        assert_eq!(p.shows(from), from);
        assert_eq!(p.action, Action::CreateImage);
    }
    let p = plan(&inst(S::Running), &req(true), &ctx).unwrap();
    assert_eq!(
        p.steps,
        vec![
            Step::PowerOff {
                mode: StopMode::SoftFirst
            },
            snap.clone(),
            Step::PowerOn
        ]
    );
    // ForcePoweroff on a stopped instance: nothing to stop.
    let p = plan(&inst(S::Stopped), &req(true), &ctx).unwrap();
    assert_eq!(p.steps, vec![snap.clone()]);
    for refused in [
        S::Rescue,
        S::Pending,
        S::Shelved,
        S::ShelvedOffloaded,
        S::VerifyResize,
    ] {
        assert!(
            matches!(
                plan(&inst(refused), &req(false), &ctx),
                Err(DomainError::StateConflict { .. })
            ),
            "{refused:?}"
        );
    }
    let p = plan(
        &inst(S::Running),
        &Request::Shelve {
            offload: true,
            image_id: Some("img-snap0001".into()),
        },
        &ctx,
    )
    .unwrap();
    assert_eq!(p.steps, vec![Step::Shelve, snap, Step::Offload]);
    let mut i = inst(S::ShelvedOffloaded);
    for e in &p.effects {
        e.apply(&mut i);
    }
    assert_eq!(i.shelved_image.as_deref(), Some("img-snap0001"));
    let p = plan(&i, &Request::Unshelve { zone: None }, &ctx).unwrap();
    for e in &p.effects {
        e.apply(&mut i);
    }
    assert_eq!(i.shelved_image, None);
}
