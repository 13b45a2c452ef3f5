"""The ``provisioner.create`` task: a VM made from a resolved plan, on the primary coordinator.

Stages, each reported as progress (``current/total``, status naming the stage):

1. **verify**: the name is free, the networks exist, a ready node has the memory, every
   volume can be made (pool, size or source, no volume of that name yet);
2. **setup**: the install script's ``setup(vm)`` hook (it may refuse with ``fail()``);
3. **volumes**: each disk's volume, ``<vm>_<disk_id>``: a copy-on-write clone of the
   template's ``source_volume@snapshot``, a copy of ``source_volume``, or a new volume;
   grown to the template's size;
4. **create**: the ``create(vm)`` hook may return the domain XML, or direct-boot settings
   (``kernel``, ``initrd``, ``cmdline``) for the XML PVC builds; otherwise PVC builds it;
5. **install**: the ``prepare(vm)`` and ``install(vm)`` hooks; when ``install`` answers with
   a ``debootstrap`` directive, PVC installs Debian into the disk it names
   (:mod:`pvc.cluster.provisioner.bootstrap`);
6. **define**: the VM is defined in state ``provision`` (checked like any client XML,
   without admin rights);
7. **start**: started, or left stopped.

The ``cleanup(vm)`` hook runs last whatever happened, once ``setup`` ran. On failure or
cancellation everything the task made is removed again (the VM record, then its volumes)
and the task fails naming the stage and the reason; when the task's worker is lost (its
node died), :mod:`.leftovers` removes it from another node. Hooks run in the sandbox of
:mod:`pvc.cluster.provisioner.sandbox`; everything privileged is done here.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner import bootstrap, build, leftovers
from pvc.cluster.provisioner.sandbox import ScriptError, run_hook
from pvc.cluster.session import Cluster
from pvc.cluster.storage import mirror
from pvc.cluster.storage.access import mapped_errors
from pvc.cluster.tasks.services import NodeTaskContext, need_cluster, need_storage, node_xml_policy
from pvc.cluster.vm import actions as vm_actions
from pvc.cluster.vm.define import define
from pvc.cluster.vm.placement import accepts_vms, loads
from pvc.cluster.vm.queries import vm_nics
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import parse
from pvc.state.cache import ClusterCache
from pvc.state.networks import vnis as defined_vnis
from pvc.state.states import VMState
from pvc.storage import disk_locks, monitors, upload, volumes
from pvc.tasks import InvalidTaskError, TaskError, task_type

log = logging.getLogger(__name__)

STAGES = ("verify", "setup", "volumes", "create", "install", "define", "start")
#: Lines of script log kept in the task's result (each at most a few hundred characters).
MAX_LOG_LINES = 200


#: One define at a time in this daemon (creations run on the primary): the MAC addresses of
#: the final XML are checked against the cluster and the VM defined under it, so two
#: creations running together cannot both take one address.
_DEFINE_LOCK = threading.Lock()


def macs_in_use(cache: ClusterCache) -> dict[str, str]:
    """The MAC address of every VM's NICs, and the VM's name."""
    return {nic.mac.lower(): record.meta.name for record, nic in vm_nics(cache) if nic.mac}


def check_xml_macs(cache: ClusterCache, xml: str, name: str) -> None:
    """ClusterError when a NIC of VM ``name``'s final XML repeats a MAC address of its own or
    takes one another VM has (the XML may come from an install script)."""
    try:
        _, summary = parse(xml)
    except DomainXMLError:
        return  # define refuses it with the parser's own words
    taken = macs_in_use(cache)
    seen: set[str] = set()
    for nic in summary.nics:
        mac = nic.mac.lower()
        if not mac:
            continue
        if mac in seen:
            raise ClusterError(f"VM '{name}' has two NICs with MAC address {mac}")
        if mac in taken:
            raise ClusterError(f"MAC address {mac} for VM '{name}' is already used by VM '{taken[mac]}'")
        seen.add(mac)


def check_cluster(cluster: Cluster, vm_data: dict[str, Any]) -> list[str]:
    """ClusterError unless the cluster can take the VM now: its name free, its networks
    defined, its MAC addresses unused, a ready node (within its node limit) with the memory
    free. Returns the nodes that could take it."""
    cache = cluster.cache
    name = vm_data["name"]
    if cache.vm_uuid_by_name(name):
        raise ClusterError(f"A VM named '{name}' already exists")
    missing = sorted({net["vni"] for net in vm_data["networks"]} - set(defined_vnis(cache)))
    if missing:
        raise ClusterError(f"network {', '.join(map(str, missing))} of the network template does not exist")
    taken = macs_in_use(cache)
    for net in vm_data["networks"]:
        if net["mac"] in taken:
            raise ClusterError(
                f"MAC address {net['mac']} for VM '{name}' on network {net['vni']} is already used by VM "
                f"'{taken[net['mac']]}' (the network template's MAC template gives it)"
            )
    system = vm_data["system"]
    limit = set(system["node_limit"])
    memory = int(system["vram_mb"])
    nodes = cache.nodes()
    totals = loads(nodes, cache.vms())
    ready = [n for n in nodes if accepts_vms(n) and (not limit or n.name in limit)]
    fitting = [
        n.name for n in ready if totals[n.name].memory_total - totals[n.name].memory_allocated >= memory
    ]
    if not ready:
        where = f" among {', '.join(sorted(limit))}" if limit else ""
        raise ClusterError(f"No node{where} is ready to take VMs")
    if not fitting:
        raise ClusterError(f"No ready node has {memory} MiB of memory free for VM '{name}'")
    return fitting


def _check_args(args: dict[str, Any]) -> dict[str, Any]:
    plan = args.get("plan")
    if not isinstance(plan, dict) or not isinstance(plan.get("vm_data"), dict):
        raise InvalidTaskError("plan must hold the VM's vm_data")
    if not isinstance(plan.get("script_text"), str):
        raise InvalidTaskError("plan must hold the install script's text")
    if args.get("domain_type", "kvm") not in ("kvm", "qemu"):
        raise InvalidTaskError("domain_type must be kvm or qemu")
    settings = args.get("debootstrap") or {}
    if not isinstance(settings, dict) or not isinstance(settings.get("mirrors", []), list):
        raise InvalidTaskError("debootstrap must hold the allowed mirrors, a timeout and a work directory")
    return args


class Creation:
    """One run of the task: the stages in order, and what they made (to undo on failure)."""

    def __init__(self, ctx: NodeTaskContext, plan: dict[str, Any], options: dict[str, Any]) -> None:
        self.ctx = ctx
        self.vm_data: dict[str, Any] = plan["vm_data"]
        self.script = plan["script_text"]
        self.options = options
        self.name = self.vm_data["name"]
        self.stage = STAGES[0]
        self.timings: dict[str, float] = {}
        self.log: list[str] = []
        self.made_volumes: list[dict[str, Any]] = []
        self.uuid = ""
        self.cluster: Cluster = need_cluster(ctx)
        self.storage = need_storage(ctx) if self.vm_data["volumes"] else None

    def _enter(self, stage: str, detail: str = "") -> None:
        self.ctx.check_cancelled()
        self.stage = stage
        self.ctx.progress(STAGES.index(stage) + 1, len(STAGES), f"{stage}: {detail or self.name}")

    def _hook(self, hook: str, *, required: bool = False) -> Any:
        began = time.monotonic()
        result = run_hook(
            self.vm_data["script"],
            self.script,
            hook,
            self.vm_data,
            required=required,
            timeout=float(self.options.get("hook_timeout", 600.0)),
        )
        room = MAX_LOG_LINES - len(self.log)
        self.log += [f"{hook}: {line}" for line in result.log[: max(0, room)]]
        self.timings[f"hook {hook}"] = round(time.monotonic() - began, 3)
        return result.value

    def _timed(self, stage: str, began: float) -> None:
        self.timings[stage] = round(time.monotonic() - began + self.timings.get(stage, 0.0), 3)

    def run(self) -> dict[str, Any]:
        """Every stage; on failure undo and raise TaskError naming the stage."""
        set_up = False
        try:
            began = time.monotonic()
            self._enter("verify")
            self._verify()
            self._timed("verify", began)
            began = time.monotonic()
            self._enter("setup", "script setup()")
            set_up = True
            self._hook("setup")
            self._timed("setup", began)
            self._volumes()
            xml = self._xml()
            began = time.monotonic()
            self._enter("install", "script prepare() and install()")
            self._hook("prepare")
            self._install(self._hook("install"))
            self._timed("install", began)
            message = self._define_and_start(xml)
        except BaseException as error:
            why = str(error) if isinstance(error, (ClusterError, ScriptError, TaskError)) else repr(error)
            if set_up:
                self._cleanup_hook()
            undone = self._undo()
            if self.ctx.cancelled:
                why = f"cancelled ({self.ctx.cancel_reason or 'on request'})"
            raise TaskError(f"Creating VM {self.name} failed at stage {self.stage}: {why}{undone}") from None
        self._cleanup_hook()
        return {
            "message": message,
            "vm": self.name,
            "uuid": self.uuid,
            "stages": self.timings,
            "log": self.log,
        }

    # -- stages -------------------------------------------------------------------------

    def _verify(self) -> None:
        check_cluster(self.cluster, self.vm_data)
        auth = self.options.get("disk_auth")
        self.vm_data["ceph_auth"] = {"user": auth[0], "secret_uuid": auth[1]} if auth else None
        self.vm_data["ceph_monitors"] = []
        if self.storage is None:
            return
        with mapped_errors(self.storage):
            client = self.storage.client()
            for volume in self.vm_data["volumes"]:
                build.check_volume(client, volume)
            endpoints = monitors.v1_endpoints(client)
        self.vm_data["ceph_monitors"] = [f"{host}:{port}" for host, port in endpoints]

    def _volumes(self) -> None:
        began = time.monotonic()
        for volume in self.vm_data["volumes"]:
            self._enter("volumes", f"{volume['pool']}/{volume['volume']}")
            assert self.storage is not None
            with mapped_errors(self.storage):
                client = self.storage.client()
                done = build.make_volume(client, volume, self.ctx.task_id)  # nothing left if it fails
                self.made_volumes.append(volume)
                self._publish(volume)
            self.log.append(f"volumes: {done}")
        self._timed("volumes", began)

    def _publish(self, volume: dict[str, Any]) -> None:
        assert self.storage is not None
        scope = mirror.volume_scope(self.storage.client(), volume["pool"], volume["volume"])
        mirror.publish_scope(self.cluster.store, scope)

    def _xml(self) -> str:
        """The create hook's XML text, or PVC's own XML (with the boot settings the hook
        returned as a mapping, if any)."""
        began = time.monotonic()
        self._enter("create", "script create() or the profile's definition")
        value = self._hook("create")
        if isinstance(value, str) and value.strip():
            self._timed("create", began)
            return value
        if value is not None and not isinstance(value, dict):
            raise ClusterError("the script's create() returned neither domain XML, boot settings nor None")
        endpoints = [(h, int(p)) for h, _, p in (m.rpartition(":") for m in self.vm_data["ceph_monitors"])]
        auth = self.options.get("disk_auth")
        xml = build.domain_xml(
            self.vm_data,
            domain_type=self.options.get("domain_type", "kvm"),
            monitors=endpoints,
            disk_auth=(auth[0], auth[1]) if auth else None,
            boot=build.boot_settings(value or {}),
        )
        self._timed("create", began)
        return xml

    def _install(self, answer: Any) -> None:
        """Carry out the ``debootstrap`` directive of the install hook's answer, if any."""
        settings = self.options.get("debootstrap") or {}
        install = bootstrap.directive(answer, self.vm_data, list(settings.get("mirrors", [])))
        if install is None:
            return
        target = f"{install.pool}/{install.volume}"
        self._enter("install", f"installing Debian {install.suite} into {target}")
        with bootstrap.work_directory(settings.get("work_dir", "/var/tmp")) as work:
            runner = bootstrap.Runner(work, lambda: self.ctx.cancelled)
            image = bootstrap.build_image(install, runner, float(settings.get("timeout", 1800.0)))
            assert self.storage is not None
            with mapped_errors(self.storage):
                upload.import_image(self.storage.client(), install.pool, install.volume, image, "raw")
        self.log.append(
            f"install: Debian {install.suite} ({install.variant}) installed into {target}, "
            f"{install.device} in the VM (label {bootstrap.ROOT_LABEL})"
        )

    def _define_and_start(self, xml: str) -> str:
        if not self.options.get("define_vm", True):
            self._enter("define", "not defined (define_vm off)")
            return f"Made the volumes of VM {self.name}; it was not defined (define_vm off)"
        began = time.monotonic()
        self._enter("define")
        system = self.vm_data["system"]
        with _DEFINE_LOCK:
            check_xml_macs(self.cluster.cache, xml, self.name)
            self.uuid, _ = define(
                self.cluster,
                xml,
                policy=node_xml_policy(self.ctx, admin=False),
                name=self.name,
                limit=system["node_limit"],
                selector=system["node_selector"],
                autostart=bool(system["node_autostart"]),
                migration_method=system["migration_method"],
                migration_max_downtime=system["migration_max_downtime"],
                profile=self.vm_data["profile"],
                state=VMState.PROVISION,
            )
        self._timed("define", began)
        began = time.monotonic()
        self._enter("start", "starting" if self.options.get("start_vm", True) else "left stopped")
        if self.options.get("start_vm", True):
            vm_actions.request_state(self.cluster, self.uuid, VMState.START)
            verb = "started"
        else:
            vm_actions.change_placement(self.cluster, self.uuid, lambda p: replace(p, state=VMState.STOP))
            verb = "defined (stopped)"
        self._timed("start", began)
        return f"VM {self.name} created from profile {self.vm_data['profile']} and {verb}"

    # -- undoing ------------------------------------------------------------------------

    def _cleanup_hook(self) -> None:
        try:
            self._hook("cleanup")
        except Exception as error:  # cleanup is best effort: its failure is reported, not fatal
            self.log.append(f"cleanup: failed: {error}")

    def _undo(self) -> str:
        """Remove what this run made; a note for the failure message when some remains."""
        left = []
        if self.uuid:
            try:
                vm_actions.remove(self.cluster, self.uuid)
            except Exception as error:
                # its volumes stay with it: a VM record must not point at deleted disks
                names = ", ".join(f"{v['pool']}/{v['volume']}" for v in self.made_volumes)
                left.append(f"VM {self.name} ({error}) and its volumes {names}")
                self.made_volumes = []
        for volume in reversed(self.made_volumes):
            pool, name = volume["pool"], volume["volume"]
            try:
                assert self.storage is not None
                with mapped_errors(self.storage):
                    client = self.storage.client()
                    disk_locks.clear_stale(client, pool, name)
                    volumes.remove(client, pool, name)
                    self._publish(volume)
            except Exception as error:
                left.append(f"volume {pool}/{name} ({error})")
        if left:
            log.error("creating VM %s failed and left behind: %s", self.name, "; ".join(left))
            return f"; could not remove {'; '.join(left)}"
        return "; everything it made was removed"


@task_type(leftovers.CREATE_TASK, validate=_check_args, on_lost=leftovers.sweep_lost)
def create_vm(
    ctx: NodeTaskContext,
    *,
    plan: dict[str, Any],
    define_vm: bool = True,
    start_vm: bool = True,
    domain_type: str = "kvm",
    hook_timeout: float = 600.0,
    disk_auth: list[str] | None = None,
    debootstrap: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make the VM of ``plan`` (see the module's stages)."""
    options = {
        "define_vm": define_vm,
        "start_vm": start_vm,
        "domain_type": domain_type,
        "hook_timeout": hook_timeout,
        "disk_auth": disk_auth,
        "debootstrap": debootstrap,
    }
    return Creation(ctx, plan, options).run()
