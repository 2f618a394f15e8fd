"""Keystone's [security_compliance] in nubis (docs/keystone-v3.md "Security compliance"):
account lockout after failed password logins in a row, and the password history of a user's
own changes — on a server started with NUBIS_LOCKOUT_FAILURE_ATTEMPTS, NUBIS_LOCKOUT_DURATION
and NUBIS_UNIQUE_LAST_PASSWORD_COUNT, through openstacksdk / keystoneauth and raw requests.
A server without them (the default) locks nobody and keeps no history."""

from __future__ import annotations

import time

import openstack
import pytest
import requests
from openstack import exceptions as os_exc

from nubis import unique_name
from test_openstack_support import REGION, connect

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PW = "Nb-Compliance-Pass-1"


@pytest.fixture(scope="module")
def strict(server_factory):
    return server_factory("compliance", NUBIS_LOCKOUT_FAILURE_ATTEMPTS="2",
                          NUBIS_LOCKOUT_DURATION="2", NUBIS_UNIQUE_LAST_PASSWORD_COUNT="3",
                          NUBIS_RATE_LIMITS="off")


def new_user(server):
    admin = connect(server)
    proj = admin.identity.create_project(name=unique_name("sc"), domain_id="default")
    user = admin.identity.create_user(name=unique_name("sc"), password=PW, domain_id="default",
                                      default_project_id=proj.id)
    admin.identity.assign_project_role_to_user(proj, user, admin.identity.find_role("member"))
    return admin, user


def login(server, user_id, password):
    return requests.post(f"{server.base_url}/identity/v3/auth/tokens", timeout=10, json={
        "auth": {"identity": {"methods": ["password"], "password": {
            "user": {"id": user_id, "password": password}}}}})


def sdk_login(server, name, password):
    c = openstack.connect(auth_url=f"{server.base_url}/identity/v3", username=name,
                          password=password, user_domain_name="Default",
                          region_name=REGION, load_yaml_config=False, load_envvars=False)
    return c.authorize()


def test_lockout_after_failures_in_a_row_then_it_passes(strict):
    # Two failures in a row lock for two seconds. The per-user login throttle (429 after five
    # failures a minute) is separate: this test stays under it.
    admin, user = new_user(strict)
    # A failure, then a success: the count starts again.
    assert login(strict, user.id, "wrong-pass").status_code == 401
    assert login(strict, user.id, PW).status_code == 201
    for _ in range(2):
        assert login(strict, user.id, "wrong-pass").status_code == 401
    # Locked: even the right password is refused, with Keystone's message.
    r = login(strict, user.id, PW)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["message"] == f"The account is locked for user: {user.id}."
    with pytest.raises(os_exc.SDKException) as e:
        sdk_login(strict, user.name, PW)
    assert "HTTP 401" in str(e.value) and "locked" in str(e.value)
    # Once the lockout has passed, the right password works and clears the count.
    time.sleep(2.5)
    assert sdk_login(strict, user.name, PW)
    # An admin's password reset ends a lockout too.
    for _ in range(2):
        assert login(strict, user.id, "wrong-pass").status_code == 401
    assert login(strict, user.id, PW).status_code == 401
    admin.identity.update_user(user, password=PW + "x")
    assert login(strict, user.id, PW + "x").status_code == 201


def test_own_changes_may_not_reuse_the_last_passwords(strict):
    admin, user = new_user(strict)
    me = openstack.connect(auth_url=f"{strict.base_url}/identity/v3", username=user.name,
                           password=PW, user_domain_name="Default", project_domain_name="Default",
                           project_id=user.default_project_id, region_name=REGION,
                           load_yaml_config=False, load_envvars=False)

    def change(old, new):
        return requests.post(f"{strict.base_url}/identity/v3/users/{user.id}/password",
                             headers={"X-Auth-Token": me.auth_token}, timeout=10,
                             json={"user": {"original_password": old, "password": new}})

    assert change(PW, "Second-Pass-22").status_code == 204
    me = openstack.connect(auth_url=f"{strict.base_url}/identity/v3", username=user.name,
                           password="Second-Pass-22", user_domain_name="Default",
                           project_domain_name="Default", project_id=user.default_project_id,
                           region_name=REGION, load_yaml_config=False, load_envvars=False)
    # The current one and the two before it (count 3) are refused with 400.
    for again in ("Second-Pass-22", PW):
        r = change("Second-Pass-22", again)
        assert r.status_code == 400, r.text
        assert "cannot be identical to a previous password" in r.json()["error"]["message"]
    assert login(strict, user.id, "Second-Pass-22").status_code == 201
    assert change("Second-Pass-22", "Third-Pass-333").status_code == 204
    # An admin's reset is not held to the history: back to the previous one.
    admin.identity.update_user(user.id, password="Second-Pass-22")
    assert login(strict, user.id, "Second-Pass-22").status_code == 201


def test_without_the_options_nobody_is_locked(server):
    # The default server: no lockout however many failures (four, under the throttle).
    _, user = new_user(server)
    for _ in range(4):
        assert login(server, user.id, "wrong-pass").status_code == 401
    r = login(server, user.id, PW)
    assert r.status_code == 201, r.text
