"""How a VM is held still for its snapshot (libvirt's test driver: its fsFreeze answers as a
guest agent would; the lab proves pausing a real QEMU guest)."""

from __future__ import annotations

import uuid

import pytest

from pvc.cluster.vm.snapshot_tasks import consistency_point
from pvc.domain_xml.build import DomainSpec, build
from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.errors import HypervisorError
from pvc.state.vm_snapshots import Consistency
from pvc.state.vms import VmMeta, VmPlacement, VmRecord

AGENT = '<channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel>'


@pytest.fixture
def hv():
    hypervisor = Hypervisor("test:///default").connect()
    yield hypervisor
    hypervisor.close()


def running_vm(hv: Hypervisor, *, agent: bool) -> VmRecord:
    name = f"snap-{uuid.uuid4().hex[:8]}"
    xml = build(DomainSpec(name=name, memory_mib=64))
    if agent:
        xml = xml.replace("</devices>", f"{AGENT}</devices>")
    # the test driver only runs domains of type 'test'; the record keeps the cluster's XML
    domain_uuid = hv.define(xml.replace('<domain type="qemu">', '<domain type="test">'))
    hv.start(domain_uuid)
    return VmRecord(domain_uuid, VmMeta(name=name, uuid=domain_uuid), VmPlacement(state="start"), xml)


def test_a_vm_with_the_guest_agent_is_frozen_and_thawed(hv, monkeypatch):
    record = running_vm(hv, agent=True)
    calls = []
    for method in ("freeze_filesystems", "thaw_filesystems", "pause"):
        original = getattr(hv, method)
        monkeypatch.setattr(hv, method, lambda name, o=original, m=method: calls.append(m) or o(name))
    with consistency_point(hv, record) as point:
        assert calls == ["freeze_filesystems"]
        assert hv.state(record.uuid) == "running"  # frozen filesystems, running vCPUs
    assert calls == ["freeze_filesystems", "thaw_filesystems"]
    assert point.consistency == Consistency.QUIESCED and not point.notes and not point.stuck


def test_a_vm_without_the_agent_is_paused_for_the_snapshot_and_resumed(hv):
    record = running_vm(hv, agent=False)
    with consistency_point(hv, record) as point:
        assert hv.state(record.uuid) == "paused"
    assert hv.state(record.uuid) == "running"
    assert point.consistency == Consistency.CRASH


def test_an_agent_that_does_not_answer_falls_back_to_a_pause_with_a_note(hv, monkeypatch):
    record = running_vm(hv, agent=True)

    def silent(name):
        raise HypervisorError("Guest agent is not responding")

    monkeypatch.setattr(hv, "freeze_filesystems", silent)
    with consistency_point(hv, record) as point:
        assert hv.state(record.uuid) == "paused"
    assert point.consistency == Consistency.CRASH
    assert point.notes == [
        "the guest agent did not freeze the filesystems (Guest agent is not responding), so the VM was paused"
    ]


def test_the_guest_is_resumed_when_the_snapshot_fails_and_a_failed_resume_is_reported(hv, monkeypatch):
    record = running_vm(hv, agent=False)
    with pytest.raises(RuntimeError, match="ceph broke"), consistency_point(hv, record):
        raise RuntimeError("ceph broke")
    assert hv.state(record.uuid) == "running"

    def broken(name):
        raise HypervisorError("resume failed")

    monkeypatch.setattr(hv, "resume", broken)
    with consistency_point(hv, record) as point:
        pass
    assert point.stuck == f"could not resume VM {record.meta.name} after its snapshot: resume failed"


def test_a_vm_that_is_not_running_here_is_left_alone(hv):
    record = running_vm(hv, agent=False)
    hv.destroy(record.uuid)
    with consistency_point(hv, record) as point:
        assert hv.state(record.uuid) == "shutoff"
    assert point.consistency == Consistency.STOPPED
    with consistency_point(None, record) as point:
        pass
    assert point.consistency == Consistency.STOPPED
