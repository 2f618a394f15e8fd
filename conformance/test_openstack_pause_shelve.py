"""Nova pause/unpause, suspend/resume, shelve/shelveOffload/unshelve (issue 15,
docs/pause-suspend-shelve.md): each through openstacksdk and novaclient, Nova's statuses and
power states, each wrong state answered 409 with Nova's message, the owner's lock, unshelve's
2.77 availability_zone and 2.91 host, `shelved_offload_time = -1`, and how Tencent and
Alibaba show (and refuse) a held server."""

from __future__ import annotations

import time

import pytest
from novaclient import exceptions as nova_exc
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from nubis import ecs_client, expect_ecs_error, expect_error
from test_openstack_novaclient import nova, wait as nova_wait
from test_openstack_support import (  # noqa: F401 (fixtures)
    conn,
    connect,
    create_server,
    expect_http,
    fault_of,
    os_server,
    raw,
    wait_gone,
    wait_status,
)

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def action(server, conn, sid: str, body, version: str | None = None):  # noqa: F811
    headers = {"X-OpenStack-Nova-API-Version": version} if version else None
    return raw(server, conn, "POST", f"/compute/v2.1/servers/{sid}/action", json_body=body,
               headers=headers)


def nova_view(conn, sid: str) -> tuple:
    s = conn.compute.get_server(sid)
    return s.status, s.vm_state, s.task_state, s.power_state


def test_pause_unpause(server, conn, os_server):  # noqa: F811
    srv, pw = os_server
    conn.compute.pause_server(srv)
    wait_status(conn, srv.id, "PAUSED")
    assert nova_view(conn, srv.id) == ("PAUSED", "paused", None, 3)
    assert server.admin.guest(srv.id)["power"] == "paused"
    conn.compute.unpause_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    assert nova_view(conn, srv.id) == ("ACTIVE", "active", None, 1)
    assert server.admin.check_password(srv.id, "root", pw)


def test_suspend_resume(server, conn, os_server):  # noqa: F811
    srv, pw = os_server
    conn.compute.suspend_server(srv)
    wait_status(conn, srv.id, "SUSPENDED")
    assert nova_view(conn, srv.id) == ("SUSPENDED", "suspended", None, 7)
    assert server.admin.guest(srv.id)["power"] == "suspended"
    conn.compute.resume_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    assert server.admin.guest(srv.id)["power"] == "on"


@pytest.mark.parametrize("start", ["ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"])
def test_shelve_offloads_at_once_and_unshelve_boots_the_kept_disk(server, conn, os_server, start):  # noqa: F811
    srv, pw = os_server
    hold = {"SHUTOFF": conn.compute.stop_server, "PAUSED": conn.compute.pause_server,
            "SUSPENDED": conn.compute.suspend_server}.get(start)
    if hold:
        hold(srv)
        wait_status(conn, srv.id, start)
    conn.compute.shelve_server(srv)
    # Nova's default shelved_offload_time = 0 (Tempest's too): offloaded at once.
    wait_status(conn, srv.id, "SHELVED_OFFLOADED")
    assert nova_view(conn, srv.id) == ("SHELVED_OFFLOADED", "shelved_offloaded", None, 0)
    assert server.admin.guest(srv.id)["power"] == "offloaded"
    conn.compute.unshelve_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    # The same disk: the password set at create still logs in.
    assert server.admin.check_password(srv.id, "root", pw)


def test_wrong_states_are_409_with_novas_message(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    sid = srv.id

    def conflict(body, name: str, attr: str, value: str):
        r = action(server, conn, sid, body)
        assert fault_of(r) == (409, "conflictingRequest",
                               f"Cannot '{name}' instance {sid} while it is in {attr} {value}"), body

    # ACTIVE: nothing to undo.
    conflict({"unpause": None}, "unpause", "vm_state", "active")
    conflict({"resume": None}, "resume", "vm_state", "active")
    conflict({"unshelve": None}, "unshelve", "vm_state", "active")
    conflict({"shelveOffload": None}, "shelveOffload", "vm_state", "active")
    expect_http(409, conn.compute.unpause_server, srv)
    # PAUSED: only unpause, shelve and delete.
    conn.compute.pause_server(srv)
    wait_status(conn, sid, "PAUSED")
    conflict({"pause": None}, "pause", "vm_state", "paused")
    conflict({"suspend": None}, "suspend", "vm_state", "paused")
    conflict({"resume": None}, "resume", "vm_state", "paused")
    conflict({"os-start": None}, "start", "vm_state", "paused")
    conflict({"os-stop": None}, "stop", "vm_state", "paused")
    conflict({"reboot": {"type": "HARD"}}, "reboot", "vm_state", "paused")
    conflict({"rescue": None}, "rescue", "vm_state", "paused")
    conn.compute.unpause_server(srv)
    wait_status(conn, sid, "ACTIVE")
    # SUSPENDED.
    conn.compute.suspend_server(srv)
    wait_status(conn, sid, "SUSPENDED")
    conflict({"suspend": {}}, "suspend", "vm_state", "suspended")
    conflict({"unpause": {}}, "unpause", "vm_state", "suspended")
    conflict({"pause": {}}, "pause", "vm_state", "suspended")
    conn.compute.resume_server(srv)
    wait_status(conn, sid, "ACTIVE")
    # SHUTOFF: no pause or suspend of a stopped guest.
    conn.compute.stop_server(srv)
    wait_status(conn, sid, "SHUTOFF")
    conflict({"pause": None}, "pause", "vm_state", "stopped")
    conflict({"suspend": None}, "suspend", "vm_state", "stopped")
    # SHELVED_OFFLOADED: only unshelve and delete.
    conn.compute.shelve_server(srv)
    wait_status(conn, sid, "SHELVED_OFFLOADED")
    conflict({"shelve": None}, "shelve", "vm_state", "shelved_offloaded")
    conflict({"shelveOffload": None}, "shelveOffload", "vm_state", "shelved_offloaded")
    conflict({"os-start": None}, "start", "vm_state", "shelved_offloaded")
    conflict({"pause": None}, "pause", "vm_state", "shelved_offloaded")
    conflict({"rebuild": {"imageRef": srv.image.id}}, "rebuild", "vm_state", "shelved_offloaded")
    # Bad bodies: 400, nothing changes.
    for body in [{"unshelve": 7}, {"pause": {"x": 1}}, {"shelve": "now"}]:
        assert fault_of(action(server, conn, sid, body))[:2] == (400, "badRequest"), body
    assert nova_view(conn, sid)[0] == "SHELVED_OFFLOADED"
    # A missing server: 404.
    missing = "00000000-0000-4000-8000-000000000000"
    r = action(server, conn, missing, {"pause": None})
    assert fault_of(r) == (404, "itemNotFound", f"Instance {missing} could not be found.")


def test_busy_server_is_409_with_its_task_state(slow_server):
    conn = connect(slow_server)
    srv, _ = create_server(conn)
    conn.compute.suspend_server(srv)
    r = action(slow_server, conn, srv.id, {"pause": None})
    assert fault_of(r) == (409, "conflictingRequest",
                           f"Cannot 'pause' instance {srv.id} while it is in task_state suspending")
    assert nova_view(conn, srv.id)[:3] == ("ACTIVE", "active", "suspending")
    wait_status(conn, srv.id, "SUSPENDED")
    # Shelving a suspended server keeps its vm_state until it is shelved (as Nova shows it).
    conn.compute.shelve_server(srv)
    seen = set()
    end = time.monotonic() + 60
    while time.monotonic() < end:
        v = nova_view(conn, srv.id)
        seen.add(v[:3])
        if v[0] == "SHELVED_OFFLOADED" and v[2] is None:
            break
        time.sleep(0.05)
    assert ("SUSPENDED", "suspended", "shelving") in seen, seen
    assert ("SHELVED", "shelved", "shelving_offloading") in seen, seen
    conn.compute.unshelve_server(srv)
    r = action(slow_server, conn, srv.id, {"unshelve": None})
    assert fault_of(r)[0] == 409
    assert nova_view(conn, srv.id)[:3] == ("SHELVED_OFFLOADED", "shelved_offloaded", "unshelving")
    wait_status(conn, srv.id, "ACTIVE")
    conn.compute.delete_server(srv)
    wait_gone(conn, srv.id)


def test_lock_is_respected(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.lock_server(srv)
    for body in [{"pause": None}, {"suspend": None}, {"shelve": None}]:
        assert fault_of(action(server, conn, srv.id, body)) == (
            409, "conflictingRequest", f"Instance {srv.id} is locked"), body
    conn.compute.unlock_server(srv)
    conn.compute.pause_server(srv)
    wait_status(conn, srv.id, "PAUSED")
    conn.compute.lock_server(srv)
    assert fault_of(action(server, conn, srv.id, {"unpause": None}))[:2] == (409, "conflictingRequest")
    conn.compute.unlock_server(srv)
    conn.compute.unpause_server(srv)
    wait_status(conn, srv.id, "ACTIVE")


def test_unshelve_availability_zone_and_host(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    sid = srv.id
    conn.compute.shelve_server(srv)
    wait_status(conn, sid, "SHELVED_OFFLOADED")
    # Before 2.77 the argument is not read.
    # 2.77: {"availability_zone": <zone>} or null; anything else is 400.
    bad = [({}, "'availability_zone' is a required property"),
           ({"availability_zone": "nova", "host": "nubis-nova"},
            "Additional properties are not allowed ('host' was unexpected)"),
           ({"availability_zone": "nowhere"}, "The requested availability zone is not available"),
           ({"availability_zone": "x" * 256}, None),
           ({"availability_zone": 5}, None)]
    for body, message in bad:
        f = fault_of(action(server, conn, sid, {"unshelve": body}, "2.77"))
        assert f[:2] == (400, "badRequest"), body
        if message:
            assert f[2].endswith(message), f
    # 2.91: host (admins), a compute host of the zone named, if any.
    f = fault_of(action(server, conn, sid, {"unshelve": {"host": "nubis-nowhere"}}, "2.91"))
    assert f == (400, "badRequest", "Compute host nubis-nowhere could not be found.")
    f = fault_of(action(server, conn, sid,
                        {"unshelve": {"availability_zone": "nova", "host": "nubis-nova-b"}}, "2.91"))
    assert f == (409, "conflictingRequest", "Host 'nubis-nova-b' is not in availability zone 'nova'.")
    assert nova_view(conn, sid)[0] == "SHELVED_OFFLOADED"
    r = action(server, conn, sid, {"unshelve": {"availability_zone": "nova-b"}}, "2.77")
    assert r.status_code == 202, r.text
    wait_status(conn, sid, "ACTIVE")
    assert conn.compute.get_server(sid).availability_zone == "nova-b"
    # And back by host (2.91, the admin's).
    conn.compute.shelve_server(srv)
    wait_status(conn, sid, "SHELVED_OFFLOADED")
    r = action(server, conn, sid, {"unshelve": {"availability_zone": None, "host": "nubis-nova"}}, "2.91")
    assert r.status_code == 202, r.text
    wait_status(conn, sid, "ACTIVE")
    assert conn.compute.get_server(sid).availability_zone == "nova"


def test_instance_actions_name_them(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.pause_server(srv)
    wait_status(conn, srv.id, "PAUSED")
    conn.compute.unpause_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    r = raw(server, conn, "GET", f"/compute/v2.1/servers/{srv.id}/os-instance-actions")
    names = [a["action"] for a in r.json()["instanceActions"]]
    assert names[:3] == ["unpause", "pause", "create"], names


def test_novaclient_pause_suspend_shelve(server):
    nc = nova(server)
    flavor = nc.flavors.find(name="S5.MEDIUM4")
    image = next(i for i in nc.glance.list() if i.name.startswith("TencentOS"))
    srv = nc.servers.create("nova-hold", image.id, flavor)
    nova_wait(nc, srv.id, "ACTIVE")
    nc.servers.pause(srv.id)
    nova_wait(nc, srv.id, "PAUSED")
    with pytest.raises(nova_exc.Conflict):
        nc.servers.suspend(srv.id)
    nc.servers.unpause(srv.id)
    nova_wait(nc, srv.id, "ACTIVE")
    nc.servers.suspend(srv.id)
    nova_wait(nc, srv.id, "SUSPENDED")
    nc.servers.resume(srv.id)
    nova_wait(nc, srv.id, "ACTIVE")
    nc.servers.shelve(srv.id)
    s = nova_wait(nc, srv.id, "SHELVED_OFFLOADED")
    assert getattr(s, "OS-EXT-STS:power_state") == 0
    with pytest.raises(nova_exc.Conflict):
        nc.servers.shelve_offload(srv.id)
    nc.servers.unshelve(srv.id)
    nova_wait(nc, srv.id, "ACTIVE")
    nc.servers.delete(srv.id)


@pytest.fixture(scope="module")
def keeps_shelved(server_factory):
    """Nova's shelved_offload_time = -1: a shelved server stays SHELVED on its host."""
    return server_factory("shelve-keep", NUBIS_SHELVED_OFFLOAD_TIME="-1", NUBIS_SIM_TIME_SCALE="0.1")


def test_shelved_until_offloaded_when_offload_time_is_minus_one(keeps_shelved):
    conn = connect(keeps_shelved)
    srv, pw = create_server(conn)
    conn.compute.shelve_server(srv)
    wait_status(conn, srv.id, "SHELVED")
    assert nova_view(conn, srv.id) == ("SHELVED", "shelved", None, 4)
    assert keeps_shelved.admin.guest(srv.id)["power"] == "shelved"
    # A zone only for an offloaded server (Nova's UnshelveInstanceInvalidState).
    f = fault_of(action(keeps_shelved, conn, srv.id, {"unshelve": {"availability_zone": "nova"}}, "2.77"))
    assert f == (409, "conflictingRequest",
                 f'Specifying an availability zone when unshelving server {srv.id} with status '
                 f'"shelved" is not supported. The server status must be SHELVED_OFFLOADED.')
    conn.compute.unshelve_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    conn.compute.shelve_server(srv)
    wait_status(conn, srv.id, "SHELVED")
    conn.compute.shelve_offload_server(srv)
    wait_status(conn, srv.id, "SHELVED_OFFLOADED")
    conn.compute.unshelve_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    assert keeps_shelved.admin.check_password(srv.id, "root", pw)
    conn.compute.delete_server(srv)
    wait_gone(conn, srv.id)


def test_tencent_and_alibaba_show_held_servers_stopped_and_refuse_them(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    rec = server.admin.instance(srv.id)
    tid, aid = rec["tencent_id"], rec["aliyun_id"]
    cvm = server.cvm()
    ecs = ecs_client(server, "tea")

    def tencent_state() -> str:
        return cvm.call("DescribeInstances", InstanceIds=[tid])["InstanceSet"][0]["InstanceState"]

    def ali_status() -> str:
        return ecs.call("DescribeInstances", InstanceIds=[aid])["Instances"]["Instance"][0]["Status"]

    for hold, settled, code in [
        (conn.compute.pause_server, "PAUSED", "UnsupportedOperation.InstanceStatePaused"),
        (conn.compute.suspend_server, "SUSPENDED", "UnsupportedOperation.InstanceStateSuspended"),
        (conn.compute.shelve_server, "SHELVED_OFFLOADED",
         "UnsupportedOperation.InstanceStateShelvedOffloaded"),
    ]:
        hold(srv)
        wait_status(conn, srv.id, settled)
        assert tencent_state() == "STOPPED"
        assert ali_status() == "Stopped"
        latest = cvm.call("DescribeInstances", InstanceIds=[tid])["InstanceSet"][0]
        assert latest["LatestOperationState"] == "SUCCESS"
        # The instance shows STOPPED, yet it is held: a start is refused with its real state.
        for act in ["StartInstances", "StopInstances", "RebootInstances"]:
            e = expect_error(code, cvm.call, act, InstanceIds=[tid])
            assert isinstance(e, TencentCloudSDKException)
        expect_ecs_error(403, "IncorrectInstanceStatus", ecs.call, "StartInstance", InstanceId=aid)
        expect_ecs_error(403, "IncorrectInstanceStatus", ecs.call, "RebootInstance", InstanceId=aid)
        assert nova_view(conn, srv.id)[0] == settled
        undo = {"PAUSED": conn.compute.unpause_server, "SUSPENDED": conn.compute.resume_server,
                "SHELVED_OFFLOADED": conn.compute.unshelve_server}[settled]
        undo(srv)
        wait_status(conn, srv.id, "ACTIVE")
        assert tencent_state() == "RUNNING"
    # A held server is terminated through Tencent like a stopped one.
    conn.compute.shelve_server(srv)
    wait_status(conn, srv.id, "SHELVED_OFFLOADED")
    cvm.call("TerminateInstances", InstanceIds=[tid])
    wait_gone(conn, srv.id)
