"""The suite's own Tencent signer (nubis.tc3_sign / legacy_sign) reproduces the worked
vectors of shared/specs/tencent-cvm.md §3c and agrees with the official SDK. No server."""

import json

from tencentcloud.common.sign import Sign

from nubis import legacy_sign, legacy_string_to_sign, tc3_sign

SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
TIMESTAMP = 1551113065
HOST = "127.0.0.1:18080"

PARAMS = {
    "InstanceIds": ["ins-09dx96dg"],
    "Filters": [{"Name": "zone", "Values": ["ap-guangzhou-3", "ap-guangzhou-4"]}],
    "Offset": 0,
    "Limit": 20,
}


def test_v1_tc3_post_json():
    body = json.dumps(PARAMS).encode()
    assert body == (
        b'{"InstanceIds": ["ins-09dx96dg"], "Filters": [{"Name": "zone", "Values": '
        b'["ap-guangzhou-3", "ap-guangzhou-4"]}], "Offset": 0, "Limit": 20}'
    )
    s = tc3_sign(SECRET_KEY, method="POST", host=HOST, content_type="application/json",
                 payload=body, timestamp=TIMESTAMP)
    assert s.hashed_payload == "97550a7ea51de30cb38bd257ccd5265919f67967f551a0bf6696c72997ac15cf"
    assert s.canonical_request == (
        "POST\n/\n\ncontent-type:application/json\nhost:127.0.0.1:18080\n\ncontent-type;host\n"
        "97550a7ea51de30cb38bd257ccd5265919f67967f551a0bf6696c72997ac15cf"
    )
    assert s.canonical_request_hash == "45ff7a3bb5f8be706327fea43b78901d1fc82fc77a48fb74c2338187f1bc9315"
    assert s.date == "2019-02-25"
    assert s.string_to_sign == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "45ff7a3bb5f8be706327fea43b78901d1fc82fc77a48fb74c2338187f1bc9315"
    )
    assert s.k_date.hex() == "d1308c81fe71cfd4e06437bbc067b2b8a3d2d8c0e375d547f15c41d5214b395a"
    assert s.k_service.hex() == "3c7cb7c7795393edc14fd2e0e6434a518564b4504b88e94f5d11bf59ba3e7050"
    assert s.k_signing.hex() == "ac658d5dde49e9bfdd14e04e062f66b05d9f637d44b8a8d845327d4a77f666b1"
    assert s.signature == "efb2bfa1b4aa9cad265f28ee49cff3fcd82b8b802d1d509b272046a4349fc9c3"
    assert s.authorization(SECRET_ID) == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=efb2bfa1b4aa9cad265f28ee49cff3fcd82b8b802d1d509b272046a4349fc9c3"
    )
    # The official SDK's key derivation gives the same signature for the same StringToSign.
    assert Sign.sign_tc3(SECRET_KEY, s.date, "cvm", s.string_to_sign) == s.signature


def test_v2_tc3_get():
    query = ("InstanceIds.0=ins-09dx96dg&Filters.0.Name=zone&Filters.0.Values.0=ap-guangzhou-3"
             "&Filters.0.Values.1=ap-guangzhou-4&Offset=0&Limit=20")
    s = tc3_sign(SECRET_KEY, method="GET", host=HOST, query=query,
                 content_type="application/x-www-form-urlencoded", payload=b"", timestamp=TIMESTAMP)
    assert s.hashed_payload == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert s.signature == "0f3f5c101e9fe82d26075b1f356dfca4d24db52795dc85f0c78f940da23182af"


def _legacy_params(method: str) -> dict:
    return {
        "Action": "DescribeInstances",
        "Filters.0.Name": "zone",
        "Filters.0.Values.0": "ap-guangzhou-3",
        "Filters.0.Values.1": "ap-guangzhou-4",
        "InstanceIds.0": "ins-09dx96dg",
        "Language": "en-US",
        "Limit": 20,
        "Nonce": 11886,
        "Offset": 0,
        "Region": "ap-guangzhou",
        "RequestClient": "SDK_PYTHON_3.1.178",
        "SecretId": SECRET_ID,
        "SignatureMethod": method,
        "Timestamp": TIMESTAMP,
        "Version": "2017-03-12",
    }


def test_v3_legacy_hmacsha256_post():
    sts = legacy_string_to_sign("POST", HOST, _legacy_params("HmacSHA256"))
    assert sts == (
        "POST127.0.0.1:18080/?Action=DescribeInstances&Filters.0.Name=zone"
        "&Filters.0.Values.0=ap-guangzhou-3&Filters.0.Values.1=ap-guangzhou-4"
        "&InstanceIds.0=ins-09dx96dg&Language=en-US&Limit=20&Nonce=11886&Offset=0"
        "&Region=ap-guangzhou&RequestClient=SDK_PYTHON_3.1.178"
        "&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&SignatureMethod=HmacSHA256"
        "&Timestamp=1551113065&Version=2017-03-12"
    )
    assert legacy_sign(SECRET_KEY, sts, "HmacSHA256") == "96Ai56cS0g6JZZ9VJWbwqmVG2D9LaiQFpWpof24OiA8="
    assert Sign.sign(SECRET_KEY, sts, "HmacSHA256") == "96Ai56cS0g6JZZ9VJWbwqmVG2D9LaiQFpWpof24OiA8="


def test_v4_legacy_hmacsha1_get():
    sts = legacy_string_to_sign("GET", HOST, _legacy_params("HmacSHA1"))
    assert sts.startswith("GET127.0.0.1:18080/?Action=DescribeInstances&")
    assert legacy_sign(SECRET_KEY, sts, "HmacSHA1") == "+lgkD7TwqhbfPE3/USwS7KFjmUg="
    assert Sign.sign(SECRET_KEY, sts, "HmacSHA1") == "+lgkD7TwqhbfPE3/USwS7KFjmUg="


def test_signature_field_is_not_signed():
    params = _legacy_params("HmacSHA1")
    assert legacy_string_to_sign("GET", HOST, {**params, "Signature": "x"}) == legacy_string_to_sign(
        "GET", HOST, params
    )
