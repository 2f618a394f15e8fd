"""Alibaba catalogue actions (spec §6): DescribeRegions, DescribeZones, DescribeImages,
DescribeInstanceTypes — the same fleet catalogue as Tencent's, spelled the Alibaba way,
through both official client generations."""

import pytest

from nubis import ALI_EXPECTED_INSTANCE_TYPE, ALI_EXPECTED_ZONE, ALI_REGION

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
