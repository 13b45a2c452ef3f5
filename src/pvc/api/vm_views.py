"""The API's VM list, kept ready to serve from memory.

Building a VM's API object means decoding its records and parsing its XML; doing that
for thousands of VMs per request would be slow. :class:`VmViews` keeps, per VM, the
decoded record and its static fields already serialised to JSON, dropped whenever a
znode of that VM changes (the cache tells it). Live statistics come from the nodes'
keepalives and are serialised once per keepalive. A request then only filters and
joins bytes.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from pvc.cluster.vm_view import XmlFacts, static_view, stats_view, xml_facts
from pvc.cluster.vms import vm_filter
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.records import Keepalive
from pvc.state.vms import VmRecord

_DOMAINS_PREFIX = paths.DOMAINS + "/"


@dataclass(frozen=True)
class _Entry:
    record: VmRecord
    facts: XmlFacts
    head: bytes  # the static fields as a JSON object without its closing brace
    idle_stats: bytes  # the statistics fields of a VM that is not running, as ",...}"


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class VmViews:
    """Per-VM serialised API objects, invalidated by cache events."""

    def __init__(self, cache: ClusterCache) -> None:
        self._cache = cache
        self._entries: dict[str, _Entry] = {}
        self._generations: dict[str, int] = {}
        self._node_stats: dict[str, tuple[int, dict[str, bytes]]] = {}
        self._lock = threading.Lock()
        cache.listen(self._on_change)

    def _on_change(self, path: str) -> None:
        if not path.startswith(_DOMAINS_PREFIX):
            return
        uuid = path[len(_DOMAINS_PREFIX) :].split("/", 1)[0]
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

    def _stats(self, entry: _Entry) -> bytes:
        node = entry.record.placement.running_on
        if not node:
            return entry.idle_stats
        keepalive_path = paths.node_keepalive(node)
        zxid = self._cache.mzxid(keepalive_path)
        known = self._node_stats.get(node)
        if known is None or known[0] != zxid:
            known = (zxid, {})
            self._node_stats[node] = known
        fragment = known[1].get(entry.record.uuid)
        if fragment is None:
            keepalive = Keepalive.from_bytes(self._cache.data(keepalive_path))
            stats = keepalive.vm_stats.get(entry.record.uuid) if keepalive else None
            if stats is None:
                return entry.idle_stats
            fragment = b"," + _dumps(stats_view(entry.facts, stats))[1:]
            known[1][entry.record.uuid] = fragment
        return fragment

    # -- queries ------------------------------------------------------------------------

    def records(self, **filters: str | bool | None) -> list[_Entry]:
        """Entries of the VMs that pass :func:`pvc.cluster.vms.vm_filter`, sorted by name."""
        passes = vm_filter(**filters)
        entries = (self._entry(uuid) for uuid in self._cache.vm_uuids())
        result = [entry for entry in entries if entry is not None and passes(entry.record)]
        result.sort(key=lambda entry: entry.record.meta.name)
        return result

    def render(self, entries: list[_Entry]) -> bytes:
        """A JSON array of the entries' API objects."""
        return b"[" + b",".join(entry.head + self._stats(entry) for entry in entries) + b"]"

    def render_one(self, uuid: str) -> bytes | None:
        """A one-element JSON array of the VM's API object (the v1 element shape)."""
        entry = self._entry(uuid)
        return None if entry is None else self.render([entry])
