"""ova: the script of OVA profiles (used when such a profile names no script of its own).

Each disk of the new VM is a copy of the matching volume PVC wrote when the OVA was
uploaded; the system template made from the OVF gives its CPUs and memory. Nothing is
installed: the appliance is already in its disks.
"""


def install(vm):
    for volume in vm.volumes:
        log("disk", volume.disk_id, "is a copy of", volume.pool + "/" + volume.source_volume)
