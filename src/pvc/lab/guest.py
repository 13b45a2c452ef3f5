"""A tiny guest for the lab: a Debian kernel plus a busybox initramfs, built once and cached.

The guest prints a boot marker and then a numbered heartbeat to its serial console,
so a test can tell that it booted and that it kept running through a migration.
Guests run under TCG; the uncompressed kernel (PVH entry) boots in a few seconds.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
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
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
)
#: A heartbeat line on the guest's console: "HB <count> <uptime>".
HEARTBEAT = re.compile(r"^HB (\d+) ", re.MULTILINE)
#: Printed on the console at boot and whenever the guest's set of disks changes.
DISKS_MARKER = "LAB-DISKS"
#: ``LAB-NET <iface> <address>/<prefix> router=<gateway>``: the guest's DHCP client bound an address.
NET_BOUND = re.compile(r"^LAB-NET (\S+) (\S+)/(\d+) router=(\S*)", re.MULTILINE)
#: ``LAB-PING <address> ok|fail`` (``LAB-PING6`` for IPv6), ``LAB-TCP <address>:<port> open|closed``,
#: ``LAB-DNS <name> <address or nothing>``: the guest's probes, repeated every second.
PROBE = re.compile(r"^LAB-(PING6|PING|TCP|DNS) (\S+) ?(\S*)", re.MULTILINE)
#: ``LAB-META <line>``: a line of the user-data the guest got from the metadata service;
#: ``LAB-META-ID <instance-id>`` follows the last one.
META_LINE = re.compile(r"^LAB-META (.*)$", re.MULTILINE)
META_ID = re.compile(r"^LAB-META-ID (\S*)", re.MULTILINE)
#: TCP ports on which a networked guest answers HTTP (``LAB-WWW <hostname>``).
GUEST_HTTP_PORTS = (80, 8080)
DHCP_SCRIPT = """#!/bin/busybox sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    echo "LAB-NET $interface $ip/${mask:-24} router=${router%% *}" > /dev/ttyS0 ;;
esac
"""
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done
HB_US=1000000; HB_DISK=; NET=; HOST=guest; ADDR=; PINGS=; PINGS6=; TCPS=; DNSS=; META=
for a in $(cat /proc/cmdline); do
  case "$a" in
    hb_us=*) HB_US=${a#hb_us=};; hb_disk=*) HB_DISK=${a#hb_disk=};;
    lab_net=*) NET=${a#lab_net=};; lab_host=*) HOST=${a#lab_host=};; lab_addr=*) ADDR=${a#lab_addr=};;
    lab_ping=*) PINGS=$(echo ${a#lab_ping=} | tr , ' ');;
    lab_ping6=*) PINGS6=$(echo ${a#lab_ping6=} | tr , ' ');;
    lab_tcp=*) TCPS=$(echo ${a#lab_tcp=} | tr , ' ');;
    lab_dns=*) DNSS=$(echo ${a#lab_dns=} | tr , ' ');;
    lab_meta=*) META=${a#lab_meta=};;
  esac
done
read up rest < /proc/uptime; echo "LAB-MARKER booted uptime=$up" > /dev/ttyS0
if [ -n "$NET" ]; then
  hostname "$HOST"; ip link set lo up
  mkdir -p /www; echo "LAB-WWW $HOST" > /www/index.html
  for port in @HTTP_PORTS@; do httpd -p $port -h /www; done
  for dev in $(ls /sys/class/net); do
    [ "$dev" = lo ] && continue
    ip link set "$dev" up
    if [ -n "$ADDR" ]; then
      ip addr add "$ADDR" dev "$dev"; echo "LAB-NET $dev $ADDR router=" > /dev/ttyS0; continue
    fi
    udhcpc -i "$dev" -s /bin/lab-dhcp -x hostname:"$HOST" -t 60 -T 1 -A 1 >/dev/null 2>&1 &
  done
  if [ -n "$META" ]; then
    (
      mkdir -p /tmp; M=http://169.254.169.254/latest
      until timeout 5 wget -q -O /tmp/user-data $M/user-data 2>/dev/null; do sleep 1; done
      while IFS= read -r l; do echo "LAB-META $l" > /dev/ttyS0; done < /tmp/user-data
      echo "LAB-META-ID $(timeout 5 wget -q -O - $M/meta-data/instance-id)" > /dev/ttyS0
    ) &
  fi
  (
    while true; do
      for t in $PINGS; do
        if ping -c 1 -W 1 "$t" >/dev/null 2>&1; then r=ok; else r=fail; fi
        echo "LAB-PING $t $r" > /dev/ttyS0
      done
      for t in $PINGS6; do
        if ping6 -c 1 -W 1 "$t" >/dev/null 2>&1; then r=ok; else r=fail; fi
        echo "LAB-PING6 $t $r" > /dev/ttyS0
      done
      for t in $TCPS; do
        if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 "${t%:*}" "${t##*:}" | grep -q LAB-WWW; then r=open
        else r=closed; fi
        echo "LAB-TCP $t $r" > /dev/ttyS0
      done
      for t in $DNSS; do
        a=$(nslookup "${t%@*}" "${t#*@}" 2>/dev/null | sed -n 's/^Address: *//p' | tail -n 1)
        echo "LAB-DNS ${t%@*} $a" > /dev/ttyS0
      done
      sleep 1
    done
  ) &
fi
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
""".replace("@HTTP_PORTS@", " ".join(str(port) for port in GUEST_HTTP_PORTS))


#: Where a guest writes its disk heartbeat (``GUEST-HB <n>``; sector 8).
DISK_HEARTBEAT_OFFSET = 4096
DISK_HEARTBEAT = re.compile(rb"GUEST-HB (\d+)")
#: The first line of the lab's guest disk image (the guest prints it as LAB-DISK <dev> <label>).
DISK_LABEL = "PVC-LAB-DISK"
DISK_SIZE = 16 * 2**20
#: Seconds a build step may take (downloading the kernel package is the slow one).
TOOL_TIMEOUT = 1800.0


def net_bound(console: str) -> dict[str, str]:
    """The address each interface of a guest last bound by DHCP (``{"eth0": "10.0.0.5/24"}``)."""
    return {iface: f"{address}/{prefix}" for iface, address, prefix, _router in NET_BOUND.findall(console)}


def probes(console: str) -> dict[tuple[str, str], str]:
    """The latest result of each probe a guest ran: ``{("PING", "10.0.0.1"): "ok", ...}``."""
    return {(kind, target): result for kind, target, result in PROBE.findall(console)}


def metadata_seen(console: str) -> tuple[list[str], str | None]:
    """The user-data lines a guest printed, and its instance-id once it printed it."""
    found = META_ID.search(console)
    return META_LINE.findall(console), found.group(1) if found else None


def heartbeats(console: str) -> list[int]:
    """The heartbeat counts in a guest's console text, in order."""
    return [int(count) for count in HEARTBEAT.findall(console)]


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path

    def cmdline(
        self,
        heartbeat_us: int = 1_000_000,
        heartbeat_disk: str = "",
        *,
        network: GuestNetwork | None = None,
    ) -> str:
        """Kernel command line; with ``heartbeat_disk`` (``vda``) the guest also writes
        ``GUEST-HB <n>`` into that disk at byte :data:`DISK_HEARTBEAT_OFFSET` each beat;
        with ``network`` it brings up its NICs by DHCP and runs the probes it names."""
        extra = f" hb_disk={heartbeat_disk}" if heartbeat_disk else ""
        if network is not None:
            extra += network.cmdline()
        return f"console=ttyS0 quiet panic=-1 hb_us={heartbeat_us}{extra}"


_TOKEN = re.compile(r"[A-Za-z0-9._:@-]+")


@dataclass(frozen=True)
class GuestNetwork:
    """What a networked guest does: DHCP on every NIC with ``hostname`` (or the static
    ``address``, ``10.0.0.5/24``, when given; IPv6 comes from router advertisements), then,
    every second, ping each of ``ping`` (and ``ping6``), ask ``<address>:<port>`` of each of
    ``tcp`` for its HTTP page and look up each ``name@server`` of ``dns``, printing each
    result on its console. With ``metadata``, it fetches its user-data from the metadata
    service (169.254.169.254) until it gets it, prints each line as ``LAB-META <line>``, then
    ``LAB-META-ID <its instance-id>``."""

    hostname: str = "guest"
    address: str = ""
    ping: tuple[str, ...] = ()
    ping6: tuple[str, ...] = ()
    tcp: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    metadata: bool = False

    def cmdline(self) -> str:
        for token in (self.hostname, *self.ping, *self.ping6, *self.tcp, *self.dns):
            if not _TOKEN.fullmatch(token):
                raise ValueError(f"not usable on a guest's command line: {token!r}")
        parts = [" lab_net=1", f" lab_host={self.hostname}"]
        if self.address:
            parts.append(f" lab_addr={ipaddress.IPv4Interface(self.address).with_prefixlen}")
        if self.metadata:
            parts.append(" lab_meta=1")
        probes = (
            ("lab_ping", self.ping),
            ("lab_ping6", self.ping6),
            ("lab_tcp", self.tcp),
            ("lab_dns", self.dns),
        )
        for key, values in probes:
            if values:
                parts.append(f" {key}={','.join(values)}")
        return "".join(parts)


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
    digest = hashlib.sha256(INIT.encode() + DHCP_SCRIPT.encode())
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
        (root / "bin" / "lab-dhcp").write_text(DHCP_SCRIPT)
        (root / "bin" / "lab-dhcp").chmod(0o755)
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
