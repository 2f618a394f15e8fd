"""Issue 17: the web console over HTTP (the browser tests are test_console_browser.py).

The console is one more client: its changes are Nova requests (a Keystone session) or Tencent
CVM requests (an access key session) run through those APIs' pipelines. Checked here with
plain HTTP, the way a forging client would send it: sign-in and sign-out (the Keystone token
revoked on the server, so a copied cookie dies too), CSRF and origin checks, a Keystone reader
and a CAM read-only sub-user who see the fleet but whose forged changes are refused with their
cloud's code, the audit trail of a console change, and the security headers.
Own server: the users, keys and instances made here stay out of other modules' listings."""
from __future__ import annotations

import json
import re

import openstack
import pytest
import requests

from nubis import ADMIN_PASSWORD, describe, ssh_public_key, unique_name, wait_until
from test_cam import CAM_READ_ONLY, Cam, new_account

PASSWORD = "Console-Passw0rd!"


@pytest.fixture(scope="module")
def srv(server_factory):
    return server_factory("console")


class Console:
    """A browser-less console client: a cookie jar, the session's CSRF token, same-origin
    form posts."""

    def __init__(self, server):
        self.base = server.base_url
        self.s = requests.Session()
        self.s.trust_env = False

    def get(self, path: str, **kw) -> requests.Response:
        return self.s.get(self.base + path, allow_redirects=False, timeout=30, **kw)

    def post(self, path: str, origin: str | None = "self", **form) -> requests.Response:
        headers = {} if origin is None else {"Origin": self.base if origin == "self" else origin}
        return self.s.post(self.base + path, data=form, headers=headers, allow_redirects=False, timeout=30)

    def login_keystone(self, user: str, password: str, project: str = "admin") -> requests.Response:
        return self.post("/console/login", method="keystone", user=user, password=password, project=project)

    def login_key(self, key: tuple[str, str]) -> requests.Response:
        return self.post("/console/login", method="access_key", key_id=key[0], key_secret=key[1])

    def csrf(self) -> str:
        page = self.get("/console/fleet").text
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        assert m, page[:500]
        return m.group(1)

    def act(self, uuid: str, action: str, **form) -> requests.Response:
        return self.post(f"/console/instances/{uuid}/{action}", csrf=self.csrf(), **form)


def error_of(page: str) -> tuple[str, str]:
    m = re.search(r'<strong class="code">([^<]*)</strong> <span class="message">([^<]*)</span>', page)
    assert m, page[:2000]
    return m.group(1), m.group(2)


def create(c: Console, name: str) -> str:
    """Creates an instance through the console; its UUID."""
    return create_with_request(c, name)[0]


def create_with_request(c: Console, name: str) -> tuple[str, str]:
    """Creates an instance through the console; its UUID and the API's RequestId."""
    r = c.post("/console/instances", csrf=c.csrf(), name=name, image="img-ubt22x64",
               instance_type="S5.MEDIUM4", zone="local-a", password=PASSWORD)
    assert r.status_code == 303, r.text[:2000]
    m = re.match(r"/console/instances/([0-9a-f-]{36})\?accepted=(.+)$", r.headers["Location"])
    assert m, r.headers["Location"]
    return m.group(1), m.group(2)


def tencent_id(c: Console, uuid: str) -> str:
    page = c.get(f"/console/instances/{uuid}").text
    return re.search(r"ins-[0-9a-z]{8}", page).group(0)


def test_keystone_session_acts_through_nova_and_sign_out_revokes_it(srv):
    c = Console(srv)
    assert c.get("/console/fleet").headers["Location"] == "/console/login"
    r = c.login_keystone("admin", "wrong-password")
    assert r.status_code == 401 and "Set-Cookie" not in r.headers
    assert error_of(r.text)[0] == "401 error"
    r = c.login_keystone("admin", ADMIN_PASSWORD)
    assert r.status_code == 303 and r.headers["Location"] == "/console/fleet"
    cookie = r.headers["Set-Cookie"]
    assert all(a in cookie for a in ("HttpOnly", "SameSite=Strict", "Path=/console")), cookie
    page = c.get("/console/fleet")
    assert page.status_code == 200 and "admin (project admin, Keystone)" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"

    uuid, request_id = create_with_request(c, unique_name("con"))
    cvm = srv.cvm()
    tid = tencent_id(c, uuid)
    wait_until(lambda: (describe(cvm, tid) or {}).get("InstanceState") == "RUNNING", timeout=60)
    # The change was Nova's: its operation names the Keystone user, its trail event the
    # console's User-Agent.
    events = srv.admin.get(f"/audit-events?request_id={request_id}")["events"]
    assert [(e["cloud"], e["action"], e["user_agent"], e["user"]) for e in events] == [
        ("openstack", "server.create", "nubis-console/1", "admin")], events

    # A stopped instance refuses a reboot with Nova's code and message, and nothing changes.
    r = c.act(uuid, "stop", stop_type="SOFT")
    assert r.status_code == 303, r.text[:2000]
    wait_until(lambda: describe(cvm, tid)["InstanceState"] == "STOPPED", timeout=60)
    code, message = error_of(c.act(uuid, "reboot", reboot_type="SOFT").text)
    assert code == "409 conflictingRequest" and "vm_state stopped" in message
    assert describe(cvm, tid)["InstanceState"] == "STOPPED"

    # Sign-out revokes the token: the cookie, copied before, is no session any more.
    jar = c.s.cookies.copy()
    r = c.post("/console/logout", csrf=c.csrf())
    assert r.status_code == 303 and "Max-Age=0" in r.headers["Set-Cookie"]
    thief = Console(srv)
    thief.s.cookies = jar
    assert thief.get("/console/fleet").headers.get("Location") == "/console/login"


def test_forms_need_the_csrf_token_and_this_origin(srv):
    c = Console(srv)
    assert c.login_keystone("admin", ADMIN_PASSWORD).status_code == 303
    form = dict(name="x", image="img-ubt22x64", instance_type="S5.MEDIUM4", zone="local-a", password=PASSWORD)
    assert c.post("/console/instances", **form).status_code == 403
    assert c.post("/console/instances", csrf="forged", **form).status_code == 403
    assert c.post("/console/instances", origin="http://evil.example", csrf=c.csrf(), **form).status_code == 403
    # A cross-site sign-in is refused (login CSRF).
    other = Console(srv)
    assert other.post("/console/login", origin="http://evil.example", method="keystone",
                      user="admin", password=ADMIN_PASSWORD).status_code == 403
    # Without a session: pages redirect, changes and the live stream are 401.
    anon = Console(srv)
    assert anon.get("/console/keypairs").status_code == 303
    assert anon.post("/console/keypairs", name="k").status_code == 401
    assert anon.get("/console/events?view=fleet").status_code == 401


def test_a_keystone_reader_sees_the_fleet_but_cannot_change_it(srv):
    admin = Console(srv)
    assert admin.login_keystone("admin", ADMIN_PASSWORD).status_code == 303
    uuid = create(admin, unique_name("ro"))
    conn = openstack.connect(auth_url=f"{srv.base_url}/identity/v3", username="admin", password=ADMIN_PASSWORD,
                             project_name="admin", user_domain_name="Default", project_domain_name="Default")
    name = unique_name("reader")
    user = conn.identity.create_user(name=name, password=PASSWORD, domain_id="default")
    project = conn.identity.find_project("admin")
    conn.identity.assign_project_role_to_user(project, user, conn.identity.find_role("reader"))

    r = Console(srv)
    assert r.login_keystone(name, PASSWORD).status_code == 303
    page = r.get(f"/console/instances/{uuid}").text
    assert uuid in page and "act-reboot" not in page and "Read-only" in page
    assert 'id="create"' not in r.get("/console/fleet").text
    # The health page shows the whole node: admins only.
    assert r.get("/console/health").status_code == 403
    assert admin.get("/console/health").status_code == 200
    # A forged change, with the reader's own valid CSRF token, is refused by Nova's policy.
    code, message = error_of(r.act(uuid, "reboot", reboot_type="HARD").text)
    assert code == "403 forbidden", (code, message)
    # (Key pairs are Nova's per-user resource: its default policy lets any user, a reader
    # too, make their own, so a forged key pair creation would succeed, as it does in Nova.)


def test_a_cam_read_only_sub_user_is_refused_with_cam_s_code(srv):
    _, root = new_account(srv)
    cam = Cam(srv.endpoint, root)
    uin = cam.call("AddUser", Name="viewer")["Uin"]
    key = cam.call("CreateAccessKey", TargetUin=uin)["AccessKey"]
    pid = cam.call("CreatePolicy", PolicyName="ro", PolicyDocument=json.dumps(CAM_READ_ONLY))["PolicyId"]
    cam.call("AttachUserPolicy", PolicyId=pid, AttachUin=uin)

    owner = Console(srv)
    assert owner.login_key(root).status_code == 303
    uuid = create(owner, unique_name("cam"))
    assert "Tencent CVM" in owner.get("/console/fleet").text

    viewer = Console(srv)
    r = viewer.login_key((key["AccessKeyId"], "wrong" * 6))
    assert r.status_code == 401 and error_of(r.text)[0] == "AuthFailure.SignatureFailure"
    assert viewer.login_key((key["AccessKeyId"], key["SecretAccessKey"])).status_code == 303
    page = viewer.get(f"/console/instances/{uuid}").text
    assert uuid in page and "act-reboot" not in page
    code, message = error_of(viewer.act(uuid, "reboot", reboot_type="SOFT").text)
    assert code == "AuthFailure.UnauthorizedOperation" and "cvm:RebootInstances" in message
    # The other account's console sees none of this account's instances.
    admin_only = Console(srv)
    _, other_root = new_account(srv)
    assert admin_only.login_key(other_root).status_code == 303
    assert admin_only.get(f"/console/instances/{uuid}").status_code == 404
    assert "0 instances" in admin_only.get("/console/fleet").text
    # A disabled key ends its session at once.
    cam.call("UpdateAccessKey", AccessKeyId=key["AccessKeyId"], Status="Inactive", TargetUin=uin)
    assert viewer.get("/console/fleet").headers.get("Location") == "/console/login"


def test_the_live_stream_sends_the_fleet_rows(srv):
    c = Console(srv)
    assert c.login_keystone("admin", ADMIN_PASSWORD).status_code == 303
    uuid = create(c, unique_name("live"))
    with c.s.get(f"{srv.base_url}/console/events?view=instance&id={uuid}", stream=True, timeout=30) as r:
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        lines = []
        for line in r.iter_lines(decode_unicode=True):
            lines.append(line)
            if line.startswith("data:") and "Attributes" in line:
                break
        assert "event: fragment" in lines


def test_access_key_session_drives_cvm_actions_and_the_fleet_listing(srv, tmp_path):
    """An access key session acts through Tencent CVM: import a key pair, associate it with
    ForceStop, reset the password with ForceStop, terminate; the fleet page filters by
    state, searches by any ID or name, sorts oldest first and pages."""
    _, root = new_account(srv)
    c = Console(srv)
    assert c.login_key(root).status_code == 303
    cvm = srv.cvm(secret_id=root[0], secret_key=root[1], retry=False)
    names = [unique_name(f"fl{i}") for i in range(3)]
    uuids = [create(c, n) for n in names]
    tids = [tencent_id(c, u) for u in uuids]
    for t in tids:
        wait_until(lambda t=t: (describe(cvm, t) or {}).get("InstanceState") == "RUNNING", timeout=60)

    public = ssh_public_key(tmp_path)
    r = c.post("/console/keypairs", csrf=c.csrf(), name="imported_key", public_key=public)
    assert r.status_code == 200 and "private-key" not in r.text, r.text[:1500]
    key_id = re.search(r"<td>(skey-[0-9a-z]+)</td>", r.text).group(1)
    r = c.act(uuids[0], "associate", key_id=key_id, force_stop="on")
    assert r.status_code == 303, error_of(r.text)
    wait_until(lambda: key_id in describe(cvm, tids[0]).get("LoginSettings", {}).get("KeyIds", []), timeout=60)
    wait_until(lambda: describe(cvm, tids[0])["LatestOperationState"] == "SUCCESS", timeout=60)
    # A bad password is refused with CVM's code; a good one is accepted.
    code, _ = error_of(c.act(uuids[1], "reset_password", password="short", force_stop="on").text)
    assert code.startswith("InvalidParameterValue"), code
    assert c.act(uuids[1], "reset_password", password=PASSWORD, force_stop="on").status_code == 303
    # An option outside the cloud's set never reaches it.
    assert c.act(uuids[1], "stop", stop_type="NOW").status_code == 400

    page = c.get("/console/fleet?sort=oldest").text
    order = [page.index(t) for t in tids]
    assert order == sorted(order), "oldest first"
    assert "3 instances" in page
    assert tids[2] in c.get(f"/console/fleet?q={names[2]}").text
    only = c.get(f"/console/fleet?q={uuids[1][:13]}").text
    assert tids[1] in only and tids[0] not in only and "1 instance " in only
    wait_until(lambda: describe(cvm, tids[1])["InstanceState"] == "RUNNING", timeout=60)
    running = c.get("/console/fleet?state=running&sort=name").text
    assert all(t in running for t in tids[1:]), running[:500]
    second = c.get("/console/fleet?sort=oldest&page=2").text
    assert "page 2 of 1" in second and not any(t in second for t in tids)

    assert c.act(uuids[2], "terminate").status_code == 303
    wait_until(lambda: describe(cvm, tids[2]) is None, timeout=60)
    assert c.get(f"/console/instances/{uuids[2]}").status_code == 404
