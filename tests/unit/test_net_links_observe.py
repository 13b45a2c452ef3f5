"""Reading links from netlink messages, for kinds this machine's kernel may lack (802.1Q).

The messages are encoded by pyroute2 itself (``IPBatch`` compiles requests without sending
them) and decoded as a dump would give them.
"""

from __future__ import annotations

from pyroute2 import IPBatch
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from pvc.net import links
from pvc.net.netspec import MARKER, VlanAttrs


def _message(**request) -> ifinfmsg:
    batch = IPBatch()
    batch.link("add", **request)
    message = ifinfmsg(bytes(batch.batch))
    message.decode()
    batch.close()
    return message


class _Dump:
    def __init__(self, *messages: ifinfmsg) -> None:
        self.messages = messages

    def get_links(self):
        return iter(self.messages)


def test_vlan_id_and_lower_device_are_read() -> None:
    trunk = _message(index=2, ifname="eno1", kind="veth", mtu=9000)
    port = _message(
        index=7, ifname="vlan5", kind="vlan", vlan_id=5, link=2, master=8, ifalias=MARKER, mtu=9000
    )
    bridge = _message(index=8, ifname="vmbr5", kind="bridge", mtu=9000, ifalias=MARKER)
    observed = links.observe(_Dump(trunk, port, bridge))
    vlan = observed.get("vlan5")
    assert vlan is not None and vlan.kind == "vlan" and vlan.owned
    assert vlan.vlan == VlanAttrs(vlan_id=5, device="eno1")
    assert vlan.master == "vmbr5" and vlan.mtu == 9000 and vlan.vxlan is None
    assert observed.get("eno1").vlan is None
