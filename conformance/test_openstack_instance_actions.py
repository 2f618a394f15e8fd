"""Nova instance actions, `GET /servers/{id}/os-instance-actions` (issue 12's added operation):
what was done to a server, newest first, through openstacksdk and the openstack CLI, with raw
requests only for the microversion-dependent paging and the errors no client provokes."""

from __future__ import annotations

import pytest

from test_openstack_cli import cli
from test_openstack_support import conn, fault_of, os_server, raw, wait_status  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def actions_url(sid: str) -> str:
    return f"/compute/v2.1/servers/{sid}/os-instance-actions"


def test_sdk_lists_what_was_done_newest_first(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.reboot_server(srv, "HARD")
    wait_status(conn, srv.id, "ACTIVE")
    actions = list(conn.compute.server_actions(srv))
    assert [a.action for a in actions] == ["reboot", "create"], actions
    for a in actions:
        assert a.request_id.startswith("req-"), a
        assert a.project_id == conn.current_project_id
        assert a.user_id == conn.current_user_id
        assert a.start_time and a.message is None, a
    # The CLI reads the same list (`server event list`).
    events = cli(server, "server", "event", "list", srv.id, "-f", "json")
    assert [e["Action"] for e in events] == ["reboot", "create"], events


def test_paging_from_2_58_and_errors(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.stop_server(srv)
    wait_status(conn, srv.id, "SHUTOFF")
    v258 = {"OpenStack-API-Version": "compute 2.58"}
    r = raw(server, conn, "GET", actions_url(srv.id) + "?limit=1", headers=v258)
    assert r.status_code == 200, r.text
    (newest,) = r.json()["instanceActions"]
    assert newest["action"] == "stop" and newest["updated_at"], newest
    r = raw(server, conn, "GET", actions_url(srv.id) + f"?marker={newest['request_id']}", headers=v258)
    assert [a["action"] for a in r.json()["instanceActions"]] == ["create"], r.text
    # Before 2.58 there is no paging and no updated_at.
    r = raw(server, conn, "GET", actions_url(srv.id) + "?limit=1")
    listed = r.json()["instanceActions"]
    assert len(listed) == 2 and "updated_at" not in listed[0], r.text
    r = raw(server, conn, "GET", actions_url(srv.id) + "?marker=req-nope", headers=v258)
    assert fault_of(r) == (400, "badRequest", "Marker req-nope could not be found."), r.text
    missing = "00000000-0000-4000-8000-000000000000"
    r = raw(server, conn, "GET", actions_url(missing))
    assert fault_of(r)[:2] == (404, "itemNotFound"), r.text
    r = raw(server, conn, "POST", actions_url(srv.id), json_body={})
    assert fault_of(r)[:2] == (405, "badMethod"), r.text
    r = raw(server, conn, "GET", actions_url(srv.id), token="")
    assert r.status_code == 401
