"""Issue 11, Alibaba: actions clients call that were missing (DescribeInstanceAttribute,
DescribeUserData, DescribeInstanceVncUrl) with their errors; InternetMaxBandwidthOut given
at create is shown; error messages name instances by their `i-` ID and key pairs by name;
StartInstance right after CreateInstance (still Pending) is accepted."""

import base64
import secrets
from urllib.parse import unquote

import pytest

from nubis import (
    ALI_INSTANCE_ID,
    ALI_REGION,
    ecs_describe,
    ecs_wait_settled,
    expect_ecs_error,
    new_password,
    random_aliyun_instance_id,
    ssh_public_key,
    unique_name,
)

pytestmark = pytest.mark.timeout(120)

USER_DATA = base64.b64encode(b"#!/bin/sh\necho hello from nubis\n").decode()


@pytest.fixture
def made(ecs_any, admin, ali_catalog):
    """A Running instance created with UserData and InternetMaxBandwidthOut=7."""
    resp = ecs_any.call("RunInstances", ZoneId=ali_catalog.zone, ImageId=ali_catalog.linux_image,
                        InstanceType=ali_catalog.instance_type, InstanceName=unique_name("attr"),
                        Password=new_password(), UserData=USER_DATA, InternetMaxBandwidthOut=7)
    [iid] = resp["InstanceIdSets"]["InstanceIdSet"]
    ecs_wait_settled(ecs_any, admin, iid, "Running")
    return iid


def test_describe_instance_attribute(ecs_any, made):
    got = ecs_any.call("DescribeInstanceAttribute", InstanceId=made)
    listed = ecs_describe(ecs_any, made)
    assert got["InstanceId"] == made
    for field in ("InstanceName", "Status", "ZoneId", "RegionId", "InstanceType", "Cpu", "Memory",
                  "ImageId", "HostName", "CreationTime", "SerialNumber"):
        assert got[field] == listed[field], field
    assert got["InternetMaxBandwidthOut"] == 7 == listed["InternetMaxBandwidthOut"]
    assert got["OperationLocks"]["LockReason"] == []
    assert got["VpcAttributes"]["PrivateIpAddress"]["IpAddress"] == \
        listed["VpcAttributes"]["PrivateIpAddress"]["IpAddress"]
    assert got["IoOptimized"] == "optimized"


def test_describe_user_data(ecs_any, made, ali_make_instance):
    got = ecs_any.call("DescribeUserData", InstanceId=made)
    assert (got["InstanceId"], got["RegionId"], got["UserData"]) == (made, ALI_REGION, USER_DATA)
    # An instance created without user data has none.
    other = ali_make_instance()
    assert ecs_any.call("DescribeUserData", InstanceId=other.id).get("UserData", "") == ""


def test_describe_instance_vnc_url(ecs_any, made):
    first = ecs_any.call("DescribeInstanceVncUrl", InstanceId=made)["VncUrl"]
    second = ecs_any.call("DescribeInstanceVncUrl", InstanceId=made)["VncUrl"]
    url = unquote(first)
    assert url.startswith("ws://") and f"/console/vnc/{made}?s=" in url, url
    assert first != second  # a fresh one-time token per call


@pytest.mark.parametrize("action", ["DescribeInstanceAttribute", "DescribeUserData",
                                    "DescribeInstanceVncUrl"])
def test_new_actions_errors(ecs_any, action):
    expect_ecs_error(404, "InvalidInstanceId.NotFound", ecs_any.call, action,
                     InstanceId=random_aliyun_instance_id())
    missing = getattr(ecs_any, "generic", None) or ecs_any.common  # no InstanceId at all
    expect_ecs_error(400, "MissingParameter", missing, action, RegionId=ALI_REGION)


def test_messages_name_alibaba_ids(slow_ecs_any, slow_server, slow_ali_catalog, tmp_path):
    """OperationConflict names the `i-` instance; DependencyViolation.KeyPair the key pair's
    name (they named `ins-…` and `skey-…`)."""
    ecs, admin = slow_ecs_any, slow_server.admin
    resp = ecs.call("RunInstances", ZoneId=slow_ali_catalog.zone, ImageId=slow_ali_catalog.linux_image,
                    InstanceType=slow_ali_catalog.instance_type, InstanceName=unique_name("msg"),
                    Password=new_password())
    [iid] = resp["InstanceIdSets"]["InstanceIdSet"]
    ecs_wait_settled(ecs, admin, iid, "Running", timeout=60)
    ecs.call("StopInstance", InstanceId=iid)
    ecs_wait_settled(ecs, admin, iid, "Stopped", timeout=60)
    name = f"msg-{secrets.token_hex(4)}"
    ecs.call("ImportKeyPair", KeyPairName=name, PublicKeyBody=ssh_public_key(tmp_path))
    ecs.call("AttachKeyPair", KeyPairName=name, InstanceIds=[iid])
    ecs_wait_settled(ecs, admin, iid, "Stopped", timeout=60)
    err = expect_ecs_error(403, "DependencyViolation.KeyPair", ecs.call, "DeleteKeyPairs",
                           KeyPairNames=[name])
    assert name in err.message and "skey-" not in err.message, err.message

    # On a stopped instance a password change is an operation (2.5 s here) holding the lock.
    ecs.call("ModifyInstanceAttribute", InstanceId=iid, Password=new_password())
    err = expect_ecs_error(403, "OperationConflict", ecs.call, "StartInstance", InstanceId=iid)
    tencent_id = admin.instance(iid)["tencent_id"]
    assert iid in err.message and tencent_id not in err.message, err.message
    assert "ModifyInstanceAttribute" in err.message, err.message

    ecs_wait_settled(ecs, admin, iid, "Stopped", timeout=60)
    ecs.call("DetachKeyPair", KeyPairName=name, InstanceIds=[iid])
    ecs_wait_settled(ecs, admin, iid, "Stopped", timeout=60)
    ecs.call("DeleteKeyPairs", KeyPairNames=[name])
    ecs.call("DeleteInstance", InstanceId=iid)


def test_windows_key_refusal_names_the_instance(ecs, ali_make_instance, tmp_path):
    inst = ali_make_instance("windows", status="Stopped")
    name = f"win-{secrets.token_hex(4)}"
    ecs.call("ImportKeyPair", KeyPairName=name, PublicKeyBody=ssh_public_key(tmp_path))
    got = ecs.call("AttachKeyPair", KeyPairName=name, InstanceIds=[inst.id])
    [res] = got["Results"]["Result"]
    assert res["Code"] == "OperationDenied.WindowsNotSupportKeyPair", res
    assert inst.id in res["Message"] and "ins-" not in res["Message"], res
    ecs.call("DeleteKeyPairs", KeyPairNames=[name])


def test_start_right_after_create(slow_ecs_any, slow_server, slow_ali_catalog):
    """libcloud's create_node: CreateInstance, then StartInstance at once, while the instance
    is Pending (a create lasts 2 s on this server). The start joins the create."""
    ecs, admin = slow_ecs_any, slow_server.admin
    password = new_password()
    iid = ecs.call("CreateInstance", ZoneId=slow_ali_catalog.zone, ImageId=slow_ali_catalog.linux_image,
                   InstanceType=slow_ali_catalog.instance_type, InstanceName=unique_name("cs"),
                   Password=password)["InstanceId"]
    assert ALI_INSTANCE_ID.fullmatch(iid)
    # DryRun passes every check there too.
    expect_ecs_error(400, "DryRunOperation", ecs.call, "StartInstance", InstanceId=iid, DryRun=True)
    ecs.call("StartInstance", InstanceId=iid)
    inst = ecs_wait_settled(ecs, admin, iid, "Running", timeout=60)
    assert inst["Status"] == "Running" and admin.guest(iid)["power"] == "on"
    assert admin.check_password(iid, "root", password)
    ecs.call("DeleteInstance", InstanceId=iid, Force=True)
