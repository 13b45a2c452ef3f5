"""API resource groups, one module each."""

from pvc.api.resources import faults, metrics, nodes, root, status, tasks, vms

GROUPS = [root.group, status.group, nodes.group, faults.group, tasks.group, vms.group, metrics.group]
