"""Keystone v3 identity admin API through python-openstackclient and openstacksdk
(docs/identity-wire.md §8, docs/identity.md "Keystone admin API"): domains, projects,
users, groups, roles, grants, role assignments, application credentials; project-scoped
Nova (a member of project B does not find project A's server; a reader is refused writes;
an admin sees every project with all_tenants)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openstack
import pytest
import requests
from openstack import exceptions as os_exc

from nubis import ADMIN_PASSWORD, unique_name
from test_openstack_support import FLAVOR, REGION, connect, create_server, image_id

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

PASSWORD = "Keystone-Pw-1234"


def cli(server, *args: str, env_extra: dict | None = None, ok: bool = True,
        timeout: float = 120):
    exe = Path(sys.executable).parent / "openstack"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update({
        "OS_AUTH_URL": f"{server.base_url}/identity/v3", "OS_USERNAME": "admin",
        "OS_PASSWORD": ADMIN_PASSWORD, "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne",
        "HOME": str(server.home),
    })
    env.update(env_extra or {})
    p = subprocess.run([str(exe) if exe.exists() else "openstack", *args], capture_output=True,
                       text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    if not ok:
        return p
    assert p.returncode == 0, f"openstack {' '.join(args)} failed ({p.returncode}): {p.stderr}"
    out = p.stdout.strip()
    return json.loads(out) if out.startswith(("{", "[")) else out


def field(d: dict, name: str):
    """A CLI output field whatever its case (`Project ID` / `project_id`)."""
    for k, v in d.items():
        if k.lower().replace(" ", "_") == name:
            return v
    raise KeyError(f"{name} not in {sorted(d)}")


def connect_as(server, user: str, password: str, project: str,
               domain: str = "Default") -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=f"{server.base_url}/identity/v3", username=user, password=password,
        project_name=project, user_domain_name=domain, project_domain_name=domain,
        region_name=REGION, load_yaml_config=False, load_envvars=False)


def token_for(server, user: str, password: str, project: str | None = None,
              domain: str = "Default") -> requests.Response:
    auth = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": domain}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"name": domain}}}
    return requests.post(f"{server.base_url}/identity/v3/auth/tokens", json={"auth": auth},
                         timeout=10)


def test_cli_directory_and_role_assignments(server):
    proj = unique_name("proj")
    user = unique_name("alice")
    group = unique_name("grp")
    role = unique_name("role")
    p = cli(server, "project", "create", "--domain", "default", "--description", "pd",
            "--enable", "-f", "json", proj)
    assert p["name"] == proj and p["domain_id"] == "default" and p["enabled"] is True
    u = cli(server, "user", "create", "--domain", "default", "--project", proj,
            "--password", PASSWORD, "--email", "a@example.com", "--description", "ud",
            "--enable", "-f", "json", user)
    assert u["name"] == user and u["default_project_id"] == p["id"]
    assert "password" not in json.dumps(u).lower().replace("password_expires_at", "")
    g = cli(server, "group", "create", "--domain", "default", "-f", "json", group)
    r = cli(server, "role", "create", "-f", "json", role)
    assert r["name"] == role
    cli(server, "role", "add", "--user", user, "--user-domain", "Default", "--project", proj,
        "--project-domain", "Default", "member")
    cli(server, "group", "add", "user", group, user)
    cli(server, "role", "add", "--group", group, "--domain", "default", "reader")
    cli(server, "role", "add", "--user", user, "--project", proj, role)
    listed = cli(server, "role", "assignment", "list", "--user", user, "--project", proj,
                 "--names", "-f", "json")
    got = {(a["Role"], a["User"], a["Project"]) for a in listed}
    assert (f"member", f"{user}@Default", f"{proj}@Default") in got, listed
    assert (role, f"{user}@Default", f"{proj}@Default") in got, listed
    users = cli(server, "user", "list", "--domain", "default", "-f", "json")
    assert user in {x["Name"] for x in users}
    assert "admin" in {x["Name"] for x in users}
    projects = cli(server, "project", "list", "-f", "json")
    assert {proj, "admin"} <= {x["Name"] for x in projects}
    # Duplicates are Keystone's 409.
    dup = cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, user,
              ok=False)
    assert dup.returncode != 0 and "409" in dup.stderr + dup.stdout
    # The new user logs in to its project with the member role (and reader, implied).
    t = token_for(server, user, PASSWORD, proj)
    assert t.status_code == 201, t.text
    roles = {x["name"] for x in t.json()["token"]["roles"]}
    assert {"member", "reader", role} <= roles
    assert t.json()["token"]["project"]["id"] == p["id"]
    assert token_for(server, user, "wrong-password", proj).status_code == 401
    # Clean up through the CLI.
    cli(server, "group", "remove", "user", group, user)
    cli(server, "role", "remove", "--user", user, "--project", proj, "member")
    cli(server, "user", "delete", user)
    cli(server, "group", "delete", group)
    cli(server, "role", "delete", role)
    cli(server, "project", "delete", proj)
    assert token_for(server, user, PASSWORD, proj).status_code == 401
    gone = cli(server, "project", "show", proj, ok=False)
    assert gone.returncode != 0


def test_cli_domain_lifecycle(server):
    name = unique_name("dom")
    d = cli(server, "domain", "create", "--description", "d", "-f", "json", name)
    assert d["name"] == name and d["enabled"] is True and len(d["id"]) == 32
    # Keystone refuses to delete an enabled domain (403).
    p = cli(server, "domain", "delete", name, ok=False)
    assert p.returncode != 0 and "403" in p.stderr + p.stdout
    cli(server, "domain", "set", "--disable", name)
    cli(server, "domain", "delete", name)
    assert name not in {x["Name"] for x in cli(server, "domain", "list", "-f", "json")}


def test_application_credential_create_and_authenticate(server):
    proj = unique_name("acp")
    user = unique_name("acu")
    cli(server, "project", "create", "--domain", "default", proj)
    cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, user)
    cli(server, "role", "add", "--user", user, "--project", proj, "member")
    env = {"OS_USERNAME": user, "OS_PASSWORD": PASSWORD, "OS_PROJECT_NAME": proj}
    expires = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
    ac = cli(server, "application", "credential", "create", "--role", "member",
             "--expiration", expires, "--description", "acd", "--secret", "s3cret-ac",
             "-f", "json", unique_name("ac"), env_extra=env)
    ac = {k: field(ac, k) for k in ("id", "secret", "project_id", "roles")}
    assert ac["secret"] == "s3cret-ac" and ac["project_id"]
    assert "member" in str(ac["roles"])
    # A role the user does not hold is refused.
    bad = cli(server, "application", "credential", "create", "--role", "admin",
              unique_name("ac"), env_extra=env, ok=False)
    assert bad.returncode != 0 and "403" in bad.stderr + bad.stdout
    # Authenticate with it: the CLI and openstacksdk (v3applicationcredential).
    app_env = {"OS_AUTH_TYPE": "v3applicationcredential",
               "OS_APPLICATION_CREDENTIAL_ID": ac["id"],
               "OS_APPLICATION_CREDENTIAL_SECRET": "s3cret-ac",
               "OS_USERNAME": "", "OS_PASSWORD": "", "OS_PROJECT_NAME": "",
               "OS_USER_DOMAIN_NAME": "", "OS_PROJECT_DOMAIN_NAME": ""}
    issued = cli(server, "token", "issue", "-f", "json", env_extra=app_env)
    assert field(issued, "project_id") == ac["project_id"]
    conn = openstack.connect(auth_url=f"{server.base_url}/identity/v3",
                             auth_type="v3applicationcredential",
                             application_credential_id=ac["id"],
                             application_credential_secret="s3cret-ac",
                             region_name=REGION, load_yaml_config=False, load_envvars=False)
    assert isinstance(list(conn.compute.servers()), list)
    wrong = requests.post(f"{server.base_url}/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["application_credential"], "application_credential": {
            "id": ac["id"], "secret": "nope"}}}}, timeout=10)
    assert wrong.status_code == 401
    # A past expiry is refused (D18).
    past = cli(server, "application", "credential", "create", "--expiration",
               "2000-01-01T00:00:00", unique_name("ac"), env_extra=env, ok=False)
    assert past.returncode != 0 and "400" in past.stderr + past.stdout
    listed = cli(server, "application", "credential", "list", "-f", "json", env_extra=env)
    assert ac["id"] in {field(x, "id") for x in listed}
    cli(server, "application", "credential", "delete", ac["id"], env_extra=env)
    gone = requests.post(f"{server.base_url}/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["application_credential"], "application_credential": {
            "id": ac["id"], "secret": "s3cret-ac"}}}}, timeout=10)
    assert gone.status_code == 401


def test_token_validation_by_admin_and_subject(server):
    user = unique_name("tv")
    proj = unique_name("tvp")
    cli(server, "project", "create", "--domain", "default", proj)
    cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, user)
    cli(server, "role", "add", "--user", user, "--project", proj, "reader")
    mine = token_for(server, user, PASSWORD, proj).headers["X-Subject-Token"]
    admin = token_for(server, "admin", ADMIN_PASSWORD, "admin").headers["X-Subject-Token"]
    url = f"{server.base_url}/identity/v3/auth/tokens"
    ok = requests.get(url, headers={"X-Auth-Token": admin, "X-Subject-Token": mine}, timeout=10)
    assert ok.status_code == 200 and ok.json()["token"]["user"]["name"] == user
    own = requests.head(url, headers={"X-Auth-Token": mine, "X-Subject-Token": mine}, timeout=10)
    assert own.status_code == 200
    other = requests.get(url, headers={"X-Auth-Token": mine, "X-Subject-Token": admin},
                         timeout=10)
    assert other.status_code == 403
    none = requests.get(url, headers={"X-Auth-Token": admin}, timeout=10)
    assert none.status_code == 400  # D20
    # A reader may not administer the directory.
    denied = requests.get(f"{server.base_url}/identity/v3/users",
                          headers={"X-Auth-Token": mine}, timeout=10)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == 403
    assert requests.delete(url, headers={"X-Auth-Token": admin, "X-Subject-Token": mine},
                           timeout=10).status_code == 204
    gone = requests.get(url, headers={"X-Auth-Token": admin, "X-Subject-Token": mine},
                        timeout=10)
    assert gone.status_code == 404


def test_projects_scope_nova(server):
    """Two projects: a member of B gets 404 for A's server; a reader of A gets 403 on
    create, reboot and delete; the admin sees both with all_tenants."""
    pa, pb = unique_name("pa"), unique_name("pb")
    ua, ub, ur = unique_name("ua"), unique_name("ub"), unique_name("ur")
    for p in (pa, pb):
        cli(server, "project", "create", "--domain", "default", p)
    for u in (ua, ub, ur):
        cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, u)
    cli(server, "role", "add", "--user", ua, "--project", pa, "member")
    cli(server, "role", "add", "--user", ub, "--project", pb, "member")
    cli(server, "role", "add", "--user", ur, "--project", pa, "reader")
    a = connect_as(server, ua, PASSWORD, pa)
    b = connect_as(server, ub, PASSWORD, pb)
    r = connect_as(server, ur, PASSWORD, pa)
    srv, _ = create_server(a, name=unique_name("in-a"))
    pa_id = a.current_project_id
    assert a.compute.get_server(srv.id).project_id == pa_id
    # Member of B: not found, not listed, cannot act.
    with pytest.raises(os_exc.NotFoundException):
        b.compute.get_server(srv.id)
    assert srv.id not in {s.id for s in b.compute.servers()}
    with pytest.raises(os_exc.NotFoundException):
        b.compute.reboot_server(srv.id, "SOFT")
    with pytest.raises(os_exc.NotFoundException):
        b.compute.delete_server(srv.id, ignore_missing=False)
    # Member of B cannot ask for every project.
    with pytest.raises(os_exc.ForbiddenException):
        list(b.compute.servers(all_projects=True))
    # Reader of A: sees, may not write.
    assert r.compute.get_server(srv.id).id == srv.id
    assert srv.id in {s.id for s in r.compute.servers()}
    with pytest.raises(os_exc.ForbiddenException):
        r.compute.reboot_server(srv.id, "SOFT")
    with pytest.raises(os_exc.ForbiddenException):
        r.compute.delete_server(srv.id, ignore_missing=False)
    with pytest.raises(os_exc.ForbiddenException):
        r.compute.create_server(name=unique_name("ro"), image_id=image_id(r),
                                flavor_id=FLAVOR, networks="none")
    # The admin: its own project by default, every project with all_tenants.
    admin = connect_as(server, "admin", ADMIN_PASSWORD, "admin")
    assert srv.id not in {s.id for s in admin.compute.servers()}
    assert srv.id in {s.id for s in admin.compute.servers(all_projects=True)}
    assert admin.compute.get_server(srv.id).id == srv.id
    # Member of A deletes its own server.
    a.compute.delete_server(srv.id, ignore_missing=False)
    a.compute.wait_for_delete(srv, wait=60, interval=0.2)


def test_a_project_acting_as_a_domain_is_a_domain(server):
    conn = connect(server)
    name = unique_name("isd")
    p = conn.identity.create_project(name=name, is_domain=True, description="d")
    assert (p.is_domain, p.domain_id, p.parent_id) == (True, None, None)
    # Listed as a project only with is_domain=true, and as a domain.
    assert p.id in {x.id for x in conn.identity.projects(is_domain=True)}
    assert p.id not in {x.id for x in conn.identity.projects()}
    assert conn.identity.get_domain(p.id).name == name
    assert conn.identity.get_project(p.id).is_domain is True
    # Keystone refuses to delete it while enabled (403), then deletes it.
    expect = os_exc.HttpException
    with pytest.raises(expect) as e:
        conn.identity.delete_project(p)
    assert e.value.status_code == 403
    assert conn.identity.update_project(p, is_enabled=False).is_enabled is False
    conn.identity.delete_project(p)
    assert conn.identity.find_domain(p.id, ignore_missing=True) is None
    # A project acting as a domain has no parent nor domain.
    r = requests.post(f"{server.base_url}/identity/v3/projects", timeout=10,
                      headers={"X-Auth-Token": conn.auth_token},
                      json={"project": {"name": unique_name("isd"), "is_domain": True,
                                        "domain_id": "default"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == 400, r.text
