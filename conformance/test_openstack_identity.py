"""Keystone v3 (shared/specs/openstack.md §1): version documents, password tokens, the
catalog, validation and revocation, and 401 for bad credentials."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from keystoneauth1 import exceptions as ks_exc

from nubis import ADMIN_PASSWORD
from test_openstack_support import conn, connect, raw  # noqa: F401 (fixture)

KEYSTONE_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"

# openstacksdk announces its own future API changes on every call; they are not ours.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def test_version_documents(server, conn):  # noqa: F811
    r = raw(server, conn, "GET", "/identity", token="")
    assert r.status_code == 300
    values = r.json()["versions"]["values"]
    assert [v["id"] for v in values] == ["v3.14"]
    assert values[0]["links"][0]["href"] == f"{server.base_url}/identity/v3/"
    for path in ("/identity/v3", "/identity/v3/"):
        r = raw(server, conn, "GET", path, token="")
        assert r.status_code == 200
        assert r.json()["version"]["status"] == "stable"
    assert r.headers["x-openstack-request-id"].startswith("req-")


def test_token_and_catalog(server, conn):  # noqa: F811
    token = conn.session.get_token()
    assert token
    access = conn.session.auth.get_access(conn.session)
    assert access.username == "admin"
    assert access.project_name == "admin"
    assert access.user_domain_name == "Default"
    assert sorted(access.role_names) == ["admin", "member", "reader"]
    expires = access.expires
    now = datetime.now(timezone.utc)
    assert now + timedelta(minutes=50) < expires <= now + timedelta(minutes=61)
    catalog = access.service_catalog
    base = server.base_url
    for service, url in [("compute", f"{base}/compute/v2.1"), ("image", f"{base}/image"),
                         ("identity", f"{base}/identity")]:
        for interface in ("public", "internal", "admin"):
            got = catalog.url_for(service_type=service, interface=interface, region_name="RegionOne")
            assert got == url, (service, interface, got)
    # The SDK resolves each service's endpoint from the catalog.
    assert conn.compute.get_endpoint() == f"{base}/compute/v2.1"


def test_token_body_shape(server, conn):  # noqa: F811
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    r = raw(server, conn, "POST", "/identity/v3/auth/tokens", json_body=body, token="")
    assert r.status_code == 201, r.text
    subject = r.headers["X-Subject-Token"]
    assert subject
    tok = r.json()["token"]
    assert tok["methods"] == ["password"]
    assert tok["user"]["name"] == "admin"
    assert tok["user"]["domain"] == {"id": "default", "name": "Default"}
    assert tok["project"]["name"] == "admin"
    assert tok["is_domain"] is False
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", tok["audit_ids"][0])
    issued = datetime.strptime(tok["issued_at"], KEYSTONE_TIME)
    expires = datetime.strptime(tok["expires_at"], KEYSTONE_TIME)
    assert timedelta(minutes=59) < expires - issued <= timedelta(hours=1)
    assert {s["type"] for s in tok["catalog"]} == {"compute", "image", "identity"}
    # Unscoped: no project, no catalog.
    body["auth"].pop("scope")
    r = raw(server, conn, "POST", "/identity/v3/auth/tokens", json_body=body, token="")
    assert r.status_code == 201
    assert "project" not in r.json()["token"] and "catalog" not in r.json()["token"]
    # Re-scope with the unscoped token.
    unscoped = r.headers["X-Subject-Token"]
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                     "scope": {"project": {"id": tok["project"]["id"]}}}}
    r = raw(server, conn, "POST", "/identity/v3/auth/tokens", json_body=body, token="")
    assert r.status_code == 201, r.text
    assert r.json()["token"]["project"]["id"] == tok["project"]["id"]


def test_validate_and_revoke(server, conn):  # noqa: F811
    other = connect(server)
    subject = other.auth_token
    r = raw(server, conn, "GET", "/identity/v3/auth/tokens", headers={"X-Subject-Token": subject})
    assert r.status_code == 200
    assert r.headers["X-Subject-Token"] == subject
    assert r.json()["token"]["user"]["name"] == "admin"
    assert raw(server, conn, "HEAD", "/identity/v3/auth/tokens",
               headers={"X-Subject-Token": subject}).status_code == 200
    r = raw(server, conn, "DELETE", "/identity/v3/auth/tokens", headers={"X-Subject-Token": subject})
    assert r.status_code == 204
    r = raw(server, conn, "GET", "/identity/v3/auth/tokens", headers={"X-Subject-Token": subject})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404
    # A revoked token no longer opens Nova.
    r = raw(server, conn, "GET", "/compute/v2.1/servers", token=subject)
    assert r.status_code == 401
    # Validation itself needs a valid caller token.
    r = raw(server, conn, "GET", "/identity/v3/auth/tokens", token="bogus",
            headers={"X-Subject-Token": conn.auth_token})
    assert r.status_code == 401


@pytest.mark.parametrize("field,value", [
    ("password", "wrong-password"),
    ("name", "nobody"),
    ("domain", {"name": "Other"}),
])
def test_bad_credentials_are_401(server, conn, field, value):  # noqa: F811
    user = {"name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}
    user[field] = value
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                     "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    r = raw(server, conn, "POST", "/identity/v3/auth/tokens", json_body=body, token="")
    assert r.status_code == 401
    err = r.json()["error"]
    assert (err["code"], err["title"]) == (401, "Unauthorized")
    assert "X-Subject-Token" not in r.headers


def test_unknown_project_is_401_and_malformed_is_400(server, conn):  # noqa: F811
    user = {"name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                     "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}}
    assert raw(server, conn, "POST", "/identity/v3/auth/tokens", json_body=body,
               token="").status_code == 401
    r = raw(server, conn, "POST", "/identity/v3/auth/tokens", data=b"{not json", token="",
            headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["title"] == "Bad Request"
    r = raw(server, conn, "POST", "/identity/v3/auth/tokens", json_body={"auth": {}}, token="")
    assert r.status_code == 400


def test_sdk_with_wrong_password_fails_401(server):
    bad = connect(server, password="not-the-password")
    with pytest.raises(ks_exc.Unauthorized):
        list(bad.compute.flavors())
