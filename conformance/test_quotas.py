"""Issue 13 item 2: per-account quotas (instances, vCPUs, memory, key pairs) through the
official SDKs (tencentcloud-sdk-python; aliyun-python-sdk-ecs and alibabacloud_ecs20140526;
openstacksdk). An account with quota N gets the cloud's code on instance N+1, nothing is
created, and each cloud's quota query shows used and limit (docs/quotas.md).

Own server: the quotas set here (the bootstrap admin's too, for Nova) must not limit other
tests."""

from __future__ import annotations

import pytest
import requests

from nubis import (
    ALI_GENERATIONS,
    ali_catalog_of,
    ali_launch,
    ecs_client,
    expect_ecs_error,
    expect_error,
    launch,
    new_password,
    unique_name,
)
from conftest import catalog_of
from test_openstack_support import FLAVOR, connect, create_server, expect_http, image_id, raw

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


class Admin:
    def __init__(self, server):
        self.base = f"{server.base_url}/admin/v1"
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.auth = server.creds

    def do(self, method: str, path: str, body=None, want: int = 200):
        r = self.session.request(method, f"{self.base}/{path}", json=body, timeout=30)
        assert r.status_code == want, f"{method} {path} {body}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def account(self) -> str:
        name = unique_name("q").lower().replace("_", "-")
        self.do("POST", "accounts", {"name": name}, 201)
        return name

    def key(self, account: str) -> tuple[str, str]:
        k = self.do("POST", "access-keys", {"account": account}, 201)["access_key"]
        return k["id"], k["secret"]

    def quota(self, account: str, **limits) -> dict:
        return self.do("PUT", f"accounts/{account}/quotas", limits)["quota"]


@pytest.fixture(scope="module")
def qserver(server_factory):
    return server_factory("quotas", NUBIS_RATE_LIMITS="off")


@pytest.fixture(scope="module")
def adm(qserver) -> Admin:
    return Admin(qserver)


# -- admin API ---------------------------------------------------------------------------


def test_admin_api_sets_shows_and_resets_quotas(adm):
    acct = adm.account()
    q = adm.do("GET", f"accounts/{acct}/quotas")["quota"]
    items = q["limits"].pop("items")
    assert q["limits"] == {"instances": 10, "cores": 20, "ram_mib": 51200, "key_pairs": 100}
    assert items["metadata_items"] == 128 and items["server_groups"] == 10, items
    assert q["usage"] == {"instances": 0, "cores": 0, "ram_mib": 0, "key_pairs": 0,
                          "server_groups": 0}
    q = adm.quota(acct, instances=3, cores=-1, items={"server_groups": 2})
    assert q["limits"]["instances"] == 3 and q["limits"]["cores"] == -1
    assert q["limits"]["items"]["server_groups"] == 2
    assert q["overrides"] == {"instances": 3, "cores": -1, "items": {"server_groups": 2}}
    for bad, status in (({"instances": -2}, 400), ({"instances": 2**31}, 400),
                        ({"items": {"server_groups": -2}}, 400),
                        ({"items": {"networks": 1}}, 422),
                        ({"vcpus": 1}, 422), ({"instances": "x"}, 422)):
        adm.do("PUT", f"accounts/{acct}/quotas", bad, status)
    adm.do("PUT", "accounts/nope/quotas", {"instances": 1}, 404)
    q = adm.do("DELETE", f"accounts/{acct}/quotas")["quota"]
    assert q["limits"]["instances"] == 10 and q["overrides"] == {}
    # The bootstrap admin is unlimited.
    assert adm.do("GET", "accounts/admin/quotas")["quota"]["limits"]["instances"] == -1


# -- Tencent -----------------------------------------------------------------------------


def test_tencent_instance_over_the_quota_is_refused_and_the_query_shows_it(qserver, adm):
    acct = adm.account()
    adm.quota(acct, instances=2)
    key = adm.key(acct)
    cvm = qserver.cvm(secret_id=key[0], secret_key=key[1], retry=False)
    cat = catalog_of(qserver)
    launch(cvm, cat, count=2)
    e = expect_error("LimitExceeded.InstanceQuota", cvm.call, "RunInstances",
                     Placement={"Zone": cat.zone}, ImageId=cat.linux_image, InstanceCount=1,
                     LoginSettings={"Password": new_password()})
    assert "instances" in e.message
    # A batch that does not fit is refused whole; DryRun answers the same code.
    adm.quota(acct, instances=3)
    expect_error("LimitExceeded.InstanceQuota", cvm.call, "RunInstances",
                 Placement={"Zone": cat.zone}, ImageId=cat.linux_image, InstanceCount=2,
                 LoginSettings={"Password": new_password()})
    expect_error("LimitExceeded.InstanceQuota", cvm.call, "RunInstances",
                 Placement={"Zone": cat.zone}, ImageId=cat.linux_image, InstanceCount=2, DryRun=True,
                 LoginSettings={"Password": new_password()})
    assert cvm.call("DescribeInstances", Limit=100)["TotalCount"] == 2, "nothing was created"

    q = cvm.call("DescribeAccountQuota")
    assert q["AppId"] == adm.do("GET", f"accounts/{acct}")["account"]["tencent_app_id"]
    overview = q["AccountQuotaOverview"]
    assert overview["Region"] == "ap-guangzhou"
    sets = {z["Zone"]: z for z in overview["AccountQuota"]["PostPaidQuotaSet"]}
    assert sets[cat.zone]["TotalQuota"] == 3
    assert sets[cat.zone]["UsedQuota"] == 2
    assert sets[cat.zone]["RemainingQuota"] == 1
    only = cvm.call("DescribeAccountQuota", Filters=[{"Name": "zone", "Values": [cat.zone]},
                                                     {"Name": "quota-type", "Values": ["PostPaidQuotaSet"]}])
    acq = only["AccountQuotaOverview"]["AccountQuota"]
    assert [z["Zone"] for z in acq["PostPaidQuotaSet"]] == [cat.zone]
    assert acq["PrePaidQuotaSet"] == []
    expect_error("InvalidFilter", cvm.call, "DescribeAccountQuota", Filters=[{"Name": "nope", "Values": ["x"]}])


def test_tencent_key_pair_quota(qserver, adm):
    acct = adm.account()
    adm.quota(acct, key_pairs=1)
    key = adm.key(acct)
    cvm = qserver.cvm(secret_id=key[0], secret_key=key[1], retry=False)
    cvm.call("CreateKeyPair", KeyName="k_one", ProjectId=0)
    expect_error("InvalidKeyPair.LimitExceeded", cvm.call, "CreateKeyPair", KeyName="k_two", ProjectId=0)
    assert [k["KeyName"] for k in cvm.call("DescribeKeyPairs", Limit=100)["KeyPairSet"]] == ["k_one"]


# -- Alibaba -----------------------------------------------------------------------------


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_aliyun_vcpus_over_the_quota_are_refused_and_the_attributes_show_them(qserver, adm, generation):
    acct = adm.account()
    key = adm.key(acct)
    ecs = ecs_client(qserver, generation, access_key_id=key[0], access_key_secret=key[1], retry=False)
    cat = ali_catalog_of(ecs)
    ali_launch(ecs, qserver.admin, cat)
    used = adm.do("GET", f"accounts/{acct}/quotas")["quota"]["usage"]["cores"]
    assert used > 0
    adm.quota(acct, cores=used)
    expect_ecs_error(403, "QuotaExceed.ElasticQuota", ecs.call, "RunInstances", ZoneId=cat.zone,
                     ImageId=cat.linux_image, InstanceType=cat.instance_type, Amount=1,
                     Password=new_password())
    assert len(ecs.call("DescribeInstances", PageSize=100)["Instances"]["Instance"]) == 1

    got = ecs.call("DescribeAccountAttributes",
                   AttributeName=["max-postpaid-instance-vcpu-count", "used-postpaid-instance-vcpu-count"])
    items = {i["AttributeName"]: i["AttributeValues"]["ValueItem"]
             for i in got["AccountAttributeItems"]["AccountAttributeItem"]}
    assert set(items) == {"max-postpaid-instance-vcpu-count", "used-postpaid-instance-vcpu-count"}
    assert items["max-postpaid-instance-vcpu-count"][0]["Value"] == str(used)
    assert items["used-postpaid-instance-vcpu-count"][0]["Value"] == str(used)
    everything = ecs.call("DescribeAccountAttributes")["AccountAttributeItems"]["AccountAttributeItem"]
    assert len(everything) > 2
    expect_ecs_error(400, "InvalidParameter", ecs.call, "DescribeAccountAttributes", AttributeName=["max-nothing"])


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_aliyun_key_pair_quota(qserver, adm, generation):
    acct = adm.account()
    adm.quota(acct, key_pairs=1)
    key = adm.key(acct)
    ecs = ecs_client(qserver, generation, access_key_id=key[0], access_key_secret=key[1], retry=False)
    ecs.call("CreateKeyPair", KeyPairName=unique_name("k"))
    e = expect_ecs_error(403, "QuotaExceed.KeyPair", ecs.call, "CreateKeyPair", KeyPairName=unique_name("k"))
    assert "The key pair quota exceeds." in e.message


# -- Nova --------------------------------------------------------------------------------


def test_nova_quota_sets_limits_and_the_403(qserver):
    conn = connect(qserver)
    project = conn.current_project_id
    before = conn.compute.get_quota_set(project)
    assert before.instances == -1, "the bootstrap admin is unlimited"
    defaults = conn.compute.get_quota_set_defaults(project)
    assert defaults.instances == -1
    create_server(conn)
    used = conn.compute.get_quota_set(project, usage=True).usage["instances"]
    assert used >= 1
    conn.compute.update_quota_set(project, instances=used)
    q = conn.compute.get_quota_set(project)
    assert q.instances == used
    limits = conn.compute.get_limits().absolute
    assert limits.instances == used and limits.instances_used == used
    e = expect_http(403, conn.compute.create_server, name=unique_name("os"), image_id=image_id(conn),
                    flavor_id=FLAVOR, networks="none")
    assert f"Quota exceeded for instances: Requested 1, but already used {used} of {used} instances" in str(e)
    assert conn.compute.get_limits().absolute.instances_used == used, "nothing was created"
    # Below the usage only with force (Nova's rule); unknown keys are 400.
    r = raw(qserver, conn, "PUT", f"/compute/v2.1/os-quota-sets/{project}",
            json_body={"quota_set": {"instances": 0}})
    assert r.status_code == 400 and "must be greater than or equal to already used" in r.text, r.text
    r = raw(qserver, conn, "PUT", f"/compute/v2.1/os-quota-sets/{project}",
            json_body={"quota_set": {"instances": 0, "force": True}})
    assert r.status_code == 200 and r.json()["quota_set"]["instances"] == 0, r.text
    r = raw(qserver, conn, "PUT", f"/compute/v2.1/os-quota-sets/{project}",
            json_body={"quota_set": {"bogus": 1}})
    assert r.status_code == 400, r.text
    # Key pairs: 403 "Quota exceeded, too many key pairs."
    conn.compute.update_quota_set(project, key_pairs=len(list(conn.compute.keypairs())), force=True)
    e = expect_http(403, conn.compute.create_keypair, name=unique_name("k"))
    assert "Quota exceeded, too many key pairs." in str(e)
    # An unknown project is 400; DELETE reverts to the defaults.
    r = raw(qserver, conn, "GET", "/compute/v2.1/os-quota-sets/0123456789abcdef0123456789abcdef")
    assert r.status_code == 400, r.text
    conn.compute.revert_quota_set(project)
    assert conn.compute.get_quota_set(project).instances == -1
