"""One fleet: a server made through Nova is a Tencent instance too, and what Tencent does to
it shows in Nova's spelling (DESIGN.md "One state, three spellings")."""

from __future__ import annotations

import time

import pytest

from test_openstack_support import connect, create_server, wait_gone, wait_status

# openstacksdk announces its own future API changes on every call; they are not ours.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


@pytest.fixture(scope="module")
def slow(server_factory):
    """Realistic sim timings, so transitional states are long enough to observe."""
    return server_factory("openstack-slow", NUBIS_SIM_TIME_SCALE="1")


def tencent_id(server, server_uuid: str) -> str:
    got = server.cvm().call("DescribeInstances", Filters=[{"Name": "uuid", "Values": [server_uuid]}])
    assert len(got["InstanceSet"]) == 1, got
    return got["InstanceSet"][0]["InstanceId"]


def statuses_until_settled(conn, server_id: str, timeout: float = 60) -> list[tuple]:
    seen: list[tuple] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = conn.compute.get_server(server_id)
        pair = (s.status, s.task_state)
        if not seen or seen[-1] != pair:
            seen.append(pair)
        if s.task_state is None and len(seen) > 1:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"never settled: {seen}")


def test_tencent_actions_show_in_nova(slow):
    conn = connect(slow)
    srv, pw = create_server(conn)
    iid = tencent_id(slow, srv.id)
    cvm = slow.cvm()
    assert cvm.call("DescribeInstances", InstanceIds=[iid])["InstanceSet"][0]["InstanceState"] == "RUNNING"

    # A forced (hard) reboot asked through Tencent is HARD_REBOOT in Nova.
    cvm.call("RebootInstances", InstanceIds=[iid], StopType="HARD")
    seen = statuses_until_settled(conn, srv.id)
    assert ("HARD_REBOOT", "rebooting_hard") in seen, seen
    assert seen[-1] == ("ACTIVE", None)

    cvm.call("StopInstances", InstanceIds=[iid])
    seen = statuses_until_settled(conn, srv.id)
    assert ("ACTIVE", "powering-off") in seen and seen[-1] == ("SHUTOFF", None), seen

    # And the other way round: Nova's rescue is Tencent's RESCUE_MODE.
    conn.compute.rescue_server(srv)
    wait_status(conn, srv.id, "RESCUE")
    assert cvm.call("DescribeInstances", InstanceIds=[iid])["InstanceSet"][0]["InstanceState"] == "RESCUE_MODE"
    conn.compute.unrescue_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    assert slow.admin.check_password(srv.id, "root", pw)
    conn.compute.delete_server(srv)
    wait_gone(conn, srv.id)
