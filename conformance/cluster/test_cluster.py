"""Several API nodes, one fleet (issue 14, docs/cluster.md): three `nubis serve` on one
PostgreSQL database behind HAProxy (conftest.py), driven through the balancer with the
official SDKs, and node by node where a test must pick the node.

- the balancer spreads requests over the nodes (X-Nubis-Node);
- each dialect's lifecycle subset through the balancer: create, describe right after on every
  node (read your writes), reboot, a conflicting request to another node while the reboot
  holds the instance's lock, terminate;
- 20 simultaneous RunInstances with one ClientToken, spread over the nodes: one instance;
- 12 simultaneous changes of one Glance metadef namespace, 4 per node: all land;
- an Alibaba signature nonce spent on one node is refused by the others;
- a Keystone token issued by node A works on node C after A restarts;
- kill -9 of a node: HAProxy's health check takes it out and requests keep succeeding;
- kill -9 of a node in the middle of operations it accepted: each finishes exactly once on
  another node within the lease TTL + 10 s, and no lock survives."""

from __future__ import annotations

import re
import secrets
import threading
import time

import openstack
import pytest
import requests

from nubis import (
    ADMIN_PASSWORD,
    ALI_REGION,
    ali_catalog_of,
    ali_error_of,
    ali_launch,
    acs3_send,
    ali_timestamp,
    assert_op,
    describe,
    ecs_client,
    ecs_describe,
    ecs_wait_settled,
    ecs_wait_status,
    expect_ecs_error,
    expect_error,
    host_views,
    new_password,
    rpc_v1_params,
    rpc_v1_send,
    rpc_v1_sign,
    unique_name,
    wait_settled,
    wait_state,
    wait_until,
)
from test_openstack_support import FLAVOR, IMAGE_NAME, REGION, connect, expect_http, wait_status

# The node IDs the cluster fixture gives its nodes (conftest.NODES).
NODES = ("node-a", "node-b", "node-c")

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

TENCENT_ZONE = "ap-guangzhou-3"


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def answered_by(resp: requests.Response) -> str:
    node = resp.headers.get("X-Nubis-Node")
    assert node in NODES, f"X-Nubis-Node {node!r} names no node of the cluster ({resp.status_code})"
    return node


def logged(log: str, action: str) -> bool:
    """A request line of `action` is in this part of a node's log (tracing quotes strings)."""
    return re.search(rf'\baction="?{action}"?[ \n]', log) is not None


def tencent_catalog(cvm) -> tuple[str, str]:
    """(zone, a Linux image) from the catalogue, as conftest.catalog_of picks them."""
    zones = cvm.call("DescribeZones")["ZoneSet"]
    zone = next(z["Zone"] for z in zones if z["ZoneState"] == "AVAILABLE" and "edge" not in z["Zone"])
    images = cvm.call("DescribeImages", Filters=[{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}],
                      Limit=100)["ImageSet"]
    linux = next(i["ImageId"] for i in images if i.get("Architecture") in (None, "x86_64")
                 and i["Platform"] != "Windows" and "ubuntu" not in (i["OsName"] + i["Platform"]).lower())
    return zone, linux


def connect_node(node, password: str = ADMIN_PASSWORD) -> openstack.connection.Connection:
    """openstacksdk pinned to one node: Keystone on the node and the catalog's endpoints
    overridden to the node (the catalog names the balancer)."""
    return openstack.connect(
        auth_url=f"{node.base_url}/identity/v3", username="admin", password=password,
        project_name="admin", user_domain_name="Default", project_domain_name="Default",
        region_name=REGION, load_yaml_config=False, load_envvars=False,
        compute_endpoint_override=f"{node.base_url}/compute/v2.1",
        image_endpoint_override=f"{node.base_url}/image",
    )


# --------------------------------------------------------------------------------------
# The front door


def test_every_node_names_itself(cluster, lb):
    """Each node answers with its --node-id in X-Nubis-Node, and logs it in its request
    lines."""
    for node in cluster.nodes:
        r = session().get(f"{node.base_url}/healthz", timeout=10)
        assert r.status_code == 200 and r.headers.get("X-Nubis-Node") == node.name, (r.status_code, r.headers)
        node.cvm().call("DescribeRegions")
        lines = [ln for ln in node.log_tail(400).splitlines() if logged(ln + "\n", "DescribeRegions")]
        assert lines and all(f"node={node.name} " in ln for ln in lines), node.log_tail(20)
        start = [ln for ln in node.log_tail(10_000).splitlines() if "node identity" in ln]
        assert start and f"node={node.name} " in start[-1], start


@pytest.mark.parametrize("bad", ["two words", "x" * 65, "n\u00e9ud"])
def test_a_bad_node_id_stops_the_start(nubis_bin, tmp_path, bad):
    """A node ID goes into a header and every log line: anything but 1-64 of
    A-Z a-z 0-9 . _ : - is refused at start, with the flag named."""
    from nubis import Server
    node = Server("bad-node-id", nubis_bin, tmp_path, {"NUBIS_NODE_ID": bad})
    with pytest.raises(RuntimeError, match="exited with 1 at start-up") as e:
        node.start(timeout=30)
    assert "--node-id / NUBIS_NODE_ID / node_id" in str(e.value), str(e.value)


def test_the_balancer_spreads_requests(lb):
    """Round robin: unsigned health checks and signed SDK calls through one keep-alive client
    land on every node."""
    s = session()
    seen = [answered_by(s.get(f"{lb.base_url}/healthz", timeout=10)) for _ in range(30)]
    assert set(seen) == set(NODES), seen
    # Signed Tencent calls (the SDK hides headers: the nodes' request logs tell who served).
    before = {n: n.log_path.stat().st_size for n in lb.nodes}
    cvm = lb.cvm()
    for _ in range(12):
        cvm.call("DescribeRegions")
    served = {n.name for n in lb.nodes if logged(n.log_tail(400, before[n]), "DescribeRegions")}
    assert len(served) >= 2, f"12 signed calls all served by {served}"


# --------------------------------------------------------------------------------------
# The conformance subset through the balancer, every dialect


def test_tencent_lifecycle_across_nodes(cluster, lb):
    cvm = lb.cvm()
    zone, image = tencent_catalog(cvm)
    run = cvm.call("RunInstances", Placement={"Zone": zone}, ImageId=image, InstanceCount=1,
                   InstanceName=unique_name("cl-tc"), LoginSettings={"Password": new_password()})
    [iid] = run["InstanceIdSet"]
    # Read your writes: every node knows the instance and its operation at once.
    for node in cluster.nodes:
        inst = describe(node.cvm(), iid)
        assert inst is not None, f"{node.name} does not show {iid} right after RunInstances"
        assert inst["LatestOperationRequestId"] == run["RequestId"], (node.name, inst)
    for node in cluster.nodes:
        assert_op(wait_settled(node.cvm(), iid, "RUNNING", run["RequestId"]), "RunInstances", run["RequestId"])

    reboot = cvm.call("RebootInstances", InstanceIds=[iid])["RequestId"]
    for node in cluster.nodes:
        inst = describe(node.cvm(), iid)
        assert (inst["InstanceState"], inst["LatestOperationRequestId"]) == ("REBOOTING", reboot), (node.name, inst)
        # The lock holds on every node: a second reboot is refused wherever it lands.
        expect_error("UnsupportedOperation.InstanceStateRebooting", node.cvm().call, "RebootInstances",
                     InstanceIds=[iid])
    for node in cluster.nodes:
        assert_op(wait_settled(node.cvm(), iid, "RUNNING", reboot), "RebootInstances", reboot)

    cvm.call("TerminateInstances", InstanceIds=[iid])
    for node in cluster.nodes:
        wait_state(node.cvm(), iid, None, timeout=60)


def test_alibaba_lifecycle_across_nodes(cluster, lb):
    ecs = ecs_client(lb, "tea")
    catalog = ali_catalog_of(ecs)
    run = ecs.call("RunInstances", ZoneId=catalog.zone, ImageId=catalog.linux_image,
                   InstanceType=catalog.instance_type, InstanceName=unique_name("cl-ali"),
                   Password=new_password())
    [iid] = run["InstanceIdSets"]["InstanceIdSet"]
    for node in cluster.nodes:
        assert ecs_describe(ecs_client(node, "legacy"), iid) is not None, \
            f"{node.name} does not show {iid} right after RunInstances"
    for node in cluster.nodes:
        ecs_wait_settled(ecs_client(node, "legacy"), node.admin, iid, "Running")

    ecs.call("RebootInstance", InstanceId=iid)
    for node in cluster.nodes:
        node_ecs = ecs_client(node, "legacy")
        assert ecs_describe(node_ecs, iid)["Status"] == "Starting", node.name
        expect_ecs_error(403, "IncorrectInstanceStatus", node_ecs.call, "RebootInstance", InstanceId=iid)
    for node in cluster.nodes:
        ecs_wait_settled(ecs_client(node, "legacy"), node.admin, iid, "Running")

    ecs.call("DeleteInstance", InstanceId=iid, Force=True)
    for node in cluster.nodes:
        ecs_wait_status(ecs_client(node, "legacy"), iid, None, timeout=60)


def test_openstack_lifecycle_across_nodes(cluster, lb):
    conn = connect(lb)  # Keystone through the balancer; the catalog names the balancer too
    image = conn.image.find_image(IMAGE_NAME, ignore_missing=False).id
    created = conn.compute.create_server(name=unique_name("cl-os"), image_id=image, flavor_id=FLAVOR,
                                         networks="none")
    pinned = {node.name: connect_node(node) for node in cluster.nodes}
    for name, c in pinned.items():
        assert c.compute.find_server(created.id, ignore_missing=True) is not None, \
            f"{name} does not show {created.id} right after the create"
    for c in pinned.values():
        wait_status(c, created.id, "ACTIVE")

    conn.compute.reboot_server(created.id, "SOFT")
    for name, c in pinned.items():
        s = c.compute.get_server(created.id)
        assert (s.status, s.task_state) == ("REBOOT", "rebooting"), (name, s.status, s.task_state)
        expect_http(409, c.compute.reboot_server, created.id, "SOFT")
    for c in pinned.values():
        wait_status(c, created.id, "ACTIVE")

    conn.compute.delete_server(created.id)
    for c in pinned.values():
        wait_until(lambda: c.compute.find_server(created.id, ignore_missing=True) is None, 60, 0.1,
                   f"{created.id} to be gone")


# --------------------------------------------------------------------------------------
# Cluster-wide state


def test_one_client_token_twenty_nodes_one_instance(cluster, lb):
    """20 RunInstances with one ClientToken at once, through the balancer (so spread over
    the three nodes): every call answers the same one instance, and only it exists."""
    zone, image = tencent_catalog(lb.cvm())
    name, token, password = unique_name("cl-tok"), "tok-" + secrets.token_hex(8), new_password()
    before = {n: n.log_path.stat().st_size for n in cluster.nodes}
    start = threading.Barrier(20)
    answers: list = [None] * 20

    def run(i: int) -> None:
        cvm = lb.cvm()  # a client (and connection) of its own
        start.wait(timeout=30)
        try:
            answers[i] = cvm.call("RunInstances", Placement={"Zone": zone}, ImageId=image,
                                  InstanceCount=1, InstanceName=name,
                                  LoginSettings={"Password": password}, ClientToken=token)["InstanceIdSet"]
        except Exception as e:  # noqa: BLE001 - reported below with the others
            answers[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    served = {n.name for n in cluster.nodes if logged(n.log_tail(2000, before[n]), "RunInstances")}
    assert len(served) >= 2, f"the 20 calls did not spread: only {served} served RunInstances"
    errors = [a for a in answers if not isinstance(a, list)]
    assert not errors, errors
    ids = {tuple(a) for a in answers}
    assert len(ids) == 1 and len(next(iter(ids))) == 1, f"one ClientToken, several answers: {ids}"
    [iid] = next(iter(ids))
    for node in cluster.nodes:
        named = node.cvm().call("DescribeInstances",
                                Filters=[{"Name": "instance-name", "Values": [name]}])
        assert [i["InstanceId"] for i in named["InstanceSet"]] == [iid], (node.name, named)
    # And one row in the database (the name is random and unique; the record is JSON).
    assert int(cluster_sql(cluster, f"SELECT count(*) FROM instances WHERE data LIKE '%\"{name}\"%'")) == 1
    wait_settled(lb.cvm(), iid, "RUNNING")
    lb.cvm().call("TerminateInstances", InstanceIds=[iid])


def test_concurrent_metadef_changes_on_every_node_all_land(cluster, lb):
    """Glance metadata definitions are one generation-checked document per namespace
    (docs/images.md, "Metadata definitions"): 12 tag creates at once, 4 on each node, all
    land (under the account's 20 writes a second); a create of one name on each node in
    turn has one winner; every node reads the result."""
    token = connect_node(cluster.node("node-a")).auth_token
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    ns = unique_name("cl-md")

    def url(node, path=""):
        return f"{node.base_url}/image/v2/metadefs/namespaces{path}"

    firsts = [session().post(url(n), json={"namespace": ns}, headers=headers)
              for n in cluster.nodes]
    assert sorted(r.status_code for r in firsts) == [201, 409, 409], [r.text for r in firsts]
    start = threading.Barrier(12)
    answers: list = [None] * 12

    def add(i: int) -> None:
        node = cluster.nodes[i % 3]
        start.wait(timeout=30)
        answers[i] = session().post(url(node, f"/{ns}/tags/t{i}"), headers=headers).status_code

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert answers == [201] * 12, answers
    want = sorted(f"t{i}" for i in range(12))
    for node in cluster.nodes:
        r = session().get(url(node, f"/{ns}/tags"), headers=headers)
        assert sorted(t["name"] for t in r.json()["tags"]) == want, node.name
    assert int(cluster_sql(cluster, f"SELECT count(*) FROM metadef_namespaces WHERE name = '{ns}'")) == 1
    assert session().delete(url(cluster.nodes[1], f"/{ns}"), headers=headers).status_code == 204
    for node in cluster.nodes:
        assert session().get(url(node, f"/{ns}"), headers=headers).status_code == 404, node.name


def cluster_sql(cluster, sql: str) -> str:
    from nubis import psql
    return psql(cluster.database_url, sql)


def test_a_nonce_spent_on_one_node_is_refused_by_the_others(cluster, lb):
    a, b, c = cluster.nodes
    signed, _ = rpc_v1_sign(rpc_v1_params("DescribeRegions", {}))
    assert ali_error_of(rpc_v1_send(a, signed)) == (200, None)
    assert ali_error_of(rpc_v1_send(b, signed)) == (400, "SignatureNonceUsed")
    assert ali_error_of(rpc_v1_send(c, signed)) == (400, "SignatureNonceUsed")
    # ACS3 (the Tea SDK's signature): the same, its nonce in a header.
    nonce, date = secrets.token_hex(16), ali_timestamp()
    args = ("DescribeZones", {"RegionId": ALI_REGION})
    assert ali_error_of(acs3_send(c, *args, nonce=nonce, date=date)) == (200, None)
    assert ali_error_of(acs3_send(a, *args, nonce=nonce, date=date)) == (400, "SignatureNonceUsed")


def test_a_keystone_token_from_node_a_works_on_node_c_after_a_restarts(cluster, lb):
    a, c = cluster.node("node-a"), cluster.node("node-c")
    conn = connect_node(a)
    token = conn.auth_token
    assert token
    a.stop()
    a.start()
    for node in (c, a):
        r = session().get(f"{node.base_url}/identity/v3/auth/tokens", timeout=10,
                          headers={"X-Auth-Token": token, "X-Subject-Token": token})
        assert r.status_code == 200, (node.name, r.status_code, r.text)
        assert r.json()["token"]["user"]["name"] == "admin"
    # And an official client that holds only the token lists servers on node C.
    by_token = openstack.connect(
        auth_type="v3token", auth_url=f"{c.base_url}/identity/v3", token=token,
        project_name="admin", project_domain_name="Default", region_name=REGION,
        load_yaml_config=False, load_envvars=False,
        compute_endpoint_override=f"{c.base_url}/compute/v2.1",
    )
    assert isinstance(list(by_token.compute.servers()), list)


def test_a_console_session_from_node_a_works_on_node_b_and_sign_out_ends_it_everywhere(cluster, lb):
    """The console's session cookie is sealed with the key every node shares: signed in on
    node A, the same cookie reads the fleet and makes a change through node B; signed out on
    B, its Keystone token is revoked for every node (docs/console.md)."""
    a, b = cluster.node("node-a"), cluster.node("node-b")
    s = session()
    r = s.post(f"{a.base_url}/console/login", allow_redirects=False, timeout=30,
               data={"method": "keystone", "user": "admin", "password": ADMIN_PASSWORD, "project": "admin"})
    assert r.status_code == 303, r.text[:500]
    page = s.get(f"{b.base_url}/console/fleet", allow_redirects=False, timeout=30)
    assert page.status_code == 200 and answered_by(page) == "node-b", page.status_code
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = s.post(f"{b.base_url}/console/keypairs", data={"csrf": csrf, "name": unique_name("ck")},
               headers={"Origin": b.base_url}, allow_redirects=False, timeout=30)
    assert r.status_code == 200 and "private-key" in r.text, r.text[:500]
    jar = s.cookies.copy()
    r = s.post(f"{b.base_url}/console/logout", data={"csrf": csrf}, headers={"Origin": b.base_url},
               allow_redirects=False, timeout=30)
    assert r.status_code == 303
    copy = session()
    copy.cookies = jar
    for node in (a, b):
        r = copy.get(f"{node.base_url}/console/fleet", allow_redirects=False, timeout=30)
        assert r.headers.get("Location") == "/console/login", (node.name, r.status_code)


# --------------------------------------------------------------------------------------
# A node dies


def test_kill_9_of_a_node_the_balancer_takes_it_out(cluster, lb):
    victim = cluster.node("node-b")
    s = session()
    # Throttling (per-action limits) is retried as the suite always does; anything else —
    # a 502/503 from HAProxy, a reset — fails the test.
    cvm = lb.cvm()

    phase = "before the kill"
    killed_at = None

    def health() -> requests.Response:
        """GET /healthz through the balancer; a connection-level failure is reported with the
        phase, the time since the kill and what HAProxy logged for it (its line is written when
        the request ends, so after a moment)."""
        try:
            return s.get(f"{lb.base_url}/healthz", timeout=10)
        except requests.RequestException as e:
            since = "" if killed_at is None else f", {time.monotonic() - killed_at:.3f} s after the kill"
            time.sleep(0.5)
            pytest.fail(f"GET /healthz failed {phase}{since}: {e!r}\nHAProxy states: {lb.states()}\n"
                        f"HAProxy log:\n{lb.log_tail(30)}")

    def one_round() -> str:
        """One health check and one signed call through the balancer; both must succeed."""
        r = health()
        assert r.status_code == 200, (r.status_code, r.text)
        cvm.call("DescribeRegions")
        return answered_by(r)

    def burst() -> set[str]:
        """The nodes that answer 12 health checks in a row (round robin: every live one)."""
        return {answered_by(health()) for _ in range(12)}

    assert burst() == set(NODES)
    for _ in range(3):
        one_round()
    log_offset = lb.log_path.stat().st_size
    victim.kill()
    killed_at = time.monotonic()
    phase = "until HAProxy marks the killed node DOWN"
    # Until the health check notices, a request sent to the dead node is refused a connection
    # and HAProxy redispatches it: nothing fails in between either.
    seen_after = []
    # ("UP 1/2" after the first failed check, "DOWN" after the second.)
    while not lb.states()[victim.name].startswith("DOWN"):
        assert time.monotonic() - killed_at < 10, "HAProxy still sees the killed node UP after 10 s"
        seen_after.append(one_round())
    assert f"{victim.name} is DOWN" in lb.log_tail(200, log_offset)
    phase = "after the killed node is DOWN"
    seen_after += [one_round() for _ in range(20)]
    assert victim.name not in seen_after[-20:]
    assert burst() == set(NODES) - {victim.name}
    # Writes keep working too.
    zone, image = tencent_catalog(cvm)
    [iid] = cvm.call("RunInstances", Placement={"Zone": zone}, ImageId=image, InstanceCount=1,
                     InstanceName=unique_name("cl-kill"),
                     LoginSettings={"Password": new_password()})["InstanceIdSet"]
    wait_settled(lb.cvm(), iid, "RUNNING")
    # Back: restarted on its port, the health check brings it in again.
    victim.start()
    wait_until(lb.all_up, 30, 0.1, "HAProxy to see the restarted node UP")
    phase = "after the restart"
    assert burst() == set(NODES)


def test_kill_9_in_the_middle_of_operations_each_finishes_once_on_another_node(cluster, lb):
    """Operations accepted by node-c, which dies (kill -9) while they run: once their leases
    expire the other nodes take them over and finish each exactly once (one record per
    request, SUCCESS, resumed once; one reboot in the guest's history), within the lease TTL
    + 10 s of the kill, and every instance is free for the next request."""
    from conftest import LEASE_TTL_MS
    cvm = lb.cvm()
    zone, image = tencent_catalog(cvm)
    ids = cvm.call("RunInstances", Placement={"Zone": zone}, ImageId=image, InstanceCount=4,
                   InstanceName=unique_name("cl-take"),
                   LoginSettings={"Password": new_password()})["InstanceIdSet"]
    for iid in ids:
        wait_settled(cvm, iid, "RUNNING")
    rebooted, stopped = ids[:2], ids[2:]
    restarts_before = {iid: len(lb.admin.guest(iid)["restarts"]) for iid in rebooted}
    victim = cluster.node("node-c")
    on_victim = victim.cvm()
    reboot = on_victim.call("RebootInstances", InstanceIds=rebooted)["RequestId"]
    stop = on_victim.call("StopInstances", InstanceIds=stopped)["RequestId"]
    # In flight on node-c (a soft reboot and a soft stop take seconds here).
    for iid in rebooted:
        assert describe(cvm, iid)["InstanceState"] == "REBOOTING"
    victim.kill()
    killed_at = time.monotonic()
    phase = "until HAProxy marks the killed node DOWN"
    deadline = LEASE_TTL_MS / 1000 + 10
    for iid in rebooted:
        assert_op(wait_settled(cvm, iid, "RUNNING", reboot, timeout=deadline), "RebootInstances", reboot)
    for iid in stopped:
        assert_op(wait_settled(cvm, iid, "STOPPED", stop, timeout=deadline), "StopInstances", stop)
    took = time.monotonic() - killed_at
    assert took <= deadline, f"taken over and finished {took:.1f} s after the kill"
    for request, expected in ((reboot, rebooted), (stop, stopped)):
        ops = lb.admin.finished_by_request(request, timeout=10)
        # Exactly once: one record per instance, finished, resumed once (attempt 2).
        assert sorted(o["state"] for o in ops) == ["SUCCESS"] * len(expected), ops
        assert all(o.get("attempts") == 2 for o in ops), ops
    for iid in rebooted:
        assert len(lb.admin.guest(iid)["restarts"]) == restarts_before[iid] + 1, iid
    # No lock survives: each instance takes the next request at once, on any node.
    start = cvm.call("StartInstances", InstanceIds=stopped)["RequestId"]
    again = cvm.call("RebootInstances", InstanceIds=rebooted)["RequestId"]
    for iid in stopped:
        wait_settled(cvm, iid, "RUNNING", start)
    for iid in rebooted:
        wait_settled(cvm, iid, "RUNNING", again)
    cvm.call("TerminateInstances", InstanceIds=ids)
    victim.start()
    wait_until(lb.all_up, 30, 0.1, "HAProxy to see the restarted node UP")
    phase = "after the restart"


# --------------------------------------------------------------------------------------
# Agent hosts (docs/agents.md)

def test_instances_run_on_both_agents_and_a_killed_agent_comes_back(cluster, lb):
    """Instances of the agents' zone spread over both hosts. kill -9 of one agent: once its
    reports stop, Nova shows its server's host_status UNKNOWN on every node, a reboot sent
    meanwhile waits (REBOOTING, OPERATING) while the other host's instance reboots; a new
    agent process with the same credential restores its guests and the reboot finishes."""
    from conftest import HOST_TIMEOUT_MS
    cvm = lb.cvm()
    zone, image = tencent_catalog(cvm)
    ids = cvm.call("RunInstances", Placement={"Zone": zone}, ImageId=image, InstanceCount=2,
                   InstanceName=unique_name("cl-agent"),
                   LoginSettings={"Password": new_password()})["InstanceIdSet"]
    for iid in ids:
        wait_settled(cvm, iid, "RUNNING")
    by_host = {lb.admin.instance(iid)["host"]: iid for iid in ids}
    assert sorted(by_host) == ["host-1", "host-2"], by_host
    lost, kept = by_host["host-1"], by_host["host-2"]
    lost_uuid = lb.admin.instance(lost)["id"]
    cluster.agents["host-1"].kill()
    wait_until(lambda: host_views(lb.admin)["host-1"]["health"] == "lost",
               HOST_TIMEOUT_MS / 1000 + 5, 0.1, "host-1 to be lost")
    # Every node reads the host table each second: they agree within that second.
    for node in cluster.nodes:
        c = connect_node(node)
        c.compute.default_microversion = "2.16"
        wait_until(lambda: c.compute.get_server(lost_uuid).host_status == "UNKNOWN", 3, 0.1,
                   f"{node.name} to show host_status UNKNOWN")
    reboot = cvm.call("RebootInstances", InstanceIds=[lost])["RequestId"]
    other = cvm.call("RebootInstances", InstanceIds=[kept])["RequestId"]
    assert_op(wait_settled(cvm, kept, "RUNNING", other, timeout=30), "RebootInstances", other)
    waiting = describe(cvm, lost)
    assert (waiting["InstanceState"], waiting["LatestOperationState"]) == ("REBOOTING", "OPERATING"), waiting
    cluster.agents["host-1"].start()
    assert_op(wait_settled(cvm, lost, "RUNNING", reboot, timeout=30), "RebootInstances", reboot)
    ops = lb.admin.finished_by_request(reboot, timeout=10)
    assert [o["state"] for o in ops] == ["SUCCESS"], ops
    c = connect_node(cluster.nodes[0])
    c.compute.default_microversion = "2.16"
    wait_until(lambda: c.compute.get_server(lost_uuid).host_status == "UP", 3, 0.1, "host_status UP")
    cvm.call("TerminateInstances", InstanceIds=ids)
