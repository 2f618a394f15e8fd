"""Issue 15, Alibaba operator views: system events (docs/system-events.md).
CreateSimulatedSystemEvents schedules events, CancelSimulatedSystemEvents cancels them,
DescribeInstanceHistoryEvents and DescribeInstancesFullStatus show them, through both official
client generations: the lifecycle (scheduled, executing, executed, avoided by a restart,
canceled), the filters, both paging styles, and every refusal with ECS's code."""

import time

import pytest

from nubis import (
    ALI_MISSING_REGION,
    ali_timestamp,
    ecs_client,
    ecs_wait_status,
    expect_ecs_error,
    random_aliyun_instance_id,
)
from test_ram import new_account

pytestmark = pytest.mark.timeout(180)

HOUR = 3600


def schedule(ecs, ids: list[str], kind: str, in_seconds: float) -> list[str]:
    got = ecs.call("CreateSimulatedSystemEvents", InstanceId=ids, EventType=kind,
                   NotBefore=ali_timestamp(time.time() + in_seconds))
    assert got["RequestId"]
    return got["EventIdSet"]["EventId"]


def history(ecs, **params) -> tuple[dict[str, dict], dict]:
    got = ecs.call("DescribeInstanceHistoryEvents", **params)
    rows = got["InstanceSystemEventSet"].get("InstanceSystemEventType", [])
    return {r["EventId"]: r for r in rows}, got


def scheduled_of(ecs, iid: str) -> list[dict]:
    got = ecs.call("DescribeInstancesFullStatus", InstanceId=[iid])
    (row,) = got["InstanceFullStatusSet"]["InstanceFullStatusType"]
    return row["ScheduledSystemEventSet"].get("ScheduledSystemEventType", [])


def test_a_maintenance_reboot_is_scheduled_listed_and_canceled(ecs_any, ali_running):
    (eid,) = schedule(ecs_any, [ali_running.id], "SystemMaintenance.Reboot", HOUR)
    assert eid.startswith("e-") and len(eid) == 22, eid
    # Only ended events by default.
    rows, _ = history(ecs_any, InstanceId=ali_running.id)
    assert eid not in rows
    rows, got = history(ecs_any, InstanceId=ali_running.id, InstanceEventCycleStatus=["Scheduled"])
    e = rows[eid]
    assert e["EventType"] == {"Code": 1, "Name": "SystemMaintenance.Reboot"}
    assert e["EventCycleStatus"] == {"Code": 24, "Name": "Scheduled"}
    assert (e["InstanceId"], e["ResourceType"], e["Reason"]) == (ali_running.id, "instance", "A simulated event.")
    assert e["EventPublishTime"] <= e["NotBefore"] and not e.get("EventFinishTime")
    assert (got["TotalCount"], got["PageNumber"], got["PageSize"]) == (1, 1, 10)
    # The same event as DescribeInstancesFullStatus shows it, and its event filters.
    (sched,) = scheduled_of(ecs_any, ali_running.id)
    assert (sched["EventId"], sched["EventCycleStatus"]["Name"], sched["NotBefore"]) == (eid, "Scheduled", e["NotBefore"])
    got = ecs_any.call("DescribeInstancesFullStatus", InstanceId=[ali_running.id], EventType="SystemMaintenance.Reboot")
    assert [r["InstanceId"] for r in got["InstanceFullStatusSet"]["InstanceFullStatusType"]] == [ali_running.id]
    got = ecs_any.call("DescribeInstancesFullStatus", InstanceId=[ali_running.id], EventType="SystemFailure.Reboot")
    assert got["TotalCount"] == 0
    # Canceled: ended now, listed by default, gone from the scheduled set, not cancelable again.
    ecs_any.call("CancelSimulatedSystemEvents", EventId=[eid])
    rows, _ = history(ecs_any, InstanceId=ali_running.id)
    assert rows[eid]["EventCycleStatus"]["Name"] == "Canceled"
    assert rows[eid]["EventFinishTime"] >= rows[eid]["EventPublishTime"]
    assert scheduled_of(ecs_any, ali_running.id) == []
    expect_ecs_error(403, "InvalidStatus.SystemEvent", ecs_any.call, "CancelSimulatedSystemEvents", EventId=[eid])


def test_a_restart_before_its_time_avoids_the_maintenance_reboot(ecs, ali_running):
    (eid,) = schedule(ecs, [ali_running.id], "SystemMaintenance.Reboot", HOUR)
    (other,) = schedule(ecs, [ali_running.id], "SystemMaintenance.Redeploy", HOUR)
    ecs.call("RebootInstance", InstanceId=ali_running.id)
    ecs_wait_status(ecs, ali_running.id, "Running")
    deadline = time.time() + 30
    while True:
        rows, _ = history(ecs, InstanceId=ali_running.id)
        if eid in rows or time.time() > deadline:
            break
        time.sleep(0.5)
    assert rows[eid]["EventCycleStatus"] == {"Code": 8, "Name": "Avoided"}, rows
    assert rows[eid]["EventFinishTime"] < rows[eid]["NotBefore"]
    # A restart does not avoid a redeployment: it stays scheduled.
    assert other not in rows
    assert [s["EventId"] for s in scheduled_of(ecs, ali_running.id)] == [other]


def test_an_unplanned_event_executes_until_its_time(ecs_any, ali_running):
    (eid,) = schedule(ecs_any, [ali_running.id], "SystemFailure.Reboot", 3)
    rows, _ = history(ecs_any, EventId=[eid], EventCycleStatus="Executing")
    assert rows[eid]["EventType"] == {"Code": 65, "Name": "SystemFailure.Reboot"}
    assert rows[eid]["EventCycleStatus"]["Name"] == "Executing"
    time.sleep(4)
    rows, _ = history(ecs_any, EventId=[eid])
    assert rows[eid]["EventCycleStatus"] == {"Code": 0, "Name": "Executed"}
    assert rows[eid]["EventFinishTime"] == rows[eid]["NotBefore"]
    # The instance itself is untouched: simulated events never act.
    assert ecs_any.call("DescribeInstanceAttribute", InstanceId=ali_running.id)["Status"] == "Running"


def test_filters_and_both_paging_styles(ecs_any, ali_make_instance):
    a, b = ali_make_instance(amount=2)
    ids = schedule(ecs_any, [a.id, b.id], "SystemMaintenance.Stop", HOUR)
    assert len(ids) == 2
    for _ in range(5):
        ids += schedule(ecs_any, [a.id, b.id], "SystemFailure.Redeploy", HOUR)
    active = ["Scheduled", "Executing"]
    rows, got = history(ecs_any, InstanceEventCycleStatus=active, EventId=ids, PageSize=100)
    assert sorted(rows) == sorted(ids) and got["TotalCount"] == 12
    rows, _ = history(ecs_any, InstanceEventCycleStatus=active, ResourceId=[a.id], EventId=ids, PageSize=100)
    assert len(rows) == 6 and {r["InstanceId"] for r in rows.values()} == {a.id}
    rows, _ = history(ecs_any, InstanceEventCycleStatus=active, InstanceEventType=["SystemMaintenance.Stop"], EventId=ids)
    assert sorted(rows) == sorted(ids[:2])
    later = ali_timestamp(time.time() + 2 * HOUR)
    rows, _ = history(ecs_any, InstanceEventCycleStatus=active, EventId=ids, NotBefore={"Start": later})
    assert rows == {}
    rows, _ = history(ecs_any, InstanceEventCycleStatus=active, ResourceType="ddh", EventId=ids)
    assert rows == {}
    # PageNumber/PageSize.
    pages = [history(ecs_any, InstanceEventCycleStatus=active, EventId=ids, PageSize=5, PageNumber=n) for n in (1, 2, 3)]
    assert [len(p[0]) for p in pages] == [5, 5, 2]
    assert sorted(k for p in pages for k in p[0]) == sorted(ids)
    # MaxResults/NextToken (MaxResults below 10 reads as 10).
    first, got = history(ecs_any, InstanceEventCycleStatus=active, EventId=ids, MaxResults=3)
    assert len(first) == 10 and got["NextToken"]
    rest, got2 = history(ecs_any, InstanceEventCycleStatus=active, EventId=ids, MaxResults=10, NextToken=got["NextToken"])
    assert len(rest) == 2 and not got2.get("NextToken")
    assert sorted([*first, *rest]) == sorted(ids)
    # An ID given twice, apart, is canceled once.
    ecs_any.call("CancelSimulatedSystemEvents", EventId=[ids[0], ids[1], ids[0]])
    ecs_any.call("CancelSimulatedSystemEvents", EventId=ids[2:])


def test_refusals(ecs_any, ali_running):
    soon = ali_timestamp(time.time() + HOUR)
    call = ecs_any.call
    iid = [ali_running.id]
    reboot = "SystemMaintenance.Reboot"
    expect_ecs_error(403, "InvalidNotBefore.Passed", call, "CreateSimulatedSystemEvents",
                     InstanceId=iid, EventType=reboot, NotBefore=ali_timestamp(time.time() - 60))
    expect_ecs_error(403, "InvalidParameter", call, "CreateSimulatedSystemEvents",
                     InstanceId=iid, EventType=reboot, NotBefore=ali_timestamp(time.time() + 400 * 86400))
    expect_ecs_error(403, "InvalidParameter", call, "CreateSimulatedSystemEvents",
                     InstanceId=iid, EventType="SystemMaintenance.Nonsense", NotBefore=soon)
    # A real type that cannot be simulated.
    expect_ecs_error(403, "InvalidParameter", call, "CreateSimulatedSystemEvents",
                     InstanceId=iid, EventType="AccountUnbalanced.Delete", NotBefore=soon)
    expect_ecs_error(403, "InvalidParameter", call, "CreateSimulatedSystemEvents",
                     InstanceId=iid, EventType=reboot, NotBefore="tomorrow")
    # The legacy generation's request class has no TriggerRealOps: its CommonRequest sends it.
    trigger = call if ecs_any.generation == "tea" else ecs_any.common
    expect_ecs_error(403, "InvalidParameter", trigger, "CreateSimulatedSystemEvents",
                     InstanceId=iid, EventType=reboot, NotBefore=soon, TriggerRealOps=True)
    expect_ecs_error(404, "MissingParameter", call, "CreateSimulatedSystemEvents", InstanceId=iid, EventType=reboot)
    expect_ecs_error(404, "MissingParameter", call, "CreateSimulatedSystemEvents", EventType=reboot, NotBefore=soon)
    expect_ecs_error(404, "InvalidInstanceId.NotFound", call, "CreateSimulatedSystemEvents",
                     InstanceId=[random_aliyun_instance_id()], EventType=reboot, NotBefore=soon)
    expect_ecs_error(403, "InstanceIdLimitExceeded", call, "CreateSimulatedSystemEvents",
                     InstanceId=[random_aliyun_instance_id() for _ in range(101)], EventType=reboot, NotBefore=soon)
    expect_ecs_error(404, "MissingParameter", call, "CancelSimulatedSystemEvents")
    expect_ecs_error(403, "InvalidEventId.NotFound", call, "CancelSimulatedSystemEvents", EventId=["e-" + "0" * 20])
    expect_ecs_error(400, "EventIdLimitExceeded", call, "CancelSimulatedSystemEvents",
                     EventId=[f"e-{n:020d}" for n in range(101)])
    expect_ecs_error(403, "EventIdLimitExceeded", call, "DescribeInstanceHistoryEvents",
                     EventId=[f"e-{n:020d}" for n in range(101)])
    expect_ecs_error(403, "InvalidParameter", call, "DescribeInstanceHistoryEvents", EventCycleStatus="Sleeping")
    expect_ecs_error(403, "InvalidParameter", call, "DescribeInstanceHistoryEvents", EventType="Reboot")
    expect_ecs_error(403, "InvalidParameter", call, "DescribeInstanceHistoryEvents", ResourceType="disk")
    expect_ecs_error(403, "InvalidParameter", call, "DescribeInstanceHistoryEvents",
                     EventPublishTime={"Start": "yesterday"})
    expect_ecs_error(403, "InvalidParameter.TimeEndBeforeStart", call, "DescribeInstanceHistoryEvents",
                     NotBefore={"Start": soon, "End": ali_timestamp(time.time())})
    expect_ecs_error(403, "InvalidParameter", call, "DescribeInstancesFullStatus", EventType="Reboot")
    # Nothing was scheduled by any of them.
    rows, _ = history(ecs_any, InstanceId=ali_running.id, InstanceEventCycleStatus=["Scheduled", "Executing"])
    assert rows == {}


def test_missing_region(ecs_tea):
    """Only the Tea client can leave RegionId out (the legacy core always adds it)."""
    expect_ecs_error(*ALI_MISSING_REGION, ecs_tea.call, "DescribeInstanceHistoryEvents", RegionId=None)


@pytest.mark.parametrize("generation", ["legacy", "tea"])
def test_another_account_neither_sees_nor_cancels_them(server, ecs, ali_running, generation):
    (eid,) = schedule(ecs, [ali_running.id], "SystemMaintenance.Reboot", HOUR)
    _, key = new_account(server)
    other = ecs_client(server, generation, access_key_id=key[0], access_key_secret=key[1], retry=False)
    rows, got = history(other, InstanceEventCycleStatus=["Scheduled"])
    assert (rows, got["TotalCount"]) == ({}, 0)
    expect_ecs_error(403, "InvalidEventId.NotFound", other.call, "CancelSimulatedSystemEvents", EventId=[eid])
    expect_ecs_error(404, "InvalidInstanceId.NotFound", other.call, "CreateSimulatedSystemEvents",
                     InstanceId=[ali_running.id], EventType="SystemMaintenance.Reboot",
                     NotBefore=ali_timestamp(time.time() + HOUR))
    rows, _ = history(ecs, EventId=[eid], EventCycleStatus="Scheduled")
    assert list(rows) == [eid]
