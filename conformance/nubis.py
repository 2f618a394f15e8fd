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

    def operations(self, iid: str) -> list[dict]:
        return self.get(f"operations?instance={iid}")

    def by_request(self, request_id: str) -> list[dict]:
        got = self.get(f"operations/by-request/{request_id}")
        return got if isinstance(got, list) else [got]


def system_disk(guest: dict) -> str:
    disks = [d["id"] for d in guest["disks"] if d["role"] == "system"]
    assert len(disks) == 1, f"want one system disk, guest has {guest['disks']}"
    return disks[0]


# --------------------------------------------------------------------------------------
# A nubis server process

RUNNING_SERVERS: list["Server"] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `nubis serve` process on a free port with its own data dir. stdout/stderr go to
    `log_path` (the conftest prints the part of it written during a failing test)."""

    def __init__(self, name: str, binary: str, root: Path, env: dict[str, str] | None = None):
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
        self.port = 0
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
        })
        env.update(self.env_overrides)
        return env

    def start(self, timeout: float = 60) -> "Server":
        assert self.proc is None, "already running"
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {self.name}: starting on port {self.port} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data", str(self.data_dir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env(),
            )
        if self not in RUNNING_SERVERS:
            RUNNING_SERVERS.append(self)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise RuntimeError(f"nubis ({self.name}) exited with {rc} at start-up:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nubis ({self.name}) not healthy after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

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
        return "\n".join(text.splitlines()[-lines:])

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
