"""The ``limit`` filter: v1 semantics, linear-time matching, bounded input."""

from __future__ import annotations

import time
import uuid

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.filters import MAX_LIMIT_LENGTH, limit_pattern, matcher

NAMES = ["web1", "web2", "db1", "n1", "n12", "backup-web"]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("web", ["web1", "web2", "backup-web"]),  # anywhere in the name
        ("^web", ["web1", "web2"]),
        ("1$", ["web1", "db1", "n1"]),
        ("^n1$", ["n1"]),
        ("n[12]", ["n1", "n12"]),
        ("^(web|db)1$", ["web1", "db1"]),
        ("WEB", []),  # case-sensitive, as in v1
    ],
)
def test_limit_matches_like_v1(limit, expected):
    matches = matcher(limit)
    assert [name for name in NAMES if matches(name)] == expected


def test_no_limit_passes_everything():
    assert all(matcher(None)(name) for name in NAMES) and matcher("")("x")


@pytest.mark.parametrize(
    ("limit", "words"),
    [
        ("(", "not a valid regular expression"),
        (r"(a)\1", "not a valid regular expression"),  # back-references need backtracking
        ("(?=a)", "not a valid regular expression"),
        ("a{1000}{1000}{1000}", "not a valid regular expression"),
        ("a" * (MAX_LIMIT_LENGTH + 1), f"at most {MAX_LIMIT_LENGTH}"),
    ],
)
def test_bad_limits_are_client_errors(limit, words):
    with pytest.raises(ClusterError, match=words) as raised:
        limit_pattern(limit)
    assert raised.value.status == 400


def test_longest_allowed_limit_compiles():
    assert matcher("a" * MAX_LIMIT_LENGTH)("b" + "a" * MAX_LIMIT_LENGTH)


def test_catastrophic_backtracking_pattern_is_linear():
    # A backtracking engine tries 2**24 ways to split each UUID before failing.
    limit = "^(?:[0-9a-f-]|[0-9a-f-]){0,24}#$"
    names = [str(uuid.uuid4()) for _ in range(200)]
    started = time.perf_counter()
    matches = matcher(limit)
    assert not any(matches(name) for name in names)
    assert time.perf_counter() - started < 0.05
