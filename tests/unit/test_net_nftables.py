"""The firewall's rendering and its refusal of rule texts that could leave their chain.

nft itself is faked here (the boundary); tests/integration/test_net_nftables.py runs it.
"""

from __future__ import annotations

import re

import pytest

from pvc import commands
from pvc.commands import CommandResult
from pvc.net import nftables
from pvc.net.nft_rules import RULE_MAX_LENGTH, RuleRefused, refusal, require_allowed
from pvc.net.nftables import FirewallError, NetworkFirewall, Ruleset

HOSTILE = [
    "tcp dport 22 drop\n}",
    "tcp dport 22 drop\rflush ruleset",
    "tcp dport 22 drop; flush ruleset",
    "tcp dport 22 drop # }",
    'tcp dport 22 drop comment "x"',
    "tcp dport 22 drop comment 'x'",
    "tcp dport 22 drop \\",
    "ip saddr $trusted accept",
    "tcp dport { 22, 80 drop",
    "tcp dport 22 } drop {",
    "} chain evil { tcp dport 22 drop",
    "tcp dport 22 drop }",
    "tcp dport 22 drop\t",
    "tcp dport 22 dröp",
    "tcp dport 22 drop\x00",
    "",
    "   ",
    "tcp dport 22 " + "a" * RULE_MAX_LENGTH,
    *(
        f"tcp dport 22 {word} x"
        for word in (
            "table",
            "chain",
            "flush",
            "include",
            "define",
            "delete",
            "add",
            "insert",
            "replace",
            "jump",
            "goto",
            "queue",
            "JUMP",
            "Goto",
        )
    ),
    "tcp dport 22 vmap { 22 : jump-x }",
]
ALLOWED = [
    "tcp dport 22 drop",
    "tcp dport { 22, 80 } drop",
    "ip saddr 10.0.0.0/8 ip daddr 10.1.0.5 accept",
    "ct state established,related accept",
    "reject with tcp reset",
    "ip6 daddr 2001:db8::/64 udp dport 53 counter drop",
    "meta l4proto icmp accept",
]


def _chains(text: str) -> dict[str, list[str]]:
    """Each chain of a rendered table and its lines (without the chain's braces)."""
    chains: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        match = re.fullmatch(r"\tchain (\S+) \{", line)
        if match:
            current = chains.setdefault(match.group(1), [])
        elif line == "\t}":
            current = None
        elif current is not None:
            current.append(line.strip())
    return chains


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_rule_texts_are_refused(text: str) -> None:
    assert refusal(text)
    with pytest.raises(RuleRefused):
        require_allowed(text)


@pytest.mark.parametrize("text", ALLOWED)
def test_ordinary_rules_pass_the_shape_check(text: str) -> None:
    assert refusal(text) is None
    assert require_allowed(text) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_rules_never_reach_nft(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_run(*args, **kwargs):
        raise AssertionError("nothing may run for a refused rule")

    monkeypatch.setattr(commands, "run", no_run)
    assert nftables.check_rule(text)
    with pytest.raises(FirewallError, match="network 5 out rule 2"):
        nftables.apply(Ruleset((NetworkFirewall(5, outbound=("udp dport 53 drop", text)),)))


def test_rules_land_in_their_network_chain_in_acl_order() -> None:
    ruleset = Ruleset(
        (
            NetworkFirewall(200, inbound=("tcp dport 443 drop",), outbound=("udp dport 53 drop",)),
            NetworkFirewall(
                100,
                inbound=("tcp dport 22 drop", "ip saddr 10.0.0.0/8 accept", "tcp dport 80 drop"),
                outbound=(),
            ),
        )
    )
    text = nftables.render(ruleset)
    chains = _chains(text)
    assert chains["vni100_in"] == ["tcp dport 22 drop", "ip saddr 10.0.0.0/8 accept", "tcp dport 80 drop"]
    assert chains["vni100_out"] == []
    assert chains["vni200_in"] == ["tcp dport 443 drop"]
    assert chains["vni200_out"] == ["udp dport 53 drop"]
    # from the network's bridge: its _out chain; towards it: its _in chain
    assert chains["forward_out"] == [
        "type filter hook forward priority filter; policy accept;",
        'iifname vmap { "vmbr100" : jump vni100_out, "vmbr200" : jump vni200_out }',
    ]
    assert chains["forward_in"] == [
        "type filter hook forward priority filter + 1; policy accept;",
        'oifname vmap { "vmbr100" : jump vni100_in, "vmbr200" : jump vni200_in }',
    ]


def test_the_table_is_declared_deleted_and_redeclared_in_one_file() -> None:
    lines = nftables.render(Ruleset((NetworkFirewall(7, inbound=("tcp dport 22 drop",)),))).splitlines()
    assert lines[:3] == [
        "table inet pvc_firewall",
        "delete table inet pvc_firewall",
        "table inet pvc_firewall {",
    ]
    assert lines[-1] == "}"
    assert sum(line.count("{") - line.count("}") for line in lines) == 0


def test_an_empty_ruleset_keeps_the_base_chains_without_dispatch() -> None:
    chains = _chains(nftables.render(Ruleset()))
    assert set(chains) == {"forward_out", "forward_in"}
    assert all(len(lines) == 1 for lines in chains.values())


def test_a_network_may_name_its_own_bridge() -> None:
    chains = _chains(nftables.render(Ruleset((NetworkFirewall(9, bridge="br-x.9"),))))
    assert chains["forward_out"][1] == 'iifname vmap { "br-x.9" : jump vni9_out }'


@pytest.mark.parametrize(
    "make",
    [
        lambda: NetworkFirewall(0),
        lambda: NetworkFirewall(2**24),
        lambda: NetworkFirewall(True),
        lambda: NetworkFirewall(5, bridge='vmbr5" : accept, "x'),
        lambda: NetworkFirewall(5, bridge="a-very-long-bridge-name"),
        lambda: NetworkFirewall(5, inbound="tcp dport 22 drop"),
        lambda: Ruleset((NetworkFirewall(5), NetworkFirewall(5))),
        lambda: Ruleset((NetworkFirewall(5), NetworkFirewall(6, bridge="vmbr5"))),
    ],
)
def test_bad_networks_are_refused(make) -> None:
    with pytest.raises(FirewallError):
        make()


def _fake_run(calls: list, returncode: int = 0, stderr: str = ""):
    def run(argv, *, timeout, input=None, accept=(0,), **kwargs):
        calls.append((list(argv), input))
        return CommandResult(tuple(argv), returncode, "", stderr)

    return run


def test_apply_hands_nft_the_file_on_stdin_without_a_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    monkeypatch.setattr(commands, "run", _fake_run(calls))
    ruleset = Ruleset((NetworkFirewall(3, inbound=("tcp dport 22 drop",)),))
    nftables.apply(ruleset, netns="ns-x")
    assert calls == [(["ip", "netns", "exec", "ns-x", "nft", "-f", "-"], nftables.render(ruleset))]


def test_a_refused_rule_set_names_the_network_and_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    ruleset = Ruleset((NetworkFirewall(3, inbound=("tcp dport 22 drop", "tcp dport nope drop")),))
    line = nftables.render(ruleset).splitlines().index("\t\ttcp dport nope drop") + 1
    stderr = (
        f"/dev/stdin:{line}:13-16: Error: Could not resolve service: Servname not supported\n"
        "\t\ttcp dport nope drop\n\t\t          ^^^^\n"
    )
    monkeypatch.setattr(commands, "run", _fake_run([], 1, stderr))
    with pytest.raises(FirewallError) as raised:
        nftables.apply(ruleset)
    expected = 'network 3 in rule 2: Could not resolve service: Servname not supported (at "nope"'
    assert expected in str(raised.value)


def test_check_rule_runs_nft_check_in_new_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    monkeypatch.setattr(commands, "run", _fake_run(calls))
    assert nftables.check_rule("tcp dport 22 drop") is None
    [(argv, source)] = calls
    assert argv == ["unshare", "--user", "--map-root-user", "--net", "nft", "--check", "-f", "-"]
    chains = _chains(source)
    assert chains["checked"] == ["tcp dport 22 drop"]
    assert "jump checked" in chains["forward"]


def test_check_rule_says_when_user_namespaces_are_not_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = "unshare: write failed /proc/self/uid_map: Operation not permitted\n"
    monkeypatch.setattr(commands, "run", _fake_run([], 1, stderr))
    answer = nftables.check_rule("tcp dport 22 drop")
    assert answer is not None
    assert "could not be checked" in answer
    assert "user namespace" in answer
