"""The lab nodes' BMCs and failure injection: power through IPMI really stops and starts a node,
an OS crash leaves the BMC on, a partition cuts a node off while it keeps running."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pvc import processes
from pvc.config import read_credential_file
from pvc.lab import power
from pvc.lab.bmc import BmcSim, udp_port_bound
from pvc.lab.labstate import LabState
from pvc.lab.layout import LabLayout
from pvc.power import ipmi
from pvc.power.ipmi import PowerState
from pvc.state import paths
from pvc.state.store import Store
from tests.helpers import reachable_dir, wait_for
from tests.lab.lab_run import lab_up

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(
        shutil.which("ipmitool") is None or shutil.which("ipmi_sim") is None,
        reason="needs ipmitool and OpenIPMI's ipmi_sim",
    ),
]

PREFIX, NET_INDEX = "pvcpw", 83


@pytest.fixture(scope="module")
def lab() -> Iterator[LabLayout]:
    # peers declare a node dead after 20 s: longer than any failure this module injects
    with lab_up("pvc-lab-power-", PREFIX, NET_INDEX, False, "--fence-intervals", "20") as layout:
        yield layout


def pvc_lab(layout: LabLayout, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PVC_CLIENT_DIR": str(layout.directory.parent / "client")}
    argv = [sys.executable, "-m", "pvc.lab.cli", "--dir", str(layout.directory), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    if check:
        assert result.returncode == 0, f"pvc-lab {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def lab_state(layout: LabLayout) -> LabState:
    state = LabState.load(layout.directory)
    assert state is not None
    return state


def node_pids(layout: LabLayout, node: str) -> list[int]:
    """Every process in the node's network namespace but its anchor."""
    return power.node_pids(lab_state(layout).ref(node, "anchor"))


def daemon(layout: LabLayout, node: str) -> tuple[str, int | None]:
    """The node's daemon state in ZooKeeper, and the session that holds its presence (None:
    no daemon holds one)."""
    store = Store(
        ",".join(layout.zookeeper_hosts),
        timeout=layout.session_timeout,
        credential=read_credential_file(layout.zookeeper_auth_file),
    )
    if not store.start(attempt_timeout=2.0, give_up_after=5.0):
        store.stop()
        return "unreachable", None
    try:
        presence = store.client.exists(paths.node_presence(node))
        state = store.get_text(paths.node_daemon_state(node), "absent")
        return state, presence.ephemeralOwner if presence else None
    finally:
        store.stop()


def back_in_run(layout: LabLayout, node: str, old_session: int | None, timeout: float) -> None:
    """Wait until a new daemon of ``node`` (another session than ``old_session``) is in run."""

    def ready() -> bool:
        state, session = daemon(layout, node)
        return state == "run" and session not in (None, old_session)

    wait_for(ready, timeout=timeout, interval=0.2)


def status_of(layout: LabLayout, node: str) -> dict:
    report = json.loads(pvc_lab(layout, "status", "--json", check=False).stdout)
    return next(n for n in report["nodes"] if n["name"] == node)


def sets(sim: BmcSim, node: str) -> list[tuple[str, ...]]:
    return [call.args for call in sim.calls(node) if call.op == "set"]


def in_node(layout: LabLayout, node: str, code: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run Python ``code`` in the node's network namespace."""
    anchor = lab_state(layout).ref(node, "anchor")
    argv = ["nsenter", "-t", str(anchor.pid), "-n", "--", sys.executable, "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def reaches(layout: LabLayout, node: str, address: str, port: int) -> bool:
    """A TCP connection from ``node`` to ``address``:``port`` succeeds within 1 s."""
    code = f"import socket; socket.create_connection(({address!r}, {port}), timeout=1).close()"
    return in_node(layout, node, code).returncode == 0


def own_bmc_answers(layout: LabLayout, node: str) -> str:
    """What the node's BMC says to ``power status`` from inside the node, with its own
    configuration's fencing.ipmi (the way its peers' fencers reach it)."""
    settings = yaml.safe_load(layout.config_file(node).read_text())["fencing"]["ipmi"]
    code = (
        "from pvc.power import ipmi\n"
        f"target = ipmi.IpmiTarget({settings['host']!r}, {settings['user']!r}, "
        f"{settings['password']!r}, port={settings['port']})\n"
        "try:\n"
        "    print(ipmi.power_status(target, timeout=3).value)\n"
        "except ipmi.IpmiError as error:\n"
        "    print(error.failure.value)\n"
    )
    return in_node(layout, node, code).stdout.strip()


def test_every_node_has_its_bmc(lab: LabLayout) -> None:
    sim = BmcSim.attach(lab.bmc_dir)
    assert sorted(sim.pids()) == lab.node_names
    password = power.bmc_password(lab)
    assert password and len(password) <= 16 and password.isalnum()
    assert lab.bmc_password_file.stat().st_mode & 0o777 == 0o600
    for node in lab.node_names:
        port = lab.bmc_port(node)
        assert sim.target(node) == ipmi.IpmiTarget(f"10.100.{NET_INDEX}.254", "admin", password, port=port)
        fencing = yaml.safe_load(lab.config_file(node).read_text())["fencing"]["ipmi"]
        assert fencing == {
            "host": f"10.100.{NET_INDEX}.254",
            "port": port,
            "user": "admin",
            "password": password,
        }
        assert status_of(lab, node)["power"] == "on"
    assert [lab.bmc_port(n) for n in lab.node_names] == [6230 + i + 10 * NET_INDEX for i in (1, 2, 3)]
    assert own_bmc_answers(lab, "hv2") == "on"  # a node reaches its BMC over the bridge


def test_power_off_and_on_through_the_bmc(lab: LabLayout) -> None:
    node = "hv3"
    sim = BmcSim.attach(lab.bmc_dir)
    before = lab_state(lab)
    daemon_ref = before.ref(node, "pvcnoded")
    assert daemon_ref.pid in node_pids(lab, node)
    state, session = daemon(lab, node)
    assert state == "run" and session is not None

    began = time.monotonic()
    ipmi.power_off(sim.target(node), timeout=5)
    print(f"power off through IPMI: {time.monotonic() - began:.3f} s")
    assert node_pids(lab, node) == []  # nothing left in the node's namespace but its anchor
    assert processes.is_alive(before.ref(node, "anchor"))
    assert not any(processes.is_alive(before.ref(node, r)) for r in ("libvirtd", "zookeeper", "pvcnoded"))
    assert ipmi.power_status(sim.target(node), timeout=5) is PowerState.OFF
    assert sets(sim, node)[-1] == ("power", "0")
    print((sim.node_dir(node) / "hook.log").read_text().strip())
    assert status_of(lab, node)["power"] == "off"

    began = time.monotonic()
    ipmi.power_on(sim.target(node), timeout=5)
    returned = time.monotonic() - began
    assert returned < 2.0  # the services start in the background
    assert ipmi.power_status(sim.target(node), timeout=5) is PowerState.ON
    assert sets(sim, node)[-1] == ("power", "1")
    back_in_run(lab, node, session, timeout=60)
    print(f"power on: returned in {returned:.3f} s, node in run after {time.monotonic() - began:.1f} s")
    after = lab_state(lab)
    assert after.ref(node, "pvcnoded").pid != daemon_ref.pid
    assert processes.is_alive(after.ref(node, "pvcnoded"))
    assert all(after.alive().values())
    assert status_of(lab, node)["power"] == "on"


def test_poweroff_kills_the_os_but_the_bmc_stays_on(lab: LabLayout) -> None:
    node = "hv2"
    sim = BmcSim.attach(lab.bmc_dir)
    before = lab_state(lab)
    _, session = daemon(lab, node)
    calls = len(sim.calls(node))
    result = pvc_lab(lab, "node", "poweroff", node)
    print(result.stdout.strip())
    assert node_pids(lab, node) == []
    assert not processes.is_alive(before.ref(node, "pvcnoded"))
    assert processes.is_alive(before.ref(node, "anchor"))
    assert sim.power(node) is PowerState.ON
    assert ipmi.power_status(sim.target(node), timeout=5) is PowerState.ON
    assert [c for c in sim.calls(node)[calls:] if c.op == "set"] == []
    assert status_of(lab, node)["alive"]["pvcnoded"] is False

    # the hook's "on" by hand starts it again
    pvc_lab(lab, "node", "power", node, "on")
    back_in_run(lab, node, session, timeout=60)
    assert all(lab_state(lab).alive().values())


def test_partition_cuts_the_node_off_and_heal_joins_it_again(lab: LabLayout) -> None:
    node, peer = "hv3", "hv1"
    assert reaches(lab, node, lab.cluster_ip(peer), 2181)

    pvc_lab(lab, "node", "partition", node)
    began = time.monotonic()
    assert lab_state(lab).partitions == [node]
    assert not reaches(lab, node, lab.cluster_ip(peer), 2181)
    assert not reaches(lab, peer, lab.cluster_ip(node), 2181)
    assert own_bmc_answers(lab, node) == "unreachable"
    assert status_of(lab, node)["partitioned"] is True
    assert processes.is_alive(lab_state(lab).ref(node, "zookeeper"))  # its services keep running
    # (its daemon, cut off from ZooKeeper, fences itself after timers.suicide_intervals)
    print(f"partitioned for {time.monotonic() - began:.1f} s")

    pvc_lab(lab, "node", "heal", node)
    assert lab_state(lab).partitions == []
    assert wait_for(lambda: reaches(lab, node, lab.cluster_ip(peer), 2181), timeout=10)
    assert wait_for(lambda: own_bmc_answers(lab, node) == "on", timeout=15)
    pvc_lab(lab, "up")  # starts what died: the daemon
    wait_for(lambda: daemon(lab, node)[0] == "run", timeout=30, interval=0.2)
    assert status_of(lab, node)["partitioned"] is False


def test_up_powers_on_a_node_that_is_off(lab: LabLayout) -> None:
    node = "hv1"
    sim = BmcSim.attach(lab.bmc_dir)
    _, session = daemon(lab, node)
    off = pvc_lab(lab, "node", "power", node, "off")
    assert f"{node} is off" in off.stdout and node_pids(lab, node) == []
    assert sim.power(node) is PowerState.OFF  # by hand too, the BMC reports the change
    healed = pvc_lab(lab, "up")
    assert f"powered {node} on" in healed.stdout
    assert f"restarted pvcnoded on {node}" in healed.stdout
    assert sim.power(node) is PowerState.ON
    back_in_run(lab, node, session, timeout=60)
    assert all(lab_state(lab).alive().values())


def ipmi_sims_under(directory: Path) -> list[int]:
    """PIDs of live ipmi_sim processes whose command line names ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if (
            argv.startswith(b"ipmi_sim\0")
            and str(directory).encode() in argv
            and (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
        ):
            found.append(int(proc.name))
    return found


def test_an_up_that_fails_leaves_no_bmc_running() -> None:
    """An up that fails after its BMCs started stops them; one whose BMC port is taken says so."""
    with reachable_dir("pvc-lab-power-fail-") as base:
        layout = LabLayout(base / "lab", prefix="pvcpx", net_index=84, ceph=False)
        up = ["up", "--no-ceph", "--prefix", layout.prefix, "--net-index", str(layout.net_index)]
        failed = pvc_lab(layout, *up, "--timeout", "0.5", check=False)
        assert failed.returncode != 0 and "removing what was created" in failed.stderr
        assert ipmi_sims_under(layout.directory) == []
        assert not any(udp_port_bound(layout.bmc_port(node)) for node in layout.node_names)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("0.0.0.0", layout.bmc_port("hv2")))
            refused = pvc_lab(layout, *up, check=False)
        assert refused.returncode != 0
        assert f"BMC ports are in use: UDP {layout.bmc_port('hv2')} (hv2)" in refused.stderr
        assert ipmi_sims_under(layout.directory) == []
        pvc_lab(layout, "down")
