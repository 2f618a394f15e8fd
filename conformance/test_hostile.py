"""Hostile clients (issue 10): every class of input an untrusted client can send before or
during authentication, against a real `nubis serve`. After each class (`with watch(...)`):
the process is alive, `/healthz` answers 200, no answer was a 5xx (nor a 200-wrapped
internal error), the log holds no panic/abort/stack overflow/SIGSEGV, and the instances and
key pairs listed through the official clients (Tencent SDK, aliyun SDK, openstacksdk), and
the Keystone users and access keys the admin API lists, are the same as before. Each answer is checked against its dialect's documented error shape
(hostile.py). The module has its own servers (pytest-xdist --dist loadfile safe); a server
that crashed is restarted on its data dir so one crash fails one test only."""

from __future__ import annotations

import json
import resource
import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from unittest import mock
from urllib.parse import urlencode

import pytest
import requests

import nubis
from hostile import (
    admin_error,
    ali_error,
    answered,
    closed_by_peer,
    keystone_error,
    nova_fault,
    open_socket,
    raw_request,
    retry_after,
    revive,
    tencent_error,
    wait_for,
    watch,
)
from nubis import (
    ADMIN_KEY_ID,
    Server,
    ADMIN_KEY_SECRET,
    ADMIN_PASSWORD,
    ALI_VERSION,
    ali_catalog_of,
    ali_launch,
    ali_timestamp,
    ecs_client,
    ecs_error_of,
    launch,
    legacy_sign,
    legacy_string_to_sign,
    rpc_v1_params,
    rpc_v1_send,
    rpc_v1_sign,
    tc3_sign,
    wait_until,
)

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

# Sizes from the issue.
DEEP_SEGMENTS = 20_000
MANY_PARAMS = 100_000
HUGE_VALUE = 1_000_000
DEEP_JSON = 100_000
OVERSIZE = 3 * 1024 * 1024  # the default body limit is 2 MiB
JUNK_PER_DIALECT = 2000
FRESH_NONCES = 1500
RESCOPES = 300
TOKENS_PER_USER = 100  # live Keystone tokens per user, oldest evicted (h-creds tokens.rs)
USER_FAILURES = 5  # failed logins per user, then 429 (h-creds docs/credentials.md)
SOURCE_FAILURES = 20  # failed logins per source address

# Connection-hygiene knobs (README operator table, branch h-hygiene), in seconds.
HEADER_TIMEOUT = 1
IDLE_TIMEOUT = 2
BODY_TIMEOUT = 2
SLOW_CONNECTIONS = 300
SLOW_FD_LIMIT = 256  # below SLOW_CONNECTIONS: the issue's "low fd limit" case
MAX_INFLIGHT = 2


# --------------------------------------------------------------------------------------
# Servers and a small fleet


@pytest.fixture(scope="module")
def hs(server_factory):
    """This module's server (documented rate limits on, instant sim time), holding one
    instance made through each cloud's client and a key pair, so 'nothing changed' has
    something to compare."""
    server = server_factory("hostile", NUBIS_SIM_TIME_SCALE="0")
    cvm = server.cvm()
    zones = cvm.call("DescribeZones")["ZoneSet"]
    zone = next(z["Zone"] for z in zones if z["ZoneState"] == "AVAILABLE" and "edge" not in z["Zone"])
    images = cvm.call("DescribeImages", Filters=[{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}],
                      Limit=100)["ImageSet"]
    linux = next(i["ImageId"] for i in images if i["Platform"] != "Windows"
                 and i.get("Architecture") in (None, "x86_64"))
    server.tencent_catalog = nubis.Catalog(zone, linux, linux)
    launch(cvm, server.tencent_catalog, "linux", 1)
    cvm.call("CreateKeyPair", KeyName="hostile_key", ProjectId=0)
    ecs = ecs_client(server, "legacy")
    server.ali_catalog = ali_catalog_of(ecs)
    ali_launch(ecs, server.admin, server.ali_catalog)
    return server


@pytest.fixture(autouse=True)
def _revive(request):
    """A server crashed by an earlier test is started again on its data dir."""
    if "hs" in request.fixturenames:
        revive(request.getfixturevalue("hs"))


def keystone_body(user: str, password: str, scoped: bool = True) -> dict:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}}}}
    if scoped:
        body["auth"]["scope"] = {"project": {"name": "admin", "domain": {"name": "Default"}}}
    return body


def keystone_token(w, user: str = "admin", password: str = ADMIN_PASSWORD) -> tuple[str, dict]:
    r = w.request("POST", "/identity/v3/auth/tokens", json=keystone_body(user, password))
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"], r.json()["token"]


def tc3_headers(server, action: str, body: bytes, ts: int | None = None,
                ct: str = "application/json") -> dict:
    ts = int(time.time()) if ts is None else ts
    sig = tc3_sign(ADMIN_KEY_SECRET, method="POST", host=server.endpoint, content_type=ct,
                   payload=body, timestamp=ts)
    return {"Host": server.endpoint, "Content-Type": ct, "X-TC-Action": action,
            "X-TC-Version": "2017-03-12", "X-TC-Timestamp": str(ts), "X-TC-Region": nubis.REGION,
            "Authorization": sig.authorization(ADMIN_KEY_ID)}


TENCENT_UNSIGNED = "Action=DescribeZones&Version=2017-03-12&SecretId=x&Signature=x&Timestamp=1&Nonce=1"
ALIYUN_UNSIGNED = (f"Action=DescribeZones&Version={ALI_VERSION}&AccessKeyId=x&Signature=x"
                   "&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=1"
                   "&Timestamp=2026-01-01T00:00:00Z&RegionId=cn-hangzhou")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BAD_ALI = (400, "InvalidParameter")


# --------------------------------------------------------------------------------------
# Deep and huge inputs


def test_deep_flattened_names_before_authentication(hs):
    """The issue's 40 KB GET: a flattened name of 20,000 segments, unauthenticated, on
    both RPC dialects (`.b` names and `.0` list indices; JSON and XML answers). Tencent
    documents a 32 KB GET: the issue's request is RequestSizeLimitExceeded, and a 30 KB GET
    (15,000 segments) and 40 KB form POSTs drive the name bounds."""
    with watch(hs) as w:
        issue = "a" + ".b" * DEEP_SEGMENTS
        r = w.request("GET", f"/?{TENCENT_UNSIGNED}&{issue}=1")
        assert tencent_error(r) == "RequestSizeLimitExceeded"
        # (40 KB each: the HTTP parser's URI limit is 64 KiB)
        for seg, n in ((".b", DEEP_SEGMENTS), (".0", DEEP_SEGMENTS), (".1.b", DEEP_SEGMENTS // 2)):
            name = "a" + seg * n
            short = name[:30_000]
            # A name beyond the dialects' name bounds (256 bytes, 8 parts), refused before the
            # SecretId / AccessKeyId is even looked up: Tencent UnknownParameter, Alibaba
            # InvalidParameter (h-parsers PAIR_LIMITS).
            assert tencent_error(w.request("GET", f"/?{TENCENT_UNSIGNED}&{short}=1")) == "UnknownParameter"
            assert ali_error(w.request("GET", f"/?{ALIYUN_UNSIGNED}&Format=JSON&{name}=1")) == BAD_ALI
            assert ali_error(w.request("GET", f"/?{ALIYUN_UNSIGNED}&Format=XML&{name}=1"), xml=True) == BAD_ALI
            # The same name in a form body, and with a valid signature.
            r = w.request("POST", "/", data=f"{TENCENT_UNSIGNED}&{name}=1", headers=FORM)
            assert tencent_error(r) == "UnknownParameter"
            body = json.dumps({"Filters": [{"Name": "zone", "Values": ["x"]}]}).encode()
            r = w.request("POST", f"/?{name}=1", data=body, headers=tc3_headers(hs, "DescribeInstances", body))
            assert tencent_error(r) == "UnknownParameter"
            signed, _ = rpc_v1_sign(rpc_v1_params("DescribeInstances", {name: "1"}))
            assert ali_error(rpc_v1_send(hs, signed)) == BAD_ALI


def test_many_parameters_and_huge_values(hs):
    """100,000 parameters, 1 MB values, huge headers: each dialect's error shape, or for
    what the HTTP parser refuses (headers beyond its limits) a 4xx or a closed connection.
    Tencent documents a 1 MB legacy-signed POST: beyond it RequestSizeLimitExceeded."""
    many = "&".join(f"p{i}=1" for i in range(MANY_PARAMS))
    huge = "x" * HUGE_VALUE
    with watch(hs) as w:
        # Beyond the parameter count (1,000) and value length (64 KiB) bounds, before the key
        # is looked up.
        r = w.request("POST", "/", data=f"{TENCENT_UNSIGNED}&{many}", headers=FORM)  # 0.7 MB
        assert tencent_error(r) == "InvalidParameter"
        assert ali_error(w.request("POST", "/", data=f"{ALIYUN_UNSIGNED}&{many}", headers=FORM)) == BAD_ALI
        r = w.request("POST", "/", data=f"{TENCENT_UNSIGNED}&InstanceName={huge}", headers=FORM)
        assert tencent_error(r) == "InvalidParameterValue"
        r = w.request("POST", "/", data=f"{TENCENT_UNSIGNED}&InstanceName={'x' * (1 << 20)}", headers=FORM)
        assert tencent_error(r) == "RequestSizeLimitExceeded"  # over 1 MiB
        r = w.request("POST", "/", data=f"{ALIYUN_UNSIGNED}&InstanceName={huge}", headers=FORM)
        assert ali_error(r) == BAD_ALI
        # Signed for real: the huge value reaches the action's own validation.
        body = json.dumps({"InstanceName": huge, "Limit": 1}).encode()
        tencent_error(w.request("POST", "/", data=body, headers=tc3_headers(hs, "DescribeInstances", body)))
        body = json.dumps({"KeyName": huge, "ProjectId": 0}).encode()
        tencent_error(w.request("POST", "/", data=body, headers=tc3_headers(hs, "CreateKeyPair", body)))
        signed, _ = rpc_v1_sign(rpc_v1_params("CreateKeyPair", {"KeyPairName": huge}))
        assert ali_error(w.request("POST", "/", data=urlencode(signed), headers=FORM)) == BAD_ALI
        # Nova and Keystone with a valid token: a 1 MB name is a 400, never a server.
        token, _ = keystone_token(w)
        nova_fault(w.request("POST", "/compute/v2.1/os-keypairs", json={"keypair": {"name": huge}},
                             headers={"X-Auth-Token": token}))
        nova_fault(w.request("GET", "/compute/v2.1/servers/" + "a" * 60_000,
                             headers={"X-Auth-Token": token}))
        # Beyond the HTTP parser's URI limit (64 KiB): its 414, before any dialect.
        r = w.request("GET", "/compute/v2.1/servers/" + "a" * 100_000, headers={"X-Auth-Token": token})
        assert r.status_code == 414, r.status_code
        r = w.request("GET", "/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": token, "X-Subject-Token": "t" * 100_000})
        keystone_error(r)
        # Huge headers: one of 64 KB reaches the dialect; 1 MB or 1,000 of them are the
        # HTTP parser's to refuse (4xx or closed), never a crash.
        r = w.request("POST", "/", data=b"{}", headers={**tc3_headers(hs, "DescribeZones", b"{}"),
                                                        "X-Junk": "j" * 65536})
        assert r.status_code in (200, 431), r.status_code
        if r.status_code == 200:
            assert "Response" in r.json()
        for junk in ([b"X-Junk: " + b"j" * HUGE_VALUE], [b"X-J%d: j" % i for i in range(1000)]):
            status, _ = raw_request(hs, b"\r\n".join([b"GET /?" + TENCENT_UNSIGNED.encode() + b" HTTP/1.1",
                                                      b"Host: x", *junk, b"", b""]))
            assert status is None or 400 <= status < 500, status
            w.note("huge header", status or 0)


def nested(depth: int, kind: str = "list") -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


def test_deeply_nested_json_bodies(hs):
    """100,000-deep JSON arrays and objects to every JSON entry point: Tencent TC3, Nova,
    Keystone (before authentication) and the admin API (401 without credentials, the
    admin API's error shape with them)."""
    with watch(hs) as w:
        token, _ = keystone_token(w)
        for kind in ("list", "object"):
            deep = nested(DEEP_JSON, kind)
            # Beyond Tencent's JSON depth bound (16), checked before the key is looked up.
            body = ('{"Filters":' + deep + "}").encode()
            r = w.request("POST", "/", data=body, headers=tc3_headers(hs, "DescribeInstances", body))
            assert tencent_error(r) == "InvalidParameter"
            r = w.request("POST", "/", data=deep.encode(), headers=tc3_headers(hs, "DescribeInstances", deep.encode()))
            assert tencent_error(r) == "InvalidParameter"
            nova_fault(w.request("POST", "/compute/v2.1/servers", data='{"server":' + deep + "}",
                                 headers={"X-Auth-Token": token, "Content-Type": "application/json"}))
            nova_fault(w.request("POST", "/compute/v2.1/os-keypairs", data=deep,
                                 headers={"X-Auth-Token": token, "Content-Type": "application/json"}))
            keystone_error(w.request("POST", "/identity/v3/auth/tokens", data='{"auth":' + deep + "}",
                                     headers={"Content-Type": "application/json"}))
            r = w.request("POST", "/admin/v1/keystone-users", data=deep,
                          headers={"Content-Type": "application/json"})
            assert admin_error(r)[0] == 401, r.text
            r = w.request("POST", "/admin/v1/keystone-users", data=deep, auth=(ADMIN_KEY_ID, ADMIN_KEY_SECRET),
                          headers={"Content-Type": "application/json"})
            assert admin_error(r)[0] in (400, 413, 422), r.text
        # Malformed JSON without credentials is refused for the credentials first.
        r = w.request("POST", "/admin/v1/instances/x/faults", data="{not json",
                      headers={"Content-Type": "application/json"})
        assert admin_error(r)[0] == 401, r.text
        assert r.headers.get("WWW-Authenticate", "").lower().startswith("basic"), r.headers


# --------------------------------------------------------------------------------------
# Oversize bodies


def test_oversize_bodies_get_each_dialects_error_shape(hs):
    """A body over the limit (default 2 MiB) is refused in the dialect's own shape, with
    Content-Length or chunked, never axum's plain-text 413 (h-hygiene guard.rs): Tencent
    RequestSizeLimitExceeded (HTTP 200), Alibaba 413 InvalidParameter (JSON or XML), Nova
    413 overLimit, Keystone 413, admin API 413 (401 or 413 without credentials: the body is
    never read either way)."""
    big = b"x" * OVERSIZE
    chunked = lambda: iter([big[:1 << 20]] * 3)  # noqa: E731 - no Content-Length
    with watch(hs) as w:
        headers = tc3_headers(hs, "DescribeInstances", big)
        for data in (big, chunked()):
            assert tencent_error(w.request("POST", "/", data=data, headers=headers)) == "RequestSizeLimitExceeded"
        too_large = (413, "InvalidParameter")
        assert ali_error(w.request("POST", f"/?{ALIYUN_UNSIGNED}&Format=JSON", data=big)) == too_large
        assert ali_error(w.request("POST", f"/?{ALIYUN_UNSIGNED}&Format=JSON", data=chunked())) == too_large
        assert ali_error(w.request("POST", f"/?{ALIYUN_UNSIGNED}&Format=XML", data=big), xml=True) == too_large
        r = w.request("POST", "/", data=big, headers={
            "x-acs-action": "DescribeInstances", "x-acs-version": ALI_VERSION,
            "Authorization": "ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host,Signature=x"})
        assert ali_error(r) == too_large
        token, _ = keystone_token(w)
        for data in (big, chunked()):
            r = w.request("POST", "/compute/v2.1/servers", data=data,
                          headers={"X-Auth-Token": token, "Content-Type": "application/json"})
            assert nova_fault(r) == (413, "overLimit")
        r = w.request("POST", "/identity/v3/auth/tokens", data=big, headers={"Content-Type": "application/json"})
        assert keystone_error(r) == 413
        r = w.request("POST", "/admin/v1/keystone-users", data=big, headers={"Content-Type": "application/json"})
        assert admin_error(r)[0] in (401, 413), r.text
        r = w.request("POST", "/admin/v1/keystone-users", data=big, auth=(ADMIN_KEY_ID, ADMIN_KEY_SECRET),
                      headers={"Content-Type": "application/json"})
        assert admin_error(r)[0] == 413, r.text


# --------------------------------------------------------------------------------------
# Slow and idle connections


@pytest.fixture(scope="module")
def slow_server(nubis_bin, tmp_path_factory):
    """A server with short connection timeouts, a small in-flight cap, per-action rate
    limits off (only the cap may shed here) and a low open-file limit, soft and hard (a
    wrapper sets it: nubis may raise its soft limit up to the hard one)."""
    root = tmp_path_factory.mktemp("hostile-slow")
    wrapper = root / "nubis-low-fd-limit"
    wrapper.write_text(f'#!/bin/sh\nulimit -n {SLOW_FD_LIMIT} || exit 99\nexec "{nubis_bin}" "$@"\n')
    wrapper.chmod(0o755)
    server = Server("hostile-slow", str(wrapper), root, {
        "NUBIS_SIM_TIME_SCALE": "0", "NUBIS_RATE_LIMITS": "off",
        "NUBIS_HEADER_TIMEOUT": f"{HEADER_TIMEOUT}s", "NUBIS_IDLE_TIMEOUT": f"{IDLE_TIMEOUT}s",
        "NUBIS_BODY_TIMEOUT": f"{BODY_TIMEOUT}s", "NUBIS_MAX_INFLIGHT": str(MAX_INFLIGHT)})
    server.start()
    yield server
    server.stop()


def test_slow_and_idle_connections_are_dropped(slow_server):
    """Hundreds of half-sent headers (more than the server's fd limit), a trickle of one
    header byte at a time, a body that stops half-way and an idle keep-alive connection:
    /healthz keeps answering throughout, and every one of them is dropped by its timeout
    (checked with 3x the configured timeout plus the time to get through the backlog)."""
    server = slow_server
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < SLOW_CONNECTIONS + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SLOW_CONNECTIONS + 500), hard))
    socks, opened = [], []
    try:
        with watch(server, unchanged=False) as w:
            for _ in range(SLOW_CONNECTIONS):
                s = open_socket(server)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                socks.append(s)
            trickle = open_socket(server)
            trickle.sendall(b"G")
            body = open_socket(server)
            idle = open_socket(server)
            opened = [*socks, trickle, body, idle]
            body.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-TC-Action: DescribeZones\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"a\":")
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                first = idle.recv(4096)
            except TimeoutError:
                pytest.fail("/healthz on a new connection: no answer in 10 s while the slow ones are held")
            assert first.startswith(b"HTTP/1.1 200"), first[:100]
            t0 = time.monotonic()
            # /healthz keeps answering while they are held (each try bounded by 3x the
            # header timeout plus the backlog the low fd limit leaves behind).
            for _ in range(3):
                r = requests.get(f"{server.base_url}/healthz", timeout=3 * HEADER_TIMEOUT + 10)
                assert r.status_code == 200
            longest = 3 * max(HEADER_TIMEOUT, IDLE_TIMEOUT, BODY_TIMEOUT) + 10

            def dropped():
                try:
                    trickle.sendall(b"E")
                except OSError:
                    pass
                return all(closed_by_peer(s) for s in opened)

            assert wait_for(dropped, longest, 0.25), (
                f"after {time.monotonic() - t0:.1f}s: {sum(not closed_by_peer(s) for s in socks)} of "
                f"{len(socks)} half-sent headers, trickle {closed_by_peer(trickle)}, body "
                f"{closed_by_peer(body)}, idle {closed_by_peer(idle)} still open")
            r = requests.get(f"{server.base_url}/healthz", timeout=10)
            assert r.status_code == 200
            w.note("slow", r.status_code)
    finally:
        for s in opened or socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_inflight_cap_sheds_in_each_dialects_shape(slow_server):
    """While requests with unfinished bodies hold every in-flight slot (2 here), a request
    of each dialect is shed with that dialect's own throttling error (Tencent
    RequestLimitExceeded, Alibaba 400 Throttling, Keystone 429 and Nova 429 overLimit, these
    with Retry-After), and /healthz (outside the cap) answers."""
    server = slow_server
    with watch(server) as w:
        token, _ = keystone_token(w)

        def tencent():
            body = b"{}"
            r = w.request("POST", "/", data=body, headers=tc3_headers(server, "DescribeZones", body))
            if r.json()["Response"].get("Error") is None:
                return True
            assert tencent_error(r) == "RequestLimitExceeded"
            return False

        def aliyun():
            signed, _ = rpc_v1_sign(rpc_v1_params("DescribeRegions", {}))
            r = w.request("POST", "/?" + urlencode(signed))
            if r.status_code == 200:
                return True
            assert ali_error(r) == (400, "Throttling")
            return retry_after(r) and False

        def keystone():
            r = w.request("POST", "/identity/v3/auth/tokens", json=keystone_body("admin", ADMIN_PASSWORD))
            if r.status_code == 201:
                return True
            assert keystone_error(r) == 429
            return retry_after(r) and False

        def nova():
            r = w.request("GET", "/compute/v2.1/servers/detail", headers={"X-Auth-Token": token})
            if r.status_code == 200:
                return True
            assert nova_fault(r) == (429, "overLimit")
            return retry_after(r) and False

        def hold() -> list:
            """MAX_INFLIGHT requests whose bodies never finish: each holds an in-flight slot
            until the body timeout. Returned once the server has taken them in (none is
            answered after a pause): a probe sent at once on the session's open connection
            can otherwise take a slot before a new connection's request reaches the cap,
            and on a loaded machine (the audit commit keeping the probe in flight) it is
            the held request that gets shed, round after round."""
            for _ in range(10):
                held = []
                for _ in range(MAX_INFLIGHT):
                    s = open_socket(server)
                    s.sendall(b"POST /identity/v3/auth/tokens HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
                    held.append(s)
                time.sleep(0.3)
                if not any(answered(s) for s in held):
                    return held
                for s in held:
                    s.close()
            pytest.fail(f"{MAX_INFLIGHT} held requests never held the cap together")

        for fn in (tencent, aliyun, keystone, nova):
            # Answered once the slots held for the previous dialect are free again.
            wait_until(fn, 3 * BODY_TIMEOUT + 10, 0.1, f"{fn.__name__} answered without load")
            shed = False
            for _ in range(10):  # the held slots expire after BODY_TIMEOUT: hold them anew
                held = hold()
                try:
                    for _ in range(20):
                        if not fn():
                            shed = True
                            break
                        time.sleep(0.05)
                    health = requests.get(f"{server.base_url}/healthz", timeout=30)
                    assert health.status_code == 200
                finally:
                    for s in held:
                        s.close()
                if shed:
                    break
            assert shed, f"{fn.__name__}: never shed while {MAX_INFLIGHT} requests held the in-flight cap"
        wait_until(tencent, 3 * BODY_TIMEOUT + 10, 0.2, "the cap free again")


# --------------------------------------------------------------------------------------
# Floods of junk actions


def junk_name() -> str:
    # Hex only: no junk name can spell a crash marker the log check looks for.
    return "Junk" + secrets.token_hex(8)


def metrics_size(server) -> tuple[int, str]:
    r = requests.get(f"{server.base_url}/metrics", timeout=60)
    assert r.status_code == 200
    return len(r.content), r.text


def test_junk_action_floods_keep_metrics_small(hs):
    """Thousands of distinct random action names per dialect, signed and unsigned: each is
    the dialect's unknown-action error, and /metrics does not grow with them."""
    before, _ = metrics_size(hs)
    limit = 100_000  # a few `other` series per dialect, nothing per junk name
    names = {d: [junk_name() for _ in range(JUNK_PER_DIALECT)] for d in ("tencent", "aliyun", "openstack")}
    with watch(hs) as w:
        token, _ = keystone_token(w)

        def tencent(i, name):
            if i % 2:
                return tencent_error(w.request("GET", f"/?{TENCENT_UNSIGNED.replace('DescribeZones', name)}"))
            body = b"{}"
            return tencent_error(w.request("POST", "/", data=body, headers=tc3_headers(hs, name, body)))

        def aliyun(i, name):
            if i % 2:
                return ali_error(w.request("GET", f"/?{ALIYUN_UNSIGNED.replace('DescribeZones', name)}"))
            signed, _ = rpc_v1_sign(rpc_v1_params(name, {}))
            return ali_error(w.request("POST", "/?" + urlencode(signed)))

        def openstack(i, name):
            if i % 3 == 0:
                return nova_fault(w.request("POST", f"/compute/v2.1/{name}", json={},
                                            headers={"X-Auth-Token": token}))[0]
            if i % 3 == 1:
                return keystone_error(w.request("GET", f"/identity/v3/{name}"))
            return admin_error(w.request("GET", f"/admin/v1/{name}", auth=(ADMIN_KEY_ID, ADMIN_KEY_SECRET)))[0]

        got: dict[str, list] = {}
        for dialect, fn in (("tencent", tencent), ("aliyun", aliyun), ("openstack", openstack)):
            got[dialect] = []
            for lo in (0, 100, JUNK_PER_DIALECT):
                with ThreadPoolExecutor(4) as pool:
                    got[dialect] += list(pool.map(fn, range(len(got[dialect]), lo),
                                                  names[dialect][len(got[dialect]):lo]))
                size, text = metrics_size(hs)
                assert size - before < limit, (
                    f"/metrics grew by {size - before} bytes after {lo} junk {dialect} requests")
        signed_tc = {c for i, c in enumerate(got["tencent"]) if i % 2 == 0}
        assert signed_tc == {"InvalidAction"}, signed_tc
        unsigned_tc = {c for i, c in enumerate(got["tencent"]) if i % 2}
        assert all(c.startswith(("AuthFailure", "InvalidAction")) for c in unsigned_tc), unsigned_tc
        signed_ali = {c for i, c in enumerate(got["aliyun"]) if i % 2 == 0}
        assert signed_ali == {(404, "InvalidAction.NotFound")}, signed_ali
        unsigned_ali = {c for i, c in enumerate(got["aliyun"]) if i % 2}
        assert all(s in (400, 403, 404) for s, _ in unsigned_ali), unsigned_ali
        assert set(got["openstack"]) <= {404, 405}, set(got["openstack"])
        size, text = metrics_size(hs)
        print(f"/metrics: {before} bytes before, {size} after {3 * JUNK_PER_DIALECT} junk requests")
        leaked = [n for d in names.values() for n in d if n in text]
        assert not leaked, f"junk names became label values: {leaked[:5]}"


# --------------------------------------------------------------------------------------
# Replay, nonces and stale timestamps


def test_alibaba_replay_and_nonces(hs):
    """A captured v1 request replays as SignatureNonceUsed, also after 1,500 fresh
    nonces; a v3 nonce likewise; an oversized nonce is refused, not stored."""
    with watch(hs) as w:
        captured, _ = rpc_v1_sign(rpc_v1_params("DescribeRegions", {}))
        r = rpc_v1_send(hs, captured)
        assert r.status_code == 200, r.text[:300]
        assert ali_error(rpc_v1_send(hs, captured)) == (400, "SignatureNonceUsed")

        def fresh(_):
            signed, _ = rpc_v1_sign(rpc_v1_params("DescribeRegions", {}))
            r = w.request("POST", "/?" + urlencode(signed))
            return r.status_code if r.status_code == 200 else ali_error(r)

        with ThreadPoolExecutor(4) as pool:
            answers = set(pool.map(fresh, range(FRESH_NONCES)))
        assert answers <= {200, (400, "Throttling")}, answers
        assert ali_error(rpc_v1_send(hs, captured)) == (400, "SignatureNonceUsed")
        # Let the per-account budget refill: a throttled request spends its nonce too.
        wait_until(lambda: fresh(0) == 200, 10, 0.2, "DescribeRegions no longer throttled")
        # v3 (ACS3): the same nonce twice.
        def v3(nonce):
            return nubis.acs3_send(hs, "DescribeRegions", {"RegionId": "cn-hangzhou"}, nonce=nonce)

        def v3_fresh():
            nonce = uuid.uuid4().hex
            return nonce if v3(nonce).status_code == 200 else None

        nonce = wait_until(v3_fresh, 10, 0.2, "a v3 DescribeRegions answered")
        assert ali_error(v3(nonce)) == (400, "SignatureNonceUsed")
        # Oversized nonces, signed correctly: refused (in the query and in a form body).
        for size, form in ((10_000, False), (HUGE_VALUE, True)):
            def oversized():
                signed, _ = rpc_v1_sign(rpc_v1_params("DescribeRegions", {}, nonce=secrets.token_hex(size // 2)))
                if form:
                    r = w.request("POST", "/", data=urlencode(signed), headers=FORM)
                else:
                    r = w.request("POST", "/?" + urlencode(signed))
                # (a tuple: a 4xx Response is falsy)
                return None if r.status_code == 400 and r.json().get("Code") == "Throttling" else (r,)

            # SignatureNonce is 1-128 printable ASCII (h-parsers MAX_NONCE_LEN).
            got = ali_error(wait_until(oversized, 10, 0.2, "an answer other than Throttling")[0])
            assert got == BAD_ALI, (size, got)


def test_stale_timestamps(hs):
    """Requests stamped an hour ago or ahead: Tencent AuthFailure.SignatureExpire (TC3 and
    HmacSHA256, hand-signed and through the official SDK), Alibaba InvalidTimeStamp.Expired
    (v1 and v3, hand-signed and through the legacy SDK)."""
    with watch(hs) as w:
        for skew in (-3600, 3600, -10 ** 9):
            ts = int(time.time()) + skew
            body = b"{}"
            code = tencent_error(w.request("POST", "/", data=body, headers=tc3_headers(hs, "DescribeZones", body, ts)))
            assert code == "AuthFailure.SignatureExpire", (skew, code)
            params = {"Action": "DescribeZones", "Version": "2017-03-12", "Region": nubis.REGION,
                      "SecretId": ADMIN_KEY_ID, "Timestamp": str(ts), "Nonce": "7",
                      "SignatureMethod": "HmacSHA256"}
            params["Signature"] = legacy_sign(ADMIN_KEY_SECRET,
                                              legacy_string_to_sign("GET", hs.endpoint, params))
            code = tencent_error(w.request("GET", "/?" + urlencode(params)))
            assert code == "AuthFailure.SignatureExpire", (skew, code)
            if skew > -10 ** 9:
                stamp = ali_timestamp(time.time() + skew)
                signed, _ = rpc_v1_sign(rpc_v1_params("DescribeRegions", {}, timestamp=stamp))
                assert ali_error(rpc_v1_send(hs, signed)) == (400, "InvalidTimeStamp.Expired")
                r = nubis.acs3_send(hs, "DescribeRegions", {"RegionId": "cn-hangzhou"}, date=stamp)
                assert ali_error(r) == (400, "InvalidTimeStamp.Expired")
        # Official SDKs, their clocks an hour behind.
        with mock.patch("time.time", return_value=time.time() - 3600):
            nubis.expect_error("AuthFailure.SignatureExpire", hs.cvm(retry=False).call, "DescribeZones")
        stale = ali_timestamp(time.time() - 3600)
        with mock.patch("aliyunsdkcore.utils.parameter_helper.get_iso_8061_date", return_value=stale):
            nubis.expect_ecs_error(400, "InvalidTimeStamp.Expired",
                                   ecs_client(hs, "legacy", retry=False).call, "DescribeRegions")


# --------------------------------------------------------------------------------------
# Token abuse (Keystone) and password throttling


def test_keystone_token_abuse(hs):
    """A reader's token may validate and revoke only itself: the admin's is 403 to it, and
    stays valid. Re-scoping one token again and again is bounded (refused, or the oldest
    minted tokens stop validating)."""
    name, password = f"reader-{secrets.token_hex(3)}", nubis.new_password()
    hs.admin.post("keystone-users", {"name": name, "password": password, "roles": ["reader"]})
    with watch(hs) as w:
        admin_tok, _ = keystone_token(w)
        reader_tok, _ = keystone_token(w, name, password)
        for method in ("GET", "HEAD", "DELETE"):
            r = w.request(method, "/identity/v3/auth/tokens",
                          headers={"X-Auth-Token": reader_tok, "X-Subject-Token": admin_tok})
            assert r.status_code == 403, (method, r.status_code, r.text)
            if method != "HEAD":
                keystone_error(r)
        r = w.request("GET", "/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": admin_tok, "X-Subject-Token": admin_tok})
        assert r.status_code == 200, "the admin's token must survive the reader's attempts"
        r = w.request("GET", "/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": reader_tok, "X-Subject-Token": reader_tok})
        assert r.status_code == 200, r.text
        r = w.request("GET", "/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": admin_tok, "X-Subject-Token": reader_tok})
        assert r.status_code == 200, r.text

        # A user may revoke its own token (a second one, the first is needed below).
        second, _ = keystone_token(w, name, password)
        r = w.request("DELETE", "/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": second, "X-Subject-Token": second})
        assert r.status_code == 204, r.text
        r = w.request("GET", "/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": admin_tok, "X-Subject-Token": second})
        assert keystone_error(r) == 404, r.text

        # Re-scoping the reader's token to the project, over and over: at most
        # TOKENS_PER_USER of the minted tokens stay valid (the oldest are evicted), and once
        # the re-scoped token itself is evicted re-scoping is refused with 404 "Failed to
        # validate token" (Keystone's token plugin validates it and raises TokenNotFound).
        minted, refused = [], []
        rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": reader_tok}},
                            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        for _ in range(RESCOPES):
            r = w.request("POST", "/identity/v3/auth/tokens", json=rescope)
            if r.status_code == 201:
                minted.append(r.headers["X-Subject-Token"])
            else:
                refused.append(keystone_error(r))
        assert set(refused) <= {404, 429}, refused
        valid = sum(
            w.request("GET", "/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": admin_tok, "X-Subject-Token": t}).status_code == 200
            for t in minted)
        assert valid <= TOKENS_PER_USER, f"{len(minted)} re-scoped tokens minted, {valid} valid"
        r = w.request("GET", "/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": admin_tok, "X-Subject-Token": admin_tok})
        assert r.status_code == 200, "the admin's tokens are not the reader's to evict"


@pytest.fixture
def throttle_server(server_factory):
    """A fresh server per throttling test: failed logins are counted per source, and
    every test here comes from 127.0.0.1."""
    server = server_factory("hostile-throttle", NUBIS_SIM_TIME_SCALE="0")
    yield server
    server.stop()


def test_keystone_failed_logins_are_throttled(throttle_server):
    """Wrong passwords for a known user, then unknown users: 401 in Keystone's shape until
    the threshold (5 failures per user, 20 per source within 60 s: h-creds
    docs/credentials.md), then 429 in Keystone's shape with Retry-After, for the right
    password too."""
    server = throttle_server
    with watch(server, logins=False) as w:
        def attempts(user_of, n=60):
            out = []
            for i in range(n):
                r = w.request("POST", "/identity/v3/auth/tokens", json=keystone_body(user_of(i), "wrong-Passw0rd!"))
                out.append(r)
                if r.status_code == 429:
                    break
            return out

        known = attempts(lambda i: "admin")
        assert [r.status_code for r in known] == [401] * USER_FAILURES + [429]
        assert all(keystone_error(r) == 401 for r in known[:-1])
        assert keystone_error(known[-1]) == 429
        retry_after(known[-1])
        r = w.request("POST", "/identity/v3/auth/tokens", json=keystone_body("admin", ADMIN_PASSWORD))
        assert r.status_code == 429, f"the right password while throttled: {r.status_code}"
        retry_after(r)
        # Unknown users, a new name each time: only the source's count can stop them.
        unknown = attempts(lambda i: f"nobody-{i}-{secrets.token_hex(2)}")
        assert [r.status_code for r in unknown] == [401] * (SOURCE_FAILURES - USER_FAILURES) + [429]
        assert keystone_error(unknown[-1]) == 429
        retry_after(unknown[-1])


def test_admin_basic_auth_is_throttled(throttle_server):
    """Admin API Basic auth with wrong secrets: 401 in the admin API's shape until the
    threshold (5 per access key ID), then 429 TooManyRequests with Retry-After, for the
    right secret too."""
    server = throttle_server
    with watch(server, logins=False) as w:
        got = []
        for i in range(60):
            r = w.request("GET", "/admin/v1/operations?instance=x", auth=(ADMIN_KEY_ID, f"wrong-{i}"))
            got.append(r)
            if r.status_code == 429:
                break
        assert [r.status_code for r in got] == [401] * USER_FAILURES + [429]
        for r in got[:-1]:
            assert admin_error(r)[0] == 401, r.text
        assert admin_error(got[-1]) == (429, "TooManyRequests")
        retry_after(got[-1])
        r = w.request("GET", "/admin/v1/operations?instance=x", auth=(ADMIN_KEY_ID, ADMIN_KEY_SECRET))
        assert admin_error(r) == (429, "TooManyRequests"), "the right secret while throttled"
        retry_after(r)
        for auth in ((f"AKID{secrets.token_hex(8)}", "x"), None):
            r = w.request("GET", "/admin/v1/operations?instance=x", auth=auth)
            assert admin_error(r)[0] in (401, 429), r.text


# --------------------------------------------------------------------------------------
# Bad ranges and characters


def ali_xml_parses(server) -> None:
    """Format=XML DescribeInstances, through the legacy SDK's raw path, is well-formed XML
    whatever names the fleet holds."""
    ecs = ecs_client(server, "legacy", retry=False)
    status, _, body = ecs.raw("DescribeInstances", "XML", RegionId="cn-hangzhou", PageSize=100)
    assert status == 200, body[:300]
    ET.fromstring(body)


def test_alibaba_bad_ranges_and_characters(hs):
    """DiskSize −1 / 10^12 / 2^32+40, 5,000 DataDisks, 10,000-character names, host names,
    descriptions and ClientTokens, control characters in names, Amount out of range: each
    refused with ECS's documented code for that limit (docs: h-ranges params::LIMITS), nothing
    created, and Format=XML DescribeInstances still parses."""
    cat = hs.ali_catalog
    ecs = ecs_client(hs, "legacy")  # retries Throttling: RunInstances has its own rate
    base = dict(ZoneId=cat.zone, ImageId=cat.linux_image, InstanceType=cat.instance_type,
                Password=nubis.new_password())
    long = "n" * 10_000
    low, high = "InvalidSystemDiskSize.LessThanMinSize", "InvalidSystemDiskSize.MoreThanMaxSize"
    cases = [
        ({"SystemDisk.Size": -1}, low), ({"SystemDisk.Size": 10 ** 12}, high),
        ({"SystemDisk.Size": 2 ** 32 + 40}, high),
        ({"DataDisk": [{"Size": -1}]}, "InvalidDataDiskSize.ValueNotSupported"),
        ({"DataDisk": [{"Size": 10 ** 12}]}, "InvalidDataDiskSize.ValueNotSupported"),
        ({"DataDisk": [{"Size": 20}] * 17}, "InstanceDiskNumber.LimitExceed"),
        # 2,000 parameters are beyond the dialect's parameter-count bound, checked first
        # (5,000 are sent below in a form body: in a query they pass the HTTP parser's 64 KiB).
        ({"DataDisk": [{"Size": 20}] * 2000}, "InvalidParameter"),
        ({"InstanceName": long}, "InvalidInstanceName.Malformed"),
        ({"HostName": long}, "InvalidHostName.Malformed"),
        ({"ClientToken": long}, "InvalidClientToken.ValueNotSupported"),
        ({"Description": long}, "InvalidDescription.Malformed"),
        ({"InstanceName": "bad\x01name"}, "InvalidInstanceName.Malformed"),
        ({"InstanceName": "bad\x00name"}, "InvalidInstanceName.Malformed"),
        ({"InstanceName": "a\x1b[31mred"}, "InvalidInstanceName.Malformed"),
        ({"HostName": "host\nname"}, "InvalidHostName.Malformed"),
        ({"Amount": -1}, "InvalidParameter"), ({"Amount": 10 ** 12}, "InvalidParameter"),
    ]
    accepted, wrong = [], []
    with watch(hs) as w:
        for case, want in cases:
            for action in ("RunInstances", "CreateInstance"):
                if action == "CreateInstance" and "Amount" in case:
                    continue
                try:
                    got = ecs.common(action, **base, **case)
                except Exception as e:  # noqa: BLE001
                    err = ecs_error_of(e)
                    if err is None:
                        wrong.append((action, repr(case)[:80], f"no answer: {e!r}"[:200]))
                        continue
                    assert 400 <= err.status < 500 and err.request_id, err
                    if err.code != want:
                        wrong.append((action, repr(case)[:80], f"want {want}, got {err.status} {err.code}"))
                    w.note(f"{action} {list(case)}", err.status, err.code)
                    continue
                accepted.append(f"{action} {repr(case)[:80]} accepted"[:200])
                made = got["InstanceIdSets"]["InstanceIdSet"] if action == "RunInstances" else [got["InstanceId"]]
                ali_xml_parses(hs)
                for iid in made:  # so that one accepted case does not spoil the next tests
                    nubis.ecs_wait_settled(ecs, hs.admin, iid, "Running" if action == "RunInstances" else "Stopped")
                    ecs.common("DeleteInstance", InstanceId=iid, Force="true")
                    wait_until(lambda: nubis.ecs_describe(ecs, iid) is None, 30, message=f"{iid} deleted")
        for action in ("RunInstances", "CreateInstance"):
            signed, _ = rpc_v1_sign(rpc_v1_params(action, {**base, "DataDisk": [{"Size": 20}] * 5000}))
            r = w.request("POST", "/", data=urlencode(signed), headers=FORM)
            if r.status_code == 200:
                accepted.append(f"{action} with 5,000 DataDisk in a form body accepted")
            elif ali_error(r) != (400, "InvalidParameter"):
                wrong.append((action, "5,000 DataDisk", ali_error(r)))
        ali_xml_parses(hs)
        assert not accepted, accepted
        assert not wrong, wrong


def test_tencent_bad_ranges_and_characters(hs):
    """The same through the official Tencent SDK: out-of-range disk sizes and counts, 5,000
    data disks, 10,000-character names and ClientTokens, control characters: each CVM's
    documented code for that limit (h-ranges actions::LIMITS), nothing created. Whatever
    Tencent accepted, Alibaba's Format=XML DescribeInstances (same fleet) still parses."""
    cat = hs.tencent_catalog
    cvm = hs.cvm()  # retries RequestLimitExceeded: RunInstances has its own documented rate
    base = dict(Placement={"Zone": cat.zone}, ImageId=cat.linux_image, InstanceCount=1)
    long = "n" * 10_000
    rng, host = "InvalidParameterValue.Range", "InvalidParameter.HostNameIllegal"
    cases = [
        ({"SystemDisk": {"DiskSize": -1}}, rng), ({"SystemDisk": {"DiskSize": 10 ** 12}}, rng),
        ({"DataDisks": [{"DiskSize": -1}]}, rng), ({"DataDisks": [{"DiskSize": 10 ** 12}]}, rng),
        ({"DataDisks": [{"DiskSize": 20}] * 5000}, "InvalidParameterValue.LimitExceeded"),
        ({"InstanceName": long}, "InvalidInstanceName.TooLong"), ({"HostName": long}, host),
        ({"ClientToken": long}, "InvalidClientToken.TooLong"),
        ({"InstanceName": "bad\x01name"}, "InvalidParameterValue"),
        ({"InstanceName": "a\x1b[31mred"}, "InvalidParameterValue"), ({"HostName": "host\nname"}, host),
        ({"InstanceCount": -1}, rng), ({"InstanceCount": 10 ** 12}, rng),
    ]
    accepted, wrong = [], []
    with watch(hs) as w:
        for case, want in cases:
            try:
                got = cvm.raw("RunInstances", {**base, **case})
            except nubis.TencentCloudSDKException as e:
                assert e.requestId, e
                if e.code != want:
                    wrong.append((repr(case)[:80], f"want {want}, got {e.code}: {e.message[:100]}"))
                w.note(f"RunInstances {list(case)}", 200, e.code)
                continue
            accepted.append(f"{repr(case)[:100]} accepted"[:200])
            ali_xml_parses(hs)
            for iid in got["InstanceIdSet"]:  # so that one accepted case does not spoil the next tests
                nubis.wait_settled(hs.cvm(), iid, "RUNNING")
                hs.cvm().call("TerminateInstances", InstanceIds=[iid])
                wait_until(lambda: nubis.describe(hs.cvm(), iid) is None, 30, message=f"{iid} terminated")
        ali_xml_parses(hs)
        assert not accepted, accepted
        assert not wrong, wrong


# --------------------------------------------------------------------------------------
# Host header, reused ClientToken


def test_host_header_is_not_reflected_into_the_catalog(hs):
    """A token request with `Host: evil.example:666`: the catalog, the version documents,
    WWW-Authenticate and Nova's links point at the server's own public URL (by default the
    listen address), never at the Host."""
    with watch(hs) as w:
        for host, marker in (("evil.example:666", "evil.example"), ("evil.example", "evil.example"),
                             ("[::1]:1", "[::1]")):
            r = w.request("POST", "/identity/v3/auth/tokens", json=keystone_body("admin", ADMIN_PASSWORD),
                          headers={"Host": host})
            assert r.status_code == 201, r.text
            urls = [e["url"] for s in r.json()["token"]["catalog"] for e in s["endpoints"]]
            assert urls and not [u for u in urls if marker in u], urls
            assert all(u.startswith(hs.base_url) for u in urls), urls
        r = w.request("POST", "/identity/v3/auth/tokens", json=keystone_body("admin", ADMIN_PASSWORD),
                      headers={"Host": "bad host\x7f"})
        assert r.status_code < 500
        # Every other URL handed out too (h-creds docs/credentials.md "Public URL"): version
        # documents, WWW-Authenticate, Nova links.
        evil = {"Host": "evil.example:666"}
        r = w.request("GET", "/identity", headers=evil)
        hrefs = [link["href"] for v in r.json()["versions"]["values"] for link in v["links"]]
        assert hrefs and all(h.startswith(hs.base_url) for h in hrefs), hrefs
        r = w.request("GET", "/identity/v3/auth/tokens", headers={**evil, "X-Auth-Token": "nope"})
        assert keystone_error(r) == 401
        assert "evil.example" not in r.headers.get("WWW-Authenticate", ""), r.headers
        token, _ = keystone_token(w)
        r = w.request("GET", "/compute/v2.1/servers", headers={**evil, "X-Auth-Token": token})
        hrefs = [link["href"] for srv in r.json()["servers"] for link in srv["links"]]
        assert hrefs and all(h.startswith(hs.base_url) for h in hrefs), hrefs


def test_reused_client_token_after_delete_aliyun(hs):
    """RunInstances / CreateInstance with a ClientToken, the instance deleted, the same
    ClientToken again: no 5xx, no panic, either a refusal or a new instance (never a success
    naming no instance); whatever it made is deleted after."""
    ecs = ecs_client(hs, "legacy", retry=False)
    with watch(hs):
        cat = hs.ali_catalog

        def ids_of(action, got):
            return got["InstanceIdSets"]["InstanceIdSet"] if action == "RunInstances" else [got["InstanceId"]]

        def delete(iid, status):
            if nubis.ecs_describe(ecs, iid) is None:
                return
            nubis.ecs_wait_settled(ecs, hs.admin, iid, status)
            ecs.common("DeleteInstance", InstanceId=iid, Force="true")
            wait_until(lambda: nubis.ecs_describe(ecs, iid) is None, 30, message=f"{iid} deleted")

        problems = []
        for action, status in (("RunInstances", "Running"), ("CreateInstance", "Stopped")):
            params = dict(ZoneId=cat.zone, ImageId=cat.linux_image, InstanceType=cat.instance_type,
                          Password=nubis.new_password(), ClientToken=uuid.uuid4().hex)
            for iid in ids_of(action, ecs.common(action, **params)):
                delete(iid, status)
            made: list[str] = []
            err = None
            try:
                made = ids_of(action, ecs.common(action, **params))
            except Exception as e:  # noqa: BLE001
                err = ecs_error_of(e)
                if err is None or not 400 <= err.status < 500:
                    problems.append(f"{action}: {e!r}")
                    continue
            for iid in made:
                delete(iid, status)
            if not (made or err):
                problems.append(f"{action} answered success without an instance")
        assert not problems, f"with a spent ClientToken: {problems}"


def test_reused_client_token_after_delete_tencent(hs):
    """The same with Tencent RunInstances and TerminateInstances."""
    cvm = hs.cvm()
    with watch(hs):
        tc = hs.tencent_catalog
        token = uuid.uuid4().hex[:32]
        run = dict(Placement={"Zone": tc.zone}, ImageId=tc.linux_image, InstanceCount=1, ClientToken=token,
                   LoginSettings={"Password": nubis.new_password()})
        first = cvm.call("RunInstances", **run)["InstanceIdSet"]
        for iid in first:
            nubis.wait_settled(cvm, iid, "RUNNING")
        cvm.call("TerminateInstances", InstanceIds=first)
        for iid in first:
            wait_until(lambda: nubis.describe(cvm, iid) is None, 30, message=f"{iid} terminated")
        made, refused = [], None
        try:
            made = cvm.call("RunInstances", **run)["InstanceIdSet"] or []
        except nubis.TencentCloudSDKException as e:
            assert e.code not in ("InternalError", "InternalError.UnknownError"), e
            refused = e
        assert made or refused, "RunInstances with a spent ClientToken answered an empty InstanceIdSet"
        for iid in made:
            if nubis.describe(cvm, iid) is not None:
                nubis.wait_settled(cvm, iid, "RUNNING")
                cvm.call("TerminateInstances", InstanceIds=[iid])
                wait_until(lambda: nubis.describe(cvm, iid) is None, 30, message=f"{iid} terminated")
