"""Bringing a lab cluster up and down, and reporting on it.

Each node is a network namespace plus its own mount and UTS namespaces, anchored by a
small process; the node's daemons are started inside those namespaces with nsenter.
Everything the lab creates is recorded in ``lab.json`` as it is created, so ``down``
(and an ``up`` after a crash) removes exactly what the lab made, by name and PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pvc import processes
from pvc.client.errors import ConnectionStoreError
from pvc.config import read_credential_file
from pvc.errors import PVCError
from pvc.lab import (
    cluster_ceph,
    database,
    endpoint,
    fence_wait,
    lab_connection,
    libvirtd,
    netns,
    power,
    zookeeper,
)
from pvc.lab.cache import cache_dir
from pvc.lab.labstate import ROLES, LabState, node_roles
from pvc.lab.layout import LabLayout
from pvc.lab.nodeconf import write_node_config
from pvc.power.ipmi import PowerState
from pvc.processes import ProcessRef
from pvc.state import paths
from pvc.state.errors import StateError
from pvc.state.store import Store

Say = Callable[[str], None]


class LabError(PVCError):
    """The lab could not be brought up or inspected."""


def _anchor_argv(layout: LabLayout, node: str) -> list[str]:
    """The node's anchor: own mount and UTS namespaces, hostname, private /run and libvirt dirs."""
    mounts = [(layout.node_dir(node) / "run", "/run"), *libvirtd.binds(layout, node)]
    binds = " && ".join(f'mount --bind "{source}" "{target}"' for source, target in mounts)
    script = f'hostname "$0" && {binds} && exec sleep infinity'
    return [
        "ip", "netns", "exec", layout.netns(node),
        "unshare", "--mount", "--uts", "--propagation", "private", "--",
        "sh", "-c", script, node,
    ]  # fmt: skip


def _in_node(anchor: ProcessRef, argv: list[str]) -> list[str]:
    return ["nsenter", "-t", str(anchor.pid), "-n", "-m", "-u", "--", *argv]


def _check_api_can_enter(directory: Path) -> None:
    """LabError unless every account may enter ``directory``'s parents: the nodes' APIs run
    unprivileged and read the lab's ceph.conf and their state directories under it."""
    for parent in directory.resolve().parents:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            raise LabError(
                f"the lab's APIs run as an unprivileged user, which cannot enter {parent}; "
                f"put the lab elsewhere (--dir) or allow it (chmod o+x {parent})"
            )


def _wait_anchor(ref: ProcessRef, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{ref.pid}/comm").read_text().strip() == "sleep":
                return
        except OSError:
            break
        time.sleep(0.02)
    raise LabError(f"node anchor {ref.name} did not start; see {ref.log}")


class Lab:
    """Operations on the lab whose state lives in ``directory``."""

    def __init__(self, directory: Path, say: Say = print) -> None:
        self.directory = directory
        self.say = say

    def state(self) -> LabState | None:
        return LabState.load(self.directory)

    # -- up -----------------------------------------------------------------------------

    def up(self, layout: LabLayout, timeout: float = 90.0) -> LabState:
        """Create and start the lab; returns when every node runs and one is primary.

        A lab in the directory with every process alive: :class:`LabAlreadyUp`; with some
        alive: its dead services are started again (:meth:`heal`); with none: it is removed
        first.
        """
        existing = self.state()
        if existing and all(existing.alive().values()):
            raise LabAlreadyUp(existing)
        if existing and any(existing.alive().values()):
            for sentence in self.heal(timeout) or []:
                self.say(sentence)
            return self._require_state()
        if existing:
            self.say("cleaning up what a previous lab left behind")
            self._teardown(existing)
        self._remove_stray(layout)
        _check_api_can_enter(layout.directory)
        started = time.monotonic()
        state = LabState(layout=layout, started=time.time())
        endpoint.new_api_key(layout)
        try:
            self._create_network(state)
            power.start_bmcs(layout, power.new_bmc_password(layout))
            self._start_anchors(state)
            self._start_libvirtd(state)
            self._start_zookeeper(state)
            for node in layout.node_names:
                write_node_config(layout, node)
            if layout.database:
                self._start_database(state)
            if layout.ceph:
                self._start_ceph(state)
            self._start_daemons(state)
            self._wait_cluster(state, timeout)
            if layout.ceph:
                cluster_ceph.add_osds_and_pool(layout, say=self.say, timeout=timeout)
        except BaseException:
            self.say("lab start failed; removing what was created")
            self._teardown(state, keep_logs=True)
            raise
        self.say(f"lab up in {time.monotonic() - started:.1f} s")
        self._register_connection(layout)
        return state

    def _register_connection(self, layout: LabLayout) -> None:
        """Give ``pvc`` a connection to this lab (the default only if there is none)."""
        try:
            self.say(lab_connection.describe(lab_connection.register(layout)))
        except ConnectionStoreError as error:
            self.say(f"could not register the lab's connection: {error}")

    def _forget_connection(self, layout: LabLayout) -> None:
        try:
            if lab_connection.forget(layout):
                self.say(f"removed connection '{endpoint.connection_name(layout)}'")
        except (ConnectionStoreError, OSError):
            pass

    def _create_network(self, state: LabState) -> None:
        layout = state.layout
        netns.create_bridge(layout.bridge, [str(a) for a in layout.host_addresses])
        state.links.append(layout.bridge)
        state.save()
        if layout.peers:
            netns.forward_on(layout.bridge)
        for node in layout.node_names:
            state.namespaces.append(layout.netns(node))
            state.links.append(layout.host_link(node))
            state.save()
            netns.create_node_netns(
                layout.netns(node),
                layout.host_link(node),
                layout.node_link(node),
                layout.bridge,
                [str(a) for a in layout.addresses(node).values()],
                layout.peer_routes,
            )

    def _start_anchors(self, state: LabState) -> None:
        layout = state.layout
        libvirtd.make_certificates(layout)
        for node in layout.node_names:
            (layout.node_dir(node) / "run").mkdir(parents=True, exist_ok=True)
            libvirtd.prepare(layout, node)
            ref = processes.spawn(
                f"{node}/anchor", _anchor_argv(layout, node), layout.log_file(node, "anchor")
            )
            state.processes[ref.name] = ref
            state.save()
        for node in layout.node_names:
            _wait_anchor(state.processes[f"{node}/anchor"])

    def _start_libvirtd(self, state: LabState) -> None:
        layout = state.layout
        seed = cache_dir() / "libvirt-capabilities"
        for node in layout.node_names:
            libvirtd.seed_capabilities(layout, node, seed)
            self._spawn_service(state, node, "libvirtd")
        for node in layout.node_names:
            self._wait_service(state, node, "libvirtd")
        # load QEMU's capabilities now (from the seed, or probe them once and keep them)
        warmers = [
            threading.Thread(target=libvirtd.warm_up, args=(libvirtd.uri(layout, node),), daemon=True)
            for node in layout.node_names
        ]
        for thread in warmers:
            thread.start()
        for thread in warmers:
            thread.join(60)
        libvirtd.save_capabilities(layout, layout.node_names[0], seed)

    def _members(self, layout: LabLayout) -> list[zookeeper.Member]:
        return [
            zookeeper.Member(i, layout.cluster_ip(node))
            for i, node in enumerate(layout.coordinator_names, start=1)
        ]

    def _start_zookeeper(self, state: LabState) -> None:
        layout = state.layout
        zookeeper.write_credential(layout.zookeeper_auth_file)  # a new one for every lab
        members = self._members(layout)
        for node, member in zip(layout.coordinator_names, members, strict=True):
            zookeeper.write_config(self._zookeeper_dir(layout, node), member, members)
            self._spawn_service(state, node, "zookeeper")

    def _start_database(self, state: LabState) -> None:
        database.write_credentials(state.layout)
        for node in state.layout.coordinator_names:
            self._spawn_service(state, node, database.ROLE)

    @staticmethod
    def _zookeeper_dir(layout: LabLayout, node: str) -> Path:
        return layout.node_dir(node) / "zookeeper"

    def _start_ceph(self, state: LabState) -> None:
        """Create the lab's Ceph; start a monitor on every coordinator and the manager."""
        cluster_ceph.prepare(state.layout)
        for node, role, _ in cluster_ceph.daemon_commands(state.layout):
            self._spawn_service(state, node, role)

    # -- the services of a node ---------------------------------------------------------

    def _service_command(self, layout: LabLayout, node: str, role: str) -> tuple[list[str], dict | None]:
        """The command line (run inside the node) and environment of one of its services."""
        if role == "libvirtd":
            return libvirtd.command(), None
        if role == "zookeeper":
            return zookeeper.command(self._zookeeper_dir(layout, node)), None
        if role == database.ROLE:
            return database.command(layout, node)
        if role == "pvcnoded":
            env = {**os.environ, "PVC_CONFIG_FILE": str(layout.config_file(node))}
            return [sys.executable, "-m", "pvc.node.daemon"], env
        for ceph_node, ceph_role, argv in cluster_ceph.daemon_commands(layout):
            if (ceph_node, ceph_role) == (node, role):
                return argv, {**os.environ, "CEPH_CONF": str(cluster_ceph.conf_path(layout))}
        raise LabError(f"{node} runs no {role} in this lab")

    def _spawn_service(self, state: LabState, node: str, role: str) -> ProcessRef:
        """Start one service of ``node`` inside the node's namespaces and record it."""
        layout = state.layout
        argv, env = self._service_command(layout, node, role)
        anchor = state.processes[f"{node}/anchor"]
        ref = processes.spawn(f"{node}/{role}", _in_node(anchor, argv), layout.log_file(node, role), env=env)
        state.record(ref)
        return ref

    def _wait_service(self, state: LabState, node: str, role: str, timeout: float = 30.0) -> None:
        """Wait until a started libvirtd accepts connections or a ZooKeeper member serves
        clients (other services: nothing to wait for here)."""
        layout = state.layout
        ref = state.processes[f"{node}/{role}"]
        if role == "libvirtd":
            ready = lambda: libvirtd.accepts(layout, node)  # noqa: E731
        elif role == "zookeeper":
            member = self._members(layout)[layout.coordinator_names.index(node)]
            ready = lambda: zookeeper.mode(member.address, member.client_port) is not None  # noqa: E731
        else:
            return
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline or not processes.is_alive(ref):
                raise LabError(f"{role} on {node} did not start; see {layout.log_file(node, role)}")
            time.sleep(0.05)

    def services(self, node: str, state: LabState | None = None) -> list[str]:
        """The services (lab process roles but the anchor) ``node`` runs in this lab."""
        state = state or self._require_state()
        if node not in state.layout.node_names:
            raise LabError(f"no node {node} in this lab ({', '.join(state.layout.node_names)})")
        return [role for role in node_roles(state.layout, node) if role != "anchor"]

    def start_service(self, node: str, role: str, state: LabState | None = None) -> ProcessRef:
        """Start (again) service ``role`` of ``node``; waits until libvirtd or ZooKeeper is ready."""
        state = state or self._require_state()
        if role not in self.services(node, state):
            raise LabError(f"{node} runs no {role} in this lab ({', '.join(self.services(node, state))})")
        current = state.ref(node, role)
        if current and processes.is_alive(current):
            raise LabError(f"{role} on {node} is already running (pid {current.pid})")
        anchor = state.ref(node, "anchor")
        if anchor is None or not processes.is_alive(anchor):
            raise LabError(
                f"the namespace anchor of {node} has died, so its services cannot be started "
                "again: 'pvc-lab down', then 'pvc-lab up'"
            )
        ref = self._spawn_service(state, node, role)
        self._wait_service(state, node, role)
        return ref

    def heal(self, timeout: float = 90.0) -> list[str] | None:
        """Start again every service of the lab that has died; one sentence per restart.

        None when there is nothing to heal in place: no lab, or none of its processes alive
        (``up`` starts such a lab afresh). An empty list when every process is alive.
        Returns once the cluster is back in run with one primary.
        """
        state = self.state()
        if state is None:
            return None
        alive = state.alive()
        if not any(alive.values()):
            return None
        dead = [key for key, ok in alive.items() if not ok]
        anchors = [key.split("/")[0] for key in dead if key.endswith("/anchor")]
        if anchors:
            raise LabError(
                f"the namespace anchor of {', '.join(anchors)} has died, so the lab cannot be "
                "healed in place: 'pvc-lab down', then 'pvc-lab up'"
            )
        layout = state.layout
        try:  # a fence begun before this heal may yet cut what it restarts
            done = fence_wait.wait_fences(lambda: self._store(layout, give_up_after=3.0), layout, timeout)
        except PVCError as error:
            raise LabError(str(error)) from None
        began = time.time()  # a fence from here on is seen by its power cut
        for node, now in power.power_states(state.layout).items():
            power.wait_power_on(state.layout, node)  # a node booting after a power on
            if now == "off":
                power.record_power(state.layout, node, PowerState.ON)
                done.append(f"powered {node} on")
        state = self._require_state()
        dead = [key for key, ok in state.alive().items() if not ok]
        for role in ROLES:  # libvirtd and ZooKeeper before the node daemons that need them
            for node in state.layout.node_names:
                if f"{node}/{role}" in dead:
                    ref = self._spawn_service(state, node, role)
                    done.append(f"restarted {role} on {node} (pid {ref.pid})")
        for key in dead:
            node, role = key.split("/")
            self._wait_service(state, node, role)
        if done:
            done += self._wait_cluster(state, timeout, since=began)
        return done

    def power_on(self, node: str) -> list[str]:
        """Start every dead service of ``node`` in :data:`ROLES` order, each once the one before
        is ready (what a node does when it boots); one sentence per start."""
        state = self._require_state()
        done = []
        for role in self.services(node, state):
            current = state.ref(node, role)
            if current is not None and processes.is_alive(current):
                continue
            ref = self._spawn_service(state, node, role)
            try:
                self._wait_service(state, node, role)
            except LabError:
                if not processes.is_alive(ref):
                    raise
                # e.g. a ZooKeeper member of a node that is cut off: it serves once it can
                # reach its peers. A server boots its other services all the same.
                done.append(f"started {role} on {node} (pid {ref.pid}), not ready yet")
                continue
            done.append(f"started {role} on {node} (pid {ref.pid})")
        return done

    def _start_daemons(self, state: LabState) -> None:
        for node in state.layout.node_names:
            self.start_daemon(node, state)

    def start_daemon(self, node: str, state: LabState | None = None) -> ProcessRef:
        """Start (or restart) the node daemon of ``node``."""
        return self.start_service(node, "pvcnoded", state)

    def _wait_cluster(self, state: LabState, timeout: float, since: float | None = None) -> list[str]:
        """Wait until every node daemon is in ``run``, there is one primary and no fence is
        under way.

        A node whose processes die because the cluster fences it meanwhile (its BMC was asked
        to cut its power after ``since``, epoch seconds, default now: e.g. ``up`` restarted a
        daemon the cluster had already declared dead) is waited for until it is powered on and
        its services started again; one sentence per such node. Any other death fails the start.
        """
        layout = state.layout
        deadline = time.monotonic() + timeout
        cut_check_from = dict.fromkeys(layout.node_names, time.time() if since is None else since)
        notes: list[str] = []
        store = self._store(layout, give_up_after=timeout)
        try:
            while time.monotonic() < deadline:
                dead = [k for k, alive in state.alive().items() if not alive]
                cuts = power.cuts_explaining(layout, dead, cut_check_from)
                if cuts:
                    for node, cut in cuts.items():
                        if not fence_wait.wait_booted(self._require_state, node, cut, deadline):
                            raise LabError(f"{node} was fenced and is not up again within {timeout:g} s")
                        cut_check_from[node] = time.time()
                        notes.append(f"the cluster fenced {node} meanwhile; it is powered on again")
                    state = self._require_state()
                    continue
                if dead:
                    raise LabError(f"lab processes exited during start: {', '.join(dead)}")
                try:
                    nodes = read_nodes(store, layout.node_names)
                    fencing = fence_wait.fences_under_way(store, layout)
                except StateError:  # e.g. the member it spoke to died with a fenced node
                    time.sleep(0.5)
                    continue
                running = all(n["daemon_state"] == "run" for n in nodes)
                primaries = [n["name"] for n in nodes if n["coordinator_state"] == "primary"]
                if running and len(primaries) == 1 and not fencing:
                    return notes
                time.sleep(0.1)
        finally:
            store.stop()
        raise LabError(f"lab did not reach run with one primary within {timeout:g} s")

    # -- inspection ---------------------------------------------------------------------

    def _require_state(self) -> LabState:
        state = self.state()
        if state is None:
            raise LabError(f"no lab in {self.directory}")
        return state

    @staticmethod
    def _store(layout: LabLayout, give_up_after: float = 3.0) -> Store:
        try:
            credential = read_credential_file(layout.zookeeper_auth_file, "the lab's ZooKeeper credential")
        except PVCError as error:
            raise LabError(str(error)) from None
        store = Store(",".join(layout.zookeeper_hosts), timeout=layout.session_timeout, credential=credential)
        if not store.start(attempt_timeout=2.0, give_up_after=give_up_after):
            store.stop()
            raise LabError("cannot reach the lab's ZooKeeper ensemble")
        return store

    def status(self) -> dict:
        """Processes and node states of the lab, as a JSON-ready mapping."""
        state = self.state()
        if state is None:
            return {"directory": str(self.directory), "exists": False, "up": False, "nodes": []}
        layout = state.layout
        alive = state.alive()
        try:
            store = self._store(layout)
        except LabError:
            node_states = {}
        else:
            try:
                node_states = {n["name"]: n for n in read_nodes(store, layout.node_names)}
                primary = store.get_text(paths.PRIMARY_NODE)
            finally:
                store.stop()
        powers = power.power_states(layout)
        nodes = []
        for node in layout.node_names:
            states = node_states.get(node, {})
            roles = [r for r in ROLES if state.ref(node, r)]
            nodes.append(
                {
                    "name": node,
                    "mode": "coordinator" if node in layout.coordinator_names else "hypervisor",
                    "daemon_state": states.get("daemon_state", "unknown"),
                    "coordinator_state": states.get("coordinator_state", "unknown"),
                    "domain_state": states.get("domain_state", "unknown"),
                    "cluster_ip": layout.cluster_ip(node),
                    "pids": {r: state.ref(node, r).pid for r in roles},
                    "alive": {r: alive[f"{node}/{r}"] for r in roles},
                    "power": powers[node],
                    "bmc": f"{layout.bmc_address}:{layout.bmc_port(node)}",
                    "partitioned": node in state.partitions,
                }
            )
        return {
            "directory": str(self.directory),
            "exists": True,
            "up": any(alive.values()),
            "healthy": all(alive.values()),
            "primary_node": primary if node_states else "unknown",
            "zookeeper": layout.zookeeper_hosts,
            "zookeeper_auth_file": str(layout.zookeeper_auth_file),
            "nodes": nodes,
        }

    # -- down ---------------------------------------------------------------------------

    def down(self) -> bool:
        """Stop and remove the lab; returns False if there was nothing to remove."""
        state = self.state()
        if state is None:
            return False
        self._teardown(state)
        self._forget_connection(state.layout)
        return True

    def _teardown(self, state: LabState, keep_logs: bool = False) -> None:
        power.stop_bmcs(state.layout)  # first: no power hook may start anything meanwhile
        for node in state.layout.node_names:
            power.stop_power_on(state.layout, node)
        for role in reversed(ROLES):
            refs = [ref for key, ref in state.processes.items() if key.endswith(f"/{role}")]
            processes.terminate(refs, timeout=10.0)
        for name in state.namespaces:  # anything our daemons started and left behind in them
            for pid in netns.netns_pids(name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for link in state.links:
            if link != state.layout.bridge:
                netns.delete_link(link)
        for name in state.namespaces:
            netns.delete_netns(name)
        netns.delete_link(state.layout.bridge)
        state.layout.state_file.unlink(missing_ok=True)
        state.layout.api_key_file.unlink(missing_ok=True)  # the key dies with its lab
        state.layout.bmc_password_file.unlink(missing_ok=True)
        state.layout.database_auth_file.unlink(missing_ok=True)
        state.layout.lock_file.unlink(missing_ok=True)
        if not keep_logs:  # only what the lab created; the directory itself only if now empty
            # node files, guests' consoles and disks, the Ceph monitor's and manager's files, the CA
            for created in ("nodes", "serial", "disks", "ceph", "pki", "bmcs"):
                shutil.rmtree(self.directory / created, ignore_errors=True)
            state.layout.zookeeper_auth_file.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.directory.rmdir()

    def _remove_stray(self, layout: LabLayout) -> None:
        """Remove namespaces and links with this lab's exact names left by a lost lab."""
        full = LabLayout(
            layout.directory,
            nodes=9,
            coordinators=1,
            prefix=layout.prefix,
            net_index=layout.net_index,
        )
        power.stop_bmcs(layout)  # of a lab whose lab.json is lost
        for node in full.node_names:
            users = netns.netns_pids(full.netns(node))
            if users:
                raise LabError(
                    f"namespace {full.netns(node)} exists and is in use (pids "
                    f"{', '.join(map(str, users))}): another lab with prefix '{layout.prefix}' "
                    f"and net index {layout.net_index}? Stop it or choose another --net-index"
                )
            if netns.link_exists(full.host_link(node)):
                netns.delete_link(full.host_link(node))
            if netns.netns_exists(full.netns(node)):
                netns.delete_netns(full.netns(node))
        netns.delete_link(full.bridge)


class LabAlreadyUp(LabError):
    """``up`` found a lab with live processes in the same directory."""

    def __init__(self, state: LabState) -> None:
        alive = sum(state.alive().values())
        super().__init__(
            f"a lab is already up in {state.layout.directory} "
            f"({alive} of {len(state.processes)} processes alive); "
            "see 'pvc-lab status', or 'pvc-lab down' first"
        )
        self.state = state


def read_nodes(store: Store, names: list[str]) -> list[dict]:
    """Fresh daemon/coordinator/domain states of the named nodes."""
    return [
        {
            "name": name,
            "daemon_state": store.get_text(paths.node_daemon_state(name), "absent"),
            "coordinator_state": store.get_text(paths.node_coordinator_state(name), "absent"),
            "domain_state": store.get_text(paths.node_domain_state(name), "absent"),
        }
        for name in names
    ]
