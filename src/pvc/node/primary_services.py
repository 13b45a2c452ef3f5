"""What a primary coordinator runs: the takeover/relinquish phases of a real node.

1. floating addresses: the upstream/cluster/storage floating IPs on the primary;
2. the storage refresher (Ceph's figures into ZooKeeper), on nodes with storage configured;
3. the API daemon (pvcapid), listening on the configured address.
Relinquish runs them in reverse.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from pvc import processes
from pvc.config import NodeConfig
from pvc.net import addresses, arp
from pvc.node.phases import Phase, PrimaryPhases
from pvc.node.storage_stats import storage_stats_phase
from pvc.processes import ProcessRef
from pvc.state.store import Store

API_START_TIMEOUT = 20.0


def floating_addresses_phase(config: NodeConfig) -> Phase:
    """Add the floating addresses on takeover, remove them on relinquish."""
    pairs = [
        (str(net.floating_address), net.device)
        for net in (config.networks.upstream, config.networks.cluster, config.networks.storage)
        if net.floating_address and net.device
    ]

    def take_over() -> None:
        for address, device in pairs:
            addresses.add(address, device)
            arp.announce(device, address.split("/")[0])

    def relinquish() -> None:
        for address, device in pairs:
            addresses.remove(address, device)

    return Phase("floating-addresses", take_over, relinquish)


class ApiService:
    """Starts and stops pvcapid as a child process of the node daemon."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.ref: ProcessRef | None = None
        self.log_path = Path(config.paths.log_dir) / "pvcapid.log"

    def start(self) -> None:
        self.ref = processes.spawn(
            "pvcapid",
            [sys.executable, "-m", "pvc.api.daemon"],
            self.log_path,
            env=dict(os.environ),
            die_with_parent=True,
        )
        address = self.config.api_listen_address
        host = "127.0.0.1" if address == "0.0.0.0" else address
        deadline = time.monotonic() + API_START_TIMEOUT
        while time.monotonic() < deadline:
            if not processes.is_alive(self.ref):
                raise RuntimeError(f"pvcapid exited at start; see {self.log_path}")
            try:
                with socket.create_connection((host, self.config.api.listen.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pvcapid did not listen within {API_START_TIMEOUT:g} s; see {self.log_path}")

    def stop(self) -> None:
        if self.ref is not None:
            processes.terminate([self.ref], timeout=10.0)
            self.ref = None


def primary_phases(config: NodeConfig, store: Store) -> PrimaryPhases:
    """The ordered phases a node runs when it becomes or stops being primary."""
    api = ApiService(config)
    phases = [floating_addresses_phase(config)]
    if config.storage.ceph_conf is not None:
        phases.append(storage_stats_phase(store, config.storage))
    phases.append(Phase("api", api.start, api.stop))
    return PrimaryPhases(phases)
