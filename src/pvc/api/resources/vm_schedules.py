"""Autobackup and automirror runs on demand (``/vm/autobackup``, ``/vm/automirror``, PVC v1):
each queues one run on the primary, which works through the tagged VMs."""

from __future__ import annotations

from pvc.api.context import cluster
from pvc.api.errors import ApiError
from pvc.api.replies import task_accepted
from pvc.api.routes import OPERATOR, Arg, RouteGroup
from pvc.cluster.schedules import autobackup, automirror
from pvc.cluster.schedules.reports import parse_recipients

group = RouteGroup("vm")
RESPONSES = {"202": "Accepted (a task)", "400": "Bad request", "409": "Conflict: a run is going already"}
RECIPIENTS = Arg("email_recipients", help="comma-separated addresses the report is mailed to")


def _recipients(value: str | None) -> list[str] | None:
    if value is None:
        return None
    try:
        return parse_recipients(value)
    except ValueError as error:
        raise ApiError(str(error)) from None


@group.route(
    "/vm/autobackup",
    "POST",
    summary="Back up every VM with an autobackup tag now (full or incremental by the rotation)",
    role=OPERATOR,
    args=[RECIPIENTS, Arg("force_full", kind=bool, default=False, help="make every backup a full one")],
    responses=RESPONSES,
)
def vm_autobackup(email_recipients: str | None, force_full: bool):
    record = autobackup.submit(
        cluster(), force_full=force_full, email_recipients=_recipients(email_recipients)
    )
    return task_accepted(record)


@group.route(
    "/vm/automirror",
    "POST",
    summary="Send a new mirror snapshot of every VM with an automirror tag now",
    role=OPERATOR,
    args=[
        RECIPIENTS,
        Arg("email_errors_only", kind=bool, default=False, help="mail the report only when a VM failed"),
    ],
    responses=RESPONSES,
)
def vm_automirror(email_recipients: str | None, email_errors_only: bool):
    record = automirror.submit(
        cluster(), email_recipients=_recipients(email_recipients), email_errors_only=email_errors_only
    )
    return task_accepted(record)
