"""A network's dnsmasq for real, in namespaces the test makes: DHCP, reservations, the lease hook, DNS.

A node namespace holds the network's bridge ``vmbr<VNI>`` with the gateway address and
runs dnsmasq from PVC's configuration; VM namespaces plugged into the bridge ask for
addresses with ``busybox udhcpc``. The lease hook is :mod:`pvc.node.lease_hook` over a
file-backed store (``tests/integration/lease_store_hook.py``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc.net.dnsmasq import DnsmasqInstance, DnsmasqNetwork, Reservation
from pvc.node.lease_hook import LeaseEvent
from tests.helpers import reachable_dir
from tests.integration.lease_store_hook import FileLeaseStore
from tests.integration.netns_lab import NetnsLab, netns_available

pytestmark = pytest.mark.skipif(
    not netns_available() or not all(shutil.which(tool) for tool in ("dnsmasq", "busybox")),
    reason="needs root, ip netns, dnsmasq and busybox",
)

VNI = 4243
BRIDGE = f"vmbr{VNI}"
DOMAIN = "net4243.test"
GATEWAY = "10.244.0.1"
RANGE = ("10.244.0.100", "10.244.0.150")
MAC1, MAC2 = "02:00:00:42:43:01", "02:00:00:42:43:02"
RESERVED = "10.244.0.50"
REPO = Path(__file__).resolve().parents[2]
# udhcpc ships no script: configure the address and say what was bound
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "PVCT-BOUND $ip" ;;
esac
"""


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch directory dnsmasq can still read after it dropped to nobody (pytest's are 0700)."""
    with reachable_dir("pvcn-dnsmasq-") as path:
        yield path


def _network(**changes) -> DnsmasqNetwork:
    fields = dict(
        vni=VNI,
        domain=DOMAIN,
        ip4_network="10.244.0.0/24",
        gateway4=GATEWAY,
        dhcp4_start=RANGE[0],
        dhcp4_end=RANGE[1],
        lease_time=600,
    )
    return DnsmasqNetwork(**{**fields, **changes})


def _hook(workdir: Path) -> Path:
    hook = workdir / "hook"
    script = Path(__file__).with_name("lease_store_hook.py")
    hook.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    hook.chmod(0o755)
    return hook


def _dhcp(lab: NetnsLab, netns: str, script: Path, hostname: str) -> str:
    """The address ``busybox udhcpc`` obtains in ``netns`` (sending ``hostname``)."""
    argv = ["busybox", "udhcpc", "-i", "eth0", "-s", str(script), "-x", f"hostname:{hostname}", "-n", "-q"]
    result = lab.run(netns, *argv, "-t", "5", "-T", "1", timeout=30)
    bound = re.findall(r"PVCT-BOUND (\S+)", result.stdout)
    assert bound, result.stdout + result.stderr
    return bound[-1]


def _lookup(lab: NetnsLab, netns: str, name: str) -> list[str]:
    """The addresses ``busybox nslookup`` gets for ``name`` from the gateway."""
    result = lab.run(netns, "busybox", "nslookup", name, GATEWAY, check=False)
    answer = result.stdout.split(f"Name:\t{name}", 1)
    return re.findall(r"Address: (\S+)", answer[1]) if len(answer) == 2 else []


def _wait_for(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_dhcp_reservations_hook_and_dns(lab: NetnsLab, workdir: Path) -> None:
    node, vm1, vm2 = (lab.namespace(role) for role in ("node", "vm1", "vm2"))
    lab.veth(node, "p1", vm1, "eth0")
    lab.veth(node, "p2", vm2, "eth0")
    lab.bridge(node, BRIDGE, "p1", "p2")
    lab.run(node, "ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    for netns, mac in ((vm1, MAC1), (vm2, MAC2)):
        lab.run(netns, "ip", "link", "set", "eth0", "address", mac)
    udhcpc = workdir / "udhcpc.script"
    udhcpc.write_text(UDHCPC_SCRIPT)
    udhcpc.chmod(0o755)
    store_file, hook_log = workdir / "leases.json", workdir / "hook.log"
    store = FileLeaseStore(store_file)
    env = {
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "PVC_TEST_LEASE_STORE": str(store_file),
        "PVC_TEST_HOOK_LOG": str(hook_log),
    }
    instance = DnsmasqInstance(_network(), workdir / f"vni{VNI}", _hook(workdir), netns=node, env=env)
    try:
        _run_scenario(lab, instance, store, hook_log, udhcpc, vm1, vm2)
    finally:
        instance.stop()
    assert not instance.running()


def _hook_calls(hook_log: Path) -> list[str]:
    return hook_log.read_text().splitlines() if hook_log.exists() else []


def _run_scenario(lab, instance, store, hook_log, udhcpc, vm1, vm2) -> None:
    first = instance.start()
    assert instance.running()
    assert int(instance.files.pid.read_text()) == first.pid
    assert _hook_calls(hook_log) == [f"init vni={VNI}"]

    # a dynamic lease from the range, recorded by the hook with its host name and expiry
    address1 = _dhcp(lab, vm1, udhcpc, "vm1")
    assert ipaddress.ip_address(RANGE[0]) <= ipaddress.ip_address(address1) <= ipaddress.ip_address(RANGE[1])
    _wait_for(
        lambda: any(call.startswith(f"add {MAC1} {address1} vm1") for call in _hook_calls(hook_log)), "add"
    )
    # the hook logs its call before it stores the lease
    _wait_for(lambda: store.all(VNI), "the lease in the store")
    [lease] = store.all(VNI)
    assert (lease.mac, lease.ip, lease.hostname, lease.vni, lease.interface) == (
        MAC1,
        address1,
        "vm1",
        VNI,
        BRIDGE,
    )
    assert time.time() < lease.expiry <= time.time() + 600
    assert _lookup(lab, vm1, f"vm1.{DOMAIN}") == [address1]

    # a reservation, served after a reload (SIGHUP, same process): address and name
    reads = instance.files.log.read_text().count(f"read {instance.files.reservations}")
    instance.reload((Reservation(MAC2, RESERVED, "db1"),))
    _wait_for(
        lambda: instance.files.log.read_text().count(f"read {instance.files.reservations}") > reads,
        "dnsmasq to re-read the reservations",
    )
    assert instance.ref == first and instance.running()
    assert _lookup(lab, vm1, f"db1.{DOMAIN}") == [RESERVED]  # before any lease: the names file
    assert _dhcp(lab, vm2, udhcpc, "whatever") == RESERVED
    _wait_for(lambda: any(lease.mac == MAC2 for lease in store.all(VNI)), "the reserved lease in the store")
    reserved = next(lease for lease in store.all(VNI) if lease.mac == MAC2)
    assert (reserved.ip, reserved.hostname) == (RESERVED, "db1")

    # a restart reads the leases back from the hook's init: vm1's name still resolves before it asks again
    calls = len(_hook_calls(hook_log))
    instance.stop()
    assert not instance.running()
    second = instance.start()
    assert second.pid != first.pid
    assert _hook_calls(hook_log)[calls] == f"init vni={VNI}"
    assert _lookup(lab, vm2, f"vm1.{DOMAIN}") == [address1]
    assert {lease.mac for lease in store.all(VNI)} == {MAC1, MAC2}
    assert _dhcp(lab, vm1, udhcpc, "vm1") == address1

    # a new owner (a node daemon started again) takes over the running dnsmasq by its pid file
    again = DnsmasqInstance(
        instance.network, instance.files.directory, instance.hook, netns=instance.netns, env=instance.env
    )
    assert again.start() == second
    assert instance.running()

    # another lease time is a new configuration: a restart, leases kept
    assert instance.update(_network(lease_time=900, reservations=(Reservation(MAC2, RESERVED, "db1"),))) == (
        "restarted"
    )
    assert _lookup(lab, vm2, f"vm1.{DOMAIN}") == [address1]
    assert isinstance(store.all(VNI)[0], LeaseEvent)
