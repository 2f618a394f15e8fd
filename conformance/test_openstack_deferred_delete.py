"""Deferred delete and the operator's state reset (issue 15, docs/deferred-delete.md):
Nova's `reclaim_instance_interval` (NUBIS_RECLAIM_INSTANCE_INTERVAL), SOFT_DELETED,
restore and forceDelete through openstacksdk and novaclient, the reclaim, os-resetState,
GET /servers/{id}/migrations, their wrong-state, bad-input and policy answers with Nova's codes,
and how Tencent (recycle bin: SHUTDOWN) and Alibaba show a soft-deleted server."""

from __future__ import annotations

import time

import openstack
import pytest
from novaclient import exceptions as nova_exc

from nubis import ecs_client, expect_error
from test_openstack_novaclient import nova, wait as nova_wait
from test_openstack_support import (  # noqa: F401 (fixtures)
    connect,
    create_server,
    expect_http,
    fault_of,
    raw,
    wait_gone,
    wait_status,
)

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

MISSING = "00000000-0000-4000-8000-000000000000"
# Long enough never to pass within a test; the reclaim test has a server of its own.
KEEP = "3600"


def action(server, conn, sid: str, body, version: str | None = None):
    headers = {"X-OpenStack-Nova-API-Version": version} if version else None
    return raw(server, conn, "POST", f"/compute/v2.1/servers/{sid}/action", json_body=body,
               headers=headers)


def nova_view(conn, sid: str) -> tuple:
    s = conn.compute.get_server(sid)
    return s.status, s.vm_state, s.task_state, s.power_state


@pytest.fixture(scope="module")
def deferred(server_factory):
    """A server whose Nova delete soft-deletes (an hour's reclaim interval)."""
    return server_factory("deferred", NUBIS_RECLAIM_INSTANCE_INTERVAL=KEEP,
                          NUBIS_SIM_TIME_SCALE="0.05", NUBIS_RATE_LIMITS="off")


@pytest.fixture(scope="module")
def member(deferred):
    deferred.admin.post("/keystone-users", {"name": "ddmember", "password": "Member@2026pw",
                                            "roles": ["member"]})
    return openstack.connect(auth_url=f"{deferred.base_url}/identity/v3", username="ddmember",
                             password="Member@2026pw", project_name="admin",
                             user_domain_name="Default", project_domain_name="Default",
                             load_yaml_config=False, load_envvars=False)


def test_delete_soft_deletes_and_restore_brings_it_back(deferred):
    conn = connect(deferred)
    srv, pw = create_server(conn)
    conn.compute.delete_server(srv)
    wait_status(conn, srv.id, "SOFT_DELETED")
    assert nova_view(conn, srv.id) == ("SOFT_DELETED", "soft-delete", None, 4)
    assert deferred.admin.guest(srv.id)["power"] == "off"
    # Listed still (Nova lists soft-deleted servers), and found by its status.
    assert srv.id in [s.id for s in conn.compute.servers(status="SOFT_DELETED")]
    # Restore (openstacksdk's restore_server): powered on, the same disk.
    conn.compute.restore_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    assert nova_view(conn, srv.id) == ("ACTIVE", "active", None, 1)
    assert deferred.admin.check_password(srv.id, "root", pw)
    # A stopped server is soft-deleted too, and restored running (Nova powers it on).
    conn.compute.stop_server(srv)
    wait_status(conn, srv.id, "SHUTOFF")
    conn.compute.delete_server(srv)
    wait_status(conn, srv.id, "SOFT_DELETED")
    conn.compute.restore_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    # forceDelete ends a soft-deleted server for good.
    conn.compute.delete_server(srv)
    wait_status(conn, srv.id, "SOFT_DELETED")
    conn.compute.delete_server(srv, force=True)
    wait_gone(conn, srv.id)


def test_instance_actions_and_a_second_delete(deferred):
    conn = connect(deferred)
    srv, _ = create_server(conn)
    conn.compute.delete_server(srv)
    wait_status(conn, srv.id, "SOFT_DELETED")
    conn.compute.restore_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    r = raw(deferred, conn, "GET", f"/compute/v2.1/servers/{srv.id}/os-instance-actions")
    names = [a["action"] for a in r.json()["instanceActions"]]
    assert names[:3] == ["restore", "delete", "create"], names
    # A delete of a soft-deleted server deletes it for good.
    conn.compute.delete_server(srv)
    wait_status(conn, srv.id, "SOFT_DELETED")
    conn.compute.delete_server(srv)
    wait_gone(conn, srv.id)


def test_restore_and_force_delete_refusals(deferred, member):
    conn = connect(deferred)
    srv, _ = create_server(conn)
    sid = srv.id
    # Restore of a server that is not soft-deleted: 409 with Nova's message.
    f = fault_of(action(deferred, conn, sid, {"restore": None}))
    assert f == (409, "conflictingRequest",
                 f"Cannot 'restore' instance {sid} while it is in vm_state active")
    expect_http(409, conn.compute.restore_server, srv)
    # Missing servers: 404 for both.
    for body in [{"restore": None}, {"forceDelete": None}]:
        assert fault_of(action(deferred, conn, MISSING, body)) == (
            404, "itemNotFound", f"Instance {MISSING} could not be found."), body
    # A locked server: the owner's lock refuses a member's delete and forceDelete; an admin
    # passes (Nova's check_instance_lock).
    member_srv, _ = create_server(member)
    member.compute.lock_server(member_srv)
    for body in [{"forceDelete": None}]:
        assert fault_of(action(deferred, member, member_srv.id, body)) == (
            409, "conflictingRequest", f"Instance {member_srv.id} is locked"), body
    expect_http(409, member.compute.delete_server, member_srv)
    member.compute.unlock_server(member_srv)
    # A member may restore and force-delete (Nova's default policy).
    member.compute.delete_server(member_srv)
    wait_status(member, member_srv.id, "SOFT_DELETED")
    member.compute.restore_server(member_srv)
    wait_status(member, member_srv.id, "ACTIVE")
    member.compute.delete_server(member_srv, force=True)
    wait_gone(member, member_srv.id)
    # forceDelete of an ACTIVE server deletes it at once (Nova: any state).
    conn.compute.delete_server(srv, force=True)
    wait_gone(conn, sid)


def test_soft_deleted_server_refuses_other_actions(deferred):
    conn = connect(deferred)
    srv, _ = create_server(conn)
    sid = srv.id
    conn.compute.delete_server(srv)
    wait_status(conn, sid, "SOFT_DELETED")

    def conflict(body, name: str):
        f = fault_of(action(deferred, conn, sid, body))
        assert f == (409, "conflictingRequest",
                     f"Cannot '{name}' instance {sid} while it is in vm_state soft-delete"), body

    conflict({"os-start": None}, "start")
    conflict({"os-stop": None}, "stop")
    conflict({"reboot": {"type": "HARD"}}, "reboot")
    conflict({"pause": None}, "pause")
    conflict({"shelve": None}, "shelve")
    conflict({"rebuild": {"imageRef": srv.image.id}}, "rebuild")
    # Metadata and tags are refused in soft-delete, as Nova's vm_state checks refuse them.
    r = raw(deferred, conn, "PUT", f"/compute/v2.1/servers/{sid}/metadata/k",
            json_body={"meta": {"k": "v"}})
    assert r.status_code == 409, r.text
    r = raw(deferred, conn, "PUT", f"/compute/v2.1/servers/{sid}/tags/t",
            headers={"X-OpenStack-Nova-API-Version": "2.26"})
    assert r.status_code == 409, r.text
    conn.compute.delete_server(srv, force=True)
    wait_gone(conn, sid)


def test_tencent_shows_the_recycle_bin_and_alibaba_a_stopped_server(deferred):
    conn = connect(deferred)
    srv, _ = create_server(conn)
    rec = deferred.admin.instance(srv.id)
    tid, aid = rec["tencent_id"], rec["aliyun_id"]
    cvm = deferred.cvm()
    ecs = ecs_client(deferred, "tea")
    conn.compute.delete_server(srv)
    wait_status(conn, srv.id, "SOFT_DELETED")
    inst = cvm.call("DescribeInstances", InstanceIds=[tid])["InstanceSet"][0]
    assert inst["InstanceState"] == "SHUTDOWN"
    a = ecs.call("DescribeInstances", InstanceIds=[aid])["Instances"]["Instance"][0]
    assert a["Status"] == "Stopped"
    # Tencent's start of a recycled instance: refused with its state's code.
    expect_error("UnsupportedOperation.InstanceStateShutdown", cvm.call, "StartInstances",
                 InstanceIds=[tid])
    # Tencent's TerminateInstances of a recycled instance destroys it.
    cvm.call("TerminateInstances", InstanceIds=[tid])
    wait_gone(conn, srv.id)


def test_novaclient_restore_and_force_delete(deferred):
    nc = nova(deferred)
    flavor = nc.flavors.find(name="S5.MEDIUM4")
    image = next(i for i in nc.glance.list() if i.name.startswith("TencentOS"))
    srv = nc.servers.create("nova-deferred", image.id, flavor)
    nova_wait(nc, srv.id, "ACTIVE")
    nc.servers.delete(srv.id)
    nova_wait(nc, srv.id, "SOFT_DELETED")
    nc.servers.restore(srv.id)
    nova_wait(nc, srv.id, "ACTIVE")
    with pytest.raises(nova_exc.Conflict):
        nc.servers.restore(srv.id)
    nc.servers.force_delete(srv.id)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            nc.servers.get(srv.id)
        except nova_exc.NotFound:
            return
        time.sleep(0.1)
    raise AssertionError("force-deleted server still there")


@pytest.fixture(scope="module")
def reclaiming(server_factory):
    """A one-second reclaim interval: a soft-deleted server is gone within seconds."""
    return server_factory("reclaim", NUBIS_RECLAIM_INSTANCE_INTERVAL="1",
                          NUBIS_SIM_TIME_SCALE="0.05", NUBIS_RATE_LIMITS="off")


def test_reclaimed_after_the_interval(reclaiming):
    conn = connect(reclaiming)
    srv, _ = create_server(conn)
    conn.compute.delete_server(srv)
    # Seen soft-deleted first (the sweep comes at the earliest a second later)...
    wait_status(conn, srv.id, "SOFT_DELETED", timeout=5)
    # ...then gone for good.
    wait_gone(conn, srv.id, timeout=30)


def test_bad_interval_refuses_to_start(server_factory):
    with pytest.raises(Exception):
        server_factory("bad-reclaim", NUBIS_RECLAIM_INSTANCE_INTERVAL="soon")


def test_without_interval_delete_is_at_once_and_restore_409(server):
    conn = connect(server)
    srv, _ = create_server(conn)
    f = fault_of(action(server, conn, srv.id, {"restore": {}}))
    assert f == (409, "conflictingRequest",
                 f"Cannot 'restore' instance {srv.id} while it is in vm_state active")
    conn.compute.delete_server(srv)
    wait_gone(conn, srv.id)


# -- os-resetState

def test_reset_state_error_and_active(deferred):
    conn = connect(deferred)
    srv, pw = create_server(conn)
    sid = srv.id
    conn.compute.reset_server_state(srv, "error")
    assert nova_view(conn, sid) == ("ERROR", "error", None, 1)
    # In ERROR: start and pause refused; rebuild gets it out running (Nova's rebuild of an
    # ERROR server).
    f = fault_of(action(deferred, conn, sid, {"os-start": None}))
    assert f == (409, "conflictingRequest", f"Cannot 'start' instance {sid} while it is in vm_state error")
    conn.compute.reset_server_state(srv, "active")
    assert nova_view(conn, sid) == ("ACTIVE", "active", None, 1)
    conn.compute.reset_server_state(srv, "error")
    conn.compute.rebuild_server(srv, image=srv.image.id, admin_password=pw)
    wait_status(conn, sid, "ACTIVE")
    assert deferred.admin.check_password(sid, "root", pw)
    # A delete of an ERROR server is a soft delete too (Nova: any launched vm_state).
    conn.compute.reset_server_state(srv, "error")
    conn.compute.delete_server(srv)
    wait_status(conn, sid, "SOFT_DELETED")
    conn.compute.delete_server(srv, force=True)
    wait_gone(conn, sid)


def test_reset_state_bad_input_policy_and_missing(deferred, member):
    conn = connect(deferred)
    srv, _ = create_server(conn)
    sid = srv.id
    cases = [
        ({"state": "invalid"},
         "Invalid input for field/attribute state. Value: invalid. 'invalid' is not one of ['active', 'error']"),
        ({"state": 1}, "Invalid input for field/attribute state. Value: 1. 1 is not one of ['active', 'error']"),
        ({}, "'state' is a required property"),
        ({"state": "error", "x": 1}, "Additional properties are not allowed ('x' was unexpected)"),
    ]
    for body, message in cases:
        f = fault_of(action(deferred, conn, sid, {"os-resetState": body}))
        assert f[:2] == (400, "badRequest"), body
        assert f[2].endswith(message), f
    assert fault_of(action(deferred, conn, sid, {"os-resetState": None}))[:2] == (400, "badRequest")
    assert fault_of(action(deferred, conn, MISSING, {"os-resetState": {"state": "error"}})) == (
        404, "itemNotFound", f"Instance {MISSING} could not be found.")
    # Admins only.
    f = fault_of(action(deferred, member, sid, {"os-resetState": {"state": "error"}}))
    assert f == (403, "forbidden",
                 "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed.")
    assert nova_view(conn, sid)[0] == "ACTIVE"
    conn.compute.delete_server(srv, force=True)
    wait_gone(conn, sid)


def test_reset_state_while_busy_is_409(slow_server):
    conn = connect(slow_server)
    srv, _ = create_server(conn)
    conn.compute.reboot_server(srv, "SOFT")
    f = fault_of(action(slow_server, conn, srv.id, {"os-resetState": {"state": "error"}}))
    assert f == (409, "conflictingRequest",
                 f"Cannot perform this action on instance {srv.id} while it is in task_state rebooting")
    wait_status(conn, srv.id, "ACTIVE")
    conn.compute.delete_server(srv)
    wait_gone(conn, srv.id)


# -- GET /servers/{id}/migrations

def test_server_migrations_is_empty_for_admins(deferred, member):
    conn = connect(deferred)
    srv, _ = create_server(conn)
    v = {"X-OpenStack-Nova-API-Version": "2.23"}
    r = raw(deferred, conn, "GET", f"/compute/v2.1/servers/{srv.id}/migrations", headers=v)
    assert r.status_code == 200 and r.json() == {"migrations": []}, r.text
    assert list(conn.compute.server_migrations(srv)) == []
    # Before 2.23 there is no such resource.
    r = raw(deferred, conn, "GET", f"/compute/v2.1/servers/{srv.id}/migrations",
            headers={"X-OpenStack-Nova-API-Version": "2.22"})
    assert fault_of(r)[0] == 404
    r = raw(deferred, conn, "GET", f"/compute/v2.1/servers/{MISSING}/migrations", headers=v)
    assert fault_of(r) == (404, "itemNotFound", f"Instance {MISSING} could not be found.")
    r = raw(deferred, member, "GET", f"/compute/v2.1/servers/{srv.id}/migrations", headers=v)
    assert fault_of(r) == (403, "forbidden",
                           "Policy doesn't allow os_compute_api:servers:migrations:index to be performed.")
    conn.compute.delete_server(srv, force=True)
    wait_gone(conn, srv.id)
