"""Issue 15: images made from instances, through the official clients of each dialect
(docs/images.md "Images from instances").

- Tencent CreateImage (tencentcloud-sdk-python): from a running instance live or with
  ForcePoweroff, from a stopped one; DescribeImages shows it PRIVATE_IMAGE, CREATING then
  NORMAL, USING once an instance runs it; a new instance boots from it.
- Alibaba CreateImage (both official client generations): ClientToken, DryRun; DescribeImages
  with ImageOwnerAlias=self; a new instance boots from it.
- The rest of the life of such an image: Tencent ModifyImageAttribute / DeleteImages and
  Alibaba ModifyImageAttribute / DeleteImage (Force), in use and not, with their refusals.
- Nova createImage (openstacksdk / raw microversions): 202 with Location before 2.45,
  {"image_id"} from 2.45; the server's task_state while it runs; a server boots from it.

Every refusal is answered with the cloud's own code and envelope."""

from __future__ import annotations

import pytest

from nubis import (
    describe,
    expect_ecs_error,
    expect_error,
    latest,
    malformed_instance_id_code,
    unique_name,
    wait_settled,
    wait_until,
)
from test_openstack_support import (  # noqa: F401 (fixtures)
    FLAVOR,
    conn,
    fault_of,
    os_server,
    raw,
    wait_status,
)

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


# -- Tencent -----------------------------------------------------------------------------


def tc_image(cvm, image_id) -> dict | None:
    got = cvm.call("DescribeImages", ImageIds=[image_id])["ImageSet"]
    return got[0] if got else None


def tc_wait_image(cvm, image_id, state="NORMAL", timeout=30) -> dict:
    return wait_until(lambda: (i := tc_image(cvm, image_id)) and i["ImageState"] == state and i,
                      timeout, 0.05, f"image {image_id} {state}")


def tc_boot(cvm, catalog, image_id) -> str:
    r = cvm.call("RunInstances", Placement={"Zone": catalog.zone}, ImageId=image_id,
                 InstanceName=unique_name("fromimg"), LoginSettings={"Password": "Nubis-Img-12345"})
    iid = r["InstanceIdSet"][0]
    wait_settled(cvm, iid, "RUNNING")
    return iid


def test_tencent_image_of_a_running_instance_boots(cvm, admin, catalog, running):
    power_events = len(admin.guest(running.id)["restarts"])
    name = unique_name("img")[:60]
    r = cvm.call("CreateImage", InstanceId=running.id, ImageName=name, ImageDescription="from a test")
    image_id, rid = r["ImageId"], r["RequestId"]
    assert image_id.startswith("img-")
    # Made live: the instance keeps running, its operation is CreateImage.
    inst = wait_settled(cvm, running.id, "RUNNING", rid)
    assert (inst["LatestOperation"], inst["LatestOperationState"]) == ("CreateImage", "SUCCESS")
    assert len(admin.guest(running.id)["restarts"]) == power_events
    img = tc_wait_image(cvm, image_id)
    assert (img["ImageName"], img["ImageDescription"], img["ImageType"], img["ImageSource"]) == (
        name, "from a test", "PRIVATE_IMAGE", "CREATE_IMAGE")
    assert img["OsName"] == inst["OsName"] and img["SnapshotSet"] == []
    assert img["ImageSize"] >= inst["SystemDisk"]["DiskSize"]
    # A new instance boots from it; the image is then in use.
    new = tc_boot(cvm, catalog, image_id)
    assert describe(cvm, new)["ImageId"] == image_id
    assert tc_image(cvm, image_id)["ImageState"] == "USING"
    # The type filters: private lists it, public does not.
    private = cvm.call("DescribeImages", Filters=[{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}])
    assert image_id in [i["ImageId"] for i in private["ImageSet"]]
    public = cvm.call("DescribeImages", Filters=[{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}])
    assert image_id not in [i["ImageId"] for i in public["ImageSet"]]
    assert all(i["ImageType"] == "PUBLIC_IMAGE" for i in public["ImageSet"])
    cvm.call("TerminateInstances", InstanceIds=[new])


def test_tencent_force_poweroff_stops_copies_and_starts(cvm, admin, running):
    power_events = len(admin.guest(running.id)["restarts"])
    r = cvm.call("CreateImage", InstanceId=running.id, ImageName=unique_name("fp")[:60], ForcePoweroff="true")
    inst = wait_settled(cvm, running.id, "RUNNING", r["RequestId"])
    assert inst["LatestOperation"] == "CreateImage"
    assert len(admin.guest(running.id)["restarts"]) > power_events
    tc_wait_image(cvm, r["ImageId"])


def test_tencent_image_of_a_stopped_instance(cvm, stopped):
    r = cvm.call("CreateImage", InstanceId=stopped.id, ImageName=unique_name("st")[:60],
                 ImageFamily="fam-a", TagSpecification=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]}])
    wait_settled(cvm, stopped.id, "STOPPED", r["RequestId"])
    img = tc_wait_image(cvm, r["ImageId"])
    assert img["ImageFamily"] == "fam-a"
    assert img["Tags"] == [{"Key": "k", "Value": "v"}]
    got = cvm.call("DescribeImages", Filters=[{"Name": "tag:k", "Values": ["v"]}])["ImageSet"]
    assert r["ImageId"] in [i["ImageId"] for i in got]


def test_tencent_refusals(cvm, stopped):
    iid = stopped.id
    before = latest(cvm, iid)
    count = cvm.call("DescribeImages", Filters=[{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}])["TotalCount"]
    expect_error("MissingParameter", cvm.call, "CreateImage", InstanceId=iid)
    expect_error("MissingParameter", cvm.call, "CreateImage", ImageName="x")
    expect_error("InvalidParameterValue.TooLong", cvm.call, "CreateImage", InstanceId=iid, ImageName="n" * 61)
    expect_error("InvalidParameterValue.TooLong", cvm.call, "CreateImage", InstanceId=iid, ImageName="n",
                 ImageDescription="d" * 257)
    expect_error("InvalidParameterValue", cvm.call, "CreateImage", InstanceId=iid, ImageName="n",
                 ForcePoweroff="maybe")
    expect_error("InvalidParameter", cvm.call, "CreateImage", InstanceId=iid, ImageName="n",
                 SnapshotIds=["snap-12345678"])
    expect_error("InvalidSnapshotId.NotFound", cvm.call, "CreateImage", ImageName="n", SnapshotIds=["snap-12345678"])
    expect_error("InvalidParameterValue", cvm.call, "CreateImage", InstanceId=iid, ImageName="n",
                 DataDiskIds=["disk-00000000"])
    expect_error("InvalidInstanceId.NotFound", cvm.call, "CreateImage", InstanceId="ins-00000000", ImageName="n")
    expect_error(malformed_instance_id_code("nope"), cvm.call, "CreateImage", InstanceId="nope", ImageName="n")
    expect_error("UnknownParameter", cvm.raw, "CreateImage", {"InstanceId": iid, "ImageName": "n", "Bogus": 1})
    expect_error("DryRunOperation", cvm.call, "CreateImage", InstanceId=iid, ImageName="n", DryRun=True)
    assert latest(cvm, iid) == before
    after = cvm.call("DescribeImages", Filters=[{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}])["TotalCount"]
    assert after == count
    # Names are unique per account.
    name = unique_name("dup")[:60]
    r = cvm.call("CreateImage", InstanceId=iid, ImageName=name)
    expect_error("InvalidImageName.Duplicate", cvm.call, "CreateImage", InstanceId=iid, ImageName=name)
    wait_settled(cvm, iid, "STOPPED", r["RequestId"])


def test_tencent_image_of_a_stopping_instance_is_refused(slow_cvm, slow_make_instance):
    inst = slow_make_instance()
    rid = slow_cvm.call("StopInstances", InstanceIds=[inst.id])["RequestId"]
    expect_error(("UnsupportedOperation.InstanceStateStopping", "OperationDenied.InstanceOperationInProgress"),
                 slow_cvm.call, "CreateImage", InstanceId=inst.id, ImageName=unique_name("x")[:60])
    wait_settled(slow_cvm, inst.id, "STOPPED", rid)


def test_tencent_describe_images_bad_input(cvm):
    expect_error("InvalidFilter", cvm.call, "DescribeImages", Filters=[{"Name": "nope", "Values": ["x"]}])
    expect_error("InvalidImageId.Malformed", cvm.call, "DescribeImages", ImageIds=["m-123"])
    expect_error("InvalidParameter.InvalidParameterCoexistImageIdsFilters", cvm.call, "DescribeImages",
                 ImageIds=["img-00000000"], Filters=[{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}])
    assert cvm.call("DescribeImages", ImageIds=["img-00000000"])["TotalCount"] == 0


# -- Alibaba -----------------------------------------------------------------------------


def ali_image(ecs, image_id, status="Creating,Available,CreateFailed") -> dict | None:
    got = ecs.call("DescribeImages", ImageId=image_id, ImageOwnerAlias="self", Status=status)["Images"]["Image"]
    return got[0] if got else None


@pytest.mark.parametrize("client", ["ecs", "ecs_tea"])
def test_aliyun_image_of_an_instance_boots(request, client, server, ali_catalog, ali_running):
    ecs = request.getfixturevalue(client)
    name = "img" + unique_name("a").replace("-", "")[:30]
    token = unique_name("tok")
    r = ecs.call("CreateImage", InstanceId=ali_running.id, ImageName=name, Description="from a test",
                 ClientToken=token)
    image_id = r["ImageId"]
    # The same ClientToken answers the same image.
    assert ecs.call("CreateImage", InstanceId=ali_running.id, ImageName=name, ClientToken=token)["ImageId"] == image_id
    img = wait_until(lambda: (i := ali_image(ecs, image_id)) and i["Status"] == "Available" and i, 30, 0.05,
                     "Available")
    assert (img["ImageName"], img["Description"], img["ImageOwnerAlias"], img["IsPublic"]) == (
        name, "from a test", "self", False)
    # Listed to its owner (self), not among the system images; Available by default.
    own = ecs.call("DescribeImages", ImageOwnerAlias="self", PageSize=100)["Images"]["Image"]
    assert image_id in [i["ImageId"] for i in own]
    system = ecs.call("DescribeImages", ImageOwnerAlias="system", PageSize=100)["Images"]["Image"]
    assert image_id not in [i["ImageId"] for i in system]
    # A new instance boots from it.
    out = ecs.call("RunInstances", ZoneId=ali_catalog.zone, ImageId=image_id, InstanceType=ali_catalog.instance_type,
                   Amount=1, InstanceName=unique_name("fromimg"), Password="Nubis-Img-12345")
    new = out["InstanceIdSets"]["InstanceIdSet"][0]
    wait_until(lambda: ecs.call("DescribeInstances", InstanceIds=f'["{new}"]')["Instances"]["Instance"][0]["Status"]
               == "Running", 60, 0.05, "Running")
    got = ecs.call("DescribeInstances", InstanceIds=f'["{new}"]')["Instances"]["Instance"][0]
    assert got["ImageId"] == image_id
    assert ali_image(ecs, image_id)["Usage"] == "instance"
    ecs.call("DeleteInstance", InstanceId=new, Force=True)


def test_aliyun_refusals(ecs, ali_stopped):
    iid = ali_stopped.id
    expect_ecs_error(400, "DryRunOperation", ecs.call, "CreateImage", InstanceId=iid, ImageName="dryrun1", DryRun=True)
    assert ecs.call("DescribeImages", ImageOwnerAlias="self", ImageName="dryrun1")["TotalCount"] == 0
    expect_ecs_error(400, "InvalidImageName.Malformed", ecs.call, "CreateImage", InstanceId=iid, ImageName="1abc")
    expect_ecs_error(400, "InvalidImageName.Malformed", ecs.call, "CreateImage", InstanceId=iid, ImageName="a" * 129)
    expect_ecs_error(400, "InvalidDescription.Malformed", ecs.call, "CreateImage", InstanceId=iid, ImageName="abc",
                     Description="http://x")
    expect_ecs_error(404, "InvalidSnapshotId.NotFound", ecs.call, "CreateImage", SnapshotId="s-123", ImageName="abc")
    expect_ecs_error(400, "InvalidParameter", ecs.call, "CreateImage", InstanceId=iid, ImageName="abc",
                     Platform="Plan9")
    expect_ecs_error(404, "InvalidInstanceId.NotFound", ecs.call, "CreateImage",
                     InstanceId="i-00000000000000000000", ImageName="abc")
    expect_ecs_error(400, "MissingParameter", ecs.call, "CreateImage", ImageName="abc")
    name = "dup" + unique_name("d").replace("-", "")[:20]
    ecs.call("CreateImage", InstanceId=iid, ImageName=name)
    expect_ecs_error(400, "InvalidImageName.Duplicated", ecs.call, "CreateImage", InstanceId=iid, ImageName=name)
    expect_ecs_error(400, "InvalidParameter", ecs.call, "DescribeImages", Status="Sleeping")
    expect_ecs_error(400, "InvalidParameter", ecs.call, "DescribeImages", ImageOwnerAlias="nobody")


def test_tencent_image_lifecycle_modify_and_delete(cvm, catalog, stopped):
    """ModifyImageAttribute renames and describes; an image an instance runs is USING and
    DeleteImages refuses it (InvalidImageId.IncorrectState) until the instance is gone; a
    deleted image is not found. Each refusal changes nothing."""
    r = cvm.call("CreateImage", InstanceId=stopped.id, ImageName=unique_name("life")[:60])
    wait_settled(cvm, stopped.id, "STOPPED", r["RequestId"])
    image_id = tc_wait_image(cvm, r["ImageId"])["ImageId"]
    other = cvm.call("CreateImage", InstanceId=stopped.id, ImageName=unique_name("other")[:60])
    wait_settled(cvm, stopped.id, "STOPPED", other["RequestId"])
    tc_wait_image(cvm, other["ImageId"])
    new_name = unique_name("renamed")[:60]
    cvm.call("ModifyImageAttribute", ImageId=image_id, ImageName=new_name, ImageDescription="golden v2")
    got = tc_image(cvm, image_id)
    assert (got["ImageName"], got["ImageDescription"]) == (new_name, "golden v2"), got
    found = cvm.call("DescribeImages", Filters=[{"Name": "image-name", "Values": [new_name]}])["ImageSet"]
    assert [i["ImageId"] for i in found] == [image_id]
    # Refusals: a name another image has, too long, unknown or built-in images, a missing ID.
    other_name = tc_image(cvm, other["ImageId"])["ImageName"]
    expect_error("InvalidImageName.Duplicate", cvm.call, "ModifyImageAttribute", ImageId=image_id,
                 ImageName=other_name)
    expect_error("InvalidParameterValue.TooLong", cvm.call, "ModifyImageAttribute", ImageId=image_id,
                 ImageName="n" * 61)
    expect_error("InvalidImageId.NotFound", cvm.call, "ModifyImageAttribute", ImageId="img-00000000",
                 ImageName="x")
    expect_error("UnauthorizedOperation.ImageNotBelongToAccount", cvm.call, "ModifyImageAttribute",
                 ImageId=catalog.linux_image, ImageName="x")
    expect_error("MissingParameter", cvm.call, "ModifyImageAttribute", ImageName="x")
    assert tc_image(cvm, image_id)["ImageName"] == new_name
    # In use: refused, DryRun included, and the image stays.
    iid = tc_boot(cvm, catalog, image_id)
    assert tc_image(cvm, image_id)["ImageState"] == "USING"
    expect_error("InvalidImageId.IncorrectState", cvm.call, "DeleteImages", ImageIds=[image_id])
    expect_error("InvalidImageId.IncorrectState", cvm.call, "DeleteImages", ImageIds=[other["ImageId"], image_id])
    assert tc_image(cvm, other["ImageId"]) is not None, "a refused batch deletes nothing"
    expect_error("MissingParameter", cvm.call, "DeleteImages", ImageIds=[])
    expect_error("InvalidImageId.NotFound", cvm.call, "DeleteImages", ImageIds=["img-00000000"])
    r = cvm.call("TerminateInstances", InstanceIds=[iid])
    wait_until(lambda: describe(cvm, iid) is None, 30, 0.1, "instance gone")
    expect_error("DryRunOperation", cvm.call, "DeleteImages", ImageIds=[image_id], DryRun=True)
    assert tc_image(cvm, image_id) is not None
    cvm.call("DeleteImages", ImageIds=[image_id, other["ImageId"]])
    assert tc_image(cvm, image_id) is None and tc_image(cvm, other["ImageId"]) is None
    expect_error("InvalidImageId.NotFound", cvm.call, "DeleteImages", ImageIds=[image_id])


def test_aliyun_image_lifecycle_modify_and_delete(ecs, ali_catalog, ali_stopped):
    """ModifyImageAttribute (name, description, Deprecated and back); DeleteImage refuses an
    image an instance runs (403 ImageUsingByInstance) unless Force, and an unknown one is 404;
    refusals change nothing."""
    name = "life" + unique_name("a").replace("-", "")[:30]
    image_id = ecs.call("CreateImage", InstanceId=ali_stopped.id, ImageName=name)["ImageId"]
    wait_until(lambda: (i := ali_image(ecs, image_id)) and i["Status"] == "Available" and i, 30, 0.05, "Available")
    other = "oth" + unique_name("a").replace("-", "")[:30]
    other_id = ecs.call("CreateImage", InstanceId=ali_stopped.id, ImageName=other)["ImageId"]
    wait_until(lambda: (i := ali_image(ecs, other_id)) and i["Status"] == "Available", 30, 0.05, "Available")
    renamed = "ren" + unique_name("a").replace("-", "")[:30]
    ecs.call("ModifyImageAttribute", ImageId=image_id, ImageName=renamed, Description="golden v2")
    got = ali_image(ecs, image_id)
    assert (got["ImageName"], got["Description"]) == (renamed, "golden v2"), got
    ecs.call("ModifyImageAttribute", ImageId=image_id, Status="Deprecated")
    assert ali_image(ecs, image_id, status="Deprecated")["Status"] == "Deprecated"
    ecs.call("ModifyImageAttribute", ImageId=image_id, Status="Available")
    expect_ecs_error(400, "InvalidImageName.Duplicated", ecs.call, "ModifyImageAttribute", ImageId=image_id,
                     ImageName=other)
    expect_ecs_error(400, "InvalidImageName.Malformed", ecs.call, "ModifyImageAttribute", ImageId=image_id,
                     ImageName="1abc")
    expect_ecs_error(400, "InvalidParameter", ecs.call, "ModifyImageAttribute", ImageId=image_id, Status="Gone")
    expect_ecs_error(404, "InvalidImageId.NotFound", ecs.call, "ModifyImageAttribute", ImageId="m-00000000",
                     ImageName="abc")
    expect_ecs_error(400, "MissingParameter", ecs.call, "ModifyImageAttribute", ImageName="abc")
    assert ali_image(ecs, image_id)["ImageName"] == renamed
    out = ecs.call("RunInstances", ZoneId=ali_catalog.zone, ImageId=image_id, InstanceType=ali_catalog.instance_type,
                   Amount=1, InstanceName=unique_name("fromimg"), Password="Nubis-Img-12345")
    new = out["InstanceIdSets"]["InstanceIdSet"][0]
    wait_until(lambda: ecs.call("DescribeInstances", InstanceIds=f'["{new}"]')["Instances"]["Instance"][0]["Status"]
               == "Running", 60, 0.05, "Running")
    expect_ecs_error(403, "ImageUsingByInstance", ecs.call, "DeleteImage", ImageId=image_id)
    assert ali_image(ecs, image_id) is not None
    expect_ecs_error(404, "InvalidImageId.NotFound", ecs.call, "DeleteImage", ImageId="m-00000000")
    expect_ecs_error(400, "MissingParameter", ecs.call, "DeleteImage")
    # Force: deleted while the instance keeps running from its disk.
    ecs.call("DeleteImage", ImageId=image_id, Force=True)
    assert ali_image(ecs, image_id) is None
    got = ecs.call("DescribeInstances", InstanceIds=f'["{new}"]')["Instances"]["Instance"][0]
    assert got["Status"] == "Running"
    ecs.call("DeleteImage", ImageId=other_id)
    assert ali_image(ecs, other_id) is None
    expect_ecs_error(404, "InvalidImageId.NotFound", ecs.call, "DeleteImage", ImageId=other_id)
    ecs.call("DeleteInstance", InstanceId=new, Force=True)


# -- Nova --------------------------------------------------------------------------------


def action(server, conn, sid, body, version="2.1"):
    return raw(server, conn, "POST", f"/compute/v2.1/servers/{sid}/action", json_body=body,
               headers={"OpenStack-API-Version": f"compute {version}"})


def test_nova_create_image_then_boot_from_it(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    r = action(server, conn, srv.id, {"createImage": {"name": "snap-1", "metadata": {"purpose": "test"}}}, "2.45")
    assert r.status_code == 202, r.text
    image_id = r.json()["image_id"]
    assert "location" not in {k.lower() for k in r.headers}
    wait_status(conn, srv.id, "ACTIVE")
    actions = [a.action for a in conn.compute.server_actions(srv.id)]
    assert actions[0] == "createImage", actions
    # Boot a server from the snapshot (once it is active: retried while it is saving).
    def boot():
        r = raw(server, conn, "POST", "/compute/v2.1/servers", json_body={"server": {
            "name": unique_name("fromsnap"), "imageRef": image_id, "flavorRef": FLAVOR, "networks": "none"}})
        return r.json()["server"]["id"] if r.status_code == 202 else None
    new = wait_until(boot, 30, 0.2, "a server from the snapshot")
    s = wait_status(conn, new, "ACTIVE")
    assert s.image["id"] == image_id
    conn.compute.delete_server(new)


def test_nova_create_image_before_2_45_has_a_location(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.stop_server(srv)
    wait_status(conn, srv.id, "SHUTOFF")
    r = action(server, conn, srv.id, {"createImage": {"name": "snap-old"}})
    assert r.status_code == 202 and r.content == b"", r.text
    loc = r.headers["Location"]
    assert "/images/" in loc and len(loc.rsplit("/", 1)[1]) == 36
    wait_status(conn, srv.id, "SHUTOFF")


def test_nova_create_image_refusals(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    bad = [
        ({"createImage": {}}, 400, "'name' is a required property"),
        ({"createImage": {"name": "x", "bogus": 1}}, 400, "Additional properties are not allowed"),
        ({"createImage": {"name": " x"}}, 400, "Invalid input for field/attribute name"),
        ({"createImage": {"name": "x" * 256}}, 400, "Invalid input for field/attribute name"),
        ({"createImage": {"name": "x", "metadata": {f"k{i}": "v" for i in range(129)}}}, 403,
         "Image metadata limit exceeded"),
        ({"createImage": "x"}, 400, "Invalid input"),
    ]
    for body, status, text in bad:
        r = action(server, conn, srv.id, body)
        code, _, message = fault_of(r)
        assert code == status and text in message, (body, r.status_code, r.text)
    r = action(server, conn, "00000000-0000-0000-0000-000000000000", {"createImage": {"name": "x"}})
    assert r.status_code == 404
    # Wrong state: a rescued server (vm_state rescued).
    conn.compute.rescue_server(srv)
    wait_status(conn, srv.id, "RESCUE")
    r = action(server, conn, srv.id, {"createImage": {"name": "x"}})
    code, _, message = fault_of(r)
    assert code == 409 and "createImage" in message and "rescued" in message, r.text
