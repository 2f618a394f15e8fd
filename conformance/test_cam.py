"""Issue 13 items 3: Tencent CAM 2019-01-16 through tencentcloud-sdk-python's CamClient
(typed request models, TC3 with the `cam` credential scope, no region: D3).

The account's root (a key from the admin API) creates a sub-user, an access key for it, a
read-only CAM policy, and attaches it — all through CAM. The sub-user then describes
instances through CVM and is refused a reboot with AuthFailure.UnauthorizedOperation.
Also: the key limit, duplicate names, deleting a user with keys, unknown users and
policies, malformed documents, and a sub-user without CAM permissions.

Own server: the accounts and keys made here must not show in other tests' key listings."""

from __future__ import annotations

import json

import pytest
import requests
from tencentcloud.cam.v20190116 import cam_client, models as cam_models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from conftest import catalog_of
from nubis import describe, expect_error, launch, unique_name

CAM_READ_ONLY = {"version": "2.0", "statement": [
    {"effect": "allow", "action": ["cvm:Describe*"], "resource": "*"}]}


class Cam:
    """The official CamClient; `call` builds the typed request model and returns the typed
    response as a dict."""

    def __init__(self, endpoint: str, key: tuple[str, str]):
        hp = HttpProfile(endpoint=endpoint, protocol="http")
        # Region "" — CAM is region-less; the SDK then sends no X-TC-Region.
        self.client = cam_client.CamClient(credential.Credential(*key), "", ClientProfile(httpProfile=hp))

    def call(self, action: str, **params) -> dict:
        req = getattr(cam_models, action + "Request")()
        req._deserialize(params)
        return json.loads(getattr(self.client, action)(req).to_json_string())


@pytest.fixture(scope="module")
def cam_server(server_factory):
    return server_factory("cam", NUBIS_RATE_LIMITS="off")


def new_account(server) -> tuple[str, tuple[str, str]]:
    """An account (admin API) and its root's access key."""
    s = requests.Session()
    s.trust_env = False
    s.auth = server.creds
    name = unique_name("cam").lower().replace("_", "-")
    r = s.post(f"{server.base_url}/admin/v1/accounts", json={"name": name}, timeout=30)
    assert r.status_code == 201, r.text
    r = s.post(f"{server.base_url}/admin/v1/access-keys", json={"account": name}, timeout=30)
    assert r.status_code == 201, r.text
    k = r.json()["access_key"]
    return name, (k["id"], k["secret"])


@pytest.fixture()
def root(cam_server):
    _, key = new_account(cam_server)
    return key


def test_root_delegates_read_only_access_through_cam(cam_server, root):
    cam = Cam(cam_server.endpoint, root)
    cvm_root = cam_server.cvm(secret_id=root[0], secret_key=root[1], retry=False)
    inst = launch(cvm_root, catalog_of(cam_server))[0]

    user = cam.call("AddUser", Name="dev", Remark="read-only operator")
    uin = user["Uin"]
    assert user["Name"] == "dev" and user["Uid"] == uin
    key = cam.call("CreateAccessKey", TargetUin=uin)["AccessKey"]
    assert key["Status"] == "Active" and len(key["SecretAccessKey"]) == 32
    pid = cam.call("CreatePolicy", PolicyName="cvm-read-only", PolicyDocument=json.dumps(CAM_READ_ONLY),
                   Description="describe only")["PolicyId"]
    cam.call("AttachUserPolicy", PolicyId=pid, AttachUin=uin)
    attached = cam.call("ListAttachedUserPolicies", TargetUin=uin)
    assert attached["TotalNum"] == 1 and attached["List"][0]["PolicyId"] == pid
    assert cam.call("GetPolicy", PolicyId=pid)["PolicyDocument"] == json.dumps(CAM_READ_ONLY)
    assert [u["Name"] for u in cam.call("ListUsers")["Data"]] == ["dev"]

    sub = cam_server.cvm(secret_id=key["AccessKeyId"], secret_key=key["SecretAccessKey"], retry=False)
    assert describe(sub, inst.id)["InstanceState"] == "RUNNING"
    e = expect_error("AuthFailure.UnauthorizedOperation", sub.call, "RebootInstances", InstanceIds=[inst.id])
    assert "cvm:RebootInstances" in e.message
    # Nor may it manage CAM: the read-only policy names only cvm:Describe*.
    sub_cam = Cam(cam_server.endpoint, (key["AccessKeyId"], key["SecretAccessKey"]))
    expect_error("AuthFailure.UnauthorizedOperation", sub_cam.call, "AddUser", Name="intruder")
    # Detached, the sub-user may do nothing at all.
    cam.call("DetachUserPolicy", PolicyId=pid, DetachUin=uin)
    expect_error("AuthFailure.UnauthorizedOperation", sub.call, "DescribeInstances")
    # Disabled, its key is refused before any policy.
    cam.call("UpdateAccessKey", AccessKeyId=key["AccessKeyId"], Status="Inactive", TargetUin=uin)
    with pytest.raises(TencentCloudSDKException) as e:
        sub.call("DescribeInstances")
    assert e.value.code.startswith("AuthFailure")


def test_sub_user_with_cam_permissions_manages_users(cam_server, root):
    cam = Cam(cam_server.endpoint, root)
    uin = cam.call("AddUser", Name="admin-helper")["Uin"]
    key = cam.call("CreateAccessKey", TargetUin=uin)["AccessKey"]
    doc = {"version": "2.0", "statement": [{"effect": "allow", "action": "cam:*User*", "resource": "*"}]}
    pid = cam.call("CreatePolicy", PolicyName="user-admin", PolicyDocument=json.dumps(doc))["PolicyId"]
    cam.call("AttachUserPolicy", PolicyId=pid, AttachUin=uin)
    helper = Cam(cam_server.endpoint, (key["AccessKeyId"], key["SecretAccessKey"]))
    helper.call("AddUser", Name="made-by-helper")
    assert helper.call("GetUser", Name="made-by-helper")["Name"] == "made-by-helper"
    # cam:*User* covers AttachUserPolicy but not CreatePolicy.
    expect_error("AuthFailure.UnauthorizedOperation", helper.call, "CreatePolicy",
                 PolicyName="p", PolicyDocument=json.dumps(CAM_READ_ONLY))
    helper.call("DeleteUser", Name="made-by-helper")


def test_key_limit_duplicates_and_deleting_a_user_with_keys(cam_server, root):
    cam = Cam(cam_server.endpoint, root)
    uin = cam.call("AddUser", Name="dev", UseApi=1)["Uin"]  # UseApi: the first key
    expect_error("InvalidParameter.SubUserNameInUse", cam.call, "AddUser", Name="dev")
    cam.call("CreateAccessKey", TargetUin=uin)
    expect_error("OperationDenied.AccessKeyOverLimit", cam.call, "CreateAccessKey", TargetUin=uin)
    assert len(cam.call("ListAccessKeys", TargetUin=uin)["AccessKeys"]) == 2
    expect_error("OperationDenied.HaveKeys", cam.call, "DeleteUser", Name="dev")
    expect_error("OperationDenied.HaveKeys", cam.call, "DeleteUser", Name="dev", Force=0)
    cam.call("DeleteUser", Name="dev", Force=1)
    expect_error("ResourceNotFound.UserNotExist", cam.call, "GetUser", Name="dev")
    doc = json.dumps(CAM_READ_ONLY)
    cam.call("CreatePolicy", PolicyName="ro", PolicyDocument=doc)
    expect_error("FailedOperation.PolicyNameInUse", cam.call, "CreatePolicy", PolicyName="ro", PolicyDocument=doc)


def test_unknown_users_policies_and_malformed_documents(cam_server, root):
    cam = Cam(cam_server.endpoint, root)
    uin = cam.call("AddUser", Name="dev")["Uin"]
    expect_error("ResourceNotFound.UserNotExist", cam.call, "GetUser", Name="nobody")
    expect_error("ResourceNotFound.UserNotExist", cam.call, "DeleteUser", Name="nobody")
    expect_error("InvalidParameter.UserNotExist", cam.call, "CreateAccessKey", TargetUin=1)
    expect_error("ResourceNotFound.PolicyIdNotFound", cam.call, "GetPolicy", PolicyId=1)
    expect_error("ResourceNotFound.PolicyIdNotFound", cam.call, "AttachUserPolicy", PolicyId=1, AttachUin=uin)
    expect_error("ResourceNotFound.PolicyIdNotFound", cam.call, "DeletePolicy", PolicyId=[1])
    expect_error("ResourceNotFound.SecretNotExist", cam.call, "DeleteAccessKey",
                 AccessKeyId="AKID" + "x" * 32, TargetUin=uin)
    expect_error("InvalidParameter.PolicyDocumentError", cam.call, "CreatePolicy",
                 PolicyName="bad", PolicyDocument="{not json")
    expect_error("InvalidParameter.EffectError", cam.call, "CreatePolicy", PolicyName="bad",
                 PolicyDocument=json.dumps({"version": "2.0", "statement": [
                     {"effect": "perhaps", "action": "cvm:*", "resource": "*"}]}))
    expect_error("InvalidParameter.VersionError", cam.call, "CreatePolicy", PolicyName="bad",
                 PolicyDocument=json.dumps({"version": "1.0", "statement": []}))
    expect_error("InvalidParameter.UserNameIllegal", cam.call, "AddUser", Name="has space")
    expect_error("MissingParameter", cam.call, "GetUser")


def test_accounts_do_not_see_each_others_identities(cam_server, root):
    a = Cam(cam_server.endpoint, root)
    _, other = new_account(cam_server)
    b = Cam(cam_server.endpoint, other)
    uin = a.call("AddUser", Name="dev")["Uin"]
    pid = a.call("CreatePolicy", PolicyName="ro", PolicyDocument=json.dumps(CAM_READ_ONLY))["PolicyId"]
    expect_error("ResourceNotFound.UserNotExist", b.call, "GetUser", Name="dev")
    expect_error("InvalidParameter.UserNotExist", b.call, "ListAccessKeys", TargetUin=uin)
    expect_error("ResourceNotFound.PolicyIdNotFound", b.call, "GetPolicy", PolicyId=pid)
    assert b.call("ListPolicies")["TotalNum"] == 0
    # The same names are free in another account.
    b.call("AddUser", Name="dev")
