"""API resource groups, one module each."""

from pvc.api.resources import faults, metrics, nodes, root, status

GROUPS = [root.group, status.group, nodes.group, faults.group, metrics.group]
