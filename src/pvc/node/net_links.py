"""Make this node's client-network links match the wanted networks: observe, plan, apply.

The pure decisions are :func:`pvc.node.net_decide.plan`; the netlink work is
:mod:`pvc.net.links`. :func:`reconcile` joins them for one pass and says what it did, in
lines fit for the daemon's log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute

from pvc.net import links
from pvc.net.linkactions import LinkPlan
from pvc.net.netspec import NetworkSpec, NodeNetParams
from pvc.node.net_decide import plan


@dataclass(frozen=True)
class Reconciled:
    """One reconcile pass: the plan and how each of its actions went."""

    plan: LinkPlan
    applied: tuple[links.Applied, ...]

    @property
    def changed(self) -> list[links.Applied]:
        """The actions carried out."""
        return [result for result in self.applied if result.done]

    @property
    def failed(self) -> list[links.Applied]:
        """The actions that failed or were skipped."""
        return [result for result in self.applied if not result.done]

    @property
    def ok(self) -> bool:
        return not self.failed

    def lines(self) -> list[str]:
        """What happened, one log line each: warnings, then each action's outcome."""
        return [*(f"warning: {text}" for text in self.plan.warnings), *links.describe(self.applied)]

    def summary(self) -> str:
        """One sentence for the daemon's cycle log."""
        if not self.applied:
            return f"client network links: no changes ({len(self.plan.warnings)} warnings)"
        return (
            f"client network links: {len(self.changed)} changes, {len(self.failed)} failed or skipped, "
            f"{len(self.plan.warnings)} warnings"
        )


def reconcile(
    desired: Iterable[NetworkSpec], params: NodeNetParams, *, ipr: IPRoute | None = None
) -> Reconciled:
    """One pass: read the links, plan, carry the plan out (``ipr``: a socket to use, e.g. in a namespace)."""
    own = ipr is None
    socket = links.open_netlink() if ipr is None else ipr
    try:
        decided = plan(desired, links.observe(socket), params)
        return Reconciled(decided, tuple(links.apply(socket, decided.actions)))
    finally:
        if own:
            socket.close()
