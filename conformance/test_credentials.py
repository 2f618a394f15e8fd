"""Credentials against a real `nubis serve` through the official clients: access keys made,
disabled and deleted through the admin API and refused by every dialect with its own code;
the bootstrap environment rotating the admin key and password on restart; Keystone token
abuse (a reader validating or revoking an admin's token, unbounded re-scoping); throttled
failed logins (Keystone and the admin API); the catalog built from the public URL, never from
the Host header."""

from __future__ import annotations

import base64

import openstack
import pytest
import requests
from keystoneauth1 import exceptions as ks_exc

from nubis import ADMIN_KEY_ID, ADMIN_KEY_SECRET, ADMIN_PASSWORD, Cvm, ecs_client, expect_ecs_error, expect_error

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

OS_REGION = "RegionOne"
READER_PASSWORD = "Auditor@2026pw"


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def connect(server, username: str = "admin", password: str = ADMIN_PASSWORD):
    return openstack.connect(
        auth_url=f"{server.base_url}/identity/v3", username=username, password=password,
        project_name="admin", user_domain_name="Default", project_domain_name="Default",
        region_name=OS_REGION, load_yaml_config=False, load_envvars=False,
    )


def password_body(user: str, password: str) -> dict:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}


def tokens(server, method: str, caller: str, subject: str) -> requests.Response:
    return session().request(method, f"{server.base_url}/identity/v3/auth/tokens",
                             headers={"X-Auth-Token": caller, "X-Subject-Token": subject}, timeout=30)


def admin_call(server, method: str, path: str, auth=(ADMIN_KEY_ID, ADMIN_KEY_SECRET), **kw) -> requests.Response:
    return session().request(method, f"{server.base_url}/admin/v1/{path}", auth=auth, timeout=30, **kw)


def keystone_error(r: requests.Response, status: int, title: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert (err["code"], err["title"]) == (status, title), err


# --------------------------------------------------------------------------------------
# Keystone tokens


@pytest.fixture(scope="module")
def tok_server(server_factory):
    s = server_factory("credentials-tokens")
    r = admin_call(s, "POST", "keystone-users",
                   json={"name": "auditor", "password": READER_PASSWORD, "roles": ["reader"]})
    assert r.status_code == 204, r.text
    return s


def test_reader_cannot_validate_or_revoke_an_admins_token(tok_server):
    admin = connect(tok_server)
    reader = connect(tok_server, "auditor", READER_PASSWORD)
    admin_token, reader_token = admin.auth_token, reader.auth_token
    for method in ("GET", "HEAD", "DELETE"):
        r = tokens(tok_server, method, reader_token, admin_token)
        assert r.status_code == 403, (method, r.status_code)
        if method != "HEAD":
            keystone_error(r, 403, "Forbidden")
        assert "X-Subject-Token" not in r.headers
    # The admin's token survived the refused DELETE and still opens Nova.
    assert list(admin.compute.flavors())
    # A token may look at itself; an admin at anyone's.
    assert tokens(tok_server, "GET", reader_token, reader_token).status_code == 200
    r = tokens(tok_server, "GET", admin_token, reader_token)
    assert r.status_code == 200 and r.json()["token"]["user"]["name"] == "auditor"
    # keystoneauth's own validation path (the admin validating a token) agrees.
    access = admin.session.auth.get_access(admin.session)
    assert access.username == "admin"
    assert tokens(tok_server, "DELETE", admin_token, reader_token).status_code == 204
    assert tokens(tok_server, "GET", admin_token, reader_token).status_code == 404


def test_rescoping_is_bounded_and_keeps_the_expiry(tok_server):
    conn = connect(tok_server, "auditor", READER_PASSWORD)
    first = conn.auth_token
    expires = tokens(tok_server, "GET", first, first).json()["token"]["expires_at"]
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": first}},
                     "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    issued = []
    s = session()
    for _ in range(110):
        r = s.post(f"{tok_server.base_url}/identity/v3/auth/tokens", json=body, timeout=30)
        if r.status_code == 404:
            break  # the original was evicted by its own re-scopes (Keystone's TokenNotFound)
        assert r.status_code == 201, r.text
        assert r.json()["token"]["expires_at"] == expires
        issued.append(r.headers["X-Subject-Token"])
    assert len(issued) == 100, len(issued)  # the 100th re-scope evicted the original
    last = issued[-1]
    assert tokens(tok_server, "GET", last, first).status_code == 404
    assert tokens(tok_server, "GET", last, issued[0]).status_code == 200


def test_catalog_ignores_the_host_header(tok_server):
    r = session().post(f"{tok_server.base_url}/identity/v3/auth/tokens",
                       json=password_body("admin", ADMIN_PASSWORD),
                       headers={"Host": "evil.example:666"}, timeout=30)
    assert r.status_code == 201
    assert "evil.example" not in r.text
    urls = {e["url"] for svc in r.json()["token"]["catalog"] for e in svc["endpoints"]}
    assert urls == {f"{tok_server.base_url}/compute/v2.1", f"{tok_server.base_url}/image",
                    f"{tok_server.base_url}/identity"}
    r = session().get(f"{tok_server.base_url}/identity/v3", headers={"Host": "evil.example:666"}, timeout=30)
    assert "evil.example" not in r.text


def test_configured_public_url_is_the_catalog(server_factory):
    s = server_factory("credentials-public-url", NUBIS_PUBLIC_URL="https://cloud.example.com/nubis/")
    r = session().post(f"{s.base_url}/identity/v3/auth/tokens",
                       json=password_body("admin", ADMIN_PASSWORD),
                       headers={"Host": "evil.example:666"}, timeout=30)
    assert r.status_code == 201
    urls = {e["url"] for svc in r.json()["token"]["catalog"] for e in svc["endpoints"]}
    assert urls == {"https://cloud.example.com/nubis/compute/v2.1",
                    "https://cloud.example.com/nubis/image",
                    "https://cloud.example.com/nubis/identity"}


@pytest.mark.parametrize("url", ["ftp://x.example", "http://x.example/?a=b", "http://x.example:99999", "x.example"])
def test_bad_public_url_is_refused_at_start(server_factory, url):
    with pytest.raises(RuntimeError, match="public"):
        server_factory("credentials-bad-url", NUBIS_PUBLIC_URL=url)


# --------------------------------------------------------------------------------------
# Throttling


def test_keystone_failed_logins_are_throttled(server_factory):
    s = server_factory("credentials-throttle")
    for _ in range(5):
        with pytest.raises(ks_exc.Unauthorized):
            connect(s, password="not-the-password").session.get_token()
    # Blocked now, the right password included: keystoneauth sees Keystone's 429.
    with pytest.raises(ks_exc.TooManyRequests):
        connect(s).session.get_token()
    r = session().post(f"{s.base_url}/identity/v3/auth/tokens",
                       json=password_body("admin", ADMIN_PASSWORD), timeout=30)
    keystone_error(r, 429, "Too Many Requests")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Per source: 20 failures from this address over other (unknown) users block everyone.
    for n in range(15):
        r = session().post(f"{s.base_url}/identity/v3/auth/tokens",
                           json=password_body(f"nobody{n}", "x"), timeout=30)
        assert r.status_code == 401, (n, r.status_code)
    r = session().post(f"{s.base_url}/identity/v3/auth/tokens",
                       json=password_body("someone-else", "x"), timeout=30)
    keystone_error(r, 429, "Too Many Requests")


def test_admin_api_basic_auth_is_throttled_and_checked_before_the_body(server_factory):
    s = server_factory("credentials-admin-throttle")
    # No credentials and a malformed body: 401 in the admin API's JSON shape, not a 400/422.
    r = session().post(f"{s.base_url}/admin/v1/keystone-users", data=b"{not json",
                       headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "Unauthorized"
    # With credentials the same body is the admin API's JSON 400.
    r = admin_call(s, "POST", "keystone-users", data=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidBody")
    for _ in range(5):
        assert admin_call(s, "GET", "access-keys", auth=(ADMIN_KEY_ID, "wrong")).status_code == 401
    r = admin_call(s, "GET", "access-keys")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "TooManyRequests"
    assert 1 <= int(r.headers["Retry-After"]) <= 60


# --------------------------------------------------------------------------------------
# Access keys through every dialect


def test_access_keys_made_disabled_and_deleted_through_the_admin_api(server_factory):
    s = server_factory("credentials-keys")
    r = admin_call(s, "POST", "access-keys")
    assert r.status_code == 201, r.text
    key = r.json()["access_key"]
    kid, secret = key["id"], key["secret"]
    listed = admin_call(s, "GET", "access-keys").json()["access_keys"]
    assert sorted(k["id"] for k in listed) == sorted([ADMIN_KEY_ID, kid])
    assert secret not in str(listed) and ADMIN_KEY_SECRET not in str(listed)
    cvm = Cvm(s.endpoint, secret_id=kid, secret_key=secret, retry=False)
    assert cvm.call("DescribeZones")["ZoneSet"]
    ecs = ecs_client(s, "legacy", access_key_id=kid, access_key_secret=secret, retry=False)
    assert ecs.call("DescribeRegions")["Regions"]
    assert admin_call(s, "GET", "access-keys", auth=(kid, secret)).status_code == 200

    r = admin_call(s, "PATCH", f"access-keys/{kid}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["access_key"]["enabled"] is False
    expect_error("AuthFailure.SecretIdNotFound", cvm.call, "DescribeZones")
    expect_ecs_error(400, "InvalidAccessKeyId.Inactive", ecs.call, "DescribeRegions")
    tea = ecs_client(s, "tea", access_key_id=kid, access_key_secret=secret, retry=False)
    expect_ecs_error(400, "InvalidAccessKeyId.Inactive", tea.call, "DescribeRegions")
    assert admin_call(s, "GET", "access-keys", auth=(kid, secret)).status_code == 401

    # The bootstrap key is now the last enabled one: 409 with a reason.
    for method, kw in (("PATCH", {"json": {"enabled": False}}), ("DELETE", {})):
        r = admin_call(s, method, f"access-keys/{ADMIN_KEY_ID}", **kw)
        assert r.status_code == 409, r.text
        assert "last enabled key" in r.json()["error"]["message"]

    assert admin_call(s, "DELETE", f"access-keys/{kid}").status_code == 204
    expect_error("AuthFailure.SecretIdNotFound", cvm.call, "DescribeZones")
    expect_ecs_error(404, "InvalidAccessKeyId.NotFound", ecs.call, "DescribeRegions")
    assert admin_call(s, "GET", "access-keys", auth=(kid, secret)).status_code == 401


# --------------------------------------------------------------------------------------
# Bootstrap rotation across restarts


def test_bootstrap_env_rotates_on_restart(server_factory):
    s = server_factory("credentials-rotate")
    made = admin_call(s, "POST", "access-keys").json()["access_key"]
    assert connect(s).session.get_token()
    s.stop()
    new_id, new_secret, new_password = "AKIDnubisRotated000000000000000000", "rotatedSecret000000000000000000", "Rotated@Passw0rd!"
    s.env_overrides.update(NUBIS_ADMIN_ACCESS_KEY_ID=new_id, NUBIS_ADMIN_ACCESS_KEY_SECRET=new_secret,
                           NUBIS_ADMIN_PASSWORD=new_password)
    log_from = s.log_path.stat().st_size
    s.start()
    log = s.log_path.read_text(errors="replace")[log_from:]
    assert "NUBIS_ADMIN_ACCESS_KEY_ID changed" in log and "previous bootstrap access key revoked" in log, log
    assert "NUBIS_ADMIN_PASSWORD changed" in log, log
    for secret in (ADMIN_KEY_SECRET, new_secret, ADMIN_PASSWORD, new_password):
        assert secret not in log
    # The old key and password are refused everywhere; the new ones work.
    expect_error("AuthFailure.SecretIdNotFound", Cvm(s.endpoint, retry=False).call, "DescribeZones")
    expect_ecs_error(404, "InvalidAccessKeyId.NotFound", ecs_client(s, retry=False).call, "DescribeRegions")
    assert admin_call(s, "GET", "access-keys").status_code == 401
    with pytest.raises(ks_exc.Unauthorized):
        connect(s).session.get_token()
    assert Cvm(s.endpoint, secret_id=new_id, secret_key=new_secret).call("DescribeZones")["ZoneSet"]
    assert connect(s, password=new_password).session.get_token()
    keys = admin_call(s, "GET", "access-keys", auth=(new_id, new_secret)).json()["access_keys"]
    assert sorted(k["id"] for k in keys) == sorted([new_id, made["id"]]), "admin API keys survive"

    # Same ID, another secret: the secret is replaced.
    s.stop()
    s.env_overrides["NUBIS_ADMIN_ACCESS_KEY_SECRET"] = "rotatedAgain0000000000000000000"
    s.start()
    expect_error("AuthFailure.SignatureFailure",
                 Cvm(s.endpoint, secret_id=new_id, secret_key=new_secret, retry=False).call, "DescribeZones")
    assert Cvm(s.endpoint, secret_id=new_id, secret_key="rotatedAgain0000000000000000000").call("DescribeZones")
    assert admin_call(s, "GET", "access-keys", auth=(new_id, new_secret)).status_code == 401
