"""VMs as clients see them: lookups by name or UUID, list filters, and the small v1 views."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pvc.cluster.errors import ClusterError, NotFoundError
from pvc.cluster.filters import limit_pattern
from pvc.cluster.session import Cluster
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import Nic, parse
from pvc.state.cache import ClusterCache
from pvc.state.vms import VmRecord
from pvc.tasks import InvalidTaskError


def task_domain(args: dict[str, Any]) -> str:
    """The ``domain`` argument of a VM task: a VM's UUID (InvalidTaskError otherwise)."""
    domain = args.get("domain")
    if not isinstance(domain, str) or not domain or "/" in domain:
        raise InvalidTaskError("domain must name a VM by UUID")
    return domain


def resolve(cluster: Cluster, vm: str) -> VmRecord:
    """The VM called ``vm``, or with UUID ``vm``; NotFoundError otherwise."""
    cache = cluster.cache
    uuid = cache.vm_uuid_by_name(vm)
    record = cache.vm(uuid) if uuid else None
    if record is None and "/" not in vm:
        record = cache.vm(vm.lower())
    if record is None:
        raise NotFoundError(f"VM '{vm}' not found")
    return record


def vm_filter(
    *,
    limit: str | None = None,
    node: str | None = None,
    state: str | None = None,
    tag: str | None = None,
    negate: bool = False,
) -> Callable[[VmRecord], bool]:
    """A predicate for VM lists, like PVC's: ``limit`` is a regex matched against names and
    UUIDs (see :func:`pvc.cluster.filters.limit_pattern`); ``negate`` inverts the node, state
    and tag filters."""
    pattern = limit_pattern(limit) if limit else None

    def passes(record: VmRecord) -> bool:
        if pattern and not (pattern.fullmatch(record.meta.name) or pattern.fullmatch(record.uuid)):
            return False
        checks = []
        if node:
            checks.append(record.placement.node == node)
        if state:
            checks.append(record.placement.state == state)
        if tag:
            checks.append(any(t.get("name") == tag for t in record.meta.tags))
        return not checks or all(checks) != negate

    return passes


def meta_view(cluster: Cluster, vm: str) -> dict:
    """``GET /vm/{vm}/meta``: the VM's placement rules."""
    meta = resolve(cluster, vm).meta
    return {
        "name": meta.name,
        "node_limit": meta.node_limit,
        "node_selector": meta.node_selector,
        "node_autostart": str(meta.node_autostart),
        "migration_method": meta.migration_method,
        "migration_max_downtime": meta.migration_max_downtime,
    }


def tags_view(cluster: Cluster, vm: str) -> dict:
    """``GET /vm/{vm}/tags``."""
    record = resolve(cluster, vm)
    return {"name": record.meta.name, "tags": record.meta.tags}


def state_view(cluster: Cluster, vm: str) -> dict:
    """``GET /vm/{vm}/state``."""
    record = resolve(cluster, vm)
    return {"name": record.meta.name, "state": record.placement.state}


def node_view(cluster: Cluster, vm: str) -> dict:
    """``GET /vm/{vm}/node``: where the VM belongs and where a migration took it from."""
    record = resolve(cluster, vm)
    return {"name": record.meta.name, "node": record.placement.node, "last_node": record.placement.last_node}


def console(cluster: Cluster, vm: str, lines: int | None) -> dict:
    """The tail of a VM's serial console as its node last recorded it."""
    record = resolve(cluster, vm)
    if lines is not None and lines < 1:
        raise ClusterError("lines must be a positive number")
    text = cluster.cache.vm_console(record.uuid)
    if lines is not None:
        text = "\n".join(text.splitlines()[-lines:])
    return {"name": record.meta.name, "data": text}


def vm_nics(cache: ClusterCache) -> Iterator[tuple[VmRecord, Nic]]:
    """Every NIC of every VM (VMs whose XML does not parse have none)."""
    for record in cache.vms():
        try:
            _, summary = parse(record.xml)
        except DomainXMLError:
            continue
        for nic in summary.nics:
            yield record, nic
