"""Where VM snapshots may be exported to and imported from."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from pvc.config.base import _Section


def _no_parent_steps(path: str) -> str:
    if ".." in path.split("/"):
        raise ValueError("a backup path may not contain '..'")
    return path


#: An absolute directory path without ``..`` components.
BackupRoot = Annotated[str, Field(pattern=r"^/", max_length=400), AfterValidator(_no_parent_steps)]


class BackupSection(_Section):
    """Directories on the primary coordinator for VM snapshot exports and imports.

    Export and import paths given to the API must lie under one of ``paths`` (after
    following symbolic links): the node daemon that writes and reads them runs as root, so
    no client may name any other place. None configured: exports and imports are refused.
    """

    paths: list[BackupRoot] = Field(default=[], max_length=32)
