"""Documented parameter limits through the official SDKs (issue 10, "input ranges"): each
limit answers the cloud's exact code (and HTTP status on Alibaba), a refused RunInstances /
CreateInstance creates nothing, a ClientToken whose instances were deleted launches anew, and
Alibaba's Format=XML stays parseable whatever characters a stored name holds.
docs/parameter-limits.md lists every limit, its source and its code."""

import uuid
import xml.etree.ElementTree as ET

import pytest

from nubis import (
    ecs_describe,
    ecs_wait_settled,
    ecs_wait_status,
    expect_ecs_error,
    expect_error,
    new_password,
    unique_name,
    wait_settled,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)

# Over every limit, but short enough for a query string (the in-process Rust tests send
# 10,000-character values and 5,000 disks).
LONG = "a" * 1000


def marker() -> tuple[str, str]:
    return "nubis-case", uuid.uuid4().hex


# --------------------------------------------------------------------------------------
# Tencent CVM


def cvm_tagged(cvm, tag) -> int:
    got = cvm.call("DescribeInstances", Filters=[{"Name": f"tag:{tag[0]}", "Values": [tag[1]]}])
    return got["TotalCount"]


def cloud(n: int, size: int, ty: str = "CLOUD_PREMIUM") -> list[dict]:
    return [{"DiskSize": size, "DiskType": ty}] * n


TENCENT_CASES = [
    # The findings.
    ({"DataDisks": [{"DiskSize": -1}]}, "InvalidParameterValue.Range"),
    ({"DataDisks": [{"DiskSize": 10**12}]}, "InvalidParameterValue.Range"),
    ({"SystemDisk": {"DiskSize": -1}}, "InvalidParameterValue.Range"),
    ({"DataDisks": cloud(5000, 50)}, "InvalidParameterValue.LimitExceeded"),
    ({"InstanceName": "x" * 10_000}, "InvalidInstanceName.TooLong"),
    ({"HostName": "h" * 10_000}, "InvalidParameter.HostNameIllegal"),
    ({"ClientToken": "t" * 10_000}, "InvalidClientToken.TooLong"),
    ({"InstanceName": "web\x1b[2J\x00"}, "InvalidParameterValue"),
    # Boundaries.
    ({"DataDisks": cloud(21, 50)}, "InvalidParameterValue.LimitExceeded"),
    ({"DataDisks": cloud(1, 9)}, "InvalidParameterValue.Range"),
    ({"DataDisks": cloud(1, 19, "CLOUD_SSD")}, "InvalidParameterValue.Range"),
    ({"DataDisks": cloud(1, 32001)}, "InvalidParameterValue.Range"),
    ({"DataDisks": cloud(1, 50, "LOCAL_SSD")}, "InvalidParameter.LocalDataDiskNotSupport"),
    ({"SystemDisk": {"DiskSize": 19}}, "InvalidParameterValue.Range"),
    ({"SystemDisk": {"DiskSize": 1025}}, "InvalidParameterValue.Range"),
    ({"InstanceCount": 501}, "InvalidParameterValue.Range"),
    ({"InstanceName": "n" * 129}, "InvalidInstanceName.TooLong"),
    ({"HostName": "h" * 61}, "InvalidParameter.HostNameIllegal"),
    ({"HostName": "web..1"}, "InvalidParameter.HostNameIllegal"),
    ({"ClientToken": "t" * 65}, "InvalidClientToken.TooLong"),
]


@pytest.mark.parametrize("extra,code", TENCENT_CASES,
                         ids=[f"{i}-{c}" for i, (_, c) in enumerate(TENCENT_CASES)])
def test_tencent_limits(cvm, catalog, extra, code):
    tag = marker()
    params = dict(Placement={"Zone": catalog.zone}, ImageId=catalog.linux_image,
                  LoginSettings={"Password": new_password()},
                  TagSpecification=[{"ResourceType": "instance", "Tags": [{"Key": tag[0], "Value": tag[1]}]}])
    params.update(extra)
    expect_error(code, cvm.call, "RunInstances", **params)
    assert cvm_tagged(cvm, tag) == 0, "a refused RunInstances created an instance"


def test_tencent_limits_themselves_are_accepted(cvm, catalog):
    tag = marker()
    resp = cvm.call("RunInstances", Placement={"Zone": catalog.zone}, ImageId=catalog.linux_image,
                    LoginSettings={"Password": new_password()}, InstanceName="n" * 128,
                    HostName="h" * 60, ClientToken=uuid.uuid4().hex + "t" * 32,
                    SystemDisk={"DiskSize": 1024},
                    DataDisks=cloud(1, 10) + cloud(19, 32000, "CLOUD_SSD"),
                    TagSpecification=[{"ResourceType": "instance", "Tags": [{"Key": tag[0], "Value": tag[1]}]}])
    assert len(resp["InstanceIdSet"]) == 1
    iid = resp["InstanceIdSet"][0]
    inst = wait_settled(cvm, iid, "RUNNING")
    assert inst["InstanceName"] == "n" * 128
    assert len(inst["DataDisks"]) == 20
    cvm.call("TerminateInstances", InstanceIds=[iid])


def test_tencent_token_of_deleted_instance_launches_anew(cvm, catalog):
    """Regression: the same ClientToken after its instance was terminated answered an empty
    InstanceIdSet."""
    token = uuid.uuid4().hex
    params = dict(Placement={"Zone": catalog.zone}, ImageId=catalog.linux_image,
                  LoginSettings={"Password": new_password()}, InstanceName=unique_name("tok"),
                  ClientToken=token)
    first = cvm.call("RunInstances", **params)["InstanceIdSet"]
    assert cvm.call("RunInstances", **params)["InstanceIdSet"] == first
    wait_settled(cvm, first[0], "RUNNING")
    cvm.call("TerminateInstances", InstanceIds=first)
    wait_until(lambda: cvm.call("DescribeInstances", InstanceIds=first)["TotalCount"] == 0, 60, 0.1,
               f"{first[0]} to disappear")
    again = cvm.call("RunInstances", **params)["InstanceIdSet"]
    assert len(again) == 1 and again != first
    wait_settled(cvm, again[0], "RUNNING")
    cvm.call("TerminateInstances", InstanceIds=again)


# --------------------------------------------------------------------------------------
# Alibaba ECS (both SDK generations)


def ecs_tagged(ecs, tag) -> int:
    return ecs.call("DescribeInstances", Tag=[{"Key": tag[0], "Value": tag[1]}])["TotalCount"]


ALIBABA_CASES = [
    # The findings.
    ({"DataDisk": [{"Size": -1}]}, 400, "InvalidDataDiskSize.ValueNotSupported"),
    ({"DataDisk": [{"Size": 10**12}]}, 400, "InvalidDataDiskSize.ValueNotSupported"),
    ({"DataDisk": [{"Size": 40}] * 17}, 400, "InstanceDiskNumber.LimitExceed"),
    ({"InstanceName": LONG}, 400, "InvalidInstanceName.Malformed"),
    ({"HostName": LONG}, 400, "InvalidHostName.Malformed"),
    ({"ClientToken": LONG}, 400, "InvalidClientToken.ValueNotSupported"),
    ({"InstanceName": "web\x1b[2J\x07"}, 400, "InvalidInstanceName.Malformed"),
    # Boundaries.
    ({"InstanceName": "a"}, 400, "InvalidInstanceName.Malformed"),
    ({"InstanceName": "a" * 129}, 400, "InvalidInstanceName.Malformed"),
    ({"InstanceName": "1web"}, 400, "InvalidInstanceName.Malformed"),
    ({"HostName": "h" * 65}, 400, "InvalidHostName.Malformed"),
    ({"HostName": "-web"}, 400, "InvalidHostName.Malformed"),
    ({"ClientToken": "t" * 65}, 400, "InvalidClientToken.ValueNotSupported"),
    ({"Description": "https://example.com"}, 400, "InvalidDescription.Malformed"),
    ({"DataDisk": [{"Size": 4, "Category": "cloud"}]}, 400, "InvalidDataDiskSize.ValueNotSupported"),
    ({"DataDisk": [{"Size": 2001, "Category": "cloud"}]}, 400, "InvalidDataDiskSize.ValueNotSupported"),
    ({"DataDisk": [{"Size": 19, "Category": "cloud_ssd"}]}, 400, "InvalidDataDiskSize.ValueNotSupported"),
    ({"DataDisk": [{"Size": 40, "Category": "floppy"}]}, 400, "InvalidDataDiskCategory.ValueNotSupported"),
    ({"SystemDisk": {"Size": 19}}, 404, "InvalidSystemDiskSize.LessThanMinSize"),
    ({"SystemDisk": {"Size": 2049}}, 404, "InvalidSystemDiskSize.MoreThanMaxSize"),
    ({"SystemDisk": {"Category": "tape"}}, 400, "InvalidSystemDiskCategory.ValueNotSupported"),
    ({"Amount": 101}, 400, "InvalidParameter"),
    ({"InternetMaxBandwidthOut": 101}, 400, "InvalidInternetMaxBandwidthOut.Malformed"),
]


ALIBABA_PARAMS = [
    pytest.param(action, extra, status, code, id=f"{action}-{i}-{code}")
    for action in ("RunInstances", "CreateInstance")
    for i, (extra, status, code) in enumerate(ALIBABA_CASES)
    if not (action == "CreateInstance" and "Amount" in extra)  # CreateInstance has no Amount
]


@pytest.mark.parametrize("action,extra,status,code", ALIBABA_PARAMS)
def test_alibaba_limits(ecs_any, ali_catalog, action, extra, status, code):
    tag = marker()
    params = dict(ZoneId=ali_catalog.zone, ImageId=ali_catalog.linux_image,
                  InstanceType=ali_catalog.instance_type, Password=new_password(),
                  Tag=[{"Key": tag[0], "Value": tag[1]}])
    params.update(extra)
    err = expect_ecs_error(status, code, ecs_any.call, action, **params)
    assert err.message, err
    assert ecs_tagged(ecs_any, tag) == 0, "a refused request created an instance"


def test_alibaba_tag_limits(ecs_any, ali_catalog):
    base = dict(ZoneId=ali_catalog.zone, ImageId=ali_catalog.linux_image,
                InstanceType=ali_catalog.instance_type, Password=new_password())
    tags = [{"Key": f"k{n}", "Value": "v"} for n in range(21)]
    expect_ecs_error(400, "InvalidTagCount", ecs_any.call, "RunInstances", Tag=tags, **base)
    expect_ecs_error(400, "InvalidTagKey.Malformed", ecs_any.call, "RunInstances",
                     Tag=[{"Key": "acs:x", "Value": "v"}], **base)
    expect_ecs_error(400, "InvalidTagValue.Malformed", ecs_any.call, "RunInstances",
                     Tag=[{"Key": "k", "Value": "v" * 129}], **base)


def test_alibaba_modify_refuses_and_changes_nothing(ecs_any, ali_stopped):
    iid = ali_stopped.id
    before = ecs_describe(ecs_any, iid)
    for params, code in [
        ({"InstanceName": LONG}, "InvalidInstanceName.Malformed"),
        ({"HostName": "a_b"}, "InvalidHostName.Malformed"),
        ({"Description": "http://x"}, "InvalidDescription.Malformed"),
    ]:
        expect_ecs_error(400, code, ecs_any.call, "ModifyInstanceAttribute", InstanceId=iid,
                         Password=new_password(), **params)
    after = ecs_describe(ecs_any, iid)
    for k in ("InstanceName", "HostName", "Description", "Status"):
        assert after[k] == before[k], k


def test_alibaba_token_of_deleted_instance_creates_anew(ecs, admin, ali_catalog):
    """Regression: CreateInstance with the ClientToken of a deleted instance crashed the
    handler (index into an empty list)."""
    token = uuid.uuid4().hex
    params = dict(ZoneId=ali_catalog.zone, ImageId=ali_catalog.linux_image,
                  InstanceType=ali_catalog.instance_type, Password=new_password(),
                  InstanceName=unique_name("tok"), ClientToken=token)
    first = ecs.call("CreateInstance", **params)["InstanceId"]
    assert ecs.call("CreateInstance", **params)["InstanceId"] == first
    ecs_wait_settled(ecs, admin, first, "Stopped")
    ecs.call("DeleteInstance", InstanceId=first)
    ecs_wait_status(ecs, first, None, 60)
    again = ecs.call("CreateInstance", **params)["InstanceId"]
    assert again != first
    ran = ecs.call("RunInstances", Amount=1, **params)["InstanceIdSets"]["InstanceIdSet"]
    assert ran == [again], "the live token answers the instance it launched"
    ecs_wait_settled(ecs, admin, again, "Stopped")
    ecs.call("DeleteInstance", InstanceId=again)


def test_alibaba_xml_survives_any_name(cvm, catalog, ecs):
    """A Tencent InstanceName may hold any printable character; Alibaba's XML form of that
    instance must still parse and give the name back."""
    name = "a<b>&\"'c]]>\u00e9\u4e2d\U0001F600 x"
    iid = cvm.call("RunInstances", Placement={"Zone": catalog.zone}, ImageId=catalog.linux_image,
                   LoginSettings={"Password": new_password()}, InstanceName=name)["InstanceIdSet"][0]
    wait_settled(cvm, iid, "RUNNING")
    status, _headers, body = ecs.raw("DescribeInstances", accept_format="XML", PageSize=100)
    assert status == 200, body
    root = ET.fromstring(body)
    names = [e.text for e in root.iter("InstanceName")]
    assert name in names
    # An error answer in XML is well-formed too.
    status, _headers, body = ecs.raw("DescribeInstances", accept_format="XML", PageSize=1000)
    assert status == 400
    assert ET.fromstring(body).findtext("Code") == "InvalidParameter"
    cvm.call("TerminateInstances", InstanceIds=[iid])
