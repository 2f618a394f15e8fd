"""ReplaceSystemDisk (ECS 2014-05-26) through both official SDK generations: a stopped
instance's system disk reinstalled from an image with the password or key pair the request
gives; a running one refused (403 IncorrectInstanceStatus); every bad input answered with
ECS's code. Effects are checked with the admin guest inspection."""

import pytest

from nubis import (
    describe,
    ecs_describe,
    ecs_snapshot,
    ecs_wait_settled,
    expect_ecs_error,
    new_password,
    random_aliyun_instance_id,
    unique_name,
)

pytestmark = pytest.mark.timeout(120)


def replace(ecs, iid, **params):
    return ecs.call("ReplaceSystemDisk", InstanceId=iid, **params)


def system_disk(server, iid) -> dict:
    """The instance's system disk as Tencent's DescribeInstances shows it (ECS's own
    DescribeDisks is not served)."""
    return describe(server.cvm(), server.admin.instance(iid)["tencent_id"])["SystemDisk"]


def test_stopped_linux_to_windows(server, ecs_any, admin, ali_catalog, ali_stopped):
    iid = ali_stopped.id
    disk = system_disk(server, iid)["DiskId"]
    pw = new_password()
    out = replace(ecs_any, iid, ImageId=ali_catalog.windows_image, Password=pw)
    assert out["DiskId"] == disk and out["RequestId"]
    inst = ecs_wait_settled(ecs_any, admin, iid, "Stopped")
    assert inst["ImageId"] == ali_catalog.windows_image
    assert inst["OSType"] == "windows"
    assert admin.check_password(iid, "Administrator", pw)
    assert not admin.check_password(iid, ali_stopped.user, ali_stopped.password)
    assert admin.guest(iid)["power"] == "off"


def test_key_pair_and_bigger_disk(server, ecs_any, admin, ali_catalog, ali_stopped):
    iid = ali_stopped.id
    name = unique_name("rk")
    ecs_any.call("CreateKeyPair", KeyPairName=name)
    size = system_disk(server, iid)["DiskSize"]
    replace(ecs_any, iid, ImageId=ali_catalog.linux_image, KeyPairName=name, SystemDisk={"Size": size + 20})
    inst = ecs_wait_settled(ecs_any, admin, iid, "Stopped")
    assert inst["KeyPairName"] == name
    assert system_disk(server, iid)["DiskSize"] == size + 20
    assert len(admin.guest(iid)["authorized_keys"]) == 1
    # The key pair replaces the password login.
    assert not admin.check_password(iid, ali_stopped.user, ali_stopped.password)


def test_running_is_refused(ecs_any, admin, ali_catalog, ali_running):
    before = ecs_snapshot(ecs_any, admin, ali_running.id)
    expect_ecs_error(403, "IncorrectInstanceStatus", replace, ecs_any, ali_running.id,
                     ImageId=ali_catalog.linux_image, Password=new_password())
    assert ecs_snapshot(ecs_any, admin, ali_running.id) == before
    assert admin.check_password(ali_running.id, ali_running.user, ali_running.password)


def test_bad_inputs_change_nothing(server, ecs, admin, ali_catalog, ali_stopped):
    iid = ali_stopped.id
    linux = ali_catalog.linux_image
    size = system_disk(server, iid)["DiskSize"]
    before = ecs_snapshot(ecs, admin, iid)
    cases = [
        (400, "MissingParameter", lambda: ecs.common("ReplaceSystemDisk", ImageId=linux)),
        (400, "MissingParameter", lambda: ecs.common("ReplaceSystemDisk", InstanceId=iid)),
        (404, "InvalidInstanceId.NotFound", lambda: replace(ecs, random_aliyun_instance_id(), ImageId=linux)),
        (404, "InvalidImageId.NotFound", lambda: replace(ecs, iid, ImageId="m-doesnotexist")),
        (400, "InvalidPassword.Malformed", lambda: replace(ecs, iid, ImageId=linux, Password="abc")),
        (400, "InvalidParameter.Conflict",
         lambda: replace(ecs, iid, ImageId=linux, Password=new_password(), PasswordInherit=True)),
        (404, "InvalidKeyPairName.NotFound", lambda: replace(ecs, iid, ImageId=linux, KeyPairName="no-such-key")),
        (400, "InvalidSystemDiskSize.LessThanDiskSize",
         lambda: replace(ecs, iid, ImageId=linux, SystemDisk={"Size": size - 1})),
        (404, "InvalidSystemDiskSize.MoreThanMaxSize",
         lambda: replace(ecs, iid, ImageId=linux, SystemDisk={"Size": 4096})),
        (404, "InvalidDiskId.NotFound", lambda: replace(ecs, iid, ImageId=linux, DiskId="d-doesnotexist")),
        (400, "InvalidParameter", lambda: ecs.common("ReplaceSystemDisk", InstanceId=iid, ImageId=linux,
                                                     Architecture="x86_64")),
        (400, "InvalidParameter", lambda: replace(ecs, iid, ImageId=linux, SecurityEnhancementStrategy="On")),
        (403, "InvalidParameter.Encrypted.KmsNotEnabled",
         lambda: ecs.common("ReplaceSystemDisk", InstanceId=iid, ImageId=linux, Encrypted="true")),
        (400, "InvalidClientToken.ValueNotSupported",
         lambda: replace(ecs, iid, ImageId=linux, ClientToken="x" * 65)),
    ]
    for status, code, call in cases:
        expect_ecs_error(status, code, call)
    assert ecs_snapshot(ecs, admin, iid) == before
    assert admin.check_password(iid, ali_stopped.user, ali_stopped.password)


def test_windows_with_a_key_pair_is_refused(ecs, admin, ali_catalog, ali_stopped):
    name = unique_name("rk")
    ecs.call("CreateKeyPair", KeyPairName=name)
    expect_ecs_error(403, "OperationDenied.WindowsNotSupportKeyPair", replace, ecs, ali_stopped.id,
                     ImageId=ali_catalog.windows_image, KeyPairName=name, Password=new_password())
    assert ecs_describe(ecs, ali_stopped.id)["ImageId"] == ali_catalog.linux_image
