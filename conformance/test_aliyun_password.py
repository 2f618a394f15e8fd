"""ModifyInstanceAttribute (spec §6): a new Password on a stopped instance is what the guest
accepts once the operation settles; InstanceName/Description changes are visible; a password
that breaks the rules is refused with 400 InvalidPassword.Malformed and changes nothing."""

import pytest

from nubis import (
    ecs_describe,
    ecs_snapshot,
    ecs_wait_settled,
    expect_ecs_error,
    new_password,
    unique_name,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)


def test_password_and_name_on_stopped_instance(ecs_any, admin, ali_stopped):
    iid = ali_stopped.id
    password = new_password()
    name = unique_name("renamed")
    rid = ecs_any.call("ModifyInstanceAttribute", InstanceId=iid, Password=password, InstanceName=name,
                       Description="changed by the conformance suite")["RequestId"]
    assert rid
    # The change keeps the instance Stopped while it is applied offline.
    assert ecs_describe(ecs_any, iid)["Status"] == "Stopped"
    ecs_wait_settled(ecs_any, admin, iid, "Stopped")
    wait_until(lambda: admin.check_password(iid, ali_stopped.user, password), 30, 0.1,
               "the new password to be accepted")
    assert not admin.check_password(iid, ali_stopped.user, ali_stopped.password)
    inst = ecs_describe(ecs_any, iid)
    assert inst["InstanceName"] == name
    assert inst["Description"] == "changed by the conformance suite"
    assert admin.guest(iid)["power"] == "off"

    # And it is the password the instance boots with.
    ecs_any.call("StartInstance", InstanceId=iid)
    ecs_wait_settled(ecs_any, admin, iid, "Running")
    assert admin.check_password(iid, ali_stopped.user, password)


def test_rename_running_instance(ecs_any, admin, ali_running):
    name = unique_name("renamed")
    ecs_any.call("ModifyInstanceAttribute", InstanceId=ali_running.id, InstanceName=name)
    assert ecs_describe(ecs_any, ali_running.id)["InstanceName"] == name
    assert ecs_any.call("DescribeInstances", InstanceName=name)["TotalCount"] == 1
    assert admin.check_password(ali_running.id, ali_running.user, ali_running.password)


BAD_PASSWORDS = [
    "Ab1!xyz",                    # 7 characters
    "Abcdefgh1!" * 3 + "x",       # 31 characters
    "abcdefgh12",                 # two classes (lower, digit)
    "ABCDEFGHIJ",                 # one class
    "Abcdefgh1\"",                # '"' is not among the allowed special characters
    "Abcdefgh 1!",                # nor is a space
]


@pytest.mark.parametrize("password", BAD_PASSWORDS, ids=["7", "31", "2-classes", "1-class", "quote", "space"])
def test_malformed_password(ecs_any, admin, ali_stopped, password):
    iid = ali_stopped.id
    before = ecs_snapshot(ecs_any, admin, iid)
    name_before = ecs_describe(ecs_any, iid)["InstanceName"]
    expect_ecs_error(400, "InvalidPassword.Malformed", ecs_any.call, "ModifyInstanceAttribute",
                     InstanceId=iid, Password=password, InstanceName=unique_name("nope"))
    assert ecs_snapshot(ecs_any, admin, iid) == before
    assert ecs_describe(ecs_any, iid)["InstanceName"] == name_before, "a refused request changed the name"
    assert admin.check_password(iid, ali_stopped.user, ali_stopped.password)


def test_windows_password_may_not_start_with_slash(ecs_any, admin, ali_make_instance):
    inst = ali_make_instance(os_family="windows", status="Stopped")
    expect_ecs_error(400, "InvalidPassword.Malformed", ecs_any.call, "ModifyInstanceAttribute",
                     InstanceId=inst.id, Password="/Abcdefgh12!x")
    assert admin.check_password(inst.id, inst.user, inst.password)
