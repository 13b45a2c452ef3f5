"""``pvcapid``: the API daemon, served by gunicorn on the primary coordinator."""

from __future__ import annotations

import logging
import sys

from gunicorn.app.base import BaseApplication

from pvc.api.app import create_app
from pvc.api.context import ApiContext
from pvc.cluster import session
from pvc.cluster.storage.access import StorageAccess
from pvc.cluster.vm.xml_policy import node_policy
from pvc.config import NodeConfig, ZookeeperCredential, load_config
from pvc.errors import ConfigError, PVCError

log = logging.getLogger("pvc.api")


def build_app(config: NodeConfig, credential: ZookeeperCredential | None):
    """Connect to ZooKeeper (with ``credential``), load the cache and return the Flask app."""
    try:
        cluster = session.connect(
            config.zookeeper.connect_string,
            session_timeout=config.zookeeper.session_timeout,
            credential=credential,
        )
    except PVCError as error:
        raise SystemExit(f"pvcapid: {error}") from None
    floating = config.networks.upstream.floating_address
    context = ApiContext(
        cluster=cluster,
        settings=config.api,
        cluster_name=config.cluster.name,
        upstream_ip=str(floating.ip) if floating else str(config.networks.upstream.address.ip),
        state_dir=config.paths.state_dir,
        vm_selector=config.hypervisor.target_selector,
        storage=StorageAccess(config.storage.for_api()),
        xml_policy=node_policy(config),
    )
    return create_app(context)


class _Server(BaseApplication):
    def __init__(self, config: NodeConfig, credential: ZookeeperCredential | None) -> None:
        self.node_config = config
        self.credential = credential
        super().__init__()

    def load_config(self) -> None:
        api = self.node_config.api
        # One process (it holds the cache); api.limits.threads threads serve requests at once,
        # of which wait=true requests may hold only api.limits.max_waiting (see pvc.api.waiting).
        options = {
            "bind": f"{api.listen.address}:{api.listen.port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": api.limits.threads,
            "graceful_timeout": 5,
            "timeout": 120,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": f"pvcapid[{self.node_config.node.name}]",
        }
        if api.ssl.enabled:
            options["certfile"] = str(api.ssl.certificate)
            options["keyfile"] = str(api.ssl.private_key)
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        return build_app(self.node_config, self.credential)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config()
        # read now, in the process that starts as root: the workers may run with fewer rights
        credential = config.zookeeper.load_credential()
    except ConfigError as error:
        print(f"pvcapid: {error}", file=sys.stderr)
        return 2
    _Server(config, credential).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
