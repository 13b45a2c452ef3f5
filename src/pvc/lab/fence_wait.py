"""Waiting out the cluster's fences while the lab's processes are (re)started.

The lab's node daemons fence a dead peer through its simulated BMC, which kills every process
of the node and later starts them again (:mod:`pvc.lab.power`). ``pvc-lab up`` restarting a
node that the cluster has just declared dead races such a fence: these helpers let it wait
for fences under way, and for a node whose power was cut to run all its services again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pvc.errors import PVCError
from pvc.lab import power
from pvc.lab.labstate import LabState
from pvc.lab.layout import LabLayout
from pvc.state.errors import StateError
from pvc.state.fencing import read_fence
from pvc.state.store import Store


def fences_under_way(store: Store, layout: LabLayout) -> list[str]:
    """The nodes a fence of the cluster is under way for (it may yet cut their power)."""
    return [node for node in layout.node_names if (r := read_fence(store, node)) and not r.done]


def wait_fences(open_store: Callable[[], Store], layout: LabLayout, timeout: float) -> list[str]:
    """Wait until no fence of the cluster is under way; one sentence per fence waited for.
    Nothing to wait for when ZooKeeper cannot be reached (``open_store`` fails: nothing
    fences without it). PVCError if a fence is still under way after ``timeout`` seconds."""
    try:
        store = open_store()
    except PVCError:
        return []
    deadline = time.monotonic() + timeout
    waited: set[str] = set()
    try:
        while time.monotonic() < deadline:
            try:
                fencing = fences_under_way(store, layout)
            except StateError:  # e.g. the member it spoke to died with a fenced node
                time.sleep(0.5)
                continue
            if not fencing:
                return [f"waited for the cluster's fence of {node} to end" for node in sorted(waited)]
            waited.update(fencing)
            time.sleep(0.2)
    finally:
        store.stop()
    raise PVCError(f"a fence of {', '.join(sorted(waited))} is still under way after {timeout:g} s")


def wait_booted(read_state: Callable[[], LabState], node: str, cut: float, deadline: float) -> bool:
    """Wait until ``node``, whose power was cut at ``cut`` (epoch seconds), was powered on
    since and runs every one of its services again; False if ``deadline`` (monotonic) passed
    first. ``read_state`` reads the lab's state afresh."""
    while time.monotonic() < deadline:
        state = read_state()
        if power.booted_since(state.layout, node, cut) and all(
            alive for key, alive in state.alive().items() if key.startswith(f"{node}/")
        ):
            return True
        time.sleep(0.2)
    return False
