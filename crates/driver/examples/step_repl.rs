//! Runs the qemu driver's steps on one real guest as told on stdin, one JSON command a line,
//! answering one JSON line each: the real-guest idempotency test
//! (conformance/qemu/test_qemu_e2e.py) drives it to run steps twice, to cut a step off in the
//! middle and to restart the driver from an older snapshot, as a restart of nubis does.
//!
//! `step_repl IMAGES STATE_DIR VM_UUID`; commands:
//! - `{"cmd": "step", "step": <Step>, "turn": <Turn>|null, "cut": "new_pid"|null}`: run the
//!   step (`execute_turn`, or `execute` without a turn). With `cut`, the step is dropped as
//!   soon as a QEMU other than the one before runs (a restart in the middle of a boot).
//! - `{"cmd": "restart", "snapshot": <snapshot>|null}`: a new driver on the same state dir,
//!   restored from the snapshot given (the last committed one) or the current one.
//! - `{"cmd": "inspect"}`.
//!
//! Every answer carries `guest` (the admin view) and `snapshot`.

use nubis_core::{OsFamily, Step};
use nubis_driver::qemu::{QemuConfig, QemuDriver};
use nubis_driver::{Driver, Turn, VmSpec};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
enum Cmd {
    Step {
        step: Step,
        turn: Option<Turn>,
        #[serde(default)]
        cut: Option<String>,
    },
    Restart {
        snapshot: Option<Value>,
    },
    Inspect,
}

fn pid(d: &QemuDriver, id: Uuid) -> Option<u64> {
    d.inspect(id).and_then(|g| g["pid"].as_u64())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [images, state, uuid] = args.as_slice() else {
        return Err("usage: step_repl IMAGES STATE_DIR VM_UUID".into());
    };
    let cfg = QemuConfig::new(PathBuf::from(images), PathBuf::from(state));
    let id: Uuid = uuid.parse()?;
    let spec = VmSpec {
        uuid: id,
        os: OsFamily::Linux,
        image_id: "img-tos31x64".into(),
        system_disk: "disk-idem0001".into(),
        data_disks: vec![],
        default_user: "root".into(),
        host: None,
        cpu: 0,
        memory_mib: 0,
    };
    let mut driver: Arc<QemuDriver> = QemuDriver::new(cfg.clone())?;
    // stdin is read on a thread of its own (tokio is built without its stdio support).
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if line.map(|l| tx.send(l)).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let mut answer = json!({});
        match serde_json::from_str::<Cmd>(&line)? {
            Cmd::Step { step, turn, cut } => {
                let before = pid(&driver, id);
                let run = async {
                    match turn {
                        Some(t) => driver.execute_turn(&spec, &step, t).await,
                        None => driver.execute(&spec, &step).await,
                    }
                };
                let new_pid = async {
                    loop {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        if pid(&driver, id).is_some_and(|p| Some(p) != before) {
                            return;
                        }
                    }
                };
                let result = if cut.is_some() {
                    tokio::select! {
                        r = run => Some(r),
                        () = new_pid => None,
                    }
                } else {
                    Some(run.await)
                };
                answer["cut"] = json!(result.is_none());
                if let Some(r) = result {
                    answer["error"] = json!(r.err().map(|e| e.to_string()));
                }
            }
            Cmd::Restart { snapshot } => {
                let snap = snapshot.or_else(|| driver.snapshot(id));
                // The old driver goes as nubis does: its guests keep running.
                driver = QemuDriver::new(cfg.clone())?;
                if let Some(s) = snap {
                    driver.restore(id, s)?;
                }
            }
            Cmd::Inspect => {}
        }
        answer["guest"] = driver.inspect(id).unwrap_or(Value::Null);
        answer["snapshot"] = driver.snapshot(id).unwrap_or(Value::Null);
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}
