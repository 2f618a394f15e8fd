"""apache-libcloud 3.9.1's OpenStack compute driver, unchanged, against nubis: Keystone v3
password auth from `/identity`, the compute endpoint found in the catalogue, flavors, images
through Nova's image proxy (the default driver, API 1.1) and through Glance v2 (the driver
for API 2.x, `api_version="2.0"`), the node lifecycle, metadata, key pairs, and errors as
libcloud raises them."""

from __future__ import annotations

import time

import pytest
from libcloud.common.exceptions import BaseHTTPError
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState, Provider

from nubis import ADMIN_PASSWORD, unique_name
from test_openstack_support import FLAVOR, IMAGE_NAME

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl libcloud"


def driver(server, **kw):
    cls = get_driver(Provider.OPENSTACK)
    return cls("admin", ADMIN_PASSWORD, ex_force_auth_url=f"{server.base_url}/identity",
               ex_force_auth_version="3.x_password", ex_tenant_name="admin",
               ex_domain_name="Default", ex_force_service_region="RegionOne",
               secure=server.base_url.startswith("https"), **kw)


def wait_state(drv, node_id: str, state: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        node = drv.ex_get_node_details(node_id)
        if node is not None and node.state == state and node.extra.get("task_state") is None:
            return node
        assert time.monotonic() < deadline, f"{node_id} not {state}: {node and node.state}"
        time.sleep(0.1)


@pytest.fixture
def lc(server):
    return driver(server)


def test_sizes_and_images_through_the_nova_proxy(lc):
    sizes = lc.list_sizes()
    assert FLAVOR in {s.id for s in sizes}
    images = lc.list_images()
    by_name = {i.name: i for i in images}
    assert IMAGE_NAME in by_name
    img = lc.get_image(by_name[IMAGE_NAME].id)
    assert (img.name, img.extra["status"], img.extra["progress"]) == (IMAGE_NAME, "ACTIVE", 100)
    assert img.extra["metadata"]["os_admin_user"] == "root"
    assert img.extra["minDisk"] > 0


def test_images_through_glance_v2(server, lc):
    glance = driver(server, api_version="2.0")
    images = glance.list_images()
    assert {i.id for i in images} == {i.id for i in lc.list_images()}
    one = next(i for i in images if i.name == IMAGE_NAME)
    got = glance.get_image(one.id)
    assert got.name == IMAGE_NAME and got.extra["status"] == "active"
    assert glance.list_sizes()


def test_node_lifecycle_with_key_pair_and_metadata(lc):
    image = next(i for i in lc.list_images() if i.name == IMAGE_NAME)
    size = next(s for s in lc.list_sizes() if s.id == FLAVOR)
    key_name = unique_name("lc")
    lc.import_key_pair_from_string(key_name, ED25519)
    node = lc.create_node(name=unique_name("lc"), size=size, image=image, ex_keyname=key_name,
                          ex_metadata={"made-by": "libcloud"})
    try:
        assert node.extra["password"]
        node = wait_state(lc, node.id, NodeState.RUNNING)
        assert node.extra["key_name"] == key_name
        assert node.id in {n.id for n in lc.list_nodes()}
        assert lc.ex_get_metadata(node) == {"made-by": "libcloud"}
        assert lc.ex_set_metadata(node, {"env": "ci"}) == {"env": "ci"}
        assert lc.ex_get_metadata(node) == {"env": "ci"}
        assert lc.reboot_node(node) is True
        wait_state(lc, node.id, NodeState.RUNNING)
    finally:
        assert lc.destroy_node(node) is True
    deadline = time.monotonic() + 60
    while node.id in {n.id for n in lc.list_nodes()}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lc.delete_key_pair(lc.get_key_pair(key_name))


def test_key_pairs(lc):
    name = unique_name("lc")
    created = lc.create_key_pair(name)
    assert created.private_key and created.fingerprint
    assert name in {k.name for k in lc.list_key_pairs()}
    assert lc.get_key_pair(name).public_key == created.public_key
    assert lc.delete_key_pair(created) is True
    assert name not in {k.name for k in lc.list_key_pairs()}


def test_errors_as_libcloud_maps_them(server, lc):
    missing = "00000000-0000-4000-8000-000000000000"
    # A missing node: libcloud's ex_get_node_details answers None on Nova's 404.
    assert lc.ex_get_node_details(missing) is None
    with pytest.raises(BaseHTTPError) as e:
        lc.get_image(missing)
    assert e.value.code == 404 and "Image not found." in str(e.value)
    with pytest.raises(Exception) as e:
        lc.get_key_pair("no-such-key")
    assert "no-such-key" in str(e.value)
    # Bad credentials: libcloud's InvalidCredsError.
    from libcloud.common.types import InvalidCredsError
    bad = get_driver(Provider.OPENSTACK)(
        "admin", "wrong-password", ex_force_auth_url=f"{server.base_url}/identity",
        ex_force_auth_version="3.x_password", ex_tenant_name="admin", ex_domain_name="Default",
        ex_force_service_region="RegionOne", secure=False)
    with pytest.raises(InvalidCredsError):
        bad.list_sizes()
