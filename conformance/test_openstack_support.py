"""Shared helpers and fixtures for the OpenStack conformance tests (no tests here).

Everything goes through the official clients, unchanged: openstacksdk (`openstack.connect`)
and its keystoneauth session. Raw requests are used only for what no client sends on purpose
(a bad microversion, a wrong method, a malformed body), and they carry a token the SDK got.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import openstack
import pytest
import requests
from openstack import exceptions as os_exc

import nubis
from nubis import ADMIN_PASSWORD, new_password, unique_name

REGION = "RegionOne"
FLAVOR = "S5.MEDIUM4"
# A Linux image whose administrator is root (Glance property os_admin_user says so).
IMAGE_NAME = "Debian 12.5 64bit"


def connect(server: nubis.Server, password: str = ADMIN_PASSWORD,
            **config: Any) -> openstack.connection.Connection:
    """openstack.connect exactly as a user would, with nothing read from the environment
    (`config`: more of its settings, e.g. `compute_api_version="2.56"` to pin a
    microversion)."""
    return openstack.connect(
        auth_url=f"{server.base_url}/identity/v3",
        username="admin",
        password=password,
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=REGION,
        load_yaml_config=False,
        load_envvars=False,
        **config,
    )


def raw(server: nubis.Server, conn, method: str, path: str, *, json_body: Any = None,
        data: bytes | None = None, headers: dict | None = None,
        token: str | None = None) -> requests.Response:
    """A hand-made request under the server (path like '/compute/v2.1/servers'), with the
    SDK's token unless `token` is given ('' sends none)."""
    h = {"Accept": "application/json"}
    tok = conn.auth_token if token is None else token
    if tok:
        h["X-Auth-Token"] = tok
    h.update(headers or {})
    s = requests.Session()
    s.trust_env = False
    return s.request(method, server.base_url + path, json=json_body, data=data, headers=h, timeout=30)


def fault_of(resp: requests.Response) -> tuple[int, str, str]:
    """(status, fault name, message) of a Nova fault body."""
    body = resp.json()
    assert len(body) == 1, body
    name, inner = next(iter(body.items()))
    assert inner["code"] == resp.status_code, body
    return resp.status_code, name, inner["message"]


def expect_http(status: int, fn: Callable, *args, **kwargs) -> os_exc.HttpException:
    """Call an SDK function and assert it fails with HTTP `status`."""
    try:
        result = fn(*args, **kwargs)
    except os_exc.HttpException as e:
        assert e.status_code == status, f"expected HTTP {status}, got {e.status_code}: {e}"
        assert e.request_id and e.request_id.startswith("req-"), e
        return e
    raise AssertionError(f"expected HTTP {status}, but the call succeeded: {result!r}")


def wait_status(conn, server_id: str, status: str, timeout: float = 60) -> Any:
    """Poll GET /servers/{id} until status matches and task_state is null (Tempest's rule)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = conn.compute.get_server(server_id)
        if last.status == status and last.task_state is None:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{server_id} not {status} after {timeout}s: "
                                 f"{last.status}/{last.task_state}")
        time.sleep(0.1)


def wait_gone(conn, server_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while conn.compute.find_server(server_id, ignore_missing=True) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{server_id} still there after {timeout}s")
        time.sleep(0.1)


def image_id(conn) -> str:
    return conn.image.find_image(IMAGE_NAME, ignore_missing=False).id


def create_server(conn, *, name: str | None = None, password: str | None = None,
                  wait: bool = True, **kw) -> tuple[Any, str]:
    """(server, adminPass) — created with the SDK and, by default, waited ACTIVE."""
    args = dict(name=name or unique_name("os"), image_id=image_id(conn), flavor_id=FLAVOR,
                networks="none")
    if password is not None:
        args["admin_password"] = password
    args.update(kw)
    created = conn.compute.create_server(**args)
    assert created.admin_password, "create must return adminPass"
    if wait:
        conn.compute.wait_for_server(created, status="ACTIVE", wait=60, interval=0.1)
        wait_status(conn, created.id, "ACTIVE")
    return created, created.admin_password


def member_of_new_project(server: nubis.Server, conn, password: str = "Nb-Member-Pass-12345"):
    """A new project with a new member user (default domain): (its connection, project ID,
    user ID), made through the admin's connection."""
    proj = conn.identity.create_project(name=unique_name("mp"), domain_id="default")
    user = conn.identity.create_user(name=unique_name("mu"), password=password,
                                     domain_id="default", default_project_id=proj.id)
    conn.identity.assign_project_role_to_user(proj, user, conn.identity.find_role("member"))
    other = openstack.connect(
        auth_url=f"{server.base_url}/identity/v3", username=user.name, password=password,
        project_name=proj.name, user_domain_name="Default", project_domain_name="Default",
        region_name=REGION, load_yaml_config=False, load_envvars=False)
    return other, proj.id, user.id


@pytest.fixture
def conn(server):
    return connect(server)


@pytest.fixture
def os_server(conn):
    """An ACTIVE server with a known admin password; deleted afterwards (unrescued first)."""
    pw = new_password()
    srv, _ = create_server(conn, password=pw)
    yield srv, pw
    s = conn.compute.find_server(srv.id, ignore_missing=True)
    if s is None:
        return
    try:
        s = conn.compute.get_server(srv.id)
        if s.status == "RESCUE" and s.task_state is None:
            conn.compute.unrescue_server(srv.id)
        if s.status in ("RESCUE", "ACTIVE", "SHUTOFF"):
            wait_status(conn, srv.id, "ACTIVE" if s.status == "RESCUE" else s.status)
        conn.compute.delete_server(srv.id)
    except os_exc.HttpException:
        pass
