"""nubis on PostgreSQL (docs/postgres.md): `nubis serve` with NUBIS_DATABASE_URL keeps its
fleet in a PostgreSQL database. Each test makes a database of its own on the server named by
NUBIS_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) and drops it at the
end; an unreachable PostgreSQL fails the test (it is never skipped).

One scenario through the three dialects' own SDKs (Tencent, Alibaba, openstacksdk): create,
describe, reboot, terminate; then a restart on the same database shows the same instances,
states and operations again. Also: kill -9 under load loses no accepted operation (as
test_durability.py on SQLite), and a bad or unreachable database URL stops the start."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from conftest import catalog_of
from nubis import (
    Server,
    create_database,
    database_url,
    drop_database,
    psql,
    ali_catalog_of,
    ali_launch,
    assert_op,
    describe,
    ecs_client,
    ecs_describe,
    ecs_wait_settled,
    ecs_wait_status,
    launch,
    wait_settled,
    wait_state,
)
from test_durability import kill_under_load
from test_openstack_support import connect, create_server, wait_gone, wait_status

# The store's migrations, one file per version (crates/store/src/migrations.rs).
MIGRATIONS = Path(__file__).resolve().parent.parent / "crates" / "store" / "migrations"

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

@pytest.fixture
def database() -> str:
    """A fresh database's URL; the database is dropped after the test."""
    name = create_database()
    try:
        yield database_url(name)
    finally:
        drop_database(name)


def test_three_dialects_on_postgres_survive_a_restart(server_factory, database):
    server = server_factory(f"pg-{uuid.uuid4().hex[:8]}", NUBIS_DATABASE_URL=database,
                            NUBIS_RATE_LIMITS="off")
    admin = server.admin
    # The fleet is in PostgreSQL: the data dir holds the keys, not a SQLite database.
    assert (server.data_dir / "master.key").is_file()
    assert (server.data_dir / "admin-credentials").is_file()
    assert not (server.data_dir / "nubis.db").exists()
    assert "store: postgres" in server.log_tail()

    # Tencent: two instances, one rebooted, one terminated.
    cvm = server.cvm()
    t_keep, t_gone = launch(cvm, catalog_of(server), count=2)
    t_reboot = cvm.call("RebootInstances", InstanceIds=[t_keep.id])["RequestId"]
    wait_settled(cvm, t_keep.id, "RUNNING", t_reboot)
    cvm.call("TerminateInstances", InstanceIds=[t_gone.id])
    wait_state(cvm, t_gone.id, None, timeout=60)

    # Alibaba: the same through the official ECS client.
    ecs = ecs_client(server)
    a_keep, a_gone = ali_launch(ecs, admin, ali_catalog_of(ecs), amount=2)
    a_reboot = ecs.call("RebootInstance", InstanceId=a_keep.id)["RequestId"]
    admin.finished_by_request(a_reboot)
    ecs_wait_settled(ecs, admin, a_keep.id, "Running")
    ecs.call("DeleteInstance", InstanceId=a_gone.id, Force=True)
    ecs_wait_status(ecs, a_gone.id, None, timeout=60)

    # OpenStack: openstacksdk against Keystone and Nova.
    conn = connect(server)
    o_keep, _ = create_server(conn)
    o_gone, _ = create_server(conn)
    conn.compute.reboot_server(o_keep, "SOFT")
    wait_status(conn, o_keep.id, "ACTIVE")
    conn.compute.delete_server(o_gone)
    wait_gone(conn, o_gone.id)

    before_t = describe(cvm, t_keep.id)
    before_a = ecs_describe(ecs, a_keep.id)
    before_o = conn.compute.get_server(o_keep.id)
    before_ops = {iid: recorded(admin, iid) for iid in (t_keep.id, a_keep.id, o_keep.id)}
    for iid, ops in before_ops.items():
        # Newest first: the reboot, then the create.
        assert len(ops) == 2 and all(state == "SUCCESS" for _, _, state in ops), (iid, ops)
    assert before_ops[t_keep.id][0][0] == t_reboot
    assert before_ops[a_keep.id][0][0] == a_reboot

    # The rows are in the database.
    assert int(psql(database, "SELECT count(*) FROM instances WHERE state != 'terminated'")) == 3
    # Every migration file, in order.
    versions = sorted(int(p.name[:4]) for p in MIGRATIONS.glob("*.sql"))
    assert psql(database, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version") \
        == ",".join(map(str, versions))

    server.stop()
    server.start()

    cvm = server.cvm()
    ecs = ecs_client(server)
    conn = connect(server)
    after_t = describe(cvm, t_keep.id)
    assert after_t is not None
    assert (after_t["InstanceState"], after_t["InstanceName"]) == \
        (before_t["InstanceState"], before_t["InstanceName"])
    assert_op(after_t, "RebootInstances", t_reboot)
    assert describe(cvm, t_gone.id) is None

    after_a = ecs_describe(ecs, a_keep.id)
    assert after_a is not None
    assert (after_a["Status"], after_a["InstanceName"]) == (before_a["Status"], before_a["InstanceName"])
    assert ecs_describe(ecs, a_gone.id) is None

    after_o = conn.compute.get_server(o_keep.id)
    assert (after_o.status, after_o.name) == (before_o.status, before_o.name) == ("ACTIVE", before_o.name)
    assert conn.compute.find_server(o_gone.id, ignore_missing=True) is None

    # Operations: the same records, read back from PostgreSQL.
    for iid, ops in before_ops.items():
        assert recorded(admin, iid) == ops
    assert [o["request_id"] for o in admin.by_request(t_reboot)] == [t_reboot]
    assert [o["request_id"] for o in admin.by_request(a_reboot)] == [a_reboot]

    # And the fleet still works after the restart.
    rid = cvm.call("RebootInstances", InstanceIds=[t_keep.id])["RequestId"]
    assert_op(wait_settled(cvm, t_keep.id, "RUNNING", rid), "RebootInstances", rid)


def recorded(admin, iid: str) -> list[tuple]:
    """The instance's operations as the store records them, once none is still running."""
    return [(o["request_id"], o["action"], o["state"]) for o in admin.finished_operations(iid)]


def test_kill_9_on_postgres_loses_no_accepted_operation(server_factory, database):
    """test_durability's scenario on PostgreSQL: kill -9 under a mutating load, restart on
    the same database, and every request that got a RequestId has one operation, finished
    once, resumed from its last committed step; no instance stays locked."""
    server = server_factory(f"pg-kill-{uuid.uuid4().hex[:8]}", NUBIS_DATABASE_URL=database,
                            NUBIS_SIM_TIME_SCALE="0.2", NUBIS_RATE_LIMITS="off")
    ids = [i.id for i in launch(server.cvm(), catalog_of(server), count=10)]
    kill_under_load(server, ids, accepted=[], refused=[])


@pytest.mark.parametrize("url, messages", [
    ("mysql://root:s3cretPW@127.0.0.1/test", ["unsupported --database URL: expected postgres://"]),
    ("sqlite:///tmp/s3cretPW.db", ["unsupported --database URL: expected postgres://"]),
    # Nothing listens on port 1: refused at start, not served without its store.
    ("postgres://postgres:s3cretPW@127.0.0.1:1/test?connect_timeout=2",
     ["opening the PostgreSQL store", "store unavailable: "]),
    ("postgres://postgres:s3cretPW@127.0.0.1:5432/test?sslmode=bogus",
     ["opening the PostgreSQL store", "store unavailable: database URL: invalid connection string"]),
])
def test_a_bad_database_url_stops_the_start(nubis_bin, tmp_path, url, messages):
    server = Server("bad-db", nubis_bin, tmp_path, {"NUBIS_DATABASE_URL": url})
    with pytest.raises(RuntimeError, match="exited with 1 at start-up") as e:
        server.start(timeout=30)
    for message in messages:
        assert message in str(e.value), str(e.value)
    # The error (and the log it quotes) does not echo the URL's password.
    assert "s3cretPW" not in str(e.value)
