"""The node daemon's client-network reconciler.

Every node carries every network: its bridge ``vmbr<VNI>`` with a VXLAN (managed) or a
VLAN (bridged) port, and the managed networks' firewall. The primary also serves them:
the gateway addresses on the bridges, and one dnsmasq per managed network whose leases
go to ZooKeeper through the lease hook (:mod:`pvc.node.lease_hook`).

A pass reads the networks from the cache and makes the node match; passes run in the
manager's thread, woken by any change under ``/networks`` (and every
:data:`RESYNC_INTERVAL` seconds regardless, which also repairs what was changed by
hand). :meth:`NetManager.serve` is the primary phase's hook: it runs a pass at once, in
the caller's thread, with the primary-only services on or off.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pvc.cluster.session import Cluster
from pvc.config import NodeConfig, config_path
from pvc.errors import PVCError
from pvc.net import arp, links, nftables
from pvc.net.dnsmasq import DnsmasqError, DnsmasqInstance, DnsmasqNetwork, InstanceFiles
from pvc.net.frr import FrrService
from pvc.net.netspec import NodeNetParams
from pvc.node import net_links
from pvc.node.background import NodeFaults, PassThread
from pvc.node.dns_aggregator import DnsAggregator, network_dns
from pvc.node.net_bgp import frr_params
from pvc.node.net_inputs import Inputs, NetworkState, translate
from pvc.state import networks as network_state
from pvc.state import paths

log = logging.getLogger(__name__)

#: Seconds between passes when nothing changes (repairs hand-made changes). A pass over 200
#: networks costs about half a second of CPU, so this keeps an idle node's share low.
RESYNC_INTERVAL = 120.0
#: The fault a network that this node cannot carry or serve raises, per node and VNI
#: (``<node>:<vni>``; ``<node>:bgp`` and ``<node>:dns`` for the node's FRR and the DNS
#: aggregator).
NETWORK_FAULT = "network_failed"
DELTA_NETWORK_FAULT = 10
BGP_SUBJECT = "bgp"
#: dnsmasq instances started (or updated) at once on the primary.
DHCP_STARTS = 8
DNS_SUBJECT = "dns"


def node_params(config: NodeConfig) -> NodeNetParams:
    """What the adapters need to know of this node's configuration."""
    cluster = config.networks.cluster
    return NodeNetParams(
        bridge_device=config.networks.bridge_device or "",
        bridge_mtu=config.networks.bridge_mtu,
        vxlan_local=str(cluster.address.ip),
        vxlan_device=cluster.device or "",
    )


def write_hook(directory: Path) -> Path:
    """The script dnsmasq runs for its leases: this interpreter's lease hook, with the
    daemon's configuration file."""
    directory.mkdir(parents=True, exist_ok=True)
    hook = directory / "lease-hook"
    text = (
        "#!/bin/sh\n"
        f"PVC_CONFIG_FILE='{config_path()}' exec '{sys.executable}' -m pvc.node.lease_hook \"$@\"\n"
    )
    if not hook.exists() or hook.read_text() != text:
        temporary = hook.with_name(".lease-hook.new")
        temporary.write_text(text)
        temporary.chmod(0o755)
        temporary.replace(hook)
    return hook


def _placeholder(vni: int) -> DnsmasqNetwork:
    """Enough of a network to stop the dnsmasq a previous daemon left for ``vni``."""
    return DnsmasqNetwork(vni=vni, domain="stale.invalid", ip4_network="192.0.2.0/24", gateway4="192.0.2.1")


class NetManager:
    """Keeps this node's client networks as the cluster says (see the module docstring)."""

    def __init__(self, config: NodeConfig, cluster: Cluster | None) -> None:
        """``cluster`` None: only :meth:`serve` (False) and :meth:`drop_gateways`, the
        clean-up of a primary that is gone."""
        self.config = config
        self.cluster = cluster
        self.node = config.node.name
        self.params = node_params(config)
        self.directory = config.paths.state_dir / "networks"
        self._serving = False
        self._pass_lock = threading.Lock()
        self._thread = PassThread("net-manager", self._locked_pass, RESYNC_INTERVAL)
        self._faults = NodeFaults(cluster, self.node, NETWORK_FAULT, DELTA_NETWORK_FAULT)  # type: ignore[arg-type]
        self._dnsmasq: dict[int, DnsmasqInstance] = {}
        self._firewall_text: str | None = None
        self._started = False
        #: What changed since the last pass: anything (a full pass) or leases only (DNS).
        self._full_due = False
        self._dns_due = False
        self.frr: FrrService | None = None
        self.dns = DnsAggregator(config, self.directory / "dns")
        self.passes = 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the manager's thread (its first pass runs at once)."""
        if not nftables.bridged_traffic_filtered():
            log.warning(
                "bridge netfilter is off on this node: traffic between VMs of one network is not filtered"
            )
        self._started = True
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; links, firewall and services stay for the next daemon to adopt."""
        self._thread.stop()

    def on_change(self, path: str) -> None:
        """Cache listener: wake the thread for changes to networks and to nodes' static
        records (a coordinator's registration changes the BGP peers)."""
        network = path == paths.NETWORKS or path.startswith(paths.NETWORKS + "/")
        node_record = path.startswith(paths.NODES + "/") and path.count("/") == 2
        if network and network_state.is_lease_path(path):
            if self._serving:  # leases matter only to the primary's DNS: no full pass for them
                self._dns_due = True
                self._thread.wake()
            return
        if network or node_record:
            self._full_due = True
            self._thread.wake()

    def serve(self, serving: bool) -> None:
        """Turn the primary-only services on or off, and converge now (the primary phase).

        Before :meth:`start` (the daemon cleaning up after a crash, before its cache is
        loaded) it only stops the services a previous daemon left running; the first pass
        takes the gateways down.
        """
        with self._pass_lock:
            self._serving = serving
            if not self._started:
                if not serving:
                    self._stop_dhcp(set())
                    self._stop_dns({})
                return
            self._pass()

    # -- passes ------------------------------------------------------------------------

    def _locked_pass(self) -> None:
        """A full pass, or only the DNS records when leases alone changed since the last one
        (the periodic wake-up, with neither flag set, is a full pass)."""
        with self._pass_lock:
            dns_only = self._dns_due and not self._full_due
            self._dns_due = self._full_due = False
            if dns_only and self._serving:
                problems: dict[int | str, str] = {}
                self._serve_dns(self.read_states(), problems)
                if problems:
                    log.error("%s", problems[DNS_SUBJECT])
                return
            self._pass()

    def read_states(self) -> list[NetworkState]:
        """Every network with its reservations and ACLs, from the cache."""
        cache = self.cluster.cache
        return [
            NetworkState(
                network,
                tuple(network_state.read_reservations(cache, network.vni)),
                tuple(network_state.read_acls(cache, network.vni)),
            )
            for network in network_state.read_networks(cache)
        ]

    def _pass(self) -> None:
        self.passes += 1
        states = self.read_states()
        inputs = translate(states, bridged_ok=bool(self.params.bridge_device))
        problems: dict[int | str, str] = dict(inputs.problems)
        result = net_links.reconcile(inputs.links, self.params)
        for line in result.lines():
            log.info("%s", line)
        for applied in result.failed:
            vni = getattr(applied.action, "vni", None)
            if isinstance(vni, int):
                problems.setdefault(vni, str(applied))
        steps: list[tuple[str, Callable[[], None]]] = [
            ("firewall", lambda: self._apply_firewall(inputs, problems))
        ]
        if self._serving:
            steps += [
                ("gateways", lambda: self._serve_gateways(inputs, problems)),
                ("dhcp", lambda: self._serve_dhcp(inputs.dhcp, problems)),
                (DNS_SUBJECT, lambda: self._serve_dns(states, problems)),
            ]
        else:
            steps += [
                ("dhcp", lambda: self._stop_dhcp(set())),
                (DNS_SUBJECT, lambda: self._stop_dns(problems)),
                ("gateways", lambda: self._remove_gateways(inputs)),
            ]
        steps.append((BGP_SUBJECT, lambda: self._run_bgp(states, problems)))
        for name, step in steps:  # one failing step never keeps the others from running
            try:
                step()
            except Exception as error:
                log.exception("client networks: the %s step failed", name)
                problems.setdefault(name, f"client networks: the {name} step failed: {error}")
        self._report(problems)

    def _run_bgp(self, states: list[NetworkState], problems: dict[int | str, str]) -> None:
        """Start FRR, or bring it to the current peers and announcements."""
        if not self.config.networks.bgp.enabled:
            return
        try:
            params = frr_params(
                self.config,
                self.cluster.cache.nodes(),
                [state.network for state in states],
                serving=self._serving,
                directory=self.directory / "frr",
            )
            if self.frr is None:
                self.frr = FrrService(params)
                self.frr.start()
                log.info("FRR started (BGP EVPN, %d coordinators)", len(params.coordinators))
            elif not self.frr.is_running():
                self.frr.params = params
                self.frr.start()
                log.warning("FRR was not running; started it again")
            elif params != self.frr.params:
                log.info("FRR: %s", self.frr.reload(params))
        except PVCError as error:
            problems[BGP_SUBJECT] = f"BGP EVPN (FRR) is not running as configured: {error}"

    def _serve_dns(self, states: list[NetworkState], problems: dict[int | str, str]) -> None:
        cache = self.cluster.cache
        nameservers = self.dns.addresses
        try:
            published = [
                network_dns(
                    state.network,
                    state.reservations,
                    network_state.read_leases(cache, state.vni),
                    nameservers,
                )
                for state in states
                if state.managed and state.network.domain
            ]
            if not published and not self.dns.active:
                return  # nothing to serve: no database or PowerDNS until a network has a domain
            if not self.dns.active:
                self.dns.start()
                log.info("DNS aggregator up on %s", ", ".join(nameservers) or "127.0.0.1")
            self.dns.sync(published)
        except (PVCError, ValueError) as error:
            problems[DNS_SUBJECT] = f"DNS aggregator: {error}"

    def _stop_dns(self, problems: dict[int | str, str]) -> None:
        try:
            if self.dns.database_running() or self.dns.active:
                self.dns.stop()
                log.info("DNS aggregator stopped")
        except PVCError as error:
            problems[DNS_SUBJECT] = f"DNS aggregator did not stop: {error}"

    def _apply_firewall(self, inputs: Inputs, problems: dict[int | str, str]) -> None:
        text = nftables.render(inputs.firewall)
        if text == self._firewall_text:
            return
        try:
            if inputs.firewall.networks:
                nftables.apply(inputs.firewall)
            else:
                nftables.remove()
        except PVCError as error:
            log.error("firewall not applied (the previous rules stay): %s", error)
            for wall in inputs.firewall.networks:
                problems.setdefault(wall.vni, f"firewall not applied: {error}")
            return
        self._firewall_text = text
        log.info("firewall applied: %d networks", len(inputs.firewall.networks))

    # -- the primary's services --------------------------------------------------------

    def _gateway_map(self, inputs: Inputs) -> dict[str, set[str]]:
        wanted: dict[str, set[str]] = {}
        for vni, address in inputs.gateways:
            wanted.setdefault(f"vmbr{vni}", set()).add(str(ipaddress.ip_interface(address)))
        return wanted

    def _serve_gateways(self, inputs: Inputs, problems: dict[int | str, str]) -> None:
        wanted = self._gateway_map(inputs)
        with links.open_netlink() as ipr:
            present = links.addresses_on(ipr, wanted)
        for bridge, addresses in wanted.items():
            have = {str(ipaddress.ip_interface(a)) for a in present.get(bridge, set())}
            for address in sorted(addresses - have):
                vni = int(bridge.removeprefix("vmbr"))
                try:
                    links.add_bridge_address(vni, address)
                except PVCError as error:
                    problems.setdefault(vni, f"gateway {address}: {error}")
                    continue
                log.info("gateway %s up on %s", address, bridge)
                # Hosts behind other nodes only hear of the move through unicast announcements.
                arp.announce(bridge, address.split("/")[0], hosts=links.bridge_hosts(bridge))

    def _remove_gateways(self, inputs: Inputs) -> None:
        wanted = self._gateway_map(inputs)
        with links.open_netlink() as ipr:
            present = links.addresses_on(ipr, wanted)
        for bridge, addresses in wanted.items():
            have = {str(ipaddress.ip_interface(a)) for a in present.get(bridge, set())}
            for address in sorted(addresses & have):
                links.remove_bridge_address(int(bridge.removeprefix("vmbr")), address)
                log.info("gateway %s down on %s", address, bridge)

    def drop_gateways(self) -> list[str]:
        """Remove every address but link-local ones from this node's client-network bridges,
        whatever the cluster says (a primary that is gone); the addresses removed."""
        removed = []
        with links.open_netlink() as ipr:
            bridges = [link.name for link in links.observe(ipr) if link.owned and link.kind == "bridge"]
            present = links.addresses_on(ipr, bridges)
        for bridge, addresses in sorted(present.items()):
            for address in sorted(addresses):
                if ipaddress.ip_interface(address).ip.is_link_local:
                    continue
                links.remove_bridge_address(int(bridge.removeprefix("vmbr")), address)
                removed.append(f"{address} on {bridge}")
        return removed

    def _instance(self, network: DnsmasqNetwork) -> DnsmasqInstance:
        instance = self._dnsmasq.get(network.vni)
        if instance is None:
            hook = write_hook(self.directory)
            # dnsmasq drops to its unprivileged default account; its lease hook still runs as root.
            instance = DnsmasqInstance(network, self.directory / f"dnsmasq-{network.vni}", hook)
            self._dnsmasq[network.vni] = instance
        return instance

    def _serve_dhcp(self, wanted: dict[int, DnsmasqNetwork], problems: dict[int | str, str]) -> None:
        """Start or update the dnsmasq of each network in ``wanted`` (several at once: each
        start waits for its lease hook to hand back the network's leases), stop the rest."""
        self._stop_dhcp(set(wanted))
        instances = {vni: self._instance(network) for vni, network in wanted.items()}

        def serve(vni: int) -> str:
            instance, network = instances[vni], wanted[vni]
            if instance.running():
                return instance.update(network)
            instance.network = network
            instance.start()
            return "started"

        with ThreadPoolExecutor(max_workers=DHCP_STARTS, thread_name_prefix="dnsmasq") as pool:
            outcomes = {vni: pool.submit(serve, vni) for vni in sorted(wanted)}
        for vni, outcome in outcomes.items():
            try:
                done = outcome.result()
            except DnsmasqError as error:
                problems.setdefault(vni, str(error))
                continue
            if done != "unchanged":
                log.info("dnsmasq of network %d %s", vni, done)

    def _stop_dhcp(self, keep: set[int]) -> None:
        """Stop every dnsmasq but those of ``keep``, including ones a previous daemon left
        running (found by the pid files in their directories)."""
        if self.directory.is_dir():
            for path in self.directory.glob("dnsmasq-*"):
                vni = path.name.removeprefix("dnsmasq-")
                if not vni.isdigit() or int(vni) in self._dnsmasq or int(vni) in keep:
                    continue
                if InstanceFiles(path).pid.exists():
                    self._dnsmasq[int(vni)] = DnsmasqInstance(_placeholder(int(vni)), path, self.directory)
        for vni in sorted(set(self._dnsmasq) - keep):
            instance = self._dnsmasq.pop(vni)
            try:
                instance.stop()
            except DnsmasqError as error:
                log.error("%s", error)
                continue
            log.info("dnsmasq of network %d stopped", vni)

    # -- faults ------------------------------------------------------------------------

    def _report(self, problems: dict[int | str, str]) -> None:
        self._faults.publish(
            {
                subject: f"network {subject} on {self.node}: {message}"
                if isinstance(subject, int)
                else message
                for subject, message in problems.items()
            }
        )
