"""How the API shows a figure the cluster does not know yet: ``"N/A"``, never a plausible 0."""

from __future__ import annotations

from typing import Any

#: What a figure the cluster cannot know yet reads as.
NOT_KNOWN = "N/A"


def known(value: Any) -> Any:
    """``value`` as it is, or :data:`NOT_KNOWN` when it is None (not known yet)."""
    return NOT_KNOWN if value is None else value
