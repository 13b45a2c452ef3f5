"""PVC's size notation: parsing and formatting byte counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvc.storage.units import UNITS, format_size, parse_size

K, M, G, T, P = (1024**n for n in range(1, 6))


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("0", 0),
        ("10G", 10 * G),
        ("512M", 512 * M),
        ("1T", T),
        ("2P", 2 * P),
        ("7K", 7 * K),
        ("10B", 10),
        ("10g", 10 * G),
        ("10GB", 10 * G),
        ("10GiB", 10 * G),
        ("10gib", 10 * G),
        (" 10 G ", 10 * G),
        ("1.5G", 1536 * M),
        (".5K", 512),
        ("1.3K", 1332),  # 1331.2 bytes, rounded up
        (4096, 4096),
    ],
)
def test_parse(text, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "G",
        "-1",
        "-10G",
        "10X",
        "10 GG",
        "1e3",
        "10iB",
        "10BB",
        "1,5G",
        "abc",
        "10G10",
        "１０G",
        "0x10",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize("value", [-1, None, 1.5, True, [10]])
def test_parse_rejects_other_types(value) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(value)


@pytest.mark.parametrize(
    ("size", "short", "exact"),
    [
        (0, "0B", "0B"),
        (1, "1B", "1B"),
        (1023, "1023B", "1023B"),
        (1024, "1K", "1K"),
        (1536 * M, "1536M", "1536M"),
        (10 * G, "10G", "10G"),
        (10240 * M, "10G", "10G"),
        (9999 * M, "9999M", "9999M"),
        (1234567, "1206K", "1234567B"),
        (T + 1, "1025G", f"{T + 1}B"),
        (5 * P, "5P", "5P"),
    ],
)
def test_format(size: int, short: str, exact: str) -> None:
    assert format_size(size) == short
    assert format_size(size, exact=True) == exact


@pytest.mark.parametrize("value", [-1, 1.0, True, "10"])
def test_format_rejects(value) -> None:
    with pytest.raises(ValueError, match="invalid byte count"):
        format_size(value)


@given(st.integers(min_value=0, max_value=2**62))
def test_exact_format_round_trips(size: int) -> None:
    assert parse_size(format_size(size, exact=True)) == size


@given(st.integers(min_value=1, max_value=2**60))
def test_short_format_is_short_and_never_smaller(size: int) -> None:
    text = format_size(size)
    assert len(text.rstrip("BKMGTP")) <= 4
    assert parse_size(text) >= size


@given(st.integers(min_value=0, max_value=9999), st.sampled_from(sorted(UNITS)))
def test_unit_multiples(count: int, unit: str) -> None:
    assert parse_size(f"{count}{unit}") == count * UNITS[unit]
    assert parse_size(f"{count}{unit.lower()}iB" if unit != "B" else f"{count}B") == count * UNITS[unit]
