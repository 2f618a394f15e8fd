"""Issue 13 item 4: Alibaba RAM 2015-05-01 through both official generations —
aliyun-python-sdk-ram 3.3.1 (AcsClient + typed request classes; each request needs
set_protocol_type('http'), the classes default to https: docs/identity-wire.md §9) and
alibabacloud_ram20150501 1.3.0 (Tea, ACS3).

The account's root creates a RAM user, an access key for it, a read-only RAM policy, and
attaches it — all through RAM. The user then describes instances through ECS and is
refused a reboot with Forbidden.RAM; RAM calls it may not make get NoPermission (403) with
the AccessDeniedDetail (D11). Also: the key limit, duplicate names, deleting a user with
keys or policies (RAM never cascades: D16), unknown users and policies, malformed documents.

Own server: the accounts and keys made here must not show in other tests' key listings."""

from __future__ import annotations

import importlib
import json

import pytest
import requests
from alibabacloud_ram20150501 import models as tea_ram_models
from alibabacloud_ram20150501.client import Client as TeaRamClient
from alibabacloud_tea_openapi import models as tea_openapi_models
from aliyunsdkcore.acs_exception.exceptions import ServerException as AcsServerException
from aliyunsdkcore.client import AcsClient
from Tea.exceptions import TeaException

from nubis import (
    ALI_GENERATIONS,
    ali_catalog_of,
    ali_launch,
    ecs_client,
    ecs_error_of,
    ecs_instances,
    expect_ecs_error,
    unique_name,
    _snake,
)

RAM_READ_ONLY = {"Version": "1", "Statement": [
    {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}]}


class RamLegacy:
    """AcsClient + aliyunsdkram's typed request classes (set_<Name> setters)."""

    def __init__(self, endpoint: str, key: tuple[str, str]):
        self.endpoint = endpoint
        self.client = AcsClient(key[0], key[1], "cn-hangzhou", auto_retry=False, timeout=30)

    def call(self, action: str, **params) -> dict:
        module = importlib.import_module(f"aliyunsdkram.request.v20150501.{action}Request")
        req = getattr(module, f"{action}Request")()
        req.set_endpoint(self.endpoint)
        req.set_protocol_type("http")
        for name, value in params.items():
            getattr(req, f"set_{name}")(value)
        try:
            return json.loads(self.client.do_action_with_exception(req))
        except AcsServerException as e:
            raise ecs_error_of(e) from e


class RamTea:
    """alibabacloud_ram20150501's Client: typed <Action>Request models, ACS3 signatures."""

    def __init__(self, endpoint: str, key: tuple[str, str]):
        config = tea_openapi_models.Config(access_key_id=key[0], access_key_secret=key[1],
                                           endpoint=endpoint, protocol="http")
        self.client = TeaRamClient(config)

    def call(self, action: str, **params) -> dict:
        req = getattr(tea_ram_models, f"{action}Request")().from_map(params)
        try:
            return getattr(self.client, _snake(action))(req).body.to_map()
        except TeaException as e:
            err = ecs_error_of(e)
            if err is None:
                raise
            raise err from e


def ram_client(server, generation: str, key: tuple[str, str]):
    return {"legacy": RamLegacy, "tea": RamTea}[generation](server.endpoint, key)


@pytest.fixture(scope="module")
def ram_server(server_factory):
    return server_factory("ram", NUBIS_RATE_LIMITS="off")


def new_account(server) -> tuple[str, tuple[str, str]]:
    """An account (admin API) and its root's access key."""
    s = requests.Session()
    s.trust_env = False
    s.auth = server.creds
    name = unique_name("ram").lower().replace("_", "-")
    r = s.post(f"{server.base_url}/admin/v1/accounts", json={"name": name}, timeout=30)
    assert r.status_code == 201, r.text
    aliyun_id = r.json()["account"]["aliyun_account_id"]
    r = s.post(f"{server.base_url}/admin/v1/access-keys", json={"account": name}, timeout=30)
    assert r.status_code == 201, r.text
    k = r.json()["access_key"]
    return aliyun_id, (k["id"], k["secret"])


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_root_delegates_read_only_access_through_ram(ram_server, generation):
    aliyun_id, root = new_account(ram_server)
    ram = ram_client(ram_server, generation, root)
    ecs_root = ecs_client(ram_server, generation, access_key_id=root[0], access_key_secret=root[1], retry=False)
    inst = ali_launch(ecs_root, ram_server.admin, ali_catalog_of(ecs_root))[0]

    user = ram.call("CreateUser", UserName="dev", DisplayName="dev")["User"]
    assert user["UserName"] == "dev" and user["UserId"].isdigit()
    key = ram.call("CreateAccessKey", UserName="dev")["AccessKey"]
    assert key["Status"] == "Active"
    ram.call("CreatePolicy", PolicyName="ecs-read-only", PolicyDocument=json.dumps(RAM_READ_ONLY),
             Description="describe only")
    ram.call("AttachPolicyToUser", PolicyType="Custom", PolicyName="ecs-read-only", UserName="dev")
    attached = ram.call("ListPoliciesForUser", UserName="dev")["Policies"]["Policy"]
    assert [p["PolicyName"] for p in attached] == ["ecs-read-only"]
    got = ram.call("GetPolicy", PolicyType="Custom", PolicyName="ecs-read-only")
    assert json.loads(got["DefaultPolicyVersion"]["PolicyDocument"]) == RAM_READ_ONLY
    assert [u["UserName"] for u in ram.call("ListUsers")["Users"]["User"]] == ["dev"]

    sub_key = (key["AccessKeyId"], key["AccessKeySecret"])
    sub = ecs_client(ram_server, generation, access_key_id=sub_key[0], access_key_secret=sub_key[1], retry=False)
    assert ecs_instances(sub, [inst.id])[inst.id]["Status"] == "Running"
    expect_ecs_error(403, "Forbidden.RAM", sub.call, "RebootInstance", InstanceId=inst.id)
    # RAM itself refuses with NoPermission and the denial detail.
    sub_ram = ram_client(ram_server, generation, sub_key)
    e = expect_ecs_error(403, "NoPermission", sub_ram.call, "CreateUser", UserName="intruder")
    if generation == "tea":
        detail = e.native.access_denied_detail
        assert detail["AuthAction"] == "ram:CreateUser"
        assert detail["NoPermissionType"] == "ImplicitDeny"
        assert detail["AuthPrincipalDisplayName"] == "dev"
        assert detail["AuthPrincipalOwnerId"] == aliyun_id


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_key_limit_duplicates_and_no_cascading_deletes(ram_server, generation):
    _, root = new_account(ram_server)
    ram = ram_client(ram_server, generation, root)
    ram.call("CreateUser", UserName="dev")
    expect_ecs_error(409, "EntityAlreadyExists.User", ram.call, "CreateUser", UserName="dev")
    k1 = ram.call("CreateAccessKey", UserName="dev")["AccessKey"]["AccessKeyId"]
    ram.call("CreateAccessKey", UserName="dev")
    expect_ecs_error(409, "LimitExceeded.User.AccessKey", ram.call, "CreateAccessKey", UserName="dev")
    keys = ram.call("ListAccessKeys", UserName="dev")["AccessKeys"]["AccessKey"]
    assert len(keys) == 2
    ram.call("UpdateAccessKey", UserAccessKeyId=k1, Status="Inactive", UserName="dev")
    assert {k["AccessKeyId"]: k["Status"] for k in
            ram.call("ListAccessKeys", UserName="dev")["AccessKeys"]["AccessKey"]}[k1] == "Inactive"
    doc = json.dumps(RAM_READ_ONLY)
    ram.call("CreatePolicy", PolicyName="ro", PolicyDocument=doc)
    expect_ecs_error(409, "EntityAlreadyExists.Policy", ram.call, "CreatePolicy", PolicyName="ro", PolicyDocument=doc)
    ram.call("AttachPolicyToUser", PolicyType="Custom", PolicyName="ro", UserName="dev")
    expect_ecs_error(409, "EntityAlreadyExists.User.Policy", ram.call, "AttachPolicyToUser",
                     PolicyType="Custom", PolicyName="ro", UserName="dev")
    expect_ecs_error(409, "DeleteConflict.User.AccessKey", ram.call, "DeleteUser", UserName="dev")
    for k in ram.call("ListAccessKeys", UserName="dev")["AccessKeys"]["AccessKey"]:
        ram.call("DeleteAccessKey", UserAccessKeyId=k["AccessKeyId"], UserName="dev")
    expect_ecs_error(409, "DeleteConflict.User.Policy", ram.call, "DeleteUser", UserName="dev")
    expect_ecs_error(409, "DeleteConflict.Policy.User", ram.call, "DeletePolicy", PolicyName="ro")
    ram.call("DetachPolicyFromUser", PolicyType="Custom", PolicyName="ro", UserName="dev")
    ram.call("DeleteUser", UserName="dev")
    ram.call("DeletePolicy", PolicyName="ro")


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_unknown_users_policies_and_malformed_documents(ram_server, generation):
    _, root = new_account(ram_server)
    ram = ram_client(ram_server, generation, root)
    ram.call("CreateUser", UserName="dev")
    expect_ecs_error(404, "EntityNotExist.User", ram.call, "GetUser", UserName="nobody")
    expect_ecs_error(404, "EntityNotExist.User", ram.call, "DeleteUser", UserName="nobody")
    expect_ecs_error(404, "EntityNotExist.User", ram.call, "CreateAccessKey", UserName="nobody")
    expect_ecs_error(404, "EntityNotExist.Policy", ram.call, "GetPolicy", PolicyType="Custom", PolicyName="nope")
    expect_ecs_error(404, "EntityNotExist.Policy", ram.call, "AttachPolicyToUser",
                     PolicyType="Custom", PolicyName="nope", UserName="dev")
    expect_ecs_error(404, "EntityNotExist.User.AccessKey", ram.call, "DeleteAccessKey",
                     UserAccessKeyId="AKID" + "x" * 32, UserName="dev")
    expect_ecs_error(400, "MalformedPolicyDocument", ram.call, "CreatePolicy",
                     PolicyName="bad", PolicyDocument="{not json")
    expect_ecs_error(400, "MalformedPolicyDocument", ram.call, "CreatePolicy", PolicyName="bad",
                     PolicyDocument=json.dumps({"Version": "1", "Statement": [
                         {"Effect": "Perhaps", "Action": "ecs:*", "Resource": "*"}]}))
    expect_ecs_error(400, "InvalidParameter.UserName.InvalidChars", ram.call, "CreateUser", UserName="has space")
    expect_ecs_error(400, "InvalidParameter.PolicyType", ram.call, "GetPolicy", PolicyType="Mine", PolicyName="x")


def test_accounts_do_not_see_each_others_identities(ram_server):
    _, a_key = new_account(ram_server)
    _, b_key = new_account(ram_server)
    a = ram_client(ram_server, "tea", a_key)
    b = ram_client(ram_server, "legacy", b_key)
    a.call("CreateUser", UserName="dev")
    a.call("CreatePolicy", PolicyName="ro", PolicyDocument=json.dumps(RAM_READ_ONLY))
    expect_ecs_error(404, "EntityNotExist.User", b.call, "GetUser", UserName="dev")
    expect_ecs_error(404, "EntityNotExist.Policy", b.call, "GetPolicy", PolicyType="Custom", PolicyName="ro")
    assert b.call("ListUsers")["Users"]["User"] == []
    b.call("CreateUser", UserName="dev")
