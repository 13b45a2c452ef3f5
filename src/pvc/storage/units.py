"""PVC's size notation: ``"10G"``, ``"512M"``, ``"4096"`` (bytes), binary (1024-based) units.

Sizes are written as a number and an optional unit B, K, M, G, T or P, case-insensitive,
optionally followed by ``B`` or ``iB`` (``"10GB"``, ``"10GiB"`` and ``"10g"`` all mean
10 * 1024**3 bytes). A decimal number is accepted (``"1.5G"``); a fractional byte count is
rounded up, so a volume is never smaller than asked for.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

#: unit letter -> bytes, smallest first
UNITS: dict[str, int] = {"B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}

_SIZE = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(?:(?P<unit>[KMGTP])(?:I?B)?|B)?", re.IGNORECASE
)

#: a displayed number has at most this many digits before a larger unit is used
MAX_DIGITS = 4


def parse_size(text: str | int) -> int:
    """Bytes in a size such as ``"10G"``, ``"1536M"``, ``"4096"`` or ``4096``.

    ValueError, naming the accepted forms, for negative, empty or malformed sizes.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid size {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text}: sizes cannot be negative")
        return text
    if not isinstance(text, str):
        raise ValueError(f"invalid size {text!r}: expected a string such as '10G'")
    stripped = text.strip()
    if stripped.startswith("-"):
        raise ValueError(f"invalid size {text!r}: sizes cannot be negative")
    match = _SIZE.fullmatch(stripped)
    if match is None:
        raise ValueError(
            f"invalid size {text!r}: expected a number with an optional unit B, K, M, G, T or P "
            "(1024-based), e.g. '10G', '512M' or '4096'"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the pattern only lets digits through
        raise ValueError(f"invalid size {text!r}") from exc
    unit = (match["unit"] or "B").upper()
    return int((number * UNITS[unit]).to_integral_value(rounding=ROUND_CEILING))


def format_size(size: int, exact: bool = False) -> str:
    """The short form of a byte count: ``10737418240`` -> ``"10G"``, ``1610612736`` -> ``"1536M"``.

    The largest unit that represents ``size`` exactly is used. If that would take more than
    four digits and ``exact`` is false, the count is instead rounded up in the smallest unit
    where it fits in four digits (``1234567`` -> ``"1206K"``), as PVC displays usage. With
    ``exact`` the result always parses back to ``size``.
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValueError(f"invalid byte count {size!r}")
    if size < 0:
        raise ValueError(f"invalid byte count {size}: cannot be negative")
    if size == 0:
        return "0B"
    for unit, factor in reversed(UNITS.items()):
        if size % factor == 0:
            text = f"{size // factor}{unit}"
            break
    if exact or len(text) - 1 <= MAX_DIGITS:
        return text
    for unit, factor in UNITS.items():
        rounded = -(-size // factor)
        if rounded < 10**MAX_DIGITS:
            return f"{rounded}{unit}"
    return text  # pragma: no cover - beyond 9999P
