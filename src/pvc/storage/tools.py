"""The host's storage tools (LVM, ceph-volume) through :mod:`pvc.commands`, failing with storage errors."""

from __future__ import annotations

from collections.abc import Sequence

from pvc import commands
from pvc.commands import CommandError
from pvc.storage.errors import tool_error

#: Seconds a host storage tool may take.
TIMEOUT = 600.0


def run(argv: Sequence[str], timeout: float = TIMEOUT) -> str:
    """Run ``argv`` to completion; its stdout.

    A failure is a StorageToolError (StorageToolTimeout if it did not finish in time) with
    the runner's message, e.g. ``lvcreate failed: <end of its stderr>``.
    """
    try:
        return commands.run(argv, timeout=timeout).stdout
    except CommandError as error:
        raise tool_error(error) from None
