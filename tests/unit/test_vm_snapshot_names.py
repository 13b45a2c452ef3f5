"""Snapshot names, default names and the ages shown in the VM view."""

from __future__ import annotations

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.vm.snapshots import age, check_name, default_name, xml_diff_lines
from pvc.tasks import InvalidTaskError


@pytest.mark.parametrize("name", ["daily", "2026-12-06", "v1.2_pre-upgrade", "A", "x" * 64])
def test_names_of_letters_digits_dots_underscores_and_dashes_are_accepted(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a/b", "a@b", "a b", "ü", "x" * 65, None, 5])
def test_other_names_are_refused_with_the_rule(name):
    with pytest.raises(ClusterError, match="1-64 letters, digits"):
        check_name(name)
    with pytest.raises(InvalidTaskError):
        check_name(name, InvalidTaskError)


def test_the_default_name_is_the_utc_time():
    assert default_name(1_765_000_000.0) == "20251206054640"
    assert check_name(default_name())


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (-5, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3600, "1h"),
        (3 * 3600 + 120, "3h2m"),
        (86400, "1d"),
        (2 * 86400 + 4 * 3600 + 59, "2d4h"),
    ],
)
def test_ages_are_short(seconds, shown):
    assert age(seconds) == shown


def test_the_xml_difference_is_a_headerless_unified_diff():
    assert xml_diff_lines("<a>\n<b/>\n</a>", "<a>\n<b/>\n</a>") == []
    lines = xml_diff_lines("<a>\n<memory>1</memory>\n</a>", "<a>\n<memory>2</memory>\n</a>")
    assert "-<memory>1</memory>" in lines and "+<memory>2</memory>" in lines
    assert not any(line.startswith(("---", "+++")) for line in lines)
