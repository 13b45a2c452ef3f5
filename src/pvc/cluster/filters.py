"""Names: PVC's ``limit`` filter (a regular expression on names, with implied wildcards) and
the plain names clients may give things PVC stores (backup files, benchmark jobs).

A ``limit`` comes from any client, read-only keys included, so it is compiled by RE2
(``google-re2``), whose matching time is linear in the name's length whatever the
expression: no expression can stall the API the way a backtracking engine can be made to.
RE2 has no back-references or look-arounds; expressions using them are invalid here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

import re2

from pvc.cluster.errors import ClusterError

#: Longest ``limit`` accepted, in characters.
MAX_LIMIT_LENGTH = 256
#: Memory RE2 may use for one compiled ``limit`` (bytes); bigger expressions are refused.
LIMIT_MAX_MEM = 8 * 1024 * 1024


class NamePattern(Protocol):
    """What a compiled ``limit`` offers: a whole-name match."""

    def fullmatch(self, text: str) -> object | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = LIMIT_MAX_MEM
    options.log_errors = False
    return options


def limit_pattern(limit: str) -> NamePattern:
    """The pattern of a ``limit``: matched against whole names, with an implied ``.*`` on each
    side that is not anchored by ``^`` or ``$``. ClusterError (400) when it is longer than
    :data:`MAX_LIMIT_LENGTH` or not a valid RE2 expression."""
    if len(limit) > MAX_LIMIT_LENGTH:
        raise ClusterError(f"limit is {len(limit)} characters long; at most {MAX_LIMIT_LENGTH} are allowed")
    core = limit
    core = core[1:] if core.startswith("^") else ".*" + core
    core = core[:-1] if core.endswith("$") else core + ".*"
    try:
        return re2.compile(core, _options())
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise ClusterError(f"limit '{limit}' is not a valid regular expression: {reason}") from None


#: A plain name: letters, digits, '.', '_' and '-', up to 128, not starting with '.' or '-'.
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def matcher(limit: str | None) -> Callable[[str], bool]:
    """A predicate on names for ``limit`` (everything passes without one)."""
    pattern = limit_pattern(limit) if limit else None
    return lambda name: pattern is None or bool(pattern.fullmatch(name))
