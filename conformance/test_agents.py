"""Host agents (docs/agents.md): a control plane with two `nubis agent` hosts (sim) serving
zone ap-guangzhou-3 / cn-hangzhou-h / nova, driven through the official clients of all three
dialects. Instances spread over the hosts and run there; a full zone is each cloud's sold-out
answer; a killed agent's instances show Nova's host_status UNKNOWN and their work waits until
it returns; every agent call is signed by a registered host."""

from __future__ import annotations

import json
import time

import pytest
import requests

import nubis
from nubis import Agent, describe, expect_error, host_views, register_host, wait_settled, wait_until
from test_openstack_support import FLAVOR, connect, image_id, wait_status

ZONE = "ap-guangzhou-3"  # catalogue zone local-a: cn-hangzhou-h, nova
OTHER_ZONE = "ap-guangzhou-4"  # no agent: the control plane's own driver runs it
TYPE = "S5.MEDIUM4"  # 2 vCPUs, 4 GiB
HOST_TIMEOUT_MS = 2000


@pytest.fixture
def fleet(server_factory, nubis_bin, tmp_path):
    """A fresh control plane and two agents of 4 vCPUs / 16 GiB each in ZONE."""
    server = server_factory("agents", NUBIS_HOST_TIMEOUT_MS=str(HOST_TIMEOUT_MS), NUBIS_RATE_LIMITS="off")
    agents = {}
    for host in ("host-a", "host-b"):
        secret = register_host(server.admin, host, ZONE)
        agents[host] = Agent(host, secret, nubis_bin, tmp_path, server.base_url, vcpus=4,
                             memory_mib=16384).start()
    wait_until(lambda: all(h["health"] == "up" for h in host_views(server.admin).values()), timeout=15)
    yield server, agents
    for a in agents.values():
        a.stop()
    server.stop()


def run(cvm, count: int, zone: str = ZONE) -> list[str]:
    resp = cvm.call("RunInstances", Placement={"Zone": zone}, ImageId=linux_image(cvm),
                    InstanceType=TYPE, InstanceCount=count, InstanceName=nubis.unique_name("ag"),
                    LoginSettings={"Password": nubis.new_password()})
    return resp["InstanceIdSet"]


def linux_image(cvm) -> str:
    images = cvm.call("DescribeImages", Filters=[{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}],
                      Limit=100)["ImageSet"]
    return next(i["ImageId"] for i in images if i["Platform"] != "Windows"
                and i.get("Architecture") in (None, "x86_64") and "ubuntu" not in i["OsName"].lower())


def host_of(server, iid: str) -> str | None:
    return server.admin.instance(iid)["host"]


def stock(cvm, zone: str) -> set[str]:
    """The Status of every type of `zone` in DescribeZoneInstanceConfigInfos."""
    rows = cvm.call("DescribeZoneInstanceConfigInfos", Filters=[
        {"Name": "zone", "Values": [zone]},
        {"Name": "instance-charge-type", "Values": ["POSTPAID_BY_HOUR"]}])["InstanceTypeQuotaSet"]
    return {r["Status"] for r in rows}


def total(cvm) -> int:
    return cvm.call("DescribeInstances", Limit=100)["TotalCount"]


def test_instances_spread_over_the_hosts_of_their_zone_and_run_there(fleet):
    server, agents = fleet
    cvm = server.cvm()
    ids = run(cvm, 4)
    for iid in ids:
        wait_settled(cvm, iid, "RUNNING")
    placed = [host_of(server, iid) for iid in ids]
    # Spread: the freest host each time, so two on each.
    assert sorted(placed) == ["host-a", "host-a", "host-b", "host-b"], placed
    views = host_views(server.admin)
    for h in ("host-a", "host-b"):
        assert views[h]["instances"] == 2 and views[h]["used"]["vcpus"] == 4, views[h]
        assert views[h]["capacity"] == {"vcpus": 4, "memory_mib": 16384, "disk_gib": 10240}
    # The guest lives in the agent: its view and its power state come from there.
    guest = server.admin.guest(ids[0])
    assert guest["power"] == "on", guest
    rid = cvm.call("RebootInstances", InstanceIds=ids[:2])["RequestId"]
    for iid in ids[:2]:
        nubis.assert_op(wait_settled(cvm, iid, "RUNNING", rid), "RebootInstances", rid)
    # A password change is staged in the guest the agent keeps.
    password = nubis.new_password()
    cvm.call("ResetInstancesPassword", InstanceIds=[ids[2]], Password=password, ForceStop=True)
    wait_until(lambda: server.admin.check_password(ids[2], "root", password), timeout=30)
    # A zone no agent serves stays with the control plane's own driver.
    local = run(cvm, 1, OTHER_ZONE)[0]
    wait_settled(cvm, local, "RUNNING")
    assert host_of(server, local) is None
    rid = cvm.call("TerminateInstances", InstanceIds=ids)["RequestId"]
    wait_until(lambda: all(describe(cvm, i) is None for i in ids), timeout=30)
    assert all(h["instances"] == 0 for h in host_views(server.admin).values())


def test_a_full_zone_is_each_clouds_sold_out_answer(fleet):
    server, _ = fleet
    cvm = server.cvm()
    ids = run(cvm, 4)  # 8 vCPUs: both hosts full
    for iid in ids:
        wait_settled(cvm, iid, "RUNNING")
    before = total(cvm)
    # The stock views say so: the full zone is sold out of every type, the zone no agent
    # serves is not.
    assert stock(cvm, ZONE) == {"SOLD_OUT"} and stock(cvm, OTHER_ZONE) == {"SELL"}
    expect_error("ResourceInsufficient.SpecifiedInstanceType", run, cvm, 1)
    # A batch that does not fit whole is refused whole.
    expect_error("ResourceInsufficient.SpecifiedInstanceType", run, cvm, 2)
    assert total(cvm) == before
    ecs = nubis.ecs_client(server, "legacy")
    err = nubis.expect_ecs_error(403, "OperationDenied.NoStock", ecs.call, "RunInstances",
                                 ZoneId="cn-hangzhou-h", ImageId=nubis.ali_catalog_of(ecs).linux_image,
                                 InstanceType="ecs.s5.medium4", Amount=1, Password=nubis.new_password())
    assert "sold out" in (err.message or ""), err.message
    zones = ecs.call("DescribeAvailableResource", DestinationResource="InstanceType",
                     InstanceType="ecs.s5.medium4")["AvailableZones"]["AvailableZone"]
    by_zone = {z["ZoneId"]: (z["Status"], z["StatusCategory"]) for z in zones}
    assert by_zone["cn-hangzhou-h"] == ("SoldOut", "WithoutStock"), by_zone
    assert {s for z, s in by_zone.items() if z != "cn-hangzhou-h"} == {("Available", "WithStock")}
    # Nova accepts and schedules after: the server goes to ERROR with NoValidHost's fault.
    conn = connect(server)
    created = conn.compute.create_server(name=nubis.unique_name("os"), image_id=image_id(conn),
                                         flavor_id=FLAVOR, networks="none", availability_zone="nova")
    failed = wait_status(conn, created.id, "ERROR")
    assert failed.fault["message"] == "No valid host was found. There are not enough hosts available.", failed.fault
    assert failed.fault["code"] == 500
    # Room again once an instance goes.
    rid = cvm.call("TerminateInstances", InstanceIds=[ids[0]])["RequestId"]
    wait_until(lambda: describe(cvm, ids[0]) is None, timeout=30)
    assert "SELL" in stock(cvm, ZONE)
    again = run(cvm, 1)[0]
    wait_settled(cvm, again, "RUNNING")
    assert rid


def test_a_lost_agent_shows_unknown_and_its_work_waits_until_it_returns(fleet):
    server, agents = fleet
    cvm = server.cvm()
    ids = run(cvm, 2)
    for iid in ids:
        wait_settled(cvm, iid, "RUNNING")
    by_host = {host_of(server, iid): iid for iid in ids}
    lost, kept = by_host["host-a"], by_host["host-b"]
    conn = connect(server)
    lost_uuid = server.admin.instance(lost)["id"]
    agents["host-a"].kill()
    wait_until(lambda: host_views(server.admin)["host-a"]["health"] == "lost", timeout=10)
    # Nova: the compute host stopped reporting (host_status UNKNOWN, 2.16+).
    conn.compute.default_microversion = "2.16"
    assert conn.compute.get_server(lost_uuid).host_status == "UNKNOWN"
    # Work on it is accepted and waits; the other host's instances are not held up.
    rid = cvm.call("RebootInstances", InstanceIds=[lost])["RequestId"]
    other = cvm.call("RebootInstances", InstanceIds=[kept])["RequestId"]
    nubis.assert_op(wait_settled(cvm, kept, "RUNNING", other), "RebootInstances", other)
    time.sleep(1.5)
    waiting = describe(cvm, lost)
    assert waiting["InstanceState"] == "REBOOTING" and waiting["LatestOperationState"] == "OPERATING", waiting
    # New capacity goes to the host that answers.
    new = run(cvm, 1)[0]
    wait_settled(cvm, new, "RUNNING")
    assert host_of(server, new) == "host-b"
    # The host comes back (a new process, same credential): it restores its guests from the
    # control plane and the waiting reboot finishes.
    agents["host-a"].start()
    inst = wait_settled(cvm, lost, "RUNNING", rid, timeout=30)
    nubis.assert_op(inst, "RebootInstances", rid)
    assert conn.compute.get_server(lost_uuid).host_status == "UP"
    assert host_views(server.admin)["host-a"]["health"] == "up"


def test_agent_calls_must_be_signed_by_a_registered_host(fleet):
    server, agents = fleet
    url = f"{server.base_url}/agent/v1/report"
    path = "/agent/v1/report"
    body = json.dumps({"address": agents["host-a"].url, "driver": "sim",
                       "capacity": {"vcpus": 4, "memory_mib": 16384, "disk_gib": 10240}}).encode()
    secret = agents["host-a"].secret

    def post(headers: dict, data: bytes = body, to: str = url) -> requests.Response:
        return requests.post(to, data=data, headers=headers, timeout=10)

    good = nubis.agent_headers("host-a", secret, path, body)
    assert post(good).status_code == 200
    assert post(good).status_code == 401, "a replayed report"
    for bad in (
        {},
        nubis.agent_headers("host-a", "wrong-secret", path, body),
        nubis.agent_headers("host-z", secret, path, body),
        nubis.agent_headers("host-a", secret, path, body, date_ms=int(time.time() * 1000) - 120_000),
        nubis.agent_headers("host-a", secret, "/agent/v1/guests", body),
        {**nubis.agent_headers("host-a", secret, path, body), "x-nubis-signature": "zz" * 32},
        {**nubis.agent_headers("host-a", secret, path, body), "x-nubis-host": "H" * 64},
    ):
        r = post(bad)
        assert r.status_code == 401, (bad, r.status_code, r.text)
    # Signed, but not a report: 400, nothing recorded.
    junk = b'{"address": "ftp://x", "driver": "sim", "capacity": {"vcpus": 1, "memory_mib": 1, "disk_gib": 1}}'
    assert post(nubis.agent_headers("host-a", secret, path, junk), junk).status_code == 400
    assert host_views(server.admin)["host-a"]["address"] == agents["host-a"].url
    # The agent refuses calls not signed by the control plane with its credential.
    step = b'{"vm": "00000000-0000-4000-8000-000000000000"}'
    to = f"{agents['host-a'].url}/v1/vm"
    # Signed, but not the call's shape: 400 (the body is read only after the signature).
    wrong = b'{"vm": {"uuid": "00000000-0000-4000-8000-000000000000"}}'
    assert post(nubis.agent_headers("host-a", secret, "/v1/vm", wrong), wrong, to).status_code == 400
    assert post({}, step, to).status_code == 401
    assert post(nubis.agent_headers("host-a", "wrong", "/v1/vm", step), step, to).status_code == 401
    signed = nubis.agent_headers("host-a", secret, "/v1/vm", step)
    assert post(signed, step, to).status_code == 200
    assert post(signed, step, to).status_code == 401, "a replayed call"


def test_hosts_are_registered_and_removed_through_the_admin_api(fleet):
    server, _ = fleet
    admin = server.admin

    def create(body: dict) -> requests.Response:
        return admin.session.post(admin.url("hosts"), json=body, timeout=10)

    for body, status in (
        ({"id": "Bad_Id", "zone": ZONE}, 400),
        ({"id": "-x", "zone": ZONE}, 400),
        ({"id": "x" * 64, "zone": ZONE}, 400),
        ({"id": "host-c", "zone": "mars-1"}, 400),
        ({"id": "host-a", "zone": ZONE}, 400),  # exists
        ({"id": "host-c"}, 422),
        ({"id": "host-c", "zone": ZONE, "extra": 1}, 422),
    ):
        r = create(body)
        assert r.status_code == status, (body, r.status_code, r.text)
    assert sorted(host_views(admin)) == ["host-a", "host-b"]
    # Any dialect's zone name; the secret is shown once and never listed.
    r = create({"id": "host-c", "zone": "cn-hangzhou-i"})
    assert r.status_code == 201 and len(r.json()["secret"]) == 64
    view = host_views(admin)["host-c"]
    assert view["zone"] == "local-b" and view["health"] == "new" and "secret" not in json.dumps(view)
    cvm = server.cvm()
    iid = run(cvm, 1)[0]
    busy = host_of(server, iid)
    assert admin.session.delete(admin.url(f"hosts/{busy}"), timeout=10).status_code == 409
    assert admin.session.delete(admin.url("hosts/host-c"), timeout=10).status_code == 204
    assert admin.session.delete(admin.url("hosts/host-c"), timeout=10).status_code == 404
    assert admin.session.post(admin.url("hosts"), json={"id": "h", "zone": ZONE}, auth=("x", "y"),
                              timeout=10).status_code == 401
