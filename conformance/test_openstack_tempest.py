"""OpenStack Tempest against nubis: runs scripts/tempest-run (issue 5).

One pytest test wraps the whole Tempest run: scripts/tempest-run builds .venv-tempest
(scripts/setup-tempest, pinned in conformance/tempest/requirements.txt), starts its own nubis
from the same binary as the rest of the suite, runs every test id in
conformance/tempest/tests.txt (and, in two more runs, tests-identity.txt with dynamic
credentials and tests-two-projects.txt with accounts in two projects) and fails when any of
them fails, is skipped or does not run.
The output carries one PASS/FAIL/SKIP line per Tempest test and the tracebacks of failures.
This test never skips.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from nubis import REPO

TEMPEST_TIMEOUT = int(os.environ.get("TEMPEST_TIMEOUT", "1800"))


def run_list(nubis_bin: str, credentials: str, tests: str) -> None:
    """scripts/tempest-run over conformance/tempest/<tests> in the credentials mode given;
    the per-test lines, failure tracebacks and counts come last, after tempest's output."""
    env = dict(os.environ, NUBIS_BIN=nubis_bin, TEMPEST_TIMEOUT=str(TEMPEST_TIMEOUT),
               TEMPEST_CREDENTIALS=credentials,
               TEMPEST_TESTS=str(REPO / "conformance" / "tempest" / tests))
    p = subprocess.run(
        [str(REPO / "scripts" / "tempest-run")],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=TEMPEST_TIMEOUT + 240,
    )
    out = p.stdout
    mark = "==== tempest results ===="
    tail = out[out.rfind(mark):] if mark in out else out
    assert p.returncode == 0, f"scripts/tempest-run exited {p.returncode}:\n{tail[-20000:]}"
    print(tail[-20000:])


@pytest.mark.timeout(TEMPEST_TIMEOUT + 300)
def test_tempest_compute_rescue_actions_keypairs(nubis_bin):
    """conformance/tempest/tests.txt with the pre-provisioned bootstrap admin."""
    run_list(nubis_bin, "pre-provisioned", "tests.txt")


@pytest.mark.timeout(TEMPEST_TIMEOUT + 300)
def test_tempest_identity_admin_and_two_projects(nubis_bin):
    """conformance/tempest/tests-identity.txt with dynamic credentials: Tempest creates its
    projects and users through the Keystone admin API (issue 13 item 5)."""
    run_list(nubis_bin, "dynamic", "tests-identity.txt")


@pytest.mark.timeout(TEMPEST_TIMEOUT + 300)
def test_tempest_compute_two_projects(nubis_bin):
    """conformance/tempest/tests-two-projects.txt with pre-provisioned accounts in two projects
    (created through the Keystone admin API before Tempest starts) and the admin: another
    project's server is not found, the admin lists every project's servers (issue 13 item 5)."""
    run_list(nubis_bin, "two-projects", "tests-two-projects.txt")
