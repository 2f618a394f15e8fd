"""Spread placement groups through tencentcloud-sdk-python (docs/placement-groups.md):
Create/Describe/Modify/DeleteDisasterRecoverGroup(s), DescribeDisasterRecoverGroupQuota,
RunInstances `DisasterRecoverGroupIds`, DescribeInstances `DisasterRecoverGroupId`, the
anti-affinity refusal on the embedded driver (one host per zone) and every bad input."""

import re
import secrets

import pytest

from nubis import describe, expect_error, launch, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def groups(cvm):
    """Make groups (`groups(Type=..., ...)` → ID); each is deleted afterwards, its members
    terminated first."""
    made = []

    def make(**params) -> str:
        params.setdefault("Name", f"g-{secrets.token_hex(4)}")
        params.setdefault("Type", "HOST")
        gid = cvm.call("CreateDisasterRecoverGroup", **params)["DisasterRecoverGroupId"]
        made.append(gid)
        return gid

    yield make
    for gid in made:
        got = cvm.call("DescribeDisasterRecoverGroups", DisasterRecoverGroupIds=[gid])
        if not got["DisasterRecoverGroupSet"]:
            continue
        members = got["DisasterRecoverGroupSet"][0]["InstanceIds"]
        if members:
            cvm.call("TerminateInstances", InstanceIds=members)
            for iid in members:
                wait_until(lambda iid=iid: describe(cvm, iid) is None, timeout=60)
        cvm.call("DeleteDisasterRecoverGroups", DisasterRecoverGroupIds=[gid])


def group(cvm, gid) -> dict:
    got = cvm.call("DescribeDisasterRecoverGroups", DisasterRecoverGroupIds=[gid])
    assert got["TotalCount"] == 1, got
    return got["DisasterRecoverGroupSet"][0]


def test_create_describe_modify_delete(cvm):
    name = f"spread-{secrets.token_hex(4)}"
    created = cvm.call("CreateDisasterRecoverGroup", Name=name, Type="RACK")
    gid = created["DisasterRecoverGroupId"]
    assert re.fullmatch(r"ps-[0-9a-z]{8}", gid), created
    assert (created["Type"], created["Name"], created["CvmQuotaTotal"], created["CurrentNum"]) == (
        "RACK", name, 30, 0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created["CreateTime"])
    g = group(cvm, gid)
    assert (g["Name"], g["Type"], g["InstanceIds"], g["Affinity"]) == (name, "RACK", [], 1)
    by_name = cvm.call("DescribeDisasterRecoverGroups", Name=name[:10])
    assert gid in [x["DisasterRecoverGroupId"] for x in by_name["DisasterRecoverGroupSet"]]
    cvm.call("ModifyDisasterRecoverGroupAttribute", DisasterRecoverGroupId=gid, Name="renamed", Affinity=3)
    g = group(cvm, gid)
    assert (g["Name"], g["Affinity"]) == ("renamed", 3)
    # The affinity may only grow.
    expect_error("InvalidParameterValue", cvm.call, "ModifyDisasterRecoverGroupAttribute",
                 DisasterRecoverGroupId=gid, Affinity=2)
    cvm.call("DeleteDisasterRecoverGroups", DisasterRecoverGroupIds=[gid])
    assert cvm.call("DescribeDisasterRecoverGroups", DisasterRecoverGroupIds=[gid])["TotalCount"] == 0
    expect_error("ResourceNotFound.InvalidPlacementSet", cvm.call, "DeleteDisasterRecoverGroups",
                 DisasterRecoverGroupIds=[gid])


def test_client_token_answers_the_same_group(cvm, groups):
    token = secrets.token_hex(8)
    gid = groups(ClientToken=token)
    again = cvm.call("CreateDisasterRecoverGroup", Name="other", Type="SW", ClientToken=token)
    assert again["DisasterRecoverGroupId"] == gid


def test_quota(server_factory):
    # A server of its own: the 10 groups are the account's, whatever API made them, and other
    # modules make groups on the default server at the same time.
    cvm = server_factory("groups-quota").cvm()
    q = cvm.call("DescribeDisasterRecoverGroupQuota")
    assert (q["GroupQuota"], q["CurrentNum"], q["CvmInHostGroupQuota"], q["CvmInSwGroupQuota"],
            q["CvmInRackGroupQuota"]) == (10, 0, 50, 20, 30)
    made = [cvm.call("CreateDisasterRecoverGroup", Name=f"q{n}", Type="HOST")["DisasterRecoverGroupId"]
            for n in range(10)]
    assert cvm.call("DescribeDisasterRecoverGroupQuota")["CurrentNum"] == 10
    expect_error("LimitExceeded.DisasterRecoverGroup", cvm.call, "CreateDisasterRecoverGroup",
                 Name="one-too-many", Type="HOST")
    page = cvm.call("DescribeDisasterRecoverGroups", Offset=8, Limit=5)
    assert page["TotalCount"] == 10 and len(page["DisasterRecoverGroupSet"]) == 2
    cvm.call("DeleteDisasterRecoverGroups", DisasterRecoverGroupIds=made)
    assert cvm.call("DescribeDisasterRecoverGroupQuota")["CurrentNum"] == 0


@pytest.mark.parametrize("params, code", [
    ({"Type": "HOST"}, "MissingParameter"),
    ({"Name": "x"}, "MissingParameter"),
    ({"Name": "", "Type": "HOST"}, "InvalidParameterValue"),
    ({"Name": "n" * 61, "Type": "HOST"}, "InvalidParameterValue.TooLong"),
    ({"Name": "x", "Type": "HOSTS"}, "InvalidParameterValue"),
    ({"Name": "x", "Type": "HOST", "Affinity": 0}, "InvalidParameterValue.Range"),
    ({"Name": "x", "Type": "HOST", "Affinity": 11}, "InvalidParameterValue.Range"),
    ({"Name": "x", "Type": "HOST", "Strategy": "PARTITION"}, "InvalidParameterValue"),
    ({"Name": "x", "Type": "HOST", "PartitionCount": 2}, "InvalidParameter"),
    ({"Name": "x", "Type": "HOST", "ClientToken": "t" * 65}, "InvalidClientToken.TooLong"),
    ({"Name": "x", "Type": "HOST", "Bogus": 1}, "UnknownParameter"),
], ids=["no-name", "no-type", "empty-name", "long-name", "bad-type", "affinity-0", "affinity-11",
        "partition", "partition-count", "long-token", "unknown"])
def test_create_refusals(cvm, params, code):
    expect_error(code, cvm.raw, "CreateDisasterRecoverGroup", params)


def test_id_refusals(cvm, groups):
    gid = groups()
    expect_error("InvalidParameterValue.DisasterRecoverGroupIdMalformed", cvm.call,
                 "DescribeDisasterRecoverGroups", DisasterRecoverGroupIds=["ps-BAD"])
    expect_error("InvalidParameterValue.DisasterRecoverGroupIdMalformed", cvm.call,
                 "DeleteDisasterRecoverGroups", DisasterRecoverGroupIds=["dg-12345678"])
    expect_error("InvalidParameterValue.LimitExceeded", cvm.call, "DescribeDisasterRecoverGroups",
                 DisasterRecoverGroupIds=[f"ps-{i:08d}" for i in range(11)])
    expect_error("InvalidParameterValue.LimitExceeded", cvm.call, "DeleteDisasterRecoverGroups",
                 DisasterRecoverGroupIds=[f"ps-{i:08d}" for i in range(11)])
    expect_error("MissingParameter", cvm.call, "DeleteDisasterRecoverGroups", DisasterRecoverGroupIds=[])
    # All or nothing: an unknown ID beside a real one deletes neither.
    expect_error("ResourceNotFound.InvalidPlacementSet", cvm.call, "DeleteDisasterRecoverGroups",
                 DisasterRecoverGroupIds=[gid, "ps-00000000"])
    assert group(cvm, gid)["DisasterRecoverGroupId"] == gid
    expect_error("ResourceNotFound.InvalidPlacementSet", cvm.call, "ModifyDisasterRecoverGroupAttribute",
                 DisasterRecoverGroupId="ps-00000000", Name="x")
    expect_error("MissingParameter", cvm.call, "ModifyDisasterRecoverGroupAttribute", Name="x")
    expect_error("InvalidParameterValue.Range", cvm.call, "ModifyDisasterRecoverGroupAttribute",
                 DisasterRecoverGroupId=gid, Affinity=11)
    expect_error("InvalidParameterValue", cvm.call, "DescribeDisasterRecoverGroups", Limit=101)
    expect_error("InvalidFilter", cvm.call, "DescribeDisasterRecoverGroups",
                 Filters=[{"Name": "zone", "Values": ["x"]}])


def test_members_and_anti_affinity_on_one_host(cvm, catalog, groups):
    gid = groups(Type="HOST")
    [first] = launch(cvm, catalog, DisasterRecoverGroupIds=[gid])
    g = group(cvm, gid)
    assert (g["InstanceIds"], g["CurrentNum"]) == ([first.id], 1)
    assert describe(cvm, first.id)["DisasterRecoverGroupId"] == gid
    # The embedded driver is one host per zone: a second member has nowhere to go.
    before = cvm.call("DescribeInstances", Limit=1)["TotalCount"]
    expect_error("ResourceInsufficient.SpecifiedInstanceType", launch, cvm, catalog,
                 DisasterRecoverGroupIds=[gid])
    assert cvm.call("DescribeInstances", Limit=1)["TotalCount"] == before
    # Not empty: not deleted.
    expect_error("FailedOperation.PlacementSetNotEmpty", cvm.call, "DeleteDisasterRecoverGroups",
                 DisasterRecoverGroupIds=[gid])
    # A terminated member leaves the group.
    cvm.call("TerminateInstances", InstanceIds=[first.id])
    wait_until(lambda: describe(cvm, first.id) is None, timeout=60)
    assert group(cvm, gid)["InstanceIds"] == []
    cvm.call("DeleteDisasterRecoverGroups", DisasterRecoverGroupIds=[gid])


def test_affinity_allows_as_many_per_host(cvm, catalog, groups):
    gid = groups(Type="SW", Affinity=2)
    made = launch(cvm, catalog, count=2, DisasterRecoverGroupIds=[gid])
    assert sorted(group(cvm, gid)["InstanceIds"]) == sorted(i.id for i in made)
    expect_error("ResourceInsufficient.SpecifiedInstanceType", launch, cvm, catalog,
                 DisasterRecoverGroupIds=[gid])


def test_run_instances_refusals(cvm, catalog, groups):
    gid = groups()
    expect_error("InvalidParameterValue.LimitExceeded", launch, cvm, catalog,
                 DisasterRecoverGroupIds=[gid, groups()])
    expect_error("ResourceNotFound.InvalidPlacementSet", launch, cvm, catalog,
                 DisasterRecoverGroupIds=["ps-00000000"])
    expect_error("InvalidParameterValue.DisasterRecoverGroupIdMalformed", launch, cvm, catalog,
                 DisasterRecoverGroupIds=["nope"])
    # More members than the group holds: refused before anything is created.
    expect_error("ResourceInsufficient.DisasterRecoverGroupCvmQuota", launch, cvm, catalog,
                 count=21, DisasterRecoverGroupIds=[groups(Type="SW")])
    assert group(cvm, gid)["InstanceIds"] == []
