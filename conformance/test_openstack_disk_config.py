"""Nova `OS-DCF:diskConfig` (AUTO / MANUAL) on create, update, rebuild and resize, through
openstacksdk; a value Nova's schema refuses is a 400 that changes nothing
(docs/nova-servers.md "Disk config")."""

from __future__ import annotations

import pytest

from test_openstack_support import (  # noqa: F401 (fixtures)
    conn,
    create_server,
    fault_of,
    image_id,
    raw,
    wait_status,
)

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

BAD = "Invalid input for field/attribute OS-DCF:diskConfig"


def disk(conn, sid):
    return raw_server(conn, sid)["OS-DCF:diskConfig"]


def raw_server(conn, sid):
    return conn.compute.get(f"/servers/{sid}").json()["server"]


def test_disk_config_through_create_update_rebuild_resize(server, conn):
    srv, _ = create_server(conn, disk_config="AUTO")
    assert disk(conn, srv.id) == "AUTO"
    conn.compute.update_server(srv, disk_config="MANUAL")
    assert disk(conn, srv.id) == "MANUAL"
    # openstacksdk's rebuild has no disk_config argument: the body as novaclient sends it.
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action",
            json_body={"rebuild": {"imageRef": image_id(conn), "OS-DCF:diskConfig": "AUTO"}})
    assert r.status_code == 202 and r.json()["server"]["OS-DCF:diskConfig"] == "AUTO", r.text
    wait_status(conn, srv.id, "ACTIVE")
    assert disk(conn, srv.id) == "AUTO"
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action",
            json_body={"resize": {"flavorRef": "S5.LARGE8", "OS-DCF:diskConfig": "MANUAL"}})
    assert r.status_code == 202, r.text
    wait_status(conn, srv.id, "VERIFY_RESIZE")
    assert disk(conn, srv.id) == "MANUAL"
    conn.compute.confirm_server_resize(srv)
    wait_status(conn, srv.id, "ACTIVE")
    # A server created without it is MANUAL (Nova's default without the image property).
    plain, _ = create_server(conn)
    assert disk(conn, plain.id) == "MANUAL"
    for s in (srv, plain):
        conn.compute.delete_server(s)


def test_bad_disk_config_is_400_and_changes_nothing(server, conn):
    srv, _ = create_server(conn, disk_config="AUTO")
    base = f"/compute/v2.1/servers/{srv.id}"
    for bad in ("auto", "", 1, None):
        r = raw(server, conn, "PUT", base, json_body={"server": {"OS-DCF:diskConfig": bad}})
        assert r.status_code == 400 and BAD in fault_of(r)[2], (bad, r.text)
        r = raw(server, conn, "POST", f"{base}/action",
                json_body={"resize": {"flavorRef": "S5.LARGE8", "OS-DCF:diskConfig": bad}})
        assert r.status_code == 400 and BAD in fault_of(r)[2], (bad, r.text)
    r = raw(server, conn, "POST", "/compute/v2.1/servers", json_body={"server": {
        "name": "dc", "imageRef": image_id(conn), "flavorRef": "S5.MEDIUM4",
        "OS-DCF:diskConfig": "SOMETIMES"}})
    assert r.status_code == 400 and BAD in fault_of(r)[2], r.text
    s = wait_status(conn, srv.id, "ACTIVE")
    assert disk(conn, srv.id) == "AUTO" and s.flavor["original_name"] == "S5.MEDIUM4"
    conn.compute.delete_server(srv)
