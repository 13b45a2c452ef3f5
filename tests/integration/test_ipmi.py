"""Fencing's IPMI adapter against the lab's simulated BMCs (real ipmitool, real ipmi_sim)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc.lab.bmc import BmcError, BmcSim, CallRecord
from pvc.power import ipmi
from pvc.power.ipmi import IpmiError, IpmiFailure, IpmiTarget, PowerState
from tests.helpers import free_udp_ports

pytestmark = pytest.mark.skipif(
    shutil.which("ipmitool") is None or shutil.which("ipmi_sim") is None,
    reason="needs ipmitool and OpenIPMI's ipmi_sim",
)

PASSWORD = "Lab-bmc-0123"
#: Records each hook call with the node's power state at that moment: ``node op state``.
HOOK = """#!/bin/sh
dir=$1; out=$2; node=$3; op=$4
[ -f "$dir/fail" ] && { echo "refusing $op" >&2; exit 1; }
echo "$node $op $(cat "$dir/$node/power")" >> "$out"
"""


def ipmi_sims_under(directory: Path) -> list[int]:
    """PIDs of ipmi_sim processes whose command line names ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (
            state != "Z"
            and argv
            and argv[0].endswith(b"ipmi_sim")
            and str(directory).encode() in b" ".join(argv)
        ):
            found.append(int(proc.name))
    return found


@pytest.fixture
def hook_out(tmp_path: Path) -> Path:
    return tmp_path / "hook.out"


@pytest.fixture
def bmcs(tmp_path: Path, hook_out: Path) -> Iterator[BmcSim]:
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK)
    directory = tmp_path / "bmcs"
    sim = BmcSim(
        directory,
        "127.0.0.1",
        list(zip(("node1", "node2"), free_udp_ports(2), strict=True)),
        password=PASSWORD,
        hook_argv=["/bin/sh", str(hook), str(directory), str(hook_out)],
    )
    began = time.monotonic()
    sim.start()
    print(f"2 BMCs ready in {time.monotonic() - began:.3f} s")
    try:
        yield sim
    finally:
        sim.stop()


def sets(sim: BmcSim) -> list[tuple[str, tuple[str, ...]]]:
    return [(call.node, call.args) for call in sim.calls() if call.op == "set"]


def test_power_off_and_on_through_the_bmc(bmcs: BmcSim, hook_out: Path) -> None:
    one, two = bmcs.target("node1"), bmcs.target("node2")
    assert ipmi.power_status(one, timeout=5) is PowerState.ON
    assert ipmi.power_status(two, timeout=5) is PowerState.ON
    assert sets(bmcs) == []

    began = time.monotonic()
    ipmi.power_off(one, timeout=5)
    print(f"power off took {time.monotonic() - began:.3f} s")
    assert ipmi.power_status(one, timeout=5) is PowerState.OFF
    assert ipmi.power_status(two, timeout=5) is PowerState.ON
    assert (bmcs.power("node1"), bmcs.power("node2")) == (PowerState.OFF, PowerState.ON)
    assert sets(bmcs) == [("node1", ("power", "0"))]
    assert hook_out.read_text() == "node1 off 1\n"  # the hook ran before the state changed

    ipmi.power_on(one, timeout=5)
    assert ipmi.power_status(one, timeout=5) is PowerState.ON
    assert sets(bmcs) == [("node1", ("power", "0")), ("node1", ("power", "1"))]
    assert hook_out.read_text() == "node1 off 1\nnode1 on 0\n"
    assert all(call.node in ("node1", "node2") for call in bmcs.calls())
    times = [call.time for call in bmcs.calls()]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 10


def test_one_call_is_quick(bmcs: BmcSim) -> None:
    target = bmcs.target("node2")
    began = time.monotonic()
    for _ in range(5):
        ipmi.power_status(target, timeout=5)
    each = (time.monotonic() - began) / 5
    print(f"one power status: {each:.3f} s")
    assert each < 0.5


def test_the_recorded_state_is_what_the_bmc_reports(bmcs: BmcSim) -> None:
    bmcs.set_power("node2", PowerState.OFF)
    assert ipmi.power_status(bmcs.target("node2"), timeout=5) is PowerState.OFF
    assert ipmi.power_status(bmcs.target("node1"), timeout=5) is PowerState.ON
    assert bmcs.calls("node2")[-1] == CallRecord(bmcs.calls("node2")[-1].time, "node2", "get", ("power",))


def test_a_failing_hook_fails_the_request_and_keeps_the_state(bmcs: BmcSim, hook_out: Path) -> None:
    (bmcs.directory / "fail").touch()
    with pytest.raises(IpmiError) as caught:
        ipmi.power_off(bmcs.target("node1"), timeout=5)
    assert caught.value.failure is IpmiFailure.FAILED
    assert bmcs.power("node1") is PowerState.ON
    assert "refusing off" in (bmcs.node_dir("node1") / "hook.log").read_text()
    assert not hook_out.exists()


def test_a_wrong_password_is_refused_quickly(bmcs: BmcSim) -> None:
    right = bmcs.target("node1")
    wrong = IpmiTarget(right.host, right.user, "not-the-one", port=right.port)
    began = time.monotonic()
    with pytest.raises(IpmiError) as caught:
        ipmi.power_off(wrong, timeout=5)
    took = time.monotonic() - began
    print(f"wrong password refused in {took:.3f} s: {caught.value}")
    assert caught.value.failure is IpmiFailure.AUTH
    assert "authentication refused" in str(caught.value) and "not-the-one" not in str(caught.value)
    assert took < 1.0
    assert sets(bmcs) == []
    unknown = IpmiTarget(right.host, "nobody", PASSWORD, port=right.port)
    with pytest.raises(IpmiError) as caught:
        ipmi.power_status(unknown, timeout=5)
    assert caught.value.failure is IpmiFailure.AUTH


def test_a_paused_bmc_is_unreachable_within_the_timeout(bmcs: BmcSim) -> None:
    bmcs.pause("node1")
    began = time.monotonic()
    with pytest.raises(IpmiError) as caught:
        ipmi.power_off(bmcs.target("node1"), timeout=5)
    took = time.monotonic() - began
    print(f"unreachable (ipmitool gave up) after {took:.3f} s: {caught.value}")
    assert caught.value.failure is IpmiFailure.UNREACHABLE
    assert (ipmi.RETRIES + 1) * ipmi.wait_seconds(5) - 0.5 < took < 5
    assert ipmi.power_status(bmcs.target("node2"), timeout=5) is PowerState.ON  # the other BMC answers

    began = time.monotonic()
    with pytest.raises(IpmiError) as caught:
        ipmi.power_status(bmcs.target("node1"), timeout=1)  # shorter than ipmitool's own wait
    took = time.monotonic() - began
    print(f"unreachable (deadline) after {took:.3f} s: {caught.value}")
    assert caught.value.failure is IpmiFailure.UNREACHABLE and "within 1 s" in str(caught.value)
    assert took < 1.5

    bmcs.resume("node1")
    assert ipmi.power_status(bmcs.target("node1"), timeout=5) is PowerState.ON
    assert sets(bmcs) == []


def test_stop_ends_every_bmc_also_from_another_object(bmcs: BmcSim) -> None:
    pids = bmcs.pids()
    assert sorted(pids) == ["node1", "node2"]
    assert sorted(ipmi_sims_under(bmcs.directory)) == sorted(pids.values())
    bmcs.pause("node2")  # a frozen BMC is stopped too
    other = BmcSim.attach(bmcs.directory)
    assert other.pids() == pids
    other.stop()
    assert ipmi_sims_under(bmcs.directory) == []
    assert bmcs.pids() == {} and BmcSim.attach(bmcs.directory).pids() == {}
    with pytest.raises(IpmiError):
        ipmi.power_status(bmcs.target("node1"), timeout=1)


def test_a_bmc_that_cannot_start_is_reported(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        sim = BmcSim(
            tmp_path / "bmcs", "127.0.0.1", [("node1", free_udp_ports(1)[0]), ("node9", port)], password="x1"
        )
        with pytest.raises(BmcError) as caught:
            sim.start(timeout=10)
    print(caught.value)
    assert "ipmi_sim of node9 exited at start" in str(caught.value)
    assert "Unable to bind" in str(caught.value)  # ipmi_sim's own word, read by running it again
    assert ipmi_sims_under(sim.directory) == []


def run_script(sim: BmcSim, node: str, *args: str) -> subprocess.CompletedProcess:
    """Call ``node``'s power script as ipmi_sim does."""
    script = sim.node_dir(node) / "power.sh"
    return subprocess.run([str(script), node, *args], capture_output=True, text=True, timeout=10, check=False)


def test_the_power_script_alone(tmp_path: Path, hook_out: Path) -> None:
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK)
    directory = tmp_path / "bmcs"
    hook_argv = ["/bin/sh", str(hook), str(directory), str(hook_out)]
    sim = BmcSim(directory, "127.0.0.1", [("n1", 1623)], password="pw", hook_argv=hook_argv)
    sim.write()
    assert run_script(sim, "n1", "get", "power", "boot").stdout == "power:1\nboot:none\n"
    assert run_script(sim, "n1", "set", "reset", "1").returncode == 0  # on: off, then on again
    assert hook_out.read_text() == "n1 off 1\nn1 on 1\n"
    assert run_script(sim, "n1", "set", "shutdown", "1").returncode == 0
    assert sim.power("n1") is PowerState.OFF
    assert run_script(sim, "n1", "set", "reset", "1").returncode == 0  # off: stays off
    assert run_script(sim, "n1", "set", "boot", "pxe").returncode == 0
    assert run_script(sim, "n1", "set", "power", "7").returncode != 0
    assert sim.power("n1") is PowerState.OFF
    assert hook_out.read_text() == "n1 off 1\nn1 on 1\nn1 off 1\n"
    assert [(c.node, c.op, c.args) for c in sim.calls()] == [
        ("n1", "get", ("power", "boot")),
        ("n1", "set", ("reset", "1")),
        ("n1", "set", ("shutdown", "1")),
        ("n1", "set", ("reset", "1")),
        ("n1", "set", ("boot", "pxe")),
        ("n1", "set", ("power", "7")),
    ]
    assert (sim.node_dir("n1") / "lan.conf").stat().st_mode & 0o077 == 0  # it holds the password


@pytest.mark.parametrize(
    ("nodes", "password"),
    [
        ([("n 1", 1623)], "pw"),
        ([("n1", 1623), ("n1", 1624)], "pw"),
        ([("n1", 1623), ("n2", 1623)], "pw"),
        ([("n1", 0)], "pw"),
        ([("n1", 1623)], "p" * 17),
        ([("n1", 1623)], 'a"b'),
        ([("n1", 1623)], ""),
    ],
)
def test_what_cannot_stand_in_a_bmc_configuration_is_refused(
    tmp_path: Path, nodes: list[tuple[str, int]], password: str
) -> None:
    with pytest.raises(BmcError):
        BmcSim(tmp_path, "127.0.0.1", nodes, password=password)
