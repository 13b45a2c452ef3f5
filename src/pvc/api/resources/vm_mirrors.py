"""Sending VM snapshots to another cluster, and receiving them (``/vm/<vm>/snapshot/send``,
``/vm/<vm>/snapshot/receive/*``), and mirrors (``/vm/<vm>/mirror/create|promote``), PVC v1."""

from __future__ import annotations

from flask import jsonify, request
from werkzeug.exceptions import ClientDisconnected

from pvc.api.context import caller_xml_policy, cluster, ctx
from pvc.api.errors import ApiError
from pvc.api.replies import task_accepted
from pvc.api.routes import OK_400_404, OPERATOR, Arg, RouteGroup
from pvc.api.uploads import all_parts, limit_stalls
from pvc.cluster.vm import mirror_receive, mirror_send, mirrors

group = RouteGroup("vm")
#: Bytes a batch of changed extents may carry (senders send smaller ones).
BATCH_LIMIT = 64 * 1024 * 1024
RESPONSES = {
    **OK_400_404,
    "409": "Conflict: a VM of that name exists and is not a mirror",
    "413": "Too large",
}
BLOCK_ARGS = [Arg("pool", required=True), Arg("volume", required=True), Arg("snapshot", required=True)]
CHECKSUM = Arg("checksum", help="SHA-256 (hex) of the body's data, checked before it counts")
IMAGE_CHECKSUM = Arg("checksum", help="CRC-32 (8 hex digits) of the image, checked before the volume counts")
DESTINATION_ARGS = [
    Arg(
        "destination_api_uri",
        required=True,
        help="the other cluster's API, like https://host:7370/api/v1 (one of backup.send_destinations)",
    ),
    Arg("destination_api_key", required=True, help="an operator's key on the other cluster"),
    Arg("destination_api_verify_ssl", kind=bool, default=True),
    Arg("destination_storage_pool", help="the pool for the volumes there (default: the same as here)"),
]
TASK_RESPONSES = {"202": "Accepted (a task)", "400": "Bad request", "404": "Not found", "409": "Conflict"}


@group.route(
    "/vm/<vm>/snapshot/receive/block",
    "POST",
    summary="Receive a whole volume image (raw, application/octet-stream body of exactly size bytes)",
    role=OPERATOR,
    args=[*BLOCK_ARGS, Arg("size", kind=int, required=True, minimum=1), IMAGE_CHECKSUM],
    responses=RESPONSES,
    streams_body=True,
)
def vm_receive_image(vm: str, pool: str, volume: str, snapshot: str, size: int, checksum: str | None):
    declared = request.content_length
    if declared is not None and declared != size:
        raise ApiError(f"The body has {declared} bytes; size says {size}")
    request.max_content_length = size + 1
    limit_stalls(request.environ, mirror_receive.STALL_LIMIT)
    context = ctx()
    try:
        message, digest = mirror_receive.receive_block(
            context.cluster, context.storage, vm, pool, volume, snapshot, size, request.stream, checksum
        )
    except ClientDisconnected:  # the sender stalled (STALL_LIMIT) or went away
        raise ApiError(f"The image of {pool}/{volume} stopped arriving; nothing of it was kept") from None
    return jsonify(message=message, crc32=digest)


@group.route(
    "/vm/<vm>/snapshot/receive/block",
    "PUT",
    summary="Receive a batch of changed extents of a mirror's volume (multipart parts: offset, length, data)",
    role=OPERATOR,
    args=[
        *BLOCK_ARGS,
        Arg("source_snapshot", required=True),
        CHECKSUM,
        Arg("send", help="names the send the batch belongs to: its first batch starts from source_snapshot"),
        Arg("batch", kind=int, minimum=0, help="the batch's place in its send (0: the first)"),
    ],
    responses=RESPONSES,
    streams_body=True,
)
def vm_receive_extents(
    vm: str,
    pool: str,
    volume: str,
    snapshot: str,
    source_snapshot: str,
    checksum: str | None,
    send: str | None,
    batch: int | None,
):
    request.max_content_length = BATCH_LIMIT + 1024 * 1024
    limit_stalls(request.environ, mirror_receive.STALL_LIMIT)
    parts = all_parts(request.stream, request.content_type, BATCH_LIMIT)
    context = ctx()
    message = mirror_receive.receive_batch(
        context.cluster,
        context.storage,
        vm,
        pool,
        volume,
        snapshot,
        source_snapshot,
        parts,
        checksum,
        send or "",
        batch,
    )
    return jsonify(message=message)


@group.route(
    "/vm/<vm>/snapshot/receive/block",
    "PATCH",
    summary="Seal a received volume with its snapshot (it counts as complete from then on)",
    role=OPERATOR,
    args=BLOCK_ARGS,
    responses=RESPONSES,
)
def vm_receive_seal(vm: str, pool: str, volume: str, snapshot: str):
    context = ctx()
    return jsonify(
        message=mirror_receive.receive_seal(context.cluster, context.storage, vm, pool, volume, snapshot)
    )


@group.route(
    "/vm/<vm>/snapshot/receive/config",
    "POST",
    summary="Define or update a mirror VM from its source's detail (JSON body) at a received snapshot",
    role=OPERATOR,
    args=[Arg("snapshot", required=True), Arg("source_snapshot")],
    responses=RESPONSES,
)
def vm_receive_config(vm: str, snapshot: str, source_snapshot: str | None):
    context = ctx()
    message = mirror_receive.receive_config(
        cluster(),
        context.storage,
        vm,
        snapshot,
        request.get_json(silent=True),
        policy=caller_xml_policy(),
        disk_auth=context.vm_disk_auth,
    )
    return jsonify(message=message)


@group.route(
    "/vm/<vm>/snapshot/send",
    "POST",
    summary="Send a VM snapshot (whole, or its changes since a parent both have) to another cluster",
    role=OPERATOR,
    args=[
        Arg("snapshot_name", required=True),
        *DESTINATION_ARGS,
        Arg("incremental_parent", help="a snapshot the destination's mirror has: send only the changes"),
    ],
    responses=TASK_RESPONSES,
)
def vm_snapshot_send(
    vm: str,
    snapshot_name: str,
    destination_api_uri: str,
    destination_api_key: str,
    destination_api_verify_ssl: bool,
    incremental_parent: str | None,
    destination_storage_pool: str | None,
):
    record = mirror_send.submit_send(
        cluster(),
        vm,
        snapshot_name,
        destination_api_uri,
        destination_api_key,
        backup=ctx().backup,
        verify=destination_api_verify_ssl,
        parent=incremental_parent,
        pool=destination_storage_pool,
    )
    return task_accepted(record)


@group.route(
    "/vm/<vm>/mirror/create",
    "POST",
    summary="Snapshot a VM and send it to another cluster (whole, or the changes since a common snapshot)",
    role=OPERATOR,
    args=DESTINATION_ARGS,
    responses=TASK_RESPONSES,
)
def vm_mirror_create(
    vm: str,
    destination_api_uri: str,
    destination_api_key: str,
    destination_api_verify_ssl: bool,
    destination_storage_pool: str | None,
):
    record = mirrors.submit_create(
        cluster(),
        vm,
        destination_api_uri,
        destination_api_key,
        backup=ctx().backup,
        verify=destination_api_verify_ssl,
        pool=destination_storage_pool,
    )
    return task_accepted(record)


@group.route(
    "/vm/<vm>/mirror/promote",
    "POST",
    summary="Shut a VM down, send its last snapshot and start it on another cluster (its mirror there)",
    role=OPERATOR,
    args=[
        *DESTINATION_ARGS,
        Arg(
            "remove_on_source", kind=bool, default=False, help="remove the VM here (else it becomes a mirror)"
        ),
    ],
    responses=TASK_RESPONSES,
)
def vm_mirror_promote(
    vm: str,
    destination_api_uri: str,
    destination_api_key: str,
    destination_api_verify_ssl: bool,
    destination_storage_pool: str | None,
    remove_on_source: bool,
):
    record = mirrors.submit_promote(
        cluster(),
        vm,
        destination_api_uri,
        destination_api_key,
        backup=ctx().backup,
        verify=destination_api_verify_ssl,
        pool=destination_storage_pool,
        remove_on_source=remove_on_source,
    )
    return task_accepted(record)
