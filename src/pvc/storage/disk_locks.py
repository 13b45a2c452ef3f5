"""Locks on the RBD volumes VMs use as disks: tell live holders from dead ones, break them.

QEMU opens a VM's volumes with librbd's exclusive-lock feature: the writer holds the
image's managed lock (tag ``internal``, cookie ``auto <n>``) and keeps a watch on the
image header while it has the image open. A QEMU that died (a crashed node, a killed
process) leaves its lock behind; once the OSDs have timed out its watch (about 30 s
after the death, at once when the client is blocklisted) the lock has no watcher with
the holder's address any more. Such a lock is *stale*; a lock whose holder still
watches the image is *live*: its holder may be a QEMU running somewhere.

Breaking a lock (librbd ``break_lock``) also blocklists the holder's address, so a
live holder loses its access to the cluster: only :func:`flush` breaks live locks, for
an operator who knows the holder is gone.
"""

from __future__ import annotations

import rbd

from pvc.storage.client import CephClient
from pvc.storage.images import open_image
from pvc.storage.volumes import Lock, locks, watchers

#: Prefixes Ceph may put before an entity address (``v1:10.0.0.1:0/123``).
_ADDRESS_KINDS = ("any:", "v1:", "v2:")


def _bare(address: str) -> str:
    """An entity address without its protocol prefix, for comparisons."""
    for kind in _ADDRESS_KINDS:
        if address.startswith(kind):
            return address[len(kind) :]
    return address


def _host(address: str) -> str:
    """The IP address of an entity address (``10.0.0.1:0/123`` → ``10.0.0.1``)."""
    return _bare(address).rsplit(":", 1)[0].strip("[]")


def split_locks(client: CephClient, pool: str, volume: str) -> tuple[list[Lock], list[Lock]]:
    """The locks on ``pool/volume`` as ``(live, stale)``.

    A lock is live when a current watcher of the image has the locker's address. The
    locks are read before the watchers: a holder registers its watch before it takes
    its lock, so a holder alive at both reads is always seen as live.
    StorageNotFound if the volume does not exist.
    """
    held = locks(client, pool, volume)
    if not held:
        return [], []
    watching = {_bare(watcher.address) for watcher in watchers(client, pool, volume)}
    live = [lock for lock in held if _bare(lock.address) in watching]
    stale = [lock for lock in held if _bare(lock.address) not in watching]
    return live, stale


def _break(client: CephClient, pool: str, volume: str, doomed: list[Lock]) -> int:
    """Break the given locks; a lock already gone is not counted."""
    if not doomed:
        return 0
    broken = 0
    with open_image(client, pool, volume) as image:
        for lock in doomed:
            try:
                image.break_lock(lock.locker, lock.cookie)
            except rbd.ImageNotFound:  # released or broken meanwhile
                continue
            broken += 1
    return broken


def clear_stale(client: CephClient, pool: str, volume: str) -> int:
    """Break the stale locks on ``pool/volume`` (live ones are kept); returns how many."""
    _live, stale = split_locks(client, pool, volume)
    return _break(client, pool, volume, stale)


def break_held_from(client: CephClient, pool: str, volume: str, host: str) -> int:
    """Break the locks on ``pool/volume`` held by clients at address ``host`` (an IP
    address, any port and nonce), live or not; returns how many. For a host known to
    be off: its clients are blocklisted."""
    doomed = [lock for lock in locks(client, pool, volume) if _host(lock.address) == host.strip("[]")]
    return _break(client, pool, volume, doomed)


def flush(client: CephClient, pool: str, volume: str) -> int:
    """Break every lock on ``pool/volume``, live or not; returns how many.

    A live holder is blocklisted and loses its access: only for a VM known not to run.
    """
    return _break(client, pool, volume, locks(client, pool, volume))
