"""Helpers for the conformance suite: a real nubis process, official-client factories,
the admin API, waiting, error assertions, and a small independent Tencent signer.

Everything that talks to Tencent's API goes through the official, unpatched clients
(tencentcloud-sdk-python, tccli). The only hand-made requests are the ones no official
client can produce on purpose (a stale timestamp), built with the signer below, which is
checked against the spec's vectors in test_signer_vectors.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import requests
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.retry import StandardRetryer
from tencentcloud.cvm.v20170312 import cvm_client, models

REPO = Path(__file__).resolve().parent.parent

ADMIN_KEY_ID = "AKIDnubisTestAdmin0000000000000000"
ADMIN_KEY_SECRET = "nubisTestSecretKey000000000000000"
ADMIN_PASSWORD = "nubisTestAdminPassw0rd!"
REGION = "ap-guangzhou"

# Regions the seeds say EnterRescueMode / ResetInstancesPassword are offered in.
SEED_REGIONS = {
    "ap-bangkok", "ap-beijing", "ap-chengdu", "ap-chongqing", "ap-guangzhou", "ap-hongkong",
    "ap-jakarta", "ap-nanjing", "ap-seoul", "ap-shanghai", "ap-shanghai-fsi",
    "ap-shenzhen-fsi", "ap-singapore", "ap-tokyo", "eu-frankfurt", "na-ashburn",
    "na-siliconvalley", "sa-saopaulo",
}

# The codes docs/tencent-errors.md pins where the seeds offer a choice.
RESET_INVALID_PASSWORD = "InvalidParameterValue.InvalidPassword"
RESCUE_INVALID_PASSWORD = "InvalidPassword"
LIMIT_OVER_100 = "InvalidParameterValue"
# DeleteKeyPairs on a key still bound to an instance (Tencent documents that it fails, not
# with which code).
KEY_IN_USE = "ResourceInUse"

SETTLED = ("RUNNING", "STOPPED", "RESCUE_MODE", "LAUNCH_FAILED")

# A valid OpenSSH ed25519 public key, used when ssh-keygen is not installed.
FALLBACK_ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEVkE8T2hCeLoy4exT3nH7+vohhRSg4vMXHlKGhB1CRn "
    "nubis-conformance"
)

os.environ["NO_PROXY"] = ",".join(
    x for x in [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"] if x
)
os.environ["no_proxy"] = os.environ["NO_PROXY"]


# --------------------------------------------------------------------------------------
# Waiting and asserting


def wait_until(fn: Callable[[], Any], timeout: float = 30, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Call fn until it returns something truthy; return that. Fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")
        time.sleep(interval)


def expect_error(code: str | Iterable[str], fn: Callable, *args, **kwargs) -> TencentCloudSDKException:
    """Call fn and assert it raises TencentCloudSDKException with exactly `code` (or one of
    the codes in a tuple). Returns the exception."""
    codes = (code,) if isinstance(code, str) else tuple(code)
    try:
        result = fn(*args, **kwargs)
    except TencentCloudSDKException as e:
        assert e.code in codes, f"expected error {' or '.join(codes)}, got {e.code}: {e.message}"
        assert e.requestId, f"error {e.code} carries no RequestId"
        return e
    raise AssertionError(f"expected error {' or '.join(codes)}, but the call succeeded: {result!r}")


def malformed_instance_id_code(instance_id: str) -> str:
    """The code for a malformed instance ID. Seed 000 names `ins-1122` (wrong length) as
    InvalidInstanceId.Malformed. InvalidParameterValue.InstanceIdMalformed is used for IDs
    without the `ins-` prefix when docs/tencent-errors.md documents it, else the same code."""
    if instance_id.startswith("ins-"):
        return "InvalidInstanceId.Malformed"
    doc = REPO / "docs" / "tencent-errors.md"
    if doc.exists() and "InvalidParameterValue.InstanceIdMalformed" in doc.read_text():
        return "InvalidParameterValue.InstanceIdMalformed"
    return "InvalidInstanceId.Malformed"


def new_password(length: int = 16) -> str:
    """A password valid for Linux and Windows: 4 classes, no leading '/', no user name."""
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "Nb7!" + "".join(secrets.choice(alphabet) for _ in range(length - 4))
        if not any(u in pw.lower() for u in ("root", "administrator", "ubuntu", "alice", "rescue")):
            return pw


def unique_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def random_instance_id() -> str:
    return "ins-" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def same_key(a: str, b: str) -> bool:
    """Two OpenSSH public keys are the same key (type and body; comments may differ)."""
    return a.split()[:2] == b.split()[:2]


def ssh_public_key(tmp_dir: Path) -> str:
    """A fresh ed25519 public key from ssh-keygen, or a fixed valid one without it."""
    if shutil.which("ssh-keygen"):
        path = tmp_dir / f"id_{secrets.token_hex(3)}"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nubis-conformance", "-f", str(path)],
            check=True, stdin=subprocess.DEVNULL,
        )
        return (path.with_suffix(".pub")).read_text().strip()
    return FALLBACK_ED25519


# --------------------------------------------------------------------------------------
# The official Python SDK


class RateLimitRetryer(StandardRetryer):
    """Retry only RequestLimitExceeded (the SDK's own retry hook): the default server keeps
    Tencent's documented rate limits on, and a test must not fail on them by accident."""

    def __init__(self):
        super().__init__(max_attempts=20, backoff_fn=lambda n: min(0.1 * (n + 1), 1.0))

    @staticmethod
    def should_retry(resp, err):
        return isinstance(err, TencentCloudSDKException) and str(err.code).startswith("RequestLimitExceeded")

    def send_request(self, fn):
        # The SDK's StandardRetryer.send_request keeps the first attempt's error across
        # attempts: once a call was throttled, a later success is retried again and the call
        # finally raises the stale RequestLimitExceeded (and repeats a RunInstances 20 times).
        # Same loop, with the error reset per attempt.
        err = None
        for n in range(self._max_attempts):
            try:
                return_value, err = fn(), None
            except TencentCloudSDKException as e:
                return_value, err = None, e
            if not self.should_retry(return_value, err):
                if err:
                    raise err
                return return_value
            sleep = self._backoff_fn(n)
            self.on_retry(n, sleep, return_value, err)
            time.sleep(sleep)
        raise err


class Cvm:
    """An official CvmClient plus two conveniences: `call` builds the SDK's typed request
    model from keyword arguments and returns the typed response as a dict; `raw` sends a
    params dict as-is through the SDK's call_json (for parameters the model does not know)."""

    def __init__(self, endpoint: str, *, signature: str = "TC3-HMAC-SHA256", method: str = "POST",
                 secret_id: str = ADMIN_KEY_ID, secret_key: str = ADMIN_KEY_SECRET,
                 region: str = REGION, retry: bool = True, timeout: int = 60,
                 language: str = "en-US"):
        hp = HttpProfile(endpoint=endpoint, protocol="http", reqMethod=method, reqTimeout=timeout)
        cp = ClientProfile(httpProfile=hp, signMethod=signature, language=language,
                           retryer=RateLimitRetryer() if retry else None)
        self.client = cvm_client.CvmClient(credential.Credential(secret_id, secret_key), region, cp)

    def call(self, action: str, **params) -> dict:
        req = getattr(models, action + "Request")()
        known = {k[1:] for k in vars(req) if k != "_headers"}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"{action}Request has no {sorted(unknown)}; use raw() for those")
        req._deserialize(params)
        resp = getattr(self.client, action)(req)
        return json.loads(resp.to_json_string())

    def raw(self, action: str, params: dict | None = None) -> dict:
        return self.client.call_json(action, params or {})["Response"]


def describe(cvm: Cvm, instance_id: str) -> dict | None:
    got = cvm.call("DescribeInstances", InstanceIds=[instance_id])["InstanceSet"] or []
    return got[0] if got else None


def describe_many(cvm: Cvm, ids: list[str]) -> dict[str, dict]:
    got = cvm.call("DescribeInstances", InstanceIds=ids, Limit=100)["InstanceSet"] or []
    return {i["InstanceId"]: i for i in got}


def wait_state(cvm: Cvm, instance_id: str, state: str | tuple | None, timeout: float = 30,
               interval: float = 0.05) -> dict | None:
    """Poll until InstanceState is `state` (or one of a tuple); None waits for the instance
    to disappear. Returns the instance."""
    want = (state,) if isinstance(state, str) or state is None else tuple(state)

    def check():
        inst = describe(cvm, instance_id)
        if inst is None:
            return {"gone": True} if None in want else None
        return inst if inst["InstanceState"] in want else None

    got = wait_until(check, timeout, interval, f"{instance_id} to be {want}")
    return None if got.get("gone") else got


def wait_op(cvm: Cvm, instance_id: str, request_id: str | None = None, timeout: float = 60) -> dict:
    """Poll until LatestOperationState is no longer OPERATING (and, when request_id is given,
    the latest operation is that request's). Returns the instance."""

    def check():
        inst = describe(cvm, instance_id)
        assert inst is not None, f"{instance_id} vanished while waiting for its operation"
        if request_id is not None and inst["LatestOperationRequestId"] != request_id:
            return None
        return inst if inst["LatestOperationState"] not in (None, "OPERATING") else None

    return wait_until(check, timeout, 0.05, f"the operation on {instance_id} to finish")


def wait_settled(cvm: Cvm, instance_id: str, state: str, request_id: str | None = None,
                 timeout: float = 60) -> dict:
    """Poll until the instance is `state` with no operation running (and, with request_id,
    that request's operation is the latest). Returns the instance."""

    def check():
        inst = describe(cvm, instance_id)
        if inst is None or inst["InstanceState"] != state or inst["LatestOperationState"] == "OPERATING":
            return None
        if request_id is not None and inst["LatestOperationRequestId"] != request_id:
            return None
        return inst

    return wait_until(check, timeout, 0.05, f"{instance_id} to settle in {state}")


def assert_op(inst: dict, action: str, request_id: str, state: str = "SUCCESS") -> None:
    got = (inst["LatestOperation"], inst["LatestOperationState"], inst["LatestOperationRequestId"])
    assert got == (action, state, request_id), (
        f"{inst['InstanceId']}: latest operation {got}, want {(action, state, request_id)}; "
        f"error: {inst.get('LatestOperationErrorMsg')}"
    )


# --------------------------------------------------------------------------------------
# Catalogue picks and instances


@dataclass(frozen=True)
class Catalog:
    zone: str
    linux_image: str
    windows_image: str


@dataclass
class Inst:
    id: str
    password: str
    user: str  # the administrator account (root / Administrator)
    os: str


def launch(cvm: Cvm, catalog: Catalog, os_family: str = "linux", count: int = 1,
           password: str | None = None, name: str | None = None, state: str = "RUNNING",
           **extra) -> list[Inst]:
    """RunInstances and wait until each instance is `state` (RUNNING, STOPPED, or None for
    no waiting). Returns the instances with their password and administrator account."""
    password = password or new_password()
    image = catalog.windows_image if os_family == "windows" else catalog.linux_image
    resp = cvm.call("RunInstances", Placement={"Zone": catalog.zone}, ImageId=image,
                    InstanceCount=count, InstanceName=name or unique_name("conf"),
                    LoginSettings={"Password": password}, **extra)
    ids = resp["InstanceIdSet"]
    assert len(ids) == count, resp
    out = []
    for iid in ids:
        user = "Administrator" if os_family == "windows" else "root"
        if state is not None:
            inst = wait_settled(cvm, iid, "RUNNING")
            user = inst.get("DefaultLoginUser") or user
        out.append(Inst(iid, password, user, os_family))
    if state == "STOPPED":
        rid = cvm.call("StopInstances", InstanceIds=ids)["RequestId"]
        for iid in ids:
            wait_settled(cvm, iid, "STOPPED", rid)
    return out


def latest(cvm: Cvm, iid: str) -> tuple:
    """The LatestOperation triple, to assert that a refused request changed nothing."""
    inst = describe(cvm, iid)
    return inst["InstanceState"], inst["LatestOperation"], inst["LatestOperationRequestId"]


# --------------------------------------------------------------------------------------
# The nubis admin API (docs/admin-api.md)


class Admin:
    def __init__(self, server: "Server"):
        self.server = server
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.auth = (ADMIN_KEY_ID, ADMIN_KEY_SECRET)

    def url(self, path: str) -> str:
        return f"{self.server.base_url}/admin/v1/{path.lstrip('/')}"

    def get(self, path: str) -> Any:
        r = self.session.get(self.url(path), timeout=30)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def post(self, path: str, body: dict) -> Any:
        r = self.session.post(self.url(path), json=body, timeout=30)
        assert r.status_code in (200, 204), f"POST {path} {body}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def instance(self, iid: str) -> dict:
        return self.get(f"instances/{iid}")

    def guest(self, iid: str) -> dict:
        return self.get(f"instances/{iid}/guest")

    def check_password(self, iid: str, user: str, password: str) -> bool:
        return self.post(f"instances/{iid}/check-password", {"user": user, "password": password})["accepted"]

    def restrict(self, iid: str, restriction: str) -> None:
        self.post(f"instances/{iid}/restrict", {"restriction": restriction})

    def faults(self, iid: str, **faults) -> None:
        self.post(f"instances/{iid}/faults", faults)

    def attributes(self, iid: str, **attrs) -> None:
        self.post(f"instances/{iid}/attributes", attrs)

    def kms_key(self, key_id: str, state: str) -> None:
        """Register a KMS key in the admin key registry (enabled / disabled / unauthorized /
        kms_unauthorized / deleted)."""
        self.post(f"kms-keys/{key_id}", {"state": state})

    def operations(self, iid: str) -> list[dict]:
        return self.get(f"operations?instance={iid}")

    def by_request(self, request_id: str) -> list[dict]:
        got = self.get(f"operations/by-request/{request_id}")
        return got if isinstance(got, list) else [got]

    # The operation records come from the store, and the engine records an operation's end
    # just after it shows in memory (the instance, its LatestOperation and lock): right after
    # an instance settles, its record may still say OPERATING for a moment (longer on a loaded
    # machine: one SQLite commit). Tests that read the records wait for them to settle.

    def finished_by_request(self, request_id: str, timeout: float = 30) -> list[dict]:
        """by_request once every operation of the request is recorded as finished."""
        return wait_until(lambda: (ops := self.by_request(request_id))
                          and all(o["state"] != "OPERATING" for o in ops) and ops,
                          timeout, 0.05, f"the operations of {request_id} to be recorded finished")

    def finished_operations(self, iid: str, timeout: float = 30) -> list[dict]:
        """operations(iid) once none of them is recorded as OPERATING."""
        return wait_until(lambda: (ops := self.operations(iid))
                          and all(o["state"] != "OPERATING" for o in ops) and ops,
                          timeout, 0.05, f"the operations of {iid} to be recorded finished")


def system_disk(guest: dict) -> str:
    disks = [d["id"] for d in guest["disks"] if d["role"] == "system"]
    assert len(disks) == 1, f"want one system disk, guest has {guest['disks']}"
    return disks[0]


# --------------------------------------------------------------------------------------
# A nubis server process

RUNNING_SERVERS: list["Server"] = []
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- PostgreSQL (docs/postgres.md): databases of the machine's server for servers to use

TEST_DATABASE_URL = os.environ.get("NUBIS_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")


def psql(url: str, sql: str) -> str:
    """One statement through psql (PostgreSQL's own client; no Python driver needed)."""
    r = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"psql {sql!r} on {url}: {r.stderr.strip()}"
    return r.stdout.strip()


def database_url(name: str, url: str = TEST_DATABASE_URL) -> str:
    """`url` with its database replaced by `name`."""
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{name}" + (f"?{query}" if query else "")


def create_database() -> str:
    """A new, empty database with a random name (drop it with `drop_database`)."""
    name = f"nubis_conf_{secrets.token_hex(12)}"
    psql(TEST_DATABASE_URL, f"CREATE DATABASE {name}")
    return name


def drop_database(name: str) -> None:
    psql(TEST_DATABASE_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class PortTaken(RuntimeError):
    """nubis could not bind the port picked for it (someone took it in between)."""


class Child:
    """A process of the suite's (a server, an agent): killed or stopped, its log read back. A
    running one is in RUNNING_SERVERS, whose logs the conftest shows for a failing test."""

    name: str
    root: Path
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen | None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
            self.proc = None
        if self in RUNNING_SERVERS:
            RUNNING_SERVERS.remove(self)

    def log_tail(self, lines: int = 200, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        text = ANSI_ESCAPE.sub("", text)
        return "\n".join(text.splitlines()[-lines:])


class Server(Child):
    """One `nubis serve` process on a free port with its own data dir. stdout/stderr go to
    `log_path` (the conftest prints the part of it written during a failing test)."""

    def __init__(self, name: str, binary: str, root: Path, env: dict[str, str] | None = None,
                 port: int = 0):
        self.name = name
        self.binary = binary
        self.root = root
        self.data_dir = root / "data"
        self.log_path = root / "nubis.log"
        self.home = root / "home"  # HOME for tccli, so no user config leaks in
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self.env_overrides = dict(env or {})
        self.proc: subprocess.Popen | None = None
        # A fixed port (a cluster node behind a load balancer keeps its port across restarts);
        # 0 picks a free one at every start.
        self.fixed_port = port
        self.port = port
        self.admin = Admin(self)

    # -- process control
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUBIS_")}
        env.update({
            "NUBIS_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID,
            "NUBIS_ADMIN_ACCESS_KEY_SECRET": ADMIN_KEY_SECRET,
            "NUBIS_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "NUBIS_SIM_TIME_SCALE": "0.1",
            "RUST_BACKTRACE": "1",
            "NO_COLOR": "1",  # plain log lines (tracing's ANSI colours) in nubis.log
        })
        env.update(self.env_overrides)
        return env

    def start(self, timeout: float = 60) -> "Server":
        """Start on a free port and wait for /healthz. The port is picked by binding port 0 and
        closing it, so another process (a server of another xdist worker, or a client's
        ephemeral source port) can take it before nubis binds it: then nubis exits with
        "binding ... Address in use" and the start is retried on a new port. /healthz counts
        only once this process has logged its own banner for this port (a healthz answered
        by whoever else holds the port must not pass for ours)."""
        for attempt in range(5):
            try:
                return self._start_once(timeout)
            except PortTaken:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> "Server":
        assert self.proc is None, "already running"
        self.port = self.fixed_port or free_port()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {self.name}: starting on port {self.port} =====\n".encode())
            log.flush()
            offset = log.tell()
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data", str(self.data_dir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env(),
            )
        if self not in RUNNING_SERVERS:
            RUNNING_SERVERS.append(self)
        banner = f"127.0.0.1:{self.port}"  # in the banner ("nubis listening on http://...")
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                since = self.log_tail(200, offset)
                if "address already in use" in since.lower() or "os error 98" in since.lower():
                    raise PortTaken(since)
                raise RuntimeError(f"nubis ({self.name}) exited with {rc} at start-up:\n{self.log_tail()}")
            try:
                if banner in self.log_tail(400, offset) and \
                        requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nubis ({self.name}) not healthy after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    # -- addresses and clients
    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def creds(self) -> tuple[str, str]:
        return ADMIN_KEY_ID, ADMIN_KEY_SECRET

    def cvm(self, signature: str = "TC3-HMAC-SHA256", method: str = "POST", **kw) -> Cvm:
        return Cvm(self.endpoint, signature=signature, method=method, **kw)

    def tccli(self, action: str, *args: str, timeout: float = 120) -> tuple[int, Any]:
        """Run `tccli cvm <action> ...` against this server. Returns (exit code, parsed JSON
        stdout) on success, (exit code, stderr text) on failure."""
        exe = Path(sys.executable).parent / "tccli"
        cmd = [str(exe) if exe.exists() else "tccli", "cvm", action,
               "--endpoint", self.base_url, "--region", REGION,
               "--secretId", ADMIN_KEY_ID, "--secretKey", ADMIN_KEY_SECRET, *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TENCENTCLOUD_", "TCCLI_"))}
        env["HOME"] = str(self.home)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if p.returncode == 0:
            return 0, json.loads(p.stdout)
        return p.returncode, p.stderr


# --------------------------------------------------------------------------------------
# An independent Tencent signer (spec §3a, §3b), for requests no official client makes


@dataclass
class Tc3:
    hashed_payload: str
    canonical_request: str
    canonical_request_hash: str
    date: str
    string_to_sign: str
    k_date: bytes
    k_service: bytes
    k_signing: bytes
    signature: str

    def authorization(self, secret_id: str, service: str = "cvm",
                      signed_headers: str = "content-type;host") -> str:
        return (f"TC3-HMAC-SHA256 Credential={secret_id}/{self.date}/{service}/tc3_request, "
                f"SignedHeaders={signed_headers}, Signature={self.signature}")


def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_sign(secret_key: str, *, method: str, host: str, content_type: str, payload: bytes,
             timestamp: int, query: str = "", service: str = "cvm") -> Tc3:
    hashed = hashlib.sha256(b"" if method == "GET" else payload).hexdigest()
    canonical = "\n".join([
        method, "/", query if method == "GET" else "",
        f"content-type:{content_type}\nhost:{host}\n",
        "content-type;host", hashed,
    ])
    canonical_hash = hashlib.sha256(canonical.encode()).hexdigest()
    date = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
    sts = f"TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{canonical_hash}"
    k_date = _hmac256(("TC3" + secret_key).encode(), date)
    k_service = _hmac256(k_date, service)
    k_signing = _hmac256(k_service, "tc3_request")
    sig = hmac.new(k_signing, sts.encode(), hashlib.sha256).hexdigest()
    return Tc3(hashed, canonical, canonical_hash, date, sts, k_date, k_service, k_signing, sig)


def legacy_string_to_sign(method: str, host: str, params: dict[str, Any], path: str = "/") -> str:
    joined = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "Signature")
    return f"{method}{host}{path}?{joined}"


def legacy_sign(secret_key: str, string_to_sign: str, method: str = "HmacSHA256") -> str:
    digest = hashlib.sha256 if method == "HmacSHA256" else hashlib.sha1
    return base64.b64encode(hmac.new(secret_key.encode(), string_to_sign.encode(), digest).digest()).decode()


def tc3_post(server: Server, action: str, params: dict, *, timestamp: int | None = None,
             secret_id: str = ADMIN_KEY_ID, secret_key: str = ADMIN_KEY_SECRET,
             region: str | None = REGION, version: str = "2017-03-12",
             headers: dict | None = None) -> requests.Response:
    """A TC3-signed POST built by hand (raw requests), exactly as the SDK would send it."""
    ts = int(time.time()) if timestamp is None else timestamp
    body = json.dumps(params).encode()
    ct = "application/json"
    sig = tc3_sign(secret_key, method="POST", host=server.endpoint, content_type=ct,
                   payload=body, timestamp=ts)
    h = {
        "Host": server.endpoint, "Content-Type": ct, "X-TC-Action": action,
        "X-TC-Version": version, "X-TC-Timestamp": str(ts),
        "Authorization": sig.authorization(secret_id),
    }
    if region:
        h["X-TC-Region"] = region
    h.update(headers or {})
    s = requests.Session()
    s.trust_env = False
    return s.post(server.base_url + "/", data=body, headers=h, timeout=30)


# ======================================================================================
# Alibaba Cloud ECS, RPC API 2014-05-26 (shared/specs/aliyun-ecs.md)
#
# Two official client generations, unchanged:
# - legacy: aliyun-python-sdk-core (AcsClient, HMAC-SHA1 v1 signature, every parameter in
#   the query string) + aliyun-python-sdk-ecs (one RpcRequest class per action);
# - Tea/Darabonba: alibabacloud-ecs20140526 on alibabacloud-tea-openapi (ACS3-HMAC-SHA256,
#   x-acs-* headers, typed request and response models).
# Both wrappers below take *wire* parameter names (`InstanceId`, `ForceStop`, `InstanceIds`)
# so one test body can drive either generation, and raise EcsError on an error answer.

import importlib  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import quote  # noqa: E402

from aliyunsdkcore.acs_exception.exceptions import ServerException as AcsServerException  # noqa: E402
from aliyunsdkcore.client import AcsClient  # noqa: E402
from aliyunsdkcore.request import CommonRequest  # noqa: E402
from alibabacloud_ecs20140526 import models as tea_models  # noqa: E402
from alibabacloud_ecs20140526.client import Client as TeaEcsClient  # noqa: E402
from alibabacloud_tea_openapi import utils_models as tea_openapi_models  # noqa: E402
from alibabacloud_tea_openapi.utils import Utils as TeaUtils  # noqa: E402
from darabonba.runtime import RuntimeOptions as TeaRuntimeOptions  # noqa: E402
from Tea.exceptions import TeaException  # noqa: E402

ALI_REGION = "cn-hangzhou"
ALI_VERSION = "2014-05-26"
ALI_GENERATIONS = ("legacy", "tea")
# What the catalogue is expected to hold (core/catalog.rs spelled the Alibaba way).
ALI_EXPECTED_ZONE = "cn-hangzhou-h"
ALI_EXPECTED_INSTANCE_TYPE = "ecs.s5.medium4"

# Codes the specs leave open, pinned here in one place (see the report / docs):
# - a region that is listed or unknown but not served. ECS documents
#   `InvalidRegionId.NotFound` / 404 ("The specified RegionId does not exist.");
#   the spec's table lists plain `InvalidRegionId` under 400 "(some 404)".
ALI_UNSUPPORTED_REGION = (404, "InvalidRegionId.NotFound")
# - RegionId absent on an action that requires it: the POP gateway's `Missing<Param>` form
#   ("RegionId is mandatory for this action."), as the spec's 400 row lists it.
ALI_MISSING_REGION = (400, "MissingRegionId")
ALI_DRY_RUN_MESSAGE = "Request validation has been passed with DryRun flag set."

# Parameters that travel as one JSON-array string rather than as `Name.N` (spec §2).
ALI_JSON_ARRAY_PARAMS = frozenset({
    "InstanceIds", "KeyPairNames", "PrivateIpAddresses", "PublicIpAddresses",
    "InnerIpAddresses", "EipAddresses", "RdmaIpAddresses", "DeploymentSetIds",
})

ALI_REQUEST_ID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
ALI_INSTANCE_ID = re.compile(r"i-[0-9a-z]{20}")


class EcsError(Exception):
    """An error answer from the Alibaba dialect, whichever client saw it."""

    def __init__(self, status: int | None, code: str | None, message: str | None,
                 request_id: str | None, native: BaseException | None = None,
                 data: dict | None = None):
        super().__init__(f"HTTP {status} {code}: {message} (RequestId {request_id})")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.native = native
        self.data = data or {}


def ecs_error_of(exc: BaseException) -> EcsError | None:
    """Normalise an exception of either SDK generation; None if it is not an error answer.

    legacy core: ServerException(code, msg, http_status, request_id) — get_http_status(),
    get_error_code(), get_error_msg(), get_request_id().
    Tea (tea-openapi 0.4.6): ClientException (4xx) / ServerException (5xx) /
    ThrottlingException (when `x-acs-retry-after` > 0), all AlibabaCloudException →
    darabonba ResponseException → Tea TeaException. The status is in `.status_code`, in
    `.statusCode` and in `.data["statusCode"]`; `.code` is the Code; `.message` is
    "code: <status>, <Message> request id: <id>" (the raw Message is `.data["Message"]`);
    `.request_id` is f"{RequestId}" (the string "None" when the body had none)."""
    if isinstance(exc, EcsError):
        return exc
    if isinstance(exc, AcsServerException):
        return EcsError(exc.get_http_status(), exc.get_error_code(), exc.get_error_msg(),
                        exc.get_request_id(), exc)
    if isinstance(exc, TeaException):
        data = exc.data if isinstance(exc.data, dict) else {}
        statuses = {s for s in (getattr(exc, "status_code", None), getattr(exc, "statusCode", None),
                                data.get("statusCode")) if s is not None}
        assert len(statuses) <= 1, f"Tea exception with inconsistent statuses {statuses}: {exc!r}"
        status = statuses.pop() if statuses else None
        if status is None:
            return None  # not an HTTP error answer (e.g. a client-side failure)
        request_id = data.get("RequestId") or getattr(exc, "request_id", None)
        message = data.get("Message", exc.message)
        return EcsError(status, exc.code, message, request_id, exc, data)
    return None


def expect_ecs_error(status: int, code: str | Iterable[str], fn: Callable, *args, **kwargs) -> EcsError:
    """Call fn and assert it fails with exactly HTTP `status` and `code` (or one of the
    codes in a tuple), with a RequestId. Returns the normalised error."""
    codes = (code,) if isinstance(code, str) else tuple(code)
    try:
        result = fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - normalised below, anything else re-raised
        err = ecs_error_of(e)
        if err is None:
            raise
        assert (err.status, err.code) in {(status, c) for c in codes}, (
            f"expected HTTP {status} {' or '.join(codes)}, got HTTP {err.status} {err.code}: {err.message}"
        )
        assert err.request_id and err.request_id != "None", f"error {err.code} carries no RequestId"
        return err
    raise AssertionError(f"expected HTTP {status} {' or '.join(codes)}, but the call succeeded: {result!r}")


def ali_flatten(params: dict[str, Any]) -> dict[str, Any]:
    """Wire encoding of RPC parameters (spec §2): None dropped; JSON-array parameters as one
    JSON string; other lists as 1-based `Name.N` (lists of dicts as `Name.N.Key`); dicts as
    `Name.Key`. Scalars are left as they are (both SDKs send Python bools as str(): True)."""
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                put(f"{key}.{k}", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value, 1):
                put(f"{key}.{i}", v)
        else:
            out[key] = value

    for name, value in params.items():
        if isinstance(value, (list, tuple)) and name in ALI_JSON_ARRAY_PARAMS:
            out[name] = json.dumps(list(value))
        else:
            put(name, value)
    return out


def retry_throttled(fn: Callable[[], Any], throttled: Callable[[Exception], bool]) -> Any:
    """`fn()`, called again (up to 20 times, backing off to 1 s) while it raises an error
    `throttled` says is a rate limit: the default server keeps rate limits on, and a helper
    call must not fail on them by accident."""
    for attempt in range(20):
        try:
            return fn()
        except Exception as e:
            if not throttled(e) or attempt == 19:
                raise
            time.sleep(min(0.1 * (attempt + 1), 1.0))


def _with_throttling_retry(retry: bool, fn: Callable[[], Any]) -> Any:
    """[`retry_throttled`] for the ECS clients (rate-limit tests pass retry=False)."""
    return retry_throttled(fn, lambda e: retry and isinstance(e, EcsError)
                           and str(e.code).startswith("Throttling"))


class EcsLegacy:
    """The legacy client: AcsClient + the per-action request classes of aliyun-python-sdk-ecs
    (`call`), or CommonRequest (`common`), each pointed at the server with set_endpoint
    (plain HTTP is that generation's default)."""

    generation = "legacy"

    def __init__(self, endpoint: str, *, access_key_id: str = ADMIN_KEY_ID,
                 access_key_secret: str = ADMIN_KEY_SECRET, region: str = ALI_REGION,
                 retry: bool = True, timeout: int = 60):
        self.endpoint = endpoint
        self.region = region
        self.retry = retry
        # auto_retry is the SDK's own policy (Describe* and ClientToken APIs on 5xx/Throttling);
        # it also makes the SDK fill in a ClientToken for RunInstances/CreateInstance.
        self.client = AcsClient(access_key_id, access_key_secret, region, auto_retry=retry,
                                timeout=timeout, connect_timeout=10)

    def request(self, action: str, params: dict[str, Any]):
        """The official typed request for `action` with `params` set (scalars through their
        set_<Name> setter, which must exist; lists and structs flattened as the SDK's own
        RepeatList setters do)."""
        try:
            module = importlib.import_module(f"aliyunsdkecs.request.v20140526.{action}Request")
        except ModuleNotFoundError:
            raise ValueError(f"aliyun-python-sdk-ecs has no {action}Request; use common()") from None
        req = getattr(module, f"{action}Request")()
        req.set_endpoint(self.endpoint)
        for name, value in params.items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)) and name in ALI_JSON_ARRAY_PARAMS:
                value = json.dumps(list(value))
            if isinstance(value, (list, tuple, dict)):
                for k, v in ali_flatten({name: value}).items():
                    req.add_query_param(k, v)
                continue
            setter = getattr(req, f"set_{name}", None)
            if setter is None:
                raise ValueError(f"{action}Request has no set_{name}; use common() for it")
            setter(value)
        return req

    def common_request(self, action: str, params: dict[str, Any], accept_format: str | None = None):
        req = CommonRequest(domain=self.endpoint, version=ALI_VERSION, action_name=action)
        req.set_method("POST")
        req.set_protocol_type("http")
        if accept_format:
            req.set_accept_format(accept_format)
        for k, v in ali_flatten(params).items():
            req.add_query_param(k, v)
        return req

    def _do(self, req) -> dict:
        def once():
            try:
                return json.loads(self.client.do_action_with_exception(req))
            except AcsServerException as e:
                raise ecs_error_of(e) from e
        return _with_throttling_retry(self.retry, once)

    def call(self, action: str, **params) -> dict:
        return self._do(self.request(action, params))

    def common(self, action: str, **params) -> dict:
        return self._do(self.common_request(action, params))

    def raw(self, action: str, accept_format: str = "XML", **params) -> tuple[int, dict, bytes]:
        """(HTTP status, headers, body) of a CommonRequest in the given Format, unparsed
        (AcsClient.get_response: the SDK's own undecoded path; do_action_with_exception
        would force Format=JSON)."""
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return self.client.get_response(self.common_request(action, params, accept_format))


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


class EcsTea:
    """The Tea client: alibabacloud_ecs20140526.client.Client over plain HTTP. `call` builds
    the typed <Action>Request model from wire names (Model().from_map) and returns the typed
    response body as a dict (so a response the typed model cannot read fails here, spec Q2);
    `generic` goes through the SDK's call_api with a plain query."""

    generation = "tea"

    def __init__(self, endpoint: str, *, access_key_id: str = ADMIN_KEY_ID,
                 access_key_secret: str = ADMIN_KEY_SECRET, region: str = ALI_REGION,
                 retry: bool = True, timeout: int = 60):
        self.endpoint = endpoint
        self.region = region
        self.retry = retry
        config = tea_openapi_models.Config(
            access_key_id=access_key_id, access_key_secret=access_key_secret,
            endpoint=endpoint, protocol="http", region_id=region,
            read_timeout=timeout * 1000, connect_timeout=10_000,
        )
        self.client = TeaEcsClient(config)

    def model(self, action: str, params: dict[str, Any]):
        """The typed request. RegionId defaults to the client's region where the action has
        one (a Tea request sends only what the model holds); pass RegionId=None to omit it."""
        cls = getattr(tea_models, f"{action}Request")
        wire = {}
        for name, value in params.items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)) and name in ALI_JSON_ARRAY_PARAMS:
                value = json.dumps(list(value))
            wire[name] = value
        if "RegionId" not in params and hasattr(cls(), "region_id"):
            wire["RegionId"] = self.region
        req = cls().from_map(wire)
        unknown = set(wire) - set(req.to_map())
        if unknown:
            raise ValueError(f"{action}Request (Tea) has no {sorted(unknown)}; use generic() for those")
        return req

    def _do(self, fn: Callable[[], Any]) -> Any:
        def once():
            try:
                return fn()
            except TeaException as e:
                err = ecs_error_of(e)
                if err is None:
                    raise
                raise err from e
        return _with_throttling_retry(self.retry, once)

    def call(self, action: str, **params) -> dict:
        req = self.model(action, params)
        method = getattr(self.client, _snake(action))
        return self._do(lambda: method(req).body.to_map())

    def generic(self, action: str, **params) -> dict:
        p = tea_openapi_models.Params(
            action=action, version=ALI_VERSION, protocol="HTTP", pathname="/", method="POST",
            auth_type="AK", style="RPC", req_body_type="formData", body_type="json",
        )
        query = TeaUtils.query(ali_flatten(params))
        req = tea_openapi_models.OpenApiRequest(query=query)
        return self._do(lambda: self.client.call_api(p, req, TeaRuntimeOptions())["body"])


Ecs = EcsLegacy | EcsTea


def ecs_client(server: "Server", generation: str = "legacy", **kw) -> Ecs:
    """An official Alibaba client of `generation` ("legacy" or "tea") pointed at `server`."""
    cls = {"legacy": EcsLegacy, "tea": EcsTea}[generation]
    return cls(server.endpoint, **kw)


# -- reading instances -----------------------------------------------------------------


def ecs_instances(ecs: Ecs, ids: list[str]) -> dict[str, dict]:
    got = ecs.call("DescribeInstances", InstanceIds=list(ids), PageSize=100)
    return {i["InstanceId"]: i for i in got["Instances"]["Instance"]}


def ecs_describe(ecs: Ecs, iid: str) -> dict | None:
    return ecs_instances(ecs, [iid]).get(iid)


def lock_reasons(inst: dict) -> list[str]:
    """The LockReason values of an instance's OperationLocks ({"LockReason": [{...}]})."""
    return sorted(lock["LockReason"] for lock in inst["OperationLocks"]["LockReason"])


def ecs_wait_status(ecs: Ecs, iid: str, status: str | tuple | None, timeout: float = 30) -> dict | None:
    """Poll DescribeInstances until Status is `status` (or one of a tuple); None waits for
    the instance to disappear. Returns the instance."""
    want = (status,) if isinstance(status, str) or status is None else tuple(status)

    def check():
        inst = ecs_describe(ecs, iid)
        if inst is None:
            return {"gone": True} if None in want else None
        return inst if inst["Status"] in want else None

    got = wait_until(check, timeout, 0.1, f"{iid} to be {want}")
    return None if got.get("gone") else got


def ecs_wait_settled(ecs: Ecs, admin: Admin, iid: str, status: str, timeout: float = 60) -> dict:
    """Poll until the instance shows `status` and holds no operation lock (the Alibaba
    dialect has no LatestOperationState; the admin API shows the engine's lock)."""

    def check():
        inst = ecs_describe(ecs, iid)
        if inst is None or inst["Status"] != status:
            return None
        return inst if admin.instance(iid)["lock"] is None else None

    return wait_until(check, timeout, 0.1, f"{iid} to settle in {status}")


def ecs_snapshot(ecs: Ecs, admin: Admin, iid: str) -> tuple:
    """What a refused request must leave unchanged: status, locks, restarts, power, and the
    engine's operation lock."""
    inst = ecs_describe(ecs, iid)
    assert inst is not None, f"{iid} vanished"
    guest = admin.guest(iid)
    return (inst["Status"], lock_reasons(inst), len(guest["restarts"]), guest["power"],
            admin.instance(iid)["lock"])


def reboots(admin: Admin, iid: str) -> list[dict]:
    """The guest's reboot events (admin guest `restarts` also records stops), oldest first."""
    return [r for r in admin.guest(iid)["restarts"] if r.get("event", "reboot") == "reboot"]


def random_aliyun_instance_id() -> str:
    return "i-" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(20))


# -- catalogue and instances -----------------------------------------------------------


@dataclass(frozen=True)
class AliCatalog:
    zone: str
    linux_image: str
    windows_image: str
    instance_type: str


def ali_catalog_of(ecs: Ecs) -> AliCatalog:
    zones = [z["ZoneId"] for z in ecs.call("DescribeZones")["Zones"]["Zone"]]
    zone = ALI_EXPECTED_ZONE if ALI_EXPECTED_ZONE in zones else next(z for z in zones if "edge" not in z)
    linux = ecs.call("DescribeImages", OSType="linux", ImageOwnerAlias="system", PageSize=100)["Images"]["Image"]
    windows = ecs.call("DescribeImages", OSType="windows", ImageOwnerAlias="system", PageSize=100)["Images"]["Image"]
    x86 = [i for i in linux if i.get("Architecture", "x86_64") == "x86_64"]
    # Prefer a Linux image whose administrator is root (Ubuntu's is "ubuntu").
    linux_image = next(i["ImageId"] for i in x86 if "ubuntu" not in
                       (i.get("OSName", "") + i.get("Platform", "")).lower())
    windows_image = next(i["ImageId"] for i in windows if i.get("Architecture", "x86_64") == "x86_64")
    types = ecs.call("DescribeInstanceTypes")["InstanceTypes"]["InstanceType"]
    names = [t["InstanceTypeId"] for t in types]
    itype = ALI_EXPECTED_INSTANCE_TYPE if ALI_EXPECTED_INSTANCE_TYPE in names else next(
        t["InstanceTypeId"] for t in types if t.get("CpuArchitecture", "X86") == "X86")
    return AliCatalog(zone, linux_image, windows_image, itype)


@dataclass
class AliInst:
    id: str
    password: str
    user: str
    os: str
    name: str


def ali_launch(ecs: Ecs, admin: Admin, catalog: AliCatalog, os_family: str = "linux", amount: int = 1,
               password: str | None = None, name: str | None = None, status: str | None = "Running",
               **extra) -> list[AliInst]:
    """RunInstances and wait until each instance is settled in `status` ("Running",
    "Stopped", or None for no waiting)."""
    password = password or new_password()
    name = name or unique_name("ali")
    image = catalog.windows_image if os_family == "windows" else catalog.linux_image
    resp = ecs.call("RunInstances", ZoneId=catalog.zone, ImageId=image, InstanceType=catalog.instance_type,
                    Amount=amount, InstanceName=name, Password=password, **extra)
    ids = resp["InstanceIdSets"]["InstanceIdSet"]
    assert len(ids) == amount, resp
    user = "Administrator" if os_family == "windows" else "root"
    if status is not None:
        for iid in ids:
            ecs_wait_settled(ecs, admin, iid, "Running")
    if status == "Stopped":
        ecs.call("StopInstances", InstanceId=ids)
        for iid in ids:
            ecs_wait_settled(ecs, admin, iid, "Stopped")
    return [AliInst(iid, password, user, os_family, name) for iid in ids]


# -- an independent Alibaba signer (spec §3a, §3b), for requests no official client makes
# (a stale timestamp, a replayed nonce). Checked against the spec's vectors and the SDKs in
# test_aliyun_signer_vectors.py.


def ali_percent(s: Any) -> str:
    """RFC 3986 percent-encoding: keep A-Z a-z 0-9 - _ . ~, everything else %XX (upper)."""
    return quote(str(s), safe="-_.~", encoding="utf-8")


def ali_timestamp(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rpc_v1_string_to_sign(method: str, params: dict[str, Any]) -> str:
    canonical = "&".join(f"{ali_percent(k)}={ali_percent(params[k])}"
                         for k in sorted(params, key=ali_percent) if k != "Signature")
    return f"{method}&{ali_percent('/')}&{ali_percent(canonical)}"


def rpc_v1_signature(secret: str, string_to_sign: str) -> str:
    return base64.b64encode(hmac.new((secret + "&").encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()


def rpc_v1_params(action: str, params: dict[str, Any], *, access_key_id: str = ADMIN_KEY_ID,
                  timestamp: str | None = None, nonce: str | None = None, fmt: str = "JSON",
                  region: str | None = ALI_REGION) -> dict[str, str]:
    """The full common + action parameter set the legacy SDK would send (unsigned)."""
    p = {
        "Action": action, "Version": ALI_VERSION, "Format": fmt, "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureType": "",
        "SignatureNonce": nonce or str(uuid.uuid4()), "Timestamp": timestamp or ali_timestamp(),
    }
    if region is not None:
        p["RegionId"] = region
    p.update({k: str(v) for k, v in ali_flatten(params).items()})
    return p


def rpc_v1_sign(params: dict[str, str], secret: str = ADMIN_KEY_SECRET, method: str = "POST") -> tuple[dict, str]:
    """(params with Signature, StringToSign)."""
    sts = rpc_v1_string_to_sign(method, params)
    return {**params, "Signature": rpc_v1_signature(secret, sts)}, sts


def rpc_v1_send(server: "Server", signed: dict[str, str], method: str = "POST") -> requests.Response:
    """Send signed v1 parameters as the SDKs do: all in the query string, empty body."""
    query = "&".join(f"{ali_percent(k)}={ali_percent(v)}" for k, v in signed.items())
    s = requests.Session()
    s.trust_env = False
    return s.request(method, f"{server.base_url}/?{query}", timeout=30)


def acs3_canonical_request(method: str, query: dict[str, str], headers: dict[str, str], payload_hash: str,
                           path: str = "/") -> tuple[str, str]:
    """(CanonicalRequest, SignedHeaders) over every header given."""
    cq = "&".join(f"{ali_percent(k)}={ali_percent(query[k])}" for k in sorted(query, key=ali_percent))
    lower = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed = ";".join(sorted(lower))
    ch = "".join(f"{k}:{lower[k]}\n" for k in sorted(lower))
    return f"{method}\n{path}\n{cq}\n{ch}\n{signed}\n{payload_hash}", signed


def acs3_sign(secret: str, method: str, query: dict[str, str], headers: dict[str, str],
              body: bytes = b"") -> tuple[str, str, str]:
    """(signature hex, SignedHeaders, CanonicalRequest) for ACS3-HMAC-SHA256."""
    canonical, signed = acs3_canonical_request(method, query, headers, hashlib.sha256(body).hexdigest())
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), sts.encode(), hashlib.sha256).hexdigest(), signed, canonical


def acs3_send(server: "Server", action: str, params: dict[str, Any], *, access_key_id: str = ADMIN_KEY_ID,
              secret: str = ADMIN_KEY_SECRET, date: str | None = None, nonce: str | None = None,
              headers: dict[str, str] | None = None) -> requests.Response:
    """A v3 (ACS3-HMAC-SHA256) signed POST built by hand, shaped like the Tea SDK's."""
    query = {k: str(v) for k, v in ali_flatten(params).items()}
    h = {
        "host": server.endpoint, "x-acs-action": action, "x-acs-version": ALI_VERSION,
        "x-acs-date": date or ali_timestamp(), "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(), "accept": "application/json",
    }
    h.update(headers or {})
    sig, signed, _ = acs3_sign(secret, "POST", query, h)
    h["Authorization"] = f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={signed},Signature={sig}"
    qs = "&".join(f"{ali_percent(k)}={ali_percent(v)}" for k, v in query.items())
    s = requests.Session()
    s.trust_env = False
    return s.post(f"{server.base_url}/" + (f"?{qs}" if qs else ""), headers=h, timeout=30)


def ali_error_of(resp: requests.Response) -> tuple[int, str | None]:
    """(HTTP status, Code) of a raw JSON answer; Code None on success."""
    body = resp.json()
    assert body.get("RequestId"), (resp.status_code, body)
    if resp.status_code == 200:
        assert "Code" not in body or body.get("Code") in (None, "", "200"), body
        return 200, None
    assert body.get("Code") and body.get("Message"), body
    return resp.status_code, body["Code"]


# --------------------------------------------------------------------------------------
# Host agents (docs/agents.md)


def agent_headers(host: str, secret: str, path: str, body: bytes, *, date_ms: int | None = None,
                  nonce: str | None = None) -> dict[str, str]:
    """The signature headers of a POST between the control plane and an agent, made
    independently of nubis (docs/agents.md, "Signed requests")."""
    date = int(time.time() * 1000) if date_ms is None else date_ms
    nonce = nonce or secrets.token_hex(16)
    text = "\n".join(["NUBIS1-HMAC-SHA256", "POST", path, host, str(date), nonce,
                      hashlib.sha256(body).hexdigest()])
    sig = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {"x-nubis-host": host, "x-nubis-date": str(date), "x-nubis-nonce": nonce,
            "x-nubis-signature": sig, "content-type": "application/json"}


def register_host(admin: "Admin", host_id: str, zone: str) -> str:
    """POST /admin/v1/hosts; the host's credential."""
    r = admin.session.post(admin.url("hosts"), json={"id": host_id, "zone": zone}, timeout=30)
    assert r.status_code == 201, f"registering host {host_id}: {r.status_code} {r.text}"
    return r.json()["secret"]


def host_views(admin: "Admin") -> dict[str, dict]:
    return {h["id"]: h for h in admin.get("hosts")["hosts"]}


class Agent(Child):
    """One `nubis agent` process (sim driver unless NUBIS_DRIVER says otherwise) for a
    control plane; its data dir is `<root>/agent-<host>-data`."""

    def __init__(self, host_id: str, secret: str, binary: str, root: Path, control_url: str,
                 vcpus: int = 8, memory_mib: int = 32768, env: dict[str, str] | None = None):
        self.name = f"agent-{host_id}"
        self.host_id = host_id
        self.secret = secret
        self.binary = binary
        self.root = root
        self.control_url = control_url
        self.vcpus = vcpus
        self.memory_mib = memory_mib
        self.env_overrides = dict(env or {})
        self.log_path = root / f"{self.name}.log"
        self.data_dir = root / f"{self.name}-data"
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self, timeout: float = 30) -> "Agent":
        assert self.proc is None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUBIS_")}
        env.update({"NUBIS_CONTROL_URL": self.control_url, "NUBIS_HOST_ID": self.host_id,
                    "NUBIS_HOST_SECRET": self.secret, "NUBIS_SIM_TIME_SCALE": "0.1",
                    "NUBIS_DATA": str(self.data_dir), "NO_COLOR": "1",
                    "RUST_BACKTRACE": "1"})
        env.update(self.env_overrides)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {self.name}: starting =====\n".encode())
            log.flush()
            offset = log.tell()
            self.proc = subprocess.Popen(
                [self.binary, "agent", "--vcpus", str(self.vcpus), "--memory-mib", str(self.memory_mib)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        if self not in RUNNING_SERVERS:
            RUNNING_SERVERS.append(self)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_tail(200, offset)
            m = re.search(r"listening on (http://\S+)", text)
            if m:
                self.url = m.group(1)
                return self
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"{self.name} exited at start-up:\n{text}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not listening after {timeout}s:\n{text}")
            time.sleep(0.05)
