"""Application credential access rules (docs/keystone-v3.md "Access rules"), through
openstacksdk: created with a credential (reused by service, method and path), listed, shown,
deleted only once no credential uses them, and enforced — a token of a credential with rules
reaches only what a rule allows (keystonemiddleware's check), on compute, image and identity.

Every refusal is Keystone's (or the service's) status and envelope, and changes nothing."""

from __future__ import annotations

import openstack
import pytest
from openstack import exceptions as os_exc

from nubis import unique_name
from test_openstack_support import (  # noqa: F401 (fixtures)
    REGION,
    conn,
    expect_http,
    member_of_new_project,
    raw,
)

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SERVERS = {"service": "compute", "method": "GET", "path": "/v2.1/servers/*"}
SECRET = "access-rules-secret-1"


def app_conn(server, ac_id):
    return openstack.connect(auth_url=f"{server.base_url}/identity/v3",
                             auth_type="v3applicationcredential",
                             application_credential_id=ac_id,
                             application_credential_secret=SECRET,
                             region_name=REGION, load_yaml_config=False, load_envvars=False)


def make(member, uid, rules):
    return member.identity.create_application_credential(
        uid, name=unique_name("ac"), secret=SECRET, access_rules=rules)


def test_a_credential_with_rules_reaches_only_what_they_allow(server, conn):
    member, _, uid = member_of_new_project(server, conn)
    ac = make(member, uid, [SERVERS])
    assert [{k: r[k] for k in ("service", "method", "path")} for r in ac.access_rules] == [SERVERS]
    limited = app_conn(server, ac.id)
    # GET /v2.1/servers/detail matches the rule.
    assert isinstance(list(limited.compute.servers()), list)
    # The token says what it is held to.
    tok = raw(server, limited, "GET", "/identity/v3/auth/tokens",
              headers={"X-Subject-Token": limited.auth_token})
    assert tok.status_code == 200, tok.text
    assert tok.json()["token"]["application_credential"]["access_rules"][0]["path"] == "/v2.1/servers/*"
    # Anything else: 401 in each service's envelope.
    for call in (lambda: list(limited.compute.flavors()),
                 lambda: list(limited.image.images()),
                 lambda: list(limited.identity.application_credentials(uid))):
        with pytest.raises(os_exc.HttpException) as e:
            call()
        assert e.value.status_code == 401, e.value
    r = raw(server, limited, "POST", "/compute/v2.1/servers", json_body={"server": {}})
    assert r.status_code == 401, r.text
    # Without rules, the same user's credential reaches everything its roles allow.
    free = app_conn(server, make(member, uid, None).id)
    assert isinstance(list(free.compute.flavors()), list)
    assert isinstance(list(free.image.images()), list)


def test_rules_are_shared_listed_and_deleted_once_unused(server, conn):
    member, _, uid = member_of_new_project(server, conn)
    a = make(member, uid, [SERVERS])
    b = make(member, uid, [dict(SERVERS)])
    rid = a.access_rules[0]["id"]
    assert b.access_rules[0]["id"] == rid
    # A rule named by ID, with a new one.
    images = {"service": "image", "method": "GET", "path": "/v2/images"}
    c = make(member, uid, [{"id": rid}, images])
    assert [r["id"] for r in c.access_rules][0] == rid
    listed = {r.id: r for r in member.identity.access_rules(uid)}
    assert len(listed) == 2 and listed[rid].path == SERVERS["path"]
    assert member.identity.get_access_rule(uid, rid).method == "GET"
    # In use: 403, kept.
    expect_http(403, member.identity.delete_access_rule, uid, rid)
    for ac in (a, b, c):
        member.identity.delete_application_credential(uid, ac)
    assert rid in {r.id for r in member.identity.access_rules(uid)}
    member.identity.delete_access_rule(uid, rid)
    assert rid not in {r.id for r in member.identity.access_rules(uid)}
    expect_http(404, member.identity.get_access_rule, uid, rid)
    # Another user sees none of them; the admin may list them.
    other, _, other_uid = member_of_new_project(server, conn)
    expect_http(403, lambda: list(other.identity.access_rules(uid)))
    assert len(list(conn.identity.access_rules(uid))) == 1


def test_bad_access_rules_are_400_and_make_nothing(server, conn):
    member, _, uid = member_of_new_project(server, conn)
    base = f"/identity/v3/users/{uid}/application_credentials"
    bad = [
        [{**SERVERS, "method": "FETCH"}],
        [{**SERVERS, "path": "v2.1/servers"}],
        [{**SERVERS, "path": "/" + "x" * 225}],
        [{**SERVERS, "service": ""}],
        [{**SERVERS, "extra": 1}],
        [{"service": "compute", "method": "GET"}],
        [{**SERVERS, "id": "abc"}],
        [{**SERVERS, "method": 1}],
        ["GET /v2.1/servers"],
        {"service": "compute"},
        [SERVERS] * 65,
    ]
    for rules in bad:
        r = raw(server, member, "POST", base, json_body={"application_credential": {
            "name": unique_name("ac"), "access_rules": rules}})
        assert r.status_code == 400, (rules, r.text)
        assert r.json()["error"]["code"] == 400
    # An ID that is not one of the user's rules: 404.
    r = raw(server, member, "POST", base, json_body={"application_credential": {
        "name": unique_name("ac"), "access_rules": [{"id": "0" * 32}]}})
    assert r.status_code == 404, r.text
    assert list(member.identity.application_credentials(uid)) == []
    assert list(member.identity.access_rules(uid)) == []
