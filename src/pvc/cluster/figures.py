"""How the views show a figure the cluster does not know (yet).

A value nothing has measured is shown as :data:`NOT_KNOWN` (the PVC v1 convention),
never as a plausible number such as 0 or 100 that a reader would take for a measurement.
"""

from __future__ import annotations

from typing import TypeVar

#: What a figure the cluster cannot know yet reads as.
NOT_KNOWN = "N/A"

T = TypeVar("T")


def known(value: T | None) -> T | str:
    """``value``, or :data:`NOT_KNOWN` when it is None (not measured)."""
    return NOT_KNOWN if value is None else value
