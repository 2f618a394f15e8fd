"""One fleet, several APIs (DESIGN.md "One fleet, many names"): an instance created through
Tencent CVM is found and rebooted through Alibaba ECS (its own `i-` ID, from the admin API's
`aliyun_id`), and Tencent then shows that reboot as its latest operation with the Alibaba
RequestId; an instance created through Alibaba is visible through Tencent in ap-guangzhou
(`tencent_id`), and power changes made through one API show in the other."""

import pytest

from nubis import (
    reboots,
    ALI_INSTANCE_ID,
    ALI_REGION,
    REGION,
    describe,
    ecs_client,
    ecs_describe,
    ecs_wait_settled,
    ecs_wait_status,
    new_password,
    unique_name,
    wait_settled,
    wait_state,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="session")
def server(slow_server):
    """Every test here asserts a transitional state seen through the other API right after
    the request (REBOOTING, Stopping): the whole module runs on the slow server
    (conftest.SLOW_TIME_SCALE), so `cvm`, `admin`, `running`... are that server's."""
    return slow_server


def tencent_settled_after(cvm, ins_id, state, request_id, timeout=60):
    """Poll Tencent until `state`, not OPERATING, with `request_id` (any case) as the latest
    operation's RequestId (Alibaba RequestIds are upper-case UUIDs)."""

    def check():
        inst = describe(cvm, ins_id)
        if inst is None or inst["InstanceState"] != state or inst["LatestOperationState"] == "OPERATING":
            return None
        return inst if (inst["LatestOperationRequestId"] or "").lower() == request_id.lower() else None

    return wait_until(check, timeout, 0.1, f"{ins_id} to settle in {state} after {request_id}")


@pytest.mark.parametrize("generation", ["legacy", "tea"])
def test_tencent_instance_through_alibaba(cvm, admin, running, generation, server):
    ecs = ecs_client(server, generation)
    record = admin.instance(running.id)
    assert record["tencent_id"] == running.id
    ali_id = record["aliyun_id"]
    assert ALI_INSTANCE_ID.fullmatch(ali_id), record
    assert admin.instance(ali_id)["id"] == record["id"]

    tencent = describe(cvm, running.id)
    found = ecs.call("DescribeInstances", InstanceIds=[ali_id])["Instances"]["Instance"]
    assert [i["InstanceId"] for i in found] == [ali_id]
    inst = found[0]
    assert inst["Status"] == "Running"
    assert inst["RegionId"] == ALI_REGION and inst["ZoneId"].startswith(ALI_REGION + "-")
    assert inst["InstanceName"] == tencent["InstanceName"]
    assert inst["ImageId"] == tencent["ImageId"]
    # The Tencent ID is no Alibaba ID.
    assert ecs.call("DescribeInstances", InstanceIds=[running.id])["TotalCount"] == 0

    before = len(reboots(admin, running.id))
    rid = ecs.call("RebootInstance", InstanceId=ali_id)["RequestId"]
    assert describe(cvm, running.id)["InstanceState"] == "REBOOTING"
    tinst = tencent_settled_after(cvm, running.id, "RUNNING", rid)
    assert (tinst["LatestOperation"], tinst["LatestOperationState"]) == ("RebootInstances", "SUCCESS"), tinst
    assert tinst["LatestOperationRequestId"].lower() == rid.lower()
    restarts = reboots(admin, running.id)
    assert len(restarts) == before + 1 and restarts[-1]["kind"] == "graceful", restarts
    assert ecs_describe(ecs, ali_id)["Status"] == "Running"


@pytest.mark.parametrize("generation", ["legacy", "tea"])
def test_alibaba_instance_through_tencent(cvm, admin, ali_catalog, generation, server):
    ecs = ecs_client(server, generation)
    name, password = unique_name("cross"), new_password()
    resp = ecs.call("RunInstances", ZoneId=ali_catalog.zone, ImageId=ali_catalog.linux_image,
                    InstanceType=ali_catalog.instance_type, InstanceName=name, Password=password)
    [ali_id] = resp["InstanceIdSets"]["InstanceIdSet"]
    ins_id = admin.instance(ali_id)["tencent_id"]
    ecs_wait_settled(ecs, admin, ali_id, "Running")

    # Visible through Tencent in ap-guangzhou, under its own ID, with the same facts, and the
    # Alibaba request as its latest operation.
    tinst = tencent_settled_after(cvm, ins_id, "RUNNING", resp["RequestId"])
    assert (tinst["LatestOperation"], tinst["LatestOperationState"]) == ("RunInstances", "SUCCESS"), tinst
    assert tinst["Placement"]["Zone"].startswith(REGION + "-"), tinst["Placement"]
    assert tinst["InstanceName"] == name
    assert tinst["ImageId"] == ali_catalog.linux_image
    assert admin.check_password(ins_id, "root", password)

    # Stopped through Tencent → Stopped through Alibaba.
    cvm.call("StopInstances", InstanceIds=[ins_id])
    assert ecs_describe(ecs, ali_id)["Status"] == "Stopping"
    wait_settled(cvm, ins_id, "STOPPED")
    ecs_wait_settled(ecs, admin, ali_id, "Stopped")
    status = ecs.call("DescribeInstanceStatus", InstanceId=[ali_id])["InstanceStatuses"]["InstanceStatus"]
    assert status == [{"InstanceId": ali_id, "Status": "Stopped"}]

    # Deleted through Alibaba → gone through Tencent.
    ecs.call("DeleteInstance", InstanceId=ali_id)
    ecs_wait_status(ecs, ali_id, None, timeout=60)
    wait_state(cvm, ins_id, None, timeout=60)
