"""What request handlers work with: the store, the cache and the API settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from pvc.config import ApiSection
from pvc.state.cache import ClusterCache
from pvc.state.store import Store


@dataclass
class ApiContext:
    store: Store
    cache: ClusterCache
    settings: ApiSection = field(default_factory=ApiSection)
    cluster_name: str = ""
    upstream_ip: str = ""
    log_lines_default: int = 1000
    state_dir: Path = Path("/var/lib/pvc")


def ctx() -> ApiContext:
    """The context of the running app."""
    return current_app.extensions["pvc"]
