"""What autobackup and automirror runs share: the VMs a run covers, one run at a time on
the primary, and the report at the end (task result, e-mail, failure when a VM failed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pvc import tasks
from pvc.cluster.errors import Conflict
from pvc.cluster.node.queries import running_primary
from pvc.cluster.schedules.reports import parse_recipients, send_report
from pvc.cluster.session import Cluster
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeTaskContext, need_cluster
from pvc.config.backup import BackupSection
from pvc.state.states import VMState
from pvc.state.vms import VmRecord
from pvc.tasks import InvalidTaskError, TaskError, TaskType
from pvc.tasks.views import records

#: VMs no run touches: copies of other clusters' VMs, and VMs being imported.
SKIPPED_STATES = (VMState.MIRROR, VMState.IMPORT)


@dataclass(frozen=True)
class Outcome:
    """What a run did to one VM (or why it failed to)."""

    vm: str
    message: str
    failed: bool = False


def check_run_args(args: dict[str, Any]) -> dict[str, Any]:
    """A run's arguments: its flags are booleans and its recipients addresses."""
    for flag in ("force_full", "email_errors_only"):
        if not isinstance(args.get(flag, False), bool):
            raise InvalidTaskError(f"{flag} must be true or false")
    if args.get("email_recipients") is not None:
        args = {**args, "email_recipients": parse_recipients(args["email_recipients"], InvalidTaskError)}
    return args


def active_run(source: Any, kind: TaskType) -> tasks.TaskRecord | None:
    """The unfinished task of type ``kind``, if there is one."""
    return next((r for r in records(source) if r.name == kind.name and not r.is_finished), None)


def submit_run(cluster: Cluster, kind: TaskType, args: dict[str, Any]) -> tasks.TaskRecord:
    """Queue a run of ``kind`` on the primary; Conflict (409) without one, or while a run of
    the same kind is still going."""
    node = running_primary(cluster)
    if node is None:
        raise Conflict(f"No primary coordinator is running to run {kind.name}")
    running = active_run(cluster.cache, kind)
    if running is not None:
        raise Conflict(f"{kind.name} is running already (task {running.id})")
    return task_actions.submit(cluster, kind, node, args)


def tagged_vms(ctx: NodeTaskContext, tags: list[str]) -> list[tuple[VmRecord, str]]:
    """The VMs with a tag ``<tag>`` or ``<tag>:<suffix>`` for one of ``tags``, by name, each
    with the tag that matched (mirrors and imports are skipped)."""
    found = []
    for record in sorted(need_cluster(ctx).cache.vms(), key=lambda r: r.meta.name):
        if record.placement.state in SKIPPED_STATES:
            continue
        names = [str(tag.get("name", "")) for tag in record.meta.tags if isinstance(tag, dict)]
        match = next((name for name in names if name.split(":", 1)[0] in tags), None)
        if match is not None:
            found.append((record, match))
    return found


def finish_run(
    ctx: NodeTaskContext,
    settings: BackupSection,
    title: str,
    outcomes: list[Outcome],
    recipients: list[str],
    *,
    errors_only: bool,
) -> dict[str, Any]:
    """The run's result: mailed to ``recipients`` (only when a VM failed, with
    ``errors_only``); TaskError (with the report) when a VM failed."""
    failed = [outcome for outcome in outcomes if outcome.failed]
    summary = f"{title} on {ctx.run_on}: {len(outcomes) - len(failed)} of {len(outcomes)} VMs done" + (
        f", {len(failed)} failed" if failed else ""
    )
    lines = [f"{'FAILED' if o.failed else 'done'}  {o.vm}: {o.message}" for o in outcomes]
    report = "\n".join([summary, "", *lines]) if lines else f"{summary} (no VM has the tags)"
    mail_problem = None
    if recipients and (failed or not errors_only):
        mail_problem = send_report(settings.sendmail, settings.email_from, recipients, summary, report)
    if mail_problem:
        report += f"\n\nThe report was not mailed: {mail_problem}"
    ctx.progress(1, 1, summary)
    if failed:
        raise TaskError(report)
    return {
        "message": report,
        "vms": [{"vm": o.vm, "result": o.message} for o in outcomes],
        "mailed": bool(recipients) and not mail_problem and (bool(failed) or not errors_only),
    }
