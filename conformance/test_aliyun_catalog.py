"""Alibaba catalogue actions (spec §6): DescribeRegions, DescribeZones, DescribeImages,
DescribeInstanceTypes — the same fleet catalogue as Tencent's, spelled the Alibaba way,
through both official client generations."""

import pytest

from nubis import ALI_EXPECTED_INSTANCE_TYPE, ALI_EXPECTED_ZONE, ALI_REGION, expect_ecs_error

pytestmark = pytest.mark.timeout(60)

LINUX_IMAGE = "img-tos31x64"
WINDOWS_IMAGE = "img-win22x64"


def test_describe_regions(ecs_any):
    regions = {r["RegionId"]: r for r in ecs_any.call("DescribeRegions")["Regions"]["Region"]}
    assert ALI_REGION in regions, regions
    r = regions[ALI_REGION]
    assert r["LocalName"] and r["RegionEndpoint"] and r["Status"] == "available", r


def test_describe_zones(ecs_any, ali_catalog):
    resp = ecs_any.call("DescribeZones")
    zones = {z["ZoneId"]: z for z in resp["Zones"]["Zone"]}
    assert ALI_EXPECTED_ZONE in zones, sorted(zones)
    for zid, z in zones.items():
        assert zid.startswith(ALI_REGION + "-"), z
        assert z["LocalName"], z
    # Verbose (default true): what can be created where, in the {Plural: {Singular: [...]}} shape.
    available = zones[ali_catalog.zone]["AvailableInstanceTypes"]["InstanceTypes"]
    assert ali_catalog.instance_type in available, available


def test_describe_images_by_os_type(ecs_any):
    for os_type, image in (("linux", LINUX_IMAGE), ("windows", WINDOWS_IMAGE)):
        resp = ecs_any.call("DescribeImages", OSType=os_type, PageSize=100)
        images = {i["ImageId"]: i for i in resp["Images"]["Image"]}
        assert image in images, (os_type, sorted(images))
        assert resp["TotalCount"] == len(images)
        for i in images.values():
            assert i["OSType"] == os_type, i
            assert i["OSName"] and i["ImageName"] and i["Status"] == "Available", i
        assert images[image]["ImageOwnerAlias"] == "system"
    # The internal rescue image is never listed.
    everything = ecs_any.call("DescribeImages", PageSize=100)["Images"]["Image"]
    assert not [i for i in everything if "rescue" in i["ImageId"]], everything


def test_describe_images_by_ids(ecs_any):
    resp = ecs_any.call("DescribeImages", ImageId=f"{LINUX_IMAGE},{WINDOWS_IMAGE}")
    assert sorted(i["ImageId"] for i in resp["Images"]["Image"]) == sorted([LINUX_IMAGE, WINDOWS_IMAGE])
    assert resp["TotalCount"] == 2


def test_describe_instance_types(ecs_any):
    types = {t["InstanceTypeId"]: t for t in ecs_any.call("DescribeInstanceTypes")["InstanceTypes"]["InstanceType"]}
    assert ALI_EXPECTED_INSTANCE_TYPE in types, sorted(types)
    t = types[ALI_EXPECTED_INSTANCE_TYPE]
    assert t["InstanceTypeFamily"] == "ecs.s5", t
    assert t["CpuCoreCount"] == 2 and t["MemorySize"] == 4, t  # MemorySize is GiB
    for name, t in types.items():
        assert name.startswith("ecs.") and t["InstanceTypeFamily"] and name.startswith(t["InstanceTypeFamily"] + "."), t


def test_describe_available_resource(ecs_any, ali_catalog):
    """Stock per zone (issue 15): no agent hosts, so every zone runs on the embedded driver and
    has everything; sold-out answers are in test_agents.py."""
    resp = ecs_any.call("DescribeAvailableResource", DestinationResource="InstanceType",
                        InstanceType=ali_catalog.instance_type)
    zones = {z["ZoneId"]: z for z in resp["AvailableZones"]["AvailableZone"]}
    assert ali_catalog.zone in zones, sorted(zones)
    z = zones[ali_catalog.zone]
    assert (z["RegionId"], z["Status"], z["StatusCategory"]) == (ALI_REGION, "Available", "WithStock")
    (res,) = z["AvailableResources"]["AvailableResource"]
    assert res["Type"] == "InstanceType"
    assert [s["Value"] for s in res["SupportedResources"]["SupportedResource"]] == [ali_catalog.instance_type]
    by_zone = ecs_any.call("DescribeAvailableResource", DestinationResource="Zone", ZoneId=ali_catalog.zone)
    (only,) = by_zone["AvailableZones"]["AvailableZone"]
    assert only["ZoneId"] == ali_catalog.zone
    disks = ecs_any.call("DescribeAvailableResource", DestinationResource="SystemDisk",
                         ZoneId=ali_catalog.zone)["AvailableZones"]["AvailableZone"][0]
    essd = next(s for s in disks["AvailableResources"]["AvailableResource"][0]["SupportedResources"]["SupportedResource"]
                if s["Value"] == "cloud_essd")
    assert (essd["Min"], essd["Max"], essd["Unit"]) == (20, 2048, "GiB")
    # By vCPUs and memory instead of a type.
    two = ecs_any.call("DescribeAvailableResource", DestinationResource="InstanceType", Cores=2, Memory=4,
                       ZoneId=ali_catalog.zone)["AvailableZones"]["AvailableZone"][0]
    values = [s["Value"] for s in two["AvailableResources"]["AvailableResource"][0]["SupportedResources"]["SupportedResource"]]
    assert ali_catalog.instance_type in values


@pytest.mark.parametrize("params,status,code", [
    ({}, 400, "Invalid.Param"),
    ({"DestinationResource": "Gpu"}, 404, "Invalid.DestinationResource"),
    ({"DestinationResource": "Zone", "InstanceChargeType": "Monthly"}, 400, "Invalid.InstanceChargeType"),
    ({"DestinationResource": "Zone", "ResourceType": "vm"}, 404, "Invalid.ResourceType"),
    ({"DestinationResource": "Zone", "IoOptimized": "maybe"}, 404, "Invalid.IoOptimized"),
    ({"DestinationResource": "Zone", "NetworkCategory": "lan"}, 404, "Invalid.NetworkCategory"),
    ({"DestinationResource": "InstanceType", "InstanceType": "ecs.nope.large"}, 404, "InvalidResourceId.NotFound"),
    ({"DestinationResource": "InstanceType", "InstanceType": "ecs.s5.medium4", "Cores": "2"}, 403,
     "InvalidParam.TypeAndCpuMem.Conflict"),
    ({"DestinationResource": "InstanceType", "Cores": "two"}, 400, "InvalidParameter"),
])
def test_describe_available_resource_refusals(ecs, params, status, code):
    expect_ecs_error(status, code, ecs.call, "DescribeAvailableResource", **params)
