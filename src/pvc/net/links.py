"""Client-network links over netlink (pyroute2): read them all, carry out planned changes.

:func:`observe` reads every link of the namespace in one dump; :func:`apply` carries out
the planner's actions (:mod:`pvc.net.linkactions`), a few netlink requests each, and
reports each one's outcome instead of stopping at the first failure: when a step fails,
the remaining steps of the same network are skipped and other networks go on. A removal
of a link that is already gone succeeds, so a repeated plan does no harm.

Gateway addresses on a network's bridge go through :mod:`pvc.net.addresses`, the one
place that adds and removes addresses.
"""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pvc import commands
from pvc.commands import CommandError
from pvc.domain_xml.bridges import bridge_name
from pvc.errors import PVCError
from pvc.net import addresses
from pvc.net.linkactions import (
    Action,
    CreateBridge,
    CreateVlan,
    CreateVxlan,
    DeleteLink,
    SetLink,
    SetPortFlags,
)
from pvc.net.netspec import (
    MARKER,
    ObservedLink,
    ObservedLinks,
    PortAttrs,
    VlanAttrs,
    VxlanAttrs,
)

IFF_UP = 0x1
#: IFLA_INET6_ADDR_GEN_MODE "none": a bridge port needs no IPv6 link-local address.
ADDR_GEN_MODE_NONE = 1
_NO_ADDR_GEN = {"attrs": [("AF_INET6", {"attrs": [("IFLA_INET6_ADDR_GEN_MODE", ADDR_GEN_MODE_NONE)]})]}


class LinkError(PVCError):
    """A netlink request about a link failed."""


def open_netlink(netns: str | None = None) -> IPRoute:
    """A netlink socket for link work, in network namespace ``netns`` (None: this one).

    It subscribes to no events: the reconciler reads state when it wants it.
    """
    return IPRoute(netns=netns, groups=0) if netns else IPRoute(groups=0)


# --- Reading ---------------------------------------------------------------------


def observe(ipr: IPRoute) -> ObservedLinks:
    """Every link of ``ipr``'s namespace, with what the planner compares."""
    messages = list(ipr.get_links())
    names = {msg["index"]: msg.get("ifname") for msg in messages}
    links = (_link(msg, names) for msg in messages)
    return ObservedLinks({link.name: link for link in links})


def _link(msg: Any, names: dict[int, str]) -> ObservedLink:
    info = msg.get("linkinfo")
    kind = info.get("kind") if info is not None else None
    data = info.get("data") if info is not None else None
    vxlan = vlan = port = None
    if kind == "vxlan" and data is not None:
        vxlan = VxlanAttrs(
            vni=data.get("vxlan_id"),
            local=data.get("vxlan_local") or data.get("vxlan_local6"),
            device=names.get(data.get("vxlan_link") or 0),
            port=data.get("vxlan_port"),
            learning=bool(data.get("vxlan_learning")),
            group=data.get("vxlan_group") or data.get("vxlan_group6"),
        )
    elif kind == "vlan" and data is not None:
        vlan = VlanAttrs(vlan_id=data.get("vlan_id"), device=names.get(msg.get("link") or 0))
    if info is not None and info.get("slave_kind") == "bridge":
        slave = info.get("slave_data")
        if slave is not None:
            port = PortAttrs(
                learning=bool(_brport(slave, "IFLA_BRPORT_LEARNING")),
                neigh_suppress=bool(_brport(slave, "IFLA_BRPORT_NEIGH_SUPPRESS")),
            )
    master = msg.get("master")
    return ObservedLink(
        name=msg.get("ifname"),
        kind=kind,
        mtu=msg.get("mtu"),
        up=bool(msg["flags"] & IFF_UP),
        master=names.get(master) if master else None,
        alias=msg.get("ifalias"),
        index=msg["index"],
        vxlan=vxlan,
        vlan=vlan,
        port=port,
    )


def _brport(slave: Any, name: str) -> Any:
    """A bridge port attribute (pyroute2 gives the slave data as a dict or as a message)."""
    if isinstance(slave, dict):
        return slave.get(name)
    return slave.get_attr(name)


# --- Changing --------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """One action and how it went: ``error`` is None when it was done."""

    action: Action
    error: str | None = None
    skipped: bool = False

    @property
    def done(self) -> bool:
        return self.error is None and not self.skipped

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.action}: skipped ({self.error})"
        return f"{self.action}: failed: {self.error}" if self.error else str(self.action)


def apply(ipr: IPRoute, actions: Iterable[Action]) -> list[Applied]:
    """Carry out ``actions`` in order; each one's outcome (later steps of a failed network skipped)."""
    results = []
    failed: set[int | None] = set()
    indexes = _Indexes(ipr)
    for action in actions:
        if action.vni is not None and action.vni in failed:
            results.append(Applied(action, "an earlier step of this network failed", skipped=True))
            continue
        try:
            _do(ipr, indexes, action)
        except (LinkError, NetlinkError) as error:
            failed.add(action.vni)
            results.append(Applied(action, _message(error)))
        else:
            results.append(Applied(action))
    return results


def _message(error: Exception) -> str:
    if isinstance(error, NetlinkError):
        return f"{error.args[1] if len(error.args) > 1 else 'netlink error'} (errno {error.code})"
    return str(error)


class _Indexes:
    """Interface indexes by name, asked once each during one apply."""

    def __init__(self, ipr: IPRoute) -> None:
        self.ipr = ipr
        self.known: dict[str, int] = {}

    def __getitem__(self, name: str) -> int:
        if name not in self.known:
            try:
                self.known[name] = self.ipr.link("get", ifname=name)[0]["index"]
            except NetlinkError as error:
                if error.code == errno.ENODEV:
                    raise LinkError(f"no link {name}") from None
                raise
        return self.known[name]

    def forget(self, name: str) -> None:
        self.known.pop(name, None)


def _do(ipr: IPRoute, indexes: _Indexes, action: Action) -> None:
    if isinstance(action, CreateBridge | CreateVxlan | CreateVlan):
        _create(ipr, indexes, action)
    elif isinstance(action, SetLink):
        changes: dict[str, Any] = {}
        if action.mtu is not None:
            changes["mtu"] = action.mtu
        if action.master is not None:
            changes["master"] = indexes[action.master]
        if action.up:
            changes["state"] = "up"
        if changes:
            ipr.link("set", index=indexes[action.name], **changes)
    elif isinstance(action, SetPortFlags):
        ipr.brport(
            "set",
            index=indexes[action.name],
            learning=int(action.learning),
            neigh_suppress=int(action.neigh_suppress),
        )
    elif isinstance(action, DeleteLink):
        try:
            ipr.link("del", index=indexes[action.name])
        except LinkError:
            pass  # already gone
        except NetlinkError as error:
            if error.code != errno.ENODEV:
                raise
        indexes.forget(action.name)
    else:  # pragma: no cover - the Action union is closed
        raise LinkError(f"unknown action {action!r}")


def _create(ipr: IPRoute, indexes: _Indexes, action: CreateBridge | CreateVxlan | CreateVlan) -> None:
    """Make the link, mark it, then finish it; a link that cannot be finished is taken away.

    The marker goes on first, in its own request: a link left half made (a failure, or a
    daemon killed in between) is then still PVC's, and the next pass repairs or removes it.
    A link of that name that is already PVC's (the same action carried out again) is
    finished as if just made; one that is not PVC's is an error and stays untouched.
    """
    try:
        _add(ipr, indexes, action)
    except NetlinkError as error:
        if error.code != errno.EEXIST:
            raise
        if not _marked(ipr, action.name):
            raise LinkError(f"{action.name} exists and is not PVC's") from None
    index = indexes[action.name]
    ipr.link("set", index=index, ifalias=MARKER)
    try:
        if isinstance(action, CreateBridge):
            # The MTU is set after creation so that the bridge keeps it as the user's choice
            # instead of following its ports' smallest.
            ipr.link("set", index=index, mtu=action.mtu, state="up")
            return
        ipr.link("set", index=index, mtu=action.mtu, master=indexes[action.master], IFLA_AF_SPEC=_NO_ADDR_GEN)
        if isinstance(action, CreateVxlan):
            ipr.brport("set", index=index, learning=0, neigh_suppress=1)
        ipr.link("set", index=index, state="up")
    except NetlinkError:
        with contextlib.suppress(NetlinkError):  # it is marked: the next pass sees to it
            ipr.link("del", index=index)
        indexes.forget(action.name)
        raise


def _add(ipr: IPRoute, indexes: _Indexes, action: CreateBridge | CreateVxlan | CreateVlan) -> None:
    """RTM_NEWLINK with what cannot change later: the kind and the port's identity."""
    if isinstance(action, CreateBridge):
        ipr.link("add", ifname=action.name, kind="bridge")
    elif isinstance(action, CreateVxlan):
        ipr.link(
            "add",
            ifname=action.name,
            kind="vxlan",
            vxlan_id=action.vxlan_id,
            vxlan_local=action.local,
            vxlan_link=indexes[action.device],
            vxlan_port=action.port,
            vxlan_learning=0,
        )
    else:
        ipr.link("add", ifname=action.name, kind="vlan", vlan_id=action.vlan_id, link=indexes[action.device])


def _marked(ipr: IPRoute, name: str) -> bool:
    return any(msg.get("ifalias") == MARKER for msg in ipr.link("get", ifname=name))


def describe(results: Sequence[Applied]) -> Iterator[str]:
    """Log lines for the outcomes of :func:`apply`."""
    return (str(result) for result in results)


# --- Gateway addresses -----------------------------------------------------------


def add_bridge_address(vni: int, address: str, *, netns: str | None = None) -> None:
    """Put ``address`` (CIDR) on network ``vni``'s bridge; already there is fine."""
    addresses.add(address, bridge_name(vni), netns=netns)


def remove_bridge_address(vni: int, address: str, *, netns: str | None = None) -> None:
    """Take ``address`` (CIDR) off network ``vni``'s bridge; already gone is fine."""
    addresses.remove(address, bridge_name(vni), netns=netns)


def addresses_on(ipr: IPRoute, devices: Iterable[str]) -> dict[str, set[str]]:
    """The addresses (``address/prefix``) on each of ``devices`` that exists (one netlink dump)."""
    wanted = set(devices)
    names = {msg["index"]: msg.get("ifname") for msg in ipr.get_links()}
    found: dict[str, set[str]] = {name: set() for name in wanted if name in names.values()}
    for msg in ipr.get_addr():
        name = names.get(msg["index"])
        if name in found:
            found[name].add(f"{msg.get('address')}/{msg['prefixlen']}")
    return found


def bridge_hosts(bridge: str, *, netns: str | None = None) -> set[str]:
    """The unicast MACs the bridge has learned on its ports (local VMs, and remote ones
    from EVPN): the hosts that may hold a stale neighbour entry for a moved address."""
    argv = ["bridge", *(["-n", netns] if netns else []), "-j", "fdb", "show", "br", bridge]
    try:
        out = commands.run(argv, timeout=30.0).stdout
        entries = json.loads(out or "[]")
    except (CommandError, ValueError) as error:
        raise LinkError(f"cannot read the forwarding table of {bridge}: {error}") from None
    hosts = set()
    for entry in entries:
        mac = str(entry.get("mac", "")).lower()
        if entry.get("master") != bridge or entry.get("state") == "permanent" or len(mac) != 17:
            continue
        if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
            continue  # multicast, broadcast or the flood entry
        hosts.add(mac)
    return hosts
