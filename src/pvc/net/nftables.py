"""The client networks' firewall: one nftables table owned by PVC, replaced as a whole.

The table is ``inet pvc_firewall`` (:data:`TABLE_FAMILY`, :data:`TABLE_NAME`). Each
managed network VNI has two regular chains holding its ACL rules in ACL order:
``vni<VNI>_in`` for traffic towards the network's VMs and ``vni<VNI>_out`` for traffic
from them. Two base chains on the forward hook dispatch by interface: ``forward_out``
(priority ``filter``) jumps to ``vni<VNI>_out`` for packets arriving on the network's
bridge ``vmbr<VNI>``, ``forward_in`` (priority ``filter + 1``) to ``vni<VNI>_in`` for
packets leaving on it. They are separate base chains so that an ``accept`` in the
sender's network chain ends only that base chain and the receiver's chain still sees the
packet; a ``drop`` anywhere is final. Every chain's policy is accept: PVC's ACLs are
deny-lists unless a network ends its own chain with ``drop``.

Which traffic passes the chains:

* Routed traffic through the gateway (the primary coordinator): between networks, and
  between a network and the upstream. It leaves or enters through ``vmbr<VNI>``.
* Bridged traffic between VMs of one network, when bridge netfilter is on
  (``net.bridge.bridge-nf-call-iptables`` / ``-ip6tables``, see
  :func:`bridged_traffic_filtered`): the kernel then passes bridged IPv4/IPv6 frames
  through the inet forward hook with the bridge as both input and output interface, so
  the sender's ``_out`` chain and the receiver's ``_in`` chain both apply, with
  connection tracking. PVC uses no ``bridge`` family table: that family has no
  connection tracking on our kernels (rules with ``ct`` would fail there) and no
  ``meta ibrname`` to tell one network's bridge from another's without listing every
  VM port.

:func:`apply` writes the whole table in one ``nft -f`` transaction (declare, delete,
redeclare), so a rule set nft refuses leaves the previous rules in place.
:func:`check_rule` checks one rule text for an unprivileged caller in a throwaway user
and network namespace. Rule texts are refused by :mod:`pvc.net.nft_rules` before
anything runs; no text ever passes through a shell.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pvc import commands
from pvc.commands import CommandError, CommandResult
from pvc.domain_xml.bridges import bridge_name
from pvc.errors import PVCError
from pvc.net.nft_rules import refusal

#: The address family and name of PVC's firewall table.
TABLE_FAMILY = "inet"
TABLE_NAME = "pvc_firewall"
#: Seconds an nft command may take (10,000 rules load in about 0.3 s).
NFT_TIMEOUT = 60.0
#: Base chains: traffic from a network's VMs is dispatched first, traffic to them after.
OUT_BASE_CHAIN = "forward_out"
IN_BASE_CHAIN = "forward_in"
#: The table and chains :func:`check_rule` renders a rule into, in its own namespace.
CHECK_TABLE = "pvc_check"
CHECK_CHAIN = "checked"
#: The kernel settings that make bridged frames pass the inet forward hook.
BRIDGE_NETFILTER_SETTINGS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
_INTERFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_ERROR_LINE = re.compile(r":(\d+):(\d+)(?:-(\d+))?: Error: (.*)")


class FirewallError(PVCError):
    """nft refused a rule set or could not be run; the table is as it was before."""


def chain_name(vni: int, direction: str) -> str:
    """The chain of network ``vni``'s rules for ``direction`` (``in`` or ``out``)."""
    if direction not in ("in", "out"):
        raise ValueError(f"a direction is in or out, not {direction!r}")
    return f"vni{vni}_{direction}"


@dataclass(frozen=True)
class NetworkFirewall:
    """One managed network's ACLs: rule texts in ACL order, inbound (to its VMs) and outbound.

    ``bridge`` is the network's host bridge, ``vmbr<VNI>`` unless given.
    """

    vni: int
    inbound: tuple[str, ...] = ()
    outbound: tuple[str, ...] = ()
    bridge: str = field(default="")

    def __post_init__(self) -> None:
        if isinstance(self.vni, bool) or not isinstance(self.vni, int) or not 0 < self.vni < 2**24:
            raise FirewallError(f"a network's VNI is a number from 1 to {2**24 - 1}, not {self.vni!r}")
        if not self.bridge:
            object.__setattr__(self, "bridge", bridge_name(self.vni))
        if not isinstance(self.bridge, str) or not _INTERFACE.fullmatch(self.bridge):
            raise FirewallError(f"network {self.vni}: {self.bridge!r} is no interface name")
        for name in ("inbound", "outbound"):
            rules = getattr(self, name)
            if isinstance(rules, str):
                raise FirewallError(f"network {self.vni}: {name} rules are a sequence of texts")
            object.__setattr__(self, name, tuple(rules))


@dataclass(frozen=True)
class Ruleset:
    """The firewall of every managed network on this node."""

    networks: tuple[NetworkFirewall, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "networks", tuple(sorted(self.networks, key=lambda net: net.vni)))
        vnis = [net.vni for net in self.networks]
        bridges = [net.bridge for net in self.networks]
        if len(set(vnis)) != len(vnis) or len(set(bridges)) != len(bridges):
            raise FirewallError("each network (and each bridge) may appear only once in a rule set")


def _rule_lines(rules: Sequence[str], vni: int, direction: str) -> list[tuple[str, str]]:
    lines = []
    for position, rule in enumerate(rules, start=1):
        origin = f"network {vni} {direction} rule {position}"
        reason = refusal(rule)
        if reason is not None:
            raise FirewallError(f"{origin}: {reason}: {rule!r}")
        lines.append((f"\t\t{rule.strip()}", origin))
    return lines


def _dispatch(networks: Sequence[NetworkFirewall], direction: str) -> list[str]:
    if not networks:
        return []
    key = "iifname" if direction == "out" else "oifname"
    entries = ", ".join(f'"{net.bridge}" : jump {chain_name(net.vni, direction)}' for net in networks)
    return [f"\t\t{key} vmap {{ {entries} }}"]


def _render(ruleset: Ruleset, table: str) -> list[tuple[str, str]]:
    """The lines of :func:`render`, each with the rule it came from ("" for PVC's own)."""
    if not _INTERFACE.fullmatch(table):
        raise FirewallError(f"{table!r} is no table name")
    qualified = f"{TABLE_FAMILY} {table}"
    lines = [f"table {qualified}", f"delete table {qualified}", f"table {qualified} {{"]
    for base, direction, priority in ((OUT_BASE_CHAIN, "out", "filter"), (IN_BASE_CHAIN, "in", "filter + 1")):
        lines += [
            f"\tchain {base} {{",
            f"\t\ttype filter hook forward priority {priority}; policy accept;",
            *_dispatch(ruleset.networks, direction),
            "\t}",
        ]
    tagged = [(line, "") for line in lines]
    for net in ruleset.networks:
        for direction, rules in (("in", net.inbound), ("out", net.outbound)):
            tagged.append((f"\tchain {chain_name(net.vni, direction)} {{", ""))
            tagged += _rule_lines(rules, net.vni, direction)
            tagged.append(("\t}", ""))
    tagged.append(("}", ""))
    return tagged


def render(ruleset: Ruleset, table: str = TABLE_NAME) -> str:
    """The ``nft -f`` text that replaces table ``table`` by ``ruleset`` in one transaction.

    Declaring the table first makes the delete succeed when it does not exist yet.
    FirewallError if a rule text is refused (see :mod:`pvc.net.nft_rules`).
    """
    return "".join(f"{line}\n" for line, _ in _render(ruleset, table))


def _nft_argv(args: Sequence[str], netns: str | None) -> list[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return [*prefix, "nft", *args]


def nft_errors(stderr: str, source: str, origins: Sequence[str] = ()) -> str:
    """nft's error messages, each with the text it points at in ``source`` (the file it read).

    ``origins`` names, line by line of ``source``, where a line came from (e.g. which
    network's rule); a message about such a line starts with it.
    """
    lines = source.splitlines()
    messages = []
    for line in stderr.splitlines():
        match = _ERROR_LINE.search(line)
        if not match:
            continue
        number, first, last, message = match.groups()
        message = message.strip()
        index = int(number) - 1
        if 0 <= index < len(lines):
            start = int(first) - 1
            near = lines[index][start : int(last or first)]
            if near.strip():
                message += f' (at "{near.strip()}" in: {lines[index].strip()})'
            if index < len(origins) and origins[index]:
                message = f"{origins[index]}: {message}"
        messages.append(message)
    return "; ".join(messages) or stderr.strip()


def _run_nft(
    args: Sequence[str], netns: str | None, source: str | None = None, origins: Sequence[str] = ()
) -> CommandResult[str]:
    argv = _nft_argv(args, netns)
    try:
        result = commands.run(argv, timeout=NFT_TIMEOUT, input=source, accept=None)
    except CommandError as error:
        raise FirewallError(str(error)) from None
    if result.returncode != 0:
        raise FirewallError(f"nft refused the firewall: {nft_errors(result.stderr, source or '', origins)}")
    return result


def apply(ruleset: Ruleset, *, netns: str | None = None, table: str = TABLE_NAME) -> None:
    """Make PVC's table hold exactly ``ruleset``, atomically.

    FirewallError (and the previous rules stay in force) when a rule is refused here or
    by nft. ``netns`` runs nft in that named network namespace instead of this one.
    """
    tagged = _render(ruleset, table)
    source = "".join(f"{line}\n" for line, _ in tagged)
    _run_nft(["-f", "-"], netns, source, [origin for _, origin in tagged])


def remove(*, netns: str | None = None, table: str = TABLE_NAME) -> None:
    """Delete PVC's table (nothing to do when it does not exist)."""
    if not _INTERFACE.fullmatch(table):
        raise FirewallError(f"{table!r} is no table name")
    qualified = f"{TABLE_FAMILY} {table}"
    _run_nft(["-f", "-"], netns, f"table {qualified}\ndelete table {qualified}\n")


def listing(*, netns: str | None = None, table: str = TABLE_NAME) -> dict | None:
    """PVC's table as nft's JSON (``nft -j list table``), None when there is none."""
    argv = _nft_argv(["-j", "list", "table", TABLE_FAMILY, table], netns)
    try:
        result = commands.run(argv, timeout=NFT_TIMEOUT, accept=None)
    except CommandError as error:
        raise FirewallError(str(error)) from None
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return None
        raise FirewallError(f"nft list table failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def chain_rules(listed: dict | None, chain: str) -> list[dict]:
    """The rules of ``chain`` in a :func:`listing`, in order (each nft's JSON ``rule`` object)."""
    if not listed:
        return []
    entries = listed.get("nftables", [])
    return [entry["rule"] for entry in entries if "rule" in entry and entry["rule"].get("chain") == chain]


def _check_source(rule: str) -> str:
    table = f"{TABLE_FAMILY} {CHECK_TABLE}"
    return "\n".join(
        [
            f"table {table} {{",
            "\tchain forward {",
            "\t\ttype filter hook forward priority filter; policy accept;",
            f"\t\tjump {CHECK_CHAIN}",
            "\t}",
            f"\tchain {CHECK_CHAIN} {{",
            f"\t\t{rule.strip()}",
            "\t}",
            "}",
            "",
        ]
    )


def check_rule(rule: str) -> str | None:
    """Why nft would refuse ``rule`` in a network's chain, or None when it accepts it.

    The rule is first checked for shape (:mod:`pvc.net.nft_rules`), then rendered into a
    throwaway table jumped to from a forward hook (as a network's chain is) and checked
    with ``nft --check`` inside a new user and network namespace, so that any user may
    call this and nothing on the host changes. Where user namespaces are not allowed the
    answer says so (the rule counts as refused).
    """
    reason = refusal(rule)
    if reason is not None:
        return reason
    source = _check_source(rule)
    argv = ["unshare", "--user", "--map-root-user", "--net", "nft", "--check", "-f", "-"]
    try:
        result = commands.run(argv, timeout=NFT_TIMEOUT, input=source, accept=None)
    except CommandError as error:
        return f"the rule could not be checked: {error}"
    if result.returncode == 0:
        return None
    namespace_failure = [line for line in result.stderr.splitlines() if line.startswith("unshare:")]
    if namespace_failure:
        return (
            "the rule could not be checked: this host does not let the checker make a user "
            f"namespace ({namespace_failure[0].strip()}); allow unprivileged user namespaces "
            "(user.max_user_namespaces > 0, kernel.unprivileged_userns_clone = 1 where it exists)"
        )
    return nft_errors(result.stderr, source)


def bridged_traffic_filtered(*, netns: str | None = None) -> bool:
    """True when bridged IPv4 and IPv6 frames pass the inet forward hook (bridge netfilter on).

    Without it, traffic between VMs of one network on one bridge escapes the network's
    chains (routed traffic is filtered either way).
    """
    prefix = ["ip", "netns", "exec", netns] if netns else []
    for setting in BRIDGE_NETFILTER_SETTINGS:
        try:
            result = commands.run([*prefix, "sysctl", "-n", setting], timeout=NFT_TIMEOUT, accept=None)
        except CommandError:
            return False
        if result.returncode != 0 or result.stdout.strip() != "1":
            return False
    return True


__all__ = [
    "FirewallError",
    "NetworkFirewall",
    "Ruleset",
    "apply",
    "bridged_traffic_filtered",
    "chain_name",
    "chain_rules",
    "check_rule",
    "listing",
    "remove",
    "render",
]
