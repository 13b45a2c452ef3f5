"""The cluster's schema version in ``/schema/version`` and the steps that upgrade it.

Each step brings the tree from version N-1 to N. A step only adds operations to a
transaction; the version bump goes into the same transaction, so a step is applied
entirely or not at all. Steps run under the schema lock at daemon start.

After the steps, a store with a credential restricts the tree to it
(:func:`pvc.state.acl.protect`): this upgrades a tree created without ACLs, and
costs a check of the top-level znodes once that has been done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pvc.state import acl, paths
from pvc.state.errors import SchemaError
from pvc.state.locks import held
from pvc.state.records import NO_PRIMARY
from pvc.state.store import NOTHING, Commit, Store, Transaction

Step = Callable[[Store, Transaction], None]


def _initial_tree(store: Store, txn: Transaction) -> None:
    """Version 1: the top-level trees and the cluster-wide defaults."""
    for root in paths.ROOTS:
        if root != paths.LOCKS and not store.exists(root):  # /locks exists: we hold a lock in it
            txn.create(root)
    defaults = {
        paths.PRIMARY_NODE: NO_PRIMARY,
        paths.MAINTENANCE: "false",
        paths.CLUSTER_NAME: "",
    }
    for path, value in defaults.items():
        if not store.exists(path):
            txn.create(path, value)


def _domain_names(store: Store, txn: Transaction) -> None:
    """Version 2: the VM name index (names are unique through it)."""
    if not store.exists(paths.DOMAIN_NAMES):
        txn.create(paths.DOMAIN_NAMES)


#: Upgrade steps by the version they produce.
STEPS: Mapping[int, Step] = {1: _initial_tree, 2: _domain_names}
CURRENT_VERSION = max(STEPS)


def has_schema(store: Store) -> bool:
    """Whether the cluster has a schema (it has none while an initialisation wipes it)."""
    return store.exists(paths.SCHEMA_VERSION)


def read_version(store: Store) -> int:
    """The recorded schema version; 0 for a cluster that has none yet."""
    text = store.get_text(paths.SCHEMA_VERSION)
    try:
        return int(text) if text else 0
    except ValueError as error:
        raise SchemaError(f"{paths.SCHEMA_VERSION} holds '{text}', not a number") from error


def ensure_schema(
    store: Store, *, steps: Mapping[int, Step] = STEPS, identifier: str = "pvc"
) -> tuple[int, int]:
    """Upgrade the cluster's schema to the newest version known to this code.

    Returns ``(found, now)``. Raises SchemaError if the cluster is newer than the code.
    """
    found, now, _ = upgrade(store, steps=steps, identifier=identifier)
    return found, now


def upgrade(
    store: Store, *, steps: Mapping[int, Step] = STEPS, identifier: str = "pvc"
) -> tuple[int, int, Commit]:
    """:func:`ensure_schema`, also returning what the upgrade steps wrote."""
    target = max(steps)
    written = NOTHING
    with held(store, paths.SCHEMA_LOCK, identifier):
        found = read_version(store)
        if found > target:
            raise SchemaError(
                f"cluster schema is version {found} but this PVC understands up to {target}; "
                "upgrade PVC on this node"
            )
        for version in range(found + 1, target + 1):
            step = steps.get(version)
            if step is None:
                raise SchemaError(f"no upgrade step to schema version {version}")
            txn = Transaction()
            step(store, txn)
            if version == 1 and not store.exists(paths.SCHEMA_VERSION):
                txn.create(paths.SCHEMA_VERSION, str(version))
            else:
                txn.set(paths.SCHEMA_VERSION, str(version))
            written += store.commit(txn)
        acl.protect(store)
        return found, max(found, target), written
