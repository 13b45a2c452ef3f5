"""The lab cluster end to end: real namespaces, a 3-member ZooKeeper ensemble, pvcnoded per node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pvc.lab.processes import ProcessRef, is_alive
from tests.helpers import wait_for

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

PREFIX = "pvct"
NET_INDEX = 77


def pvc_lab(lab_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "pvc.lab.cli", "--dir", str(lab_dir), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"pvc-lab {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def status(lab_dir: Path) -> dict:
    return json.loads(pvc_lab(lab_dir, "status", "--json", check=False).stdout)


def node_states(lab_dir: Path) -> dict[str, tuple[str, str]]:
    return {n["name"]: (n["daemon_state"], n["coordinator_state"]) for n in status(lab_dir)["nodes"]}


def primary_of(lab_dir: Path) -> str | None:
    primaries = [name for name, (_, c) in node_states(lab_dir).items() if c == "primary"]
    return primaries[0] if len(primaries) == 1 else None


def leftovers() -> list[str]:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [line for line in (netns + links).splitlines() if f"{PREFIX}{NET_INDEX}" in line]


@pytest.fixture
def lab_dir(tmp_path: Path):
    directory = tmp_path / "lab"
    yield directory
    if (directory / "lab.json").exists():
        pvc_lab(directory, "down", check=False)


def test_lab_up_failover_dead_detection_and_down(lab_dir: Path):
    up = pvc_lab(lab_dir, "up", "--prefix", PREFIX, "--net-index", str(NET_INDEX))
    assert "lab up in" in up.stderr
    report = status(lab_dir)
    assert report["healthy"]
    assert [n["name"] for n in report["nodes"]] == ["hv1", "hv2", "hv3"]
    assert {n["daemon_state"] for n in report["nodes"]} == {"run"}
    assert {n["domain_state"] for n in report["nodes"]} == {"ready"}
    primary = primary_of(lab_dir)
    assert primary and report["primary_node"] == primary
    pids = {n["name"]: n["pids"] for n in report["nodes"]}
    assert all(set(p) == {"anchor", "zookeeper", "pvcnoded"} for p in pids.values())

    # a second up starts nothing
    again = pvc_lab(lab_dir, "up", "--prefix", PREFIX, "--net-index", str(NET_INDEX))
    assert "already up" in again.stdout
    assert {n["name"]: n["pids"] for n in status(lab_dir)["nodes"]} == pids

    # each node has its own hostname (UTS namespace)
    anchor = pids["hv2"]["anchor"]
    hostname = subprocess.run(
        ["nsenter", "-t", str(anchor), "-u", "hostname"], capture_output=True, text=True
    )
    assert hostname.stdout.strip() == "hv2"

    # SIGKILL a secondary's daemon: peers mark it dead; status reports the dead process
    victim = next(n for n in ("hv1", "hv2", "hv3") if n != primary)
    pvc_lab(lab_dir, "node", "kill", victim)
    wait_for(lambda: node_states(lab_dir)[victim][0] == "dead", timeout=30, interval=0.5)
    degraded = status(lab_dir)
    assert not degraded["healthy"]
    assert next(n for n in degraded["nodes"] if n["name"] == victim)["alive"]["pvcnoded"] is False
    assert pvc_lab(lab_dir, "status", check=False).returncode == 2

    # start it again: back to run
    pvc_lab(lab_dir, "node", "start", victim)
    wait_for(lambda: node_states(lab_dir)[victim][0] == "run", timeout=30, interval=0.5)

    # kill the primary's daemon: another coordinator becomes primary
    pvc_lab(lab_dir, "node", "kill", primary)
    new_primary = wait_for(
        lambda: (p := primary_of(lab_dir)) and p != primary and p, timeout=30, interval=0.3
    )
    assert new_primary != primary
    pvc_lab(lab_dir, "node", "start", primary)
    wait_for(lambda: node_states(lab_dir)[primary] == ("run", "secondary"), timeout=30, interval=0.5)

    refs = [
        ProcessRef.from_json(r) for r in json.loads((lab_dir / "lab.json").read_text())["processes"].values()
    ]
    down = pvc_lab(lab_dir, "down")
    assert "lab is down" in down.stdout
    assert not any(is_alive(ref) for ref in refs)
    assert leftovers() == []
    assert not lab_dir.exists()
    assert "nothing to do" in pvc_lab(lab_dir, "down").stdout
