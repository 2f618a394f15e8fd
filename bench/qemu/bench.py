#!/usr/bin/env python3
"""QEMU driver timings (issue 6 targets), measured through the official clients against a
real `nubis serve --driver qemu`, next to a baseline in the same run: the same guest image
booted by a bare QEMU with the driver's command line (no nubis, no config drive).

    .venv/bin/python bench/qemu/bench.py [--runs 3] [--json out.json]

Needs target/release/nubis, qemu-system-x86 and guest/out (scripts/setup-qemu)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "conformance"))

import nubis  # noqa: E402
from guest_ssh import Login, ssh_tag  # noqa: E402
from nubis import describe, ecs_client, ecs_wait_settled, new_password, wait_settled  # noqa: E402

IMAGES = REPO / "guest" / "out"
results: dict[str, list[float]] = {}


def record(name: str, seconds: float) -> None:
    results.setdefault(name, []).append(round(seconds, 3))


def banner(port: int, deadline: float) -> float:
    """Seconds until an SSH banner is read on 127.0.0.1:port."""
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.5) as s:
                s.settimeout(1.5)
                if s.recv(4) == b"SSH-":
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("no SSH banner")


def raw_qemu_boot(tmp: Path) -> None:
    """Baseline: the guest booted by QEMU alone, power button to exit."""
    disk = tmp / f"raw-{secrets.token_hex(3)}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    str(IMAGES / "system.qcow2"), str(disk)], check=True)
    port = nubis.free_port()
    qmp = tmp / f"qmp-{secrets.token_hex(3)}.sock"
    cmd = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-machine", "pc",
           "-accel", "tcg,tb-size=32", "-m", "128", "-smp", "1", "-display", "none",
           "-kernel", str(IMAGES / "vmlinux"), "-initrd", str(IMAGES / "initrd.cpio"),
           "-append", "console=ttyS0 root=/dev/vda rw panic=-1",
           "-drive", f"file={disk},if=none,id=disk0,format=qcow2,cache=writeback",
           "-device", "virtio-blk-pci,drive=disk0",
           "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
           "-device", "virtio-net-pci,netdev=n0", "-device", "virtio-rng-pci",
           "-qmp", f"unix:{qmp},server=on,wait=off", "-serial", "null"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        banner(port, t0 + 60)
        record("baseline: bare QEMU spawn → SSH banner", time.monotonic() - t0)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(qmp))
            f = s.makefile("rwb")
            f.readline()
            for c in ("qmp_capabilities", "system_powerdown"):
                f.write(json.dumps({"execute": c}).encode() + b"\n")
                f.flush()
                f.readline()
            t1 = time.monotonic()
            p.wait(timeout=30)
            record("baseline: bare QEMU power button → exit", time.monotonic() - t1)
    finally:
        p.kill()
        p.wait()


def settle_time(fn, *args, **kw) -> float:
    t0 = time.monotonic()
    fn(*args, **kw)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", default=str(REPO / "target" / "qemu-bench.json"))
    args = ap.parse_args()

    build = str(REPO / "guest" / "build")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        subprocess.run([build, out], check=True, stdout=subprocess.DEVNULL)
        record("image build, packages cached (fresh output dir)", time.monotonic() - t0)
        t0 = time.monotonic()
        subprocess.run([build, out], check=True, stdout=subprocess.DEVNULL)
        record("image build, nothing changed", time.monotonic() - t0)

    tmp = Path(tempfile.mkdtemp(prefix="nubis-qbench-"))
    server = nubis.Server("qbench", str(REPO / "target" / "release" / "nubis"), tmp,
                          {"NUBIS_DRIVER": "qemu", "NUBIS_QEMU_IMAGES": str(IMAGES),
                           "NUBIS_RATE_LIMITS": "off"})
    server.start()
    try:
        cvm, admin = server.cvm(), server.admin
        ecs = ecs_client(server, "legacy")
        zone = next(z["Zone"] for z in cvm.call("DescribeZones")["ZoneSet"] if "edge" not in z["Zone"])
        for _ in range(args.runs):
            raw_qemu_boot(tmp)

        pw = new_password()
        t0 = time.monotonic()
        [iid] = cvm.call("RunInstances", Placement={"Zone": zone}, ImageId="img-deb12x64",
                         LoginSettings={"Password": pw})["InstanceIdSet"]
        wait_settled(cvm, iid, "RUNNING", timeout=120)
        record("RunInstances → RUNNING (API)", time.monotonic() - t0)
        ep = ssh_tag(describe(cvm, iid))
        ali = admin.instance(iid)["aliyun_id"]
        for _ in range(args.runs):
            rid = cvm.call("StopInstances", InstanceIds=[iid], StopType="SOFT")["RequestId"]
            record("StopInstances SOFT → STOPPED (API)",
                   settle_time(wait_settled, cvm, iid, "STOPPED", rid, timeout=60))
            t0 = time.monotonic()
            rid = cvm.call("StartInstances", InstanceIds=[iid])["RequestId"]
            wait_settled(cvm, iid, "RUNNING", rid, timeout=120)
            record("StartInstances → RUNNING (API)", time.monotonic() - t0)
            record("driver: QEMU spawn → SSH banner", admin.guest(iid)["last_boot_ms"] / 1000)
            t0 = time.monotonic()
            with Login(ep, "root", password=pw) as s:
                s.run("true")
            record("SSH password login + command (after RUNNING)", time.monotonic() - t0)
        for _ in range(args.runs):
            pw = new_password()
            t0 = time.monotonic()
            ecs.call("ModifyInstanceAttribute", InstanceId=ali, Password=pw)
            ecs_wait_settled(ecs, admin, ali, "Running", timeout=60)
            record("agent password change (ModifyInstanceAttribute → settled)", time.monotonic() - t0)
            with Login(ep, "root", password=pw) as s:
                s.run("true")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "k")], check=True)
        name = f"bench_{secrets.token_hex(3)}"
        ecs.call("ImportKeyPair", KeyPairName=name, PublicKeyBody=(tmp / "k.pub").read_text().strip())
        for _ in range(args.runs):
            t0 = time.monotonic()
            ecs.call("AttachKeyPair", KeyPairName=name, InstanceIds=[ali])
            ecs_wait_settled(ecs, admin, ali, "Running", timeout=60)
            record("agent key add (AttachKeyPair → settled)", time.monotonic() - t0)
            ecs.call("DetachKeyPair", KeyPairName=name, InstanceIds=[ali])
            ecs_wait_settled(ecs, admin, ali, "Running", timeout=60)
        for _ in range(args.runs):
            rpw = new_password()
            t0 = time.monotonic()
            rid = cvm.call("EnterRescueMode", InstanceId=iid, Password=rpw)["RequestId"]
            wait_settled(cvm, iid, "RESCUE_MODE", rid, timeout=120)
            with Login(ep, "root", password=rpw) as s:
                s.run("mount /dev/vdb /mnt && touch /mnt/root/rescued && umount /mnt")
            rid = cvm.call("ExitRescueMode", InstanceId=iid)["RequestId"]
            wait_settled(cvm, iid, "RUNNING", rid, timeout=120)
            with Login(ep, "root", password=pw) as s:
                s.run("test -f /root/rescued")
            record("rescue round trip (enter → SSH → edit vdb → exit → SSH)", time.monotonic() - t0)
        pid = admin.guest(iid)["pid"]
        rss = next(int(x.split()[1]) for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if x.startswith("VmRSS:"))
        record("QEMU RSS, 1 guest (MiB)", rss / 1024)
        cvm.call("TerminateInstances", InstanceIds=[iid])

        for _ in range(max(1, args.runs // 3)):
            ids = cvm.call("RunInstances", Placement={"Zone": zone}, ImageId="img-deb12x64", InstanceCount=3,
                           LoginSettings={"Password": pw})["InstanceIdSet"]
            for i in ids:
                wait_settled(cvm, i, "RUNNING", timeout=180)
                record("3 at once: driver QEMU spawn → SSH banner, each", admin.guest(i)["last_boot_ms"] / 1000)
            for i in ids:
                pid = admin.guest(i)["pid"]
                rss = next(int(x.split()[1]) for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if x.startswith("VmRSS:"))
                record("3 at once: QEMU RSS per guest (MiB)", rss / 1024)
            cvm.call("TerminateInstances", InstanceIds=ids)
            for i in ids:
                nubis.wait_until(lambda i=i: describe(cvm, i) is None, 60, 0.2, "terminate")
    finally:
        server.stop()
        for pidfile in (server.data_dir / "qemu" / "vms").glob("*/qemu.pid"):
            try:
                os.kill(int(pidfile.read_text()), 9)
            except (ValueError, ProcessLookupError):
                pass
        shutil.rmtree(tmp, ignore_errors=True)

    cpu = next((x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                if x.startswith("model name")), platform.processor())
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} vCPU {cpu}, "
          f"{subprocess.run(['qemu-system-x86_64', '--version'], capture_output=True, text=True).stdout.splitlines()[0]}")
    print("| what | runs | median | min | max |\n|---|---:|---:|---:|---:|")
    for k, v in results.items():
        print(f"| {k} | {len(v)} | {statistics.median(v):.2f} | {min(v):.2f} | {max(v):.2f} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
