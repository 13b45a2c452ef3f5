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
from dataclasses import dataclass, field
from operator import attrgetter

from pvc.cluster.vm.queries import vm_filter
from pvc.cluster.vm.shape import XmlFacts, static_view, stats_view, xml_facts
from pvc.state.cache import ClusterCache
from pvc.state.vms import VmRecord, vm_of_path


@dataclass(frozen=True)
class _Entry:
    record: VmRecord
    facts: XmlFacts
    head: bytes  # the static fields as a JSON object without its closing brace
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
        entry = _Entry(
            record=record,
            facts=facts,
            head=_dumps(static_view(record, facts))[:-1],
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

    def render(self, entries: list[_Entry]) -> bytes:
        """A JSON array of the entries' API objects."""
        nodes: dict[str, _NodeStats] = {}
        parts = [b"["]
        for entry in entries:
            parts += (entry.head, self._stats(entry, nodes), b",")
        if entries:
            parts[-1] = b"]"  # the last comma
        else:
            parts.append(b"]")
        return b"".join(parts)  # one copy of the bytes

    def render_one(self, uuid: str) -> bytes | None:
        """A one-element JSON array of the VM's API object (the v1 element shape)."""
        entry = self._entry(uuid)
        return None if entry is None else self.render([entry])
