"""Where the lab keeps what is worth keeping between labs (guest image, libvirt caches)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "PVC_LAB_CACHE"


def cache_dir() -> Path:
    """``$PVC_LAB_CACHE``, else ``.cache/lab`` in the source tree, else ``~/.cache/pvc-lab``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    source_root = Path(__file__).resolve().parents[3]
    if (source_root / "pyproject.toml").exists():
        return source_root / ".cache" / "lab"
    return Path.home() / ".cache" / "pvc-lab"
