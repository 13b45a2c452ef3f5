"""API resource groups, one module each."""

from pvc.api.resources import (
    faults,
    metrics,
    networks,
    nodes,
    provisioner_create,
    provisioner_library,
    provisioner_ova,
    provisioner_templates,
    root,
    sriov,
    status,
    storage,
    storage_volumes,
    tasks,
    vm_snapshots,
    vms,
)

GROUPS = [
    root.group,
    status.group,
    nodes.group,
    faults.group,
    tasks.group,
    vms.group,
    vm_snapshots.group,
    networks.group,
    storage.group,
    storage_volumes.group,
    sriov.group,
    provisioner_templates.group,
    provisioner_library.group,
    provisioner_create.group,
    provisioner_ova.group,
    metrics.group,
]
