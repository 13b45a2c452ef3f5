"""The text of an ACL: a safe subset of nftables rule syntax, checked without running anything.

An ACL's rule becomes one rule in the network's own nftables chain on the primary. The check
here keeps a client from writing anything but a rule in that chain: no statement separators,
comments, escapes or quoted strings (which could hide them), balanced braces (sets and maps
only), and none of the words that define, leave or change other chains and tables. It does not
prove the rule is valid nftables: the firewall adapter's ``nft --check`` does that, through
the ``rule_checker`` the actions accept (see :data:`RuleChecker`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pvc.cluster.errors import ClusterError
from pvc.net import nftables

#: Longest rule accepted, in characters.
MAX_RULE_LENGTH = 512
#: Characters never accepted: separators, comments, escapes, quotes.
FORBIDDEN_CHARACTERS = frozenset(";#\\'\"`")
#: Words that could define, leave or change anything but this one rule.
FORBIDDEN_WORDS = frozenset(
    {"table", "chain", "flush", "include", "define", "delete", "add", "insert", "replace", "jump", "goto"}
    | {"queue"}
)
WORD = re.compile(r"[A-Za-z]+")

#: A further check of a rule's text (the firewall adapter's ``nft --check``): raises
#: ClusterError, or any exception whose text says what is wrong, to refuse it.
RuleChecker = Callable[[str], None]


def check_rule_text(rule: str | None) -> str:
    """``rule`` if it is in the safe subset, stripped of surrounding blanks; ClusterError (400)
    naming the first thing that is not."""
    text = (rule or "").strip()
    if not text:
        raise ClusterError("The ACL rule is empty; give an nftables rule, e.g. 'tcp dport 22 accept'")
    if len(text) > MAX_RULE_LENGTH:
        raise ClusterError(
            f"The ACL rule is {len(text)} characters long; at most {MAX_RULE_LENGTH} are allowed"
        )
    for index, char in enumerate(text):
        if not " " <= char <= "~":
            raise ClusterError(
                f"The ACL rule has a character that is not printable ASCII at position {index + 1} "
                f"({char!r}); line breaks and tabs are not allowed either"
            )
        if char in FORBIDDEN_CHARACTERS:
            raise ClusterError(
                f"The ACL rule may not contain {char!r} (position {index + 1}): one rule per ACL, "
                "no comments, escapes or quoted strings"
            )
    depth = 0
    for index, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            raise ClusterError(f"The ACL rule closes a brace it never opened (position {index + 1})")
    if depth:
        raise ClusterError("The ACL rule leaves a brace '{' unclosed")
    for word in WORD.findall(text):
        if word.lower() in FORBIDDEN_WORDS:
            raise ClusterError(
                f"The ACL rule may not use '{word}': an ACL is one rule in its network's chain and "
                f"cannot use {', '.join(sorted(FORBIDDEN_WORDS))}"
            )
    return text


def checked_rule(rule: str | None, checker: RuleChecker | None = None) -> str:
    """:func:`check_rule_text`, then ``checker`` when one is given (its refusal is a 400)."""
    text = check_rule_text(rule)
    if checker is not None:
        try:
            checker(text)
        except ClusterError:
            raise
        except Exception as error:  # the checker's own failure type: its text says why
            raise ClusterError(f"The ACL rule is not valid: {error}") from None
    return text


def nft_rule_checker(rule: str) -> None:
    """The :data:`RuleChecker` of a running cluster: nft's own parser, run on a throwaway
    table in a network namespace of its own (it works for the unprivileged API user too)."""
    problem = nftables.check_rule(rule)
    if problem is not None:
        raise ClusterError(f"nftables does not accept the rule: {problem}")
