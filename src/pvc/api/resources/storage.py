"""Ceph storage: status, utilization, benchmark, cluster options and OSDs."""

from __future__ import annotations

from flask import jsonify

from pvc.api.args import confirmed
from pvc.api.context import cluster, ctx
from pvc.api.replies import task_accepted
from pvc.api.routes import ADMIN, CONFIRM, OK_400, OK_400_404, OPERATOR, Arg, RouteGroup
from pvc.cluster.storage import benchmark, osd_tasks, queries, reports

group = RouteGroup("storage")

TASK_RESPONSES = {"202": "Accepted (a task)", "400": "Bad request", "404": "Not found"}


@group.route("/storage", summary="Storage root (no content)")
def storage_root():
    return jsonify(message="PVC storage: see /storage/ceph")


@group.route("/storage/ceph", summary="Ceph root (no content)")
def ceph_root():
    return jsonify(
        message="PVC Ceph storage: status, utilization, benchmark, option, osd, pool, volume, snapshot"
    )


@group.route("/storage/ceph/status", summary="Ceph cluster status", responses={"200": "OK", "404": "No data"})
def ceph_status():
    return jsonify(reports.report(cluster(), "status"))


@group.route(
    "/storage/ceph/utilization",
    summary="Ceph raw and per-pool usage",
    responses={"200": "OK", "404": "No data"},
)
def ceph_utilization():
    return jsonify(reports.report(cluster(), "utilization"))


@group.route("/storage/ceph/benchmark", summary="Storage benchmark results", args=[Arg("job")])
def benchmark_list(job: str | None):
    return jsonify(benchmark.list_jobs(cluster(), job))


@group.route(
    "/storage/ceph/benchmark",
    "POST",
    summary="Run a storage benchmark on a pool (a task on the primary)",
    role=OPERATOR,
    args=[Arg("pool", required=True), Arg("name", help="job name; default timestamp and pool")],
    responses=TASK_RESPONSES,
)
def benchmark_run(pool: str, name: str | None):
    return task_accepted(benchmark.submit(cluster(), pool, name))


@group.route(
    "/storage/ceph/option",
    "POST",
    summary="Set or unset a cluster-wide OSD flag (noout ...)",
    role=OPERATOR,
    args=[Arg("option", required=True), Arg("action", required=True, choices=("set", "unset"))],
    responses=OK_400,
)
def ceph_option(option: str, action: str):
    return jsonify(message=ctx().storage_ops.set_option(option, action))


@group.route(
    "/storage/ceph/osddb",
    "POST",
    summary="Create the OSD DB volume group on a node's device (a task on that node)",
    role=ADMIN,
    args=[Arg("node", required=True), Arg("device", required=True)],
    responses=TASK_RESPONSES,
)
def osd_db_vg(node: str, device: str):
    return task_accepted(osd_tasks.submit_db_vg(cluster(), node, device))


@group.route("/storage/ceph/osd", summary="List OSDs", args=[Arg("limit", help="regular expression on ids")])
def osd_list(limit: str | None):
    return jsonify(queries.list_osds(cluster(), limit))


@group.route(
    "/storage/ceph/osd",
    "POST",
    summary="Add OSDs on a node's device (a task on that node)",
    role=ADMIN,
    args=[
        Arg("node", required=True),
        Arg("device", required=True, help="a block device path, or 'file' for a file-backed lab OSD"),
        Arg("weight", kind=float, required=True),
        Arg("ext_db_ratio", kind=float),
        Arg("ext_db_size"),
        Arg("osd_count", kind=int, minimum=1),
    ],
    responses=TASK_RESPONSES,
)
def osd_add(node: str, device: str, weight: float, **options):
    return task_accepted(osd_tasks.submit_add(cluster(), node, device, weight, **options))


def _osd(osd_id: str) -> dict:
    return queries.get_osd(cluster(), osd_id)


@group.route(
    "/storage/ceph/osd/<osdid>",
    summary="One OSD (a list of one, as every element GET)",
    responses={"200": "OK", "404": "Not found"},
)
def osd_get(osdid: str):
    return jsonify([_osd(osdid)])


@group.route(
    "/storage/ceph/osd/<osdid>",
    "POST",
    summary="Replace an OSD's device, keeping its id (a task on its node)",
    role=ADMIN,
    args=[
        Arg("new_device", required=True),
        Arg("old_device"),
        Arg("weight", kind=float),
        Arg("ext_db_ratio", kind=float),
        Arg("ext_db_size"),
        CONFIRM,
    ],
    responses=TASK_RESPONSES,
)
def osd_replace(osdid: str, new_device: str, weight: float | None, **values):
    _osd(osdid)
    return task_accepted(
        osd_tasks.submit_replace(cluster(), osdid, new_device, weight=weight, confirmed=confirmed(values))
    )


@group.route(
    "/storage/ceph/osd/<osdid>",
    "PUT",
    summary="Bring an existing OSD up again from its device (a task on its node)",
    role=ADMIN,
    args=[Arg("device", required=True)],
    responses=TASK_RESPONSES,
)
def osd_refresh(osdid: str, device: str):
    _osd(osdid)
    return task_accepted(osd_tasks.submit_refresh(cluster(), osdid, device))


@group.route(
    "/storage/ceph/osd/<osdid>",
    "DELETE",
    summary="Remove an OSD: drain, stop, purge (a task on its node)",
    role=ADMIN,
    args=[Arg("force", kind=bool, default=False), CONFIRM],
    responses=TASK_RESPONSES,
)
def osd_remove(osdid: str, force: bool, **values):
    _osd(osdid)
    return task_accepted(osd_tasks.submit_remove(cluster(), osdid, force=force, confirmed=confirmed(values)))


@group.route("/storage/ceph/osd/<osdid>/state", summary="An OSD's state", responses=OK_400_404)
def osd_state(osdid: str):
    stats = _osd(osdid)["stats"]
    return jsonify({"id": osdid, "state": stats["state"], "up": stats["up"], "in": stats["in"]})


@group.route(
    "/storage/ceph/osd/<osdid>/state",
    "POST",
    summary="Mark an OSD in or out",
    role=OPERATOR,
    args=[Arg("state", required=True, choices=("in", "out"))],
    responses=OK_400_404,
)
def osd_set_state(osdid: str, state: str):
    _osd(osdid)
    return jsonify(message=ctx().storage_ops.set_osd_state(osdid, state))
