"""Replicated RBD pools: list with statistics, create, remove, change the PG count.

A pool's tier (see :mod:`pvc.storage.tiers`) picks its CRUSH rule; a tier's rule is made
the first time a pool asks for it, with the same failure domain as the default rule.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import rbd

from pvc.storage import status
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageExists, StorageNotFound, translated
from pvc.storage.status import reported
from pvc.storage.tiers import DEFAULT_TIER, check_tier, tier_of_rule, tier_rule_name

#: Pool names PVC accepts (Ceph itself would take almost anything, spaces included).
POOL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
MAX_COPIES = 10
MAX_PGS = 32768


@dataclass(frozen=True)
class Replication:
    """How many copies a pool keeps, and how many must be available for I/O."""

    copies: int
    mincopies: int

    def __str__(self) -> str:
        return f"copies={self.copies},mincopies={self.mincopies}"


@dataclass
class Pool:
    """A pool with its settings and usage (bytes).

    ``pg_num`` is the PG count asked for; Ceph moves ``pg_num_current`` towards it step by
    step after a change. A usage figure is None while Ceph's statistics do not have it yet
    (a pool just created is listed a stats period or two before it has any).
    """

    name: str
    id: int
    copies: int
    mincopies: int
    pg_num: int
    pgp_num: int
    pg_num_current: int
    tier: str = DEFAULT_TIER
    crush_rule: str = ""
    applications: list[str] = field(default_factory=list)
    stored_bytes: int | None = None
    used_bytes: int | None = None
    free_bytes: int | None = None
    used_percent: float | None = None
    objects: int | None = None
    object_copies: int | None = None
    object_clones: int | None = None
    objects_degraded: int | None = None
    objects_missing: int | None = None
    objects_unfound: int | None = None
    read_ops: int | None = None
    read_bytes: int | None = None
    write_ops: int | None = None
    write_bytes: int | None = None
    quota_bytes: int = 0
    quota_objects: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)


def parse_replication(text: str) -> Replication:
    """Parse PVC's replication setting ``"copies=3,mincopies=2"``.

    ValueError unless both keys are given once as integers with
    1 <= mincopies <= copies <= MAX_COPIES.
    """
    usage = "expected 'copies=N,mincopies=M' with 1 <= M <= N"
    values: dict[str, int] = {}
    for part in str(text).split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in ("copies", "mincopies") or key in values:
            raise ValueError(f"invalid replication {text!r}: {usage}")
        if not value.isdigit():
            raise ValueError(f"invalid replication {text!r}: {key} must be a whole number")
        values[key] = int(value)
    if set(values) != {"copies", "mincopies"}:
        raise ValueError(f"invalid replication {text!r}: {usage}")
    copies, mincopies = values["copies"], values["mincopies"]
    if not 1 <= mincopies <= copies <= MAX_COPIES:
        raise ValueError(f"invalid replication {text!r}: {usage} and N <= {MAX_COPIES}")
    return Replication(copies, mincopies)


def check_name(name: str) -> str:
    """The pool name if PVC accepts it, else ValueError."""
    if not isinstance(name, str) or not POOL_NAME.fullmatch(name):
        raise ValueError(
            f"invalid pool name {name!r}: use letters, digits, '_', '.' and '-' (not first), at most 128"
        )
    return name


def check_pgs(pgs: int) -> int:
    """The PG count if it is a power of two between 1 and MAX_PGS, else ValueError.

    Ceph accepts other counts but then warns (POOL_PG_NUM_NOT_POWER_OF_TWO) forever.
    """
    if isinstance(pgs, bool) or not isinstance(pgs, int) or not 1 <= pgs <= MAX_PGS or pgs & (pgs - 1):
        raise ValueError(f"invalid PG count {pgs!r}: must be a power of two from 1 to {MAX_PGS}")
    return pgs


def _rules(client: CephClient) -> list[dict[str, Any]]:
    return client.mon_command("osd crush rule dump") or []


def _failure_domain(rules: list[dict[str, Any]]) -> str:
    """The bucket type the default rule spreads copies over ("host" unless it says)."""
    default = min(rules, key=lambda rule: rule["rule_id"], default={})
    for step in default.get("steps", []):
        if step.get("op", "").startswith("choose") and step.get("type"):
            return str(step["type"])
    return "host"


def served_classes(client: CephClient) -> list[str]:
    """The device classes that have OSDs now.

    ``osd crush class ls`` alone is not enough: a class stays listed while a rule names it,
    even after its last OSD is gone or reclassified.
    """
    return sorted(
        name
        for name in client.mon_command("osd crush class ls") or []
        if client.mon_command("osd crush class ls-osd", **{"class": name})
    )


def ensure_tier_rule(client: CephClient, tier: str) -> str | None:
    """The CRUSH rule for ``tier``, made if missing (None for the default tier).

    ValueError when no OSD has the tier's device class: a pool on such a rule could
    never place a PG.
    """
    check_tier(tier)
    if tier == DEFAULT_TIER:
        return None
    serving = served_classes(client)
    if tier not in serving:
        raise ValueError(
            f"tier {tier!r}: no OSD has device class {tier!r} (OSD classes: {', '.join(serving) or 'none'})"
        )
    name = tier_rule_name(tier)
    rules = _rules(client)
    if all(rule["rule_name"] != name for rule in rules):
        client.mon_command(
            "osd crush rule create-replicated",
            name=name,
            root="default",
            type=_failure_domain(rules),
            **{"class": tier},
        )
    return name


def _object_counts(client: CephClient) -> dict[int, dict[str, Any]]:
    """Each pool's object counts (``stat_sum`` of ``pg dump pools``) by pool id."""
    dump = client.mgr_command("pg dump", dumpcontents=["pools"]) or {}
    entries = dump.get("pool_stats", []) if isinstance(dump, dict) else dump
    return {int(entry["poolid"]): entry.get("stat_sum", {}) for entry in entries}


def list_pools(client: CephClient) -> list[Pool]:
    """Every pool with its settings (``osd pool ls detail``) and usage, by name.

    Usage is ``df detail`` (found by pool name) and the object counts of ``pg dump pools``
    (found by pool id); what either does not have yet is None.
    """
    details = client.mon_command("osd pool ls", detail="detail") or []
    rule_names = {int(rule["rule_id"]): str(rule["rule_name"]) for rule in _rules(client)}
    usage = {
        entry["name"]: entry.get("stats", {}) for entry in client.mon_command("df", detail="detail")["pools"]
    }
    counts = _object_counts(client)
    pools = []
    for entry in details:
        stats = usage.get(entry["pool_name"], {})
        objects = counts.get(int(entry["pool_id"]), {})
        percent = reported(stats, "percent_used", float)
        pools.append(
            Pool(
                name=entry["pool_name"],
                id=int(entry["pool_id"]),
                copies=int(entry["size"]),
                mincopies=int(entry["min_size"]),
                pg_num=int(entry.get("pg_num_target", entry["pg_num"])),
                pgp_num=int(entry.get("pg_placement_num_target", entry.get("pg_placement_num", 0))),
                pg_num_current=int(entry["pg_num"]),
                tier=tier_of_rule(rule_names.get(int(entry.get("crush_rule", 0)), "")),
                crush_rule=rule_names.get(int(entry.get("crush_rule", 0)), ""),
                applications=sorted(entry.get("application_metadata", {})),
                stored_bytes=reported(stats, "stored"),
                used_bytes=reported(stats, "bytes_used"),
                free_bytes=reported(stats, "max_avail"),
                used_percent=None if percent is None else round(percent * 100, 4),
                objects=reported(stats, "objects"),
                object_copies=reported(objects, "num_object_copies"),
                object_clones=reported(objects, "num_object_clones"),
                objects_degraded=reported(objects, "num_objects_degraded"),
                objects_missing=reported(objects, "num_objects_missing_on_primary"),
                objects_unfound=reported(objects, "num_objects_unfound"),
                read_ops=reported(stats, "rd"),
                read_bytes=reported(stats, "rd_bytes"),
                write_ops=reported(stats, "wr"),
                write_bytes=reported(stats, "wr_bytes"),
                quota_bytes=int(stats.get("quota_bytes", 0)),
                quota_objects=int(stats.get("quota_objects", 0)),
            )
        )
    return sorted(pools, key=lambda pool: pool.name)


def get(client: CephClient, name: str) -> Pool:
    """One pool; StorageNotFound if it does not exist."""
    for pool in list_pools(client):
        if pool.name == name:
            return pool
    raise StorageNotFound(f"pool {name} does not exist")


def free_bytes(client: CephClient, name: str) -> int:
    """Bytes that can still be written to the pool (Ceph's MAX AVAIL, replication included)."""
    for entry in client.mon_command("df")["pools"]:
        if entry["name"] == name:
            return int(entry["stats"]["max_avail"])
    raise StorageNotFound(f"pool {name} does not exist")


def _require(client: CephClient, name: str) -> None:
    if not client.pool_exists(name):
        raise StorageNotFound(f"pool {name} does not exist")


def create(
    client: CephClient,
    name: str,
    pgs: int,
    replication: str = "copies=3,mincopies=2",
    application: str = "rbd",
    tier: str = DEFAULT_TIER,
) -> Pool:
    """Create a replicated pool with ``pgs`` PGs on ``tier`` and ready it for ``application``.

    For ``"rbd"`` the pool is initialised for RBD images. Returns once the pool's free space
    shows in the statistics (one or two ``mgr stats period``s), so volumes can be created in
    it at once. StorageExists if the pool exists; ValueError for a bad name, PG count,
    replication or tier (or a tier no OSD serves). If any step fails the pool is deleted
    again, so nothing is left half-created.
    """
    check_name(name)
    check_pgs(pgs)
    repl = parse_replication(replication)
    check_tier(tier)
    if client.pool_exists(name):
        raise StorageExists(f"pool {name} already exists")
    rule = ensure_tier_rule(client, tier)
    placement = {"rule": rule} if rule else {}
    client.mon_command(
        "osd pool create", pool=name, pg_num=pgs, pgp_num=pgs, pool_type="replicated", **placement
    )
    try:
        client.refresh_osdmap()
        client.mon_command(
            "osd pool set", pool=name, var="size", val=str(repl.copies), yes_i_really_mean_it=True
        )
        client.mon_command("osd pool set", pool=name, var="min_size", val=str(repl.mincopies))
        client.mon_command("osd pool application enable", pool=name, app=application)
        if application == "rbd":
            with client.ioctx(name) as ioctx, translated(f"initialise pool {name} for RBD"):
                rbd.RBD().pool_init(ioctx, False)
    except BaseException:
        _delete(client, name)
        raise
    return _wait_listed(client, name)


def _wait_listed(client: CephClient, name: str, timeout: float = 30.0) -> Pool:
    """The new pool once the statistics know it (until then ``df`` shows 0 bytes free)."""
    target = status.pg_stats_version(client) + 2
    deadline = time.monotonic() + timeout
    while True:
        pool = get(client, name)
        listed = pool.free_bytes is not None and pool.free_bytes > 0
        if listed or time.monotonic() > deadline or status.pg_stats_version(client) >= target:
            return pool
        time.sleep(0.2)


def _delete(client: CephClient, name: str) -> None:
    client.mon_command("osd pool delete", pool=name, pool2=name, yes_i_really_really_mean_it=True)
    client.refresh_osdmap()


def remove(client: CephClient, name: str) -> None:
    """Delete a pool and everything in it; StorageNotFound if it does not exist."""
    _require(client, name)
    _delete(client, name)


def set_pgs(client: CephClient, name: str, pgs: int) -> None:
    """Change the pool's PG count; PGs are split or merged step by step in the background."""
    check_pgs(pgs)
    _require(client, name)
    client.mon_command("osd pool set", pool=name, var="pg_num", val=str(pgs))
    client.mon_command("osd pool set", pool=name, var="pgp_num", val=str(pgs))
