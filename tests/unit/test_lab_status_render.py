"""``pvc-lab status`` fits an 80-column terminal with every header whole."""

from __future__ import annotations

import io

from rich.console import Console

from pvc.lab.cli import PROCESS_COLUMNS, _print_status

NODE_HEADERS = ("node", "mode", "daemon", "coordinator", "domain", "cluster ip")


def report() -> dict:
    """A lab at its widest: 7-digit PIDs, long states and addresses, a dead process."""
    nodes = []
    for i in range(1, 10):
        coordinator = i <= 3
        roles = ["anchor", "libvirtd", "pvcnoded"]
        if coordinator:
            roles += ["zookeeper", "ceph-mon"] + (["ceph-mgr"] if i == 1 else [])
        nodes.append(
            {
                "name": f"hv{i}",
                "mode": "coordinator" if coordinator else "hypervisor",
                "daemon_state": "shutdown",
                "coordinator_state": "relinquish",
                "domain_state": "fence-flush" if i == 4 else "unflush",
                "cluster_ip": f"10.110.255.{i}",
                "pids": {role: 4194300 + n for n, role in enumerate(roles)},
                "alive": {role: not (i == 2 and role == "zookeeper") for role in roles},
                "power": "off" if i == 3 else "on",
                "partitioned": i == 3,
            }
        )
    return {
        "directory": "/srv/some/rather/long/path/to/a/lab/directory/that/goes/on/and/on/.lab",
        "exists": True,
        "up": True,
        "healthy": False,
        "primary_node": "hv1",
        "zookeeper": [f"10.110.255.{i}:2181" for i in range(1, 4)],
        "nodes": nodes,
    }


def rendered(width: int = 80) -> list[str]:
    out = io.StringIO()
    _print_status(report(), Console(file=out, width=width, color_system=None))
    return out.getvalue().splitlines()


def test_status_fits_80_columns_with_whole_headers() -> None:
    lines = rendered()
    too_long = [line for line in lines if len(line) > 80]
    assert too_long == []
    assert "…" not in "\n".join(lines)
    node_header = next(line for line in lines if line.split()[:2] == ["node", "mode"])
    assert all(f" {h} " in f" {node_header} " for h in NODE_HEADERS)
    process_header = next(line for line in lines if line.split()[:2] == ["node", "anchor"])
    assert process_header.split() == ["node", *PROCESS_COLUMNS, "power"]
    hv2 = next(line for line in lines if line.split()[:1] == ["hv2"] and "DEAD" in line)
    assert hv2.split()[3] == "DEAD"  # zookeeper column
    hv9 = next(line for line in lines if line.split()[:1] == ["hv9"] and "-" in line.split())
    assert hv9.split()[3:6] == ["-", "-", "-"]  # a hypervisor runs no ZooKeeper or Ceph daemons
    assert any("pvc-lab up" in line and "restarts" in line for line in lines)
    power = {line.split()[0]: line.split()[-1] for line in lines if line.split()[1:2] == ["4194300"]}
    assert power["hv3"] == "off" and power["hv1"] == "on"  # as each node's BMC reports it
    assert any(line.startswith("partitioned: hv3 ") for line in lines)  # cut off the network
