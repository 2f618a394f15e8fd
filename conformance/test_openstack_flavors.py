"""Flavor management (docs/flavors.md) through the official clients, unchanged: openstacksdk
and the `openstack` CLI create, list, show, share, set extra specs on and delete flavors; a
created flavor boots a server, which keeps rendering after the flavor is deleted; Tencent's
DescribeInstanceTypeConfigs / DescribeZoneInstanceConfigInfos and Alibaba's
DescribeInstanceTypes / DescribeAvailableResource list a created public type by its Nova
flavor ID. Bad input answers Nova's codes. One server of its own: flavors are fleet-wide."""

from __future__ import annotations

import openstack
import pytest

from nubis import ecs_client, unique_name
from test_openstack_cli import cli
from test_openstack_support import connect, create_server, expect_http, raw, fault_of, wait_gone

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

MEMBER_PASSWORD = "Member@2026pw"


@pytest.fixture(scope="module")
def fl_server(server_factory):
    return server_factory("os-flavors", NUBIS_SIM_TIME_SCALE="0.05", NUBIS_RATE_LIMITS="off")


@pytest.fixture(scope="module")
def member(fl_server):
    """A Keystone user of the admin project with the member role only."""
    fl_server.admin.post("/keystone-users", {"name": "flmember", "password": MEMBER_PASSWORD,
                                             "roles": ["member"]})
    return openstack.connect(auth_url=f"{fl_server.base_url}/identity/v3", username="flmember",
                             password=MEMBER_PASSWORD, project_name="admin",
                             user_domain_name="Default", project_domain_name="Default",
                             region_name="RegionOne", load_yaml_config=False, load_envvars=False)


def nova(server, conn, method, path, body=None, version="2.1"):
    return raw(server, conn, method, f"/compute/v2.1{path}", json_body=body,
               headers={"OpenStack-API-Version": f"compute {version}"})


def test_sdk_create_show_list_delete(fl_server):
    conn = connect(fl_server)
    name = unique_name("flv")
    f = conn.compute.create_flavor(name=name, ram=512, vcpus=1, disk=1, id=f"{name}-id",
                                   swap=0, ephemeral=0, rxtx_factor=1.0, is_public=True)
    assert (f.id, f.name, f.ram, f.vcpus, f.disk, f.is_public) == (f"{name}-id", name, 512, 1, 1, True)
    shown = conn.compute.get_flavor(f.id)
    assert shown.name == name and shown.ram == 512
    listed = {x.id: x for x in conn.compute.flavors(details=True)}
    assert f.id in listed and "S5.MEDIUM4" in listed
    assert listed[f.id].vcpus == 1
    # minRam filters it in and out.
    assert f.id not in {x.id for x in conn.compute.flavors(min_ram=1024)}
    conn.compute.delete_flavor(f.id)
    expect_http(404, conn.compute.get_flavor, f.id)
    assert f.id not in {x.id for x in conn.compute.flavors()}


def test_a_server_of_a_deleted_flavor_still_renders(fl_server):
    conn = connect(fl_server)
    name = unique_name("boot")
    f = conn.compute.create_flavor(name=name, ram=1024, vcpus=2, disk=20, id=name)
    srv, _ = create_server(conn, flavor_id=f.id)
    try:
        conn.compute.delete_flavor(f.id)
        resp = nova(fl_server, conn, "GET", f"/servers/{srv.id}", version="2.47")
        assert resp.status_code == 200, resp.text
        flavor = resp.json()["server"]["flavor"]
        assert (flavor["vcpus"], flavor["ram"], flavor["original_name"]) == (2, 1024, name)
    finally:
        conn.compute.delete_server(srv.id)
        wait_gone(conn, srv.id)


def test_private_flavor_access(fl_server, member):
    conn = connect(fl_server)
    project = conn.current_project_id
    name = unique_name("priv")
    f = conn.compute.create_flavor(name=name, ram=512, vcpus=1, disk=0, id=name, is_public=False)
    try:
        # Hidden from the member until its project is given access; the admin sees it.
        assert f.id not in {x.id for x in member.compute.flavors()}
        expect_http(404, member.compute.get_flavor, f.id)
        assert f.id in {x.id for x in conn.compute.flavors(is_public=False)}
        assert f.id not in {x.id for x in conn.compute.flavors(is_public=False) if x.is_public}
        assert conn.compute.get_flavor_access(f.id) == []
        conn.compute.flavor_add_tenant_access(f.id, project)
        assert [a["tenant_id"] for a in conn.compute.get_flavor_access(f.id)] == [project]
        assert f.id in {x.id for x in member.compute.flavors()}
        assert member.compute.get_flavor(f.id).is_public is False
        # Twice: 409; removing a project without access: 404.
        expect_http(409, conn.compute.flavor_add_tenant_access, f.id, project)
        conn.compute.flavor_remove_tenant_access(f.id, project)
        expect_http(404, conn.compute.flavor_remove_tenant_access, f.id, project)
        assert f.id not in {x.id for x in member.compute.flavors()}
        # Access is an admin's to give, and a public flavor has no list.
        expect_http(403, member.compute.flavor_add_tenant_access, f.id, project)
        expect_http(404, conn.compute.get_flavor_access, "S5.MEDIUM4")
    finally:
        conn.compute.delete_flavor(f.id)


def test_extra_specs(fl_server, member):
    conn = connect(fl_server)
    name = unique_name("specs")
    f = conn.compute.create_flavor(name=name, ram=512, vcpus=1, disk=1, id=name)
    try:
        conn.compute.create_flavor_extra_specs(f.id, {"hw:cpu_policy": "shared", "mine": "x"})
        assert conn.compute.get_flavor_extra_specs_property(f.id, "hw:cpu_policy") == "shared"
        conn.compute.update_flavor_extra_specs_property(f.id, "mine", "y")
        specs = conn.compute.fetch_flavor_extra_specs(f.id).extra_specs
        assert specs == {"hw:cpu_policy": "shared", "mine": "y"}
        # 2.61 shows them in the flavor itself.
        body = nova(fl_server, conn, "GET", f"/flavors/{f.id}", version="2.61").json()
        assert body["flavor"]["extra_specs"] == specs
        conn.compute.delete_flavor_extra_specs_property(f.id, "mine")
        expect_http(404, conn.compute.get_flavor_extra_specs_property, f.id, "mine")
        # A member reads them but does not change them.
        assert member.compute.fetch_flavor_extra_specs(f.id).extra_specs == {"hw:cpu_policy": "shared"}
        expect_http(403, member.compute.create_flavor_extra_specs, f.id, {"a": "b"})
        # 2.86 checks the keys Nova knows: an unknown hw: key and a bad value are refused,
        # a key of the operator's own namespace is kept.
        for body_, status in (({"hw:no_such": "1"}, 400), ({"hw:cpu_policy": "sometimes"}, 400),
                              ({"acme:tier": "gold"}, 200)):
            resp = nova(fl_server, conn, "POST", f"/flavors/{f.id}/os-extra_specs",
                        {"extra_specs": body_}, version="2.86")
            assert resp.status_code == status, resp.text
        resp = nova(fl_server, conn, "POST", f"/flavors/{f.id}/os-extra_specs",
                    {"extra_specs": {"hw:no_such": "1"}}, version="2.85")
        assert resp.status_code == 200, resp.text
        # PUT names one key, the same as the path's.
        resp = nova(fl_server, conn, "PUT", f"/flavors/{f.id}/os-extra_specs/a", {"b": "1"})
        assert fault_of(resp) == (400, "badRequest", "Request body and URI mismatch")
    finally:
        conn.compute.delete_flavor(f.id)


def test_description_update_at_2_55(fl_server):
    conn = connect(fl_server)
    name = unique_name("desc")
    resp = nova(fl_server, conn, "POST", "/flavors",
                {"flavor": {"name": name, "ram": 512, "vcpus": 1, "disk": 1, "id": name,
                            "description": "first"}}, version="2.55")
    assert resp.status_code == 200 and resp.json()["flavor"]["description"] == "first", resp.text
    try:
        resp = nova(fl_server, conn, "PUT", f"/flavors/{name}",
                    {"flavor": {"description": "second"}}, version="2.55")
        assert resp.json()["flavor"]["description"] == "second", resp.text
        # Before 2.55 a description is an unexpected property.
        resp = nova(fl_server, conn, "POST", "/flavors",
                    {"flavor": {"name": name + "x", "ram": 512, "vcpus": 1, "disk": 1,
                                "description": "d"}})
        assert resp.status_code == 400, resp.text
        # 2.75 shows swap as a number.
        body = nova(fl_server, conn, "GET", f"/flavors/{name}", version="2.75").json()
        assert body["flavor"]["swap"] == 0
        assert nova(fl_server, conn, "GET", f"/flavors/{name}").json()["flavor"]["swap"] == ""
    finally:
        conn.compute.delete_flavor(name)


def test_bad_input(fl_server, member):
    conn = connect(fl_server)
    name = unique_name("bad")
    f = conn.compute.create_flavor(name=name, ram=512, vcpus=1, disk=1, id=name)
    try:
        # Duplicate name, duplicate ID, a built-in's ID: 409.
        expect_http(409, conn.compute.create_flavor, name=name, ram=512, vcpus=1, disk=1)
        expect_http(409, conn.compute.create_flavor, name=name + "2", ram=512, vcpus=1, disk=1, id=name)
        expect_http(409, conn.compute.create_flavor, name=name + "3", ram=512, vcpus=1, disk=1,
                    id="S5.MEDIUM4")
        for bad in ({"ram": 0}, {"vcpus": 0}, {"disk": -1}, {"ram": "lots"}, {"vcpus": 2**40},
                    {"name": " padded"}, {"id": "a/b"}, {"unknown": 1}):
            body = {"name": unique_name("b"), "ram": 512, "vcpus": 1, "disk": 1, **bad}
            resp = nova(fl_server, conn, "POST", "/flavors", {"flavor": body})
            assert resp.status_code == 400, (bad, resp.text)
            assert fault_of(resp)[1] == "badRequest"
        resp = nova(fl_server, conn, "POST", "/flavors", {"flavor": {"name": "x", "ram": 1}})
        assert fault_of(resp) == (400, "badRequest", "'vcpus' is a required property")
        # Only an admin creates or deletes.
        expect_http(403, member.compute.create_flavor, name=unique_name("m"), ram=512, vcpus=1, disk=1)
        expect_http(403, member.compute.delete_flavor, f.id)
        expect_http(404, conn.compute.delete_flavor, "no-such-flavor", ignore_missing=False)
    finally:
        conn.compute.delete_flavor(f.id)


def test_cli_flavor_commands(fl_server):
    name = unique_name("cli")
    created = cli(fl_server, "flavor", "create", "--ram", "512", "--vcpus", "1", "--disk", "1",
                  "--id", name, "--private", "--project", "admin",
                  "--property", "hw:cpu_policy=shared", "-f", "json", name)
    assert created["name"] == name and created["os-flavor-access:is_public"] is False, created
    shown = cli(fl_server, "flavor", "show", "-f", "json", name)
    assert shown["ram"] == 512 and "hw:cpu_policy" in str(shown["properties"]), shown
    listed = cli(fl_server, "flavor", "list", "--all", "-f", "json")
    assert name in {f["ID"] for f in listed}
    cli(fl_server, "flavor", "set", "--property", "mine=1", name)
    shown = cli(fl_server, "flavor", "show", "-f", "json", name)
    assert "mine" in str(shown["properties"]), shown
    cli(fl_server, "flavor", "unset", "--property", "mine", name)
    cli(fl_server, "flavor", "delete", name)
    assert name not in {f["ID"] for f in cli(fl_server, "flavor", "list", "--all", "-f", "json")}


def test_tencent_and_alibaba_list_a_created_public_type(fl_server):
    conn = connect(fl_server)
    name = unique_name("pub")
    public = conn.compute.create_flavor(name=name, ram=3072, vcpus=3, disk=10, id=name)
    private = conn.compute.create_flavor(name=name + "-p", ram=512, vcpus=1, disk=1,
                                         id=name + "-p", is_public=False)
    try:
        cvm = fl_server.cvm()
        configs = cvm.call("DescribeInstanceTypeConfigs")["InstanceTypeConfigSet"]
        mine = [c for c in configs if c["InstanceType"] == name]
        assert mine and all(c["CPU"] == 3 and c["Memory"] == 3 and c["InstanceFamily"] == "CUSTOM"
                            for c in mine), mine
        assert not [c for c in configs if c["InstanceType"] == private.id]
        infos = cvm.call("DescribeZoneInstanceConfigInfos",
                         Filters=[{"Name": "instance-type", "Values": [name]}])["InstanceTypeQuotaSet"]
        assert infos and all(i["Cpu"] == 3 and i["Memory"] == 3 for i in infos), infos
        ecs = ecs_client(fl_server, "legacy")
        types = {t["InstanceTypeId"]: t
                 for t in ecs.call("DescribeInstanceTypes")["InstanceTypes"]["InstanceType"]}
        assert types[name]["CpuCoreCount"] == 3 and types[name]["MemorySize"] == 3, types[name]
        assert private.id not in types
        avail = ecs.call("DescribeAvailableResource",
                         DestinationResource="InstanceType", InstanceType=name)
        assert avail["AvailableZones"]["AvailableZone"], avail
    finally:
        conn.compute.delete_flavor(public.id)
        conn.compute.delete_flavor(private.id)
