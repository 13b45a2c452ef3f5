"""ova: the script of OVA profiles (used when such a profile names no script of its own).

Each disk of the new VM is a copy of the matching volume PVC wrote when the OVA was
uploaded; the system template made from the OVF gives its CPUs and memory. Nothing is
installed: the appliance is already in its disks.

Arguments (all optional): ``kernel``, ``initrd`` and ``cmdline`` boot that kernel directly
(it must lie in the nodes' image directories) instead of the disk's own boot loader.
"""


def create(vm):
    kernel = vm.arguments.get("kernel")
    if not kernel:
        return None
    return {
        "kernel": kernel,
        "initrd": vm.arguments.get("initrd"),
        "cmdline": vm.arguments.get("cmdline", ""),
    }


def install(vm):
    for volume in vm.volumes:
        log("disk", volume.disk_id, "is a copy of", volume.pool + "/" + volume.source_volume)
