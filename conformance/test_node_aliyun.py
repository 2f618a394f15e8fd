"""The official Alibaba Cloud ECS Node.js SDK (@alicloud/ecs20140526 on @alicloud/openapi-core,
installed by scripts/setup-node) against nubis, through both of its signature paths:

- "acs3": the Config default — openapi-core's doRequest, ACS3-HMAC-SHA256 with x-acs-* headers;
- "v1": `signatureAlgorithm: "v2"` — doRPCRequest, the RPC HMAC-SHA1 1.0 query signature.

Each test hands conformance/node/aliyun.js a batch of calls (one node process per batch; the
SDK takes seconds to load on a busy machine) and checks the typed answers: the catalogue, the
instance lifecycle (RunInstances with ClientToken, CreateInstance then StartInstance,
Describe*, Reboot/Stop/Start, DeleteInstance with and without Force), RebootInstance's seed
errors (DryRun, ForceStop, wrong state, in progress, locks, restrictions, KMS, unknown
instance), ModifyInstanceAttribute passwords, key pairs, and the authentication and request
errors the SDK can be configured into (wrong secret, unknown AccessKeyId, a stale timestamp
and a replayed nonce through RuntimeOptions.extendsParameters, missing and bad parameters).
Guest effects are read through the admin API, as in the Python suites. The SDK's third
option, ACS3-HMAC-SM3, has a test of its own."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

import pytest

from node_sdk import run_node
from nubis import (
    ADMIN_KEY_ID,
    ADMIN_KEY_SECRET,
    ALI_DRY_RUN_MESSAGE,
    ALI_EXPECTED_INSTANCE_TYPE,
    ALI_EXPECTED_ZONE,
    ALI_INSTANCE_ID,
    ALI_REGION,
    ALI_REQUEST_ID,
    ali_timestamp,
    ecs_client,
    ecs_describe,
    ecs_snapshot,
    new_password,
    random_aliyun_instance_id,
    reboots,
    same_key,
    ssh_public_key,
    unique_name,
)

pytestmark = pytest.mark.timeout(240)

SIGNATURES = ("acs3", "v1")
WRONG_SECRET = "wrongSecretKey0000000000000000000"
UNKNOWN_KEY_ID = "LTAInubisNobody0000000000000"
ODD_NAME = "a b*c~d/e+f (x)&y=z%"  # every character class the canonicalisations treat specially
LINUX_IMAGE = "img-tos31x64"
WINDOWS_IMAGE = "img-win22x64"
# RebootInstance is refused plainly, as a dry run and as a forced reboot alike (seed 003).
VARIANTS = ({}, {"DryRun": True}, {"ForceStop": True})


@pytest.fixture(params=SIGNATURES)
def sig(request) -> str:
    return request.param


# --------------------------------------------------------------------------------------
# Running the driver and reading its answers


def call(action: str, name: str | None = None, config: dict | None = None, runtime: dict | None = None,
         **params) -> dict:
    c: dict[str, Any] = {"action": action, "params": params}
    if name:
        c["name"] = name
    if config:
        c["config"] = config
    if runtime:
        c["runtime"] = runtime
    return c


def wait(iid: Any, status: str | None, settled: bool = True, timeout: float = 60) -> dict:
    """Poll DescribeInstances (the SDK) until `status` (None: gone), and with `settled` until
    the admin API shows no engine lock."""
    return {"action": "wait", "params": {"InstanceId": iid, "Status": status, "Settled": settled,
                                         "Timeout": timeout}}


def ref(path: str) -> dict:
    return {"$ref": path}


def node(server, sig: str, calls: list[dict], timeout: float = 200, **options) -> list[dict]:
    job = {
        "endpoint": server.endpoint, "protocol": "http", "signature": sig,
        "accessKeyId": ADMIN_KEY_ID, "accessKeySecret": ADMIN_KEY_SECRET, "regionId": ALI_REGION,
        "admin": {"url": f"{server.base_url}/admin/v1", "user": ADMIN_KEY_ID, "password": ADMIN_KEY_SECRET},
        "calls": calls, **options,
    }
    results = run_node("aliyun.js", job, timeout=timeout)["results"]
    assert len(results) == len(calls), results
    return results


def ok(result: dict) -> dict:
    """The typed body of a call that must have succeeded (with a RequestId), whose raw JSON
    the SDK's typed response model reads whole: no field it has no name for, none of
    another JSON type than the model declares (aliyun.js audit())."""
    assert "error" not in result, f"{result['action']} failed: {result['error']}"
    body = result["body"]
    if result["action"] != "wait":
        assert result["statusCode"] == 200, result
        assert ALI_REQUEST_ID.fullmatch(body.get("RequestId", "")), body
        assert result["unread"] == [], f"{result['action']}: fields the typed model cannot read: {result['unread']}"
        assert result["mistyped"] == [], f"{result['action']}: fields of another type: {result['mistyped']}"
    return body


def err(result: dict, status: int, code: str) -> dict:
    """The SDK's error of a call that must have failed with exactly (status, code): the
    ClientError's statusCode, code, requestId and the body it kept in `data`."""
    assert "error" in result, f"{result['action']}: expected HTTP {status} {code}, got {result.get('body')}"
    e = result["error"]
    assert (e["statusCode"], e["code"]) == (status, code), f"{result['action']}: expected {status} {code}, got {e}"
    assert e["name"] == ("ThrottlingError" if "Throttling" in code else "ClientError" if status < 500 else "ServerError")
    assert ALI_REQUEST_ID.fullmatch(e["requestId"]), e
    assert e["data"]["RequestId"] == e["requestId"] and e["data"]["Code"] == code, e
    assert e["data"]["Message"] and e["data"]["HostId"], e
    assert e["message"] == f"{code}: code: {status}, {e['data']['Message']} request id: {e['requestId']}", e
    return e


def instances(body: dict) -> dict[str, dict]:
    return {i["InstanceId"]: i for i in body["Instances"]["Instance"]}


# --------------------------------------------------------------------------------------
# Catalogue


def test_catalogue(server, sig):
    r = node(server, sig, [
        call("DescribeRegions"),
        call("DescribeZones", RegionId=ALI_REGION),
        call("DescribeImages", RegionId=ALI_REGION, OSType="linux", PageSize=100),
        call("DescribeImages", RegionId=ALI_REGION, OSType="windows", PageSize=100),
        call("DescribeImages", RegionId=ALI_REGION, ImageId=f"{LINUX_IMAGE},{WINDOWS_IMAGE}"),
        call("DescribeInstanceTypes"),
        call("DescribeInstances", RegionId=ALI_REGION, InstanceName=ODD_NAME),
    ])
    regions = {x["RegionId"]: x for x in ok(r[0])["Regions"]["Region"]}
    assert regions[ALI_REGION]["LocalName"] and regions[ALI_REGION]["Status"] == "available", regions
    assert regions[ALI_REGION]["RegionEndpoint"], regions

    zones = {z["ZoneId"]: z for z in ok(r[1])["Zones"]["Zone"]}
    assert ALI_EXPECTED_ZONE in zones, sorted(zones)
    assert all(z.startswith(ALI_REGION + "-") and zones[z]["LocalName"] for z in zones), zones
    assert ALI_EXPECTED_INSTANCE_TYPE in zones[ALI_EXPECTED_ZONE]["AvailableInstanceTypes"]["InstanceTypes"]

    for result, os_type, image in ((r[2], "linux", LINUX_IMAGE), (r[3], "windows", WINDOWS_IMAGE)):
        body = ok(result)
        images = {i["ImageId"]: i for i in body["Images"]["Image"]}
        assert image in images and body["TotalCount"] == len(images), (os_type, sorted(images))
        assert {i["OSType"] for i in images.values()} == {os_type}
        assert images[image]["ImageOwnerAlias"] == "system" and images[image]["Status"] == "Available"
    by_ids = ok(r[4])
    assert sorted(i["ImageId"] for i in by_ids["Images"]["Image"]) == sorted([LINUX_IMAGE, WINDOWS_IMAGE])

    types = {t["InstanceTypeId"]: t for t in ok(r[5])["InstanceTypes"]["InstanceType"]}
    t = types[ALI_EXPECTED_INSTANCE_TYPE]
    assert (t["InstanceTypeFamily"], t["CpuCoreCount"], t["MemorySize"]) == ("ecs.s5", 2, 4), t

    # A name with every special character: the SDK's canonicalisation and nubis's agree.
    none = ok(r[6])
    assert none["TotalCount"] == 0 and none["Instances"]["Instance"] == [], none


# --------------------------------------------------------------------------------------
# Lifecycle


def test_lifecycle(server, admin, ali_catalog, sig):
    name, password, token = unique_name(f"node-{sig}"), new_password(), "tok-" + secrets.token_hex(8)
    run = dict(RegionId=ALI_REGION, ZoneId=ali_catalog.zone, ImageId=ali_catalog.linux_image,
               InstanceType=ali_catalog.instance_type, Amount=2, InstanceName=name, Password=password,
               ClientToken=token)
    id0, id1 = ref("run.InstanceIdSets.InstanceIdSet.0"), ref("run.InstanceIdSets.InstanceIdSet.1")
    r = node(server, sig, [
        call("RunInstances", name="run", **run),                                       # 0
        wait(id0, "Running"), wait(id1, "Running"),                                    # 1, 2
        call("RunInstances", **run),                                                   # 3 same token
        call("DescribeInstances", RegionId=ALI_REGION, InstanceName=name, Status="Running"),  # 4
        call("DescribeInstanceStatus", RegionId=ALI_REGION, InstanceId=[id0, id1]),    # 5
        call("RebootInstance", InstanceId=id0, DryRun=True),                           # 6
        call("RebootInstance", InstanceId=id0, DryRun=True, ForceStop=True),           # 7
        call("RebootInstance", InstanceId=id0, ForceStop=True),                        # 8
        wait(id0, "Running"),                                                          # 9
        call("RebootInstance", InstanceId=id1, ForceStop=False),                       # 10
        wait(id1, "Running"),                                                          # 11
        call("StopInstance", InstanceId=id0),                                          # 12
        wait(id0, "Stopped"),                                                          # 13
        *[call("RebootInstance", InstanceId=id0, **v) for v in VARIANTS],              # 14-16
        call("StopInstance", InstanceId=id0),                                          # 17
        call("StartInstance", InstanceId=id1),                                         # 18
        call("DeleteInstance", InstanceId=id1),                                        # 19 no Force
        call("StartInstance", InstanceId=id0),                                         # 20
        wait(id0, "Running"),                                                          # 21
    ])
    ids = ok(r[0])["InstanceIdSets"]["InstanceIdSet"]
    assert len(ids) == 2 and all(ALI_INSTANCE_ID.fullmatch(i) for i in ids), ids
    assert ok(r[3])["InstanceIdSets"]["InstanceIdSet"] == ids, "ClientToken did not make RunInstances idempotent"
    got = instances(ok(r[4]))
    assert sorted(got) == sorted(ids) and ok(r[4])["TotalCount"] == 2, got
    for iid in ids:
        inst = got[iid]
        assert (inst["Status"], inst["InstanceName"], inst["RegionId"], inst["ZoneId"]) == (
            "Running", name, ALI_REGION, ali_catalog.zone), inst
        assert (inst["ImageId"], inst["InstanceType"], inst["OSType"]) == (
            ali_catalog.linux_image, ali_catalog.instance_type, "linux"), inst
        assert (inst["Cpu"], inst["Memory"]) == (2, 4096), inst
        assert inst["OperationLocks"] == {"LockReason": []}, inst
    statuses = {s["InstanceId"]: s["Status"] for s in ok(r[5])["InstanceStatuses"]["InstanceStatus"]}
    assert statuses == {iid: "Running" for iid in ids}
    for i in (6, 7):
        assert err(r[i], 400, "DryRunOperation")["data"]["Message"] == ALI_DRY_RUN_MESSAGE
    ok(r[8])
    ok(r[10])
    ok(r[12])
    assert ok(r[13])["Status"] == "Stopped"
    for i in (14, 15, 16):
        err(r[i], 403, "IncorrectInstanceStatus")
    err(r[17], 403, "IncorrectInstanceStatus")
    err(r[18], 403, "IncorrectInstanceStatus")
    err(r[19], 403, "IncorrectInstanceStatus")
    ok(r[20])
    assert ok(r[21])["Status"] == "Running"

    # One hard reboot (ForceStop, no dry run counted) for the first, one graceful for the second.
    assert [x["kind"] for x in reboots(admin, ids[0])] == ["hard"], reboots(admin, ids[0])
    assert [x["kind"] for x in reboots(admin, ids[1])] == ["graceful"], reboots(admin, ids[1])
    for iid in ids:
        assert admin.guest(iid)["power"] == "on"
        assert admin.check_password(iid, "root", password)

    r = node(server, sig, [
        call("DeleteInstance", InstanceId=ids[0], Force=True),
        call("StopInstance", InstanceId=ids[1]),
        wait(ids[1], "Stopped"),
        call("DeleteInstance", InstanceId=ids[1]),
        wait(ids[0], None, settled=False), wait(ids[1], None, settled=False),
        call("DescribeInstances", RegionId=ALI_REGION, InstanceIds=json.dumps(ids)),
        call("RebootInstance", InstanceId=ids[0]),
        call("DeleteInstance", InstanceId=ids[1], Force=True),
    ])
    for i in (0, 1, 3):
        ok(r[i])
    gone = ok(r[6])
    assert gone["TotalCount"] == 0 and gone["Instances"]["Instance"] == [], gone
    err(r[7], 404, "InvalidInstanceId.NotFound")
    err(r[8], 404, "InvalidInstanceId.NotFound")


def test_create_instance_then_start(server, admin, ali_catalog, sig):
    """CreateInstance leaves the instance Stopped; StartInstance once it is."""
    password, name = new_password(), unique_name(f"create-{sig}")
    r = node(server, sig, [
        call("CreateInstance", name="made", RegionId=ALI_REGION, ZoneId=ali_catalog.zone,
             ImageId=ali_catalog.linux_image, InstanceType=ali_catalog.instance_type,
             InstanceName=name, Password=password),
        wait(ref("made.InstanceId"), "Stopped"),
        call("StartInstance", InstanceId=ref("made.InstanceId")),
        wait(ref("made.InstanceId"), "Running"),
    ])
    iid = ok(r[0])["InstanceId"]
    assert ALI_INSTANCE_ID.fullmatch(iid), r[0]
    assert ok(r[1])["InstanceName"] == name
    ok(r[2])
    assert ok(r[3])["Status"] == "Running"
    assert admin.guest(iid)["power"] == "on"
    assert admin.check_password(iid, "root", password)


# --------------------------------------------------------------------------------------
# RebootInstance (seed 003)


def test_reboot_in_progress(slow_server, slow_ali_running, sig):
    """A reboot while one runs (Status Starting, on the slow server) is refused by state,
    plainly, as a dry run and forced; only the first reboot happens."""
    iid, admin = slow_ali_running.id, slow_server.admin
    r = node(slow_server, sig, [
        call("RebootInstance", InstanceId=iid),
        call("DescribeInstances", RegionId=ALI_REGION, InstanceIds=json.dumps([iid])),
        *[call("RebootInstance", InstanceId=iid, **v) for v in VARIANTS],
        call("DescribeInstances", RegionId=ALI_REGION, InstanceIds=json.dumps([iid])),
        wait(iid, "Running"),
    ])
    ok(r[0])
    assert instances(ok(r[1]))[iid]["Status"] == "Starting"
    for i in (2, 3, 4):
        err(r[i], 403, "IncorrectInstanceStatus")
    assert instances(ok(r[5]))[iid]["Status"] == "Starting"
    ok(r[6])
    assert [x["kind"] for x in reboots(admin, iid)] == ["graceful"], reboots(admin, iid)


def test_reboot_refusals(server, admin, ali_make_instance, ali_stopped, sig):
    """Every refusal of the seed, each set up through the admin API, in one batch; nothing
    about a refused instance changes."""
    insts = ali_make_instance(amount=7)
    cases: list[tuple[str, int, str]] = [(ali_stopped.id, 403, "IncorrectInstanceStatus")]
    admin.restrict(insts[0].id, "security")
    cases.append((insts[0].id, 403, "InstanceLockedForSecurity"))
    admin.restrict(insts[1].id, "expired")
    cases.append((insts[1].id, 403, "InstanceExpiredOrInArrears"))
    admin.faults(insts[2].id, disk_error=True)
    cases.append((insts[2].id, 403, "DiskError"))
    for inst, (state, status, code) in zip(insts[3:6], [
        ("disabled", 403, "InvalidParameter.KMSKeyId.CMKNotEnabled"),
        ("unauthorized", 403, "InvalidParameter.KMSKeyId.CMKUnauthorized"),
        ("deleted", 404, "InvalidParameter.KMSKeyId.NotFound"),
    ]):
        key = f"key-node-{secrets.token_hex(6)}"
        admin.kms_key(key, state)
        admin.attributes(inst.id, kms_key_id=key)
        cases.append((inst.id, status, code))
    admin.attributes(insts[6].id, kms_key_id=f"key-never-{secrets.token_hex(6)}")
    cases.append((insts[6].id, 404, "InvalidParameter.KMSKeyId.NotFound"))
    cases.append((random_aliyun_instance_id(), 404, "InvalidInstanceId.NotFound"))
    cases.append((f"ins-{secrets.token_hex(4)}", 404, "InvalidInstanceId.NotFound"))  # a Tencent-shaped ID

    legacy = ecs_client(server, "legacy")
    before = {iid: ecs_snapshot(legacy, admin, iid) for iid, _, _ in cases[:-2]}
    calls = [call("RebootInstance", InstanceId=iid, **v) for iid, _, _ in cases for v in VARIANTS]
    r = node(server, sig, calls)
    for n, (iid, status, code) in enumerate(cases):
        for k in range(len(VARIANTS)):
            err(r[n * len(VARIANTS) + k], status, code)
    for iid, snap in before.items():
        assert ecs_snapshot(legacy, admin, iid) == snap, f"a refused reboot changed {iid}"


# --------------------------------------------------------------------------------------
# Passwords


def test_password_on_stopped_instance(server, admin, ali_stopped, sig):
    iid, password, name = ali_stopped.id, new_password(), unique_name("renamed")
    r = node(server, sig, [
        call("ModifyInstanceAttribute", InstanceId=iid, Password="Ab1!xyz", InstanceName=unique_name("nope")),
        call("ModifyInstanceAttribute", InstanceId=iid, Password="abcdefgh12"),
        call("ModifyInstanceAttribute", InstanceId=iid, Password="Abcdefgh 1!"),
        call("ModifyInstanceAttribute", InstanceId=iid, Password=password, InstanceName=name,
             Description="changed by the Node SDK"),
        call("DescribeInstances", RegionId=ALI_REGION, InstanceIds=json.dumps([iid])),
        # The offline change holds the instance until written; wait for it before starting.
        wait(iid, "Stopped"),
        call("StartInstance", InstanceId=iid),
        wait(iid, "Running"),
    ])
    for i in (0, 1, 2):
        err(r[i], 400, "InvalidPassword.Malformed")
    ok(r[3])
    assert instances(ok(r[4]))[iid]["Status"] == "Stopped"
    inst = ok(r[5])
    assert (inst["InstanceName"], inst["Description"]) == (name, "changed by the Node SDK"), inst
    ok(r[6])
    ok(r[7])
    assert admin.check_password(iid, ali_stopped.user, password)
    assert not admin.check_password(iid, ali_stopped.user, ali_stopped.password)


# --------------------------------------------------------------------------------------
# Key pairs


def test_key_pairs(server, admin, ali_stopped, tmp_path, sig):
    iid, prefix = ali_stopped.id, f"kp-{secrets.token_hex(4)}"
    made, imported = f"{prefix}-made", f"{prefix}-imported"
    public = ssh_public_key(tmp_path)
    r = node(server, sig, [
        call("CreateKeyPair", name="made", RegionId=ALI_REGION, KeyPairName=made),              # 0
        call("ImportKeyPair", RegionId=ALI_REGION, KeyPairName=imported, PublicKeyBody=public),  # 1
        call("DescribeKeyPairs", RegionId=ALI_REGION, KeyPairName=imported, IncludePublicKey=True),  # 2
        call("DescribeKeyPairs", RegionId=ALI_REGION, KeyPairName=f"{prefix}-*", PageSize=50),  # 3
        call("DescribeKeyPairs", RegionId=ALI_REGION, KeyPairFingerPrint=ref("made.KeyPairFingerPrint")),  # 4
        call("CreateKeyPair", RegionId=ALI_REGION, KeyPairName=made),                           # 5 taken
        call("AttachKeyPair", RegionId=ALI_REGION, KeyPairName=imported, InstanceIds=json.dumps([iid])),  # 6
        wait(iid, "Stopped"),                                                                   # 7
        call("AttachKeyPair", RegionId=ALI_REGION, KeyPairName=f"{prefix}-missing",
             InstanceIds=json.dumps([iid])),                                                    # 8
        call("DeleteKeyPairs", RegionId=ALI_REGION, KeyPairNames=json.dumps([imported])),      # 9 attached
    ])
    created = ok(r[0])
    assert created["KeyPairName"] == made and created["KeyPairId"] and created["KeyPairFingerPrint"], created
    assert "PRIVATE KEY-----" in created["PrivateKeyBody"], created
    assert ok(r[1])["KeyPairName"] == imported and ok(r[1])["KeyPairFingerPrint"]
    one = ok(r[2])
    assert one["TotalCount"] == 1, one
    [kp] = one["KeyPairs"]["KeyPair"]
    assert kp["KeyPairName"] == imported and kp["KeyPairFingerPrint"] == ok(r[1])["KeyPairFingerPrint"], kp
    assert kp["CreationTime"] and same_key(kp["PublicKey"], public), kp
    both = ok(r[3])
    assert both["TotalCount"] == 2, both
    assert sorted(k["KeyPairName"] for k in both["KeyPairs"]["KeyPair"]) == [imported, made]
    assert [k["KeyPairName"] for k in ok(r[4])["KeyPairs"]["KeyPair"]] == [made]
    err(r[5], 400, "KeyPair.AlreadyExist")
    attach = ok(r[6])
    assert (attach["KeyPairName"], attach["TotalCount"], attach["FailCount"]) == (imported, "1", "0"), attach
    [result] = attach["Results"]["Result"]
    assert (result["InstanceId"], result["Success"]) == (iid, "true"), result
    assert ok(r[7])["KeyPairName"] == imported
    err(r[8], 404, "InvalidKeyPairName.NotFound")
    err(r[9], 403, "DependencyViolation.KeyPair")
    keys = admin.guest(iid)["authorized_keys"]
    assert len(keys) == 1 and same_key(keys[0], public), keys

    r = node(server, sig, [
        call("DetachKeyPair", RegionId=ALI_REGION, KeyPairName=imported, InstanceIds=json.dumps([iid])),
        wait(iid, "Stopped"),
        call("DeleteKeyPairs", RegionId=ALI_REGION, KeyPairNames=json.dumps([made, imported])),
        call("DescribeKeyPairs", RegionId=ALI_REGION, KeyPairName=f"{prefix}-*"),
    ])
    detach = ok(r[0])
    assert (detach["TotalCount"], detach["FailCount"]) == ("1", "0"), detach
    assert detach["Results"]["Result"][0]["Success"] == "true", detach
    assert ok(r[1])["KeyPairName"] == ""
    ok(r[2])
    gone = ok(r[3])
    assert gone["TotalCount"] == 0 and gone["KeyPairs"]["KeyPair"] == [], gone
    assert admin.guest(iid)["authorized_keys"] == []


# --------------------------------------------------------------------------------------
# Authentication and request errors


def test_errors(server, admin, ali_running, sig):
    """What a user can configure the SDK into: a wrong AccessKeySecret, an unknown
    AccessKeyId, and — through RuntimeOptions.extendsParameters, which the SDK merges over
    its own x-acs-date / x-acs-signature-nonce headers (ACS3) or Timestamp / SignatureNonce
    query parameters (v1) before signing — a stale timestamp and a replayed nonce. Then
    missing and bad parameters and the unsupported region. None of it reboots anything."""
    iid = ali_running.id
    stale = ali_timestamp(time.time() - 1200)
    nonce = uuid.uuid4().hex
    if sig == "acs3":
        old = {"extendsParameters": {"headers": {"x-acs-date": stale}}}
        fixed = {"extendsParameters": {"headers": {"x-acs-signature-nonce": nonce}}}
    else:
        old = {"extendsParameters": {"queries": {"Timestamp": stale}}}
        fixed = {"extendsParameters": {"queries": {"SignatureNonce": nonce}}}
    before = len(reboots(admin, iid))
    r = node(server, sig, [
        call("DescribeRegions", config={"accessKeySecret": WRONG_SECRET}),                     # 0
        call("RebootInstance", InstanceId=iid, config={"accessKeySecret": WRONG_SECRET}),       # 1
        call("RebootInstance", InstanceId=iid, config={"accessKeyId": UNKNOWN_KEY_ID}),         # 2
        call("RebootInstance", InstanceId=iid, runtime=old),                                    # 3
        call("DescribeRegions", runtime=fixed),                                                 # 4
        call("RebootInstance", InstanceId=iid, runtime=fixed),                                  # 5 replay
        call("RebootInstance"),                                                                 # 6
        call("DescribeInstances"),                                                              # 7
        call("DescribeInstances", RegionId="cn-beijing"),                                       # 8
        call("DescribeInstances", RegionId=ALI_REGION, PageSize=1000),                          # 9
        call("DescribeInstances", RegionId=ALI_REGION, InstanceIds="not json"),                 # 10
        call("RunInstances", RegionId=ALI_REGION, ZoneId=ALI_EXPECTED_ZONE, ImageId=LINUX_IMAGE,
             InstanceType=ALI_EXPECTED_INSTANCE_TYPE, Amount=101),                              # 11
        call("RunInstances", RegionId=ALI_REGION, ZoneId=ALI_EXPECTED_ZONE, ImageId="img-nosuchimage",
             InstanceType=ALI_EXPECTED_INSTANCE_TYPE),                                          # 12
        call("RunInstances", RegionId=ALI_REGION, ZoneId=ALI_EXPECTED_ZONE, ImageId=LINUX_IMAGE,
             InstanceType=ALI_EXPECTED_INSTANCE_TYPE, InstanceName=unique_name("dry"), DryRun=True),  # 13
        call("StopInstance", InstanceId=iid, DryRun=True),                                      # 14
        call("RebootInstance", InstanceId=iid, DryRun=True),                                    # 15
    ])
    e = err(r[0], 400, "SignatureDoesNotMatch")
    # The message ends with the server's string to sign (what the legacy Python core reads).
    assert ":" in e["data"]["Message"], e
    err(r[1], 400, "SignatureDoesNotMatch")
    err(r[2], 404, "InvalidAccessKeyId.NotFound")
    err(r[3], 400, "InvalidTimeStamp.Expired")
    ok(r[4])
    err(r[5], 400, "SignatureNonceUsed")
    assert "InstanceId" in err(r[6], 400, "MissingParameter")["data"]["Message"]
    err(r[7], 400, "MissingRegionId")
    err(r[8], 404, "InvalidRegionId.NotFound")
    assert "PageSize" in err(r[9], 400, "InvalidParameter")["data"]["Message"]
    assert "InstanceIds" in err(r[10], 400, "InvalidParameter")["data"]["Message"]
    assert "Amount" in err(r[11], 400, "InvalidParameter")["data"]["Message"]
    err(r[12], 404, "InvalidImageId.NotFound")
    for i in (13, 14, 15):
        assert err(r[i], 400, "DryRunOperation")["data"]["Message"] == ALI_DRY_RUN_MESSAGE
    assert ecs_describe(ecs_client(server, "legacy"), iid)["Status"] == "Running"
    assert len(reboots(admin, iid)) == before, "a refused request rebooted the instance"



def test_throttling(server_factory, sig):
    """A burst beyond RebootInstance's 20/s is refused with 400 Throttling, which the SDK
    raises as a ThrottlingError carrying the server's x-acs-retry-after (1000 ms); with its
    RetryOptions on Throttling, the SDK waits that long and the retried call is answered.
    A server of its own, so the burst spends no budget of the shared default server."""
    srv = server_factory(f"node-ali-throttle-{sig}")
    iid = random_aliyun_instance_id()
    r = node(srv, sig, [
        {"action": "repeat", "config": {"retryThrottling": False},
         "params": {"Action": "RebootInstance", "Params": {"InstanceId": iid}, "Max": 2000, "Parallel": 10,
                    "UntilCode": "Throttling"}},
        call("RebootInstance", InstanceId=iid),
    ])
    assert r[0]["body"]["Count"] > 20, r[0]
    e = err(r[0], 400, "Throttling")
    assert e["retryAfter"] == 1000, e
    err(r[1], 404, "InvalidInstanceId.NotFound")


def test_acs3_hmac_sm3(server, admin, ali_running):
    """The SDK's other ACS3 algorithm, `signatureAlgorithm: "ACS3-HMAC-SM3"` (SM3 for every
    hash and the HMAC; the payload hash still in x-acs-content-sha256): accepted as the
    real API accepts it, with the same refusals as ACS3-HMAC-SHA256."""
    iid = ali_running.id
    nonce = uuid.uuid4().hex
    fixed = {"extendsParameters": {"headers": {"x-acs-signature-nonce": nonce}}}
    stale = {"extendsParameters": {"headers": {"x-acs-date": ali_timestamp(time.time() - 1200)}}}
    r = node(server, "acs3-sm3", [
        call("DescribeRegions"),
        call("DescribeInstances", RegionId=ALI_REGION, InstanceName=ODD_NAME),
        call("RebootInstance", InstanceId=iid, DryRun=True),
        call("RebootInstance", InstanceId=iid, ForceStop=True),
        wait(iid, "Running"),
        call("RebootInstance", InstanceId=iid, config={"accessKeySecret": WRONG_SECRET}),
        call("DescribeRegions", runtime=stale),
        call("DescribeRegions", runtime=fixed),
        call("DescribeRegions", runtime=fixed),
    ])
    assert ALI_REGION in [x["RegionId"] for x in ok(r[0])["Regions"]["Region"]]
    assert ok(r[1])["TotalCount"] == 0
    assert err(r[2], 400, "DryRunOperation")["data"]["Message"] == ALI_DRY_RUN_MESSAGE
    ok(r[3])
    ok(r[4])
    e = err(r[5], 400, "SignatureDoesNotMatch")
    assert ":ACS3-HMAC-SM3\n" in e["data"]["Message"], e  # the server's StringToSign, SM3's
    err(r[6], 400, "InvalidTimeStamp.Expired")
    ok(r[7])
    err(r[8], 400, "SignatureNonceUsed")
    assert [x["kind"] for x in reboots(admin, iid)] == ["hard"], reboots(admin, iid)
