"""Names: PVC's ``limit`` filter (a regular expression on names, with implied wildcards) and
the plain names clients may give things PVC stores (backup files, benchmark jobs)."""

from __future__ import annotations

import re
from collections.abc import Callable

from pvc.cluster.errors import ClusterError


def limit_pattern(limit: str) -> re.Pattern[str]:
    """The pattern of a ``limit``: matched against whole names, with an implied ``.*`` on each
    side that is not anchored by ``^`` or ``$``. ClusterError when it is not a valid expression."""
    core = limit
    core = core[1:] if core.startswith("^") else ".*" + core
    core = core[:-1] if core.endswith("$") else core + ".*"
    try:
        return re.compile(core)
    except re.error as error:
        raise ClusterError(f"limit '{limit}' is not a valid regular expression: {error}") from None


#: A plain name: letters, digits, '.', '_' and '-', up to 128, not starting with '.' or '-'.
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def matcher(limit: str | None) -> Callable[[str], bool]:
    """A predicate on names for ``limit`` (everything passes without one)."""
    pattern = limit_pattern(limit) if limit else None
    return lambda name: pattern is None or bool(pattern.fullmatch(name))
