"""VMs with SR-IOV VFs over a real ZooKeeper: which VFs a VM's XML may name, and where a VM
with VFs may go. The nodes' VFs are recorded with record_sriov (no node daemon runs: this
kernel has no SR-IOV device to report).

hv1 and hv2 (tests/sriov_data.py) are ready; here hv2's ens1f0 has three VFs, ens1f0v1 at the
same PCI address as hv1's (identical cards), the others elsewhere; hv2 has no ens1f1.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import uuid4

import pytest

from pvc.domain_xml import build
from pvc.state import nodes, vms
from pvc.state import sriov as records
from pvc.state.states import DaemonState, MigrationMethod, VMState
from pvc.state.store import Transaction
from tests.sriov_data import HV2_PFS, add_vm, hostdev_xml, macvtap_xml, populate, vf

PREFIX = "/api/v1"
HV2_VFS = [
    vf("ens1f0v0", "ens1f0", 0, bus=3),
    vf("ens1f0v1", "ens1f0", 1),
    vf("ens1f0v2", "ens1f0", 2, bus=3),
]


@pytest.fixture
def sriov_vms(api):
    client, context = api
    cluster = context.cluster
    uuids, commit = populate(cluster.store)
    pfs = [replace(HV2_PFS[0], vfs=[item.phy for item in HV2_VFS])]
    commit += records.record_sriov(cluster.store, "hv2", pfs, HV2_VFS)
    txn = Transaction()
    for name in ("hv1", "hv2"):
        nodes.add_daemon_state(txn, name, DaemonState.RUN)
    commit += cluster.store.commit(txn)
    cluster.settle(commit)
    return client, cluster, uuids


def plain(name: str) -> str:
    return build.build(build.DomainSpec(name=name, memory_mib=64))


def define(client, xml: str, **options):
    return client.post(f"{PREFIX}/vm", data={"xml": xml, **options})


def vm_info(client, name: str) -> dict:
    return client.get(f"{PREFIX}/vm/{name}").json[0]


def set_running(cluster, uuid: str, node: str) -> None:
    _, commit = vms.update_placement(
        cluster.store, uuid, lambda p: replace(p, state=VMState.START, running_on=node)
    )
    cluster.settle(commit)


def test_a_vm_may_name_only_its_nodes_free_vfs(sriov_vms) -> None:
    client, _, _ = sriov_vms
    xml = macvtap_xml("web", str(uuid4()), "ens1f0v2")
    response = define(client, macvtap_xml("used", str(uuid4()), "ens1f0v0"), node="hv1")
    assert response.status_code == 409 and "already used by VM 'mac1'" in response.json["message"]
    response = define(client, macvtap_xml("nowhere", str(uuid4()), "eno1"))
    assert (
        response.status_code == 400 and "'eno1' is not an SR-IOV virtual function" in response.json["message"]
    )
    response = define(client, macvtap_xml("other", str(uuid4()), "ens1f1v0"), node="hv2")
    assert response.status_code == 400 and "ens1f1v0" in response.json["message"]
    # a PCI address that is a VF of a node, used by a VM there
    response = define(client, hostdev_xml("pci2", str(uuid4()), "0000:01:10.1"), node="hv1")
    assert response.status_code == 409 and "VM 'pci1'" in response.json["message"]
    assert define(client, xml, node="hv1").status_code == 200
    assert vm_info(client, "web")["node"] == "hv1"
    # without a node: only a node with the VF free (ens1f1v0 is hv1's alone)
    assert define(client, macvtap_xml("auto", str(uuid4()), "ens1f1v0")).status_code == 200
    assert vm_info(client, "auto")["node"] == "hv1"
    response = define(client, macvtap_xml("auto2", str(uuid4()), "ens1f1v0"))
    assert (
        response.status_code == 400
        and "No node with the SR-IOV VFs it names free" in response.json["message"]
    )


def test_a_hostdev_vf_makes_the_migration_method_shutdown(sriov_vms) -> None:
    client, _, _ = sriov_vms
    xml = hostdev_xml("pt", str(uuid4()), "0000:03:10.2")
    assert define(client, xml, node="hv2").status_code == 200
    assert vm_info(client, "pt")["migration_method"] == "shutdown"
    assert define(client, plain("later"), node="hv1", migration_method="none").status_code == 200
    later = hostdev_xml("later", vm_info(client, "later")["uuid"], "0000:01:10.3")
    response = client.put(f"{PREFIX}/vm/later", data={"xml": later})
    assert response.status_code == 200 and "migration method now shutdown" in response.json["message"]
    assert vm_info(client, "later")["migration_method"] == "shutdown"


def test_modify_refuses_a_vf_another_vm_uses(sriov_vms) -> None:
    client, cluster, uuids = sriov_vms
    _, commit = add_vm(cluster.store, "x", "hv1", macvtap_xml, "ens1f0v3")
    cluster.settle(commit)
    url = f"{PREFIX}/vm/mac1"
    response = client.put(url, data={"xml": macvtap_xml("mac1", uuids["mac1"], "ens1f0v3")})
    assert response.status_code == 409 and "already used by VM 'x'" in response.json["message"]
    response = client.put(url, data={"xml": macvtap_xml("mac1", uuids["mac1"], "ens1f1v0")})
    assert response.status_code == 200, response.json  # its own VF swapped for a free one
    # keeping its own VF is no conflict with itself
    assert client.put(url, data={"xml": macvtap_xml("mac1", uuids["mac1"], "ens1f1v0")}).status_code == 200


def test_moves_need_the_same_vf_free_on_the_target(sriov_vms) -> None:
    client, cluster, _ = sriov_vms
    mover = lambda vm, **data: client.post(f"{PREFIX}/vm/{vm}/node", data=data)  # noqa: E731
    # mac1 uses hv1's ens1f0v0; hv2's is mac2's
    response = mover("mac1", action="migrate", node="hv2")
    assert response.status_code == 400
    assert "PF 'ens1f0'" in response.json["message"] and "used by VM 'mac2'" in response.json["message"]
    # a VF whose PF hv2 lacks, and no other node for the automatic choice
    _, commit = add_vm(cluster.store, "mac3", "hv1", macvtap_xml, "ens1f1v0")
    cluster.settle(commit)
    response = mover("mac3", action="move", node="hv2")
    assert response.status_code == 400 and "no VF 'ens1f1v0' of PF 'ens1f1'" in response.json["message"]
    response = mover("mac3", action="migrate")
    assert response.status_code == 400 and "No other node can take" in response.json["message"]
    # a VF hv2 has free: the move goes through
    _, commit = add_vm(cluster.store, "mac4", "hv1", macvtap_xml, "ens1f0v2")
    cluster.settle(commit)
    assert mover("mac4", action="migrate").status_code == 200
    assert vm_info(client, "mac4")["node"] == "hv2"


def test_a_hostdev_vf_never_moves_live(sriov_vms) -> None:
    client, cluster, uuids = sriov_vms
    set_running(cluster, uuids["pci1"], "hv1")
    response = client.post(
        f"{PREFIX}/vm/pci1/node", data={"action": "migrate", "node": "hv2", "force_live": "true"}
    )
    assert response.status_code == 400 and "cannot be migrated live" in response.json["message"]
    _, commit = vms.update_meta(
        cluster.store, uuids["pci1"], lambda m: replace(m, migration_method=MigrationMethod.LIVE)
    )
    cluster.settle(commit)
    response = client.post(f"{PREFIX}/vm/pci1/node", data={"action": "migrate", "node": "hv2"})
    assert response.status_code == 400 and "its migration method is live" in response.json["message"]
    _, commit = vms.update_meta(
        cluster.store, uuids["pci1"], lambda m: replace(m, migration_method=MigrationMethod.NONE)
    )
    cluster.settle(commit)
    # by shutdown: hv2 has a VF at the same PCI address, free
    assert client.post(f"{PREFIX}/vm/pci1/node", data={"action": "migrate", "node": "hv2"}).status_code == 200
    record = cluster.cache.vm(uuids["pci1"])
    assert (record.placement.node, record.placement.state) == ("hv2", VMState.MIGRATE)


def test_hot_plugging_a_vf_checks_it_on_the_vms_node(sriov_vms) -> None:
    client, cluster, uuids = sriov_vms
    set_running(cluster, uuids["mac2"], "hv2")
    nic = "<interface type='direct'><source dev='{}' mode='passthrough'/><model type='virtio'/></interface>"
    url = f"{PREFIX}/vm/mac2/device"
    response = client.post(url, data={"xml": nic.format("ens1f0v3")})  # hv1's only
    assert response.status_code == 400 and "not an SR-IOV virtual function" in response.json["message"]
    _, commit = add_vm(cluster.store, "mac5", "hv2", macvtap_xml, "ens1f0v2")
    cluster.settle(commit)
    response = client.post(url, data={"xml": nic.format("ens1f0v2")})
    assert response.status_code == 409 and "used by VM 'mac5'" in response.json["message"]
    assert client.post(url, data={"xml": nic.format("ens1f0v1")}).status_code == 202
