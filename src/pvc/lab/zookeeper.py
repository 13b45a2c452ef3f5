"""Running Apache ZooKeeper (Debian's package): configuration, command line, probes.

Used by the lab (an ensemble inside node namespaces) and by the test session (one
standalone server on loopback).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pvc import processes
from pvc.config import ZookeeperCredential
from pvc.processes import ProcessRef
from pvc.state import members

ZOOKEEPER_JARS = (
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/netty-handler.jar",
    "/usr/share/java/netty-transport.jar",
    "/usr/share/java/netty-common.jar",
    "/usr/share/java/netty-buffer.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-epoll.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
    "/usr/share/java/metrics-core.jar",
    "/usr/share/java/snappy-java.jar",
)
#: Serial GC and a bounded heap: a member starts in under a second and stays near 60 MB with
#: a small cluster; the ceiling leaves room for thousands of VM records.
DEFAULT_HEAP_MB = 256
JVM_FLAGS = (
    "-Xms16m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss512k",
    "-XX:MaxMetaspaceSize=64m",
    "-Dzookeeper.forceSync=no",
)
TICK_TIME_MS = 500
PEER_PORT = 2888
ELECTION_PORT = 3888
#: The four-letter commands the lab and the tests use (``srvr`` for a member's mode); the
#: others (``dump``, ``cons``, ``envi``, ``wchp``...) describe sessions, paths and the host.
FOUR_LETTER_WORDS = ("srvr", "ruok")
#: The digest user of the credential the lab generates.
LAB_USER = "pvc"


@dataclass(frozen=True)
class Member:
    """One ZooKeeper server of an ensemble."""

    myid: int
    address: str
    client_port: int = 2181


def write_config(
    directory: Path, me: Member, members: Sequence[Member], *, require_auth: bool = True
) -> Path:
    """Write zoo.cfg, log4j.properties and myid for ``me``; returns the directory.

    With ``require_auth`` the server closes every session that has not authenticated
    (digest scheme) at its first request; the ACLs on PVC's znodes protect the data in
    any case, this also keeps anonymous clients from everything else (``/zookeeper``,
    creating znodes under an open root, holding sessions).
    """
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    lines = [
        f"tickTime={TICK_TIME_MS}",
        "initLimit=10",
        "syncLimit=5",
        f"dataDir={data}",
        f"clientPort={me.client_port}",
        f"clientPortAddress={me.address}",
        "admin.enableServer=false",
        f"4lw.commands.whitelist={','.join(FOUR_LETTER_WORDS)}",
        "maxClientCnxns=0",
        "autopurge.purgeInterval=1",
    ]
    if require_auth:
        lines += ["enforce.auth.enabled=true", "enforce.auth.schemes=digest"]
    if len(members) > 1:
        lines += [f"server.{m.myid}={m.address}:{PEER_PORT}:{ELECTION_PORT}" for m in members]
        (data / "myid").write_text(f"{me.myid}\n")
    (directory / "zoo.cfg").write_text("\n".join(lines) + "\n")
    (directory / "log4j.properties").write_text(
        "\n".join(
            [
                "log4j.rootLogger=INFO, FILE",
                "log4j.appender.FILE=org.apache.log4j.FileAppender",
                "log4j.appender.FILE.File=${zookeeper.log.file}",
                "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout",
                "log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n",
            ]
        )
        + "\n"
    )
    return directory


def command(directory: Path, heap_mb: int = DEFAULT_HEAP_MB) -> list[str]:
    """The java command line that runs the server configured in ``directory``."""
    classpath = ":".join([str(directory), *ZOOKEEPER_JARS])
    return [
        "java",
        f"-Xmx{heap_mb}m",
        *JVM_FLAGS,
        "-cp",
        classpath,
        f"-Dzookeeper.log.file={directory / 'zookeeper.log'}",
        f"-Dlog4j.configuration=file:{directory / 'log4j.properties'}",
        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        str(directory / "zoo.cfg"),
    ]


def mode(address: str, port: int) -> str | None:
    """'leader', 'follower' or 'standalone' when the server serves clients, else None."""
    reply = members.four_letter(address, port, "srvr")
    for line in (reply or "").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def wait_serving(members: Sequence[Member], timeout: float = 30.0) -> bool:
    """Wait until every member serves clients (quorum formed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(mode(m.address, m.client_port) for m in members):
            return True
        time.sleep(0.1)
    return False


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_credential(path: Path, user: str = LAB_USER) -> ZookeeperCredential:
    """Generate a random password for ``user`` and write ``user:password`` to ``path`` (0600)."""
    credential = ZookeeperCredential(user, secrets.token_urlsafe(32))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(f"{credential.user}:{credential.password}\n")
    return credential


def start_standalone(
    directory: Path,
    timeout: float = 60.0,
    heap_mb: int = DEFAULT_HEAP_MB,
    *,
    require_auth: bool = False,
) -> tuple[ProcessRef, Member]:
    """Start one ZooKeeper server on loopback (tests, benchmarks); stop it with terminate().

    By default it admits anonymous sessions, so that only the ACLs stand between a client
    without PVC's credential and PVC's znodes (as on an ensemble PVC does not configure).
    """
    member = Member(1, "127.0.0.1", free_port())
    write_config(directory, member, [member], require_auth=require_auth)
    ref = processes.spawn("zookeeper", command(directory, heap_mb), directory / "stdout.log")
    if not wait_serving([member], timeout=timeout):
        processes.terminate([ref])
        raise RuntimeError(f"ZooKeeper did not start; see {directory}/stdout.log")
    return ref, member
