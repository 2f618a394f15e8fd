"""Fixtures: real nubis processes, official clients, the admin API, catalogue picks and
instance factories. See nubis.py for the helpers themselves."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

import nubis
from nubis import (
    ALI_GENERATIONS,
    AliCatalog,
    AliInst,
    Catalog,
    Cvm,
    Inst,
    Server,
    ali_catalog_of,
    ali_launch,
    create_database,
    database_url,
    drop_database,
    ecs_client,
    launch,
)


# --------------------------------------------------------------------------------------
# Server log on failure: the part of each running server's log written during the test.


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._nubis_log_offsets = {
        s.log_path: (s.log_path.stat().st_size if s.log_path.exists() else 0)
        for s in nubis.RUNNING_SERVERS
    }


def _guest_logs(s: Server, lines: int = 60) -> list[tuple[str, str]]:
    """Tails of the QEMU guests' serial consoles and QEMU logs under a qemu server's data dir
    (crates/driver keeps them in <data>/qemu/vms/<uuid>/)."""
    out = []
    for f in sorted(s.data_dir.glob("qemu/vms/*/*.log")):
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        out.append((f"{f.parent.name}/{f.name}", "\n".join(text.splitlines()[-lines:]) or "(empty)"))
    return out


def _failure_dir() -> Path | None:
    """NUBIS_TEST_LOG_DIR (set by scripts/test): where each failing test leaves a report
    (traceback + server log tails) and a copy of its servers' full logs."""
    d = os.environ.get("NUBIS_TEST_LOG_DIR")
    return Path(d) if d else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    offsets = getattr(item, "_nubis_log_offsets", {})
    for s in list(nubis.RUNNING_SERVERS):
        tail = s.log_tail(300, offsets.get(s.log_path, 0))
        rep.sections.append((f"nubis log ({s.name}, {s.log_path})", tail or "(empty)"))
        for name, guest_tail in _guest_logs(s):
            rep.sections.append((f"guest log ({s.name}, {name})", guest_tail))
    out = _failure_dir()
    if out is None:
        return
    try:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-150:]
        (out / "failures").mkdir(parents=True, exist_ok=True)
        (out / "servers").mkdir(parents=True, exist_ok=True)
        text = [f"test: {item.nodeid}", f"phase: {rep.when}", f"worker: {worker}",
                f"duration: {rep.duration:.2f}s", "", rep.longreprtext, ""]
        for title, body in rep.sections:
            if title.startswith(("nubis log", "guest log", "Captured")):
                text += [f"----- {title} -----", body, ""]
        (out / "failures" / f"{safe}.{rep.when}.txt").write_text("\n".join(text))
        for s in list(nubis.RUNNING_SERVERS):
            if s.log_path.exists():
                shutil.copyfile(s.log_path, out / "servers" / f"{worker}-{s.name}-{s.root.name}.log")
    except OSError as e:  # a report that cannot be written must not hide the failure
        rep.sections.append(("nubis failure report", f"could not write to {out}: {e}"))


# --------------------------------------------------------------------------------------
# Servers


@pytest.fixture(scope="session")
def nubis_bin() -> str:
    path = Path(os.environ.get("NUBIS_BIN", "target/release/nubis"))
    if not path.is_absolute():
        path = (Path.cwd() / path) if (Path.cwd() / path).exists() else (nubis.REPO / path)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"nubis binary not found at {path}: build it (cargo build --release) or set NUBIS_BIN")
    return str(path)


@pytest.fixture(scope="session")
def server_factory(nubis_bin, tmp_path_factory):
    """start(name, **env) -> a started Server with its own data dir; all are stopped at the
    end of the session. Env values override the defaults (NUBIS_SIM_TIME_SCALE=0.1,
    rate limits on), e.g. start("bulk", NUBIS_RATE_LIMITS="off", NUBIS_SIM_TIME_SCALE="0")."""
    started: list[Server] = []
    # NUBIS_TEST_STORE=postgres: every server not given a database gets a PostgreSQL database
    # of its own (dropped at the end), so a module runs unchanged on either store.
    on_postgres = os.environ.get("NUBIS_TEST_STORE", "sqlite") == "postgres"
    databases: list[str] = []

    def start(name: str, **env: str) -> Server:
        if on_postgres and "NUBIS_DATABASE_URL" not in env:
            databases.append(create_database())
            env["NUBIS_DATABASE_URL"] = database_url(databases[-1])
        s = Server(name, nubis_bin, tmp_path_factory.mktemp(name), env)
        started.append(s)
        return s.start()

    yield start
    for s in started:
        s.stop()
    for db in databases:
        drop_database(db)


@pytest.fixture(scope="session")
def server(server_factory) -> Server:
    """The default server: sim time scale 0.1, Tencent's documented rate limits on."""
    return server_factory("default")


# Transitional states (STOPPING, STARTING, REBOOTING, PENDING, Alibaba's Starting/Stopping...)
# last 0.05-1.1 s on the default server (sim time scale 0.1). A test that asserts such a state
# right after the request (a describe, or a refused request, in between) assumed an idle
# machine: on CI's two shared cores, with 4 xdist workers and their servers, the next request
# can come later than that, and the state is already over. Those tests use this server
# instead, where every transitional state lasts at least 1.25 s (a hard reboot; a soft stop
# 1.5 s, a boot 1.5 s, a create 3.5 s).
SLOW_TIME_SCALE = "0.5"


@pytest.fixture(scope="session")
def slow_server(server_factory) -> Server:
    """A server at sim time scale 0.5 for tests that must land inside a transitional state."""
    return server_factory("slow", NUBIS_SIM_TIME_SCALE=SLOW_TIME_SCALE)


@pytest.fixture
def slow_cvm(slow_server) -> Cvm:
    return slow_server.cvm()


@pytest.fixture
def slow_admin(slow_server) -> nubis.Admin:
    return slow_server.admin


@pytest.fixture(scope="session")
def slow_catalog(slow_server) -> Catalog:
    return catalog_of(slow_server)


@pytest.fixture
def slow_make_instance(slow_server, slow_catalog):
    """make_instance on the slow server."""
    cvm = slow_server.cvm()

    def make(os_family: str = "linux", state: str = "RUNNING", password: str | None = None,
             **extra) -> Inst:
        return launch(cvm, slow_catalog, os_family, 1, password, state=state, **extra)[0]

    return make


@pytest.fixture
def slow_running(slow_make_instance) -> Inst:
    return slow_make_instance()


@pytest.fixture(scope="session")
def slow_ali_catalog(slow_server) -> AliCatalog:
    return ali_catalog_of(ecs_client(slow_server, "legacy"))


@pytest.fixture(params=ALI_GENERATIONS)
def slow_ecs_any(slow_server, request):
    """Each official Alibaba client generation in turn, on the slow server."""
    return ecs_client(slow_server, request.param)


@pytest.fixture
def slow_ali_running(slow_server, slow_ali_catalog) -> AliInst:
    return ali_launch(ecs_client(slow_server, "legacy"), slow_server.admin, slow_ali_catalog)[0]


@pytest.fixture
def cvm(server) -> Cvm:
    return server.cvm()


@pytest.fixture
def admin(server) -> nubis.Admin:
    return server.admin


# --------------------------------------------------------------------------------------
# Catalogue picks


def catalog_of(server: Server) -> Catalog:
    cvm = server.cvm()
    zones = cvm.call("DescribeZones")["ZoneSet"]
    zone = next(z["Zone"] for z in zones if z["ZoneState"] == "AVAILABLE" and "edge" not in z["Zone"])
    images = cvm.call(
        "DescribeImages", Filters=[{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}], Limit=100
    )["ImageSet"]
    x86 = [i for i in images if i.get("Architecture") in (None, "x86_64")]
    # Prefer a Linux image whose administrator is root (Ubuntu's is "ubuntu").
    linux = next(i["ImageId"] for i in x86 if i["Platform"] != "Windows"
                 and "ubuntu" not in (i["OsName"] + i["Platform"]).lower())
    windows = next(i["ImageId"] for i in x86 if i["Platform"] == "Windows")
    return Catalog(zone, linux, windows)


@pytest.fixture(scope="session")
def catalog(server) -> Catalog:
    return catalog_of(server)


# --------------------------------------------------------------------------------------
# Instances


@pytest.fixture
def make_instance(server, catalog):
    """make_instance(os_family="linux", state="RUNNING", password=None) -> Inst on the
    default server."""
    cvm = server.cvm()

    def make(os_family: str = "linux", state: str = "RUNNING", password: str | None = None,
             **extra) -> Inst:
        return launch(cvm, catalog, os_family, 1, password, state=state, **extra)[0]

    return make


@pytest.fixture
def running(make_instance) -> Inst:
    return make_instance()


@pytest.fixture
def stopped(make_instance) -> Inst:
    return make_instance(state="STOPPED")


# --------------------------------------------------------------------------------------
# Alibaba Cloud ECS (the same default server; see nubis.py for the clients)


@pytest.fixture
def ecs(server):
    """The legacy official client (AcsClient + aliyun-python-sdk-ecs request classes)."""
    return ecs_client(server, "legacy")


@pytest.fixture
def ecs_tea(server):
    """The Tea official client (alibabacloud_ecs20140526)."""
    return ecs_client(server, "tea")


@pytest.fixture(params=ALI_GENERATIONS)
def ecs_any(server, request):
    """Each official client generation in turn."""
    return ecs_client(server, request.param)


@pytest.fixture(scope="session")
def ali_catalog(server) -> AliCatalog:
    return ali_catalog_of(ecs_client(server, "legacy"))


@pytest.fixture
def ali_make_instance(server, ali_catalog):
    """ali_make_instance(os_family="linux", status="Running", password=None, amount=1) ->
    AliInst (a list when amount > 1), created through the legacy client and settled."""
    ecs = ecs_client(server, "legacy")

    def make(os_family: str = "linux", status: str = "Running", password: str | None = None,
             amount: int = 1, **extra) -> AliInst | list[AliInst]:
        got = ali_launch(ecs, server.admin, ali_catalog, os_family, amount, password, status=status, **extra)
        return got[0] if amount == 1 else got

    return make


@pytest.fixture
def ali_running(ali_make_instance) -> AliInst:
    return ali_make_instance()


@pytest.fixture
def ali_stopped(ali_make_instance) -> AliInst:
    return ali_make_instance(status="Stopped")
