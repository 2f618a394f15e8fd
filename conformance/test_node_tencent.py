"""The official Node.js SDK, tencentcloud-sdk-nodejs-cvm (conformance/node, driven by
node/tencent.js), configured the way its users write it: `endpoint: "127.0.0.1:PORT"` or
`"localhost:PORT"`, TC3-HMAC-SHA256 over POST and GET, HmacSHA1 and HmacSHA256.

The Node SDK signs TC3 unlike the other SDKs (issue 11): the credential scope's service is
the first label of the endpoint (`127`, `localhost:PORT`), the signed host has no port while
the Host header has one (docs/credentials.md, "TC3 credential scope and host"). Every call
batch is one node process; the driver polls for states itself (`wait` calls)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest

from nubis import (
    ADMIN_KEY_ID,
    ADMIN_KEY_SECRET,
    KEY_IN_USE,
    LIMIT_OVER_100,
    REGION,
    RESCUE_INVALID_PASSWORD,
    RESET_INVALID_PASSWORD,
    new_password,
    random_instance_id,
    same_key,
    unique_name,
)
from node_sdk import run_node

pytestmark = pytest.mark.timeout(180)

SDK_VERSION = "4.1.316"


@dataclass(frozen=True)
class Config:
    sign: str  # profile.signMethod
    method: str  # profile.httpProfile.reqMethod
    host: str  # "ip" → 127.0.0.1:PORT, "name" → localhost:PORT

    @property
    def id(self) -> str:
        return f"{self.sign}-{self.method}-{self.host}"

    def endpoint(self, server) -> str:
        return f"{'127.0.0.1' if self.host == 'ip' else 'localhost'}:{server.port}"


CONFIGS = [
    Config("TC3-HMAC-SHA256", "POST", "ip"),
    Config("TC3-HMAC-SHA256", "GET", "ip"),
    Config("TC3-HMAC-SHA256", "POST", "name"),
    Config("TC3-HMAC-SHA256", "GET", "name"),
    Config("HmacSHA1", "POST", "ip"),
    Config("HmacSHA1", "GET", "name"),
    Config("HmacSHA256", "GET", "ip"),
    Config("HmacSHA256", "POST", "name"),
]
# Every configuration runs the catalogue and the seed errors; the full lifecycle runs on
# these, a shorter instance round trip (a subset of it) on the others.
FULL = [CONFIGS[0], CONFIGS[3], CONFIGS[4], CONFIGS[7]]
SHORT = [c for c in CONFIGS if c not in FULL]


def ids(configs):
    return [c.id for c in configs]


@dataclass
class Job:
    """A batch of SDK calls for one node process. `call`/`wait` return a name; `ref(name,
    path)` is that call's response field, resolved inside the driver."""

    server: Any
    config: Config
    calls: list[dict] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)

    def _add(self, name: str, call: dict) -> str:
        assert name not in self.names, name
        self.names[name] = len(self.calls)
        self.calls.append(call)
        return name

    def call(self, name: str, action: str, params: dict | None = None, **extra) -> str:
        return self._add(name, {"action": action, "params": params or {}, **extra})

    def wait(self, name: str, instance_ids, state: str | None, timeout: float = 60) -> str:
        return self._add(name, {"wait": {"instanceIds": instance_ids, "state": state, "timeout": timeout}})

    def ref(self, name: str, path: str = "") -> str:
        return "${" + str(self.names[name]) + (("." + path) if path else "") + "}"

    def run(self) -> Results:
        c = self.config
        out = run_node("tencent.js", {
            "endpoint": c.endpoint(self.server), "protocol": "http://", "reqMethod": c.method,
            "signMethod": c.sign, "region": REGION,
            "credential": {"secretId": ADMIN_KEY_ID, "secretKey": ADMIN_KEY_SECRET},
            "calls": self.calls,
        }, timeout=170)
        assert out["sdkVersion"] == SDK_VERSION, out["sdkVersion"]
        assert len(out["results"]) == len(self.calls), out
        got = Results({n: out["results"][i] for n, i in self.names.items()})
        for n, i in self.names.items():
            if "wait" in self.calls[i]:
                got.waited(n)  # every wait was met
        return got


@dataclass
class Results:
    by_name: dict[str, dict]

    def ok(self, name: str) -> dict:
        r = self.by_name[name]
        assert "response" in r, f"{name}: {r}"
        assert r["response"]["RequestId"], r
        return r["response"]

    def error(self, name: str, code: str | tuple) -> dict:
        codes = (code,) if isinstance(code, str) else code
        r = self.by_name[name]
        assert "error" in r, f"{name}: expected {codes}, got {r}"
        e = r["error"]
        assert e["code"] in codes, f"{name}: expected {codes}, got {e}"
        assert e["message"] and e["requestId"], e
        return e

    def waited(self, name: str) -> list[dict]:
        r = self.by_name[name]
        assert "instances" in r, f"{name}: {r}"
        return r["instances"]


def no_request_id(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "RequestId"}


# --------------------------------------------------------------------------------------
# Every configuration: catalogue and seed errors; one instance there and back


@pytest.mark.parametrize("config", CONFIGS, ids=ids(CONFIGS))
def test_catalogue(server, cvm, catalog, config):
    """The describe calls answer the Node SDK exactly as they answer the Python SDK."""
    job = Job(server, config)
    images = {"Filters": [{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}], "Limit": 100}
    types = {"Filters": [{"Name": "zone", "Values": [catalog.zone]}]}
    job.call("zones", "DescribeZones")
    job.call("regions", "DescribeRegions")
    job.call("images", "DescribeImages", images)
    job.call("types", "DescribeInstanceTypeConfigs", types)
    job.call("keys", "DescribeKeyPairs", {"Limit": 100})
    got = job.run()

    assert no_request_id(got.ok("zones")) == no_request_id(cvm.raw("DescribeZones"))
    assert no_request_id(got.ok("regions")) == no_request_id(cvm.raw("DescribeRegions"))
    assert no_request_id(got.ok("images")) == no_request_id(cvm.raw("DescribeImages", images))
    assert no_request_id(got.ok("types")) == no_request_id(cvm.raw("DescribeInstanceTypeConfigs", types))
    assert catalog.zone in [z["Zone"] for z in got.ok("zones")["ZoneSet"]]
    assert REGION in [r["Region"] for r in got.ok("regions")["RegionSet"]]
    assert catalog.linux_image in [i["ImageId"] for i in got.ok("images")["ImageSet"]]
    assert got.ok("types")["InstanceTypeConfigSet"]
    assert isinstance(got.ok("keys")["KeyPairSet"], list)


@pytest.mark.parametrize("config", CONFIGS, ids=ids(CONFIGS))
def test_seed_errors(server, cvm, catalog, config):
    """The seed errors, each with its exact code, a message and a RequestId, through the
    Node SDK's own exception (TencentCloudSDKHttpException.code)."""
    good = new_password()
    name = unique_name("node-dry")
    job = Job(server, config)
    job.call("unknown-param", "DescribeZones", {"Colour": "blue"})
    job.call("unknown-action", "DescribeUnicorns")
    job.call("missing-param", "EnterRescueMode", {"Password": good})
    job.call("malformed-id", "EnterRescueMode", {"InstanceId": "ins-1122", "Password": good})
    job.call("not-found", "EnterRescueMode", {"InstanceId": random_instance_id(), "Password": good})
    job.call("limit", "DescribeInstances", {"Limit": 101})
    job.call("bad-secret", "DescribeZones", client={"credential": {
        "secretId": ADMIN_KEY_ID, "secretKey": "wrongSecretKey0000000000000000000"}})
    job.call("unknown-id", "DescribeZones", client={"credential": {
        "secretId": "AKIDnubisNobody000000000000000000000", "secretKey": ADMIN_KEY_SECRET}})
    job.call("slow-clock", "DescribeZones", clockSkew=-600)
    job.call("fast-clock", "DescribeZones", clockSkew=600)
    job.call("within-window", "DescribeZones", clockSkew=-200)
    job.call("region", "DescribeZones", client={"region": "xx-nowhere"})
    job.call("dry-run", "RunInstances", {
        "Placement": {"Zone": catalog.zone}, "ImageId": catalog.linux_image, "InstanceName": name,
        "LoginSettings": {"Password": good}, "DryRun": True})
    job.call("dry-run-validates", "RunInstances", {
        "Placement": {"Zone": catalog.zone}, "ImageId": "img-zzzzzzzz",
        "LoginSettings": {"Password": good}, "DryRun": True})
    job.call("after-dry-run", "DescribeInstances", {
        "Filters": [{"Name": "instance-name", "Values": [name]}]})
    got = job.run()

    got.error("unknown-param", "UnknownParameter")
    got.error("unknown-action", "InvalidAction")
    got.error("missing-param", "MissingParameter")
    got.error("malformed-id", "InvalidInstanceId.Malformed")
    got.error("not-found", "InvalidInstanceId.NotFound")
    got.error("limit", LIMIT_OVER_100)
    got.error("bad-secret", "AuthFailure.SignatureFailure")
    got.error("unknown-id", "AuthFailure.SecretIdNotFound")
    got.error("slow-clock", "AuthFailure.SignatureExpire")
    got.error("fast-clock", "AuthFailure.SignatureExpire")
    assert got.ok("within-window")["ZoneSet"]
    got.error("region", "UnsupportedRegion")
    got.error("dry-run", "DryRunOperation")
    got.error("dry-run-validates", ("InvalidImageId.NotFound", "InvalidImageId.Malformed"))
    after = got.ok("after-dry-run")
    assert after["TotalCount"] == 0 and not after["InstanceSet"], after


@pytest.mark.parametrize("config", SHORT, ids=ids(SHORT))
def test_instance_round_trip(server, admin, catalog, config):
    """RunInstances → DescribeInstances → wrong-state refusal → Stop → password reset (a bad
    password refused first) → TerminateInstances, the reset checked in the guest."""
    pw, new_pw = new_password(), new_password()
    job = Job(server, config)
    job.call("run", "RunInstances", {
        "Placement": {"Zone": catalog.zone}, "ImageId": catalog.linux_image, "InstanceCount": 1,
        "InstanceName": unique_name("node"), "LoginSettings": {"Password": pw}})
    iids = job.ref("run", "InstanceIdSet")
    job.wait("running", iids, "RUNNING")
    job.call("describe", "DescribeInstances", {"InstanceIds": iids})
    job.call("reset-running", "ResetInstancesPassword", {"InstanceIds": iids, "Password": new_pw})
    job.call("stop", "StopInstances", {"InstanceIds": iids})
    job.wait("stopped", iids, "STOPPED")
    job.call("reset-bad", "ResetInstancesPassword", {"InstanceIds": iids, "Password": "Abc12!x"})
    job.call("reset", "ResetInstancesPassword", {"InstanceIds": iids, "Password": new_pw})
    job.wait("reset-done", iids, "STOPPED")
    got = job.run()

    (iid,) = got.ok("run")["InstanceIdSet"]
    desc = got.ok("describe")
    assert desc["TotalCount"] == 1 and desc["InstanceSet"][0]["InstanceId"] == iid
    assert desc["InstanceSet"][0]["Placement"]["Zone"] == catalog.zone
    got.error("reset-running", "UnsupportedOperation.InstanceStateRunning")
    got.error("reset-bad", RESET_INVALID_PASSWORD)
    (inst,) = got.waited("reset-done")
    assert (inst["LatestOperation"], inst["LatestOperationState"], inst["LatestOperationRequestId"]) == (
        "ResetInstancesPassword", "SUCCESS", got.ok("reset")["RequestId"])
    assert admin.check_password(iid, "root", new_pw)
    assert not admin.check_password(iid, "root", pw)

    job = Job(server, config)
    job.call("terminate", "TerminateInstances", {"InstanceIds": [iid]})
    job.wait("gone", [iid], None)
    got = job.run()
    got.ok("terminate")
    assert got.waited("gone") == []


# --------------------------------------------------------------------------------------
# The full lifecycle


@pytest.mark.parametrize("config", FULL, ids=ids(FULL))
def test_full_lifecycle(server, admin, catalog, config):
    """Key pair → RunInstances → Stop → ResetInstancesPassword → AssociateInstancesKeyPairs →
    Start → Reboot → EnterRescueMode/ExitRescueMode → TerminateInstances → DeleteKeyPairs,
    with the wrong-state and bad-password refusals on the way; effects checked in the guest."""
    pw, new_pw, rescue_pw = new_password(), new_password(), new_password()
    key_name = f"node_{secrets.token_hex(6)}"
    job = Job(server, config)
    job.call("key", "CreateKeyPair", {"KeyName": key_name, "ProjectId": 0})
    key_ids = [job.ref("key", "KeyPair.KeyId")]
    job.call("key-dup", "CreateKeyPair", {"KeyName": key_name, "ProjectId": 0})
    job.call("run", "RunInstances", {
        "Placement": {"Zone": catalog.zone}, "ImageId": catalog.linux_image, "InstanceCount": 1,
        "InstanceName": unique_name("node-full"), "LoginSettings": {"Password": pw}})
    iids = job.ref("run", "InstanceIdSet")
    iid = job.ref("run", "InstanceIdSet.0")
    job.wait("running", iids, "RUNNING")
    job.call("status", "DescribeInstancesStatus", {"InstanceIds": iids})
    job.call("associate-running", "AssociateInstancesKeyPairs", {"InstanceIds": iids, "KeyIds": key_ids})
    job.call("stop", "StopInstances", {"InstanceIds": iids})
    job.wait("stopped", iids, "STOPPED")
    job.call("reset", "ResetInstancesPassword", {"InstanceIds": iids, "Password": new_pw})
    job.wait("reset-done", iids, "STOPPED")
    job.call("associate", "AssociateInstancesKeyPairs", {"InstanceIds": iids, "KeyIds": key_ids})
    job.wait("associated", iids, "STOPPED")
    job.call("describe-key", "DescribeKeyPairs", {"KeyIds": key_ids})
    job.call("delete-key-in-use", "DeleteKeyPairs", {"KeyIds": key_ids})
    got = job.run()

    (inst_id,) = got.ok("run")["InstanceIdSet"]
    kp = got.ok("key")["KeyPair"]
    got.error("key-dup", "InvalidKeyPairName.Duplicate")
    assert got.ok("status")["InstanceStatusSet"] == [{"InstanceId": inst_id, "InstanceState": "RUNNING"}]
    got.error("associate-running", "UnsupportedOperation.InstanceStateRunning")
    (inst,) = got.waited("reset-done")
    assert (inst["LatestOperation"], inst["LatestOperationState"], inst["LatestOperationRequestId"]) == (
        "ResetInstancesPassword", "SUCCESS", got.ok("reset")["RequestId"])
    (inst,) = got.waited("associated")
    assert (inst["LatestOperation"], inst["LatestOperationState"], inst["LatestOperationRequestId"]) == (
        "AssociateInstancesKeyPairs", "SUCCESS", got.ok("associate")["RequestId"])
    assert inst["LoginSettings"]["KeyIds"] == [kp["KeyId"]]
    (described,) = got.ok("describe-key")["KeyPairSet"]
    assert described["KeyName"] == key_name and inst_id in described["AssociatedInstanceIds"]
    got.error("delete-key-in-use", KEY_IN_USE)
    assert admin.check_password(inst_id, "root", new_pw)
    assert any(same_key(k, kp["PublicKey"]) for k in admin.guest(inst_id)["authorized_keys"])

    job = Job(server, config)
    iids = [inst_id]
    job.call("start", "StartInstances", {"InstanceIds": iids})
    job.wait("started", iids, "RUNNING")
    job.call("reboot", "RebootInstances", {"InstanceIds": iids})
    job.wait("rebooted", iids, "RUNNING")
    job.call("rescue-bad", "EnterRescueMode", {"InstanceId": inst_id, "Password": "short"})
    job.call("rescue", "EnterRescueMode", {"InstanceId": inst_id, "Password": rescue_pw, "ForceStop": True})
    job.wait("in-rescue", iids, "RESCUE_MODE")
    got = job.run()

    for call, step, action in [("start", "started", "StartInstances"), ("reboot", "rebooted", "RebootInstances")]:
        (inst,) = got.waited(step)
        rid = got.ok(call)["RequestId"]
        assert (inst["LatestOperation"], inst["LatestOperationState"], inst["LatestOperationRequestId"]) == (
            action, "SUCCESS", rid)
    got.error("rescue-bad", RESCUE_INVALID_PASSWORD)
    (inst,) = got.waited("in-rescue")
    assert inst["LatestOperationRequestId"] == got.ok("rescue")["RequestId"]
    guest = admin.guest(inst_id)
    assert guest["booted_from"] == "rescue" and guest["power"] == "on", guest
    assert admin.check_password(inst_id, "root", rescue_pw)

    job = Job(server, config)
    job.call("exit", "ExitRescueMode", {"InstanceId": inst_id})
    job.wait("exited", iids, "RUNNING")
    job.call("terminate", "TerminateInstances", {"InstanceIds": iids})
    job.wait("gone", iids, None)
    job.call("delete-key", "DeleteKeyPairs", {"KeyIds": [kp["KeyId"]]})
    job.call("key-gone", "DescribeKeyPairs", {"Filters": [{"Name": "key-name", "Values": [key_name]}]})
    got = job.run()

    (inst,) = got.waited("exited")
    assert (inst["LatestOperation"], inst["LatestOperationState"], inst["LatestOperationRequestId"]) == (
        "ExitRescueMode", "SUCCESS", got.ok("exit")["RequestId"])
    got.ok("terminate")
    assert got.waited("gone") == []
    got.ok("delete-key")
    assert got.ok("key-gone")["KeyPairSet"] == []


# --------------------------------------------------------------------------------------
# Rate limit (a server of its own, so the burst never touches the shared budget)


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[5]], ids=ids([CONFIGS[0], CONFIGS[5]]))
def test_rate_limit(server_factory, config):
    """EnterRescueMode is limited to 20 requests/s per account; sequential calls from one
    Node client keep going until refused (bounded far above the limit)."""
    server = server_factory("node-ratelimit")
    job = Job(server, config)
    job.call("burst", "EnterRescueMode", {"InstanceId": random_instance_id(), "Password": new_password()},
             repeat={"max": 2000, "until": "RequestLimitExceeded"})
    got = job.run()
    codes = got.by_name["burst"]["repeated"]
    assert codes[-1] == "RequestLimitExceeded", codes[-5:]
    assert set(codes[:-1]) == {"InvalidInstanceId.NotFound"}, set(codes)
    assert len(codes) > 20, len(codes)


# --------------------------------------------------------------------------------------
# Legacy nonces


@pytest.mark.parametrize("config", [CONFIGS[4], CONFIGS[6]], ids=ids([CONFIGS[4], CONFIGS[6]]))
def test_legacy_nonce_repeats_are_not_replays(server_factory, config):
    """The Node SDK signs legacy requests with `Nonce = Math.round(Math.random() * 65535)`:
    1,500 requests repeat a nonce about 17 times (all 1,500 distinct: e^-17). Each is a new
    request, not a replay, so every one is answered (on a server without rate limits, so that
    1,500 calls take seconds)."""
    server = server_factory("node-nonces", NUBIS_RATE_LIMITS="off")
    job = Job(server, config)
    for n in range(1500):
        job.call(f"d{n}", "DescribeInstances", {"Offset": n, "Limit": 1})
    got = job.run()
    failed = {n: r for n, r in got.by_name.items() if "response" not in r}
    assert not failed, f"{len(failed)} refused, e.g. {next(iter(failed.values()))}"
