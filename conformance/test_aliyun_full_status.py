"""Issue 12, Alibaba: DescribeInstancesFullStatus, the action added as one registry entry
(crates/api-aliyun/src/actions/mod.rs) plus its handler and rendering, through both official
clients' typed requests and response models: each instance's lifecycle status and health,
filters, paging and the documented limits. Instances without system events have an empty
event set, and a filter by event matches none of them (events themselves:
test_aliyun_system_events.py)."""

import pytest

from nubis import ALI_MISSING_REGION, expect_ecs_error, random_aliyun_instance_id

pytestmark = pytest.mark.timeout(120)


def full_status(ecs, **params) -> tuple[dict[str, dict], dict]:
    got = ecs.call("DescribeInstancesFullStatus", **params)
    rows = got["InstanceFullStatusSet"]["InstanceFullStatusType"]
    return {r["InstanceId"]: r for r in rows}, got


def test_status_and_health_of_running_and_stopped(ecs_any, ali_running, ali_stopped):
    ids = [ali_running.id, ali_stopped.id]
    rows, got = full_status(ecs_any, InstanceId=ids)
    assert sorted(rows) == sorted(ids)
    assert (got["TotalCount"], got["PageNumber"], got["PageSize"]) == (2, 1, 10)
    assert got["RequestId"]
    running, stopped = rows[ali_running.id], rows[ali_stopped.id]
    # ECS documents Running as code 1.
    assert running["Status"] == {"Code": 1, "Name": "Running"}
    assert running["HealthStatus"]["Name"] == "Ok"
    assert stopped["Status"]["Name"] == "Stopped"
    assert stopped["HealthStatus"]["Name"] == "NotApplicable"
    for row in rows.values():
        assert row["ScheduledSystemEventSet"].get("ScheduledSystemEventType", []) == []


def test_filters(ecs_any, ali_running, ali_stopped):
    ids = [ali_running.id, ali_stopped.id]
    rows, got = full_status(ecs_any, InstanceId=ids, Status="Running")
    assert (list(rows), got["TotalCount"]) == ([ali_running.id], 1)
    rows, _ = full_status(ecs_any, InstanceId=ids, HealthStatus="NotApplicable")
    assert list(rows) == [ali_stopped.id]
    rows, _ = full_status(ecs_any, InstanceId=ids, HealthStatus="Ok")
    assert list(rows) == [ali_running.id]
    # Neither instance has a scheduled system event.
    rows, got = full_status(ecs_any, InstanceId=ids, EventType="SystemMaintenance.Reboot")
    assert (rows, got["TotalCount"]) == ({}, 0)
    rows, _ = full_status(ecs_any, InstanceId=[random_aliyun_instance_id()])
    assert rows == {}


def test_paging(ecs_any, ali_running, ali_stopped):
    ids = [ali_running.id, ali_stopped.id]
    first, got1 = full_status(ecs_any, InstanceId=ids, PageSize=1, PageNumber=1)
    second, got2 = full_status(ecs_any, InstanceId=ids, PageSize=1, PageNumber=2)
    assert (got1["TotalCount"], got2["TotalCount"]) == (2, 2)
    assert (got2["PageNumber"], got2["PageSize"]) == (2, 1)
    assert len(first) == len(second) == 1
    assert sorted([*first, *second]) == sorted(ids)


def test_limits(ecs_any):
    too_many = [random_aliyun_instance_id() for _ in range(101)]
    expect_ecs_error(403, "InstanceIdLimitExceeded", ecs_any.call,
                     "DescribeInstancesFullStatus", InstanceId=too_many)
    expect_ecs_error(400, "InvalidParameter", ecs_any.call, "DescribeInstancesFullStatus", PageSize=101)


def test_missing_region(ecs_tea):
    """Only the Tea client can leave RegionId out (the legacy core always adds it)."""
    expect_ecs_error(*ALI_MISSING_REGION, ecs_tea.call, "DescribeInstancesFullStatus", RegionId=None)
