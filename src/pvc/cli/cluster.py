"""``pvc cluster``: status, maintenance, initialization, backup/restore and tasks."""

from __future__ import annotations

import json
from typing import IO, Any

import click

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliError, options
from pvc.cli.fault import fault
from pvc.cli.output import emit_data, emit_json, emit_lines, format_option
from pvc.cli.progress import wait_for_task
from pvc.cli.views import cluster_status_pretty, cluster_status_short, task_list_pretty, task_pretty
from pvc.client.http import segment
from pvc.client.waiters import TASK_SUCCESS

SERVER_CONFIRMATION = {"yes-i-really-mean-it": "yes"}


@click.group(name="cluster")
def cluster() -> None:
    """Manage the cluster as a whole."""


cluster.add_command(fault)


@cluster.command(name="status")
@format_option("pretty", "short", "json", "json-pretty")
def cluster_status(output_format: str) -> None:
    """Show the cluster's health, primary node, object counts and resources."""
    data = options().client().get("/status").expect(200)
    formatter = cluster_status_short if output_format == "short" else cluster_status_pretty
    emit_data(data, output_format, formatter)


@cluster.group(name="maintenance")
def maintenance() -> None:
    """Turn cluster maintenance mode on or off."""


def _set_maintenance(state: bool) -> None:
    cli = options()
    data = cli.client().post("/status", params={"state": "true" if state else "false"}).expect(200)
    cli.emit(str(data.get("message", "")) if isinstance(data, dict) else "")


@maintenance.command(name="on")
def maintenance_on() -> None:
    """Enable maintenance mode (health problems stop counting against the cluster)."""
    _set_maintenance(True)


@maintenance.command(name="off")
def maintenance_off() -> None:
    """Disable maintenance mode."""
    _set_maintenance(False)


def _message(data: Any) -> str:
    return str(data.get("message", "")) if isinstance(data, dict) else ""


@cluster.command(name="init")
@click.option(
    "-o",
    "--overwrite",
    "overwrite_flag",
    is_flag=True,
    default=False,
    help="Remove existing cluster data first.",
)
@yes_option
def cluster_init(overwrite_flag: bool, confirm_flag: bool) -> None:
    """Initialize a new cluster (the coordinators' state)."""
    cli = options()
    client = cli.client()
    if overwrite_flag:
        confirm(
            "Remove all existing cluster data from coordinators and initialize a new cluster", confirm_flag
        )
    else:
        confirm("Initialize a new cluster", confirm_flag)
    params = {**SERVER_CONFIRMATION, "overwrite": "True" if overwrite_flag else "False"}
    cli.emit(_message(client.post("/initialize", params=params).expect(200)))


def backup_dump(body: Any, source: str) -> dict[str, Any]:
    """The dump in a ``GET /backup`` body or a backup file.

    The API answers the dump as JSON text inside a JSON string (PVC v1 clients decode it twice);
    a file written by ``pvc cluster backup`` holds the dump itself. Either is accepted.
    """
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise CliError(f"{source} is not a JSON cluster backup: {exc}") from exc
    if not isinstance(body, dict):
        raise CliError(f"{source} is not a JSON cluster backup: not an object of path: value")
    return body


@cluster.command(name="backup")
@click.option(
    "-f",
    "--file",
    "filename",
    type=click.File("w"),
    default=None,
    help="Write the backup (JSON) to this file instead of stdout.",
)
def cluster_backup(filename: IO[str] | None) -> None:
    """Dump the cluster's coordinator data as JSON."""
    cli = options()
    data = backup_dump(cli.client().get("/backup").expect(200), "the API's backup")
    if filename is None:
        emit_json(data)
        return
    json.dump(data, filename)
    filename.write("\n")
    cli.note(f"Wrote the cluster backup to {filename.name}")


@cluster.command(name="restore")
@click.option(
    "-f",
    "--filename",
    "filename",
    type=click.File("r"),
    required=True,
    help="A backup file written by 'pvc cluster backup'.",
)
@yes_option
def cluster_restore(filename: IO[str], confirm_flag: bool) -> None:
    """Replace the cluster's coordinator data with a backup."""
    cli = options()
    try:
        backup = json.load(filename)
    except ValueError as exc:
        raise CliError(f"{filename.name} is not a JSON cluster backup: {exc}") from exc
    backup = backup_dump(backup, filename.name)
    client = cli.client()
    confirm(f"Replace all existing cluster data with the backup in {filename.name}", confirm_flag)
    reply = client.post("/restore", params=SERVER_CONFIRMATION, data={"cluster_data": json.dumps(backup)})
    cli.emit(_message(reply.expect(200)))


def flatten_tasks(data: Any) -> list[dict[str, Any]]:
    """``GET /tasks`` (``{active|reserved|scheduled: {worker: [task]}}``) as one list of tasks."""
    tasks: list[dict[str, Any]] = []
    if not isinstance(data, dict):
        return tasks
    for kind in ("active", "reserved", "scheduled"):
        workers = data.get(kind) or {}
        if not isinstance(workers, dict):
            continue
        for worker, jobs in sorted(workers.items()):
            for job in jobs or []:
                if not isinstance(job, dict):
                    continue
                request = job.get("request") if isinstance(job.get("request"), dict) else job
                tasks.append(
                    {
                        "type": "pending" if kind == "reserved" else kind,
                        "worker": worker,
                        "id": request.get("id"),
                        "function": request.get("name"),
                        "args": request.get("args"),
                        "kwargs": request.get("kwargs"),
                    }
                )
    return tasks


@cluster.command(name="task")
@click.argument("task_id", required=False, default=None)
@click.option(
    "--wait/--no-wait",
    "wait_flag",
    default=True,
    show_default=True,
    help="Wait for TASK_ID to finish, showing its progress.",
)
@format_option("pretty", "raw", "json", "json-pretty")
def cluster_task(task_id: str | None, wait_flag: bool, output_format: str) -> None:
    """List running and queued tasks, or show or wait for task TASK_ID."""
    cli = options()
    client = cli.client()
    if task_id is None:
        tasks = flatten_tasks(client.get("/tasks").expect(200))
        if output_format == "raw":
            emit_lines(task["id"] for task in tasks)
        else:
            emit_data(tasks, output_format, task_list_pretty)
        return
    if not wait_flag:
        data = client.get(f"/tasks/{segment(task_id)}").expect(200)
        if output_format == "raw":
            cli.emit(str(data.get("state")) if isinstance(data, dict) else "")
        else:
            emit_data(data, output_format, lambda task: task_pretty(task_id, task))
        return
    state, status = wait_for_task(cli, client, task_id)
    cli.emit(f"{state}: {status}")
    if state != TASK_SUCCESS:
        raise click.exceptions.Exit(1)
