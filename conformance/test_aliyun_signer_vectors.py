"""The suite's own Alibaba signers (nubis.rpc_v1_* and acs3_*) reproduce the worked vectors of
shared/specs/aliyun-ecs.md §3a/§3b and agree with the official SDKs' own signing code. No
server: these guard the hand-built requests of test_aliyun_wire.py."""

from types import SimpleNamespace

import pytest
from aliyunsdkcore.auth.composer import rpc_signature_composer
from alibabacloud_tea_openapi.utils import Utils as TeaUtils

from nubis import acs3_sign, rpc_v1_signature, rpc_v1_string_to_sign

pytestmark = pytest.mark.timeout(30)

V1_PARAMS = {
    "Action": "DescribeInstances", "Version": "2014-05-26", "RegionId": "cn-hangzhou",
    "InstanceIds": '["i-bp1abc", "i-bp2def"]', "PageSize": "10",
    "Timestamp": "2024-01-01T12:00:00Z", "SignatureMethod": "HMAC-SHA1", "SignatureType": "",
    "SignatureVersion": "1.0", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "AccessKeyId": "testid", "Format": "JSON",
}
V1_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeInstances%26Format%3DJSON%26InstanceIds%3D"
    "%255B%2522i-bp1abc%2522%252C%2520%2522i-bp2def%2522%255D%26PageSize%3D10%26RegionId%3Dcn-hangzhou"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
    "%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T12%253A00%253A00Z"
    "%26Version%3D2014-05-26"
)


def test_v1_vector():
    sts = rpc_v1_string_to_sign("GET", V1_PARAMS)
    assert sts == V1_STRING_TO_SIGN
    assert rpc_v1_signature("testsecret", sts) == "y5921f3wRJKuXAIHp5/3+5zhzxk="


def test_v1_empty_value_is_signed():
    params = {k: v for k, v in V1_PARAMS.items() if k != "SignatureType"}
    assert rpc_v1_signature("testsecret", rpc_v1_string_to_sign("GET", params)) == "XBjl9OpeaT1bgFXRCvqev/Uzouk="


def test_v1_agrees_with_legacy_sdk():
    compose = getattr(rpc_signature_composer, "__compose_string_to_sign")
    params = {**V1_PARAMS, "InstanceName": "a b*c~d/e+f", "Tag.1.Value": "dev test"}
    for method in ("GET", "POST"):
        assert rpc_v1_string_to_sign(method, params) == compose(method, params)
    sign = getattr(rpc_signature_composer, "__get_signature")
    sts = rpc_v1_string_to_sign("POST", params)
    assert rpc_v1_signature("testsecret", sts) == sign(sts, "testsecret")


V2_QUERY = {
    "RegionId": "cn-hangzhou", "InstanceIds": '["i-bp1abc", "i-bp2def"]', "PageSize": "10",
    "Tag.1.Key": "env", "Tag.1.Value": "dev test",
}
V2_HEADERS = {
    "host": "ecs.cn-hangzhou.aliyuncs.com", "x-acs-action": "DescribeInstances",
    "x-acs-version": "2014-05-26", "x-acs-date": "2024-01-01T12:00:00Z",
    "x-acs-signature-nonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "accept": "application/json",
    "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}


def test_v2_vector():
    sig, signed, canonical = acs3_sign("testsecret", "POST", V2_QUERY, V2_HEADERS)
    assert canonical == (
        "POST\n/\n"
        "InstanceIds=%5B%22i-bp1abc%22%2C%20%22i-bp2def%22%5D&PageSize=10&RegionId=cn-hangzhou"
        "&Tag.1.Key=env&Tag.1.Value=dev%20test\n"
        "accept:application/json\nhost:ecs.cn-hangzhou.aliyuncs.com\nx-acs-action:DescribeInstances\n"
        "x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-acs-date:2024-01-01T12:00:00Z\nx-acs-signature-nonce:3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\n"
        "x-acs-version:2014-05-26\n\n"
        "accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert signed == "accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    assert sig == "3f34bfc64226b62c9c22e84db52a3603a199180111e4c60ca4975c8a1d223059"


def test_v2_agrees_with_tea_sdk():
    query = {**V2_QUERY, "InstanceName": "a b*c~d/e+f"}
    headers = {**V2_HEADERS, "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11 Core/0.4.6 TeaDSL/2"}
    sig, signed, _ = acs3_sign("testsecret", "POST", query, headers)
    req = SimpleNamespace(pathname="/", method="POST", query=query, headers=headers)
    auth = TeaUtils.get_authorization(req, "ACS3-HMAC-SHA256", V2_HEADERS["x-acs-content-sha256"],
                                      "testid", "testsecret")
    assert auth == f"ACS3-HMAC-SHA256 Credential=testid,SignedHeaders={signed},Signature={sig}"
