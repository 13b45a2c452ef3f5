"""Ceph pools, RBD volumes (with image upload) and their snapshots."""

from __future__ import annotations

from flask import jsonify, request

from pvc.api.args import confirmed
from pvc.api.context import cluster, ctx
from pvc.api.errors import ApiError
from pvc.api.routes import CONFIRM, OK_400, OK_400_404, OK_404, OPERATOR, Arg, RouteGroup
from pvc.api.uploads import MULTIPART_SLACK, file_chunks
from pvc.cluster.storage import queries
from pvc.cluster.storage.actions import POOL_TIERS
from pvc.cluster.storage.upload import IMAGE_FORMATS, size_limit, upload

group = RouteGroup("storage")


def _one(item: dict) -> list[dict]:
    """Element GETs answer a list with the one element, as PVC does."""
    return [item]


# --- pools -----------------------------------------------------------------------------------


@group.route("/storage/ceph/pool", summary="List pools", args=[Arg("limit")])
def pool_list(limit: str | None):
    return jsonify(queries.list_pools(cluster(), limit))


POOL_ARGS = [
    Arg("pgs", kind=int, required=True, minimum=1),
    Arg("replcfg", required=True, help="copies=N,mincopies=M"),
    Arg("tier", choices=POOL_TIERS),
]


@group.route(
    "/storage/ceph/pool",
    "POST",
    summary="Add an RBD pool",
    role=OPERATOR,
    args=[Arg("pool", required=True), *POOL_ARGS],
    responses=OK_400,
)
def pool_add(pool: str, pgs: int, replcfg: str, tier: str | None):
    return jsonify(message=ctx().storage_ops.add_pool(pool, pgs, replcfg, tier))


@group.route("/storage/ceph/pool/<pool>", summary="One pool", responses=OK_404)
def pool_get(pool: str):
    return jsonify(_one(queries.get_pool(cluster(), pool)))


@group.route(
    "/storage/ceph/pool/<pool>",
    "POST",
    summary="Add an RBD pool",
    role=OPERATOR,
    args=POOL_ARGS,
    responses=OK_400,
)
def pool_add_named(pool: str, pgs: int, replcfg: str, tier: str | None):
    return jsonify(message=ctx().storage_ops.add_pool(pool, pgs, replcfg, tier))


@group.route(
    "/storage/ceph/pool/<pool>",
    "PUT",
    summary="Set a pool's PG count",
    role=OPERATOR,
    args=[Arg("pgs", kind=int, required=True, minimum=1)],
    responses=OK_400_404,
)
def pool_set_pgs(pool: str, pgs: int):
    return jsonify(message=ctx().storage_ops.set_pgs(pool, pgs))


@group.route(
    "/storage/ceph/pool/<pool>",
    "DELETE",
    summary="Remove a pool and all its volumes",
    role=OPERATOR,
    args=[CONFIRM],
    responses=OK_400_404,
)
def pool_remove(pool: str, **values: str):
    context = ctx()
    queries.get_pool(context.cluster, pool)
    return jsonify(message=context.storage_ops.remove_pool(pool, confirmed(values)))


# --- volumes ---------------------------------------------------------------------------------


@group.route("/storage/ceph/volume", summary="List volumes", args=[Arg("limit"), Arg("pool")])
def volume_list(limit: str | None, pool: str | None):
    return jsonify(queries.list_volumes(cluster(), limit, pool))


SIZE_ARG = Arg("size", required=True, help="bytes, or a number with a unit: 10G, 512M ...")
FORCE_ARG = Arg("force", kind=bool, default=False, help="allow more than the pool's free space")


@group.route(
    "/storage/ceph/volume",
    "POST",
    summary="Add a volume",
    role=OPERATOR,
    args=[Arg("volume", required=True), Arg("pool", required=True), SIZE_ARG, FORCE_ARG],
    responses=OK_400,
)
def volume_add(volume: str, pool: str, size: str, force: bool):
    return jsonify(message=ctx().storage_ops.add_volume(pool, volume, size, force))


@group.route("/storage/ceph/volume/<pool>/<volume>", summary="One volume", responses=OK_404)
def volume_get(pool: str, volume: str):
    return jsonify(_one(queries.get_volume(cluster(), pool, volume)))


@group.route(
    "/storage/ceph/volume/<pool>/<volume>",
    "POST",
    summary="Add a volume",
    role=OPERATOR,
    args=[SIZE_ARG, FORCE_ARG],
    responses=OK_400,
)
def volume_add_named(pool: str, volume: str, size: str, force: bool):
    return jsonify(message=ctx().storage_ops.add_volume(pool, volume, size, force))


@group.route(
    "/storage/ceph/volume/<pool>/<volume>",
    "PUT",
    summary="Resize and/or rename a volume",
    role=OPERATOR,
    args=[Arg("new_size"), Arg("new_name"), FORCE_ARG],
    responses=OK_400_404,
)
def volume_modify(pool: str, volume: str, new_size: str | None, new_name: str | None, force: bool):
    return jsonify(message=ctx().storage_ops.modify_volume(pool, volume, new_size, new_name, force))


@group.route(
    "/storage/ceph/volume/<pool>/<volume>",
    "DELETE",
    summary="Remove a volume",
    role=OPERATOR,
    responses=OK_400_404,
)
def volume_remove(pool: str, volume: str):
    return jsonify(message=ctx().storage_ops.remove_volume(pool, volume))


@group.route(
    "/storage/ceph/volume/<pool>/<volume>/scan",
    "POST",
    summary="Refresh a volume's figures from Ceph",
    role=OPERATOR,
    responses=OK_400_404,
)
def volume_scan(pool: str, volume: str):
    return jsonify(message=ctx().storage_ops.scan_volume(pool, volume))


@group.route(
    "/storage/ceph/volume/<pool>/<volume>/clone",
    "POST",
    summary="Copy a volume into a new independent volume",
    role=OPERATOR,
    args=[Arg("new_volume", required=True), FORCE_ARG],
    responses=OK_400_404,
)
def volume_clone(pool: str, volume: str, new_volume: str, force: bool):
    return jsonify(message=ctx().storage_ops.clone_volume(pool, volume, new_volume, force))


@group.route(
    "/storage/ceph/volume/<pool>/<volume>/upload",
    "POST",
    summary="Write a disk image (multipart field 'file') into a volume, converting it to raw",
    role=OPERATOR,
    args=[Arg("image_format", required=True, choices=IMAGE_FORMATS), Arg("file_size", kind=int, minimum=0)],
    responses={**OK_400_404, "413": "The image is larger than the volume allows"},
    streams_body=True,
)
def volume_upload(pool: str, volume: str, image_format: str, file_size: int | None):
    context = ctx()
    ops = context.storage_ops
    volume_size = ops.volume_size(pool, volume)  # 404 for an unknown volume
    limit = size_limit(volume_size, image_format)
    if file_size is not None and file_size > limit:
        raise ApiError(
            f"The image ({file_size} bytes) is larger than volume {pool}/{volume} "
            f"({volume_size} bytes) allows"
        )
    if image_format == "raw" and file_size is not None:
        limit = file_size
    body_limit = limit + MULTIPART_SLACK
    declared = request.content_length
    if declared is not None and declared > body_limit:
        raise ApiError(
            f"The request body ({declared} bytes) is larger than an image for volume {pool}/{volume} "
            f"({volume_size} bytes) can be",
            413,
        )
    request.max_content_length = body_limit + 1  # a chunked body is cut off there too
    chunks = file_chunks(request.stream, request.content_type, "file", limit)
    message = upload(ops, context.state_dir, pool, volume, image_format, chunks, file_size, limit)
    return jsonify(message=message)


# --- snapshots -------------------------------------------------------------------------------


@group.route(
    "/storage/ceph/snapshot", summary="List snapshots", args=[Arg("limit"), Arg("pool"), Arg("volume")]
)
def snapshot_list(limit: str | None, pool: str | None, volume: str | None):
    return jsonify(queries.list_snapshots(cluster(), limit, pool, volume))


@group.route(
    "/storage/ceph/snapshot",
    "POST",
    summary="Take a snapshot of a volume",
    role=OPERATOR,
    args=[Arg("snapshot", required=True), Arg("volume", required=True), Arg("pool", required=True)],
    responses=OK_400_404,
)
def snapshot_add(snapshot: str, volume: str, pool: str):
    return jsonify(message=ctx().storage_ops.add_snapshot(pool, volume, snapshot))


SNAPSHOT = "/storage/ceph/snapshot/<pool>/<volume>/<snapshot>"


@group.route(SNAPSHOT, summary="One snapshot", responses=OK_404)
def snapshot_get(pool: str, volume: str, snapshot: str):
    return jsonify(_one(queries.get_snapshot(cluster(), pool, volume, snapshot)))


@group.route(SNAPSHOT, "POST", summary="Take a snapshot of a volume", role=OPERATOR, responses=OK_400_404)
def snapshot_add_named(pool: str, volume: str, snapshot: str):
    return jsonify(message=ctx().storage_ops.add_snapshot(pool, volume, snapshot))


@group.route(
    SNAPSHOT,
    "PUT",
    summary="Rename a snapshot",
    role=OPERATOR,
    args=[Arg("new_name", required=True)],
    responses=OK_400_404,
)
def snapshot_rename(pool: str, volume: str, snapshot: str, new_name: str):
    return jsonify(message=ctx().storage_ops.rename_snapshot(pool, volume, snapshot, new_name))


@group.route(SNAPSHOT, "DELETE", summary="Remove a snapshot", role=OPERATOR, responses=OK_400_404)
def snapshot_remove(pool: str, volume: str, snapshot: str):
    return jsonify(message=ctx().storage_ops.remove_snapshot(pool, volume, snapshot))


@group.route(
    f"{SNAPSHOT}/rollback",
    "POST",
    summary="Roll a volume back to a snapshot",
    role=OPERATOR,
    responses=OK_400_404,
)
def snapshot_rollback(pool: str, volume: str, snapshot: str):
    return jsonify(message=ctx().storage_ops.rollback_snapshot(pool, volume, snapshot))
