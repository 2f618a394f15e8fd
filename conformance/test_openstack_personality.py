"""Nova `personality` (issue 15, docs/nova-servers.md): files given on create and rebuild
before microversion 2.57 reach the guest (the sim's guest model shows their paths and sizes;
the qemu e2e test reads them inside a real guest), with Nova's limits (403), its schema (400),
its refusal of the key from 2.57, and the limits views that show the same numbers."""

from __future__ import annotations

import base64

import openstack
import pytest
from openstack import exceptions as os_exc

from nubis import unique_name

from test_openstack_support import (  # noqa: F401 (fixtures)
    FLAVOR,
    conn,
    connect,
    create_server,
    expect_http,
    fault_of,
    image_id,
    raw,
    wait_gone,
    wait_status,
)

pytestmark = pytest.mark.timeout(180)

SCRIPT = b"#!/bin/sh\necho personality > /root/user-data-ran\n"


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def connect_at(server, version: str) -> openstack.connection.Connection:
    """openstacksdk pinned to a compute microversion, as a user of a cloud without 2.57
    would set it."""
    return connect(server, compute_api_version=version)


def given(server, sid: str) -> dict:
    """What the sim's guest was given at its first boot: paths and sizes, user data size."""
    return server.admin.guest(sid)["system"]["given"]


def rebuild(server, conn, sid: str, body: dict, version: str):
    return raw(server, conn, "POST", f"/compute/v2.1/servers/{sid}/action",
               json_body={"rebuild": body}, headers={"X-OpenStack-Nova-API-Version": version})


def create_body(conn, personality, **extra) -> dict:
    return {"server": {"name": "pers", "imageRef": image_id(conn), "flavorRef": FLAVOR,
                       "personality": personality} | extra}


def test_create_and_rebuild_deliver_files_and_user_data(server):
    c = connect_at(server, "2.56")
    personality = [{"path": "/etc/nubis/hello.txt", "contents": b64("hello from nova\n")},
                   {"path": "relative/file", "contents": b64(b"\x00\x01binary")}]
    srv = c.compute.create_server(name="pers", image_id=image_id(c), flavor_id=FLAVOR,
                                  networks="none", personality=personality,
                                  user_data=b64(SCRIPT))
    try:
        wait_status(c, srv.id, "ACTIVE")
        assert given(server, srv.id) == {
            "files": [{"path": "/etc/nubis/hello.txt", "bytes": 16},
                      {"path": "/relative/file", "bytes": 8}],
            "user_data": {"bytes": len(SCRIPT), "script": True}}
        # A rebuild gives its own files; the user data stays (before 2.57 it cannot change).
        # openstacksdk's rebuild has no personality: the request is made by hand, as
        # Tempest's servers client makes it.
        r = rebuild(server, c, srv.id, {"imageRef": image_id(c), "personality": [
            {"path": "rebuild.txt", "contents": b64("Test server rebuild.")}]}, "2.56")
        assert r.status_code == 202, r.text
        wait_status(c, srv.id, "ACTIVE")
        assert given(server, srv.id) == {
            "files": [{"path": "/rebuild.txt", "bytes": 20}],
            "user_data": {"bytes": len(SCRIPT), "script": True}}
        # From 2.57 the key is gone; user_data replaces the stored one, no files are given.
        r = rebuild(server, c, srv.id, {"imageRef": image_id(c), "personality": []}, "2.57")
        assert r.status_code == 400 and "'personality' was unexpected" in r.text, r.text
        c57 = connect_at(server, "2.57")
        c57.compute.rebuild_server(srv.id, image=image_id(c), user_data=b64("plain data"))
        wait_status(c, srv.id, "ACTIVE")
        assert given(server, srv.id) == {"files": [],
                                         "user_data": {"bytes": 10, "script": False}}
    finally:
        c.compute.delete_server(srv.id)
        wait_gone(c, srv.id)


@pytest.mark.parametrize("personality,status,message", [
    ([{"path": f"/etc/t{i}", "contents": b64("x")} for i in range(6)],
     403, "Personality file limit exceeded"),
    ([{"path": "/" + "p" * 255, "contents": b64("x")}],
     403, "Personality file path exceeds maximum 255"),
    ([{"path": "/big", "contents": "A" * 10244}],
     403, "Personality file content exceeds maximum 10240"),
    # Nova's format checker: base64 with its padding.
    ([{"path": "/a", "contents": "not base64!"}],
     400, "Invalid input for field/attribute contents. Value: not base64!. "
          "'not base64!' is not a 'base64'"),
    ([{"path": "/a", "contents": b64("x"), "mode": "0600"}],
     400, "Invalid input for field/attribute 0. Value: {'contents': 'eA==', 'mode': '0600', "
          "'path': '/a'}. Additional properties are not allowed ('mode' was unexpected)"),
    # nubis's rule: a path names a file of the guest's tree.
    ([{"path": "/etc/../../root/x", "contents": b64("x")}],
     400, "Personality file path '/etc/../../root/x' names no file: give a path without "
          "'..', not ending in '/'"),
])
def test_limits_and_schema_refuse_before_anything_is_made(server, conn, personality, status,
                                                          message):
    name = unique_name("refused")
    for version in ("2.1", "2.56"):
        r = raw(server, conn, "POST", "/compute/v2.1/servers",
                json_body=create_body(conn, personality, networks="none", name=name),
                headers={"X-OpenStack-Nova-API-Version": version})
        fault = "forbidden" if status == 403 else "badRequest"
        assert fault_of(r) == (status, fault, message), r.text
    # Other tests share the server: only this name tells that nothing was made.
    assert [s.id for s in conn.compute.servers(name=name)] == []


def test_rebuild_checks_the_state_before_the_limits(server):
    """Nova's rebuild refuses a server in the wrong state (409) before it looks at the
    request's files and metadata (403): the same request gets 403 once the server may be
    rebuilt."""
    c = connect_at(server, "2.56")
    srv, _ = create_server(c, name=unique_name("pers-state"))
    too_many = [{"path": f"/etc/t{i}", "contents": b64("x")} for i in range(6)]
    metadata = {f"k{i}": "v" for i in range(200)}
    try:
        c.compute.pause_server(srv.id)
        wait_status(c, srv.id, "PAUSED")
        for body in ({"personality": too_many}, {"metadata": metadata}):
            r = rebuild(server, c, srv.id, {"imageRef": image_id(c)} | body, "2.56")
            assert fault_of(r)[:2] == (409, "conflictingRequest"), r.text
        c.compute.unpause_server(srv.id)
        wait_status(c, srv.id, "ACTIVE")
        r = rebuild(server, c, srv.id, {"imageRef": image_id(c), "personality": too_many}, "2.56")
        assert fault_of(r) == (403, "forbidden", "Personality file limit exceeded"), r.text
        r = rebuild(server, c, srv.id, {"imageRef": image_id(c), "metadata": metadata}, "2.56")
        assert fault_of(r)[:2] == (403, "forbidden"), r.text
        # Nothing was rebuilt by any of them.
        assert c.compute.get_server(srv.id).status == "ACTIVE"
    finally:
        c.compute.delete_server(srv.id)
        wait_gone(c, srv.id)


def test_sdk_at_2_56_gets_the_quota_error(server):
    c = connect_at(server, "2.56")
    e = expect_http(403, c.compute.create_server, name="pers", image_id=image_id(c),
                    flavor_id=FLAVOR, networks="none",
                    personality=[{"path": f"/f{i}", "contents": b64("x")} for i in range(6)])
    assert "Personality file limit exceeded" in str(e), e


def test_from_2_57_personality_is_an_unknown_field(server, conn):
    r = raw(server, conn, "POST", "/compute/v2.1/servers",
            json_body=create_body(conn, [], networks="none"),
            headers={"X-OpenStack-Nova-API-Version": "2.57"})
    assert r.status_code == 400, r.text
    assert "'personality' was unexpected" in fault_of(r)[2], r.text


def test_limits_and_quota_sets_show_the_same_numbers(server, conn):
    for version, shown in (("2.56", True), ("2.57", False)):
        h = {"X-OpenStack-Nova-API-Version": version}
        absolute = raw(server, conn, "GET", "/compute/v2.1/limits",
                       headers=h).json()["limits"]["absolute"]
        project = conn.current_project_id
        qs = raw(server, conn, "GET", f"/compute/v2.1/os-quota-sets/{project}",
                 headers=h).json()["quota_set"]
        if shown:
            assert (absolute["maxPersonality"], absolute["maxPersonalitySize"]) == (5, 10240)
            assert (qs["injected_files"], qs["injected_file_content_bytes"],
                    qs["injected_file_path_bytes"]) == (5, 10240, 255)
        else:
            assert "maxPersonality" not in absolute and "maxPersonalitySize" not in absolute
            assert "injected_files" not in qs


def test_the_sdk_default_microversion_refuses_personality(server, conn):
    """openstacksdk negotiates the highest microversion (2.100): personality is refused
    there, as by Nova."""
    with pytest.raises(os_exc.BadRequestException):
        create_server(conn, personality=[{"path": "/a", "contents": b64("a")}])
