"""The official CLI, unchanged: `tccli cvm <Action> --endpoint http://host:port ...`.
tccli always sends POST + JSON + TC3 with `Host: http://host:port` (spec quirk Q1). JSON-valued
parameters are passed as JSON text (--Placement '{"Zone": ...}', --InstanceIds '["ins-..."]'),
booleans as True/False, and an error exits 255 with
`[TencentCloudSDKException] code:<Code> message:... requestId:...` on stderr."""

import json
import secrets

import pytest

from nubis import new_password, same_key, unique_name, wait_settled

pytestmark = pytest.mark.timeout(240)


def ok(result):
    rc, out = result
    assert rc == 0, f"tccli failed ({rc}): {out}"
    assert out["RequestId"], out
    return out


def test_full_flow(server, catalog):
    cvm, admin = server.cvm(), server.admin
    password = new_password()
    name = unique_name("tccli")

    out = ok(server.tccli(
        "RunInstances",
        "--Placement", json.dumps({"Zone": catalog.zone}),
        "--ImageId", catalog.linux_image,
        "--InstanceCount", "1",
        "--InstanceName", name,
        "--LoginSettings", json.dumps({"Password": password}),
    ))
    (iid,) = out["InstanceIdSet"]
    wait_settled(cvm, iid, "RUNNING")

    out = ok(server.tccli("DescribeInstances", "--InstanceIds", json.dumps([iid])))
    assert out["TotalCount"] == 1 and out["InstanceSet"][0]["InstanceName"] == name
    out = ok(server.tccli("DescribeInstances", "--Filters",
                          json.dumps([{"Name": "instance-name", "Values": [name]}])))
    assert [i["InstanceId"] for i in out["InstanceSet"]] == [iid]

    rescue_pw = new_password()
    rid = ok(server.tccli("EnterRescueMode", "--InstanceId", iid, "--Password", rescue_pw,
                          "--StopType", "SOFT_FIRST"))["RequestId"]
    wait_settled(cvm, iid, "RESCUE_MODE", rid)
    assert admin.check_password(iid, "root", rescue_pw)

    rid = ok(server.tccli("ExitRescueMode", "--InstanceId", iid))["RequestId"]
    wait_settled(cvm, iid, "RUNNING", rid)
    assert admin.check_password(iid, "root", password)

    new_pw = new_password()
    rid = ok(server.tccli("ResetInstancesPassword", "--InstanceIds", json.dumps([iid]),
                          "--Password", new_pw, "--ForceStop", "True"))["RequestId"]
    inst = wait_settled(cvm, iid, "RUNNING", rid)
    assert (inst["LatestOperation"], inst["LatestOperationState"]) == ("ResetInstancesPassword", "SUCCESS")
    assert admin.check_password(iid, "root", new_pw)

    kp = ok(server.tccli("CreateKeyPair", "--KeyName", f"tccli_{secrets.token_hex(4)}",
                         "--ProjectId", "0"))["KeyPair"]
    assert "PRIVATE KEY" in kp["PrivateKey"]
    rid = ok(server.tccli("AssociateInstancesKeyPairs", "--InstanceIds", json.dumps([iid]),
                          "--KeyIds", json.dumps([kp["KeyId"]]), "--ForceStop", "True"))["RequestId"]
    inst = wait_settled(cvm, iid, "RUNNING", rid)
    assert (inst["LatestOperation"], inst["LatestOperationState"]) == ("AssociateInstancesKeyPairs", "SUCCESS")
    assert any(same_key(k, kp["PublicKey"]) for k in admin.guest(iid)["authorized_keys"])

    ok(server.tccli("TerminateInstances", "--InstanceIds", json.dumps([iid])))


def test_error_exits_255_with_code(server):
    rc, err = server.tccli("EnterRescueMode", "--InstanceId", "ins-1122", "--Password", "Qcloud@TestApi123++")
    assert rc == 255, err
    assert "[TencentCloudSDKException] code:InvalidInstanceId.Malformed" in err, err
    assert "requestId:" in err and "requestId:None" not in err, err


def test_auth_error_through_tccli(server):
    rc, err = server.tccli("DescribeZones", "--secretKey", "wrongSecretKey0000000000000000000")
    assert rc == 255 and "code:AuthFailure.SignatureFailure" in err, err
