"""Whole-cluster state backup (at once, or as a task writing a file on the primary), restore
and initialisation."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pvc import tasks
from pvc.cluster.errors import ClusterError, Conflict
from pvc.cluster.filters import PLAIN_NAME
from pvc.cluster.node.queries import running_primary
from pvc.cluster.session import Cluster
from pvc.cluster.tasks import actions as task_actions
from pvc.domain_xml.allowlist import check_domain
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import parse
from pvc.domain_xml.policy import XmlPolicy
from pvc.state import paths
from pvc.state.errors import StateError
from pvc.state.schema import CURRENT_VERSION, has_schema, upgrade
from pvc.state.store import NOTHING, Commit, Store, Transaction
from pvc.tasks import InvalidTaskError, TaskContext, task_type

#: Trees that hold live coordination state, never backed up or restored.
EXCLUDED = (paths.LOCKS,)
#: Znodes that belong to a live daemon session.
EPHEMERAL_SUFFIXES = ("/presence",)
#: Keep each restore transaction well under ZooKeeper's 1 MB request limit.
BATCH_BYTES = 256 * 1024
#: Largest single value accepted in a restore (ZooKeeper refuses znodes over 1 MB).
MAX_VALUE_BYTES = 512 * 1024
#: The keys of a backup that hold a VM's domain XML.
_DOMAIN_XML = re.compile(re.escape(paths.domain_xml("UUID")).replace("UUID", "[^/]+"))

Progress = Callable[[int, int, str], None]


def _walk(store: Store, path: str, out: dict[str, str]) -> None:
    for child in store.children(path):
        child_path = f"{path.rstrip('/')}/{child}"
        if child_path in EXCLUDED or child_path.endswith(EPHEMERAL_SUFFIXES):
            continue
        data = store.get(child_path)
        out[child_path] = (data or b"").decode(errors="replace")
        _walk(store, child_path, out)


def backup(cluster: Cluster) -> dict[str, str]:
    """The data of every znode of PVC's trees, keyed by path (parents before children)."""
    return _backup(cluster.store)


def _backup(store: Store) -> dict[str, str]:
    """The data of every znode of PVC's trees, keyed by path (parents before children)."""
    out: dict[str, str] = {}
    for root in paths.ROOTS:
        if root in EXCLUDED or not store.exists(root):
            continue
        out[root] = (store.get(root) or b"").decode(errors="replace")
        _walk(store, root, out)
    return out


def parse_cluster_data(text: str, policy: XmlPolicy) -> dict[str, str]:
    """Validate restore input completely before anything is written.

    Every VM definition in it must pass the allowlist with ``policy``, as if defined anew.
    """
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ClusterError(f"cluster_data is not valid JSON: {error}") from None
    if not isinstance(data, dict) or not data:
        raise ClusterError("cluster_data must be a non-empty JSON object of path: value")
    for path, value in data.items():
        if not isinstance(path, str) or not _valid_path(path):
            raise ClusterError(f"cluster_data has an invalid path: {path!r}")
        if not isinstance(value, str):
            raise ClusterError(f"cluster_data value of {path} is not a string")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise ClusterError(f"cluster_data value of {path} is larger than {MAX_VALUE_BYTES} bytes")
        if not any(path == root or path.startswith(root + "/") for root in paths.ROOTS):
            raise ClusterError(f"cluster_data path {path} is outside PVC's trees")
        if path.startswith(EXCLUDED) or path.endswith(EPHEMERAL_SUFFIXES):
            raise ClusterError(f"cluster_data path {path} holds live state and cannot be restored")
        if _DOMAIN_XML.fullmatch(path):
            _check_definition(path, value, policy)
    if paths.SCHEMA_VERSION not in data:
        raise ClusterError(f"cluster_data has no {paths.SCHEMA_VERSION}: not a PVC backup")
    version = data[paths.SCHEMA_VERSION]
    if not version.isdigit() or not 1 <= int(version) <= CURRENT_VERSION:
        raise ClusterError(
            f"cluster_data has schema version '{version}'; this PVC restores versions 1 to {CURRENT_VERSION}"
        )
    return data


def _check_definition(path: str, xml: str, policy: XmlPolicy) -> None:
    try:
        root, _ = parse(xml)
        check_domain(root, policy)
    except DomainXMLError as error:
        raise ClusterError(f"cluster_data VM definition {path} is not allowed: {error}") from None


def _valid_path(path: str) -> bool:
    if not path.startswith("/") or path.endswith("/"):
        return False
    parts = path[1:].split("/")
    return all(part and part not in (".", "..") and part.isprintable() for part in parts)


def restore(cluster: Cluster, cluster_data: str, policy: XmlPolicy, progress: Progress | None = None) -> str:
    """Restore a backup given as JSON text (validated completely before anything is written;
    VM definitions against the allowlist with ``policy``)."""
    count, written = _restore(cluster.store, parse_cluster_data(cluster_data, policy), progress)
    cluster.settle(written)
    return f"Restored {count} keys of cluster state"


def _restore(store: Store, data: dict[str, str], progress: Progress | None = None) -> tuple[int, Commit]:
    """Write every key of a validated backup, parents before children; returns how many keys
    and what was written.

    Missing parents that the backup itself does not contain are created empty first.
    """
    ordered = sorted(data, key=lambda p: (p.count("/"), p))
    for path in ordered:
        parent = path.rsplit("/", 1)[0]
        if parent and parent not in data:
            store.ensure(parent)
    txn, size, count, written = Transaction(), 0, 0, NOTHING
    for path in ordered:
        value = data[path]
        if store.exists(path):
            txn.set(path, value)
        else:
            txn.create(path, value)
        size += len(path) + len(value)
        if size >= BATCH_BYTES:
            written += store.commit(txn)
            count += len(txn)
            txn, size = Transaction(), 0
            if progress:
                progress(count, len(ordered), "restoring")
    written += store.commit(txn)
    return count + len(txn), written


def _wipe(store: Store, root: str, timeout: float = 10.0) -> Commit:
    """Delete a tree that running daemons may still be writing into while it goes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return store.delete(root, recursive=True)
        except StateError:  # a daemon added a child meanwhile: go again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def initialize(cluster: Cluster, *, overwrite: bool) -> str:
    """Create an empty cluster tree; with ``overwrite``, delete the existing one first."""
    store = cluster.store
    if has_schema(store) and not overwrite:
        raise ClusterError("The cluster is already initialized; pass overwrite to wipe it")
    written = NOTHING
    if overwrite:
        for root in paths.ROOTS:
            if root != paths.LOCKS:
                written += _wipe(store, root)
    _, _, created = upgrade(store, identifier="initialize")
    cluster.settle(written + created)
    return "Successfully initialized a new cluster"


# -- the backup file task ------------------------------------------------------------------


def submit_backup(cluster: Cluster, state_dir: Path, name: str | None) -> tasks.TaskRecord:
    """Queue a backup file ``name`` (default timestamped) on the primary coordinator."""
    node = running_primary(cluster)
    if node is None:
        raise Conflict("No primary coordinator is running to take the backup")
    name = name or f"pvc-backup-{time.strftime('%Y%m%d-%H%M%S')}.json"
    if not PLAIN_NAME.fullmatch(name):
        raise ClusterError("name must be a plain file name (letters, digits, '.', '_', '-'), not a path")
    target = Path(state_dir) / "backups" / name
    return task_actions.submit(cluster, backup_to_file, node, {"path": str(target)})


def _absolute_path(args: dict) -> dict:
    path = args.get("path")
    if not isinstance(path, str) or not os.path.isabs(path) or path.endswith("/"):
        raise InvalidTaskError("path must be an absolute file path")
    return args


@task_type("cluster.backup", validate=_absolute_path)
def backup_to_file(ctx: TaskContext, *, path: str) -> dict[str, Any]:
    """Write a whole-cluster state backup to ``path`` on the node that runs the task."""
    ctx.progress(0, 3, "reading cluster state")
    data = _backup(ctx.store)
    ctx.check_cancelled()
    ctx.progress(1, 3, f"writing {len(data)} keys")
    text = json.dumps(data, indent=1, sort_keys=True)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text)
    partial.replace(target)
    ctx.progress(2, 3, "verifying")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    ctx.progress(3, 3, "done")
    return {
        "message": f"Backed up {len(data)} keys to {target}",
        "path": str(target),
        "keys": len(data),
        "sha256": digest,
    }
