"""Bringing a lab up for a test module and down after it, through ``pvc-lab`` as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pvc.lab.layout import LabLayout
from tests.helpers import reachable_dir


def run_lab(directory: Path, *args: str) -> None:
    """Run ``pvc-lab`` on the lab in ``directory``; its ``pvc`` connection goes to a client store
    beside it, not the user's."""
    env = {**os.environ, "PVC_CLIENT_DIR": str(directory.parent / "client")}
    command = [sys.executable, "-m", "pvc.lab.cli", "--dir", str(directory), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    if result.returncode != 0:
        raise AssertionError(f"pvc-lab {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


@contextmanager
def lab_up(
    temp_prefix: str, prefix: str, net_index: int, ceph: bool = True, *options: str, database: bool = True
) -> Iterator[LabLayout]:
    """A lab in a fresh directory every account may enter (the nodes' APIs run unprivileged),
    brought down and removed after; ``options`` go to ``pvc-lab up``."""
    with reachable_dir(temp_prefix) as reachable:
        directory = reachable / "lab"
        flags = ([] if ceph else ["--no-ceph"]) + ([] if database else ["--no-database"])
        run_lab(directory, "up", "--prefix", prefix, "--net-index", str(net_index), *flags, *options)
        try:
            yield LabLayout(directory, prefix=prefix, net_index=net_index, ceph=ceph, database=database)
        finally:
            run_lab(directory, "down")
