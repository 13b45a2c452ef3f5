"""The lab's secrets on disk (API key, BMC password): one line, mode 0600."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` as the only line of a new file readable by its owner alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def read_private(path: Path) -> str | None:
    """The line written by :func:`write_private`; None when there is no file (or it is empty)."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
