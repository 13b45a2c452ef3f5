"""The ZooKeeper connection and the primitive operations the rest of PVC uses.

One :class:`Store` wraps one kazoo client. Reads that serve users go through the
watch-maintained :mod:`pvc.state.cache`; the store is for writes, for transactions and
for the few reads that must be fresh. Every write returns a :class:`Commit`, which a
cache can wait for (:meth:`pvc.state.cache.ClusterCache.wait_for`): that is PVC's one
read-your-writes mechanism.

The contract the rest of PVC relies on (the spirit of Patroni's DCS interface):

* **Atomicity.** :meth:`Store.commit` applies every operation of a :class:`Transaction`
  or none of them (one ZooKeeper ``multi``); all its operations get the same zxid. A
  single :meth:`Store.set` or :meth:`Store.delete` is atomic on its own znode, but a
  ``set`` that has to create the znode first makes two requests (create, then set if
  another writer created it meanwhile).
* **Compare-and-set.** A version given to :meth:`Transaction.set`, :meth:`Transaction.delete`
  or :meth:`Transaction.check` must equal the znode's data version when the transaction
  is applied; ``create`` requires the znode to be absent and its parent present. When a
  condition fails nothing is written and :class:`~pvc.state.errors.ConflictError` is
  raised: the caller re-reads and decides again (see ``pvc.state.vms.update_placement``).
* **Connection.** An operation that cannot reach ZooKeeper raises
  :class:`~pvc.state.errors.NotConnectedError` (kazoo retries briefly first); other
  server errors raise :class:`~pvc.state.errors.StateError`. Neither leaves a partial
  transaction behind.
* **Watches** (through :mod:`pvc.state.cache`) deliver every change *eventually* and in
  zxid order per znode, but may coalesce changes: a reader sees the latest value, not
  every intermediate one. A cache may lag a write by a few milliseconds; writers that
  must read their own write wait for its :class:`Commit`.
* **Access.** A store made with a credential authenticates with it (ZooKeeper's
  digest scheme) and creates every znode with the ACL of that credential alone
  (:mod:`pvc.state.acl`); an operation the ACL refuses raises
  :class:`~pvc.state.errors.AccessDeniedError`.
* **Sessions.** Ephemeral znodes (a node's presence, lock contenders) vanish when the
  session that made them ends, whether it was closed or expired; listeners added with
  :meth:`Store.add_listener` hear ``SUSPENDED`` and ``LOST``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from kazoo.handlers.threading import KazooTimeoutError, SequentialThreadingHandler
from kazoo.security import ACL, make_digest_acl

from pvc.state.errors import AccessDeniedError, ConflictError, NotConnectedError, StateError
from pvc.state.records import encode

log = logging.getLogger(__name__)

Value = bytes | str | int | float | bool | dict | list | None

#: Connection states a listener hears (see :meth:`Store.add_listener`).
CONNECTED = KazooState.CONNECTED
SUSPENDED = KazooState.SUSPENDED
LOST = KazooState.LOST


def to_bytes(value: Value) -> bytes:
    """Encode a znode value: bytes as is, strings as UTF-8, the rest as JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if value is None:
        return b""
    return encode(value)


@dataclass
class Transaction:
    """Operations collected to be committed atomically by :meth:`Store.transaction`."""

    ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def create(self, path: str, value: Value = b"", *, ephemeral: bool = False) -> None:
        self.ops.append(("create", (path, to_bytes(value)), {"ephemeral": ephemeral}))

    def set(self, path: str, value: Value, *, version: int = -1) -> None:
        self.ops.append(("set_data", (path, to_bytes(value)), {"version": version}))

    def delete(self, path: str, *, version: int = -1) -> None:
        self.ops.append(("delete", (path,), {"version": version}))

    def check(self, path: str, version: int) -> None:
        self.ops.append(("check", (path, version), {}))

    def __len__(self) -> int:
        return len(self.ops)


@dataclass(frozen=True)
class Commit:
    """What one write committed, so that a cache can wait until it shows it.

    ``changed`` maps each znode the write created or set to the zxid a cache must have
    seen for it (0 when only its existence is known: a create without a set in the same
    transaction); ``deleted`` holds the znodes it removed. ``zxid`` is the write's zxid
    (exact when it set a znode; otherwise the server's zxid when it answered, which is
    never lower).
    """

    zxid: int = 0
    changed: Mapping[str, int] = field(default_factory=dict, hash=False)
    deleted: frozenset[str] = frozenset()

    def __add__(self, other: Commit) -> Commit:
        """Both writes (the later one wins where they touch the same znode)."""
        changed = {path: zxid for path, zxid in self.changed.items() if path not in other.deleted}
        changed.update(other.changed)
        deleted = (self.deleted - other.changed.keys()) | other.deleted
        return Commit(max(self.zxid, other.zxid), changed, frozenset(deleted))


#: The commit of a write that wrote nothing.
NOTHING = Commit()


class BoundedConnectHandler(SequentialThreadingHandler):
    """kazoo's threading handler with a TCP connect bounded by ``connect_timeout``.

    kazoo gives each TCP connect the whole session timeout. A member that is cut off
    drops the SYN, so a client that tries it first after losing its server would spend
    its whole session on that one attempt, and find its session expired when it reaches
    a healthy member: the loss of the ensemble's leader (its clients all reconnect at
    once) would expire every session of the cluster.
    """

    def __init__(self, connect_timeout: float) -> None:
        super().__init__()
        self.connect_timeout = connect_timeout

    def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        if "timeout" in kwargs and kwargs["timeout"] is not None:
            kwargs["timeout"] = min(kwargs["timeout"], self.connect_timeout)
        return super().create_connection(*args, **kwargs)


def connect_timeout(hosts: str, session_timeout: float) -> float:
    """The TCP connect budget per ZooKeeper member: a fraction of the session timeout, so
    that trying every member that does not answer still leaves time for one that does."""
    members = max(1, len(hosts.split("/", 1)[0].split(",")))
    return max(0.2, session_timeout / (2 * members))


class Store:
    """A ZooKeeper session with PVC's conventions (hosts may carry a chroot).

    ``credential`` is a ``(user, password)`` pair: the session authenticates with it and
    every znode it creates is restricted to it (``acl``). Without one, znodes are open to
    every client (ZooKeeper's default).
    """

    def __init__(
        self,
        hosts: str,
        *,
        timeout: float = 10.0,
        credential: tuple[str, str] | None = None,
        client: KazooClient | None = None,
    ):
        self.hosts = hosts
        self.timeout = timeout
        self.acl: list[ACL] | None = None
        auth_data = None
        if credential is not None:
            user, password = credential
            self.acl = [make_digest_acl(user, password, all=True)]
            auth_data = [("digest", f"{user}:{password}")]
        self.client = client or KazooClient(
            hosts=hosts,
            timeout=timeout,
            randomize_hosts=True,
            connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1.5, "max_delay": 0.5},
            command_retry={"max_tries": 3, "delay": 0.05, "backoff": 1.5, "max_delay": 0.5},
            auth_data=auth_data,
            default_acl=self.acl,
            handler=BoundedConnectHandler(connect_timeout(hosts, timeout)),
        )
        self.operations = 0  # requests issued through this store; bench/ reads it

    # -- connection -------------------------------------------------------------------

    def start(
        self,
        *,
        attempt_timeout: float = 5.0,
        give_up_after: float | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_retry: Callable[[int, float], None] | None = None,
    ) -> bool:
        """Connect, retrying until connected, ``give_up_after`` seconds, or should_stop().

        ``on_retry(attempt, delay)`` is called before each wait. Returns True once
        connected, False if it gave up or was told to stop; writes nothing.
        """
        started = time.monotonic()
        attempt = 0
        delay = 0.5
        while not should_stop():
            attempt += 1
            try:
                self.client.start(timeout=attempt_timeout)
                return True
            except (KazooTimeoutError, KazooException, OSError):
                self.client.stop()
            if give_up_after is not None and time.monotonic() - started >= give_up_after:
                return False
            if on_retry:
                on_retry(attempt, delay)
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not should_stop():
                time.sleep(0.05)
            delay = min(delay * 2, 5.0)
        return False

    def stop(self) -> None:
        """Close the session (ephemeral znodes go at once) and release the client."""
        try:
            self.client.stop()
            self.client.close()
        except KazooException:  # pragma: no cover - best effort at shutdown
            pass

    @property
    def connected(self) -> bool:
        return self.client.state == KazooState.CONNECTED

    @property
    def session_id(self) -> int | None:
        client_id = self.client.client_id
        return client_id[0] if client_id else None

    def add_listener(self, listener: Callable[[str], Any]) -> None:
        """Call ``listener(state)`` on CONNECTED/SUSPENDED/LOST (from kazoo's thread)."""
        self.client.add_listener(listener)

    def remove_listener(self, listener: Callable[[str], Any]) -> None:
        """Stop calling a listener added with :meth:`add_listener`."""
        self.client.remove_listener(listener)

    # -- reads --------------------------------------------------------------------------

    def get(self, path: str) -> bytes | None:
        """Fresh read of a znode's data; None if it does not exist."""
        self.operations += 1
        try:
            return self._call(self.client.get, path)[0]
        except NoNodeError:
            return None

    def get_versioned(self, path: str) -> tuple[bytes | None, int]:
        """Fresh read of a znode's data and data version; ``(None, -1)`` if it does not exist."""
        self.operations += 1
        try:
            data, stat = self._call(self.client.get, path)
        except NoNodeError:
            return None, -1
        return data, stat.version

    def get_text(self, path: str, default: str = "") -> str:
        data = self.get(path)
        return data.decode() if data else default

    def exists(self, path: str) -> bool:
        self.operations += 1
        return self._call(self.client.exists, path) is not None

    def ephemeral_owner(self, path: str) -> int | None:
        """The session that owns an ephemeral znode (0 for a persistent one); None if absent."""
        self.operations += 1
        stat = self._call(self.client.exists, path)
        return None if stat is None else stat.ephemeralOwner

    def children(self, path: str) -> list[str]:
        self.operations += 1
        try:
            return sorted(self._call(self.client.get_children, path))
        except NoNodeError:
            return []

    # -- writes -------------------------------------------------------------------------

    def set(self, path: str, value: Value, *, create: bool = True) -> Commit:
        """Write a znode, creating it (and its parents) when ``create`` and missing.

        Without ``create``, a missing znode is a StateError (nothing is written).
        """
        data = to_bytes(value)
        self.operations += 1
        try:
            stat = self._call(self.client.set, path, data)
        except NoNodeError:
            if not create:
                raise StateError(f"{path} does not exist") from None
            self.operations += 1
            try:
                self._call(self.client.create, path, data, makepath=True)
            except NodeExistsError:
                stat = self._call(self.client.set, path, data)
            else:
                return Commit(self.client.last_zxid, {path: 0})
        return Commit(stat.mzxid, {path: stat.mzxid})

    def ensure(self, path: str) -> None:
        """Create an empty znode and its parents if missing."""
        self.operations += 1
        self._call(self.client.ensure_path, path)

    def delete(self, path: str, *, recursive: bool = False) -> Commit:
        """Delete a znode (missing is fine)."""
        self.operations += 1
        try:
            self._call(self.client.delete, path, recursive=recursive)
        except NoNodeError:
            pass
        except NotEmptyError as error:
            raise StateError(f"{path} has children") from error
        return Commit(self.client.last_zxid, deleted=frozenset({path}))

    def commit(self, txn: Transaction) -> Commit:
        """Apply every operation of ``txn`` atomically, or none of them.

        Returns what was committed. Raises ConflictError when a version check or a
        create/delete precondition failed (then nothing was written).
        """
        if not txn.ops:
            return NOTHING
        request = self.client.transaction()
        for name, args, kwargs in txn.ops:
            getattr(request, name)(*args, **kwargs)
        self.operations += 1
        results = self._call(request.commit)
        answered_at = self.client.last_zxid
        failures = [
            (op, result)
            for op, result in zip(txn.ops, results, strict=False)
            if isinstance(result, Exception) and not isinstance(result, RolledBackError)
        ]
        if failures:
            (name, args, _), error = failures[0]
            if isinstance(error, NoAuthError):
                raise AccessDeniedError(args[0])
            raise ConflictError(f"transaction failed at {name} {args[0]}: {type(error).__name__}")
        return _committed(txn, results, answered_at)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """``with store.transaction() as txn: txn.set(...)`` commits on normal exit."""
        txn = Transaction()
        yield txn
        self.commit(txn)

    # -- helpers ------------------------------------------------------------------------

    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (NoNodeError, NodeExistsError, NotEmptyError, BadVersionError):
            raise
        except NoAuthError as error:
            raise AccessDeniedError(args[0] if args and isinstance(args[0], str) else "") from error
        except KazooTimeoutError as error:
            raise NotConnectedError(f"ZooKeeper did not answer: {error}") from error
        except KazooException as error:
            if self.client.state != KazooState.CONNECTED:
                raise NotConnectedError(f"not connected to ZooKeeper ({self.hosts})") from error
            raise StateError(f"ZooKeeper error: {type(error).__name__}: {error}") from error


def _committed(txn: Transaction, results: list[Any], answered_at: int) -> Commit:
    """The Commit of an applied transaction from kazoo's per-operation results."""
    set_zxids = [
        result.mzxid for (name, _, _), result in zip(txn.ops, results, strict=False) if name == "set_data"
    ]
    zxid = max(set_zxids) if set_zxids else 0  # every operation of one multi has the same zxid
    changed: dict[str, int] = {}
    deleted: set[str] = set()
    for name, args, _ in txn.ops:
        path = args[0]
        if name in ("create", "set_data"):
            changed[path] = zxid
            deleted.discard(path)
        elif name == "delete":
            deleted.add(path)
            changed.pop(path, None)
    return Commit(zxid or answered_at, changed, frozenset(deleted))
