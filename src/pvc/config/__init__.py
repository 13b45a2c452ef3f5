"""The node configuration file (``/etc/pvc/pvc.conf``): schema, loading and validation.

Every node has one YAML file. It is validated at start; a bad or missing key raises
:class:`~pvc.errors.ConfigError` whose message is one line naming the key.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Literal, NamedTuple
from uuid import UUID

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from pvc.config.backup import BackupSection
from pvc.config.base import NodeName, _Section
from pvc.config.credentials import credential_lines, read_private_text
from pvc.config.database import DatabaseSection
from pvc.config.fencing import SELF_FENCE_STOP_ALLOWANCE, FencingSection
from pvc.config.networks import NetworkSection as NetworkSection
from pvc.config.networks import NetworksSection
from pvc.config.provisioner import ProvisionerSection
from pvc.domain_xml.policy import DEFAULT_FIRMWARE_DIRS, split_assignable
from pvc.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_CONFIG_FILE = "/etc/pvc/pvc.conf"
CONFIG_FILE_ENV = "PVC_CONFIG_FILE"

# Timing defaults (docs/fencing.md says why): a peer that stops for 5 s is declared dead,
# fenced one keepalive later, and a node cut off from ZooKeeper stops its VMs after 3 s.
DEFAULT_KEEPALIVE_INTERVAL = 1.0
DEFAULT_FENCE_INTERVALS = 5
DEFAULT_SUICIDE_INTERVALS = 3
DEFAULT_SESSION_TIMEOUT = 4.0
DEFAULT_ZOOKEEPER_PORT = 2181
DEFAULT_ZOOKEEPER_AUTH_FILE = "/etc/pvc/zookeeper.auth"
DEFAULT_API_PORT = 7370
#: The unprivileged account pvcapid runs as (scripts/setup.sh creates it).
DEFAULT_API_USER = "pvcapi"
#: Shortest API key accepted (characters).
MIN_API_KEY_LENGTH = 32
#: Seconds a login session lasts without being used (8 hours).
DEFAULT_SESSION_LIFETIME = 8 * 3600.0
#: Failed logins allowed per client address per minute.
DEFAULT_LOGIN_ATTEMPTS = 5
DEFAULT_LOG_LINES = 2000
DEFAULT_API_MAX_BODY = 16 * 1024 * 1024
DEFAULT_API_WAIT_TIMEOUT = 30.0
DEFAULT_API_THREADS = 128


class ClusterSection(_Section):
    name: str = "pvc"


class NodeSection(_Section):
    name: NodeName


class ZookeeperCredential(NamedTuple):
    """The digest user and password PVC's daemons authenticate to ZooKeeper with.

    A plain ``(user, password)`` pair for the state layer; its repr hides the password so
    that it never reaches a log.
    """

    user: str
    password: str

    def __repr__(self) -> str:
        return f"ZookeeperCredential(user={self.user!r}, password=<hidden>)"

    __str__ = __repr__


def read_credential_file(path: Path, key: str = "zookeeper.auth_file") -> ZookeeperCredential:
    """Read a ``user:password`` file; ConfigError (naming ``key``) if it is unsafe or unusable
    (see :func:`pvc.config.credentials.read_private_text`)."""
    text = read_private_text(
        path, key, "write one 'user:password' line to it (mode 0600), or set zookeeper.auth: none"
    )
    try:
        pairs = credential_lines(text)
    except ValueError:
        pairs = []
    if len(pairs) != 1:
        raise ConfigError(
            f"{key}: {path} must hold exactly one line 'user:password' "
            "(user: letters, digits, '_', '.', '-'; a non-empty password)"
        )
    return ZookeeperCredential(*pairs[0])


class ZookeeperSection(_Section):
    """How the daemons reach ZooKeeper.

    ``auth: digest`` (the default) makes every daemon authenticate with the credential
    in ``auth_file`` and restricts every znode PVC creates to that credential (see
    :func:`load_credential`); ``auth: none`` leaves the tree open to anyone who can reach
    the ensemble and is only logged as a warning.
    """

    hosts: list[str] = Field(min_length=1)
    # ZooKeeper grants at most 20 x tickTime (40 s with its default tickTime of 2 s).
    session_timeout: float = Field(DEFAULT_SESSION_TIMEOUT, ge=1, le=40)
    chroot: str = Field("", pattern=r"^(/[A-Za-z0-9_.-]+)*$")
    auth: Literal["digest", "none"] = "digest"
    auth_file: Path = Path(DEFAULT_ZOOKEEPER_AUTH_FILE)

    def load_credential(self) -> ZookeeperCredential | None:
        """The credential from ``auth_file``; None (with a warning) when ``auth`` is none.

        Read it at start, while the process may still read the file: pvcapid reads it
        before it serves (and before it gives up any privileges). ConfigError when the
        file is missing, readable by every user, or malformed.
        """
        if self.auth == "none":
            log.warning(
                "ZooKeeper authentication is off (zookeeper.auth: none): anyone who can "
                "reach the ensemble can read and change this cluster's state"
            )
            return None
        return read_credential_file(self.auth_file)

    @field_validator("hosts")
    @classmethod
    def _hosts_have_ports(cls, hosts: list[str]) -> list[str]:
        normalised = []
        for host in hosts:
            name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
            if not name:
                raise ValueError(f"'{host}' is not host[:port]")
            if port and not port.isdigit():
                raise ValueError(f"'{host}' has a non-numeric port")
            normalised.append(host if port else f"{host}:{DEFAULT_ZOOKEEPER_PORT}")
        return normalised

    @property
    def connect_string(self) -> str:
        """The kazoo host string (``h1:p1,h2:p2[/chroot]``)."""
        return ",".join(self.hosts) + self.chroot


class HypervisorSection(_Section):
    """The node's libvirt daemon; without a URI the node runs no VMs.

    ``peer_uri`` is how other nodes' libvirt daemons reach this one for migrations
    (default ``qemu+tls://<cluster address>/system``: x509 certificates on both ends);
    ``migration_address`` is where QEMU's migration stream arrives (default the cluster
    address), TLS-encrypted unless ``migration_tls`` is off.

    What VM definitions may use of the node: direct-boot kernels and (admin-only) raw
    file disks under ``image_dirs``; firmware under ``firmware_dirs``; the host devices
    in ``assignable_devices`` (PCI ``0000:01:00.0`` or USB ``vendor:product``), admin-only.
    The node writes each VM's serial console to ``console_log_dir/<name>.log`` (default
    ``<paths.log_dir>/console``; the same path on every node, as a migrating VM keeps it).
    """

    uri: str | None = None
    peer_uri: str | None = None
    migration_address: str | None = None
    migration_tls: bool = True
    shutdown_timeout: float = Field(180.0, gt=0, le=3600)
    target_selector: Literal["mem", "memprov", "vcpus", "load", "vms"] = "mem"
    console_log_lines: int = Field(1000, ge=10, le=100_000)
    console_log_dir: Path | None = None
    image_dirs: list[Path] = []
    firmware_dirs: list[Path] = [Path(path) for path in DEFAULT_FIRMWARE_DIRS]
    assignable_devices: list[str] = []

    @field_validator("image_dirs", "firmware_dirs", "console_log_dir")
    @classmethod
    def _absolute(cls, value: Path | list[Path] | None) -> Path | list[Path] | None:
        for path in value if isinstance(value, list) else [value] if value else []:
            if not path.is_absolute() or ".." in path.parts or path == Path("/"):
                raise ValueError(f"'{path}' must be an absolute directory path other than /")
        return value

    @field_validator("assignable_devices")
    @classmethod
    def _devices(cls, devices: list[str]) -> list[str]:
        split_assignable(devices)
        return [device.strip().lower() for device in devices]


CephUser = Annotated[str, Field(pattern=r"^client\.[A-Za-z0-9_.-]{1,64}$")]


class StorageSection(_Section):
    """How this node reaches the Ceph cluster (none: the node has no storage role).

    ``ceph_conf`` is the cluster's ceph.conf. With cephx each PVC role has its own user
    (see :mod:`pvc.storage.cephx`): ``ceph_user``/``ceph_keyring`` the node daemon's,
    ``api_user``/``api_keyring`` the API daemon's (default: the node daemon's), and
    ``vm_user`` the one VMs' QEMU opens their disks as; the node daemon puts its key (read
    from ``vm_keyring``) into the libvirt secret ``vm_secret_uuid``. The primary refreshes
    the cluster's figures into ZooKeeper every ``stats_interval`` seconds; every Ceph call
    gives up after ``command_timeout`` seconds.
    """

    ceph_conf: Path | None = None
    ceph_user: CephUser | None = None
    ceph_keyring: Path | None = None
    api_user: CephUser | None = None
    api_keyring: Path | None = None
    vm_user: CephUser | None = None
    vm_keyring: Path | None = None
    vm_secret_uuid: UUID | None = None
    stats_interval: float = Field(5.0, gt=0, le=300)
    command_timeout: float = Field(20.0, gt=0, le=600)

    @model_validator(mode="after")
    def _vm_key_complete(self) -> StorageSection:
        if self.vm_user and not (self.vm_keyring and self.vm_secret_uuid):
            raise ValueError("vm_user needs vm_keyring and vm_secret_uuid")
        if self.api_keyring and not self.api_user:
            raise ValueError("api_keyring needs api_user")
        return self

    def for_api(self) -> StorageSection:
        """The settings the API daemon reaches Ceph with: its own user when one is configured."""
        if not self.api_user:
            return self
        return self.model_copy(update={"ceph_user": self.api_user, "ceph_keyring": self.api_keyring})


class TimersSection(_Section):
    keepalive_interval: float = Field(DEFAULT_KEEPALIVE_INTERVAL, gt=0, le=60)
    fence_intervals: int = Field(DEFAULT_FENCE_INTERVALS, ge=2, le=100)
    #: Keepalive intervals without a write confirmed by ZooKeeper (while out of reach of
    #: most of its members) after which a node stops its own VMs; 0 turns self-fencing off.
    suicide_intervals: int = Field(DEFAULT_SUICIDE_INTERVALS, ge=0, le=100)

    @property
    def dead_after(self) -> float:
        """Seconds without a keepalive after which peers declare a node dead."""
        return self.keepalive_interval * self.fence_intervals

    @property
    def suicide_after(self) -> float:
        """Seconds cut off from ZooKeeper after which a node fences itself (0: never)."""
        return self.keepalive_interval * self.suicide_intervals


class PathsSection(_Section):
    state_dir: Path = Path("/var/lib/pvc")
    log_dir: Path = Path("/var/log/pvc")


class LoggingSection(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    zookeeper_lines: int = Field(DEFAULT_LOG_LINES, ge=10, le=100000)


class ApiListen(_Section):
    """Where pvcapid listens; without ``address``, on the upstream floating address
    (else the node's upstream address), see :attr:`NodeConfig.api_listen_address`."""

    address: str | None = None
    port: int = Field(DEFAULT_API_PORT, ge=1, le=65535)


class ApiSsl(_Section):
    enabled: bool = False
    certificate: Path | None = None
    private_key: Path | None = None

    @model_validator(mode="after")
    def _files_when_enabled(self) -> ApiSsl:
        if self.enabled and not (self.certificate and self.private_key):
            raise ValueError("certificate and private_key are required when ssl is enabled")
        return self


class ApiToken(_Section):
    description: str = ""
    token: str
    role: Literal["read-only", "operator", "admin"] = "admin"

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: str) -> str:
        if len(token) < MIN_API_KEY_LENGTH:
            raise ValueError(
                f"an API key must be at least {MIN_API_KEY_LENGTH} characters (e.g. `openssl rand -hex 24`)"
            )
        return token


class ApiAuthentication(_Section):
    """API keys are required unless ``enabled`` is explicitly false (which raises a fault).

    ``session_lifetime``: seconds a ``/login`` session lasts without use;
    ``login_attempts``: failed logins a client address may make per minute;
    ``protect_metrics``/``protect_openapi``: require a key for ``/metrics*``/``/openapi.json``.
    """

    enabled: bool = True
    source: Literal["token"] = "token"
    session_lifetime: float = Field(DEFAULT_SESSION_LIFETIME, ge=60, le=7 * 86400)
    login_attempts: int = Field(DEFAULT_LOGIN_ATTEMPTS, ge=1, le=1000)
    protect_metrics: bool = False
    protect_openapi: bool = False


class ApiLimits(_Section):
    """What one request may cost the API daemon.

    ``max_body``: bytes a request body may have (uploads are bounded by their volume
    instead); ``wait_timeout``: seconds a ``wait=true`` request is held before it is
    answered 202 (the change goes on); ``threads``: requests served at once, of which
    at most ``max_waiting`` may be held by ``wait=true``.
    """

    max_body: int = Field(DEFAULT_API_MAX_BODY, ge=64 * 1024, le=1024**3)
    wait_timeout: float = Field(DEFAULT_API_WAIT_TIMEOUT, gt=0, le=3600)
    threads: int = Field(DEFAULT_API_THREADS, ge=4, le=1024)
    max_waiting: int | None = Field(None, ge=0)

    @property
    def waiting_slots(self) -> int:
        """Requests that may wait at once: ``max_waiting``, or all threads but a quarter."""
        if self.max_waiting is not None:
            return self.max_waiting
        return self.threads - max(2, self.threads // 4)

    @model_validator(mode="after")
    def _threads_left_to_serve(self) -> ApiLimits:
        if self.waiting_slots > self.threads - 2:
            raise ValueError("max_waiting must leave at least 2 of the threads for other requests")
        return self


class ApiSection(_Section):
    """The API daemon: where it listens, TLS, keys, and the account it runs as.

    pvcapid starts as root, reads what it needs, then runs as ``user``/``group``;
    ``user: root`` is refused unless ``allow_root`` is true.
    """

    listen: ApiListen = ApiListen()
    limits: ApiLimits = ApiLimits()
    ssl: ApiSsl = ApiSsl()
    authentication: ApiAuthentication = ApiAuthentication()
    token: list[ApiToken] = []
    user: str = Field(DEFAULT_API_USER, min_length=1)
    group: str | None = None
    allow_root: bool = False

    def problem(self) -> tuple[str, str] | None:
        """(key, message) of what keeps pvcapid from starting with these settings, or None."""
        if self.authentication.enabled and not self.token:
            return (
                "api.token",
                "authentication is enabled (the default) but no API key is configured; "
                "add api.token entries or set api.authentication.enabled: false",
            )
        if self.user == "root" and not self.allow_root:
            return "api.user", "running the API as root needs api.allow_root: true"
        return None


class NodeConfig(_Section):
    """The whole node configuration file."""

    cluster: ClusterSection = ClusterSection()
    node: NodeSection
    coordinators: list[NodeName] = Field(min_length=1)
    zookeeper: ZookeeperSection
    networks: NetworksSection
    hypervisor: HypervisorSection = HypervisorSection()
    storage: StorageSection = StorageSection()
    timers: TimersSection = TimersSection()
    fencing: FencingSection = FencingSection()
    database: DatabaseSection = DatabaseSection()
    provisioner: ProvisionerSection = ProvisionerSection()
    backup: BackupSection = BackupSection()
    paths: PathsSection = PathsSection()
    logging: LoggingSection = LoggingSection()
    api: ApiSection = ApiSection()

    @property
    def peer_uri(self) -> str:
        """How other nodes' libvirt daemons reach this node's (for migrations)."""
        if self.hypervisor.peer_uri:
            return self.hypervisor.peer_uri
        return f"qemu+tls://{self.networks.cluster.address.ip}/system"

    @property
    def api_listen_address(self) -> str:
        """Where pvcapid binds: ``api.listen.address``, else the upstream floating address,
        else the node's upstream address (never all addresses unless configured)."""
        if self.api.listen.address:
            return self.api.listen.address
        upstream = self.networks.upstream
        return str((upstream.floating_address or upstream.address).ip)

    @property
    def console_log_dir(self) -> Path:
        """Where the node writes its VMs' serial consoles."""
        return self.hypervisor.console_log_dir or self.paths.log_dir / "console"

    @property
    def migration_uri(self) -> str:
        """Where QEMU migration streams to this node arrive."""
        return f"tcp://{self.hypervisor.migration_address or self.networks.cluster.address.ip}"

    @model_validator(mode="after")
    def _timing_invariants(self) -> NodeConfig:
        # A node may only be declared dead once its ZooKeeper session (and with it any
        # lock it held) has certainly expired.
        if self.timers.dead_after <= self.zookeeper.session_timeout:
            raise _KeyedError(
                "timers.fence_intervals",
                f"keepalive_interval × fence_intervals ({self.timers.dead_after:g} s) must "
                f"exceed zookeeper.session_timeout ({self.zookeeper.session_timeout:g} s)",
            )
        # A primary must confirm its role through the quorum several times per session
        # timeout (see pvc.node.election.PRIMARY_LEASE_FRACTION).
        if self.timers.keepalive_interval * 2 > self.zookeeper.session_timeout:
            raise _KeyedError(
                "zookeeper.session_timeout",
                f"must be at least twice timers.keepalive_interval ({self.timers.keepalive_interval:g} s)",
            )
        fencing_problem = self._fencing_problem()
        if fencing_problem is not None:
            raise _KeyedError(*fencing_problem)
        if len(set(self.coordinators)) != len(self.coordinators):
            raise _KeyedError("coordinators", "a coordinator is listed twice")
        api_problem = self.api.problem()
        if api_problem is not None:
            raise _KeyedError(*api_problem)
        return self

    @property
    def is_coordinator(self) -> bool:
        """True when this node is one of the coordinators."""
        return self.node.name in self.coordinators

    @property
    def zookeeper_member(self) -> str:
        """The entry of ``zookeeper.hosts`` that is this coordinator's own ZooKeeper server:
        the one whose host is the node's name (or a domain name starting with it) or one of
        its network addresses; "" on other nodes or when none matches."""
        if not self.is_coordinator:
            return ""
        own = {
            str(network.address.ip)
            for network in (self.networks.upstream, self.networks.cluster, self.networks.storage)
        }
        for host in self.zookeeper.hosts:
            name = host.rpartition(":")[0].strip("[]")
            if name in own or name.split(".")[0] == self.node.name:
                return host
        return ""

    @property
    def fence_after(self) -> float:
        """Seconds from a node's last keepalive to the earliest moment a peer may fence it
        (and so start its VMs elsewhere): declared dead, then the saving throws."""
        return self.timers.dead_after + self.fencing.saving_throws * self.timers.keepalive_interval

    def _fencing_problem(self) -> tuple[str, str] | None:
        """The fencing timings that would let a VM run on two nodes, as (key, message)."""
        timers = self.timers
        if timers.suicide_intervals == 0:
            if self.fencing.actions.failed_fence == "migrate":
                return (
                    "fencing.actions.failed_fence",
                    "migrate needs timers.suicide_intervals: a node that could not be fenced "
                    "may still run its VMs unless it stops them itself",
                )
            return None
        if timers.suicide_intervals < 2:
            return ("timers.suicide_intervals", "must be 0 (off) or at least 2")
        deadline = timers.suicide_after + SELF_FENCE_STOP_ALLOWANCE
        if deadline >= self.fence_after:
            return (
                "timers.suicide_intervals",
                f"a node cut off from ZooKeeper must have stopped its VMs (after "
                f"{timers.suicide_after:g} s + {SELF_FENCE_STOP_ALLOWANCE:g} s to stop them) before "
                f"a peer may fence it ({self.fence_after:g} s = keepalive_interval × "
                f"(fence_intervals + fencing.saving_throws)); lower suicide_intervals "
                f"or raise fence_intervals",
            )
        return None


class _KeyedError(ValueError):
    """A cross-field validation error that knows which key to blame."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def config_path() -> Path:
    """The configuration file path: ``$PVC_CONFIG_FILE`` or ``/etc/pvc/pvc.conf``."""
    return Path(os.environ.get(CONFIG_FILE_ENV) or DEFAULT_CONFIG_FILE)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    context = first.get("ctx") or {}
    keyed = context.get("error")
    if isinstance(keyed, _KeyedError):
        return f"{keyed.key}: {keyed.message}"
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "missing":
        message = "required key is missing"
    elif first["type"] == "extra_forbidden":
        message = "unknown key"
    message = message.removeprefix("Value error, ")
    return f"{key}: {message}"


def parse_config(data: object, source: str = "<config>") -> NodeConfig:
    """Validate already-parsed YAML data; raise ConfigError with one line on failure."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must contain a YAML mapping")
    try:
        return NodeConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_describe(error)}") from None


def load_config(path: Path | None = None) -> NodeConfig:
    """Read and validate the node configuration file."""
    path = path or config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read configuration file: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    return parse_config(data, str(path))
