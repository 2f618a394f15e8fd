"""Issue 15, operator views: GET /os-migrations (docs/resize.md). Every resize is a Nova
migration record, whichever dialect asked for it: numbered in the order accepted, its status
following the resize and the confirmation, revert or delete after it. Driven through
openstacksdk (`conn.compute.migrations`, which negotiates 2.80 and follows the pages' next
links), the openstack CLI (`server migration list`), and by hand for the microversion rules
and the refusals."""

from __future__ import annotations

import pytest

from test_openstack_cli import cli
from test_openstack_support import (  # noqa: F401 (fixtures)
    conn,
    fault_of,
    member_of_new_project,
    os_server,
    raw,
    wait_status,
)

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def at(version: str) -> dict:
    return {"OpenStack-API-Version": f"compute {version}"}


def listed(server, conn, query: str = "", version: str = "2.80"):
    r = raw(server, conn, "GET", f"/compute/v2.1/os-migrations{query}", headers=at(version))
    assert r.status_code == 200, r.text
    return r.json()


def test_resizes_are_migrations_newest_first(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    host = conn.compute.get_server(srv.id).compute_host
    assert host
    conn.compute.resize_server(srv, "S5.LARGE8")
    wait_status(conn, srv.id, "VERIFY_RESIZE")
    (m,) = list(conn.compute.migrations(server_id=srv.id))
    assert (m.status, m.migration_type, m.server_id) == ("finished", "resize", srv.id)
    assert m.source_compute == m.dest_compute == m.source_node == m.dest_node == host
    assert m.user_id and m.project_id == conn.current_project_id
    first = m.id
    conn.compute.confirm_server_resize(srv)
    wait_status(conn, srv.id, "ACTIVE")
    (m,) = list(conn.compute.migrations(server_id=srv.id))
    assert (m.id, m.status) == (first, "confirmed")
    assert m.updated_at and m.updated_at >= m.created_at
    conn.compute.resize_server(srv, "S5.SMALL2")
    wait_status(conn, srv.id, "VERIFY_RESIZE")
    conn.compute.revert_server_resize(srv)
    wait_status(conn, srv.id, "ACTIVE")
    migs = list(conn.compute.migrations(server_id=srv.id))
    assert [x.status for x in migs] == ["reverted", "confirmed"]
    assert migs[1].id == first and migs[0].id != first
    # Integer IDs in the order the resizes were accepted (before 2.59 the only ID).
    body = listed(server, conn, f"?instance_uuid={srv.id}", "2.58")["migrations"]
    assert [type(x["id"]) for x in body] == [int, int] and body[0]["id"] > body[1]["id"]
    assert "uuid" not in body[0] and body[0]["migration_type"] == "resize"
    # Filters: status, host, source_compute, migration_type, user and project (2.80).
    q = f"?instance_uuid={srv.id}"
    assert [x["status"] for x in listed(server, conn, q + "&status=reverted")["migrations"]] == ["reverted"]
    assert len(listed(server, conn, q + f"&host={host}")["migrations"]) == 2
    assert listed(server, conn, q + "&source_compute=nowhere")["migrations"] == []
    assert listed(server, conn, q + "&migration_type=live-migration")["migrations"] == []
    assert len(listed(server, conn, q + f"&project_id={conn.current_project_id}")["migrations"]) == 2
    assert listed(server, conn, q + "&user_id=nobody")["migrations"] == []
    assert listed(server, conn, "?instance_uuid=not-a-uuid")["migrations"] == []


def test_a_tencent_resize_is_a_confirmed_migration(server, conn, cvm, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.stop_server(srv)
    wait_status(conn, srv.id, "SHUTOFF")
    (inst,) = cvm.call("DescribeInstances", Filters=[{"Name": "uuid", "Values": [srv.id]}])["InstanceSet"]
    cvm.call("ResetInstancesType", InstanceIds=[inst["InstanceId"]], InstanceType="S5.LARGE8")
    wait_status(conn, srv.id, "ACTIVE")
    (m,) = list(conn.compute.migrations(server_id=srv.id))
    assert (m.status, m.migration_type) == ("confirmed", "resize")
    # The CLI's view of the same record.
    rows = cli(server, "server", "migration", "list", "--server", srv.id, "-f", "json")
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["Status"] == "confirmed" and row["Server UUID"] == srv.id, row
    assert row["Type"] == "resize", row


def test_pages_follow_the_marker(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    for flavor in ("S5.LARGE8", "S5.SMALL2", "S5.MEDIUM4"):
        conn.compute.resize_server(srv, flavor)
        wait_status(conn, srv.id, "VERIFY_RESIZE")
        conn.compute.confirm_server_resize(srv)
        wait_status(conn, srv.id, "ACTIVE")
    q = f"?instance_uuid={srv.id}"
    every = listed(server, conn, q)["migrations"]
    assert len(every) == 3
    page = listed(server, conn, q + "&limit=2")
    assert [x["uuid"] for x in page["migrations"]] == [x["uuid"] for x in every[:2]]
    (link,) = page["migrations_links"]
    assert link["rel"] == "next" and f"marker={every[1]['uuid']}" in link["href"]
    rest = listed(server, conn, q + f"&limit=2&marker={every[1]['uuid']}")
    assert [x["uuid"] for x in rest["migrations"]] == [every[2]["uuid"]]
    assert "migrations_links" not in rest
    # The SDK pages by itself.
    assert [m.uuid for m in conn.compute.migrations(server_id=srv.id, limit=1)] == [x["uuid"] for x in every]
    # changes-since / changes-before (2.66) bound updated_at.
    assert len(listed(server, conn, q + "&changes-since=2000-01-01T00:00:00Z")["migrations"]) == 3
    assert listed(server, conn, q + "&changes-before=2000-01-01T00:00:00Z")["migrations"] == []


def test_refusals(server, conn):  # noqa: F811
    def fault(query: str, version: str = "2.80"):
        return fault_of(raw(server, conn, "GET", f"/compute/v2.1/os-migrations{query}", headers=at(version)))

    status, kind, message = fault("?bogus=1")
    assert (status, kind) == (400, "badRequest")
    assert "Additional properties are not allowed ('bogus' was unexpected)" in message
    # Before 2.59 the schema let unknown parameters (and paging) through, ignored.
    r = raw(server, conn, "GET", "/compute/v2.1/os-migrations?bogus=1&limit=x", headers=at("2.58"))
    assert r.status_code == 200, r.text
    assert fault("?limit=-1")[:2] == (400, "badRequest")
    assert fault("?limit=x")[:2] == (400, "badRequest")
    assert fault("?changes-since=yesterday")[:2] == (400, "badRequest")
    assert fault("?marker=00000000-0000-0000-0000-000000000000") == (
        400, "badRequest", "Marker 00000000-0000-0000-0000-000000000000 could not be found.")
    assert fault("?changes-since=2030-01-01T00:00:00Z&changes-before=2020-01-01T00:00:00Z") == (
        400, "badRequest", "The value of changes-since must be less than or equal to changes-before.")
    # user_id and project_id are filters from 2.80 only.
    assert fault("?user_id=u", "2.79")[:2] == (400, "badRequest")
    # An admin API: a project member is refused by the policy.
    member, _, _ = member_of_new_project(server, conn)
    status, kind, message = fault_of(raw(server, member, "GET", "/compute/v2.1/os-migrations"))
    assert (status, kind) == (403, "forbidden")
    assert message == "Policy doesn't allow os_compute_api:os-migrations:index to be performed."
