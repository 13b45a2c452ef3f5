"""The ``networks`` section: the node's core networks and what client networks need on it."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, IPvAnyAddress, model_validator

from pvc.config.base import _Section


class NetworkSection(_Section):
    """One of the upstream/cluster/storage networks as seen from this node."""

    device: str | None = None
    address: ipaddress.IPv4Interface
    floating_address: ipaddress.IPv4Interface | None = None
    gateway: ipaddress.IPv4Address | None = None

    @model_validator(mode="after")
    def _floating_in_subnet(self) -> NetworkSection:
        if self.floating_address and self.floating_address.network != self.address.network:
            raise ValueError(f"floating_address {self.floating_address} is not in {self.address.network}")
        return self


#: A Linux interface name (at most 15 characters, no slash or space).
InterfaceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")]
#: A private AS number; the nodes share it (iBGP among themselves).
DEFAULT_ASN = 65500
ASNumber = Annotated[int, Field(ge=1, le=4294967294)]


class UpstreamBgpSection(_Section):
    """The routers (one AS) the primary announces the managed networks' subnets to."""

    peers: list[IPvAnyAddress] = Field(min_length=1)
    asn: ASNumber


class BgpSection(_Section):
    """BGP EVPN among the nodes (FRR's zebra and bgpd, run by the node daemon).

    Coordinators are route reflectors; every node peers with every coordinator over the
    cluster network. ``keepalive``/``hold``/``connect`` are the BGP timers in seconds (by
    default FRR's data-centre profile); the hold time is how long a dead peer's MAC and
    flood routes stay. ``upstream`` names the routers the primary
    announces the managed networks' subnets to, from the upstream floating address.
    """

    enabled: bool = True
    asn: ASNumber = DEFAULT_ASN
    keepalive: int = Field(default=3, ge=1, le=60)
    hold: int = Field(default=9, ge=3, le=180)
    connect: int = Field(default=5, ge=1, le=60)
    upstream: UpstreamBgpSection | None = None

    @model_validator(mode="after")
    def _hold_covers_keepalives(self) -> BgpSection:
        if self.hold < 3 * self.keepalive:
            raise ValueError(f"hold ({self.hold} s) must be at least 3 × keepalive ({3 * self.keepalive} s)")
        return self


class SriovDevice(_Section):
    """An SR-IOV physical function (PF) of this node: its network device, the MTU it is given
    (none: left as it is) and how many virtual functions (VFs) it makes."""

    phy: InterfaceName
    mtu: int | None = Field(default=None, ge=576, le=65535)
    vfcount: int = Field(ge=0, le=65535)


class NetworksSection(_Section):
    """The node's core networks, and where its client networks attach.

    ``bridge_device`` is the trunk that carries bridged networks' VLANs (none: this node
    cannot carry bridged networks); ``bridge_mtu`` their default MTU (default: the
    device's). Managed networks ride VXLAN over the cluster network's device.
    ``client_networks`` off: this node neither carries nor serves client networks (for a
    node whose links someone else manages). ``sriov`` lists the node's SR-IOV PFs, each
    named once (none: the node leaves SR-IOV alone).
    """

    upstream: NetworkSection
    cluster: NetworkSection
    storage: NetworkSection
    client_networks: bool = True
    bridge_device: InterfaceName | None = None
    bridge_mtu: int | None = Field(default=None, ge=576, le=65535)
    bgp: BgpSection = BgpSection()
    sriov: list[SriovDevice] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pfs_named_once(self) -> NetworksSection:
        seen: set[str] = set()
        for device in self.sriov:
            if device.phy in seen:
                raise ValueError(f"sriov names PF {device.phy} more than once")
            seen.add(device.phy)
        return self
