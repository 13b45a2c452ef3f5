"""The lab's entry in the CLI's connection store.

Several labs may run side by side (``--prefix``, ``--net-index``, a bench's or a test's
lab next to the user's), so each lab has a connection of its own, named after it
(:func:`pvc.lab.endpoint.connection_name`: ``lab`` for the default lab). ``up`` adds or
refreshes it and makes it the default only when the store has no usable default; ``down``
removes it only if it is still this lab's. A removed connection that was the default
leaves the store without a default: the next ``pvc`` command says so rather than talking
to another cluster the user did not choose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pvc.client.connections import (
    get_default_connection,
    load_connections,
    register_connection,
    remove_connection,
)
from pvc.lab import endpoint
from pvc.lab.layout import LabLayout

StoreDir = str | os.PathLike[str] | None


@dataclass(frozen=True)
class Registered:
    """What :func:`register` did."""

    name: str
    #: Whether the entry was written (False: a connection of that name is not a lab's).
    written: bool
    #: Whether it is now the default connection.
    default: bool
    #: The default connection when it is another one (None if none).
    other_default: str | None
    store: Path | None


def _is_lab_entry(entry: dict) -> bool:
    return str(entry.get("description", "")).startswith(endpoint.DESCRIPTION_PREFIX)


def _is_ours(entry: dict, layout: LabLayout) -> bool:
    conn = endpoint.connection(layout)
    return entry.get("description") == conn.description and entry.get("host") == conn.host


def register(layout: LabLayout, directory: StoreDir = None) -> Registered:
    """Add or refresh the lab's connection; make it the default only if there is none.

    A default naming a connection that is no longer in the store counts as none. An entry
    of the same name that no lab wrote (the user's own) is left alone.
    """
    conn = endpoint.connection(layout)
    stored = load_connections(directory)
    default = get_default_connection(directory)
    usable_default = default if default in stored else None
    existing = stored.get(conn.name)
    if existing is not None and not _is_lab_entry(existing):
        return Registered(conn.name, False, False, usable_default, None)
    make_default = usable_default is None or usable_default == conn.name
    path = register_connection(
        conn.name,
        conn.host,
        port=conn.port,
        api_key=conn.api_key,
        description=conn.description,
        make_default=make_default,
        directory=directory,
    )
    return Registered(conn.name, True, make_default, None if make_default else usable_default, path)


def forget(layout: LabLayout, directory: StoreDir = None) -> bool:
    """Remove the lab's connection if it is still this lab's; True if it was removed.

    If it was the default, the store is left without a default (no other connection is
    picked in its place).
    """
    conn = endpoint.connection(layout)
    entry = load_connections(directory).get(conn.name)
    if entry is None or not _is_ours(entry, layout):
        return False
    remove_connection(conn.name, directory)  # also clears the default file if it named it
    return True


def describe(registered: Registered) -> str:
    """One line for the user about :func:`register`'s outcome."""
    if not registered.written:
        return (
            f"a connection named '{registered.name}' that the lab did not make is in the CLI's "
            "store: left alone; the lab has no connection there"
        )
    if registered.default:
        return f"registered connection '{registered.name}' (the default) in {registered.store}"
    return (
        f"registered connection '{registered.name}' in {registered.store}; the default stays "
        f"'{registered.other_default}' (use 'pvc -c {registered.name} ...')"
    )
