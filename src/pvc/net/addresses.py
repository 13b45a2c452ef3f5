"""IP addresses on this host's network devices (the floating addresses of the primary).

Adding an address that is already there and removing one that is already gone are not
errors, so takeover and relinquish can run again after an interruption. Announcing a
moved address (gratuitous ARP) is :mod:`pvc.net.arp`'s job.
"""

from __future__ import annotations

from pvc.net.iproute import ip

#: What ``ip`` says when an address is already on the device, or already gone from it:
#: ``RTNETLINK answers: File exists`` / ``... Cannot assign requested address``, and from newer
#: kernels their own ``Error: ipv4: Address already assigned.`` / ``... Address not found.``
SETTLED = ("File exists", "Cannot assign", "Address already assigned", "Address not found")


def add(address: str, device: str, *, netns: str | None = None) -> None:
    """Put ``address`` (CIDR, e.g. ``10.0.0.254/24``) on ``device``; NetError if ``ip`` refuses."""
    ip("addr", "add", address, "dev", device, netns=netns, tolerate=SETTLED)


def remove(address: str, device: str, *, netns: str | None = None) -> None:
    """Take ``address`` off ``device``; NetError if ``ip`` refuses."""
    ip("addr", "del", address, "dev", device, netns=netns, tolerate=SETTLED)
