"""The provisioner's database as the API holds it: connected through Patroni's leader."""

from __future__ import annotations

from pvc.config import NodeConfig
from pvc.db.engine import Database
from pvc.db.errors import DatabaseUnavailable
from pvc.state.store import Store

__all__ = ["Database", "DatabaseUnavailable", "connect"]


def connect(store: Store, config: NodeConfig, password: str) -> Database:
    """The provisioner database of the cluster whose Patroni members ``store`` shows."""
    return Database.of_cluster(store, config, password)
