"""Run the official Node.js SDKs (conformance/node, installed by scripts/setup-node) from
pytest: a test hands a driver script a JSON job on stdin and reads one JSON document back.
The driver scripts call the SDKs exactly as their users do; this module only starts them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent / "node"


def node_bin() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed (scripts/setup-node installs it)")
    if not (NODE_DIR / "node_modules").is_dir():
        raise RuntimeError(f"{NODE_DIR}/node_modules is missing: run scripts/setup-node")
    return node


def run_node(script: str, job: dict[str, Any], timeout: float = 120) -> Any:
    """Run conformance/node/<script> with `job` as JSON on stdin; return its JSON stdout.
    A driver that exits non-zero (a bug in the driver, not an API error: those are data)
    fails the test with its stderr."""
    proc = subprocess.run(
        [node_bin(), str(NODE_DIR / script)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=NODE_DIR,
    )
    if proc.returncode != 0:
        raise AssertionError(f"node {script} exited {proc.returncode}\nstderr:\n{proc.stderr[-4000:]}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"node {script} printed no JSON ({e}):\n{proc.stdout[-2000:]}") from e
