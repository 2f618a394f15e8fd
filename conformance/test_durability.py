"""Accepted work is durable (DESIGN.md): kill -9 while mutating requests are in flight,
restart on the same data dir, and every request that got a RequestId has an operation that
finishes exactly once; no instance stays locked; operations that were cut short resume
without re-applying finished steps."""

import random
import threading
import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from nubis import describe_many, launch, new_password, wait_until

pytestmark = pytest.mark.timeout(600)

INSTANCES = 20
KILLS = 2
LOAD_SECONDS = 2.0

# Most steps an operation of each action can have (ResetInstancesPassword with ForceStop on
# a running instance: stop, change, start).
MAX_STEPS = {"RebootInstances": 1, "StopInstances": 1, "StartInstances": 1, "ResetInstancesPassword": 3}

# Refusals the load may meet; anything else (InternalError, ...) is a failure.
EXPECTED_REFUSALS = ("UnsupportedOperation.", "OperationDenied.", "MutexOperation.")


def load(server, ids, stop: threading.Event, accepted: list, refused: list, seed: int):
    """Send random mutating requests until `stop` is set or the server goes away; record
    (request_id, action, instance, password) for every one that got a RequestId, and the
    code of every refusal."""
    rng = random.Random(seed)
    cvm = server.cvm(timeout=10)
    while not stop.is_set():
        iid = rng.choice(ids)
        action = rng.choice(list(MAX_STEPS))
        params = {"InstanceIds": [iid]}
        password = None
        if action == "ResetInstancesPassword":
            password = new_password()
            params.update(Password=password, ForceStop=True)
        try:
            rid = cvm.call(action, **params)["RequestId"]
            accepted.append((rid, action, iid, password))
        except TencentCloudSDKException as e:
            if e.code == "ClientNetworkError":
                return  # the server was killed under us
            refused.append(e.code)
        except ValueError:
            return  # a response cut short by the kill
        time.sleep(rng.uniform(0, 0.02))


def kill_under_load(server, ids, accepted: list, refused: list, kill: int = 1, seed: int = 0):
    """One round of the scenario, shared with test_postgres_store.py: four `load` threads
    (seeds `seed`..`seed + 3`) for LOAD_SECONDS, kill -9, restart on the same store; then no
    instance stays locked, every request in `accepted` (this round's and earlier ones') has
    one operation finished once after at most `kill` restarts, resumed without re-applying
    finished steps, and every instance is settled in the API."""
    stop = threading.Event()
    threads = [threading.Thread(target=load, args=(server, ids, stop, accepted, refused, seed + n))
               for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(LOAD_SECONDS)
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert accepted, "no request was accepted before the kill"
    unexpected = [c for c in refused if not c.startswith(EXPECTED_REFUSALS)]
    assert not unexpected, unexpected

    server.start()
    admin = server.admin

    # No instance stays locked.
    for iid in ids:
        wait_until(lambda: admin.instance(iid)["lock"] is None, timeout=120,
                   message=f"{iid} to be unlocked after restart {kill}")

    # Every accepted request has its operation(s), each finished exactly once.
    for rid, action, _, _ in accepted:
        ops = admin.finished_by_request(rid, timeout=120)
        assert len(ops) == 1, f"{action} {rid}: operations {ops}"
        op = ops[0]
        assert op["state"] in ("SUCCESS", "FAILED"), op
        assert op["finished_at"], op
        assert 1 <= op["attempts"] <= 1 + kill, op
        assert 0 <= op["steps_done"] <= op.get("steps", MAX_STEPS[action]) <= MAX_STEPS[action], op

    # Instances are settled and the API agrees with the admin view.
    insts = describe_many(server.cvm(), ids)
    assert sorted(insts) == sorted(ids)
    for inst in insts.values():
        assert inst["InstanceState"] in ("RUNNING", "STOPPED"), inst
        assert inst["LatestOperationState"] in ("SUCCESS", "FAILED"), inst


def test_kill_9_loses_no_accepted_operation(server_factory, catalog):
    server = server_factory("durability", NUBIS_SIM_TIME_SCALE="0.2", NUBIS_RATE_LIMITS="off")
    insts = launch(server.cvm(), catalog, count=INSTANCES)
    ids = [i.id for i in insts]
    users = {i.id: i.user for i in insts}
    accepted: list = []
    refused: list = []

    for kill in range(1, KILLS + 1):
        kill_under_load(server, ids, accepted, refused, kill=kill, seed=kill * 10)
        admin = server.admin

        # An instance whose newest password reset was accepted and succeeded takes that
        # password (a reset whose response was lost in the kill is not in `accepted`).
        passwords = {rid: pw for rid, _, _, pw in accepted if pw}
        for iid in ids:
            resets = [o for o in admin.finished_operations(iid, timeout=120) if "reset" in o["action"].lower()]
            if resets and resets[0]["request_id"] in passwords and resets[0]["state"] == "SUCCESS":
                assert admin.check_password(iid, users[iid], passwords[resets[0]["request_id"]]), resets[0]
