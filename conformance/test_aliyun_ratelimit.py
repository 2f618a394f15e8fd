"""Alibaba per-action rate limits: RebootInstance is limited to 20 requests/s per account; a
burst beyond it is refused with HTTP 400 `Throttling` (spec §4 table) while the requests
within it are handled as usual. Each test has its own server (rate limits on, the default),
so the bursts never touch the budget of the shared default server."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from nubis import reboots, ALI_GENERATIONS, ali_catalog_of, ali_launch, ecs_client, ecs_error_of, ecs_wait_settled

pytestmark = pytest.mark.timeout(120)


def burst(server, generation, threads, action, per_thread=1, stop_on=None, **params):
    """`threads` clients released together, each sending up to `per_thread` calls back to
    back (all stop early once one call fails with `stop_on`). Each result is
    ("ok", RequestId) or ("error", (status, code))."""
    barrier = threading.Barrier(threads)
    stop = threading.Event()

    def one(_):
        ecs = ecs_client(server, generation, retry=False)  # a client per thread, no retries
        out = []
        barrier.wait()
        for _ in range(per_thread):
            if stop.is_set():
                break
            try:
                out.append(("ok", ecs.call(action, **params)["RequestId"]))
            except Exception as e:  # noqa: BLE001
                err = ecs_error_of(e)
                if err is None:
                    raise
                out.append(("error", (err.status, err.code)))
                if err.code == stop_on:
                    stop.set()
        return out

    with ThreadPoolExecutor(threads) as pool:
        return [r for rs in pool.map(one, range(threads)) for r in rs]


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_reboot_instance_is_limited_to_20_per_second(server_factory, generation):
    server = server_factory(f"ali-ratelimit-{generation}")
    ecs = ecs_client(server, "legacy")
    first, second = ali_launch(ecs, server.admin, ali_catalog_of(ecs), amount=2)

    # 25 clients at once, each going on until one is refused: on a loaded machine the calls
    # may spread over several seconds, and a fixed 4 calls each (100 in all) need not exceed
    # 20/s there; up to 40 each (1,000 in all) would have to take 50 s to stay under it.
    results = burst(server, generation, 25, "RebootInstance", per_thread=40, stop_on="Throttling",
                    InstanceId=first.id)
    errors = [v for kind, v in results if kind == "error"]
    accepted = [v for kind, v in results if kind == "ok"]
    assert (400, "Throttling") in errors, results
    assert accepted, results
    # Everything else is either throttled or refused by state (a reboot is under way).
    assert set(errors) <= {(400, "Throttling"), (403, "IncorrectInstanceStatus")}, results

    # Limits are per action: another action is unaffected by the burst.
    assert ecs_client(server, generation, retry=False).call(
        "DescribeInstances", InstanceIds=[first.id])["TotalCount"] == 1
    ecs_wait_settled(ecs, server.admin, first.id, "Running")

    # And the budget refills.
    time.sleep(1.5)
    before = len(reboots(server.admin, second.id))
    ecs_client(server, generation, retry=False).call("RebootInstance", InstanceId=second.id)
    ecs_wait_settled(ecs, server.admin, second.id, "Running")
    assert len(reboots(server.admin, second.id)) == before + 1


def test_rate_limits_off(server_factory):
    server = server_factory("ali-ratelimit-off", NUBIS_RATE_LIMITS="off")
    results = burst(server, "legacy", 30, "DescribeZones", per_thread=3)
    assert all(kind == "ok" for kind, _ in results), [r for r in results if r[0] != "ok"]
