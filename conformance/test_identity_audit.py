"""Issue 13's last done-when: every call of its identity scenarios is found in the audit trail
through each cloud's own lookup API (docs/audit.md), on one server:

- Tencent (tencentcloud-sdk-python cvm/cam/sts, CloudAudit LookUpEvents by RequestId): a
  read-only sub-user describes and is refused a reboot, so is a read-only role's session; a
  second account does not find the first's instance or key pair; the instance quota refuses; operation protection answers
  UnauthorizedOperation.MFANotFound, passes with an MFA session (real TOTP codes) and then
  answers UnauthorizedOperation.MFAExpired; a temporary credential works until its expiry and
  then fails with AuthFailure.TokenFailure;
- Alibaba (aliyun-python-sdk-ecs/ram/sts, ActionTrail LookupEvents by EventName): the same
  read-only, two-account and quota scenarios; `acs:MFAPresent` policies; an AssumeRole session
  works until its expiry and then fails with InvalidSecurityToken.Expired;
- OpenStack (openstacksdk and the openstack CLI): a member of project B gets 404 for project
  A's server, a reader 403 on writes, the instance quota 403; every request the SDK sent —
  Keystone password logins included — is in the admin API's trail, and the accepted server
  actions in Nova's os-instance-actions (list and show, with events).

Each call's RequestId comes from the SDK's answer (or its exception); each is looked up, with
the result code and the principal (sub-user, role session, Keystone user) that made it, and
through the admin API (`/admin/v1/audit-events`) too. No secret appears in any event.

Own server: short temporary credentials and MFA age (`NUBIS_STS_MIN_DURATION_SECS=2`,
`NUBIS_MFA_MAX_AGE_SECS=3`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest
from openstack import exceptions as os_exc
from tencentcloud.cam.v20190116 import models as cam_models
from tencentcloud.common import credential
from tencentcloud.cvm.v20170312 import models as cvm_models
from tencentcloud.sts.v20180813 import models as sts_models

import test_sts_aliyun
import test_sts_tencent
from conftest import catalog_of
from nubis import (
    ADMIN_PASSWORD,
    Cvm,
    ali_catalog_of,
    ali_launch,
    ecs_client,
    expect_ecs_error,
    expect_error,
    launch,
    new_password,
    unique_name,
    wait_settled,
)
from test_audit import legacy_lookup, look_up, no_secret_in
from test_openstack_identity_admin import PASSWORD, cli, connect_as
from test_openstack_support import FLAVOR, create_server, expect_http, image_id, wait_status
from test_sts_tencent import call, cam_with, cvm_with, sensitive_calls, sts_with
from test_tenancy import CAM_READ_ONLY, RAM_READ_ONLY, Tenancy, cvm_as, ecs_as

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


@pytest.fixture(scope="module")
def srv(server_factory):
    return server_factory("identity-audit", NUBIS_RATE_LIMITS="off", NUBIS_SIM_TIME_SCALE="0",
                          NUBIS_STS_MIN_DURATION_SECS="2", NUBIS_MFA_MAX_AGE_SECS="3")


@pytest.fixture(scope="module")
def t(srv) -> Tenancy:
    return Tenancy(srv)


@dataclass
class Call:
    """One call of a scenario and what its event must say."""
    action: str
    rid: str
    # The error code recorded (None: success; OpenStack: the HTTP status as text).
    code: str | None
    # The principal as the admin API's `user` names it (an account's name for its root, the
    # sub-user's name, `role/session` for a role session, the Keystone user's name).
    user: str
    # The credential's ID (access key, temporary key); None: not checked (Keystone tokens).
    credential: str | None = None
    # The cloud's own view of the principal: Tencent `Username`, ActionTrail
    # (`userIdentity.type`, `userIdentity.userName`).
    cloud_user: object = None
    # The key that reads the account's trail through the cloud's lookup API.
    lookup_key: tuple[str, str] | None = None


def in_admin_trail(t: Tenancy, cloud: str, calls: list[Call], *secrets: str) -> None:
    """Every call is one event of the admin API's trail, with its code and principal."""
    for c in calls:
        got = t._do("GET", f"audit-events?request_id={c.rid}")["events"]
        assert len(got) == 1, (c, got)
        e = got[0]
        assert (e["cloud"], e["action"], e.get("error_code"), e["user"]) == (
            cloud, c.action, c.code, c.user), (c, e)
        if c.credential is not None:
            assert e["credential"] == c.credential, (c, e)
        assert e["source_ip"] == "127.0.0.1" and e["user_agent"], e
        no_secret_in(json.dumps(e), *secrets)


# -- Tencent -----------------------------------------------------------------------------


def tencent_session(s: test_sts_tencent.Setup, device, **extra) -> tuple[credential.Credential, str]:
    """GetSessionToken with the device's next code: the credential and the call's RequestId."""
    r = call(sts_with(s.server, s.user_cred()), "GetSessionToken", sts_models,
             SerialNumber=device.serial, TokenCode=device.code(), **extra)
    c = r["Credentials"]
    return credential.Credential(c["TmpSecretId"], c["TmpSecretKey"], c["Token"]), r["RequestId"]


def in_cloudaudit(srv, c: Call, *secrets: str) -> None:
    got = look_up(srv, c.lookup_key,
                  LookupAttributes=[{"AttributeKey": "RequestId", "AttributeValue": c.rid}])
    assert [e["RequestID"] for e in got["Events"]] == [c.rid], (c, got)
    assert got["TotalCount"] == 1, got
    e = got["Events"][0]
    inner = json.loads(e["CloudAuditEvent"])
    assert e["EventName"] == c.action, (c, e)
    assert inner["apiErrorCode"] == (c.code or ""), (c, inner)
    assert e["ErrorCode"] == (0 if c.code is None else 1), (c, e)
    assert e["Username"] == c.cloud_user and e["SecretId"] == c.credential, (c, e)
    assert e["SourceIPAddress"] == "127.0.0.1" and inner["userAgent"], e
    no_secret_in(json.dumps(got), *secrets)


def test_tencent_scenarios_are_in_cloudaudit(srv, t):
    calls: list[Call] = []
    cat = catalog_of(srv)

    # A read-only sub-user describes, and is refused a reboot.
    acct = t.account()
    root_key = t.key(acct)
    root = cvm_as(srv, root_key)
    inst = launch(root, cat)[0]
    dev = t.user(acct)
    t.policy(acct, dev, "read-only", "cam", CAM_READ_ONLY)
    dev_key = t.key(acct, dev)
    sub = cvm_as(srv, dev_key)
    as_dev = dict(user=dev, credential=dev_key[0], cloud_user=dev, lookup_key=root_key)
    as_root = dict(user=acct, credential=root_key[0], cloud_user="root", lookup_key=root_key)
    r = sub.call("DescribeInstances", InstanceIds=[inst.id])
    assert r["InstanceSet"][0]["InstanceId"] == inst.id
    calls.append(Call("DescribeInstances", r["RequestId"], None, **as_dev))
    e = expect_error("AuthFailure.UnauthorizedOperation", sub.call, "RebootInstances", InstanceIds=[inst.id])
    calls.append(Call("RebootInstances", e.requestId, e.code, **as_dev))

    # Another account sees neither the instance nor the key pair.
    kp = root.call("CreateKeyPair", KeyName=unique_name("k").replace("-", "_"), ProjectId=0)
    calls.append(Call("CreateKeyPair", kp["RequestId"], None, **as_root))
    other = t.account()
    other_key = t.key(other)
    b = cvm_as(srv, other_key)
    as_other = dict(user=other, credential=other_key[0], cloud_user="root", lookup_key=other_key)
    r = b.call("DescribeInstances", Limit=100)
    assert inst.id not in [i["InstanceId"] for i in r["InstanceSet"]]
    calls.append(Call("DescribeInstances", r["RequestId"], None, **as_other))
    e = expect_error("InvalidInstanceId.NotFound", b.call, "RebootInstances", InstanceIds=[inst.id])
    calls.append(Call("RebootInstances", e.requestId, e.code, **as_other))
    r = b.call("DescribeKeyPairs", Limit=100)
    assert kp["KeyPair"]["KeyId"] not in [k["KeyId"] for k in r["KeyPairSet"]]
    calls.append(Call("DescribeKeyPairs", r["RequestId"], None, **as_other))
    e = expect_error("InvalidKeyPairId.NotFound", b.call, "DeleteKeyPairs", KeyIds=[kp["KeyPair"]["KeyId"]])
    calls.append(Call("DeleteKeyPairs", e.requestId, e.code, **as_other))

    # The instance quota refuses.
    q = t.account()
    t._do("PUT", f"accounts/{q}/quotas", {"instances": 0})
    q_key = t.key(q)
    e = expect_error("LimitExceeded.InstanceQuota", cvm_as(srv, q_key).call, "RunInstances",
                     Placement={"Zone": cat.zone}, ImageId=cat.linux_image, InstanceCount=1,
                     LoginSettings={"Password": new_password()})
    calls.append(Call("RunInstances", e.requestId, e.code, user=q, credential=q_key[0],
                      cloud_user="root", lookup_key=q_key))

    # Operation protection: MFANotFound, then an MFA session passes, then MFAExpired; a
    # temporary credential works until its expiry, then AuthFailure.TokenFailure.
    s = test_sts_tencent.Setup(srv)
    iid = s.stopped_instance()
    ops = cvm_with(srv, s.user_cred())
    as_ops = dict(user="ops", credential=s.key[0], cloud_user="ops", lookup_key=s.root)
    r = call(ops, "CreateKeyPair", cvm_models, KeyName=f"k{time.time_ns() % 10**12}", ProjectId=0)
    key_id = r["KeyPair"]["KeyId"]
    calls.append(Call("CreateKeyPair", r["RequestId"], None, **as_ops))
    # A role session (STS AssumeRole) of a read-only role is refused a reboot: CloudAudit names
    # the role as the operator.
    role = unique_name("reader")
    trust = {"version": "2.0", "statement": [{"action": "name/sts:AssumeRole", "effect": "allow",
                                              "principal": {"qcs": [f"qcs::cam::uin/{s.owner}:root"]}}]}
    root_cam = cam_with(srv, s.root_cred())
    call(root_cam, "CreateRole", cam_models, RoleName=role, PolicyDocument=json.dumps(trust),
         SessionDuration=3600)
    s.t._do("POST", f"accounts/{s.account}/policies",
            {"name": "ro", "grammar": "cam", "document": json.dumps(CAM_READ_ONLY)}, 201)
    call(root_cam, "AttachRolePolicy", cam_models, PolicyName="ro", AttachRoleName=role)
    r = call(sts_with(srv, s.user_cred()), "AssumeRole", sts_models,
             RoleArn=f"qcs::cam::uin/{s.owner}:roleName/{role}", RoleSessionName="s1", DurationSeconds=900)
    calls.append(Call("AssumeRole", r["RequestId"], None, **as_ops))
    rc = r["Credentials"]
    role_cvm = cvm_with(srv, credential.Credential(rc["TmpSecretId"], rc["TmpSecretKey"], rc["Token"]))
    e = expect_error("AuthFailure.UnauthorizedOperation", lambda: call(
        role_cvm, "RebootInstances", cvm_models, InstanceIds=[iid]))
    calls.append(Call("RebootInstances", e.requestId, e.code, user=f"{role}/s1",
                      credential=rc["TmpSecretId"], cloud_user=role, lookup_key=s.root))
    s.protect()
    for action, fn in zip(("ResetInstancesPassword", "AssociateInstancesKeyPairs"),
                          sensitive_calls(ops, iid, key_id)):
        e = expect_error("UnauthorizedOperation.MFANotFound", fn)
        calls.append(Call(action, e.requestId, e.code, **as_ops))
    device = s.bind()
    mfa_cred, rid = tencent_session(s, device, DurationSeconds=1800)
    calls.append(Call("GetSessionToken", rid, None, **as_ops))
    mfa = cvm_with(srv, mfa_cred)
    as_mfa = as_ops | dict(credential=mfa_cred.secret_id)
    r = call(mfa, "ResetInstancesPassword", cvm_models, InstanceIds=[iid], Password=new_password())
    calls.append(Call("ResetInstancesPassword", r["RequestId"], None, **as_mfa))
    short_cred, rid = tencent_session(s, device, DurationSeconds=3)
    calls.append(Call("GetSessionToken", rid, None, **as_ops))
    short = cvm_with(srv, short_cred)
    as_short = as_ops | dict(credential=short_cred.secret_id)
    r = call(short, "DescribeInstances", cvm_models)
    calls.append(Call("DescribeInstances", r["RequestId"], None, **as_short))
    wait_settled(Cvm(srv.endpoint, secret_id=s.root[0], secret_key=s.root[1]), iid, "STOPPED")
    time.sleep(4)  # past the MFA age (3 s) and the short credential's expiry (3 s)
    e = expect_error("UnauthorizedOperation.MFAExpired", lambda: call(
        mfa, "ResetInstancesPassword", cvm_models, InstanceIds=[iid], Password=new_password()))
    calls.append(Call("ResetInstancesPassword", e.requestId, e.code, **as_mfa))
    e = expect_error("AuthFailure.TokenFailure", lambda: call(short, "DescribeInstances", cvm_models))
    assert "expired" in e.message
    calls.append(Call("DescribeInstances", e.requestId, e.code, **as_short))
    # A token that does not bind the credential is not authenticated: not in any trail.
    bad = cvm_with(srv, credential.Credential(short_cred.secret_id, short_cred.secret_key, "garbage"))
    anonymous = expect_error("AuthFailure.TokenFailure", lambda: call(bad, "DescribeInstances", cvm_models))

    secrets = (root_key[1], dev_key[1], other_key[1], q_key[1], s.root[1], s.key[1],
               mfa_cred.secret_key, mfa_cred.token, short_cred.secret_key, short_cred.token,
               rc["TmpSecretKey"], rc["Token"],
               srv.creds[1], device.seed)
    for c in calls:
        in_cloudaudit(srv, c, *secrets)
    in_admin_trail(t, "tencent", calls, *secrets)
    assert t._do("GET", f"audit-events?request_id={anonymous.requestId}")["events"] == []


def test_cloudaudit_total_count_is_every_match(srv, t):
    acct = t.account()
    key = t.key(acct)
    cvm = cvm_as(srv, key)
    for _ in range(3):
        cvm.call("DescribeZones")
    by_name = [{"AttributeKey": "EventName", "AttributeValue": "DescribeZones"}]
    page = look_up(srv, key, MaxResults=1, LookupAttributes=by_name)
    assert len(page["Events"]) == 1 and page["ListOver"] is False, page
    assert page["TotalCount"] == 3, page


# -- Alibaba -----------------------------------------------------------------------------


def actiontrail_events(srv, key, event_name: str) -> dict[str, dict]:
    """Every event of `event_name` in the key's account's trail, by RequestId (all pages)."""
    from aliyunsdkactiontrail.request.v20200706.LookupEventsRequest import LookupEventsRequest
    from aliyunsdkcore.client import AcsClient
    client = AcsClient(key[0], key[1], "cn-hangzhou")
    out: dict[str, dict] = {}
    token = None
    while True:
        req = LookupEventsRequest()
        req.set_endpoint(srv.endpoint)
        req.set_protocol_type("http")
        req.set_MaxResults("50")
        req.set_LookupAttributes([{"Key": "EventName", "Value": event_name}])
        if token:
            req.set_NextToken(token)
        page = json.loads(client.do_action_with_exception(req))
        out.update({e["requestId"]: e for e in page["Events"]})
        token = page.get("NextToken")
        if not token:
            return out


def test_aliyun_scenarios_are_in_actiontrail(srv, t):
    calls: list[Call] = []
    cat = ali_catalog_of(ecs_client(srv, "legacy"))

    def root_of(acct, key):
        return dict(user=acct, credential=key[0], cloud_user=("root-account", "root"), lookup_key=key)

    # A read-only RAM user describes, and is refused a reboot.
    acct = t.account()
    root_key = t.key(acct)
    root = ecs_as(srv, "legacy", root_key)
    inst = ali_launch(root, srv.admin, cat)[0]
    dev = t.user(acct)
    t.policy(acct, dev, "read-only", "ram", RAM_READ_ONLY)
    dev_key = t.key(acct, dev)
    sub = ecs_as(srv, "legacy", dev_key)
    as_dev = dict(user=dev, credential=dev_key[0], cloud_user=("ram-user", dev), lookup_key=root_key)
    r = sub.call("DescribeInstances", InstanceIds=[inst.id], PageSize=100)
    assert [i["InstanceId"] for i in r["Instances"]["Instance"]] == [inst.id]
    calls.append(Call("DescribeInstances", r["RequestId"], None, **as_dev))
    e = expect_ecs_error(403, "Forbidden.RAM", sub.call, "RebootInstance", InstanceId=inst.id)
    calls.append(Call("RebootInstance", e.request_id, e.code, **as_dev))

    # Another account sees neither the instance nor the key pair.
    name = unique_name("k")
    r = root.call("CreateKeyPair", KeyPairName=name)
    calls.append(Call("CreateKeyPair", r["RequestId"], None, **root_of(acct, root_key)))
    other = t.account()
    other_key = t.key(other)
    b = ecs_as(srv, "legacy", other_key)
    as_other = root_of(other, other_key)
    r = b.call("DescribeInstances", InstanceIds=[inst.id], PageSize=100)
    assert r["Instances"]["Instance"] == []
    calls.append(Call("DescribeInstances", r["RequestId"], None, **as_other))
    e = expect_ecs_error(404, "InvalidInstanceId.NotFound", b.call, "RebootInstance", InstanceId=inst.id)
    calls.append(Call("RebootInstance", e.request_id, e.code, **as_other))
    r = b.call("DescribeKeyPairs", KeyPairName=name)
    assert r["KeyPairs"]["KeyPair"] == []
    calls.append(Call("DescribeKeyPairs", r["RequestId"], None, **as_other))
    e = expect_ecs_error(404, "InvalidKeyPairName.NotFound", b.call, "AttachKeyPair",
                         KeyPairName=name, InstanceIds=[inst.id])
    calls.append(Call("AttachKeyPair", e.request_id, e.code, **as_other))

    # The instance quota refuses.
    q = t.account()
    t._do("PUT", f"accounts/{q}/quotas", {"instances": 0})
    q_key = t.key(q)
    e = expect_ecs_error(403, "QuotaExceed.ElasticQuota", ecs_as(srv, "legacy", q_key).call, "RunInstances",
                         ZoneId=cat.zone, ImageId=cat.linux_image, InstanceType=cat.instance_type,
                         Amount=1, Password=new_password())
    calls.append(Call("RunInstances", e.request_id, e.code, **root_of(q, q_key)))

    # acs:MFAPresent (D9): an Allow that needs MFA leaves an implicit deny; a Deny on
    # MFAPresent=false is explicit.
    s = test_sts_aliyun.Setup(srv)
    for user, doc in (
        ("mfa-only", {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*",
             "Condition": {"Bool": {"acs:MFAPresent": "true"}}}]}),
        ("no-mfa-deny", {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecs:*", "Resource": "*",
             "Condition": {"Bool": {"acs:MFAPresent": "false"}}}]}),
    ):
        s.t.user(s.account, user)
        s.t.policy(s.account, user, f"{user}-policy", "ram", doc)
        k = s.t.key(s.account, user)
        e = expect_ecs_error(403, "Forbidden.RAM", ecs_as(srv, "legacy", k).call, "DescribeInstances")
        calls.append(Call("DescribeInstances", e.request_id, e.code, user=user, credential=k[0],
                          cloud_user=("ram-user", user), lookup_key=s.root))

    # An AssumeRole session works until its expiry, then InvalidSecurityToken.Expired.
    role = unique_name("reader")
    arn = s.role(role)
    req = AssumeRoleRequest()
    req.set_RoleArn(arn)
    req.set_RoleSessionName("s1")
    req.set_DurationSeconds(3)
    r = test_sts_aliyun.legacy_do(srv, test_sts_aliyun.legacy(srv, s.dev), req)
    calls.append(Call("AssumeRole", r["RequestId"], None, user="dev", credential=s.dev[0],
                      cloud_user=("ram-user", "dev"), lookup_key=s.root))
    c = r["Credentials"]
    sts_key = (c["AccessKeyId"], c["AccessKeySecret"])
    ecs = test_sts_aliyun.ecs_with_token(srv, "legacy", sts_key, c["SecurityToken"])
    as_role = dict(user=f"{role}/s1", credential=sts_key[0],
                   cloud_user=("assumed-role", f"{role}:s1"), lookup_key=s.root)
    r = ecs.call("DescribeInstances")
    calls.append(Call("DescribeInstances", r["RequestId"], None, **as_role))
    time.sleep(4)
    e = expect_ecs_error(403, "InvalidSecurityToken.Expired", ecs.call, "DescribeInstances")
    calls.append(Call("DescribeInstances", e.request_id, e.code, **as_role))
    # A token of another credential is not authenticated: not in any trail.
    wrong = test_sts_aliyun.ecs_with_token(srv, "legacy", sts_key, "not-a-token")
    anonymous = expect_ecs_error(400, "InvalidSecurityToken.Malformed", wrong.call, "DescribeInstances")

    secrets = (root_key[1], dev_key[1], other_key[1], q_key[1], s.root[1], s.dev[1], sts_key[1],
               c["SecurityToken"], srv.creds[1], inst.password)
    trails: dict[tuple, dict[str, dict]] = {}
    for call_ in calls:
        events = trails.setdefault((call_.lookup_key, call_.action),
                                   actiontrail_events(srv, call_.lookup_key, call_.action))
        assert call_.rid in events, (call_, sorted(events))
        e = events[call_.rid]
        assert (e["eventName"], e["errorCode"]) == (call_.action, call_.code or ""), (call_, e)
        ident = e["userIdentity"]
        assert (ident["type"], ident["userName"]) == call_.cloud_user, (call_, e)
        assert ident["accessKeyId"] == call_.credential, (call_, e)
        assert e["sourceIpAddress"] == "127.0.0.1" and e["userAgent"], e
        no_secret_in(json.dumps(e), *secrets)
    in_admin_trail(t, "aliyun", calls, *secrets)
    assert t._do("GET", f"audit-events?request_id={anonymous.request_id}")["events"] == []


# -- OpenStack ---------------------------------------------------------------------------


class Recorder:
    """Every response the connection's keystoneauth session received (its token requests
    included): method, path, status, x-openstack-request-id."""

    def __init__(self, conn, user: str):
        self.user = user
        self.seen: list[tuple[str, str, int, str]] = []
        self.anonymous: list[str] = []
        conn.session.session.hooks["response"].append(self._hook)

    def _hook(self, resp, *args, **kwargs):
        req = resp.request
        if "X-Auth-Token" in req.headers or req.path_url.endswith("/auth/tokens"):
            self.seen.append((req.method, req.path_url, resp.status_code,
                              resp.headers.get("x-openstack-request-id", "")))
        else:
            # Version discovery carries no token: not authenticated, not in the trail.
            self.anonymous.append(resp.headers.get("x-openstack-request-id", ""))


def test_openstack_scenarios_are_in_the_trail_and_instance_actions(srv, t):
    pa, pb = unique_name("pa"), unique_name("pb")
    ua, ub, ur = unique_name("ua"), unique_name("ub"), unique_name("ur")
    for p in (pa, pb):
        cli(srv, "project", "create", "--domain", "default", p)
    for u in (ua, ub, ur):
        cli(srv, "user", "create", "--domain", "default", "--password", PASSWORD, u)
    cli(srv, "role", "add", "--user", ua, "--project", pa, "member")
    cli(srv, "role", "add", "--user", ub, "--project", pb, "member")
    cli(srv, "role", "add", "--user", ur, "--project", pa, "reader")
    a, b, r = (connect_as(srv, u, PASSWORD, p) for u, p in ((ua, pa), (ub, pb), (ur, pa)))
    admin = connect_as(srv, "admin", ADMIN_PASSWORD, "admin")
    recs = [Recorder(a, ua), Recorder(b, ub), Recorder(r, ur), Recorder(admin, "admin")]

    srv_a, _ = create_server(a, name=unique_name("in-a"))
    with pytest.raises(os_exc.NotFoundException):
        b.compute.get_server(srv_a.id)
    with pytest.raises(os_exc.NotFoundException):
        b.compute.reboot_server(srv_a.id, "SOFT")
    with pytest.raises(os_exc.NotFoundException):
        b.compute.delete_server(srv_a.id, ignore_missing=False)
    with pytest.raises(os_exc.ForbiddenException):
        list(b.compute.servers(all_projects=True))
    assert r.compute.get_server(srv_a.id).id == srv_a.id
    expect_http(403, r.compute.reboot_server, srv_a.id, "SOFT")
    expect_http(403, r.compute.delete_server, srv_a.id, ignore_missing=False)
    expect_http(403, r.compute.create_server, name=unique_name("ro"), image_id=image_id(r),
                flavor_id=FLAVOR, networks="none")
    a.compute.reboot_server(srv_a.id, "HARD")
    wait_status(a, srv_a.id, "ACTIVE")

    # The instance quota refuses (the admin's own project, as test_quotas does).
    project = admin.current_project_id
    used = admin.compute.get_quota_set(project, usage=True).usage["instances"]
    admin.compute.update_quota_set(project, instances=used)
    try:
        expect_http(403, admin.compute.create_server, name=unique_name("q"), image_id=image_id(admin),
                    flavor_id=FLAVOR, networks="none")
    finally:
        admin.compute.revert_quota_set(project)

    # Every authenticated request each SDK sent, its Keystone login included, is in the trail
    # under its user with its status.
    expected = {(u, code) for u, code in ((ua, None), (ub, "404"), (ub, "403"), (ur, "403"),
                                          ("admin", "403"))}
    found = set()
    logins = set()
    for rec in recs:
        assert any(m == "POST" and p.endswith("/auth/tokens") and s == 201 for m, p, s, _ in rec.seen), rec.seen
        for method, path, status, rid in rec.seen:
            assert rid, (method, path, status)
            got = t._do("GET", f"audit-events?request_id={rid}")["events"]
            assert len(got) == 1, (rec.user, method, path, status, got)
            e = got[0]
            code = str(status) if status >= 400 else None
            assert (e["cloud"], e["user"], e.get("error_code"), e["status"]) == (
                "openstack", rec.user, code, status), (method, path, e)
            no_secret_in(json.dumps(e), PASSWORD, ADMIN_PASSWORD, srv.creds[1])
            found.add((rec.user, code))
            if e["action"] == "identity.token.issue":
                logins.add(rec.user)
                assert "password" not in e["parameters"].replace('"methods":["password"]', ""), e
        for rid in rec.anonymous:
            assert t._do("GET", f"audit-events?request_id={rid}")["events"] == [], rid
    assert expected <= found, (expected, found)
    assert logins == {ua, ub, ur, "admin"}

    # Nova records the actions it accepted on the server: list and show, with events.
    create_rid = next(rid for m, p, s, rid in recs[0].seen if m == "POST" and p.endswith("/servers"))
    reboot_rid = next(rid for m, p, s, rid in recs[0].seen
                      if m == "POST" and p.endswith("/action") and s == 202)
    actions = {x.request_id: x for x in a.compute.server_actions(srv_a)}
    assert set(actions) == {create_rid, reboot_rid}, actions
    assert actions[reboot_rid].action == "reboot" and actions[create_rid].action == "create"
    for rid in (create_rid, reboot_rid):
        assert actions[rid].user_id == a.current_user_id, actions[rid]
        assert actions[rid].project_id == a.current_project_id, actions[rid]
        shown = admin.compute.get_server_action(rid, srv_a)
        assert shown.request_id == rid and shown.events, shown
        assert all(ev["result"] == "Success" for ev in shown.events), shown.events
    a.compute.delete_server(srv_a.id, ignore_missing=False)
    a.compute.wait_for_delete(srv_a, wait=60, interval=0.2)


def test_keystone_login_refused_on_scope_is_in_the_trail(srv, t):
    """A login whose password is right but whose user holds no role on the project it asks
    for (Keystone: 401) is the user's own call: recorded under that user. A wrong password
    proves nothing: not recorded (docs/audit.md)."""
    pa, pb, user = unique_name("pa"), unique_name("pb"), unique_name("us")
    for p in (pa, pb):
        cli(srv, "project", "create", "--domain", "default", p)
    cli(srv, "user", "create", "--domain", "default", "--password", PASSWORD, user)
    cli(srv, "role", "add", "--user", user, "--project", pa, "member")

    refused = connect_as(srv, user, PASSWORD, pb)
    wrong = connect_as(srv, user, PASSWORD + "x", pa)
    recs = [Recorder(refused, user), Recorder(wrong, user)]
    for conn in (refused, wrong):
        # openstacksdk wraps keystoneauth's Unauthorized in an SDKException.
        with pytest.raises(os_exc.SDKException, match=r"HTTP 401"):
            conn.authorize()
    (scope_login,), (password_login,) = ([r for r in rec.seen if r[1].endswith("/auth/tokens")]
                                         for rec in recs)
    assert scope_login[2] == password_login[2] == 401, recs[0].seen + recs[1].seen

    got = t._do("GET", f"audit-events?request_id={scope_login[3]}")["events"]
    assert len(got) == 1, got
    e = got[0]
    assert (e["cloud"], e["user"], e["action"], e["error_code"], e["status"]) == (
        "openstack", user, "identity.token.issue", "401", 401), e
    no_secret_in(json.dumps(e), PASSWORD)
    assert t._do("GET", f"audit-events?request_id={password_login[3]}")["events"] == []
