"""Cluster-wide state (docs/postgres.md, "Cluster-wide state"; issue 14 item 4): two real
`nubis serve` processes on one PostgreSQL database share signature nonces, ClientToken
claims, rate limits and Keystone tokens.

Each test makes a database of its own on the server named by NUBIS_TEST_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/test) and drops it at the end; an unreachable PostgreSQL
fails the test (never skipped). The second node gets the first's `master.key` (the stored
secrets are sealed with it) and starts once the first has bootstrapped the database.

These tests depend only on the state shared here, not on a node seeing instances another node
created (the journal's catch-up): ClientToken instances are counted in the store and through
the answers, never by describing them on the other node."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import catalog_of
from nubis import (
    ADMIN_PASSWORD,
    Server,
    ali_catalog_of,
    ali_error_of,
    create_database,
    database_url,
    drop_database,
    ecs_client,
    new_password,
    psql,
    random_instance_id,
    rpc_v1_params,
    rpc_v1_send,
    rpc_v1_sign,
    tc3_post,
    unique_name,
)

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


@pytest.fixture
def cluster(nubis_bin, tmp_path):
    """start(**env) -> (url, node A, node B): two nodes on one fresh database (dropped after
    the test, with the nodes stopped)."""
    names: list[str] = []
    nodes: list[Server] = []

    def start(**env: str) -> tuple[str, Server, Server]:
        names.append(create_database())
        url = database_url(names[-1])
        suffix = uuid.uuid4().hex[:6]
        a = Server(f"cs-a-{suffix}", nubis_bin, tmp_path / f"a-{suffix}", {"NUBIS_DATABASE_URL": url, **env})
        nodes.append(a)
        a.start()
        b = Server(f"cs-b-{suffix}", nubis_bin, tmp_path / f"b-{suffix}", {"NUBIS_DATABASE_URL": url, **env})
        shutil.copy(a.data_dir / "master.key", b.data_dir / "master.key")
        nodes.append(b)
        b.start()
        return url, a, b

    yield start
    for n in nodes:
        n.stop()
    for name in names:
        drop_database(name)


def test_a_signed_request_replayed_to_the_other_node_is_refused(cluster):
    _, a, b = cluster(NUBIS_RATE_LIMITS="off")
    signed, _ = rpc_v1_sign(rpc_v1_params("DescribeRegions", {}))
    assert ali_error_of(rpc_v1_send(a, signed)) == (200, None)
    # B never saw it: the cluster's record refuses it there.
    assert ali_error_of(rpc_v1_send(b, signed)) == (400, "SignatureNonceUsed")
    assert ali_error_of(rpc_v1_send(a, signed)) == (400, "SignatureNonceUsed")
    # The other way round, with a request first sent to B.
    other, _ = rpc_v1_sign(rpc_v1_params("DescribeZones", {}))
    assert ali_error_of(rpc_v1_send(b, other)) == (200, None)
    assert ali_error_of(rpc_v1_send(a, other)) == (400, "SignatureNonceUsed")


def stored_with_token(url: str, token: str) -> int:
    return int(psql(url, f"SELECT count(*) FROM instances WHERE data LIKE '%{token}%'"))


def simultaneously(n: int, call) -> list:
    """`call(i)` from n threads released together; each result, or the exception raised."""
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        try:
            return call(i)
        except Exception as e:  # noqa: BLE001 - reported by the assertions
            return e

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_twenty_simultaneous_run_instances_with_one_client_token_make_one_instance(cluster):
    url, a, b = cluster(NUBIS_RATE_LIMITS="off")
    catalog = catalog_of(a)
    nodes = [a.cvm(), b.cvm()]
    token = f"cst-{uuid.uuid4().hex}"
    password = new_password()
    name = unique_name("cst")

    def run(i):
        return nodes[i % 2].call(
            "RunInstances", Placement={"Zone": catalog.zone}, ImageId=catalog.linux_image,
            InstanceCount=1, InstanceName=name, LoginSettings={"Password": password},
            ClientToken=token)["InstanceIdSet"]

    results = simultaneously(20, run)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert {tuple(r) for r in results} == {tuple(results[0])}, results
    assert len(results[0]) == 1
    assert stored_with_token(url, token) == 1
    # Later, on either node: the same instance again.
    for i in range(2):
        assert run(i) == results[0]
    assert stored_with_token(url, token) == 1


def test_twenty_simultaneous_alibaba_run_instances_with_one_client_token(cluster):
    url, a, b = cluster(NUBIS_RATE_LIMITS="off")
    nodes = [ecs_client(a), ecs_client(b)]
    catalog = ali_catalog_of(nodes[0])
    token = f"csa-{uuid.uuid4().hex}"
    password = new_password()
    name = unique_name("csa")

    def run(i):
        return nodes[i % 2].call(
            "RunInstances", ZoneId=catalog.zone, ImageId=catalog.linux_image,
            InstanceType=catalog.instance_type, Amount=2, InstanceName=name, Password=password,
            ClientToken=token)["InstanceIdSets"]["InstanceIdSet"]

    results = simultaneously(20, run)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert {tuple(r) for r in results} == {tuple(results[0])}, results
    assert len(results[0]) == 2
    assert stored_with_token(url, token) == 2


def keystone_token(server: Server) -> str:
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
    }}
    r = requests.post(f"{server.base_url}/identity/v3/auth/tokens", json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def servers_status(server: Server, token: str) -> int:
    return requests.get(f"{server.base_url}/compute/v2.1/servers", headers={"X-Auth-Token": token},
                        timeout=30).status_code


def test_a_keystone_token_works_on_every_node_survives_a_restart_and_dies_everywhere(cluster):
    url, a, b = cluster(NUBIS_RATE_LIMITS="off")
    token = keystone_token(a)
    assert servers_status(b, token) == 200
    # Only its digest is stored.
    assert int(psql(url, "SELECT count(*) FROM keystone_tokens")) == 1
    assert int(psql(url, f"SELECT count(*) FROM keystone_tokens WHERE data LIKE '%{token}%' "
                         f"OR digest LIKE '%{token}%'")) == 0
    a.stop()
    a.start()
    assert servers_status(a, token) == 200
    # Validated on B by itself, then revoked on B: refused on A at its next request.
    r = requests.get(f"{b.base_url}/identity/v3/auth/tokens",
                     headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.delete(f"{b.base_url}/identity/v3/auth/tokens",
                        headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=30)
    assert r.status_code == 204, r.text
    assert servers_status(a, token) == 401
    assert servers_status(b, token) == 401


def test_a_rate_limit_holds_across_two_nodes(cluster):
    """RebootInstances (a mutating Tencent action: 10 requests/s per account) sent as fast as
    eight clients can to two nodes for four whole seconds: the cluster admits 10 per second in
    all (within 10 %), not 10 per node. A reboot of an unknown instance passes the limiter and
    fails after it (InvalidInstanceId.NotFound): cheap, and it changes nothing."""
    _, a, b = cluster()
    nodes = [a, b]
    seconds = 4
    # Start just after a whole second, so the run covers `seconds` whole windows.
    start = int(time.time()) + 1
    time.sleep(start - time.time() + 0.02)
    stop_at = start + seconds - 0.05
    results: list[tuple[float, float, str]] = []
    lock = threading.Lock()

    def client(i):
        node = nodes[i % 2]
        while True:
            sent = time.time()
            if sent >= stop_at:
                return
            r = tc3_post(node, "RebootInstances", {"InstanceIds": [random_instance_id()]})
            code = r.json()["Response"].get("Error", {}).get("Code", "")
            with lock:
                results.append((sent, time.time(), code))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    accepted = [r for r in results if r[2] != "RequestLimitExceeded"]
    throttled = len(results) - len(accepted)
    assert {code for _, _, code in accepted} == {"InvalidInstanceId.NotFound"}, accepted[:5]
    # Enough was sent to exceed the limit on both nodes.
    assert throttled > len(accepted), (len(accepted), throttled)
    expected = 10 * seconds
    # Answered before the run's last second ended: counted in one of its windows.
    inside = [r for r in accepted if r[1] < start + seconds]
    # A request sent just before `stop_at` may be counted in the next second.
    windows = int(max(r[1] for r in accepted)) - start + 1
    assert expected * 0.9 <= len(accepted) <= 10 * windows * 1.1, (len(accepted), windows, throttled)
    assert len(inside) <= expected * 1.1, (len(inside), len(accepted), throttled)
