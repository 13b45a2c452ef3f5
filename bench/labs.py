"""A lab of a bench's own: brought up in a fresh directory, and down again however the bench ends."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pvc.lab.layout import LabLayout


def pvc_lab(directory: Path, *args: str) -> None:
    """Run ``pvc-lab`` on the lab in ``directory``; fails on a non-zero exit."""
    subprocess.run(
        [sys.executable, "-m", "pvc.lab.cli", "--dir", str(directory), *args],
        check=True,
        capture_output=True,
        timeout=300,
    )


@contextmanager
def own_lab(prefix: str, net_index: int, ceph: bool = True, database: bool = True) -> Iterator[LabLayout]:
    """A lab up for the ``with`` block, in a temporary directory that is removed after."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)  # the lab's APIs run unprivileged and must enter it
        directory = Path(tmp) / "lab"
        pvc_lab(
            directory,
            "up",
            "--prefix",
            prefix,
            "--net-index",
            str(net_index),
            *([] if ceph else ["--no-ceph"]),
            *([] if database else ["--no-database"]),
        )
        try:
            yield LabLayout(directory, prefix=prefix, net_index=net_index, ceph=ceph, database=database)
        finally:
            pvc_lab(directory, "down")


def wait_until(predicate, timeout: float = 120.0, interval: float = 0.01):
    """Poll ``predicate`` until it returns a truthy value (returned); TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout:g} s")
