"""Issue 13 item 4 on Alibaba, through both SDK generations: RAM roles (CreateRole,
GetRole, AttachPolicyToRole) and virtual MFA devices (CreateVirtualMFADevice, BindMFADevice
with real TOTP codes), STS AssumeRole (aliyun-python-sdk-sts with `set_protocol_type('http')`,
alibabacloud_sts20150401), the STS credential used with ECS (both generations) until it
expires (`InvalidSecurityToken.Expired`, 403), the token refusals of D5, and an
`acs:MFAPresent` policy as D9 decides.

Own server: `NUBIS_STS_MIN_DURATION_SECS` lowered so a credential expires within the test."""

from __future__ import annotations

import base64

import json
import time

import pytest
from alibabacloud_ecs20140526.client import Client as TeaEcsClient
from alibabacloud_ram20150501 import models as tea_ram_models
from alibabacloud_ram20150501.client import Client as TeaRamClient
from alibabacloud_sts20150401 import models as tea_sts_models
from alibabacloud_sts20150401.client import Client as TeaStsClient
from alibabacloud_tea_openapi import models as tea_openapi_models
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkram.request.v20150501.AttachPolicyToRoleRequest import AttachPolicyToRoleRequest
from aliyunsdkram.request.v20150501.BindMFADeviceRequest import BindMFADeviceRequest
from aliyunsdkram.request.v20150501.CreateRoleRequest import CreateRoleRequest
from aliyunsdkram.request.v20150501.CreateVirtualMFADeviceRequest import CreateVirtualMFADeviceRequest
from aliyunsdkram.request.v20150501.GetRoleRequest import GetRoleRequest
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest
from aliyunsdksts.request.v20150401.GetCallerIdentityRequest import GetCallerIdentityRequest

from nubis import ALI_GENERATIONS, ecs_client, expect_ecs_error, unique_name
from test_sts_tencent import totp
from test_tenancy import Tenancy

RAM_READ_ONLY = {"Version": "1", "Statement": [
    {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}]}
RAM_ASSUME = {"Version": "1", "Statement": [
    {"Effect": "Allow", "Action": ["sts:AssumeRole", "ram:*"], "Resource": "*"}]}


@pytest.fixture(scope="module")
def srv(server_factory):
    return server_factory("sts-aliyun", NUBIS_RATE_LIMITS="off", NUBIS_SIM_TIME_SCALE="0",
                          NUBIS_STS_MIN_DURATION_SECS="2")


def legacy(server, key: tuple[str, str]) -> AcsClient:
    return AcsClient(key[0], key[1], "cn-hangzhou", auto_retry=False)


def legacy_do(server, client: AcsClient, req) -> dict:
    req.set_endpoint(server.endpoint)
    req.set_protocol_type("http")  # RAM and STS request classes default to https (§9)
    return json.loads(client.do_action_with_exception(req))


def tea_config(server, key: tuple[str, str], token: str | None = None):
    return tea_openapi_models.Config(access_key_id=key[0], access_key_secret=key[1],
                                     security_token=token, endpoint=server.endpoint,
                                     protocol="http", region_id="cn-hangzhou")


def ecs_with_token(server, generation: str, key: tuple[str, str], token: str):
    """An official ECS client of `generation` signing with an STS credential."""
    ecs = ecs_client(server, generation, retry=False)
    if generation == "legacy":
        ecs.client = AcsClient(region_id="cn-hangzhou", credential=StsTokenCredential(key[0], key[1], token),
                               auto_retry=False)
    else:
        ecs.client = TeaEcsClient(tea_config(server, key, token))
    return ecs


class Setup:
    def __init__(self, server):
        self.server = server
        self.t = Tenancy(server)
        self.account = self.t.account()
        self.ali_id = self.t._do("GET", f"accounts/{self.account}")["account"]["aliyun_account_id"]
        self.root = self.t.key(self.account)
        self.t.user(self.account, "dev")
        self.t.policy(self.account, "dev", "assume", "ram", RAM_ASSUME)
        self.dev = self.t.key(self.account, "dev")
        self.t._do("POST", f"accounts/{self.account}/policies",
                   {"name": "ro", "grammar": "ram", "document": json.dumps(RAM_READ_ONLY)}, 201)

    def role(self, name: str | None = None) -> str:
        name = name or unique_name("reader").replace("_", "-")
        trust = {"Version": "1", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                                "Principal": {"RAM": [f"acs:ram::{self.ali_id}:root"]}}]}
        req = CreateRoleRequest()
        req.set_RoleName(name)
        req.set_AssumeRolePolicyDocument(json.dumps(trust))
        role = legacy_do(self.server, legacy(self.server, self.root), req)["Role"]
        assert role["Arn"] == f"acs:ram::{self.ali_id}:role/{name.lower()}" and role["MaxSessionDuration"] == 3600
        att = AttachPolicyToRoleRequest()
        att.set_PolicyType("Custom")
        att.set_PolicyName("ro")
        att.set_RoleName(name)
        legacy_do(self.server, legacy(self.server, self.root), att)
        return role["Arn"]


def assume_legacy(s: Setup, arn: str, seconds: int = 900) -> dict:
    req = AssumeRoleRequest()
    req.set_RoleArn(arn)
    req.set_RoleSessionName("s1")
    req.set_DurationSeconds(seconds)
    return legacy_do(s.server, legacy(s.server, s.dev), req)["Credentials"]


def assume_tea(s: Setup, arn: str, seconds: int = 900) -> dict:
    sts = TeaStsClient(tea_config(s.server, s.dev))
    r = sts.assume_role(tea_sts_models.AssumeRoleRequest(role_arn=arn, role_session_name="s2",
                                                         duration_seconds=seconds))
    c = r.body.credentials
    return {"AccessKeyId": c.access_key_id, "AccessKeySecret": c.access_key_secret,
            "SecurityToken": c.security_token, "Expiration": c.expiration}


@pytest.mark.parametrize("sts_generation", ALI_GENERATIONS)
def test_assume_role_credential_works_with_ecs_until_expiry(srv, sts_generation):
    s = Setup(srv)
    arn = s.role()
    c = (assume_legacy if sts_generation == "legacy" else assume_tea)(s, arn, seconds=3)
    assert c["AccessKeyId"].startswith("STS.") and c["Expiration"].endswith("Z"), c
    key = (c["AccessKeyId"], c["AccessKeySecret"])
    for gen in ALI_GENERATIONS:
        ecs = ecs_with_token(srv, gen, key, c["SecurityToken"])
        ecs.call("DescribeInstances")
        e = expect_ecs_error(403, "Forbidden.RAM", ecs.call, "RebootInstance", InstanceId="i-00000000000000000000")
        if gen == "tea":
            assert e.data.get("AccessDeniedDetail", {}).get("AuthPrincipalType") == "AssumedRoleUser"
    time.sleep(4)
    for gen in ALI_GENERATIONS:
        ecs = ecs_with_token(srv, gen, key, c["SecurityToken"])
        e = expect_ecs_error(403, "InvalidSecurityToken.Expired", ecs.call, "DescribeInstances")
        assert e.message == "Specified SecurityToken is expired."


def test_security_token_refusals(srv):
    s = Setup(srv)
    arn = s.role()
    a = assume_legacy(s, arn)
    b = assume_legacy(s, arn)
    key = (a["AccessKeyId"], a["AccessKeySecret"])
    for gen in ALI_GENERATIONS:
        expect_ecs_error(400, "InvalidSecurityToken.MismatchWithAccessKey",
                         ecs_with_token(srv, gen, key, b["SecurityToken"]).call, "DescribeInstances")
        expect_ecs_error(400, "InvalidSecurityToken.Malformed",
                         ecs_with_token(srv, gen, key, "not-a-token").call, "DescribeInstances")
    # An STS key without a token.
    plain = ecs_client(srv, "legacy", access_key_id=key[0], access_key_secret=key[1], retry=False)
    expect_ecs_error(400, "MissingSecurityToken", plain.call, "DescribeInstances")


def test_assume_role_refusals_and_caller_identity(srv):
    s = Setup(srv)
    arn = s.role()
    client = legacy(srv, s.dev)

    def assume(**kw):
        req = AssumeRoleRequest()
        for k, v in kw.items():
            getattr(req, f"set_{k}")(v)
        return legacy_do(srv, client, req)

    expect_ecs_error(404, "EntityNotExist.Role", assume, RoleArn=f"acs:ram::{s.ali_id}:role/nope",
                     RoleSessionName="s1")
    expect_ecs_error(400, "InvalidParameter.RoleArn", assume, RoleArn="arn:nope", RoleSessionName="s1")
    expect_ecs_error(400, "InvalidParameter.RoleSessionName", assume, RoleArn=arn, RoleSessionName="x")
    expect_ecs_error(400, "InvalidParameter.DurationSeconds", assume, RoleArn=arn, RoleSessionName="s1",
                     DurationSeconds=3601)
    expect_ecs_error(400, "InvalidParameter.PolicyGrammar", assume, RoleArn=arn, RoleSessionName="s1",
                     Policy='{"Version":"1"}')
    # A sub-user without sts:AssumeRole gets STS's NoPermission.
    s.t.user(s.account, "nobody")
    nobody = legacy(srv, s.t.key(s.account, "nobody"))
    req = AssumeRoleRequest()
    req.set_RoleArn(arn)
    req.set_RoleSessionName("s1")
    expect_ecs_error(403, "NoPermission", legacy_do, srv, nobody, req)
    # Who am I: the RAM user, then the role session.
    me = legacy_do(srv, client, GetCallerIdentityRequest())
    assert (me["IdentityType"], me["AccountId"], me["Arn"]) == (
        "RAMUser", s.ali_id, f"acs:ram::{s.ali_id}:user/dev")
    c = assume_tea(s, arn)
    sts = TeaStsClient(tea_config(srv, (c["AccessKeyId"], c["AccessKeySecret"]), c["SecurityToken"]))
    me = sts.get_caller_identity().body
    assert me.identity_type == "AssumedRoleUser" and me.arn.endswith("/s2"), me.to_map()


def test_ram_roles_through_tea_and_duplicates(srv):
    s = Setup(srv)
    name = unique_name("tea-role").replace("_", "-")
    s.role(name)
    ram = TeaRamClient(tea_config(srv, s.root))
    role = ram.get_role(tea_ram_models.GetRoleRequest(role_name=name)).body.role
    assert role.role_name == name and role.arn.endswith(f":role/{name.lower()}")
    try:
        s.role(name)
        raise AssertionError("a second role of the same name was created")
    except Exception as e:  # noqa: BLE001
        assert "EntityAlreadyExists.Role" in str(e), e
    req = GetRoleRequest()
    req.set_RoleName("nope")
    expect_ecs_error(404, "EntityNotExist.Role", legacy_do, srv, legacy(srv, s.root), req)
    att = AttachPolicyToRoleRequest()
    att.set_PolicyType("Custom")
    att.set_PolicyName("ro")
    att.set_RoleName(name)
    expect_ecs_error(409, "EntityAlreadyExists.Role.Policy", legacy_do, srv, legacy(srv, s.root), att)
    att.set_PolicyName("nope")
    expect_ecs_error(404, "EntityNotExist.Policy", legacy_do, srv, legacy(srv, s.root), att)


def test_virtual_mfa_device_create_and_bind(srv):
    s = Setup(srv)
    root = legacy(srv, s.root)
    req = CreateVirtualMFADeviceRequest()
    req.set_VirtualMFADeviceName("dev-phone")
    d = legacy_do(srv, root, req)["VirtualMFADevice"]
    assert d["SerialNumber"] == f"acs:ram::{s.ali_id}:mfa/dev-phone" and len(d["Base32StringSeed"]) == 32
    # The QR code an authenticator app scans: a PNG (its content is checked in Rust).
    assert base64.b64decode(d["QRCodePNG"]).startswith(b"\x89PNG\r\n\x1a\n")
    expect_ecs_error(409, "EntityAlreadyExists.VirtualMFADevice", legacy_do, srv, root, req)
    now = time.time()

    def bind(c1: str, c2: str, user: str = "dev", serial: str = d["SerialNumber"]):
        b = BindMFADeviceRequest()
        b.set_SerialNumber(serial)
        b.set_UserName(user)
        b.set_AuthenticationCode1(c1)
        b.set_AuthenticationCode2(c2)
        return legacy_do(srv, root, b)

    expect_ecs_error(400, "InvalidParameter.AuthenticationCode.Format", bind, "12345", "123456")
    expect_ecs_error(403, "CheckAuthenticationCodeFail", bind, "000000", "000000")
    expect_ecs_error(404, "EntityNotExist.User", bind, "000000", "000000", user="ghost")
    expect_ecs_error(404, "EntityNotExist.VirtualMFADevice", bind, "000000", "000000",
                     serial=f"acs:ram::{s.ali_id}:mfa/none")
    # Two successive codes (the previous step's and the current one's).
    bind(totp(d["Base32StringSeed"], now - 30), totp(d["Base32StringSeed"], now))
    expect_ecs_error(409, "EntityAlreadyExists.VirtualMFADevice.User", bind,
                     totp(d["Base32StringSeed"], now), totp(d["Base32StringSeed"], now + 30))


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_mfa_present_condition_as_d9(srv, generation):
    """API callers carry acs:MFAPresent=false: an Allow that needs MFA leaves an implicit
    deny; a Deny on MFAPresent=false is an explicit deny."""
    s = Setup(srv)
    s.t.user(s.account, "mfa-only")
    s.t.policy(s.account, "mfa-only", "describe-with-mfa", "ram", {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*",
         "Condition": {"Bool": {"acs:MFAPresent": "true"}}}]})
    ecs = ecs_client(srv, generation, access_key_id=(k := s.t.key(s.account, "mfa-only"))[0],
                     access_key_secret=k[1], retry=False)
    e = expect_ecs_error(403, "Forbidden.RAM", ecs.call, "DescribeInstances")
    if generation == "tea":
        assert e.data["AccessDeniedDetail"]["NoPermissionType"] == "ImplicitDeny"
    s.t.user(s.account, "no-mfa-deny")
    s.t.policy(s.account, "no-mfa-deny", "all-but-without-mfa", "ram", {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ecs:*", "Resource": "*",
         "Condition": {"Bool": {"acs:MFAPresent": "false"}}}]})
    ecs = ecs_client(srv, generation, access_key_id=(k := s.t.key(s.account, "no-mfa-deny"))[0],
                     access_key_secret=k[1], retry=False)
    e = expect_ecs_error(403, "Forbidden.RAM", ecs.call, "DescribeInstances")
    if generation == "tea":
        assert e.data["AccessDeniedDetail"]["NoPermissionType"] == "ExplicitDeny"


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_role_lifecycle_list_update_detach_delete(srv, generation):
    """ListRoles, UpdateRole, ListPoliciesForRole, DetachPolicyFromRole and DeleteRole through
    both RAM SDK generations: a role with attached policies is not deleted
    (DeleteConflict.Role.Policy); a deleted role's sessions stop working at once."""
    from test_ram import ram_client

    s = Setup(srv)
    ram = ram_client(srv, generation, s.root)
    arns = sorted(s.role(unique_name(f"r{i}").replace("_", "-")) for i in range(3))
    names = [a.rsplit("/", 1)[1] for a in arns]
    first = ram.call("ListRoles", MaxItems=2)
    assert first["IsTruncated"] is True, first
    page2 = ram.call("ListRoles", MaxItems=2, Marker=first["Marker"])
    listed = [r["RoleName"].lower() for r in first["Roles"]["Role"] + page2["Roles"]["Role"]]
    assert listed == names and page2["IsTruncated"] is False, (first, page2)
    assert "AssumeRolePolicyDocument" not in first["Roles"]["Role"][0]
    expect_ecs_error(400, "InvalidParameter.MaxItems", ram.call, "ListRoles", MaxItems=1001)

    updated = ram.call("UpdateRole", RoleName=names[0], NewDescription="readers",
                       NewMaxSessionDuration=7200)["Role"]
    assert updated["Description"] == "readers" and updated["MaxSessionDuration"] == 7200, updated
    expect_ecs_error(400, "InvalidParameter.NewMaxSessionDuration", ram.call, "UpdateRole",
                     RoleName=names[0], NewMaxSessionDuration=60)
    expect_ecs_error(400, "MalformedPolicyDocument", ram.call, "UpdateRole", RoleName=names[0],
                     NewAssumeRolePolicyDocument="{not json")
    expect_ecs_error(404, "EntityNotExist.Role", ram.call, "UpdateRole", RoleName="nope", NewDescription="x")

    assert [p["PolicyName"] for p in
            ram.call("ListPoliciesForRole", RoleName=names[0])["Policies"]["Policy"]] == ["ro"]
    creds = assume_legacy(s, arns[0])
    ecs = ecs_with_token(srv, generation, (creds["AccessKeyId"], creds["AccessKeySecret"]),
                         creds["SecurityToken"])
    ecs.call("DescribeInstances")
    expect_ecs_error(409, "DeleteConflict.Role.Policy", ram.call, "DeleteRole", RoleName=names[0])
    ecs.call("DescribeInstances")  # a refused delete changed nothing
    ram.call("DetachPolicyFromRole", PolicyType="Custom", PolicyName="ro", RoleName=names[0])
    expect_ecs_error(404, "EntityNotExist.Role.Policy", ram.call, "DetachPolicyFromRole",
                     PolicyType="Custom", PolicyName="ro", RoleName=names[0])
    assert ram.call("ListPoliciesForRole", RoleName=names[0])["Policies"]["Policy"] == []
    ram.call("DeleteRole", RoleName=names[0])
    expect_ecs_error(404, "InvalidAccessKeyId.NotFound", ecs.call, "DescribeInstances")
    expect_ecs_error(404, "EntityNotExist.Role", ram.call, "GetRole", RoleName=names[0])
    expect_ecs_error(404, "EntityNotExist.Role", ram.call, "DeleteRole", RoleName=names[0])
    assert [r["RoleName"].lower() for r in ram.call("ListRoles")["Roles"]["Role"]] == names[1:]
