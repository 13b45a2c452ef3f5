"""The metadata service's HTTP side: what a VM may ask about itself.

Paths, under ``/latest`` or a dated version (``/2009-04-04``), as cloud-init's EC2
datasource asks them: ``meta-data/`` (the list of keys), ``meta-data/<key>`` and
``user-data`` (the profile's userdata with ``{vm_name}``, ``{vm_uuid}`` and ``{profile}``
filled in). A VM is known by the address it asks from (see :mod:`pvc.cluster.provisioner.requester`);
it only ever learns about itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from flask import Flask, Response, request

from pvc.cluster.provisioner.documents import render_userdata
from pvc.cluster.provisioner.profiles import userdata_of
from pvc.cluster.provisioner.requester import Requester, find_requester
from pvc.cluster.provisioner.session import Database
from pvc.cluster.session import Cluster
from pvc.errors import PVCError
from pvc.metadata.limits import SourceLimiter

log = logging.getLogger(__name__)

#: ``latest`` or an EC2 API date.
VERSION = re.compile(r"latest|\d{4}-\d{2}-\d{2}")
#: The meta-data keys and their values.
META_DATA: dict[str, Callable[[Requester], str]] = {
    "instance-id": lambda vm: vm.uuid,
    "hostname": lambda vm: vm.name,
    "local-hostname": lambda vm: vm.name,
    "local-ipv4": lambda vm: vm.address,
    "mac": lambda vm: vm.mac,
    "profile": lambda vm: vm.profile,
}


def render(userdata: str, vm: Requester) -> str:
    """``userdata`` with the placeholders filled in for ``vm``."""
    return render_userdata(userdata, {"{vm_name}": vm.name, "{vm_uuid}": vm.uuid, "{profile}": vm.profile})


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def create_metadata_app(
    cluster: Cluster,
    database: Database | None,
    wire_mac: Callable[[str], str | None] | None = None,
    *,
    database_off: bool = False,
    limiter: SourceLimiter | None = None,
) -> Flask:
    """The metadata service over ``cluster`` (VMs, leases) and ``database`` (userdata);
    ``wire_mac`` finds the MAC an address sends from (default: the neighbour table).
    Without a database, user-data is 404 when the cluster runs none (``database_off``),
    else 503: cloud-init takes a 404 for "no user-data" for good. Each source address is
    held to ``limiter`` (default :class:`~pvc.metadata.limits.SourceLimiter`'s rates)."""
    app = Flask("pvc.metadata")
    lookup = {"wire_mac": wire_mac} if wire_mac is not None else {}
    limiter = limiter or SourceLimiter()

    @app.before_request
    def limit() -> Response | None:
        if limiter.allow(request.remote_addr or ""):
            return None
        return _text("too many requests; slow down\n", 429)

    def requester() -> Requester | None:
        return find_requester(cluster.cache, request.remote_addr or "", **lookup)

    @app.get("/<version>/meta-data")
    @app.get("/<version>/meta-data/")
    def meta_data_keys(version: str) -> Response:
        if not VERSION.fullmatch(version):
            return _text("not found\n", 404)
        if requester() is None:
            return _unknown()
        return _text("".join(f"{key}\n" for key in META_DATA))

    @app.get("/<version>/meta-data/<key>")
    def meta_data(version: str, key: str) -> Response:
        vm = requester()
        if not VERSION.fullmatch(version) or key not in META_DATA:
            return _text("not found\n", 404)
        if vm is None:
            return _unknown()
        return _text(META_DATA[key](vm))

    @app.get("/<version>/user-data")
    def user_data(version: str) -> Response:
        vm = requester()
        if not VERSION.fullmatch(version):
            return _text("not found\n", 404)
        if vm is None:
            return _unknown()
        if not vm.profile or (database is None and database_off):
            return _text("no userdata\n", 404)
        if database is None:
            return _text("the provisioner database is unavailable; retry\n", 503)
        try:
            with database.session() as session:
                userdata = userdata_of(session, vm.profile)
        except PVCError as error:  # unavailable, or anything else the database says
            log.warning("userdata of %s unavailable: %s", vm.name, error)
            return _text("the provisioner database is unavailable; retry\n", 503)
        if userdata is None:
            return _text("no userdata\n", 404)
        return _text(render(userdata, vm))

    @app.get("/")
    def versions() -> Response:
        return _text("latest\n")

    return app


def _unknown() -> Response:
    log.info("metadata request from %s, which no VM holds", request.remote_addr)
    return _text("no VM holds this address\n", 404)
