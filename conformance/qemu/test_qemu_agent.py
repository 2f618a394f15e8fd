"""A real guest on an agent host (docs/agents.md): a control plane with the sim driver and one
`nubis agent --driver qemu` host serving ap-guangzhou-3. The instance boots as a real QEMU
guest on the agent's machine and is checked over SSH; a reboot through Tencent is a new boot;
the agent is killed (the guest keeps running: QEMU has its own process group) and started
again, adopts the guest from the state the control plane kept, and a stop through Alibaba
reaches it; terminate removes the agent's disks."""

from __future__ import annotations

import os
import signal

import pytest

import nubis
from guest_ssh import Login, boot_id, ssh_tag
from nubis import describe, ecs_client, ecs_wait_settled, wait_settled, wait_until
from test_qemu_e2e import IMAGES, key_name, keys, linux_image  # noqa: F401 (keys is a fixture)

pytestmark = [pytest.mark.timeout(600)]

ZONE = "ap-guangzhou-3"


@pytest.fixture
def qemu_host(nubis_bin, tmp_path_factory):
    assert (IMAGES / "stamp").is_file(), f"no guest images in {IMAGES}: run guest/build"
    root = tmp_path_factory.mktemp("qemu-agent")
    server = nubis.Server("control", nubis_bin, root / "control", {"NUBIS_HOST_TIMEOUT_MS": "3000"}).start()
    secret = nubis.register_host(server.admin, "qemu-1", ZONE)
    agent = nubis.Agent("qemu-1", secret, nubis_bin, root, server.base_url, vcpus=4, memory_mib=8192,
                        env={"NUBIS_DRIVER": "qemu", "NUBIS_QEMU_IMAGES": str(IMAGES)}).start(timeout=120)
    wait_until(lambda: nubis.host_views(server.admin)["qemu-1"]["health"] == "up", 30, 0.1, "the host")
    yield server, agent
    agent.stop()
    server.stop()
    for pidfile in (agent.data_dir / "qemu" / "vms").glob("*/qemu.pid"):
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            pass


def test_a_real_guest_on_a_qemu_agent_host(qemu_host, keys):
    server, agent = qemu_host
    cvm = server.cvm()
    key, pub = keys["first"]
    kid = cvm.call("ImportKeyPair", KeyName=key_name("ag"), ProjectId=0, PublicKey=pub)["KeyId"]
    [iid] = cvm.call("RunInstances", Placement={"Zone": ZONE}, ImageId=linux_image(cvm), InstanceCount=1,
                     InstanceName=nubis.unique_name("qa"), LoginSettings={"KeyIds": [kid]})["InstanceIdSet"]
    wait_settled(cvm, iid, "RUNNING", timeout=240)
    view = server.admin.instance(iid)
    assert view["host"] == "qemu-1"
    vm_dir = agent.data_dir / "qemu" / "vms" / view["id"]
    assert vm_dir.is_dir(), "the guest's disks are on the agent's machine"
    ep = ssh_tag(describe(cvm, iid))
    with Login(ep, "root", key=key) as s:
        assert s.run("cat /etc/nubis-role") == "system"
        first_boot = boot_id(s)
    rid = cvm.call("RebootInstances", InstanceIds=[iid])["RequestId"]
    nubis.assert_op(wait_settled(cvm, iid, "RUNNING", rid, timeout=240), "RebootInstances", rid)
    with Login(ssh_tag(describe(cvm, iid)), "root", key=key) as s:
        assert boot_id(s) != first_boot
    # The host dies; its guest does not. A new agent process adopts it.
    agent.kill()
    wait_until(lambda: nubis.host_views(server.admin)["qemu-1"]["health"] == "lost", 15, 0.2, "host lost")
    agent.start(timeout=120)
    wait_until(lambda: nubis.host_views(server.admin)["qemu-1"]["health"] == "up", 30, 0.2, "host back")
    with Login(ssh_tag(describe(cvm, iid)), "root", key=key) as s:
        assert s.run("cat /etc/nubis-role") == "system", "the guest kept running"
    ecs = ecs_client(server, "legacy")
    ali_id = server.admin.instance(iid)["aliyun_id"]
    ecs.call("StopInstance", InstanceId=ali_id)
    ecs_wait_settled(ecs, server.admin, ali_id, "Stopped", timeout=240)
    assert server.admin.guest(iid)["power"] == "off"
    cvm.call("TerminateInstances", InstanceIds=[iid])
    wait_until(lambda: describe(cvm, iid) is None, 120, 0.2, f"{iid} to go")
    wait_until(lambda: not vm_dir.exists(), 30, 0.2, "the agent to remove the guest's disks")
