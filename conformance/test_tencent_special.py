"""Seed error codes that the real cloud raises for hardware or platform reasons, made to
happen in nubis by catalogue entries (an ARM family, an edge zone, a special and a
bare-metal type) and operator commands (host maintenance, store outage)."""

import dataclasses

import pytest
import requests

from nubis import (describe, expect_error, latest, launch, new_password, ssh_public_key, wait_settled,
                   wait_state, wait_until)

pytestmark = pytest.mark.timeout(120)

RESCUE = ("EnterRescueMode", {"Password": "Qcloud@TestApi123++"})


def one(cvm, catalog, **extra):
    return launch(cvm, catalog, **extra)[0]


@pytest.mark.parametrize("kind,extra,rescue_code", [
    ("arm", {"InstanceType": "SR1.MEDIUM4"}, "UnsupportedOperation.ArmArchitecture"),
    ("special", {"InstanceType": "HCCS5.MEDIUM4"}, "UnsupportedOperation.SpecialInstanceType"),
    ("bare-metal", {"InstanceType": "BMS5.LARGE8"}, "InvalidInstance.NotSupported"),
])
def test_rescue_refused_for_instance_kinds(cvm, catalog, kind, extra, rescue_code):
    inst = one(cvm, catalog, **extra)
    before = latest(cvm, inst.id)
    expect_error(rescue_code, cvm.call, "EnterRescueMode", InstanceId=inst.id, Password=new_password())
    assert latest(cvm, inst.id) == before


def test_rescue_refused_in_edge_zone(cvm, catalog):
    edge = dataclasses.replace(catalog, zone="ap-guangzhou-edge-1")
    inst = one(cvm, edge)
    expect_error("UnsupportedOperation.EdgeZoneNotSupportCloudDisk", cvm.call, "EnterRescueMode",
                 InstanceId=inst.id, Password=new_password())


def test_special_type_refuses_password_reset(cvm, catalog):
    inst = one(cvm, catalog, InstanceType="HCCS5.MEDIUM4", state="STOPPED")
    expect_error("UnsupportedOperation.SpecialInstanceType", cvm.call, "ResetInstancesPassword",
                 InstanceIds=[inst.id], Password=new_password())


def test_bare_metal_refuses_password_and_keys(cvm, catalog, tmp_path):
    inst = one(cvm, catalog, InstanceType="BMS5.LARGE8", state="STOPPED")
    expect_error("InvalidInstance.NotSupported", cvm.call, "ResetInstancesPassword",
                 InstanceIds=[inst.id], Password=new_password())
    key = cvm.call("ImportKeyPair", KeyName=f"bm_{inst.id[4:]}", ProjectId=0,
                   PublicKey=ssh_public_key(tmp_path))["KeyId"]
    expect_error("InvalidInstance.NotSupported", cvm.call, "AssociateInstancesKeyPairs",
                 InstanceIds=[inst.id], KeyIds=[key])


def test_live_migration_states(slow_cvm, slow_admin, slow_running, tmp_path):
    """An operator-started host maintenance walks through the three live-migration states;
    each refuses the seeds' actions with its own code. On the slow server each phase lasts
    5 s: at the default scale (1 s) a loaded machine saw a phase end between the describe and
    the call, and the call was accepted."""
    cvm, admin, running = slow_cvm, slow_admin, slow_running
    key = cvm.call("ImportKeyPair", KeyName=f"lm_{running.id[4:]}", ProjectId=0,
                   PublicKey=ssh_public_key(tmp_path))["KeyId"]
    seen = set()
    admin.post(f"/instances/{running.id}/live-migrate", {})
    codes = {
        "ENTER_SERVICE_LIVE_MIGRATE": "UnsupportedOperation.InstanceStateEnterServiceLiveMigrate",
        "SERVICE_LIVE_MIGRATE": "UnsupportedOperation.InstanceStateServiceLiveMigrate",
        "EXIT_SERVICE_LIVE_MIGRATE": "UnsupportedOperation.InstanceStateExitServiceLiveMigrate",
    }

    def probe():
        state = describe(cvm, running.id)["InstanceState"]
        if state in codes and state not in seen:
            code = codes[state]
            for action, params in [RESCUE, ("ResetInstancesPassword", {"Password": new_password(), "ForceStop": True}),
                                   ("AssociateInstancesKeyPairs", {"KeyIds": [key], "ForceStop": True})]:
                ids = {"InstanceId": running.id} if action == "EnterRescueMode" else {"InstanceIds": [running.id]}
                try:
                    cvm.call(action, **ids, **params)
                except Exception as e:  # noqa: BLE001 - the phase may end between describe and call
                    if getattr(e, "code", None) == code:
                        seen.add(state)
                        continue
                    if getattr(e, "code", "").startswith("UnsupportedOperation.InstanceState"):
                        continue
                    raise
                raise AssertionError(f"{action} was accepted during {state}")
        return state == "RUNNING" and len(seen) == 3

    wait_until(probe, timeout=60, interval=0.02, message="all three live-migration states refused")
    wait_settled(cvm, running.id, "RUNNING")


def test_store_outage_answers_internal_error_and_changes_nothing(server_factory, catalog):
    server = server_factory("outage", NUBIS_SIM_TIME_SCALE="0.05")
    cvm = server.cvm()
    inst = one(cvm, catalog, state="STOPPED")
    before = latest(cvm, inst.id)
    server.admin.post("/faults", {"store_unavailable": True})
    try:
        health = requests.get(f"{server.base_url}/healthz", timeout=5)
        assert health.status_code == 503
        expect_error("InternalServerError", cvm.call, "ResetInstancesPassword",
                     InstanceIds=[inst.id], Password=new_password())
        expect_error("InternalError", cvm.call, "StartInstances", InstanceIds=[inst.id])
        assert latest(cvm, inst.id) == before
        assert describe(cvm, inst.id)["InstanceState"] == "STOPPED"
    finally:
        server.admin.post("/faults", {"store_unavailable": False})
    assert requests.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
    rid = cvm.call("StartInstances", InstanceIds=[inst.id])["RequestId"]
    wait_settled(cvm, inst.id, "RUNNING", rid)
