"""Keystone v3 catalog management (regions, services, endpoints), credentials and EC2
credentials (docs/keystone-v3.md), through python-openstackclient and
openstacksdk, with bad input answered in Keystone's envelope."""

from __future__ import annotations

import json

import openstack
import requests

from nubis import ADMIN_PASSWORD, unique_name
from test_openstack_identity_admin import PASSWORD, cli, connect_as, token_for
from test_keystone_system_roles import admin_token, envelope, ks


def test_regions_services_endpoints_cli_and_token_catalog(server):
    region = unique_name("reg")
    cli(server, "region", "create", "--description", "r", region)
    sub = cli(server, "region", "create", "--parent-region", region, "-f", "json",
              unique_name("sub"))
    assert sub["parent_region"] == region
    svc = cli(server, "service", "create", "--name", unique_name("svc"), "--description", "d",
              "-f", "json", "tempest-like-type")
    url = "https://example.test:9999/v1"
    ep = cli(server, "endpoint", "create", "--region", region, svc["id"], "public", url,
             "-f", "json")
    assert ep["url"] == url and ep["region"] == region and ep["enabled"] is True
    # The token catalog carries the new service with its endpoint; the built-ins stay.
    tok = token_for(server, "admin", ADMIN_PASSWORD, "admin").json()["token"]
    by_type = {s["type"]: s for s in tok["catalog"]}
    assert by_type["tempest-like-type"]["endpoints"][0]["url"] == url
    assert by_type["compute"]["endpoints"][0]["url"].startswith(server.base_url)
    # Disabled, the endpoint leaves the catalog.
    cli(server, "endpoint", "set", "--disable", ep["id"])
    tok = token_for(server, "admin", ADMIN_PASSWORD, "admin").json()["token"]
    assert {s["type"]: s for s in tok["catalog"]}["tempest-like-type"]["endpoints"] == []
    listed = cli(server, "endpoint", "list", "--service", svc["id"], "-f", "json")
    assert [x["ID"] for x in listed] == [ep["id"]]
    assert any(x["Service Type"] == "compute" for x in cli(server, "endpoint", "list",
                                                            "-f", "json"))
    adm = admin_token(server)
    # A region with endpoints, or sub-regions, is not deleted (403).
    envelope(ks(server, "DELETE", f"regions/{region}", adm), 403)
    # Deleting the service takes its endpoints along.
    cli(server, "service", "delete", svc["id"])
    envelope(ks(server, "GET", f"endpoints/{ep['id']}", adm), 404)
    cli(server, "region", "delete", sub["region"])
    cli(server, "region", "delete", region)
    envelope(ks(server, "GET", f"regions/{region}", adm), 404)


def test_catalog_with_openstacksdk_and_bad_input(server):
    conn = connect_as(server, "admin", ADMIN_PASSWORD, "admin")
    r = conn.identity.create_region(id=unique_name("sdkreg"), description="x")
    assert r.id in {x.id for x in conn.identity.regions()}
    s = conn.identity.create_service(type=unique_name("t"), name="n", enabled=True)
    e = conn.identity.create_endpoint(service_id=s.id, interface="internal",
                                      url="http://x.test/", region_id=r.id)
    assert conn.identity.get_endpoint(e.id).interface == "internal"
    e = conn.identity.update_endpoint(e, url="http://y.test/")
    assert e.url == "http://y.test/"
    adm = admin_token(server)
    base = {"service_id": s.id, "interface": "public", "url": "http://z.test/"}
    # enabled must be a boolean; interface one of three; url a URL; the service and a
    # region_id must exist.
    envelope(ks(server, "POST", "endpoints", adm,
                json={"endpoint": {**base, "enabled": "True"}}), 400)
    envelope(ks(server, "PATCH", f"endpoints/{e.id}", adm,
                json={"endpoint": {"enabled": "False"}}), 400)
    envelope(ks(server, "POST", "endpoints", adm,
                json={"endpoint": {**base, "interface": "private"}}), 400)
    envelope(ks(server, "POST", "endpoints", adm,
                json={"endpoint": {**base, "url": "not a url"}}), 400)
    envelope(ks(server, "POST", "endpoints", adm,
                json={"endpoint": {**base, "service_id": "nope"}}), 400)
    envelope(ks(server, "POST", "endpoints", adm,
                json={"endpoint": {**base, "region_id": "nope"}}), 400)
    envelope(ks(server, "POST", "services", adm, json={"service": {"name": "no-type"}}), 400)
    envelope(ks(server, "POST", "regions", adm, json={"region": {"id": r.id}}), 409)
    envelope(ks(server, "PATCH", f"regions/{r.id}", adm,
                json={"region": {"parent_region_id": r.id}}), 400)
    # The built-in catalog is not changed.
    builtin = [x for x in conn.identity.services() if x.type == "compute"][0]
    envelope(ks(server, "DELETE", f"services/{builtin.id}", adm), 403)
    envelope(ks(server, "DELETE", "regions/RegionOne", adm), 403)
    # A member reads regions but not services, and changes nothing.
    proj, user = unique_name("cp"), unique_name("cu")
    cli(server, "project", "create", "--domain", "default", proj)
    cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, user)
    cli(server, "role", "add", "--user", user, "--project", proj, "member")
    mt = token_for(server, user, PASSWORD, proj).headers["X-Subject-Token"]
    assert ks(server, "GET", "regions", mt).status_code == 200
    envelope(ks(server, "GET", "services", mt), 403)
    envelope(ks(server, "POST", "regions", mt, json={"region": {}}), 403)
    cat = ks(server, "GET", "auth/catalog", mt).json()["catalog"]
    assert {"compute", "identity", "image"} <= {x["type"] for x in cat}
    conn.identity.delete_service(s)
    conn.identity.delete_region(r)
    cli(server, "user", "delete", user)
    cli(server, "project", "delete", proj)


def test_credentials_and_ec2(server):
    proj, user = unique_name("crp"), unique_name("cru")
    cli(server, "project", "create", "--domain", "default", proj)
    uid = cli(server, "user", "create", "--domain", "default", "--password", PASSWORD,
              "-f", "json", user)["id"]
    cli(server, "role", "add", "--user", user, "--project", proj, "member")
    conn = connect_as(server, "admin", ADMIN_PASSWORD, "admin")
    pid = conn.identity.find_project(proj).id
    blob = json.dumps({"access": unique_name("ak"), "secret": "sk"})
    cred = conn.identity.create_credential(type="ec2", blob=blob, user_id=uid, project_id=pid)
    assert json.loads(cred.blob)["secret"] == "sk"
    assert cred.id in {c.id for c in conn.identity.credentials()}
    new_blob = json.dumps({"access": unique_name("ak2"), "secret": "sk2"})
    cred = conn.identity.update_credential(cred, blob=new_blob)
    assert json.loads(conn.identity.get_credential(cred.id).blob)["secret"] == "sk2"
    # The owner sees its own credentials; another member does not see them (403).
    env = {"OS_USERNAME": user, "OS_PASSWORD": PASSWORD, "OS_PROJECT_NAME": proj}
    mine = cli(server, "credential", "list", "-f", "json", env_extra=env)
    assert [x["ID"] for x in mine] == [cred.id]
    other = unique_name("cro")
    cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, other)
    cli(server, "role", "add", "--user", other, "--project", proj, "member")
    ot = token_for(server, other, PASSWORD, proj).headers["X-Subject-Token"]
    envelope(ks(server, "GET", f"credentials/{cred.id}", ot), 403)
    envelope(ks(server, "POST", "credentials", ot, json={"credential": {
        "type": "cert", "blob": "x", "user_id": uid}}), 403)
    assert ks(server, "GET", "credentials", ot).json()["credentials"] == []
    adm = admin_token(server)
    # Bad input: an ec2 blob without access, an ec2 credential without project, a missing
    # type, an unknown user, a change of owner.
    envelope(ks(server, "POST", "credentials", adm, json={"credential": {
        "type": "ec2", "blob": "{}", "user_id": uid, "project_id": pid}}), 400)
    envelope(ks(server, "POST", "credentials", adm, json={"credential": {
        "type": "ec2", "blob": blob, "user_id": uid}}), 400)
    envelope(ks(server, "POST", "credentials", adm, json={"credential": {
        "blob": "x", "user_id": uid}}), 400)
    envelope(ks(server, "POST", "credentials", adm, json={"credential": {
        "type": "cert", "blob": "x", "user_id": "nope"}}), 404)
    envelope(ks(server, "PATCH", f"credentials/{cred.id}", adm, json={"credential": {
        "user_id": "someone"}}), 400)
    conn.identity.delete_credential(cred)
    envelope(ks(server, "GET", f"credentials/{cred.id}", adm), 404)
    # EC2 credentials through the CLI (OS-EC2).
    ec2 = cli(server, "ec2", "credentials", "create", "-f", "json", env_extra=env)
    assert ec2["access"] and ec2["secret"] and ec2["project_id"] == pid
    listed = cli(server, "ec2", "credentials", "list", "-f", "json", env_extra=env)
    assert [x["Access"] for x in listed] == [ec2["access"]]
    shown = ks(server, "GET", f"users/{uid}/credentials/OS-EC2/{ec2['access']}", adm)
    assert shown.json()["credential"]["secret"] == ec2["secret"]
    envelope(ks(server, "GET", f"users/{uid}/credentials/OS-EC2/nope", adm), 404)
    envelope(ks(server, "POST", f"users/{uid}/credentials/OS-EC2", ot,
                json={"tenant_id": pid}), 403)
    envelope(ks(server, "POST", f"users/{uid}/credentials/OS-EC2", adm, json={}), 400)
    cli(server, "ec2", "credentials", "delete", ec2["access"], env_extra=env)
    assert cli(server, "ec2", "credentials", "list", "-f", "json", env_extra=env) == []
    # Deleting the user takes its credentials along.
    c2 = conn.identity.create_credential(type="cert", blob="b", user_id=uid)
    cli(server, "user", "delete", user)
    envelope(ks(server, "GET", f"credentials/{c2.id}", adm), 404)
    cli(server, "user", "delete", other)
    cli(server, "project", "delete", proj)


def test_policies_endpoint_groups_consumers(server, tmp_path):
    blob = tmp_path / "policy.json"
    blob.write_text('{"rule": "@"}')
    pol = cli(server, "policy", "create", "--type", "application/json", "-f", "json",
              str(blob))
    assert pol["type"] == "application/json", pol
    adm = admin_token(server)
    got = ks(server, "GET", f"policies/{pol['id']}", adm).json()["policy"]
    assert json.loads(got["blob"]) == {"rule": "@"}
    cli(server, "policy", "set", "--type", "text/plain", pol["id"])
    assert cli(server, "policy", "show", pol["id"], "-f", "json")["type"] == "text/plain"
    assert pol["id"] in {x["ID"] for x in cli(server, "policy", "list", "-f", "json")}
    cli(server, "policy", "delete", pol["id"])
    envelope(ks(server, "GET", f"policies/{pol['id']}", adm), 404)
    envelope(ks(server, "POST", "policies", adm, json={"policy": {"blob": "x"}}), 400)
    # Endpoint groups (OS-EP-FILTER).
    svc = cli(server, "service", "create", "-f", "json", unique_name("egt"))["id"]
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"service_id": svc}))
    eg = cli(server, "endpoint", "group", "create", "--description", "d", "-f", "json",
             unique_name("eg"), str(filters))
    assert eg["filters"] == {"service_id": svc} or json.loads(str(eg["filters"]).replace(
        "'", '"')) == {"service_id": svc}
    r = ks(server, "HEAD", f"OS-EP-FILTER/endpoint_groups/{eg['id']}", adm)
    assert r.status_code == 200
    envelope(ks(server, "POST", "OS-EP-FILTER/endpoint_groups", adm, json={
        "endpoint_group": {"name": "x", "filters": {"colour": "red"}}}), 400)
    envelope(ks(server, "POST", "OS-EP-FILTER/endpoint_groups", adm, json={
        "endpoint_group": {"name": "x"}}), 400)
    cli(server, "endpoint", "group", "delete", eg["id"])
    envelope(ks(server, "GET", f"OS-EP-FILTER/endpoint_groups/{eg['id']}", adm), 404)
    cli(server, "service", "delete", svc)
    # OAuth consumers (the CLI needs oauthlib, not installed here: the API directly): the
    # secret once, never again.
    r = ks(server, "POST", "OS-OAUTH1/consumers", adm, json={"consumer": {"description": "c1"}})
    assert r.status_code == 201, r.text
    con = r.json()["consumer"]
    assert con["secret"] and con["description"] == "c1"
    r = ks(server, "PATCH", f"OS-OAUTH1/consumers/{con['id']}", adm,
           json={"consumer": {"description": "c2"}})
    assert r.status_code == 200
    shown = ks(server, "GET", f"OS-OAUTH1/consumers/{con['id']}", adm).json()["consumer"]
    assert shown["description"] == "c2" and "secret" not in shown
    listed = ks(server, "GET", "OS-OAUTH1/consumers", adm).json()["consumers"]
    assert con["id"] in {x["id"] for x in listed}
    envelope(ks(server, "POST", "OS-OAUTH1/consumers", adm,
                json={"consumer": {"secret": "mine"}}), 400)
    assert ks(server, "DELETE", f"OS-OAUTH1/consumers/{con['id']}", adm).status_code == 204
    envelope(ks(server, "GET", f"OS-OAUTH1/consumers/{con['id']}", adm), 404)
