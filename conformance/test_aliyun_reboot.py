"""RebootInstance (seed 003): every error code the seed lists, with its exact HTTP status,
through both official client generations, each provoked for a reason the admin API can set
up (shared/specs/seed-errors.md); a DryRun that fails a check answers that check's error, not
DryRunOperation; and after every refusal the instance is unchanged."""

import secrets

import pytest

from nubis import (
    reboots,
    ALI_DRY_RUN_MESSAGE,
    ALI_GENERATIONS,
    ali_catalog_of,
    ali_launch,
    ecs_client,
    ecs_describe,
    ecs_snapshot,
    ecs_wait_settled,
    expect_ecs_error,
    lock_reasons,
    random_aliyun_instance_id,
)

pytestmark = pytest.mark.timeout(180)

# Each refusal is checked plainly, as a dry run, and as a forced reboot.
VARIANTS = ({}, {"DryRun": True}, {"ForceStop": True})


def reboot(ecs, iid, **params) -> str:
    return ecs.call("RebootInstance", InstanceId=iid, **params)["RequestId"]


def assert_refused(ecs, admin, iid, status, code):
    """Every variant is refused with (status, code) and nothing about the instance changes."""
    before = ecs_snapshot(ecs, admin, iid)
    for params in VARIANTS:
        expect_ecs_error(status, code, reboot, ecs, iid, **params)
        assert ecs_snapshot(ecs, admin, iid) == before, f"refused reboot {params} changed the instance"


def assert_reboots(ecs, admin, iid, kind="graceful"):
    before = len(reboots(admin, iid))
    reboot(ecs, iid, ForceStop=(kind == "hard") or None)
    ecs_wait_settled(ecs, admin, iid, "Running")
    restarts = reboots(admin, iid)
    assert len(restarts) == before + 1 and restarts[-1]["kind"] == kind, restarts


def test_dry_run_that_passes(ecs_any, admin, ali_running):
    before = ecs_snapshot(ecs_any, admin, ali_running.id)
    for force in (None, True):
        err = expect_ecs_error(400, "DryRunOperation", reboot, ecs_any, ali_running.id, DryRun=True, ForceStop=force)
        assert err.message == ALI_DRY_RUN_MESSAGE
    assert ecs_snapshot(ecs_any, admin, ali_running.id) == before


# --------------------------------------------------------------------------------------
# 403 IncorrectInstanceStatus: the instance is not Running


def test_stopped(ecs_any, admin, ali_stopped):
    assert_refused(ecs_any, admin, ali_stopped.id, 403, "IncorrectInstanceStatus")
    assert ecs_describe(ecs_any, ali_stopped.id)["Status"] == "Stopped"


@pytest.fixture(scope="module")
def slow(server_factory):
    """A server at sim time scale 0.5, so each transitional state lasts over a second (a soft
    reboot 2.5 s, a forced delete 1.25 s) and the refused requests surely land inside it."""
    srv = server_factory("ali-slow", NUBIS_SIM_TIME_SCALE="0.5")
    return srv, ali_catalog_of(ecs_client(srv, "legacy"))


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_reboot_in_progress(slow, generation):
    """A second reboot while the first one runs (Status Starting) is refused by state."""
    srv, catalog = slow
    ecs, admin = ecs_client(srv, generation), srv.admin
    iid = ali_launch(ecs, admin, catalog)[0].id
    before = len(reboots(admin, iid))
    reboot(ecs, iid)
    assert ecs_describe(ecs, iid)["Status"] == "Starting"
    for params in VARIANTS:
        expect_ecs_error(403, "IncorrectInstanceStatus", reboot, ecs, iid, **params)
    assert ecs_describe(ecs, iid)["Status"] == "Starting"
    ecs_wait_settled(ecs, admin, iid, "Running")
    restarts = reboots(admin, iid)
    assert len(restarts) == before + 1, f"refused reboots were carried out: {restarts}"


def _start(ecs, inst):
    ecs.call("StartInstance", InstanceId=inst.id)


def _stop(ecs, inst):
    ecs.call("StopInstance", InstanceId=inst.id)


def _delete(ecs, inst):
    ecs.call("DeleteInstance", InstanceId=inst.id, Force=True)


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
@pytest.mark.parametrize("start, move, shows", [
    ("Stopped", _start, "Starting"),
    ("Running", _stop, "Stopping"),
    ("Running", _delete, "Stopping"),
], ids=["starting", "stopping", "deleting"])
def test_transitional_states(slow, generation, start, move, shows):
    srv, catalog = slow
    ecs = ecs_client(srv, generation)
    inst = ali_launch(ecs, srv.admin, catalog, status=start)[0]
    move(ecs, inst)
    assert ecs_describe(ecs, inst.id)["Status"] == shows
    for params in VARIANTS:
        expect_ecs_error(403, "IncorrectInstanceStatus", reboot, ecs, inst.id, **params)
    assert ecs_describe(ecs, inst.id)["Status"] == shows


@pytest.mark.parametrize("generation", ALI_GENERATIONS)
def test_pending(slow, generation):
    srv, catalog = slow
    ecs, admin = ecs_client(srv, generation), srv.admin
    inst = ali_launch(ecs, admin, catalog, status=None)[0]
    assert ecs_describe(ecs, inst.id)["Status"] == "Pending"
    for params in VARIANTS:
        expect_ecs_error(403, "IncorrectInstanceStatus", reboot, ecs, inst.id, **params)
    ecs_wait_settled(ecs, admin, inst.id, "Running")
    assert reboots(admin, inst.id) == [], "a refused reboot was carried out"


# --------------------------------------------------------------------------------------
# 403 restrictions and locks (admin restrict / faults)


def test_locked_for_security(ecs_any, admin, ali_running):
    iid = ali_running.id
    admin.restrict(iid, "security")
    inst = ecs_describe(ecs_any, iid)
    assert lock_reasons(inst) == ["security"], inst["OperationLocks"]
    assert inst["OperationLocks"]["LockReason"][0]["LockReason"] == "security"
    assert inst["Status"] == "Running"
    locked = ecs_any.call("DescribeInstances", InstanceIds=[iid], LockReason="security")
    assert [i["InstanceId"] for i in locked["Instances"]["Instance"]] == [iid]

    assert_refused(ecs_any, admin, iid, 403, "InstanceLockedForSecurity")

    admin.restrict(iid, "none")
    assert lock_reasons(ecs_describe(ecs_any, iid)) == []
    assert_reboots(ecs_any, admin, iid)


def test_security_lock_wins_over_state(ecs_any, admin, ali_stopped):
    """Priority (seed-errors.md): restriction/lock before state."""
    admin.restrict(ali_stopped.id, "security")
    assert_refused(ecs_any, admin, ali_stopped.id, 403, "InstanceLockedForSecurity")


def test_expired(ecs_any, admin, ali_running):
    iid = ali_running.id
    admin.restrict(iid, "expired")
    assert admin.instance(iid)["restriction"] == "expired"
    assert_refused(ecs_any, admin, iid, 403, "InstanceExpiredOrInArrears")
    admin.restrict(iid, "none")
    assert_reboots(ecs_any, admin, iid)


def test_disk_error(ecs_any, admin, ali_running):
    iid = ali_running.id
    admin.faults(iid, disk_error=True)
    assert_refused(ecs_any, admin, iid, 403, "DiskError")
    admin.faults(iid, disk_error=False)
    assert_reboots(ecs_any, admin, iid, "hard")


# --------------------------------------------------------------------------------------
# KMS: the instance's disks are encrypted with a key of the admin key registry

KMS_STATES = [
    ("disabled", 403, "InvalidParameter.KMSKeyId.CMKNotEnabled"),
    ("unauthorized", 403, "InvalidParameter.KMSKeyId.CMKUnauthorized"),
    ("kms_unauthorized", 403, "InvalidParameter.KMSKeyId.KMSUnauthorized"),
    ("deleted", 404, "InvalidParameter.KMSKeyId.NotFound"),
]


def new_key_id() -> str:
    return f"key-test-{secrets.token_hex(6)}"


def test_kms_key_states(ecs_any, admin, ali_running):
    iid = ali_running.id
    key = new_key_id()
    admin.kms_key(key, "enabled")
    admin.attributes(iid, kms_key_id=key)
    assert_reboots(ecs_any, admin, iid)
    for state, status, code in KMS_STATES:
        admin.kms_key(key, state)
        assert_refused(ecs_any, admin, iid, status, code)
        admin.kms_key(key, "enabled")
        assert_reboots(ecs_any, admin, iid)


def test_kms_key_never_registered(ecs_any, admin, ali_running):
    iid = ali_running.id
    admin.attributes(iid, kms_key_id=new_key_id())
    assert_refused(ecs_any, admin, iid, 404, "InvalidParameter.KMSKeyId.NotFound")
    admin.attributes(iid, kms_key_id=None)
    assert_reboots(ecs_any, admin, iid)


# --------------------------------------------------------------------------------------
# 404 InvalidInstanceId.NotFound


def test_unknown_instance(ecs_any):
    iid = random_aliyun_instance_id()
    for params in VARIANTS:
        expect_ecs_error(404, "InvalidInstanceId.NotFound", reboot, ecs_any, iid, **params)


def test_instance_of_another_dialects_id_space(ecs_any, running):
    """A Tencent `ins-` ID is no Alibaba instance ID: not found."""
    expect_ecs_error(404, "InvalidInstanceId.NotFound", reboot, ecs_any, running.id)
