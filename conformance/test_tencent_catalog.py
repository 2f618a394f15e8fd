"""Catalogue actions: DescribeRegions, DescribeZones, DescribeImages,
DescribeInstanceTypeConfigs (spec §6.6)."""

import re

import pytest

from nubis import REGION, SEED_REGIONS, expect_error

pytestmark = pytest.mark.timeout(60)


def test_describe_regions(cvm):
    resp = cvm.call("DescribeRegions")
    regions = {r["Region"]: r for r in resp["RegionSet"]}
    assert resp["TotalCount"] == len(resp["RegionSet"])
    assert regions[REGION]["RegionState"] == "AVAILABLE"
    assert regions[REGION]["RegionName"]
    assert set(regions) <= SEED_REGIONS, f"regions outside the seeds' list: {set(regions) - SEED_REGIONS}"


def test_describe_zones(cvm):
    resp = cvm.call("DescribeZones")
    zones = resp["ZoneSet"]
    assert zones and resp["TotalCount"] == len(zones)
    for z in zones:
        assert z["Zone"].startswith(REGION + "-"), z
        assert z["ZoneState"] in ("AVAILABLE", "UNAVAILABLE"), z
        assert z["ZoneName"] and re.fullmatch(r"\d+", z["ZoneId"]), z
    assert any(z["ZoneState"] == "AVAILABLE" for z in zones)


# CVM's ImageState values (DescribeImages' Image structure).
IMAGE_STATES = {"CREATING", "NORMAL", "CREATEFAILED", "USING", "SYNCING", "IMPORTING",
                "IMPORTFAILED"}


def test_describe_images_has_linux_and_windows(cvm):
    resp = cvm.call("DescribeImages", Limit=100)
    images = resp["ImageSet"]
    assert resp["TotalCount"] == len(images)
    # The server is shared by the worker's modules: an image another test left behind (a
    # Glance image still queued shows CREATING) is listed too, in one of CVM's states.
    for i in images:
        assert re.fullmatch(r"img-[0-9a-z]{8}", i["ImageId"]), i
        assert i["OsName"] and i["Platform"] and i["ImageState"] in IMAGE_STATES, i
        assert isinstance(i["ImageSize"], int), i
    public = [i for i in images if i["ImageType"] == "PUBLIC_IMAGE"]
    assert public and all(i["ImageState"] == "NORMAL" for i in public), public
    assert any(i["Platform"] == "Windows" and "Windows" in i["OsName"] for i in public)
    assert any(i["Platform"] != "Windows" and "Windows" not in i["OsName"] for i in public)


@pytest.mark.parametrize("windows", [True, False], ids=["windows", "linux"])
def test_describe_images_filter_platform(cvm, windows):
    all_images = cvm.call("DescribeImages", Limit=100)["ImageSet"]
    platform = next(i["Platform"] for i in all_images if (i["Platform"] == "Windows") == windows)
    got = cvm.call("DescribeImages", Filters=[{"Name": "platform", "Values": [platform]}])
    assert got["ImageSet"] and {i["Platform"] for i in got["ImageSet"]} == {platform}
    assert got["TotalCount"] == len([i for i in all_images if i["Platform"] == platform])


def test_describe_images_by_id(cvm, catalog):
    got = cvm.call("DescribeImages", ImageIds=[catalog.linux_image, catalog.windows_image])
    assert sorted(i["ImageId"] for i in got["ImageSet"]) == sorted([catalog.linux_image, catalog.windows_image])
    assert got["TotalCount"] == 2


def test_describe_images_ids_and_filters_together(cvm, catalog):
    expect_error("InvalidParameter.InvalidParameterCoexistImageIdsFilters", cvm.call, "DescribeImages", ImageIds=[catalog.linux_image],
                 Filters=[{"Name": "platform", "Values": ["Windows"]}])


def test_describe_instance_type_configs(cvm, catalog):
    configs = cvm.call("DescribeInstanceTypeConfigs")["InstanceTypeConfigSet"]
    assert configs
    for c in configs:
        assert c["Zone"].startswith(REGION + "-") and c["InstanceType"] and c["InstanceFamily"], c
        assert isinstance(c["CPU"], int) and isinstance(c["Memory"], int), c
        assert c["InstanceType"].startswith(c["InstanceFamily"] + "."), c
    in_zone = cvm.call("DescribeInstanceTypeConfigs",
                       Filters=[{"Name": "zone", "Values": [catalog.zone]}])["InstanceTypeConfigSet"]
    assert in_zone and {c["Zone"] for c in in_zone} == {catalog.zone}
    family = configs[0]["InstanceFamily"]
    of_family = cvm.call("DescribeInstanceTypeConfigs",
                         Filters=[{"Name": "instance-family", "Values": [family]}])["InstanceTypeConfigSet"]
    assert of_family and {c["InstanceFamily"] for c in of_family} == {family}


def test_describe_zone_instance_config_infos(cvm, catalog):
    """Stock per zone, type and charge type (issue 15): no agent hosts here, so every zone runs
    on the embedded driver and sells everything; sold-out rows are in test_agents.py."""
    zone = catalog.zone
    rows = cvm.call("DescribeZoneInstanceConfigInfos", Filters=[
        {"Name": "zone", "Values": [zone]},
        {"Name": "instance-charge-type", "Values": ["POSTPAID_BY_HOUR"]}])["InstanceTypeQuotaSet"]
    types = {c["InstanceType"] for c in cvm.call("DescribeInstanceTypeConfigs", Filters=[
        {"Name": "zone", "Values": [zone]}])["InstanceTypeConfigSet"]}
    assert {r["InstanceType"] for r in rows} == types
    for r in rows:
        assert (r["Zone"], r["InstanceChargeType"], r["Status"]) == (zone, "POSTPAID_BY_HOUR", "SELL"), r
        assert r["Price"]["ChargeUnit"] == "HOUR" and r["Price"]["UnitPrice"] == 0
        assert isinstance(r["Cpu"], int) and isinstance(r["Memory"], int)
    one = cvm.call("DescribeZoneInstanceConfigInfos", Filters=[
        {"Name": "instance-type", "Values": ["S5.MEDIUM4"]}])["InstanceTypeQuotaSet"]
    assert {r["InstanceType"] for r in one} == {"S5.MEDIUM4"}
    assert {r["InstanceChargeType"] for r in one} >= {"POSTPAID_BY_HOUR", "PREPAID", "SPOTPAID"}
    assert next(r for r in one if r["InstanceChargeType"] == "PREPAID")["Price"]["ChargeUnit"] == "MONTH"
    expect_error("InvalidFilter", cvm.call, "DescribeZoneInstanceConfigInfos",
                 Filters=[{"Name": "cpu", "Values": ["2"]}])
    expect_error("InvalidZone.MismatchRegion", cvm.call, "DescribeZoneInstanceConfigInfos",
                 Filters=[{"Name": "zone", "Values": ["ap-nowhere-1"]}])
