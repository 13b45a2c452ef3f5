"""Link actions: each names the network it serves by its link's name."""

from __future__ import annotations

from pvc.net.linkactions import CreateBridge, CreateVlan, CreateVxlan, DeleteLink, SetLink, SetPortFlags


def test_every_action_serves_the_network_its_link_is_named_for():
    actions = [
        CreateBridge("vmbr7", 1500),
        CreateVxlan("vxlan7", 7, "10.0.0.1", "eth0", 4789, 1450, "vmbr7"),
        CreateVlan("vlan7", 7, "eth1", 1500, "vmbr7"),
        SetLink("vmbr7", mtu=1400, reason="mtu"),
        SetPortFlags("vxlan7", learning=False, neigh_suppress=True),
        DeleteLink("vlan7"),
    ]
    assert [action.vni for action in actions] == [7] * len(actions)
    assert DeleteLink("eth0").vni is None
    assert str(DeleteLink("vmbr7", "gone")) == "remove vmbr7 (gone)"
