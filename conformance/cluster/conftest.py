"""The cluster suite's fixtures (docs/cluster.md): one PostgreSQL database, three `nubis serve`
nodes on it (node-a, node-b, node-c; each its own data dir with a copy of node-a's
master.key), HAProxy round-robin in front of them with health checks on /healthz, and two
`nubis agent` hosts (sim) serving the suite's zone through the balancer (docs/agents.md), for
the whole session, torn down at the end (database dropped, pass or fail).

The parent conformance/conftest.py still applies: its failure hook prints the log tail of
every running server, and the balancer registers itself among them, so a failing test shows
the three nodes' logs and HAProxy's. Clients reach the cluster through `cluster.lb`, which
looks like a `nubis.Server` to the suite's helpers (`endpoint`, `base_url`, `admin`, `cvm()`);
tests that must talk to one node on purpose use `cluster.nodes[i]` directly."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

import nubis
from nubis import Server, create_database, database_url, drop_database, free_port, wait_until

NODES = ("node-a", "node-b", "node-c")
# Transitional states last long enough (a soft reboot 2.5 s, a create 3.5 s) that a request
# sent right after another, to another node, lands inside them (conftest.SLOW_TIME_SCALE).
TIME_SCALE = "0.5"
LEASE_TTL_MS = 2000
# A killed agent's host is lost this long after its last report (docs/agents.md).
HOST_TIMEOUT_MS = 2000
# The two agent hosts, in the zone every test of the suite launches in (local-a).
AGENTS = ("host-1", "host-2")
AGENT_ZONE = "ap-guangzhou-3"
# Health checks every 300 ms, two failures take a node out, one success brings it back: a
# dead node is out within about a second.
CHECK_INTER_MS = 300
CHECK_FALL = 2
CHECK_RISE = 1

HAPROXY_CFG = """\
global
    log stdout format raw local0 info
    maxconn 4096

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    # A request that cannot reach its node (refused connection: the node is dead and the
    # health check has not noticed yet) is sent to another node instead.
    retries 3
    option redispatch 1

frontend nubis_api
    bind 127.0.0.1:{port}
    default_backend nubis_nodes

backend nubis_nodes
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter {inter}ms fall {fall} rise {rise}
{servers}

frontend stats
    bind 127.0.0.1:{stats_port}
    no log
    stats enable
    stats uri /stats
    stats refresh 1s
"""


def haproxy_config(port: int, stats_port: int, nodes: list[tuple[str, int]]) -> str:
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} check" for name, p in nodes)
    return HAPROXY_CFG.format(port=port, stats_port=stats_port, servers=servers,
                              inter=CHECK_INTER_MS, fall=CHECK_FALL, rise=CHECK_RISE)


class Balancer(nubis.Child):
    """HAProxy from Debian as a child process (`haproxy -db -f <cfg>`, never the system
    service), round-robin over the nodes. Duck-types the parts of nubis.Server the suite's
    helpers use; stopping and its log are every child's (nubis.Child)."""

    def __init__(self, root: Path, port: int, stats_port: int, nodes: list[Server]):
        self.name = "haproxy"
        self.root = root
        self.data_dir = root  # the failure hook looks for guest logs here: there are none
        self.log_path = root / "haproxy.log"
        self.cfg_path = root / "haproxy.cfg"
        self.port = port
        self.stats_port = stats_port
        self.nodes = nodes
        self.proc: subprocess.Popen | None = None
        self.admin = nubis.Admin(self)

    def start(self, timeout: float = 30) -> "Balancer":
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not os.access(binary, os.X_OK):
            pytest.fail("haproxy not found: run scripts/setup-haproxy (Debian: apt-get install haproxy)")
        self.cfg_path.write_text(haproxy_config(self.port, self.stats_port,
                                                [(n.name, n.port) for n in self.nodes]))
        check = subprocess.run([binary, "-c", "-q", "-f", str(self.cfg_path)],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert check.returncode == 0, f"haproxy -c: {check.stderr}{check.stdout}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([binary, "-db", "-f", str(self.cfg_path)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if self not in nubis.RUNNING_SERVERS:
            nubis.RUNNING_SERVERS.append(self)
        wait_until(lambda: self.proc.poll() is not None or self.all_up(), timeout, 0.1,
                   "HAProxy to see every node UP")
        assert self.proc.poll() is None, f"haproxy exited:\n{self.log_tail()}"
        return self

    def states(self) -> dict[str, str]:
        """Each node's state as HAProxy's health checks see it (UP, DOWN, …), from the stats
        page's CSV export."""
        r = requests.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5)
        r.raise_for_status()
        rows = csv.DictReader(io.StringIO(r.text.lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows
                if row["pxname"] == "nubis_nodes" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def all_up(self) -> bool:
        try:
            states = self.states()
        except requests.RequestException:
            return False
        return len(states) == len(self.nodes) and all(s == "UP" for s in states.values())

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.endpoint}"

    def cvm(self, signature: str = "TC3-HMAC-SHA256", method: str = "POST", **kw) -> nubis.Cvm:
        return nubis.Cvm(self.endpoint, signature=signature, method=method, **kw)


@dataclass
class Cluster:
    nodes: list[Server]
    lb: Balancer
    database_url: str
    agents: dict[str, nubis.Agent]

    def node(self, name: str) -> Server:
        return next(n for n in self.nodes if n.name == name)


def node_env(name: str, database: str, public_url: str) -> dict[str, str]:
    return {
        "NUBIS_DATABASE_URL": database,
        "NUBIS_NODE_ID": name,
        # Keystone's catalog and every link point at the balancer, not at the node.
        "NUBIS_PUBLIC_URL": public_url,
        "NUBIS_SIM_TIME_SCALE": TIME_SCALE,
        # A killed node's operations move to another node LEASE_TTL_MS after its last
        # renewal (docs/cluster.md, "Leases and takeover").
        "NUBIS_LEASE_TTL_MS": str(LEASE_TTL_MS),
        "NUBIS_HOST_TIMEOUT_MS": str(HOST_TIMEOUT_MS),
    }


@pytest.fixture(scope="session")
def cluster(nubis_bin, tmp_path_factory) -> Cluster:
    db = create_database()
    url = database_url(db)
    lb_port = free_port()
    public_url = f"http://127.0.0.1:{lb_port}"
    nodes: list[Server] = []
    lb: Balancer | None = None
    agents: dict[str, nubis.Agent] = {}
    try:
        for name in NODES:
            root = tmp_path_factory.mktemp(name)
            node = Server(name, nubis_bin, root, node_env(name, url, public_url), port=free_port())
            if nodes:
                # Every node must seal and unseal with the same key (docs/postgres.md): the
                # first node made it; the others get a copy, as separate machines would.
                shutil.copy2(nodes[0].data_dir / "master.key", node.data_dir / "master.key")
            # One after the other: the first node bootstraps the empty database.
            nodes.append(node.start())
        lb = Balancer(tmp_path_factory.mktemp("haproxy"), lb_port, free_port(), nodes).start()
        # The agents register and report through the balancer, like any client.
        agent_root = tmp_path_factory.mktemp("agents")
        for host in AGENTS:
            secret = nubis.register_host(lb.admin, host, AGENT_ZONE)
            agents[host] = nubis.Agent(host, secret, nubis_bin, agent_root, lb.base_url,
                                       env={"NUBIS_SIM_TIME_SCALE": TIME_SCALE}).start()
        wait_until(lambda: all(h["health"] == "up" for h in nubis.host_views(lb.admin).values()),
                   30, 0.1, "both agent hosts to report")
        yield Cluster(nodes, lb, url, agents)
    finally:
        for agent in agents.values():
            agent.stop()
        if lb is not None:
            lb.stop()
        for node in nodes:
            node.stop()
        drop_database(db)


@pytest.fixture
def lb(cluster) -> Balancer:
    """The balancer, with every node UP again (a test that stopped or killed a node restarts
    it; this waits until HAProxy's checks have noticed)."""
    for node in cluster.nodes:
        if node.proc is None:
            node.start()
    for agent in cluster.agents.values():
        if agent.proc is None:
            agent.start()
    wait_until(cluster.lb.all_up, 30, 0.1, "HAProxy to see every node UP")
    wait_until(lambda: all(h["health"] == "up" for h in nubis.host_views(cluster.lb.admin).values()),
               30, 0.1, "both agent hosts up")
    return cluster.lb
