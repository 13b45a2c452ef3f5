"""debootstrap: a fresh Debian system installed into a new disk of the VM.

A hook has no network, so this script only describes the installation; PVC carries it out
(``mmdebstrap`` as the unprivileged ``pvcprov`` account, from one of the mirrors the
cluster's ``provisioner.debootstrap_mirrors`` allows) and writes it into the disk. The
disk holds one ext4 filesystem labelled ``pvc-root``, without a partition table or a boot
loader, so the VM boots a kernel from the nodes' image directories.

The disk is the storage template's disk mounted at ``/``, else its first disk without a
source volume; it must have a size. Include ``cloud-init`` in ``packages`` to have the
guest configured from the profile's userdata through the metadata service.

Arguments:
  kernel (required), initrd: the kernel (and its initramfs, with the virtio drivers)
      the VM boots, from the nodes' image directories;
  cmdline: the kernel's command line (default ``root=<the disk> rw console=ttyS0``);
  suite (default bookworm), variant (minbase, buildd, required, important, standard;
      default minbase), components (default main), packages (comma-separated);
  mirror: one of the allowed mirrors (default the first).
"""


def _disk(vm):
    for volume in vm.volumes:
        if volume.mountpoint == "/":
            return volume
    for volume in vm.volumes:
        if not volume.source_volume:
            return volume
    fail("the debootstrap script needs a storage template with a new disk (a size, no source volume)")


def _device(vm):
    return "/dev/vd" + "abcdefghijklmnopqrstuvwxyz"[vm.volumes.index(_disk(vm))]


def setup(vm):
    if not vm.arguments.get("kernel"):
        fail(
            "the debootstrap script needs the argument kernel (and usually initrd): the disk it "
            "installs has no boot loader, so the VM boots a kernel from the nodes' image directories"
        )
    disk = _disk(vm)
    if disk.source_volume or not disk.size_gb:
        fail(f"disk {disk.disk_id} must be a new disk with a size to install Debian into")
    log("installing Debian", vm.arguments.get("suite", "bookworm"), "into disk", disk.disk_id)


def create(vm):
    return {
        "kernel": vm.arguments.get("kernel"),
        "initrd": vm.arguments.get("initrd"),
        "cmdline": vm.arguments.get("cmdline", f"root={_device(vm)} rw console=ttyS0"),
    }


def install(vm):
    arguments = vm.arguments
    return {
        "debootstrap": {
            "disk": _disk(vm).disk_id,
            "suite": arguments.get("suite", "bookworm"),
            "variant": arguments.get("variant", "minbase"),
            "components": arguments.get("components", "main"),
            "packages": arguments.get("packages", ""),
            "mirror": arguments.get("mirror"),
        }
    }
