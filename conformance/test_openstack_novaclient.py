"""python-novaclient, unchanged, on a keystoneauth session: boot → reboot → rescue (with the
password it returns working on the rescue system) → unrescue → stop → start → delete, and
Nova's faults as novaclient raises them."""

from __future__ import annotations

import time

import pytest
from keystoneauth1 import loading, session
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

from nubis import ADMIN_PASSWORD, new_password, unique_name

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def nova(server):
    auth = loading.get_plugin_loader("password").load_from_options(
        auth_url=f"{server.base_url}/identity/v3", username="admin", password=ADMIN_PASSWORD,
        project_name="admin", user_domain_name="Default", project_domain_name="Default")
    return nova_client.Client("2.1", session=session.Session(auth=auth))


def wait(nc, server_id: str, status: str, timeout: float = 60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = nc.servers.get(server_id)
        if s.status == status and getattr(s, "OS-EXT-STS:task_state", None) is None:
            return s
        time.sleep(0.05)
    raise AssertionError(f"{server_id} never reached {status}")


def test_novaclient_lifecycle_and_rescue(server):
    nc = nova(server)
    flavor = nc.flavors.find(name="S5.MEDIUM4")
    image = next(i for i in nc.glance.list() if i.name.startswith("TencentOS"))
    password = new_password()
    srv = nc.servers.create(unique_name("nova"), image.id, flavor, admin_pass=password)
    wait(nc, srv.id, "ACTIVE")
    assert server.admin.check_password(srv.id, "root", password)

    srv.reboot(reboot_type="HARD")
    wait(nc, srv.id, "ACTIVE")
    _, body = nc.servers.rescue(srv.id)
    rescue_pw = body["adminPass"]
    wait(nc, srv.id, "RESCUE")
    assert server.admin.check_password(srv.id, "root", rescue_pw)
    with pytest.raises(nova_exc.Conflict):
        nc.servers.rescue(srv.id)
    nc.servers.unrescue(srv.id)
    wait(nc, srv.id, "ACTIVE")
    assert server.admin.check_password(srv.id, "root", password)

    nc.servers.stop(srv.id)
    wait(nc, srv.id, "SHUTOFF")
    nc.servers.start(srv.id)
    wait(nc, srv.id, "ACTIVE")
    nc.servers.delete(srv.id)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            nc.servers.get(srv.id)
        except nova_exc.NotFound:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("server not deleted")
    with pytest.raises(nova_exc.NotFound):
        nc.servers.rescue(srv.id)
