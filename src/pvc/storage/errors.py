"""Errors raised by the Ceph adapter, and the translation of librados/librbd and tool errors into them."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from pvc.commands import CommandError
from pvc.errors import PVCError


class StorageError(PVCError):
    """A Ceph operation failed; ``str()`` carries Ceph's own message where there is one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        #: the positive errno Ceph returned, when known
        self.code = code


class StorageNotFound(StorageError):
    """The pool, volume, snapshot or OSD does not exist."""


class StorageExists(StorageError):
    """An object of that name exists already."""


class StorageTimeout(StorageError):
    """Ceph did not answer within the configured timeout."""


class StorageBusy(StorageError):
    """The object is in use: an image with watchers, snapshots or children, a pool in use."""


class StorageDeviceError(StorageError):
    """A device given for OSD work is missing, unreadable or not a block device."""


class StorageToolError(StorageError):
    """An external tool (ceph-volume, LVM, qemu-img, rbd, ceph-osd, ...) failed or could not be started."""


class StorageToolTimeout(StorageToolError, StorageTimeout):
    """An external tool did not finish within its timeout (it was killed)."""


def tool_error(
    error: CommandError, *, failed: str = "", timed_out: str = "", cannot_run: str = ""
) -> StorageToolError:
    """The storage error for a tool's :class:`~pvc.commands.CommandError`.

    StorageToolTimeout if the tool did not finish in time, else StorageToolError. The
    message is the one given for what happened (an exit status it should not have, the
    timeout, a tool that could not be started), the runner's own where none is given.
    """
    if error.timed_out:
        return StorageToolTimeout(timed_out or str(error))
    return StorageToolError((cannot_run if error.reason is not None else failed) or str(error))


_BY_ERRNO: dict[int, type[StorageError]] = {
    errno.ENOENT: StorageNotFound,
    errno.EEXIST: StorageExists,
    errno.ETIMEDOUT: StorageTimeout,
    errno.EBUSY: StorageBusy,
    errno.ENOTEMPTY: StorageBusy,
}


def error_for(code: int, message: str) -> StorageError:
    """The StorageError subclass for an errno (sign ignored) carrying ``message``."""
    code = abs(code)
    return _BY_ERRNO.get(code, StorageError)(message, code)


def errno_of(exc: BaseException) -> int | None:
    """The errno carried by a librados/librbd exception, if any."""
    code = getattr(exc, "errno", None)
    return abs(code) if isinstance(code, int) else None


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn librados/librbd exceptions raised inside the block into StorageErrors.

    ``what`` names the operation for the message, e.g. ``"create volume rbd/disk0"``.
    StorageErrors and ValueErrors pass through unchanged.
    """
    try:
        yield
    except (StorageError, ValueError):
        raise
    except Exception as exc:
        module = type(exc).__module__
        if module not in ("rados", "rbd"):
            raise
        code = errno_of(exc)
        detail = str(exc) or type(exc).__name__
        message = f"{what}: {detail}"
        if code is None:
            name = type(exc).__name__
            if name in ("ImageNotFound", "ObjectNotFound"):
                raise StorageNotFound(message) from exc
            if name in ("TimedOut", "Timeout", "InterruptedOrTimeoutError"):
                raise StorageTimeout(message) from exc
            raise StorageError(message) from exc
        raise error_for(code, message) from exc
