"""The database settings: PostgreSQL under Patroni on the coordinators.

Every coordinator runs a Patroni member (see :mod:`pvc.db.patroni`); Patroni keeps one of
them the leader (read-write) through ZooKeeper, and the API reaches whichever it is.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from pvc.config.base import _Section

DEFAULT_DATABASE_PORT = 5432
DEFAULT_PATRONI_PORT = 8008
DEFAULT_DATABASE_AUTH_FILE = "/etc/pvc/database.auth"
#: The provisioner's database and the role that owns it.
DEFAULT_DATABASE_NAME = "pvcprov"


class DatabaseSection(_Section):
    """PostgreSQL and Patroni on this coordinator (hypervisors only read ``port``)."""

    #: Off: no Patroni member here, and the API answers provisioner calls with 503.
    enabled: bool = True
    port: int = Field(DEFAULT_DATABASE_PORT, ge=1, le=65535)
    #: Patroni's REST API (health and leader checks), on the cluster address.
    patroni_port: int = Field(DEFAULT_PATRONI_PORT, ge=1, le=65535)
    name: str = Field(DEFAULT_DATABASE_NAME, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    #: PostgreSQL's data directory; ``<state_dir>/postgresql`` when unset.
    data_dir: Path | None = None
    #: ``name:password`` lines for superuser, replication, provisioner and rest.
    auth_file: Path = Path(DEFAULT_DATABASE_AUTH_FILE)
    #: Seconds the API waits for a connection to a member.
    connect_timeout: int = Field(3, ge=1, le=60)
    #: Patroni's leader lease (its ZooKeeper session; the ensemble may grant less), its loop
    #: period, and how long it retries ZooKeeper and PostgreSQL calls.
    ttl: int = Field(20, ge=20, le=300)
    loop_wait: int = Field(2, ge=1, le=60)
    retry_timeout: int = Field(5, ge=3, le=60)
