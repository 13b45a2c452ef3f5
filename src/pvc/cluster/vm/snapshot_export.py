"""Exporting VM snapshots to files and importing them back, as tasks on the primary.

``vm.export_snapshot`` writes a snapshot's volumes (whole, or as the changes since an
earlier snapshot that was exported to the same place) and a manifest
(:mod:`pvc.cluster.vm.snapshot_files`). ``vm.import_snapshot`` checks a chain of exports
against their manifests before it writes anything, defines the VM in state ``import``,
writes its volumes, and leaves it stopped; on any failure it removes what it made.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from pvc import tasks
from pvc.cluster.errors import ClusterError, Conflict
from pvc.cluster.node.queries import running_primary
from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import StorageAccess
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeServices, NodeTaskContext, need_storage, node_xml_policy
from pvc.cluster.vm.define import parse_xml
from pvc.cluster.vm.queries import resolve, task_domain
from pvc.cluster.vm.snapshot_files import (
    FULL,
    INCREMENTAL,
    MANIFEST,
    ExportedFile,
    ExportError,
    Manifest,
    allowed_directory,
    chain,
    export_directory,
    no_links_below,
    verify_files,
    volume_file,
    write_manifest,
)
from pvc.cluster.vm.snapshots import check_name
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import DomainSummary, rbd_volumes
from pvc.state.errors import ConflictError
from pvc.state.states import VMState
from pvc.state.vm_snapshots import Consistency, VmSnapshot, claim, read_snapshot
from pvc.state.vm_snapshots import complete as complete_snapshot
from pvc.state.vms import VmMeta, VmPlacement, create_vm, delete_vm, read_vm, update_placement
from pvc.storage import image_transfer, volumes
from pvc.storage import snapshots as rbd_snapshots
from pvc.storage.errors import StorageError
from pvc.tasks import InvalidTaskError, TaskError, task_type

EXPORT_TASK = "vm.export_snapshot"
#: RBD metadata naming the import task that created a volume (see :func:`sweep_lost_import`).
MADE_BY = "pvc.import.task"
IMPORT_TASK = "vm.import_snapshot"


def _primary(cluster: Cluster) -> str:
    node = running_primary(cluster)
    if node is None:
        raise Conflict("No primary coordinator is running to move the snapshot")
    return node


def checked_directory(path: object, roots: list[str] | tuple[str, ...], error: type[Exception]) -> Path:
    """``path`` resolved, if under one of ``roots`` (see :func:`allowed_directory`); else ``error``."""
    try:
        return allowed_directory(path, roots)
    except ExportError as problem:
        raise error(str(problem)) from None


def submit_export(
    cluster: Cluster, roots: list[str], vm: str, snapshot_name: str, export_path: str, parent: str | None
) -> tasks.TaskRecord:
    """Queue ``vm.export_snapshot``; ClusterError (400) for a path outside ``roots``, an
    unknown or unfinished snapshot or parent; NotFoundError (404) for an unknown VM."""
    record = resolve(cluster, vm)
    checked_directory(export_path, roots, ClusterError)
    for name in (snapshot_name, parent) if parent else (snapshot_name,):
        found = read_snapshot(cluster.cache.data, record.uuid, check_name(name))
        if found is None or not found.complete:
            raise ClusterError(f"VM '{record.meta.name}' has no complete snapshot '{name}'")
    if parent == snapshot_name:
        raise ClusterError("a snapshot cannot be its own incremental parent")
    args = {"domain": record.uuid, "snapshot_name": snapshot_name, "export_path": export_path}
    return task_actions.submit(
        cluster, export_snapshot, _primary(cluster), {**args, "incremental_parent": parent}
    )


def submit_import(
    cluster: Cluster, roots: list[str], vm: str, snapshot_name: str, import_path: str, retain_snapshot: bool
) -> tasks.TaskRecord:
    """Queue ``vm.import_snapshot`` of VM ``vm``'s export; ClusterError (400) for a path
    outside ``roots``, a bad name, or a VM of that name that exists."""
    check_name(snapshot_name)
    checked_directory(import_path, roots, ClusterError)
    if cluster.cache.vm_uuid_by_name(vm):
        raise ClusterError(f"A VM named '{vm}' already exists; remove it before importing it")
    args = {"domain": vm, "snapshot_name": snapshot_name, "import_path": import_path}
    return task_actions.submit(
        cluster, import_snapshot, _primary(cluster), {**args, "retain_snapshot": bool(retain_snapshot)}
    )


# -- export --------------------------------------------------------------------------------


def _check_export(args: dict[str, Any]) -> dict[str, Any]:
    task_domain(args)
    check_name(args.get("snapshot_name"), InvalidTaskError)
    if args.get("incremental_parent") is not None:
        check_name(args["incremental_parent"], InvalidTaskError)
    if not isinstance(args.get("export_path"), str):
        raise InvalidTaskError("export_path must be a path")
    return args


def backup_roots(ctx: NodeTaskContext) -> tuple[str, ...]:
    """The backup paths of the node running the task (its own configuration decides)."""
    return tuple(ctx.services.backup.paths) if isinstance(ctx.services, NodeServices) else ()


def _complete_snapshot(ctx: NodeTaskContext, uuid: str, vm: str, name: str) -> VmSnapshot:
    found = read_snapshot(ctx.store.get, uuid, name)
    if found is None or not found.complete:
        raise TaskError(f"VM {vm} has no complete snapshot {name}")
    return found


def _step(call, *args, **kwargs) -> Any:
    try:
        return call(*args, **kwargs)
    except (StorageError, ExportError, OSError) as error:
        raise TaskError(str(error)) from None


@task_type(EXPORT_TASK, validate=_check_export)
def export_snapshot(
    ctx: NodeTaskContext,
    *,
    domain: str,
    snapshot_name: str,
    export_path: str,
    incremental_parent: str | None = None,
) -> dict[str, Any]:
    """Write snapshot ``snapshot_name`` of VM ``domain`` under ``export_path`` (see the module)."""
    root = checked_directory(export_path, backup_roots(ctx), TaskError)
    record = read_vm(ctx.store.get, domain)
    if record is None:
        raise TaskError(f"VM {domain} no longer exists")
    vm = record.meta.name
    snapshot = _complete_snapshot(ctx, domain, vm, snapshot_name)
    kind = INCREMENTAL if incremental_parent else FULL
    if incremental_parent:
        parent = _complete_snapshot(ctx, domain, vm, incremental_parent)
        if sorted(parent.volumes) != sorted(snapshot.volumes):
            raise TaskError(
                f"snapshots {incremental_parent} and {snapshot_name} of VM {vm} have other volumes"
            )
        if not (export_directory(root, vm, incremental_parent) / "manifest.json").is_file():
            raise TaskError(
                f"the parent {incremental_parent} was not exported to {export_path}; export it first"
            )
    target = _step(no_links_below, root, export_directory(root, vm, snapshot_name))
    if (target / MANIFEST).exists():
        raise TaskError(f"{target} exists: snapshot {snapshot_name} of VM {vm} was exported there already")
    _remove_export(root, target)  # an unfinished export (its node died half way) is redone
    access = need_storage(ctx)
    _step(target.mkdir, mode=0o750, parents=True)
    try:
        files = _export_volumes(ctx, access, snapshot, target, kind, incremental_parent)
        manifest = Manifest(
            type=kind,
            vm=vm,
            uuid=domain,
            snapshot=snapshot_name,
            parent=incremental_parent,
            taken=snapshot.timestamp,
            exported=time.time(),
            consistency=snapshot.consistency,
            meta=asdict(record.meta),
            xml=snapshot.xml,
            files=files,
        )
        _step(write_manifest, target, manifest)
    except BaseException:
        _remove_export(root, target)
        raise
    moved = sum(item.data_bytes for item in files)
    message = f"Exported {kind} snapshot {snapshot_name} of VM {vm} to {target}"
    message += f" ({len(files)} volume(s), {moved} bytes of data)"
    return {"message": message, "path": str(target), "type": kind, "bytes": moved}


def _remove_export(root: Path, target: Path) -> None:
    """Remove an unfinished export, if it is still the directory this task made."""
    try:
        no_links_below(root, target)
    except ExportError:
        return
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)


def _export_volumes(
    ctx: NodeTaskContext,
    access: StorageAccess,
    snapshot: VmSnapshot,
    target: Path,
    kind: str,
    parent: str | None,
) -> list[ExportedFile]:
    files = []
    count = len(snapshot.volumes)
    for index, (pool, volume) in enumerate(snapshot.volumes):
        name = volume_file(pool, volume, kind)

        def progress(done: int, index: int = index, name: str = name) -> None:
            ctx.progress(index, count, f"Writing {name}: {done // (1024 * 1024)} MiB")
            ctx.check_cancelled()

        if kind == FULL:
            done = _step(
                image_transfer.export_full,
                access.client(),
                pool,
                volume,
                snapshot.name,
                target / name,
                progress,
            )
        else:
            done = _step(
                image_transfer.export_diff,
                access.client(),
                pool,
                volume,
                snapshot.name,
                parent,
                target / name,
                progress,
            )
        files.append(
            ExportedFile(pool, volume, name, done.volume_size, done.file_size, done.sha256, done.data_bytes)
        )
    ctx.progress(count, count, f"Wrote {count} volume(s)")
    return files


# -- import --------------------------------------------------------------------------------


def _check_import(args: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(args.get("domain"), str) or not args["domain"] or "/" in args["domain"]:
        raise InvalidTaskError("domain must name the VM to import")
    check_name(args.get("snapshot_name"), InvalidTaskError)
    if not isinstance(args.get("import_path"), str):
        raise InvalidTaskError("import_path must be a path")
    return args


def sweep_lost_import(services: Any, run: tasks.TaskRecord) -> str | None:
    """Remove what an import whose node died made: the VM if it is still in state
    ``import``, and the volumes this import created (tagged with its task id)."""
    cluster = services.cluster if isinstance(services, NodeServices) else None
    access = services.storage if isinstance(services, NodeServices) else None
    if cluster is None or access is None:
        return "what it made was not checked: this node has no view of the cluster or no Ceph"
    uuid = cluster.cache.vm_uuid_by_name(str(run.args.get("domain", "")))
    record = read_vm(cluster.store.get, uuid) if uuid else None
    if record is None or record.placement.state != VMState.IMPORT:
        return None
    removed, kept = [], []
    for pool, volume in rbd_volumes(record.xml):
        try:
            if volumes.get_metadata(access.client(), pool, volume, MADE_BY) == run.id:
                volumes.remove(access.client(), pool, volume, with_snapshots=True)
                removed.append(f"{pool}/{volume}")
        except StorageError as error:
            kept.append(f"{pool}/{volume} ({error})")
    if kept:
        return f"could not remove {', '.join(kept)}; the VM {record.meta.name} was kept in state import"
    delete_vm(cluster.store, record.uuid, record.meta.name)
    written = ", ".join(removed) or "none"
    return f"removed VM {record.meta.name} (state import) and the volumes it had written: {written}"


@task_type(IMPORT_TASK, validate=_check_import, on_lost=sweep_lost_import)
def import_snapshot(
    ctx: NodeTaskContext, *, domain: str, snapshot_name: str, import_path: str, retain_snapshot: bool = True
) -> dict[str, Any]:
    """Rebuild VM ``domain`` from its exports under ``import_path`` up to ``snapshot_name``."""
    root = checked_directory(import_path, backup_roots(ctx), TaskError)
    exports = _step(chain, root, domain, snapshot_name)
    ctx.progress(0, len(exports) + 1, f"Checking {len(exports)} export(s) of VM {domain}")
    for directory, manifest in exports:
        _step(verify_files, directory, manifest)
    newest = exports[-1][1]
    access = need_storage(ctx)
    imported = {(item.pool, item.volume) for item in exports[0][1].files}
    for _, manifest in exports:  # each becomes a snapshot a rollback may return to
        disks = set(rbd_volumes(_checked_xml(ctx, manifest)[0]))
        if not disks <= imported:
            others = ", ".join(f"{p}/{v}" for p, v in sorted(disks - imported))
            raise TaskError(f"the XML of {manifest.snapshot} names volumes the export lacks: {others}")
    xml, summary = _checked_xml(ctx, newest)
    volumes_made: list[tuple[str, str]] = []
    uuid = summary.uuid
    kept = VmMeta.from_mapping({**newest.meta, "name": domain, "uuid": uuid}) or VmMeta(
        name=domain, uuid=uuid
    )
    meta = replace(kept, vcpus=summary.vcpus, memory_mib=summary.memory_mib)
    try:
        create_vm(ctx.store, meta, VmPlacement(state=VMState.IMPORT, node=ctx.run_on), xml)
    except ConflictError:
        raise TaskError(f"a VM named {domain} or with UUID {uuid} exists; nothing was imported") from None
    try:
        for step, (directory, manifest) in enumerate(exports):
            ctx.progress(
                step + 1, len(exports) + 1, f"Importing {manifest.type} snapshot {manifest.snapshot}"
            )
            for item in manifest.files:
                source = directory / item.file
                if manifest.type == FULL:
                    _step(
                        image_transfer.import_full,
                        access.client(),
                        item.pool,
                        item.volume,
                        source,
                        manifest.snapshot,
                    )
                    volumes_made.append((item.pool, item.volume))
                    _step(volumes.set_metadata, access.client(), item.pool, item.volume, MADE_BY, ctx.task_id)
                else:
                    _step(
                        image_transfer.import_diff,
                        access.client(),
                        item.pool,
                        item.volume,
                        source,
                        manifest.snapshot,
                        manifest.parent,
                    )
                ctx.check_cancelled()
        _keep_or_drop_snapshots(ctx, access, uuid, exports, retain_snapshot)
        update_placement(ctx.store, uuid, lambda p: replace(p, state=VMState.STOP))
    except BaseException:
        for pool, volume in volumes_made:
            with contextlib.suppress(StorageError):
                volumes.remove(access.client(), pool, volume, with_snapshots=True)
        with contextlib.suppress(Exception):
            delete_vm(ctx.store, uuid, domain)
        raise
    message = f"Imported VM {domain} from {len(exports)} export(s) up to snapshot {snapshot_name}"
    ctx.progress(len(exports) + 1, len(exports) + 1, message)
    return {"message": message, "volumes": [f"{p}/{v}" for p, v in volumes_made]}


def _checked_xml(ctx: NodeTaskContext, manifest: Manifest) -> tuple[str, DomainSummary]:
    """The export's XML and its summary, checked against this node's allowlist like any
    definition (an admin's: importing is an admin's action)."""
    try:
        xml, summary = parse_xml(manifest.xml, node_xml_policy(ctx), uuid=manifest.uuid)
    except (ClusterError, DomainXMLError) as error:
        raise TaskError(f"the exported XML of VM {manifest.vm} is refused: {error}") from None
    if summary.name != manifest.vm:
        raise TaskError(f"the exported XML names VM {summary.name}, not {manifest.vm}")
    return xml, summary


def _keep_or_drop_snapshots(
    ctx: NodeTaskContext, access: StorageAccess, uuid: str, exports: list, retain: bool
) -> None:
    """Record each imported snapshot as a VM snapshot, or remove their RBD snapshots."""
    for _, manifest in exports:
        if retain:
            record = VmSnapshot(
                name=manifest.snapshot,
                timestamp=manifest.taken,
                xml=manifest.xml,
                rbd_snapshots=[f"{f.pool}/{f.volume}@{manifest.snapshot}" for f in manifest.files],
                consistency=manifest.consistency or Consistency.STOPPED,
                task=ctx.task_id,
            )
            claim(ctx.store, uuid, manifest.snapshot, ctx.task_id)
            complete_snapshot(ctx.store, uuid, record)
        else:
            for item in manifest.files:
                _step(rbd_snapshots.remove, access.client(), item.pool, item.volume, manifest.snapshot)


IMPORT_EXPORT_TASKS = (export_snapshot, import_snapshot)
