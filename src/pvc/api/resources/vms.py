"""VMs: list, define, modify, remove, metadata, tags, state, node, console, rename, devices, locks."""

from __future__ import annotations

from flask import Response, jsonify

from pvc.api.context import caller_xml_policy, cluster, ctx
from pvc.api.replies import task_accepted
from pvc.api.routes import OK_400_404, OPERATOR, Arg, RouteGroup
from pvc.api.waiting import WAIT_RESPONSES, waited
from pvc.cluster.errors import NotFoundError
from pvc.cluster.vm import actions, define, devices, locks, meta, mirror_receive, queries
from pvc.cluster.vm.rules import MIGRATION_METHODS as METHODS
from pvc.cluster.vm.rules import REQUESTABLE_STATES, SELECTORS

group = RouteGroup("vm")

DEFINE_ARGS = [
    Arg("xml", required=True, help="libvirt domain XML"),
    Arg("node", help="node to assign; default chosen by the selector"),
    Arg("limit", help="comma-separated nodes the VM may run on"),
    Arg("selector", choices=SELECTORS, default="none"),
    Arg("autostart", kind=bool, default=False),
    Arg("migration_method", choices=METHODS, default="none"),
    Arg("migration_max_downtime", kind=int, default=300, minimum=1),
    Arg("user_tags", many=True),
    Arg("protected_tags", many=True),
]


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


@group.route(
    "/vm",
    summary="List VMs",
    args=[
        Arg("limit", help="regular expression on names or UUIDs (^ and $ anchor it)"),
        Arg("node"),
        Arg("state"),
        Arg("tag"),
        Arg("negate", kind=bool, default=False, help="invert the node, state and tag filters"),
    ],
)
def vm_list_vms(**filters: str | bool | None):
    listing = ctx().vm_listing
    return _json(listing.render(listing.records(**filters)))


def _define(xml: str, **options):
    context = ctx()
    _, message = define.define(
        context.cluster, xml, policy=caller_xml_policy(), default_selector=context.vm_selector, **options
    )
    return jsonify(message=message)


@group.route(
    "/vm", "POST", summary="Define a VM from XML", role=OPERATOR, args=DEFINE_ARGS, responses=OK_400_404
)
def vm_define(xml: str, **options):
    return _define(xml, **options)


@group.route("/vm/<vm>", summary="One VM", responses={"200": "OK", "404": "Not found"})
def vm_get(vm: str):
    context = ctx()
    record = queries.resolve(context.cluster, vm)
    body = context.vm_listing.render_one(record.uuid)
    if body is None:
        raise NotFoundError(f"VM '{vm}' not found")
    return _json(body)


@group.route(
    "/vm/<vm>",
    "POST",
    summary="Define a VM from XML (its name must match)",
    role=OPERATOR,
    args=DEFINE_ARGS,
    responses=OK_400_404,
)
def vm_define_named(vm: str, xml: str, **options):
    return _define(xml, name=vm, **options)


@group.route(
    "/vm/<vm>",
    "PUT",
    summary="Replace a VM's XML, optionally restarting it",
    role=OPERATOR,
    args=[Arg("xml", required=True), Arg("restart", kind=bool, default=False)],
    responses=OK_400_404,
)
def vm_modify(vm: str, xml: str, restart: bool):
    return jsonify(message=define.modify(cluster(), vm, xml, policy=caller_xml_policy(), restart=restart))


@group.route(
    "/vm/<vm>",
    "DELETE",
    summary="Remove a VM (stopping it first)",
    role=OPERATOR,
    args=[Arg("delete_disks", kind=bool, default=False)],
    responses=OK_400_404,
)
def vm_remove(vm: str, delete_disks: bool):
    context = ctx()
    storage = context.storage_ops if delete_disks else None
    return jsonify(message=actions.remove(context.cluster, vm, delete_disks=delete_disks, storage=storage))


@group.route("/vm/<vm>/meta", summary="A VM's placement rules", responses={"200": "OK", "404": "Not found"})
def vm_get_meta(vm: str):
    return jsonify(queries.meta_view(cluster(), vm))


@group.route(
    "/vm/<vm>/meta",
    "POST",
    summary="Change a VM's placement rules or profile",
    role=OPERATOR,
    args=[
        Arg("limit", help="comma-separated nodes; empty clears the limit"),
        Arg("selector", choices=SELECTORS),
        Arg("autostart", kind=bool),
        Arg("profile"),
        Arg("migration_method", choices=METHODS),
        Arg("migration_max_downtime", kind=int, minimum=1),
    ],
    responses=OK_400_404,
)
def vm_set_meta(vm: str, **options):
    return jsonify(message=meta.set_meta(cluster(), vm, **options))


@group.route("/vm/<vm>/tags", summary="A VM's tags", responses={"200": "OK", "404": "Not found"})
def vm_get_tags(vm: str):
    return jsonify(queries.tags_view(cluster(), vm))


@group.route(
    "/vm/<vm>/tags",
    "POST",
    summary="Add or remove a tag",
    role=OPERATOR,
    args=[
        Arg("action", required=True, choices=("add", "remove")),
        Arg("tag", required=True),
        Arg("protected", kind=bool, default=False),
    ],
    responses=OK_400_404,
)
def vm_change_tag(vm: str, action: str, tag: str, protected: bool):
    return jsonify(message=meta.change_tag(cluster(), vm, action, tag, protected))


@group.route("/vm/<vm>/state", summary="A VM's state", responses={"200": "OK", "404": "Not found"})
def vm_get_state(vm: str):
    return jsonify(queries.state_view(cluster(), vm))


@group.route(
    "/vm/<vm>/state",
    "POST",
    summary="Start, restart, shut down, stop or disable a VM",
    role=OPERATOR,
    args=[
        Arg("state", required=True, choices=REQUESTABLE_STATES),
        Arg("force", kind=bool, default=False),
        Arg("wait", kind=bool, default=False),
    ],
    responses={**OK_400_404, **WAIT_RESPONSES},
)
def vm_set_state(vm: str, state: str, force: bool, wait: bool):
    context = ctx()

    def change(wait: bool, timeout: float) -> str:
        def request() -> str:
            return actions.request_state(context.cluster, vm, state, force=force, wait=wait, timeout=timeout)

        if not force:
            return request()
        # a mirror taken over starts from its last complete snapshot, whatever a cut-off send
        # wrote, and never while a send still writes it
        return mirror_receive.take_over(context.cluster, context.storage, vm, request)

    return waited(ctx().wait_gate, wait, change, poll=f"/vm/{vm}/state")


@group.route(
    "/vm/<vm>/node", summary="A VM's node and last node", responses={"200": "OK", "404": "Not found"}
)
def vm_get_node(vm: str):
    return jsonify(queries.node_view(cluster(), vm))


@group.route(
    "/vm/<vm>/node",
    "POST",
    summary="Migrate, unmigrate or move a VM",
    role=OPERATOR,
    args=[
        Arg("action", required=True, choices=("migrate", "unmigrate", "move")),
        Arg("node", help="target node; default chosen by the VM's selector"),
        Arg("force", kind=bool, default=False, help="migrate a VM that is already migrated"),
        Arg("wait", kind=bool, default=False),
        Arg("force_live", kind=bool, default=False, help="live migration only; never shut the VM down"),
    ],
    responses={**OK_400_404, **WAIT_RESPONSES},
)
def vm_set_node(vm: str, action: str, node: str | None, force: bool, wait: bool, force_live: bool):
    context = ctx()

    def change(wait: bool, timeout: float) -> str:
        return actions.request_node(
            context.cluster,
            vm,
            action,
            node=node,
            force=force,
            force_live=force_live,
            wait=wait,
            timeout=timeout,
            default_selector=context.vm_selector,
        )

    return waited(context.wait_gate, wait, change, poll=f"/vm/{vm}/node")


@group.route(
    "/vm/<vm>/console",
    summary="The tail of a VM's serial console",
    args=[Arg("lines", kind=int, minimum=1)],
    responses={"200": "OK", "404": "Not found"},
)
def vm_console(vm: str, lines: int | None):
    return jsonify(queries.console(cluster(), vm, lines))


@group.route(
    "/vm/<vm>/rename",
    "POST",
    summary="Rename a stopped VM",
    role=OPERATOR,
    args=[Arg("new_name", required=True)],
    responses=OK_400_404,
)
def vm_rename(vm: str, new_name: str):
    return jsonify(message=define.rename(cluster(), vm, new_name))


def _device_task(vm: str, xml: str, *, attach: bool):
    record = devices.submit_change(cluster(), vm, xml, policy=caller_xml_policy(), attach=attach)
    return task_accepted(record)


DEVICE_ARGS = [Arg("xml", required=True, help="one <disk> or <interface> element")]
DEVICE_RESPONSES = {"202": "Accepted (a task)", "400": "Bad request", "404": "Not found"}


@group.route(
    "/vm/<vm>/device",
    "POST",
    summary="Hot-attach a disk or NIC to a running VM (a task on its node)",
    role=OPERATOR,
    args=DEVICE_ARGS,
    responses=DEVICE_RESPONSES,
)
def vm_attach_device(vm: str, xml: str):
    return _device_task(vm, xml, attach=True)


@group.route(
    "/vm/<vm>/device",
    "DELETE",
    summary="Hot-detach a disk or NIC from a running VM (a task on its node)",
    role=OPERATOR,
    args=DEVICE_ARGS,
    responses=DEVICE_RESPONSES,
)
def vm_detach_device(vm: str, xml: str):
    return _device_task(vm, xml, attach=False)


@group.route(
    "/vm/<vm>/locks",
    "POST",
    summary="Free the RBD locks of a stopped VM's disks (a task on the primary)",
    role=OPERATOR,
    responses={"202": "Accepted (a task)", "400": "Bad request", "404": "Not found"},
)
def vm_flush_locks(vm: str):
    return task_accepted(locks.submit_flush(cluster(), vm))
