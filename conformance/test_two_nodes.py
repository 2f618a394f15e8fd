"""Several API nodes, one fleet (docs/postgres.md, "Several nodes, one fleet"): two real
`nubis serve` processes on one PostgreSQL database. What a client did through node A, node B
shows at once — no sleep, no polling: B catches up with the change journal before it answers.
The second node starts on a database the first one bootstrapped, with the same master.key.

The database is made on the server named by NUBIS_TEST_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/test) and dropped at the end; an unreachable PostgreSQL
fails the test (it is never skipped). Each node's driver runs only the guests it created:
every mutation here goes through node A, node B only reads."""

from __future__ import annotations

import shutil
import uuid

import pytest

from conftest import catalog_of
from nubis import (
    Server,
    ali_catalog_of,
    assert_op,
    create_database,
    database_url,
    describe,
    drop_database,
    expect_error,
    ecs_client,
    ecs_describe,
    launch,
    wait_settled,
    wait_state,
)
from test_openstack_support import connect, create_server, wait_gone, wait_status

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

# Real durations (a reboot 5 s, a create 7 s): the in-between states outlast the round trips
# between the two nodes on a loaded machine.
# What Tencent answers a reboot of a rebooting instance (its state, or its lock).
REFUSALS = ("UnsupportedOperation.InstanceStateRebooting", "MutexOperation.TaskRunning")
ENV = {"NUBIS_SIM_TIME_SCALE": "1", "NUBIS_RATE_LIMITS": "off"}


@pytest.fixture
def nodes(nubis_bin, tmp_path):
    """(A, B): A bootstrapped an empty database; B started after it, on the same database
    with A's master.key."""
    name = create_database()
    started: list[Server] = []
    try:
        env = dict(ENV, NUBIS_DATABASE_URL=database_url(name))
        a = Server(f"node-a-{uuid.uuid4().hex[:6]}", nubis_bin, tmp_path / "a", env)
        started.append(a)
        a.start()
        b = Server(f"node-b-{uuid.uuid4().hex[:6]}", nubis_bin, tmp_path / "b", env)
        shutil.copy(a.data_dir / "master.key", b.data_dir / "master.key")
        started.append(b)
        b.start()
        yield a, b
    finally:
        for s in started:
            s.stop()
        drop_database(name)


def test_a_second_node_starts_on_a_bootstrapped_database(nodes):
    a, b = nodes
    log = b.log_tail()
    assert "store: postgres" in log
    assert "duplicate key" not in log
    # The same admin account and key on both (B adopted what A stored).
    assert a.admin.get("/accounts") == b.admin.get("/accounts")
    assert a.cvm().call("DescribeInstances")["TotalCount"] == 0
    assert b.cvm().call("DescribeInstances")["TotalCount"] == 0


def test_tencent_writes_on_a_are_read_on_b_at_once(nodes):
    a, b = nodes
    cvm_a, cvm_b = a.cvm(), b.cvm()
    inst = launch(cvm_a, catalog_of(a), state=None)[0]
    # Created on A; B shows it in the next request, with the create in flight.
    seen = describe(cvm_b, inst.id)
    assert seen is not None, "B does not show A's instance"
    assert seen["InstanceState"] in ("PENDING", "RUNNING")
    wait_state(cvm_a, inst.id, "RUNNING", timeout=60)
    rid = cvm_a.call("RebootInstances", InstanceIds=[inst.id])["RequestId"]
    # A RequestId from A, its operation on B.
    seen = describe(cvm_b, inst.id)
    assert seen["InstanceState"] == "REBOOTING"
    assert_op(seen, "RebootInstances", rid, state="OPERATING")
    # B refuses what A would: the lock is the cluster's.
    on_b = expect_error(REFUSALS, cvm_b.call, "RebootInstances", InstanceIds=[inst.id])
    on_a = expect_error(REFUSALS, cvm_a.call, "RebootInstances", InstanceIds=[inst.id])
    assert on_b.code == on_a.code
    wait_settled(cvm_a, inst.id, "RUNNING", rid)
    assert_op(describe(cvm_b, inst.id), "RebootInstances", rid)
    cvm_a.call("TerminateInstances", InstanceIds=[inst.id])
    wait_state(cvm_a, inst.id, None, timeout=60)
    assert describe(cvm_b, inst.id) is None, "terminated on A, still on B"


def test_alibaba_writes_on_a_are_read_on_b_at_once(nodes):
    a, b = nodes
    ecs_a, ecs_b = ecs_client(a), ecs_client(b)
    cat = ali_catalog_of(ecs_a)
    resp = ecs_a.call("RunInstances", ZoneId=cat.zone, ImageId=cat.linux_image,
                      InstanceType=cat.instance_type, Amount=1,
                      InstanceName=f"two-{uuid.uuid4().hex[:6]}", Password="Passw0rd-Two-1")
    iid = resp["InstanceIdSets"]["InstanceIdSet"][0]
    seen = ecs_describe(ecs_b, iid)
    assert seen is not None, "B does not show A's instance"
    assert seen["Status"] in ("Pending", "Starting", "Running"), seen["Status"]
    # The operation A accepted, read through B's admin API.
    rid = resp["RequestId"]
    ops = b.admin.by_request(rid)
    assert [o["action"] for o in ops] == ["create"], ops


def test_openstack_writes_on_a_are_read_on_b_at_once(nodes):
    a, b = nodes
    conn_a, conn_b = connect(a), connect(b)
    server, _ = create_server(conn_a)
    assert conn_b.compute.get_server(server.id).status == "ACTIVE"
    conn_a.compute.reboot_server(server, "SOFT")
    assert conn_b.compute.get_server(server.id).status == "REBOOT"
    wait_status(conn_a, server.id, "ACTIVE")
    conn_a.compute.delete_server(server)
    wait_gone(conn_a, server.id)
    assert conn_b.compute.find_server(server.id, ignore_missing=True) is None
