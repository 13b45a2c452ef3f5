"""VMs: define, modify, remove, metadata, tags, rename and console, as clients ask for them.

Clients only write desired state; the node daemons make libvirt match it (see
:mod:`pvc.node.vms`). State and placement requests live in :mod:`pvc.cluster.vm_actions`.
"""

from __future__ import annotations

import re
import uuid as uuid_mod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from lxml import etree

from pvc.cluster.errors import ClusterError, NotFoundError
from pvc.cluster.nodes import limit_pattern
from pvc.cluster.placement import choose_node, effective_selector
from pvc.domain_xml import parse as domain_xml
from pvc.domain_xml.errors import DomainXMLError
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.errors import ConflictError
from pvc.state.records import encode
from pvc.state.states import MigrationMethod, Selector, VMState
from pvc.state.store import Store, Transaction
from pvc.state.vms import VmMeta, VmPlacement, VmRecord, create_vm, update_meta

#: Bounds of a VM's longest live-migration pause, in milliseconds.
MAX_DOWNTIME_RANGE = (1, 600_000)
TAG = re.compile(r"[^\s/]{1,64}")
#: Tag types: set by users, or by PVC itself (profiles...).
TAG_USER = "user"


@dataclass(frozen=True)
class Placement:
    """Placement rules a client gives with a VM."""

    node_limit: list[str]
    node_selector: str
    node_autostart: bool
    migration_method: str
    migration_max_downtime: int


def resolve(cache: ClusterCache, vm: str) -> VmRecord:
    """The VM called ``vm``, or with UUID ``vm``; NotFoundError otherwise."""
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
    UUIDs (see :func:`pvc.cluster.nodes.limit_pattern`); ``negate`` inverts the node, state
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


# -- validation ----------------------------------------------------------------------------


def parse_xml(xml: str, *, uuid: str = "") -> tuple[str, domain_xml.DomainSummary]:
    """Validate client XML; returns it (with a UUID added when it had none) and its summary."""
    try:
        root, summary = domain_xml.parse(xml)
    except DomainXMLError as error:
        raise ClusterError(str(error)) from None
    if uuid and summary.uuid and summary.uuid != uuid:
        raise ClusterError(f"the XML's UUID '{summary.uuid}' differs from the VM's UUID '{uuid}'")
    if summary.uuid:
        return xml, summary
    element = etree.Element("uuid")
    element.text = uuid or str(uuid_mod.uuid4())
    root.insert(1, element)
    text = etree.tostring(root, pretty_print=True, encoding="unicode")
    return text, replace(summary, uuid=element.text)


def _split(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def check_placement(
    cache: ClusterCache,
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
        if cache.node(name) is None:
            raise ClusterError(f"Node '{name}' in the node limit does not exist")
    selector = selector or (current.node_selector if current else Selector.NONE)
    if selector not in set(Selector):
        raise ClusterError(f"selector must be one of {', '.join(Selector)}, not '{selector}'")
    method = migration_method or (current.migration_method if current else MigrationMethod.NONE)
    if method not in set(MigrationMethod):
        raise ClusterError(f"migration method must be one of {', '.join(MigrationMethod)}, not '{method}'")
    downtime = migration_max_downtime
    if downtime is None:
        downtime = current.migration_max_downtime if current else 300
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


def _tags(user_tags: Iterable[str], protected_tags: Iterable[str]) -> list[dict]:
    tags: dict[str, dict] = {}
    for names, protected in ((user_tags, False), (protected_tags, True)):
        for name in names or ():
            if not TAG.fullmatch(name):
                raise ClusterError(f"tag '{name}' is invalid: 1-64 characters, no spaces or '/'")
            tags[name] = {"name": name, "type": TAG_USER, "protected": protected}
    return sorted(tags.values(), key=lambda tag: tag["name"])


# -- define, modify, rename ----------------------------------------------------------------


def define(
    store: Store,
    cache: ClusterCache,
    xml: str,
    *,
    node: str | None = None,
    limit: str | Iterable[str] | None = None,
    selector: str | None = None,
    autostart: bool = False,
    migration_method: str | None = None,
    migration_max_downtime: int | None = None,
    user_tags: Iterable[str] = (),
    protected_tags: Iterable[str] = (),
    default_selector: str = Selector.MEM,
) -> tuple[str, str]:
    """Add a VM (stopped) from client XML; returns its UUID and the reply message."""
    xml, summary = parse_xml(xml)
    if cache.vm_uuid_by_name(summary.name):
        raise ClusterError(f"A VM named '{summary.name}' already exists")
    if cache.vm(summary.uuid):
        raise ClusterError(f"A VM with UUID '{summary.uuid}' already exists")
    rules = check_placement(
        cache,
        limit=limit,
        selector=selector,
        autostart=autostart,
        migration_method=migration_method,
        migration_max_downtime=migration_max_downtime,
    )
    if node:
        if cache.node(node) is None:
            raise ClusterError(f"Node '{node}' does not exist")
        if rules.node_limit and node not in rules.node_limit:
            raise ClusterError(f"Node '{node}' is not in the VM's node limit")
    else:
        node = choose_node(
            cache.nodes(),
            cache.vms(),
            selector=effective_selector(rules.node_selector, default_selector),
            node_limit=rules.node_limit,
        )
        if node is None:
            raise ClusterError("No node is ready to take the VM")
    meta = VmMeta(
        name=summary.name,
        uuid=summary.uuid,
        vcpus=summary.vcpus,
        memory_mib=summary.memory_mib,
        tags=_tags(user_tags, protected_tags),
        **vars(rules),
    )
    try:
        create_vm(store, meta, VmPlacement(state=VMState.STOP, node=node), xml)
    except ConflictError:
        raise ClusterError(
            f"A VM named '{summary.name}' or with UUID '{summary.uuid}' already exists"
        ) from None
    return summary.uuid, f"Added new VM with Name '{summary.name}' and UUID '{summary.uuid}' on node '{node}'"


def modify(store: Store, cache: ClusterCache, vm: str, xml: str) -> VmRecord:
    """Replace a VM's XML (same name and UUID); returns the record as it was before."""
    record = resolve(cache, vm)
    xml, summary = parse_xml(xml, uuid=record.uuid)
    if summary.name != record.meta.name:
        raise ClusterError(
            f"the XML names the VM '{summary.name}' but it is '{record.meta.name}'; use rename to change it"
        )
    txn = Transaction()
    txn.set(paths.domain_xml(record.uuid), xml)
    txn.set(
        paths.domain(record.uuid),
        encode(replace(record.meta, vcpus=summary.vcpus, memory_mib=summary.memory_mib)),
        version=cache.version(paths.domain(record.uuid)),
    )
    try:
        store.commit(txn)
    except ConflictError:
        raise ClusterError(f"VM '{vm}' changed while it was being modified; try again") from None
    return record


def rename(store: Store, cache: ClusterCache, vm: str, new_name: str) -> str:
    """Rename a stopped VM: its name index entry, metadata and XML change together."""
    record = resolve(cache, vm)
    if not domain_xml.NAME.fullmatch(new_name or ""):
        raise ClusterError(f"VM name '{new_name}' is invalid: 1-63 letters, digits, '.', '_', '-'")
    if cache.vm_uuid_by_name(new_name):
        raise ClusterError(f"A VM named '{new_name}' already exists")
    if record.placement.state not in (VMState.STOP, VMState.DISABLE) or record.placement.running_on:
        raise ClusterError(f"VM '{record.meta.name}' must be stopped or disabled before it is renamed")
    root, _ = domain_xml.parse(record.xml)
    root.find("name").text = new_name
    txn = Transaction()
    txn.delete(paths.domain_name(record.meta.name))
    txn.create(paths.domain_name(new_name), record.uuid)
    txn.set(
        paths.domain(record.uuid),
        encode(replace(record.meta, name=new_name)),
        version=cache.version(paths.domain(record.uuid)),
    )
    txn.set(paths.domain_xml(record.uuid), etree.tostring(root, pretty_print=True, encoding="unicode"))
    try:
        store.commit(txn)
    except ConflictError:
        raise ClusterError(f"VM '{record.meta.name}' changed while it was being renamed; try again") from None
    return f"Renamed VM '{record.meta.name}' to '{new_name}'"


# -- metadata and tags ---------------------------------------------------------------------


def set_meta(
    store: Store,
    cache: ClusterCache,
    vm: str,
    *,
    limit: str | None = None,
    selector: str | None = None,
    autostart: bool | None = None,
    profile: str | None = None,
    migration_method: str | None = None,
    migration_max_downtime: int | None = None,
) -> str:
    """Change a VM's placement rules and profile; unset arguments keep their values."""
    record = resolve(cache, vm)
    rules = check_placement(
        cache,
        limit=limit,
        selector=selector,
        autostart=autostart,
        migration_method=migration_method,
        migration_max_downtime=migration_max_downtime,
        current=record.meta,
    )
    new_profile = record.meta.profile if profile is None else profile
    update_meta(store, record.uuid, lambda meta: replace(meta, profile=new_profile, **vars(rules)))
    return f"Successfully modified metadata of VM '{record.meta.name}'"


def change_tag(store: Store, cache: ClusterCache, vm: str, action: str, tag: str, protected: bool) -> str:
    """Add or remove one tag; a protected tag is only removed when ``protected`` is given."""
    record = resolve(cache, vm)
    if not TAG.fullmatch(tag or ""):
        raise ClusterError(f"tag '{tag}' is invalid: 1-64 characters, no spaces or '/'")

    def change(meta: VmMeta) -> VmMeta:
        others = [t for t in meta.tags if t.get("name") != tag]
        existing = next((t for t in meta.tags if t.get("name") == tag), None)
        if action == "add":
            if existing and existing.get("protected") == protected:
                raise ClusterError(f"VM '{meta.name}' already has tag '{tag}'")
            added = {"name": tag, "type": TAG_USER, "protected": protected}
            return replace(meta, tags=sorted([*others, added], key=lambda t: t["name"]))
        if existing is None:
            raise ClusterError(f"VM '{meta.name}' has no tag '{tag}'")
        if existing.get("protected") and not protected:
            raise ClusterError(f"tag '{tag}' is protected; give protected=true to remove it")
        return replace(meta, tags=others)

    update_meta(store, record.uuid, change)
    verb = "Added tag" if action == "add" else "Removed tag"
    return f"{verb} '{tag}' {'to' if action == 'add' else 'from'} VM '{record.meta.name}'"


def console(cache: ClusterCache, vm: str, lines: int | None) -> dict:
    """The tail of a VM's serial console as its node last recorded it."""
    record = resolve(cache, vm)
    if lines is not None and lines < 1:
        raise ClusterError("lines must be a positive number")
    text = cache.text(paths.domain_console(record.uuid))
    if lines is not None:
        text = "\n".join(text.splitlines()[-lines:])
    return {"name": record.meta.name, "data": text}
