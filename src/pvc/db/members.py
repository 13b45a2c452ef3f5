"""Patroni's members as ZooKeeper shows them, and how to reach the read-write one.

Patroni writes each member's connection URL, role and state under
:func:`pvc.state.paths.patroni_members` and the leader's name under
:func:`pvc.state.paths.patroni_leader`. A client lists every member, the leader first,
and lets libpq pick the one that accepts writes (``target_session_attrs=read-write``):
right after a failover, the leader key may already name the new leader while the old
one's member znode is still there, or the other way round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from psycopg.conninfo import make_conninfo

from pvc.state import paths
from pvc.state.errors import StateError
from pvc.state.store import Store


@dataclass(frozen=True)
class Member:
    name: str
    host: str
    port: int
    role: str
    state: str


def members(store: Store, scope: str) -> list[Member]:
    """Every member that has registered (their znodes live with their sessions)."""
    found = []
    try:
        names = store.children(paths.patroni_members(scope))
    except StateError:
        return []
    for name in sorted(names):
        raw = store.get(f"{paths.patroni_members(scope)}/{name}")
        try:
            data = json.loads(raw or b"{}")
            url = urlsplit(str(data["conn_url"]))
            found.append(
                Member(
                    name, url.hostname or "", url.port or 5432, data.get("role", ""), data.get("state", "")
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # a member still writing its first record
    return found


def leader(store: Store, scope: str) -> str | None:
    """The name of the member holding the leader key, or None (an election, or none runs)."""
    raw = store.get(paths.patroni_leader(scope))
    return raw.decode(errors="replace") if raw else None


def leader_conninfo(
    store: Store, scope: str, *, dbname: str, user: str, password: str, connect_timeout: int
) -> str | None:
    """A libpq connection string to whichever member accepts writes (the leader tried
    first); None when no member has registered."""
    found = members(store, scope)
    if not found:
        return None
    first = leader(store, scope)
    found.sort(key=lambda member: member.name != first)
    return make_conninfo(
        host=",".join(member.host for member in found),
        port=",".join(str(member.port) for member in found),
        dbname=dbname,
        user=user,
        password=password,
        connect_timeout=connect_timeout,
        target_session_attrs="read-write",
        application_name="pvc",
    )
