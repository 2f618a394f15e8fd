"""Helpers for the hostile-client suite (test_hostile.py): the checks run after every class
of hostile input (the server is alive and healthy, answered no 5xx, logged no panic, and the
fleet listed through the official clients is unchanged), the dialects' error-shape
assertions, and raw sockets for what no HTTP client sends (half a header, a trickle)."""

from __future__ import annotations

import json
import socket
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import requests

from nubis import Server, ecs_client

# What a crashed or poisoned process leaves in its log (Rust panics, aborts, signals).
CRASH_MARKERS = ("panicked", "abort", "stack overflow", "SIGSEGV")
# Error codes that are a server fault however they are wrapped (Tencent answers HTTP 200).
INTERNAL_CODES = {"InternalError", "InternalError.UnknownError", "ServiceUnavailable"}


# --------------------------------------------------------------------------------------
# Error shapes, one per dialect (STYLE/common rules; docs/*-errors.md)


def tencent_error(resp: requests.Response) -> str:
    """Tencent: HTTP 200 {"Response": {"Error": {"Code", "Message"}, "RequestId"}}; the Code."""
    assert resp.status_code == 200, f"Tencent errors are HTTP 200, got {resp.status_code}: {resp.text[:300]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    r = body["Response"]
    assert isinstance(r.get("RequestId"), str) and r["RequestId"], body
    err = r.get("Error")
    assert isinstance(err, dict), f"expected an error, got {str(body)[:300]}"
    assert isinstance(err.get("Code"), str) and err["Code"], body
    assert isinstance(err.get("Message"), str), body
    return err["Code"]


def ali_error(resp: requests.Response, xml: bool = False) -> tuple[int, str]:
    """Alibaba: HTTP 4xx {"RequestId", "HostId", "Code", "Message", "Recommend"} (or the
    same fields under <Error> when Format=XML); (status, Code)."""
    assert 400 <= resp.status_code < 500, f"want 4xx, got {resp.status_code}: {resp.text[:300]}"
    if xml:
        root = ET.fromstring(resp.content)
        fields = {child.tag: (child.text or "") for child in root}
    else:
        assert "json" in resp.headers.get("content-type", ""), (resp.headers, resp.text[:300])
        fields = resp.json()
    for key in ("RequestId", "HostId", "Code", "Message"):
        assert isinstance(fields.get(key), str), f"Alibaba error without {key}: {str(fields)[:300]}"
    assert fields["RequestId"] and fields["Code"], fields
    return resp.status_code, fields["Code"]


def nova_fault(resp: requests.Response) -> tuple[int, str]:
    """Nova: HTTP 4xx {"<faultName>": {"code": N, "message": ...}}; (status, fault name)."""
    assert 400 <= resp.status_code < 500, f"want 4xx, got {resp.status_code}: {resp.text[:300]}"
    body = resp.json()
    assert isinstance(body, dict) and len(body) == 1, body
    name, inner = next(iter(body.items()))
    assert inner.get("code") == resp.status_code, body
    assert isinstance(inner.get("message"), str), body
    return resp.status_code, name


def keystone_error(resp: requests.Response) -> int:
    """Keystone: HTTP 4xx {"error": {"code": N, "title", "message"}}; the status."""
    assert 400 <= resp.status_code < 500, f"want 4xx, got {resp.status_code}: {resp.text[:300]}"
    err = resp.json()["error"]
    assert err["code"] == resp.status_code, err
    assert isinstance(err.get("title"), str) and err["title"], err
    assert isinstance(err.get("message"), str), err
    return resp.status_code


def admin_error(resp: requests.Response) -> tuple[int, str]:
    """Admin API: HTTP 4xx {"error": {"code": "...", "message": "..."}}; (status, code)."""
    assert 400 <= resp.status_code < 500, f"want 4xx, got {resp.status_code}: {resp.text[:300]}"
    assert "json" in resp.headers.get("content-type", ""), (resp.headers, resp.text[:300])
    err = resp.json()["error"]
    assert isinstance(err.get("code"), str) and err["code"], err
    assert isinstance(err.get("message"), str), err
    return resp.status_code, err["code"]


def retry_after(resp: requests.Response) -> int:
    """A 429's Retry-After (delay-seconds), asserted present and sane."""
    value = resp.headers.get("Retry-After")
    assert value is not None, f"429 without Retry-After: {resp.headers}"
    assert value.isdigit() and 0 < int(value) <= 3600, value
    return int(value)


# --------------------------------------------------------------------------------------
# The state a hostile request must not change, read through the official clients


def fleet(server: Server, logins: bool = True) -> dict[str, Any]:
    """Instances and key pairs as each dialect's official client lists them, and (where the
    admin API lists them) Keystone users and access keys. `logins=False` leaves out what
    needs a Keystone or admin login (after a test that got this source throttled)."""
    from test_openstack_support import connect  # openstacksdk, as a user would

    cvm = server.cvm()
    tc_inst = cvm.call("DescribeInstances", Limit=100)["InstanceSet"] or []
    tc_keys = cvm.call("DescribeKeyPairs", Limit=100)["KeyPairSet"] or []
    ecs = ecs_client(server, "legacy")
    ali_inst = ecs.call("DescribeInstances", PageSize=100)["Instances"]["Instance"]
    ali_keys = ecs.call("DescribeKeyPairs", PageSize=50)["KeyPairs"]["KeyPair"]
    got = {
        "tencent.instances": sorted((i["InstanceId"], i["InstanceName"], i["InstanceState"]) for i in tc_inst),
        "tencent.keypairs": sorted((k["KeyId"], k["KeyName"]) for k in tc_keys),
        "aliyun.instances": sorted((i["InstanceId"], i["InstanceName"], i["Status"]) for i in ali_inst),
        "aliyun.keypairs": sorted(k["KeyPairName"] for k in ali_keys),
    }
    if not logins:
        return got
    conn = connect(server)
    try:
        got["nova.servers"] = sorted((s.id, s.name, s.status) for s in conn.compute.servers())
        got["nova.keypairs"] = sorted(k.name for k in conn.compute.keypairs())
    finally:
        conn.close()
    for listing in ("keystone-users", "access-keys"):
        r = server.admin.session.get(server.admin.url(listing), timeout=30)
        if r.status_code in (404, 405):
            continue  # a build whose admin API does not list these
        assert r.status_code == 200, (listing, r.status_code, r.text[:300])
        got[f"admin.{listing}"] = json.dumps(r.json(), sort_keys=True)
    return got


# --------------------------------------------------------------------------------------
# The after-each-class checks


def alive(server: Server) -> bool:
    return server.proc is not None and server.proc.poll() is None


def revive(server: Server) -> None:
    """Start a crashed server again on its data dir, so one crash fails one test only."""
    if server.proc is not None and server.proc.poll() is not None:
        server.proc = None
        server.start()


def new_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


@dataclass
class Watch:
    """What one class of hostile requests saw; `check()` asserts the after-class rules."""

    server: Server
    offset: int
    before: dict[str, Any] | None
    logins: bool = True
    answers: list[tuple[str, int, str]] = field(default_factory=list)
    session: requests.Session = field(default_factory=new_session)

    def __post_init__(self):
        self.session.hooks["response"].append(self._record)

    def _record(self, resp: requests.Response, *args, **kwargs):
        code = ""
        if resp.status_code == 200 and resp.headers.get("content-type", "").startswith("application/json"):
            try:
                code = ((resp.json().get("Response") or {}).get("Error") or {}).get("Code") or ""
            except (ValueError, AttributeError):
                pass
        elif 400 <= resp.status_code and "json" in resp.headers.get("content-type", ""):
            try:
                code = str(resp.json().get("Code") or "")
            except (ValueError, AttributeError):
                pass
        self.answers.append((f"{resp.request.method} {resp.request.url[:120]}", resp.status_code, code))
        return resp

    def note(self, what: str, status: int, code: str = "") -> None:
        """Record an answer obtained outside the session (raw sockets)."""
        self.answers.append((what, status, code))

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.server.base_url + path, **kw)

    def check(self, unchanged: bool = True) -> None:
        server = self.server
        log = server.log_tail(100000, self.offset)
        assert alive(server), f"nubis died (rc {server.proc and server.proc.poll()}):\n{log[-3000:]}"
        crashes = [line for line in log.splitlines() if any(m in line for m in CRASH_MARKERS)]
        assert not crashes, f"crash markers in the log: {crashes[:5]}"
        r = requests.get(f"{server.base_url}/healthz", timeout=30)
        assert r.status_code == 200, f"/healthz {r.status_code} {r.text}"
        bad = [a for a in self.answers if a[1] >= 500 or a[2] in INTERNAL_CODES]
        assert not bad, f"server errors: {bad[:5]}"
        if unchanged and self.before is not None:
            after = fleet(server, self.logins)
            assert after == self.before, f"state changed:\nbefore {self.before}\nafter  {after}"


@contextmanager
def watch(server: Server, *, unchanged: bool = True, logins: bool = True) -> Iterator[Watch]:
    """Snapshot before, run the class, then check: alive, healthy, no 5xx, no crash in the
    log, nothing changed."""
    revive(server)
    offset = server.log_path.stat().st_size if server.log_path.exists() else 0
    w = Watch(server, offset, fleet(server, logins) if unchanged else None, logins)
    yield w
    w.check(unchanged)


# --------------------------------------------------------------------------------------
# Raw sockets


def open_socket(server: Server, timeout: float = 10) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closed_by_peer(s: socket.socket, wait: float = 0.0) -> bool:
    """True once the server has closed (or reset) the connection; any answer it sent before
    closing (a 408) is read and discarded."""
    s.settimeout(wait if wait > 0 else 0.001)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except (socket.timeout, BlockingIOError):
        return False
    except (ConnectionResetError, BrokenPipeError, OSError):
        return True


def answered(s: socket.socket) -> bool:
    """Has the server sent anything on `s`, or closed it? (Reads nothing.)"""
    s.setblocking(False)
    try:
        s.recv(1, socket.MSG_PEEK)  # data, or b"" at the peer's close
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.settimeout(10)


def raw_request(server: Server, data: bytes, timeout: float = 30) -> tuple[int | None, bytes]:
    """Send bytes, read one answer: (status or None if closed without one, raw response)."""
    with open_socket(server, timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                head, sep, rest = buf.partition(b"\r\n\r\n")
                if sep:
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), None)
                    if length is not None and len(rest) >= length:
                        break
        except (ConnectionResetError, socket.timeout):
            pass
    if not buf.startswith(b"HTTP/1."):
        return None, buf
    return int(buf.split(b" ", 2)[1]), buf


def json_body_of(raw: bytes) -> Any:
    return json.loads(raw.partition(b"\r\n\r\n")[2] or b"null")


def wait_for(fn, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(interval)
