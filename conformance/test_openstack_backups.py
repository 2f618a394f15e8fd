"""Issue 15: Nova createBackup with its rotation, an image's min_ram as a core rule, the
instance actions of a deleted server (2.21) and another user's key pairs (2.10), through
openstacksdk and, where the SDK cannot send a case on purpose, raw requests with its token
(docs/images.md "Backups", docs/identity.md key pairs).

Every refusal is answered with Nova's own status and message, and changes nothing."""

from __future__ import annotations

import pytest
from openstack import exceptions as os_exc

from nubis import expect_error, unique_name, wait_until
from test_openstack_support import (  # noqa: F401 (fixtures)
    FLAVOR,
    conn,
    create_server,
    expect_http,
    fault_of,
    member_of_new_project,
    os_server,
    raw,
    wait_gone,
    wait_status,
)

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

def action(server, conn, sid, body, version="2.1"):
    return raw(server, conn, "POST", f"/compute/v2.1/servers/{sid}/action", json_body=body,
               headers={"OpenStack-API-Version": f"compute {version}"})


def prop(image, key):
    """A Glance property: openstacksdk keeps the ones it names (instance_uuid, …) as
    attributes and the others in `properties`."""
    return image.properties.get(key, getattr(image, key, None))


def backups_of(conn, sid, backup_type):
    return [i for i in conn.image.images()
            if prop(i, "instance_uuid") == sid and prop(i, "backup_type") == backup_type]


def image_status(conn, image_id):
    img = conn.image.find_image(image_id, ignore_missing=True)
    return None if img is None else img.status


def backup(server, conn, sid, name, rotation, backup_type="daily", version="2.45"):
    r = action(server, conn, sid, {"createBackup": {
        "name": name, "backup_type": backup_type, "rotation": rotation}}, version)
    assert r.status_code == 202, r.text
    return r


def test_backup_rotation_keeps_the_newest(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    made = []
    for n in range(3):
        if n == 0:
            # The SDK's own call (before 2.45: no body, Location instead).
            conn.compute.backup_server(srv, f"bk-{n}", "daily", 2)
            wait_status(conn, srv.id, "ACTIVE")
            ids = {i.id for i in backups_of(conn, srv.id, "daily")}
            assert len(ids) == 1
            made.append(ids.pop())
        else:
            made.append(backup(server, conn, srv.id, f"bk-{n}", 2).json()["image_id"])
        wait_status(conn, srv.id, "ACTIVE")
        wait_until(lambda: image_status(conn, made[-1]) == "active", 30, 0.1, "backup active")
    img = conn.image.get_image(made[-1])
    assert (prop(img, "image_type"), prop(img, "backup_type")) == ("backup", "daily")
    assert prop(img, "instance_uuid") == srv.id
    # Rotation 2: the oldest was deleted in the third one's commit; a weekly one is apart.
    assert image_status(conn, made[0]) is None
    assert {i.id for i in backups_of(conn, srv.id, "daily")} == set(made[1:])
    weekly = backup(server, conn, srv.id, "wk", 1, "weekly").json()["image_id"]
    wait_until(lambda: image_status(conn, weekly) == "active", 30, 0.1, "weekly active")
    assert {i.id for i in backups_of(conn, srv.id, "daily")} == set(made[1:])
    actions = [a.action for a in conn.compute.server_actions(srv.id)]
    assert actions.count("createBackup") == 4, actions


def test_rotation_zero_deletes_the_new_backup_and_has_no_location(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    r = backup(server, conn, srv.id, "gone", 0, version="2.1")
    assert r.content == b"" and "location" not in {k.lower() for k in r.headers}
    wait_status(conn, srv.id, "ACTIVE")
    wait_until(lambda: backups_of(conn, srv.id, "daily") == [], 30, 0.1, "no backup left")
    r = backup(server, conn, srv.id, "kept", 1, version="2.1")
    assert "/images/" in r.headers["Location"]


def test_backup_refusals_change_nothing(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    ok = {"name": "b", "backup_type": "daily", "rotation": 1}
    bad = [
        ({k: v for k, v in ok.items() if k != "name"}, "'name' is a required property"),
        ({k: v for k, v in ok.items() if k != "backup_type"}, "'backup_type' is a required property"),
        ({k: v for k, v in ok.items() if k != "rotation"}, "'rotation' is a required property"),
        ({**ok, "rotation": -1}, "Invalid input for field/attribute rotation"),
        ({**ok, "rotation": "two"}, "Invalid input for field/attribute rotation"),
        ({**ok, "rotation": 1.5}, "Invalid input for field/attribute rotation"),
        ({**ok, "backup_type": 7}, "Invalid input for field/attribute backup_type"),
        ({**ok, "name": " x"}, "Invalid input for field/attribute name"),
        ({**ok, "bogus": 1}, "Additional properties are not allowed"),
    ]
    for body, text in bad:
        r = action(server, conn, srv.id, {"createBackup": body})
        assert r.status_code == 400, (body, r.text)
        assert text in fault_of(r)[2], (body, r.text)
    r = action(server, conn, srv.id, {"createBackup": "x"})
    assert r.status_code == 400, r.text
    # Up to 2.38 the metadata quota applies (403); from 2.39 it is not checked.
    many = {**ok, "metadata": {f"k{i}": "v" for i in range(129)}}
    r = action(server, conn, srv.id, {"createBackup": many}, "2.38")
    assert fault_of(r)[::2] == (403, "Image metadata limit exceeded"), r.text
    r = action(server, conn, "00000000-0000-4000-8000-000000000000", {"createBackup": ok})
    assert r.status_code == 404, r.text
    assert backups_of(conn, srv.id, "daily") == []
    assert "createBackup" not in [a.action for a in conn.compute.server_actions(srv.id)]


def test_backup_of_a_server_in_the_wrong_state_is_409(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.rescue_server(srv)
    wait_status(conn, srv.id, "RESCUE")
    r = action(server, conn, srv.id, {"createBackup": {"name": "b", "backup_type": "d", "rotation": 1}})
    status, _, msg = fault_of(r)
    assert status == 409 and "createBackup" in msg and "rescued" in msg, r.text
    conn.compute.unrescue_server(srv)
    wait_status(conn, srv.id, "ACTIVE")


def test_min_ram_refuses_a_small_flavor_at_create_rebuild_and_resize(server, conn, os_server, cvm, catalog):  # noqa: F811
    srv, _ = os_server
    name = unique_name("bigram")
    r = action(server, conn, srv.id, {"createImage": {"name": name}}, "2.45")
    image_id = r.json()["image_id"]
    wait_status(conn, srv.id, "ACTIVE")
    wait_until(lambda: image_status(conn, image_id) == "active", 30, 0.1, "snapshot active")
    conn.image.update_image(image_id, min_ram=1 << 20)  # 1 TiB: more than any flavor
    r = raw(server, conn, "POST", "/compute/v2.1/servers", json_body={"server": {
        "name": unique_name("lowram"), "imageRef": image_id, "flavorRef": FLAVOR, "networks": "none"}})
    assert fault_of(r) == (400, "badRequest", "Flavor's memory is too small for requested image."), r.text
    r = action(server, conn, srv.id, {"rebuild": {"imageRef": image_id}})
    assert fault_of(r) == (400, "badRequest", "Flavor's memory is too small for requested image."), r.text
    assert wait_status(conn, srv.id, "ACTIVE").image["id"] != image_id
    # The same core rule through Tencent CVM (the image by its img- ID there).
    found = cvm.call("DescribeImages", Filters=[{"Name": "image-name", "Values": [name]}])["ImageSet"]
    assert len(found) == 1, found
    expect_error("InvalidParameterCombination", cvm.call, "RunInstances", ImageId=found[0]["ImageId"],
                 InstanceType=FLAVOR, Placement={"Zone": catalog.zone},
                 LoginSettings={"Password": "Nubis-Img-12345"})
    # Lowered again, it boots.
    conn.image.update_image(image_id, min_ram=0)
    r = raw(server, conn, "POST", "/compute/v2.1/servers", json_body={"server": {
        "name": unique_name("okram"), "imageRef": image_id, "flavorRef": FLAVOR, "networks": "none"}})
    assert r.status_code == 202, r.text
    booted = r.json()["server"]["id"]
    wait_status(conn, booted, "ACTIVE")
    # A resize is held to the image's min_ram too (Nova's _validate_flavor_image_nostatus):
    # S5.SMALL2 (2 GiB) is refused for an image needing 3000 MiB, S5.LARGE8 is taken.
    conn.image.update_image(image_id, min_ram=3000)
    r = action(server, conn, booted, {"resize": {"flavorRef": "S5.SMALL2"}})
    assert fault_of(r) == (400, "badRequest", "Flavor's memory is too small for requested image."), r.text
    assert wait_status(conn, booted, "ACTIVE").flavor["original_name"] == FLAVOR
    r = action(server, conn, booted, {"resize": {"flavorRef": "S5.LARGE8"}})
    assert r.status_code == 202, r.text
    wait_status(conn, booted, "VERIFY_RESIZE")
    conn.compute.delete_server(booted)


def test_actions_of_a_deleted_server_from_2_21(server, conn):  # noqa: F811
    srv, _ = create_server(conn)
    conn.compute.delete_server(srv)
    wait_gone(conn, srv.id)
    path = f"/compute/v2.1/servers/{srv.id}/os-instance-actions"
    old = raw(server, conn, "GET", path, headers={"OpenStack-API-Version": "compute 2.20"})
    assert old.status_code == 404, old.text
    r = raw(server, conn, "GET", path, headers={"OpenStack-API-Version": "compute 2.21"})
    assert r.status_code == 200, r.text
    acts = r.json()["instanceActions"]
    assert [a["action"] for a in acts] == ["delete", "create"], acts
    one = raw(server, conn, "GET", f"{path}/{acts[0]['request_id']}",
              headers={"OpenStack-API-Version": "compute 2.21"})
    assert one.status_code == 200 and one.json()["instanceAction"]["action"] == "delete", one.text
    # A server that never was: 404 at any version.
    r = raw(server, conn, "GET", "/compute/v2.1/servers/00000000-0000-4000-8000-000000000000/"
            "os-instance-actions", headers={"OpenStack-API-Version": "compute 2.21"})
    assert r.status_code == 404, r.text


def test_admin_manages_another_users_key_pairs_from_2_10(server, conn):  # noqa: F811
    other, _, uid = member_of_new_project(server, conn)
    v = {"OpenStack-API-Version": "compute 2.10"}
    name = unique_name("kp")
    r = raw(server, conn, "POST", "/compute/v2.1/os-keypairs", headers=v,
            json_body={"keypair": {"name": name, "user_id": uid}})
    assert r.status_code == 201 and r.json()["keypair"]["user_id"] == uid, r.text
    # The user sees it as its own; the admin's own listing does not show it. (Key pairs the
    # account's cloud API keys made, without a Keystone user, are every user's: other test
    # modules on this server leave some, so the user's list is not only this one.)
    assert name in [k.name for k in other.compute.keypairs()]
    assert name not in [k.name for k in conn.compute.keypairs()]
    r = raw(server, conn, "GET", f"/compute/v2.1/os-keypairs?user_id={uid}", headers=v)
    # The admin listing for that user is exactly what the user sees of its own.
    assert r.status_code == 200, r.text
    listed = sorted(k["keypair"]["name"] for k in r.json()["keypairs"])
    assert name in listed and listed == sorted(k.name for k in other.compute.keypairs()), r.text
    r = raw(server, conn, "GET", f"/compute/v2.1/os-keypairs/{name}?user_id={uid}", headers=v)
    assert r.status_code == 200 and r.json()["keypair"]["user_id"] == uid, r.text
    # Before 2.10 user_id is not a field of the body.
    r = raw(server, conn, "POST", "/compute/v2.1/os-keypairs",
            headers={"OpenStack-API-Version": "compute 2.9"},
            json_body={"keypair": {"name": unique_name("kp"), "user_id": uid}})
    assert r.status_code == 400, r.text
    # The member may not reach the admin's key pairs, nor make one for another user.
    admin_id = conn.current_user_id
    r = raw(server, other, "GET", f"/compute/v2.1/os-keypairs?user_id={admin_id}", headers=v)
    assert fault_of(r)[::2] == (403, "Policy doesn't allow os_compute_api:os-keypairs:index to be performed."), r.text
    r = raw(server, other, "POST", "/compute/v2.1/os-keypairs", headers=v,
            json_body={"keypair": {"name": unique_name("kp"), "user_id": admin_id}})
    assert r.status_code == 403, r.text
    assert fault_of(r)[::2] == (403, "Policy doesn't allow os_compute_api:os-keypairs:create to be performed."), r.text
    # An unknown user: create 400, list empty, show 404.
    ghost = "0" * 32
    r = raw(server, conn, "POST", "/compute/v2.1/os-keypairs", headers=v,
            json_body={"keypair": {"name": unique_name("kp"), "user_id": ghost}})
    assert r.status_code == 400, r.text
    r = raw(server, conn, "GET", f"/compute/v2.1/os-keypairs?user_id={ghost}", headers=v)
    assert r.json()["keypairs"] == [], r.text
    r = raw(server, conn, "GET", f"/compute/v2.1/os-keypairs/{name}?user_id={ghost}", headers=v)
    assert r.status_code == 404, r.text
    # The admin deletes it for the user.
    r = raw(server, conn, "DELETE", f"/compute/v2.1/os-keypairs/{name}?user_id={uid}", headers=v)
    assert r.status_code == 204, r.text
    assert name not in [k.name for k in other.compute.keypairs()]


def test_nova_deletes_a_key_pair_a_server_uses(server, conn):  # noqa: F811
    kp = conn.compute.create_keypair(name=unique_name("inuse"))
    srv, _ = create_server(conn, key_name=kp.name)
    conn.compute.delete_keypair(kp)
    assert conn.compute.find_keypair(kp.name, ignore_missing=True) is None
    assert wait_status(conn, srv.id, "ACTIVE").status == "ACTIVE"
    conn.compute.delete_server(srv)
    with pytest.raises(os_exc.NotFoundException):
        conn.compute.get_keypair(kp.name)
