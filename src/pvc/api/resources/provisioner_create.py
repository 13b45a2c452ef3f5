"""Creating VMs from provisioner profiles (a task on the primary coordinator)."""

from __future__ import annotations

from pvc.api.context import cluster, ctx, database
from pvc.api.replies import task_accepted
from pvc.api.routes import OPERATOR, Arg, RouteGroup
from pvc.cluster.provisioner import submit

group = RouteGroup("provisioner")
TASK_RESPONSES = {"202": "Accepted (a task)", "400": "Bad request", "404": "Not found", "409": "Conflict"}


@group.route(
    "/provisioner/create",
    "POST",
    summary="Create a VM from a profile (the task provisioner.create on the primary)",
    role=OPERATOR,
    args=[
        Arg("name", required=True, help="the new VM's name"),
        Arg("profile", required=True),
        Arg("define_vm", kind=bool, default=True),
        Arg("start_vm", kind=bool, default=True),
        Arg("arg", many=True, help="script argument key=value (repeatable; overrides the profile's)"),
    ],
    responses=TASK_RESPONSES,
)
def provisioner_create(name: str, profile: str, define_vm: bool, start_vm: bool, arg: list[str] | None):
    context = ctx()
    record = submit.submit(
        cluster(),
        database(),
        context.provisioner,
        disk_auth=context.vm_disk_auth,
        name=name,
        profile=profile,
        define_vm=define_vm,
        start_vm=start_vm,
        arguments=arg or [],
    )
    return task_accepted(record)
