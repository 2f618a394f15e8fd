"""Instance lifecycle (spec §5, §6.1, §6.2, §6.7): RunInstances (idempotency, dry run),
DescribeInstances (ids, filters, paging), DescribeInstancesStatus, Stop/Start/Reboot,
TerminateInstances — effects checked through the admin guest API."""

import re
import secrets

import pytest

from nubis import (
    LIMIT_OVER_100,
    assert_op,
    describe,
    describe_many,
    expect_error,
    launch,
    new_password,
    random_instance_id,
    unique_name,
    wait_settled,
    wait_state,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def trio(server, catalog):
    """Three RUNNING instances created by one RunInstances call, with their name."""
    cvm = server.cvm()
    name = unique_name("trio")
    password = new_password()
    token = "tok-" + secrets.token_hex(8)
    resp = cvm.call("RunInstances", Placement={"Zone": catalog.zone}, ImageId=catalog.linux_image,
                    InstanceCount=3, InstanceName=name, LoginSettings={"Password": password},
                    ClientToken=token)
    ids = resp["InstanceIdSet"]
    for iid in ids:
        wait_settled(cvm, iid, "RUNNING")
    return {"ids": ids, "name": name, "password": password, "token": token, "request_id": resp["RequestId"]}


def test_run_instances_start_pending(slow_cvm, slow_catalog):
    """Created asynchronously: PENDING right after the call (on the slow server: a create
    lasts 3.5 s there, 0.7 s on the default one, see conftest.SLOW_TIME_SCALE)."""
    resp = slow_cvm.call("RunInstances", Placement={"Zone": slow_catalog.zone},
                         ImageId=slow_catalog.linux_image, InstanceCount=2,
                         InstanceName=unique_name("pending"), LoginSettings={"Password": new_password()})
    ids = resp["InstanceIdSet"]
    first = describe_many(slow_cvm, ids)
    for iid in ids:
        assert first[iid]["InstanceState"] == "PENDING", first[iid]
    for iid in ids:
        wait_settled(slow_cvm, iid, "RUNNING")


def test_run_instances_creates_running_instances(cvm, admin, catalog, trio):
    assert len(trio["ids"]) == 3 and len(set(trio["ids"])) == 3
    got = describe_many(cvm, trio["ids"])
    for iid in trio["ids"]:
        assert re.fullmatch(r"ins-[0-9a-z]{8}", iid)
        inst = got[iid]
        assert inst["InstanceState"] == "RUNNING"
        assert inst["InstanceName"] == trio["name"]
        assert inst["Placement"]["Zone"] == catalog.zone
        assert inst["ImageId"] == catalog.linux_image
        assert isinstance(inst["CPU"], int) and isinstance(inst["Memory"], int)
        assert inst["CreatedTime"].endswith("Z")
        assert not (inst["LoginSettings"] or {}).get("Password"), "the password is never returned"
        assert_op(inst, "RunInstances", trio["request_id"])
        guest = admin.guest(iid)
        assert guest["os_family"] == "linux" and guest["power"] == "on"
        assert admin.check_password(iid, "root", trio["password"])


def test_run_instances_client_token_is_idempotent(cvm, catalog, trio):
    again = cvm.call("RunInstances", Placement={"Zone": catalog.zone}, ImageId=catalog.linux_image,
                     InstanceCount=3, InstanceName=trio["name"],
                     LoginSettings={"Password": trio["password"]}, ClientToken=trio["token"])
    assert again["InstanceIdSet"] == trio["ids"]
    named = cvm.call("DescribeInstances", Filters=[{"Name": "instance-name", "Values": [trio["name"]]}])
    assert named["TotalCount"] == 3


def test_run_instances_dry_run_creates_nothing(cvm, catalog):
    name = unique_name("dry")
    expect_error("DryRunOperation", cvm.call, "RunInstances", Placement={"Zone": catalog.zone},
                 ImageId=catalog.linux_image, InstanceName=name,
                 LoginSettings={"Password": new_password()}, DryRun=True)
    got = cvm.call("DescribeInstances", Filters=[{"Name": "instance-name", "Values": [name]}])
    assert got["TotalCount"] == 0 and not got["InstanceSet"]


def test_run_instances_dry_run_still_validates(cvm, catalog):
    expect_error(("InvalidImageId.NotFound", "InvalidImageId.Malformed"), cvm.call, "RunInstances",
                 Placement={"Zone": catalog.zone}, ImageId="img-zzzzzzzz",
                 LoginSettings={"Password": new_password()}, DryRun=True)


def test_describe_by_ids(cvm, trio):
    got = cvm.call("DescribeInstances", InstanceIds=trio["ids"][:2])
    assert got["TotalCount"] == 2
    assert sorted(i["InstanceId"] for i in got["InstanceSet"]) == sorted(trio["ids"][:2])
    # Unknown (well-formed) IDs are simply absent.
    got = cvm.call("DescribeInstances", InstanceIds=[random_instance_id()])
    assert got["TotalCount"] == 0 and not got["InstanceSet"]


@pytest.mark.parametrize("flt", [
    {"Name": "instance-state", "Values": ["RUNNING"]},
    {"Name": "zone", "Values": ["ZONE"]},
    {"Name": "instance-name", "Values": ["NAME"]},
], ids=lambda f: f["Name"])
def test_describe_by_filters(cvm, catalog, trio, flt):
    values = [{"ZONE": catalog.zone, "NAME": trio["name"]}.get(v, v) for v in flt["Values"]]
    got = cvm.call("DescribeInstances", Limit=100, Filters=[
        {"Name": flt["Name"], "Values": values},
        {"Name": "instance-name", "Values": [trio["name"]]},
    ])
    assert got["TotalCount"] == 3
    assert sorted(i["InstanceId"] for i in got["InstanceSet"]) == sorted(trio["ids"])


def test_describe_by_id_and_network_filters(cvm, trio):
    """`instance-id` and `uuid` are looked up by ID (an unknown one matches nothing); every
    instance is in the one VPC and subnet, so those filters keep all or none."""
    named = {"Name": "instance-name", "Values": [trio["name"]]}
    uuids = [i["Uuid"] for i in cvm.call("DescribeInstances", InstanceIds=trio["ids"])["InstanceSet"]]
    assert len(uuids) == 3
    for name, values in (("instance-id", trio["ids"] + [random_instance_id()]),
                         ("uuid", uuids + ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])):
        got = cvm.call("DescribeInstances", Limit=100, Filters=[{"Name": name, "Values": values}])
        assert got["TotalCount"] == 3, name
        assert sorted(i["InstanceId"] for i in got["InstanceSet"]) == sorted(trio["ids"])
        one = cvm.call("DescribeInstances", Filters=[{"Name": name, "Values": values[:1]}, named])
        assert [i["InstanceId"] for i in one["InstanceSet"]] == trio["ids"][:1], name
    for name, ours in (("vpc-id", "vpc-nubis000"), ("subnet-id", "subnet-nubis000")):
        got = cvm.call("DescribeInstances", Filters=[{"Name": name, "Values": [ours]}, named])
        assert got["TotalCount"] == 3, name
        got = cvm.call("DescribeInstances", Filters=[{"Name": name, "Values": ["vpc-zzzzzzzz"]}, named])
        assert got["TotalCount"] == 0 and not got["InstanceSet"], name


def test_describe_name_substring_and_tag_value_filters(cvm, catalog, trio):
    """`instance-name` matches a part of the name; `tag-value` a tag's value under any key."""
    part = trio["name"][2:-2]
    got = cvm.call("DescribeInstances", Limit=100, Filters=[{"Name": "instance-name", "Values": [part]}])
    assert sorted(i["InstanceId"] for i in got["InstanceSet"] if i["InstanceName"] == trio["name"]) == sorted(trio["ids"])
    assert all(part in i["InstanceName"] for i in got["InstanceSet"])
    value = unique_name("tv")
    tagged = cvm.call("RunInstances", Placement={"Zone": catalog.zone}, ImageId=catalog.linux_image,
                      InstanceCount=2, InstanceName=unique_name("tagged"), LoginSettings={"Password": new_password()},
                      TagSpecification=[{"ResourceType": "instance", "Tags": [
                          {"Key": "a", "Value": value}, {"Key": "b", "Value": value}]}])["InstanceIdSet"]
    got = cvm.call("DescribeInstances", Filters=[{"Name": "tag-value", "Values": [value, "no-such-value"]}])
    assert got["TotalCount"] == 2 and sorted(i["InstanceId"] for i in got["InstanceSet"]) == sorted(tagged)
    got = cvm.call("DescribeInstances", Filters=[{"Name": "tag-value", "Values": ["no-such-value"]}])
    assert got["TotalCount"] == 0 and not got["InstanceSet"]
    for iid in tagged:
        wait_settled(cvm, iid, "RUNNING")
    cvm.call("TerminateInstances", InstanceIds=tagged)


def test_describe_filters_and_together(cvm, trio):
    got = cvm.call("DescribeInstances", Filters=[
        {"Name": "instance-state", "Values": ["STOPPED"]},
        {"Name": "instance-name", "Values": [trio["name"]]},
    ])
    assert got["TotalCount"] == 0


def test_describe_paging(cvm, trio):
    flt = [{"Name": "instance-name", "Values": [trio["name"]]}]
    page1 = cvm.call("DescribeInstances", Filters=flt, Offset=0, Limit=2)
    page2 = cvm.call("DescribeInstances", Filters=flt, Offset=2, Limit=2)
    assert page1["TotalCount"] == page2["TotalCount"] == 3
    assert len(page1["InstanceSet"]) == 2 and len(page2["InstanceSet"]) == 1
    seen = [i["InstanceId"] for i in page1["InstanceSet"] + page2["InstanceSet"]]
    assert sorted(seen) == sorted(trio["ids"])


def test_describe_limit_over_100(cvm):
    expect_error(LIMIT_OVER_100, cvm.call, "DescribeInstances", Limit=101)


def test_describe_ids_and_filters_together(cvm, trio):
    expect_error("InvalidParameter", cvm.call, "DescribeInstances", InstanceIds=trio["ids"][:1],
                 Filters=[{"Name": "instance-state", "Values": ["RUNNING"]}])


def test_describe_malformed_id(cvm):
    expect_error("InvalidInstanceId.Malformed", cvm.call, "DescribeInstances", InstanceIds=["ins-1122"])


def test_describe_instances_status(cvm, trio):
    got = cvm.call("DescribeInstancesStatus", InstanceIds=trio["ids"])
    assert got["TotalCount"] == 3
    assert {s["InstanceId"]: s["InstanceState"] for s in got["InstanceStatusSet"]} == {
        iid: "RUNNING" for iid in trio["ids"]
    }


def test_stop_then_start(slow_cvm, slow_admin, slow_running):
    # STOPPING / STARTING right after the request: on the slow server (conftest.SLOW_TIME_SCALE).
    cvm, admin, running = slow_cvm, slow_admin, slow_running
    rid = cvm.call("StopInstances", InstanceIds=[running.id])["RequestId"]
    inst = describe(cvm, running.id)
    assert inst["InstanceState"] == "STOPPING"
    assert (inst["LatestOperation"], inst["LatestOperationState"]) == ("StopInstances", "OPERATING")
    inst = wait_settled(cvm, running.id, "STOPPED", rid)
    assert_op(inst, "StopInstances", rid)
    assert admin.guest(running.id)["power"] == "off"

    rid = cvm.call("StartInstances", InstanceIds=[running.id])["RequestId"]
    assert describe(cvm, running.id)["InstanceState"] == "STARTING"
    inst = wait_settled(cvm, running.id, "RUNNING", rid)
    assert_op(inst, "StartInstances", rid)
    assert admin.guest(running.id)["power"] == "on"
    assert admin.check_password(running.id, running.user, running.password)


@pytest.mark.parametrize("stop_type", [None, "SOFT", "HARD", "SOFT_FIRST"])
def test_reboot(slow_cvm, slow_admin, slow_running, stop_type):
    # REBOOTING right after the request: on the slow server (conftest.SLOW_TIME_SCALE).
    cvm, admin, running = slow_cvm, slow_admin, slow_running
    before = len(admin.guest(running.id)["restarts"])
    params = {"StopType": stop_type} if stop_type else {}
    rid = cvm.call("RebootInstances", InstanceIds=[running.id], **params)["RequestId"]
    assert describe(cvm, running.id)["InstanceState"] == "REBOOTING"
    inst = wait_settled(cvm, running.id, "RUNNING", rid)
    assert_op(inst, "RebootInstances", rid)
    restarts = admin.guest(running.id)["restarts"]
    assert len(restarts) == before + 1, restarts
    assert restarts[-1]["kind"] == ("hard" if stop_type == "HARD" else "graceful"), restarts


def test_wrong_state_errors(cvm, running, stopped):
    expect_error("UnsupportedOperation.InstanceStateRunning", cvm.call, "StartInstances",
                 InstanceIds=[running.id])
    expect_error("UnsupportedOperation.InstanceStateStopped", cvm.call, "StopInstances",
                 InstanceIds=[stopped.id])
    expect_error("UnsupportedOperation.InstanceStateStopped", cvm.call, "RebootInstances",
                 InstanceIds=[stopped.id])


@pytest.mark.parametrize("action", ["StartInstances", "StopInstances", "RebootInstances", "TerminateInstances"])
def test_unknown_instance(cvm, action):
    expect_error("InvalidInstanceId.NotFound", cvm.call, action, InstanceIds=[random_instance_id()])


def test_terminate(cvm, server, catalog):
    insts = launch(cvm, catalog, count=2)
    ids = [i.id for i in insts]
    cvm.call("TerminateInstances", InstanceIds=ids)
    for iid in ids:
        assert describe(cvm, iid)["InstanceState"] == "TERMINATING"
    for iid in ids:
        wait_state(cvm, iid, None, timeout=60)
    assert cvm.call("DescribeInstances", InstanceIds=ids)["TotalCount"] == 0
    expect_error("InvalidInstanceId.NotFound", cvm.call, "StartInstances", InstanceIds=ids[:1])
