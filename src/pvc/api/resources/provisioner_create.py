"""Creating VMs from provisioner profiles (a task on the primary coordinator)."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import cluster, ctx, database
from pvc.api.replies import task_accepted
from pvc.api.routes import OK_404, OPERATOR, Arg, RouteGroup
from pvc.cluster.provisioner import status, submit

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


@group.route("/provisioner/status", summary="VM creations on record: VM, profile, state and progress")
def provisioner_status_list():
    return jsonify(status.creations(cluster()))


@group.route("/provisioner/status/<task_id>", summary="One VM creation", responses=OK_404)
def provisioner_status(task_id: str):
    return jsonify(status.creation(cluster(), task_id))
