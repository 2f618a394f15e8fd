"""Nova v2.1 and Glance v2 through openstacksdk (shared/specs/openstack.md §2, §3): version
discovery and microversions, flavors, images, key pairs, the server lifecycle, and faults."""

from __future__ import annotations

import re
import uuid

import pytest

from nubis import new_password, unique_name
from test_openstack_support import (  # noqa: F401 (fixtures)
    FLAVOR,
    IMAGE_NAME,
    conn,
    create_server,
    expect_http,
    fault_of,
    image_id,
    os_server,
    raw,
    wait_gone,
    wait_status,
)

ISO_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

# openstacksdk announces its own future API changes on every call; they are not ours.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


# -- discovery and microversions ---------------------------------------------------------


def test_version_documents(server, conn):  # noqa: F811
    r = raw(server, conn, "GET", "/compute/", token="")
    assert r.status_code == 200
    current = [v for v in r.json()["versions"] if v["id"] == "v2.1"][0]
    assert (current["min_version"], current["version"], current["status"]) == ("2.1", "2.100", "CURRENT")
    r = raw(server, conn, "GET", "/compute/v2.1", token="")
    assert r.status_code == 200
    assert r.json()["version"]["version"] == "2.100"
    r = raw(server, conn, "GET", "/image/", token="")
    assert r.status_code == 300
    assert r.json()["versions"][0]["links"][0]["href"] == f"{server.base_url}/image/v2/"


def test_microversion_headers(server, conn):  # noqa: F811
    r = raw(server, conn, "GET", "/compute/v2.1/flavors")
    assert r.status_code == 200
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert r.headers["OpenStack-API-Version"] == "compute 2.1"
    assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"]
    r = raw(server, conn, "GET", "/compute/v2.1/flavors", headers={"X-OpenStack-Nova-API-Version": "2.61"})
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.61"
    r = raw(server, conn, "GET", "/compute/v2.1/flavors", headers={"OpenStack-API-Version": "compute latest"})
    assert r.headers["OpenStack-API-Version"] == "compute 2.100"
    for bad in ("2.200", "2.0", "3.1"):
        r = raw(server, conn, "GET", "/compute/v2.1/flavors", headers={"X-OpenStack-Nova-API-Version": bad})
        assert r.status_code == 406, bad
        status, name, message = fault_of(r)
        assert name == "computeFault" and "Minimum is 2.1 and maximum is 2.100" in message
    r = raw(server, conn, "GET", "/compute/v2.1/flavors", headers={"X-OpenStack-Nova-API-Version": "abc"})
    assert fault_of(r)[:2] == (400, "badRequest")


def test_no_or_bad_token_is_401(server, conn):  # noqa: F811
    for tok in ("", "not-a-token"):
        r = raw(server, conn, "GET", "/compute/v2.1/servers", token=tok)
        assert r.status_code == 401
        assert fault_of(r)[1] == "unauthorized"
        assert raw(server, conn, "GET", "/image/v2/images", token=tok).status_code == 401


# -- flavors and images ------------------------------------------------------------------


def test_flavors(conn):  # noqa: F811
    flavors = {f.id: f for f in conn.compute.flavors()}
    assert FLAVOR in flavors
    f = conn.compute.get_flavor(FLAVOR)
    assert (f.vcpus, f.ram, f.disk) == (2, 4096, 50)
    assert f.name == FLAVOR and f.is_public
    small = [f.id for f in conn.compute.flavors(min_ram=8192)]
    assert small and all(conn.compute.get_flavor(i).ram >= 8192 for i in small)
    expect_http(404, conn.compute.get_flavor, "no-such-flavor")


def test_images(conn):  # noqa: F811
    images = list(conn.image.images())
    names = {i.name for i in images}
    assert IMAGE_NAME in names
    img = conn.image.get_image(image_id(conn))
    assert img.name == IMAGE_NAME and img.status == "active" and img.visibility == "public"
    uuid.UUID(img.id)
    assert conn.image.find_image("no-such-image", ignore_missing=True) is None
    # The rescue system is internal: never listed.
    assert not any("rescue" in n.lower() for n in names)


# -- key pairs ---------------------------------------------------------------------------


def test_keypairs(conn, tmp_path):  # noqa: F811
    name = unique_name("kp")
    created = conn.compute.create_keypair(name=name)
    assert created.private_key and "PRIVATE KEY" in created.private_key
    assert re.fullmatch(r"([0-9a-f]{2}:){15}[0-9a-f]{2}", created.fingerprint)
    assert name in {k.name for k in conn.compute.keypairs()}
    got = conn.compute.get_keypair(name)
    assert got.fingerprint == created.fingerprint and got.type == "ssh"
    expect_http(409, conn.compute.create_keypair, name=name)
    conn.compute.delete_keypair(name)
    expect_http(404, conn.compute.get_keypair, name)
    expect_http(404, conn.compute.delete_keypair, name, ignore_missing=False)
    # Import.
    from nubis import ssh_public_key
    pub = ssh_public_key(tmp_path)
    imported = conn.compute.create_keypair(name=name, public_key=pub)
    assert imported.public_key.split()[:2] == pub.split()[:2]
    assert not imported.private_key
    conn.compute.delete_keypair(name)
    expect_http(400, conn.compute.create_keypair, name=unique_name("kp"), public_key="ssh-rsa garbage")
    expect_http(400, conn.compute.create_keypair, name="bad/name", public_key=pub)


# -- servers -----------------------------------------------------------------------------


def test_server_lifecycle(server, conn):  # noqa: F811
    admin = server.admin
    pw = new_password()
    name = unique_name("os")
    created = conn.compute.create_server(name=name, image_id=image_id(conn), flavor_id=FLAVOR,
                                         networks="none", admin_password=pw)
    assert created.admin_password == pw
    first = conn.compute.get_server(created.id)
    assert first.status in ("BUILD", "ACTIVE")
    srv = conn.compute.wait_for_server(created, status="ACTIVE", wait=60, interval=0.1)
    srv = wait_status(conn, srv.id, "ACTIVE")
    assert srv.name == name
    assert srv.vm_state == "active" and srv.power_state == 1
    assert srv.flavor.vcpus == 2 and srv.flavor.ram == 4096
    assert srv.image.id == image_id(conn)
    assert srv.availability_zone == "nova"
    assert ISO_SECONDS.fullmatch(srv.created_at)
    assert srv.addresses and all(a["version"] == 4 for net in srv.addresses.values() for a in net)
    # The guest took the password; the admin API addresses it by the Nova UUID.
    assert admin.check_password(srv.id, "root", pw)
    assert srv.id in {s.id for s in conn.compute.servers()}
    assert srv.id in {s.id for s in conn.compute.servers(details=False)}
    assert [s.id for s in conn.compute.servers(name=name)] == [srv.id]

    restarts = len(admin.guest(srv.id)["restarts"])
    conn.compute.reboot_server(srv, "SOFT")
    wait_status(conn, srv.id, "ACTIVE")
    conn.compute.reboot_server(srv, "HARD")
    wait_status(conn, srv.id, "ACTIVE")
    kinds = [r["kind"] for r in admin.guest(srv.id)["restarts"][restarts:]]
    assert kinds == ["graceful", "hard"], kinds

    conn.compute.stop_server(srv)
    s = wait_status(conn, srv.id, "SHUTOFF")
    assert (s.vm_state, s.power_state) == ("stopped", 4)
    assert admin.guest(srv.id)["power"] == "off"
    conn.compute.start_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    assert admin.guest(srv.id)["power"] == "on"

    new = new_password()
    conn.compute.change_server_password(srv, new)
    wait_status(conn, srv.id, "ACTIVE")
    assert admin.check_password(srv.id, "root", new)
    assert not admin.check_password(srv.id, "root", pw)

    conn.compute.delete_server(srv)
    wait_gone(conn, srv.id)
    expect_http(404, conn.compute.get_server, srv.id)


def test_server_in_transition_shows_a_task_state(server, conn):  # noqa: F811
    srv, _ = create_server(conn, wait=False)
    s = conn.compute.get_server(srv.id)
    if s.status == "BUILD":
        assert (s.vm_state, s.task_state) == ("building", "spawning")
    wait_status(conn, srv.id, "ACTIVE")
    conn.compute.reboot_server(srv, "HARD")
    s = conn.compute.get_server(srv.id)
    assert (s.status, s.task_state) in {("HARD_REBOOT", "rebooting_hard"), ("ACTIVE", None)}
    wait_status(conn, srv.id, "ACTIVE")
    conn.compute.delete_server(srv)
    wait_gone(conn, srv.id)


def test_create_with_keypair_and_metadata(server, conn, tmp_path):  # noqa: F811
    from nubis import same_key, ssh_public_key
    kp = unique_name("kp")
    pub = ssh_public_key(tmp_path)
    conn.compute.create_keypair(name=kp, public_key=pub)
    srv, pw = create_server(conn, key_name=kp, metadata={"team": "nubis"})
    try:
        s = conn.compute.get_server(srv.id)
        assert s.key_name == kp
        assert s.metadata == {"team": "nubis"}
        assert any(same_key(k, pub) for k in server.admin.guest(srv.id)["authorized_keys"])
        assert server.admin.check_password(srv.id, "root", pw)
    finally:
        conn.compute.delete_server(srv)
        wait_gone(conn, srv.id)


def test_create_errors(server, conn):  # noqa: F811
    img = image_id(conn)
    expect_http(400, conn.compute.create_server, name="x", image_id=img, flavor_id="nope", networks="none")
    expect_http(400, conn.compute.create_server, name="x", image_id=str(uuid.uuid4()), flavor_id=FLAVOR,
                networks="none")
    expect_http(400, conn.compute.create_server, name="x", image_id=img, flavor_id=FLAVOR, networks="none",
                key_name="no-such-key")
    expect_http(400, conn.compute.create_server, name="x", image_id=img, flavor_id=FLAVOR,
                networks=[{"uuid": str(uuid.uuid4())}])
    # networks is required from 2.37 on.
    r = raw(server, conn, "POST", "/compute/v2.1/servers",
            json_body={"server": {"name": "x", "imageRef": img, "flavorRef": FLAVOR}},
            headers={"X-OpenStack-Nova-API-Version": "2.37"})
    assert fault_of(r)[:2] == (400, "badRequest")
    r = raw(server, conn, "POST", "/compute/v2.1/servers",
            json_body={"server": {"imageRef": img, "flavorRef": FLAVOR, "networks": "none"}})
    assert fault_of(r)[:2] == (400, "badRequest")


def test_faults(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    missing = str(uuid.uuid4())
    e = expect_http(404, conn.compute.get_server, missing)
    r = raw(server, conn, "GET", f"/compute/v2.1/servers/{missing}")
    assert fault_of(r) == (404, "itemNotFound", f"Instance {missing} could not be found.")
    expect_http(404, conn.compute.reboot_server, missing, "SOFT")
    expect_http(404, conn.compute.delete_server, missing, ignore_missing=False)
    # Starting an ACTIVE server: 409 conflictingRequest naming the vm_state.
    e = expect_http(409, conn.compute.start_server, srv)
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action", json_body={"os-start": None})
    status, name, message = fault_of(r)
    assert (status, name) == (409, "conflictingRequest")
    assert message == f"Cannot 'start' instance {srv.id} while it is in vm_state active"
    assert e.status_code == 409
    # Bad bodies and methods.
    for body, want in [({"reboot": {"type": "SIDEWAYS"}}, 400), ({"noSuchAction": None}, 400),
                       ({"reboot": {}}, 400), ({}, 400)]:
        r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action", json_body=body)
        assert fault_of(r)[:2] == (want, "badRequest"), body
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action", data=b"{oops",
            headers={"Content-Type": "application/json"})
    assert fault_of(r) == (400, "badRequest", "Malformed request body")
    r = raw(server, conn, "GET", f"/compute/v2.1/servers/{srv.id}/action")
    assert fault_of(r)[:2] == (405, "badMethod")
    # A refused request changed nothing.
    assert wait_status(conn, srv.id, "ACTIVE", timeout=5)
    assert raw(server, conn, "GET", "/compute/v2.1/no-such-thing").status_code == 404


def test_busy_server_is_409(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.stop_server(srv)
    # While powering off (or once off) a reboot is refused with 409.
    expect_http(409, conn.compute.reboot_server, srv, "SOFT")
    wait_status(conn, srv.id, "SHUTOFF")
    expect_http(409, conn.compute.stop_server, srv)
    conn.compute.start_server(srv)
    wait_status(conn, srv.id, "ACTIVE")


@pytest.mark.parametrize("version", ["2.1", "2.47", "2.96", "2.98", "2.100"])
def test_server_view_follows_microversion(server, conn, os_server, version):  # noqa: F811
    srv, _ = os_server
    r = raw(server, conn, "GET", f"/compute/v2.1/servers/{srv.id}",
            headers={"X-OpenStack-Nova-API-Version": version})
    assert r.status_code == 200
    s = r.json()["server"]
    minor = int(version.split(".")[1])
    assert ("locked" in s) == (minor >= 9)
    assert ("description" in s) == (minor >= 19)
    assert ("id" in s["flavor"]) == (minor < 47)
    assert ("pinned_availability_zone" in s) == (minor >= 96)
    assert ("properties" in s["image"]) == (minor >= 98), s["image"]
    assert ("scheduler_hints" in s) == (minor >= 100)
    for link in s["links"]:
        assert set(link) == {"href", "rel"}
    assert s["links"][0]["href"] == f"{server.base_url}/compute/v2.1/servers/{srv.id}"
