"""Client networks as the node's links see them: what is wanted, what is there, the names.

A client network is keyed by its VNI. A VM joins network VNI through the host bridge
``vmbr<VNI>`` (:mod:`pvc.domain_xml.bridges`); the bridge's one PVC port carries the
network off the node:

- **bridged**: the 802.1Q VLAN ``vlan<VNI>`` (VLAN id = VNI) on the node's bridge device;
- **managed**: the VXLAN ``vxlan<VNI>`` (id VNI, from the node's cluster address, UDP port
  4789, no learning and no multicast group: EVPN fills its forwarding table).

Links PVC makes carry the alias :data:`MARKER`; only links with that alias *and* a name of
the rule above are PVC's to change or remove, so a hand-made ``vmbr999`` is never touched.
Everything here is plain data: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pvc.domain_xml.bridges import BRIDGE_PREFIX, bridge_name

#: The alias (``ip link set X alias pvc``, IFLA_IFALIAS) of every link PVC makes.
MARKER = "pvc"
#: Prefix of a managed network's VXLAN port (``vxlan100``).
VXLAN_PREFIX = "vxlan"
#: Prefix of a bridged network's VLAN port (``vlan100``).
VLAN_PREFIX = "vlan"
#: The IANA VXLAN port, the destination port of every PVC VXLAN.
VXLAN_PORT = 4789
#: Bytes a VXLAN packet adds over IPv4 (outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8)...
VXLAN_OVERHEAD_IPV4 = 50
#: ... and over IPv6 (its header is 40 bytes).
VXLAN_OVERHEAD_IPV6 = 70
#: The largest VNI (24 bits); ``vxlan16777215`` is 13 characters, within IFNAMSIZ - 1 = 15.
VNI_MAX = 2**24 - 1
#: The largest 802.1Q VLAN id (4095 is reserved).
VLAN_MAX = 4094
#: The MTU range a network may ask for (IPv4's minimum to the largest Linux accepts).
MTU_MIN = 68
MTU_MAX = 65535

_OWNED_NAME = re.compile(rf"({BRIDGE_PREFIX}|{VXLAN_PREFIX}|{VLAN_PREFIX})([1-9][0-9]*)")


class NetKind(StrEnum):
    """How a client network leaves the node."""

    BRIDGED = "bridged"  # an 802.1Q VLAN on the bridge device
    MANAGED = "managed"  # a VXLAN over the cluster network (EVPN)


@dataclass(frozen=True)
class NetworkSpec:
    """One client network this node should carry: its VNI, kind and MTU (None: the default)."""

    vni: int
    kind: NetKind
    mtu: int | None = None

    def __post_init__(self) -> None:
        kind = NetKind(self.kind)  # ValueError for an unknown kind
        object.__setattr__(self, "kind", kind)
        top = VLAN_MAX if kind is NetKind.BRIDGED else VNI_MAX
        if isinstance(self.vni, bool) or not isinstance(self.vni, int) or not 1 <= self.vni <= top:
            raise ValueError(f"a {kind} network's VNI must be 1..{top}, not {self.vni!r}")
        if self.mtu is not None and (
            isinstance(self.mtu, bool) or not isinstance(self.mtu, int) or not MTU_MIN <= self.mtu <= MTU_MAX
        ):
            raise ValueError(f"network {self.vni}: MTU must be {MTU_MIN}..{MTU_MAX}, not {self.mtu!r}")

    @property
    def bridge(self) -> str:
        """The host bridge VMs join."""
        return bridge_name(self.vni)

    @property
    def port(self) -> str:
        """The bridge's PVC port: ``vlan<VNI>`` or ``vxlan<VNI>``."""
        return port_name(self.kind, self.vni)


@dataclass(frozen=True)
class NodeNetParams:
    """What the node's configuration says about its client networks.

    ``bridge_device``: the trunk that bridged networks' VLANs ride on (e.g. ``eno1``).
    ``bridge_mtu``: the MTU configured for it, the default of bridged networks (None: the
    device's own). ``vxlan_local``: the node's cluster address, the VXLANs' source.
    ``vxlan_device``: the device holding that address, the VXLANs' underlay.
    """

    bridge_device: str
    bridge_mtu: int | None
    vxlan_local: str
    vxlan_device: str

    @property
    def vxlan_overhead(self) -> int:
        """Bytes each VXLAN packet costs the underlay."""
        return VXLAN_OVERHEAD_IPV6 if ":" in self.vxlan_local else VXLAN_OVERHEAD_IPV4


def port_name(kind: NetKind, vni: int) -> str:
    """The name of network ``vni``'s port of ``kind``."""
    return f"{VLAN_PREFIX if kind is NetKind.BRIDGED else VXLAN_PREFIX}{vni}"


def vni_of_link(name: str) -> int | None:
    """The VNI in a name PVC gives links (``vmbr7``, ``vxlan7``, ``vlan7`` give 7), else None."""
    match = _OWNED_NAME.fullmatch(name)
    return int(match.group(2)) if match else None


# --- What is there ---------------------------------------------------------------


@dataclass(frozen=True)
class VxlanAttrs:
    """A VXLAN's identity: what cannot be changed without recreating it."""

    vni: int
    local: str | None
    device: str | None  # the underlay link's name
    port: int
    learning: bool
    group: str | None = None  # remote or multicast group (PVC's have none)


@dataclass(frozen=True)
class VlanAttrs:
    """An 802.1Q VLAN's identity."""

    vlan_id: int
    device: str | None  # the lower link's name


@dataclass(frozen=True)
class PortAttrs:
    """A bridge port's flags (``bridge link set dev X learning .. neigh_suppress ..``)."""

    learning: bool
    neigh_suppress: bool


@dataclass(frozen=True)
class ObservedLink:
    """One link as the kernel reports it (names, not indexes, for cross-references)."""

    name: str
    kind: str | None  # "bridge", "vxlan", "vlan", "veth", ... (None: a plain device)
    mtu: int
    up: bool  # administratively up (IFF_UP)
    master: str | None = None
    alias: str | None = None
    index: int = 0
    vxlan: VxlanAttrs | None = None
    vlan: VlanAttrs | None = None
    port: PortAttrs | None = None  # set when it is a bridge's port

    @property
    def owned(self) -> bool:
        """PVC made it: it carries the marker and a name of PVC's rule."""
        return self.alias == MARKER and vni_of_link(self.name) is not None


@dataclass(frozen=True)
class ObservedLinks:
    """Every link of the node (of one network namespace), by name."""

    links: Mapping[str, ObservedLink] = field(default_factory=dict)

    @classmethod
    def of(cls, *links: ObservedLink) -> ObservedLinks:
        """Links given one by one (tests and fakes)."""
        return cls({link.name: link for link in links})

    def get(self, name: str) -> ObservedLink | None:
        """The link called ``name``, or None."""
        return self.links.get(name)

    def __iter__(self) -> Iterator[ObservedLink]:
        return iter(self.links.values())

    def __len__(self) -> int:
        return len(self.links)

    def ports_of(self, bridge: str) -> list[str]:
        """Names of the links enslaved to ``bridge``, sorted."""
        return sorted(link.name for link in self.links.values() if link.master == bridge)
