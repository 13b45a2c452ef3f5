"""VMs: list, define, modify, remove, metadata, tags, state, node, console, rename, devices, locks."""

from __future__ import annotations

from flask import Response, jsonify

from pvc import tasks
from pvc.api.context import ApiContext, ctx
from pvc.api.routes import OPERATOR, Arg, RouteGroup
from pvc.cluster import vm_actions, vm_devices, vm_locks, vms
from pvc.cluster.errors import ClusterError, NotFoundError
from pvc.state import paths
from pvc.state.states import VM_REQUESTABLE, MigrationMethod, Selector

group = RouteGroup("vm")

SELECTORS = tuple(Selector)
METHODS = tuple(MigrationMethod)
OK_400_404 = {"200": "OK", "400": "Bad request", "404": "Not found"}
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


def _settled(context: ApiContext, uuid: str, *names: str) -> None:
    """Wait until the cache shows this request's writes to the VM (and name index entries)."""
    name_paths = [paths.domain_name(name) for name in names]
    context.settle(paths.domain(uuid), paths.domain_state(uuid), paths.domain_xml(uuid), *name_paths)


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
    views = ctx().vm_views
    return _json(views.render(views.records(**filters)))


def _define(xml: str, **options):
    context = ctx()
    uuid, message = vms.define(
        context.store, context.cache, xml, default_selector=context.vm_selector, **options
    )
    _settled(context, uuid)
    return jsonify(message=message)


@group.route(
    "/vm", "POST", summary="Define a VM from XML", role=OPERATOR, args=DEFINE_ARGS, responses=OK_400_404
)
def vm_define(xml: str, **options):
    return _define(xml, **options)


@group.route("/vm/<vm>", summary="One VM", responses={"200": "OK", "404": "Not found"})
def vm_get(vm: str):
    context = ctx()
    record = vms.resolve(context.cache, vm)
    body = context.vm_views.render_one(record.uuid)
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
    _, summary = vms.parse_xml(xml)
    if summary.name != vm:
        raise ClusterError(f"the XML names the VM '{summary.name}', not '{vm}'")
    return _define(xml, **options)


@group.route(
    "/vm/<vm>",
    "PUT",
    summary="Replace a VM's XML, optionally restarting it",
    role=OPERATOR,
    args=[Arg("xml", required=True), Arg("restart", kind=bool, default=False)],
    responses=OK_400_404,
)
def vm_modify(vm: str, xml: str, restart: bool):
    context = ctx()
    before = vms.modify(context.store, context.cache, vm, xml)
    message = f"Modified VM '{before.meta.name}'"
    if restart and before.placement.running_on:
        vm_actions.request_state(context.store, context.cache, before.uuid, "restart")
        message += "; restarting it"
    elif before.placement.running_on:
        message += "; the change applies at its next start"
    _settled(context, before.uuid)
    return jsonify(message=message)


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
    record = vms.resolve(context.cache, vm)
    message = vm_actions.remove(
        context.store,
        context.cache,
        record.uuid,
        delete_disks=delete_disks,
        storage=context.storage_ops if delete_disks else None,
    )
    _settled(context, record.uuid, record.meta.name)
    return jsonify(message=message)


@group.route("/vm/<vm>/meta", summary="A VM's placement rules", responses={"200": "OK", "404": "Not found"})
def vm_get_meta(vm: str):
    meta = vms.resolve(ctx().cache, vm).meta
    return jsonify(
        {
            "name": meta.name,
            "node_limit": meta.node_limit,
            "node_selector": meta.node_selector,
            "node_autostart": str(meta.node_autostart),
            "migration_method": meta.migration_method,
            "migration_max_downtime": meta.migration_max_downtime,
        }
    )


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
    context = ctx()
    message = vms.set_meta(context.store, context.cache, vm, **options)
    _settled(context, vms.resolve(context.cache, vm).uuid)
    return jsonify(message=message)


@group.route("/vm/<vm>/tags", summary="A VM's tags", responses={"200": "OK", "404": "Not found"})
def vm_get_tags(vm: str):
    record = vms.resolve(ctx().cache, vm)
    return jsonify({"name": record.meta.name, "tags": record.meta.tags})


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
    context = ctx()
    message = vms.change_tag(context.store, context.cache, vm, action, tag, protected)
    _settled(context, vms.resolve(context.cache, vm).uuid)
    return jsonify(message=message)


@group.route("/vm/<vm>/state", summary="A VM's state", responses={"200": "OK", "404": "Not found"})
def vm_get_state(vm: str):
    record = vms.resolve(ctx().cache, vm)
    return jsonify({"name": record.meta.name, "state": record.placement.state})


@group.route(
    "/vm/<vm>/state",
    "POST",
    summary="Start, restart, shut down, stop or disable a VM",
    role=OPERATOR,
    args=[
        Arg("state", required=True, choices=tuple(VM_REQUESTABLE)),
        Arg("force", kind=bool, default=False),
        Arg("wait", kind=bool, default=False),
    ],
    responses=OK_400_404,
)
def vm_set_state(vm: str, state: str, force: bool, wait: bool):
    context = ctx()
    record = vms.resolve(context.cache, vm)
    message = vm_actions.request_state(context.store, context.cache, record.uuid, state, force=force)
    _settled(context, record.uuid)
    if wait:
        vm_actions.wait_for(
            context.cache,
            record.uuid,
            vm_actions.state_done(state),
            what=f"VM '{record.meta.name}' to {state}",
        )
        message += ": done"
    return jsonify(message=message)


@group.route(
    "/vm/<vm>/node", summary="A VM's node and last node", responses={"200": "OK", "404": "Not found"}
)
def vm_get_node(vm: str):
    record = vms.resolve(ctx().cache, vm)
    return jsonify(
        {"name": record.meta.name, "node": record.placement.node, "last_node": record.placement.last_node}
    )


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
    responses=OK_400_404,
)
def vm_set_node(vm: str, action: str, node: str | None, force: bool, wait: bool, force_live: bool):
    context = ctx()
    record = vms.resolve(context.cache, vm)
    message, target = vm_actions.request_node(
        context.store,
        context.cache,
        record.uuid,
        action,
        node=node,
        force=force,
        force_live=force_live,
        default_selector=context.vm_selector,
    )
    _settled(context, record.uuid)
    if wait:
        vm_actions.wait_for(
            context.cache,
            record.uuid,
            vm_actions.node_done(target),
            what=f"VM '{record.meta.name}' to arrive on node '{target}'",
        )
        message += ": done"
    return jsonify(message=message)


@group.route(
    "/vm/<vm>/console",
    summary="The tail of a VM's serial console",
    args=[Arg("lines", kind=int, minimum=1)],
    responses={"200": "OK", "404": "Not found"},
)
def vm_console(vm: str, lines: int | None):
    return jsonify(vms.console(ctx().cache, vm, lines))


@group.route(
    "/vm/<vm>/rename",
    "POST",
    summary="Rename a stopped VM",
    role=OPERATOR,
    args=[Arg("new_name", required=True)],
    responses=OK_400_404,
)
def vm_rename(vm: str, new_name: str):
    context = ctx()
    record = vms.resolve(context.cache, vm)
    message = vms.rename(context.store, context.cache, record.uuid, new_name)
    _settled(context, record.uuid, record.meta.name, new_name)
    return jsonify(message=message)


def _device_task(vm: str, xml: str, *, attach: bool):
    context = ctx()
    record = vm_devices.submit_change(context.store, context.cache, vm, xml, attach=attach)
    return jsonify(tasks.accepted_view(record)), 202


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
    context = ctx()
    record = vm_locks.submit_flush(context.store, context.cache, vm)
    return jsonify(tasks.accepted_view(record)), 202
