"""Alibaba instance lifecycle (spec §5, §6) through both official client generations:
RunInstances (ClientToken idempotency), DescribeInstances (InstanceIds JSON string, Status
filter, PageNumber/PageSize and MaxResults/NextToken paging, list wrappers),
DescribeInstanceStatus, Reboot/Stop/Start (single and batch), DeleteInstance(s),
CreateInstance — effects checked through the admin guest API."""

import re
import secrets

import pytest

from nubis import (
    reboots,
    ALI_DRY_RUN_MESSAGE,
    ALI_GENERATIONS,
    ALI_INSTANCE_ID,
    ALI_REGION,
    ALI_REQUEST_ID,
    ecs_client,
    ecs_describe,
    ecs_instances,
    ecs_wait_settled,
    ecs_wait_status,
    expect_ecs_error,
    new_password,
    random_aliyun_instance_id,
    unique_name,
)

pytestmark = pytest.mark.timeout(180)

MINUTES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ")  # CreationTime: UTC to the minute


@pytest.fixture(scope="module", params=ALI_GENERATIONS)
def pair(request, server, ali_catalog):
    """Two instances from one RunInstances (Amount=2, ClientToken) made by the generation
    under test; the statuses seen right after the call; then settled Running."""
    ecs = ecs_client(server, request.param)
    name = unique_name(f"pair-{request.param}")
    password = new_password()
    token = "tok-" + secrets.token_hex(8)
    resp = ecs.call("RunInstances", ZoneId=ali_catalog.zone, ImageId=ali_catalog.linux_image,
                    InstanceType=ali_catalog.instance_type, Amount=2, InstanceName=name,
                    Password=password, ClientToken=token)
    ids = resp["InstanceIdSets"]["InstanceIdSet"]
    for iid in ids:
        ecs_wait_settled(ecs, server.admin, iid, "Running")
    return {"ecs": ecs, "ids": ids, "name": name, "password": password, "token": token,
            "request_id": resp["RequestId"]}


def test_run_instances(pair, admin, ali_catalog):
    ids = pair["ids"]
    assert len(ids) == 2 and len(set(ids)) == 2, ids
    assert ALI_REQUEST_ID.fullmatch(pair["request_id"]), pair["request_id"]
    got = ecs_instances(pair["ecs"], ids)
    for iid in ids:
        assert ALI_INSTANCE_ID.fullmatch(iid), iid
        inst = got[iid]
        assert inst["Status"] == "Running"
        assert inst["InstanceName"] == pair["name"]
        assert inst["RegionId"] == ALI_REGION and inst["ZoneId"] == ali_catalog.zone
        assert inst["ImageId"] == ali_catalog.linux_image
        assert inst["InstanceType"] == ali_catalog.instance_type
        assert inst["OSType"] == "linux"
        assert inst["Cpu"] == 2 and inst["Memory"] == 4096, inst  # ecs.s5.medium4; Memory in MiB
        assert MINUTES.fullmatch(inst["CreationTime"]), inst["CreationTime"]
        assert inst["OperationLocks"] == {"LockReason": []}, inst["OperationLocks"]
        assert "Password" not in inst
        guest = admin.guest(iid)
        assert guest["os_family"] == "linux" and guest["power"] == "on"
        assert admin.check_password(iid, "root", pair["password"])


def test_run_instances_start_pending(slow_server, slow_ali_catalog, slow_ecs_any):
    """Created asynchronously: Pending right after the call, then Running. On the slow server,
    where a create lasts 3.5 s (0.7 s at the default scale; conftest.SLOW_TIME_SCALE)."""
    cat, ecs = slow_ali_catalog, slow_ecs_any
    resp = ecs.call("RunInstances", ZoneId=cat.zone, ImageId=cat.linux_image, InstanceType=cat.instance_type,
                    Amount=2, InstanceName=unique_name("pending"), Password=new_password())
    ids = resp["InstanceIdSets"]["InstanceIdSet"]
    assert {iid: i["Status"] for iid, i in ecs_instances(ecs, ids).items()} == {iid: "Pending" for iid in ids}
    for iid in ids:
        ecs_wait_settled(ecs, slow_server.admin, iid, "Running")


def test_client_token_is_idempotent(pair, ali_catalog):
    again = pair["ecs"].call("RunInstances", ZoneId=ali_catalog.zone, ImageId=ali_catalog.linux_image,
                             InstanceType=ali_catalog.instance_type, Amount=2, InstanceName=pair["name"],
                             Password=pair["password"], ClientToken=pair["token"])
    assert again["InstanceIdSets"]["InstanceIdSet"] == pair["ids"]
    named = pair["ecs"].call("DescribeInstances", InstanceName=pair["name"])
    assert named["TotalCount"] == 2


def test_describe_by_instance_ids(pair):
    ecs = pair["ecs"]
    got = ecs.call("DescribeInstances", InstanceIds=pair["ids"])  # sent as one JSON-array string
    assert got["TotalCount"] == 2
    assert sorted(i["InstanceId"] for i in got["Instances"]["Instance"]) == sorted(pair["ids"])
    got = ecs.call("DescribeInstances", InstanceIds=[pair["ids"][0], random_aliyun_instance_id()])
    assert [i["InstanceId"] for i in got["Instances"]["Instance"]] == [pair["ids"][0]]
    assert got["TotalCount"] == 1


def test_describe_list_wrappers(pair):
    """Every list is {Plural: {Singular: [...]}} (spec quirk Q2)."""
    got = pair["ecs"].call("DescribeInstances", InstanceIds=pair["ids"])
    assert isinstance(got["Instances"], dict) and isinstance(got["Instances"]["Instance"], list)
    for inst in got["Instances"]["Instance"]:
        assert isinstance(inst["OperationLocks"], dict) and inst["OperationLocks"]["LockReason"] == []


def test_describe_status_filter(pair):
    ecs = pair["ecs"]
    running = ecs.call("DescribeInstances", InstanceName=pair["name"], Status="Running")
    assert running["TotalCount"] == 2
    assert {i["Status"] for i in running["Instances"]["Instance"]} == {"Running"}
    stopped = ecs.call("DescribeInstances", InstanceName=pair["name"], Status="Stopped")
    assert stopped["TotalCount"] == 0 and stopped["Instances"]["Instance"] == []


def test_describe_type_and_wildcard_name_filters(pair, ali_catalog):
    """InstanceType by its Alibaba name and InstanceName with a `*` answer from the fleet's
    indexes like the exact tests: both of the pair, each alone and together."""
    ecs = pair["ecs"]
    prefix, suffix = pair["name"][:-3], pair["name"][-3:]
    for params in ({"InstanceName": prefix + "*"}, {"InstanceName": "*" + suffix},
                   {"InstanceName": pair["name"], "InstanceType": ali_catalog.instance_type}):
        got = ecs.call("DescribeInstances", PageSize=100, **params)
        mine = sorted(i["InstanceId"] for i in got["Instances"]["Instance"] if i["InstanceName"] == pair["name"])
        assert mine == sorted(pair["ids"]), params
        assert all(i["InstanceName"].startswith(prefix) or i["InstanceName"].endswith(suffix)
                   for i in got["Instances"]["Instance"]), params
    typed = ecs.call("DescribeInstances", InstanceType=ali_catalog.instance_type, PageSize=1)
    assert typed["TotalCount"] >= 2
    assert {i["InstanceType"] for i in typed["Instances"]["Instance"]} == {ali_catalog.instance_type}
    for params in ({"InstanceType": "ecs.no-such.type"}, {"InstanceName": pair["name"] + "x*"}):
        got = ecs.call("DescribeInstances", **params)
        assert got["TotalCount"] == 0 and got["Instances"]["Instance"] == [], params


def test_describe_page_number_paging(pair):
    ecs = pair["ecs"]
    p1 = ecs.call("DescribeInstances", InstanceName=pair["name"], PageNumber=1, PageSize=1)
    p2 = ecs.call("DescribeInstances", InstanceName=pair["name"], PageNumber=2, PageSize=1)
    p3 = ecs.call("DescribeInstances", InstanceName=pair["name"], PageNumber=3, PageSize=1)
    assert (p1["PageNumber"], p1["PageSize"], p2["PageNumber"]) == (1, 1, 2)
    assert p1["TotalCount"] == p2["TotalCount"] == p3["TotalCount"] == 2
    assert len(p1["Instances"]["Instance"]) == 1 and len(p2["Instances"]["Instance"]) == 1
    assert p3["Instances"]["Instance"] == []
    seen = [i["InstanceId"] for i in p1["Instances"]["Instance"] + p2["Instances"]["Instance"]]
    assert sorted(seen) == sorted(pair["ids"])


def test_describe_next_token_paging(pair):
    ecs = pair["ecs"]
    seen, token, pages = [], None, 0
    while True:
        page = ecs.call("DescribeInstances", InstanceName=pair["name"], MaxResults=1, NextToken=token)
        pages += 1
        batch = [i["InstanceId"] for i in page["Instances"]["Instance"]]
        assert len(batch) <= 1, page
        seen += batch
        token = page.get("NextToken") or None
        if token is None:
            break
        assert pages < 4, f"NextToken paging does not end: {page}"
    assert sorted(seen) == sorted(pair["ids"]), seen
    assert pages >= 2


def test_describe_instance_status(pair):
    got = pair["ecs"].call("DescribeInstanceStatus", InstanceId=pair["ids"])
    statuses = {s["InstanceId"]: s["Status"] for s in got["InstanceStatuses"]["InstanceStatus"]}
    assert statuses == {iid: "Running" for iid in pair["ids"]}
    assert got["TotalCount"] == 2


# --------------------------------------------------------------------------------------
# Power actions


@pytest.mark.parametrize("force, kind", [(None, "graceful"), (False, "graceful"), (True, "hard")],
                         ids=["default", "forcestop-false", "forcestop-true"])
def test_reboot(slow_ecs_any, slow_admin, slow_ali_running, force, kind):
    # Starting right after the request: on the slow server (conftest.SLOW_TIME_SCALE).
    ecs_any, admin, ali_running = slow_ecs_any, slow_admin, slow_ali_running
    iid = ali_running.id
    before = len(reboots(admin, iid))
    rid = ecs_any.call("RebootInstance", InstanceId=iid, ForceStop=force)["RequestId"]
    assert ALI_REQUEST_ID.fullmatch(rid), rid
    assert ecs_describe(ecs_any, iid)["Status"] == "Starting"
    ecs_wait_settled(ecs_any, admin, iid, "Running")
    restarts = reboots(admin, iid)
    assert len(restarts) == before + 1, restarts
    assert restarts[-1]["kind"] == kind, restarts
    assert admin.guest(iid)["power"] == "on"


def test_reboot_dry_run_changes_nothing(ecs_any, admin, ali_running):
    iid = ali_running.id
    before = len(reboots(admin, iid))
    err = expect_ecs_error(400, "DryRunOperation", ecs_any.call, "RebootInstance", InstanceId=iid, DryRun=True)
    assert err.message == ALI_DRY_RUN_MESSAGE
    assert ecs_describe(ecs_any, iid)["Status"] == "Running"
    assert admin.instance(iid)["lock"] is None
    ecs_wait_settled(ecs_any, admin, iid, "Running")
    assert len(reboots(admin, iid)) == before


def test_stop_then_start(slow_ecs_any, slow_admin, slow_ali_running):
    # Stopping / Starting right after the request: on the slow server (conftest.SLOW_TIME_SCALE).
    ecs_any, admin, ali_running = slow_ecs_any, slow_admin, slow_ali_running
    iid = ali_running.id
    ecs_any.call("StopInstance", InstanceId=iid)
    assert ecs_describe(ecs_any, iid)["Status"] == "Stopping"
    ecs_wait_settled(ecs_any, admin, iid, "Stopped")
    assert admin.guest(iid)["power"] == "off"

    ecs_any.call("StartInstance", InstanceId=iid)
    assert ecs_describe(ecs_any, iid)["Status"] == "Starting"
    ecs_wait_settled(ecs_any, admin, iid, "Running")
    assert admin.guest(iid)["power"] == "on"
    assert admin.check_password(iid, ali_running.user, ali_running.password)


def _responses(resp: dict) -> dict[str, dict]:
    return {r["InstanceId"]: r for r in resp["InstanceResponses"]["InstanceResponse"]}


def test_batch_stop_start_reboot(ecs_any, admin, ali_make_instance):
    ids = [i.id for i in ali_make_instance(amount=2)]

    got = _responses(ecs_any.call("StopInstances", InstanceId=ids))
    assert set(got) == set(ids)
    for r in got.values():
        assert (r["Code"], r["PreviousStatus"], r["CurrentStatus"]) == ("200", "Running", "Stopping"), r
    for iid in ids:
        ecs_wait_settled(ecs_any, admin, iid, "Stopped")
        assert admin.guest(iid)["power"] == "off"

    got = _responses(ecs_any.call("StartInstances", InstanceId=ids))
    assert set(got) == set(ids)
    for r in got.values():
        assert (r["Code"], r["PreviousStatus"], r["CurrentStatus"]) == ("200", "Stopped", "Starting"), r
    for iid in ids:
        ecs_wait_settled(ecs_any, admin, iid, "Running")

    before = {iid: len(reboots(admin, iid)) for iid in ids}
    got = _responses(ecs_any.call("RebootInstances", InstanceId=ids))
    assert set(got) == set(ids)
    for r in got.values():
        assert (r["Code"], r["PreviousStatus"], r["CurrentStatus"]) == ("200", "Running", "Starting"), r
    for iid in ids:
        ecs_wait_settled(ecs_any, admin, iid, "Running")
        restarts = reboots(admin, iid)
        assert len(restarts) == before[iid] + 1 and restarts[-1]["kind"] == "graceful", restarts


def test_batch_reboot_force(ecs_any, admin, ali_running):
    iid = ali_running.id
    before = len(reboots(admin, iid))
    ecs_any.call("RebootInstances", InstanceId=[iid], ForceReboot=True)
    ecs_wait_settled(ecs_any, admin, iid, "Running")
    restarts = reboots(admin, iid)
    assert len(restarts) == before + 1 and restarts[-1]["kind"] == "hard", restarts


def test_wrong_state(ecs_any, admin, ali_running, ali_stopped):
    expect_ecs_error(403, "IncorrectInstanceStatus", ecs_any.call, "StartInstance", InstanceId=ali_running.id)
    expect_ecs_error(403, "IncorrectInstanceStatus", ecs_any.call, "StopInstance", InstanceId=ali_stopped.id)
    assert ecs_describe(ecs_any, ali_running.id)["Status"] == "Running"
    assert ecs_describe(ecs_any, ali_stopped.id)["Status"] == "Stopped"


@pytest.mark.parametrize("action", ["RebootInstance", "StartInstance", "StopInstance", "DeleteInstance"])
def test_unknown_instance(ecs_any, action):
    expect_ecs_error(404, "InvalidInstanceId.NotFound", ecs_any.call, action, InstanceId=random_aliyun_instance_id())


# --------------------------------------------------------------------------------------
# Deleting and creating


def _assert_gone(ecs, iid):
    got = ecs.call("DescribeInstances", InstanceIds=[iid])
    assert got["TotalCount"] == 0 and got["Instances"]["Instance"] == [], got
    expect_ecs_error(404, "InvalidInstanceId.NotFound", ecs.call, "RebootInstance", InstanceId=iid)
    expect_ecs_error(404, "InvalidInstanceId.NotFound", ecs.call, "DeleteInstance", InstanceId=iid, Force=True)


def test_delete_running_instance_needs_force(ecs_any, admin, ali_running):
    iid = ali_running.id
    expect_ecs_error(403, "IncorrectInstanceStatus", ecs_any.call, "DeleteInstance", InstanceId=iid)
    assert ecs_describe(ecs_any, iid)["Status"] == "Running"
    assert admin.instance(iid)["lock"] is None

    ecs_any.call("DeleteInstance", InstanceId=iid, Force=True)
    ecs_wait_status(ecs_any, iid, None, timeout=60)
    _assert_gone(ecs_any, iid)


def test_delete_stopped_instance(ecs_any, ali_stopped):
    ecs_any.call("DeleteInstance", InstanceId=ali_stopped.id)
    ecs_wait_status(ecs_any, ali_stopped.id, None, timeout=60)
    _assert_gone(ecs_any, ali_stopped.id)


def test_delete_instances(ecs_any, ali_make_instance):
    ids = [i.id for i in ali_make_instance(amount=2)]
    ecs_any.call("DeleteInstances", InstanceId=ids, Force=True)
    for iid in ids:
        ecs_wait_status(ecs_any, iid, None, timeout=60)
    assert ecs_any.call("DescribeInstances", InstanceIds=ids)["TotalCount"] == 0
    _assert_gone(ecs_any, ids[0])


def test_create_instance_is_stopped(ecs_any, admin, ali_catalog):
    password = new_password()
    name = unique_name("create")
    resp = ecs_any.call("CreateInstance", ZoneId=ali_catalog.zone, ImageId=ali_catalog.linux_image,
                        InstanceType=ali_catalog.instance_type, InstanceName=name, Password=password)
    iid = resp["InstanceId"]
    assert ALI_INSTANCE_ID.fullmatch(iid), resp
    assert ecs_describe(ecs_any, iid)["Status"] in ("Pending", "Stopped")
    inst = ecs_wait_settled(ecs_any, admin, iid, "Stopped")
    assert inst["InstanceName"] == name
    assert admin.guest(iid)["power"] == "off"

    ecs_any.call("StartInstance", InstanceId=iid)
    ecs_wait_settled(ecs_any, admin, iid, "Running")
    assert admin.guest(iid)["power"] == "on"
    assert admin.check_password(iid, "root", password)

