"""Issue 13 item 6: the audit trail through each cloud's own lookup API and official SDK
(docs/audit.md, docs/identity-wire.md §5, §7, D12, D13):

- tencentcloud-sdk-python CloudAudit 2019-03-19 LookUpEvents;
- aliyun-python-sdk-actiontrail 2.2.0 (legacy) and alibabacloud_actiontrail20200706 2.6.0 (Tea)
  ActionTrail 2020-07-06 LookupEvents;

a reboot by the account's root (allowed) and a reboot refused to a read-only sub-user are
both found with their RequestIds and result codes; another account sees neither; a sub-user
needs the lookup permission; no secret appears in any event.

Own server: the accounts made here must not show in other tests' listings."""

from __future__ import annotations

import json
import time

import pytest
from aliyunsdkcore.client import AcsClient
from aliyunsdkactiontrail.request.v20200706.LookupEventsRequest import LookupEventsRequest
from alibabacloud_actiontrail20200706 import models as at_models
from alibabacloud_actiontrail20200706.client import Client as TeaActionTrail
from alibabacloud_tea_openapi import models as open_api_models
from tencentcloud.cloudaudit.v20190319 import cloudaudit_client, models as ca_models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from conftest import catalog_of
from nubis import ali_catalog_of, ali_launch, ecs_client, expect_ecs_error, expect_error, launch
from test_tenancy import CAM_READ_ONLY, RAM_READ_ONLY, Tenancy, cvm_as, ecs_as


@pytest.fixture(scope="module")
def audit_server(server_factory):
    return server_factory("audit", NUBIS_RATE_LIMITS="off")


@pytest.fixture(scope="module")
def t(audit_server) -> Tenancy:
    return Tenancy(audit_server)


def cloudaudit(server, key):
    hp = HttpProfile(endpoint=server.endpoint, protocol="http")
    return cloudaudit_client.CloudauditClient(
        credential.Credential(*key), "ap-guangzhou", ClientProfile(httpProfile=hp))


def look_up(server, key, **params) -> dict:
    req = ca_models.LookUpEventsRequest()
    now = int(time.time())
    req._deserialize({"StartTime": now - 3600, "EndTime": now + 60, "MaxResults": 50} | params)
    return json.loads(cloudaudit(server, key).LookUpEvents(req).to_json_string())


def legacy_lookup(server, key, **attrs) -> dict:
    client = AcsClient(key[0], key[1], "cn-hangzhou")
    req = LookupEventsRequest()
    req.set_endpoint(server.endpoint)
    req.set_protocol_type("http")
    req.set_MaxResults("50")
    if attrs:
        req.set_LookupAttributes([{"Key": k, "Value": v} for k, v in attrs.items()])
    return json.loads(client.do_action_with_exception(req))


def tea_lookup(server, key, **attrs) -> dict:
    client = TeaActionTrail(open_api_models.Config(
        access_key_id=key[0], access_key_secret=key[1], endpoint=server.endpoint, protocol="http"))
    req = at_models.LookupEventsRequest(
        max_results="50",
        lookup_attribute=[at_models.LookupEventsRequestLookupAttribute(key=k, value=v) for k, v in attrs.items()])
    return client.lookup_events(req).body.to_map()


def ali_lookup(generation, server, key, **attrs) -> dict:
    return (legacy_lookup if generation == "legacy" else tea_lookup)(server, key, **attrs)


def no_secret_in(blob: str, *secrets: str) -> None:
    for s in secrets:
        assert s not in blob, f"a secret is in the trail: {s[:4]}…"


def test_cloudaudit_finds_allowed_and_refused_calls(audit_server, t):
    acct = t.account()
    root_key = t.key(acct)
    root = cvm_as(audit_server, root_key)
    inst = launch(root, catalog_of(audit_server))[0]
    dev = t.user(acct)
    t.policy(acct, dev, "read-only", "cam", CAM_READ_ONLY)
    dev_key = t.key(acct, dev)
    sub = cvm_as(audit_server, dev_key)
    allowed = root.call("RebootInstances", InstanceIds=[inst.id])["RequestId"]
    e = expect_error("AuthFailure.UnauthorizedOperation", sub.call, "RebootInstances", InstanceIds=[inst.id])
    refused = e.requestId

    # A sub-user needs cloudaudit:LookUpEvents.
    expect_error("AuthFailure.UnauthorizedOperation", look_up, audit_server, dev_key)

    got = look_up(audit_server, root_key,
                  LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "RebootInstances"}])
    events = {ev["RequestID"]: ev for ev in got["Events"]}
    assert allowed in events and refused in events, got
    ok, no = events[allowed], events[refused]
    assert ok["ErrorCode"] == 0 and no["ErrorCode"] != 0
    ok_inner, no_inner = json.loads(ok["CloudAuditEvent"]), json.loads(no["CloudAuditEvent"])
    assert ok_inner["apiErrorCode"] == ""
    assert no_inner["apiErrorCode"] == "AuthFailure.UnauthorizedOperation"
    assert ok["SecretId"] == root_key[0] and no["SecretId"] == dev_key[0]
    assert no["Username"] == dev and no_inner["userIdentity"]["type"] == "CAMUser"
    assert ok["Resources"]["ResourceName"] == inst.id
    assert isinstance(ok["EventTime"], str) and ok["EventTime"].isdigit()
    assert ok["SourceIPAddress"] == "127.0.0.1"
    assert "tencentcloud-sdk-python" in ok_inner["userAgent"].lower() or ok_inner["userAgent"]
    no_secret_in(json.dumps(got), root_key[1], dev_key[1], audit_server.creds[1])

    # Found by its RequestId too; another account sees neither.
    by_rid = look_up(audit_server, root_key,
                     LookupAttributes=[{"AttributeKey": "RequestId", "AttributeValue": refused}])
    assert [ev["RequestID"] for ev in by_rid["Events"]] == [refused]
    other = t.account()
    other_key = t.key(other)
    theirs = look_up(audit_server, other_key)
    assert {allowed, refused}.isdisjoint(ev["RequestID"] for ev in theirs["Events"])
    theirs = look_up(audit_server, other_key,
                     LookupAttributes=[{"AttributeKey": "RequestId", "AttributeValue": allowed}])
    assert theirs["Events"] == []


def test_cloudaudit_refuses_bad_windows_and_limits(audit_server):
    key = audit_server.creds
    now = int(time.time())
    for params, code in [
        ({"StartTime": now - 8 * 86400, "EndTime": now}, "LimitExceeded.OverTime"),
        ({"StartTime": now, "EndTime": now - 10}, "InvalidParameterValue.Time"),
        ({"MaxResults": 51}, "InvalidParameterValue.MaxResult"),
        ({"LookupAttributes": [{"AttributeKey": "Colour", "AttributeValue": "x"}]},
         "InvalidParameterValue.attributeKey"),
    ]:
        with pytest.raises(TencentCloudSDKException) as e:
            look_up(audit_server, key, **params)
        assert e.value.code == code, (params, e.value)
        assert e.value.requestId


@pytest.mark.parametrize("generation", ["legacy", "tea"])
def test_actiontrail_finds_allowed_and_refused_calls(audit_server, t, generation):
    acct = t.account()
    root_key = t.key(acct)
    root = ecs_as(audit_server, generation, root_key)
    inst = ali_launch(root, audit_server.admin, ali_catalog_of(ecs_client(audit_server, "legacy")))[0]
    dev = t.user(acct)
    t.policy(acct, dev, "read-only", "ram", RAM_READ_ONLY)
    dev_key = t.key(acct, dev)
    sub = ecs_as(audit_server, generation, dev_key)
    allowed = root.call("RebootInstance", InstanceId=inst.id)["RequestId"]
    refused = expect_ecs_error(403, "Forbidden.RAM", sub.call, "RebootInstance", InstanceId=inst.id).request_id

    # A sub-user needs actiontrail:LookupEvents: RAM's NoPermission.
    expect_ecs_error(403, "NoPermission", ali_lookup, generation, audit_server, dev_key)

    got = ali_lookup(generation, audit_server, root_key, EventName="RebootInstance")
    events = {ev["requestId"]: ev for ev in got["Events"]}
    assert allowed in events and refused in events, got
    ok, no = events[allowed], events[refused]
    assert ok["errorCode"] == "" and no["errorCode"] == "Forbidden.RAM"
    assert ok["userIdentity"]["accessKeyId"] == root_key[0]
    assert no["userIdentity"]["type"] == "ram-user" and no["userIdentity"]["userName"] == dev
    assert ok["resourceName"] == inst.id and ok["eventRW"] == "Write"
    assert ok["sourceIpAddress"] == "127.0.0.1"
    no_secret_in(json.dumps(got), root_key[1], dev_key[1], audit_server.creds[1], inst.password)

    other_key = t.key(t.account())
    theirs = ali_lookup(generation, audit_server, other_key)
    assert {allowed, refused}.isdisjoint(ev["requestId"] for ev in theirs["Events"])


@pytest.mark.parametrize("generation", ["legacy", "tea"])
def test_actiontrail_takes_one_attribute(audit_server, generation):
    key = audit_server.creds
    expect_ecs_error(400, "InvalidParameter", ali_lookup, generation, audit_server, key,
                     EventName="RebootInstance", User="root")


def test_admin_sees_every_account(audit_server, t):
    acct = t.account()
    key = t.key(acct)
    rid = look_up(audit_server, key)["RequestId"]
    got = t._do("GET", f"audit-events?request_id={rid}")
    assert [e["account"] for e in got["events"]] == [acct]
    assert got["events"][0]["action"] == "LookUpEvents"
    no_secret_in(json.dumps(got), key[1])
