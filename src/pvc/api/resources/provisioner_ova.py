"""OVA appliances: list, show, upload (multipart field ``file``, read as it arrives), remove."""

from __future__ import annotations

from flask import jsonify, request

from pvc.api.context import ctx, database
from pvc.api.errors import ApiError
from pvc.api.routes import OK_400, OK_404, OPERATOR, Arg, RouteGroup
from pvc.api.uploads import MULTIPART_SLACK, file_chunks
from pvc.cluster.provisioner import ova

group = RouteGroup("provisioner")
UPLOAD_ARGS = [
    Arg("pool", required=True, help="the pool the OVA's disks are written into"),
    Arg("ova_size", kind=int, required=True, minimum=1, help="the .ova file's size in bytes"),
]
UPLOAD_RESPONSES = {**OK_400, "413": "The upload is larger than ova_size"}


@group.route(
    "/provisioner/ova",
    summary="Every OVA",
    args=[Arg("limit", help="names matching this regular expression")],
)
def ova_list(limit: str | None = None):
    with database().session() as session:
        return jsonify(ova.list_ovas(session, limit))


@group.route("/provisioner/ova/<name>", summary="One OVA", responses=OK_404)
def ova_get(name: str):
    with database().session() as session:
        return jsonify([ova.get_ova(session, name)])


def _upload(name: str, pool: str, ova_size: int):
    declared = request.content_length
    if declared is not None and declared > ova_size + MULTIPART_SLACK:
        raise ApiError(
            f"The request body ({declared} bytes) is larger than ova_size ({ova_size}) allows", 413
        )
    request.max_content_length = ova_size + MULTIPART_SLACK + 1  # a chunked body is cut off there too
    chunks = file_chunks(request.stream, request.content_type, "file", ova_size)
    context = ctx()
    message = ova.import_ova(
        database(), context.storage_ops, context.state_dir, name=name, pool=pool, chunks=chunks
    )
    return jsonify(message=message)


@group.route(
    "/provisioner/ova",
    "POST",
    summary="Upload an OVA (multipart field 'file'): its disks into RBD, a system template and profile",
    role=OPERATOR,
    args=[Arg("name", required=True), *UPLOAD_ARGS],
    responses=UPLOAD_RESPONSES,
    streams_body=True,
)
def ova_upload(name: str, pool: str, ova_size: int):
    return _upload(name, pool, ova_size)


@group.route(
    "/provisioner/ova/<name>",
    "POST",
    summary="Upload OVA NAME (multipart field 'file')",
    role=OPERATOR,
    args=UPLOAD_ARGS,
    responses=UPLOAD_RESPONSES,
    streams_body=True,
)
def ova_upload_named(name: str, pool: str, ova_size: int):
    return _upload(name, pool, ova_size)


@group.route(
    "/provisioner/ova/<name>",
    "DELETE",
    summary="Remove an OVA with its volumes, its own profile and system template",
    role=OPERATOR,
    responses=OK_404,
)
def ova_remove(name: str):
    return jsonify(message=ova.remove_ova(database(), ctx().storage_ops, name))
