"""Comparing the shape of a fake API answer with the real server's answer to the same request."""

from __future__ import annotations

from typing import Any

from pvc.cluster.figures import NOT_KNOWN


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_errors(
    fake: Any,
    real: Any,
    *,
    maps: frozenset[str] = frozenset(),
    opaque: frozenset[str] = frozenset(),
    where: str = "$",
) -> list[str]:
    """Where ``fake`` differs in shape from ``real``: keys either lacks, value types, list items.

    ``maps`` names objects keyed by data (node names, state names...): there only the values
    are compared, each with the real map's first value. At ``opaque`` paths (free-form
    objects, such as a task's arguments) only the type is compared. List items of ``fake`` are compared with
    the real list's item of the same identity (``name``, else ``vni``, ``mac_address`` or
    ``description``: see :data:`IDENTITY_KEYS`), else its first item (an empty real list says nothing
    about items). A figure may be a number in one answer and ``N/A`` (not measured) in the other.
    """
    fake_kind, real_kind = _kind(fake), _kind(real)
    if fake_kind != real_kind and not _compatible(fake, real):
        return [f"{where}: the fake serves {fake_kind} {fake!r:.60}, the server {real_kind} {real!r:.60}"]
    errors: list[str] = []
    if where in opaque:
        return errors
    if isinstance(real, dict):
        if where in maps:
            sample = next(iter(real.values()), None)
            if sample is not None:
                for value in fake.values():
                    errors += shape_errors(value, sample, maps=maps, opaque=opaque, where=f"{where}.*")
            return errors
        errors += [f"{where}.{key}: the server has no such key" for key in fake.keys() - real.keys()]
        errors += [f"{where}.{key}: the fake lacks it" for key in real.keys() - fake.keys()]
        for key in fake.keys() & real.keys():
            errors += shape_errors(fake[key], real[key], maps=maps, opaque=opaque, where=f"{where}.{key}")
    elif isinstance(real, list) and real:
        named = {_identity(item): item for item in real if _identity(item) is not None}
        for item in fake:
            peer = named.get(_identity(item), real[0])
            errors += shape_errors(item, peer, maps=maps, opaque=opaque, where=f"{where}[]")
    return errors


#: Keys that identify a list item (the first one an item has): its peer in the other list has
#: the same value, so items whose shape varies (a reservation's ``static`` timestamp, a bridged
#: network's MTU) are compared with their own kind.
IDENTITY_KEYS = ("name", "vni", "mac_address", "description")


def _identity(item: Any) -> tuple[str, Any] | None:
    if not isinstance(item, dict):
        return None
    key = next((key for key in IDENTITY_KEYS if key in item), None)
    return None if key is None else (key, item[key])


def _compatible(fake: Any, real: Any) -> bool:
    """Kinds that differ only as the server's own answers do: an integer where a number is
    served, or a measured figure where the server has none yet (``N/A``), and back."""
    kinds = {_kind(fake), _kind(real)}
    if kinds == {"integer", "number"}:
        return _kind(fake) == "integer"
    return NOT_KNOWN in (fake, real) and kinds - {"string"} <= {"integer", "number"}
