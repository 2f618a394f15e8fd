"""Issue 15: a change of instance type through the official SDKs of each dialect (docs/resize.md).

- Tencent ResetInstancesType (tencentcloud-sdk-python): one instance per call, stopped or
  running with ForceStop, started afterwards; LatestOperation ResetInstancesType.
- Alibaba ModifyInstanceSpec (aliyun-python-sdk-ecs, alibabacloud_ecs20140526): Stopped only,
  stays Stopped; DryRun.
- Nova resize / confirmResize / revertResize (openstacksdk): VERIFY_RESIZE with the power
  the server had, the previous flavor back on revert.

The new type is seen in Describe*/the server's flavor, and by the guest model (the admin
API's guest view: vcpus / memory_mib at its last boot)."""

from __future__ import annotations

import pytest
import requests

from nubis import (
    ALI_GENERATIONS,
    ali_catalog_of,
    ali_launch,
    assert_op,
    describe,
    ecs_client,
    expect_ecs_error,
    expect_error,
    latest,
    launch,
    unique_name,
    wait_settled,
    wait_until,
)
from conftest import catalog_of
from test_openstack_support import (  # noqa: F401 (fixtures)
    conn,
    fault_of,
    os_server,
    raw,
    wait_status,
)

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def reset_type(cvm, ids, instance_type, **params) -> str:
    return cvm.call("ResetInstancesType", InstanceIds=ids, InstanceType=instance_type, **params)["RequestId"]


def hardware(admin, iid) -> tuple[int, int]:
    g = admin.guest(iid)
    return g["vcpus"], g["memory_mib"]


class Accounts:
    """The admin API's accounts, keys and quotas (an account of its own keeps a quota from
    limiting other tests)."""

    def __init__(self, server):
        self.base = f"{server.base_url}/admin/v1"
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.auth = server.creds

    def do(self, method: str, path: str, body=None, want: int = 200):
        r = self.session.request(method, f"{self.base}/{path}", json=body, timeout=30)
        assert r.status_code == want, f"{method} {path} {body}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def new(self) -> tuple[str, str, str]:
        name = unique_name("rs").lower().replace("_", "-")
        self.do("POST", "accounts", {"name": name}, 201)
        k = self.do("POST", "access-keys", {"account": name}, 201)["access_key"]
        return name, k["id"], k["secret"]

    def quota(self, account: str, **limits) -> None:
        self.do("PUT", f"accounts/{account}/quotas", limits)

    def usage(self, account: str) -> dict:
        return self.do("GET", f"accounts/{account}/quotas")["quota"]["usage"]


# -- Tencent -----------------------------------------------------------------------------


def test_tencent_stopped_instance_is_resized_and_started(cvm, admin, stopped):
    rid = reset_type(cvm, [stopped.id], "S5.LARGE8")
    inst = describe(cvm, stopped.id)
    assert (inst["InstanceType"], inst["LatestOperation"], inst["LatestOperationState"]) == (
        "S5.LARGE8", "ResetInstancesType", "OPERATING")
    # "Once the change is done the instance shows as running": started whatever it was.
    inst = wait_settled(cvm, stopped.id, "RUNNING", rid)
    assert_op(inst, "ResetInstancesType", rid)
    assert (inst["InstanceType"], inst["CPU"], inst["Memory"]) == ("S5.LARGE8", 4, 8)
    assert hardware(admin, stopped.id) == (4, 8192)
    assert admin.guest(stopped.id)["resized_to"] == "S5.LARGE8"


@pytest.mark.parametrize("force", [None, False], ids=["no-forcestop", "forcestop-false"])
def test_tencent_running_instance_needs_force_stop(cvm, running, force):
    before = latest(cvm, running.id)
    params = {} if force is None else {"ForceStop": force}
    expect_error("UnsupportedOperation.InstanceStateRunning", reset_type, cvm, [running.id], "S5.SMALL2",
                 **params)
    assert latest(cvm, running.id) == before
    assert describe(cvm, running.id)["InstanceType"] == "S5.MEDIUM4"


def test_tencent_force_stop_stops_resizes_and_starts(cvm, admin, running):
    restarts = len(admin.guest(running.id)["restarts"])
    rid = reset_type(cvm, [running.id], "S5.SMALL2", ForceStop=True)
    inst = wait_settled(cvm, running.id, "RUNNING", rid)
    assert_op(inst, "ResetInstancesType", rid)
    assert (inst["InstanceType"], inst["CPU"], inst["Memory"]) == ("S5.SMALL2", 1, 2)
    g = admin.guest(running.id)
    assert g["power"] == "on" and len(g["restarts"]) > restarts
    assert (g["vcpus"], g["memory_mib"]) == (1, 2048)


def test_tencent_refusals(cvm, stopped, make_instance):
    iid = stopped.id
    expect_error("MissingParameter", cvm.call, "ResetInstancesType", InstanceIds=[iid])
    expect_error("MissingParameter", cvm.call, "ResetInstancesType", InstanceType="S5.SMALL2")
    expect_error("UnknownParameter", cvm.raw, "ResetInstancesType",
                 {"InstanceIds": [iid], "InstanceType": "S5.SMALL2", "DryRun": True})
    # The same type; one the catalogue does not have; one that is not a type name.
    e = expect_error("InvalidParameterValue", reset_type, cvm, [iid], "S5.MEDIUM4")
    assert "S5.MEDIUM4" in e.message
    expect_error("InvalidInstanceType.Malformed", reset_type, cvm, [iid], "S5.NOPE64")
    expect_error("InvalidInstanceType.Malformed", reset_type, cvm, [iid], "S5 LARGE8;")
    expect_error("InvalidInstanceType.Malformed", reset_type, cvm, [iid], "S" * 65)
    # Special-purpose, bare-metal and ARM types are not reached by a resize.
    for t in ("HCCS5.MEDIUM4", "BMS5.LARGE8", "SR1.MEDIUM4"):
        expect_error("InvalidParameter.InstanceTypeNotSupport", reset_type, cvm, [iid], t)
    # One instance per call, as documented.
    other = make_instance(state="STOPPED")
    expect_error("InvalidParameterValue.LimitExceeded", reset_type, cvm, [iid, other.id], "S5.SMALL2")
    expect_error("InvalidInstanceId.NotFound", reset_type, cvm, ["ins-00000000"], "S5.SMALL2")
    assert describe(cvm, iid)["InstanceType"] == "S5.MEDIUM4"
    assert describe(cvm, iid)["InstanceState"] == "STOPPED"


def test_tencent_resize_during_an_operation_is_refused(slow_cvm, slow_make_instance):
    inst = slow_make_instance(state="STOPPED")
    rid = reset_type(slow_cvm, [inst.id], "S5.LARGE8")
    expect_error(("OperationDenied.InstanceOperationInProgress", "MutexOperation.TaskRunning"),
                 reset_type, slow_cvm, [inst.id], "S5.SMALL2")
    expect_error(("OperationDenied.InstanceOperationInProgress", "UnsupportedOperation.InstanceStateStopped"),
                 slow_cvm.call, "StartInstances", InstanceIds=[inst.id])
    wait_settled(slow_cvm, inst.id, "RUNNING", rid)


def test_tencent_quota_counts_the_vcpu_and_memory_difference(server):
    accounts = Accounts(server)
    acct, key_id, secret = accounts.new()
    cvm = server.cvm(secret_id=key_id, secret_key=secret, retry=False)
    inst = launch(cvm, catalog_of(server), state="STOPPED")[0]
    used = accounts.usage(acct)
    assert (used["cores"], used["ram_mib"]) == (2, 4096)
    accounts.quota(acct, cores=3)
    e = expect_error("LimitExceeded.InstanceQuota", reset_type, cvm, [inst.id], "S5.LARGE8")
    assert "cores" in e.message
    assert describe(cvm, inst.id)["InstanceType"] == "S5.MEDIUM4"
    # A smaller type always fits; the quota then holds what the new type takes.
    rid = reset_type(cvm, [inst.id], "S5.SMALL2")
    wait_settled(cvm, inst.id, "RUNNING", rid)
    used = accounts.usage(acct)
    assert (used["cores"], used["ram_mib"]) == (1, 2048)
    accounts.quota(acct, cores=4, ram_mib=8192)
    rid = reset_type(cvm, [inst.id], "S5.LARGE8", ForceStop=True)
    assert wait_settled(cvm, inst.id, "RUNNING", rid)["InstanceType"] == "S5.LARGE8"


# -- Alibaba -----------------------------------------------------------------------------


@pytest.fixture(params=ALI_GENERATIONS)
def any_ecs(server, request):
    return ecs_client(server, request.param)


def ali_describe(ecs, iid) -> dict:
    got = ecs.call("DescribeInstances", InstanceIds=f'["{iid}"]')["Instances"]["Instance"]
    assert len(got) == 1, got
    return got[0]


def test_aliyun_stopped_instance_changes_type_and_stays_stopped(server, admin, any_ecs, ali_stopped):
    ecs, iid = any_ecs, ali_stopped.id
    r = ecs.call("ModifyInstanceSpec", InstanceId=iid, InstanceType="ecs.s5.large8", ClientToken=unique_name("t"))
    assert r["RequestId"]
    i = ali_describe(ecs, iid)
    assert (i["InstanceType"], i["Cpu"], i["Memory"], i["Status"]) == ("ecs.s5.large8", 4, 8192, "Stopped")
    wait_until(lambda: admin.guest(iid)["resized_to"] == "S5.LARGE8", 30, 0.05, "the guest to move")
    assert ali_describe(ecs, iid)["Status"] == "Stopped"
    # Its new vCPUs and memory at its next boot.
    ecs.call("StartInstance", InstanceId=iid)
    wait_until(lambda: ali_describe(ecs, iid)["Status"] == "Running", 60, 0.05, "Running")
    assert hardware(admin, iid) == (4, 8192)


def test_aliyun_refusals(any_ecs, ali_running, ali_stopped):
    ecs = any_ecs
    expect_ecs_error(403, "IncorrectInstanceStatus", ecs.call, "ModifyInstanceSpec",
                     InstanceId=ali_running.id, InstanceType="ecs.s5.large8")
    iid = ali_stopped.id
    kept = ali_describe(ecs, iid)["InstanceType"]
    expect_ecs_error(400, "DryRunOperation", ecs.call, "ModifyInstanceSpec", InstanceId=iid,
                     InstanceType="ecs.s5.large8", DryRun=True)
    for t in (kept, "ecs.s5.nope", "ecs.hccs5.medium4", "ecs.ebms5.large8", "x" * 65):
        expect_ecs_error(400, "InvalidInstanceType.ValueNotSupported", ecs.call, "ModifyInstanceSpec",
                         InstanceId=iid, InstanceType=t)
    expect_ecs_error(400, "MissingParameter", ecs.call, "ModifyInstanceSpec", InstanceId=iid)
    expect_ecs_error(403, "OperationDenied", ecs.call, "ModifyInstanceSpec", InstanceId=iid,
                     InternetMaxBandwidthOut=10)
    expect_ecs_error(404, "InvalidInstanceId.NotFound", ecs.call, "ModifyInstanceSpec",
                     InstanceId="i-00000000000000000000", InstanceType="ecs.s5.large8")
    assert ali_describe(ecs, iid)["InstanceType"] == kept
    # The dry run of an admissible change is refused the same way a real one would be.
    expect_ecs_error(403, "IncorrectInstanceStatus", ecs.call, "ModifyInstanceSpec",
                     InstanceId=ali_running.id, InstanceType="ecs.s5.large8", DryRun=True)


def test_aliyun_quota(server):
    accounts = Accounts(server)
    acct, key_id, secret = accounts.new()
    ecs = ecs_client(server, "legacy", access_key_id=key_id, access_key_secret=secret, retry=False)
    inst = ali_launch(ecs, server.admin, ali_catalog_of(ecs), status="Stopped")[0]
    used = accounts.usage(acct)
    accounts.quota(acct, ram_mib=used["ram_mib"])
    expect_ecs_error(403, "QuotaExceed.ElasticQuota", ecs.call, "ModifyInstanceSpec", InstanceId=inst.id,
                     InstanceType="ecs.s5.large8")


# -- Nova --------------------------------------------------------------------------------


def flavor_of(server, conn, sid) -> str:
    r = raw(server, conn, "GET", f"/compute/v2.1/servers/{sid}", headers={"OpenStack-API-Version": "compute 2.47"})
    return r.json()["server"]["flavor"]["original_name"]


def resize(server, conn, sid, body):
    return raw(server, conn, "POST", f"/compute/v2.1/servers/{sid}/action", json_body=body)


def test_nova_resize_then_confirm(server, admin, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.resize_server(srv, "S5.LARGE8")
    s = wait_status(conn, srv.id, "VERIFY_RESIZE")
    assert (s.vm_state, s.power_state) == ("resized", 1)
    assert flavor_of(server, conn, srv.id) == "S5.LARGE8"
    assert hardware(admin, srv.id) == (4, 8192)
    conn.compute.confirm_server_resize(srv)
    s = wait_status(conn, srv.id, "ACTIVE")
    assert flavor_of(server, conn, srv.id) == "S5.LARGE8"
    actions = [a.action for a in conn.compute.server_actions(srv.id)]
    assert actions[:2] == ["confirmResize", "resize"], actions


def test_nova_resize_then_revert(server, admin, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.resize_server(srv, "S5.SMALL2")
    wait_status(conn, srv.id, "VERIFY_RESIZE")
    assert hardware(admin, srv.id) == (1, 2048)
    conn.compute.revert_server_resize(srv)
    wait_status(conn, srv.id, "ACTIVE")
    assert flavor_of(server, conn, srv.id) == "S5.MEDIUM4"
    assert hardware(admin, srv.id) == (2, 4096)


def test_nova_resize_of_a_stopped_server_stays_stopped(server, admin, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.stop_server(srv)
    wait_status(conn, srv.id, "SHUTOFF")
    conn.compute.resize_server(srv, "S5.LARGE8")
    s = wait_status(conn, srv.id, "VERIFY_RESIZE")
    assert (s.vm_state, s.power_state) == ("resized", 4)
    assert admin.guest(srv.id)["power"] == "off"
    conn.compute.confirm_server_resize(srv)
    wait_status(conn, srv.id, "SHUTOFF")
    conn.compute.start_server(srv)
    wait_status(conn, srv.id, "ACTIVE")
    assert hardware(admin, srv.id) == (4, 8192)


def test_nova_faults(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    status, kind, message = fault_of(resize(server, conn, srv.id, {"resize": {"flavorRef": "S5.MEDIUM4"}}))
    assert (status, kind, message) == (400, "badRequest", "When resizing, instances must change flavor!")
    status, kind, message = fault_of(resize(server, conn, srv.id, {"resize": {"flavorRef": "nope"}}))
    assert (status, kind, message) == (400, "badRequest", "Unable to locate requested flavor.")
    assert fault_of(resize(server, conn, srv.id, {"resize": {}}))[:2] == (400, "badRequest")
    assert fault_of(resize(server, conn, srv.id, {"resize": {"flavorRef": "S5.LARGE8", "x": 1}}))[:2] == (
        400, "badRequest")
    assert fault_of(resize(server, conn, srv.id, {"resize": {"flavorRef": "S5.LARGE8",
                                                            "OS-DCF:diskConfig": "FOO"}}))[:2] == (400, "badRequest")
    # Confirm and revert only in VERIFY_RESIZE: 409 with Nova's message.
    for action in ("confirmResize", "revertResize"):
        status, kind, message = fault_of(resize(server, conn, srv.id, {action: None}))
        assert (status, kind) == (409, "conflictingRequest"), message
        assert message == f"Cannot '{action}' instance {srv.id} while it is in vm_state active"
    r = resize(server, conn, srv.id, {"resize": {"flavorRef": "S5.LARGE8", "OS-DCF:diskConfig": "AUTO"}})
    assert r.status_code == 202, r.text
    wait_status(conn, srv.id, "VERIFY_RESIZE")
    status, kind, message = fault_of(resize(server, conn, srv.id, {"resize": {"flavorRef": "S5.SMALL2"}}))
    assert (status, kind, message) == (
        409, "conflictingRequest", f"Cannot 'resize' instance {srv.id} while it is in vm_state resized")
    for body in ({"os-stop": None}, {"reboot": {"type": "HARD"}}):
        assert fault_of(resize(server, conn, srv.id, body))[:2] == (409, "conflictingRequest"), body
    r = resize(server, conn, srv.id, {"confirmResize": None})
    assert r.status_code == 204, r.text
    wait_status(conn, srv.id, "ACTIVE")


def test_verify_resize_seen_through_the_other_dialects(server, conn, cvm, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.resize_server(srv, "S5.LARGE8")
    wait_status(conn, srv.id, "VERIFY_RESIZE")
    got = cvm.call("DescribeInstances", Filters=[{"Name": "uuid", "Values": [srv.id]}])["InstanceSet"]
    assert len(got) == 1
    assert (got[0]["InstanceState"], got[0]["InstanceType"]) == ("RUNNING", "S5.LARGE8")
    # Nothing but a confirmation, a revert or a delete: Tencent's code for the state it shows.
    expect_error("UnsupportedOperation.InstanceStateRunning", cvm.call, "StopInstances",
                 InstanceIds=[got[0]["InstanceId"]])
    conn.compute.revert_server_resize(srv)
    wait_status(conn, srv.id, "ACTIVE")


def test_nova_resize_over_the_quota_is_403(server_factory):
    """Own server: the bootstrap admin's project quota is changed here."""
    from test_openstack_support import connect, create_server, expect_http

    qs = server_factory("resize-quota", NUBIS_RATE_LIMITS="off")
    conn = connect(qs)  # noqa: F811
    project = conn.current_project_id
    srv, _ = create_server(conn)  # S5.MEDIUM4: 2 vCPUs
    used = conn.compute.get_quota_set(project, usage=True).usage["cores"]
    conn.compute.update_quota_set(project, cores=used + 1)
    e = expect_http(403, conn.compute.resize_server, srv, "S5.LARGE8")
    assert f"Quota exceeded for cores: Requested 2, but already used {used} of {used + 1} cores" in str(e)
    assert conn.compute.get_server(srv.id).status == "ACTIVE"
    # Down always fits; back up on revert is checked again (the old flavor is larger).
    conn.compute.resize_server(srv, "S5.SMALL2")
    wait_status(conn, srv.id, "VERIFY_RESIZE")
    conn.compute.update_quota_set(project, cores=used - 1, force=True)
    e = expect_http(403, conn.compute.revert_server_resize, srv)
    assert "Quota exceeded for cores: Requested 1" in str(e)
    conn.compute.confirm_server_resize(srv)
    wait_status(conn, srv.id, "ACTIVE")
