"""Starting this coordinator's Patroni member: ``python -m pvc.db.service``.

It reads ``pvc.conf`` (``PVC_CONFIG_FILE``), the database passwords and the ZooKeeper
credential (while it may: it starts as root), writes Patroni's configuration and the
bootstrap password file into a directory only the PostgreSQL account can enter, and then
becomes Patroni, run as that account. Patroni starts, promotes and stops PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import sys

import yaml

from pvc.config import NodeConfig, load_config
from pvc.config.credentials import read_database_credentials
from pvc.db.account import PostgresError, as_user, own_directory, write_owned
from pvc.db.patroni import MemberFiles, patroni_config
from pvc.errors import ConfigError

log = logging.getLogger("pvc.db.service")


def prepare(config: NodeConfig) -> MemberFiles:
    """Write the member's files; returns where they are."""
    credentials = read_database_credentials(config.database.auth_file)
    zookeeper = config.zookeeper.load_credential()
    files = MemberFiles.of(config)
    files.base.parent.mkdir(parents=True, exist_ok=True)
    files.data_dir.parent.mkdir(parents=True, exist_ok=True)
    own_directory(files.base, "Patroni directory")
    own_directory(files.socket_dir, "PostgreSQL socket directory")
    own_directory(files.data_dir, "PostgreSQL data directory")
    settings = patroni_config(config, credentials, zookeeper, files)
    write_owned(files.config_file, yaml.safe_dump(settings, sort_keys=False))
    write_owned(files.owner_password_file, credentials.provisioner + "\n")
    return files


def command(files: MemberFiles) -> list[str]:
    """Patroni on this member's configuration, run as the PostgreSQL account."""
    return as_user([sys.executable, "-m", "patroni", str(files.config_file)])


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config()
        if not config.is_coordinator or not config.database.enabled:
            log.error("this node runs no database member (not a coordinator, or database.enabled is off)")
            return 2
        files = prepare(config)
        argv = command(files)
    except (ConfigError, PostgresError) as error:
        log.error("%s", error)
        return 2
    os.chdir("/")
    os.execvp(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
