"""The lab nodes' power and network, as failures see them: simulated BMCs, power loss, partitions.

Every node has a BMC (:class:`pvc.lab.bmc.BmcSim`, one ``ipmi_sim`` each) on the root
namespace's upstream address, which the nodes reach over the lab bridge. Its power hook is
``pvc-lab node power NODE off|on``:

- ``off`` SIGKILLs at once every process in the node's network namespace but its anchor
  (the node daemon, libvirtd and its QEMU guests, ZooKeeper, Ceph, dnsmasq, FRR...) and
  waits until they are gone, like a power cut;
- ``on`` starts the node's services again in a detached process (as ``pvc-lab up`` does)
  and returns at once, like a machine that boots after power returns.

A partition sets the node's bridge-side link down: it keeps running but reaches nothing
(peers, ZooKeeper, the BMCs).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import string
import sys
import time
from pathlib import Path

from pvc import processes
from pvc.errors import PVCError
from pvc.lab import netns
from pvc.lab.bmc import MAX_SIM_PASSWORD, BmcError, BmcSim, udp_port_bound
from pvc.lab.labstate import LabState
from pvc.lab.layout import BOOT_SECONDS, LabLayout
from pvc.lab.private_files import read_private, write_private
from pvc.power.ipmi import PowerState
from pvc.processes import ProcessRef

#: Seconds ``off`` waits for a node's processes to be gone before it reports a failure.
KILL_TIMEOUT = 5.0
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


class PowerError(PVCError):
    """A lab node's power or network could not be switched."""


# -- the BMCs -------------------------------------------------------------------------------


def new_bmc_password(layout: LabLayout) -> str:
    """Make and store (mode 0600) a fresh random password for the lab's BMCs."""
    password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(MAX_SIM_PASSWORD))
    write_private(layout.bmc_password_file, password)
    return password


def bmc_password(layout: LabLayout) -> str | None:
    """The lab's BMC password (None before ``up`` made one)."""
    return read_private(layout.bmc_password_file)


def hook_argv(layout: LabLayout) -> list[str]:
    """The BMCs' power hook; the node and ``off``/``on`` are appended."""
    return [sys.executable, "-m", "pvc.lab.cli", "--dir", str(layout.directory), "node", "power"]


def start_bmcs(layout: LabLayout, password: str) -> BmcSim:
    """Start one BMC per node, each on its port of :meth:`LabLayout.bmc_port`."""
    nodes = [(node, layout.bmc_port(node)) for node in layout.node_names]
    taken = [f"{port} ({node})" for node, port in nodes if udp_port_bound(port)]
    if taken:
        raise PowerError(
            f"the lab's BMC ports are in use: UDP {', '.join(taken)}; choose another --net-index"
        )
    sim = BmcSim(layout.bmc_dir, layout.bmc_address, nodes, password=password, hook_argv=hook_argv(layout))
    try:
        sim.start()
    except BmcError as error:
        raise PowerError(str(error)) from None
    return sim


def attach_bmcs(layout: LabLayout) -> BmcSim | None:
    """The lab's running (or once started) BMCs, None if it has none."""
    if not (layout.bmc_dir / "bmcs.json").exists():
        return None
    try:
        return BmcSim.attach(layout.bmc_dir)
    except BmcError:
        return None


def stop_bmcs(layout: LabLayout) -> None:
    """Stop the lab's BMCs, by PID (none: nothing to do)."""
    sim = attach_bmcs(layout)
    if sim is not None:
        sim.stop()


def power_states(layout: LabLayout) -> dict[str, str]:
    """Each node's power as its BMC reports it: ``on``, ``off``, or ``unknown`` (no BMC running)."""
    sim = attach_bmcs(layout)
    pids = sim.pids() if sim else {}
    states = {}
    for node in layout.node_names:
        if sim is None or node not in pids:
            states[node] = "unknown"
            continue
        try:
            states[node] = sim.power(node).value
        except (OSError, BmcError):
            states[node] = "unknown"
    return states


def record_power(layout: LabLayout, node: str, state: PowerState) -> None:
    """Make ``node``'s BMC report ``state`` (when power is switched by hand, not through it)."""
    sim = attach_bmcs(layout)
    if sim is not None:
        sim.set_power(node, state)


# -- killing a node -------------------------------------------------------------------------


def _netns_id(pid: int) -> tuple[int, int] | None:
    try:
        found = os.stat(f"/proc/{pid}/ns/net")
    except OSError:  # gone, or a zombie (it has no namespaces left)
        return None
    return found.st_dev, found.st_ino


def _is_zombie(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text[text.rindex(")") + 2 :].startswith("Z")


def node_pids(anchor: ProcessRef) -> list[int]:
    """Every live process in the network namespace of ``anchor`` but the anchor itself."""
    ours = _netns_id(anchor.pid)
    if ours is None:
        raise PowerError(f"the namespace anchor {anchor.name} (pid {anchor.pid}) has died")
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != anchor.pid and _netns_id(int(entry.name)) == ours:
            found.append(int(entry.name))
    return [pid for pid in found if not _is_zombie(pid)]


def _anchor(state: LabState, node: str) -> ProcessRef:
    if node not in state.layout.node_names:
        raise PowerError(f"no node {node} in this lab ({', '.join(state.layout.node_names)})")
    anchor = state.ref(node, "anchor")
    if anchor is None or not processes.is_alive(anchor):
        raise PowerError(f"the namespace anchor of {node} has died: 'pvc-lab down', then 'pvc-lab up'")
    return anchor


def kill_node(state: LabState, node: str, timeout: float = KILL_TIMEOUT) -> int:
    """SIGKILL every process of ``node`` (its anchor aside) and wait until all are gone.

    A start of its services after a power on is stopped first. Returns how many processes
    were killed; :class:`PowerError` if some are still there after ``timeout`` seconds.
    """
    anchor = _anchor(state, node)
    stop_power_on(state.layout, node)
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        pids = node_pids(anchor)
        if not pids:
            return len(killed)
        if time.monotonic() > deadline:
            raise PowerError(f"processes of {node} outlived SIGKILL for {timeout:g} s: {pids}")
        for pid in pids:  # new ones (forked meanwhile) too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.01)


# -- starting a node's services after a power on ---------------------------------------------


def _power_on_ref(layout: LabLayout, node: str) -> ProcessRef | None:
    try:
        ref = ProcessRef.from_json(json.loads(layout.power_on_file(node).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return ref if processes.is_alive(ref) else None


def spawn_power_on(state: LabState, node: str) -> ProcessRef:
    """Start, detached, ``pvc-lab node boot NODE``: the node's dead services start again."""
    layout = state.layout
    _anchor(state, node)
    running = _power_on_ref(layout, node)
    if running is not None:
        return running
    argv = [
        *[sys.executable, "-m", "pvc.lab.cli", "--dir", str(layout.directory)],
        *["node", "boot", "--after", str(BOOT_SECONDS), node],
    ]
    ref = processes.spawn(f"{node}/power-on", argv, layout.log_file(node, "power-on"))
    path = layout.power_on_file(node)
    staged = path.with_suffix(".new")
    staged.write_text(json.dumps(ref.to_json()))
    staged.replace(path)
    return ref


# -- partitions -----------------------------------------------------------------------------


def partition(state: LabState, node: str) -> None:
    """Cut ``node`` off the lab's network: its bridge-side link goes down."""
    _anchor(state, node)
    netns.ip("link", "set", state.layout.host_link(node), "down")
    state.set_partitioned(node, True)


def heal(state: LabState, node: str) -> None:
    """Join ``node`` to the lab's network again."""
    _anchor(state, node)
    netns.ip("link", "set", state.layout.host_link(node), "up")
    state.set_partitioned(node, False)


def stop_power_on(layout: LabLayout, node: str) -> None:
    """Stop a start of ``node``'s services after a power on, if one is running."""
    ref = _power_on_ref(layout, node)
    if ref is not None:
        processes.send(ref, signal.SIGKILL)
        processes.wait_gone([ref], 2.0)
    layout.power_on_file(node).unlink(missing_ok=True)


def wait_power_on(layout: LabLayout, node: str, timeout: float = 120.0) -> None:
    """Wait until a start of ``node``'s services after a power on has ended."""
    ref = _power_on_ref(layout, node)
    if ref is not None:
        processes.wait_gone([ref], timeout)


# -- power cycles seen from outside ----------------------------------------------------------

#: Power-script settings that cut a node's power (``set power 0``, ``shutdown 1``, ``reset 1``).
_CUTS = {("power", "0"), ("shutdown", "1"), ("reset", "1")}
#: Power-script settings after which a node boots (a reset cuts and boots in one call).
_BOOTS = {("power", "1"), ("reset", "1")}


def _calls_since(layout: LabLayout, node: str, since: float, settings: set[tuple[str, str]]) -> list[float]:
    sim = attach_bmcs(layout)
    if sim is None:
        return []
    return [
        call.time
        for call in sim.calls(node)
        if call.time >= since and call.op == "set" and tuple(call.args[:2]) in settings
    ]


def last_power_cut(layout: LabLayout, node: str, since: float) -> float | None:
    """When ``node``'s BMC was last asked to cut its power, at or after ``since`` (epoch
    seconds); None if it was not. A fence does this; the call is logged before the node's
    processes are killed, so a process found dead after such a call died of it."""
    return max(_calls_since(layout, node, since, _CUTS), default=None)


def booted_since(layout: LabLayout, node: str, since: float) -> bool:
    """Whether ``node`` was powered on at or after ``since`` and the start of its services
    that follows has ended (its BMC reports it on)."""
    return (
        bool(_calls_since(layout, node, since, _BOOTS))
        and _power_on_ref(layout, node) is None
        and power_states(layout).get(node) == "on"
    )


def cuts_explaining(layout: LabLayout, dead: list[str], cut_check_from: dict[str, float]) -> dict[str, float]:
    """The nodes of the ``dead`` lab processes (``node/role``) with the time of their power
    cut, if each one's power was cut since its ``cut_check_from`` time (a fence); else {}
    (deaths that power cuts do not explain)."""
    cuts = {}
    for node in sorted({key.split("/")[0] for key in dead}):
        cut = last_power_cut(layout, node, cut_check_from[node])
        if cut is None:
            return {}
        cuts[node] = cut
    return cuts
