"""DescribeInstancesOperationLimit through the official Python SDK and tccli: a subscription
(PREPAID) instance may be degraded 5 times (none spent: nubis lowers no configuration yet),
operations not counted for an instance answer -1, and the documented parameter errors."""

import json

import pytest

from nubis import expect_error, random_instance_id

pytestmark = pytest.mark.timeout(120)

ACTION = "DescribeInstancesOperationLimit"


def limit_set(cvm, ids, operation="INSTANCE_DEGRADE"):
    resp = cvm.call(ACTION, InstanceIds=ids, Operation=operation)
    assert resp["RequestId"], resp
    return resp["InstanceOperationLimitSet"]


def test_allowances_through_the_sdk(cvm, make_instance):
    prepaid = make_instance(InstanceChargeType="PREPAID").id
    postpaid = make_instance().id

    got = limit_set(cvm, [prepaid, postpaid])
    assert got == [
        {"Operation": "INSTANCE_DEGRADE", "InstanceId": prepaid, "CurrentCount": 0, "LimitCount": 5},
        {"Operation": "INSTANCE_DEGRADE", "InstanceId": postpaid, "CurrentCount": -1, "LimitCount": -1},
    ], got

    got = limit_set(cvm, [prepaid], "INTERNET_CHARGE_TYPE_CHANGE")
    assert [(g["CurrentCount"], g["LimitCount"]) for g in got] == [(-1, -1)], got


def test_parameter_errors_through_the_sdk(cvm, running):
    expect_error("InvalidParameterValue", cvm.call, ACTION, InstanceIds=[running.id], Operation="INSTANCE_UPGRADE")
    expect_error("InvalidInstanceId.NotFound", cvm.call, ACTION, InstanceIds=[random_instance_id()],
                 Operation="INSTANCE_DEGRADE")
    expect_error("InvalidInstanceId.Malformed", cvm.call, ACTION, InstanceIds=["ins-1122"],
                 Operation="INSTANCE_DEGRADE")
    expect_error("MissingParameter", cvm.raw, ACTION, {"InstanceIds": [running.id]})
    expect_error("UnknownParameter", cvm.raw, ACTION,
                 {"InstanceIds": [running.id], "Operation": "INSTANCE_DEGRADE", "DryRun": True})


def test_tccli(server, make_instance):
    iid = make_instance(InstanceChargeType="PREPAID").id
    rc, out = server.tccli(ACTION, "--InstanceIds", json.dumps([iid]), "--Operation", "INSTANCE_DEGRADE")
    assert rc == 0, out
    assert out["InstanceOperationLimitSet"] == [
        {"Operation": "INSTANCE_DEGRADE", "InstanceId": iid, "CurrentCount": 0, "LimitCount": 5}
    ], out

    rc, err = server.tccli(ACTION, "--InstanceIds", json.dumps([iid]), "--Operation", "NOPE")
    assert rc == 255 and "code:InvalidParameterValue" in err, err
