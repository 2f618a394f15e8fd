"""ResetInstancesPassword (seed 001): offline reset on stopped instances, ForceStop on
running ones, batches, UserName, the Linux and Windows password rules, and the seed's
error codes. Effects are checked with the admin check-password endpoint."""

import pytest

from nubis import (
    RESET_INVALID_PASSWORD,
    assert_op,
    describe,
    expect_error,
    latest,
    launch,
    malformed_instance_id_code,
    new_password,
    random_instance_id,
    wait_op,
    wait_settled,
)

pytestmark = pytest.mark.timeout(120)


def reset(cvm, ids, password, **params):
    return cvm.call("ResetInstancesPassword", InstanceIds=ids, Password=password, **params)["RequestId"]


def test_reset_stopped_linux(slow_cvm, slow_admin, slow_make_instance):
    # OPERATING right after the request: on the slow server, where the reset lasts 2.5 s
    # (0.5 s at the default scale; conftest.SLOW_TIME_SCALE).
    cvm, admin, stopped = slow_cvm, slow_admin, slow_make_instance(state="STOPPED")
    pw = new_password()
    rid = reset(cvm, [stopped.id], pw)
    inst = describe(cvm, stopped.id)
    assert (inst["InstanceState"], inst["LatestOperation"], inst["LatestOperationState"],
            inst["LatestOperationRequestId"]) == ("STOPPED", "ResetInstancesPassword", "OPERATING", rid)
    inst = wait_op(cvm, stopped.id, rid)
    assert_op(inst, "ResetInstancesPassword", rid)
    assert inst["InstanceState"] == "STOPPED"
    assert admin.check_password(stopped.id, stopped.user, pw)
    assert not admin.check_password(stopped.id, stopped.user, stopped.password)


@pytest.mark.parametrize("force", [None, False], ids=["no-forcestop", "forcestop-false"])
def test_running_needs_force_stop(cvm, admin, running, force):
    before = latest(cvm, running.id)
    params = {} if force is None else {"ForceStop": force}
    expect_error("UnsupportedOperation.InstanceStateRunning", reset, cvm, [running.id], new_password(), **params)
    assert latest(cvm, running.id) == before
    assert admin.check_password(running.id, running.user, running.password)


def test_running_with_force_stop(cvm, admin, running):
    restarts = len(admin.guest(running.id)["restarts"])
    pw = new_password()
    rid = reset(cvm, [running.id], pw, ForceStop=True)
    inst = wait_settled(cvm, running.id, "RUNNING", rid)
    assert_op(inst, "ResetInstancesPassword", rid)
    g = admin.guest(running.id)
    assert g["power"] == "on" and len(g["restarts"]) > restarts
    assert admin.check_password(running.id, running.user, pw)
    assert not admin.check_password(running.id, running.user, running.password)


def test_batch_of_two(cvm, admin, catalog):
    a, b = launch(cvm, catalog, count=2, state="STOPPED")
    pw = new_password()
    rid = reset(cvm, [a.id, b.id], pw)
    for inst in (a, b):
        assert_op(wait_op(cvm, inst.id, rid), "ResetInstancesPassword", rid)
        assert admin.check_password(inst.id, inst.user, pw)
    ops = admin.finished_by_request(rid)
    assert len(ops) == 2 and {o["state"] for o in ops} == {"SUCCESS"}, ops


def test_user_name(cvm, admin, stopped):
    pw = new_password()
    rid = reset(cvm, [stopped.id], pw, UserName="alice")
    assert_op(wait_op(cvm, stopped.id, rid), "ResetInstancesPassword", rid)
    assert "alice" in admin.guest(stopped.id)["users"]
    assert admin.check_password(stopped.id, "alice", pw)
    # The administrator's password is untouched.
    assert admin.check_password(stopped.id, stopped.user, stopped.password)


def test_more_than_100_instances(cvm):
    ids = [random_instance_id() for _ in range(101)]
    expect_error("InvalidParameterValue.LimitExceeded", reset, cvm, ids, new_password())


def test_user_name_too_long(cvm, stopped):
    expect_error("InvalidParameterValue.TooLong", reset, cvm, [stopped.id], new_password(), UserName="u" * 65)


def test_missing_parameters(cvm, stopped):
    expect_error("MissingParameter", cvm.call, "ResetInstancesPassword", InstanceIds=[stopped.id])
    expect_error("MissingParameter", cvm.call, "ResetInstancesPassword", Password=new_password())


@pytest.mark.parametrize("iid", ["ins-1122", "i-abcdefgh"])
def test_malformed_instance_id(cvm, iid):
    expect_error(malformed_instance_id_code(iid), reset, cvm, [iid], new_password())


def test_unknown_instance(cvm):
    expect_error("InvalidInstanceId.NotFound", reset, cvm, [random_instance_id()], new_password())


def test_application_role(cvm, admin, stopped):
    admin.attributes(stopped.id, application_role="EMR")
    expect_error("FailedOperation.InvalidInstanceApplicationRole", reset, cvm, [stopped.id], new_password())
    admin.attributes(stopped.id, application_role=None)
    rid = reset(cvm, [stopped.id], new_password())
    assert_op(wait_op(cvm, stopped.id, rid), "ResetInstancesPassword", rid)


def test_reinstall_failed(cvm, admin, stopped):
    admin.attributes(stopped.id, reinstall_failed=True)
    expect_error("UnsupportedOperation.InstanceReinstallFailed", reset, cvm, [stopped.id], new_password())


def test_stopped_mode_stop_charging(cvm, running):
    rid = cvm.call("StopInstances", InstanceIds=[running.id], StoppedMode="STOP_CHARGING")["RequestId"]
    wait_settled(cvm, running.id, "STOPPED", rid)
    expect_error("UnsupportedOperation.StoppedModeStopCharging", reset, cvm, [running.id], new_password())


# --------------------------------------------------------------------------------------
# Password rules (Linux 8-30, Windows 12-30; no leading "/"; 3 of 4 classes; a Windows
# password may not contain the user name). One stopped instance of each OS for the table.


@pytest.fixture(scope="module")
def stopped_pair(server, catalog):
    cvm = server.cvm()
    linux = launch(cvm, catalog, "linux", state="STOPPED")[0]
    windows = launch(cvm, catalog, "windows", state="STOPPED")[0]
    return {"linux": linux, "windows": windows}


PASSWORD_RULES = [
    # (os, password, UserName, accepted)
    ("linux", "Abc12!x", None, False),                     # 7 characters
    ("linux", "Abcd12!x", None, True),                     # 8
    ("linux", "Abcdefgh1!" * 3, None, True),               # 30
    ("linux", "Abcdefgh1!" * 3 + "x", None, False),        # 31
    ("linux", "/Abcdefgh1!", None, False),                 # leading "/"
    ("linux", "abcdefgh12", None, False),                  # lower + digits only
    ("linux", "abcdefgh!!", None, False),                  # lower + special only
    ("linux", "abcdefgh1!", None, True),                   # lower + digit + special
    ("linux", "ABCDEFGH1a", None, True),                   # upper + digit + lower
    ("windows", "Abcdef12!xy", None, False),               # 11 characters
    ("windows", "Abcdef12!xyz", None, True),               # 12
    ("windows", "Abcdefgh1!" * 3 + "x", None, False),      # 31
    ("windows", "xAdministrator1!", None, False),          # contains the administrator's name
    ("windows", "Pw0rd!alice123", "alice", False),         # contains the given UserName
    ("windows", "Pw0rd!bobby123", "alice", True),
]


@pytest.mark.parametrize("os_family, password, user_name, accepted", PASSWORD_RULES,
                         ids=[f"{r[0]}-{i}-{'ok' if r[3] else 'bad'}" for i, r in enumerate(PASSWORD_RULES)])
def test_password_rules(cvm, admin, stopped_pair, os_family, password, user_name, accepted):
    inst = stopped_pair[os_family]
    wait_op(cvm, inst.id)  # the previous case's reset is done
    params = {"UserName": user_name} if user_name else {}
    if accepted:
        rid = reset(cvm, [inst.id], password, **params)
        assert_op(wait_op(cvm, inst.id, rid), "ResetInstancesPassword", rid)
        assert admin.check_password(inst.id, user_name or inst.user, password)
    else:
        before = latest(cvm, inst.id)
        expect_error(RESET_INVALID_PASSWORD, reset, cvm, [inst.id], password, **params)
        assert latest(cvm, inst.id) == before
        assert not admin.check_password(inst.id, user_name or inst.user, password)


def test_mixed_batch_follows_windows_rules(cvm, admin, stopped_pair):
    """8 characters of 3 classes is a good Linux password but too short for Windows."""
    ids = [stopped_pair["linux"].id, stopped_pair["windows"].id]
    for iid in ids:
        wait_op(cvm, iid)
    before = [latest(cvm, iid) for iid in ids]
    expect_error(RESET_INVALID_PASSWORD, reset, cvm, ids, "Wxyz34#q")
    assert [latest(cvm, iid) for iid in ids] == before
    for inst in stopped_pair.values():
        assert not admin.check_password(inst.id, inst.user, "Wxyz34#q")
