"""``python -m pvc.metadata.daemon``: the metadata service, started by the primary.

It starts as root to read the credentials and bind 169.254.169.254:80, gives up root for
the API's account (``api.user``) and serves with gunicorn on the socket it bound. VMs are
untrusted clients: nothing they send runs with privileges.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

from gunicorn.app.base import BaseApplication

from pvc import accounts
from pvc.cluster import session
from pvc.cluster.provisioner import session as provisioner_session
from pvc.config import NodeConfig, ZookeeperCredential, load_config
from pvc.config.credentials import database_access
from pvc.errors import ConfigError, PVCError
from pvc.metadata import METADATA_ADDRESS, METADATA_PORT
from pvc.metadata.app import create_metadata_app

log = logging.getLogger("pvc.metadata")


def bind(address: str = METADATA_ADDRESS, port: int = METADATA_PORT) -> socket.socket:
    """The listening socket (bound while still root: port 80 is privileged)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(128)
    listener.set_inheritable(True)
    return listener


class _Server(BaseApplication):
    def __init__(
        self, config: NodeConfig, credential: ZookeeperCredential | None, password: str | None, fd: int
    ) -> None:
        self.node_config = config
        self.credential = credential
        self.password = password
        self.fd = fd
        super().__init__()

    def load_config(self) -> None:
        options = {
            "bind": f"fd://{self.fd}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": 8,
            "timeout": 30,
            "graceful_timeout": 5,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": f"pvc-metadata[{self.node_config.node.name}]",
            # the account it already runs as (gunicorn's default is the euid at its import)
            "user": os.getuid(),
            "group": os.getgid(),
            # no gunicornc control socket: nothing may manage the server besides its parent
            "control_socket_disable": True,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        config = self.node_config
        try:
            cluster = session.connect(
                config.zookeeper.connect_string,
                session_timeout=config.zookeeper.session_timeout,
                credential=self.credential,
            )
        except PVCError as error:
            raise SystemExit(f"pvc-metadata: {error}") from None
        database = None
        if self.password:
            database = provisioner_session.connect(cluster.store, config, self.password)
        return create_metadata_app(cluster, database, database_off=not config.database.enabled)


def main() -> int:
    """Read the credentials and bind as root, give up root, serve; 2 on a configuration error."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config()
        credential = config.zookeeper.load_credential()
        password, problem = database_access(config)
        listener = bind()
        if os.geteuid() == 0:
            account = accounts.resolve_account(config.api.user, config.api.group, key="api")
            if account.uid == 0 and not config.api.allow_root:
                raise ConfigError("api.user: the metadata service runs as the API's account, which is root")
            if account.uid != 0:
                accounts.drop_to(account, "pvc-metadata")
    except (ConfigError, OSError) as error:
        print(f"pvc-metadata: {error}", file=sys.stderr)
        return 2
    log.info("serving VM metadata on %s:%d as uid %d", METADATA_ADDRESS, METADATA_PORT, os.getuid())
    if password is None:
        log.warning("user-data is unavailable: %s", problem)
    _Server(config, credential, password, listener.fileno()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
