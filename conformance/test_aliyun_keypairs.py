"""Alibaba key pairs (spec §6): CreateKeyPair (the private key is returned once),
ImportKeyPair (an ssh-keygen public key), DescribeKeyPairs, AttachKeyPair / DetachKeyPair
on a stopped Linux instance (InstanceIds as a JSON-array string; Results.Result with
TotalCount/FailCount/Success as strings) — checked in the guest — and DeleteKeyPairs
(KeyPairNames as a JSON-array string)."""

import secrets
import shutil
import subprocess

import pytest

from nubis import (
    ecs_describe,
    ecs_wait_settled,
    expect_ecs_error,
    same_key,
    ssh_public_key,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)


def key_name(prefix: str = "nubis") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"  # 2-128 chars, starts with a letter


def public_of(private_pem: str, tmp_path) -> str | None:
    """The OpenSSH public key of a PEM private key (ssh-keygen -y), None without ssh-keygen."""
    if not shutil.which("ssh-keygen"):
        return None
    path = tmp_path / f"k_{secrets.token_hex(3)}"
    path.write_text(private_pem if private_pem.endswith("\n") else private_pem + "\n")
    path.chmod(0o600)
    out = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True,
                         check=True, stdin=subprocess.DEVNULL)
    return out.stdout.strip()


def authorized(admin, iid) -> list[str]:
    return admin.guest(iid)["authorized_keys"]


def test_create_import_describe_delete(ecs_any, tmp_path):
    prefix = key_name("kp")
    created = ecs_any.call("CreateKeyPair", KeyPairName=f"{prefix}-made")
    assert created["KeyPairName"] == f"{prefix}-made"
    assert created["KeyPairId"] and created["KeyPairFingerPrint"], created
    assert "PRIVATE KEY-----" in created["PrivateKeyBody"], created["PrivateKeyBody"][:80]
    public = public_of(created["PrivateKeyBody"], tmp_path)
    assert public is None or public.startswith(("ssh-rsa ", "ssh-ed25519 ")), public

    imported_key = ssh_public_key(tmp_path)
    imported = ecs_any.call("ImportKeyPair", KeyPairName=f"{prefix}-imported", PublicKeyBody=imported_key)
    assert imported["KeyPairName"] == f"{prefix}-imported" and imported["KeyPairFingerPrint"], imported
    # The response model has no KeyPairId (CreateKeyPair's has); the legacy client shows the raw JSON.
    assert set(imported) == {"RequestId", "KeyPairName", "KeyPairFingerPrint"}, imported

    one = ecs_any.call("DescribeKeyPairs", KeyPairName=f"{prefix}-imported", IncludePublicKey=True)
    assert one["TotalCount"] == 1
    [kp] = one["KeyPairs"]["KeyPair"]
    assert kp["KeyPairName"] == f"{prefix}-imported"
    assert kp["KeyPairFingerPrint"] == imported["KeyPairFingerPrint"]
    assert kp["CreationTime"]
    assert same_key(kp["PublicKey"], imported_key), kp["PublicKey"]
    assert "PrivateKeyBody" not in kp

    both = ecs_any.call("DescribeKeyPairs", KeyPairName=f"{prefix}-*", PageSize=50)
    assert both["TotalCount"] == 2
    assert sorted(k["KeyPairName"] for k in both["KeyPairs"]["KeyPair"]) == [f"{prefix}-imported", f"{prefix}-made"]
    fp = ecs_any.call("DescribeKeyPairs", KeyPairFingerPrint=created["KeyPairFingerPrint"])
    assert [k["KeyPairName"] for k in fp["KeyPairs"]["KeyPair"]] == [f"{prefix}-made"]

    ecs_any.call("DeleteKeyPairs", KeyPairNames=[f"{prefix}-made", f"{prefix}-imported"])
    gone = ecs_any.call("DescribeKeyPairs", KeyPairName=f"{prefix}-*")
    assert gone["TotalCount"] == 0 and gone["KeyPairs"]["KeyPair"] == []


def test_attach_and_detach(ecs_any, admin, ali_stopped, tmp_path):
    iid = ali_stopped.id
    name = key_name()
    created = ecs_any.call("CreateKeyPair", KeyPairName=name)
    public = public_of(created["PrivateKeyBody"], tmp_path)

    resp = ecs_any.call("AttachKeyPair", KeyPairName=name, InstanceIds=[iid])
    assert resp["KeyPairName"] == name
    assert (resp["TotalCount"], resp["FailCount"]) == ("1", "0"), resp  # strings (Tea model types)
    [result] = resp["Results"]["Result"]
    assert result["InstanceId"] == iid and result["Success"] == "true", result
    assert isinstance(result["Code"], str) and isinstance(result["Message"], str), result

    ecs_wait_settled(ecs_any, admin, iid, "Stopped")
    keys = wait_until(lambda: authorized(admin, iid), 30, 0.1, "the key to be authorized")
    assert len(keys) == 1, keys
    if public is not None:
        assert same_key(keys[0], public), (keys, public)
    assert ecs_describe(ecs_any, iid)["KeyPairName"] == name
    assert admin.guest(iid)["power"] == "off"

    resp = ecs_any.call("DetachKeyPair", KeyPairName=name, InstanceIds=[iid])
    assert (resp["TotalCount"], resp["FailCount"]) == ("1", "0"), resp
    assert resp["Results"]["Result"][0]["Success"] == "true", resp
    ecs_wait_settled(ecs_any, admin, iid, "Stopped")
    wait_until(lambda: authorized(admin, iid) == [], 30, 0.1, "the key to be removed")
    assert ecs_describe(ecs_any, iid)["KeyPairName"] == ""

    ecs_any.call("DeleteKeyPairs", KeyPairNames=[name])
    assert ecs_any.call("DescribeKeyPairs", KeyPairName=name)["TotalCount"] == 0


def test_attach_imported_key(ecs_any, admin, ali_stopped, tmp_path):
    name = key_name("imp")
    public = ssh_public_key(tmp_path)
    ecs_any.call("ImportKeyPair", KeyPairName=name, PublicKeyBody=public)
    resp = ecs_any.call("AttachKeyPair", KeyPairName=name, InstanceIds=[ali_stopped.id])
    assert resp["FailCount"] == "0", resp
    ecs_wait_settled(ecs_any, admin, ali_stopped.id, "Stopped")
    keys = wait_until(lambda: authorized(admin, ali_stopped.id), 30, 0.1, "the key to be authorized")
    assert any(same_key(k, public) for k in keys), keys


def test_unknown_key_pair(ecs_any, ali_stopped):
    expect_ecs_error(404, "InvalidKeyPairName.NotFound", ecs_any.call, "AttachKeyPair",
                     KeyPairName=key_name("missing"), InstanceIds=[ali_stopped.id])
