"""A watch-maintained, in-memory copy of cluster state.

Readers (the node daemon's loop, the API) use this instead of a ZooKeeper round trip
per object. It is built on kazoo's TreeCache recipe: one cache per top-level tree,
kept current by watches, re-synchronised after reconnects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from kazoo.recipe.cache import TreeCache, TreeEvent

from pvc.state import paths
from pvc.state.records import (
    NO_PRIMARY,
    ClusterConfig,
    Keepalive,
    NodeRecord,
    NodeStatic,
    decode_text,
    parse_bool,
)
from pvc.state.states import CoordinatorState, DaemonState, DomainState
from pvc.state.store import Commit, Store
from pvc.state.vms import VmPlacement, VmRecord, read_vm

Listener = Callable[[str], None]
T = TypeVar("T")

#: Trees cached by default.
DEFAULT_ROOTS = (paths.CONFIG, paths.NODES, paths.FAULTS, paths.DOMAINS, paths.DOMAIN_NAMES, paths.NETWORKS)
#: Longest wait for a cache to show a write (see :meth:`ClusterCache.wait_for`).
SETTLE_TIMEOUT = 2.0
#: Remembered decodings (see ``parsed``) kept before those of removed znodes are dropped.
DECODED_SWEEP_MINIMUM = 1024
#: Longest a :meth:`ClusterCache.wait_until` waiter sleeps without a change before looking again.
WAIT_RECHECK = 1.0


class ClusterCache:
    """Cached view of the trees in ``roots``; call :meth:`start` then :meth:`wait_ready`."""

    def __init__(self, store: Store, roots: Iterable[str] = DEFAULT_ROOTS) -> None:
        self._store = store
        self._trees = {root: TreeCache(store.client, root) for root in roots}
        self._initialised: set[str] = set()
        self._ready = threading.Event()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._decoded: dict[str, tuple[int, object]] = {}
        self._decoded_sweep_at = DECODED_SWEEP_MINIMUM
        self._waiters: dict[threading.Event, str] = {}
        self._waiters_lock = threading.Lock()
        self.errors: list[Exception] = []
        for root, tree in self._trees.items():
            tree.listen(self._make_listener(root))
            tree.listen_fault(self.errors.append)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        for tree in self._trees.values():
            tree.start()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until every tree has loaded once."""
        return self._ready.wait(timeout)

    def close(self) -> None:
        for tree in self._trees.values():
            tree.close()

    def listen(self, listener: Listener) -> None:
        """Call ``listener(path)`` whenever a cached znode is added, changed or removed."""
        self._listeners.append(listener)

    def _make_listener(self, root: str) -> Callable[[TreeEvent], None]:
        def on_event(event: TreeEvent) -> None:
            if event.event_type == TreeEvent.INITIALIZED:
                with self._lock:
                    self._initialised.add(root)
                    if len(self._initialised) == len(self._trees):
                        self._ready.set()
                return
            if event.event_data is None:
                return
            self._wake(event.event_data.path)
            for listener in self._listeners:
                listener(event.event_data.path)

        return on_event

    # -- raw access ---------------------------------------------------------------------

    def _tree_for(self, path: str) -> TreeCache:
        for root, tree in self._trees.items():
            if path == root or path.startswith(root + "/"):
                return tree
        raise KeyError(f"{path} is not in a cached tree")

    def data(self, path: str) -> bytes | None:
        """Cached data of a znode, or None if absent."""
        node = self._tree_for(path).get_data(path)
        return None if node is None else node.data

    def wait_for(self, commit: Commit, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait until the cache shows ``commit`` (read-your-writes); True if it does in time.

        A written znode is shown once the cache holds it at the commit's zxid or later (or
        merely holds it, for a create whose zxid is not known); a deleted one once the
        cache no longer holds it, or holds one created after the delete. Znodes outside
        the cached trees are not waited for. Watches normally catch up within
        milliseconds; after ``timeout`` seconds the caller goes on regardless.
        """
        changed = {path: zxid for path, zxid in commit.changed.items() if self._holds_tree(path)}
        deleted = [path for path in commit.deleted if self._holds_tree(path)]

        def shown() -> bool:
            return all(self.mzxid(path) >= zxid for path, zxid in changed.items()) and all(
                self._gone_since(path, commit.zxid) for path in deleted
            )

        return bool(self.wait_until(shown, timeout))

    def _wake(self, path: str) -> None:
        with self._waiters_lock:
            for woken, under in self._waiters.items():
                if path == under or path.startswith(under + "/") or not under:
                    woken.set()

    def wait_until(self, check: Callable[[], T], timeout: float, under: str = "") -> T | None:
        """``check()``'s first truthy result, evaluated now and after each change the cache
        sees at or below ``under`` (anywhere by default), or None once ``timeout`` seconds
        pass. A waiter sleeps between changes (it costs no CPU and is not woken by unrelated
        ones), so many requests can wait at once; exceptions from ``check`` propagate.
        """
        deadline = time.monotonic() + timeout
        changed = threading.Event()
        with self._waiters_lock:
            self._waiters[changed] = under.rstrip("/")
        try:
            while True:
                changed.clear()
                result = check()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                changed.wait(min(left, WAIT_RECHECK))
        finally:
            with self._waiters_lock:
                del self._waiters[changed]

    def _holds_tree(self, path: str) -> bool:
        try:
            self._tree_for(path)
        except KeyError:
            return False
        return True

    def _gone_since(self, path: str, zxid: int) -> bool:
        node = self._tree_for(path).get_data(path)
        return node is None or (node.stat is not None and node.stat.czxid > zxid)

    def version(self, path: str) -> int:
        """Cached data version of a znode, or -1 if absent."""
        return self.version_and_mzxid(path)[0]

    def mzxid(self, path: str) -> int:
        """Cached zxid of the last change of a znode (orders writes across re-creation), or -1."""
        return self.version_and_mzxid(path)[1]

    def version_and_mzxid(self, path: str) -> tuple[int, int]:
        """Cached data version and last-change zxid of a znode, read together (one stat), or (-1, -1)."""
        node = self._tree_for(path).get_data(path)
        if node is None or node.stat is None:
            return -1, -1
        return node.stat.version, node.stat.mzxid

    def children(self, path: str) -> list[str]:
        return sorted(self._tree_for(path).get_children(path, default=frozenset()))

    def text(self, path: str, default: str = "") -> str:
        return decode_text(self.data(path), default)

    # -- typed records ------------------------------------------------------------------

    def cluster_config(self) -> ClusterConfig:
        return ClusterConfig(
            primary_node=self.text(paths.PRIMARY_NODE, NO_PRIMARY),
            maintenance=parse_bool(self.text(paths.MAINTENANCE, "false")),
            cluster_name=self.text(paths.CLUSTER_NAME),
        )

    def daemon_state(self, node: str) -> str:
        """A node's daemon state as recorded ("" while it has none)."""
        return self.text(paths.node_daemon_state(node))

    def domain_state(self, node: str) -> tuple[str, int]:
        """A node's domain state as recorded ("" while it has none) and its data version."""
        path = paths.node_domain_state(node)
        return self.text(path), self.version(path)

    def _parsed(self, path: str, parse: Callable[[bytes | None], T]) -> T:
        """``parse(data)`` of a cached znode, parsed once per change of it: the records read on
        every request (keepalives, node facts) are not decoded again until they change."""
        node = self._tree_for(path).get_data(path)
        if node is None or node.stat is None:
            return parse(None if node is None else node.data)
        seen = self._decoded.get(path)
        if seen is not None and seen[0] == node.stat.mzxid:
            return seen[1]  # type: ignore[return-value]
        value = parse(node.data)
        self._decoded[path] = (node.stat.mzxid, value)
        if len(self._decoded) >= self._decoded_sweep_at:
            self._forget_removed()
        return value

    def parsed(self, path: str, parse: Callable[[bytes | None], T]) -> T:
        """``parse(data)`` of a cached znode, remembered until the znode changes: for readers
        that derive the same facts from the same records on every request."""
        return self._parsed(path, parse)

    def forget_parsed(self) -> None:
        """Drop every remembered decoding: the next reads decode again (what a fresh cache does)."""
        self._decoded.clear()

    def _forget_removed(self) -> None:
        """Drop what was remembered of znodes that are gone (amortised: when the memory has
        doubled since the last time)."""
        for path in list(self._decoded):
            if self._tree_for(path).get_data(path) is None:
                del self._decoded[path]
        self._decoded_sweep_at = max(DECODED_SWEEP_MINIMUM, 2 * len(self._decoded))

    def keepalive(self, node: str) -> Keepalive | None:
        """A node's last keepalive, or None."""
        return self._parsed(paths.node_keepalive(node), Keepalive.from_bytes)

    def keepalive_zxid(self, node: str) -> int:
        """The zxid of a node's last keepalive (changes with every keepalive), or -1."""
        return self.mzxid(paths.node_keepalive(node))

    def primary_request_zxid(self) -> int:
        """The zxid of the last change of the requested primary (orders it against one's own takeover)."""
        return self.mzxid(paths.PRIMARY_NODE)

    def node_names(self) -> list[str]:
        return self.children(paths.NODES)

    def node(self, name: str) -> NodeRecord | None:
        """The cached record of one node, or None if it never registered."""
        if self._tree_for(paths.NODES).get_data(paths.node(name)) is None:
            return None
        static = self._parsed(paths.node(name), NodeStatic.from_bytes) or NodeStatic(name=name)
        keepalive_version, keepalive_zxid = self.version_and_mzxid(paths.node_keepalive(name))
        return NodeRecord(
            name=name,
            static=static,
            daemon_state=self.text(paths.node_daemon_state(name), DaemonState.INIT),
            coordinator_state=self.text(paths.node_coordinator_state(name), CoordinatorState.CLIENT),
            domain_state=self.text(paths.node_domain_state(name), DomainState.READY),
            keepalive=self.keepalive(name),
            present=self.data(paths.node_presence(name)) is not None,
            daemon_state_version=self.version(paths.node_daemon_state(name)),
            keepalive_version=keepalive_version,
            keepalive_zxid=keepalive_zxid,
        )

    def nodes(self) -> list[NodeRecord]:
        """Cached records of every registered node, sorted by name."""
        records = (self.node(name) for name in self.node_names())
        return [record for record in records if record is not None]

    # -- VMs ----------------------------------------------------------------------------

    def vm_uuids(self) -> list[str]:
        """UUIDs of every VM."""
        return self.children(paths.DOMAINS)

    def vm(self, uuid: str) -> VmRecord | None:
        """The cached record of one VM, or None."""
        return read_vm(self.data, uuid)

    def vms(self) -> list[VmRecord]:
        """Cached records of every VM."""
        records = (self.vm(uuid) for uuid in self.vm_uuids())
        return [record for record in records if record is not None]

    def vm_placement(self, uuid: str) -> VmPlacement | None:
        """A VM's cached placement (desired state, node), decoded once per change of it."""
        return self._parsed(paths.domain_state(uuid), VmPlacement.from_bytes)

    def vm_meta_version(self, uuid: str) -> int:
        """Data version of a VM's metadata znode (for compare-and-set), or -1."""
        return self.version(paths.domain(uuid))

    def vm_console(self, uuid: str) -> str:
        """The console tail last copied for a VM by its node."""
        return self.text(paths.domain_console(uuid))

    def vm_uuid_by_name(self, name: str) -> str | None:
        """The UUID of the VM called ``name``, from the name index."""
        data = self.data(paths.domain_name(name)) if "/" not in name else None
        return data.decode() if data else None
