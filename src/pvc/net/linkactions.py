"""Changes to a node's client-network links: what the planner asks and :mod:`pvc.net.links` does.

Each action names links by name and reads as one log line (``str(action)``). ``vni`` says
which network it serves, so that when one step fails the rest of that network's steps are
skipped while other networks go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pvc.net.netspec import vni_of_link


class _LinkAction:
    """What every action has: the link it is about, and the network that link serves."""

    name: str

    @property
    def vni(self) -> int | None:
        """The VNI of the network link ``name`` serves (None for a link of no network)."""
        return vni_of_link(self.name)


@dataclass(frozen=True)
class CreateBridge(_LinkAction):
    """Make bridge ``name`` (marked, MTU set, up)."""

    name: str
    mtu: int

    def __str__(self) -> str:
        return f"create bridge {self.name} (mtu {self.mtu})"


@dataclass(frozen=True)
class CreateVxlan(_LinkAction):
    """Make VXLAN ``name`` in bridge ``master`` (marked, up, port learning off, neigh_suppress on)."""

    name: str
    vxlan_id: int
    local: str
    device: str
    port: int
    mtu: int
    master: str

    def __str__(self) -> str:
        return (
            f"create vxlan {self.name} (id {self.vxlan_id}, local {self.local} dev {self.device}, "
            f"dstport {self.port}, mtu {self.mtu}) in {self.master}"
        )


@dataclass(frozen=True)
class CreateVlan(_LinkAction):
    """Make 802.1Q VLAN ``name`` on ``device`` in bridge ``master`` (marked, up)."""

    name: str
    vlan_id: int
    device: str
    mtu: int
    master: str

    def __str__(self) -> str:
        return (
            f"create vlan {self.name} (id {self.vlan_id} on {self.device}, mtu {self.mtu}) in {self.master}"
        )


@dataclass(frozen=True)
class SetLink(_LinkAction):
    """Change what can be changed in place: MTU, master, up (None/False: leave as is)."""

    name: str
    mtu: int | None = None
    master: str | None = None
    up: bool = False
    reason: str = ""

    def __str__(self) -> str:
        return f"set {self.name}: {self.reason}"


@dataclass(frozen=True)
class SetPortFlags(_LinkAction):
    """Set a bridge port's learning and neigh_suppress flags."""

    name: str
    learning: bool
    neigh_suppress: bool
    reason: str = ""

    def __str__(self) -> str:
        return f"set port {self.name}: {self.reason}"


@dataclass(frozen=True)
class DeleteLink(_LinkAction):
    """Remove link ``name`` (one PVC made)."""

    name: str
    reason: str = ""

    def __str__(self) -> str:
        return f"remove {self.name} ({self.reason})" if self.reason else f"remove {self.name}"


Action = CreateBridge | CreateVxlan | CreateVlan | SetLink | SetPortFlags | DeleteLink


@dataclass(frozen=True)
class LinkPlan:
    """The planner's answer: the actions in order, warnings, and each network's MTU.

    ``mtus`` holds the MTU each network gets (after any clamp), for those set up here;
    DHCP and router advertisements should announce it.
    """

    actions: tuple[Action, ...] = ()
    warnings: tuple[str, ...] = ()
    mtus: Mapping[int, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.actions)
