"""What request handlers work with: the store, the cache and the API settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from pvc.api.vm_views import VmViews
from pvc.cluster.storage_access import StorageAccess
from pvc.cluster.storage_ops import StorageOps
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
    #: Cluster default for choosing VM target nodes (hypervisor.target_selector).
    vm_selector: str = "mem"
    #: The primary's Ceph client (storage.ceph_conf); unconfigured answers writes with 503.
    storage: StorageAccess = field(default_factory=StorageAccess)
    _vm_views: VmViews | None = field(default=None, repr=False)

    @property
    def storage_ops(self) -> StorageOps:
        """Immediate storage changes through :attr:`storage`."""
        return StorageOps(self.store, self.cache, self.storage)

    @property
    def vm_views(self) -> VmViews:
        """The API's incrementally maintained VM list (built on first use)."""
        if self._vm_views is None:
            self._vm_views = VmViews(self.cache)
        return self._vm_views

    def settle(self, *paths: str, timeout: float = 2.0) -> None:
        """Wait until the cache shows what ZooKeeper holds at ``paths`` (read-your-writes).

        Handlers that change state call this, so a client reading right after its own
        change sees it. The cache normally catches up within milliseconds.
        """
        self.cache.wait_shows({path: self.store.get(path) for path in paths}, timeout)


def ctx() -> ApiContext:
    """The context of the running app."""
    return current_app.extensions["pvc"]
