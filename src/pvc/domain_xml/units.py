"""libvirt's memory units (the ``unit`` attribute of ``<memory>`` and its kin), in bytes."""

from __future__ import annotations

#: Unit names in lower case → bytes. Without a unit, libvirt means KiB.
LIBVIRT_UNITS = {
    "b": 1,
    "bytes": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 2**20,
    "mib": 2**20,
    "mb": 10**6,
    "g": 2**30,
    "gib": 2**30,
    "gb": 10**9,
    "t": 2**40,
    "tib": 2**40,
    "tb": 10**12,
}
DEFAULT_UNIT = "KiB"


def unit_bytes(unit: str | None) -> int | None:
    """Bytes in one ``unit`` (None: libvirt's default, KiB); None for a unit libvirt does not know."""
    return LIBVIRT_UNITS.get((unit or DEFAULT_UNIT).lower())
