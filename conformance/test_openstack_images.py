"""Glance v2 on the image registry (docs/images.md, "Glance") through openstacksdk, the
`openstack image` CLI and raw requests: create, upload the project's guest image and download
it back bit-identical (size, checksum, os_hash_value), JSON-patch properties and tags, list
filters/sorting/paging, sharing with another project (member accepts), deactivate, delete,
the Nova image proxy on the same records, and bad inputs answered with Glance's codes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from openstack import exceptions as os_exc

from nubis import ADMIN_PASSWORD, retry_throttled, unique_name
from test_openstack_support import REGION, connect, member_of_new_project, raw

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

ROOT = Path(__file__).resolve().parent.parent
GUEST = ROOT / "guest" / "out" / "system.qcow2"
PATCH = "application/openstack-images-v2.1-json-patch"


def guest_image(tmp_path: Path) -> Path:
    """The guest image when it was built (guest/build), else a small qcow2-headed file."""
    if GUEST.exists():
        return GUEST
    p = tmp_path / "small.qcow2"
    header = b"QFI\xfb" + bytes(20) + (1 << 30).to_bytes(8, "big")
    p.write_bytes(header + os.urandom(300_000))
    return p


@pytest.fixture
def conn(server):
    return connect(server)


@pytest.fixture
def images(conn):
    made = []

    def make(**kw):
        kw.setdefault("name", unique_name("img"))
        img = conn.image.create_image(**kw)
        made.append(img.id)
        return img

    yield make

    def remove(image_id):
        conn.image.update_image(image_id, is_protected=False)
        conn.image.delete_image(image_id, ignore_missing=True)

    for i in made:
        # Glance updates are rate-limited per account: a module's worth of them can exhaust
        # the burst, and a cleanup given up on a 429 left a queued image on the worker's
        # server for later modules to list.
        try:
            retry_throttled(lambda: remove(i), lambda e: isinstance(e, os_exc.HttpException)
                            and e.status_code == 429)
        except os_exc.SDKException:
            pass


def glance(server, conn, method, path, **kw):
    return raw(server, conn, method, "/image/v2" + path, **kw)


def test_create_upload_download_round_trip(server, conn, images, tmp_path):
    src = guest_image(tmp_path)
    data = src.read_bytes()
    img = images(disk_format="qcow2", container_format="bare", visibility="private",
                 min_disk=1, tags=["a"], os_distro="nubis-guest")
    assert img.status == "queued" and img.size is None and img.checksum is None
    assert img.visibility == "private" and img.tags == ["a"]
    assert img.properties.get("os_distro") == "nubis-guest" or img.os_distro == "nubis-guest"
    # Glance's upload: PUT /file with application/octet-stream.
    r = glance(server, conn, "PUT", f"/images/{img.id}/file", data=data,
               headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    got = conn.image.get_image(img.id)
    assert got.status == "active"
    assert got.size == len(data)
    assert got.checksum == hashlib.md5(data).hexdigest()
    assert got.hash_algo == "sha512"
    assert got.hash_value == hashlib.sha512(data).hexdigest()
    assert got.virtual_size and got.virtual_size >= len(data) // 2
    # Download through the SDK: bit-identical, Content-MD5 checked by the SDK.
    out = conn.image.download_image(got)
    body = out.content if hasattr(out, "content") else out
    assert hashlib.sha512(body).hexdigest() == got.hash_value
    dl = glance(server, conn, "GET", f"/images/{img.id}/file")
    assert dl.status_code == 200 and dl.content == data
    assert dl.headers["Content-MD5"] == got.checksum
    assert dl.headers["Content-Type"] == "application/octet-stream"
    # A second upload: the image is no longer queued.
    again = glance(server, conn, "PUT", f"/images/{img.id}/file", data=b"x",
                   headers={"Content-Type": "application/octet-stream"})
    assert again.status_code == 409, again.text


def test_sdk_create_image_with_data(server, conn, tmp_path):
    """openstacksdk's create_image with a file: create, upload, wait active."""
    src = guest_image(tmp_path)
    name = unique_name("sdk")
    img = conn.create_image(name, filename=str(src), disk_format="qcow2",
                            container_format="bare", wait=True, timeout=120)
    try:
        assert img.status == "active"
        assert img.checksum == hashlib.md5(src.read_bytes()).hexdigest()
        assert conn.image.find_image(name).id == img.id
    finally:
        conn.image.delete_image(img.id)
    with pytest.raises(os_exc.NotFoundException):
        conn.image.get_image(img.id)


def test_no_data_download_is_204_and_bad_uploads(server, conn, images):
    img = images()
    assert glance(server, conn, "GET", f"/images/{img.id}/file").status_code == 204
    bad_type = glance(server, conn, "PUT", f"/images/{img.id}/file", data=b"abc",
                      headers={"Content-Type": "application/json"})
    assert bad_type.status_code == 415
    # Without a token nothing is read: 401 in Keystone's envelope.
    anon = glance(server, conn, "PUT", f"/images/{img.id}/file", data=b"abc", token="",
                  headers={"Content-Type": "application/octet-stream"})
    assert anon.status_code == 401
    assert conn.image.get_image(img.id).status == "queued"
    missing = glance(server, conn, "PUT", f"/images/{uuid.uuid4()}/file", data=b"abc",
                     headers={"Content-Type": "application/octet-stream"})
    assert missing.status_code == 404


def test_patch_properties_and_tags(server, conn, images):
    img = images(disk_format="raw", container_format="bare")
    ops = [{"op": "replace", "path": "/name", "value": "renamed"},
           {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
           {"op": "add", "path": "/os_hidden", "value": True},
           {"op": "replace", "path": "/min_ram", "value": 512}]
    r = glance(server, conn, "PATCH", f"/images/{img.id}", data=json.dumps(ops),
               headers={"Content-Type": PATCH})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["name"] == "renamed" and b["hw_disk_bus"] == "virtio"
    assert b["os_hidden"] is True and b["min_ram"] == 512
    # Through the SDK: a property and a tag.
    conn.image.update_image(img.id, os_distro="debian")
    conn.image.add_tag(img.id, "t1")
    conn.image.add_tag(img.id, "t2")
    conn.image.remove_tag(img.id, "t1")
    got = conn.image.get_image(img.id)
    assert set(got.tags) == {"t2"} and got.os_distro == "debian"
    # Glance's refusals.
    cases = [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/id", "value": str(uuid.uuid4())}], 403),
        ([{"op": "add", "path": "/os_glance_x", "value": "v"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "remove", "path": "/nope"}], 409),
        ([{"op": "replace", "path": "/nope", "value": "v"}], 409),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400),
        ([{"op": "replace", "path": "/min_disk", "value": -1}], 400),
        ([{"op": "move", "path": "/name"}], 400),
        ([{"op": "add", "path": "name", "value": "x"}], 400),
        ([{"op": "add", "path": "/k", "value": 3}], 400),
        ({"op": "add"}, 400),
    ]
    for body, want in cases:
        r = glance(server, conn, "PATCH", f"/images/{img.id}", data=json.dumps(body),
                   headers={"Content-Type": PATCH})
        assert r.status_code == want, (body, r.status_code, r.text)
    r = glance(server, conn, "PATCH", f"/images/{img.id}", data="[]",
               headers={"Content-Type": "application/json"})
    assert r.status_code == 415
    assert "openstack-images-v2.1-json-patch" in r.headers.get("Accept-Patch", "")
    tag = glance(server, conn, "DELETE", f"/images/{img.id}/tags/never")
    assert tag.status_code == 404


def test_create_refusals(server, conn, images):
    img = images()
    cases = [
        ({"id": img.id}, 409),
        ({"status": "active"}, 403),
        ({"self": "/x"}, 403),
        ({"os_glance_importing": "x"}, 403),
        ({"disk_format": "floppy"}, 400),
        ({"container_format": "box"}, 400),
        ({"visibility": "everyone"}, 400),
        ({"min_ram": -5}, 400),
        ({"name": "x" * 256}, 400),
        ({"id": "not-a-uuid"}, 400),
        ({"protected": "yes"}, 400),
        ({"x" * 256: "v"}, 400),
    ]
    for body, want in cases:
        r = glance(server, conn, "POST", "/images", json_body=body)
        assert r.status_code == want, (body, r.status_code, r.text)
    bad = glance(server, conn, "POST", "/images", data=b"{not json",
                 headers={"Content-Type": "application/json"})
    assert bad.status_code == 400


def test_list_filters_sort_and_pages(server, conn, images):
    tag = unique_name("tag")
    made = [images(tags=[tag], disk_format="raw", container_format="bare",
                   min_ram=i) for i in range(3)]
    ids = [i.id for i in made]
    listed = [i.id for i in conn.image.images(tag=tag)]
    assert set(listed) == set(ids)
    # Default order: newest first.
    assert listed == list(reversed(ids))
    asc = glance(server, conn, "GET", f"/images?tag={tag}&sort=created_at:asc").json()
    assert [i["id"] for i in asc["images"]] == ids
    by_key = glance(server, conn, "GET",
                    f"/images?tag={tag}&sort_key=created_at&sort_dir=asc").json()
    assert [i["id"] for i in by_key["images"]] == ids
    page = glance(server, conn, "GET", f"/images?tag={tag}&limit=2&sort=created_at:asc").json()
    assert [i["id"] for i in page["images"]] == ids[:2] and "next" in page
    rest = raw(server, conn, "GET", "/image" + page["next"]).json()
    assert [i["id"] for i in rest["images"]] == ids[2:]
    assert glance(server, conn, "GET", f"/images?tag={tag}&status=queued").json()["images"]
    assert not glance(server, conn, "GET", f"/images?tag={tag}&status=active").json()["images"]
    assert len(glance(server, conn, "GET",
                      f"/images?tag={tag}&visibility=shared").json()["images"]) == 3
    # Hidden images only with os_hidden=true.
    conn.image.update_image(ids[0], is_hidden=True)
    shown = {i["id"] for i in glance(server, conn, "GET", f"/images?tag={tag}").json()["images"]}
    assert ids[0] not in shown
    hidden = glance(server, conn, "GET", f"/images?tag={tag}&os_hidden=true").json()["images"]
    assert [i["id"] for i in hidden] == [ids[0]]
    for q, want in [("limit=x", 400), ("limit=-1", 400), ("sort_key=bogus", 400),
                    ("sort_dir=up", 400), ("sort=name&sort_key=id", 400),
                    ("visibility=secret", 400), ("member_status=maybe", 400),
                    ("protected=maybe", 400), (f"marker={uuid.uuid4()}", 400),
                    ("created_at=gt:yesterday", 400)]:
        r = glance(server, conn, "GET", f"/images?{q}")
        assert r.status_code == want, (q, r.text)
    # The built-in catalogue is still listed, public and protected.
    builtin = list(conn.image.images(visibility="public"))
    assert builtin and all(i.is_protected for i in builtin)


def test_share_with_another_project(server, conn, images, tmp_path):
    other, pid, _ = member_of_new_project(server, conn)
    img = images(visibility="shared", disk_format="raw", container_format="bare")
    glance(server, conn, "PUT", f"/images/{img.id}/file", data=b"shared bytes",
           headers={"Content-Type": "application/octet-stream"})
    # Not a member yet: the other project cannot see it.
    with pytest.raises(os_exc.NotFoundException):
        other.image.get_image(img.id)
    m = conn.image.add_member(img.id, member_id=pid)
    assert m.status == "pending"
    # Pending: visible by ID, not listed by default, listed with member_status=pending.
    assert other.image.get_image(img.id).id == img.id
    assert img.id not in {i.id for i in other.image.images()}
    assert img.id in {i.id for i in other.image.images(member_status="pending")}
    # The member answers; the owner cannot answer for it.
    r = glance(server, conn, "PUT", f"/images/{img.id}/members/{pid}",
               json_body={"status": "accepted"})
    assert r.status_code == 403
    other.image.update_member(pid, img.id, status="accepted")
    assert img.id in {i.id for i in other.image.images()}
    assert other.image.download_image(img.id).content == b"shared bytes"
    assert [x.member_id for x in conn.image.members(img.id)] == [pid]
    # The member may not change, delete or share the image.
    with pytest.raises(os_exc.ForbiddenException):
        other.image.update_image(img.id, name="stolen")
    with pytest.raises(os_exc.ForbiddenException):
        other.image.delete_image(img.id)
    bad = glance(server, conn, "PUT", f"/images/{img.id}/members/{pid}",
                 token=other.auth_token, json_body={"status": "maybe"})
    assert bad.status_code == 400
    dup = glance(server, conn, "POST", f"/images/{img.id}/members", json_body={"member": pid})
    assert dup.status_code == 409
    conn.image.remove_member(pid, img.id)
    with pytest.raises(os_exc.NotFoundException):
        other.image.get_image(img.id)
    # Only shared images have members.
    private = images(visibility="private")
    r = glance(server, conn, "POST", f"/images/{private.id}/members", json_body={"member": pid})
    assert r.status_code == 403


def test_protected_deactivate_and_delete(server, conn, images):
    img = images(protected=True, disk_format="raw", container_format="bare")
    with pytest.raises(os_exc.ForbiddenException):
        conn.image.delete_image(img.id)
    # A step, not the subject: this worker's earlier image calls (their cleanups above all)
    # can have spent the account's burst of Glance updates.
    retry_throttled(lambda: conn.image.update_image(img.id, is_protected=False),
                    lambda e: isinstance(e, os_exc.HttpException) and e.status_code == 429)
    glance(server, conn, "PUT", f"/images/{img.id}/file", data=b"abc",
           headers={"Content-Type": "application/octet-stream"})
    assert glance(server, conn, "POST", f"/images/{img.id}/actions/deactivate").status_code == 204
    assert conn.image.get_image(img.id).status == "deactivated"
    assert glance(server, conn, "POST", f"/images/{img.id}/actions/reactivate").status_code == 204
    assert conn.image.get_image(img.id).status == "active"
    queued = images()
    r = glance(server, conn, "POST", f"/images/{queued.id}/actions/deactivate")
    assert r.status_code == 400
    conn.image.delete_image(img.id)
    with pytest.raises(os_exc.NotFoundException):
        conn.image.get_image(img.id)
    # The built-in images are protected.
    builtin = next(conn.image.images(visibility="public"))
    with pytest.raises(os_exc.ForbiddenException):
        conn.image.delete_image(builtin.id)
    # A deleted image's ID is never reused.
    r = glance(server, conn, "POST", "/images", json_body={"id": img.id, "name": "again"})
    assert r.status_code == 409


def test_schemas_and_versions(server, conn):
    for name in ("image", "images", "member", "members"):
        r = glance(server, conn, "GET", f"/schemas/{name}")
        assert r.status_code == 200 and r.json()["name"] == name


def test_nova_proxy_sees_the_registry(server, conn, images):
    img = images(disk_format="raw", container_format="bare", min_ram=64, os_distro="x")
    glance(server, conn, "PUT", f"/images/{img.id}/file", data=b"abc",
           headers={"Content-Type": "application/octet-stream"})
    h = {"OpenStack-API-Version": "compute 2.35"}
    show = raw(server, conn, "GET", f"/compute/v2.1/images/{img.id}", headers=h)
    assert show.status_code == 200, show.text
    v = show.json()["image"]
    assert v["status"] == "ACTIVE" and v["minRam"] == 64 and v["metadata"]["os_distro"] == "x"
    listed = raw(server, conn, "GET", "/compute/v2.1/images/detail", headers=h).json()["images"]
    assert img.id in {i["id"] for i in listed}
    snaps = raw(server, conn, "GET", "/compute/v2.1/images?type=snapshot", headers=h).json()
    assert img.id not in {i["id"] for i in snaps["images"]}
    gone = raw(server, conn, "DELETE", f"/compute/v2.1/images/{img.id}", headers=h)
    assert gone.status_code == 204
    assert raw(server, conn, "GET", f"/compute/v2.1/images/{img.id}", headers=h).status_code == 404


def cli(server, *args, ok=True):
    exe = Path(sys.executable).parent / "openstack"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update({
        "OS_AUTH_URL": f"{server.base_url}/identity/v3", "OS_USERNAME": "admin",
        "OS_PASSWORD": ADMIN_PASSWORD, "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": REGION, "HOME": str(server.home),
    })
    p = subprocess.run([str(exe) if exe.exists() else "openstack", *args], capture_output=True,
                       text=True, env=env, timeout=180, stdin=subprocess.DEVNULL)
    if not ok:
        return p
    assert p.returncode == 0, f"openstack {' '.join(args)} failed: {p.stderr}"
    out = p.stdout.strip()
    return json.loads(out) if out.startswith(("{", "[")) else out


def test_cli_image_lifecycle(server, tmp_path):
    src = guest_image(tmp_path)
    name = unique_name("cli")
    made = cli(server, "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
               "--file", str(src), "--property", "os_distro=nubis", "--tag", "cli",
               "-f", "json", name)
    assert made["status"] == "active" and made["name"] == name
    iid = made["id"]
    cli(server, "image", "set", "--property", "hw_disk_bus=virtio", "--tag", "more", iid)
    shown = cli(server, "image", "show", "-f", "json", iid)
    props = shown.get("properties") or {}
    assert props.get("hw_disk_bus") == "virtio" or "hw_disk_bus" in json.dumps(shown)
    assert set(shown["tags"]) >= {"cli", "more"}
    out = tmp_path / "back.qcow2"
    cli(server, "image", "save", "--file", str(out), iid)
    assert out.read_bytes() == src.read_bytes()
    listed = cli(server, "image", "list", "--tag", "cli", "-f", "json")
    assert iid in {i["ID"] for i in listed}
    cli(server, "image", "delete", iid)
    gone = cli(server, "image", "show", iid, ok=False)
    assert gone.returncode != 0


def test_nova_image_metadata_api(server, conn, images):
    img = images(disk_format="raw", container_format="bare", os_distro="x")
    h = {"OpenStack-API-Version": "compute 2.38"}
    base = f"/compute/v2.1/images/{img.id}/metadata"
    listed = raw(server, conn, "GET", base, headers=h)
    assert listed.status_code == 200 and listed.json()["metadata"]["os_distro"] == "x"
    merged = raw(server, conn, "POST", base, headers=h, json_body={"metadata": {"a": "1"}})
    assert merged.status_code == 200 and merged.json()["metadata"]["a"] == "1"
    assert merged.json()["metadata"]["os_distro"] == "x"
    one = raw(server, conn, "PUT", f"{base}/b", headers=h, json_body={"meta": {"b": "2"}})
    assert one.status_code == 200 and one.json() == {"meta": {"b": "2"}}
    assert raw(server, conn, "GET", f"{base}/b", headers=h).json() == {"meta": {"b": "2"}}
    assert conn.image.get_image(img.id).properties.get("b") == "2" or \
        getattr(conn.image.get_image(img.id), "b", None) == "2"
    mismatch = raw(server, conn, "PUT", f"{base}/c", headers=h, json_body={"meta": {"b": "2"}})
    assert mismatch.status_code == 400
    replaced = raw(server, conn, "PUT", base, headers=h, json_body={"metadata": {"only": "v"}})
    assert replaced.status_code == 200 and replaced.json() == {"metadata": {"only": "v"}}
    assert raw(server, conn, "DELETE", f"{base}/only", headers=h).status_code == 204
    assert raw(server, conn, "DELETE", f"{base}/only", headers=h).status_code == 404
    too_many = {f"k{i}": "v" for i in range(129)}
    over = raw(server, conn, "POST", base, headers=h, json_body={"metadata": too_many})
    assert over.status_code == 403
    # Gone from 2.39.
    assert raw(server, conn, "GET", base,
               headers={"OpenStack-API-Version": "compute 2.39"}).status_code == 404
    # A built-in image's metadata is nobody's to change.
    builtin = next(conn.image.images(visibility="public"))
    r = raw(server, conn, "POST", f"/compute/v2.1/images/{builtin.id}/metadata", headers=h,
            json_body={"metadata": {"a": "1"}})
    assert r.status_code == 403


def test_tasks_api_refuses_every_import(server, conn):
    """Glance's /v2/tasks (admin only): nubis downloads no image from a URL, so an import
    task is refused at create (400, import filtering) and none exists; a member is 403."""
    body = {"type": "import", "input": {"import_from": "http://images.invalid/x.qcow2",
                                        "import_from_format": "qcow2",
                                        "image_properties": {"disk_format": "qcow2",
                                                             "container_format": "bare"}}}
    r = raw(server, conn, "POST", "/image/v2/tasks", json_body=body)
    assert r.status_code == 400 and "does not pass filtering" in r.text, r.text
    for bad, says in [({"input": {}}, "'type' is a required property"),
                      ({"type": "bogus", "input": {}}, "is not one of"),
                      ({"type": "import", "input": {"import_from": "x"}}, "import_from_format")]:
        r = raw(server, conn, "POST", "/image/v2/tasks", json_body=bad)
        assert r.status_code == 400 and says in r.text, (bad, r.text)
    r = raw(server, conn, "GET", "/image/v2/tasks")
    assert r.status_code == 200 and r.json()["tasks"] == [], r.text
    r = raw(server, conn, "GET", f"/image/v2/tasks/{uuid.uuid4()}")
    assert r.status_code == 404, r.text
    member, _, _ = member_of_new_project(server, conn)
    for method, path in [("GET", "/image/v2/tasks"), ("POST", "/image/v2/tasks")]:
        r = raw(server, member, method, path, json_body=body if method == "POST" else None)
        assert r.status_code == 403, (method, r.text)


def test_glance_direct_import_through_the_sdk_and_raw(server, conn, tmp_path):
    """openstacksdk's create_image(use_import=True) stages the data and imports it with
    glance-direct; the image's import task is shown. Raw: an unknown method is 400, an import
    before staging is 409, staging twice is 409."""
    src = guest_image(tmp_path)
    name = unique_name("imp")
    img = conn.create_image(name, filename=str(src), disk_format="qcow2", container_format="bare",
                            use_import=True, wait=True, timeout=120)
    try:
        assert img.status == "active"
        assert img.checksum == hashlib.md5(src.read_bytes()).hexdigest()
        r = raw(server, conn, "GET", f"/image/v2/images/{img.id}/tasks")
        tasks = r.json()["tasks"]
        assert [(t["type"], t["status"], t["input"]["import_req"]["method"]["name"]) for t in tasks] == \
            [("api_image_import", "success", "glance-direct")], r.text
        r = raw(server, conn, "GET", f"/image/v2/tasks/{tasks[0]['id']}")
        assert r.status_code == 200 and r.json()["image_id"] == img.id, r.text
    finally:
        conn.image.delete_image(img.id)
    info = raw(server, conn, "GET", "/image/v2/info/import").json()
    assert info["import-methods"]["value"] == ["glance-direct"]
    queued = conn.image.create_image(name=unique_name("q"), disk_format="raw", container_format="bare")
    try:
        path = f"/image/v2/images/{queued.id}"
        r = raw(server, conn, "POST", f"{path}/import", json_body={"method": {"name": "web-download"}})
        assert r.status_code == 400 and "Unknown import method name" in r.text, r.text
        r = raw(server, conn, "POST", f"{path}/import", json_body={"method": {"name": "glance-direct"}})
        assert r.status_code == 409 and "needs to be staged" in r.text, r.text
        r = raw(server, conn, "PUT", f"{path}/stage", data=b"x" * 1000,
                headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        assert conn.image.get_image(queued.id).status == "uploading"
        r = raw(server, conn, "PUT", f"{path}/stage", data=b"y",
                headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 409, r.text
        r = raw(server, conn, "POST", f"{path}/import", json_body={"method": {"name": "glance-direct"}})
        assert r.status_code == 202, r.text
        got = conn.image.get_image(queued.id)
        assert (got.status, got.size) == ("active", 1000)
    finally:
        conn.image.delete_image(queued.id)
