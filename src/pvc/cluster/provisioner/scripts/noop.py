"""noop: define the VM from its templates and do nothing else.

Use it for VMs that install themselves (a network installer, cloud-init on a bare disk)
or whose disks are prepared some other way. No hooks: PVC makes the volumes the storage
template describes, builds the VM's definition and starts it.
"""
