"""Automirror: mirrors of the tagged VMs kept up to date (``cluster.automirror``, a task on
the primary; ``POST /vm/automirror``, ``pvc vm automirror``, and the primary's timer).

A VM tagged ``<tag>`` is mirrored to the default destination, one tagged ``<tag>:<name>``
to destination ``name`` (``backup.automirror`` in the configuration). Each run takes a
mirror snapshot of each such VM and sends it as ``pvc vm mirror create`` does (whole the
first time, then the changes since the newest common snapshot); then only the newest
``keep_snapshots`` mirror snapshots are kept, here and on the destination.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pvc.cluster.schedules.runs import Outcome, check_run_args, finish_run, submit_run, tagged_vms
from pvc.cluster.session import Cluster
from pvc.cluster.tasks.services import NodeTaskContext, node_backup
from pvc.cluster.vm.mirror_send import unverified_note
from pvc.cluster.vm.mirrors import MIRROR_PREFIX, snapshot_and_send
from pvc.cluster.vm.remote_api import RemoteApi
from pvc.cluster.vm.snapshot_tasks import remove_snapshot
from pvc.cluster.vm.snapshots import complete_snapshots
from pvc.config.backup import AutomirrorSection, MirrorDestination
from pvc.config.credentials import read_private_text
from pvc.errors import ConfigError
from pvc.state.vms import VmRecord
from pvc.tasks import TaskError, task_type

TASK = "cluster.automirror"


def submit(cluster: Cluster, *, email_recipients: list[str] | None = None, email_errors_only: bool = False):
    """Queue ``cluster.automirror`` on the primary (Conflict without one, or while one runs)."""
    args = {"email_recipients": email_recipients, "email_errors_only": email_errors_only}
    return submit_run(cluster, run_automirror, args)


def destination_of(settings: AutomirrorSection, tag: str) -> tuple[str, MirrorDestination]:
    """The destination a VM's automirror tag names (its suffix, else the default)."""
    _, _, name = tag.partition(":")
    name = name or settings.default_destination or ""
    if not name:
        raise TaskError(f"tag {tag} names no destination and there is no default_destination")
    found = settings.destinations.get(name)
    if found is None:
        raise TaskError(f"tag {tag} names destination {name!r}, which is not configured")
    return name, found


def _remote(name: str, destination: MirrorDestination) -> RemoteApi:
    try:
        key = read_private_text(
            destination.key_file, f"backup.automirror.destinations.{name}.key_file", "write the API key there"
        ).strip()
    except ConfigError as error:
        raise TaskError(str(error)) from None
    return RemoteApi(destination.uri, key, destination.verify_ssl)


def prune(ctx: NodeTaskContext, record: VmRecord, remote: RemoteApi, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` mirror snapshots of the VM, here and on the
    destination (there as tasks of its own); the names removed."""
    mirror_snapshots = [
        snap.name
        for snap in complete_snapshots(ctx.store.get, ctx.store.children, record)
        if snap.name.startswith(MIRROR_PREFIX)
    ]
    old = mirror_snapshots[:-keep] if keep else mirror_snapshots
    for name in old:
        remove_snapshot(ctx, domain=record.uuid, snapshot_name=name)
        with contextlib.suppress(TaskError):  # the destination's copy may be gone already
            remote.remove_snapshot(record.meta.name, name)
    return old


def _mirror(ctx: NodeTaskContext, record: VmRecord, tag: str, settings: AutomirrorSection) -> str:
    name, destination = destination_of(settings, tag)
    remote = _remote(name, destination)
    result = snapshot_and_send(ctx, record, remote, destination.pool, (0, 1))
    pruned = prune(ctx, record, remote, settings.keep_snapshots)
    dropped = f"; removed {', '.join(pruned)}" if pruned else ""
    sent = f"{result['type']} {result['snapshot']} to {name} ({result['bytes']} bytes)"
    return f"{sent}{dropped}{unverified_note(result)}"


@task_type(TASK, validate=check_run_args)
def run_automirror(
    ctx: NodeTaskContext, *, email_recipients: list[str] | None = None, email_errors_only: bool = False
) -> dict[str, Any]:
    """Mirror every VM with an automirror tag (see the module)."""
    backup = node_backup(ctx)
    settings = backup.automirror
    vms = tagged_vms(ctx, settings.tags)
    outcomes: list[Outcome] = []
    for index, (record, tag) in enumerate(vms):
        ctx.progress(index, len(vms) + 1, f"Mirroring VM {record.meta.name}")
        try:
            outcomes.append(Outcome(record.meta.name, _mirror(ctx, record, tag, settings)))
        except TaskError as error:
            outcomes.append(Outcome(record.meta.name, str(error), failed=True))
    return finish_run(
        ctx, backup, "Automirror", outcomes, email_recipients or [], errors_only=email_errors_only
    )


AUTOMIRROR_TASKS = (run_automirror,)
