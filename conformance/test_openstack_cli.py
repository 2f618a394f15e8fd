"""The `openstack` CLI (python-openstackclient), unchanged, against nubis: the calls of
shared/specs/openstack.md §5 for create, rescue, unrescue and delete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nubis import ADMIN_PASSWORD, new_password, unique_name
from test_openstack_support import FLAVOR, IMAGE_NAME, connect, wait_status

# openstacksdk announces its own future API changes on every call; they are not ours.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def cli(server, *args: str, timeout: float = 120) -> dict | list | str:
    exe = Path(sys.executable).parent / "openstack"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update({
        "OS_AUTH_URL": f"{server.base_url}/identity/v3", "OS_USERNAME": "admin",
        "OS_PASSWORD": ADMIN_PASSWORD, "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne",
        "HOME": str(server.home),
    })
    p = subprocess.run([str(exe) if exe.exists() else "openstack", *args], capture_output=True,
                       text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"openstack {' '.join(args)} failed ({p.returncode}): {p.stderr}"
    out = p.stdout.strip()
    return json.loads(out) if out.startswith(("{", "[")) else out


def test_cli_create_rescue_delete(server):
    flavors = cli(server, "flavor", "list", "-f", "json")
    assert FLAVOR in {f["ID"] for f in flavors}
    images = cli(server, "image", "list", "-f", "json")
    assert IMAGE_NAME in {i["Name"] for i in images}
    name = unique_name("cli")
    created = cli(server, "server", "create", "--flavor", FLAVOR, "--image", IMAGE_NAME,
                  "--nic", "none", "--wait", "-f", "json", name)
    assert created["status"] == "ACTIVE" and created["name"] == name
    sid = created["id"]
    pw = new_password()
    cli(server, "server", "rescue", "--password", pw, name)
    conn = connect(server)
    wait_status(conn, sid, "RESCUE")
    assert server.admin.check_password(sid, "root", pw)
    assert cli(server, "server", "show", "-f", "json", name)["status"] == "RESCUE"
    cli(server, "server", "unrescue", name)
    wait_status(conn, sid, "ACTIVE")
    listed = cli(server, "server", "list", "-f", "json")
    assert any(s["ID"] == sid and s["Status"] == "ACTIVE" for s in listed)
    cli(server, "server", "delete", "--wait", name)
    assert conn.compute.find_server(sid, ignore_missing=True) is None

