"""Seed 002's remaining Nova response codes: 403 (policy), 413 (request too large), 429 with
Retry-After (rate limit exceeded), 503 (store unavailable) — each through a real token."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from test_openstack_support import conn, connect, fault_of, os_server, raw  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def test_oversized_body_is_413(server, conn):  # noqa: F811
    r = raw(server, conn, "POST", "/compute/v2.1/os-keypairs",
            data=b'{"keypair": {"name": "' + b"x" * 120_000 + b'"}}',
            headers={"Content-Type": "application/json"})
    assert fault_of(r)[:2] == (413, "overLimit"), r.text


def test_write_burst_is_429_with_retry_after(server_factory):
    server = server_factory("os-ratelimit")  # rate limits on (20 writes/s per resource)
    c = connect(server)

    def delete_missing(n: int) -> requests.Response:
        return raw(server, c, "DELETE", f"/compute/v2.1/os-keypairs/nokey{n}")

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(delete_missing, range(60)))
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    assert all(r.headers.get("Retry-After") == "1" for r in limited)
    assert fault_of(limited[0])[1] == "overLimit"
    # Refused before any work: the others answered 404 for the missing key.
    assert {r.status_code for r in answers} <= {404, 429}


def test_store_outage_is_503(server_factory):
    server = server_factory("os-outage", NUBIS_SIM_TIME_SCALE="0.05")
    c = connect(server)
    server.admin.post("/faults", {"store_unavailable": True})
    try:
        r = raw(server, c, "POST", "/compute/v2.1/os-keypairs", json_body={"keypair": {"name": "k503"}})
        assert fault_of(r)[:2] == (503, "serviceUnavailable"), r.text
    finally:
        server.admin.post("/faults", {"store_unavailable": False})
    r = raw(server, c, "POST", "/compute/v2.1/os-keypairs", json_body={"keypair": {"name": "k503"}})
    assert r.status_code == 200, r.text


def test_reader_may_look_but_not_rescue_403(server, conn, os_server):  # noqa: F811
    """Seed 002's 403: a user whose only role is `reader` (admin API keystone-users) is refused
    rescue by policy; the server is untouched."""
    srv, _ = os_server
    server.admin.post("/keystone-users", {"name": "auditor", "password": "Auditor@2026pw", "roles": ["reader"]})
    reader = connect_as(server, "auditor", "Auditor@2026pw")
    token = reader.auth_token
    assert set(reader.session.auth.get_access(reader.session).role_names) == {"reader"}
    assert raw(server, conn, "GET", f"/compute/v2.1/servers/{srv.id}", token=token).status_code == 200
    r = raw(server, conn, "POST", f"/compute/v2.1/servers/{srv.id}/action", json_body={"rescue": None}, token=token)
    status, kind, message = fault_of(r)
    assert (status, kind) == (403, "forbidden") and "Policy doesn't allow" in message, r.text
    assert conn.compute.get_server(srv.id).status == "ACTIVE"
    # A wrong password for that user is 401, as for admin.
    r = requests.post(f"{server.base_url}/identity/v3/auth/tokens", timeout=10, json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "auditor", "domain": {"name": "Default"},
                                                        "password": "wrong"}}}}})
    assert r.status_code == 401


def connect_as(server, user: str, password: str):
    import openstack
    return openstack.connect(auth_url=f"{server.base_url}/identity/v3", username=user, password=password,
                             project_name="admin", user_domain_name="Default", project_domain_name="Default")
