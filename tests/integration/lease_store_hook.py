"""A lease hook for the dnsmasq tests: pvc.node.lease_hook over a lease store kept in a JSON file.

dnsmasq runs it (through a small shell wrapper) with the test's environment:
``PVC_TEST_LEASE_STORE`` is the store's file, ``PVC_TEST_HOOK_LOG`` gets one line per call.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pvc.node.lease_hook import LeaseEvent, handle


class FileLeaseStore:
    """A LeaseStore in one JSON file: {vni: {mac: lease fields}}."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _load(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def _save(self, data: dict) -> None:
        temporary = self.path.with_name(self.path.name + ".new")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(temporary, self.path)

    def put(self, vni: int, event: LeaseEvent) -> None:
        data = self._load()
        data.setdefault(str(vni), {})[event.mac] = dataclasses.asdict(event)
        self._save(data)

    def remove(self, vni: int, mac: str) -> None:
        data = self._load()
        data.get(str(vni), {}).pop(mac, None)
        self._save(data)

    def all(self, vni: int) -> Sequence[LeaseEvent]:
        return [LeaseEvent(**fields) for fields in self._load().get(str(vni), {}).values()]


def main() -> int:
    with open(os.environ["PVC_TEST_HOOK_LOG"], "a") as log:
        log.write(" ".join(sys.argv[1:]) + f" vni={os.environ.get('PVC_NETWORK_VNI')}\n")
    store = FileLeaseStore(Path(os.environ["PVC_TEST_LEASE_STORE"]))
    return handle(sys.argv[1:], os.environ, store, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
