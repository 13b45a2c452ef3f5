"""iproute2's ``ip`` through the command runner: links, addresses and network namespaces."""

from __future__ import annotations

from collections.abc import Collection

from pvc import commands
from pvc.commands import CommandError, CommandResult
from pvc.errors import PVCError

#: Seconds an ``ip`` command may take.
IP_TIMEOUT = 60.0


class NetError(PVCError):
    """An ip(8) command failed."""


def ip(
    *args: str, netns: str | None = None, check: bool = True, tolerate: Collection[str] = ()
) -> CommandResult[str]:
    """Run ``ip [-n netns] <args>``; its result, whatever its exit status unless ``check``.

    With ``check`` a failure is a NetError ``ip <args>: <its stderr>``, unless its stderr
    contains one of the ``tolerate`` texts. A timeout or a missing ``ip`` is always one.
    """
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    try:
        result = commands.run(argv, timeout=IP_TIMEOUT, accept=None)
    except CommandError as error:
        raise NetError(str(error)) from None
    if check and result.returncode != 0 and not any(text in result.stderr for text in tolerate):
        raise NetError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result
