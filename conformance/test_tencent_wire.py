"""Wire protocol and authentication (spec §2-§4): every signature style of the official SDK,
the auth failures, unsupported region / action / version, and the error envelope (HTTP 200,
Content-Type exactly application/json)."""

import time

import pytest
import requests

from nubis import (
    ADMIN_KEY_ID,
    REGION,
    Cvm,
    expect_error,
    launch,
    tc3_post,
    tc3_sign,
    unique_name,
)

pytestmark = pytest.mark.timeout(60)

SIGNATURES = [
    ("TC3-HMAC-SHA256", "POST"),
    ("TC3-HMAC-SHA256", "GET"),
    ("HmacSHA256", "POST"),
    ("HmacSHA256", "GET"),
    ("HmacSHA1", "POST"),
    ("HmacSHA1", "GET"),
]
SIG_IDS = [f"{s}-{m}" for s, m in SIGNATURES]


@pytest.fixture(scope="module")
def one(server, catalog):
    """One RUNNING instance with a unique name."""
    name = unique_name("wire")
    return launch(server.cvm(), catalog, name=name)[0], name


@pytest.mark.parametrize("signature, method", SIGNATURES, ids=SIG_IDS)
def test_signature_styles(server, catalog, one, signature, method):
    inst, name = one
    cvm = server.cvm(signature, method)
    got = cvm.call("DescribeInstances", InstanceIds=[inst.id])
    assert got["TotalCount"] == 1 and got["InstanceSet"][0]["InstanceId"] == inst.id
    got = cvm.call("DescribeInstances", Filters=[
        {"Name": "instance-name", "Values": [name]},
        {"Name": "zone", "Values": [catalog.zone, catalog.zone + "x"]},
    ], Offset=0, Limit=20)
    assert [i["InstanceId"] for i in got["InstanceSet"]] == [inst.id]
    status = cvm.call("DescribeInstancesStatus", InstanceIds=[inst.id])["InstanceStatusSet"]
    assert status == [{"InstanceId": inst.id, "InstanceState": "RUNNING"}]
    # A boolean and a nested refusal travel intact (form style sends "False").
    expect_error("UnsupportedOperation.InstanceStateRunning", cvm.call, "ResetInstancesPassword",
                 InstanceIds=[inst.id], Password="Qcloud@TestApi123++", ForceStop=False)


def test_endpoint_with_scheme(server):
    """tccli passes `--endpoint http://host:port` into HttpProfile.endpoint, so the Host header
    and the signed host are `http://host:port` (spec quirk Q1)."""
    cvm = Cvm(server.base_url)
    assert cvm.call("DescribeZones")["ZoneSet"]


@pytest.mark.parametrize("signature, method", SIGNATURES, ids=SIG_IDS)
def test_wrong_secret_key(server, signature, method):
    cvm = server.cvm(signature, method, secret_key="wrongSecretKey0000000000000000000")
    expect_error("AuthFailure.SignatureFailure", cvm.call, "DescribeZones")


@pytest.mark.parametrize("signature, method", SIGNATURES[:3], ids=SIG_IDS[:3])
def test_unknown_secret_id(server, signature, method):
    cvm = server.cvm(signature, method, secret_id="AKIDnubisNobody000000000000000000000")
    expect_error("AuthFailure.SecretIdNotFound", cvm.call, "DescribeZones")


def error_of(resp: requests.Response) -> str | None:
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"] == "application/json", resp.headers
    body = resp.json()["Response"]
    assert body["RequestId"], body
    if "Error" in body:
        assert body["Error"]["Message"], body
        return body["Error"]["Code"]
    return None


def test_hand_signed_request_works(server):
    """The suite's own signer is accepted, so the skew tests below test the clock only."""
    assert error_of(tc3_post(server, "DescribeZones", {})) is None


@pytest.mark.parametrize("skew", [-600, 600, -301])
def test_timestamp_skew(server, skew):
    resp = tc3_post(server, "DescribeZones", {}, timestamp=int(time.time()) + skew)
    assert error_of(resp) == "AuthFailure.SignatureExpire"


def test_timestamp_within_five_minutes(server):
    assert error_of(tc3_post(server, "DescribeZones", {}, timestamp=int(time.time()) - 200)) is None


@pytest.mark.parametrize("region", ["xx-nowhere", "ap-mumbai"])
def test_unsupported_region(server, region):
    expect_error("UnsupportedRegion", server.cvm(region=region).call, "DescribeZones")
    expect_error("UnsupportedRegion", server.cvm(region=region).call, "DescribeInstances")


def test_unknown_action(cvm):
    expect_error("InvalidAction", cvm.raw, "DescribeUnicorns")


def test_unknown_version(server):
    assert error_of(tc3_post(server, "DescribeZones", {}, version="2099-01-01")) == "NoSuchVersion"


def test_unknown_parameter(cvm):
    expect_error("UnknownParameter", cvm.raw, "DescribeZones", {"Colour": "blue"})
    # Parameter names are case-sensitive.
    expect_error("UnknownParameter", cvm.raw, "DescribeInstances", {"instanceIds": ["ins-abcdefgh"]})


ERROR_REQUESTS = {
    "bad-signature": lambda s: tc3_post(s, "DescribeZones", {}, secret_key="x" * 32),
    "unknown-secret-id": lambda s: tc3_post(s, "DescribeZones", {}, secret_id="AKIDnobody"),
    "stale": lambda s: tc3_post(s, "DescribeZones", {}, timestamp=int(time.time()) - 3600),
    "unknown-action": lambda s: tc3_post(s, "DescribeUnicorns", {}),
    "unsupported-region": lambda s: tc3_post(s, "DescribeZones", {}, region="xx-nowhere"),
    "unknown-parameter": lambda s: tc3_post(s, "DescribeZones", {"Colour": "blue"}),
    "malformed-id": lambda s: tc3_post(s, "EnterRescueMode", {"InstanceId": "ins-1122", "Password": "Qcloud@TestApi123++"}),
    "wrong-type": lambda s: tc3_post(s, "DescribeInstances", {"Limit": "many"}),
    "missing-parameter": lambda s: tc3_post(s, "EnterRescueMode", {"Password": "Qcloud@TestApi123++"}),
    "no-authorization": lambda s: requests.post(
        s.base_url + "/", data=b"{}", timeout=10,
        headers={"Content-Type": "application/json", "X-TC-Action": "DescribeZones",
                 "X-TC-Version": "2017-03-12", "X-TC-Region": REGION,
                 "X-TC-Timestamp": str(int(time.time()))}),
    "garbage-authorization": lambda s: tc3_post(s, "DescribeZones", {}, headers={"Authorization": "Bearer xyz"}),
}


@pytest.mark.parametrize("case", list(ERROR_REQUESTS))
def test_error_envelope(server, case):
    code = error_of(ERROR_REQUESTS[case](server))
    assert code, f"{case}: expected an error"


def test_invalid_json_body(server):
    """A correctly signed body that is not JSON gets an error envelope, not a 4xx/5xx."""
    body = b"{not json"
    ts = int(time.time())
    sig = tc3_sign(server.creds[1], method="POST", host=server.endpoint,
                   content_type="application/json", payload=body, timestamp=ts)
    resp = requests.post(server.base_url + "/", data=body, timeout=10, headers={
        "Host": server.endpoint, "Content-Type": "application/json", "X-TC-Action": "DescribeZones",
        "X-TC-Version": "2017-03-12", "X-TC-Region": REGION, "X-TC-Timestamp": str(ts),
        "Authorization": sig.authorization(ADMIN_KEY_ID)})
    assert error_of(resp)


def test_success_envelope(server):
    resp = tc3_post(server, "DescribeRegions", {})
    assert error_of(resp) is None
    assert resp.json()["Response"]["RegionSet"]
