"""Receiving a VM snapshot sent by another cluster (``/vm/{vm}/snapshot/receive/*``).

The sender (:mod:`pvc.cluster.vm.mirror_send`) first writes each volume: a whole image
(``POST .../receive/block``) or batches of changed extents on top of the previous snapshot
(``PUT``), then seals it with the snapshot (``PATCH``); last it sends the VM's configuration
(``POST .../receive/config``), which defines the VM here in state ``mirror`` (or updates the
mirror) and records the snapshot. A VM of that name that is not a mirror is never touched,
and neither is any volume that is not one of the mirror's or being received.

Every receive call for a VM, and the take-over of a mirror (a forced state change), hold the
VM's receive lock in ZooKeeper: a take-over never lets the VM start while a send still
writes its volumes, and a send that comes after finds a VM that is no longer a mirror.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, BinaryIO

from pvc.cluster.errors import ClusterError, Conflict
from pvc.cluster.node.queries import running_primary
from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import StorageAccess, mapped_errors
from pvc.cluster.vm.actions import check_changeable
from pvc.cluster.vm.define import parse_xml
from pvc.cluster.vm.queries import resolve
from pvc.cluster.vm.snapshots import check_name
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import rbd_volumes
from pvc.domain_xml.policy import XmlPolicy
from pvc.domain_xml.rbd_retarget import retarget_rbd_disks
from pvc.state import paths
from pvc.state.errors import ConflictError
from pvc.state.locks import LockBusy, held
from pvc.state.states import VMState
from pvc.state.vm_snapshots import VmSnapshot, claim, complete, read_snapshot, read_snapshots
from pvc.state.vms import VmMeta, VmPlacement, VmRecord, create_vm, replace_definition
from pvc.storage import monitors, pools, receive, snapshots
from pvc.storage.images import check_image_name

#: Metadata a mirror takes from its source's VM detail (v1 names), besides its XML.
KEPT_FIELDS = ("node_limit", "node_selector", "node_autostart", "migration_method", "migration_max_downtime")
#: Seconds a receive waits while another receive for the same VM, or its take-over, goes on.
RECEIVE_WAIT = 60.0
#: Seconds a take-over waits for a receive of the VM to end before it is refused (409).
TAKEOVER_WAIT = 10.0
#: Seconds without a byte of a send's body before its receive gives up (the sender is gone).
STALL_LIMIT = 60.0


@contextlib.contextmanager
def _exclusive(cluster: Cluster, vm: str, timeout: float, busy: str) -> Iterator[None]:
    """Hold VM ``vm``'s receive lock for the ``with`` block; Conflict (409) saying ``busy`` if
    another holds it for ``timeout`` seconds."""
    try:
        with held(cluster.store, paths.receive_lock(vm), f"pid {os.getpid()}", timeout=timeout):
            yield
    except LockBusy:  # raised only while acquiring: nothing under the lock takes another
        raise Conflict(busy) from None


def _receiving(cluster: Cluster, vm: str) -> contextlib.AbstractContextManager[None]:
    busy = f"VM '{vm}' is being received by another send, or taken over, here; try again"
    return _exclusive(cluster, vm, RECEIVE_WAIT, busy)


def _checked(pool: str, volume: str, snapshot: str) -> None:
    try:
        pools.check_name(pool)
        check_image_name(volume)
    except ValueError as error:
        raise ClusterError(str(error)) from None
    check_name(snapshot)


def mirror_of(cluster: Cluster, vm: str) -> VmRecord | None:
    """The mirror VM ``vm`` here, None if there is no VM of that name; Conflict (409) if
    there is one and it is not a mirror."""
    uuid = cluster.cache.vm_uuid_by_name(vm)
    record = cluster.cache.vm(uuid) if uuid else None
    if record is None:
        return None
    if record.placement.state != VMState.MIRROR:
        raise Conflict(
            f"VM '{vm}' exists here and is not a mirror (state {record.placement.state}); nothing changed"
        )
    return record


def take_over(cluster: Cluster, access: StorageAccess, vm: str, change: Callable[[], str]) -> str:
    """Run ``change`` (a forced state change of VM ``vm``; its message is returned). For a
    mirror it runs holding the VM's receive lock, after :func:`settle_for_takeover`: Conflict
    (409) if a send to the VM goes on for TAKEOVER_WAIT seconds."""
    record = resolve(cluster, vm)
    name = record.meta.name
    check_changeable(name, record.placement, force=True)  # never one a promotion holds
    if record.placement.state != VMState.MIRROR:
        return change()
    busy = (
        f"VM '{name}' is receiving a send right now; take it over once the send ends (one "
        f"whose sender went away ends {STALL_LIMIT:g} s after its last data)"
    )
    with _exclusive(cluster, name, TAKEOVER_WAIT, busy):
        rolled = settle_for_takeover(cluster, access, name)
        message = change()
    if rolled:
        message += f" (rolled {', '.join(rolled)} back to the mirror's last complete snapshot first)"
    return message


def settle_for_takeover(cluster: Cluster, access: StorageAccess, vm: str) -> list[str]:
    """Before mirror VM ``vm`` is taken over here (a forced state change): roll each of its
    volumes that a later, unfinished send changed back to the mirror's last complete
    snapshot, so that it starts from one consistent point; the volumes rolled back. Nothing
    for a VM that is not a mirror."""
    record = resolve(cluster, vm)
    if record.placement.state != VMState.MIRROR:
        return []
    cache = cluster.cache
    done = [snap for snap in read_snapshots(cache.data, cache.children, record.uuid) if snap.complete]
    if not done:
        return []
    rolled = []
    with mapped_errors(access):
        client = access.client()
        for pool, volume in rbd_volumes(record.xml):
            if receive.settle(client, pool, volume, done[-1].name):
                rolled.append(f"{pool}/{volume}")
    return rolled


def _mirror_volumes(record: VmRecord | None) -> set[tuple[str, str]]:
    return set(rbd_volumes(record.xml)) if record is not None else set()


def receive_block(
    cluster: Cluster,
    access: StorageAccess,
    vm: str,
    pool: str,
    volume: str,
    snapshot: str,
    size: int,
    stream: BinaryIO,
    checksum: str | None = None,
) -> tuple[str, str]:
    """A whole image of ``pool/volume`` for ``vm``'s snapshot ``snapshot`` (``size`` bytes);
    the reply message and the CRC-32 of what arrived."""
    _checked(pool, volume, snapshot)
    if size <= 0:
        raise ClusterError("size must be a positive number of bytes")
    with _receiving(cluster, vm), mapped_errors(access):
        mirror_of(cluster, vm)
        digest = receive.receive_image(access.client(), vm, pool, volume, snapshot, size, stream, checksum)
    return f"Received {size} bytes of {pool}/{volume} for snapshot {snapshot} of VM {vm}", digest


def receive_batch(
    cluster: Cluster,
    access: StorageAccess,
    vm: str,
    pool: str,
    volume: str,
    snapshot: str,
    source_snapshot: str,
    parts: Iterable[bytes],
    checksum: str | None = None,
    send: str = "",
    index: int | None = None,
) -> str:
    """A batch of changed extents of a mirror's volume since ``source_snapshot`` (``send``
    names the send it belongs to, ``index`` the batch's place in it: its first batch starts
    from ``source_snapshot`` afresh; a later one after another send began is refused, 409)."""
    _checked(pool, volume, snapshot)
    check_name(source_snapshot)
    with _receiving(cluster, vm):
        mirror = mirror_of(cluster, vm)
        if (pool, volume) not in _mirror_volumes(mirror):
            raise ClusterError(
                f"{pool}/{volume} is not a disk of a mirror VM '{vm}' here: send the whole image"
            )
        with mapped_errors(access):
            written = receive.receive_extents(
                access.client(), vm, pool, volume, snapshot, source_snapshot, parts, checksum, send, index
            )
    return f"Received {written} changed bytes of {pool}/{volume} for snapshot {snapshot} of VM {vm}"


def receive_seal(
    cluster: Cluster, access: StorageAccess, vm: str, pool: str, volume: str, snapshot: str
) -> str:
    """Take the snapshot of a received volume (it is complete from then on)."""
    _checked(pool, volume, snapshot)
    with _receiving(cluster, vm), mapped_errors(access):
        mirror_of(cluster, vm)
        receive.seal(access.client(), vm, pool, volume, snapshot)
    return f"Took snapshot {pool}/{volume}@{snapshot}"


def receive_config(
    cluster: Cluster,
    access: StorageAccess,
    vm: str,
    snapshot: str,
    detail: Any,
    *,
    policy: XmlPolicy,
    disk_auth: tuple[str, str] | None,
) -> str:
    """Define (or update) mirror VM ``vm`` from the source's VM ``detail`` (the v1 VM object)
    and record its snapshot ``snapshot``, once every volume has it."""
    check_name(snapshot)
    if not isinstance(detail, dict) or not isinstance(detail.get("xml"), str):
        raise ClusterError("the body must be the source VM's detail (a JSON object with its xml)")
    with _receiving(cluster, vm):
        return _receive_config(cluster, access, vm, snapshot, detail, policy, disk_auth)


def _receive_config(
    cluster: Cluster,
    access: StorageAccess,
    vm: str,
    snapshot: str,
    detail: dict,
    policy: XmlPolicy,
    disk_auth: tuple[str, str] | None,
) -> str:
    mirror = mirror_of(cluster, vm)
    with mapped_errors(access):
        client = access.client()
        try:
            xml = retarget_rbd_disks(detail["xml"], monitors=monitors.v1_endpoints(client), auth=disk_auth)
        except DomainXMLError as error:
            raise ClusterError(f"the VM's XML: {error}") from None
        xml, summary = parse_xml(xml, policy, uuid=mirror.uuid if mirror else "")
        if summary.name != vm:
            raise ClusterError(f"the XML names VM '{summary.name}', not '{vm}'")
        disks = rbd_volumes(xml)
        for pool, volume in disks:
            if receive.owner(client, pool, volume) != vm:
                raise ClusterError(f"{pool}/{volume} was not received for VM '{vm}'")
            if receive.is_partial(client, pool, volume):
                raise ClusterError(f"{pool}/{volume} was not completely received")
            snapshots.get(client, pool, volume, snapshot)  # NotFoundError (404) without it
    if mirror is not None and read_snapshot(cluster.cache.data, mirror.uuid, snapshot) is not None:
        raise ClusterError(f"mirror VM '{vm}' has snapshot '{snapshot}' already")
    uuid = _define_or_update(cluster, mirror, vm, summary, detail, xml)
    taken = _taken(detail, snapshot)
    claim(cluster.store, uuid, snapshot, "")
    record = VmSnapshot(
        name=snapshot,
        timestamp=taken,
        xml=xml,
        rbd_snapshots=[f"{pool}/{volume}@{snapshot}" for pool, volume in disks],
        consistency=str(detail.get("snapshot_consistency", "")),
    )
    cluster.settle(complete(cluster.store, uuid, record))
    return f"Mirror VM '{vm}' is at snapshot '{snapshot}'"


def _taken(detail: dict, snapshot: str) -> float:
    for item in detail.get("snapshots") or []:
        if isinstance(item, dict) and item.get("name") == snapshot:
            try:
                return float(item.get("timestamp"))
            except (TypeError, ValueError):
                break
    return time.time()


def _define_or_update(
    cluster: Cluster, mirror: VmRecord | None, vm: str, summary, detail: dict, xml: str
) -> str:
    kept = {key: detail[key] for key in KEPT_FIELDS if key in detail}
    if mirror is not None:
        meta = VmMeta.from_mapping({**vars(mirror.meta), **kept}) or mirror.meta
        meta = replace(meta, vcpus=summary.vcpus, memory_mib=summary.memory_mib)
        try:
            commit = replace_definition(cluster.store, meta, cluster.cache.vm_meta_version(mirror.uuid), xml)
        except ConflictError:
            raise ClusterError(f"mirror VM '{vm}' changed meanwhile; send again") from None
        cluster.settle(commit)
        return mirror.uuid
    node = running_primary(cluster)
    if node is None:
        raise Conflict("No primary coordinator is running to hold the mirror")
    base = {
        "name": vm,
        "uuid": summary.uuid,
        "vcpus": summary.vcpus,
        "memory_mib": summary.memory_mib,
        **kept,
    }
    meta = VmMeta.from_mapping(base) or VmMeta(name=vm, uuid=summary.uuid)
    try:
        commit = create_vm(cluster.store, meta, VmPlacement(state=VMState.MIRROR, node=node), xml)
    except ConflictError:
        raise ClusterError(f"a VM named '{vm}' or with UUID {summary.uuid} exists here") from None
    cluster.settle(commit)
    return summary.uuid
