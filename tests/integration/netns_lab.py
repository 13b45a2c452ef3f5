"""Network namespaces a test makes for itself: named with a random suffix, removed at the end.

Nothing here touches the root namespace: veth pairs are created with both ends inside
the test's namespaces, and every command runs under ``ip netns exec``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence

from pvc import commands
from pvc.commands import CommandResult

#: Names of the tests' namespaces start with this (the lab tests use ``pvct``).
PREFIX = "pvcn"
#: A TCP listener for :meth:`NetnsLab.serve`: answers ``ok`` on each port it is given.
SERVER = """
import selectors, socket, sys
selector = selectors.DefaultSelector()
for port in sys.argv[1:]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", int(port)))
    listener.listen(16)
    selector.register(listener, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in selector.select():
        connection, _ = key.fileobj.accept()
        connection.sendall(b"ok")
        connection.close()
"""
#: A TCP client: exits 0 when ``host port`` answers ``ok`` within its timeout.
CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as s:
        s.settimeout(float(sys.argv[3]))
        sys.exit(0 if s.recv(2) == b"ok" else 1)
except OSError:
    sys.exit(1)
"""


def netns_available() -> bool:
    """True when this process may make network namespaces (root with iproute2)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    return commands.run(["ip", "netns", "list"], timeout=10, accept=None).returncode == 0


class NetnsLab:
    """The namespaces, links and processes of one test; :meth:`close` removes them all."""

    def __init__(self) -> None:
        self.suffix = uuid.uuid4().hex[:6]
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []

    def namespace(self, role: str) -> str:
        """A new namespace ``pvcn-<role>-<suffix>`` with its loopback up."""
        name = f"{PREFIX}-{role}-{self.suffix}"
        commands.run(["ip", "netns", "add", name], timeout=10)
        self.namespaces.append(name)
        self.run(name, "ip", "link", "set", "lo", "up")
        return name

    def run(self, netns: str, *argv: str, check: bool = True, timeout: float = 30) -> CommandResult[str]:
        """Run ``argv`` inside ``netns``; a failure raises unless not ``check``."""
        return commands.run(
            ["ip", "netns", "exec", netns, *argv], timeout=timeout, accept=(0,) if check else None
        )

    def veth(self, netns_a: str, name_a: str, netns_b: str, name_b: str) -> None:
        """A veth pair with ``name_a`` in ``netns_a`` and ``name_b`` in ``netns_b``, both up."""
        peer = ["peer", "name", name_b, "netns", netns_b]
        commands.run(["ip", "-n", netns_a, "link", "add", name_a, "type", "veth", *peer], timeout=10)
        self.run(netns_a, "ip", "link", "set", name_a, "up")
        self.run(netns_b, "ip", "link", "set", name_b, "up")

    def bridge(self, netns: str, name: str, *ports: str) -> None:
        """A bridge ``name`` in ``netns`` with ``ports`` enslaved, all up."""
        self.run(netns, "ip", "link", "add", name, "type", "bridge")
        self.run(netns, "ip", "link", "set", name, "up")
        for port in ports:
            self.run(netns, "ip", "link", "set", port, "master", name)

    def popen(self, netns: str, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        """A long-running child inside ``netns``, ended by :meth:`close`."""
        process = subprocess.Popen(["ip", "netns", "exec", netns, *argv], **kwargs)
        self.processes.append(process)
        return process

    def serve(self, netns: str, *ports: int) -> subprocess.Popen:
        """TCP listeners on ``ports`` in ``netns`` (each answers ``ok``), ready when this returns."""
        process = self.popen(
            netns,
            [sys.executable, "-c", SERVER, *map(str, ports)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        return process

    def reachable(self, netns: str, host: str, port: int, timeout: float = 1.5) -> bool:
        """True when a TCP connection from ``netns`` to ``host:port`` gets ``ok``."""
        result = self.run(netns, sys.executable, "-c", CLIENT, host, str(port), str(timeout), check=False)
        return result.returncode == 0

    def close(self) -> None:
        """End the processes (by PID), then delete the namespaces with all links in them."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        for name in reversed(self.namespaces):
            with contextlib.suppress(commands.CommandError):
                commands.run(["ip", "netns", "del", name], timeout=10)
