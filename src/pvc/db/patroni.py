"""The Patroni member of a coordinator: its configuration, made from ``pvc.conf``.

Each coordinator runs one member. Patroni keeps one of them the leader (a read-write
PostgreSQL) and the others streaming replicas, with its leader key in ZooKeeper under
:data:`pvc.state.paths.PATRONI` (authenticated with the node's ZooKeeper credential). A
leader whose member dies loses its key with its ZooKeeper session; a replica that is
close enough takes over.

PostgreSQL listens on the node's cluster address and accepts, besides
its own account over a socket only that account can enter, password logins
(scram-sha-256) from the cluster network only: replication, and the provisioner's role.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

from pvc.config import NodeConfig, ZookeeperCredential
from pvc.config.credentials import DatabaseCredentials
from pvc.db.account import PG_BINDIR, PG_USER
from pvc.state import paths

SUPERUSER = PG_USER
REPLICATION_USER = "replicator"
REST_USER = "pvc"


@dataclass(frozen=True)
class MemberFiles:
    """Where a member keeps its files: Patroni's directory (config, password files, the
    PostgreSQL socket) and the data directory; both owned by the PostgreSQL account."""

    base: Path
    data_dir: Path

    @classmethod
    def of(cls, config: NodeConfig) -> MemberFiles:
        state = Path(config.paths.state_dir)
        return cls(state / "patroni", Path(config.database.data_dir or state / "postgresql"))

    @property
    def config_file(self) -> Path:
        return self.base / "patroni.yml"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def pgpass(self) -> Path:
        return self.base / "pgpass"

    @property
    def owner_password_file(self) -> Path:
        """The provisioner role's password, for the bootstrap script (see :mod:`pvc.db.bootstrap`)."""
        return self.base / "owner.password"


def zookeeper_hosts(config: NodeConfig) -> str:
    """The ensemble as Patroni's kazoo client takes it (with PVC's chroot, if any)."""
    return ",".join(config.zookeeper.hosts) + config.zookeeper.chroot


def patroni_config(
    config: NodeConfig,
    credentials: DatabaseCredentials,
    zookeeper: ZookeeperCredential | None,
    files: MemberFiles,
) -> dict:
    """Patroni's configuration for this node's member."""
    database = config.database
    address = str(config.networks.cluster.address.ip)
    network = str(config.networks.cluster.address.network)
    bootstrap_command = shlex.join(
        [sys.executable, "-m", "pvc.db.bootstrap", str(files.owner_password_file), database.name]
    )
    # on becoming (or starting as) the leader, the owner's password is set again from the
    # file: a changed password (or a first start that failed half-way) takes effect
    role_command = shlex.join(
        [
            sys.executable,
            "-m",
            "pvc.db.bootstrap",
            "--leader",
            str(files.owner_password_file),
            database.name,
            make_conninfo(host=str(files.socket_dir), port=database.port, user=SUPERUSER, dbname="postgres"),
        ]
    )
    zk: dict = {"hosts": zookeeper_hosts(config)}
    if zookeeper is not None:
        zk["auth_data"] = {"digest": f"{zookeeper.user}:{zookeeper.password}"}
    return {
        "scope": config.cluster.name,
        "namespace": paths.PATRONI + "/",
        "name": config.node.name,
        "restapi": {
            "listen": f"{address}:{database.patroni_port}",
            "connect_address": f"{address}:{database.patroni_port}",
            "authentication": {"username": REST_USER, "password": credentials.rest},
        },
        "zookeeper": zk,
        "bootstrap": {
            "dcs": {
                "ttl": database.ttl,
                "loop_wait": database.loop_wait,
                "retry_timeout": database.retry_timeout,
                "maximum_lag_on_failover": 16 * 2**20,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {
                        "wal_level": "replica",
                        "hot_standby": "on",
                        "wal_log_hints": "on",
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                        "password_encryption": "scram-sha-256",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            "post_bootstrap": bootstrap_command,
        },
        "postgresql": {
            "listen": f"{address}:{database.port}",
            "connect_address": f"{address}:{database.port}",
            "data_dir": str(files.data_dir),
            "bin_dir": str(PG_BINDIR),
            "pgpass": str(files.pgpass),
            # A new replica copies the leader at once, not after a spread checkpoint (minutes).
            "basebackup": [{"checkpoint": "fast"}],
            "authentication": {
                "superuser": {"username": SUPERUSER, "password": credentials.superuser},
                "replication": {"username": REPLICATION_USER, "password": credentials.replication},
                "rewind": {"username": SUPERUSER, "password": credentials.superuser},
            },
            "parameters": {"unix_socket_directories": str(files.socket_dir)},
            "callbacks": {"on_start": role_command, "on_role_change": role_command},
            "pg_hba": [
                # The socket directory is the PostgreSQL account's alone.
                "local all all trust",
                f"host replication {REPLICATION_USER} {network} scram-sha-256",
                f"host all {SUPERUSER} {network} scram-sha-256",
                f"host {database.name} {database.name} {network} scram-sha-256",
            ],
        },
    }
