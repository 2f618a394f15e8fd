"""EnterRescueMode / ExitRescueMode (seed 000): the rescue system boots with the original
system disk attached second, takes the rescue password, and goes away again on exit; and
every error code the seed lists, provoked for a reason a test can set up."""

import pytest

from nubis import (
    RESCUE_INVALID_PASSWORD,
    assert_op,
    describe,
    expect_error,
    latest,
    launch,
    malformed_instance_id_code,
    new_password,
    random_instance_id,
    ssh_public_key,
    system_disk,
    wait_op,
    wait_settled,
)

pytestmark = pytest.mark.timeout(120)


def enter(cvm, iid, password, **params):
    return cvm.call("EnterRescueMode", InstanceId=iid, Password=password, **params)["RequestId"]


@pytest.mark.parametrize("params", [
    {},
    {"StopType": "SOFT"},
    {"StopType": "HARD"},
    {"StopType": "SOFT_FIRST", "Username": "rescuer"},
    {"ForceStop": True},
    {"ForceStop": False},
], ids=["default", "soft", "hard", "soft-first-username", "forcestop-true", "forcestop-false"])
def test_enter_and_exit_rescue(slow_cvm, slow_admin, slow_running, params):
    # ENTER_/EXIT_RESCUE_MODE right after the request: on the slow server
    # (conftest.SLOW_TIME_SCALE; an exit lasts 0.35 s at the default scale).
    cvm, admin, running = slow_cvm, slow_admin, slow_running
    before = admin.guest(running.id)
    sys_disk = system_disk(before)
    assert before["booted_from"] == "system" and before["boot_disk"] == sys_disk
    rescue_pw = new_password()
    rescue_user = params.get("Username", "root")

    rid = enter(cvm, running.id, rescue_pw, **params)
    inst = describe(cvm, running.id)
    assert inst["InstanceState"] == "ENTER_RESCUE_MODE"
    assert (inst["LatestOperation"], inst["LatestOperationState"], inst["LatestOperationRequestId"]) == (
        "EnterRescueMode", "OPERATING", rid)
    inst = wait_settled(cvm, running.id, "RESCUE_MODE", rid)
    assert_op(inst, "EnterRescueMode", rid)

    g = admin.guest(running.id)
    assert g["booted_from"] == "rescue" and g["power"] == "on"
    rescue_disks = [d["id"] for d in g["disks"] if d["role"] == "rescue"]
    assert len(rescue_disks) == 1 and g["boot_disk"] == rescue_disks[0], g
    assert g["attached_disks_order"][:2] == [rescue_disks[0], sys_disk], g
    assert admin.check_password(running.id, rescue_user, rescue_pw)
    assert not admin.check_password(running.id, running.user, running.password)

    rid = cvm.call("ExitRescueMode", InstanceId=running.id)["RequestId"]
    assert describe(cvm, running.id)["InstanceState"] == "EXIT_RESCUE_MODE"
    inst = wait_settled(cvm, running.id, "RUNNING", rid)
    assert_op(inst, "ExitRescueMode", rid)

    g = admin.guest(running.id)
    assert g["booted_from"] == "system" and g["boot_disk"] == sys_disk and g["power"] == "on", g
    assert not any(d["role"] == "rescue" for d in g["disks"]), g
    assert admin.check_password(running.id, running.user, running.password)
    assert not admin.check_password(running.id, rescue_user, rescue_pw)


def test_soft_stop_that_fails(cvm, admin, running):
    """SOFT gives up when the guest ignores the ACPI shutdown; SOFT_FIRST falls back to a
    hard stop."""
    admin.faults(running.id, soft_stop_fails=True)
    rid = enter(cvm, running.id, new_password(), StopType="SOFT")
    inst = wait_op(cvm, running.id, rid, timeout=90)
    assert_op(inst, "EnterRescueMode", rid, "FAILED")
    assert inst["InstanceState"] == "RUNNING"
    assert admin.guest(running.id)["booted_from"] == "system"
    assert admin.check_password(running.id, running.user, running.password)

    restarts = len(admin.guest(running.id)["restarts"])
    rid = enter(cvm, running.id, new_password(), StopType="SOFT_FIRST")
    inst = wait_settled(cvm, running.id, "RESCUE_MODE", rid, timeout=90)
    assert_op(inst, "EnterRescueMode", rid)
    g = admin.guest(running.id)
    assert g["booted_from"] == "rescue"
    assert any(r["kind"] == "hard" for r in g["restarts"][restarts:]), g["restarts"]


def test_soft_stop_is_graceful(cvm, admin, running):
    """A successful SOFT entry stops the guest gracefully."""
    restarts = len(admin.guest(running.id)["restarts"])
    rid = enter(cvm, running.id, new_password(), StopType="SOFT")
    wait_settled(cvm, running.id, "RESCUE_MODE", rid)
    new = admin.guest(running.id)["restarts"][restarts:]
    assert new and all(r["kind"] == "graceful" for r in new), new


# --------------------------------------------------------------------------------------
# Parameter errors: refused before anything happens, nothing changes.

GOOD = "Qcloud@TestApi123++"


@pytest.mark.parametrize("params, code", [
    ({"Password": "Abc12!x"}, RESCUE_INVALID_PASSWORD),                     # 7 characters
    ({"Password": "Abcdefgh1!" * 3 + "x"}, RESCUE_INVALID_PASSWORD),        # 31 characters
    ({"Password": "/Abcdefgh1!"}, RESCUE_INVALID_PASSWORD),                 # leading "/"
    ({"Password": "abcdefgh12"}, RESCUE_INVALID_PASSWORD),                  # two classes
    ({"Password": None}, "MissingParameter"),
    ({"StopType": "FORCE"}, "InvalidParameterValue"),
    ({"StopType": "soft"}, "InvalidParameterValue"),
], ids=["pw-7", "pw-31", "pw-slash", "pw-2-classes", "no-password", "stoptype-force", "stoptype-lower"])
def test_parameter_errors(cvm, running, params, code):
    before = latest(cvm, running.id)
    body = {"InstanceId": running.id, "Password": GOOD, **params}
    body = {k: v for k, v in body.items() if v is not None}
    expect_error(code, cvm.call, "EnterRescueMode", **body)
    assert latest(cvm, running.id) == before


def test_unknown_parameter(cvm, running):
    before = latest(cvm, running.id)
    expect_error("UnknownParameter", cvm.raw, "EnterRescueMode",
                 {"InstanceId": running.id, "Password": GOOD, "RescueImageId": "img-12345678"})
    assert latest(cvm, running.id) == before


def test_missing_instance_id(cvm):
    expect_error("MissingParameter", cvm.call, "EnterRescueMode", Password=GOOD)


@pytest.mark.parametrize("iid", ["ins-1122", "ins-ABCDEFGH", "ins-abcdefghi", "i-abcdefgh", "abc-12345678"])
def test_malformed_instance_id(cvm, iid):
    expect_error(malformed_instance_id_code(iid), cvm.call, "EnterRescueMode", InstanceId=iid, Password=GOOD)
    expect_error(malformed_instance_id_code(iid), cvm.call, "ExitRescueMode", InstanceId=iid)


def test_unknown_instance(cvm):
    expect_error("InvalidInstanceId.NotFound", cvm.call, "EnterRescueMode",
                 InstanceId=random_instance_id(), Password=GOOD)
    expect_error("InvalidInstanceId.NotFound", cvm.call, "ExitRescueMode", InstanceId=random_instance_id())


# --------------------------------------------------------------------------------------
# State errors: each transitional state, provoked by a request and hit right after it.


def _stop(cvm, inst):
    return cvm.call("StopInstances", InstanceIds=[inst.id])["RequestId"]


def _start(cvm, inst):
    return cvm.call("StartInstances", InstanceIds=[inst.id])["RequestId"]


def _reboot(cvm, inst):
    return cvm.call("RebootInstances", InstanceIds=[inst.id])["RequestId"]


def _terminate(cvm, inst):
    return cvm.call("TerminateInstances", InstanceIds=[inst.id])["RequestId"]


def _enter(cvm, inst):
    return enter(cvm, inst.id, new_password())


def _exit(cvm, inst):
    rid = enter(cvm, inst.id, new_password())
    wait_settled(cvm, inst.id, "RESCUE_MODE", rid)
    return cvm.call("ExitRescueMode", InstanceId=inst.id)["RequestId"]


# The engine checks state before the lock (DESIGN.md, engine): a second EnterRescueMode while
# ENTER_RESCUE_MODE gets the state code, not MutexOperation.TaskRunning (that one is for a
# same-action request on an instance whose state allows it: see the last test of this file).
STATE_CASES = [
    # (start state, request that moves it, state it shows, code for EnterRescueMode then)
    ("RUNNING", _stop, "STOPPING", "UnsupportedOperation.InstanceStateStopping"),
    ("STOPPED", _start, "STARTING", "UnsupportedOperation.InstanceStateStarting"),
    ("RUNNING", _reboot, "REBOOTING", "UnsupportedOperation.InstanceStateRebooting"),
    ("RUNNING", _terminate, "TERMINATING", "UnsupportedOperation.InstanceStateTerminating"),
    ("RUNNING", _enter, "ENTER_RESCUE_MODE", "UnsupportedOperation.InstanceStateEnterRescueMode"),
    ("RUNNING", _exit, "EXIT_RESCUE_MODE", "UnsupportedOperation.InstanceStateExitRescueMode"),
]


@pytest.mark.parametrize("start, move, shows, code", STATE_CASES, ids=[c[2] for c in STATE_CASES])
def test_state_errors(slow_cvm, slow_make_instance, start, move, shows, code):
    # Two requests inside the transitional state: on the slow server (conftest.SLOW_TIME_SCALE).
    cvm = slow_cvm
    inst = slow_make_instance(state=start)
    move(cvm, inst)
    expect_error(code, enter, cvm, inst.id, new_password())
    assert describe(cvm, inst.id)["InstanceState"] == shows


def test_pending(slow_cvm, slow_catalog):
    cvm = slow_cvm  # on the slow server (conftest.SLOW_TIME_SCALE)
    inst = launch(cvm, slow_catalog, state=None)[0]
    expect_error("UnsupportedOperation.InstanceStatePending", enter, cvm, inst.id, new_password())
    assert describe(cvm, inst.id)["InstanceState"] == "PENDING"


def test_other_actions_while_entering_rescue(slow_cvm, slow_running):
    cvm, running = slow_cvm, slow_running  # on the slow server (conftest.SLOW_TIME_SCALE)
    enter(cvm, running.id, new_password())
    code = "UnsupportedOperation.InstanceStateEnterRescueMode"
    expect_error(code, cvm.call, "RebootInstances", InstanceIds=[running.id])
    expect_error(code, cvm.call, "ResetInstancesPassword", InstanceIds=[running.id],
                 Password=new_password(), ForceStop=True)


def test_in_rescue_mode(cvm, running, tmp_path):
    rid = enter(cvm, running.id, new_password())
    wait_settled(cvm, running.id, "RESCUE_MODE", rid)
    code = "UnsupportedOperation.InstanceStateRescueMode"
    expect_error(code, enter, cvm, running.id, new_password())
    expect_error(code, cvm.call, "ResetInstancesPassword", InstanceIds=[running.id],
                 Password=new_password(), ForceStop=True)
    key = cvm.call("ImportKeyPair", KeyName=f"rescue_{running.id[4:]}", ProjectId=0,
                   PublicKey=ssh_public_key(tmp_path))["KeyId"]
    expect_error(code, cvm.call, "AssociateInstancesKeyPairs", InstanceIds=[running.id],
                 KeyIds=[key], ForceStop=True)
    assert latest(cvm, running.id) == ("RESCUE_MODE", "EnterRescueMode", rid)


# --------------------------------------------------------------------------------------
# Restrictions, instance attributes, and operations in progress.

RESTRICTIONS = [
    ("expired", "UnsupportedOperation.InstanceStateShutdown"),
    ("isolating", "UnsupportedOperation.InstanceStateIsolating"),
    ("frozen", "UnsupportedOperation.InstanceStateFreezing"),
    ("banned", "UnsupportedOperation.InstanceStateBanning"),
]


@pytest.mark.parametrize("restriction, code", RESTRICTIONS, ids=[r[0] for r in RESTRICTIONS])
def test_restricted_instance(cvm, admin, running, tmp_path, restriction, code):
    key = cvm.call("ImportKeyPair", KeyName=f"restr_{running.id[4:]}", ProjectId=0,
                   PublicKey=ssh_public_key(tmp_path))["KeyId"]
    before = latest(cvm, running.id)
    admin.restrict(running.id, restriction)
    assert admin.instance(running.id)["restriction"] == restriction
    expect_error(code, enter, cvm, running.id, new_password())
    expect_error(code, cvm.call, "ResetInstancesPassword", InstanceIds=[running.id],
                 Password=new_password(), ForceStop=True)
    expect_error(code, cvm.call, "AssociateInstancesKeyPairs", InstanceIds=[running.id],
                 KeyIds=[key], ForceStop=True)
    assert latest(cvm, running.id) == before
    admin.restrict(running.id, "none")
    rid = enter(cvm, running.id, new_password())
    wait_settled(cvm, running.id, "RESCUE_MODE", rid)


def test_stopped_mode_stop_charging(cvm, running):
    rid = cvm.call("StopInstances", InstanceIds=[running.id], StoppedMode="STOP_CHARGING")["RequestId"]
    inst = wait_settled(cvm, running.id, "STOPPED", rid)
    assert inst["StopChargingMode"] == "STOP_CHARGING"
    expect_error("UnsupportedOperation.StoppedModeStopCharging", enter, cvm, running.id, new_password())


def test_reinstall_failed(cvm, admin, running):
    admin.attributes(running.id, reinstall_failed=True)
    expect_error("UnsupportedOperation.InstanceReinstallFailed", enter, cvm, running.id, new_password())
    admin.attributes(running.id, reinstall_failed=False)
    rid = enter(cvm, running.id, new_password())
    wait_settled(cvm, running.id, "RESCUE_MODE", rid)


def test_operation_in_progress_on_stopped_instance(slow_cvm, tmp_path, slow_make_instance):
    """A password reset on a STOPPED instance keeps the state and holds the lock: another
    action gets OperationDenied.InstanceOperationInProgress, the same one
    MutexOperation.TaskRunning. (Four requests inside the reset: on the slow server, where it
    lasts 2.5 s, 0.5 s at the default scale; conftest.SLOW_TIME_SCALE.)"""
    cvm, stopped = slow_cvm, slow_make_instance(state="STOPPED")
    key = cvm.call("ImportKeyPair", KeyName=f"busy_{stopped.id[4:]}", ProjectId=0,
                   PublicKey=ssh_public_key(tmp_path))["KeyId"]
    rid = cvm.call("ResetInstancesPassword", InstanceIds=[stopped.id], Password=new_password())["RequestId"]
    inst = describe(cvm, stopped.id)
    assert (inst["InstanceState"], inst["LatestOperation"], inst["LatestOperationState"],
            inst["LatestOperationRequestId"]) == ("STOPPED", "ResetInstancesPassword", "OPERATING", rid)
    expect_error("OperationDenied.InstanceOperationInProgress", enter, cvm, stopped.id, new_password())
    expect_error("OperationDenied.InstanceOperationInProgress", cvm.call, "AssociateInstancesKeyPairs",
                 InstanceIds=[stopped.id], KeyIds=[key])
    expect_error("MutexOperation.TaskRunning", cvm.call, "ResetInstancesPassword",
                 InstanceIds=[stopped.id], Password=new_password())
    inst = wait_op(cvm, stopped.id, rid)
    assert_op(inst, "ResetInstancesPassword", rid)
