"""Debian installs for install scripts: the ``debootstrap`` directive of an ``install`` hook.

A hook runs with neither network nor privileges, so it cannot install a system itself.
It returns ``{"debootstrap": {...}}`` instead (the shipped ``debootstrap`` script does),
and the create task does the work here, still without root:

1. ``mmdebstrap --mode=unshare --format=tar`` runs as the unprivileged account
   ``pvcprov`` (in a user namespace of its own, with the subordinate IDs
   ``scripts/setup.sh`` gives it), from a mirror the cluster's configuration allows
   (``provisioner.debootstrap_mirrors``), into a tarball in a private work directory;
2. still as ``pvcprov``, ``genext2fs`` makes a filesystem image of it (4 KiB blocks, the
   label ``pvc-root``), which ``resize2fs`` grows to the disk's size and ``tune2fs`` makes
   ext4 (a journal, extents);
3. PVC writes the image into the disk's new, empty volume (``qemu-img convert``).

The disk then holds one filesystem, without a partition table or a boot loader (making
those needs root): the VM boots a kernel from the nodes' image directories, with
``root=/dev/vdX``. Every value of the directive is checked here, never handed to a shell.
"""

from __future__ import annotations

import contextlib
import math
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner.sandbox import SANDBOX_USER

GIB = 1024**3
#: The filesystem's block size, and the blocks added to what the system's files take.
BLOCK = 4096
SLACK_BLOCKS = 16384
#: The label of the root filesystem (``/etc/fstab`` mounts it by label).
ROOT_LABEL = "pvc-root"
#: mmdebstrap variants a directive may ask for.
VARIANTS = ("minbase", "buildd", "required", "important", "standard")
#: Filesystems a root disk may declare (the image is ext2, grown into ext4 with a journal).
ROOT_FILESYSTEMS = (None, "", "ext2", "ext3", "ext4")
#: Seconds each e2fsprogs step may take on the image.
E2FS_TIMEOUT = 600.0
#: Lines of the installer's output kept for the task's log and error.
TAIL_LINES = 8

_SUITE = re.compile(r"[a-z][a-z0-9.-]{0,31}")
_COMPONENT = re.compile(r"[a-z][a-z0-9-]{0,31}")
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]{0,99}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_DIRECTIVE_KEYS = {"disk", "suite", "mirror", "variant", "components", "packages"}


@dataclass(frozen=True)
class Install:
    """One Debian installation into one disk of the new VM."""

    disk_id: str
    pool: str
    volume: str
    size: int
    device: str
    suite: str
    mirror: str
    variant: str
    components: tuple[str, ...]
    packages: tuple[str, ...]
    hostname: str

    @property
    def cloud_init(self) -> bool:
        """Whether cloud-init is installed (it is then pointed at PVC's metadata service)."""
        return "cloud-init" in self.packages


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ClusterError(f"debootstrap: {what} must be a short text")
    return value


def _names(value: Any, pattern: re.Pattern[str], what: str, limit: int) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or len(value) > limit:
        raise ClusterError(f"debootstrap: {what} must be a list of at most {limit} names")
    for name in value:
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise ClusterError(f"debootstrap: {str(name)[:60]!r} is not a valid {what[:-1]} name")
    return tuple(dict.fromkeys(value))


def directive(value: Any, vm_data: dict[str, Any], mirrors: list[str]) -> Install | None:
    """The installation an ``install`` hook's answer asks for (None when it asks for none);
    ClusterError naming what is wrong with it."""
    if not isinstance(value, dict) or "debootstrap" not in value:
        return None
    asked = value["debootstrap"]
    if not isinstance(asked, dict):
        raise ClusterError("debootstrap: the directive must be a mapping")
    unknown = sorted(set(map(str, asked)) - _DIRECTIVE_KEYS)
    if unknown:
        raise ClusterError(f"debootstrap: unknown settings {', '.join(unknown)[:200]}")
    if not mirrors:
        raise ClusterError("debootstrap: no mirror is allowed (provisioner.debootstrap_mirrors is empty)")
    mirror = asked.get("mirror") or mirrors[0]
    if mirror not in mirrors:
        raise ClusterError(
            f"debootstrap: mirror {str(mirror)[:100]!r} is not one the cluster allows "
            f"(provisioner.debootstrap_mirrors: {', '.join(mirrors)})"
        )
    volumes = vm_data["volumes"]
    disk_id = asked.get("disk") or _root_disk(volumes)
    index = next((i for i, v in enumerate(volumes) if v["disk_id"] == disk_id), None)
    if index is None:
        raise ClusterError(f"debootstrap: the storage template has no disk {str(disk_id)[:40]!r}")
    disk = volumes[index]
    if disk.get("source_volume"):
        raise ClusterError(f"debootstrap: disk {disk_id} is made from a source volume; it must be a new one")
    if not disk.get("size_gb"):
        raise ClusterError(f"debootstrap: disk {disk_id} has no size")
    if disk.get("filesystem") not in ROOT_FILESYSTEMS:
        raise ClusterError(f"debootstrap: disk {disk_id} declares {disk['filesystem']}; the system is ext4")
    suite = _text(asked.get("suite") or "bookworm", "suite")
    if not _SUITE.fullmatch(suite):
        raise ClusterError(f"debootstrap: {suite[:40]!r} is not a valid suite name")
    variant = asked.get("variant") or "minbase"
    if variant not in VARIANTS:
        raise ClusterError(f"debootstrap: variant must be one of {', '.join(VARIANTS)}")
    hostname = vm_data["name"] if _HOSTNAME.fullmatch(vm_data["name"]) else "localhost"
    return Install(
        disk_id=disk_id,
        pool=disk["pool"],
        volume=disk["volume"],
        size=int(disk["size_gb"]) * GIB,
        device=f"/dev/vd{chr(ord('a') + index)}",
        suite=suite,
        mirror=mirror,
        variant=variant,
        components=_names(asked.get("components") or ["main"], _COMPONENT, "components", 8),
        packages=_names(asked.get("packages") or [], _PACKAGE, "packages", 200),
        hostname=hostname,
    )


def _root_disk(volumes: list[dict[str, Any]]) -> str:
    """The disk mounted at ``/``, else the first disk made new."""
    for volume in volumes:
        if volume.get("mountpoint") == "/":
            return volume["disk_id"]
    for volume in volumes:
        if not volume.get("source_volume"):
            return volume["disk_id"]
    raise ClusterError("debootstrap: the storage template has no new disk to install into")


def _customize_hooks(install: Install) -> list[str]:
    """Shell commands mmdebstrap runs on the finished tree (``$1``), built from checked values."""
    files = {
        "/etc/hostname": f"{install.hostname}\n",
        "/etc/fstab": f"LABEL={ROOT_LABEL} / ext4 errors=remount-ro 0 1\n",
    }
    if install.cloud_init:
        files["/etc/cloud/cloud.cfg.d/90-pvc.cfg"] = (
            "# PVC's metadata service answers EC2 requests at 169.254.169.254\n"
            "datasource_list: [ Ec2, None ]\n"
            "datasource:\n  Ec2:\n    metadata_urls: [ 'http://169.254.169.254' ]\n    strict_id: false\n"
        )
    hooks = []
    for path, content in files.items():
        target = shlex.quote(path)
        hooks.append(
            f'mkdir -p "$1"{shlex.quote(os.path.dirname(path))} && '
            f'printf %s {shlex.quote(content)} > "$1"{target}'
        )
    return hooks


def mmdebstrap_argv(install: Install, tarball: Path) -> list[str]:
    """The installer's command line for ``install`` into ``tarball``."""
    argv = [
        "mmdebstrap",
        "--mode=unshare",
        "--format=tar",
        f"--variant={install.variant}",
        f"--components={','.join(install.components)}",
    ]
    if install.packages:
        argv.append(f"--include={','.join(install.packages)}")
    argv += [f"--customize-hook={hook}" for hook in _customize_hooks(install)]
    return [*argv, install.suite, str(tarball), install.mirror]


class Runner:
    """Runs the steps of an installation as ``pvcprov`` in its work directory, each until it
    ends, its time is up, or the task is cancelled (then its whole process group is killed)."""

    def __init__(self, work: Path, cancelled: Callable[[], bool], user: str = SANDBOX_USER) -> None:
        self.work = work
        self.cancelled = cancelled
        self.account = pwd.getpwnam(user)
        self.log = work / "output.log"

    def run(self, argv: list[str], timeout: float, what: str, accept: tuple[int, ...] = (0,)) -> None:
        """Run ``argv``; ClusterError with the end of its output unless it exits with a
        status of ``accept``."""
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.work),
            "TMPDIR": str(self.work),
        }
        with open(self.log, "wb") as output:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.work,
                env=env,
                user=self.account.pw_uid,
                group=self.account.pw_gid,
                extra_groups=[],
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if self.cancelled() or time.monotonic() > deadline:
                self._kill(process)
                if self.cancelled():
                    raise ClusterError(f"{what} was cancelled")
                raise ClusterError(f"{what} did not finish within {timeout:g} s")
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.5)
        if process.returncode not in accept:
            raise ClusterError(f"{what} failed (exit status {process.returncode}): {self.tail()}")

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines of the latest step's output, joined by `` | ``."""
        try:
            text = self.log.read_bytes()[-8192:].decode(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
                return


@contextlib.contextmanager
def work_directory(parent: str | Path, user: str = SANDBOX_USER):
    """A new directory under ``parent`` that only ``user`` (and root) may list; removed after."""
    account = pwd.getpwnam(user)
    for directory in [Path(parent), *Path(parent).parents]:
        try:
            mode = directory.stat().st_mode
        except OSError as error:
            raise ClusterError(f"debootstrap: work directory {parent}: {error.strerror}") from None
        if not mode & stat.S_IXOTH:
            raise ClusterError(
                f"debootstrap: {user} cannot reach the work directory {parent} ({directory} is closed to it; "
                "see provisioner.work_dir)"
            )
    work = Path(tempfile.mkdtemp(prefix="pvc-debootstrap-", dir=parent))
    try:
        os.chown(work, account.pw_uid, account.pw_gid)
        # others may pass through (not list): the installer's namespace root, a subordinate
        # ID of the account, must reach the tree it builds here
        work.chmod(0o711)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def filesystem_blocks(tarball_size: int) -> int:
    """4 KiB blocks of a filesystem that holds a tarball of ``tarball_size`` bytes: its data
    with each file rounded up to a block, inode tables, and room for the first boot."""
    return math.ceil(tarball_size * 1.25 / BLOCK) + SLACK_BLOCKS


def fetch(install: Install, runner: Runner, timeout: float) -> Path:
    """Install the system from the mirror into a tarball in the work directory; its path."""
    tarball = runner.work / "root.tar"
    runner.run(
        mmdebstrap_argv(install, tarball), timeout, f"installing Debian {install.suite} from {install.mirror}"
    )
    return tarball


def make_filesystem(install: Install, runner: Runner, tarball: Path) -> Path:
    """An ext4 image of exactly the disk's size holding ``tarball`` (removed); its path."""
    image = runner.work / "root.img"
    blocks = filesystem_blocks(tarball.stat().st_size)
    if blocks * BLOCK > install.size:
        raise ClusterError(
            f"debootstrap: the installed system needs {blocks * BLOCK / GIB:.1f} GiB, more than disk "
            f"{install.disk_id} has ({install.size // GIB} GiB)"
        )
    make = ["genext2fs", "-B", str(BLOCK), "-b", str(blocks), "-i", "16384", "-m", "0"]
    make += ["-L", ROOT_LABEL, "-a", str(tarball), str(image)]
    runner.run(make, E2FS_TIMEOUT, "making the filesystem")
    tarball.unlink()
    # e2fsck exits 1 when it corrected something (genext2fs makes no lost+found)
    runner.run(["e2fsck", "-f", "-y", str(image)], E2FS_TIMEOUT, "checking the new filesystem", (0, 1))
    os.truncate(image, install.size)
    runner.run(
        ["resize2fs", str(image)], E2FS_TIMEOUT, f"growing the filesystem to {install.size // GIB} GiB"
    )
    features = "extent,dir_index,huge_file,dir_nlink"  # ext4's, for the files written from now on
    runner.run(["tune2fs", "-j", "-O", features, str(image)], E2FS_TIMEOUT, "making the filesystem ext4")
    return image


def build_image(install: Install, runner: Runner, timeout: float) -> Path:
    """Install the system into an image file of exactly the disk's size; its path."""
    return make_filesystem(install, runner, fetch(install, runner, timeout))
