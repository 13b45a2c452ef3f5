"""Pieces shared by the ``pvc vm`` commands: the DOMAIN argument, API paths, replies and tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pvc.cli.context import CliContext
from pvc.cli.progress import wait_for_task
from pvc.client.http import ApiClient, ApiResponse, segment
from pvc.client.waiters import TASK_SUCCESS

domain_argument = click.argument("domain")
F = TypeVar("F", bound=Callable[..., Any])


def wait_option(func: F) -> F:
    """``--wait/--no-wait`` (default: wait), stored as ``wait_flag``, for commands that start a task."""
    return click.option(
        "--wait/--no-wait",
        "wait_flag",
        default=True,
        show_default=True,
        help="Wait for the task to finish, showing its progress.",
    )(func)


def vm_path(domain: str, *parts: str) -> str:
    """The API path of VM ``domain`` (``/vm/<domain>``), or of one of its sub-resources."""
    return "/".join([f"/vm/{segment(domain)}", *parts])


def fetch_vm(client: ApiClient, domain: str) -> dict[str, Any]:
    """``GET /vm/{vm}``: the VM's object (the one element of the API's list)."""
    return client.get(vm_path(domain)).expect_one(f"VM {domain}")


def reply_message(data: Any) -> str:
    """The ``message`` of an API reply (empty when there is none)."""
    return str(data.get("message", "")) if isinstance(data, dict) else ""


def emit_reply(cli: CliContext, reply: ApiResponse, *statuses: int) -> None:
    """Print the message of a reply whose status is one of ``statuses`` (default 200), else raise."""
    cli.emit(reply_message(reply.expect(*(statuses or (200,)))))


def task_result(cli: CliContext, client: ApiClient, data: Any) -> tuple[str, str] | None:
    """Wait for the task a 202 reply started; ``(state, status)``, or None if the reply has no task."""
    if not isinstance(data, dict) or not data.get("task_id"):
        return None
    return wait_for_task(cli, client, str(data["task_id"]))


def run_task(cli: CliContext, client: ApiClient, reply: ApiResponse, wait_flag: bool) -> None:
    """Handle a reply that started a task: print its ID, or wait and print ``<state>: <status>``.

    A task that does not end in ``SUCCESS`` makes the command exit with status 1.
    """
    data = reply.expect(202, 200)
    if not isinstance(data, dict) or not data.get("task_id"):
        cli.emit(reply_message(data))
        return
    if not wait_flag:
        cli.emit(f"Task ID: {data['task_id']} assigned to node {data.get('run_on', 'N/A')}")
        return
    state, status = wait_for_task(cli, client, str(data["task_id"]))
    cli.emit(f"{state}: {status}")
    if state != TASK_SUCCESS:
        raise click.exceptions.Exit(1)


def cron_option(func: F) -> F:
    """``--cron``: queue the run and print nothing unless it could not be queued."""
    return click.option(
        "--cron",
        "cron_flag",
        is_flag=True,
        default=False,
        help="For cron: do not wait, and print nothing once the run is queued.",
    )(func)


def run_scheduled(
    cli: CliContext, client: ApiClient, path: str, params: dict[str, Any], wait: bool, cron: bool
) -> None:
    """Queue a scheduled run now (``POST path``) and follow it as :func:`run_task` does;
    with ``cron`` only check that it was queued (errors still print and exit non-zero)."""
    reply = client.post(path, data=params)
    if cron:
        reply.expect(202)
        return
    run_task(cli, client, reply, wait)
