"""The privileged parts of making a VM from a plan: its volumes and its domain XML.

These run in the node daemon (the ``provisioner.create`` task), never in an install
script's sandbox: a script only describes, PVC does.
"""

from __future__ import annotations

from typing import Any

from pvc.cluster.errors import ClusterError
from pvc.domain_xml.build import DomainSpec, RbdDisk, build
from pvc.storage import snapshots, volumes
from pvc.storage.client import CephClient

GIB = 1024**3
#: The RBD metadata key naming the ``provisioner.create`` task that made a volume: what is
#: removed after a creation whose worker was lost (:mod:`.leftovers`) is only what it made.
MADE_BY = "pvc.provisioner.task"


def volume_source(volume: dict[str, Any]) -> tuple[str, str]:
    """The (volume, snapshot) a disk is made from ("" when made empty or copied whole)."""
    source = volume.get("source_volume") or ""
    name, _, snapshot = source.partition("@")
    return name, snapshot


def check_volume(client: CephClient, volume: dict[str, Any]) -> None:
    """ClusterError when ``volume`` cannot be made: no pool, no size or source, a source that
    does not exist, a name already taken."""
    pool, name = volume["pool"], volume["volume"]
    disk = f"disk {volume['disk_id']}"
    if not client.pool_exists(pool):
        raise ClusterError(f"{disk}: pool '{pool}' does not exist")
    source, snapshot = volume_source(volume)
    if not source and not volume.get("size_gb"):
        raise ClusterError(f"{disk}: the storage template gives neither a size nor a source volume")
    if source:
        if not volumes.exists(client, pool, source):
            raise ClusterError(f"{disk}: source volume '{pool}/{source}' does not exist")
        if snapshot and snapshot not in {s.name for s in snapshots.list_snapshots(client, pool, source)}:
            raise ClusterError(f"{disk}: source snapshot '{pool}/{source}@{snapshot}' does not exist")
    if volumes.exists(client, pool, name):
        raise ClusterError(f"{disk}: volume '{pool}/{name}' exists already")


def make_volume(client: CephClient, volume: dict[str, Any], made_by: str) -> str:
    """Create ``volume``: a copy-on-write clone of its source snapshot, a copy of its source
    volume, or an empty volume; grown to its size if that is larger; tagged (RBD metadata
    :data:`MADE_BY`) with the task ``made_by`` making it. Returns what was done; on failure
    nothing of it is left."""
    pool, name = volume["pool"], volume["volume"]
    size = int(volume.get("size_gb") or 0) * GIB
    source, snapshot = volume_source(volume)
    if source and snapshot:
        made = volumes.clone_from_snapshot(client, pool, source, snapshot, name)
        how = f"cloned {pool}/{name} from {source}@{snapshot}"
    elif source:
        made = volumes.clone(client, pool, source, name)
        how = f"copied {pool}/{source} to {pool}/{name}"
    else:
        made = volumes.create(client, pool, name, size)
        how = f"created {pool}/{name}"
    try:
        volumes.set_metadata(client, pool, name, MADE_BY, made_by)
        if size > made.size:
            made = volumes.resize(client, pool, name, size)
    except BaseException:
        volumes.remove(client, pool, name)  # not half made: the caller never counted it
        raise
    return f"{how} ({made.size_human})"


#: What an install script's ``create`` hook may set in PVC's own XML: direct kernel boot.
BOOT_KEYS = ("kernel", "initrd", "cmdline")


def boot_settings(value: dict[str, Any]) -> dict[str, str]:
    """The direct-boot settings a ``create`` hook returned (ClusterError for anything else);
    the allowlist later checks that the kernel and initrd lie in the nodes' image directories."""
    unknown = sorted(set(value) - set(BOOT_KEYS))
    if unknown:
        raise ClusterError(f"create() returned unknown settings {', '.join(map(str, unknown))[:200]}")
    settings = {key: value[key] for key in BOOT_KEYS if value.get(key) is not None}
    for key, text in settings.items():
        if not isinstance(text, str) or len(text) > 4096 or "\x00" in text:
            raise ClusterError(f"create() returned a {key} that is not a short text")
    if ("initrd" in settings or "cmdline" in settings) and "kernel" not in settings:
        raise ClusterError("create() returned an initrd or cmdline without a kernel")
    return settings


def domain_xml(
    vm_data: dict[str, Any],
    *,
    domain_type: str,
    monitors: list[tuple[str, int]],
    disk_auth: tuple[str, str] | None,
    uuid: str = "",
    boot: dict[str, str] | None = None,
) -> str:
    """The VM's domain XML: its system template's CPUs, memory and consoles, a virtio disk
    on each volume (in disk order) and a virtio NIC on each network with its MAC; with
    ``boot`` (see :func:`boot_settings`), a direct kernel boot."""
    system = vm_data["system"]
    boot = boot or {}
    user, secret = disk_auth or ("", "")
    spec = DomainSpec(
        name=vm_data["name"],
        uuid=uuid,
        vcpus=int(system["vcpu_count"]),
        memory_mib=int(system["vram_mb"]),
        domain_type=domain_type,
        kernel=boot.get("kernel", ""),
        initrd=boot.get("initrd", ""),
        cmdline=boot.get("cmdline", ""),
        rbd_disks=[
            RbdDisk(v["pool"], v["volume"], list(monitors), auth_user=user, secret_uuid=secret)
            for v in vm_data["volumes"]
        ],
        bridges=[net["bridge"] for net in vm_data["networks"]],
        macs=[net["mac"] for net in vm_data["networks"]],
        serial=bool(system.get("serial", True)),
        vnc_listen=(system.get("vnc_bind") or "127.0.0.1") if system.get("vnc") else "",
    )
    return build(spec)
