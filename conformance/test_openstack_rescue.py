"""Nova rescue (seed 002, shared/specs/openstack.md §2.5): every body form, the password the
answer carries works on the rescue system, unrescue brings the server's own back, and the
error paths (404, 409, 400)."""

from __future__ import annotations

import uuid

import pytest

from nubis import new_password
from test_openstack_support import (  # noqa: F401 (fixtures)
    conn,
    expect_http,
    fault_of,
    image_id,
    os_server,
    raw,
    wait_status,
)

# openstacksdk announces its own future API changes on every call; they are not ours.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def rescue(server, conn, server_id: str, body) -> dict:  # noqa: F811
    """POST a rescue action as given; returns the JSON answer (asserting 200)."""
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{server_id}/action", json_body={"rescue": body})
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def unrescue_and_check(server, conn, srv_id: str, own_password: str) -> None:  # noqa: F811
    conn.compute.unrescue_server(srv_id)
    s = wait_status(conn, srv_id, "ACTIVE")
    assert s.vm_state == "active"
    guest = server.admin.guest(srv_id)
    assert guest["booted_from"] == "system"
    assert server.admin.check_password(srv_id, "root", own_password)


def test_rescue_with_sdk_and_password(server, conn, os_server):  # noqa: F811
    srv, own = os_server
    pw = new_password()
    conn.compute.rescue_server(srv, admin_pass=pw)
    s = conn.compute.get_server(srv.id)
    assert (s.status, s.task_state) in {("ACTIVE", "rescuing"), ("RESCUE", None)}
    s = wait_status(conn, srv.id, "RESCUE")
    assert (s.vm_state, s.power_state) == ("rescued", 1)
    guest = server.admin.guest(srv.id)
    assert guest["booted_from"] == "rescue"
    assert server.admin.check_password(srv.id, "root", pw)
    assert not server.admin.check_password(srv.id, "root", own)
    unrescue_and_check(server, conn, srv.id, own)


def test_rescue_with_image_ref(server, conn, os_server):  # noqa: F811
    srv, own = os_server
    pw = new_password()
    conn.compute.rescue_server(srv, admin_pass=pw, image_ref=image_id(conn))
    wait_status(conn, srv.id, "RESCUE")
    assert server.admin.check_password(srv.id, "root", pw)
    unrescue_and_check(server, conn, srv.id, own)


@pytest.mark.parametrize("body", [None, {}, "none"], ids=["null", "empty", "none-string"])
def test_rescue_generates_password(server, conn, os_server, body):  # noqa: F811
    srv, own = os_server
    got = rescue(server, conn, srv.id, body)
    assert set(got) == {"adminPass"} and got["adminPass"]
    wait_status(conn, srv.id, "RESCUE")
    assert server.admin.check_password(srv.id, "root", got["adminPass"])
    unrescue_and_check(server, conn, srv.id, own)


def test_rescue_answer_carries_given_password(server, conn, os_server):  # noqa: F811
    srv, own = os_server
    pw = new_password()
    got = rescue(server, conn, srv.id, {"adminPass": pw, "rescue_image_ref": image_id(conn)})
    assert got == {"adminPass": pw}
    wait_status(conn, srv.id, "RESCUE")
    unrescue_and_check(server, conn, srv.id, own)


def test_rescue_of_stopped_server(server, conn, os_server):  # noqa: F811
    srv, own = os_server
    conn.compute.stop_server(srv)
    wait_status(conn, srv.id, "SHUTOFF")
    got = rescue(server, conn, srv.id, {})
    wait_status(conn, srv.id, "RESCUE")
    assert server.admin.check_password(srv.id, "root", got["adminPass"])
    unrescue_and_check(server, conn, srv.id, own)


def test_rescue_errors(server, conn, os_server):  # noqa: F811
    srv, own = os_server
    missing = str(uuid.uuid4())
    expect_http(404, conn.compute.rescue_server, missing)
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{missing}/action", json_body={"rescue": {}})
    assert fault_of(r) == (404, "itemNotFound", f"Instance {missing} could not be found.")
    # Bad bodies: 400 and nothing changes.
    for body in [{"rescue_image_ref": "not-a-uuid"}, {"rescue_image_ref": str(uuid.uuid4())},
                 {"unexpected": 1}, "sometimes", 7]:
        r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action", json_body={"rescue": body})
        assert fault_of(r)[:2] == (400, "badRequest"), body
    assert conn.compute.get_server(srv.id).status == "ACTIVE"
    # Unrescue of a server not in rescue: 409.
    e = expect_http(409, conn.compute.unrescue_server, srv)
    assert "vm_state active" in str(e)
    # In RESCUE: rescue again, hard reboot (Tempest test_rescued_vm_reboot) and stop → 409.
    conn.compute.rescue_server(srv, admin_pass=new_password())
    wait_status(conn, srv.id, "RESCUE")
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action", json_body={"rescue": {}})
    assert fault_of(r) == (409, "conflictingRequest",
                           f"Cannot 'rescue' instance {srv.id} while it is in vm_state rescued")
    expect_http(409, conn.compute.reboot_server, srv, "HARD")
    expect_http(409, conn.compute.stop_server, srv)
    assert conn.compute.get_server(srv.id).status == "RESCUE"
    unrescue_and_check(server, conn, srv.id, own)


def test_rescue_while_busy_is_409(server, conn, os_server):  # noqa: F811
    srv, own = os_server
    conn.compute.rescue_server(srv, admin_pass=new_password())
    # Entering rescue: a second rescue and an unrescue are refused until it settles.
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action", json_body={"rescue": {}})
    assert fault_of(r)[:2] == (409, "conflictingRequest")
    wait_status(conn, srv.id, "RESCUE")
    unrescue_and_check(server, conn, srv.id, own)
