"""Alibaba wire protocol and authentication (spec §2-§4): signature failures as each official
client sees them, unknown AccessKeyId, replayed SignatureNonce, stale timestamps, unknown
Action, missing and unsupported RegionId, Format=XML, GET and form-body requests, and the
error envelope. Requests no official client can make on purpose (a replay, a stale clock)
are built by hand with nubis.rpc_v1_* / acs3_* (checked in test_aliyun_signer_vectors.py)."""

import time
import xml.etree.ElementTree as ET

import pytest
import requests

from nubis import (
    ALI_MISSING_REGION,
    ALI_REGION,
    ALI_UNSUPPORTED_REGION,
    ali_error_of,
    ali_percent,
    ali_timestamp,
    acs3_send,
    ecs_client,
    expect_ecs_error,
    random_aliyun_instance_id,
    rpc_v1_params,
    rpc_v1_send,
    rpc_v1_sign,
)

pytestmark = pytest.mark.timeout(60)

WRONG_SECRET = "wrongSecretKey0000000000000000000"
UNKNOWN_KEY_ID = "LTAInubisNobody0000000000000"
ODD_NAME = "a b*c~d/e+f (x)&y=z%"  # every character class the canonicalisation treats specially


# --------------------------------------------------------------------------------------
# Signatures


def test_both_generations_sign_correctly(server):
    for gen in ("legacy", "tea"):
        got = ecs_client(server, gen).call("DescribeInstances", InstanceName=ODD_NAME)
        assert got["TotalCount"] == 0, (gen, got)


def test_wrong_secret_legacy(server):
    """The server answers 400 SignatureDoesNotMatch with "…:<its StringToSign>" (quirk Q1).
    The legacy core splits the message at ':' and, when the server's StringToSign equals its
    own, rewrites the code to InvalidAccessKeySecret (client.py _get_server_exception). So
    that code proves the message has the colon (no IndexError) and that the server
    canonicalised exactly as the SDK did."""
    ecs = ecs_client(server, "legacy", access_key_secret=WRONG_SECRET, retry=False)
    expect_ecs_error(400, "InvalidAccessKeySecret", ecs.call, "DescribeRegions")
    expect_ecs_error(400, "InvalidAccessKeySecret", ecs.call, "DescribeInstances", InstanceName=ODD_NAME)
    # Through CommonRequest the SDK compares with the outer request's string_to_sign, which it
    # never sets (only the wrapped RpcRequest's), so the code stays SignatureDoesNotMatch; the
    # split(':')[1] still runs, so a message without a colon would still crash the client.
    expect_ecs_error(400, "SignatureDoesNotMatch", ecs.common, "RebootInstance",
                     InstanceId=random_aliyun_instance_id(), ForceStop=True)


def test_wrong_secret_tea(server):
    ecs = ecs_client(server, "tea", access_key_secret=WRONG_SECRET, retry=False)
    expect_ecs_error(400, "SignatureDoesNotMatch", ecs.call, "DescribeRegions")
    expect_ecs_error(400, "SignatureDoesNotMatch", ecs.call, "RebootInstance", InstanceId=random_aliyun_instance_id())


def test_wrong_secret_message_carries_string_to_sign(server):
    params, sts = rpc_v1_sign(rpc_v1_params("DescribeInstances", {"InstanceName": ODD_NAME}), WRONG_SECRET)
    resp = rpc_v1_send(server, params)
    assert ali_error_of(resp) == (400, "SignatureDoesNotMatch")
    message = resp.json()["Message"]
    assert ":" in message, message
    assert message.split(":", 1)[1] == sts, message


@pytest.mark.parametrize("gen", ["legacy", "tea"])
def test_unknown_access_key_id(server, gen):
    ecs = ecs_client(server, gen, access_key_id=UNKNOWN_KEY_ID, retry=False)
    expect_ecs_error(404, "InvalidAccessKeyId.NotFound", ecs.call, "DescribeRegions")


def test_unsupported_signature_method(server):
    p = rpc_v1_params("DescribeRegions", {})
    p["SignatureMethod"] = "HMAC-MD5"
    assert ali_error_of(rpc_v1_send(server, rpc_v1_sign(p)[0])) == (400, "InvalidSignatureMethod")


# --------------------------------------------------------------------------------------
# Replay and clock (§3c)


def test_hand_signed_requests_work(server):
    """The suite's own signers are accepted, so the tests below test replay and clock only."""
    assert ali_error_of(rpc_v1_send(server, rpc_v1_sign(rpc_v1_params("DescribeRegions", {}))[0])) == (200, None)
    assert ali_error_of(acs3_send(server, "DescribeZones", {"RegionId": ALI_REGION})) == (200, None)


def test_replayed_nonce_v1(server):
    signed, _ = rpc_v1_sign(rpc_v1_params("DescribeRegions", {}))
    assert ali_error_of(rpc_v1_send(server, signed)) == (200, None)
    assert ali_error_of(rpc_v1_send(server, signed)) == (400, "SignatureNonceUsed")
    # The nonce is spent whatever the request: a different, freshly signed one with it fails too.
    other, _ = rpc_v1_sign(rpc_v1_params("DescribeZones", {}, nonce=signed["SignatureNonce"]))
    assert ali_error_of(rpc_v1_send(server, other)) == (400, "SignatureNonceUsed")


def test_replayed_nonce_v3(server):
    nonce, date = "0123456789abcdef" + str(time.time_ns())[-16:], ali_timestamp()
    assert ali_error_of(acs3_send(server, "DescribeZones", {"RegionId": ALI_REGION}, nonce=nonce, date=date)) == (200, None)
    assert ali_error_of(acs3_send(server, "DescribeZones", {"RegionId": ALI_REGION}, nonce=nonce, date=date)) == (
        400, "SignatureNonceUsed")


@pytest.mark.parametrize("skew", [-1200, 1200], ids=["20-min-old", "20-min-ahead"])
def test_stale_timestamp(server, skew):
    ts = ali_timestamp(time.time() + skew)
    v1 = rpc_v1_send(server, rpc_v1_sign(rpc_v1_params("DescribeRegions", {}, timestamp=ts))[0])
    assert ali_error_of(v1) == (400, "InvalidTimeStamp.Expired")
    v3 = acs3_send(server, "DescribeZones", {"RegionId": ALI_REGION}, date=ts)
    assert ali_error_of(v3) == (400, "InvalidTimeStamp.Expired")


def test_timestamp_within_fifteen_minutes(server):
    ts = ali_timestamp(time.time() - 600)
    assert ali_error_of(rpc_v1_send(server, rpc_v1_sign(rpc_v1_params("DescribeRegions", {}, timestamp=ts))[0])) == (
        200, None)


def test_malformed_timestamp(server):
    p = rpc_v1_params("DescribeRegions", {}, timestamp="2024/01/01 12:00:00")
    assert ali_error_of(rpc_v1_send(server, rpc_v1_sign(p)[0])) == (400, "InvalidTimeStamp.Format")


# --------------------------------------------------------------------------------------
# Actions and regions


def test_unknown_action(server):
    expect_ecs_error(404, "InvalidAction.NotFound", ecs_client(server, "legacy").common, "DescribeUnicorns")
    expect_ecs_error(404, "InvalidAction.NotFound", ecs_client(server, "tea").generic, "DescribeUnicorns",
                     RegionId=ALI_REGION)


def test_missing_region_id(server):
    """The legacy core always adds RegionId (the client's region) to an RPC request, so only
    the Tea client and a hand-made request can leave it out."""
    status, code = ALI_MISSING_REGION
    expect_ecs_error(status, code, ecs_client(server, "tea").call, "DescribeInstances", RegionId=None)
    resp = rpc_v1_send(server, rpc_v1_sign(rpc_v1_params("DescribeInstances", {}, region=None))[0])
    assert ali_error_of(resp) == (status, code)


@pytest.mark.parametrize("region", ["cn-beijing", "xx-nowhere"])
def test_unsupported_region(server, ali_catalog, region):
    status, code = ALI_UNSUPPORTED_REGION
    legacy = ecs_client(server, "legacy", region=region)
    expect_ecs_error(status, code, legacy.call, "DescribeInstances")
    expect_ecs_error(status, code, legacy.call, "DescribeZones")
    tea = ecs_client(server, "tea", region=region)
    expect_ecs_error(status, code, tea.call, "DescribeInstances")
    expect_ecs_error(status, code, tea.call, "RunInstances", ZoneId=f"{region}-a", ImageId=ali_catalog.linux_image,
                     InstanceType=ali_catalog.instance_type, Password="Nubis@2026pw")


def test_listed_regions_other_than_the_served_one(server):
    """Every region DescribeRegions lists is either served or answers the unsupported-region
    error — never an internal error or an empty success."""
    regions = [r["RegionId"] for r in ecs_client(server, "legacy").call("DescribeRegions")["Regions"]["Region"]]
    status, code = ALI_UNSUPPORTED_REGION
    for region in regions:
        if region == ALI_REGION:
            continue
        expect_ecs_error(status, code, ecs_client(server, "legacy", region=region).call, "DescribeZones")


# --------------------------------------------------------------------------------------
# Request and response forms


def test_get_and_form_body_requests(server):
    """Servers must also accept GET, and POST with form-encoded body parameters."""
    get = rpc_v1_send(server, rpc_v1_sign(rpc_v1_params("DescribeRegions", {}), method="GET")[0], method="GET")
    assert ali_error_of(get) == (200, None)
    signed, _ = rpc_v1_sign(rpc_v1_params("DescribeInstances", {"InstanceName": ODD_NAME}))
    body = "&".join(f"{ali_percent(k)}={ali_percent(v)}" for k, v in signed.items())
    s = requests.Session()
    s.trust_env = False
    resp = s.post(server.base_url + "/", data=body.encode(), timeout=30,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert ali_error_of(resp) == (200, None)
    assert resp.json()["TotalCount"] == 0


def test_lower_case_booleans(server, ali_running):
    """Go SDKs and the CLI send true/false; the Python SDKs True/False (spec §2)."""
    p = rpc_v1_params("RebootInstance", {"InstanceId": ali_running.id, "DryRun": "true"}, region=None)
    assert ali_error_of(rpc_v1_send(server, rpc_v1_sign(p)[0])) == (400, "DryRunOperation")


def test_json_envelopes(server):
    ok = rpc_v1_send(server, rpc_v1_sign(rpc_v1_params("DescribeRegions", {}))[0])
    assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("application/json"), ok.headers
    err = rpc_v1_send(server, rpc_v1_sign(rpc_v1_params(
        "RebootInstance", {"InstanceId": random_aliyun_instance_id()}, region=None))[0])
    assert err.status_code == 404 and err.headers["Content-Type"].startswith("application/json"), err.headers
    body = err.json()
    assert body["Code"] == "InvalidInstanceId.NotFound", body
    assert body["RequestId"] and body["HostId"] and body["Message"], body


def test_xml_format(server, ecs, admin, ali_running):
    status, headers, body = ecs.raw("DescribeRegions", "XML")
    assert status == 200, body
    assert "xml" in {k.lower(): v for k, v in headers.items()}["content-type"], headers
    assert body.lstrip().startswith(b"<?xml"), body[:200]
    root = ET.fromstring(body)
    assert root.tag == "DescribeRegionsResponse", body[:200]
    assert root.findtext("RequestId")
    assert ALI_REGION in [r.findtext("RegionId") for r in root.findall("./Regions/Region")], body

    status, _, body = ecs.raw("RebootInstance", "XML", InstanceId=ali_running.id)
    assert status == 200, body
    root = ET.fromstring(body)
    assert root.tag == "RebootInstanceResponse" and root.findtext("RequestId"), body


def test_xml_error(server, ecs):
    """Errors in XML have an <Error> root (what the Tea SDK reads for text/xml errors)."""
    status, headers, body = ecs.raw("RebootInstance", "XML", InstanceId=random_aliyun_instance_id())
    assert status == 404, body
    assert body.lstrip().startswith(b"<?xml"), body[:200]
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    assert root.findtext("Code") == "InvalidInstanceId.NotFound" and root.findtext("RequestId"), body
