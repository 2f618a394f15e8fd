"""Issue 13 items 3 and 4 on Tencent, through tencentcloud-sdk-python (cvm, cam, sts) with
real TOTP codes (RFC 6238 computed here):

- operation protection: a sub-user with `ActionFlag.Stoken=1` gets
  `UnauthorizedOperation.MFANotFound` on ResetInstancesPassword and
  AssociateInstancesKeyPairs (the seeds' codes); after STS GetSessionToken with a soft-token
  code the same calls succeed; past `NUBIS_MFA_MAX_AGE_SECS` they answer
  `UnauthorizedOperation.MFAExpired`;
- a temporary credential works until its expiry, then `AuthFailure.TokenFailure` (D4);
- CAM roles and STS AssumeRole: a role session does what the role's policies allow.

Own servers: `NUBIS_STS_MIN_DURATION_SECS` lowered so a credential expires within the test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import time

import pytest
from tencentcloud.cam.v20190116 import cam_client
from tencentcloud.cam.v20190116 import models as cam_models
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client
from tencentcloud.cvm.v20170312 import models as cvm_models
from tencentcloud.sts.v20180813 import models as sts_models
from tencentcloud.sts.v20180813 import sts_client

from conftest import catalog_of
from nubis import REGION, Cvm, expect_error, launch, new_password, unique_name, wait_settled
from test_tenancy import Tenancy

CAM_ALL = {"version": "2.0", "statement": [
    {"effect": "allow", "action": ["cvm:*", "sts:*", "cam:*"], "resource": "*"}]}
CAM_READ_ONLY = {"version": "2.0", "statement": [
    {"effect": "allow", "action": ["cvm:Describe*"], "resource": "*"}]}


def totp(seed_b32: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 6 digits, 30 s) — what an authenticator app shows."""
    key = base64.b32decode(seed_b32 + "=" * (-len(seed_b32) % 8))
    step = int((time.time() if at is None else at) // 30)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


class Device:
    """A soft token: each code is accepted once, so successive uses take the next steps
    (the server accepts the current step ±1; beyond that the test waits)."""

    def __init__(self, serial: str, seed: str):
        self.serial, self.seed, self.last = serial, seed, -1

    def code(self) -> str:
        while True:
            now = int(time.time() // 30)
            step = max(self.last + 1, now)
            if step <= now + 1:
                self.last = step
                return totp(self.seed, step * 30)
            time.sleep(1)


def profile(server) -> ClientProfile:
    return ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http"))


def cvm_with(server, cred) -> cvm_client.CvmClient:
    return cvm_client.CvmClient(cred, REGION, profile(server))


def sts_with(server, cred) -> sts_client.StsClient:
    return sts_client.StsClient(cred, REGION, profile(server))


def cam_with(server, cred) -> cam_client.CamClient:
    return cam_client.CamClient(cred, "", profile(server))


def call(client, action: str, module, **params) -> dict:
    req = getattr(module, action + "Request")()
    req._deserialize(params)
    return json.loads(getattr(client, action)(req).to_json_string())


class Setup:
    """An account with a root key, a sub-user `ops` allowed cvm/sts/cam, its key, and a
    stopped instance of the account."""

    def __init__(self, server):
        self.server = server
        self.t = Tenancy(server)
        self.account = self.t.account()
        self.root = self.t.key(self.account)
        self.user = self.t.user(self.account, "ops")
        self.uin = self.t._do("GET", f"accounts/{self.account}/users/ops")["user"]["id"]
        self.owner = self.t._do("GET", f"accounts/{self.account}")["account"]["tencent_owner_uin"]
        self.t.policy(self.account, "ops", "all", "cam", CAM_ALL)
        self.key = self.t.key(self.account, "ops")

    def root_cred(self):
        return credential.Credential(*self.root)

    def user_cred(self):
        return credential.Credential(*self.key)

    def protect(self) -> None:
        """SetMfaFlag ActionFlag.Stoken=1 on the sub-user, by the account's root."""
        cam = cam_with(self.server, self.root_cred())
        call(cam, "SetMfaFlag", cam_models, OpUin=self.uin,
             ActionFlag={"Phone": 0, "Stoken": 1, "Wechat": 0})
        flags = call(cam, "DescribeSafeAuthFlagColl", cam_models, SubUin=self.uin)
        assert flags["ActionFlag"]["Stoken"] == 1, flags

    def bind(self) -> Device:
        d = self.t._do("POST", f"accounts/{self.account}/users/ops/mfa-device", None, 201)["mfa_device"]
        assert d["serial_number"] == f"qcs::cam:uin/{self.owner}::mfa/softToken"
        return Device(d["serial_number"], d["base32_seed"])

    def stopped_instance(self) -> str:
        cvm = Cvm(self.server.endpoint, secret_id=self.root[0], secret_key=self.root[1], retry=False)
        return launch(cvm, catalog_of(self.server), state="STOPPED")[0].id

    def session(self, device: Device, **extra) -> credential.Credential:
        sts = sts_with(self.server, self.user_cred())
        r = call(sts, "GetSessionToken", sts_models, SerialNumber=device.serial,
                 TokenCode=device.code(), **extra)
        c = r["Credentials"]
        assert r["ExpiredTime"] > time.time() and r["Expiration"].endswith("Z"), r
        return credential.Credential(c["TmpSecretId"], c["TmpSecretKey"], c["Token"])


def sensitive_calls(cvm, iid: str, key_id: str):
    """The two seeds' actions (001 ResetInstancesPassword, 004 AssociateInstancesKeyPairs)."""
    return [
        lambda: call(cvm, "ResetInstancesPassword", cvm_models, InstanceIds=[iid],
                     Password=new_password()),
        lambda: call(cvm, "AssociateInstancesKeyPairs", cvm_models, InstanceIds=[iid],
                     KeyIds=[key_id]),
    ]


@pytest.fixture(scope="module")
def sts_server(server_factory):
    return server_factory("sts-tencent", NUBIS_RATE_LIMITS="off", NUBIS_SIM_TIME_SCALE="0",
                          NUBIS_STS_MIN_DURATION_SECS="2")


@pytest.fixture(scope="module")
def mfa_short_server(server_factory):
    return server_factory("sts-mfa-short", NUBIS_RATE_LIMITS="off", NUBIS_SIM_TIME_SCALE="0",
                          NUBIS_MFA_MAX_AGE_SECS="3")


def test_operation_protection_mfa_not_found_then_allowed_with_mfa_session(sts_server):
    s = Setup(sts_server)
    iid = s.stopped_instance()
    sub = cvm_with(sts_server, s.user_cred())
    key_id = call(sub, "CreateKeyPair", cvm_models, KeyName=f"k{time.time_ns() % 10**12}", ProjectId=0)["KeyPair"]["KeyId"]
    # Without the flag the sub-user's policy is enough.
    call(sub, "ResetInstancesPassword", cvm_models, InstanceIds=[iid], Password=new_password())
    wait_settled(Cvm(sts_server.endpoint, secret_id=s.root[0], secret_key=s.root[1]), iid, "STOPPED")
    s.protect()
    for fn in sensitive_calls(sub, iid, key_id):
        e = expect_error("UnauthorizedOperation.MFANotFound", fn)
        assert "exists" in e.message
    # Describe is not sensitive.
    call(sub, "DescribeInstances", cvm_models, InstanceIds=[iid])
    # The root is never gated.
    root_cvm = Cvm(sts_server.endpoint, secret_id=s.root[0], secret_key=s.root[1], retry=False)
    # An MFA session: the same calls pass.
    device = s.bind()
    mfa = cvm_with(sts_server, s.session(device))
    for fn in sensitive_calls(mfa, iid, key_id):
        fn()
        wait_settled(root_cvm, iid, "STOPPED")
    # The long-term key alone still lacks MFA.
    expect_error("UnauthorizedOperation.MFANotFound", sensitive_calls(sub, iid, key_id)[0])


def test_operation_protection_mfa_expired(mfa_short_server):
    s = Setup(mfa_short_server)
    iid = s.stopped_instance()
    s.protect()
    device = s.bind()
    mfa = cvm_with(mfa_short_server, s.session(device, DurationSeconds=1800))
    call(mfa, "ResetInstancesPassword", cvm_models, InstanceIds=[iid], Password=new_password())
    wait_settled(Cvm(mfa_short_server.endpoint, secret_id=s.root[0], secret_key=s.root[1]), iid, "STOPPED")
    time.sleep(4)
    e = expect_error("UnauthorizedOperation.MFAExpired",
                     lambda: call(mfa, "ResetInstancesPassword", cvm_models, InstanceIds=[iid],
                                  Password=new_password()))
    assert "valid" in e.message
    # Still a valid credential: non-sensitive actions pass.
    call(mfa, "DescribeInstances", cvm_models, InstanceIds=[iid])


def test_get_session_token_refusals(sts_server):
    s = Setup(sts_server)
    sts = sts_with(sts_server, s.user_cred())
    serial = f"qcs::cam:uin/{s.owner}::mfa/softToken"
    # No device bound yet.
    expect_error("FailedOperation.CheckMFAError", lambda: call(
        sts, "GetSessionToken", sts_models, SerialNumber=serial, TokenCode="123456"))
    device = s.bind()
    expect_error("FailedOperation.MFATypeNotSupported", lambda: call(
        sts, "GetSessionToken", sts_models, SerialNumber=f"qcs::cam:uin/{s.owner}::mfa/phone",
        TokenCode=device.code()))
    expect_error("InvalidParameter.AccountNotAvaliable", lambda: call(
        sts, "GetSessionToken", sts_models, SerialNumber="qcs::cam:uin/1::mfa/softToken",
        TokenCode="123456"))
    expect_error("InvalidParameter.OverTimeError", lambda: call(
        sts, "GetSessionToken", sts_models, SerialNumber=serial, TokenCode=device.code(),
        DurationSeconds=129601))
    wrong = f"{(int(totp(device.seed)) + 1) % 1_000_000:06d}"
    expect_error("FailedOperation.CheckMFAError", lambda: call(
        sts, "GetSessionToken", sts_models, SerialNumber=serial, TokenCode=wrong))
    # The caller's own UIN in the serial names the same device; a temporary key is refused.
    r = call(sts, "GetSessionToken", sts_models, SerialNumber=f"qcs::cam:uin/{s.uin}::mfa/softToken",
             TokenCode=device.code())
    c = r["Credentials"]
    tmp = sts_with(sts_server, credential.Credential(c["TmpSecretId"], c["TmpSecretKey"], c["Token"]))
    expect_error("FailedOperation.TempKeyNotAllowed", lambda: call(
        tmp, "GetSessionToken", sts_models, SerialNumber=serial, TokenCode="000000"))
    ident = call(tmp, "GetCallerIdentity", sts_models)
    assert (ident["Type"], ident["UserId"], ident["AccountId"]) == ("CAMUser", str(s.uin), str(s.owner))


def test_temporary_credential_works_until_expiry_then_token_failure(sts_server):
    s = Setup(sts_server)
    device = s.bind()
    cred = s.session(device, DurationSeconds=3)
    cvm = cvm_with(sts_server, cred)
    call(cvm, "DescribeInstances", cvm_models)
    # The wrong token, or none, for this SecretId.
    for token in ("nbs1" + "A" * 64, None, "garbage"):
        bad = cvm_with(sts_server, credential.Credential(cred.secret_id, cred.secret_key, token))
        e = expect_error("AuthFailure.TokenFailure", lambda: call(bad, "DescribeInstances", cvm_models))
        assert "token" in e.message
    # Legacy signature carries the token as the signed `Token` parameter.
    legacy_profile = ClientProfile(httpProfile=HttpProfile(endpoint=sts_server.endpoint, protocol="http",
                                                           reqMethod="GET"), signMethod="HmacSHA256")
    legacy = cvm_client.CvmClient(cred, REGION, legacy_profile)
    call(legacy, "DescribeInstances", cvm_models)
    time.sleep(4)
    e = expect_error("AuthFailure.TokenFailure", lambda: call(cvm, "DescribeInstances", cvm_models))
    assert "expired" in e.message
    expect_error("AuthFailure.TokenFailure", lambda: call(legacy, "DescribeInstances", cvm_models))


def test_temporary_credential_survives_a_restart(server_factory):
    srv = server_factory("sts-restart", NUBIS_RATE_LIMITS="off", NUBIS_SIM_TIME_SCALE="0")
    s = Setup(srv)
    cred = s.session(s.bind())
    srv.stop()
    srv.start()
    call(cvm_with(srv, cred), "DescribeInstances", cvm_models)


def test_roles_and_assume_role(sts_server):
    s = Setup(sts_server)
    root_cam = cam_with(sts_server, s.root_cred())
    trust = {"version": "2.0", "statement": [{"action": "name/sts:AssumeRole", "effect": "allow",
                                              "principal": {"qcs": [f"qcs::cam::uin/{s.owner}:root"]}}]}
    name = unique_name("reader").replace("_", "-")
    role_id = call(root_cam, "CreateRole", cam_models, RoleName=name, PolicyDocument=json.dumps(trust),
                   SessionDuration=3600)["RoleId"]
    expect_error("InvalidParameter.RoleNameInUse", lambda: call(
        root_cam, "CreateRole", cam_models, RoleName=name, PolicyDocument=json.dumps(trust)))
    info = call(root_cam, "GetRole", cam_models, RoleName=name)["RoleInfo"]
    assert info["RoleId"] == role_id and info["RoleArn"] == f"qcs::cam::uin/{s.owner}:roleName/{name}"
    assert call(root_cam, "GetRole", cam_models, RoleId=role_id)["RoleInfo"]["RoleName"] == name
    expect_error("InvalidParameter.RoleNotExist", lambda: call(root_cam, "GetRole", cam_models, RoleName="nope"))
    s.t._do("POST", f"accounts/{s.account}/policies",
            {"name": "ro", "grammar": "cam", "document": json.dumps(CAM_READ_ONLY)}, 201)
    call(root_cam, "AttachRolePolicy", cam_models, PolicyName="ro", AttachRoleName=name)
    sts = sts_with(sts_server, s.user_cred())
    expect_error("ResourceNotFound.RoleNotFound", lambda: call(
        sts, "AssumeRole", sts_models, RoleArn=f"qcs::cam::uin/{s.owner}:roleName/nope", RoleSessionName="s1"))
    expect_error("InvalidParameter.OverTimeError", lambda: call(
        sts, "AssumeRole", sts_models, RoleArn=info["RoleArn"], RoleSessionName="s1", DurationSeconds=7200))
    for arn in (info["RoleArn"], f"qcs::cam::uin/{s.owner}:role/{role_id}"):
        r = call(sts, "AssumeRole", sts_models, RoleArn=arn, RoleSessionName="s1", DurationSeconds=900)
        c = r["Credentials"]
        cvm = cvm_with(sts_server, credential.Credential(c["TmpSecretId"], c["TmpSecretKey"], c["Token"]))
        call(cvm, "DescribeInstances", cvm_models)
        e = expect_error("AuthFailure.UnauthorizedOperation",
                         lambda: call(cvm, "RebootInstances", cvm_models, InstanceIds=["ins-00000000"]))
        assert "cvm:RebootInstances" in e.message
    # A session policy narrows the role: DescribeInstances only, so DescribeZones is refused.
    narrow = {"version": "2.0", "statement": [{"effect": "allow", "action": "cvm:DescribeInstances",
                                               "resource": "*"}]}
    r = call(sts, "AssumeRole", sts_models, RoleArn=info["RoleArn"], RoleSessionName="s2",
             DurationSeconds=900, Policy=json.dumps(narrow))
    c = r["Credentials"]
    cvm = cvm_with(sts_server, credential.Credential(c["TmpSecretId"], c["TmpSecretKey"], c["Token"]))
    call(cvm, "DescribeInstances", cvm_models)
    expect_error("AuthFailure.UnauthorizedOperation", lambda: call(cvm, "DescribeZones", cvm_models))
    ident = call(sts_with(sts_server, credential.Credential(c["TmpSecretId"], c["TmpSecretKey"], c["Token"])),
                 "GetCallerIdentity", sts_models)
    assert ident["Type"] == "CAMRole" and ident["UserId"] == f"{role_id}:s2", ident


def test_set_mfa_flag_refusals(sts_server):
    s = Setup(sts_server)
    cam = cam_with(sts_server, s.root_cred())
    expect_error("FailedOperation.UserNotBindPhone", lambda: call(
        cam, "SetMfaFlag", cam_models, OpUin=s.uin, ActionFlag={"Phone": 1, "Stoken": 0, "Wechat": 0}))
    expect_error("FailedOperation.UserNotBindWechat", lambda: call(
        cam, "SetMfaFlag", cam_models, OpUin=s.uin, LoginFlag={"Phone": 0, "Stoken": 0, "Wechat": 1}))
    expect_error("ResourceNotFound.UserNotExist", lambda: call(
        cam, "SetMfaFlag", cam_models, OpUin=1, ActionFlag={"Phone": 0, "Stoken": 1, "Wechat": 0}))
    expect_error("ResourceNotFound.UserNotExist", lambda: call(
        cam, "DescribeSafeAuthFlagColl", cam_models, SubUin=1))
    flags = call(cam, "DescribeSafeAuthFlagColl", cam_models, SubUin=s.uin)
    assert flags["ActionFlag"]["Stoken"] == 0 and flags["LoginFlag"]["Phone"] == 0


def test_role_lifecycle_list_update_detach_delete(sts_server):
    """DescribeRoleList, UpdateRoleDescription, UpdateAssumeRolePolicy, ListAttachedRolePolicies,
    DetachRolePolicy and DeleteRole through tencentcloud-sdk-python: CAM deletes a role with its
    attachments, and the role's live sessions stop working at once (docs/identity-wire.md §3)."""
    s = Setup(sts_server)
    root_cam = cam_with(sts_server, s.root_cred())
    trust = {"version": "2.0", "statement": [{"action": "name/sts:AssumeRole", "effect": "allow",
                                              "principal": {"qcs": [f"qcs::cam::uin/{s.owner}:root"]}}]}
    names = sorted(unique_name(f"r{i}").replace("_", "-") for i in range(3))
    ids = [call(root_cam, "CreateRole", cam_models, RoleName=n, PolicyDocument=json.dumps(trust),
                SessionDuration=3600)["RoleId"] for n in names]
    listed = call(root_cam, "DescribeRoleList", cam_models, Page=1, Rp=2)
    assert listed["TotalNum"] == 3 and [r["RoleName"] for r in listed["List"]] == names[:2], listed
    assert [r["RoleName"] for r in call(root_cam, "DescribeRoleList", cam_models, Page=2, Rp=2)["List"]] == names[2:]
    expect_error("MissingParameter", lambda: call(root_cam, "DescribeRoleList", cam_models, Rp=2))
    expect_error("InvalidParameter.ParamError", lambda: call(root_cam, "DescribeRoleList", cam_models,
                                                             Page=1, Rp=201))

    call(root_cam, "UpdateRoleDescription", cam_models, RoleId=ids[0], Description="readers")
    expect_error("InvalidParameter.DescriptionLengthOverlimit", lambda: call(
        root_cam, "UpdateRoleDescription", cam_models, RoleId=ids[0], Description="x" * 301))
    narrower = dict(trust, statement=[dict(trust["statement"][0], effect="deny")])
    call(root_cam, "UpdateAssumeRolePolicy", cam_models, RoleName=names[0], PolicyDocument=json.dumps(narrower))
    expect_error("InvalidParameter.PolicyDocumentError", lambda: call(
        root_cam, "UpdateAssumeRolePolicy", cam_models, RoleName=names[0], PolicyDocument="[1]"))
    info = call(root_cam, "GetRole", cam_models, RoleId=ids[0])["RoleInfo"]
    assert info["Description"] == "readers" and json.loads(info["PolicyDocument"]) == narrower, info
    call(root_cam, "UpdateAssumeRolePolicy", cam_models, RoleName=names[0], PolicyDocument=json.dumps(trust))

    s.t._do("POST", f"accounts/{s.account}/policies",
            {"name": "ro", "grammar": "cam", "document": json.dumps(CAM_READ_ONLY)}, 201)
    call(root_cam, "AttachRolePolicy", cam_models, PolicyName="ro", AttachRoleId=ids[0])
    attached = call(root_cam, "ListAttachedRolePolicies", cam_models, Page=1, Rp=20, RoleId=ids[0])
    assert attached["TotalNum"] == 1 and attached["List"][0]["PolicyName"] == "ro", attached
    assert call(root_cam, "ListAttachedRolePolicies", cam_models, Page=1, Rp=20, RoleId=ids[0],
                PolicyType="QCS")["TotalNum"] == 0
    call(root_cam, "DetachRolePolicy", cam_models, PolicyName="ro", DetachRoleId=ids[0])
    expect_error("FailedOperation", lambda: call(root_cam, "DetachRolePolicy", cam_models,
                                                 PolicyName="ro", DetachRoleId=ids[0]))
    expect_error("InvalidParameter.PolicyIdNotExist", lambda: call(
        root_cam, "DetachRolePolicy", cam_models, PolicyName="nope", DetachRoleId=ids[0]))
    call(root_cam, "AttachRolePolicy", cam_models, PolicyName="ro", AttachRoleId=ids[0])

    sts = sts_with(sts_server, s.user_cred())
    c = call(sts, "AssumeRole", sts_models, RoleArn=info["RoleArn"], RoleSessionName="s1",
             DurationSeconds=900)["Credentials"]
    cvm = cvm_with(sts_server, credential.Credential(c["TmpSecretId"], c["TmpSecretKey"], c["Token"]))
    call(cvm, "DescribeInstances", cvm_models)
    # Deleted with its attachment; the session dies with it, and the name is free again.
    call(root_cam, "DeleteRole", cam_models, RoleId=ids[0])
    expect_error("AuthFailure.SecretIdNotFound", lambda: call(cvm, "DescribeInstances", cvm_models))
    expect_error("InvalidParameter.RoleNotExist", lambda: call(root_cam, "GetRole", cam_models, RoleId=ids[0]))
    expect_error("InvalidParameter.RoleNotExist", lambda: call(root_cam, "DeleteRole", cam_models, RoleId=ids[0]))
    assert call(root_cam, "DescribeRoleList", cam_models, Page=1, Rp=20)["TotalNum"] == 2
    call(root_cam, "CreateRole", cam_models, RoleName=names[0], PolicyDocument=json.dumps(trust))
