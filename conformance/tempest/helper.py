"""Helpers for scripts/tempest-run (run with .venv-tempest's Python).

  helper.py render  --base-url URL --workspace DIR
      Ask the running nubis for what tempest.conf needs (the admin user id, the compute
      max microversion, two Linux image UUIDs from Glance, two flavors), render
      tempest.conf.in and accounts.yaml.in into DIR/etc, and write DIR/load-list.txt
      (tests.txt, or the file $TEMPEST_TESTS names, without comments). The Keystone
      password comes from NUBIS_ADMIN_PASSWORD. With TEMPEST_CREDENTIALS=two-projects it
      first creates two projects with a member and a reader each through the Keystone
      admin API and renders accounts-two-projects.yaml.in instead of accounts.yaml.in.
      Overrides: TEMPEST_IMAGE_REF, TEMPEST_IMAGE_REF_ALT, TEMPEST_FLAVOR_REF,
      TEMPEST_FLAVOR_REF_ALT, TEMPEST_MAX_MICROVERSION.

  helper.py summary --workspace DIR [--allow-skips]
      Read the last stestr run of DIR, print each listed test's outcome and the counts, and
      exit 1 when a listed test failed, was skipped (unless --allow-skips) or did not run.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
# The committed list; TEMPEST_TESTS=<file> runs another one (same format) instead.
TESTS = Path(os.environ.get("TEMPEST_TESTS") or HERE / "tests.txt").resolve()
# TEMPEST_CREDENTIALS: `pre-provisioned` (tests.txt: the bootstrap admin twice, one
# project), `dynamic` (tests-identity.txt: Tempest creates its projects and users) or
# `two-projects` (tests-two-projects.txt: pre-provisioned accounts in two projects that
# this helper creates through the Keystone admin API, plus the admin).
MODES = ("pre-provisioned", "dynamic", "two-projects")
MODE = os.environ.get("TEMPEST_CREDENTIALS") or "pre-provisioned"
DYNAMIC = MODE == "dynamic"

# Catalogue images (core/catalog.rs) whose administrator is root, and instance types.
PREFERRED_IMAGES = ("img-tos31x64", "img-deb12x64")
PREFERRED_FLAVORS = ("S5.MEDIUM4", "S5.LARGE8")


def die(msg: str) -> None:
    print(f"tempest helper: {msg}", file=sys.stderr)
    sys.exit(2)


def test_ids(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    if len(set(out)) != len(out):
        die(f"{path} lists a test twice")
    return out


def fill(template: str, values: dict[str, str], name: str) -> str:
    for k, v in values.items():
        template = template.replace(f"@{k}@", v)
    left = sorted(set(re.findall(r"@[A-Z_0-9]+@", template)))
    if left:
        die(f"{name}: placeholders left unfilled: {', '.join(left)}")
    return template


def create_two_projects(s: requests.Session, base: str, h: dict[str, str]) -> dict[str, str]:
    """Create two projects, each with a `member`, a `reader` and a `manager` user (random passwords),
    through the Keystone admin API; return the placeholders of accounts-two-projects.yaml.in."""
    ks = f"{base}/identity/v3"

    def call(method: str, path: str, body: dict | None = None, ok: int = 201) -> dict:
        r = s.request(method, ks + path, headers=h, json=body, timeout=30)
        if r.status_code != ok:
            die(f"{method} /identity/v3{path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else {}

    roles = {}
    for name in ("member", "reader"):
        found = call("GET", f"/roles?name={name}", ok=200)["roles"]
        if not found:
            die(f"Keystone has no role {name!r}")
        roles[name] = found[0]["id"]
    # Keystone's `manager` (Nova's project_manager persona) is not built into nubis: made
    # here like an operator would, once per server.
    found = call("GET", "/roles?name=manager", ok=200)["roles"]
    roles["manager"] = (found[0] if found else call("POST", "/roles", {"role": {"name": "manager"}})["role"])["id"]
    tag = secrets.token_hex(3)
    values = {}
    for i in (1, 2):
        project = f"tempest-{tag}-project-{i}"
        pid = call("POST", "/projects", {"project": {
            "name": project, "domain_id": "default",
            "description": f"Tempest two-project run, project {i}"}})["project"]["id"]
        values[f"PROJECT_{i}"] = project
        for role in ("member", "reader", "manager"):
            user = f"tempest-{tag}-{role}-{i}"
            password = "Tp1!" + secrets.token_hex(12)
            uid = call("POST", "/users", {"user": {
                "name": user, "domain_id": "default", "password": password,
                "default_project_id": pid}})["user"]["id"]
            call("PUT", f"/projects/{pid}/users/{uid}/roles/{roles[role]}", ok=204)
            values[f"{role.upper()}_{i}"] = user
            values[f"PASSWORD_{role.upper()}_{i}"] = password.replace("'", "''")
    return values


def render(args: argparse.Namespace) -> None:
    if MODE not in MODES:
        die(f"TEMPEST_CREDENTIALS={MODE!r}: expected one of {', '.join(MODES)}")
    base = args.base_url.rstrip("/")
    ws = Path(args.workspace).resolve()
    password = os.environ.get("NUBIS_ADMIN_PASSWORD")
    if not password:
        die("NUBIS_ADMIN_PASSWORD is not set")
    s = requests.Session()
    s.trust_env = False

    auth = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
    }}
    r = s.post(f"{base}/identity/v3/auth/tokens", json=auth, timeout=30)
    if r.status_code != 201 or "x-subject-token" not in r.headers:
        die(f"POST /identity/v3/auth/tokens as admin: {r.status_code} {r.text[:500]}")
    token = r.json()["token"]
    user_id = token["user"]["id"]
    h = {"X-Auth-Token": r.headers["x-subject-token"], "Accept": "application/json"}

    max_mv = os.environ.get("TEMPEST_MAX_MICROVERSION")
    if not max_mv:
        r = s.get(f"{base}/compute/v2.1", headers={"Accept": "application/json"}, timeout=30)
        if r.status_code != 200:
            die(f"GET /compute/v2.1: {r.status_code} {r.text[:500]}")
        max_mv = r.json()["version"]["version"] or "2.1"

    r = s.get(f"{base}/image/v2/images", headers=h, params={"limit": 1000}, timeout=30)
    if r.status_code != 200:
        die(f"GET /image/v2/images: {r.status_code} {r.text[:500]}")
    images = r.json()["images"]
    by_nubis = {i.get("nubis_image_id"): i["id"] for i in images}
    linux = [i["id"] for i in images if i.get("os_type", "linux") == "linux"]
    picked = [by_nubis[x] for x in PREFERRED_IMAGES if x in by_nubis]
    picked += [x for x in linux if x not in picked]
    image_ref = os.environ.get("TEMPEST_IMAGE_REF") or (picked[0] if picked else "")
    image_alt = os.environ.get("TEMPEST_IMAGE_REF_ALT") or next(
        (x for x in picked if x != image_ref), "")
    if not image_ref or not image_alt:
        die(f"need two Linux images in Glance, got {[i['id'] for i in images]}")

    r = s.get(f"{base}/compute/v2.1/flavors", headers=h, timeout=30)
    if r.status_code != 200:
        die(f"GET /compute/v2.1/flavors: {r.status_code} {r.text[:500]}")
    flavors = [f["id"] for f in r.json()["flavors"]]
    fpicked = [f for f in PREFERRED_FLAVORS if f in flavors] + [
        f for f in flavors if f not in PREFERRED_FLAVORS]
    flavor_ref = os.environ.get("TEMPEST_FLAVOR_REF") or (fpicked[0] if fpicked else "")
    flavor_alt = os.environ.get("TEMPEST_FLAVOR_REF_ALT") or next(
        (f for f in fpicked if f != flavor_ref), "")
    if not flavor_ref or not flavor_alt:
        die(f"need two flavors, got {flavors}")

    etc = ws / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    accounts = etc / "accounts.yaml"
    template = "accounts.yaml.in"
    values = {
        # Single-quoted YAML scalars: a quote is written twice.
        "ADMIN_PASSWORD": password.replace("'", "''"),
        "ADMIN_USER_ID": user_id,
    }
    if MODE == "two-projects":
        template = "accounts-two-projects.yaml.in"
        values.update(create_two_projects(s, base, h))
    accounts.write_text(fill((HERE / template).read_text(), values, template))
    accounts.chmod(0o600)
    conf = fill((HERE / "tempest.conf.in").read_text(), {
        "WORKSPACE": str(ws),
        "BASE_URL": base,
        "ADMIN_PASSWORD": password,
        "DYNAMIC": "true" if DYNAMIC else "false",
        "NEUTRON": "false" if DYNAMIC else "true",
        "ACCOUNTS_FILE": str(accounts),
        "IMAGE_REF": image_ref,
        "IMAGE_REF_ALT": image_alt,
        "FLAVOR_REF": flavor_ref,
        "FLAVOR_REF_ALT": flavor_alt,
        "MAX_MICROVERSION": max_mv,
    }, "tempest.conf.in")
    (etc / "tempest.conf").write_text(conf)
    (etc / "tempest.conf").chmod(0o600)  # it holds the admin password
    ids = test_ids(TESTS)
    (ws / "load-list.txt").write_text("".join(i + "\n" for i in ids))
    print(f"tempest.conf: image_ref={image_ref} image_ref_alt={image_alt} "
          f"flavor_ref={flavor_ref} flavor_ref_alt={flavor_alt} "
          f"max_microversion={max_mv} user_id={user_id}; {len(ids)} tests")


def summary(args: argparse.Namespace) -> None:
    import subunit
    import testtools

    ws = Path(args.workspace).resolve()
    wanted = test_ids(TESTS)
    stestr = Path(sys.executable).parent / "stestr"
    p = subprocess.run([str(stestr), "last", "--subunit"], cwd=ws, capture_output=True)
    if p.returncode != 0 or not p.stdout:
        print(p.stderr.decode(errors="replace"), file=sys.stderr)
        die("no stestr run found in the workspace (did tempest run start at all?)")

    outcomes: dict[str, str] = {}
    details: dict[str, str] = {}

    class Collect(testtools.StreamResult):
        def status(self, test_id=None, test_status=None, file_name=None, file_bytes=None,
                   **_kw):
            if not test_id:
                return
            # Final statuses only ("inprogress", "exists" are not outcomes). Anything but
            # "success" counts against the run, including expected failures.
            if test_status not in (None, "inprogress", "exists"):
                outcomes[test_id] = test_status
            if file_name and file_bytes and file_name in ("traceback", "reason"):
                details[test_id] = details.get(test_id, "") + bytes(file_bytes).decode(
                    errors="replace")

    stream = subunit.ByteStreamToStreamResult(io.BytesIO(p.stdout), non_subunit_name="stdout")
    result = Collect()
    result.startTestRun()
    stream.run(result)
    result.stopTestRun()

    # Class-level setup failures show up as ids like "setUpClass (tempest....Class)".
    extra_fail = sorted(t for t, o in outcomes.items() if t not in wanted and o == "fail")
    counts = {"passed": 0, "failed": 0, "skipped": 0, "missing": 0}
    bad = []
    print("==== tempest results ====")
    # A class skipped in setUpClass (skip_checks: a feature switched off) reports no ids of
    # its own: its tests take the class's outcome, so they count as skipped, not missing.
    by_class = {}
    for t, o in outcomes.items():
        m = re.match(r"setUpClass \((\S+)\)$", t)
        if m:
            by_class[m.group(1)] = o
    for t in wanted:
        o = outcomes.get(t)
        if o is None:
            o = by_class.get(t.split("[", 1)[0].rsplit(".", 1)[0])
            if o is not None and o != "skip":
                o = "fail"
        word = "MISSING" if o is None else {"success": "PASS", "skip": "SKIP"}.get(o, "FAIL")
        key = {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped",
               "MISSING": "missing"}[word]
        counts[key] += 1
        print(f"  {word:7} {t}")
        if word == "FAIL" or word == "MISSING" or (word == "SKIP" and not args.allow_skips):
            bad.append(t)
    for t in extra_fail:
        print(f"  FAIL    {t}")
        bad.append(t)
    for t in bad:
        if t in details:
            reason = details[t].strip()
            print(f"\n--- {t}\n{reason[-3000:]}")
    print(f"\ntempest: {len(wanted)} listed; {counts['passed']} passed, {counts['failed']} "
          f"failed, {counts['skipped']} skipped, {counts['missing']} did not run"
          + (f", {len(extra_fail)} class setups failed" if extra_fail else ""))
    print(f"{counts['passed']} passed, {counts['failed'] + counts['missing'] + len(extra_fail)} "
          f"failed, {counts['skipped']} skipped")
    sys.exit(1 if bad else 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--base-url", required=True)
    r.add_argument("--workspace", required=True)
    r.set_defaults(fn=render)
    s = sub.add_parser("summary")
    s.add_argument("--workspace", required=True)
    s.add_argument("--allow-skips", action="store_true")
    s.set_defaults(fn=summary)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
