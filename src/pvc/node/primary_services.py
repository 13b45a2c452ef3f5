"""What a primary coordinator runs: the takeover/relinquish phases of a real node.

0. the local lease and its guard (:mod:`pvc.node.primary_guard`), for a real daemon;
1. floating addresses: the upstream/cluster/storage floating IPs on the primary;
2. the storage refresher (Ceph's figures into ZooKeeper), on nodes with storage configured;
3. the metadata service (:mod:`pvc.metadata`) on 169.254.169.254, on nodes with client networks;
4. the API daemon (pvcapid), listening on the configured address.
Relinquish runs them in reverse.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from pvc import processes
from pvc.config import NodeConfig
from pvc.metadata import METADATA_ADDRESS, METADATA_DEVICE, METADATA_PORT
from pvc.net import addresses, arp
from pvc.node.phases import Phase, PrimaryPhases
from pvc.node.primary_guard import LocalLease
from pvc.node.schedules import schedules_phase
from pvc.node.storage_stats import storage_stats_phase
from pvc.processes import ProcessRef
from pvc.state.store import Store

log = logging.getLogger(__name__)

SERVICE_START_TIMEOUT = 20.0
#: The phase of the floating addresses (what an emergency clean-up removes first).
FLOATING_PHASE = "floating-addresses"


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

    return Phase(FLOATING_PHASE, take_over, relinquish)


class ChildService:
    """A daemon the primary runs as a child process of the node daemon, started and (with
    ``wait``) waited for until it accepts connections on ``host:port``.

    Its process is recorded in a file, so that a process other than the one that started
    it (a restarted daemon, the primary guard) can stop it.
    """

    def __init__(
        self,
        config: NodeConfig,
        name: str,
        module: str,
        host: str,
        port: int,
        *,
        wait: bool = True,
        stop_timeout: float = 10.0,
    ) -> None:
        self.config = config
        self.wait = wait
        self.stop_timeout = stop_timeout
        self.name = name
        self.module = module
        self.host, self.port = host, port
        self.ref: ProcessRef | None = None
        self.log_path = Path(config.paths.log_dir) / f"{name}.log"
        self.ref_path = Path(config.paths.state_dir) / f"{name}.json"

    def _spawn(self) -> None:
        self.ref = processes.spawn(
            self.name,
            [sys.executable, "-m", self.module],
            self.log_path,
            env=dict(os.environ),
            die_with_parent=True,
        )
        self.ref_path.parent.mkdir(parents=True, exist_ok=True)
        self.ref_path.write_text(json.dumps(self.ref.to_json()))

    def start(self) -> None:
        self._spawn()
        if not self.wait:
            return
        deadline = time.monotonic() + SERVICE_START_TIMEOUT
        while time.monotonic() < deadline:
            if not processes.is_alive(self.ref):
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not listen within {SERVICE_START_TIMEOUT:g} s; see {self.log_path}"
        )

    def keep_running(self) -> str | None:
        """Start the service again (without waiting) if it was started and has exited since."""
        if self.ref is None or processes.is_alive(self.ref):
            return None
        log.error("%s (pid %d) has exited: starting it again; see %s", self.name, self.ref.pid, self.log_path)
        self._spawn()
        return f"restarted {self.name}, which had exited"

    def stop(self) -> None:
        """Stop the service, letting it finish what it is serving for up to its stop timeout."""
        ref = self.ref or self._recorded()
        if ref is not None:
            processes.terminate([ref], timeout=self.stop_timeout)
            self.ref = None
        self.ref_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """Stop the service and its children at once (SIGKILL to its process group): for a
        node that must stop acting as primary now, whose requests cannot complete anyway."""
        ref = self.ref or self._recorded()
        if ref is not None:
            if not processes.kill_group(ref):
                log.error("%s (pid %d) survived SIGKILL", self.name, ref.pid)
            self.ref = None
        self.ref_path.unlink(missing_ok=True)

    def _recorded(self) -> ProcessRef | None:
        try:
            return ProcessRef.from_json(json.loads(self.ref_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def api_service(config: NodeConfig) -> ChildService:
    """pvcapid, listening on the configured address."""
    address = config.api_listen_address
    host = "127.0.0.1" if address == "0.0.0.0" else address
    return ChildService(config, "pvcapid", "pvc.api.daemon", host, config.api.listen.port)


def metadata_phase(config: NodeConfig) -> Phase:
    """The cloud-init metadata service: its address on the loopback device, then its process."""
    # neither waited for nor given long to stop: VMs retry, and a takeover or a handover
    # should not wait on it
    service = ChildService(
        config,
        "pvc-metadata",
        "pvc.metadata.daemon",
        METADATA_ADDRESS,
        METADATA_PORT,
        wait=False,
        stop_timeout=1.0,
    )
    address = f"{METADATA_ADDRESS}/32"

    def take_over() -> None:
        addresses.add(address, METADATA_DEVICE)
        service.start()

    def relinquish() -> None:
        service.stop()
        addresses.remove(address, METADATA_DEVICE)

    def abandon() -> None:
        service.kill()
        addresses.remove(address, METADATA_DEVICE)

    return Phase("metadata", take_over, relinquish, service.keep_running, abandon)


def primary_phases(config: NodeConfig, store: Store | None, lease: LocalLease | None = None) -> PrimaryPhases:
    """The ordered phases a node runs when it becomes or stops being primary: the local
    lease and its guard first, when given (without a store, those that need none: a
    clean-up)."""
    api = api_service(config)
    phases = [lease.phase()] if lease is not None else []
    phases.append(floating_addresses_phase(config))
    if config.storage.ceph_conf is not None and store is not None:
        phases.append(storage_stats_phase(store, config.storage))
    timer = schedules_phase(store, config.node.name, config.backup) if store is not None else None
    if timer is not None:
        phases.append(timer)
    if config.networks.client_networks:  # VMs reach it through their managed networks' gateways
        phases.append(metadata_phase(config))
    phases.append(Phase("api", api.start, api.stop, api.keep_running, api.kill))
    return PrimaryPhases(phases)
