"""A node's recent log lines, as its daemon keeps them in ZooKeeper."""

from __future__ import annotations

from pvc.cluster.node.queries import get_node
from pvc.cluster.session import Cluster
from pvc.state.logring import read_log


def node_log(cluster: Cluster, name: str, lines: int) -> str:
    """The newest ``lines`` lines of node ``name``'s log; NotFoundError for an unknown node."""
    get_node(cluster, name)
    return "\n".join(read_log(cluster.store, name, lines))
