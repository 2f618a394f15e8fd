"""Nova's smaller read APIs (issue 15): server addresses, the server password, diagnostics,
the extension list, the legacy v2 document, the instance usage audit log and the deprecated
os-hosts — through openstacksdk and python-novaclient where they still call them, by hand
(with the SDK's token) where no client does any more (os-hosts was removed from novaclient
with Nova 2.43)."""

from __future__ import annotations

import urllib.parse

import openstack
import pytest

from test_openstack_support import connect, create_server, expect_http, fault_of, raw
from test_openstack_novaclient import nova

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

OLD = {"X-OpenStack-Nova-API-Version": "2.42"}


@pytest.fixture(scope="module")
def info_server(server_factory):
    return server_factory("os-info", NUBIS_SIM_TIME_SCALE="0.05", NUBIS_RATE_LIMITS="off")


@pytest.fixture(scope="module")
def member(info_server):
    info_server.admin.post("/keystone-users", {"name": "infomember", "password": "Member@2026pw",
                                               "roles": ["member"]})
    return openstack.connect(auth_url=f"{info_server.base_url}/identity/v3", username="infomember",
                             password="Member@2026pw", project_name="admin",
                             user_domain_name="Default", project_domain_name="Default",
                             load_yaml_config=False, load_envvars=False)


def test_addresses_password_and_diagnostics(info_server, member):
    conn = connect(info_server)
    srv, _ = create_server(conn)
    try:
        nc = nova(info_server)
        ips = nc.servers.ips(srv.id)
        shown = conn.compute.get_server(srv.id)
        assert ips == {net: [{"version": a["version"], "addr": a["addr"]} for a in addrs]
                       for net, addrs in shown.addresses.items()}
        (net, addrs), = ips.items()
        r = raw(info_server, conn, "GET", f"/compute/v2.1/servers/{srv.id}/ips/{net}")
        assert r.status_code == 200 and r.json() == {net: addrs}
        r = raw(info_server, conn, "GET", f"/compute/v2.1/servers/{srv.id}/ips/nonet")
        assert fault_of(r) == (404, "itemNotFound", "Instance is not a member of specified network")
        r = raw(info_server, conn, "GET", "/compute/v2.1/servers/00000000-0000-0000-0000-000000000000/ips")
        assert fault_of(r)[0] == 404

        # The guest posts no password: empty, and clearing it is a no-op (member may).
        assert conn.compute.get_server_password(srv.id) == ""
        assert nc.servers.get_password(srv.id) == ""
        member.compute.clear_server_password(srv.id)
        assert member.compute.get_server_password(srv.id) == ""

        # Diagnostics: 2.48's standard form through the SDK; the flat form before it.
        d = conn.compute.get_server_diagnostics(srv.id)
        assert (d.state, d.driver, d.num_cpus, d.num_disks, d.num_nics) == ("running", "libvirt", 2, 1, 1)
        assert d.memory_details == {"maximum": 4096, "used": None}
        assert d.nic_details[0]["mac_address"] == shown.addresses[net][0]["OS-EXT-IPS-MAC:mac_addr"]
        old = raw(info_server, conn, "GET", f"/compute/v2.1/servers/{srv.id}/diagnostics",
                  headers={"X-OpenStack-Nova-API-Version": "2.47"}).json()
        assert old["memory"] == 4096 * 1024 and set(old) >= {"cpu0_time", "cpu1_time", "vda_read", "vda_capacity"}
        e = expect_http(403, member.compute.get_server_diagnostics, srv.id)
        assert "os_compute_api:os-server-diagnostics" in str(e)

        conn.compute.stop_server(srv.id)
        conn.compute.wait_for_server(srv, status="SHUTOFF", wait=60)
        assert conn.compute.get_server_diagnostics(srv.id).state == "shutdown"
    finally:
        conn.compute.delete_server(srv.id)


def test_extensions_and_the_v2_document(info_server):
    conn = connect(info_server)
    aliases = {e.alias for e in conn.compute.extensions()}
    assert {"os-hosts", "os-consoles", "os-server-password", "os-instance_usage_audit_log"} <= aliases
    assert conn.compute.find_extension("os-consoles").alias == "os-consoles"
    r = raw(info_server, conn, "GET", "/compute/v2.1/extensions/os-nothing")
    assert fault_of(r)[0] == 404
    # Every version the list names has a live document whose self link is the list's.
    versions = raw(info_server, conn, "GET", "/compute", token="").json()["versions"]
    for v in versions:
        link = next(x["href"] for x in v["links"] if x["rel"] == "self")
        doc = raw(info_server, conn, "GET", urllib.parse.urlparse(link).path, token="")
        assert doc.status_code == 200, link
        assert [x for x in doc.json()["version"]["links"] if x["rel"] == "self"] == \
            [x for x in v["links"] if x["rel"] == "self"]
    r = raw(info_server, conn, "GET", "/compute/v2/servers")
    assert r.status_code == 404


def test_instance_usage_audit_log(info_server, member):
    nc = nova(info_server)
    log = nc.instance_usage_audit_log.get()
    assert log.num_hosts == len(log.hosts_not_run) and log.num_hosts_done == 0
    assert log.overall_status == f"0 of {log.num_hosts} hosts done. 0 errors."
    one = nc.instance_usage_audit_log.get(before="2026-03-15 10:00:00")
    assert (one.period_beginning, one.period_ending) == ("2026-02-01 00:00:00", "2026-03-01 00:00:00")
    conn = connect(info_server)
    r = raw(info_server, conn, "GET", "/compute/v2.1/os-instance_usage_audit_log/"
            + urllib.parse.quote("2026-13-45 10:00:00"))
    assert fault_of(r) == (400, "badRequest", "Invalid timestamp for date 2026-13-45 10:00:00")
    r = raw(info_server, member, "GET", "/compute/v2.1/os-instance_usage_audit_log")
    assert fault_of(r)[0] == 403


def test_os_hosts_until_2_42(info_server, member):
    conn = connect(info_server)

    def call(method, path, body=None, who=conn, version=OLD):
        return raw(info_server, who, method, "/compute/v2.1/os-hosts" + path, json_body=body,
                   headers=version)

    hosts = call("GET", "").json()["hosts"]
    compute = [h for h in hosts if h["service"] == "compute"]
    assert {h["service"] for h in hosts} == {"compute", "scheduler", "conductor"}
    assert {h["zone"] for h in hosts if h["service"] != "compute"} == {"internal"}
    name, zone = compute[0]["host_name"], compute[0]["zone"]
    assert compute[0] in call("GET", f"?zone={zone}").json()["hosts"]
    assert call("GET", "?zone=").json()["hosts"] == hosts
    assert call("GET", "?zone=xxx").json()["hosts"] == []

    srv, _ = create_server(conn, availability_zone=zone)
    try:
        rows = call("GET", f"/{name}").json()["host"]
        by = {r["resource"]["project"]: r["resource"] for r in rows}
        assert by["(total)"]["host"] == name and by["(used_now)"]["cpu"] == 2
        assert by[srv.project_id]["memory_mb"] == 4096
    finally:
        conn.compute.delete_server(srv.id)
    assert fault_of(call("GET", "/nonexistent_hostname"))[0] == 404
    assert fault_of(call("GET", "/nubis-control"))[0] == 404

    # status enables/disables the host's compute service, as os-services shows.
    assert call("PUT", f"/{name}", {"status": "disable"}).json() == {"host": name, "status": "disabled"}
    svc = next(s for s in conn.compute.services() if s.host == name and s.binary == "nova-compute")
    assert svc.status == "disabled"
    assert call("PUT", f"/{name}", {"status": "ENABLE"}).json() == {"host": name, "status": "enabled"}
    # The body before the host; maintenance mode and power actions are not implemented (501).
    for body in ({"status": "invalid", "maintenance_mode": "enable"},
                 {"status": "enable", "maintenance_mode": "invalid"}, {}, {"extra": 1}, [1]):
        assert fault_of(call("PUT", "/nonexistent_hostname", body))[0] == 400, body
    assert fault_of(call("PUT", "/nonexistent_hostname", {"status": "enable"}))[0] == 404
    assert fault_of(call("PUT", f"/{name}", {"maintenance_mode": "enable"}))[:2] == (501, "notImplemented")
    for action in ("startup", "shutdown", "reboot"):
        assert fault_of(call("GET", f"/nonexistent_hostname/{action}"))[0] == 404
        assert fault_of(call("GET", f"/{name}/{action}"))[0] == 501
        assert fault_of(call("GET", f"/{name}/{action}", who=member))[0] == 403
    assert fault_of(call("GET", "", who=member))[0] == 403
    assert fault_of(call("PUT", f"/{name}", {"status": "enable"}, who=member))[0] == 403
    # Gone from 2.43.
    assert fault_of(call("GET", "", version={"X-OpenStack-Nova-API-Version": "2.43"}))[0] == 404
