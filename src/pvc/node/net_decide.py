"""What a node does about its client-network links: a pure plan from wanted and observed links.

:func:`plan` takes the networks this node should carry, the links it has and its network
configuration, and returns the changes that make the links right: create what is missing,
fix what can be fixed in place (MTU, master, up, bridge port flags), recreate what cannot
(a VXLAN's id, source, port or underlay; a VLAN's id or device; the wrong kind of link),
and remove PVC's links that no network wants. Links that are already right give no
action, so a restarted daemon adopts what its predecessor made.

Only PVC's links are ever changed or removed (:attr:`ObservedLink.owned`: the marker alias
and a PVC name). A link of a wanted name that is not PVC's blocks its network with a
warning; a bridge no network wants that still carries other ports (VMs' taps) is kept,
with a warning, until they are gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

from pvc.net.linkactions import (
    Action,
    CreateBridge,
    CreateVlan,
    CreateVxlan,
    DeleteLink,
    LinkPlan,
    SetLink,
    SetPortFlags,
)
from pvc.net.netspec import (
    MARKER,
    MTU_MAX,
    MTU_MIN,
    VXLAN_PORT,
    NetKind,
    NetworkSpec,
    NodeNetParams,
    ObservedLink,
    ObservedLinks,
    PortAttrs,
    VlanAttrs,
    VxlanAttrs,
    vni_of_link,
)

#: Bridge port flags of each kind's port: EVPN fills a VXLAN's forwarding table and answers
#: ARP/ND for it, so the bridge must neither learn nor flood neighbour requests over it; a
#: VLAN faces a real segment and keeps the bridge's defaults.
PORT_FLAGS = {
    NetKind.MANAGED: PortAttrs(learning=False, neigh_suppress=True),
    NetKind.BRIDGED: PortAttrs(learning=True, neigh_suppress=False),
}
#: The flags a link gets when it joins a bridge.
NEW_PORT_FLAGS = PortAttrs(learning=True, neigh_suppress=False)


def plan(desired: Iterable[NetworkSpec], observed: ObservedLinks, params: NodeNetParams) -> LinkPlan:
    """The changes that make ``observed`` carry exactly the ``desired`` networks.

    Removals come first (ports before bridges), then each wanted network in VNI order
    (bridge before port). Warnings name every network left out and every MTU clamped.
    """
    warnings: list[str] = []
    steps: list[Action] = []
    mtus: dict[int, int] = {}
    kept: set[str] = set()  # names no removal may touch
    for spec in _unique(desired, warnings, kept):
        kept.update((spec.bridge, spec.port))
        mtu = _mtu(spec, observed, params, warnings)
        if mtu is None:
            continue
        network = _network(spec, mtu, observed, params, warnings)
        if network is not None:
            steps.extend(network)
            mtus[spec.vni] = mtu
    removals = _removals(observed, kept, warnings)
    return LinkPlan(tuple(removals + steps), tuple(warnings), mtus)


def _unique(desired: Iterable[NetworkSpec], warnings: list[str], kept: set[str]) -> list[NetworkSpec]:
    """The specs in VNI order; a VNI asked for twice in different ways is left out (and kept)."""
    by_vni: dict[int, list[NetworkSpec]] = {}
    for spec in desired:
        if spec not in by_vni.setdefault(spec.vni, []):
            by_vni[spec.vni].append(spec)
    unique = []
    for vni in sorted(by_vni):
        specs = by_vni[vni]
        if len(specs) == 1:
            unique.append(specs[0])
            continue
        described = "; ".join(f"{spec.kind} mtu {spec.mtu or 'default'}" for spec in specs)
        warnings.append(f"network {vni} is asked for more than once ({described}): left as it is")
        kept.update(name for spec in specs for name in (spec.bridge, spec.port))
    return unique


def _mtu(
    spec: NetworkSpec, observed: ObservedLinks, params: NodeNetParams, warnings: list[str]
) -> int | None:
    """The network's MTU: its own, or the default, never more than its lower device allows."""
    if spec.kind is NetKind.MANAGED:
        device, overhead, default = params.vxlan_device, params.vxlan_overhead, None
        what = f"{device} allows with VXLAN"
    else:
        device, overhead, default = params.bridge_device, 0, params.bridge_mtu
        what = f"{device} allows"
    lower = observed.get(device)
    if lower is None:
        warnings.append(f"network {spec.vni}: device {device} not found: not set up")
        return None
    limit = min(lower.mtu - overhead, MTU_MAX)
    if limit < MTU_MIN:
        warnings.append(
            f"network {spec.vni}: {device} (mtu {lower.mtu}) is too small to carry it: not set up"
        )
        return None
    wanted = spec.mtu or default or limit
    if wanted > limit:
        warnings.append(
            f"network {spec.vni}: MTU {wanted} is more than {what} "
            f"(mtu {lower.mtu} leaves {limit}): using {limit}"
        )
        return limit
    return wanted


def _network(
    spec: NetworkSpec, mtu: int, observed: ObservedLinks, params: NodeNetParams, warnings: list[str]
) -> list[Action] | None:
    """The steps that make one network's bridge and port right; None if it is blocked."""
    bridge, port = observed.get(spec.bridge), observed.get(spec.port)
    for link in (bridge, port):
        if link is not None and not link.owned:
            warnings.append(
                f"network {spec.vni}: {link.name} exists but is not PVC's (no alias {MARKER!r}): not set up"
            )
            return None
    steps: list[Action] = []
    if port is not None:
        mismatch = _port_mismatch(spec, port, params)
        if mismatch:
            steps.append(DeleteLink(port.name, mismatch))
            port = None
    fresh_bridge = bridge is None or bridge.kind != "bridge"
    if bridge is not None and fresh_bridge:
        steps.append(DeleteLink(bridge.name, f"it is {_kind(bridge)}, not a bridge"))
    if fresh_bridge:
        steps.append(CreateBridge(spec.bridge, mtu))
    else:
        assert bridge is not None
        change = _set_link(bridge, mtu=mtu, master=None)
        if change:
            steps.append(change)
    if port is None:
        steps.append(_create_port(spec, mtu, params))
        return steps
    master = None if fresh_bridge else port.master
    change = _set_link(port, mtu=mtu, master=spec.bridge, current_master=master)
    if change:
        steps.append(change)
    flags = port.port if master == spec.bridge and port.port is not None else NEW_PORT_FLAGS
    wanted_flags = PORT_FLAGS[spec.kind]
    if flags != wanted_flags:
        steps.append(
            SetPortFlags(
                port.name,
                learning=wanted_flags.learning,
                neigh_suppress=wanted_flags.neigh_suppress,
                reason=_flags_reason(flags, wanted_flags),
            )
        )
    return steps


def _create_port(spec: NetworkSpec, mtu: int, params: NodeNetParams) -> Action:
    if spec.kind is NetKind.MANAGED:
        return CreateVxlan(
            spec.port,
            vxlan_id=spec.vni,
            local=params.vxlan_local,
            device=params.vxlan_device,
            port=VXLAN_PORT,
            mtu=mtu,
            master=spec.bridge,
        )
    return CreateVlan(spec.port, vlan_id=spec.vni, device=params.bridge_device, mtu=mtu, master=spec.bridge)


def _port_mismatch(spec: NetworkSpec, port: ObservedLink, params: NodeNetParams) -> str:
    """Why the existing port must be made again (empty: it can stay)."""
    if spec.kind is NetKind.MANAGED:
        if port.kind != "vxlan" or port.vxlan is None:
            return f"it is {_kind(port)}, not a vxlan"
        wanted = VxlanAttrs(
            vni=spec.vni,
            local=params.vxlan_local,
            device=params.vxlan_device,
            port=VXLAN_PORT,
            learning=False,
        )
        return _differences(port.vxlan, wanted)
    if port.kind != "vlan" or port.vlan is None:
        return f"it is {_kind(port)}, not a vlan"
    return _differences(port.vlan, VlanAttrs(vlan_id=spec.vni, device=params.bridge_device))


def _differences(have: VxlanAttrs | VlanAttrs, want: VxlanAttrs | VlanAttrs) -> str:
    diffs = [
        f"{f.name} {getattr(have, f.name)} should be {getattr(want, f.name)}"
        for f in fields(want)
        if getattr(have, f.name) != getattr(want, f.name)
    ]
    return ", ".join(diffs)


def _set_link(
    link: ObservedLink, *, mtu: int, master: str | None, current_master: str | None = None
) -> SetLink | None:
    """What to change in place on ``link`` (None: nothing). ``master`` None: do not manage it."""
    reasons = []
    new_mtu = mtu if link.mtu != mtu else None
    if new_mtu is not None:
        reasons.append(f"mtu {link.mtu} -> {mtu}")
    new_master = master if master is not None and current_master != master else None
    if new_master is not None:
        reasons.append(f"master {current_master or 'none'} -> {master}")
    if not link.up:
        reasons.append("down -> up")
    if not reasons:
        return None
    return SetLink(link.name, mtu=new_mtu, master=new_master, up=not link.up, reason=", ".join(reasons))


def _flags_reason(have: PortAttrs, want: PortAttrs) -> str:
    def on(value: bool) -> str:
        return "on" if value else "off"

    return ", ".join(
        f"{f.name} {on(getattr(have, f.name))} -> {on(getattr(want, f.name))}"
        for f in fields(want)
        if getattr(have, f.name) != getattr(want, f.name)
    )


def _kind(link: ObservedLink) -> str:
    return f"a {link.kind}" if link.kind else "a plain link"


def _removals(observed: ObservedLinks, kept: set[str], warnings: list[str]) -> list[Action]:
    """Remove PVC's links that no network wants: ports first, then bridges."""
    unwanted = sorted(
        (link for link in observed if link.owned and link.name not in kept),
        key=lambda link: (vni_of_link(link.name) or 0, link.name),
    )
    held: set[str] = set()
    for bridge in (link for link in unwanted if link.kind == "bridge"):
        ports = observed.ports_of(bridge.name)
        others = [name for name in ports if not _owned(observed, name)]
        if others:
            warnings.append(
                f"{bridge.name} is no longer wanted but still carries {', '.join(others)}: left in place"
            )
            held.add(bridge.name)
            held.update(name for name in ports if _owned(observed, name))
    removals: list[Action] = [
        DeleteLink(link.name, "no network wants it")
        for link in unwanted
        if link.kind != "bridge" and link.name not in held
    ]
    removals.extend(
        DeleteLink(link.name, "no network wants it")
        for link in unwanted
        if link.kind == "bridge" and link.name not in held
    )
    return removals


def _owned(observed: ObservedLinks, name: str) -> bool:
    link = observed.get(name)
    return link is not None and link.owned
