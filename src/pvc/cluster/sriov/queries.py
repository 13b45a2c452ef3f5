"""SR-IOV as clients see it (the PVC v1 shapes, from the cache), and which VFs are free.

A VF is used by the VM assigned to its node (whatever the VM's state) whose domain XML names
it: a ``direct`` (macvtap) interface on the VF's network device, or a ``hostdev`` interface
or device at its PCI address. A VF's ``config`` shows the settings asked for it where any
were asked (what its node applies), else what the driver reported; a setting nothing knows is
``N/A``.
"""

from __future__ import annotations

from pvc.cluster.errors import NotFoundError
from pvc.cluster.figures import known
from pvc.cluster.session import Cluster
from pvc.cluster.sriov.usage import HOSTDEV, MACVTAP, vf_references
from pvc.state import sriov as records
from pvc.state.sriov import SriovPf, SriovVf, VfConfig
from pvc.state.vms import VmRecord

#: The settings v1 shows as text (numbers), and as JSON booleans.
TEXT_SETTINGS = ("vlan_id", "vlan_qos", "tx_rate_min", "tx_rate_max", "link_state")
FLAG_SETTINGS = ("spoof_check", "trust", "query_rss")


def pf_to_api(pf: SriovPf) -> dict:
    """A PF in the v1 shape: ``phy``, ``mtu`` (text) and its VFs' names."""
    return {"phy": pf.phy, "mtu": known(None if pf.mtu is None else str(pf.mtu)), "vfs": list(pf.vfs)}


def effective_config(vf: SriovVf, wanted: VfConfig) -> VfConfig:
    """The settings asked for ``vf`` where any were asked, its reported ones elsewhere."""
    return VfConfig(**{**vf.reported.given(), **wanted.given()})


def vf_to_api(vf: SriovVf, wanted: VfConfig, user: str | None) -> dict:
    """A VF in the v1 shape, plus ``pci`` (its PCI address, which a hostdev interface names);
    ``user`` is the UUID of the VM using it, if one does."""
    config = effective_config(vf, wanted)
    shown: dict[str, object] = {}
    for name in TEXT_SETTINGS:
        value = getattr(config, name)
        shown[name] = known(None if value is None else str(value))
    for name in FLAG_SETTINGS:
        shown[name] = known(getattr(config, name))
    return {
        "phy": vf.phy,
        "pf": vf.pf,
        "mtu": known(vf.mtu),
        "mac": vf.mac,
        "pci": vf.pci,
        "config": shown,
        "usage": {"used": user is not None, "domain": user},
    }


def _node(cluster: Cluster, node: str) -> str:
    if cluster.cache.node(node) is None:
        raise NotFoundError(f"Node '{node}' not found")
    return node


def pfs(cluster: Cluster, node: str) -> list[SriovPf]:
    """The PFs ``node`` reported; NotFoundError for a node that never registered."""
    cache = cluster.cache
    return records.read_pfs(cache.children, cache.data, _node(cluster, node))


def vfs(cluster: Cluster, node: str, pf: str | None = None) -> list[SriovVf]:
    """The VFs ``node`` reported (of PF ``pf`` only, if given); NotFoundError for an unknown node."""
    cache = cluster.cache
    found = records.read_vfs(cache.children, cache.data, _node(cluster, node))
    return [vf for vf in found if pf is None or vf.pf == pf]


def vf(cluster: Cluster, node: str, name: str) -> SriovVf:
    """One VF of ``node``; NotFoundError for an unknown node or VF."""
    found = records.read_vf(cluster.cache.data, _node(cluster, node), name)
    if found is None:
        raise NotFoundError(f"VF '{name}' not found on node '{node}'")
    return found


def vms_on(cluster: Cluster, node: str) -> list[VmRecord]:
    """The VMs assigned to ``node`` (running or not), by UUID."""
    return [vm for vm in cluster.cache.vms() if vm.placement.node == node]


def users(cluster: Cluster, node: str, functions: list[SriovVf]) -> dict[str, str]:
    """Which of ``functions`` (VFs of ``node``) a VM uses: VF name -> the VM's UUID."""
    by_device = {vf.phy: vf.phy for vf in functions}
    by_pci = {vf.pci: vf.phy for vf in functions if vf.pci}
    used: dict[str, str] = {}
    for vm in vms_on(cluster, node):
        for reference in vf_references(vm.xml):
            table = by_device if reference.mode == MACVTAP else by_pci if reference.mode == HOSTDEV else {}
            name = table.get(reference.device)
            if name is not None:
                used.setdefault(name, vm.uuid)
    return used


def list_pfs(cluster: Cluster, node: str) -> list[dict]:
    """``GET /sriov/pf/<node>``."""
    return [pf_to_api(pf) for pf in pfs(cluster, node)]


def list_vfs(cluster: Cluster, node: str, pf: str | None = None) -> list[dict]:
    """``GET /sriov/vf/<node>``, of PF ``pf`` only if given."""
    found = vfs(cluster, node, pf)
    used = users(cluster, node, found)
    data = cluster.cache.data
    return [
        vf_to_api(item, records.read_vf_config(data, node, item.phy), used.get(item.phy)) for item in found
    ]


def get_vf(cluster: Cluster, node: str, name: str) -> dict:
    """``GET /sriov/vf/<node>/<vf>``."""
    item = vf(cluster, node, name)
    used = users(cluster, node, [item])
    return vf_to_api(item, records.read_vf_config(cluster.cache.data, node, name), used.get(name))


def free_vfs(cluster: Cluster, node: str, pf: str) -> list[str]:
    """The VFs of PF ``pf`` on ``node`` that no VM assigned to the node uses, in index order
    (none for a node that never registered)."""
    if cluster.cache.node(node) is None:
        return []
    found = vfs(cluster, node, pf)
    used = users(cluster, node, found)
    return [item.phy for item in found if item.phy not in used]


def vf_free_on(cluster: Cluster, node: str, pf: str) -> bool:
    """Whether ``node`` has a VF of a PF named ``pf`` that no VM uses: a VM with a VF may move
    there live only if it does."""
    return bool(free_vfs(cluster, node, pf))


def vm_vfs(cluster: Cluster, vm: VmRecord) -> list[SriovVf]:
    """The VFs of its node that ``vm``'s XML names (its node's records name them)."""
    node = vm.placement.node
    if not node or cluster.cache.node(node) is None:
        return []
    references = vf_references(vm.xml)
    names = {ref.device for ref in references if ref.mode == MACVTAP}
    addresses = {ref.device for ref in references if ref.mode == HOSTDEV}
    return [item for item in vfs(cluster, node) if item.phy in names or (item.pci and item.pci in addresses)]
