"""Provisioner templates: system, network (with VNIs) and storage (with disks)."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import database
from pvc.api.routes import OK_400, OK_400_404, OK_404, OPERATOR, Arg, RouteGroup
from pvc.cluster.provisioner import templates
from pvc.cluster.provisioner.templates import DiskSettings, SystemSettings

group = RouteGroup("provisioner")
LIMIT = Arg("limit", help="names matching this regular expression")

SYSTEM_ARGS = [
    Arg("vcpus", kind=int, help="vCPUs"),
    Arg("vram", kind=int, help="memory in MiB"),
    Arg("serial", kind=bool, help="a serial console"),
    Arg("vnc", kind=bool, help="a VNC console"),
    Arg("vnc_bind", help="the address VNC listens on"),
    Arg("node_limit", help="comma-separated nodes the VM may run on"),
    Arg("node_selector", help="how a node is chosen (mem, memprov, vcpus, vms, load, none)"),
    Arg("node_autostart", kind=bool, help="start the VM when its node becomes ready"),
    Arg("migration_method", help="live, shutdown or none"),
    Arg("migration_max_downtime", kind=int, help="the longest pause of a live migration (ms)"),
]


def _required(args: list[Arg], *names: str) -> list[Arg]:
    return [
        Arg(a.name, kind=a.kind, required=a.name in names, help=a.help, many=a.many, default=a.default)
        for a in args
    ]


@group.route("/provisioner/template", summary="Every template", args=[LIMIT])
def list_all(limit: str | None = None):
    with database().session() as session:
        return jsonify(templates.all_templates(session, limit))


def _per_kind(kind: str) -> None:
    """The routes every kind of template has: list, show, remove."""

    def list_kind(limit: str | None = None):
        with database().session() as session:
            return jsonify(templates.list_templates(session, kind, limit))

    def get_one(template: str):
        with database().session() as session:
            return jsonify([templates.get_template(session, kind, template)])

    def remove(template: str):
        with database().session() as session:
            return jsonify(message=templates.remove_template(session, kind, template))

    for handler in (list_kind, get_one, remove):
        handler.__name__ = f"{handler.__name__}_{kind}"
    path = f"/provisioner/template/{kind}"
    group.route(path, summary=f"{kind.capitalize()} templates", args=[LIMIT])(list_kind)
    group.route(f"{path}/<template>", summary=f"One {kind} template", responses=OK_404)(get_one)
    group.route(
        f"{path}/<template>",
        "DELETE",
        summary=f"Remove a {kind} template (not one a profile uses)",
        role=OPERATOR,
        responses=OK_400_404,
    )(remove)


for _kind in templates.KINDS:
    _per_kind(_kind)


@group.route(
    "/provisioner/template/system",
    "POST",
    summary="Add a system template",
    role=OPERATOR,
    args=[Arg("name", required=True), *_required(SYSTEM_ARGS, "vcpus", "vram", "serial", "vnc")],
    responses=OK_400,
)
def add_system(name: str, **settings):
    with database().session() as session:
        return jsonify(message=templates.add_system(session, name, SystemSettings(**settings)))


@group.route(
    "/provisioner/template/system/<template>",
    "POST",
    summary="Add a system template (named in the path)",
    role=OPERATOR,
    args=_required(SYSTEM_ARGS, "vcpus", "vram", "serial", "vnc"),
    responses=OK_400,
)
def add_system_named(template: str, **settings):
    return add_system(template, **settings)


@group.route(
    "/provisioner/template/system/<template>",
    "PUT",
    summary="Change a system template",
    role=OPERATOR,
    args=SYSTEM_ARGS,
    responses=OK_400_404,
)
def modify_system(template: str, **settings):
    with database().session() as session:
        return jsonify(message=templates.modify_system(session, template, SystemSettings(**settings)))


@group.route(
    "/provisioner/template/network",
    "POST",
    summary="Add a network template",
    role=OPERATOR,
    args=[Arg("name", required=True), Arg("mac_template", help="MAC addresses: {prefix}, {vmid}, {netid}")],
    responses=OK_400,
)
def add_network(name: str, mac_template: str | None = None):
    with database().session() as session:
        return jsonify(message=templates.add_network(session, name, mac_template))


@group.route(
    "/provisioner/template/network/<template>",
    "POST",
    summary="Add a network template (named in the path)",
    role=OPERATOR,
    args=[Arg("mac_template")],
    responses=OK_400,
)
def add_network_named(template: str, mac_template: str | None = None):
    return add_network(template, mac_template)


@group.route(
    "/provisioner/template/network/<template>/net", summary="A network template's VNIs", responses=OK_404
)
def list_vnis(template: str):
    with database().session() as session:
        return jsonify(templates.list_network_vnis(session, template))


@group.route(
    "/provisioner/template/network/<template>/net",
    "POST",
    summary="Add a VNI to a network template",
    role=OPERATOR,
    args=[Arg("vni", kind=int, required=True), Arg("permit_duplicate", kind=bool, default=False)],
    responses=OK_400_404,
)
def add_vni(template: str, vni: int, permit_duplicate: bool = False):
    with database().session() as session:
        return jsonify(message=templates.add_network_vni(session, template, vni, permit_duplicate))


@group.route(
    "/provisioner/template/network/<template>/net/<vni>",
    "POST",
    summary="Add a VNI (in the path) to a network template",
    role=OPERATOR,
    args=[Arg("permit_duplicate", kind=bool, default=False)],
    responses=OK_400_404,
)
def add_vni_named(template: str, vni: str, permit_duplicate: bool = False):
    with database().session() as session:
        return jsonify(message=templates.add_network_vni(session, template, vni, permit_duplicate))


@group.route(
    "/provisioner/template/network/<template>/net/<vni>", summary="One VNI of a template", responses=OK_404
)
def get_vni(template: str, vni: str):
    with database().session() as session:
        return jsonify([templates.get_network_vni(session, template, vni)])


@group.route(
    "/provisioner/template/network/<template>/net/<vni>",
    "DELETE",
    summary="Remove a VNI from a network template",
    role=OPERATOR,
    responses=OK_404,
)
def remove_vni(template: str, vni: str):
    with database().session() as session:
        return jsonify(message=templates.remove_network_vni(session, template, vni))


@group.route(
    "/provisioner/template/storage",
    "POST",
    summary="Add a storage template",
    role=OPERATOR,
    args=[Arg("name", required=True)],
    responses=OK_400,
)
def add_storage(name: str):
    with database().session() as session:
        return jsonify(message=templates.add_storage(session, name))


@group.route(
    "/provisioner/template/storage/<template>",
    "POST",
    summary="Add a storage template (named in the path)",
    role=OPERATOR,
    responses=OK_400,
)
def add_storage_named(template: str):
    return add_storage(template)


DISK_ARGS = [
    Arg("pool", required=True, help="the Ceph pool of the disk's volume"),
    Arg("source_volume", help="a volume of the pool to copy, or volume@snapshot to clone (copy-on-write)"),
    Arg("disk_size", kind=int, help="size in GB (a clone is grown to it)"),
    Arg("filesystem", help="a filesystem to make on it"),
    Arg("filesystem_arg", many=True, help="an argument of mkfs (repeatable)"),
    Arg("mountpoint", help="where the install script mounts it"),
]


@group.route(
    "/provisioner/template/storage/<template>/disk", summary="A storage template's disks", responses=OK_404
)
def list_disks(template: str):
    with database().session() as session:
        return jsonify(templates.list_storage_disks(session, template))


def _disk(**settings) -> DiskSettings:
    args = tuple(settings.pop("filesystem_arg", None) or ())
    return DiskSettings(filesystem_args=args, **settings)


@group.route(
    "/provisioner/template/storage/<template>/disk",
    "POST",
    summary="Add a disk to a storage template",
    role=OPERATOR,
    args=[Arg("disk_id", required=True), *DISK_ARGS],
    responses=OK_400_404,
)
def add_disk(template: str, disk_id: str, **settings):
    with database().session() as session:
        return jsonify(message=templates.add_storage_disk(session, template, disk_id, _disk(**settings)))


@group.route(
    "/provisioner/template/storage/<template>/disk/<disk_id>",
    "POST",
    summary="Add a disk (named in the path) to a storage template",
    role=OPERATOR,
    args=DISK_ARGS,
    responses=OK_400_404,
)
def add_disk_named(template: str, disk_id: str, **settings):
    return add_disk(template, disk_id, **settings)


@group.route("/provisioner/template/storage/<template>/disk/<disk_id>", summary="One disk", responses=OK_404)
def get_disk(template: str, disk_id: str):
    with database().session() as session:
        return jsonify([templates.get_storage_disk(session, template, disk_id)])


@group.route(
    "/provisioner/template/storage/<template>/disk/<disk_id>",
    "DELETE",
    summary="Remove a disk from a storage template",
    role=OPERATOR,
    responses=OK_404,
)
def remove_disk(template: str, disk_id: str):
    with database().session() as session:
        return jsonify(message=templates.remove_storage_disk(session, template, disk_id))
