"""Keystone v3 system scope, implied roles, domain-specific roles, project hierarchy and tags,
user extra attributes and domain deletion cascading (docs/keystone-v3.md), through
python-openstackclient and openstacksdk, with bad input answered in Keystone's envelope."""

from __future__ import annotations

import requests

from nubis import ADMIN_PASSWORD, unique_name
from test_openstack_identity_admin import PASSWORD, cli, token_for


def admin_token(server) -> str:
    return token_for(server, "admin", ADMIN_PASSWORD, "admin").headers["X-Subject-Token"]


def system_token(server, user: str, password: str) -> requests.Response:
    auth = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"system": {"all": True}}}
    return requests.post(f"{server.base_url}/identity/v3/auth/tokens", json={"auth": auth},
                         timeout=10)


def ks(server, method: str, path: str, token: str, **kw) -> requests.Response:
    return requests.request(method, f"{server.base_url}/identity/v3/{path}",
                            headers={"X-Auth-Token": token}, timeout=10, **kw)


def envelope(r: requests.Response, code: int) -> None:
    assert r.status_code == code, r.text
    e = r.json()["error"]
    assert e["code"] == code and e["message"] and e["title"], e


def test_system_reader_through_the_cli(server):
    user = unique_name("sysr")
    cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, user)
    cli(server, "role", "add", "--user", user, "--user-domain", "Default", "--system", "all",
        "reader")
    listed = cli(server, "role", "assignment", "list", "--user", user, "--names", "-f", "json")
    assert [(a["Role"], a["System"]) for a in listed] == [("reader", "all")], listed
    # A system-scoped token: `system: {all: true}`, the roles on the system, a catalog.
    t = system_token(server, user, PASSWORD)
    assert t.status_code == 201, t.text
    body = t.json()["token"]
    assert body["system"] == {"all": True} and "project" not in body
    assert {r["name"] for r in body["roles"]} == {"reader"}
    assert {s["type"] for s in body["catalog"]} >= {"compute", "image", "identity"}
    tok = t.headers["X-Subject-Token"]
    # The system reader reads the directory but changes nothing.
    assert ks(server, "GET", "users", tok).status_code == 200
    assert ks(server, "GET", "roles", tok).status_code == 200
    assert ks(server, "GET", "auth/system", tok).json()["system"] == [{"all": True}]
    envelope(ks(server, "POST", "projects", tok, json={"project": {"name": unique_name("x")}}),
             403)
    # Nova's rules are project-scoped: a system token is refused there.
    assert requests.get(f"{server.base_url}/compute/v2.1/servers",
                        headers={"X-Auth-Token": tok}, timeout=10).status_code == 403
    # A user without a system role gets no system token (401), and an empty auth/system.
    other = unique_name("nosys")
    cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, other)
    envelope(system_token(server, other, PASSWORD), 401)
    cli(server, "role", "remove", "--user", user, "--system", "all", "reader")
    # The role taken away, the token dies.
    assert ks(server, "GET", "users", tok).status_code == 401
    cli(server, "user", "delete", user)
    cli(server, "user", "delete", other)


def test_system_grants_bad_input(server):
    adm = admin_token(server)
    role = cli(server, "role", "show", "reader", "-f", "json")["id"]
    envelope(ks(server, "PUT", f"system/users/nope/roles/{role}", adm), 404)
    user = cli(server, "user", "create", "--domain", "default", "--password", PASSWORD,
               "-f", "json", unique_name("sg"))["id"]
    envelope(ks(server, "PUT", f"system/users/{user}/roles/nope", adm), 404)
    envelope(ks(server, "GET", f"system/users/{user}/roles/{role}", adm), 404)
    envelope(ks(server, "DELETE", f"system/users/{user}/roles/{role}", adm), 404)
    assert ks(server, "PUT", f"system/users/{user}/roles/{role}", adm).status_code == 204
    assert ks(server, "HEAD", f"system/users/{user}/roles/{role}", adm).status_code == 204
    roles = ks(server, "GET", f"system/users/{user}/roles", adm).json()["roles"]
    assert [r["name"] for r in roles] == ["reader"]
    # Only an admin grants on the system.
    t = system_token(server, cli(server, "user", "show", user, "-f", "json")["name"], PASSWORD)
    envelope(ks(server, "PUT", f"system/users/{user}/roles/{role}",
                t.headers["X-Subject-Token"]), 403)
    # A malformed system scope is 400.
    auth = {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"system": {"all": "yes"}}}
    envelope(requests.post(f"{server.base_url}/identity/v3/auth/tokens",
                           json={"auth": auth}, timeout=10), 400)
    cli(server, "user", "delete", user)


def test_implied_roles_cli_and_effective_assignments(server):
    a, b = unique_name("ra"), unique_name("rb")
    ra = cli(server, "role", "create", "-f", "json", a)["id"]
    rb = cli(server, "role", "create", "-f", "json", b)["id"]
    out = cli(server, "implied", "role", "create", "--implied-role", b, a, "-f", "json")
    assert out["prior_role"] == ra and out["implies"] == rb, out
    listed = cli(server, "implied", "role", "list", "-f", "json")
    assert any(x["Prior Role ID"] == ra and x["Implied Role ID"] == rb for x in listed), listed
    # The bootstrap implications are listed too (admin -> member -> reader).
    assert any(x["Prior Role Name"] == "member" and x["Implied Role Name"] == "reader"
               for x in listed)
    proj = unique_name("irp")
    user = unique_name("iru")
    cli(server, "project", "create", "--domain", "default", proj)
    cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, user)
    cli(server, "role", "add", "--user", user, "--project", proj, a)
    eff = cli(server, "role", "assignment", "list", "--user", user, "--project", proj,
              "--effective", "--names", "-f", "json")
    assert {x["Role"] for x in eff} == {a, b}, eff
    # The token carries the implied role.
    t = token_for(server, user, PASSWORD, proj)
    assert {r["name"] for r in t.json()["token"]["roles"]} == {a, b}
    adm = admin_token(server)
    # Bad input: admin is never implied (403), a cycle (400), unknown roles (404), a
    # built-in rule cannot be deleted (403).
    admin_id = cli(server, "role", "show", "admin", "-f", "json")["id"]
    member_id = cli(server, "role", "show", "member", "-f", "json")["id"]
    envelope(ks(server, "PUT", f"roles/{ra}/implies/{admin_id}", adm), 403)
    envelope(ks(server, "PUT", f"roles/{rb}/implies/{ra}", adm), 400)
    envelope(ks(server, "PUT", f"roles/{ra}/implies/nope", adm), 404)
    envelope(ks(server, "DELETE", f"roles/{admin_id}/implies/{member_id}", adm), 403)
    r = ks(server, "GET", f"roles/{ra}/implies/{rb}", adm)
    assert r.json()["role_inference"]["implies"]["name"] == b
    assert ks(server, "HEAD", f"roles/{ra}/implies/{rb}", adm).status_code == 204
    cli(server, "implied", "role", "delete", "--implied-role", b, a)
    envelope(ks(server, "GET", f"roles/{ra}/implies/{rb}", adm), 404)
    cli(server, "user", "delete", user)
    cli(server, "project", "delete", proj)
    cli(server, "role", "delete", a)
    cli(server, "role", "delete", b)


def test_domain_roles_project_tree_tags_and_cascade(server):
    dom = cli(server, "domain", "create", "-f", "json", unique_name("dd"))
    did = dom["id"]
    # A domain-specific role: listed with its domain only, never in a token.
    dr = cli(server, "role", "create", "--domain", did, "-f", "json", unique_name("drole"))
    assert dr["domain_id"] == did
    assert dr["name"] not in {x["Name"] for x in cli(server, "role", "list", "-f", "json")}
    assert [x["ID"] for x in cli(server, "role", "list", "--domain", did, "-f", "json")] \
        == [dr["id"]]
    # A global role never implies a domain role.
    adm = admin_token(server)
    reader = cli(server, "role", "show", "reader", "-f", "json")["id"]
    envelope(ks(server, "PUT", f"roles/{reader}/implies/{dr['id']}", adm), 403)
    # A project tree with tags.
    root = cli(server, "project", "create", "--domain", did, "--tag", "a", "--tag", "b",
               "-f", "json", unique_name("root"))
    assert root["parent_id"] == did and sorted(root["tags"]) == ["a", "b"]
    child = cli(server, "project", "create", "--domain", did, "--parent", root["id"],
                "-f", "json", unique_name("child"))
    assert child["parent_id"] == root["id"]
    tagged = cli(server, "project", "list", "--tags", "a,b", "-f", "json")
    assert [x["ID"] for x in tagged] == [root["id"]]
    # Only a leaf is deleted (403).
    envelope(ks(server, "DELETE", f"projects/{root['id']}", adm), 403)
    r = ks(server, "PUT", f"projects/{root['id']}/tags", adm, json={"tags": ["x", "y"]})
    assert r.status_code == 200 and r.json()["tags"] == ["x", "y"]
    assert ks(server, "PUT", f"projects/{root['id']}/tags/z", adm).status_code == 201
    assert ks(server, "GET", f"projects/{root['id']}/tags/z", adm).status_code == 204
    envelope(ks(server, "GET", f"projects/{root['id']}/tags/nope", adm), 404)
    envelope(ks(server, "PUT", f"projects/{root['id']}/tags", adm,
                json={"tags": ["x", "x"]}), 400)
    envelope(ks(server, "PUT", f"projects/{root['id']}/tags", adm,
                json={"tags": ["a/b"]}), 400)
    envelope(ks(server, "PUT", f"projects/{root['id']}/tags", adm,
                json={"tags": [str(i) for i in range(81)]}), 400)
    assert ks(server, "DELETE", f"projects/{root['id']}/tags", adm).status_code == 204
    assert ks(server, "GET", f"projects/{root['id']}/tags", adm).json()["tags"] == []
    # A user with an extra attribute (Keystone keeps and shows it back).
    u = ks(server, "POST", "users", adm, json={"user": {
        "name": unique_name("ux"), "domain_id": did, "project_id": root["id"]}})
    assert u.status_code == 201 and u.json()["user"]["project_id"] == root["id"]
    uid = u.json()["user"]["id"]
    assert ks(server, "GET", f"users/{uid}", adm).json()["user"]["project_id"] == root["id"]
    # Deleting the disabled domain takes its content along (Keystone cascades).
    cli(server, "domain", "set", "--disable", did)
    cli(server, "domain", "delete", did)
    for path in (f"domains/{did}", f"projects/{root['id']}", f"projects/{child['id']}",
                 f"users/{uid}", f"roles/{dr['id']}"):
        envelope(ks(server, "GET", path, adm), 404)


def test_inherited_roles_cli(server):
    dom = cli(server, "domain", "create", "-f", "json", unique_name("inh"))["id"]
    parent = cli(server, "project", "create", "--domain", dom, "-f", "json",
                 unique_name("par"))["id"]
    leaf = cli(server, "project", "create", "--domain", dom, "--parent", parent, "-f", "json",
               unique_name("leaf"))["id"]
    user = cli(server, "user", "create", "--domain", dom, "--password", PASSWORD, "-f", "json",
               unique_name("inhu"))
    role = unique_name("inhr")
    cli(server, "role", "create", role)
    # Inherited on the domain: every project of the domain, not the domain itself.
    cli(server, "role", "add", "--user", user["id"], "--domain", dom, "--inherited", role)
    listed = cli(server, "role", "assignment", "list", "--user", user["id"], "--inherited",
                 "-f", "json")
    assert [(x["Domain"], x["Inherited"]) for x in listed] == [(dom, True)], listed
    for p in (parent, leaf):
        eff = cli(server, "role", "assignment", "list", "--user", user["id"], "--project", p,
                  "--effective", "-f", "json")
        assert len(eff) == 1, eff
    t = requests.post(f"{server.base_url}/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "id": user["id"], "password": PASSWORD}}},
        "scope": {"project": {"id": leaf}}}}, timeout=10)
    assert t.status_code == 201 and t.json()["token"]["roles"][0]["name"] == role
    adm = admin_token(server)
    rid = cli(server, "role", "show", role, "-f", "json")["id"]
    base = f"OS-INHERIT/domains/{dom}/users/{user['id']}/roles"
    assert ks(server, "HEAD", f"{base}/{rid}/inherited_to_projects", adm).status_code == 204
    assert [r["id"] for r in ks(server, "GET", f"{base}/inherited_to_projects",
                                adm).json()["roles"]] == [rid]
    envelope(ks(server, "PUT", f"{base}/nope/inherited_to_projects", adm), 404)
    cli(server, "role", "remove", "--user", user["id"], "--domain", dom, "--inherited", role)
    envelope(ks(server, "GET", f"{base}/{rid}/inherited_to_projects", adm), 404)
    # Inherited on a project: its sub-projects only.
    pbase = f"OS-INHERIT/projects/{parent}/users/{user['id']}/roles/{rid}/inherited_to_projects"
    assert ks(server, "PUT", pbase, adm).status_code == 204
    def effective(p):
        return ks(server, "GET", "role_assignments", adm, params={
            "effective": "", "user.id": user["id"], "scope.project.id": p}).json()[
                "role_assignments"]
    assert effective(parent) == [] and len(effective(leaf)) == 1
    # A non-admin cannot grant.
    envelope(ks(server, "DELETE", pbase, t.headers["X-Subject-Token"]), 403)
    assert ks(server, "DELETE", pbase, adm).status_code == 204
    assert effective(leaf) == []
    cli(server, "role", "delete", role)
    cli(server, "domain", "set", "--disable", dom)
    cli(server, "domain", "delete", dom)


def test_domain_configuration(server):
    adm = admin_token(server)
    did = cli(server, "domain", "create", "-f", "json", unique_name("dcfg"))["id"]
    conf = {"identity": {"driver": "ldap"},
            "ldap": {"url": "ldap://x.test/", "user_tree_dn": "ou=Users", "password": "s"}}
    r = ks(server, "PUT", f"domains/{did}/config", adm, json={"config": conf})
    assert r.status_code == 201, r.text
    # The sensitive ldap password is kept but never shown.
    assert r.json()["config"] == {"identity": {"driver": "ldap"},
                                  "ldap": {"url": "ldap://x.test/", "user_tree_dn": "ou=Users"}}
    assert ks(server, "GET", f"domains/{did}/config/ldap/url", adm).json() == {
        "config": {"url": "ldap://x.test/"}}
    envelope(ks(server, "GET", f"domains/{did}/config/ldap/password", adm), 404)
    r = ks(server, "PATCH", f"domains/{did}/config/identity", adm,
           json={"config": {"identity": {"list_limit": 5}}})
    assert r.json()["config"]["identity"] == {"driver": "ldap", "list_limit": 5}
    r = ks(server, "PATCH", f"domains/{did}/config/identity/driver", adm,
           json={"config": {"driver": "sql"}})
    assert r.json()["config"]["identity"]["driver"] == "sql"
    assert ks(server, "DELETE", f"domains/{did}/config/identity/driver", adm).status_code == 204
    envelope(ks(server, "GET", f"domains/{did}/config/identity/driver", adm), 404)
    # Bad input: unsupported group or option (403, Keystone's InvalidDomainConfig), no
    # config (400), an unknown domain (404).
    envelope(ks(server, "PATCH", f"domains/{did}/config", adm,
                json={"config": {"assignment": {"driver": "x"}}}), 403)
    envelope(ks(server, "PATCH", f"domains/{did}/config", adm,
                json={"config": {"ldap": {"bogus": 1}}}), 403)
    envelope(ks(server, "PUT", f"domains/{did}/config", adm, json={}), 400)
    envelope(ks(server, "GET", "domains/nope/config", adm), 404)
    d = ks(server, "GET", "domains/config/default", adm).json()["config"]
    assert d["identity"]["driver"] == "sql" and "password" not in d["ldap"]
    assert ks(server, "GET", "domains/config/ldap/url/default", adm).json() == {
        "config": {"url": "ldap://localhost"}}
    envelope(ks(server, "GET", "domains/config/nope/default", adm), 403)
    assert ks(server, "DELETE", f"domains/{did}/config", adm).status_code == 204
    envelope(ks(server, "GET", f"domains/{did}/config", adm), 404)
    cli(server, "domain", "set", "--disable", did)
    cli(server, "domain", "delete", did)


def test_trusts_cli_and_trust_tokens(server):
    proj = unique_name("trp")
    trustor, trustee = unique_name("tror"), unique_name("tree")
    cli(server, "project", "create", "--domain", "default", proj)
    tor = cli(server, "user", "create", "--domain", "default", "--password", PASSWORD,
              "-f", "json", trustor)["id"]
    tee = cli(server, "user", "create", "--domain", "default", "--password", PASSWORD,
              "-f", "json", trustee)["id"]
    cli(server, "role", "add", "--user", trustor, "--project", proj, "member")
    env = {"OS_USERNAME": trustor, "OS_PASSWORD": PASSWORD, "OS_PROJECT_NAME": proj}
    # By ID: a member may not list roles to find one by name (Keystone's policy too).
    reader = cli(server, "role", "show", "reader", "-f", "json")["id"]
    pid = cli(server, "project", "show", proj, "-f", "json")["id"]
    tr = cli(server, "trust", "create", "--project", pid, "--role", reader,
             "--impersonate", "-f", "json", tor, tee, env_extra=env)
    assert tr["trustor_user_id"] == tor and tr["trustee_user_id"] == tee
    assert tr["project_id"] == pid
    # Listed by its trustor (filtered on itself: without a filter only an admin lists).
    mt = token_for(server, trustor, PASSWORD, proj).headers["X-Subject-Token"]
    listed = ks(server, "GET", "OS-TRUST/trusts", mt, params={"trustor_user_id": tor})
    assert [x["id"] for x in listed.json()["trusts"]] == [tr["id"]]
    envelope(ks(server, "GET", "OS-TRUST/trusts", mt), 403)
    # The trustee gets a trust-scoped token: as the trustor (impersonation), the delegated
    # role only, on the trust's project.
    auth = {"identity": {"methods": ["password"], "password": {"user": {
        "id": tee, "password": PASSWORD}}}, "scope": {"OS-TRUST:trust": {"id": tr["id"]}}}
    t = requests.post(f"{server.base_url}/identity/v3/auth/tokens", json={"auth": auth},
                      timeout=10)
    assert t.status_code == 201, t.text
    body = t.json()["token"]
    assert body["user"]["id"] == tor and [r["name"] for r in body["roles"]] == ["reader"]
    assert body["OS-TRUST:trust"]["trustee_user"]["id"] == tee
    tok = t.headers["X-Subject-Token"]
    assert requests.get(f"{server.base_url}/compute/v2.1/servers",
                        headers={"X-Auth-Token": tok}, timeout=10).status_code == 200
    # A trust token is not re-scoped; the trustor cannot use the trust; nor anyone else.
    rescope = {"identity": {"methods": ["token"], "token": {"id": tok}},
               "scope": {"project": {"name": proj, "domain": {"name": "Default"}}}}
    envelope(requests.post(f"{server.base_url}/identity/v3/auth/tokens",
                           json={"auth": rescope}, timeout=10), 403)
    auth["identity"]["password"]["user"]["id"] = tor
    envelope(requests.post(f"{server.base_url}/identity/v3/auth/tokens",
                           json={"auth": auth}, timeout=10), 401)
    adm = admin_token(server)
    # Bad input: not the trustor (403), a role the trustor lacks (403), a bad expiry (400),
    # no impersonation flag (400).
    base = {"trustor_user_id": tor, "trustee_user_id": tee, "project_id": pid,
            "impersonation": False, "roles": [{"name": "reader"}]}
    envelope(ks(server, "POST", "OS-TRUST/trusts", adm, json={"trust": base}), 403)
    envelope(ks(server, "POST", "OS-TRUST/trusts", mt,
                json={"trust": {**base, "roles": [{"name": "admin"}]}}), 403)
    envelope(ks(server, "POST", "OS-TRUST/trusts", mt,
                json={"trust": {**base, "expires_at": "bad.123Z"}}), 400)
    no_imp = dict(base)
    del no_imp["impersonation"]
    envelope(ks(server, "POST", "OS-TRUST/trusts", mt, json={"trust": no_imp}), 400)
    # Someone else neither sees nor lists it.
    other = unique_name("tro")
    cli(server, "user", "create", "--domain", "default", "--password", PASSWORD, other)
    cli(server, "role", "add", "--user", other, "--project", proj, "member")
    ot = token_for(server, other, PASSWORD, proj).headers["X-Subject-Token"]
    envelope(ks(server, "GET", f"OS-TRUST/trusts/{tr['id']}", ot), 403)
    envelope(ks(server, "GET", "OS-TRUST/trusts", ot), 403)
    roles = ks(server, "GET", f"OS-TRUST/trusts/{tr['id']}/roles", mt).json()["roles"]
    assert [r["name"] for r in roles] == ["reader"]
    # Deleting the trust ends its tokens.
    cli(server, "trust", "delete", tr["id"], env_extra=env)
    assert requests.get(f"{server.base_url}/compute/v2.1/servers",
                        headers={"X-Auth-Token": tok}, timeout=10).status_code == 401
    for u in (trustor, trustee, other):
        cli(server, "user", "delete", u)
    cli(server, "project", "delete", proj)
