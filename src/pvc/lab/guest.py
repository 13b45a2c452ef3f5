"""A tiny guest for the lab: a Debian kernel plus a busybox initramfs, built once and cached.

The guest prints a boot marker and then a numbered heartbeat to its serial console,
so a test can tell that it booted and that it kept running through a migration.
Guests run under TCG; the uncompressed kernel (PVH entry) boots in a few seconds.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pvc import commands
from pvc.commands import CommandError

BOOT_MARKER = "LAB-MARKER booted"
XZ_MAGIC = b"\xfd7zXZ\x00"
#: Kernel modules the guest loads, in order: virtio over PCI, virtio disks and NICs.
MODULES = (
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/block/virtio_blk.ko",
)
#: A heartbeat line on the guest's console: "HB <count> <uptime>".
HEARTBEAT = re.compile(r"^HB (\d+) ", re.MULTILINE)
#: Printed on the console at boot and whenever the guest's set of disks changes.
DISKS_MARKER = "LAB-DISKS"
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done
HB_US=1000000; HB_DISK=
for a in $(cat /proc/cmdline); do
  case "$a" in hb_us=*) HB_US=${a#hb_us=};; hb_disk=*) HB_DISK=${a#hb_disk=};; esac
done
read up rest < /proc/uptime; echo "LAB-MARKER booted uptime=$up" > /dev/ttyS0
i=0; seen=
while true; do
  i=$((i+1)); read up rest < /proc/uptime; echo "HB $i $up" > /dev/ttyS0
  if [ -n "$HB_DISK" ] && [ -b "/dev/$HB_DISK" ]; then
    echo "GUEST-HB $i" | dd of="/dev/$HB_DISK" bs=512 seek=8 count=1 conv=sync,notrunc 2>/dev/null; sync
  fi
  disks=$(ls /sys/block | grep -v -e '^loop' -e '^ram' | tr '\\n' ' ')
  if [ "$disks" != "$seen" ]; then
    seen=$disks; echo "LAB-DISKS [$disks]" > /dev/ttyS0
    for d in $disks; do
      echo "LAB-DISK $d $(head -c 64 /dev/$d | head -n 1 | tr -cd 'A-Za-z0-9_.:-')" > /dev/ttyS0
    done
  fi
  usleep $HB_US
done
"""


#: Where a guest writes its disk heartbeat (``GUEST-HB <n>``; sector 8).
DISK_HEARTBEAT_OFFSET = 4096
DISK_HEARTBEAT = re.compile(rb"GUEST-HB (\d+)")
#: The first line of the lab's guest disk image (the guest prints it as LAB-DISK <dev> <label>).
DISK_LABEL = "PVC-LAB-DISK"
DISK_SIZE = 16 * 2**20
#: Seconds a build step may take (downloading the kernel package is the slow one).
TOOL_TIMEOUT = 1800.0


def heartbeats(console: str) -> list[int]:
    """The heartbeat counts in a guest's console text, in order."""
    return [int(count) for count in HEARTBEAT.findall(console)]


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path

    def cmdline(self, heartbeat_us: int = 1_000_000, heartbeat_disk: str = "") -> str:
        """Kernel command line; with ``heartbeat_disk`` (``vda``) the guest also writes
        ``GUEST-HB <n>`` into that disk at byte :data:`DISK_HEARTBEAT_OFFSET` each beat."""
        extra = f" hb_disk={heartbeat_disk}" if heartbeat_disk else ""
        return f"console=ttyS0 quiet panic=-1 hb_us={heartbeat_us}{extra}"


def _run(*argv: str, cwd: Path | None = None, stdin: bytes | None = None) -> bytes:
    """Run a build step; its stdout. RuntimeError ``<argv>: <its stderr>`` if it fails."""
    try:
        return commands.run(argv, timeout=TOOL_TIMEOUT, cwd=cwd, input=stdin, text=False).stdout
    except CommandError as error:
        detail = str(error) if error.returncode is None else f"{' '.join(argv)}: {error.stderr.strip()}"
        raise RuntimeError(detail) from None


def kernel_package() -> str:
    """The versioned kernel package behind Debian's linux-image-amd64."""
    for line in _run("apt-cache", "depends", "linux-image-amd64").decode().splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("cannot find the kernel package behind linux-image-amd64 (run apt-get update)")


def _build_kernel(cache: Path) -> tuple[Path, Path]:
    """The uncompressed kernel and a directory with the guest's modules (from one .deb)."""
    vmlinux, modules = cache / "vmlinux", cache / "modules"
    if vmlinux.exists() and all((modules / Path(m).name).exists() for m in MODULES):
        return vmlinux, modules
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp)
        _run("apt-get", "download", kernel_package(), cwd=work)
        deb = next(work.glob("linux-image-*.deb"))
        _run("dpkg-deb", "-x", str(deb), str(work / "root"))
        compressed = next((work / "root" / "boot").glob("vmlinuz-*")).read_bytes()
        start = compressed.find(XZ_MAGIC)
        if start < 0:
            raise RuntimeError("the kernel image is not xz-compressed")
        tree = next((work / "root" / "lib" / "modules").iterdir()) / "kernel"
        modules.mkdir(exist_ok=True)
        for module in MODULES:
            shutil.copy2(tree / module, modules / Path(module).name)
        partial = vmlinux.with_suffix(".partial")
        partial.write_bytes(lzma.LZMADecompressor().decompress(compressed[start:]))
        partial.replace(vmlinux)
    return vmlinux, modules


def _build_initrd(cache: Path, modules: Path) -> Path:
    """The busybox initramfs; its file name carries a digest of what goes into it."""
    digest = hashlib.sha256(INIT.encode())
    for module in MODULES:
        digest.update((modules / Path(module).name).read_bytes())
    initrd = cache / f"initrd-{digest.hexdigest()[:12]}.img"
    if initrd.exists():
        return initrd
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        root = Path(tmp) / "root"
        for directory in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "lib/modules"):
            (root / directory).mkdir(parents=True)
        shutil.copy2("/bin/busybox", root / "bin" / "busybox")
        for index, module in enumerate(MODULES):  # numbered: the init loads them in this order
            shutil.copy2(
                modules / Path(module).name, root / "lib" / "modules" / f"{index:02d}-{Path(module).name}"
            )
        (root / "init").write_text(INIT)
        (root / "init").chmod(0o755)
        os.mknod(root / "dev" / "console", 0o600 | 0o020000, os.makedev(5, 1))
        files = "\n".join(str(p.relative_to(root)) for p in sorted(root.rglob("*"))) + "\n"
        archive = _run("/bin/busybox", "cpio", "-o", "-H", "newc", cwd=root, stdin=files.encode())
        partial = initrd.with_suffix(".partial")
        partial.write_bytes(gzip.compress(archive, compresslevel=1))
        partial.replace(initrd)
    for stale in cache.glob("initrd*.img"):
        if stale != initrd:
            stale.unlink(missing_ok=True)
    return initrd


def ensure_disk(cache: Path) -> Path:
    """A small raw disk image for disk-backed guests: sparse, its first line DISK_LABEL."""
    cache.mkdir(parents=True, exist_ok=True)
    disk = cache / "disk.img"
    if not disk.exists():
        partial = disk.with_suffix(".partial")
        with partial.open("wb") as image:
            image.write(f"{DISK_LABEL}\n".encode())
            image.truncate(DISK_SIZE)
        partial.replace(disk)
    return disk


def ensure_image(cache: Path) -> GuestImage:
    """Build (or reuse) the guest kernel and initramfs in ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    kernel, modules = _build_kernel(cache)
    return GuestImage(kernel=kernel, initrd=_build_initrd(cache, modules))
