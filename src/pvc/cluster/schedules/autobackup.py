"""Autobackup: backups of the tagged VMs with a rotation (``cluster.autobackup``, a task on
the primary; ``POST /vm/autobackup``, ``pvc vm autobackup``, and the primary's timer).

Each VM's backups lie in ``<path>/<vm>/`` as :mod:`pvc.cluster.vm.backups` writes them, and
the run keeps a state file there (``.autobackup.json``: the backups it made, oldest first,
each with its type and parent). A backup is full on a VM's first run, when forced, when the
last full backup's snapshot is gone, and once ``full_interval - 1`` incremental backups
followed the last full one; otherwise it is incremental on the last full backup, whose
snapshot is kept until the next full backup is made. Then only the newest ``full_retention``
full backups and the incremental backups built on them are kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvc.cluster.schedules.runs import Outcome, check_run_args, finish_run, submit_run, tagged_vms
from pvc.cluster.session import Cluster
from pvc.cluster.tasks.services import NodeTaskContext, node_backup
from pvc.cluster.vm.backups import backup_vm, snapshot_of
from pvc.cluster.vm.snapshot_export import checked_directory
from pvc.cluster.vm.snapshot_files import export_directory
from pvc.cluster.vm.snapshot_tasks import remove_snapshot
from pvc.config.backup import AutobackupSection
from pvc.state.vm_snapshots import read_snapshot
from pvc.state.vms import VmRecord
from pvc.tasks import TaskError, task_type

TASK = "cluster.autobackup"
STATE_FILE = ".autobackup.json"
#: Seconds each mount or unmount command may take.
COMMAND_TIMEOUT = 300.0


@dataclass(frozen=True)
class Entry:
    """One backup an autobackup run made."""

    datestring: str
    type: str
    parent: str | None = None


def submit(cluster: Cluster, *, force_full: bool = False, email_recipients: list[str] | None = None):
    """Queue ``cluster.autobackup`` on the primary (Conflict without one)."""
    return submit_run(
        cluster, run_autobackup, {"force_full": force_full, "email_recipients": email_recipients}
    )


def read_state(directory: Path) -> list[Entry]:
    """The backups recorded in a VM's state file whose directories still exist."""
    try:
        data = json.loads((directory / STATE_FILE).read_text())
        entries = [Entry(**item) for item in data.get("backups", [])]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError, AttributeError) as error:
        problem = f"{directory / STATE_FILE} is unreadable ({type(error).__name__}): fix or remove it"
        raise TaskError(problem) from None
    vm = directory.name
    return [e for e in entries if export_directory(directory.parent, vm, snapshot_of(e.datestring)).is_dir()]


def write_state(directory: Path, entries: list[Entry]) -> None:
    """Replace a VM's state file (written aside, then renamed over it)."""
    data = {"backups": [vars(entry) for entry in entries]}
    temporary = directory / f"{STATE_FILE}.new"
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, directory / STATE_FILE)


def next_is_full(
    entries: list[Entry], section: AutobackupSection, force_full: bool, parent_kept: bool
) -> bool:
    """Whether the next backup of a VM with these backups must be a full one."""
    fulls = [index for index, entry in enumerate(entries) if entry.type == "full"]
    if force_full or not fulls or not parent_kept:
        return True
    return len(entries) - 1 - fulls[-1] >= section.full_interval - 1


def expired(entries: list[Entry], retention: int) -> tuple[list[Entry], list[Entry]]:
    """(kept, removed): the newest ``retention`` full backups with the backups built on
    them are kept; the rest is removed."""
    fulls = [entry.datestring for entry in entries if entry.type == "full"]
    keep = set(fulls[-retention:])
    kept = [e for e in entries if (e.datestring if e.type == "full" else e.parent) in keep]
    return kept, [e for e in entries if e not in kept]


def _run_commands(commands: list[str], what: str) -> None:
    for command in commands:
        try:
            done = subprocess.run(
                shlex.split(command), capture_output=True, timeout=COMMAND_TIMEOUT, check=False
            )
        except (OSError, ValueError, subprocess.TimeoutExpired) as error:
            raise TaskError(f"{what} command {command!r} could not run: {type(error).__name__}") from None
        if done.returncode != 0:
            output = done.stderr.decode(errors="replace").strip()[:200]
            raise TaskError(f"{what} command {command!r} failed ({done.returncode}): {output}")


def _back_up(
    ctx: NodeTaskContext, record: VmRecord, root: Path, settings: AutobackupSection, force: bool
) -> str:
    vm = record.meta.name
    directory = root / vm
    entries = read_state(directory) if directory.is_dir() else []
    fulls = [entry for entry in entries if entry.type == "full"]
    last_full = fulls[-1] if fulls else None
    kept = last_full is not None and (
        read_snapshot(ctx.store.get, record.uuid, snapshot_of(last_full.datestring)) is not None
    )
    full = next_is_full(entries, settings, force, kept)
    parent = None if full or last_full is None else last_full.datestring
    result = backup_vm(ctx, domain=record.uuid, backup_path=str(root), incremental_parent=parent, retain=full)
    entries.append(Entry(result["datestring"], result["type"], parent))
    if full and last_full is not None:  # nothing builds on the previous full backup any more
        with contextlib.suppress(TaskError):
            remove_snapshot(ctx, domain=record.uuid, snapshot_name=snapshot_of(last_full.datestring))
    entries, removed = expired(entries, settings.full_retention)
    for entry in removed:
        shutil.rmtree(export_directory(root, vm, snapshot_of(entry.datestring)), ignore_errors=True)
    write_state(directory, entries)
    dropped = f"; removed {', '.join(e.datestring for e in removed)}" if removed else ""
    return f"{result['type']} backup {result['datestring']}{dropped}"


@task_type(TASK, validate=check_run_args)
def run_autobackup(
    ctx: NodeTaskContext, *, force_full: bool = False, email_recipients: list[str] | None = None
) -> dict[str, Any]:
    """Back up every VM with an autobackup tag (see the module)."""
    backup = node_backup(ctx)
    settings = backup.autobackup
    if settings.path is None:
        raise TaskError("autobackup has no path configured (backup.autobackup.path)")
    vms = tagged_vms(ctx, settings.tags)
    outcomes: list[Outcome] = []
    ctx.progress(0, len(vms) + 2, f"Mounting the backup storage ({len(settings.mount_commands)} commands)")
    try:
        _run_commands(settings.mount_commands, "mount")
        root = checked_directory(settings.path, tuple(backup.paths), TaskError)
        for index, (record, _tag) in enumerate(vms, start=1):
            ctx.progress(index, len(vms) + 2, f"Backing up VM {record.meta.name}")
            try:
                outcomes.append(Outcome(record.meta.name, _back_up(ctx, record, root, settings, force_full)))
            except TaskError as error:
                outcomes.append(Outcome(record.meta.name, str(error), failed=True))
    finally:
        ctx.progress(len(vms) + 1, len(vms) + 2, "Unmounting the backup storage")
        try:
            _run_commands(settings.unmount_commands, "unmount")
        except TaskError as error:  # reported with the VMs' outcomes, not instead of them
            outcomes.append(Outcome("(backup storage)", str(error), failed=True))
    return finish_run(ctx, backup, "Autobackup", outcomes, email_recipients or [], errors_only=False)


AUTOBACKUP_TASKS = (run_autobackup,)
