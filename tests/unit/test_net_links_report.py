"""What one reconcile pass of client-network links says about itself."""

from __future__ import annotations

from pvc.net.linkactions import CreateBridge, CreateVxlan, DeleteLink, LinkPlan
from pvc.net.links import Applied
from pvc.node.net_links import Reconciled

BRIDGE = CreateBridge("vmbr100", 1450)
PORT = CreateVxlan("vxlan100", 100, "10.0.0.1", "eno2", 4789, 1450, "vmbr100")
OLD = DeleteLink("vxlan7", "no network wants it")


def test_quiet_pass() -> None:
    done = Reconciled(LinkPlan(warnings=("network 5: device eno1 not found: not set up",)), ())
    assert done.ok and done.changed == []
    assert done.summary() == "client network links: no changes (1 warnings)"
    assert done.lines() == ["warning: network 5: device eno1 not found: not set up"]


def test_pass_with_a_failure() -> None:
    applied = (
        Applied(OLD),
        Applied(BRIDGE, "Invalid argument (errno 22)"),
        Applied(PORT, "an earlier step of this network failed", skipped=True),
    )
    done = Reconciled(LinkPlan((OLD, BRIDGE, PORT)), applied)
    assert not done.ok
    assert [result.action for result in done.changed] == [OLD]
    assert [result.action for result in done.failed] == [BRIDGE, PORT]
    assert done.summary() == "client network links: 1 changes, 2 failed or skipped, 0 warnings"
    assert done.lines() == [
        "remove vxlan7 (no network wants it)",
        "create bridge vmbr100 (mtu 1450): failed: Invalid argument (errno 22)",
        "create vxlan vxlan100 (id 100, local 10.0.0.1 dev eno2, dstport 4789, mtu 1450) in vmbr100: "
        "skipped (an earlier step of this network failed)",
    ]
