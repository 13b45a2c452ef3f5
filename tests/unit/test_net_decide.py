"""The client-network link planner over observed links built by hand."""

from __future__ import annotations

import dataclasses
import random

import pytest

from pvc.net.linkactions import (
    CreateBridge,
    CreateVlan,
    CreateVxlan,
    DeleteLink,
    SetLink,
    SetPortFlags,
)
from pvc.net.netspec import (
    MARKER,
    NetKind,
    NetworkSpec,
    NodeNetParams,
    ObservedLink,
    ObservedLinks,
    PortAttrs,
    VlanAttrs,
    VxlanAttrs,
    port_name,
    vni_of_link,
)
from pvc.node.net_decide import plan

PARAMS = NodeNetParams(bridge_device="eno1", bridge_mtu=None, vxlan_local="10.0.0.1", vxlan_device="eno2")
ENO1 = ObservedLink("eno1", kind=None, mtu=9000, up=True, index=2)
ENO2 = ObservedLink("eno2", kind=None, mtu=1500, up=True, index=3)
MANAGED, BRIDGED = NetKind.MANAGED, NetKind.BRIDGED
EVPN_PORT = PortAttrs(learning=False, neigh_suppress=True)
PLAIN_PORT = PortAttrs(learning=True, neigh_suppress=False)


def bridge(vni: int, mtu: int = 1450, **changes) -> ObservedLink:
    return dataclasses.replace(
        ObservedLink(f"vmbr{vni}", kind="bridge", mtu=mtu, up=True, alias=MARKER), **changes
    )


def vxlan(vni: int, mtu: int = 1450, **changes) -> ObservedLink:
    attrs = VxlanAttrs(vni=vni, local="10.0.0.1", device="eno2", port=4789, learning=False)
    link = ObservedLink(
        f"vxlan{vni}",
        kind="vxlan",
        mtu=mtu,
        up=True,
        master=f"vmbr{vni}",
        alias=MARKER,
        vxlan=attrs,
        port=EVPN_PORT,
    )
    return dataclasses.replace(link, **changes)


def vlan(vni: int, mtu: int = 9000, **changes) -> ObservedLink:
    link = ObservedLink(
        f"vlan{vni}",
        kind="vlan",
        mtu=mtu,
        up=True,
        master=f"vmbr{vni}",
        alias=MARKER,
        vlan=VlanAttrs(vlan_id=vni, device="eno1"),
        port=PLAIN_PORT,
    )
    return dataclasses.replace(link, **changes)


def world(*links: ObservedLink) -> ObservedLinks:
    return ObservedLinks.of(ENO1, ENO2, *links)


# --- Specs and names -------------------------------------------------------------


def test_spec_checks_vni_per_kind_and_mtu() -> None:
    assert NetworkSpec(16777215, "managed").kind is MANAGED  # the kind may come as text
    assert NetworkSpec(4094, BRIDGED).port == "vlan4094"
    assert NetworkSpec(16777215, MANAGED).port == "vxlan16777215"
    assert len("vxlan16777215") <= 15
    for vni, kind in [(0, MANAGED), (16777216, MANAGED), (4095, BRIDGED), (0, BRIDGED), (True, MANAGED)]:
        with pytest.raises(ValueError, match="VNI"):
            NetworkSpec(vni, kind)
    for mtu in (67, 65536, True, 1500.0):
        with pytest.raises(ValueError, match="MTU"):
            NetworkSpec(100, MANAGED, mtu)
    with pytest.raises(ValueError):
        NetworkSpec(100, "routed")


def test_names_and_ownership() -> None:
    assert NetworkSpec(7, MANAGED).bridge == "vmbr7"
    assert port_name(BRIDGED, 7) == "vlan7"
    assert [vni_of_link(n) for n in ("vmbr7", "vxlan7", "vlan7")] == [7, 7, 7]
    assert [vni_of_link(n) for n in ("vmbr", "vmbr07", "br7", "eno1", "vxlan7a", "vlan0")] == [None] * 6
    assert bridge(7).owned
    assert not bridge(7, alias=None).owned
    assert not bridge(7, alias="operator").owned
    assert not dataclasses.replace(ENO1, alias=MARKER).owned  # the marker alone is not enough


def test_ipv6_underlay_costs_seventy_bytes() -> None:
    params = dataclasses.replace(PARAMS, vxlan_local="fd00::1")
    decided = plan([NetworkSpec(100, MANAGED)], world(), params)
    assert decided.mtus == {100: 1430}


# --- Creating --------------------------------------------------------------------


def test_nothing_wanted_nothing_there() -> None:
    decided = plan([], world(), PARAMS)
    assert decided.actions == () and decided.warnings == () and not decided


def test_managed_network_from_nothing() -> None:
    decided = plan([NetworkSpec(100, MANAGED)], world(), PARAMS)
    assert decided.actions == (
        CreateBridge("vmbr100", mtu=1450),
        CreateVxlan(
            "vxlan100", vxlan_id=100, local="10.0.0.1", device="eno2", port=4789, mtu=1450, master="vmbr100"
        ),
    )
    assert decided.mtus == {100: 1450}
    assert decided.warnings == ()


def test_bridged_network_from_nothing_takes_the_device_mtu() -> None:
    decided = plan([NetworkSpec(5, BRIDGED)], world(), PARAMS)
    assert decided.actions == (
        CreateBridge("vmbr5", mtu=9000),
        CreateVlan("vlan5", vlan_id=5, device="eno1", mtu=9000, master="vmbr5"),
    )


def test_bridged_network_takes_the_configured_bridge_mtu() -> None:
    params = dataclasses.replace(PARAMS, bridge_mtu=1500)
    decided = plan([NetworkSpec(5, BRIDGED)], world(), params)
    assert decided.mtus == {5: 1500}
    assert decided.actions[1] == CreateVlan("vlan5", vlan_id=5, device="eno1", mtu=1500, master="vmbr5")


def test_asked_mtu_within_the_limit_is_used() -> None:
    decided = plan([NetworkSpec(100, MANAGED, 1400), NetworkSpec(5, BRIDGED, 1500)], world(), PARAMS)
    assert decided.mtus == {5: 1500, 100: 1400}
    assert CreateBridge("vmbr100", 1400) in decided.actions
    assert CreateBridge("vmbr5", 1500) in decided.actions
    assert decided.warnings == ()


def test_managed_mtu_over_the_underlay_is_clamped_with_a_warning() -> None:
    decided = plan([NetworkSpec(100, MANAGED, 9000)], world(), PARAMS)
    assert decided.mtus == {100: 1450}
    assert decided.actions[0] == CreateBridge("vmbr100", 1450)
    assert decided.actions[1].mtu == 1450
    (warning,) = decided.warnings
    assert "network 100" in warning and "9000" in warning and "eno2" in warning and "1450" in warning


def test_bridged_mtu_over_the_device_is_clamped_with_a_warning() -> None:
    params = dataclasses.replace(PARAMS, bridge_mtu=9216)  # configured more than eno1 has
    decided = plan([NetworkSpec(5, BRIDGED)], world(), params)
    assert decided.mtus == {5: 9000}
    (warning,) = decided.warnings
    assert "network 5" in warning and "9216" in warning and "eno1" in warning


@pytest.mark.parametrize("kind, device", [(MANAGED, "eno2"), (BRIDGED, "eno1")])
def test_missing_lower_device_leaves_the_network_alone(kind, device) -> None:
    observed = ObservedLinks.of(*(link for link in (ENO1, ENO2) if link.name != device))
    port = vxlan(7) if kind is MANAGED else vlan(7)
    observed = ObservedLinks({**observed.links, "vmbr7": bridge(7), port.name: port})
    decided = plan([NetworkSpec(7, kind)], observed, PARAMS)
    assert decided.actions == ()  # nothing made, and what is there is not removed
    assert decided.mtus == {}
    (warning,) = decided.warnings
    assert device in warning and "network 7" in warning


def test_mtu_never_exceeds_what_linux_allows_a_bridge() -> None:
    loopback = ObservedLink("lo", kind=None, mtu=65536, up=True)
    params = dataclasses.replace(PARAMS, bridge_device="lo")
    decided = plan([NetworkSpec(5, BRIDGED)], ObservedLinks.of(loopback), params)
    assert decided.mtus == {5: 65535}
    assert decided.actions[0] == CreateBridge("vmbr5", 65535)


def test_underlay_too_small_for_vxlan() -> None:
    observed = ObservedLinks.of(ENO1, dataclasses.replace(ENO2, mtu=100))
    decided = plan([NetworkSpec(100, MANAGED)], observed, PARAMS)
    assert decided.actions == ()
    assert "too small" in decided.warnings[0]


# --- Adopting and fixing ---------------------------------------------------------


def test_correct_links_are_adopted_without_changes() -> None:
    observed = world(bridge(100), vxlan(100), bridge(5, mtu=9000), vlan(5))
    decided = plan([NetworkSpec(100, MANAGED), NetworkSpec(5, BRIDGED)], observed, PARAMS)
    assert decided.actions == ()
    assert decided.mtus == {5: 9000, 100: 1450}


def test_mtu_change_is_made_in_place() -> None:
    observed = world(bridge(100), vxlan(100))
    decided = plan([NetworkSpec(100, MANAGED, 1400)], observed, PARAMS)
    assert decided.actions == (
        SetLink("vmbr100", mtu=1400, reason="mtu 1450 -> 1400"),
        SetLink("vxlan100", mtu=1400, reason="mtu 1450 -> 1400"),
    )


def test_down_links_are_brought_up() -> None:
    observed = world(bridge(100, up=False), vxlan(100, up=False))
    decided = plan([NetworkSpec(100, MANAGED)], observed, PARAMS)
    assert decided.actions == (
        SetLink("vmbr100", up=True, reason="down -> up"),
        SetLink("vxlan100", up=True, reason="down -> up"),
    )


def test_port_outside_its_bridge_is_put_back_with_its_flags() -> None:
    observed = world(bridge(100), vxlan(100, master=None, port=None))
    decided = plan([NetworkSpec(100, MANAGED)], observed, PARAMS)
    assert decided.actions == (
        SetLink("vxlan100", master="vmbr100", reason="master none -> vmbr100"),
        SetPortFlags(
            "vxlan100",
            learning=False,
            neigh_suppress=True,
            reason="learning on -> off, neigh_suppress off -> on",
        ),
    )


def test_vlan_port_put_back_needs_no_flags() -> None:
    observed = world(bridge(5, mtu=9000), vlan(5, master="vmbr6", port=PLAIN_PORT))
    decided = plan([NetworkSpec(5, BRIDGED)], observed, PARAMS)
    assert decided.actions == (SetLink("vlan5", master="vmbr5", reason="master vmbr6 -> vmbr5"),)


def test_wrong_port_flags_are_set() -> None:
    observed = world(bridge(100), vxlan(100, port=PortAttrs(learning=True, neigh_suppress=True)))
    decided = plan([NetworkSpec(100, MANAGED)], observed, PARAMS)
    assert decided.actions == (
        SetPortFlags("vxlan100", learning=False, neigh_suppress=True, reason="learning on -> off"),
    )


@pytest.mark.parametrize(
    "attrs, words",
    [
        ({"vni": 7}, "vni 7 should be 100"),
        ({"local": "10.0.0.9"}, "local 10.0.0.9 should be 10.0.0.1"),
        ({"device": "eno1"}, "device eno1 should be eno2"),
        ({"port": 8472}, "port 8472 should be 4789"),
        ({"learning": True}, "learning True should be False"),
        ({"group": "239.1.1.1"}, "group 239.1.1.1 should be None"),
    ],
)
def test_vxlan_identity_change_recreates_it(attrs, words) -> None:
    wrong = dataclasses.replace(vxlan(100).vxlan, **attrs)
    observed = world(bridge(100), vxlan(100, vxlan=wrong))
    decided = plan([NetworkSpec(100, MANAGED)], observed, PARAMS)
    assert decided.actions == (
        DeleteLink("vxlan100", words),
        CreateVxlan(
            "vxlan100", vxlan_id=100, local="10.0.0.1", device="eno2", port=4789, mtu=1450, master="vmbr100"
        ),
    )


@pytest.mark.parametrize("attrs", [{"vlan_id": 6}, {"device": "eno2"}])
def test_vlan_identity_change_recreates_it(attrs) -> None:
    wrong = dataclasses.replace(vlan(5).vlan, **attrs)
    observed = world(bridge(5, mtu=9000), vlan(5, vlan=wrong))
    decided = plan([NetworkSpec(5, BRIDGED)], observed, PARAMS)
    assert [type(a) for a in decided.actions] == [DeleteLink, CreateVlan]
    assert decided.actions[0].name == "vlan5"


def test_port_of_the_wrong_kind_is_recreated() -> None:
    observed = world(bridge(100), ObservedLink("vxlan100", kind="veth", mtu=1450, up=True, alias=MARKER))
    decided = plan([NetworkSpec(100, MANAGED)], observed, PARAMS)
    assert decided.actions[0] == DeleteLink("vxlan100", "it is a veth, not a vxlan")
    assert isinstance(decided.actions[1], CreateVxlan)


def test_bridge_of_the_wrong_kind_is_recreated_and_the_port_rejoins() -> None:
    wrong = ObservedLink("vmbr100", kind=None, mtu=1450, up=True, alias=MARKER)
    decided = plan([NetworkSpec(100, MANAGED)], world(wrong, vxlan(100)), PARAMS)
    assert decided.actions == (
        DeleteLink("vmbr100", "it is a plain link, not a bridge"),
        CreateBridge("vmbr100", 1450),
        SetLink("vxlan100", master="vmbr100", reason="master none -> vmbr100"),
        SetPortFlags(
            "vxlan100",
            learning=False,
            neigh_suppress=True,
            reason="learning on -> off, neigh_suppress off -> on",
        ),
    )


def test_kind_change_swaps_the_port_and_keeps_the_bridge() -> None:
    observed = world(bridge(100, mtu=9000), vlan(100))
    decided = plan([NetworkSpec(100, MANAGED)], observed, PARAMS)
    assert decided.actions == (
        DeleteLink("vlan100", "no network wants it"),
        SetLink("vmbr100", mtu=1450, reason="mtu 9000 -> 1450"),
        CreateVxlan(
            "vxlan100", vxlan_id=100, local="10.0.0.1", device="eno2", port=4789, mtu=1450, master="vmbr100"
        ),
    )


# --- Removing --------------------------------------------------------------------


def test_unwanted_links_of_pvc_are_removed_ports_first() -> None:
    observed = world(bridge(100), vxlan(100), bridge(5), vlan(5), bridge(200), vxlan(200))
    decided = plan([NetworkSpec(200, MANAGED)], observed, PARAMS)
    assert decided.actions == (
        DeleteLink("vlan5", "no network wants it"),
        DeleteLink("vxlan100", "no network wants it"),
        DeleteLink("vmbr5", "no network wants it"),
        DeleteLink("vmbr100", "no network wants it"),
    )


def test_links_not_made_by_pvc_are_never_removed() -> None:
    observed = world(
        bridge(999, alias=None),  # the operator's vmbr999
        vxlan(998, alias="lab"),  # someone else's alias
        ObservedLink("vmbr0100", kind="bridge", mtu=1500, up=True, alias=MARKER),  # not PVC's name
        ObservedLink("br100", kind="bridge", mtu=1500, up=True, alias=MARKER),
    )
    decided = plan([], observed, PARAMS)
    assert decided.actions == ()


def test_removals_come_before_creations() -> None:
    decided = plan([NetworkSpec(300, MANAGED)], world(bridge(100), vxlan(100)), PARAMS)
    kinds = [type(action) for action in decided.actions]
    assert kinds == [DeleteLink, DeleteLink, CreateBridge, CreateVxlan]


def test_unwanted_bridge_with_vm_ports_is_kept_with_a_warning() -> None:
    tap = ObservedLink("vnet3", kind="tun", mtu=1450, up=True, master="vmbr100")
    decided = plan([], world(bridge(100), vxlan(100), tap), PARAMS)
    assert decided.actions == ()
    (warning,) = decided.warnings
    assert "vmbr100" in warning and "vnet3" in warning


def test_foreign_link_with_a_wanted_name_blocks_its_network() -> None:
    observed = world(bridge(100, alias=None), bridge(7), vxlan(7))
    decided = plan([NetworkSpec(100, MANAGED), NetworkSpec(7, MANAGED)], observed, PARAMS)
    assert decided.actions == ()
    assert decided.mtus == {7: 1450}
    (warning,) = decided.warnings
    assert "vmbr100" in warning and "not PVC's" in warning


def test_foreign_port_with_a_wanted_name_blocks_its_network() -> None:
    observed = world(bridge(100), vxlan(100, alias=None))
    decided = plan([NetworkSpec(100, MANAGED)], observed, PARAMS)
    assert decided.actions == ()
    assert "vxlan100" in decided.warnings[0]


def test_conflicting_specs_of_one_vni_touch_nothing() -> None:
    observed = world(bridge(100), vxlan(100))
    specs = [NetworkSpec(100, MANAGED), NetworkSpec(100, MANAGED, 1400), NetworkSpec(100, MANAGED)]
    decided = plan(specs, observed, PARAMS)
    assert decided.actions == ()  # neither changed nor removed
    assert "more than once" in decided.warnings[0]
    assert plan([NetworkSpec(100, MANAGED)] * 2, observed, PARAMS).warnings == ()  # same twice is one


def test_actions_read_as_log_lines() -> None:
    decided = plan([NetworkSpec(100, MANAGED)], world(bridge(5), vlan(5)), PARAMS)
    lines = [str(action) for action in decided.actions]
    assert lines == [
        "remove vlan5 (no network wants it)",
        "remove vmbr5 (no network wants it)",
        "create bridge vmbr100 (mtu 1450)",
        "create vxlan vxlan100 (id 100, local 10.0.0.1 dev eno2, dstport 4789, mtu 1450) in vmbr100",
    ]


# --- Convergence -----------------------------------------------------------------


def simulate(observed: ObservedLinks, actions) -> ObservedLinks:
    """What the links would be after ``actions``, as the kernel would do them."""
    links = dict(observed.links)
    for action in actions:
        if isinstance(action, DeleteLink):
            links.pop(action.name)
            for name, link in list(links.items()):
                if link.master == action.name:
                    links[name] = dataclasses.replace(link, master=None, port=None)
        elif isinstance(action, CreateBridge):
            links[action.name] = ObservedLink(action.name, "bridge", action.mtu, True, alias=MARKER)
        elif isinstance(action, CreateVxlan):
            attrs = VxlanAttrs(action.vxlan_id, action.local, action.device, action.port, learning=False)
            links[action.name] = ObservedLink(
                action.name, "vxlan", action.mtu, True, action.master, MARKER, vxlan=attrs, port=EVPN_PORT
            )
        elif isinstance(action, CreateVlan):
            attrs = VlanAttrs(action.vlan_id, action.device)
            links[action.name] = ObservedLink(
                action.name, "vlan", action.mtu, True, action.master, MARKER, vlan=attrs, port=PLAIN_PORT
            )
        elif isinstance(action, SetLink):
            link = links[action.name]
            if action.mtu is not None:
                link = dataclasses.replace(link, mtu=action.mtu)
            if action.master is not None:
                link = dataclasses.replace(link, master=action.master, port=PLAIN_PORT)
            if action.up:
                link = dataclasses.replace(link, up=True)
            links[action.name] = link
        elif isinstance(action, SetPortFlags):
            flags = PortAttrs(action.learning, action.neigh_suppress)
            links[action.name] = dataclasses.replace(links[action.name], port=flags)
    return ObservedLinks(links)


def _random_link(rng: random.Random, vni: int) -> list[ObservedLink]:
    made = []
    if rng.random() < 0.7:
        made.append(
            bridge(
                vni,
                mtu=rng.choice([1400, 1450, 1500, 9000]),
                up=rng.random() < 0.8,
                kind=rng.choice(["bridge"] * 5 + [None]),
            )
        )
    port = rng.choice([vxlan, vlan, None])
    if port is not None:
        link = port(vni, mtu=rng.choice([1400, 1450, 1500]), up=rng.random() < 0.8)
        if rng.random() < 0.3:
            link = dataclasses.replace(link, master=rng.choice([None, "vmbr1"]), port=None)
        if rng.random() < 0.2 and link.vxlan is not None:
            link = dataclasses.replace(link, vxlan=dataclasses.replace(link.vxlan, vni=vni + 1))
        if rng.random() < 0.2:
            link = dataclasses.replace(link, port=PortAttrs(rng.random() < 0.5, rng.random() < 0.5))
        made.append(link)
    return made


@pytest.mark.parametrize("seed", range(40))
def test_one_plan_reaches_the_wanted_state(seed) -> None:
    """From any mix of PVC's links, carrying out one plan leaves nothing to do."""
    rng = random.Random(seed)
    vnis = rng.sample(range(1, 40), 12)
    observed = world(*(link for vni in vnis for link in _random_link(rng, vni)))
    desired = [
        NetworkSpec(vni, rng.choice([MANAGED, BRIDGED]), rng.choice([None, 1400, 1500, 9000]))
        for vni in rng.sample([*vnis, 50, 51], 8)
    ]
    first = plan(desired, observed, PARAMS)
    after = simulate(observed, first.actions)
    second = plan(desired, after, PARAMS)
    assert second.actions == ()
    assert second.mtus == first.mtus
    wanted = {name for spec in desired for name in (spec.bridge, spec.port)}
    assert {link.name for link in after if link.owned} == wanted
