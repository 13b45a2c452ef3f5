"""Domain lifecycle through libvirt: define, start, shutdown, destroy, undefine, migrate, stats.

One :class:`Hypervisor` wraps one libvirt connection (a node's libvirtd, or
``test:///default`` in fast tests). Errors come out as HypervisorError with libvirt's
message; nothing here knows about ZooKeeper.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from pvc.domain_xml.parse import Device, device_present
from pvc.hypervisor.errors import HypervisorError

STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}
EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}

EventCallback = Callable[[str, str, int], None]  # (domain name, event, detail)
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

#: Seconds to wait after a migration for libvirt's job-completed event (it carries QEMU's
#: downtime figure, which a transient domain's job stats lose once it left the source).
JOB_EVENT_WAIT = 1.0

_event_loop_started = threading.Lock()
_event_loop_running = False


def _quiet(_ctx: object, _error: object) -> None:
    """libvirt prints every error to stderr by default; ours are raised instead."""


libvirt.registerErrorHandler(_quiet, None)


def _start_event_loop() -> None:
    """Run libvirt's default event loop in a daemon thread (once per process)."""
    global _event_loop_running
    with _event_loop_started:
        if _event_loop_running:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_running = True


@dataclass(frozen=True)
class DomainInfo:
    name: str
    uuid: str
    state: str


@dataclass(frozen=True)
class MigrationResult:
    seconds: float
    downtime_ms: int | None


class Hypervisor:
    """One libvirt connection."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._conn: libvirt.virConnect | None = None

    # -- connection ---------------------------------------------------------------------

    def connect(self) -> Hypervisor:
        _start_event_loop()
        try:
            self._conn = libvirt.open(self.uri)
        except libvirt.libvirtError as error:
            raise HypervisorError(f"cannot connect to {self.uri}: {error.get_error_message()}") from None
        return self

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.close()
            self._conn = None

    @property
    def conn(self) -> libvirt.virConnect:
        if self._conn is None:
            self.connect()
        return self._conn

    def _domain(self, name: str) -> libvirt.virDomain:
        """The domain called ``name``, or with UUID ``name``."""
        try:
            if UUID_TEXT.fullmatch(name):
                return self.conn.lookupByUUIDString(name)
            return self.conn.lookupByName(name)
        except libvirt.libvirtError as error:
            raise HypervisorError(f"domain {name}: {error.get_error_message()}") from None

    @staticmethod
    def _call(what: str, func: Callable, *args: object) -> object:
        try:
            return func(*args)
        except libvirt.libvirtError as error:
            raise HypervisorError(f"{what}: {error.get_error_message()}") from None

    # -- queries ------------------------------------------------------------------------

    def domains(self) -> list[DomainInfo]:
        found = self._call("list domains", self.conn.listAllDomains, 0)
        return [DomainInfo(d.name(), d.UUIDString(), STATES.get(d.state()[0], "unknown")) for d in found]

    def allocation(self) -> dict:
        """Running domains and the vCPUs/memory (MiB) given to running and to all domains."""
        domains = self._call("list domains", self.conn.listAllDomains, 0)
        running, vcpus, allocated, provisioned = [], 0, 0, 0
        for domain in domains:
            try:
                state, max_memory_kib, _, vcpu_count, _ = domain.info()
            except libvirt.libvirtError as error:
                if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # stopped (a transient domain vanishes) while we looked
                raise HypervisorError(f"info of {domain.name()}: {error.get_error_message()}") from None
            provisioned += max_memory_kib // 1024
            if state == libvirt.VIR_DOMAIN_RUNNING:
                running.append(domain.name())
                vcpus += vcpu_count
                allocated += max_memory_kib // 1024
        return {
            "domains": sorted(running),
            "vcpu_allocated": vcpus,
            "memory_allocated": allocated,
            "memory_provisioned": provisioned,
        }

    def active(self) -> dict[str, str]:
        """Running (active) domains: UUID -> name."""
        found = self._call("list domains", self.conn.listAllDomains, libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        return {domain.UUIDString(): domain.name() for domain in found}

    def vm_stats(self) -> dict[str, dict]:
        """Live figures of every running domain by UUID: memory, vCPU time, NIC and disk
        counters (NICs by position, disks by target device)."""
        wanted = (
            libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
            | libvirt.VIR_DOMAIN_STATS_BALLOON
            | libvirt.VIR_DOMAIN_STATS_INTERFACE
            | libvirt.VIR_DOMAIN_STATS_BLOCK
        )
        records = self._call(
            "domain stats",
            self.conn.getAllDomainStats,
            wanted,
            # NOWAIT: skip figures that would wait for a running job (e.g. a migration)
            libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
            | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT,
        )
        return {domain.UUIDString(): _stats_record(stats) for domain, stats in records}

    def exists(self, name: str) -> bool:
        return any(info.name == name for info in self.domains())

    def state(self, name: str) -> str:
        return STATES.get(self._call(f"state of {name}", self._domain(name).state)[0], "unknown")

    def xml(self, name: str) -> str:
        return self._call(f"XML of {name}", self._domain(name).XMLDesc, 0)

    def stats(self, name: str) -> dict:
        """CPU time, memory and per-device disk and NIC counters of a running domain."""
        domain = self._domain(name)
        info = self._call(f"info of {name}", domain.info)
        result = {
            "state": STATES.get(info[0], "unknown"),
            "memory_kib": info[2],
            "vcpus": info[3],
            "cpu_time_ns": info[4],
            "disks": {},
            "nics": {},
        }
        if info[0] != libvirt.VIR_DOMAIN_RUNNING:
            return result
        records = self._call(
            f"stats of {name}",
            self.conn.domainListGetStats,
            [domain],
            libvirt.VIR_DOMAIN_STATS_BLOCK | libvirt.VIR_DOMAIN_STATS_INTERFACE,
            0,
        )
        stats = records[0][1] if records else {}
        for index in range(stats.get("block.count", 0)):
            prefix = f"block.{index}."
            result["disks"][stats.get(prefix + "name", str(index))] = {
                key: stats.get(prefix + key, 0) for key in ("rd.reqs", "rd.bytes", "wr.reqs", "wr.bytes")
            }
        for index in range(stats.get("net.count", 0)):
            prefix = f"net.{index}."
            result["nics"][stats.get(prefix + "name", str(index))] = {
                key: stats.get(prefix + key, 0) for key in ("rx.bytes", "rx.pkts", "tx.bytes", "tx.pkts")
            }
        return result

    # -- lifecycle ----------------------------------------------------------------------

    def create(self, xml: str) -> str:
        """Start a transient domain from ``xml`` (nothing stays defined once it stops)."""
        domain = self._call("start", self.conn.createXML, xml, 0)
        return domain.UUIDString()

    def define(self, xml: str) -> str:
        """Define (or redefine) a persistent domain; returns its UUID."""
        domain = self._call("define", self.conn.defineXML, xml)
        return domain.UUIDString()

    def start(self, name: str) -> None:
        self._call(f"start {name}", self._domain(name).create)

    def destroy(self, name: str) -> None:
        """Stop at once (power off)."""
        domain = self._domain(name)
        if _is_active(domain):
            self._call(f"destroy {name}", domain.destroy)

    def undefine(self, name: str) -> None:
        domain = self._domain(name)
        if _is_active(domain):
            self._call(f"destroy {name}", domain.destroy)
        self._call(f"undefine {name}", domain.undefine)

    def shutdown(self, name: str, timeout: float) -> str:
        """ACPI shutdown; if the guest is still running after ``timeout`` s, destroy it."""
        domain = self._domain(name)
        if not _is_active(domain):
            return "already stopped"
        self._call(f"shutdown {name}", domain.shutdown)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _is_active(domain):
                return "shut down"
            time.sleep(0.1)
        if _is_active(domain):
            with contextlib.suppress(HypervisorError):  # it may stop on its own meanwhile
                self._call(f"destroy {name}", domain.destroy)
        return f"forced off after {timeout:g} s without a clean shutdown"

    # -- consistency points -------------------------------------------------------------

    def freeze_filesystems(self, name: str) -> int:
        """Have the guest agent flush and freeze the guest's filesystems; how many it froze."""
        what = f"freeze the filesystems of {name}"
        return int(self._call(what, self._running_domain(name, what).fsFreeze))

    def thaw_filesystems(self, name: str) -> int:
        """Thaw what :meth:`freeze_filesystems` froze; how many filesystems it thawed."""
        what = f"thaw the filesystems of {name}"
        return int(self._call(what, self._running_domain(name, what).fsThaw))

    def pause(self, name: str) -> None:
        """Stop the guest's vCPUs (its disks then see no new writes)."""
        what = f"pause {name}"
        self._call(what, self._running_domain(name, what).suspend)

    def resume(self, name: str) -> None:
        """Let a paused guest run again."""
        what = f"resume {name}"
        self._call(what, self._running_domain(name, what).resume)

    # -- devices ------------------------------------------------------------------------

    def _running_domain(self, name: str, what: str) -> libvirt.virDomain:
        domain = self._domain(name)
        if not _is_active(domain):
            raise HypervisorError(f"{what}: the domain is not running")
        return domain

    def _has_device(self, domain: libvirt.virDomain, name: str, device: Device) -> bool:
        return device_present(self._call(f"XML of {name}", domain.XMLDesc, 0), device)

    def _device_flags(self, domain: libvirt.virDomain, name: str) -> int:
        flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
        if self._call(f"persistence of {name}", domain.isPersistent):
            flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
        return flags

    def attach_device(self, name: str, device: Device) -> None:
        """Hot-plug ``device`` into the running domain (and its definition, if persistent)."""
        what = f"attach {device.label} to {name}"
        domain = self._running_domain(name, what)
        if self._has_device(domain, name, device):
            raise HypervisorError(f"{what}: the domain already has it")
        self._call(what, domain.attachDeviceFlags, device.xml, self._device_flags(domain, name))

    def detach_device(self, name: str, device: Device, timeout: float = 10.0) -> None:
        """Hot-unplug ``device``; waits up to ``timeout`` s for the guest to release it.

        Unplugging a PCI device needs the guest's cooperation: libvirt sends the request
        and the device stays until the guest lets go. HypervisorError if it does not.
        """
        what = f"detach {device.label} from {name}"
        domain = self._running_domain(name, what)
        if not self._has_device(domain, name, device):
            raise HypervisorError(f"{what}: the domain has no such device")
        self._call(what, domain.detachDeviceFlags, device.xml, self._device_flags(domain, name))
        deadline = time.monotonic() + timeout
        while self._has_device(domain, name, device):
            if time.monotonic() >= deadline:
                raise HypervisorError(
                    f"{what}: the guest did not release the device within {timeout:g} s "
                    "(the request stays pending in the guest)"
                )
            time.sleep(0.2)

    def migrate(
        self,
        name: str,
        destination_uri: str,
        *,
        max_downtime_ms: int = 300,
        migration_uri: str | None = None,
        tls: bool = True,
    ) -> MigrationResult:
        """Live peer-to-peer migration; the definition moves with the domain.

        This node's libvirtd opens ``destination_uri`` itself (peer to peer). With
        ``tls`` the memory stream between the two QEMUs is TLS with both ends' x509
        certificates (qemu.conf ``migrate_tls_x509_cert_dir`` on both nodes).
        """
        domain = self._domain(name)
        with contextlib.suppress(libvirt.libvirtError):  # older QEMUs only accept it during a job
            domain.migrateSetMaxDowntime(max_downtime_ms, 0)
        params: dict[str, object] = {}
        if migration_uri:
            params[libvirt.VIR_MIGRATE_PARAM_URI] = migration_uri
        flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
        if tls:
            flags |= libvirt.VIR_MIGRATE_TLS
        if self._call(f"persistence of {name}", domain.isPersistent):
            flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        completed: dict[str, int] = {}
        finished = threading.Event()

        def on_job_completed(_conn: object, _domain: object, stats: dict, _opaque: object) -> None:
            completed.update(stats)
            finished.set()

        callback = None
        with contextlib.suppress(libvirt.libvirtError):  # then only the job stats can tell
            callback = self.conn.domainEventRegisterAny(
                domain, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, on_job_completed, None
            )
        started = time.monotonic()
        try:
            self._call(
                f"migrate {name} to {destination_uri}", domain.migrateToURI3, destination_uri, params, flags
            )
            seconds = time.monotonic() - started
            if callback is not None:
                finished.wait(JOB_EVENT_WAIT)
        finally:
            if callback is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    self.conn.domainEventDeregisterAny(callback)
        downtime = completed.get("downtime")
        if downtime is None:
            downtime = self._completed_downtime(domain, destination_uri, name)
        return MigrationResult(seconds=seconds, downtime_ms=downtime)

    @staticmethod
    def _completed_downtime(source: libvirt.virDomain, destination_uri: str, name: str) -> int | None:
        """QEMU's measured downtime of the finished migration (source or destination side)."""
        with contextlib.suppress(libvirt.libvirtError):
            return source.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED).get("downtime")
        with contextlib.suppress(libvirt.libvirtError):
            destination = libvirt.open(destination_uri)
            try:
                stats = destination.lookupByName(name).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
                return stats.get("downtime")
            finally:
                destination.close()
        return None

    # -- events -------------------------------------------------------------------------

    def on_lifecycle(self, callback: EventCallback) -> int:
        """Call ``callback(name, event, detail)`` for every lifecycle event; returns an id."""

        def handler(
            _conn: object, domain: libvirt.virDomain, event: int, detail: int, _opaque: object
        ) -> None:
            callback(domain.name(), EVENTS.get(event, str(event)), detail)

        return self._call(
            "register events",
            self.conn.domainEventRegisterAny,
            None,
            libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
            handler,
            None,
        )


def _is_active(domain: libvirt.virDomain) -> bool:
    """Whether a domain runs; a transient domain that stopped no longer exists at all."""
    try:
        return bool(domain.isActive())
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return False
        raise HypervisorError(f"state of {domain.name()}: {error.get_error_message()}") from None


#: Our names of libvirt's per-domain statistics (``getAllDomainStats`` keys; devices by index).
_NIC_KEYS = (
    ("rd_bytes", "rx.bytes"),
    ("rd_packets", "rx.pkts"),
    ("rd_errors", "rx.errs"),
    ("rd_drops", "rx.drop"),
    ("wr_bytes", "tx.bytes"),
    ("wr_packets", "tx.pkts"),
    ("wr_errors", "tx.errs"),
    ("wr_drops", "tx.drop"),
)
_DISK_KEYS = (
    ("rd_req", "rd.reqs"),
    ("rd_bytes", "rd.bytes"),
    ("wr_req", "wr.reqs"),
    ("wr_bytes", "wr.bytes"),
)
_MEMORY_KEYS = (
    ("actual", "balloon.current"),
    ("swap_in", "balloon.swap_in"),
    ("swap_out", "balloon.swap_out"),
    ("major_fault", "balloon.major_fault"),
    ("minor_fault", "balloon.minor_fault"),
    ("unused", "balloon.unused"),
    ("available", "balloon.available"),
    ("usable", "balloon.usable"),
    ("last_update", "balloon.last-update"),
    ("rss", "balloon.rss"),
)
_VCPU_KEYS = (("cpu_time", "cpu.time"), ("user_time", "cpu.user"), ("system_time", "cpu.system"))


def _reported(stats: dict, names: tuple[tuple[str, str], ...], prefix: str = "") -> dict:
    """The figures libvirt reported, under our names; one it left out stays out (not 0)."""
    return {ours: stats[prefix + theirs] for ours, theirs in names if prefix + theirs in stats}


def _stats_record(stats: dict) -> dict:
    """One domain's figures from libvirt's flat statistics keys (only those it reported)."""
    nics = {
        str(index): _reported(stats, _NIC_KEYS, f"net.{index}.") for index in range(stats.get("net.count", 0))
    }
    disks = {
        stats.get(f"block.{index}.name", str(index)): _reported(stats, _DISK_KEYS, f"block.{index}.")
        for index in range(stats.get("block.count", 0))
    }
    return {
        "memory": _reported(stats, _MEMORY_KEYS),
        "vcpu": _reported(stats, _VCPU_KEYS),
        "nics": nics,
        "disks": disks,
    }
