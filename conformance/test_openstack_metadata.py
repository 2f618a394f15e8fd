"""Nova server metadata (`/servers/{id}/metadata[/{key}]`), the Nova image proxy (`/images`,
up to 2.35) and Nova's routing (404 for unknown paths) through openstacksdk, the openstack
CLI and novaclient, with raw requests only for what no client sends on purpose."""

from __future__ import annotations

import pytest
from novaclient import client as nova_client

from nubis import ADMIN_PASSWORD, new_password
from test_openstack_cli import cli
from test_openstack_cross_dialect import tencent_id
from test_openstack_support import (  # noqa: F401 (fixtures)
    IMAGE_NAME,
    conn,
    connect,
    create_server,
    expect_http,
    fault_of,
    image_id,
    os_server,
    raw,
    wait_status,
)

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

KEY_REGEX = "'^[a-zA-Z0-9-_:. ]{1,255}$'"


def meta_url(sid: str, key: str | None = None) -> str:
    return f"/compute/v2.1/servers/{sid}/metadata" + (f"/{key}" if key is not None else "")


# -- server metadata --------------------------------------------------------------------


def test_sdk_metadata_round_trip(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.set_server_metadata(srv, env="dev", team="a")
    assert conn.compute.get_server_metadata(srv).metadata == {"env": "dev", "team": "a"}
    # POST merges.
    conn.compute.set_server_metadata(srv, team="b", tier="web")
    assert conn.compute.get_server_metadata(srv).metadata == {"env": "dev", "team": "b", "tier": "web"}
    assert conn.compute.get_server(srv.id).metadata == {"env": "dev", "team": "b", "tier": "web"}
    conn.compute.delete_server_metadata(srv, ["team"])
    assert conn.compute.get_server_metadata(srv).metadata == {"env": "dev", "tier": "web"}
    # One item, and PUT replacing them all.
    r = raw(server, conn, "GET", meta_url(srv.id, "env"))
    assert (r.status_code, r.json()) == (200, {"meta": {"env": "dev"}})
    r = raw(server, conn, "PUT", meta_url(srv.id, "env"), json_body={"meta": {"env": "prod"}})
    assert (r.status_code, r.json()) == (200, {"meta": {"env": "prod"}})
    r = raw(server, conn, "PUT", meta_url(srv.id), json_body={"metadata": {"only": "this"}})
    assert (r.status_code, r.json()) == (200, {"metadata": {"only": "this"}})
    r = raw(server, conn, "POST", meta_url(srv.id), json_body={"metadata": {"more": "x"}})
    assert (r.status_code, r.json()) == (200, {"metadata": {"only": "this", "more": "x"}})
    r = raw(server, conn, "DELETE", meta_url(srv.id, "more"))
    assert (r.status_code, r.content) == (204, b"")
    assert raw(server, conn, "GET", meta_url(srv.id)).json() == {"metadata": {"only": "this"}}


def test_metadata_are_the_tags_of_the_other_dialects(server, conn, os_server, cvm):  # noqa: F811
    srv, _ = os_server
    conn.compute.set_server_metadata(srv, owner="nova")
    iid = tencent_id(server, srv.id)
    tags = cvm.call("DescribeInstances", InstanceIds=[iid])["InstanceSet"][0]["Tags"]
    assert {"Key": "owner", "Value": "nova"} in tags


def test_cli_server_set_and_unset_property(server, os_server):  # noqa: F811
    srv, _ = os_server
    cli(server, "server", "set", "--property", "a=1", "--property", "b=2", srv.id)
    shown = cli(server, "server", "show", "-f", "json", srv.id)
    assert shown["properties"] == {"a": "1", "b": "2"}
    cli(server, "server", "unset", "--property", "a", srv.id)
    assert cli(server, "server", "show", "-f", "json", srv.id)["properties"] == {"b": "2"}


def test_metadata_errors(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    sid = srv.id
    missing = "00000000-0000-4000-8000-000000000000"
    # Unknown server and unknown item: 404.
    e = expect_http(404, conn.compute.get_server_metadata, missing)
    r = raw(server, conn, "GET", meta_url(missing))
    assert fault_of(r) == (404, "itemNotFound", f"Instance {missing} could not be found.")
    assert e.status_code == 404
    r = raw(server, conn, "GET", meta_url(sid, "nope"))
    assert fault_of(r) == (404, "itemNotFound", "Metadata item was not found")
    e = expect_http(404, conn.compute.delete_server_metadata, srv, ["nope"])
    r = raw(server, conn, "DELETE", meta_url(sid, "nope"))
    assert fault_of(r) == (404, "itemNotFound", "Metadata item was not found")
    # Bodies, as Nova's schema words them (400 before the server is looked up).
    long = "v" * 256
    for url, method, body, message in [
        (meta_url(sid), "POST", {}, "'metadata' is a required property"),
        (meta_url(missing), "POST", {}, "'metadata' is a required property"),
        (meta_url(sid), "POST", {"metadata": {}, "x": 1},
         "Additional properties are not allowed ('x' was unexpected)"),
        (meta_url(sid), "POST", {"metadata": []},
         "Invalid input for field/attribute metadata. Value: []. [] is not of type 'object'"),
        (meta_url(sid), "PUT", {"metadata": {"k": 1}},
         "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"),
        (meta_url(sid), "POST", {"metadata": {"k": long}},
         f"Invalid input for field/attribute k. Value: '{long}'. '{long}' is too long"),
        (meta_url(sid), "POST", {"metadata": {"a/b": "x"}},
         "Invalid input for field/attribute metadata. Value: {'a/b': 'x'}. "
         f"'a/b' does not match any of the regexes: {KEY_REGEX}"),
        (meta_url(sid), "POST", {"metadata": {"k" * 256: "x"}},
         f"Invalid input for field/attribute metadata. Value: {{'{'k' * 256}': 'x'}}. "
         f"'{'k' * 256}' does not match any of the regexes: {KEY_REGEX}"),
        (meta_url(sid, "k"), "PUT", {"metadata": {"k": "v"}}, "'meta' is a required property"),
        (meta_url(sid, "k"), "PUT", {"meta": {}},
         "Invalid input for field/attribute meta. Value: {}. {} should be non-empty"),
        (meta_url(sid, "k"), "PUT", {"meta": {"k": "v", "l": "w"}},
         "Invalid input for field/attribute meta. Value: {'k': 'v', 'l': 'w'}. "
         "{'k': 'v', 'l': 'w'} has too many properties"),
        (meta_url(sid, "k"), "PUT", {"meta": {"other": "v"}}, "Request body and URI mismatch"),
    ]:
        r = raw(server, conn, method, url, json_body=body)
        assert fault_of(r) == (400, "badRequest", message), (method, url, body)
    r = raw(server, conn, "POST", meta_url(sid), data=b"{oops", headers={"Content-Type": "application/json"})
    assert fault_of(r) == (400, "badRequest", "Malformed request body")
    # The longest key and value pass.
    r = raw(server, conn, "POST", meta_url(sid), json_body={"metadata": {"k" * 255: "v" * 255}})
    assert r.status_code == 200
    # Methods a metadata route lacks: 405.
    assert fault_of(raw(server, conn, "DELETE", meta_url(sid)))[:2] == (405, "badMethod")
    assert fault_of(raw(server, conn, "POST", meta_url(sid, "k")))[:2] == (405, "badMethod")
    # Nothing above changed anything.
    assert conn.compute.get_server_metadata(srv).metadata == {"k" * 255: "v" * 255}


def test_metadata_quota_is_enforced(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    limits = raw(server, conn, "GET", "/compute/v2.1/limits").json()["limits"]["absolute"]
    quota = limits["maxServerMeta"]
    assert quota == 128
    full = {f"k{i}": "v" for i in range(quota)}
    conn.compute.set_server_metadata(srv, **full)
    message = f"Maximum number of metadata items exceeds {quota}"
    # One more, by merge, by one item, by replacement: 403 forbidden, nothing written.
    e = expect_http(403, conn.compute.set_server_metadata, srv, extra="x")
    assert message in str(e)
    r = raw(server, conn, "PUT", meta_url(srv.id, "extra"), json_body={"meta": {"extra": "x"}})
    assert fault_of(r) == (403, "forbidden", message)
    r = raw(server, conn, "PUT", meta_url(srv.id), json_body={"metadata": {**full, "extra": "x"}})
    assert fault_of(r) == (403, "forbidden", message)
    # Overwriting an existing key stays within the quota.
    conn.compute.set_server_metadata(srv, k0="changed")
    got = conn.compute.get_server_metadata(srv).metadata
    assert len(got) == quota and got["k0"] == "changed" and "extra" not in got


def test_metadata_quota_at_create_and_rebuild(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    message = "Maximum number of metadata items exceeds 128"
    too_many = {f"k{i}": "v" for i in range(129)}
    e = expect_http(403, create_server, conn, metadata=too_many, wait=False)
    assert message in str(e)
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action",
            json_body={"rebuild": {"imageRef": image_id(conn), "metadata": too_many}})
    assert fault_of(r) == (403, "forbidden", message)
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action",
            json_body={"rebuild": {"imageRef": image_id(conn), "metadata": {"a/b": "x"}}})
    assert fault_of(r)[:2] == (400, "badRequest")
    assert wait_status(conn, srv.id, "ACTIVE", timeout=5)
    # A rebuild with metadata replaces the server's.
    conn.compute.set_server_metadata(srv, old="1")
    conn.compute.rebuild_server(srv, image=image_id(conn), metadata={"new": "2"})
    wait_status(conn, srv.id, "ACTIVE")
    assert conn.compute.get_server_metadata(srv).metadata == {"new": "2"}


def test_metadata_refused_while_locked_or_rescued(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.set_server_metadata(srv, keep="1")
    conn.compute.lock_server(srv)
    expect_http(409, conn.compute.set_server_metadata, srv, a="b")
    r = raw(server, conn, "PUT", meta_url(srv.id, "a"), json_body={"meta": {"a": "b"}})
    assert fault_of(r) == (409, "conflictingRequest", f"Instance {srv.id} is locked")
    r = raw(server, conn, "DELETE", meta_url(srv.id, "keep"))
    assert fault_of(r) == (409, "conflictingRequest", f"Instance {srv.id} is locked")
    # Reading is allowed.
    assert conn.compute.get_server_metadata(srv).metadata == {"keep": "1"}
    conn.compute.unlock_server(srv)
    conn.compute.rescue_server(srv, admin_pass=new_password())
    wait_status(conn, srv.id, "RESCUE")
    r = raw(server, conn, "POST", meta_url(srv.id), json_body={"metadata": {"a": "b"}})
    assert fault_of(r) == (409, "conflictingRequest",
                           f"Cannot 'update metadata' instance {srv.id} while it is in vm_state rescued")
    r = raw(server, conn, "DELETE", meta_url(srv.id, "keep"))
    assert fault_of(r) == (409, "conflictingRequest",
                           f"Cannot 'delete metadata' instance {srv.id} while it is in vm_state rescued")
    conn.compute.unrescue_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    # Stopped servers take metadata.
    conn.compute.stop_server(srv)
    wait_status(conn, srv.id, "SHUTOFF")
    conn.compute.set_server_metadata(srv, off="yes")
    assert conn.compute.get_server_metadata(srv).metadata == {"keep": "1", "off": "yes"}


def test_metadata_refused_while_a_task_runs(slow_server):
    c = connect(slow_server)
    srv, _ = create_server(c)
    try:
        c.compute.stop_server(srv)
        r = raw(slow_server, c, "POST", meta_url(srv.id), json_body={"metadata": {"a": "b"}})
        assert fault_of(r) == (409, "conflictingRequest",
                               f"Cannot 'update metadata' instance {srv.id} while it is in task_state powering-off")
        wait_status(c, srv.id, "SHUTOFF")
        assert c.compute.get_server_metadata(srv).metadata == {}
    finally:
        c.compute.delete_server(srv.id)


# -- the image proxy --------------------------------------------------------------------


def test_sdk_lists_and_shows_proxy_images(server, conn):  # noqa: F811
    glance = {i.id: i for i in conn.image.images()}
    listed = list(conn.compute.images())
    assert {i.id for i in listed} == set(glance)
    one = conn.compute.get_image(image_id(conn))
    assert (one.name, one.status, one.progress) == (IMAGE_NAME, "ACTIVE", 100)
    assert one.min_disk == glance[one.id].min_disk and one.size == glance[one.id].size
    assert one.metadata["os_admin_user"] == "root"
    brief = list(conn.compute.images(details=False))
    assert {i.name for i in brief} == {i.name for i in listed}
    assert list(conn.compute.images(name=IMAGE_NAME))[0].id == one.id
    assert list(conn.compute.images(status="SAVING")) == []
    assert list(conn.compute.images(server="00000000-0000-4000-8000-000000000000")) == []
    missing = "00000000-0000-4000-8000-000000000000"
    expect_http(404, conn.compute.get_image, missing)
    r = raw(server, conn, "GET", f"/compute/v2.1/images/{missing}")
    assert fault_of(r) == (404, "itemNotFound", "Image not found.")


def test_proxy_image_view_pagination_and_errors(server, conn):  # noqa: F811
    iid = image_id(conn)
    r = raw(server, conn, "GET", f"/compute/v2.1/images/{iid}")
    img = r.json()["image"]
    assert set(img) == {"id", "name", "minRam", "minDisk", "metadata", "created", "updated", "status",
                        "progress", "OS-EXT-IMG-SIZE:size", "links"}
    assert [link["rel"] for link in img["links"]] == ["self", "bookmark", "alternate"]
    assert img["links"][0]["href"] == f"{server.base_url}/compute/v2.1/images/{iid}"
    r = raw(server, conn, "GET", "/compute/v2.1/images")
    for i in r.json()["images"]:
        assert set(i) == {"id", "name", "links"}
    r = raw(server, conn, "GET", "/compute/v2.1/images/detail?limit=1")
    body = r.json()
    assert len(body["images"]) == 1
    first = body["images"][0]["id"]
    assert body["images_links"][0]["href"].endswith(f"/compute/v2.1/images/detail?limit=1&marker={first}")
    r = raw(server, conn, "GET", f"/compute/v2.1/images/detail?limit=1&marker={first}")
    assert r.json()["images"][0]["id"] != first
    for q, message in [
        ("limit=abc", "Invalid input for query parameters limit. Value: abc. 'abc' does not match '^[0-9]*$'"),
        ("limit=0", "Invalid input for query parameters limit. Value: 0. 0 is less than the minimum of 1"),
        ("limit=-1", "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"),
        ("marker=nope", "marker could not be found: nope"),
    ]:
        r = raw(server, conn, "GET", f"/compute/v2.1/images?{q}")
        assert fault_of(r) == (400, "badRequest", message), q
    # Deleting is proxied to Glance, which refuses to delete a protected image.
    e = expect_http(403, conn.compute.delete_image, iid, ignore_missing=False)
    r = raw(server, conn, "DELETE", f"/compute/v2.1/images/{iid}")
    assert fault_of(r) == (403, "forbidden", "You are not allowed to delete the image.")
    assert e.status_code == 403
    r = raw(server, conn, "DELETE", "/compute/v2.1/images/00000000-0000-4000-8000-000000000000")
    assert fault_of(r) == (404, "itemNotFound", "Image not found.")
    assert fault_of(raw(server, conn, "POST", "/compute/v2.1/images", json_body={}))[:2] == (405, "badMethod")
    assert fault_of(raw(server, conn, "PUT", f"/compute/v2.1/images/{iid}", json_body={}))[:2] == (405, "badMethod")


@pytest.mark.parametrize("version,status", [("2.35", 200), ("2.36", 404), ("2.96", 404)])
def test_image_proxy_ends_at_2_36(server, conn, version, status):  # noqa: F811
    iid = image_id(conn)
    for path in ("/compute/v2.1/images", "/compute/v2.1/images/detail", f"/compute/v2.1/images/{iid}"):
        r = raw(server, conn, "GET", path, headers={"X-OpenStack-Nova-API-Version": version})
        assert r.status_code == status, (path, version)
        if status == 404:
            assert fault_of(r) == (404, "itemNotFound", "The resource could not be found.")


def test_novaclient_glance_lookup_and_proxy(server, conn):  # noqa: F811
    nova = nova_client.Client("2.1", "admin", ADMIN_PASSWORD, project_name="admin",
                              auth_url=f"{server.base_url}/identity/v3", user_domain_name="Default",
                              project_domain_name="Default", region_name="RegionOne")
    found = nova.glance.find_image(IMAGE_NAME)
    assert found.id == image_id(conn)
    # novaclient has no image calls of its own any more: its raw client reaches the proxy.
    resp, body = nova.client.get("/images/detail")
    assert resp.status_code == 200
    assert found.id in {i["id"] for i in body["images"]}


# -- routing ----------------------------------------------------------------------------


def test_unknown_routes_are_404_and_known_ones_405(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    not_found = (404, "itemNotFound", "The resource could not be found.")
    for method, path in [
        ("GET", f"/compute/v2.1/servers/{srv.id}/no-such-thing"),
        ("POST", f"/compute/v2.1/servers/{srv.id}/no-such-thing"),
        ("DELETE", f"/compute/v2.1/servers/{srv.id}/action/extra"),
        ("GET", f"/compute/v2.1/servers/{srv.id}/metadata/k/deeper"),
        ("GET", "/compute/v2.1/os-keypairs/name/extra"),
        ("GET", "/compute/v2.1/flavors/S5.MEDIUM4/os-extra_specs/k/x"),
        ("GET", "/compute/v2.1/limits/x"),
        ("GET", "/compute/v2.1/no-such-thing"),
    ]:
        r = raw(server, conn, method, path)
        assert fault_of(r) == not_found, (method, path)
    for method, path in [
        ("GET", f"/compute/v2.1/servers/{srv.id}/action"),
        ("PATCH", f"/compute/v2.1/servers/{srv.id}"),
        ("DELETE", "/compute/v2.1/servers"),
        ("PUT", "/compute/v2.1/os-keypairs/name"),
        ("POST", "/compute/v2.1/flavors/S5.MEDIUM4"),
        ("POST", "/compute/v2.1/limits"),
        ("POST", "/compute/v2.1/os-availability-zone"),
    ]:
        r = raw(server, conn, method, path, json_body={} if method != "GET" else None)
        assert fault_of(r)[:2] == (405, "badMethod"), (method, path)


def test_glance_empty_image_id_is_404(server, conn):  # noqa: F811
    r = raw(server, conn, "GET", "/image/v2/images/")
    assert r.status_code == 404
    assert "The resource could not be found." in r.text
    assert raw(server, conn, "GET", f"/image/v2/images/{image_id(conn)}/").status_code == 404
    assert raw(server, conn, "GET", "/image/v2/images").status_code == 200
