"""A VM's metadata: placement rules, profile and tags."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from pvc.cluster.errors import ClusterError
from pvc.cluster.session import Cluster
from pvc.cluster.vm.queries import resolve
from pvc.cluster.vm.rules import check_placement
from pvc.state.vms import VmMeta, update_meta

TAG = re.compile(r"[^\s/]{1,64}")
#: Tag types: set by users, or by PVC itself (profiles...).
TAG_USER = "user"


def user_tags_of(user_tags: Iterable[str], protected_tags: Iterable[str]) -> list[dict]:
    """The tag list of a new VM from the names of its user and protected tags (checked)."""
    tags: dict[str, dict] = {}
    for names, protected in ((user_tags, False), (protected_tags, True)):
        for name in names or ():
            if not TAG.fullmatch(name):
                raise ClusterError(f"tag '{name}' is invalid: 1-64 characters, no spaces or '/'")
            tags[name] = {"name": name, "type": TAG_USER, "protected": protected}
    return sorted(tags.values(), key=lambda tag: tag["name"])


def set_meta(
    cluster: Cluster,
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
    record = resolve(cluster, vm)
    rules = check_placement(
        cluster,
        limit=limit,
        selector=selector,
        autostart=autostart,
        migration_method=migration_method,
        migration_max_downtime=migration_max_downtime,
        current=record.meta,
    )
    new_profile = record.meta.profile if profile is None else profile
    _, commit = update_meta(
        cluster.store, record.uuid, lambda meta: replace(meta, profile=new_profile, **vars(rules))
    )
    cluster.settle(commit)
    return f"Successfully modified metadata of VM '{record.meta.name}'"


def change_tag(cluster: Cluster, vm: str, action: str, tag: str, protected: bool) -> str:
    """Add or remove one tag; a protected tag is only removed when ``protected`` is given."""
    record = resolve(cluster, vm)
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

    _, commit = update_meta(cluster.store, record.uuid, change)
    cluster.settle(commit)
    verb = "Added tag" if action == "add" else "Removed tag"
    return f"{verb} '{tag}' {'to' if action == 'add' else 'from'} VM '{record.meta.name}'"
