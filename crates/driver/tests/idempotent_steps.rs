//! Every step of every plan core makes, run twice on the simulated fleet: the guest ends in
//! the facts one run leaves, with no error and no extra effect (a second reboot or stop, a
//! new host key, a password applied twice). Also the crash cases: the step interrupted at
//! any point and run again, and the driver restored from the snapshot committed before the
//! step (a restart that lost the step's commit) and the step run again.
//!
//! Two walks: every plan core makes (`rules::plan` for every action request, in every state
//! it is allowed in, and the create plans), each step run twice from the state the plan's
//! earlier steps reached; and one guest's whole life with faults, each step also cut off at
//! several points. `kind` matches every `Step` variant and `request_kind` every request
//! variant without a wildcard: a new variant does not compile here until it is named, and
//! the coverage checks fail until a plan or the script runs it.

use nubis_core::password::PasswordRule;
use nubis_core::request::{ActionRequest, PasswordHash, PublicKey, Request};
use nubis_core::rules::{fixture, plan};
use nubis_core::{
    Accept, CreatePlan, InstanceState, MigratePhase, PlanContext, ResizeEnd, Step, StopMode,
    WhenRunning, catalog,
};
use nubis_driver::sim::SimDriver;
use nubis_driver::{Driver, DriverError, Turn, VmSpec};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

const ORIGINAL: &str = "Orig1nal!pw";
const CHANGED: &str = "Chang3d!pw";
const RESCUE: &str = "Resc0e!pw";
const REBUILT: &str = "Rebu1lt!pw";
const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA a";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB b";

/// The step's kind. No wildcard arm: a new `Step` variant must be named here.
fn kind(step: &Step) -> &'static str {
    match step {
        Step::Provision { .. } => "provision",
        Step::PowerOn => "power_on",
        Step::PowerOff { .. } => "power_off",
        Step::Reboot { .. } => "reboot",
        Step::SetPassword { .. } => "set_password",
        Step::AddKeys { .. } => "add_keys",
        Step::RemoveKeys { .. } => "remove_keys",
        Step::BootRescue { .. } => "boot_rescue",
        Step::BootSystem => "boot_system",
        Step::Destroy => "destroy",
        Step::Reprovision { .. } => "reprovision",
        Step::LiveMigrate { .. } => "live_migrate",
        Step::Resize { .. } => "resize",
        Step::ConfirmResize => "confirm_resize",
        Step::Pause => "pause",
        Step::Unpause => "unpause",
        Step::Suspend => "suspend",
        Step::Resume => "resume",
        Step::Shelve => "shelve",
        Step::Offload => "offload",
        Step::Unshelve => "unshelve",
        Step::Snapshot { .. } => "snapshot",
    }
}

/// Every kind `kind` can return.
const KINDS: [&str; 22] = [
    "provision",
    "power_on",
    "power_off",
    "reboot",
    "set_password",
    "add_keys",
    "remove_keys",
    "boot_rescue",
    "boot_system",
    "destroy",
    "reprovision",
    "live_migrate",
    "resize",
    "confirm_resize",
    "pause",
    "unpause",
    "suspend",
    "resume",
    "shelve",
    "offload",
    "unshelve",
    "snapshot",
];

fn spec() -> VmSpec {
    VmSpec::sample(vec![("disk-dddddddd".into(), 20)])
}

fn hash(pw: &str) -> String {
    nubis_auth::password::hash(pw)
}

/// What the script does at one point: a step, or a fault switched on or off between steps.
enum Act {
    Step(Step),
    IgnoreAcpi(bool),
}

/// One guest's life, as the plans of core's actions string steps together (create, start,
/// password and key changes live and stopped, every stop and reboot mode, a guest that
/// ignores ACPI, live migration, rescue with and without an image, rebuilds, delete).
fn script(s: &VmSpec) -> Vec<Act> {
    let stop = |mode| Act::Step(Step::PowerOff { mode });
    let reboot = |mode| Act::Step(Step::Reboot { mode });
    vec![
        Act::Step(Step::Provision {
            image_id: s.image_id.clone(),
            user: "root".into(),
            password_hash: Some(hash(ORIGINAL)),
            keys: vec![KEY_A.into()],
            guest: Default::default(),
        }),
        Act::Step(Step::PowerOn),
        Act::Step(Step::SetPassword {
            user: "root".into(),
            password_hash: hash(CHANGED),
        }),
        Act::Step(Step::AddKeys {
            keys: vec![KEY_B.into()],
        }),
        Act::Step(Step::RemoveKeys {
            keys: vec![KEY_A.into()],
        }),
        reboot(StopMode::Soft),
        reboot(StopMode::Hard),
        reboot(StopMode::SoftFirst),
        Act::Step(Step::LiveMigrate {
            phase: MigratePhase::Enter,
        }),
        Act::Step(Step::LiveMigrate {
            phase: MigratePhase::Migrate,
        }),
        Act::Step(Step::LiveMigrate {
            phase: MigratePhase::Exit,
        }),
        // An image of the running guest, then of the paused one.
        Act::Step(Step::Snapshot {
            image_id: "img-snap0001".into(),
        }),
        // Held: paused, suspended, shelved from each, offloaded, unshelved.
        Act::Step(Step::Pause),
        Act::Step(Step::Snapshot {
            image_id: "img-snap0002".into(),
        }),
        Act::Step(Step::Unpause),
        Act::Step(Step::Suspend),
        Act::Step(Step::Resume),
        Act::Step(Step::Pause),
        Act::Step(Step::Shelve),
        Act::Step(Step::Offload),
        Act::Step(Step::Unshelve),
        Act::Step(Step::Suspend),
        Act::Step(Step::Shelve),
        Act::Step(Step::Unshelve),
        Act::Step(Step::Shelve),
        Act::Step(Step::Unshelve),
        stop(StopMode::Soft),
        Act::Step(Step::Snapshot {
            image_id: "img-snap0003".into(),
        }),
        // Stopped: changes for the next boot, and a stop of a stopped guest.
        Act::Step(Step::SetPassword {
            user: "root".into(),
            password_hash: hash(ORIGINAL),
        }),
        Act::Step(Step::AddKeys {
            keys: vec![KEY_A.into()],
        }),
        stop(StopMode::Hard),
        Act::Step(Step::PowerOn),
        Act::IgnoreAcpi(true),
        stop(StopMode::Soft), // fails (the guest ignores ACPI), the same way twice
        reboot(StopMode::SoftFirst),
        stop(StopMode::SoftFirst),
        Act::IgnoreAcpi(false),
        Act::Step(Step::BootRescue {
            user: "root".into(),
            password_hash: hash(RESCUE),
            image_id: None,
        }),
        stop(StopMode::SoftFirst),
        Act::Step(Step::BootSystem),
        // Rescue straight from a running guest (the step stops it itself).
        Act::Step(Step::BootRescue {
            user: "root".into(),
            password_hash: hash(RESCUE),
            image_id: Some("img-tos31x64".into()),
        }),
        Act::Step(Step::BootSystem),
        stop(StopMode::SoftFirst),
        Act::Step(Step::Reprovision {
            image_id: "img-ubt2204x64".into(),
            user: "ubuntu".into(),
            password_hash: Some(hash(REBUILT)),
            keys: None,
            guest: Default::default(),
        }),
        Act::Step(Step::Reprovision {
            image_id: s.image_id.clone(),
            user: "root".into(),
            password_hash: None,
            keys: Some(vec![KEY_B.into()]),
            guest: Default::default(),
        }),
        // Stopped: moved to another type, kept.
        Act::Step(resize_to_large()),
        Act::Step(Step::ConfirmResize),
        Act::Step(Step::PowerOn),
        // A running guest is not moved: refused, the same way twice.
        Act::Step(resize_to_large()),
        Act::Step(Step::Destroy),
    ]
}

fn resize_to_large() -> Step {
    Step::Resize {
        instance_type: "S5.LARGE8".into(),
        cpu: 4,
        memory_mib: 8192,
    }
}

/// The guest as an operator sees it, without the times of its power events, plus which of
/// the script's passwords log in: the facts a repeated step must leave unchanged.
fn facts(d: &SimDriver, id: Uuid) -> Value {
    let Some(mut g) = d.inspect(id) else {
        return Value::Null;
    };
    if let Some(events) = g["restarts"].as_array_mut() {
        for e in events {
            e.as_object_mut().map(|o| o.remove("at"));
        }
    }
    let logins: Vec<Value> = ["root", "ubuntu"]
        .iter()
        .flat_map(|u| {
            [ORIGINAL, CHANGED, RESCUE, REBUILT]
                .iter()
                .map(move |p| serde_json::json!([u, p, d.check_password(id, u, p)]))
        })
        .collect();
    g["logins"] = Value::Array(logins);
    g
}

/// `facts` of a guest installed by another driver: each install draws its own host key, so
/// only runs on one driver compare the keys (a repeated install must keep them).
fn but_host_keys(mut g: Value) -> Value {
    if let Some(o) = g["system"].as_object_mut() {
        o.remove("host_key_fingerprint");
    }
    if let Some(o) = g.as_object_mut() {
        o.remove("host_key_fingerprint");
    }
    g
}

/// A driver holding the state `snap` (None: the VM does not exist yet).
fn driver_at(scale: f64, id: Uuid, snap: &Option<Value>) -> SimDriver {
    let d = SimDriver::new(scale);
    if let Some(s) = snap {
        d.restore(id, s.clone()).unwrap();
    }
    d
}

/// How long one run of a step may take at `SCALE` before the harness calls it hung.
const SCALE: f64 = 0.0005;

async fn run(d: &SimDriver, s: &VmSpec, step: &Step, turn: Turn) -> Result<(), DriverError> {
    tokio::time::timeout(Duration::from_secs(20), d.execute_turn(s, step, turn))
        .await
        .expect("a step of the simulated fleet hung")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_twice_and_resumed_ends_as_one_run() {
    let s = spec();
    let id = s.uuid;
    let op = Uuid::new_v4();
    // The reference: the script run once, step by step.
    let reference = SimDriver::new(SCALE);
    let mut covered = BTreeSet::new();
    for (i, act) in script(&s).into_iter().enumerate() {
        let step = match act {
            Act::Step(step) => step,
            Act::IgnoreAcpi(on) => {
                reference.set_soft_stop_fails(id, on).unwrap();
                continue;
            }
        };
        covered.insert(kind(&step));
        let turn = Turn {
            op,
            index: i as u32,
        };
        let before = reference.snapshot(id);
        let once = run(&reference, &s, &step, turn).await;
        let after = facts(&reference, id);
        let what = format!("step {i} {step:?}");

        // Twice in a row (a step delivered again, an operation resumed on the same host).
        let d = driver_at(SCALE, id, &before);
        let first = run(&d, &s, &step, turn).await;
        let after_first = facts(&d, id);
        let second = run(&d, &s, &step, turn).await;
        assert_eq!(first, once, "{what}: the first run");
        assert_eq!(second, once, "{what}: the second run must end as the first");
        assert_eq!(facts(&d, id), after_first, "{what}: run twice");
        let after = but_host_keys(after);
        assert_eq!(but_host_keys(after_first), after, "{what}: one run");

        // The commit of the step lost in a restart: the driver is restored from the snapshot
        // committed before it, and the resumed operation runs it again.
        let d = driver_at(SCALE, id, &before);
        let _ = run(&d, &s, &step, turn).await;
        let resumed = driver_at(SCALE, id, &before);
        assert_eq!(
            run(&resumed, &s, &step, turn).await,
            once,
            "{what}: resumed"
        );
        assert_eq!(but_host_keys(facts(&resumed, id)), after, "{what}: resumed");

        // Interrupted at several points (the runner's task dropped mid-step), then run
        // again: whatever the cut, the guest ends as after one run.
        for cut_us in [0, 50, 400, 1500, 4000] {
            let d = driver_at(SCALE, id, &before);
            let _ = tokio::time::timeout(
                Duration::from_micros(cut_us),
                d.execute_turn(&s, &step, turn),
            )
            .await;
            assert_eq!(
                run(&d, &s, &step, turn).await,
                once,
                "{what}: repeated after a cut at {cut_us} µs"
            );
            assert_eq!(
                but_host_keys(facts(&d, id)),
                after,
                "{what}: repeated after a cut at {cut_us} µs"
            );
        }
    }
    let missing: Vec<_> = KINDS.iter().filter(|k| !covered.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "steps the script never runs: {missing:?}"
    );
}

/// The same step in a new operation is a new request, not a repeat: a second reboot reboots.
#[tokio::test]
async fn the_same_step_of_another_turn_runs_again() {
    let s = spec();
    let d = SimDriver::new(0.0);
    let turn = |index| Turn {
        op: Uuid::new_v4(),
        index,
    };
    let provision = Step::Provision {
        image_id: s.image_id.clone(),
        user: "root".into(),
        password_hash: None,
        keys: vec![],
        guest: Default::default(),
    };
    d.execute_turn(&s, &provision, turn(0)).await.unwrap();
    d.execute_turn(&s, &Step::PowerOn, turn(1)).await.unwrap();
    let reboot = Step::Reboot {
        mode: StopMode::Hard,
    };
    d.execute_turn(&s, &reboot, turn(0)).await.unwrap();
    d.execute_turn(&s, &reboot, turn(0)).await.unwrap();
    let events = d.inspect(s.uuid).unwrap()["restarts"].clone();
    assert_eq!(events.as_array().map(Vec::len), Some(2), "{events}");
}

/// A rescue guest that is up is not stopped and booted again by a repeated BootRescue, even
/// run without a turn (the state shows it is done).
#[tokio::test]
async fn a_repeated_rescue_boot_keeps_the_running_rescue_guest() {
    let s = spec();
    let d = SimDriver::new(0.0);
    d.execute(
        &s,
        &Step::Provision {
            image_id: s.image_id.clone(),
            user: "root".into(),
            password_hash: None,
            keys: vec![],
            guest: Default::default(),
        },
    )
    .await
    .unwrap();
    let rescue = Step::BootRescue {
        user: "root".into(),
        password_hash: hash(RESCUE),
        image_id: None,
    };
    d.execute(&s, &rescue).await.unwrap();
    let once = facts(&d, s.uuid);
    d.execute(&s, &rescue).await.unwrap();
    assert_eq!(facts(&d, s.uuid), once, "the rescue guest was booted again");
    d.execute(&s, &Step::BootSystem).await.unwrap();
    let once = facts(&d, s.uuid);
    d.execute(&s, &Step::BootSystem).await.unwrap();
    assert_eq!(facts(&d, s.uuid), once, "the system was booted again");
}

/// The request's variant. No wildcard arm: a new request must be named here (and given a
/// case in `requests`).
fn request_kind(r: &ActionRequest) -> &'static str {
    match r {
        Request::LiveMigrate => "live_migrate",
        Request::Rebuild { .. } => "rebuild",
        Request::Start => "start",
        Request::Stop { .. } => "stop",
        Request::Reboot { .. } => "reboot",
        Request::Terminate { .. } => "terminate",
        Request::Delete { .. } => "delete",
        Request::ResetPassword { .. } => "reset_password",
        Request::EnterRescue { .. } => "enter_rescue",
        Request::ExitRescue => "exit_rescue",
        Request::AssociateKeys { .. } => "associate_keys",
        Request::DisassociateKeys { .. } => "disassociate_keys",
        Request::Resize { .. } => "resize",
        Request::ConfirmResize => "confirm_resize",
        Request::RevertResize => "revert_resize",
        Request::Pause => "pause",
        Request::Unpause => "unpause",
        Request::Suspend => "suspend",
        Request::Resume => "resume",
        Request::Shelve { .. } => "shelve",
        Request::ShelveOffload => "shelve_offload",
        Request::Unshelve { .. } => "unshelve",
        Request::CreateImage { .. } => "create_image",
        Request::SoftDelete { .. } => "soft_delete",
        Request::Restore => "restore",
    }
}

const REQUEST_KINDS: [&str; 25] = [
    "live_migrate",
    "rebuild",
    "start",
    "stop",
    "reboot",
    "terminate",
    "delete",
    "reset_password",
    "enter_rescue",
    "exit_rescue",
    "associate_keys",
    "disassociate_keys",
    "resize",
    "confirm_resize",
    "revert_resize",
    "pause",
    "unpause",
    "suspend",
    "resume",
    "shelve",
    "shelve_offload",
    "unshelve",
    "create_image",
    "soft_delete",
    "restore",
];

fn key(id: &str, key: &str) -> PublicKey {
    PublicKey {
        id: id.into(),
        key: key.into(),
    }
}

/// Every action request, in each of the modes that make a different plan.
fn requests() -> Vec<ActionRequest> {
    let modes = [StopMode::Soft, StopMode::Hard, StopMode::SoftFirst];
    let whens = [
        WhenRunning::Refuse,
        WhenRunning::StopAndStart,
        WhenRunning::NextBoot,
        WhenRunning::Live,
    ];
    let mut r = vec![
        Request::LiveMigrate,
        Request::Start,
        Request::ExitRescue,
        Request::Terminate { force: true },
        Request::Delete { admin: false },
        Request::ConfirmResize,
        Request::RevertResize,
        Request::Pause,
        Request::Unpause,
        Request::Suspend,
        Request::Resume,
        Request::Shelve {
            offload: true,
            image_id: None,
        },
        Request::Shelve {
            offload: false,
            image_id: None,
        },
        Request::ShelveOffload,
        Request::Unshelve { zone: None },
        Request::Unshelve {
            zone: Some("local-b".into()),
        },
        Request::CreateImage {
            image_id: "img-snap0009".into(),
            stop_first: false,
        },
        Request::CreateImage {
            image_id: "img-snap0010".into(),
            stop_first: true,
        },
        Request::SoftDelete { admin: false },
        Request::Restore,
    ];
    for when_running in [WhenRunning::Refuse, WhenRunning::StopAndStart] {
        for then in [ResizeEnd::Start, ResizeEnd::AsBefore, ResizeEnd::Verify] {
            r.push(Request::Resize {
                instance_type: "S5.LARGE8".into(),
                when_running,
                then,
            });
        }
    }
    for mode in modes {
        r.push(Request::Stop {
            mode,
            stop_charging: false,
        });
        r.push(Request::Reboot { mode });
        r.push(Request::EnterRescue {
            user: None,
            password: PasswordHash(hash(RESCUE)),
            rule: PasswordRule::Complexity,
            mode,
            image_id: None,
        });
    }
    r.push(Request::EnterRescue {
        user: Some("root".into()),
        password: PasswordHash(hash(RESCUE)),
        rule: PasswordRule::Complexity,
        mode: StopMode::SoftFirst,
        image_id: Some("img-tos31x64".into()),
    });
    for when_running in whens {
        r.push(Request::ResetPassword {
            user: None,
            password: PasswordHash(hash(CHANGED)),
            when_running,
            rule: PasswordRule::Complexity,
        });
        r.push(Request::AssociateKeys {
            key_ids: vec![key("skey-b", KEY_B)],
            when_running,
        });
        r.push(Request::DisassociateKeys {
            key_ids: vec![key("skey-a", KEY_A)],
            when_running,
        });
    }
    for (password, key_ids) in [
        (Some(PasswordHash(hash(REBUILT))), None),
        (None, Some(vec![key("skey-b", KEY_B)])),
    ] {
        r.push(Request::Rebuild {
            image: nubis_core::images::builtin_facts("img-ubt22x64").unwrap(),
            password,
            rule: PasswordRule::Complexity,
            key_ids,
            when_running: WhenRunning::StopAndStart,
            system_disk_gib: None,
        });
    }
    r
}

/// A simulated guest in `state`, as the plans that lead there leave it (provisioned with a
/// password and key A; started; in rescue).
async fn guest_in(state: InstanceState, s: &VmSpec) -> SimDriver {
    let d = SimDriver::new(0.0);
    let mut steps = vec![Step::Provision {
        image_id: s.image_id.clone(),
        user: "root".into(),
        password_hash: Some(hash(ORIGINAL)),
        keys: vec![KEY_A.into()],
        guest: Default::default(),
    }];
    match state {
        InstanceState::Running | InstanceState::VerifyResize | InstanceState::Error => {
            steps.push(Step::PowerOn)
        }
        InstanceState::Rescue => steps.push(Step::BootRescue {
            user: "root".into(),
            password_hash: hash(RESCUE),
            image_id: None,
        }),
        InstanceState::Paused => steps.extend([Step::PowerOn, Step::Pause]),
        InstanceState::Suspended => steps.extend([Step::PowerOn, Step::Suspend]),
        InstanceState::Shelved => steps.push(Step::Shelve),
        InstanceState::ShelvedOffloaded => steps.extend([Step::Shelve, Step::Offload]),
        _ => {}
    }
    for step in steps {
        d.execute(s, &step).await.unwrap();
    }
    d
}

/// Runs a plan's steps from `d`'s state, each twice as one turn (or, for a next-boot plan,
/// staged twice), checking the guest after the second run is the guest after the first, and
/// that a driver restored from the snapshot before the step and running it again (a restart
/// that lost the step's commit) ends there too. Returns the kinds run.
async fn run_plan_twice(
    d: &SimDriver,
    s: &VmSpec,
    steps: &[Step],
    accept: Accept,
    what: &str,
) -> BTreeSet<&'static str> {
    let op = Uuid::new_v4();
    let mut kinds = BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        kinds.insert(kind(step));
        let what = format!("{what}, step {i} {step:?}");
        let turn = Turn {
            op,
            index: i as u32,
        };
        let before = d.snapshot(s.uuid);
        let once = match accept {
            Accept::NextBoot => d.stage(s, step).await,
            Accept::Operation | Accept::JoinCreate => d.execute_turn(s, step, turn).await,
        };
        let after = facts(d, s.uuid);
        let twice = match accept {
            Accept::NextBoot => d.stage(s, step).await,
            Accept::Operation | Accept::JoinCreate => d.execute_turn(s, step, turn).await,
        };
        assert_eq!(twice, once, "{what}: the second run");
        assert_eq!(facts(d, s.uuid), after, "{what}: run twice");
        let resumed = driver_at(0.0, s.uuid, &before);
        let again = resumed.execute_turn(s, step, turn).await;
        assert_eq!(again, once, "{what}: resumed");
        assert_eq!(
            but_host_keys(facts(&resumed, s.uuid)),
            but_host_keys(after),
            "{what}: resumed"
        );
        if once.is_err() {
            break; // the operation ends here
        }
    }
    kinds
}

#[tokio::test]
async fn every_step_of_every_plan_core_makes_runs_twice_as_once() {
    let s = spec();
    let ctx = PlanContext {
        kms: None,
        create_leaves_stopped: false,
        resize_to: None,
        image: None,
    };
    let mut kinds = BTreeSet::new();
    let mut planned = BTreeSet::new();
    // Creates: provision, then boot or not.
    let image = nubis_core::images::builtin_facts(&s.image_id).unwrap();
    for start in [true, false] {
        let create = CreatePlan {
            image: image.clone(),
            instance_type: catalog::INSTANCE_TYPES[0].clone(),
            keys: vec![key("skey-a", KEY_A)],
            start,
        };
        let p = create.plan(Some(hash(ORIGINAL)));
        let d = SimDriver::new(0.0);
        let what = format!("create start={start}");
        kinds.extend(run_plan_twice(&d, &s, &p.steps, p.accept, &what).await);
    }
    for state in [
        InstanceState::Running,
        InstanceState::Stopped,
        InstanceState::Rescue,
        InstanceState::VerifyResize,
        InstanceState::VerifyResizeStopped,
        InstanceState::Paused,
        InstanceState::Suspended,
        InstanceState::Shelved,
        InstanceState::ShelvedOffloaded,
        // Soft-deleted: powered off, kept. Error: an operator's mark on a running guest.
        InstanceState::SoftDeleted,
        InstanceState::Error,
    ] {
        let mut inst = fixture::inst(state);
        inst.key_ids = vec!["skey-a".into()];
        inst.resize_from = Some("S5.SMALL2".into());
        for req in requests() {
            let Ok(p) = plan(&inst, &req, &ctx) else {
                continue; // not allowed in this state: core refuses it, no step runs
            };
            planned.insert(request_kind(&req));
            let d = guest_in(state, &s).await;
            let what = format!("{} from {state:?}", request_kind(&req));
            kinds.extend(run_plan_twice(&d, &s, &p.steps, p.accept, &what).await);
        }
    }
    let missing: Vec<_> = REQUEST_KINDS
        .iter()
        .filter(|k| !planned.contains(*k))
        .collect();
    assert!(missing.is_empty(), "requests no state plans: {missing:?}");
    let missing: Vec<_> = KINDS.iter().filter(|k| !kinds.contains(*k)).collect();
    assert!(missing.is_empty(), "steps no plan makes: {missing:?}");
}
