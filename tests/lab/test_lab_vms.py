"""Real QEMU guests (TCG) on the lab's per-node libvirtd: boot, live migration, forced shutdown."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rbd

from pvc.client.errors import ApiUnreachable
from pvc.client.http import ApiResponse
from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.secrets import has_ceph_secret
from pvc.lab import cluster_ceph, demo, endpoint, libvirtd
from pvc.lab.guest import (
    BOOT_MARKER,
    DISK_HEARTBEAT,
    DISK_HEARTBEAT_OFFSET,
    DISK_LABEL,
    DISKS_MARKER,
    heartbeats,
)
from pvc.lab.layout import LabLayout
from pvc.storage import cephx
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError
from tests.helpers import wait_for
from tests.lab.lab_run import lab_up

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

PREFIX, NET_INDEX = "pvct", 77
#: Seconds a GET may take, and a change (some wait for a migration, a flush or a forced shutdown).
READ_TIMEOUT, CHANGE_TIMEOUT = 30.0, 600.0
DISKS = re.compile(rf"^{DISKS_MARKER} \[([^\]]*)\]", re.MULTILINE)


@pytest.fixture(scope="module")
def lab():
    with lab_up("pvc-lab-vms-", PREFIX, NET_INDEX) as layout:
        yield layout
    leftover = subprocess.run(
        ["pgrep", "-f", f"qemu-system.*{layout.directory}"], capture_output=True, text=True
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
            beats = heartbeats(self.path.read_text()) if self.path.exists() else []
            if len(beats) > seen:
                self.arrivals.extend((time.monotonic(), n) for n in beats[seen:])
                seen = len(beats)
            time.sleep(0.02)


def test_guest_boots_migrates_live_and_is_forced_off(lab: LabLayout):
    xml = demo.direct_guest_xml(lab, "vm1", heartbeat_us=200_000, memory_mib=128)
    serial = demo.serial_log(lab, "vm1")
    source = Hypervisor(libvirtd.uri(lab, "hv1")).connect()
    target = Hypervisor(libvirtd.uri(lab, "hv2")).connect()
    source.define(xml)
    source.start("vm1")
    assert source.state("vm1") == "running"
    wait_for(lambda: serial.exists() and BOOT_MARKER in serial.read_text(), timeout=90, interval=0.2)

    watch = HeartbeatWatch(serial)
    watch.start()
    wait_for(lambda: len(watch.arrivals) >= 5, timeout=30)
    # hv1's libvirtd opens hv2's over TLS with its own client certificate
    result = source.migrate(
        "vm1", libvirtd.peer_uri(lab, "hv2"), migration_uri=libvirtd.migration_uri(lab, "hv2")
    )
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


# -- the VM lifecycle through the API, carried out by the node daemons -----------------------


class Api:
    """The lab's API on the primary's floating address."""

    def __init__(self, layout: LabLayout) -> None:
        self.reader = endpoint.client(layout, read_timeout=READ_TIMEOUT)
        self.client = endpoint.client(layout, read_timeout=CHANGE_TIMEOUT)

    def get(self, path: str, **params) -> ApiResponse:
        return self.reader.get(path, params=params)

    def post(self, path: str, **data) -> ApiResponse:
        reply = self.client.post(path, data=data)
        assert reply.status == 200, (path, data, reply.text)
        return reply

    def reachable(self, path: str, check: Callable[[Any], bool]) -> bool:
        """Whether GET ``path`` answers 200 with a body passing ``check`` (False while the
        API is moving between coordinators and refuses connections)."""
        try:
            reply = self.get(path)
        except ApiUnreachable:
            return False
        return reply.status == 200 and check(reply.data)

    def vm(self, name: str) -> dict:
        return self.get(f"/vm/{name}").data[0]


def guest_xml(lab: LabLayout, name: str) -> tuple[str, Path]:
    return demo.guest_xml(lab, name, heartbeat_us=200_000), demo.serial_log(lab, name)


def qemu_pid(name: str) -> int:
    found = subprocess.run(["pgrep", "-f", f"qemu-system.*guest={name},"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    assert len(pids) == 1, f"expected one QEMU for {name}, found {pids}"
    return pids[0]


def node_log(api: Api, node: str) -> str:
    return api.get(f"/node/{node}/log", lines=500).data["data"]


def lab_cli(layout: LabLayout, *args: str) -> None:
    command = [sys.executable, "-m", "pvc.lab.cli", "--dir", str(layout.directory), *args]
    subprocess.run(command, check=True, capture_output=True, timeout=180)


def guest_disks(serial: Path) -> list[str] | None:
    """The disks the guest last reported on its console (None before any report)."""
    reports = DISKS.findall(serial.read_text())
    return reports[-1].split() if reports else None


def pvc_cli(layout: LabLayout, *args: str) -> str:
    """Run the `pvc` CLI against the lab through the connection the lab registered."""
    env = {**os.environ, "PVC_CLIENT_DIR": str(layout.directory.parent / "client")}
    command = [sys.executable, "-m", "pvc.cli.main", "-q", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, f"pvc {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def running_where(lab: LabLayout, name: str) -> list[str]:
    return demo.running_on(lab).get(name, [])


def test_vm_lifecycle_migration_flush_crash_and_daemon_restart(lab: LabLayout):
    api = Api(lab)
    wait_for(lambda: api.get("/status").status == 200, timeout=30)
    names = ["g1", "g2", "g3"]
    serials = {}

    def launch(name: str) -> None:
        xml, serials[name] = guest_xml(lab, name)
        api.post("/vm", xml=xml, node="hv1")
        api.post(f"/vm/{name}/state", state="start", wait="true")
        wait_for(lambda: BOOT_MARKER in api.get(f"/vm/{name}/console").data["data"], timeout=120)
        assert running_where(lab, name) == ["hv1"]

    # one guest first: with two cores and TCG, more guests would starve its heartbeat
    launch("g1")

    # live migration through the daemons: the heartbeat keeps counting
    watch = HeartbeatWatch(serials["g1"])
    watch.start()
    wait_for(lambda: len(watch.arrivals) >= 5, timeout=30)
    api.post("/vm/g1/node", action="migrate", node="hv2", wait="true")
    after = len(watch.arrivals)
    wait_for(lambda: len(watch.arrivals) >= after + 5, timeout=30)
    watch.stop.set()
    watch.join()
    numbers = [n for _, n in watch.arrivals]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "the guest restarted or lost beats"
    gaps = [b - a for (a, _), (b, _) in zip(watch.arrivals, watch.arrivals[1:], strict=False)]
    assert max(gaps) <= 1.0, f"heartbeat gap of {max(gaps):.2f} s during migration"
    assert running_where(lab, "g1") == ["hv2"] and api.vm("g1")["migrated"] == "from hv1"
    api.post("/vm/g1/node", action="unmigrate", wait="true")
    assert running_where(lab, "g1") == ["hv1"]

    # flush hv1: two run elsewhere; g3, limited to hv1, is shut down (it ignores ACPI: the
    # lab's shutdown timeout powers it off) to start again there; ready brings all back
    launch("g2")
    launch("g3")
    api.post("/vm/g3/meta", limit="hv1")
    pids = {name: qemu_pid(name) for name in names}
    api.post("/node/hv1/domain-state", state="flush", wait="true")
    for name in ("g1", "g2"):
        vm = api.vm(name)
        assert vm["node"] != "hv1" and vm["last_node"] == "hv1" and vm["state"] == "start"
        assert running_where(lab, name) == [vm["node"]]
    pinned = api.vm("g3")
    assert (pinned["node"], pinned["state"], pinned["node_autostart"]) == ("hv1", "stop", True)
    assert running_where(lab, "g3") == []
    api.post("/node/hv1/domain-state", state="ready", wait="true")
    wait_for(lambda: running_where(lab, "g3") == ["hv1"], timeout=30)
    for name in names:
        assert running_where(lab, name) == ["hv1"] and api.vm(name)["last_node"] == ""
    assert api.vm("g3")["node_autostart"] is False and api.vm("g3")["state"] == "start"
    assert {name: qemu_pid(name) for name in names} != pids  # new QEMUs: they really moved
    wait_for(lambda: BOOT_MARKER in api.get("/vm/g3/console").data["data"], timeout=120)

    # kill a guest's QEMU: its node notices and starts it again
    os.kill(qemu_pid("g2"), 9)
    wait_for(lambda: running_where(lab, "g2") == ["hv1"] and api.vm("g2")["state"] == "start", timeout=30)
    wait_for(lambda: "its QEMU had died; started it again" in node_log(api, "hv1"), timeout=30)

    # restart hv1's daemon: its VMs keep running untouched
    before = {name: qemu_pid(name) for name in names}
    lab_cli(lab, "node", "stop", "hv1")
    lab_cli(lab, "node", "start", "hv1")
    # hv1 was the primary: the API is away while another coordinator takes over
    wait_for(lambda: api.reachable("/node/hv1", lambda body: body[0]["daemon_state"] == "run"), timeout=60)
    time.sleep(3)
    assert {name: qemu_pid(name) for name in names} == before
    assert all(api.vm(name)["state"] == "start" for name in names)

    # hot-plug a disk through the CLI: the guest sees it come and go; the XML keeps up
    disk = demo.guest_disk(lab, "g1-extra")  # a copy of the lab's labelled disk image
    pvc_cli(lab, "vm", "volume", "add", "g1", str(disk), "-t", "file", "-b", "virtio")
    wait_for(lambda: guest_disks(serials["g1"]) == ["vda"], timeout=30)
    wait_for(lambda: f"LAB-DISK vda {DISK_LABEL}" in serials["g1"].read_text(), timeout=10)  # read it
    assert [d["dev"] for d in api.vm("g1")["disks"]] == ["vda"]
    pvc_cli(lab, "vm", "volume", "remove", "g1", str(disk))
    wait_for(lambda: guest_disks(serials["g1"]) == [], timeout=30)
    assert api.vm("g1")["disks"] == [] and api.vm("g1")["state"] == "start"

    # the guest ignores ACPI: shutdown powers it off after the lab's timeout; then remove
    started = time.monotonic()
    api.post("/vm/g3/state", state="shutdown", wait="true")
    assert lab.shutdown_timeout <= time.monotonic() - started < lab.shutdown_timeout + 10
    assert running_where(lab, "g3") == [] and api.vm("g3")["state"] == "stop"
    for name in names:
        assert api.client.delete(f"/vm/{name}").status == 200
    assert api.get("/vm").data == []


def _disk_heartbeat(layout: LabLayout, volume: str) -> tuple[int, bytes]:
    """(the guest's last disk heartbeat in the RBD volume, the volume's first line)."""
    with CephClient(cluster_ceph.conf_path(layout)) as client, client.ioctx(cluster_ceph.POOL) as ioctx:
        image = rbd.Image(ioctx, volume, read_only=True)
        try:
            beat = DISK_HEARTBEAT.search(image.read(DISK_HEARTBEAT_OFFSET, 64))
            first = image.read(0, 64).split(b"\n")[0]
        finally:
            image.close()
    return (int(beat.group(1)) if beat else 0), first


def test_vm_on_rbd_live_migrates_with_its_disk(lab: LabLayout):
    """A guest on an RBD volume of the lab's Ceph (3 OSDs, one per node) keeps its disk
    across a live migration: the marker written before boot is intact and the guest's
    writes into the volume continue from the new node."""
    client = endpoint.client(lab, read_timeout=CHANGE_TIMEOUT)
    volume, marker = "rbdvm-disk", b"PVC-RBD-MARKER-42"
    osd_list = client.get("/storage/ceph/osd").data
    assert sorted(o["node"] for o in osd_list) == lab.node_names and all(o["stats"]["up"] for o in osd_list)
    created = client.post(
        "/storage/ceph/volume", data={"volume": volume, "pool": cluster_ceph.POOL, "size": "64M"}
    )
    assert created.status == 200, created.data
    with CephClient(cluster_ceph.conf_path(lab)) as ceph, ceph.ioctx(cluster_ceph.POOL) as ioctx:
        image = rbd.Image(ioctx, volume)
        image.write(marker + b"\n", 0)
        image.close()
    xml = demo.guest_xml(lab, "rbdvm", heartbeat_us=200_000, rbd_volume=f"{cluster_ceph.POOL}/{volume}")
    assert client.post("/vm", data={"xml": xml, "node": "hv1"}).status == 200
    started = client.post("/vm/rbdvm/state", data={"state": "start", "wait": "true"})
    assert started.status == 200, started.data
    serial = demo.serial_log(lab, "rbdvm")
    wait_for(lambda: serial.exists() and f"LAB-DISK vda {marker.decode()}" in serial.read_text(), timeout=90)
    wait_for(lambda: _disk_heartbeat(lab, volume)[0] > 2, timeout=30)

    in_use = client.delete(f"/storage/ceph/volume/{cluster_ceph.POOL}/{volume}")
    assert in_use.status == 409 and "rbdvm" in in_use.data["message"]

    moved = client.post(
        "/vm/rbdvm/node",
        data={"action": "migrate", "node": "hv2", "wait": "true", "force_live": "true"},
    )
    assert moved.status == 200, moved.data
    assert demo.running_on(lab)["rbdvm"] == ["hv2"]
    beat_after_move, first_line = _disk_heartbeat(lab, volume)
    assert first_line == marker
    wait_for(lambda: _disk_heartbeat(lab, volume)[0] >= beat_after_move + 5, timeout=30)
    assert "LAB-MARKER booted" in serial.read_text() and serial.read_text().count("LAB-MARKER booted") == 1


def test_lab_ceph_refuses_clients_without_a_key_and_nodes_hold_the_vm_secret(lab: LabLayout, tmp_path):
    """cephx in the lab: no key or a wrong key is refused on the storage network, the API's
    key cannot change the monitors' configuration, and every node's libvirtd holds the
    secret its VMs' RBD disks name."""
    conf = cluster_ceph.conf_path(lab)
    forged = cephx.write_keyring(tmp_path / "forged", [cephx.Entry("client.admin", cephx.new_key())])
    for keyring in ("/dev/null", forged):
        with pytest.raises(StorageError) as caught:
            CephClient(conf, keyring=keyring, timeout=5)
        assert caught.value.code == errno.EACCES
    with CephClient(conf, name=cluster_ceph.user("api"), keyring=cluster_ceph.keyring(lab, "api")) as api:
        assert api.mon_command("status")["health"]["status"]
        for command, args in (
            ("config set", {"who": "mon", "name": "mon_allow_pool_delete", "value": "false"}),
            ("mon remove", {"name": lab.coordinator_names[-1]}),
            ("auth get", {"entity": "client.admin"}),
        ):
            with pytest.raises(StorageError) as caught:
                api.mon_command(command, **args)
            assert caught.value.code == errno.EACCES, command
    for node in lab.node_names:
        hypervisor = Hypervisor(libvirtd.uri(lab, node)).connect()
        try:
            assert has_ceph_secret(hypervisor, cluster_ceph.VM_SECRET_UUID), node
        finally:
            hypervisor.close()
    xml = demo.guest_xml(lab, "authvm", rbd_volume=f"{cluster_ceph.POOL}/authvm")
    assert f'<secret type="ceph" uuid="{cluster_ceph.VM_SECRET_UUID}"/>' in xml.replace("'", '"')


def _snapshot_heartbeat(layout: LabLayout, volume: str, snapshot: str) -> int:
    """The guest's disk heartbeat as RBD snapshot ``snapshot`` of ``volume`` holds it."""
    with CephClient(cluster_ceph.conf_path(layout)) as client, client.ioctx(cluster_ceph.POOL) as ioctx:
        image = rbd.Image(ioctx, volume, snapshot=snapshot, read_only=True)
        try:
            beat = DISK_HEARTBEAT.search(image.read(DISK_HEARTBEAT_OFFSET, 64))
        finally:
            image.close()
    return int(beat.group(1)) if beat else 0


def _task(client, reply: ApiResponse) -> dict:
    assert reply.status == 202, reply.data
    task_id = reply.data["task_id"]
    finished = ("SUCCESS", "FAILURE")
    return wait_for(lambda: (t := client.get(f"/tasks/{task_id}").data)["state"] in finished and t, 120)


def test_a_running_guest_is_snapshotted_and_rolled_back_to_what_it_had_written(lab: LabLayout):
    """The guest keeps writing a numbered heartbeat into its RBD disk; a live snapshot
    (the guest paused for it) holds one number; the guest writes on; after a rollback the
    disk holds the snapshot's number again and the guest boots from it."""
    client = endpoint.client(lab, read_timeout=CHANGE_TIMEOUT)
    volume = "snapvm-disk"
    spec = {"volume": volume, "pool": cluster_ceph.POOL, "size": "64M"}
    created = client.post("/storage/ceph/volume", data=spec)
    assert created.status == 200, created.data
    xml = demo.guest_xml(lab, "snapvm", heartbeat_us=200_000, rbd_volume=f"{cluster_ceph.POOL}/{volume}")
    assert client.post("/vm", data={"xml": xml, "node": "hv1"}).status == 200
    assert client.post("/vm/snapvm/state", data={"state": "start", "wait": "true"}).status == 200
    wait_for(lambda: _disk_heartbeat(lab, volume)[0] > 2, timeout=90)

    taken = _task(client, client.post("/vm/snapvm/snapshot", data={"snapshot_name": "s1"}))
    assert taken["state"] == "SUCCESS", taken
    assert taken["result"]["consistency"] == "crash-consistent"
    print(f"\nlive snapshot: guest held for {taken['result']['held_ms']} ms")
    at_snapshot = _snapshot_heartbeat(lab, volume, "s1")
    assert at_snapshot > 2
    wait_for(lambda: _disk_heartbeat(lab, volume)[0] >= at_snapshot + 5, timeout=30)  # written over

    refused = client.post("/vm/snapvm/snapshot/rollback", data={"snapshot_name": "s1"})
    assert refused.status == 400 and "stop or disable it" in refused.data["message"]
    assert client.post("/vm/snapvm/state", data={"state": "stop", "wait": "true"}).status == 200
    assert _disk_heartbeat(lab, volume)[0] > at_snapshot
    listed = pvc_cli(lab, "vm", "snapshot", "list", "snapvm")
    assert "s1" in listed and f"{cluster_ceph.POOL}/{volume}@s1" in listed

    pvc_cli(lab, "vm", "snapshot", "rollback", "snapvm", "s1", "-y")
    assert _disk_heartbeat(lab, volume)[0] == at_snapshot
    serial = demo.serial_log(lab, "snapvm")
    boots = serial.read_text().count(BOOT_MARKER)
    assert client.post("/vm/snapvm/state", data={"state": "start", "wait": "true"}).status == 200
    wait_for(lambda: serial.read_text().count(BOOT_MARKER) > boots, timeout=90)

    pvc_cli(lab, "vm", "snapshot", "remove", "snapvm", "s1", "-y")
    assert client.get("/vm/snapvm").data[0]["snapshots"] == []
    removed = client.delete("/vm/snapvm", params={"delete_disks": "true"})
    assert removed.status == 200 and "deleted its RBD volumes" in removed.data["message"], removed.data
