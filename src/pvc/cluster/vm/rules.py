"""A VM's placement rules (node limit, selector, autostart, migration method and pause), checked,
and the choices clients have for them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pvc.cluster.errors import ClusterError
from pvc.cluster.session import Cluster
from pvc.state.states import VM_REQUESTABLE, MigrationMethod, Selector
from pvc.state.vms import DEFAULT_MAX_DOWNTIME_MS, VmMeta

#: Bounds of a VM's longest live-migration pause, in milliseconds.
MAX_DOWNTIME_RANGE = (1, 600_000)
#: What clients may choose from.
SELECTORS = tuple(Selector)
MIGRATION_METHODS = tuple(MigrationMethod)
REQUESTABLE_STATES = tuple(VM_REQUESTABLE)


@dataclass(frozen=True)
class Placement:
    """Placement rules a client gives with a VM."""

    node_limit: list[str]
    node_selector: str
    node_autostart: bool
    migration_method: str
    migration_max_downtime: int


def _split(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def check_placement(
    cluster: Cluster,
    *,
    limit: str | Iterable[str] | None,
    selector: str | None,
    autostart: bool | None,
    migration_method: str | None,
    migration_max_downtime: int | None,
    current: VmMeta | None = None,
) -> Placement:
    """Validate placement rules; unset values keep ``current``'s (or the defaults)."""
    node_limit = current.node_limit if current and limit is None else _split(limit)
    for name in node_limit:
        if cluster.cache.node(name) is None:
            raise ClusterError(f"Node '{name}' in the node limit does not exist")
    selector = selector or (current.node_selector if current else Selector.NONE)
    if selector not in set(Selector):
        raise ClusterError(f"selector must be one of {', '.join(Selector)}, not '{selector}'")
    method = migration_method or (current.migration_method if current else MigrationMethod.NONE)
    if method not in set(MigrationMethod):
        raise ClusterError(f"migration method must be one of {', '.join(MigrationMethod)}, not '{method}'")
    downtime = migration_max_downtime
    if downtime is None:
        downtime = current.migration_max_downtime if current else DEFAULT_MAX_DOWNTIME_MS
    low, high = MAX_DOWNTIME_RANGE
    if not low <= downtime <= high:
        raise ClusterError(f"migration max downtime must be {low} to {high} ms, not {downtime}")
    return Placement(
        node_limit=node_limit,
        node_selector=selector,
        node_autostart=bool(current.node_autostart if current and autostart is None else autostart),
        migration_method=method,
        migration_max_downtime=downtime,
    )
