"""Nova server groups through python-novaclient and raw keystoneauth requests
(docs/placement-groups.md): create (2.1 `policies`, 2.15 soft policies, 2.64 `policy` +
`rules`), list (limit/offset, all_projects), show, delete; `scheduler_hints.group` at
server create, the members, the anti-affinity refusal on the embedded driver (the server goes
to ERROR with "No valid host was found") and every bad input with Nova's fault."""

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


def sess(server):
    auth = loading.get_plugin_loader("password").load_from_options(
        auth_url=f"{server.base_url}/identity/v3", username="admin", password=ADMIN_PASSWORD,
        project_name="admin", user_domain_name="Default", project_domain_name="Default")
    return session.Session(auth=auth)


def nova(server, version="2.1"):
    return nova_client.Client(version, session=sess(server))


def call(server, method, path, version="2.1", body=None):
    """A raw request: (status, JSON body or None)."""
    r = sess(server).request(f"{server.base_url}/compute/v2.1{path}", method, json=body, raise_exc=False,
                             headers={"OpenStack-API-Version": f"compute {version}"})
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, None


def fault(status_body):
    status, body = status_body
    (name, f), = body.items()
    assert f["code"] == status, body
    return status, f["message"]


@pytest.fixture
def groups(server):
    """Make groups through novaclient 2.64; each is deleted afterwards."""
    nc = nova(server, "2.64")
    made = []

    def make(policy="anti-affinity", **kw):
        g = nc.server_groups.create(name=unique_name("sg"), policy=policy, **kw)
        made.append(g.id)
        return g

    yield make
    for gid in made:
        try:
            nc.server_groups.delete(gid)
        except nova_exc.NotFound:
            pass


def wait(nc, server_id: str, status: str, timeout: float = 60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = nc.servers.get(server_id)
        if s.status == status and getattr(s, "OS-EXT-STS:task_state", None) is None:
            return s
        time.sleep(0.05)
    raise AssertionError(f"{server_id} never reached {status}")


def boot(nc, group_id):
    flavor = nc.flavors.find(name="S5.MEDIUM4")
    image = next(i for i in nc.glance.list() if i.name.startswith("TencentOS"))
    return nc.servers.create(unique_name("sg"), image.id, flavor, admin_pass=new_password(),
                             scheduler_hints={"group": group_id}, nics="none")


def test_create_show_list_delete_by_microversion(server):
    old = nova(server, "2.1")
    g = old.server_groups.create(name=unique_name("old"), policies=["affinity"])
    assert (g.policies, g.members, g.metadata) == (["affinity"], [], {})
    status, body = call(server, "GET", f"/os-server-groups/{g.id}", "2.13")
    assert status == 200 and {"project_id", "user_id"} <= body["server_group"].keys()
    status, body = call(server, "GET", f"/os-server-groups/{g.id}", "2.64")
    sg = body["server_group"]
    assert (sg["policy"], sg["rules"]) == ("affinity", {}) and "policies" not in sg and "metadata" not in sg
    new = nova(server, "2.64")
    h = new.server_groups.create(name=unique_name("new"), policy="anti-affinity",
                                 rules={"max_server_per_host": 3})
    assert (h.policy, h.rules) == ("anti-affinity", {"max_server_per_host": 3})
    listed = [x.id for x in new.server_groups.list()]
    assert g.id in listed and h.id in listed
    status, body = call(server, "GET", "/os-server-groups?limit=1")
    assert status == 200 and len(body["server_groups"]) == 1
    status, body = call(server, "GET", f"/os-server-groups?offset={len(listed)}")
    assert status == 200 and body["server_groups"] == []
    status, body = call(server, "GET", "/os-server-groups?all_projects=True")
    assert status == 200 and {g.id, h.id} <= {x["id"] for x in body["server_groups"]}
    for gid in (g.id, h.id):
        new.server_groups.delete(gid)
        with pytest.raises(nova_exc.NotFound):
            new.server_groups.get(gid)
    assert fault(call(server, "DELETE", f"/os-server-groups/{g.id}")) == (
        404, f"Instance group {g.id} could not be found.")


@pytest.mark.parametrize("version, body, message", [
    ("2.1", {"server_group": {"name": "x", "policies": ["soft-affinity"]}}, "is not one of"),
    ("2.1", {"server_group": {"name": "x", "policies": []}}, "too short"),
    ("2.1", {"server_group": {"name": "x", "policies": ["affinity", "anti-affinity"]}}, "too long"),
    ("2.1", {"server_group": {"name": "x"}}, "'policies' is a required property"),
    ("2.1", {"server_group": {"policies": ["affinity"]}}, "'name' is a required property"),
    ("2.1", {"server_group": {"name": " x", "policies": ["affinity"]}}, "Invalid input for field/attribute name"),
    ("2.1", {"server_group": {"name": "x" * 256, "policies": ["affinity"]}}, "Invalid input for field/attribute name"),
    ("2.1", {"server_group": {"name": "x", "policies": ["affinity"], "policy": "affinity"}}, "was unexpected"),
    ("2.64", {"server_group": {"name": "x", "policies": ["affinity"]}}, "was unexpected"),
    ("2.64", {"server_group": {"name": "x", "policy": "best-effort"}}, "is not one of"),
    ("2.64", {"server_group": {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}}},
     "Only anti-affinity policy supports rules."),
    ("2.64", {"server_group": {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}},
     "max_server_per_host"),
    ("2.64", {"server_group": {"name": "x", "policy": "anti-affinity", "rules": {"other": 1}}}, "was unexpected"),
    ("2.64", {"groups": {}}, "was unexpected"),
], ids=["soft-before-2.15", "no-policy", "two-policies", "policies-missing", "name-missing",
        "blank-name", "long-name", "policy-before-2.64", "policies-at-2.64", "bad-policy",
        "rules-on-affinity", "rule-zero", "unknown-rule", "unknown-top"])
def test_create_refusals(server, version, body, message):
    status, m = fault(call(server, "POST", "/os-server-groups", version, body))
    assert status == 400 and message in m, m


def test_soft_policies_from_2_15(server, groups):
    status, body = call(server, "POST", "/os-server-groups", "2.15",
                        {"server_group": {"name": "soft", "policies": ["soft-anti-affinity"]}})
    assert status == 200, body
    gid = body["server_group"]["id"]
    assert call(server, "DELETE", f"/os-server-groups/{gid}")[0] == 204


def test_members_and_anti_affinity_on_one_host(server, groups):
    nc = nova(server, "2.64")
    g = groups("anti-affinity")
    first = boot(nc, g.id)
    wait(nc, first.id, "ACTIVE")
    assert nc.server_groups.get(g.id).members == [first.id]
    status, body = call(server, "GET", f"/servers/{first.id}", "2.71")
    assert body["server"]["server_groups"] == [g.id]
    # The embedded driver is one host per zone: the second member finds no valid host.
    second = boot(nc, g.id)
    failed = wait(nc, second.id, "ERROR")
    assert "No valid host was found" in failed.fault["message"]
    nc.servers.delete(second.id)
    nc.servers.delete(first.id)
    end = time.monotonic() + 60
    while nc.server_groups.get(g.id).members and time.monotonic() < end:
        time.sleep(0.05)
    assert nc.server_groups.get(g.id).members == []


def test_affinity_and_soft_policies_keep_members_together(server, groups):
    nc = nova(server, "2.64")
    for policy in ("affinity", "soft-anti-affinity"):
        g = groups(policy)
        made = [boot(nc, g.id) for _ in range(2)]
        for s in made:
            wait(nc, s.id, "ACTIVE")
        assert sorted(nc.server_groups.get(g.id).members) == sorted(s.id for s in made)
        for s in made:
            nc.servers.delete(s.id)


def test_scheduler_hint_refusals(server, groups):
    base = {"name": "x", "imageRef": "x", "flavorRef": "S5.MEDIUM4"}
    status, m = fault(call(server, "POST", "/servers", "2.1",
                           {"server": base, "os:scheduler_hints": {"group": "not-a-uuid"}}))
    assert status == 400 and "is not a 'uuid'" in m, m
    nc = nova(server, "2.64")
    with pytest.raises(nova_exc.BadRequest, match="could not be found"):
        boot(nc, "8a1b7e2c-0000-4000-8000-000000000000")
    # A server group's member quota (10): 11 servers at once are refused before any exists.
    g = groups("soft-affinity")
    flavor = nc.flavors.find(name="S5.MEDIUM4")
    image = next(i for i in nc.glance.list() if i.name.startswith("TencentOS"))
    with pytest.raises(nova_exc.Forbidden, match="too many servers in group"):
        nc.servers.create(unique_name("sg"), image.id, flavor, min_count=11, max_count=11,
                          scheduler_hints={"group": g.id}, nics="none")
    assert nc.server_groups.get(g.id).members == []


def test_show_unknown_group(server):
    gid = "8a1b7e2c-0000-4000-8000-000000000001"
    assert fault(call(server, "GET", f"/os-server-groups/{gid}")) == (
        404, f"Instance group {gid} could not be found.")
