"""Per-action rate limits (on by default with Tencent's documented values; EnterRescueMode
is 20 requests/s per account) and NUBIS_RATE_LIMITS=off. Each test has its own server, so
the bursts never touch the budget of the shared default server."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from nubis import launch, new_password, wait_settled

pytestmark = pytest.mark.timeout(120)


def burst(server, threads, action, per_thread=1, stop_on=None, **params):
    """`threads` clients released together, each sending up to `per_thread` calls back to
    back (all stop early once one call fails with `stop_on`). Each result is ("ok",
    RequestId) or ("error", code)."""
    barrier = threading.Barrier(threads)
    stop = threading.Event()

    def one(_):
        cvm = server.cvm(retry=False)  # a client per thread; no retry on RequestLimitExceeded
        out = []
        barrier.wait()
        for _ in range(per_thread):
            if stop.is_set():
                break
            try:
                out.append(("ok", cvm.call(action, **params)["RequestId"]))
            except TencentCloudSDKException as e:
                out.append(("error", e.code))
                if e.code == stop_on:
                    stop.set()
        return out

    with ThreadPoolExecutor(threads) as pool:
        return [r for rs in pool.map(one, range(threads)) for r in rs]


def test_enter_rescue_mode_is_limited_to_20_per_second(server_factory, catalog):
    server = server_factory("ratelimit-on")
    cvm = server.cvm()
    first, second = launch(cvm, catalog, count=2)

    # 25 clients at once, each going on until one is refused: on a loaded machine the calls
    # may spread over several seconds, and a fixed 4 calls each (100 in all) need not exceed
    # 20/s there; up to 40 each (1,000 in all) would have to take 50 s to stay under it.
    results = burst(server, 25, "EnterRescueMode", per_thread=40, stop_on="RequestLimitExceeded",
                    InstanceId=first.id, Password=new_password())
    codes = [v for kind, v in results if kind == "error"]
    accepted = [v for kind, v in results if kind == "ok"]
    assert codes.count("RequestLimitExceeded") >= 1, results
    # The instance lock admits exactly one of the concurrent requests.
    assert len(accepted) == 1, results
    assert set(codes) <= {
        "RequestLimitExceeded",
        "UnsupportedOperation.InstanceStateEnterRescueMode",
        "UnsupportedOperation.InstanceStateRescueMode",
        "MutexOperation.TaskRunning",
    }, results

    # Limits are per action: other actions are unaffected by the burst.
    assert server.cvm(retry=False).call("DescribeInstances", InstanceIds=[first.id])["TotalCount"] == 1
    wait_settled(cvm, first.id, "RESCUE_MODE", accepted[0])

    # And the budget refills.
    time.sleep(1.5)
    rid = server.cvm(retry=False).call("EnterRescueMode", InstanceId=second.id, Password=new_password())["RequestId"]
    wait_settled(cvm, second.id, "RESCUE_MODE", rid)


def test_rate_limits_off(server_factory):
    server = server_factory("ratelimit-off", NUBIS_RATE_LIMITS="off")
    results = burst(server, 30, "DescribeZones", per_thread=3)
    assert all(kind == "ok" for kind, _ in results), [r for r in results if r[0] != "ok"]
