"""Issue 13, first slice: accounts, sub-users and CAM/RAM policies, managed through the
admin API, gating the Tencent and Alibaba APIs as seen by the official SDKs
(tencentcloud-sdk-python; aliyun-python-sdk-ecs and alibabacloud_ecs20140526).

- a sub-user with a read-only policy can describe, but a reboot is refused with the cloud's
  code and the instance is not rebooted;
- an explicit deny beats an allow;
- two accounts cannot see or act on each other's instances or key pairs (not-found answers);
- a sub-user with no policy is refused everything.

Own server: the accounts and keys made here must not show in other tests' key listings."""

from __future__ import annotations

import json

import pytest
import requests

from nubis import (
    ALI_GENERATIONS,
    Cvm,
    ali_catalog_of,
    ali_launch,
    describe,
    ecs_client,
    ecs_instances,
    expect_ecs_error,
    expect_error,
    launch,
    unique_name,
)
from conftest import catalog_of

CAM_READ_ONLY = {"version": "2.0", "statement": [
    {"effect": "allow", "action": ["cvm:Describe*"], "resource": "*"}]}
RAM_READ_ONLY = {"Version": "1", "Statement": [
    {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}]}
CAM_ALL_BUT_DESCRIBE_INSTANCES = {"version": "2.0", "statement": [
    {"effect": "allow", "action": "cvm:*", "resource": "*"},
    {"effect": "deny", "action": "cvm:DescribeInstances", "resource": "*"}]}
RAM_ALL_BUT_DESCRIBE_INSTANCES = {"Version": "1", "Statement": [
    {"Effect": "Deny", "Action": "ecs:DescribeInstances", "Resource": "*"},
    {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]}


class Tenancy:
    """The admin API's account, sub-user, policy and key endpoints."""

    def __init__(self, server):
        self.server = server
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.auth = server.creds

    def _do(self, method: str, path: str, body: dict | None = None, want: int = 200):
        r = self.session.request(method, f"{self.server.base_url}/admin/v1/{path}", json=body, timeout=30)
        assert r.status_code == want, f"{method} {path} {body}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def account(self) -> str:
        name = unique_name("acct").lower().replace("_", "-")
        self._do("POST", "accounts", {"name": name}, 201)
        return name

    def user(self, account: str, name: str = "dev") -> str:
        self._do("POST", f"accounts/{account}/users", {"name": name}, 201)
        return name

    def policy(self, account: str, user: str, name: str, grammar: str, document: dict) -> None:
        self._do("POST", f"accounts/{account}/policies",
                 {"name": name, "grammar": grammar, "document": json.dumps(document)}, 201)
        self._do("PUT", f"accounts/{account}/users/{user}/policies/{name}", None, 204)

    def key(self, account: str, user: str | None = None) -> tuple[str, str]:
        body = {"account": account} | ({"user": user} if user else {})
        k = self._do("POST", "access-keys", body, 201)["access_key"]
        return k["id"], k["secret"]

    def operations(self, iid: str) -> list[dict]:
        return self._do("GET", f"operations?instance={iid}")


@pytest.fixture(scope="module")
def tenancy_server(server_factory):
    return server_factory("tenancy", NUBIS_RATE_LIMITS="off")


@pytest.fixture(scope="module")
def t(tenancy_server) -> Tenancy:
    return Tenancy(tenancy_server)


@pytest.fixture(scope="module")
def tc_catalog(tenancy_server):
    return catalog_of(tenancy_server)


@pytest.fixture(scope="module")
def ali_catalog(tenancy_server):
    return ali_catalog_of(ecs_client(tenancy_server, "legacy"))


def cvm_as(server, key: tuple[str, str]) -> Cvm:
    return server.cvm(secret_id=key[0], secret_key=key[1], retry=False)


def ecs_as(server, generation: str, key: tuple[str, str]):
    return ecs_client(server, generation, access_key_id=key[0], access_key_secret=key[1], retry=False)


def actions_of(t: Tenancy, iid: str) -> list[str]:
    return [o["action"] for o in t.operations(iid)]


# -- Tencent ---------------------------------------------------------------------------


def test_tencent_read_only_sub_user_describes_but_cannot_reboot(tenancy_server, t, tc_catalog):
    acct = t.account()
    root = cvm_as(tenancy_server, t.key(acct))
    inst = launch(root, tc_catalog)[0]
    dev = t.user(acct)
    t.policy(acct, dev, "read-only", "cam", CAM_READ_ONLY)
    sub = cvm_as(tenancy_server, t.key(acct, dev))
    assert describe(sub, inst.id)["InstanceState"] == "RUNNING"
    before = actions_of(t, inst.id)
    e = expect_error("AuthFailure.UnauthorizedOperation", sub.call, "RebootInstances", InstanceIds=[inst.id])
    assert "cvm:RebootInstances" in e.message
    expect_error("AuthFailure.UnauthorizedOperation", sub.call, "StopInstances", InstanceIds=[inst.id])
    assert actions_of(t, inst.id) == before, "nothing was started for the refused calls"
    assert describe(root, inst.id)["InstanceState"] == "RUNNING"
    # The account's root may.
    root.call("RebootInstances", InstanceIds=[inst.id])


def test_tencent_explicit_deny_beats_allow(tenancy_server, t):
    acct = t.account()
    dev = t.user(acct)
    t.policy(acct, dev, "all-but-describe", "cam", CAM_ALL_BUT_DESCRIBE_INSTANCES)
    sub = cvm_as(tenancy_server, t.key(acct, dev))
    expect_error("AuthFailure.UnauthorizedOperation", sub.call, "DescribeInstances")
    assert sub.call("DescribeZones")["ZoneSet"], "the allow covers the rest of cvm"


def test_tencent_sub_user_without_policy_is_refused_everything(tenancy_server, t):
    acct = t.account()
    sub = cvm_as(tenancy_server, t.key(acct, t.user(acct)))
    for action in ("DescribeInstances", "DescribeZones", "DescribeRegions", "DescribeKeyPairs"):
        expect_error("AuthFailure.UnauthorizedOperation", sub.call, action)


def test_tencent_accounts_do_not_see_each_other(tenancy_server, t, tc_catalog):
    a = cvm_as(tenancy_server, t.key(t.account()))
    b = cvm_as(tenancy_server, t.key(t.account()))
    inst = launch(a, tc_catalog)[0]
    kp = a.call("CreateKeyPair", KeyName=unique_name("k").replace("-", "_"), ProjectId=0)["KeyPair"]
    assert describe(b, inst.id) is None
    assert inst.id not in [i["InstanceId"] for i in b.call("DescribeInstances", Limit=100)["InstanceSet"]]
    expect_error("InvalidInstanceId.NotFound", b.call, "RebootInstances", InstanceIds=[inst.id])
    expect_error("InvalidInstanceId.NotFound", b.call, "TerminateInstances", InstanceIds=[inst.id])
    assert kp["KeyId"] not in [k["KeyId"] for k in b.call("DescribeKeyPairs", Limit=100)["KeyPairSet"]]
    expect_error("InvalidKeyPairId.NotFound", b.call, "DeleteKeyPairs", KeyIds=[kp["KeyId"]])
    # Still there for its owner; the bootstrap admin sees both.
    assert describe(a, inst.id)["InstanceState"] == "RUNNING"
    assert describe(tenancy_server.cvm(), inst.id) is not None
    assert kp["KeyId"] in [k["KeyId"] for k in a.call("DescribeKeyPairs", Limit=100)["KeyPairSet"]]


def test_tencent_policy_naming_an_instance_covers_only_it(tenancy_server, t, tc_catalog):
    """Resource-level CAM: an allow on one instance's `qcs::cvm:…:instance/ins-…` lets the
    sub-user reboot and see that instance only; the other is refused (named) or left out
    (listed)."""
    acct = t.account()
    root = cvm_as(tenancy_server, t.key(acct))
    mine, other = launch(root, tc_catalog, count=2)
    owner = t._do("GET", f"accounts/{acct}")["account"]["tencent_owner_uin"]
    dev = t.user(acct)
    t.policy(acct, dev, "one-instance", "cam", {"version": "2.0", "statement": [{
        "effect": "allow", "action": ["cvm:RebootInstances", "cvm:DescribeInstances"],
        "resource": f"qcs::cvm:ap-guangzhou:uin/{owner}:instance/{mine.id}"}]})
    sub = cvm_as(tenancy_server, t.key(acct, dev))
    listed = [i["InstanceId"] for i in sub.call("DescribeInstances", Limit=100)["InstanceSet"]]
    assert listed == [mine.id]
    before = actions_of(t, other.id)
    e = expect_error("AuthFailure.UnauthorizedOperation", sub.call, "RebootInstances", InstanceIds=[other.id])
    assert other.id in e.message and "cvm:RebootInstances" in e.message
    expect_error("AuthFailure.UnauthorizedOperation", sub.call, "RebootInstances",
                 InstanceIds=[mine.id, other.id])
    assert actions_of(t, other.id) == before, "nothing was started for the refused calls"
    # An action the statement does not name stays refused on the named instance too.
    expect_error("AuthFailure.UnauthorizedOperation", sub.call, "StopInstances", InstanceIds=[mine.id])
    sub.call("RebootInstances", InstanceIds=[mine.id])


# -- Alibaba ---------------------------------------------------------------------------


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_aliyun_read_only_sub_user_describes_but_cannot_reboot(tenancy_server, t, ali_catalog, generation):
    acct = t.account()
    root = ecs_as(tenancy_server, generation, t.key(acct))
    inst = ali_launch(root, tenancy_server.admin, ali_catalog)[0]
    dev = t.user(acct)
    t.policy(acct, dev, "read-only", "ram", RAM_READ_ONLY)
    sub = ecs_as(tenancy_server, generation, t.key(acct, dev))
    assert ecs_instances(sub, [inst.id])[inst.id]["Status"] == "Running"
    before = actions_of(t, inst.id)
    e = expect_ecs_error(403, "Forbidden.RAM", sub.call, "RebootInstance", InstanceId=inst.id)
    if generation == "tea":
        # The Tea SDK copies RAM's denial detail into the exception.
        detail = e.native.access_denied_detail
        assert detail["AuthAction"] == "ecs:RebootInstance"
        assert detail["NoPermissionType"] == "ImplicitDeny"
        assert detail["AuthPrincipalType"] == "SubUser"
        assert detail["AuthPrincipalDisplayName"] == dev
        account = t._do("GET", f"accounts/{acct}")["account"]
        assert detail["AuthPrincipalOwnerId"] == account["aliyun_account_id"]
    expect_ecs_error(403, "Forbidden.RAM", sub.call, "StopInstance", InstanceId=inst.id)
    assert actions_of(t, inst.id) == before, "nothing was started for the refused calls"
    root.call("RebootInstance", InstanceId=inst.id)


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_aliyun_explicit_deny_beats_allow(tenancy_server, t, generation):
    acct = t.account()
    dev = t.user(acct)
    t.policy(acct, dev, "all-but-describe", "ram", RAM_ALL_BUT_DESCRIBE_INSTANCES)
    sub = ecs_as(tenancy_server, generation, t.key(acct, dev))
    e = expect_ecs_error(403, "Forbidden.RAM", sub.call, "DescribeInstances")
    if generation == "tea":
        assert e.native.access_denied_detail["NoPermissionType"] == "ExplicitDeny"
    assert sub.call("DescribeZones")["Zones"]["Zone"], "the allow covers the rest of ecs"


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_aliyun_sub_user_without_policy_is_refused_everything(tenancy_server, t, generation):
    acct = t.account()
    sub = ecs_as(tenancy_server, generation, t.key(acct, t.user(acct)))
    for action in ("DescribeInstances", "DescribeZones", "DescribeRegions", "DescribeKeyPairs"):
        expect_ecs_error(403, "Forbidden.RAM", sub.call, action)


def test_aliyun_accounts_do_not_see_each_other(tenancy_server, t, ali_catalog):
    a = ecs_as(tenancy_server, "legacy", t.key(t.account()))
    b = ecs_as(tenancy_server, "legacy", t.key(t.account()))
    inst = ali_launch(a, tenancy_server.admin, ali_catalog)[0]
    name = unique_name("k")
    a.call("CreateKeyPair", KeyPairName=name)
    assert ecs_instances(b, [inst.id]) == {}
    expect_ecs_error(404, "InvalidInstanceId.NotFound", b.call, "RebootInstance", InstanceId=inst.id)
    assert b.call("DescribeKeyPairs", KeyPairName=name)["KeyPairs"]["KeyPair"] == []
    expect_ecs_error(404, "InvalidKeyPairName.NotFound", b.call, "AttachKeyPair",
                     KeyPairName=name, InstanceIds=[inst.id])
    assert ecs_instances(a, [inst.id])[inst.id]["Status"] == "Running"
    assert [k["KeyPairName"] for k in a.call("DescribeKeyPairs", KeyPairName=name)["KeyPairs"]["KeyPair"]] == [name]


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_aliyun_deny_naming_an_instance_refuses_only_it(tenancy_server, t, ali_catalog, generation):
    """Resource-level RAM: a deny on `acs:ecs:*:*:instance/<id>` beats the service-wide
    allow for that instance only."""
    acct = t.account()
    root = ecs_as(tenancy_server, generation, t.key(acct))
    kept = ali_launch(root, tenancy_server.admin, ali_catalog)[0]
    guarded = ali_launch(root, tenancy_server.admin, ali_catalog)[0]
    dev = t.user(acct)
    t.policy(acct, dev, "all-ecs", "ram", {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ecs:RebootInstance",
         "Resource": f"acs:ecs:*:*:instance/{guarded.id}"}]})
    sub = ecs_as(tenancy_server, generation, t.key(acct, dev))
    before = actions_of(t, guarded.id)
    expect_ecs_error(403, "Forbidden.RAM", sub.call, "RebootInstance", InstanceId=guarded.id)
    assert actions_of(t, guarded.id) == before
    sub.call("RebootInstance", InstanceId=kept.id)
    # Other actions on the guarded instance are not named by the deny.
    assert ecs_instances(sub, [guarded.id])[guarded.id]["Status"] == "Running"


# -- Conditions on the source address (acs:SourceIp, qcs:ip) ---------------------------
# The suite's clients are on loopback: 127.0.0.0/8 is "our" network, 10.0.0.0/8 another.


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_aliyun_source_ip_condition(tenancy_server, t, generation):
    acct = t.account()
    dev = t.user(acct)
    t.policy(acct, dev, "describe-from-elsewhere", "ram", {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*",
         "Condition": {"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}}}]})
    sub = ecs_as(tenancy_server, generation, t.key(acct, dev))
    e = expect_ecs_error(403, "Forbidden.RAM", sub.call, "DescribeZones")
    if generation == "tea":
        assert e.native.access_denied_detail["NoPermissionType"] == "ImplicitDeny"
    t.policy(acct, dev, "describe-from-here", "ram", {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*",
         "Condition": {"IpAddress": {"acs:SourceIp": ["127.0.0.0/8"]}}},
        {"Effect": "Deny", "Action": "ecs:DescribeRegions", "Resource": "*",
         "Condition": {"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}}}]})
    assert sub.call("DescribeZones")["Zones"]["Zone"]
    e = expect_ecs_error(403, "Forbidden.RAM", sub.call, "DescribeRegions")
    if generation == "tea":
        assert e.native.access_denied_detail["NoPermissionType"] == "ExplicitDeny"


def test_tencent_source_ip_condition(tenancy_server, t):
    acct = t.account()
    dev = t.user(acct)
    t.policy(acct, dev, "describe-from-elsewhere", "cam", {"version": "2.0", "statement": [
        {"effect": "allow", "action": "cvm:Describe*", "resource": "*",
         "condition": {"ip_equal": {"qcs:ip": ["10.0.0.0/8"]}}}]})
    sub = cvm_as(tenancy_server, t.key(acct, dev))
    expect_error("AuthFailure.UnauthorizedOperation", sub.call, "DescribeZones")
    t.policy(acct, dev, "describe-from-here", "cam", {"version": "2.0", "statement": [
        {"effect": "allow", "action": "cvm:Describe*", "resource": "*",
         "condition": {"ip_equal": {"qcs:ip": ["127.0.0.0/8"]}}},
        {"effect": "deny", "action": "cvm:DescribeRegions", "resource": "*",
         "condition": {"ip_not_equal": {"qcs:ip": ["10.0.0.0/8"]}}}]})
    assert sub.call("DescribeZones")["ZoneSet"]
    expect_error("AuthFailure.UnauthorizedOperation", sub.call, "DescribeRegions")
