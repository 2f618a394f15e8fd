"""Nova's operator views (docs/nova-operator.md) through the official clients, unchanged:
openstacksdk (which negotiates hypervisors at 2.88, services at 2.69, aggregates at 2.81 and
usage at 2.75) and the `openstack` CLI. One server of its own, since aggregates and service
states are fleet-wide and durable."""

from __future__ import annotations

import datetime

import openstack
import pytest

from nubis import unique_name
from test_openstack_cli import cli
from test_openstack_support import connect, create_server, expect_http, wait_gone

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

HOSTS = {"nubis-nova", "nubis-nova-b", "nubis-edge"}


@pytest.fixture(scope="module")
def op_server(server_factory):
    return server_factory("os-operator", NUBIS_SIM_TIME_SCALE="0.05", NUBIS_RATE_LIMITS="off")


def test_sdk_hypervisors_services_zones(op_server):
    conn = connect(op_server)
    srv, _ = create_server(conn, availability_zone="nova-b")
    try:
        hypers = {h.name: h for h in conn.compute.hypervisors(details=True)}
        assert set(hypers) == HOSTS
        assert all(h.state == "up" and h.status == "enabled" for h in hypers.values())
        assert hypers["nubis-nova-b"].service_details["host"] == "nubis-nova-b"
        # The server is on its zone's host, and the hypervisor lists it (2.53+ with_servers).
        shown = conn.compute.get_server(srv.id)
        assert shown.compute_host == "nubis-nova-b"
        assert shown.hypervisor_hostname == "nubis-nova-b"
        with_servers = {h.name: h for h in conn.compute.hypervisors(with_servers=True)}
        assert [s["uuid"] for s in with_servers["nubis-nova-b"].servers] == [srv.id]
        # At 2.88 (the SDK's) the uptime is in the hypervisor's view; /uptime is gone.
        assert " up " in conn.compute.get_hypervisor(hypers["nubis-nova"].id).uptime

        services = list(conn.compute.services())
        assert {(s.binary, s.host) for s in services} >= {("nova-compute", h) for h in HOSTS}
        assert {s.availability_zone for s in services if s.binary == "nova-scheduler"} == {"internal"}
        edge = next(s for s in services if s.host == "nubis-edge")
        disabled = conn.compute.disable_service(edge, disabled_reason="maintenance")
        assert (disabled.status, disabled.disabled_reason) == ("disabled", "maintenance")
        zones = {z.name: z for z in conn.compute.availability_zones(details=True)}
        assert zones["edge"].hosts["nubis-edge"]["nova-compute"]["active"] is False
        assert zones["edge"].state["available"] is False
        assert set(zones["internal"].hosts["nubis-control"]) == {"nova-scheduler", "nova-conductor"}
        assert conn.compute.get_hypervisor(hypers["nubis-edge"].id).status == "disabled"
        down = conn.compute.update_service_forced_down(edge, forced=True)
        assert down.is_forced_down is True
        assert conn.compute.get_hypervisor(hypers["nubis-edge"].id).state == "down"
        conn.compute.update_service_forced_down(edge, forced=False)
        enabled = conn.compute.enable_service(edge)
        assert enabled.status == "enabled" and enabled.disabled_reason is None
        # Only nova-compute can be updated.
        sched = next(s for s in services if s.binary == "nova-scheduler")
        e = expect_http(400, conn.compute.disable_service, sched)
        assert "Only nova-compute services can be updated" in str(e)
        # A compute service that hosts a server is not deleted.
        e = expect_http(409, conn.compute.delete_service, next(s for s in services if s.host == "nubis-nova-b"))
        assert "hosting instances" in str(e)

        # Usage of the project, from the server's launch.
        start = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(days=1)
        end = start + datetime.timedelta(days=2)
        usage = conn.compute.get_usage(shown.project_id, start, end)
        assert srv.id in {u["instance_id"] for u in usage.server_usages}
        assert usage.total_hours >= 0
        listed = list(conn.compute.usages(start, end, detailed=True))
        assert shown.project_id in {u.project_id for u in listed}
    finally:
        conn.compute.delete_server(srv.id)
        wait_gone(conn, srv.id)


def test_sdk_aggregates(op_server):
    conn = connect(op_server)
    name = unique_name("agg")
    agg = conn.compute.create_aggregate(name=name, availability_zone="az-sdk")
    try:
        assert agg.availability_zone == "az-sdk" and agg.uuid
        expect_http(409, conn.compute.create_aggregate, name=name)
        agg = conn.compute.add_host_to_aggregate(agg, "nubis-nova")
        assert agg.hosts == ["nubis-nova"]
        e = expect_http(404, conn.compute.add_host_to_aggregate, agg, "no-such-host")
        assert "Compute host no-such-host could not be found." in str(e)
        expect_http(409, conn.compute.add_host_to_aggregate, agg, "nubis-nova")
        agg = conn.compute.set_aggregate_metadata(agg, {"ssd": "true"})
        assert agg.metadata == {"availability_zone": "az-sdk", "ssd": "true"}
        zones = {z.name for z in conn.compute.availability_zones()}
        assert "az-sdk" in zones
        svc = next(s for s in conn.compute.services(host="nubis-nova"))
        assert svc.availability_zone == "az-sdk"
        expect_http(400, conn.compute.delete_aggregate, agg, ignore_missing=False)
        agg = conn.compute.update_aggregate(agg, name=name + "-2")
        assert agg.name == name + "-2"
        agg = conn.compute.remove_host_from_aggregate(agg, "nubis-nova")
        assert agg.hosts == []
        assert agg.id in {a.id for a in conn.compute.aggregates()}
    finally:
        conn.compute.delete_aggregate(agg, ignore_missing=True)
    expect_http(404, conn.compute.get_aggregate, agg.id)


def test_a_member_is_refused_403(op_server):
    op_server.admin.post("/keystone-users", {"name": "opmember", "password": "Member@2026pw",
                                             "roles": ["member"]})
    member = openstack.connect(auth_url=f"{op_server.base_url}/identity/v3", username="opmember",
                               password="Member@2026pw", project_name="admin",
                               user_domain_name="Default", project_domain_name="Default",
                               load_yaml_config=False, load_envvars=False)
    for call in (lambda: list(member.compute.hypervisors()),
                 lambda: list(member.compute.services()),
                 lambda: list(member.compute.aggregates()),
                 lambda: member.compute.create_aggregate(name="nope"),
                 lambda: list(member.compute.availability_zones(details=True))):
        e = expect_http(403, call)
        assert "Policy doesn't allow os_compute_api:" in str(e)


def test_cli_operator_commands(op_server):
    hypers = cli(op_server, "hypervisor", "list", "-f", "json")
    assert {h["Hypervisor Hostname"] for h in hypers} == HOSTS
    services = cli(op_server, "compute", "service", "list", "-f", "json")
    assert {s["Host"] for s in services if s["Binary"] == "nova-compute"} == HOSTS
    cli(op_server, "compute", "service", "set", "--disable", "--disable-reason", "cli",
        "nubis-edge", "nova-compute")
    services = cli(op_server, "compute", "service", "list", "--host", "nubis-edge", "-f", "json")
    assert [s["Status"] for s in services] == ["disabled"]
    cli(op_server, "compute", "service", "set", "--enable", "nubis-edge", "nova-compute")
    name = unique_name("cliagg")
    created = cli(op_server, "aggregate", "create", "--zone", "az-cli", "--property", "k=v",
                  "-f", "json", name)
    assert created["name"] == name and created["availability_zone"] == "az-cli"
    cli(op_server, "aggregate", "add", "host", name, "nubis-nova-b")
    shown = cli(op_server, "aggregate", "show", "-f", "json", name)
    assert shown["hosts"] == ["nubis-nova-b"]
    zones = cli(op_server, "availability", "zone", "list", "--compute", "--long", "-f", "json")
    assert any(z["Zone Name"] == "az-cli" and z["Host Name"] == "nubis-nova-b" for z in zones)
    cli(op_server, "aggregate", "remove", "host", name, "nubis-nova-b")
    cli(op_server, "aggregate", "delete", name)
    usage = cli(op_server, "usage", "list", "-f", "json")
    assert isinstance(usage, list)
