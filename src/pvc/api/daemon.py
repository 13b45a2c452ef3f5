"""``pvcapid``: the API daemon, served by gunicorn on the primary coordinator.

It starts as root, loads what needs root (see :mod:`pvc.api.privileges`), switches to
``api.user`` and only then serves; it warns at start when keys are not required or TLS
is off.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys

from gunicorn.app.base import BaseApplication

from pvc.api import privileges
from pvc.api.app import create_app
from pvc.api.context import ApiContext
from pvc.cluster import session
from pvc.cluster.network.rules import nft_rule_checker
from pvc.cluster.provisioner import session as provisioner_session
from pvc.cluster.storage.access import StorageAccess
from pvc.cluster.vm.xml_policy import node_policy, vm_rbd_auth
from pvc.config import NodeConfig, ZookeeperCredential, load_config
from pvc.config.credentials import database_access
from pvc.errors import ConfigError, PVCError

log = logging.getLogger("pvc.api")


def build_app(
    config: NodeConfig,
    credential: ZookeeperCredential | None,
    database: tuple[str | None, str] = (None, "the database is not configured"),
):
    """Connect to ZooKeeper (with ``credential``), load the cache and return the Flask app;
    ``database``: the provisioner role's password (reached through Patroni), or None and why not."""
    try:
        cluster = session.connect(
            config.zookeeper.connect_string,
            session_timeout=config.zookeeper.session_timeout,
            credential=credential,
        )
    except PVCError as error:
        raise SystemExit(f"pvcapid: {error}") from None
    floating = config.networks.upstream.floating_address
    password, problem = database
    context = ApiContext(
        database=provisioner_session.connect(cluster.store, config, password) if password else None,
        database_problem=problem,
        cluster=cluster,
        settings=config.api,
        cluster_name=config.cluster.name,
        upstream_ip=str(floating.ip) if floating else str(config.networks.upstream.address.ip),
        state_dir=config.paths.state_dir,
        vm_selector=config.hypervisor.target_selector,
        storage=StorageAccess(config.storage.for_api()),
        xml_policy=node_policy(config),
        provisioner=config.provisioner,
        backup=config.backup,
        vm_disk_auth=vm_rbd_auth(config.storage),
        network_rule_checker=nft_rule_checker,
        reserved_networks=tuple(
            net.address.network
            for net in (config.networks.upstream, config.networks.cluster, config.networks.storage)
        ),
    )
    return create_app(context)


class _Server(BaseApplication):
    def __init__(
        self,
        config: NodeConfig,
        credential: ZookeeperCredential | None,
        tls: ssl.SSLContext | None = None,
        database: tuple[str | None, str] = (None, "the database is not configured"),
    ) -> None:
        self.node_config = config
        self.credential = credential
        self.database = database
        self.tls = tls
        super().__init__()

    def load_config(self) -> None:
        api = self.node_config.api
        # One process (it holds the cache); api.limits.threads threads serve requests at once,
        # of which wait=true requests may hold only api.limits.max_waiting (see pvc.api.waiting).
        options = {
            "bind": f"{self.node_config.api_listen_address}:{api.listen.port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": api.limits.threads,
            "graceful_timeout": 5,
            "timeout": 120,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": f"pvcapid[{self.node_config.node.name}]",
            # the account pvcapid already runs as (gunicorn's default is the euid at its import)
            "user": os.getuid(),
            "group": os.getgid(),
            # no gunicornc control socket: nothing may manage the server besides its parent
            "control_socket_disable": True,
        }
        if self.tls is not None:  # loaded before giving up root: the key may stay root-only
            options["certfile"] = str(api.ssl.certificate)
            options["keyfile"] = str(api.ssl.private_key)
            options["ssl_context"] = lambda _conf, _default: self.tls
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        return build_app(self.node_config, self.credential, self.database)


def start_warnings(config: NodeConfig) -> list[str]:
    """What an operator must hear at start about an API left open."""
    api = config.api
    warnings = []
    if not api.authentication.enabled:
        warnings.append(
            "API authentication is DISABLED (api.authentication.enabled: false): anyone who "
            f"reaches {config.api_listen_address}:{api.listen.port} controls the cluster"
        )
    if not api.ssl.enabled:
        warnings.append(
            "TLS is off (api.ssl.enabled: false): API keys and session cookies cross the network "
            "in clear text"
        )
    return warnings


def main() -> int:
    """Load the configuration, give up root, serve; 2 with one line on a configuration error."""
    try:
        config = load_config()
        # read now, in the process that starts as root: the workers run with fewer rights
        credential = config.zookeeper.load_credential()
        database = database_access(config)
        tls = privileges.tls_context(config)
        became = privileges.become_unprivileged(config)
    except ConfigError as error:
        print(f"pvcapid: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("pvcapid %s", became)
    for warning in start_warnings(config):
        log.warning(warning)
    if database[0] is None:
        log.warning("the provisioner is unavailable: %s", database[1])
    _Server(config, credential, tls, database).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
