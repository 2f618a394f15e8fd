"""Issue 15, console output: Nova os-getConsoleOutput (openstacksdk and raw bodies, Nova's
`length` rules and schema errors) and Alibaba GetInstanceConsoleOutput (the ECS SDK: base64,
RemoveSymbols, LastUpdateTime, errors), on the sim driver's boot log. The qemu driver's real
serial log is checked in conformance/qemu/."""

from __future__ import annotations

import base64
import uuid

import pytest

from nubis import ALI_REGION, expect_ecs_error, random_aliyun_instance_id
from test_openstack_support import (  # noqa: F401 (fixtures)
    conn,
    fault_of,
    os_server,
    raw,
    wait_status,
)

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def console(server, conn, server_id: str, body) -> "requests.Response":  # noqa: F821, F811
    return raw(server, conn, "POST", f"/compute/v2.1/servers/{server_id}/action",
               json_body={"os-getConsoleOutput": body})


def test_nova_console_output_with_the_sdk(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    full = conn.compute.get_server_console_output(srv)["output"]
    assert "login:" in full and "Linux version" in full, full
    # Tempest's check: length=10 gives exactly 10 lines.
    ten = conn.compute.get_server_console_output(srv, length=10)["output"]
    assert ten and len(ten.split("\n")) == 10, ten
    assert full.endswith(ten)


def test_nova_console_output_length_rules(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    full = console(server, conn, srv.id, {}).json()["output"]
    lines = full.split("\n")
    assert console(server, conn, srv.id, {"length": None}).json()["output"] == full
    assert console(server, conn, srv.id, {"length": "3"}).json()["output"] == "\n".join(lines[-3:])
    assert console(server, conn, srv.id, {"length": 0}).json()["output"] == ""
    # Nova cuts with Python's lines[-length:]: -1 drops the first line.
    assert console(server, conn, srv.id, {"length": -1}).json()["output"] == "\n".join(lines[1:])
    assert console(server, conn, srv.id, {"length": 10**6}).json()["output"] == full


@pytest.mark.parametrize("body, message", [
    ({"length": -2}, "Invalid input for field/attribute length. Value: -2. -2 is less than the minimum of -1"),
    ({"length": "ten"}, "Invalid input for field/attribute length. Value: ten. 'ten' does not match '^-?[0-9]+$'"),
    ({"length": 1.5}, "Invalid input for field/attribute length. Value: 1.5. 1.5 is not of type 'integer', 'string', 'null'"),
    ({"lines": 3}, "Invalid input for field/attribute. Additional properties are not allowed ('lines' was unexpected)"),
    ("all", "Invalid input for field/attribute os-getConsoleOutput."),
    (None, "Invalid input for field/attribute os-getConsoleOutput."),
])
def test_nova_console_output_schema_errors(server, conn, os_server, body, message):  # noqa: F811
    srv, _ = os_server
    assert fault_of(console(server, conn, srv.id, body)) == (400, "badRequest", message)


def test_nova_console_output_when_stopped_and_unknown(server, conn, os_server):  # noqa: F811
    srv, _ = os_server
    conn.compute.stop_server(srv)
    wait_status(conn, srv.id, "SHUTOFF")
    # Tempest's test_get_console_output_server_id_in_shutoff_status: still 10 lines.
    out = conn.compute.get_server_console_output(srv, length=10)["output"]
    assert len(out.split("\n")) == 10 and "Power down" in out, out
    gone = str(uuid.uuid4())
    status, name, _ = fault_of(console(server, conn, gone, {}))
    assert (status, name) == (404, "itemNotFound")


def test_aliyun_console_output(ecs_any, ali_running):
    got = ecs_any.call("GetInstanceConsoleOutput", InstanceId=ali_running.id)
    assert got["InstanceId"] == ali_running.id
    text = base64.b64decode(got["ConsoleOutput"]).decode()
    assert "Linux version" in text and "login:" in text, text
    # LastUpdateTime: the time of the last boot, UTC ISO 8601 to the second.
    assert len(got["LastUpdateTime"]) == 20 and got["LastUpdateTime"].endswith("Z"), got
    plain = ecs_any.call("GetInstanceConsoleOutput", InstanceId=ali_running.id, RemoveSymbols=True)
    assert base64.b64decode(plain["ConsoleOutput"]).decode() == text  # the sim log has no symbols


def test_aliyun_console_output_windows_is_empty(ecs_any, ali_make_instance):
    win = ali_make_instance(os_family="windows")
    got = ecs_any.call("GetInstanceConsoleOutput", InstanceId=win.id)
    assert got["ConsoleOutput"] == "" and got["InstanceId"] == win.id


def test_aliyun_console_output_errors(ecs_any):
    expect_ecs_error(404, "InvalidInstanceId.NotFound", ecs_any.call, "GetInstanceConsoleOutput",
                     InstanceId=random_aliyun_instance_id())
    missing = getattr(ecs_any, "generic", None) or ecs_any.common
    expect_ecs_error(400, "MissingParameter", missing, "GetInstanceConsoleOutput", RegionId=ALI_REGION)
    if ecs_any.generation == "tea":  # the legacy client always sends its RegionId
        expect_ecs_error(400, "MissingRegionId", missing, "GetInstanceConsoleOutput",
                         InstanceId=random_aliyun_instance_id())
