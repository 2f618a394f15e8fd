"""Nova server tags (microversion 2.26+: `/servers/{id}/tags[/{tag}]`, `tags` in the server
body, `tags` at create from 2.52, the list filters) through openstacksdk and novaclient, with
raw requests only for what no client sends on purpose; and tags across the three dialects
(docs/tags.md: a Nova tag is the key of an instance tag)."""

from __future__ import annotations

import pytest
from keystoneauth1 import session
from keystoneauth1.identity import v3
from novaclient import client as nova_client

from nubis import ADMIN_PASSWORD, ecs_describe, new_password
from test_openstack_cross_dialect import tencent_id
from test_openstack_support import (  # noqa: F401 (fixtures)
    conn,
    image_id,
    fault_of,
    os_server,
    raw,
    wait_status,
)

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

V226 = {"OpenStack-API-Version": "compute 2.26"}
PATTERN = "'^[^,/]*$'"


def tags_url(sid: str, tag: str | None = None) -> str:
    return f"/compute/v2.1/servers/{sid}/tags" + (f"/{tag}" if tag is not None else "")


def nova(server, version: str = "2.52"):
    auth = v3.Password(auth_url=server.base_url + "/identity/v3", username="admin", password=ADMIN_PASSWORD,
                       project_name="admin", user_domain_id="default", project_domain_id="default")
    return nova_client.Client(version, session=session.Session(auth=auth))


def test_sdk_tags_round_trip(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    s = conn.compute.get_server(srv.id)
    assert s.tags == []
    s.add_tag(conn.compute, "web")
    s.add_tag(conn.compute, "blue team")
    assert conn.compute.get_server(srv.id).tags == ["web", "blue team"]
    s.check_tag(conn.compute, "web")
    s.set_tags(conn.compute, ["db", "web"])
    assert sorted(conn.compute.get_server(srv.id).tags) == ["db", "web"]
    s.remove_tag(conn.compute, "db")
    assert s.fetch_tags(conn.compute).tags == ["web"]
    s.remove_all_tags(conn.compute)
    assert conn.compute.get_server(srv.id).tags == []


def test_wire_answers(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    r = raw(server, conn, "PUT", tags_url(srv.id, "a"), headers=V226)
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith(f"/compute/v2.1/servers/{srv.id}/tags/a")
    r = raw(server, conn, "PUT", tags_url(srv.id, "a"), headers=V226)
    assert (r.status_code, r.content) == (204, b"")
    assert raw(server, conn, "GET", tags_url(srv.id, "a"), headers=V226).status_code == 204
    r = raw(server, conn, "GET", tags_url(srv.id, "zz"), headers=V226)
    assert fault_of(r) == (404, "itemNotFound", f"Instance {srv.id} has no tag 'zz'")
    r = raw(server, conn, "DELETE", tags_url(srv.id, "zz"), headers=V226)
    assert fault_of(r) == (404, "itemNotFound", f"Instance {srv.id} has no tag 'zz'")
    r = raw(server, conn, "PUT", tags_url(srv.id), json_body={"tags": ["x", "y", "x"]}, headers=V226)
    assert (r.status_code, r.json()) == (200, {"tags": ["x", "y"]})
    assert raw(server, conn, "GET", tags_url(srv.id), headers=V226).json() == {"tags": ["x", "y"]}
    # The server body shows them from 2.26, not before.
    shown = raw(server, conn, "GET", f"/compute/v2.1/servers/{srv.id}", headers=V226).json()["server"]
    assert shown["tags"] == ["x", "y"]
    old = raw(server, conn, "GET", f"/compute/v2.1/servers/{srv.id}",
              headers={"OpenStack-API-Version": "compute 2.25"}).json()["server"]
    assert "tags" not in old
    r = raw(server, conn, "DELETE", tags_url(srv.id), headers=V226)
    assert (r.status_code, r.content) == (204, b"")
    assert raw(server, conn, "GET", tags_url(srv.id), headers=V226).json() == {"tags": []}


def test_bad_input_answered_as_nova(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    sid = srv.id
    # Before 2.26 the routes do not exist.
    r = raw(server, conn, "GET", tags_url(sid), headers={"OpenStack-API-Version": "compute 2.25"})
    assert fault_of(r)[:2] == (404, "itemNotFound")
    bad_tag = "Tag '{t}' is invalid. It must be a non empty string without characters '/' and ','. " \
              "Validation error message: {m}"
    r = raw(server, conn, "PUT", tags_url(sid, "a,b"), headers=V226)
    assert fault_of(r) == (400, "badRequest", bad_tag.format(t="a,b", m=f"'a,b' does not match {PATTERN}"))
    long = "t" * 61
    r = raw(server, conn, "PUT", tags_url(sid, long), headers=V226)
    assert fault_of(r) == (400, "badRequest", bad_tag.format(t=long, m=f"'{long}' is too long"))
    cases = [
        ({"tags": "a"}, "Invalid input for field/attribute tags. Value: 'a'. 'a' is not of type 'array'"),
        ({"tags": ["ok", "a/b"]}, f"Invalid input for field/attribute 1. Value: 'a/b'. 'a/b' does not match {PATTERN}"),
        ({"tags": [1]}, "Invalid input for field/attribute 0. Value: 1. 1 is not of type 'string'"),
        ({"tags": [""]}, "Invalid input for field/attribute 0. Value: ''. '' is too short"),
        ({}, "'tags' is a required property"),
        ({"tags": [], "x": 1}, "Additional properties are not allowed ('x' was unexpected)"),
    ]
    for body, message in cases:
        r = raw(server, conn, "PUT", tags_url(sid), json_body=body, headers=V226)
        assert fault_of(r) == (400, "badRequest", message), body
    too_many = [f"t{i}" for i in range(51)]
    r = raw(server, conn, "PUT", tags_url(sid), json_body={"tags": too_many}, headers=V226)
    status, kind, message = fault_of(r)
    assert (status, kind) == (400, "badRequest") and message.endswith("is too long"), message
    # The per-server limit: 50, counted before the tag is looked for.
    fifty = [f"t{i}" for i in range(50)]
    assert raw(server, conn, "PUT", tags_url(sid), json_body={"tags": fifty}, headers=V226).status_code == 200
    for tag in ("t51", "t0"):
        r = raw(server, conn, "PUT", tags_url(sid, tag), headers=V226)
        assert fault_of(r) == (400, "badRequest", "The number of tags exceeded the per-server limit 50")
    # Unknown server.
    r = raw(server, conn, "GET", tags_url("00000000-0000-0000-0000-000000000000"), headers=V226)
    assert fault_of(r)[:2] == (404, "itemNotFound")
    assert raw(server, conn, "GET", tags_url(sid), headers=V226).json()["tags"] == fifty


def test_tags_refused_in_rescue_not_while_locked(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.lock_server(srv)
    assert raw(server, conn, "PUT", tags_url(srv.id, "locked-ok"), headers=V226).status_code == 201
    conn.compute.unlock_server(srv)
    conn.compute.rescue_server(srv, admin_pass=new_password())
    wait_status(conn, srv.id, "RESCUE")
    for method, url, body, what in [
        ("PUT", tags_url(srv.id, "x"), None, "update tag"),
        ("PUT", tags_url(srv.id), {"tags": ["x"]}, "update tags"),
        ("DELETE", tags_url(srv.id, "locked-ok"), None, "delete tag"),
        ("DELETE", tags_url(srv.id), None, "delete tags"),
    ]:
        r = raw(server, conn, method, url, json_body=body, headers=V226)
        assert fault_of(r) == (409, "conflictingRequest",
                               f"Cannot '{what}' instance {srv.id} while it is in vm_state rescued"), what
    # Reading is allowed.
    assert raw(server, conn, "GET", tags_url(srv.id), headers=V226).json() == {"tags": ["locked-ok"]}
    conn.compute.unrescue_server(srv)
    wait_status(conn, srv.id, "ACTIVE")


def test_novaclient_tags_create_and_filters(server, conn):  # noqa: F811
    nc = nova(server)
    # novaclient boots with tags at 2.52.
    flavor = nc.flavors.list()[0]
    image = image_id(conn)
    made = [nc.servers.create(f"tagged-{i}", image, flavor.id, nics="none", tags=t)
            for i, t in enumerate((["red", "big"], ["red"], ["blue"]))]
    try:
        for s in made:
            wait_status(conn, s.id, "ACTIVE")
        assert sorted(nc.servers.tag_list(made[0].id)) == ["big", "red"]
        ids = lambda **f: {s.id for s in nc.servers.list(search_opts=f)} & {s.id for s in made}  # noqa: E731
        assert ids(tags="red,big") == {made[0].id}
        assert ids(**{"tags-any": "big,blue"}) == {made[0].id, made[2].id}
        assert ids(**{"not-tags": "red,big"}) == {made[1].id, made[2].id}
        assert ids(**{"not-tags-any": "red"}) == {made[2].id}
        nc.servers.add_tag(made[1].id, "big")
        assert ids(tags="red,big") == {made[0].id, made[1].id}
        nc.servers.delete_tag(made[1].id, "big")
        nc.servers.set_tags(made[2].id, ["green"])
        assert nc.servers.tag_list(made[2].id) == ["green"]
        nc.servers.delete_all_tags(made[2].id)
        assert nc.servers.tag_list(made[2].id) == []
    finally:
        for s in made:
            conn.compute.delete_server(s.id)
    # Before 2.52 a create with tags is refused by the schema.
    body = {"server": {"name": "old", "imageRef": image, "flavorRef": flavor.id, "networks": "none",
                       "tags": ["x"]}}
    r = raw(server, conn, "POST", "/compute/v2.1/servers", json_body=body,
            headers={"OpenStack-API-Version": "compute 2.51"})
    assert fault_of(r)[:2] == (400, "badRequest")


def test_tags_across_dialects(server, conn, os_server, ecs, cvm):  # noqa: F811
    srv, _ = os_server
    iid = tencent_id(server, srv.id)
    ali = server.admin.instance(srv.id)["aliyun_id"]
    # Set through Alibaba: seen by Tencent's filters, Nova's tags (the key) and metadata.
    ecs.call("TagResources", ResourceType="instance", ResourceId=[ali], Tag=[{"Key": "env", "Value": "prod"}])
    found = cvm.call("DescribeInstances", Filters=[{"Name": "tag:env", "Values": ["prod"]}])["InstanceSet"]
    assert iid in {i["InstanceId"] for i in found}
    found = cvm.call("DescribeInstances", Filters=[{"Name": "tag-key", "Values": ["env"]}])["InstanceSet"]
    assert iid in {i["InstanceId"] for i in found}
    assert conn.compute.get_server(srv.id).tags == ["env"]
    assert conn.compute.get_server_metadata(srv).metadata == {"env": "prod"}
    # A Nova tag is a key with an empty value; the value set elsewhere stays.
    s = conn.compute.get_server(srv.id)
    s.add_tag(conn.compute, "web")
    s.add_tag(conn.compute, "env")
    listed = ecs.call("ListTagResources", ResourceType="instance", ResourceId=[ali])["TagResources"]["TagResource"]
    assert {(t["TagKey"], t["TagValue"]) for t in listed} >= {("env", "prod"), ("web", "")}
    assert {"TagKey": "web", "TagValue": ""} in ecs_describe(ecs, ali)["Tags"]["Tag"]
    # Removed through Nova: gone everywhere.
    s.remove_tag(conn.compute, "env")
    found = cvm.call("DescribeInstances", Filters=[{"Name": "tag-key", "Values": ["env"]}])["InstanceSet"]
    assert iid not in {i["InstanceId"] for i in found}
    assert ecs.call("ListTagResources", ResourceType="instance", ResourceId=[ali],
                    Tag=[{"Key": "env"}])["TagResources"]["TagResource"] == []
