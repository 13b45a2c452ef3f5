"""Whole-cluster state backup, restore and initialisation."""

from __future__ import annotations

import json
from collections.abc import Callable

from pvc.cluster.errors import ClusterError
from pvc.state import paths
from pvc.state.schema import ensure_schema
from pvc.state.store import Store, Transaction

#: Trees that hold live coordination state, never backed up or restored.
EXCLUDED = (paths.LOCKS,)
#: Znodes that belong to a live daemon session.
EPHEMERAL_SUFFIXES = ("/presence",)
#: Keep each restore transaction well under ZooKeeper's 1 MB request limit.
BATCH_BYTES = 256 * 1024

Progress = Callable[[int, int, str], None]


def _walk(store: Store, path: str, out: dict[str, str]) -> None:
    for child in store.children(path):
        child_path = f"{path.rstrip('/')}/{child}"
        if child_path in EXCLUDED or child_path.endswith(EPHEMERAL_SUFFIXES):
            continue
        data = store.get(child_path)
        out[child_path] = (data or b"").decode(errors="replace")
        _walk(store, child_path, out)


def backup(store: Store) -> dict[str, str]:
    """Every znode's data keyed by path (parents before children)."""
    out: dict[str, str] = {}
    _walk(store, "/", out)
    return out


def parse_cluster_data(text: str) -> dict[str, str]:
    """Validate restore input completely before anything is written."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ClusterError(f"cluster_data is not valid JSON: {error}") from None
    if not isinstance(data, dict) or not data:
        raise ClusterError("cluster_data must be a non-empty JSON object of path: value")
    for path, value in data.items():
        if not isinstance(path, str) or not path.startswith("/") or "//" in path or path.endswith("/"):
            raise ClusterError(f"cluster_data has an invalid path: {path!r}")
        if not isinstance(value, str):
            raise ClusterError(f"cluster_data value of {path} is not a string")
        if not any(path == root or path.startswith(root + "/") for root in paths.ROOTS):
            raise ClusterError(f"cluster_data path {path} is outside PVC's trees")
        if path.startswith(EXCLUDED) or path.endswith(EPHEMERAL_SUFFIXES):
            raise ClusterError(f"cluster_data path {path} holds live state and cannot be restored")
    if paths.SCHEMA_VERSION not in data:
        raise ClusterError(f"cluster_data has no {paths.SCHEMA_VERSION}: not a PVC backup")
    return data


def restore(store: Store, data: dict[str, str], progress: Progress | None = None) -> int:
    """Write every key of a validated backup (creating parents first); returns keys written."""
    ordered = sorted(data, key=lambda p: (p.count("/"), p))
    txn, size, written = Transaction(), 0, 0
    for path in ordered:
        value = data[path]
        if store.exists(path):
            txn.set(path, value)
        else:
            store.ensure(path.rsplit("/", 1)[0] or "/")
            txn.create(path, value)
        size += len(path) + len(value)
        if size >= BATCH_BYTES:
            store.commit(txn)
            written += len(txn)
            txn, size = Transaction(), 0
            if progress:
                progress(written, len(ordered), "restoring")
    store.commit(txn)
    return written + len(txn)


def initialize(store: Store, *, overwrite: bool) -> str:
    """Create an empty cluster tree; with ``overwrite``, delete the existing one first."""
    if store.exists(paths.SCHEMA_VERSION) and not overwrite:
        raise ClusterError("The cluster is already initialized; pass overwrite to wipe it")
    if overwrite:
        for root in paths.ROOTS:
            if root != paths.LOCKS:
                store.delete(root, recursive=True)
    ensure_schema(store, identifier="initialize")
    return "Successfully initialized a new cluster"
