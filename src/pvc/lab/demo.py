"""Guest VMs in the lab: their XML, and the demo VMs ``pvc-lab up --vms N`` creates.

Demo VMs go through the cluster's own API like any client's: defined with a placement
selector, started, and reported once libvirt runs them on their node. Each guest's
serial console is written by its node to ``<lab>/serial/<name>.log`` (the lab nodes'
``hypervisor.console_log_dir``); a disk-backed guest's disk is
``<lab>/disks/<name>.img``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pvc.client.http import segment
from pvc.cluster.vm.xml_policy import node_policy
from pvc.config import parse_config
from pvc.domain_xml.bridges import bridge_name
from pvc.domain_xml.build import DomainSpec, RbdDisk, build
from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.errors import HypervisorError
from pvc.lab import cluster_ceph, endpoint, libvirtd
from pvc.lab.cache import cache_dir
from pvc.lab.guest import BOOT_MARKER, GuestNetwork, ensure_disk, ensure_image
from pvc.lab.layout import LabLayout
from pvc.lab.nodeconf import node_config_data
from pvc.node.vm_runtime import runtime_xml
from pvc.storage.cephx import bare_user

#: Memory of a lab guest: enough for the busybox initramfs and the guest kernel.
GUEST_MEMORY_MIB = 96
DEMO_PREFIX = "demo"


class DemoError(RuntimeError):
    """The demo VMs could not be created or did not start."""


def serial_log(layout: LabLayout, name: str) -> Path:
    """Where guest ``name``'s serial console is written."""
    path = layout.directory / "serial" / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def guest_disk(layout: LabLayout, name: str) -> Path:
    """Guest ``name``'s own copy of the lab's small disk image (made on first use)."""
    path = layout.directory / "disks" / f"{name}.img"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ensure_disk(cache_dir()), path)
    return path


def guest_xml(
    layout: LabLayout,
    name: str,
    *,
    heartbeat_us: int = 1_000_000,
    memory_mib: int = 0,
    disk: bool = False,
    rbd_volume: str = "",
    nics: Sequence[tuple[int, str]] = (),
    network: GuestNetwork | None = None,
) -> str:
    """Domain XML of a lab guest called ``name`` (the cached tiny kernel + initramfs), with
    its own copy of the small disk image as ``vda`` if ``disk``, or the RBD volume
    ``pool/volume`` of the lab's Ceph as ``vda`` (the guest writes its heartbeat into it),
    opened as the lab's ``vm`` cephx user through the nodes' libvirt secret. ``nics`` are
    ``(vni, mac)`` pairs (mac "" for libvirt's choice): a NIC on each of those networks;
    ``network`` is what the guest does on them (DHCP, then its probes)."""
    image = ensure_image(cache_dir())
    rbd_disks = []
    if rbd_volume:
        pool, _, volume = rbd_volume.partition("/")
        rbd_disks = [
            RbdDisk(
                pool,
                volume,
                cluster_ceph.mon_v1_endpoints(layout),
                auth_user=bare_user(cluster_ceph.user("vm")),
                secret_uuid=cluster_ceph.VM_SECRET_UUID,
            )
        ]
    spec = DomainSpec(
        name=name,
        memory_mib=memory_mib or GUEST_MEMORY_MIB,
        kernel=str(image.kernel),
        initrd=str(image.initrd),
        cmdline=image.cmdline(
            heartbeat_us=heartbeat_us, heartbeat_disk="vda" if rbd_volume else "", network=network
        ),
        disks=[str(guest_disk(layout, name))] if disk else [],
        rbd_disks=rbd_disks,
        bridges=[bridge_name(vni) for vni, _mac in nics],
        macs=[mac for _vni, mac in nics],
    )
    return build(spec)


def direct_guest_xml(layout: LabLayout, name: str, **options: object) -> str:
    """:func:`guest_xml` as a lab node would hand it to libvirt (checked, console log added),
    for tools that drive a node's libvirtd directly rather than through the cluster."""
    config = parse_config(node_config_data(layout, layout.node_names[0]))
    return runtime_xml(guest_xml(layout, name, **options), node_policy(config), config.console_log_dir)


#: The size of a demo VM's RBD disk (in a lab with Ceph).
DEMO_DISK = "64M"


def create_demo_vms(
    layout: LabLayout, count: int, *, say: Callable[[str], None] = print, timeout: float = 120.0
) -> dict[str, str]:
    """Define and start ``count`` demo VMs spread over the nodes; returns name -> node.

    With the lab's Ceph each has a small RBD volume as its disk (so it can be snapshotted
    and sent). Existing demo VMs are kept (and waited for).
    """
    names = [f"{DEMO_PREFIX}{i}" for i in range(1, count + 1)]
    return start_guests(layout, names, say=say, timeout=timeout, rbd_size=DEMO_DISK if layout.ceph else None)


def start_guests(
    layout: LabLayout,
    names: list[str],
    *,
    node: str | None = None,
    heartbeat_us: int = 1_000_000,
    rbd_size: str | None = None,
    say: Callable[[str], None] = print,
    timeout: float = 120.0,
) -> dict[str, str]:
    """Define (unless defined) and start lab guests through the API; returns name -> node.

    Without ``node`` the cluster's ``vms`` selector spreads them. With ``rbd_size`` each
    guest gets a volume of that size in the lab's pool (``<name>-disk``) as its disk.
    Returns once every guest printed its boot marker, so its console (``pvc vm log``)
    shows a booted guest.
    """
    if not names:
        return {}
    client = endpoint.client(layout)
    existing = {vm["name"] for vm in endpoint.accepted(client.get("/vm"), "list VMs")}
    for name in names:
        if name not in existing:
            rbd_volume = ""
            if rbd_size:
                volume = {"volume": f"{name}-disk", "pool": cluster_ceph.POOL, "size": rbd_size}
                endpoint.accepted(client.post("/storage/ceph/volume", data=volume), f"volume of {name}")
                rbd_volume = f"{cluster_ceph.POOL}/{name}-disk"
            xml = guest_xml(layout, name, heartbeat_us=heartbeat_us, rbd_volume=rbd_volume)
            options = {"node": node} if node else {"selector": "vms"}
            endpoint.accepted(client.post("/vm", data={"xml": xml, **options}), f"define {name}")
        endpoint.accepted(client.post(f"/vm/{segment(name)}/state", data={"state": "start"}), f"start {name}")
    deadline = time.monotonic() + timeout
    booted: dict[str, str] = {}
    while True:
        for name in names:
            if name in booted:
                continue
            vm = endpoint.accepted(client.get(f"/vm/{segment(name)}"), f"read {name}")[0]
            if vm["state"] == "fail":
                raise DemoError(f"{name} failed to start: {vm.get('failed_reason') or 'no reason given'}")
            if vm["state"] == "start" and BOOT_MARKER in _console(serial_log(layout, name)):
                booted[name] = vm["node"]
                say(f"VM {name} booted on {vm['node']}")
        if len(booted) == len(names):
            return booted
        if time.monotonic() > deadline:
            missing = ", ".join(name for name in names if name not in booted)
            raise DemoError(f"demo VMs not booted within {timeout:g} s: {missing}")
        time.sleep(0.5)


def running_on(layout: LabLayout) -> dict[str, list[str]]:
    """Every running guest by name -> the nodes whose libvirtd runs it (asked directly; a
    node whose libvirtd does not answer, e.g. one that is powered off, runs none)."""
    where: dict[str, list[str]] = {}
    for node in layout.node_names:
        try:
            hypervisor = Hypervisor(libvirtd.uri(layout, node)).connect()
        except HypervisorError:
            continue
        try:
            for name in hypervisor.active().values():
                where.setdefault(name, []).append(node)
        except HypervisorError:
            continue
        finally:
            hypervisor.close()
    return where


def _console(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
