"""OSDs: listing with statistics, in/out, cluster-wide OSD flags, registration and purge.

Starting and stopping OSD daemons is in :mod:`pvc.storage.daemons`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError, StorageNotFound, StorageTimeout
from pvc.storage.status import reported
from pvc.storage.tiers import check_device_class

#: OSD flags an administrator may set or unset (``ceph osd set|unset``).
FLAGS = (
    "noout",
    "noin",
    "nodown",
    "noup",
    "norebalance",
    "norecover",
    "nobackfill",
    "noscrub",
    "nodeep-scrub",
    "nosnaptrim",
    "notieragent",
    "pause",
)


@dataclass
class Osd:
    """One OSD with its placement, state and usage (sizes in KiB, as Ceph reports them).

    A usage figure is None while the manager's ``osd df`` does not have the OSD (one just
    created, or one it has not heard from yet).
    """

    id: int
    uuid: str
    host: str | None
    device_class: str | None
    up: bool
    in_: bool
    state: list[str] = field(default_factory=list)
    weight: float = 0.0
    reweight: float = 0.0
    primary_affinity: float = 0.0
    utilization: float | None = None
    var: float | None = None
    pgs: int | None = None
    kb: int | None = None
    kb_used: int | None = None
    kb_used_data: int | None = None
    kb_used_omap: int | None = None
    kb_used_meta: int | None = None
    kb_avail: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form; ``in_`` is spelled ``in``."""
        data = asdict(self)
        data["in"] = data.pop("in_")
        return data


def _hosts(tree: dict[str, Any]) -> dict[int, str]:
    """OSD id -> name of the host bucket holding it, from ``osd tree``."""
    hosts: dict[int, str] = {}
    for node in tree.get("nodes", []):
        if node.get("type") == "host":
            for child in node.get("children", []):
                hosts[child] = node["name"]
    return hosts


def list_osds(client: CephClient) -> list[Osd]:
    """Every OSD known to the cluster, by id, with usage from ``osd df``."""
    dump = client.mon_command("osd dump")
    tree = client.mon_command("osd tree")
    usage = {node["id"]: node for node in (client.mgr_command("osd df") or {}).get("nodes", [])}
    hosts = _hosts(tree)
    devices = {node["id"]: node for node in tree.get("nodes", []) if node["id"] >= 0}
    result = []
    for entry in dump.get("osds", []):
        osd_id = entry["osd"]
        stats = usage.get(osd_id, {})
        result.append(
            Osd(
                id=osd_id,
                uuid=entry.get("uuid", ""),
                host=hosts.get(osd_id),
                device_class=devices.get(osd_id, {}).get("device_class"),
                up=bool(entry.get("up")),
                in_=bool(entry.get("in")),
                state=list(entry.get("state", [])),
                weight=float(devices.get(osd_id, stats).get("crush_weight", 0.0)),
                reweight=float(entry.get("weight", 0.0)),
                primary_affinity=float(entry.get("primary_affinity", 0.0)),
                utilization=reported(stats, "utilization", float),
                var=reported(stats, "var", float),
                pgs=reported(stats, "pgs"),
                kb=reported(stats, "kb"),
                kb_used=reported(stats, "kb_used"),
                kb_used_data=reported(stats, "kb_used_data"),
                kb_used_omap=reported(stats, "kb_used_omap"),
                kb_used_meta=reported(stats, "kb_used_meta"),
                kb_avail=reported(stats, "kb_avail"),
            )
        )
    return sorted(result, key=lambda osd: osd.id)


def get(client: CephClient, osd_id: int) -> Osd:
    """One OSD; StorageNotFound if there is none with that id."""
    for osd in list_osds(client):
        if osd.id == osd_id:
            return osd
    raise StorageNotFound(f"osd.{osd_id} does not exist")


def mark_down(client: CephClient, osd_ids: list[int]) -> None:
    """Mark OSDs down at once (their host is known to be off): clients stop waiting on
    them now instead of after the monitors' heartbeat grace. A live OSD marks itself up
    again."""
    client.mon_command("osd down", ids=[str(i) for i in osd_ids])


def ids(client: CephClient) -> list[int]:
    """The ids of every OSD."""
    return sorted(int(i) for i in client.mon_command("osd ls") or [])


def _check_ids(client: CephClient, osd_ids: Iterable[int]) -> list[int]:
    wanted = [_osd_id(i) for i in osd_ids]
    if not wanted:
        raise ValueError("no OSD ids given")
    known = set(ids(client))
    missing = [i for i in wanted if i not in known]
    if missing:
        raise StorageNotFound(f"no such OSD: {', '.join(f'osd.{i}' for i in missing)}")
    return wanted


def _osd_id(value: int | str) -> int:
    text = str(value).removeprefix("osd.")
    if not text.isdigit():
        raise ValueError(f"invalid OSD id {value!r}")
    return int(text)


def set_in(client: CephClient, osd_ids: Iterable[int]) -> None:
    """Mark OSDs in (they take data again, and again after a restart); StorageNotFound for unknown ids."""
    wanted = _check_ids(client, osd_ids)
    client.mon_command("osd unset-group", flags="noin", who=[f"osd.{i}" for i in wanted])
    client.mon_command("osd in", ids=[str(i) for i in wanted])


def keep_out(client: CephClient, osd_id: int) -> None:
    """Mark an OSD out and keep it out when it boots (its own ``noin`` flag) until :func:`set_in`.

    A new OSD is registered "in" and would be marked in again at its first boot anyway.
    """
    wanted = _check_ids(client, [osd_id])
    client.mon_command("osd set-group", flags="noin", who=[f"osd.{i}" for i in wanted])
    client.mon_command("osd out", ids=[str(i) for i in wanted])


def set_out(client: CephClient, osd_ids: Iterable[int]) -> None:
    """Mark OSDs out (their data moves elsewhere); StorageNotFound for unknown ids."""
    wanted = _check_ids(client, osd_ids)
    client.mon_command("osd out", ids=[str(i) for i in wanted])


def set_device_class(client: CephClient, osd_ids: Iterable[int], device_class: str) -> None:
    """Give OSDs a device class (which decides the tiers whose pools they serve).

    Ceph only sets a class on an OSD without one, so the old class is removed first.
    ValueError for a class not in :data:`pvc.storage.tiers.DEVICE_CLASSES`; StorageNotFound
    for unknown ids.
    """
    check_device_class(device_class)
    names = [f"osd.{i}" for i in _check_ids(client, osd_ids)]
    client.mon_command("osd crush rm-device-class", ids=names)
    client.mon_command("osd crush set-device-class", ids=names, **{"class": device_class})


def _check_flag(flag: str) -> str:
    if flag not in FLAGS:
        raise ValueError(f"unknown OSD flag {flag!r}; valid flags: {', '.join(FLAGS)}")
    return flag


def set_flag(client: CephClient, flag: str) -> None:
    """Set a cluster-wide OSD flag such as ``noout``; ValueError for flags not in FLAGS."""
    client.mon_command("osd set", key=_check_flag(flag))


def unset_flag(client: CephClient, flag: str) -> None:
    """Unset a cluster-wide OSD flag; ValueError for flags not in FLAGS."""
    client.mon_command("osd unset", key=_check_flag(flag))


def flags(client: CephClient) -> list[str]:
    """The administrative flags set now (a subset of FLAGS)."""
    dump = client.mon_command("osd dump")
    return [flag for flag in dump.get("flags_set", []) if flag in FLAGS]


def new_id(client: CephClient, osd_uuid: str, osd_id: int | None = None, *, secret: str | None = None) -> int:
    """Register an OSD with ``osd_uuid`` and return its id (the same id again for a known uuid).

    With ``osd_id`` a destroyed OSD's id is taken over (see :func:`destroy`); with
    ``secret`` (a cephx key) the monitors create the OSD's ``osd.<id>`` user with that key.
    """
    inbuf = json.dumps({"cephx_secret": secret}).encode() if secret else b""
    result = client.mon_command("osd new", inbuf=inbuf, uuid=osd_uuid, id=osd_id)
    try:
        return int(result["osdid"])
    except (TypeError, KeyError, ValueError) as exc:
        raise StorageError(f"osd new returned {result!r}") from exc


def safe_to_destroy(client: CephClient, osd_id: int) -> bool:
    """True once no PG depends on the OSD's data any more."""
    result = client.mgr_command("osd safe-to-destroy", ids=[str(osd_id)]) or {}
    return osd_id in result.get("safe_to_destroy", [])


def destroy(client: CephClient, osd_id: int, force: bool = False) -> None:
    """Mark an OSD destroyed: its key and data are gone but its id and CRUSH place stay,
    for a replacement device to take over (``new_id(..., osd_id=)``).

    Without ``force`` Ceph refuses while the OSD's data is still needed; a caller that has
    already seen it safe to destroy passes ``force`` (the PG statistics Ceph checks lag).
    """
    client.mgr_command("osd destroy", id=osd_id, force=force or None, yes_i_really_mean_it=True)


def weight(client: CephClient, osd_id: int, value: float) -> None:
    """Set the OSD's CRUSH weight (its share of the data relative to the others)."""
    if value <= 0:
        raise ValueError(f"OSD weight must be positive, not {value}")
    client.mon_command("osd crush reweight", name=f"osd.{osd_id}", weight=float(value))


def purge(client: CephClient, osd_id: int, force: bool = True) -> None:
    """Remove an OSD from the CRUSH map, its auth key and its id; no-op if it does not exist.

    Without ``force`` Ceph refuses while the OSD's data is still needed.
    """
    if osd_id not in ids(client):
        return
    client.mgr_command("osd purge", id=osd_id, force=force or None, yes_i_really_mean_it=True)


def wait_up(
    client: CephClient, osd_ids: Iterable[int], timeout: float = 60.0, *, require_in: bool = True
) -> None:
    """Wait until all the OSDs are up (and in, with ``require_in``); StorageTimeout naming the rest."""
    wanted = set(osd_ids)
    deadline = time.monotonic() + timeout
    while True:
        dump = client.mon_command("osd dump")
        ready = {e["osd"] for e in dump.get("osds", []) if e.get("up") and (e.get("in") or not require_in)}
        pending = sorted(wanted - ready)
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(f"osd.{i}" for i in pending)
            state = "up and in" if require_in else "up"
            raise StorageTimeout(f"not {state} after {timeout:.0f} s: {names}")
        time.sleep(0.25)
