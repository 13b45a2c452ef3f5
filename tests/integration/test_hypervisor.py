"""The libvirt adapter on libvirt's test driver (no real guests; QEMU is proven in the lab)."""

from __future__ import annotations

import uuid

import pytest

from pvc.domain_xml.build import DomainSpec, build
from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.errors import HypervisorError
from tests.helpers import wait_for


@pytest.fixture
def hv():
    hypervisor = Hypervisor("test:///default").connect()
    yield hypervisor
    hypervisor.close()


def _xml(name: str) -> str:
    # the test driver only knows domain type 'test'
    return (
        build(DomainSpec(name=name, memory_mib=64))
        .replace('type="qemu"', 'type="test"', 1)
        .replace('<domain type="qemu">', '<domain type="test">')
    )


def unique(prefix: str = "vm") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_define_start_stats_shutdown_undefine(hv):
    name = unique()
    events: list[tuple[str, str]] = []
    hv.on_lifecycle(lambda domain, event, _detail: events.append((domain, event)))
    domain_uuid = hv.define(_xml(name))
    assert len(domain_uuid) == 36 and hv.state(name) == "shutoff"
    hv.start(name)
    assert hv.state(name) == "running"
    stats = hv.stats(name)
    assert stats["state"] == "running" and stats["memory_kib"] == 64 * 1024 and stats["cpu_time_ns"] >= 0
    assert name in {info.name for info in hv.domains()}
    assert hv.shutdown(name, timeout=5) == "shut down"
    assert hv.state(name) == "shutoff"
    assert hv.shutdown(name, timeout=5) == "already stopped"
    hv.undefine(name)
    assert not hv.exists(name)
    wait_for(lambda: [e for d, e in events if d == name] == ["defined", "started", "stopped", "undefined"], 5)


def test_destroy_and_errors_carry_libvirt_messages(hv):
    name = unique()
    hv.define(_xml(name))
    hv.start(name)
    hv.destroy(name)
    assert hv.state(name) == "shutoff"
    with pytest.raises(HypervisorError, match="no-such-domain: Domain not found"):
        hv.start("no-such-domain")
    with pytest.raises(HypervisorError, match="define"):
        hv.define("<domain type='test'><name>broken</name></domain>")
    hv.undefine(name)


def test_unreachable_libvirt_is_a_clear_error():
    with pytest.raises(HypervisorError, match="cannot connect"):
        Hypervisor("qemu+unix:///system?socket=/nonexistent/sock").connect()
