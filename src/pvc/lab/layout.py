"""Names, addresses and paths of a lab cluster, derived from a few parameters.

Every lab resource (namespace, link, address, file) is named here, so ``up``, ``down``
and ``status`` agree on what the lab owns.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from pathlib import Path

#: First two octets of the lab's /24 subnets; the third octet is the lab's net index.
UPSTREAM_NET = "10.100"
CLUSTER_NET = "10.110"
STORAGE_NET = "10.120"
HOST_OCTET = 254
FLOATING_OCTET = 250
ZK_CLIENT_PORT = 2181
API_PORT = 7370
#: Seconds a lab node powered on through its BMC takes to start its services. A real server
#: takes minutes (firmware, OS); the lab's own delay keeps a rebooting node from competing
#: for the machine's CPUs with the VMs being recovered on the others, which real nodes,
#: each with their own CPUs, never do.
BOOT_SECONDS = 8.0
#: UDP port of node ``hvK``'s BMC in the lab with net index I: BMC_PORT_BASE + K + 10 * I.
BMC_PORT_BASE = 6230
BMC_PORTS_PER_LAB = 10


@dataclass(frozen=True)
class LabLayout:
    """A lab: ``nodes`` nodes of which the first ``coordinators`` are coordinators."""

    directory: Path
    nodes: int = 3
    coordinators: int = 3
    prefix: str = "pvc"
    net_index: int = 0
    keepalive_interval: float = 1.0
    fence_intervals: int = 5
    session_timeout: float = 4.0
    #: Seconds a VM gets to shut down cleanly before it is powered off.
    shutdown_timeout: float = 10.0
    #: Run Ceph (a monitor on every coordinator, a manager on the first, one OSD per node).
    ceph: bool = True
    #: Run the database (a Patroni member on every coordinator).
    database: bool = True
    #: Net indexes of other labs on this machine whose upstream network the nodes reach
    #: (through the host, which forwards between the bridges): a second cluster for mirrors.
    peers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= 9:
            raise ValueError("a lab has 1 to 9 nodes")
        if not 1 <= self.coordinators <= self.nodes:
            raise ValueError("coordinators must be between 1 and the number of nodes")
        if self.coordinators % 2 == 0:
            raise ValueError("coordinators must be an odd number (ZooKeeper quorum)")
        if not 0 <= self.net_index <= 255:
            raise ValueError("net_index must be 0-255")
        if not self.prefix.isalnum() or len(self.prefix) > 6:
            raise ValueError("prefix must be 1-6 letters or digits")
        if any(not 0 <= peer <= 255 or peer == self.net_index for peer in self.peers):
            raise ValueError("peer net indexes must be 0-255 and not the lab's own")

    # -- serialisation ------------------------------------------------------------------

    def to_json(self) -> dict:
        data = asdict(self)
        data["directory"] = str(self.directory)
        return data

    @classmethod
    def from_json(cls, data: dict) -> LabLayout:
        return cls(**{**data, "directory": Path(data["directory"]), "peers": tuple(data.get("peers", ()))})

    # -- nodes --------------------------------------------------------------------------

    @property
    def cluster_name(self) -> str:
        """The cluster's name in the nodes' configuration and certificates."""
        return f"lab{self.net_index}"

    @property
    def node_names(self) -> list[str]:
        return [f"hv{i}" for i in range(1, self.nodes + 1)]

    @property
    def coordinator_names(self) -> list[str]:
        return self.node_names[: self.coordinators]

    def index(self, node: str) -> int:
        return self.node_names.index(node) + 1

    # -- network ------------------------------------------------------------------------

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br{self.net_index}"

    def netns(self, node: str) -> str:
        return f"{self.prefix}{self.net_index}-{node}"

    def host_link(self, node: str) -> str:
        """Root-namespace end of the node's veth pair (enslaved to the bridge)."""
        return f"{self.prefix}{self.net_index}h{self.index(node)}"

    def node_link(self, node: str) -> str:
        """Node-namespace end of the node's veth pair."""
        return f"{self.prefix}{self.net_index}n{self.index(node)}"

    def _address(self, net: str, octet: int) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{net}.{self.net_index}.{octet}/24")

    def addresses(self, node: str) -> dict[str, ipaddress.IPv4Interface]:
        """The node's upstream, cluster and storage addresses."""
        i = self.index(node)
        return {
            "upstream": self._address(UPSTREAM_NET, i),
            "cluster": self._address(CLUSTER_NET, i),
            "storage": self._address(STORAGE_NET, i),
        }

    def floating(self, network: str) -> ipaddress.IPv4Interface:
        net = {"upstream": UPSTREAM_NET, "cluster": CLUSTER_NET, "storage": STORAGE_NET}[network]
        return self._address(net, FLOATING_OCTET)

    @property
    def host_addresses(self) -> list[ipaddress.IPv4Interface]:
        """Addresses the root namespace has on the bridge, to reach every node."""
        return [self._address(net, HOST_OCTET) for net in (UPSTREAM_NET, CLUSTER_NET, STORAGE_NET)]

    @property
    def peer_routes(self) -> list[tuple[str, str]]:
        """(network, gateway) routes every node takes to the peers' upstream networks: via
        the host's address on this lab's bridge."""
        gateway = str(self._address(UPSTREAM_NET, HOST_OCTET).ip)
        return [(f"{UPSTREAM_NET}.{peer}.0/24", gateway) for peer in self.peers]

    @property
    def peer_apis(self) -> list[str]:
        """The API URLs of the peer labs (on their upstream floating addresses)."""
        return [f"http://{UPSTREAM_NET}.{peer}.{FLOATING_OCTET}:{API_PORT}/api/v1" for peer in self.peers]

    def cluster_ip(self, node: str) -> str:
        return str(self.addresses(node)["cluster"].ip)

    @property
    def api_port(self) -> int:
        return API_PORT

    @property
    def bmc_address(self) -> str:
        """Where every node's simulated BMC listens: the root namespace's upstream address."""
        return str(self.host_addresses[0].ip)

    def bmc_port(self, node: str) -> int:
        """The UDP port of ``node``'s BMC (distinct for every node of every net index)."""
        return BMC_PORT_BASE + self.index(node) + BMC_PORTS_PER_LAB * self.net_index

    @property
    def zookeeper_hosts(self) -> list[str]:
        return [f"{self.cluster_ip(n)}:{ZK_CLIENT_PORT}" for n in self.coordinator_names]

    # -- files --------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.directory / "lab.json"

    @property
    def api_key_file(self) -> Path:
        """The lab's admin API key (mode 0600), made anew by every ``up``."""
        return self.directory / "api-key"

    @property
    def lock_file(self) -> Path:
        """Held (flock) around every read-modify-write of ``lab.json``."""
        return self.directory / "lab.lock"

    @property
    def bmc_dir(self) -> Path:
        """The simulated BMCs' files (:class:`pvc.lab.bmc.BmcSim`)."""
        return self.directory / "bmcs"

    @property
    def bmc_password_file(self) -> Path:
        """The password of every node's BMC (mode 0600), made anew by every ``up``."""
        return self.directory / "bmc-password"

    def power_on_file(self, node: str) -> Path:
        """The process starting ``node``'s services after a power on (while it runs)."""
        return self.node_dir(node) / "power-on.json"

    def node_dir(self, node: str) -> Path:
        return self.directory / "nodes" / node

    @property
    def zookeeper_auth_file(self) -> Path:
        """The ``user:password`` every lab daemon (and lab tool) authenticates to ZooKeeper with."""
        return self.directory / "zookeeper.auth"

    @property
    def database_auth_file(self) -> Path:
        """The database roles' passwords (``name:password`` lines, mode 0600)."""
        return self.directory / "database.auth"

    def config_file(self, node: str) -> Path:
        return self.node_dir(node) / "pvc.conf"

    def log_file(self, node: str, what: str) -> Path:
        return self.node_dir(node) / "log" / f"{what}.log"
