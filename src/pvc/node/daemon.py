"""``pvcnoded``: the node daemon's entry point."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from pvc.config import load_config
from pvc.errors import ConfigError
from pvc.node.election import PRIMARY_LEASE_FRACTION
from pvc.node.logs import setup_stderr
from pvc.node.loop import NodeLoop
from pvc.node.primary_guard import LocalLease
from pvc.node.primary_services import primary_phases
from pvc.state.errors import StateError
from pvc.state.store import Store

EXIT_CONFIG = 2
EXIT_STATE = 3
#: The node cut itself off (self-fence): it stopped its VMs and its daemon.
EXIT_SELF_FENCED = 4


def main() -> int:
    """Load the configuration, connect to ZooKeeper and run the loop until SIGTERM."""
    try:
        config = load_config()
    except ConfigError as error:
        print(f"pvcnoded: {error}", file=sys.stderr)
        return EXIT_CONFIG

    log = setup_stderr(config.logging.level, config.node.name)
    try:
        credential = config.zookeeper.load_credential()
    except ConfigError as error:
        print(f"pvcnoded: {error}", file=sys.stderr)
        return EXIT_CONFIG
    stop = threading.Event()
    loop: NodeLoop | None = None

    def on_signal(_signum: int, _frame: object) -> None:
        # Only set flags here: logging could deadlock on a lock the interrupted code holds.
        stop.set()
        if loop is not None:
            loop.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    store = Store(
        config.zookeeper.connect_string,
        timeout=config.zookeeper.session_timeout,
        credential=credential,
    )
    log.info("connecting to ZooKeeper at %s", config.zookeeper.connect_string)

    def on_retry(attempt: int, delay: float) -> None:
        log.warning(
            "ZooKeeper at %s is unreachable (attempt %d); retrying in %.1f s",
            config.zookeeper.connect_string,
            attempt,
            delay,
        )

    if not store.start(attempt_timeout=2.0, should_stop=stop.is_set, on_retry=on_retry):
        log.info("stopped before ZooKeeper could be reached; nothing was written")
        store.stop()
        return 0

    # The primary's local lease runs out when the daemon steps down by itself.
    lease = LocalLease(config, config.zookeeper.session_timeout * PRIMARY_LEASE_FRACTION)
    loop = NodeLoop(config, store, phases=primary_phases(config, store, lease), local_lease=lease)
    try:
        loop.start()
    except StateError as error:
        log.error("cannot start: %s: %s", type(error).__name__, error)
        store.stop()
        return EXIT_STATE
    if stop.is_set():
        loop.request_stop()
    loop.run()
    log.info("stopped")
    logging.shutdown()
    return EXIT_SELF_FENCED if loop.fencing.self_fenced else 0


if __name__ == "__main__":
    sys.exit(main())
