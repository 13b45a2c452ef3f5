"""The smallest set of row changes that makes served zones what they should be (no I/O).

:func:`plan` compares the zones built by :mod:`pvc.net.dns_records` with the rows the
PowerDNS database holds for PVC's domains and says which rows to insert, update and
delete, so a lease that moves costs a couple of row updates, not a rewritten zone.

SOA serials: a zone whose records (or SOA fields) change gets the serial
``max(previous + 1, now)`` (``now`` in seconds since the epoch); an unchanged zone keeps
its serial; a new zone starts at ``now``. The serial is therefore a time stamp in the
normal case, which also keeps it increasing across a takeover that rebuilds the database
from scratch on another coordinator (clocks in step); only a burst of more than one
change a second pushes it briefly ahead of the clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from pvc.net.dns_records import DnsZone, Record

#: Largest SOA serial (an unsigned 32-bit number).
MAX_SERIAL = 2**32 - 1


@dataclass(frozen=True)
class Row:
    """A ``records`` row as it is in the database."""

    id: int
    name: str
    type: str
    content: str
    ttl: int
    disabled: bool = False

    def record(self) -> Record:
        return Record(self.name, self.type, self.content, self.ttl)


@dataclass(frozen=True)
class CurrentZone:
    """A PVC-managed ``domains`` row and its records."""

    id: int
    name: str
    rows: tuple[Row, ...] = ()


@dataclass(frozen=True)
class Plan:
    """Row changes: zones to create and drop, records to insert, update and delete.

    ``inserts`` name their zone (which may be one of ``create_zones``); ``updates`` and
    ``deletes`` name rows by id; dropping a zone drops its records with it.
    ``serials`` holds the new serial of every zone whose SOA is written; ``conflicts``
    the zones left out because a domain PVC does not manage holds their name.
    """

    create_zones: tuple[str, ...] = ()
    drop_zones: tuple[int, ...] = ()
    inserts: tuple[tuple[str, Record], ...] = ()
    updates: tuple[tuple[int, Record], ...] = ()
    deletes: tuple[int, ...] = ()
    serials: dict[str, int] = field(default_factory=dict)
    conflicts: tuple[str, ...] = ()

    @property
    def row_changes(self) -> int:
        """How many record rows this plan writes (dropped zones' records not counted)."""
        return len(self.inserts) + len(self.updates) + len(self.deletes)

    @property
    def empty(self) -> bool:
        return not (self.create_zones or self.drop_zones or self.row_changes)


def serial_of(content: str) -> int:
    """The serial in an SOA record's content, 0 if it has none."""
    fields = content.split()
    try:
        return int(fields[2]) if len(fields) >= 3 else 0
    except ValueError:
        return 0


def next_serial(previous: int, now: int) -> int:
    """The serial after ``previous``: the clock (``now``) unless that would not increase it."""
    return min(max(previous + 1, now), MAX_SERIAL)


def _pair(
    missing: list[Record], spare: list[Row], key: Callable[[Record], tuple[str, ...]]
) -> tuple[list[tuple[int, Record]], list[Record], list[Row]]:
    """Turn a missing record and a spare row with the same ``key`` into one update."""
    pool: dict[tuple[str, ...], list[Row]] = defaultdict(list)
    for row in spare:
        pool[key(row.record())].append(row)
    updates, unpaired = [], []
    for record in missing:
        rows = pool.get(key(record))
        if rows:
            updates.append((rows.pop(0).id, record))
        else:
            unpaired.append(record)
    used = {row_id for row_id, _ in updates}
    return updates, unpaired, [row for row in spare if row.id not in used]


def diff_records(
    desired: Collection[Record], rows: Sequence[Row]
) -> tuple[list[Record], list[tuple[int, Record]], list[int]]:
    """Inserts, updates (row id, new record) and deletes (row ids) turning ``rows`` into ``desired``.

    Rows equal to a desired record stay; a spare row is reused for a missing record of
    the same name and type first, then of the same type; the rest is inserted or deleted.
    """
    wanted = set(desired)
    spare = []
    for row in sorted(rows, key=lambda row: row.id):
        record = row.record()
        if record in wanted and not row.disabled:
            wanted.discard(record)
        else:
            spare.append(row)
    missing = sorted(wanted)
    updates, missing, spare = _pair(missing, spare, lambda r: (r.name, r.type))
    more, missing, spare = _pair(missing, spare, lambda r: (r.type,))
    return missing, updates + more, [row.id for row in spare]


def _soa_change(
    zone: DnsZone, soa_rows: list[Row], records_changed: bool, now: int
) -> tuple[Record | None, int]:
    """The SOA record to write (None: keep the row) and the zone's serial."""
    current = soa_rows[0] if soa_rows else None
    previous = serial_of(current.content) if current else 0
    unchanged = (
        current and Record(zone.name, "SOA", zone.soa.content(previous), zone.soa.ttl) == current.record()
    )
    if unchanged and not current.disabled and not records_changed:
        return None, previous
    serial = next_serial(previous, now)
    return Record(zone.name, "SOA", zone.soa.content(serial), zone.soa.ttl), serial


def plan(
    desired: Sequence[DnsZone], current: Sequence[CurrentZone], *, now: int, foreign: Collection[str] = ()
) -> Plan:
    """The row changes that turn the ``current`` managed zones into the ``desired`` ones.

    ``now`` is the time (seconds since the epoch) new serials start from; ``foreign`` are
    domain names in the database that PVC does not manage (never touched: a desired zone
    of that name is left out and listed in ``conflicts``). ValueError if a zone is named
    twice or carries an SOA among its records.
    """
    names = [zone.name for zone in desired]
    if len(set(names)) != len(names):
        raise ValueError(f"zones named twice: {sorted({name for name in names if names.count(name) > 1})}")
    if any(record.type == "SOA" for zone in desired for record in zone.records):
        raise ValueError("a zone's SOA comes from its soa fields, not from its records")
    by_name = {zone.name: zone for zone in current}
    wanted = {zone.name for zone in desired}
    create, inserts, updates, deletes, serials, conflicts = [], [], [], [], {}, []
    for zone in desired:
        if zone.name in foreign:
            conflicts.append(zone.name)
            continue
        present = by_name.get(zone.name)
        if present is None:
            serial = next_serial(0, now)
            create.append(zone.name)
            inserts.append((zone.name, Record(zone.name, "SOA", zone.soa.content(serial), zone.soa.ttl)))
            inserts.extend((zone.name, record) for record in sorted(zone.records))
            serials[zone.name] = serial
            continue
        soa_rows = sorted((row for row in present.rows if row.type == "SOA"), key=lambda row: row.id)
        others = [row for row in present.rows if row.type != "SOA"]
        new, changed, gone = diff_records(zone.records, others)
        soa, serial = _soa_change(zone, soa_rows, bool(new or changed or gone), now)
        if soa is not None:
            serials[zone.name] = serial
            if soa_rows:
                changed.append((soa_rows[0].id, soa))
            else:
                new.append(soa)
        gone.extend(row.id for row in soa_rows[1:])
        inserts.extend((zone.name, record) for record in new)
        updates.extend(changed)
        deletes.extend(gone)
    drop = [zone.id for zone in current if zone.name not in wanted]
    return Plan(
        tuple(create), tuple(drop), tuple(inserts), tuple(updates), tuple(deletes), serials, tuple(conflicts)
    )
