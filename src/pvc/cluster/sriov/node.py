"""What a node daemon does for SR-IOV: give its PFs their VF counts, report its PFs and VFs, and
apply the settings clients asked of its VFs.

The daemon's SR-IOV manager (:mod:`pvc.node.sriov_manager`) sets the VF counts of its
configured PFs (``networks.sriov``) at start, and calls :func:`report` then and after each
:func:`apply_asked`, and :func:`apply_asked` whenever the asked settings change. Reads and
writes go to the store (fresh), since the daemon acts on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pvc.net import sriov
from pvc.net.sriov import SYSFS_NET, ApplyResult, PhysicalFunction, Runner, VfSettings, VfState, run_ip
from pvc.state import sriov as records
from pvc.state.sriov import SriovPf, SriovVf, VfConfig
from pvc.state.store import Commit, Store


def set_vf_counts(counts: Mapping[str, int], root: Path = SYSFS_NET) -> dict[str, str]:
    """Give each PF its VF count (``{pf: vfcount}``); returns the PFs that could not be set, and why."""
    failed = {}
    for pf, count in counts.items():
        try:
            sriov.set_vf_count(pf, count, root)
        except sriov.SriovError as error:
            failed[pf] = str(error)
    return failed


def to_records(
    found: list[PhysicalFunction], states: Mapping[str, Mapping[int, VfState]]
) -> tuple[list[SriovPf], list[SriovVf]]:
    """The state records of what discovery found; ``states`` are what each PF's driver reported
    of its VFs, by PF and index (a VF's MAC address comes from there when it has no device)."""
    pfs, vfs = [], []
    for pf in found:
        pfs.append(SriovPf(phy=pf.name, mtu=pf.mtu, total_vfs=pf.total_vfs, vfs=[vf.name for vf in pf.vfs]))
        reported = states.get(pf.name, {})
        for vf in pf.vfs:
            state = reported.get(vf.index)
            settings = state.settings.given() if state else {}
            mac = vf.mac or (state.mac if state else "")
            vfs.append(
                SriovVf(
                    phy=vf.name, pf=pf.name, index=vf.index, pci=vf.pci, mac=mac, mtu=vf.mtu, config=settings
                )
            )
    return pfs, vfs


def report(
    store: Store, node: str, *, root: Path = SYSFS_NET, run: Runner = run_ip, netns: str | None = None
) -> Commit:
    """Discover this host's PFs and VFs and record them for ``node`` (nothing is written when
    nothing changed). A VF without a network device keeps the name it was recorded under."""
    known = {vf.pci: vf.phy for vf in records.read_vfs(store.children, store.get, node) if vf.pci}
    found = sriov.discover(root, known)
    states: dict[str, Mapping[int, VfState]] = {}
    for pf in found:
        try:
            states[pf.name] = sriov.read_vf_states(pf.name, run=run, netns=netns)
        except sriov.SriovError:
            states[pf.name] = {}
    pfs, vfs = to_records(found, states)
    return records.record_sriov(store, node, pfs, vfs)


@dataclass(frozen=True)
class Pending:
    """A VF whose asked settings differ from what its driver last reported."""

    vf: SriovVf
    wanted: VfSettings


def _settings(config: VfConfig) -> VfSettings:
    return VfSettings(**config.given())


def pending(store: Store, node: str) -> list[Pending]:
    """The VFs of ``node`` whose asked settings are not all what the driver reported."""
    found = []
    for vf in records.read_vfs(store.children, store.get, node):
        asked = records.read_vf_config(store.get, node, vf.phy).given()
        reported = vf.reported.given()
        differing = {name: value for name, value in asked.items() if reported.get(name) != value}
        if differing:
            found.append(Pending(vf, VfSettings(**asked)))
    return found


def apply_asked(
    store: Store, node: str, *, run: Runner = run_ip, netns: str | None = None
) -> dict[str, ApplyResult]:
    """Apply the asked settings of every VF of ``node`` that does not have them yet; returns the
    result by VF name (a setting the driver refuses is in its ``failed``)."""
    results = {}
    for item in pending(store, node):
        current = _settings(item.vf.reported)
        try:
            results[item.vf.phy] = sriov.apply_vf_config(
                item.vf.pf, item.vf.index, item.wanted, current=current, run=run, netns=netns
            )
        except sriov.SriovError as error:  # settings recorded out of range: none is applied
            results[item.vf.phy] = ApplyResult(failed={"settings": str(error)})
    return results
