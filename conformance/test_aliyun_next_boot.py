"""Alibaba next-boot changes (issue 11): ModifyInstanceAttribute(Password), AttachKeyPair and
DetachKeyPair on a Running instance are recorded at once for the next boot — no operation
lock, no long operation — so the next request on the instance is never refused with
OperationConflict, OperationLocks stays empty and the engine holds no lock. Run on the slow
server, where a guest change that still took an operation would last 2.5 s."""

import secrets

import pytest

from nubis import (
    ecs_describe,
    ecs_wait_status,
    lock_reasons,
    new_password,
    ssh_public_key,
)

pytestmark = pytest.mark.timeout(120)


def _no_lock(ecs, admin, iid) -> None:
    inst = ecs_describe(ecs, iid)
    assert inst["Status"] == "Running", inst["Status"]
    assert lock_reasons(inst) == []
    assert admin.instance(iid)["lock"] is None


def test_password_then_key_then_delete_on_running(slow_ecs_any, slow_server, slow_ali_running, tmp_path):
    ecs, admin, iid = slow_ecs_any, slow_server.admin, slow_ali_running.id
    restarts = len(admin.guest(iid)["restarts"])

    password = new_password()
    ecs.call("ModifyInstanceAttribute", InstanceId=iid, Password=password)
    _no_lock(ecs, admin, iid)
    # Written for the next boot at once; nothing restarted.
    assert admin.check_password(iid, slow_ali_running.user, password)

    name = f"nb-{secrets.token_hex(4)}"
    public = ssh_public_key(tmp_path)
    ecs.call("ImportKeyPair", KeyPairName=name, PublicKeyBody=public)
    got = ecs.call("AttachKeyPair", KeyPairName=name, InstanceIds=[iid])
    assert (got["TotalCount"], got["FailCount"]) == ("1", "0"), got
    [res] = got["Results"]["Result"]
    assert (res["Success"], res["Code"]) == ("true", "200"), res
    _no_lock(ecs, admin, iid)
    assert ecs_describe(ecs, iid)["KeyPairName"] == name
    assert any(public.split()[1] in k for k in admin.guest(iid)["authorized_keys"])

    got = ecs.call("DetachKeyPair", KeyPairName=name, InstanceIds=[iid])
    assert got["FailCount"] == "0", got
    _no_lock(ecs, admin, iid)
    assert not any(public.split()[1] in k for k in admin.guest(iid)["authorized_keys"])
    assert len(admin.guest(iid)["restarts"]) == restarts

    # Each change is on record as a finished operation.
    ops = admin.finished_operations(iid)
    actions = [o["action"] for o in ops if o["state"] == "SUCCESS"]
    assert {"reset_password", "associate_keys", "disassociate_keys"} <= set(actions), ops

    ecs.call("ModifyInstanceAttribute", InstanceId=iid, Password=new_password())
    ecs.call("DeleteInstance", InstanceId=iid, Force=True)
    ecs_wait_status(ecs, iid, None, timeout=60)
    ecs.call("DeleteKeyPairs", KeyPairNames=[name])
