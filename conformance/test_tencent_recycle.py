"""Tencent's recycle bin (issue 15, docs/deferred-delete.md) through the official Python SDK:
a subscription (PREPAID) instance's first TerminateInstances moves it to the bin (SHUTDOWN,
powered off, LatestOperation TerminateInstances), the second destroys it; a pay-as-you-go
instance is destroyed at once; a recycled instance refuses everything else with
UnsupportedOperation.InstanceStateShutdown."""

import pytest

from nubis import assert_op, describe, expect_error, wait_settled, wait_state

pytestmark = pytest.mark.timeout(120)


def test_prepaid_goes_to_the_recycle_bin_then_is_destroyed(cvm, admin, make_instance):
    prepaid = make_instance(InstanceChargeType="PREPAID").id
    postpaid = make_instance().id
    rid = cvm.call("TerminateInstances", InstanceIds=[prepaid, postpaid])["RequestId"]
    inst = wait_settled(cvm, prepaid, "SHUTDOWN", request_id=rid)
    assert_op(inst, "TerminateInstances", rid)
    assert admin.guest(inst["InstanceId"])["power"] == "off"
    wait_state(cvm, postpaid, None)
    # In the bin: no start, stop, reboot or reset.
    for action in ["StartInstances", "StopInstances", "RebootInstances"]:
        expect_error("UnsupportedOperation.InstanceStateShutdown", cvm.call, action,
                     InstanceIds=[prepaid])
    assert describe(cvm, prepaid)["InstanceState"] == "SHUTDOWN"
    # The second terminate destroys it.
    cvm.call("TerminateInstances", InstanceIds=[prepaid])
    wait_state(cvm, prepaid, None)


def test_stopped_prepaid_is_recycled_too(cvm, make_instance):
    iid = make_instance(InstanceChargeType="PREPAID", state="STOPPED").id
    rid = cvm.call("TerminateInstances", InstanceIds=[iid])["RequestId"]
    wait_settled(cvm, iid, "SHUTDOWN", request_id=rid)
    cvm.call("TerminateInstances", InstanceIds=[iid])
    wait_state(cvm, iid, None)
