"""SSH into real guests (the qemu driver) with paramiko: the address from the `nubis:ssh`
tag, key or password logins, and whether a login is refused."""

from __future__ import annotations

import paramiko


def ssh_tag(inst: dict) -> str:
    tags = {t["Key"]: t["Value"] for t in inst.get("Tags") or []}
    assert "nubis:ssh" in tags, inst.get("Tags")
    return tags["nubis:ssh"]


class Login:
    """One SSH session into a guest (paramiko)."""

    def __init__(self, endpoint: str, user: str, *, key=None, password: str | None = None):
        host, port = endpoint.rsplit(":", 1)
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        self.client.connect(host, int(port), username=user, pkey=key, password=password,
                            look_for_keys=False, allow_agent=False, timeout=15,
                            banner_timeout=15, auth_timeout=15)
        self.host_key = self.client.get_transport().get_remote_server_key().get_base64()

    def run(self, command: str) -> str:
        _, out, err = self.client.exec_command(command, timeout=30)
        rc = out.channel.recv_exit_status()
        text = out.read().decode()
        assert rc == 0, f"{command!r} exited {rc}: {text} {err.read().decode()}"
        return text.strip()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.client.close()


def refused(endpoint: str, user: str, **cred) -> bool:
    try:
        Login(endpoint, user, **cred).client.close()
    except paramiko.AuthenticationException:
        return True
    return False


def boot_id(login: Login) -> str:
    return login.run("cat /proc/sys/kernel/random/boot_id")
