"""Issue 17 on a real guest: the web console's serial console. A guest created with a
password through Tencent CVM; in headless Chromium the console's serial page shows the boot
log and a terminal attached to the guest's serial port; the test logs in as root with that
password, runs a command and reads its output from the terminal. A second, read-only session
(a CAM sub-user allowed only cvm:Describe*) watches the same port: it sees the output, and
what it types never reaches the guest. Screenshots go to console-screenshots/ like the other
console tests'."""
from __future__ import annotations

import json
import time

import pytest
from selenium.webdriver.common.by import By

from browser import new_browser, screenshot_dir, sign_in_with_key, terminal_text, wait
from nubis import describe, new_password, unique_name, wait_settled
from test_cam import CAM_READ_ONLY, Cam, new_account
from test_qemu_e2e import linux_image, qemu_server, zone

pytestmark = [pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def qserver(nubis_bin, tmp_path_factory):
    with qemu_server(nubis_bin, tmp_path_factory, "qemu-console") as s:
        yield s


def type_into(b, text: str) -> None:
    b.find_element(By.CSS_SELECTOR, "#terminal textarea").send_keys(text)


def test_serial_console_of_a_real_guest(qserver):
    _, root = new_account(qserver)
    cvm = qserver.cvm(secret_id=root[0], secret_key=root[1], retry=False)
    password = new_password()
    iid = cvm.call("RunInstances", Placement={"Zone": zone(cvm)}, ImageId=linux_image(cvm), InstanceName=unique_name("ser"),
                   LoginSettings={"Password": password})["InstanceIdSet"][0]
    wait_settled(cvm, iid, "RUNNING", timeout=180)
    uuid = qserver.admin.instance(iid)["id"]
    # A read-only sub-user of the same account.
    cam = Cam(qserver.endpoint, root)
    uin = cam.call("AddUser", Name="watcher")["Uin"]
    key = cam.call("CreateAccessKey", TargetUin=uin)["AccessKey"]
    pid = cam.call("CreatePolicy", PolicyName="ro", PolicyDocument=json.dumps(CAM_READ_ONLY))["PolicyId"]
    cam.call("AttachUserPolicy", PolicyId=pid, AttachUin=uin)

    shots = screenshot_dir()
    b, watcher = new_browser(), new_browser()
    try:
        sign_in_with_key(b, qserver.base_url, root)
        b.get(f"{qserver.base_url}/console/instances/{uuid}")
        b.find_element(By.ID, "serial-link").click()
        assert "Linux version" in b.find_element(By.ID, "boot-log").text
        wait(b, lambda: b.find_element(By.ID, "serial-status").text == "connected", 30, "connected")
        # The page sends a carriage return on connect: a fresh login prompt.
        wait(b, lambda: "login:" in terminal_text(b), 60, "login prompt")
        type_into(b, "root\n")
        wait(b, lambda: "Password:" in terminal_text(b), 30, "password prompt")
        type_into(b, password + "\n")
        wait(b, lambda: terminal_text(b).rstrip().endswith("#"), 30, "shell prompt")
        type_into(b, "echo nubis-$((6*7)) $(id -un)\n")
        wait(b, lambda: "nubis-42 root" in terminal_text(b), 30, "the command's output")

        # The read-only watcher sees what the guest prints, and cannot type into it.
        sign_in_with_key(watcher, qserver.base_url, (key["AccessKeyId"], key["SecretAccessKey"]))
        watcher.get(f"{qserver.base_url}/console/instances/{uuid}/serial")
        wait(watcher, lambda: watcher.find_element(By.ID, "serial-status").text == "connected (read-only)", 30,
             "watcher connected")
        type_into(b, "echo seen-by-$((2+3))\n")
        wait(watcher, lambda: "seen-by-5" in terminal_text(watcher), 30, "the watcher sees the output")
        type_into(watcher, "touch /tmp/watcher-was-here\n")
        time.sleep(1)
        type_into(b, "ls /tmp/watcher-was-here || echo absent-$((1+1))\n")
        wait(b, lambda: "absent-2" in terminal_text(b), 30, "the watcher's keys never arrived")
        b.save_screenshot(str(shots / "serial-console.png"))
        type_into(b, "exit\n")
    finally:
        for name, x in (("serial", b), ("serial-watcher", watcher)):
            x.save_screenshot(str(shots / f"last-{name}.png"))
            x.quit()
    # Both connections are in the account's audit trail.
    events = qserver.admin.get(f"audit-events?resource={uuid}&cloud=console")["events"]
    assert sorted(e["action"] for e in events) == ["ConnectSerialConsole", "WatchSerialConsole"], events
    assert describe(cvm, iid)["InstanceState"] == "RUNNING"
