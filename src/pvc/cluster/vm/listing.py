"""The VM list, kept ready to serve from memory.

Building a VM's API object means decoding its records and parsing its XML; doing that
for thousands of VMs per request would be slow. :class:`VmListing` keeps, per VM, the
decoded record and its static fields already serialised to JSON, dropped whenever a
znode of that VM changes (the cache tells it). Live statistics come from the nodes'
keepalives and are serialised once per keepalive. A request then only filters and
joins bytes.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from operator import attrgetter

from pvc.cluster.vm.queries import vm_filter
from pvc.cluster.vm.shape import XmlFacts, static_view, stats_view, xml_facts
from pvc.cluster.vm.snapshots import age, complete_snapshots, snapshot_view
from pvc.state.cache import ClusterCache
from pvc.state.vm_snapshots import VmSnapshot
from pvc.state.vms import VmRecord, vm_of_path


@dataclass(frozen=True)
class _Snapshot:
    """One element of a VM's ``snapshots``, serialised around its ``age`` (which changes
    with time, so it is written at each request)."""

    timestamp: float
    before_age: bytes  # '{"name":...,"timestamp":"...",'
    after_age: bytes  # ',"rbd_snapshots":[...],"xml_diff_lines":[...]}'


@dataclass(frozen=True)
class _Entry:
    record: VmRecord
    facts: XmlFacts
    head: bytes  # the static fields up to ``snapshots``, as '{"name":...,"tags":[...]'
    snapshots: tuple[_Snapshot, ...]
    tail: bytes  # the static fields after ``snapshots``, as ',"description":...' (no brace)
    idle_stats: bytes  # the statistics fields of a VM that is not running, as ",...}"


@dataclass
class _NodeStats:
    """The statistics fragments of the VMs running on one node, for one version of its keepalive."""

    zxid: int
    #: The keepalive's per-VM figures, decoded once (on first need) for all its VMs.
    vm_stats: dict[str, dict] | None = None
    fragments: dict[str, tuple[_Entry, bytes]] = field(default_factory=dict)


_BY_NAME = attrgetter("record.meta.name")


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _serialised(snapshot: VmSnapshot, current_xml: str) -> _Snapshot:
    view = snapshot_view(snapshot, current_xml)
    before = {"name": view["name"], "timestamp": view["timestamp"]}
    after = {"rbd_snapshots": view["rbd_snapshots"], "xml_diff_lines": view["xml_diff_lines"]}
    return _Snapshot(snapshot.timestamp, _dumps(before)[:-1] + b',"age":', b"," + _dumps(after)[1:])


class VmListing:
    """Per-VM serialised API objects, invalidated by cache events."""

    def __init__(self, cache: ClusterCache) -> None:
        self._cache = cache
        self._entries: dict[str, _Entry] = {}
        self._generations: dict[str, int] = {}
        self._node_stats: dict[str, _NodeStats] = {}
        self._lock = threading.Lock()
        cache.listen(self._on_change)

    def _on_change(self, path: str) -> None:
        uuid = vm_of_path(path)
        if uuid is None:
            return
        with self._lock:
            self._generations[uuid] = self._generations.get(uuid, 0) + 1
            self._entries.pop(uuid, None)

    def _entry(self, uuid: str) -> _Entry | None:
        entry = self._entries.get(uuid)
        if entry is not None:
            return entry
        generation = self._generations.get(uuid, 0)
        record = self._cache.vm(uuid)
        if record is None:
            return None
        facts = xml_facts(record.xml)
        static = static_view(record, facts)
        keys = list(static)
        cut = keys.index("snapshots")
        entry = _Entry(
            record=record,
            facts=facts,
            head=_dumps({key: static[key] for key in keys[:cut]})[:-1],
            snapshots=tuple(
                _serialised(snapshot, record.xml)
                for snapshot in complete_snapshots(self._cache.data, self._cache.children, record)
            ),
            tail=b"," + _dumps({key: static[key] for key in keys[cut + 1 :]})[1:-1],
            idle_stats=b"," + _dumps(stats_view(facts, None))[1:],
        )
        with self._lock:
            if self._generations.get(uuid, 0) == generation:
                self._entries[uuid] = entry
        return entry

    def _node(self, node: str) -> _NodeStats:
        """The fragments of ``node``'s VMs for its current keepalive (emptied when it changes)."""
        zxid = self._cache.keepalive_zxid(node)
        known = self._node_stats.get(node)
        if known is None or known.zxid != zxid:
            known = _NodeStats(zxid)
            self._node_stats[node] = known
        return known

    def _stats(self, entry: _Entry, nodes: dict[str, _NodeStats]) -> bytes:
        """The statistics fields of ``entry``; ``nodes`` memoises :meth:`_node` for one render."""
        node = entry.record.placement.running_on
        if not node:
            return entry.idle_stats
        known = nodes.get(node)
        if known is None:
            known = nodes[node] = self._node(node)
        uuid = entry.record.uuid
        cached = known.fragments.get(uuid)
        # A fragment belongs to one entry: a changed VM (new XML: other disks or NICs) gets
        # a new entry, so its figures are rendered again even if the keepalive is the same.
        fragment = cached[1] if cached is not None and cached[0] is entry else None
        if fragment is None:
            if known.vm_stats is None:
                keepalive = self._cache.keepalive(node)
                known.vm_stats = keepalive.vm_stats if keepalive else {}
            stats = known.vm_stats.get(uuid)
            if stats is None:
                fragment = entry.idle_stats
            else:
                fragment = b"," + _dumps(stats_view(entry.facts, stats))[1:]
            known.fragments[uuid] = (entry, fragment)
        return fragment

    # -- queries ------------------------------------------------------------------------

    def records(self, **filters: str | bool | None) -> list[_Entry]:
        """Entries of the VMs that pass :func:`pvc.cluster.vm.queries.vm_filter`, sorted by name."""
        passes = vm_filter(**filters)
        entries = (self._entry(uuid) for uuid in self._cache.vm_uuids())
        result = [entry for entry in entries if entry is not None and passes(entry.record)]
        result.sort(key=_BY_NAME)
        return result

    def render(self, entries: list[_Entry], now: float | None = None) -> bytes:
        """A JSON array of the entries' API objects (snapshot ages as of ``now``)."""
        nodes: dict[str, _NodeStats] = {}
        now = time.time() if now is None else now
        parts = [b"["]
        for entry in entries:
            parts += (entry.head, b',"snapshots":[')
            for index, snapshot in enumerate(entry.snapshots):
                if index:
                    parts.append(b",")
                parts += (snapshot.before_age, _dumps(age(now - snapshot.timestamp)), snapshot.after_age)
            parts += (b"]", entry.tail, self._stats(entry, nodes), b",")
        if entries:
            parts[-1] = b"]"  # the last comma
        else:
            parts.append(b"]")
        return b"".join(parts)  # one copy of the bytes

    def render_one(self, uuid: str) -> bytes | None:
        """A one-element JSON array of the VM's API object (the v1 element shape)."""
        entry = self._entry(uuid)
        return None if entry is None else self.render([entry])
