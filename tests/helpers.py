"""Helpers shared by the test suites."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pvc.config import NodeConfig, ZookeeperCredential, parse_config, read_credential_file
from pvc.lab import zookeeper


@functools.cache
def zk_auth_file() -> Path:
    """The credential file (mode 0600, made once per test process) of every test daemon."""
    directory = Path(tempfile.mkdtemp(prefix="pvc-test-zk-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = directory / "zookeeper.auth"
    zookeeper.write_credential(path)
    return path


@functools.cache
def zk_credential() -> ZookeeperCredential:
    """The tests' ZooKeeper credential: what the test stores authenticate with."""
    return read_credential_file(zk_auth_file())


def _reference_dir() -> Path:
    """``shared/reference`` beside the checkout, beside a directory above it, or beside the
    local repository it was cloned from (a fresh clone elsewhere still finds it);
    ``../shared/reference`` when none has one."""
    root = Path(__file__).resolve().parents[1]
    places = [*root.parents]
    origin = subprocess.run(
        ["git", "-C", str(root), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if origin.startswith("/") or origin.startswith("file://"):
        places.append(Path(origin.removeprefix("file://")).resolve().parent)
    for place in places:
        if (place / "shared" / "reference").is_dir():
            return place / "shared" / "reference"
    return root.parent / "shared" / "reference"


#: Where the interface reference (the PVC v1 API document, the CLI tree) lives: beside the
#: checkout, ``../shared/reference`` from the repository root (see :func:`_reference_dir`).
#: ``PVC_REFERENCE_DIR`` names another directory.
REFERENCE_DIR = _reference_dir()
#: Set to ``1`` where the reference is intentionally absent: the conformance tests that need
#: it are then skipped, saying so. Without it a missing reference fails those tests.
NO_REFERENCE_VARIABLE = "PVC_NO_REFERENCE"


def reference_file(name: str) -> Path:
    """The path of reference file ``name``; fails the calling test when it is missing (skips it
    only when ``PVC_NO_REFERENCE=1`` says the reference is absent on purpose)."""
    directory = Path(os.environ.get("PVC_REFERENCE_DIR") or REFERENCE_DIR)
    path = directory / name
    if path.is_file():
        return path
    if os.environ.get(NO_REFERENCE_VARIABLE) == "1":
        pytest.skip(f"{path} is absent and {NO_REFERENCE_VARIABLE}=1 says that is intended")
    pytest.fail(
        f"the reference {path} is missing: conformance cannot be checked "
        f"(set PVC_REFERENCE_DIR to where it is, or {NO_REFERENCE_VARIABLE}=1 if it is absent on purpose)"
    )


#: The admin API key of test node configurations (keys must be at least 32 characters).
TEST_API_KEY = "test-admin-key-0123456789abcdef0123"


class ManualClock:
    """A clock for code that takes one (``clock=``): it reads ``now``, which the test moves."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


@contextmanager
def reachable_dir(prefix: str = "pvc-test-") -> Iterator[Path]:
    """A fresh directory under /tmp that every account may enter (mode 0755), removed after.

    pvcapid runs as ``pvcapi``, which cannot enter pytest's root-only ``tmp_path``.
    """
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def node_config_data(
    name: str,
    coordinators: list[str],
    zk_hosts: str,
    *,
    keepalive_interval: float = 0.25,
    fence_intervals: int = 6,
    session_timeout: float = 1.0,
    suicide_intervals: int = 0,
    index: int = 1,
    hypervisor_uri: str | None = None,
    shutdown_timeout: float = 2.0,
    storage: dict | None = None,
    state_dir: str | None = None,
    api: dict | None = None,
    sriov: list[dict] | None = None,
    backup: dict | None = None,
) -> dict:
    """A minimal valid configuration mapping for a test node (``storage``, ``api``: those
    sections; ``sriov``: the node's SR-IOV PFs; ``backup``: that section: where VM snapshots may be
    exported, the schedules). Self-fencing is off unless ``suicide_intervals``
    is given: test timings are too short for the time a node gets to stop its VMs."""
    server, _, chroot = zk_hosts.partition("/")
    data = {
        "cluster": {"name": "test"},
        "node": {"name": name},
        "coordinators": coordinators,
        "zookeeper": {
            "hosts": [server],
            "chroot": f"/{chroot}" if chroot else "",
            "session_timeout": session_timeout,
            "auth_file": str(zk_auth_file()),
        },
        "networks": {
            "upstream": {"address": f"10.100.0.{index}/24", "floating_address": "10.100.0.250/24"},
            "cluster": {"address": f"10.110.0.{index}/24", "floating_address": "10.110.0.250/24"},
            "storage": {"address": f"10.120.0.{index}/24", "floating_address": "10.120.0.250/24"},
            # Test daemons run in this machine's own namespace: they must not touch its links.
            "client_networks": False,
        },
        "hypervisor": {"uri": hypervisor_uri, "shutdown_timeout": shutdown_timeout},
        "timers": {
            "keepalive_interval": keepalive_interval,
            "fence_intervals": fence_intervals,
            "suicide_intervals": suicide_intervals,
        },
        "logging": {"level": "debug", "zookeeper_lines": 200},
        # A test daemon must never arm a real hardware watchdog of the machine it runs on.
        "fencing": {"watchdog": None},
        "api": {"token": [{"description": "tests", "token": TEST_API_KEY}]},
        # No Patroni member runs beside test daemons (the database has tests of its own).
        "database": {"enabled": False},
    }
    if storage is not None:
        data["storage"] = storage
    if api is not None:
        data["api"] = api
    if sriov is not None:
        data["networks"]["sriov"] = sriov
    if backup is not None:
        data["backup"] = backup
    if state_dir is not None:
        data["paths"] = {"state_dir": state_dir, "log_dir": f"{state_dir}/log"}
    return data


def node_config(name: str, coordinators: list[str], zk_hosts: str, **kwargs: Any) -> NodeConfig:
    return parse_config(node_config_data(name, coordinators, zk_hosts, **kwargs))


def metric_samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Prometheus text as ``{sample name: {sorted label pairs: value}}``."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def by_label(samples: dict[tuple[tuple[str, str], ...], float], label: str) -> dict[str, int]:
    """One metric's samples keyed by one label's value, as integers."""
    return {dict(labels)[label]: int(value) for labels, value in samples.items()}


def free_udp_ports(count: int, address: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports on ``address`` free for UDP (and TCP) right now.

    Every candidate stays bound until all are chosen, so the kernel cannot hand the same
    port out twice.
    """
    held: list[socket.socket] = []
    try:
        while len(held) < count:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((address, 0))
            port = udp.getsockname()[1]
            with socket.socket() as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    port = -1
            if port < 0:
                udp.close()
                continue
            held.append(udp)
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()
