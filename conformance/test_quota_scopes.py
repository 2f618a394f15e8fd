"""Issue 15: Nova's quota scopes through openstacksdk and raw requests — quota sets of
Keystone projects other than an account's default, per-user quotas (`?user_id=`), quota
classes (`os-quota-class-sets`, `default` is every account's defaults) and the item quotas
nubis enforces (metadata_items, server_groups, server_group_members, injected_file*), each
refusal with Nova's code and message and nothing changed (docs/quotas.md).

Own server: the `default` class and the admin's projects' quotas changed here must not
limit other tests."""

from __future__ import annotations

import base64

import pytest

from nubis import unique_name
from test_openstack_support import (
    FLAVOR,
    connect,
    create_server,
    expect_http,
    image_id,
    member_of_new_project,
    raw,
)
from test_quotas import Admin

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

QS = "/compute/v2.1/os-quota-sets"
QC = "/compute/v2.1/os-quota-class-sets"


@pytest.fixture(scope="module")
def sserver(server_factory):
    return server_factory("quota-scopes", NUBIS_RATE_LIMITS="off")


@pytest.fixture(scope="module")
def admin(sserver):
    return connect(sserver)


def at(minor: int) -> dict:
    return {"OpenStack-API-Version": f"compute 2.{minor}"}


def put(sserver, conn, path, body, minor=1):
    return raw(sserver, conn, "PUT", path, json_body=body, headers=at(minor))


def get(sserver, conn, path, minor=1):
    return raw(sserver, conn, "GET", path, headers=at(minor))


def test_a_keystone_projects_quota_is_its_own_and_is_enforced(sserver, admin):
    member, project, uid = member_of_new_project(sserver, admin)
    # Tempest's _get_updated_quotas: a string value, then the detail view.
    admin.compute.update_quota_set(project, ram="5120")
    r = get(sserver, admin, f"{QS}/{project}/detail")
    assert r.status_code == 200, r.text
    detail = r.json()["quota_set"]
    assert detail["id"] == project and detail["ram"] == {"limit": 5120, "in_use": 0, "reserved": 0}
    # The account (the admin's default project) is untouched.
    assert admin.compute.get_quota_set(admin.current_project_id).ram == -1
    # The member reads its own project, not another's.
    assert member.compute.get_quota_set(project).ram == 5120
    r = get(sserver, member, f"{QS}/{admin.current_project_id}")
    assert r.status_code == 403, r.text
    assert r.json()["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed."
    # Enforced: one instance in the project, the second refused with Nova's message.
    admin.compute.update_quota_set(project, instances=1)
    create_server(member)
    e = expect_http(403, member.compute.create_server, name=unique_name("q"),
                    image_id=image_id(member), flavor_id=FLAVOR, networks="none")
    # (Every resource exceeded is named: the 5120 MiB of ram are exceeded too.)
    assert "Quota exceeded for instances, ram: Requested 1, 4096, but already used 1, 4096 " \
           "of 1, 5120 instances, ram" in str(e)
    assert len(list(member.compute.servers())) == 1, "nothing was created"
    detail = get(sserver, admin, f"{QS}/{project}/detail").json()["quota_set"]
    assert detail["instances"]["in_use"] == 1 and detail["cores"]["in_use"] == 2
    # The admin's own project is not limited by it.
    create_server(admin)
    # DELETE: the project follows the defaults again (the admin account's: unlimited).
    assert raw(sserver, admin, "DELETE", f"{QS}/{project}").status_code == 202
    assert admin.compute.get_quota_set(project).instances == -1
    create_server(member)


def test_a_users_quota_within_its_project(sserver, admin):
    member, project, uid = member_of_new_project(sserver, admin)
    admin.compute.update_quota_set(project, ram="5120", instances=5)
    r = put(sserver, admin, f"{QS}/{project}?user_id={uid}", {"quota_set": {"ram": "2048"}})
    assert r.status_code == 200 and r.json()["quota_set"]["ram"] == 2048, r.text
    assert "id" not in r.json()["quota_set"]
    r = get(sserver, admin, f"{QS}/{project}?user_id={uid}")
    assert r.json()["quota_set"]["ram"] == 2048 and r.json()["quota_set"]["id"] == project
    # The project's own set is unchanged; its defaults are the defaults.
    assert admin.compute.get_quota_set(project).ram == 5120
    # Above the project's limit only with force.
    r = put(sserver, admin, f"{QS}/{project}?user_id={uid}", {"quota_set": {"ram": 8192}})
    assert r.status_code == 400, r.text
    assert r.json()["badRequest"]["message"] == \
        "Quota limit 8192 for ram must be less than or equal to 5120."
    assert get(sserver, admin, f"{QS}/{project}?user_id={uid}").json()["quota_set"]["ram"] == 2048
    # The user's quota holds the user: 2048 MiB fits one S5.SMALL2 (2 GiB), not a MEDIUM4.
    e = expect_http(403, member.compute.create_server, name=unique_name("q"),
                    image_id=image_id(member), flavor_id=FLAVOR, networks="none")
    assert "Quota exceeded for ram: Requested 4096, but already used 0 of 2048 ram" in str(e)
    # Another user of the project is held only by the project.
    other, _, _ = member_of_new_project(sserver, admin)
    admin.identity.assign_project_role_to_user(
        project, admin.identity.find_user(other.current_user_id),
        admin.identity.find_role("member"))
    # A user quota of 0 key pairs: refused with Nova's key pair message.
    r = put(sserver, admin, f"{QS}/{project}?user_id={uid}", {"quota_set": {"key_pairs": 0}})
    assert r.status_code == 200, r.text
    e = expect_http(403, member.compute.create_keypair, name=unique_name("k"))
    assert "Quota exceeded, too many key pairs." in str(e)
    # DELETE ?user_id= forgets the user's: the project's apply again.
    assert raw(sserver, admin, "DELETE", f"{QS}/{project}?user_id={uid}").status_code == 202
    assert get(sserver, admin, f"{QS}/{project}?user_id={uid}").json()["quota_set"]["ram"] == 5120
    member.compute.create_keypair(name=unique_name("k"))


def test_quota_set_refusals_change_nothing(sserver, admin):
    member, project, uid = member_of_new_project(sserver, admin)
    before = get(sserver, admin, f"{QS}/{project}").json()["quota_set"]
    for body, message in (
        ({"quota_set": {"ram": -2}}, "is not a valid quota value"),
        ({"quota_set": {"ram": "lots"}}, "is not a valid quota value"),
        ({"quota_set": {"networks": 1}}, "Additional properties are not allowed ('networks' was unexpected)"),
        ({"quota_set": {"force": "perhaps"}}, "is not of type 'boolean', 'string'"),
        ({"quotas": {}}, "'quota_set' is a required property"),
    ):
        r = put(sserver, admin, f"{QS}/{project}", body)
        assert r.status_code == 400 and message in r.json()["badRequest"]["message"], (body, r.text)
    # Dropped keys are unknown at their microversion.
    r = put(sserver, admin, f"{QS}/{project}", {"quota_set": {"floating_ips": 1}}, minor=36)
    assert r.status_code == 400, r.text
    r = put(sserver, admin, f"{QS}/{project}", {"quota_set": {"injected_files": 1}}, minor=57)
    assert r.status_code == 400, r.text
    # A member may not change its quota; an unknown project is 400; a bad user_id 400.
    r = put(sserver, member, f"{QS}/{project}", {"quota_set": {"ram": 0}})
    assert r.status_code == 403 and r.json()["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-quota-sets:update to be performed.", r.text
    assert raw(sserver, member, "DELETE", f"{QS}/{project}").status_code == 403
    r = get(sserver, admin, f"{QS}/0123456789abcdef0123456789abcdef")
    assert r.status_code == 400 and r.json()["badRequest"]["message"] == \
        "Project ID 0123456789abcdef0123456789abcdef is not a valid project.", r.text
    r = get(sserver, admin, f"{QS}/{project}?user_id={'u' * 256}")
    assert r.status_code == 400, r.text
    assert get(sserver, admin, f"{QS}/{project}").json()["quota_set"] == before


def test_keys_by_microversion(sserver, admin):
    project = admin.current_project_id
    keys = lambda minor: set(get(sserver, admin, f"{QS}/{project}", minor).json()["quota_set"])
    base = {"id", "instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups",
            "server_group_members"}
    net = {"fixed_ips", "floating_ips", "security_groups", "security_group_rules"}
    inj = {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
    assert keys(1) == base | net | inj
    assert keys(36) == base | inj
    assert keys(57) == base


def test_item_quotas_are_enforced(sserver, admin):
    member, project, uid = member_of_new_project(sserver, admin)
    admin.compute.update_quota_set(project, metadata_items=2, server_groups=1,
                                   server_group_members=1, injected_files=1)
    limits = member.compute.get_limits().absolute
    assert (limits.server_meta, limits.server_groups, limits.server_group_members) == (2, 1, 1)
    # metadata_items: on create and on the metadata API (Tempest test_metadata_items_limit).
    e = expect_http(403, member.compute.create_server, name=unique_name("q"),
                    image_id=image_id(member), flavor_id=FLAVOR, networks="none",
                    metadata={"a": "1", "b": "2", "c": "3"})
    assert "Maximum number of metadata items exceeds 2" in str(e)
    srv, _ = create_server(member, metadata={"a": "1"})
    r = raw(sserver, member, "POST", f"/compute/v2.1/servers/{srv.id}/metadata",
            json_body={"metadata": {"b": "2", "c": "3"}})
    assert r.status_code == 403 and r.json()["forbidden"]["message"] == \
        "Maximum number of metadata items exceeds 2", r.text
    assert member.compute.get_server_metadata(srv).metadata == {"a": "1"}
    # server_groups: one per project; the admin's own project is not held by it.
    g = member.compute.create_server_group(name=unique_name("g"), policies=["anti-affinity"])
    e = expect_http(403, member.compute.create_server_group, name=unique_name("g"),
                    policies=["anti-affinity"])
    assert "Quota exceeded, too many server groups." in str(e)
    assert len(list(member.compute.server_groups())) == 1
    admin_group = admin.compute.create_server_group(name=unique_name("g"), policies=["affinity"])
    detail = get(sserver, admin, f"{QS}/{project}/detail").json()["quota_set"]
    assert detail["server_groups"] == {"limit": 1, "in_use": 1, "reserved": 0}
    # server_group_members: the group holds one.
    create_server(member, scheduler_hints={"group": g.id})
    e = expect_http(403, member.compute.create_server, name=unique_name("q"),
                    image_id=image_id(member), flavor_id=FLAVOR, networks="none",
                    scheduler_hints={"group": g.id})
    assert "Quota exceeded, too many servers in group" in str(e)
    # injected_files (before 2.57): one file, not two.
    files = [{"path": f"/etc/f{i}", "contents": base64.b64encode(b"x").decode()} for i in range(2)]
    r = raw(sserver, member, "POST", "/compute/v2.1/servers", headers=at(56), json_body={
        "server": {"name": unique_name("q"), "imageRef": image_id(member), "flavorRef": FLAVOR,
                   "networks": "none", "personality": files}})
    assert r.status_code == 403 and r.json()["forbidden"]["message"] == \
        "Personality file limit exceeded", r.text
    admin.compute.delete_server_group(admin_group)


def test_quota_classes(sserver, admin):
    adm = Admin(sserver)
    body = get(sserver, admin, f"{QC}/default").json()["quota_class_set"]
    assert body.pop("id") == "default"
    # Before 2.50 the group quotas are hidden (Nova's v2.1 bug) and the network ones shown.
    assert "server_groups" not in body and "floating_ips" in body and body["instances"] == 10
    v250 = get(sserver, admin, f"{QC}/default", 50).json()["quota_class_set"]
    assert v250["server_groups"] == 10 and "floating_ips" not in v250 and "injected_files" in v250
    v257 = get(sserver, admin, f"{QC}/default", 57).json()["quota_class_set"]
    assert "injected_files" not in v257
    # Tempest's test_update_default_quotas: every value + 100, shown back.
    raised = {k: v + 100 for k, v in body.items()}
    r = put(sserver, admin, f"{QC}/default", {"quota_class_set": raised})
    assert r.status_code == 200, r.text
    assert "id" not in r.json()["quota_class_set"]
    shown = get(sserver, admin, f"{QC}/default").json()["quota_class_set"]
    assert all(shown[k] == v for k, v in raised.items()), shown
    # The default class is what a new account falls back to, and what its quota enforces.
    acct = adm.account()
    q = adm.do("GET", f"accounts/{acct}/quotas")["quota"]
    assert q["defaults"]["instances"] == 110 and q["limits"]["items"]["metadata_items"] == 228
    # The admin account keeps its unlimited capacity.
    assert admin.compute.get_quota_set(admin.current_project_id).instances == -1
    # Refusals: a member may not read or write classes; bad bodies; a long name.
    member, _, _ = member_of_new_project(sserver, admin)
    r = get(sserver, member, f"{QC}/default")
    assert r.status_code == 403 and r.json()["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-quota-class-sets:show to be performed.", r.text
    r = put(sserver, member, f"{QC}/default", {"quota_class_set": {"instances": 1}})
    assert r.status_code == 403, r.text
    for bad in ({"quota_class_set": {"force": True}}, {"quota_class_set": {"instances": -5}},
                {"quota_set": {}}):
        assert put(sserver, admin, f"{QC}/default", bad).status_code == 400, bad
    r = put(sserver, admin, f"{QC}/default", {"quota_class_set": {"fixed_ips": 1}}, minor=50)
    assert r.status_code == 400, r.text
    r = put(sserver, admin, f"{QC}/{'c' * 256}", {"quota_class_set": {"instances": 1}})
    assert r.status_code == 400, r.text
    # Restore: nothing else on this server sees the raised defaults afterwards.
    r = put(sserver, admin, f"{QC}/default", {"quota_class_set": body})
    assert r.status_code == 200, r.text
    assert adm.do("GET", f"accounts/{acct}/quotas")["quota"]["limits"]["instances"] == 10


def test_tencent_group_quota_follows_the_accounts_server_groups(sserver):
    adm = Admin(sserver)
    acct = adm.account()
    adm.do("PUT", f"accounts/{acct}/quotas", {"items": {"server_groups": 3}})
    key = adm.key(acct)
    cvm = sserver.cvm(secret_id=key[0], secret_key=key[1], retry=False)
    assert cvm.call("DescribeDisasterRecoverGroupQuota")["GroupQuota"] == 3
    for _ in range(3):
        cvm.call("CreateDisasterRecoverGroup", Name=unique_name("g"), Type="HOST")
    from nubis import expect_error
    expect_error("LimitExceeded.DisasterRecoverGroup", cvm.call, "CreateDisasterRecoverGroup",
                 Name=unique_name("g"), Type="HOST")
    assert cvm.call("DescribeDisasterRecoverGroupQuota")["CurrentNum"] == 3


def test_limits_of_another_project_are_the_admins_to_read(sserver, admin):
    member, project, _ = member_of_new_project(sserver, admin)
    admin.compute.update_quota_set(project, instances=3, cores=7)
    r = get(sserver, admin, f"/compute/v2.1/limits?tenant_id={project}")
    assert r.status_code == 200, r.text
    absolute = r.json()["limits"]["absolute"]
    assert (absolute["maxTotalInstances"], absolute["maxTotalCores"]) == (3, 7)
    # Without tenant_id the admin's own project (unlimited); the member sees its own.
    assert get(sserver, admin, "/compute/v2.1/limits").json()["limits"]["absolute"]["maxTotalInstances"] == -1
    assert member.compute.get_limits().absolute.instances == 3
    # Another project's limits need Nova's limits:other_project rule (admin).
    r = get(sserver, member, f"/compute/v2.1/limits?tenant_id={admin.current_project_id}")
    assert r.status_code == 403, r.text
    assert r.json()["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:limits:other_project to be performed."
    # A project nubis does not know shows the defaults, as Nova (which does not check) does.
    r = get(sserver, admin, "/compute/v2.1/limits?tenant_id=0123456789abcdef0123456789abcdef")
    assert r.status_code == 200, r.text
    assert r.json()["limits"]["absolute"]["maxTotalInstances"] == 10
