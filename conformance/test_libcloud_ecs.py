"""apache-libcloud 3.9.1's Aliyun ECS driver (`libcloud.compute.drivers.ecs.ECSDriver`),
unchanged, pointed at nubis through the driver's own `secure`/`host`/`port` arguments. It
speaks RPC v1 (HMAC-SHA1) with Format=XML. The whole node lifecycle: list_locations /
list_sizes / list_images, create_node (CreateInstance, then StartInstance while the instance
may still be Pending — issue 11 — and its wait for RUNNING), list_nodes, reboot_node,
ex_stop_node / ex_start_node, destroy_node (stop, then DeleteInstance), and errors as libcloud
maps them (BaseHTTPError with the HTTP status and the ECS Code). The driver has no key-pair
methods (ECSDriver implements none of NodeDriver's *_key_pair), so key pairs are not
exercised here."""

import pytest
from libcloud.common.exceptions import BaseHTTPError
from libcloud.compute.base import Node, NodeAuthPassword
from libcloud.compute.drivers.ecs import ECSDriver
from libcloud.compute.types import NodeState

from nubis import (
    ADMIN_KEY_ID,
    ADMIN_KEY_SECRET,
    ALI_REGION,
    new_password,
    random_aliyun_instance_id,
    unique_name,
    wait_until,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def lc_server(server_factory):
    # Sim time scale 0.5: a create stays Pending for 2 s, so create_node's StartInstance
    # lands in Pending, as on the real cloud right after CreateInstance.
    return server_factory("libcloud", NUBIS_SIM_TIME_SCALE="0.5")


@pytest.fixture(scope="module")
def driver(lc_server) -> ECSDriver:
    return ECSDriver(ADMIN_KEY_ID, ADMIN_KEY_SECRET, secure=False, host="127.0.0.1",
                     port=lc_server.port, region=ALI_REGION)


def _error(fn, *args) -> BaseHTTPError:
    with pytest.raises(BaseHTTPError) as info:
        fn(*args)
    return info.value


def test_catalogue(driver):
    locations = driver.list_locations()
    assert ALI_REGION in [loc.id for loc in locations]
    sizes = driver.list_sizes()
    assert sizes and all(s.ram > 0 and s.extra["cpu_core_count"] > 0 for s in sizes)
    images = driver.list_images()
    assert images and all(i.id and i.name for i in images)


def test_node_lifecycle(driver, lc_server):
    admin = lc_server.admin
    size = next(s for s in driver.list_sizes() if s.id == "ecs.s5.medium4")
    image = next(i for i in driver.list_images() if i.extra.get("os_type") == "linux"
                 and "ubuntu" not in i.name.lower())
    password = new_password()
    name = unique_name("libcloud")

    node = driver.create_node(name, size, image, auth=NodeAuthPassword(password),
                              ex_security_group_id="sg-nubis", ex_description="made by libcloud",
                              ex_internet_charge_type="PayByTraffic", ex_internet_max_bandwidth_out=5)
    [listed] = driver.list_nodes(ex_node_ids=[node.id])
    assert (listed.name, listed.state) == (name, NodeState.RUNNING)
    assert listed.extra["description"] == "made by libcloud"
    assert listed.private_ips
    assert node.id in [n.id for n in driver.list_nodes()]
    assert admin.check_password(node.id, "root", password)

    restarts = len(admin.guest(node.id)["restarts"])
    assert driver.reboot_node(node)
    assert len(admin.guest(node.id)["restarts"]) > restarts

    assert driver.ex_stop_node(node)
    assert driver.list_nodes(ex_node_ids=[node.id])[0].state == NodeState.STOPPED
    assert admin.guest(node.id)["power"] == "off"
    # Rebooting a stopped node: the ECS code reaches the caller through libcloud.
    err = _error(driver.reboot_node, node)
    assert err.code == 403 and "IncorrectInstanceStatus" in err.message, err
    assert driver.ex_start_node(node)
    assert admin.guest(node.id)["power"] == "on"

    assert driver.destroy_node(node)
    wait_until(lambda: not driver.list_nodes(ex_node_ids=[node.id]), 60, 0.2, "the node to be gone")


def test_unknown_node_errors(driver):
    ghost = Node(id=random_aliyun_instance_id(), name="ghost", state=NodeState.RUNNING,
                 public_ips=[], private_ips=[], driver=driver)
    err = _error(driver.ex_start_node, ghost)
    assert err.code == 404 and "InvalidInstanceId.NotFound" in err.message, err
    err = _error(driver.reboot_node, ghost)
    assert err.code == 404 and "InvalidInstanceId.NotFound" in err.message, err
