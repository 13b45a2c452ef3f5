"""The node daemon's SR-IOV manager: VF counts, reports and the settings asked of VFs.

A node whose configuration lists SR-IOV PFs (``networks.sriov``) gets one thread that, at
start, gives each PF its MTU (when configured) and VF count, then records the node's PFs and
VFs and applies the settings clients asked of its VFs (:mod:`pvc.cluster.sriov.node`). It
runs again whenever those asked settings change (a cache listener on the node's
``sriov/config`` records) and every :data:`RESYNC_INTERVAL` seconds regardless, which also
records what changed on the host (a VF handed to a VM loses its network device).

A configured PF that is missing (or is no SR-IOV PF), a VF count or MTU the driver refuses,
and a VF setting the driver refuses each raise a fault (:data:`SRIOV_FAULT`, per node and PF
or VF), cleared once the problem is gone. A missing PF's count and MTU are set when it turns
up; a count the driver refused is not tried again until the daemon restarts (writing the
count again would tear down the VFs VMs use). A node with no SR-IOV configuration does
nothing at all, and never reads sysfs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pvc.cluster.session import Cluster
from pvc.cluster.sriov import node as sriov_node
from pvc.config import NodeConfig
from pvc.config.networks import SriovDevice
from pvc.errors import PVCError
from pvc.net import sriov
from pvc.net.sriov import SYSFS_NET, Runner, run_ip
from pvc.node.background import NodeFaults, PassThread
from pvc.state import paths
from pvc.state.errors import StateError

log = logging.getLogger(__name__)

#: Seconds between passes when nothing changes.
RESYNC_INTERVAL = 30.0
#: The fault of a PF or VF this node cannot set up as asked (subject ``<node>:<pf or vf>``).
SRIOV_FAULT = "sriov_failed"
DELTA_SRIOV_FAULT = 10


@dataclass(frozen=True)
class SriovHost:
    """Where the manager finds the host's SR-IOV devices: sysfs's ``class/net`` directory and
    the runner of ``ip`` commands (tests give a made-up tree and a stand-in)."""

    root: Path = SYSFS_NET
    run: Runner = run_ip
    netns: str | None = None


class SriovManager:
    """Keeps this node's SR-IOV devices as configured and asked (see the module docstring)."""

    def __init__(self, config: NodeConfig, cluster: Cluster, host: SriovHost | None = None) -> None:
        self.cluster = cluster
        self.node = config.node.name
        self.devices: tuple[SriovDevice, ...] = tuple(config.networks.sriov)
        self.host = host or SriovHost()
        #: PFs whose MTU and count are not set yet (missing so far), and refusals that stay.
        self._unset = {device.phy for device in self.devices}
        self._refused: dict[str, str] = {}
        self._thread = PassThread("sriov-manager", self.run_pass, RESYNC_INTERVAL)
        self._faults = NodeFaults(cluster, self.node, SRIOV_FAULT, DELTA_SRIOV_FAULT)
        self.passes = 0

    @property
    def enabled(self) -> bool:
        """Whether the node's configuration lists any SR-IOV PF."""
        return bool(self.devices)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (its first pass runs at once); nothing without SR-IOV PFs."""
        if not self.enabled:
            return
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; the VFs and their settings stay."""
        self._thread.stop()

    def on_change(self, path: str) -> None:
        """Cache listener: wake the thread when the settings asked of this node's VFs change."""
        parent = paths.node_sriov_configs(self.node)
        if self.enabled and (path == parent or path.startswith(parent + "/")):
            self._thread.wake()

    # -- a pass ------------------------------------------------------------------------

    def run_pass(self) -> dict[str, str]:
        """Set up PFs not set up yet, record the node's PFs and VFs, apply the asked VF
        settings (recording again when any applied) and raise or clear faults; returns the
        problems found, by PF or VF."""
        self.passes += 1
        problems = self._set_up()
        store, host = self.cluster.store, self.host
        try:
            sriov_node.report(store, self.node, root=host.root, run=host.run, netns=host.netns)
            results = sriov_node.apply_asked(store, self.node, run=host.run, netns=host.netns)
            for vf, result in sorted(results.items()):
                if result.applied:
                    log.info("SR-IOV VF %s: applied %s", vf, ", ".join(result.applied))
                if result.failed:
                    refused = "; ".join(f"{name}: {why}" for name, why in sorted(result.failed.items()))
                    problems[vf] = f"SR-IOV VF {vf} on {self.node}: the driver refused {refused}"
            if any(result.applied for result in results.values()):
                sriov_node.report(store, self.node, root=host.root, run=host.run, netns=host.netns)
        except StateError as error:
            log.error("cannot record SR-IOV devices: %s", error)
            return problems
        self._report(problems)
        return problems

    def _set_up(self) -> dict[str, str]:
        """Give each configured PF not set up yet its MTU and VF count; returns the problems
        of every configured PF (missing now, or refused before)."""
        problems = dict(self._refused)
        for device in self.devices:
            if not sriov.is_pf(device.phy, self.host.root):
                problems[device.phy] = (
                    f"SR-IOV PF {device.phy} on {self.node} is missing or is not an SR-IOV physical function"
                )
                continue
            if device.phy not in self._unset:
                continue
            self._unset.discard(device.phy)
            try:
                self._set_mtu(device)
                if sriov.set_vf_count(device.phy, device.vfcount, self.host.root):
                    log.info("SR-IOV PF %s: %d VFs", device.phy, device.vfcount)
            except PVCError as error:
                self._refused[device.phy] = f"SR-IOV PF {device.phy} on {self.node}: {error}"
                problems[device.phy] = self._refused[device.phy]
        return problems

    def _set_mtu(self, device: SriovDevice) -> None:
        if device.mtu is None:
            return
        try:
            current = (self.host.root / device.phy / "mtu").read_text().strip()
        except OSError:
            current = ""
        if current == str(device.mtu):
            return
        ip = ["ip", *(["-n", self.host.netns] if self.host.netns else [])]
        argv = [*ip, "link", "set", "dev", device.phy, "mtu", str(device.mtu)]
        result = self.host.run(argv)
        if result.returncode != 0:
            raise sriov.SriovError(f"MTU {device.mtu} refused: {result.stderr.strip()}")
        log.info("SR-IOV PF %s: MTU %d", device.phy, device.mtu)

    def _report(self, problems: dict[str, str]) -> None:
        self._faults.publish(problems)
