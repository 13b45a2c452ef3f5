"""clone: each disk a copy-on-write clone of a prepared base image (the fast path).

The storage template names the base for each disk as ``source_volume`` ``volume@snapshot``
(a snapshot of a volume holding an installed system); PVC clones it, without copying
anything, and grows it to the disk's size. cloud-init in the guest then fetches the
profile's userdata from the metadata service (169.254.169.254) at first boot.

Arguments (all optional): ``kernel``, ``initrd`` and ``cmdline`` boot that kernel directly
(it must lie in the nodes' image directories) instead of the disk's own boot loader.
"""


def setup(vm):
    cloned = [v.disk_id for v in vm.volumes if v.source_volume and "@" in v.source_volume]
    if not cloned:
        fail(
            "the clone script needs a storage template with at least one disk whose "
            "source_volume is volume@snapshot"
        )
    log("cloning", ", ".join(cloned), "for", vm.name)


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
        log("disk", volume.disk_id, "is", volume.pool + "/" + volume.volume, "from", volume.source_volume)
