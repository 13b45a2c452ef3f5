"""Real QEMU guests (TCG) on the lab's per-node libvirtd: boot, live migration, forced shutdown."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.domain_xml import DomainSpec, build
from pvc.lab import libvirt
from pvc.lab.cache import cache_dir
from pvc.lab.guest import BOOT_MARKER, ensure_image
from pvc.lab.layout import LabLayout
from tests.helpers import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

PREFIX, NET_INDEX = "pvct", 77
HEARTBEAT = re.compile(r"^HB (\d+) ", re.MULTILINE)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vmlab") / "lab"
    env = {**os.environ, "PVC_CLIENT_DIR": str(directory.parent / "client")}

    def pvc_lab(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "pvc.lab.cli", "--dir", str(directory), *args],
            check=True,
            capture_output=True,
            env=env,
            timeout=180,
        )

    pvc_lab("up", "--prefix", PREFIX, "--net-index", str(NET_INDEX))
    layout = LabLayout(directory, prefix=PREFIX, net_index=NET_INDEX)
    try:
        yield layout
    finally:
        pvc_lab("down")
        leftover = subprocess.run(
            ["pgrep", "-f", f"qemu-system.*{directory}"], capture_output=True, text=True
        )
        assert leftover.stdout == "", "QEMU processes outlived the lab"


class HeartbeatWatch(threading.Thread):
    """Polls a serial log and records when each new heartbeat line arrived."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.arrivals, self.stop = path, [], threading.Event()

    def run(self) -> None:
        seen = 0
        while not self.stop.is_set():
            beats = [int(n) for n in HEARTBEAT.findall(self.path.read_text())] if self.path.exists() else []
            if len(beats) > seen:
                self.arrivals.extend((time.monotonic(), n) for n in beats[seen:])
                seen = len(beats)
            time.sleep(0.02)


def test_guest_boots_migrates_live_and_is_forced_off(lab: LabLayout):
    image = ensure_image(cache_dir())
    serial = lab.directory / "serial" / "vm1.log"
    serial.parent.mkdir(parents=True, exist_ok=True)
    xml = build(
        DomainSpec(
            name="vm1",
            memory_mib=128,
            kernel=str(image.kernel),
            initrd=str(image.initrd),
            cmdline=image.cmdline(heartbeat_us=200_000),
            serial_log=str(serial),
        )
    )
    source = Hypervisor(libvirt.uri(lab, "hv1")).connect()
    target = Hypervisor(libvirt.uri(lab, "hv2")).connect()
    started = time.monotonic()
    source.define(xml)
    source.start("vm1")
    assert source.state("vm1") == "running"
    assert time.monotonic() - started < 5.0
    wait_for(lambda: serial.exists() and BOOT_MARKER in serial.read_text(), timeout=90, interval=0.2)

    watch = HeartbeatWatch(serial)
    watch.start()
    wait_for(lambda: len(watch.arrivals) >= 5, timeout=30)
    result = source.migrate("vm1", libvirt.uri(lab, "hv2"), migration_uri=libvirt.migration_uri(lab, "hv2"))
    after = len(watch.arrivals)
    wait_for(lambda: len(watch.arrivals) >= after + 5, timeout=30)
    watch.stop.set()
    watch.join()

    assert target.state("vm1") == "running" and not source.exists("vm1")
    numbers = [n for _, n in watch.arrivals]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "the guest restarted or lost beats"
    gaps = [b - a for (a, _), (b, _) in zip(watch.arrivals, watch.arrivals[1:], strict=False)]
    assert max(gaps) <= 1.0, f"heartbeat gap of {max(gaps):.2f} s during migration"
    assert result.downtime_ms is None or result.downtime_ms <= 1000

    # the guest has no ACPI handling: a shutdown is forced once the timeout passes
    assert target.shutdown("vm1", timeout=2) == "forced off after 2 s without a clean shutdown"
    assert target.state("vm1") == "shutoff"
    target.undefine("vm1")
