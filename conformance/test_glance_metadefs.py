"""Glance metadata definitions (docs/images.md, "Metadata definitions") through openstacksdk
and raw requests: namespaces with their objects, properties, tags and resource-type
associations, the resource types, the ten schemas, private namespaces seen by their project
only, and bad input answered with Glance's codes (unknown namespace 404, duplicate 409,
non-admin write 403, protected delete 403, malformed or oversized body 400/413)."""

from __future__ import annotations

import pytest
from openstack import exceptions as os_exc

from nubis import unique_name
from test_openstack_support import connect, expect_http, member_of_new_project, raw

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

PASSWORD = "Metadef-Pw-1234"


@pytest.fixture
def conn(server):
    return connect(server)


@pytest.fixture
def namespaces(conn):
    made = []

    def make(**kw):
        kw.setdefault("namespace", unique_name("ns"))
        ns = conn.image.create_metadef_namespace(**kw)
        made.append(ns.namespace)
        return ns

    yield make
    for name in made:
        try:
            conn.image.update_metadef_namespace(name, namespace=name, is_protected=False)
            conn.image.delete_metadef_namespace(name, ignore_missing=True)
        except os_exc.SDKException:
            pass


@pytest.fixture
def member(server, conn):
    """A member of another project: its connection and project ID."""
    other, project, _ = member_of_new_project(server, conn, PASSWORD)
    return other, project


def md(server, conn, method, path, **kw):
    return raw(server, conn, method, "/image/v2/metadefs" + path, **kw)


def test_namespace_life_with_objects_properties_tags_and_associations(server, conn, namespaces):
    types = [t.name for t in conn.image.metadef_resource_types()]
    for builtin in ("OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor",
                    "OS::Nova::Aggregate", "OS::Nova::Server"):
        assert builtin in types
    ns = namespaces(display_name="Hypervisor", description="d", visibility="public",
                    resource_type_associations=[{"name": "OS::Glance::Image",
                                                 "prefix": "hw_"}])
    assert ns.visibility == "public" and ns.is_protected is False
    name = ns.namespace
    got = conn.image.get_metadef_namespace(name)
    assert got.display_name == "Hypervisor" and got.owner
    assert [a["name"] for a in got.resource_type_associations] == ["OS::Glance::Image"]
    assert name in [n.namespace for n in conn.image.metadef_namespaces()]
    assert name in [n.namespace for n in
                    conn.image.metadef_namespaces(resource_types="OS::Glance::Image")]
    assert name not in [n.namespace for n in
                        conn.image.metadef_namespaces(resource_types="OS::Nova::Flavor")]
    assert name not in [n.namespace for n in conn.image.metadef_namespaces(visibility="private")]

    # Objects.
    obj = conn.image.create_metadef_object(
        name, name="CPU Limits", description="c", required=[],
        properties={"quota:cpu_period": {"title": "Period", "type": "integer",
                                         "minimum": 1000}})
    assert obj.name == "CPU Limits"
    assert obj.properties["quota:cpu_period"]["minimum"] == 1000
    assert [o.name for o in conn.image.metadef_objects(name)] == ["CPU Limits"]
    up = conn.image.update_metadef_object(obj, namespace=name, name="CPU Quota")
    assert up.name == "CPU Quota"
    assert conn.image.get_metadef_object("CPU Quota", name).name == "CPU Quota"
    expect_http(404, conn.image.get_metadef_object, "CPU Limits", name)

    # Properties: listed as a map by name; the association's prefix resolves on show.
    prop = conn.image.create_metadef_property(
        name, name="hypervisor_type", title="Hypervisor Type", type="string",
        enum=["kvm", "qemu"])
    assert prop.title == "Hypervisor Type"
    props = md(server, conn, "GET", f"/namespaces/{name}/properties").json()["properties"]
    assert props["hypervisor_type"]["enum"] == ["kvm", "qemu"]
    r = md(server, conn, "GET", f"/namespaces/{name}/properties/hw_hypervisor_type"
                                "?resource_type=OS::Glance::Image")
    assert r.status_code == 200 and r.json()["name"] == "hypervisor_type"
    changed = conn.image.update_metadef_property(
        prop, name, name="hypervisor_type", title="HV", type="string")
    assert changed.title == "HV"

    # Tags: one, many (replacing, then appending), rename, delete all.
    r = md(server, conn, "POST", f"/namespaces/{name}/tags/t0")
    assert r.status_code == 201 and r.json()["name"] == "t0"
    r = md(server, conn, "POST", f"/namespaces/{name}/tags",
           json_body={"tags": [{"name": "a"}, {"name": "b"}]})
    assert r.status_code == 201 and [t["name"] for t in r.json()["tags"]] == ["a", "b"]
    r = md(server, conn, "POST", f"/namespaces/{name}/tags", json_body={"tags": [{"name": "c"}]},
           headers={"X-Openstack-Append": "True"})
    assert r.status_code == 201
    tags = md(server, conn, "GET", f"/namespaces/{name}/tags").json()["tags"]
    assert [t["name"] for t in tags] == ["a", "b", "c"]
    r = md(server, conn, "PUT", f"/namespaces/{name}/tags/c", json_body={"name": "d"})
    assert r.status_code == 200 and r.json()["name"] == "d"
    dup = md(server, conn, "POST", f"/namespaces/{name}/tags",
             json_body={"tags": [{"name": "x"}, {"name": "x"}]})
    assert dup.status_code == 409

    # The namespace shows everything inside it.
    full = md(server, conn, "GET", f"/namespaces/{name}").json()
    assert [o["name"] for o in full["objects"]] == ["CPU Quota"]
    assert list(full["properties"]) == ["hypervisor_type"]
    assert [t["name"] for t in full["tags"]] == ["a", "b", "d"]

    # Associations.
    conn.image.create_metadef_resource_type_association(name, name="OS::Nova::Flavor",
                                                        prefix="hw:")
    names = [a.name for a in conn.image.metadef_resource_type_associations(name)]
    assert names == ["OS::Glance::Image", "OS::Nova::Flavor"]
    again = md(server, conn, "POST", f"/namespaces/{name}/resource_types",
               json_body={"name": "OS::Nova::Flavor"})
    assert again.status_code == 409
    conn.image.delete_metadef_resource_type_association("OS::Nova::Flavor", name)
    names = [a.name for a in conn.image.metadef_resource_type_associations(name)]
    assert names == ["OS::Glance::Image"]

    # Deletes: one object, all properties, all tags, then the namespace.
    conn.image.delete_metadef_object("CPU Quota", name)
    assert list(conn.image.metadef_objects(name)) == []
    conn.image.delete_all_metadef_properties(name)
    assert md(server, conn, "GET", f"/namespaces/{name}/properties").json() == {"properties": {}}
    assert md(server, conn, "DELETE", f"/namespaces/{name}/tags").status_code == 204
    assert md(server, conn, "GET", f"/namespaces/{name}/tags").json() == {"tags": []}
    conn.image.delete_metadef_namespace(name)
    expect_http(404, conn.image.get_metadef_namespace, name)


def test_rename_protection_and_duplicates(server, conn, namespaces):
    ns = namespaces(protected=True)
    name = ns.namespace
    taken = namespaces().namespace
    # Duplicate name: 409, on create and on a rename.
    dup = md(server, conn, "POST", "/namespaces", json_body={"namespace": name})
    assert dup.status_code == 409, dup.text
    r = md(server, conn, "PUT", f"/namespaces/{name}", json_body={"namespace": taken})
    assert r.status_code == 409, r.text
    # Protected: no delete of it nor of its content.
    expect_http(403, conn.image.delete_metadef_namespace, name)
    md(server, conn, "POST", f"/namespaces/{name}/tags/keep")
    assert md(server, conn, "DELETE", f"/namespaces/{name}/tags/keep").status_code == 403
    # A rename keeps everything; the old name is gone.
    new = unique_name("renamed")
    r = md(server, conn, "PUT", f"/namespaces/{name}",
           json_body={"namespace": new, "protected": False, "visibility": "private"})
    assert r.status_code == 200, r.text
    assert r.json()["namespace"] == new and r.json()["protected"] is False
    assert md(server, conn, "GET", f"/namespaces/{name}").status_code == 404
    tags = md(server, conn, "GET", f"/namespaces/{new}/tags").json()["tags"]
    assert [t["name"] for t in tags] == ["keep"]
    assert md(server, conn, "DELETE", f"/namespaces/{new}").status_code == 204


def test_visibility_and_admin_only_writes(server, conn, namespaces, member):
    other, _ = member
    public = namespaces(visibility="public").namespace
    private = namespaces(visibility="private").namespace
    seen = [n.namespace for n in other.image.metadef_namespaces()]
    assert public in seen and private not in seen
    assert other.image.get_metadef_namespace(public).namespace == public
    expect_http(404, other.image.get_metadef_namespace, private)
    r = raw(server, other, "GET", f"/image/v2/metadefs/namespaces/{private}/objects")
    assert r.status_code == 404
    # Writes need the admin role (Glance's metadef_admin), even on a public namespace.
    expect_http(403, other.image.create_metadef_namespace, namespace=unique_name("mine"))
    r = raw(server, other, "POST", f"/image/v2/metadefs/namespaces/{public}/tags/t")
    assert r.status_code == 403
    r = raw(server, other, "DELETE", f"/image/v2/metadefs/namespaces/{public}")
    assert r.status_code == 403


def test_bad_input(server, conn, namespaces):
    missing = unique_name("missing")
    for method, path in [("GET", f"/namespaces/{missing}"),
                         ("GET", f"/namespaces/{missing}/objects"),
                         ("DELETE", f"/namespaces/{missing}"),
                         ("POST", f"/namespaces/{missing}/tags/t"),
                         ("GET", f"/namespaces/{missing}/resource_types")]:
        assert md(server, conn, method, path).status_code == 404, (method, path)
    name = namespaces().namespace
    for body in [None, b"{not json", b"[1]"]:
        r = md(server, conn, "POST", "/namespaces", data=body,
               headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r.text)
    bad = [{"namespace": "x" * 81},
           {"namespace": "ok", "visibility": "everyone"},
           {"namespace": "ok", "protected": "yes"},
           {"namespace": "ok", "bogus": 1},
           {"display_name": "no namespace"}]
    for body in bad:
        r = md(server, conn, "POST", "/namespaces", json_body=body)
        assert r.status_code == 400, (body, r.text)
    # A property needs a title and a known type; an object a name.
    r = md(server, conn, "POST", f"/namespaces/{name}/properties",
           json_body={"name": "p", "type": "string"})
    assert r.status_code == 400, r.text
    r = md(server, conn, "POST", f"/namespaces/{name}/properties",
           json_body={"name": "p", "title": "P", "type": "float"})
    assert r.status_code == 400, r.text
    r = md(server, conn, "POST", f"/namespaces/{name}/objects", json_body={"description": "x"})
    assert r.status_code == 400, r.text
    assert md(server, conn, "GET", f"/namespaces/{name}/objects/nope").status_code == 404
    assert md(server, conn, "GET", "/namespaces?limit=x").status_code == 400
    assert md(server, conn, "GET", "/namespaces?sort_dir=sideways").status_code == 400
    # Too many tags at once: refused whole (413), nothing stored.
    many = {"tags": [{"name": f"t{i}"} for i in range(300)]}
    r = md(server, conn, "POST", f"/namespaces/{name}/tags", json_body=many)
    assert r.status_code == 413, r.text
    assert md(server, conn, "GET", f"/namespaces/{name}/tags").json() == {"tags": []}


def test_schemas_and_image_tasks(server, conn):
    names = {"namespace": "namespace", "namespaces": "namespaces", "object": "object",
             "objects": "objects", "property": "property", "properties": "properties",
             "tag": "tag", "tags": "tags", "resource_type": "resource_type_association",
             "resource_types": "resource_type_associations"}
    for path, name in names.items():
        r = raw(server, conn, "GET", f"/image/v2/schemas/metadefs/{path}")
        assert r.status_code == 200 and r.json()["name"] == name, path
    assert conn.image.get_metadef_namespace_schema().name == "namespace"
    img = conn.image.create_image(name=unique_name("tasks"))
    try:
        r = raw(server, conn, "GET", f"/image/v2/images/{img.id}/tasks")
        assert r.status_code == 200 and r.json() == {"tasks": []}
    finally:
        conn.image.delete_image(img.id)
    r = raw(server, conn, "GET", "/image/v2/images/00000000-0000-4000-8000-000000000000/tasks")
    assert r.status_code == 404
