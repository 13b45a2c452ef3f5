"""PVC's ``limit`` filter: a regular expression on names, with implied wildcards."""

from __future__ import annotations

import re

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


def matcher(limit: str | None):
    """A predicate on names for ``limit`` (everything passes without one)."""
    pattern = limit_pattern(limit) if limit else None
    return lambda name: pattern is None or bool(pattern.fullmatch(name))
