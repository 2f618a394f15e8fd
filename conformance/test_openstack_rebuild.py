"""Nova rebuild: a fresh system disk from the image, a new password, a new host key; refused
with 409 while the server is in RESCUE (Tempest's test_rescued_vm_rebuild)."""

from __future__ import annotations

import pytest

from nubis import new_password
from test_openstack_support import (  # noqa: F401 (fixtures)
    conn,
    fault_of,
    image_id,
    os_server,
    raw,
    wait_status,
)

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def rebuild(server, conn, server_id: str, body: dict):  # noqa: F811
    return raw(server, conn, "POST", f"/compute/v2.1/servers/{server_id}/action", json_body={"rebuild": body})


def test_rebuild_resets_credentials(server, conn, os_server):  # noqa: F811
    srv, own = os_server
    before = server.admin.guest(srv.id)["host_key_fingerprint"]
    password = new_password()
    r = rebuild(server, conn, srv.id, {"imageRef": image_id(conn), "adminPass": password})
    assert r.status_code == 202, r.text
    body = r.json()["server"]
    assert body["adminPass"] == password and body["id"] == srv.id
    # Nova's rebuild schema allows only the basic fields.
    assert not any(k.startswith("OS-EXT") for k in body), body
    wait_status(conn, srv.id, "ACTIVE")
    assert server.admin.check_password(srv.id, "root", password)
    assert not server.admin.check_password(srv.id, "root", own)
    assert server.admin.guest(srv.id)["host_key_fingerprint"] != before


def test_rebuild_in_rescue_is_a_conflict(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action", json_body={"rescue": None})
    assert r.status_code == 200, r.text
    wait_status(conn, srv.id, "RESCUE")
    r = rebuild(server, conn, srv.id, {"imageRef": image_id(conn)})
    status, kind, message = fault_of(r)
    assert (status, kind) == (409, "conflictingRequest"), r.text
    assert "rescued" in message


def test_rebuild_unknown_image_is_bad_request(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    r = rebuild(server, conn, srv.id, {"imageRef": "00000000-0000-0000-0000-000000000000"})
    assert fault_of(r)[:2] == (400, "badRequest"), r.text


def test_locked_server_refuses_actions_with_409(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    action = f"/compute/v2.1/servers/{srv.id}/action"
    assert raw(server, conn, "POST", action, json_body={"lock": {"locked_reason": "maintenance"}}).status_code == 202
    shown = raw(server, conn, "GET", f"/compute/v2.1/servers/{srv.id}",
                headers={"OpenStack-API-Version": "compute 2.73"}).json()["server"]
    assert shown["locked"] is True and shown["locked_reason"] == "maintenance"
    for body in ({"rescue": None}, {"os-stop": None}, {"reboot": {"type": "HARD"}}):
        status, kind, message = fault_of(raw(server, conn, "POST", action, json_body=body))
        assert (status, kind) == (409, "conflictingRequest") and "locked" in message, (body, message)
    assert raw(server, conn, "POST", action, json_body={"unlock": None}).status_code == 202
    assert raw(server, conn, "POST", action, json_body={"reboot": {"type": "SOFT"}}).status_code == 202
    wait_status(conn, srv.id, "ACTIVE")
