"""SR-IOV records in ZooKeeper: each node's physical and virtual functions, and VF settings.

Under ``/nodes/<node>/sriov``: ``pf/<pf>`` (:class:`SriovPf`) and ``vf/<vf>`` (:class:`SriovVf`,
with the settings the PF's driver reports) are what the node's daemon found, replaced as a
whole by :func:`record_sriov`; ``config/<vf>`` (:class:`VfConfig`) is what clients asked of a
VF, changed by compare-and-set through :func:`update_vf_config` and applied by the node's
daemon. A VF is named by its network device (``ens1f0v0``); the same name on two nodes is two
VFs. The settings asked for a VF stay when the VF goes (a smaller VF count): they apply again
if it comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields

from pvc.state import paths
from pvc.state.errors import ConflictError, StateError
from pvc.state.records import _Record, decode_json, encode
from pvc.state.store import NOTHING, Commit, Store, Transaction

Reader = Callable[[str], bytes | None]
Children = Callable[[str], list[str]]

#: How often a compare-and-set write is retried before giving up.
CAS_ATTEMPTS = 20


@dataclass(frozen=True)
class VfConfig(_Record):
    """Settings of one VF; None: not known (reported) or not asked for (wanted).

    Rates are in Mbit/s, a maximum of 0 meaning no limit; VLAN 0 is untagged; the link
    state is ``auto``, ``enable`` or ``disable``.
    """

    vlan_id: int | None = None
    vlan_qos: int | None = None
    tx_rate_min: int | None = None
    tx_rate_max: int | None = None
    spoof_check: bool | None = None
    link_state: str | None = None
    trust: bool | None = None
    query_rss: bool | None = None

    def given(self) -> dict[str, int | bool | str]:
        """The settings that are not None."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class SriovPf(_Record):
    """A physical function as its node found it: MTU, VF limit and its VFs' names."""

    phy: str
    mtu: int | None = None
    total_vfs: int = 0
    vfs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SriovVf(_Record):
    """A virtual function as its node found it.

    ``pci`` is its PCI address (what a ``hostdev`` interface names), ``index`` its number on
    its PF, ``config`` the settings the PF's driver reported (a :class:`VfConfig` mapping).
    """

    phy: str
    pf: str
    index: int = 0
    pci: str = ""
    mac: str = ""
    mtu: int | None = None
    config: dict = field(default_factory=dict)

    @property
    def reported(self) -> VfConfig:
        """The settings the driver reported."""
        return VfConfig.from_mapping(self.config) or VfConfig()


# -- reads ---------------------------------------------------------------------------------


def read_pfs(children: Children, reader: Reader, node: str) -> list[SriovPf]:
    """The node's PFs by name, through a cache's or a store's ``children`` and ``data``/``get``."""
    found = (
        SriovPf.from_bytes(reader(paths.node_sriov_pf(node, pf)))
        for pf in children(paths.node_sriov_pfs(node))
    )
    return [pf for pf in found if pf is not None]


def read_vfs(children: Children, reader: Reader, node: str) -> list[SriovVf]:
    """The node's VFs, by PF and then index."""
    found = (read_vf(reader, node, vf) for vf in children(paths.node_sriov_vfs(node)))
    return sorted((vf for vf in found if vf is not None), key=lambda vf: (vf.pf, vf.index, vf.phy))


def read_vf(reader: Reader, node: str, vf: str) -> SriovVf | None:
    """One VF of the node, or None."""
    if "/" in vf:
        return None
    return SriovVf.from_bytes(reader(paths.node_sriov_vf(node, vf)))


def read_vf_config(reader: Reader, node: str, vf: str) -> VfConfig:
    """The settings asked for a VF (all None when nothing was asked)."""
    if "/" in vf:
        return VfConfig()
    return VfConfig.from_bytes(reader(paths.node_sriov_config(node, vf))) or VfConfig()


# -- writes --------------------------------------------------------------------------------


def _replace_children(
    store: Store, txn: Transaction, parent: str, wanted: dict[str, bytes], path_of: Callable[[str], str]
) -> None:
    """Add to ``txn`` what makes ``parent``'s children exactly ``wanted`` (name -> data), each
    change conditional on the version read now; unchanged children are not written."""
    if not store.exists(parent):
        txn.create(parent)
        existing: list[str] = []
    else:
        existing = store.children(parent)
    for name in existing:
        data, version = store.get_versioned(path_of(name))
        if version < 0:
            continue
        if name not in wanted:
            txn.delete(path_of(name), version=version)
        elif data != wanted[name]:
            txn.set(path_of(name), wanted[name], version=version)
    for name, data in wanted.items():
        if name not in existing:
            txn.create(path_of(name), data)


def record_sriov(store: Store, node: str, pfs: Iterable[SriovPf], vfs: Iterable[SriovVf]) -> Commit:
    """Replace what ``node`` reported of its PFs and VFs with ``pfs`` and ``vfs``, in one transaction.

    Records that did not change are not written (a report that changes nothing commits
    nothing); every write is conditional on the version read, and a lost race is retried.
    StateError when the node never registered.
    """
    pf_data = {pf.phy: encode(pf) for pf in pfs}
    vf_data = {vf.phy: encode(vf) for vf in vfs}
    for name in (*pf_data, *vf_data):
        if not name or "/" in name:
            raise StateError(f"'{name}' cannot name an SR-IOV function")
    for _ in range(CAS_ATTEMPTS):
        if not store.exists(paths.node(node)):
            raise StateError(f"node {node} is not registered")
        txn = Transaction()
        if not store.exists(paths.node_sriov(node)):
            txn.create(paths.node_sriov(node))
        _replace_children(
            store, txn, paths.node_sriov_pfs(node), pf_data, lambda pf: paths.node_sriov_pf(node, pf)
        )
        _replace_children(
            store, txn, paths.node_sriov_vfs(node), vf_data, lambda vf: paths.node_sriov_vf(node, vf)
        )
        try:
            return store.commit(txn)
        except ConflictError:
            continue
    raise ConflictError(f"node {node}: its SR-IOV records kept changing; try again")


def update_vf_config(
    store: Store, node: str, vf: str, change: Callable[[VfConfig], VfConfig]
) -> tuple[VfConfig, Commit]:
    """Apply ``change`` to the settings asked for VF ``vf`` of ``node`` by compare-and-set.

    Returns the settings written and their commit (NOTHING when they did not change).
    StateError when the node never registered.
    """
    path = paths.node_sriov_config(node, vf)
    for _ in range(CAS_ATTEMPTS):
        if not store.exists(paths.node(node)):
            raise StateError(f"node {node} is not registered")
        data, version = store.get_versioned(path)
        current = VfConfig.from_mapping(decode_json(data)) or VfConfig()
        wanted = change(current)
        if version >= 0 and wanted == current:
            return wanted, NOTHING
        txn = Transaction()
        if version < 0:
            if not store.exists(paths.node_sriov_configs(node)):
                if not store.exists(paths.node_sriov(node)):
                    txn.create(paths.node_sriov(node))
                txn.create(paths.node_sriov_configs(node))
            txn.create(path, encode(wanted))
        else:
            txn.set(path, encode(wanted), version=version)
        try:
            return wanted, store.commit(txn)
        except ConflictError:
            continue
    raise ConflictError(f"VF {vf} of node {node}: its settings kept changing; try again")
