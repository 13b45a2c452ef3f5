"""Access control on PVC's znodes: ZooKeeper digest ACLs.

With a credential, every znode PVC creates carries one ACL entry, ``digest:<user>:<hash>``
with every permission (the :class:`~pvc.state.store.Store` sets it as kazoo's default
ACL), so a client without that credential can neither read nor change PVC's state.

:func:`protect` brings an existing tree there: the root of the session's view (the
ensemble's ``/``, or the chroot node) and every znode under PVC's top-level trees get
the ACL. It works top down, so a znode is restricted before its children are listed:
a client without the credential cannot slip in a child that the walk then misses. When
the walk has gone through, :data:`pvc.state.paths.SCHEMA_ACL` records the credential's
fingerprint; later starts only check the roots (a cheap test), and walk again when the
fingerprint or a root's ACL differs (an interrupted walk, a tree restored from elsewhere,
a new credential).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kazoo.exceptions import KazooException, NoAuthError, NoNodeError
from kazoo.interfaces import IAsyncResult
from kazoo.security import ACL

from pvc.state import paths
from pvc.state.errors import AccessDeniedError, StateError
from pvc.state.store import Store

log = logging.getLogger(__name__)

#: Requests in flight at once while walking a tree.
BATCH = 256


def fingerprint(acl: Sequence[ACL]) -> str:
    """A stable digest of an ACL (what :data:`paths.SCHEMA_ACL` holds; no password hash in clear)."""
    text = ";".join(sorted(f"{entry.id.scheme}:{entry.id.id}:{entry.perms}" for entry in acl))
    return hashlib.sha256(text.encode()).hexdigest()


def _same(current: Iterable[ACL], wanted: Sequence[ACL]) -> bool:
    return fingerprint(list(current)) == fingerprint(wanted)


def _tops(store: Store) -> list[str]:
    """The session's root and PVC's top-level trees that exist."""
    return ["/", *(root for root in paths.ROOTS if store.exists(root))]


def is_protected(store: Store) -> bool:
    """Whether the tree is recorded as restricted to the store's credential and its roots are."""
    wanted = store.acl
    if wanted is None:
        return True
    if store.get_text(paths.SCHEMA_ACL) != fingerprint(wanted):
        return False
    try:
        return all(_same(_acl_of(store, top), wanted) for top in _tops(store))
    except NoNodeError:
        return False


def protect(store: Store) -> int:
    """Restrict the session's root and every znode of PVC's trees to the store's credential.

    Returns how many znodes had another ACL (0 when the tree was already protected or the
    store has no credential). Raises StateError when ZooKeeper refuses (the tree belongs
    to another credential).
    """
    wanted = store.acl
    if wanted is None or is_protected(store):
        return 0
    fixed = _set_if_different(store, ["/"], wanted)  # the root alone: it may hold more than PVC
    for root in paths.ROOTS:
        fixed += _walk(store, root, wanted)
    store.set(paths.SCHEMA_ACL, fingerprint(wanted))
    if fixed:
        log.warning("restricted %d znodes that were open to every ZooKeeper client", fixed)
    return fixed


def _walk(store: Store, top: str, wanted: Sequence[ACL]) -> int:
    """Fix the ACL of ``top`` and everything under it, level by level, parents first."""
    fixed = 0
    level = [top]
    while level:
        fixed += _set_if_different(store, level, wanted)
        level = _children(store, level)
    return fixed


def _set_if_different(store: Store, znodes: list[str], wanted: Sequence[ACL]) -> int:
    """Give ``wanted`` to each of ``znodes`` that has another ACL; how many changed."""
    client = store.client
    fixed = 0
    for start in range(0, len(znodes), BATCH):
        pending = [(path, client.get_acls_async(path)) for path in znodes[start : start + BATCH]]
        current = [(path, _result(result, None, path)) for path, result in pending]
        wrong = [path for path, found in current if found is not None and not _same(found[0], wanted)]
        updates = [(path, client.set_acls_async(path, list(wanted))) for path in wrong]
        fixed += sum(_result(result, None, path) is not None for path, result in updates)
        store.operations += len(pending) + len(updates)
    return fixed


def _children(store: Store, parents: list[str]) -> list[str]:
    client = store.client
    found: list[str] = []
    for start in range(0, len(parents), BATCH):
        pending = [(path, client.get_children_async(path)) for path in parents[start : start + BATCH]]
        for path, result in pending:
            names = _result(result, [], path)
            found += [f"{path.rstrip('/')}/{name}" for name in names]
        store.operations += len(pending)
    return found


def _acl_of(store: Store, path: str) -> list[ACL]:
    store.operations += 1
    return _result(store.client.get_acls_async(path), None, path, missing_ok=False)[0]


def _result(result: IAsyncResult, missing: Any, path: str, *, missing_ok: bool = True) -> Any:
    """The value of an async kazoo call; ``missing`` for a znode deleted meanwhile."""
    try:
        return result.get()
    except NoNodeError:
        if not missing_ok:
            raise
        return missing
    except NoAuthError as error:
        raise AccessDeniedError(path) from error
    except KazooException as error:
        raise StateError(f"ZooKeeper error on {path}: {type(error).__name__}: {error}") from error
