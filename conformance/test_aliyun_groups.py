"""Deployment sets through both official Alibaba SDK generations (docs/placement-groups.md):
Create/Describe/Modify/DeleteDeploymentSet(s), RunInstances `DeploymentSetId`,
DescribeInstances `DeploymentSetId`, the Availability refusal on the embedded driver (one host
per zone), limits and every bad input with its ECS code and HTTP status."""

import re
import secrets

import pytest

from nubis import ali_launch, ecs_client, ecs_describe, expect_ecs_error, wait_until

pytestmark = pytest.mark.timeout(120)


def set_name() -> str:
    return f"ds-test-{secrets.token_hex(4)}"


@pytest.fixture
def sets(server):
    """Make deployment sets (`sets(**params)` → ID); each is deleted afterwards, its members
    deleted first."""
    ecs = ecs_client(server, "legacy")
    made = []

    def make(**params) -> str:
        params.setdefault("DeploymentSetName", set_name())
        sid = ecs.call("CreateDeploymentSet", **params)["DeploymentSetId"]
        made.append(sid)
        return sid

    yield make
    for sid in made:
        got = ecs.call("DescribeDeploymentSets", DeploymentSetIds=[sid])["DeploymentSets"]["DeploymentSet"]
        if not got:
            continue
        members = got[0]["InstanceIds"]["InstanceId"]
        if members:
            ecs.call("DeleteInstances", InstanceId=members, Force=True)
            for iid in members:
                wait_until(lambda iid=iid: ecs_describe(ecs, iid) is None, timeout=60)
        ecs.call("DeleteDeploymentSet", DeploymentSetId=sid)


def one_set(ecs, sid) -> dict:
    got = ecs.call("DescribeDeploymentSets", DeploymentSetIds=[sid])
    assert got["TotalCount"] == 1, got
    return got["DeploymentSets"]["DeploymentSet"][0]


def test_create_describe_modify_delete(ecs_any):
    name = set_name()
    sid = ecs_any.call("CreateDeploymentSet", DeploymentSetName=name, Description="first set",
                       Strategy="AvailabilityGroup", GroupCount=2)["DeploymentSetId"]
    assert re.fullmatch(r"ds-[0-9a-z]{20}", sid), sid
    s = one_set(ecs_any, sid)
    assert (s["DeploymentSetName"], s["DeploymentSetDescription"], s["DeploymentStrategy"],
            s["GroupCount"], s["InstanceAmount"]) == (name, "first set", "AvailabilityGroup", 2, 0)
    by_strategy = ecs_any.call("DescribeDeploymentSets", Strategy="AvailabilityGroup", PageSize=50)
    assert sid in [x["DeploymentSetId"] for x in by_strategy["DeploymentSets"]["DeploymentSet"]]
    ecs_any.call("ModifyDeploymentSetAttribute", DeploymentSetId=sid, DeploymentSetName="renamed",
                 Description="changed")
    s = one_set(ecs_any, sid)
    assert (s["DeploymentSetName"], s["DeploymentSetDescription"]) == ("renamed", "changed")
    ecs_any.call("DeleteDeploymentSet", DeploymentSetId=sid)
    assert ecs_any.call("DescribeDeploymentSets", DeploymentSetIds=[sid])["TotalCount"] == 0
    expect_ecs_error(404, "InvalidDeploymentSetId.NotFound", ecs_any.call, "DeleteDeploymentSet",
                     DeploymentSetId=sid)


def test_client_token_answers_the_same_set(server, sets):
    ecs = ecs_client(server, "legacy")
    token = secrets.token_hex(8)
    sid = sets(ClientToken=token)
    assert ecs.call("CreateDeploymentSet", DeploymentSetName="again", ClientToken=token)["DeploymentSetId"] == sid


@pytest.mark.parametrize("params, code", [
    ({"DeploymentSetName": "1starts-with-digit"}, "InvalidDeploymentSetName.Malformed"),
    ({"DeploymentSetName": "x"}, "InvalidDeploymentSetName.Malformed"),
    ({"DeploymentSetName": "n" * 129}, "InvalidDeploymentSetName.Malformed"),
    ({"Description": "http://x"}, "InvalidDescription.Malformed"),
    ({"Strategy": "Spread"}, "InvalidParameter"),
    ({"Strategy": "AvailabilityGroup", "GroupCount": 8}, "InvalidParameter.GroupCount"),
    ({"Strategy": "AvailabilityGroup", "GroupCount": 0}, "InvalidParameter.GroupCount"),
    ({"OnUnableToRedeployFailedInstance": "Reboot"}, "InvalidParameter"),
    ({"ClientToken": "t" * 65}, "InvalidClientToken.ValueNotSupported"),
], ids=["digit-first", "short-name", "long-name", "url-description", "bad-strategy",
        "group-count-8", "group-count-0", "bad-on-unable", "long-token"])
def test_create_refusals(ecs_any, params, code):
    expect_ecs_error(400, code, ecs_any.call, "CreateDeploymentSet", **params)


def test_id_refusals(ecs_any, sets):
    sid = sets()
    for action, extra in [("DeleteDeploymentSet", {}),
                          ("ModifyDeploymentSetAttribute", {"DeploymentSetName": "x-name"})]:
        expect_ecs_error(404, "InvalidDeploymentSetId.NotFound", ecs_any.call, action,
                         DeploymentSetId="ds-00000000000000000000", **extra)
        expect_ecs_error(404, "InvalidDeploymentSetId.NotFound", ecs_any.call, action,
                         DeploymentSetId="not-a-set", **extra)
    expect_ecs_error(400, "InvalidDeploymentSetName.Malformed", ecs_any.call,
                     "ModifyDeploymentSetAttribute", DeploymentSetId=sid, DeploymentSetName="9")
    expect_ecs_error(400, "InvalidParameter.DeploymentSetIds", ecs_any.call, "DescribeDeploymentSets",
                     DeploymentSetIds=[f"ds-{i:020d}" for i in range(101)])
    expect_ecs_error(400, "InvalidParameter", ecs_any.call, "DescribeDeploymentSets", PageSize=51)
    assert one_set(ecs_any, sid)["DeploymentSetId"] == sid


def test_members_and_availability_on_one_host(server, ali_catalog, sets):
    ecs, admin = ecs_client(server, "legacy"), server.admin
    sid = sets(Strategy="Availability")
    [first] = ali_launch(ecs, admin, ali_catalog, DeploymentSetId=sid)
    s = one_set(ecs, sid)
    assert (s["InstanceIds"]["InstanceId"], s["InstanceAmount"]) == ([first.id], 1)
    assert s["Capacities"]["Capacity"] == [{"ZoneId": ali_catalog.zone, "UsedAmount": 1, "AvailableAmount": 19}]
    assert ecs_describe(ecs, first.id)["DeploymentSetId"] == sid
    # The embedded driver is one host per zone: a second member has nowhere to go.
    expect_ecs_error(403, "OperationDenied.NoStock", ali_launch, ecs, admin, ali_catalog, DeploymentSetId=sid)
    expect_ecs_error(403, "DependencyViolation.NotEmpty", ecs.call, "DeleteDeploymentSet", DeploymentSetId=sid)
    ecs.call("DeleteInstance", InstanceId=first.id, Force=True)
    wait_until(lambda: ecs_describe(ecs, first.id) is None, timeout=60)
    assert one_set(ecs, sid)["InstanceAmount"] == 0


def test_soft_strategies_never_refuse(server, ali_catalog, sets):
    ecs, admin = ecs_client(server, "legacy"), server.admin
    for strategy in ("AvailabilityGroup", "LowLatency"):
        sid = sets(Strategy=strategy)
        made = ali_launch(ecs, admin, ali_catalog, amount=2, DeploymentSetId=sid)
        assert sorted(one_set(ecs, sid)["InstanceIds"]["InstanceId"]) == sorted(i.id for i in made)


def test_run_instances_refusals(server, ali_catalog, sets):
    ecs, admin = ecs_client(server, "legacy"), server.admin
    expect_ecs_error(404, "InvalidDeploymentSetId.NotFound", ali_launch, ecs, admin, ali_catalog,
                     DeploymentSetId="ds-00000000000000000000")
    # 21 members of one zone: over the set's limit, refused before anything is created.
    sid = sets(Strategy="LowLatency")
    expect_ecs_error(403, "QuotaExceed.DeploymentSetInstanceQuotaFull", ali_launch, ecs, admin, ali_catalog,
                     amount=21, DeploymentSetId=sid)
    assert one_set(ecs, sid)["InstanceAmount"] == 0
