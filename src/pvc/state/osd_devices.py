"""Where each OSD lives: ``/ceph/osd_devices/<id>``, written by the OSD tasks.

Ceph knows its OSDs but not which PVC node and device each one was made on; the OSD
tasks record that here when they create or refresh an OSD and forget it when they
remove one. Unlike the rest of ``/ceph``, this is not a mirror of Ceph: PVC owns it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pvc.state import paths
from pvc.state.records import _Record, encode
from pvc.state.store import Commit, Store

Reader = Callable[[str], bytes | None]


@dataclass(frozen=True)
class OsdDevice(_Record):
    """An OSD's node and devices, as its add (or replace, or refresh) task recorded them."""

    node: str = ""
    device: str = ""
    #: The dedicated DB device (an LV or a file) and its size in bytes; "" and 0 without one.
    db_device: str = ""
    db_size: int = 0
    kind: str = ""
    weight: float = 1.0


def read(reader: Reader, osd_id: int | str) -> OsdDevice:
    """The record of OSD ``osd_id`` through ``reader`` (a cache's ``data`` or a store's ``get``);
    an empty one (no node) for an OSD PVC did not make."""
    return OsdDevice.from_bytes(reader(paths.ceph_osd_device(osd_id))) or OsdDevice()


def read_all(store: Store) -> dict[int, OsdDevice]:
    """Every recorded OSD by id (fresh reads)."""
    return {
        int(name): read(store.get, name) for name in store.children(paths.CEPH_OSD_DEVICES) if name.isdigit()
    }


def write(store: Store, osd_id: int, device: OsdDevice) -> Commit:
    """Record where OSD ``osd_id`` lives."""
    return store.set(paths.ceph_osd_device(osd_id), encode(device), create=True)


def forget(store: Store, osd_id: int) -> Commit:
    """Drop the record of a removed OSD (missing is fine)."""
    return store.delete(paths.ceph_osd_device(osd_id))
