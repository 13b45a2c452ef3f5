"""Which ACL rule texts may be written into PVC's nftables chains at all.

A rule text comes from a user (``pvc network acl add --rule ...``) and is pasted as one
line into a chain of the table PVC renders. Before nft ever sees it, a text must stay
inside that one line and that one chain: printable ASCII only, no line breaks or
statement separators, no comments, no quoting or escapes, braces that nest properly
(anonymous sets such as ``tcp dport { 22, 80 }`` are fine), no variables, and none of
the words that act on tables or chains or hand the packet elsewhere. Whether what is
left is valid nft syntax is nft's to say (:func:`pvc.net.nftables.check_rule`).
"""

from __future__ import annotations

import re

from pvc.errors import PVCError

#: Longest rule text accepted, in characters.
RULE_MAX_LENGTH = 1024
#: Characters a rule may not contain: statement separators, comments, quoting, escapes,
#: variables (``$``) and the include/define preprocessor's other marks.
FORBIDDEN_CHARACTERS = frozenset(";#\"'`\\$")
#: Words that act on tables, chains or the file, or send the packet to another chain or
#: out of the kernel; none has a place in a rule of one chain.
FORBIDDEN_WORDS = frozenset(
    {
        "table",
        "chain",
        "flush",
        "include",
        "define",
        "undefine",
        "redefine",
        "delete",
        "destroy",
        "add",
        "create",
        "insert",
        "replace",
        "jump",
        "goto",
        "queue",
        "dup",
        "fwd",
    }
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RuleRefused(PVCError):
    """A rule text that PVC will not hand to nft; ``str()`` says why."""


def refusal(text: str) -> str | None:
    """Why ``text`` may not be a rule of a PVC chain, or None when it may.

    Only the shape is checked here (see the module's docstring); nft checks the syntax.
    """
    if not isinstance(text, str):
        return "a rule is text"
    if not text.strip():
        return "a rule may not be empty"
    if len(text) > RULE_MAX_LENGTH:
        return f"a rule may have at most {RULE_MAX_LENGTH} characters"
    for character in text:
        if not " " <= character <= "~":
            return f"a rule is one line of printable ASCII characters, not {character!r}"
        if character in FORBIDDEN_CHARACTERS:
            return f"a rule may not contain {character!r}"
    depth = 0
    for character in text:
        if character == "{":
            depth += 1
        elif character == "}":
            depth -= 1
            if depth < 0:
                return "a rule closes a brace it did not open"
    if depth:
        return "a rule leaves a brace open"
    for word in _WORD.findall(text):
        if word.lower() in FORBIDDEN_WORDS:
            return f"a rule may not use {word!r}"
    return None


def require_allowed(text: str) -> str:
    """``text`` itself if it may be a rule (see :func:`refusal`); RuleRefused otherwise."""
    reason = refusal(text)
    if reason is not None:
        raise RuleRefused(f"{reason}: {text!r}")
    return text
