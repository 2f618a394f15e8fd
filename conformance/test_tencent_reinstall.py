"""ResetInstance (CVM 2017-03-12) through tencentcloud-sdk-python: the system disk reinstalled
from an image (the current one when ImageId is absent), the login the request gives
(Password, KeyIds, KeepImageLogin), a running instance stopped and started around it, and
every refusal with Tencent's code. Effects are checked with the admin guest inspection."""

import pytest

from nubis import (
    assert_op,
    describe,
    expect_error,
    latest,
    malformed_instance_id_code,
    new_password,
    random_instance_id,
    same_key,
    unique_name,
    wait_op,
    wait_settled,
)

pytestmark = pytest.mark.timeout(120)


def reset(cvm, iid, **params):
    return cvm.call("ResetInstance", InstanceId=iid, **params)["RequestId"]


def new_key(cvm) -> tuple[str, str]:
    kp = cvm.call("CreateKeyPair", KeyName=unique_name("rk").replace("-", "_"), ProjectId=0)["KeyPair"]
    return kp["KeyId"], kp["PublicKey"]


def test_stopped_linux_to_windows(cvm, admin, catalog, stopped):
    pw = new_password()
    rid = reset(cvm, stopped.id, ImageId=catalog.windows_image, LoginSettings={"Password": pw})
    inst = wait_op(cvm, stopped.id, rid)
    assert_op(inst, "ResetInstance", rid)
    assert inst["InstanceState"] == "STOPPED"
    assert inst["ImageId"] == catalog.windows_image
    g = admin.guest(stopped.id)
    assert g["power"] == "off"
    assert admin.check_password(stopped.id, "Administrator", pw)
    assert not admin.check_password(stopped.id, stopped.user, stopped.password)


def test_running_keeps_its_image_and_restarts(cvm, admin, catalog, running):
    restarts = len(admin.guest(running.id)["restarts"])
    fp = admin.guest(running.id)["host_key_fingerprint"]
    pw = new_password()
    rid = reset(cvm, running.id, LoginSettings={"Password": pw})
    inst = wait_settled(cvm, running.id, "RUNNING", rid)
    assert_op(inst, "ResetInstance", rid)
    assert inst["ImageId"] == catalog.linux_image
    g = admin.guest(running.id)
    assert g["power"] == "on" and len(g["restarts"]) > restarts
    assert g["host_key_fingerprint"] != fp
    assert admin.check_password(running.id, running.user, pw)
    assert not admin.check_password(running.id, running.user, running.password)


def test_key_ids_replace_the_login(cvm, admin, stopped):
    kid, public = new_key(cvm)
    rid = reset(cvm, stopped.id, LoginSettings={"KeyIds": [kid]})
    inst = wait_op(cvm, stopped.id, rid)
    assert_op(inst, "ResetInstance", rid)
    assert inst["LoginSettings"]["KeyIds"] == [kid]
    assert any(same_key(k, public) for k in admin.guest(stopped.id)["authorized_keys"])
    assert not admin.check_password(stopped.id, stopped.user, stopped.password)


def test_system_disk_grows(cvm, admin, stopped):
    size = describe(cvm, stopped.id)["SystemDisk"]["DiskSize"]
    rid = reset(cvm, stopped.id, SystemDisk={"DiskSize": size + 10}, LoginSettings={"KeepImageLogin": "TRUE"})
    inst = wait_op(cvm, stopped.id, rid)
    assert_op(inst, "ResetInstance", rid)
    assert inst["SystemDisk"]["DiskSize"] == size + 10
    # KeepImageLogin: the image's own login, no password of the instance's.
    assert not admin.check_password(stopped.id, stopped.user, stopped.password)


def test_refusals_change_nothing(cvm, admin, catalog, stopped):
    before = latest(cvm, stopped.id)
    kid, _ = new_key(cvm)
    size = describe(cvm, stopped.id)["SystemDisk"]["DiskSize"]
    cases = [
        ("MissingParameter", lambda: cvm.call("ResetInstance")),
        ("UnknownParameter", lambda: cvm.raw("ResetInstance", {"InstanceId": stopped.id, "ForceStop": True})),
        ("UnknownParameter", lambda: cvm.raw("ResetInstance", {"InstanceId": stopped.id,
                                                               "LoginSettings": {"Passwd": "x"}})),
        ("InvalidImageId.Malformed", lambda: reset(cvm, stopped.id, ImageId="nope")),
        ("InvalidImageId.NotFound", lambda: reset(cvm, stopped.id, ImageId="img-00000000")),
        ("InvalidPassword", lambda: reset(cvm, stopped.id, LoginSettings={"Password": "short"})),
        # 8 characters suit Linux, not the Windows image the instance would get.
        ("InvalidPassword", lambda: reset(cvm, stopped.id, ImageId=catalog.windows_image,
                                          LoginSettings={"Password": "Abcdef1!"})),
        ("UnsupportedOperation.KeyPairUnsupportedWindows",
         lambda: reset(cvm, stopped.id, ImageId=catalog.windows_image, LoginSettings={"KeyIds": [kid]})),
        ("InvalidKeyPairId.NotFound", lambda: reset(cvm, stopped.id, LoginSettings={"KeyIds": ["skey-00000000"]})),
        ("InvalidKeyPairId.Malformed", lambda: reset(cvm, stopped.id, LoginSettings={"KeyIds": ["nope"]})),
        ("InvalidParameter", lambda: reset(cvm, stopped.id,
                                           LoginSettings={"Password": new_password(), "KeyIds": [kid]})),
        ("InvalidParameterValue", lambda: reset(cvm, stopped.id, LoginSettings={"KeepImageLogin": "YES"})),
        ("InvalidParameterValue", lambda: reset(cvm, stopped.id, SystemDisk={"DiskSize": size - 10})),
        ("InvalidParameterValue", lambda: reset(cvm, stopped.id, SystemDisk={"DiskType": "LOCAL_BASIC"})),
        ("InvalidParameterValue", lambda: reset(cvm, stopped.id, SystemDisk={"DiskId": "disk-00000000"})),
        ("InvalidParameter.HostNameIllegal", lambda: reset(cvm, stopped.id, HostName="-bad-")),
        ("UnknownParameter", lambda: cvm.raw("ResetInstance", {"InstanceId": stopped.id,
                                                               "EnhancedService": {"Other": {"Enabled": True}}})),
        ("InvalidInstanceId.NotFound", lambda: reset(cvm, random_instance_id())),
        (malformed_instance_id_code("ins-1122"), lambda: reset(cvm, "ins-1122")),
    ]
    for code, call in cases:
        expect_error(code, call)
    assert latest(cvm, stopped.id) == before
    assert admin.check_password(stopped.id, stopped.user, stopped.password)


def test_wrong_state(cvm, stopped):
    rid = cvm.call("EnterRescueMode", InstanceId=stopped.id, Password=new_password())["RequestId"]
    wait_settled(cvm, stopped.id, "RESCUE_MODE", rid)
    expect_error("UnsupportedOperation.InstanceStateRescueMode", reset, cvm, stopped.id)


def test_accepted_with_the_documented_extras(cvm, admin, stopped):
    pw = new_password()
    rid = reset(cvm, stopped.id, LoginSettings={"Password": pw}, HostName="reinstalled-host",
                EnhancedService={"SecurityService": {"Enabled": False}, "MonitorService": {"Enabled": True}},
                UserData="IyEvYmluL3NoCmVjaG8gaGkK")
    inst = wait_op(cvm, stopped.id, rid)
    assert_op(inst, "ResetInstance", rid)
    assert inst["HostName"] == "reinstalled-host"
    assert admin.check_password(stopped.id, stopped.user, pw)
