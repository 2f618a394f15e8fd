"""Key pairs and AssociateInstancesKeyPairs (seed 004): CreateKeyPair, ImportKeyPair,
DescribeKeyPairs, associate / disassociate (effects in the guest's authorized_keys),
DeleteKeyPairs, and the seed's error codes."""

import re
import secrets
from dataclasses import dataclass

import pytest

from nubis import (
    KEY_IN_USE,
    assert_op,
    describe,
    expect_error,
    latest,
    random_instance_id,
    same_key,
    ssh_public_key,
    wait_op,
    wait_settled,
)

pytestmark = pytest.mark.timeout(120)


def key_name(prefix: str = "k") -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def describe_key(cvm, key_id):
    got = cvm.call("DescribeKeyPairs", KeyIds=[key_id])["KeyPairSet"]
    assert len(got) == 1, got
    return got[0]


def authorized(admin, iid, public_key) -> bool:
    return any(same_key(k, public_key) for k in admin.guest(iid)["authorized_keys"])


@dataclass
class Key:
    id: str
    name: str
    public_key: str


@pytest.fixture
def created_key(cvm) -> Key:
    """A key pair made by CreateKeyPair."""
    return create_key(cvm)


@pytest.fixture
def imported_key(cvm, tmp_path) -> Key:
    """A key pair made by ImportKeyPair from a fresh ssh-keygen key."""
    return import_key(cvm, tmp_path)


def create_key(cvm) -> Key:
    kp = cvm.call("CreateKeyPair", KeyName=key_name("created"), ProjectId=0)["KeyPair"]
    return Key(kp["KeyId"], kp["KeyName"], kp["PublicKey"])


def import_key(cvm, tmp_path) -> Key:
    pub, name = ssh_public_key(tmp_path), key_name("imported")
    return Key(cvm.call("ImportKeyPair", KeyName=name, ProjectId=0, PublicKey=pub)["KeyId"], name, pub)


def associate(cvm, ids, keys, **params):
    return cvm.call("AssociateInstancesKeyPairs", InstanceIds=ids, KeyIds=keys, **params)["RequestId"]


def test_create_key_pair(cvm):
    name = key_name("create")
    kp = cvm.call("CreateKeyPair", KeyName=name, ProjectId=0)["KeyPair"]
    assert re.fullmatch(r"skey-[0-9a-z]{8}", kp["KeyId"]), kp
    assert kp["KeyName"] == name and kp["ProjectId"] == 0
    assert "PRIVATE KEY" in kp["PrivateKey"]
    assert kp["PublicKey"].startswith(("ssh-rsa ", "ssh-ed25519 "))
    listed = describe_key(cvm, kp["KeyId"])
    assert listed["KeyName"] == name and same_key(listed["PublicKey"], kp["PublicKey"])
    assert not listed.get("PrivateKey"), "DescribeKeyPairs never returns the private key"


def test_import_and_describe_key_pairs(cvm, tmp_path):
    pub = ssh_public_key(tmp_path)
    name = key_name("import")
    kid = cvm.call("ImportKeyPair", KeyName=name, ProjectId=0, PublicKey=pub)["KeyId"]
    assert re.fullmatch(r"skey-[0-9a-z]{8}", kid)
    listed = describe_key(cvm, kid)
    assert listed["KeyName"] == name and same_key(listed["PublicKey"], pub)
    by_name = cvm.call("DescribeKeyPairs", Filters=[{"Name": "key-name", "Values": [name]}])
    assert by_name["TotalCount"] == 1 and by_name["KeyPairSet"][0]["KeyId"] == kid


def test_duplicate_key_name(cvm):
    name = key_name("dup")
    cvm.call("CreateKeyPair", KeyName=name, ProjectId=0)
    expect_error("InvalidKeyPairName.Duplicate", cvm.call, "CreateKeyPair", KeyName=name, ProjectId=0)


def test_associate_with_stopped_instance(slow_cvm, slow_admin, slow_make_instance, tmp_path):
    # OPERATING right after the request: on the slow server, where the key change lasts
    # 2.5 s (0.5 s at the default scale; conftest.SLOW_TIME_SCALE).
    cvm, admin, stopped = slow_cvm, slow_admin, slow_make_instance(state="STOPPED")
    created_key, imported_key = create_key(cvm), import_key(cvm, tmp_path)
    keys = [created_key.id, imported_key.id]
    rid = associate(cvm, [stopped.id], keys)
    inst = describe(cvm, stopped.id)
    assert (inst["InstanceState"], inst["LatestOperation"], inst["LatestOperationState"]) == (
        "STOPPED", "AssociateInstancesKeyPairs", "OPERATING")
    inst = wait_op(cvm, stopped.id, rid)
    assert_op(inst, "AssociateInstancesKeyPairs", rid)
    assert inst["InstanceState"] == "STOPPED"
    assert sorted(inst["LoginSettings"]["KeyIds"]) == sorted(keys)
    assert authorized(admin, stopped.id, created_key.public_key)
    assert authorized(admin, stopped.id, imported_key.public_key)
    assert stopped.id in describe_key(cvm, created_key.id)["AssociatedInstanceIds"]


@pytest.mark.parametrize("force", [None, False], ids=["no-forcestop", "forcestop-false"])
def test_running_needs_force_stop(cvm, admin, running, imported_key, force):
    before = latest(cvm, running.id)
    params = {} if force is None else {"ForceStop": force}
    expect_error("UnsupportedOperation.InstanceStateRunning", associate, cvm, [running.id],
                 [imported_key.id], **params)
    assert latest(cvm, running.id) == before
    assert not authorized(admin, running.id, imported_key.public_key)


def test_running_with_force_stop(cvm, admin, running, imported_key):
    rid = associate(cvm, [running.id], [imported_key.id], ForceStop=True)
    inst = wait_settled(cvm, running.id, "RUNNING", rid)
    assert_op(inst, "AssociateInstancesKeyPairs", rid)
    assert authorized(admin, running.id, imported_key.public_key)
    assert admin.guest(running.id)["power"] == "on"


def test_windows_instance(cvm, make_instance, imported_key):
    win = make_instance("windows", state="STOPPED")
    expect_error("UnsupportedOperation.InstanceOsWindows", associate, cvm, [win.id], [imported_key.id])


@pytest.mark.parametrize("key_id, code", [
    ("skey-12", "InvalidKeyPairId.Malformed"),
    ("key-12345678", "InvalidKeyPairId.Malformed"),
    ("skey-zzzzzzzz", "InvalidKeyPairId.NotFound"),
])
def test_bad_key_ids(cvm, stopped, key_id, code):
    before = latest(cvm, stopped.id)
    expect_error(code, associate, cvm, [stopped.id], [key_id])
    assert latest(cvm, stopped.id) == before


def test_bad_instance_ids(cvm, imported_key):
    expect_error("InvalidInstanceId.Malformed", associate, cvm, ["ins-1122"], [imported_key.id])
    expect_error("InvalidInstanceId.NotFound", associate, cvm, [random_instance_id()], [imported_key.id])


def test_more_than_100_instances(cvm, imported_key):
    ids = [random_instance_id() for _ in range(101)]
    expect_error("InvalidParameterValue.LimitExceeded", associate, cvm, ids, [imported_key.id])


def test_missing_parameters(cvm, stopped, imported_key):
    expect_error("MissingParameter", cvm.call, "AssociateInstancesKeyPairs", InstanceIds=[stopped.id])
    expect_error("MissingParameter", cvm.call, "AssociateInstancesKeyPairs", KeyIds=[imported_key.id])


def test_disassociate_and_delete(cvm, admin, stopped, imported_key):
    key = imported_key
    rid = associate(cvm, [stopped.id], [key.id])
    assert_op(wait_op(cvm, stopped.id, rid), "AssociateInstancesKeyPairs", rid)
    assert authorized(admin, stopped.id, key.public_key)

    # A key still bound to an instance cannot be deleted.
    expect_error(KEY_IN_USE, cvm.call, "DeleteKeyPairs", KeyIds=[key.id])
    assert describe_key(cvm, key.id)["KeyId"] == key.id

    rid = cvm.call("DisassociateInstancesKeyPairs", InstanceIds=[stopped.id], KeyIds=[key.id])["RequestId"]
    inst = wait_op(cvm, stopped.id, rid)
    assert_op(inst, "DisassociateInstancesKeyPairs", rid)
    assert key.id not in ((inst["LoginSettings"] or {}).get("KeyIds") or [])
    assert not authorized(admin, stopped.id, key.public_key)

    cvm.call("DeleteKeyPairs", KeyIds=[key.id])
    gone = cvm.call("DescribeKeyPairs", Filters=[{"Name": "key-name", "Values": [key.name]}])
    assert gone["TotalCount"] == 0 and not gone["KeyPairSet"]
