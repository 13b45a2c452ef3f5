"""The API's connection to the provisioner database.

Connections go to whichever Patroni member accepts writes (:mod:`pvc.db.members`);
the pool checks each connection before use, so after a failover the next call reaches
the new leader. Before its first use the schema is brought to the latest revision.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from pvc.config import NodeConfig
from pvc.db import migrate
from pvc.db.errors import DatabaseConflict, DatabaseRejected, DatabaseUnavailable
from pvc.db.members import leader_conninfo
from pvc.state.store import Store

log = logging.getLogger(__name__)


class Database:
    """Sessions on the provisioner database; ``conninfo`` says where it is now (None:
    nowhere yet)."""

    def __init__(self, conninfo: Callable[[], str | None], *, pool_size: int = 4) -> None:
        self._conninfo = conninfo
        self.engine: Engine = create_engine(
            "postgresql+psycopg://",
            creator=self._connect,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=300,
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._migrated = False
        self._lock = threading.Lock()

    @classmethod
    def of_cluster(cls, store: Store, config: NodeConfig, password: str) -> Database:
        """The provisioner database of the cluster whose Patroni members ``store`` shows."""
        settings = config.database

        def conninfo() -> str | None:
            return leader_conninfo(
                store,
                config.cluster.name,
                dbname=settings.name,
                user=settings.name,
                password=password,
                connect_timeout=settings.connect_timeout,
            )

        return cls(conninfo)

    def _connect(self) -> psycopg.Connection:
        info = self._conninfo()
        if info is None:
            raise DatabaseUnavailable("no database member has registered in ZooKeeper")
        try:
            return psycopg.connect(info)
        except psycopg.OperationalError as error:
            # libpq's detail names addresses and accounts: it goes to the log, not to clients
            log.warning("cannot connect to the database: %s", str(error).strip() or type(error).__name__)
            raise DatabaseUnavailable("no database member accepts connections now") from None

    def ensure_schema(self) -> None:
        """Bring the schema to the latest revision, once per process."""
        if self._migrated:
            return
        with self._lock:
            if not self._migrated:
                with _unavailable_as_error():
                    migrate.upgrade(self.engine)
                self._migrated = True

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction, committed when the block ends without error."""
        self.ensure_schema()
        with _unavailable_as_error(), self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def _unavailable_as_error() -> Iterator[None]:
    """Connection failures (also those SQLAlchemy wraps) as :class:`DatabaseUnavailable`, and
    constraint violations as :class:`DatabaseConflict`."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except IntegrityError as error:
        raise DatabaseConflict(_first_line(error)) from None
    except DataError as error:
        raise DatabaseRejected(_first_line(error)) from None
    except PoolTimeout:
        log.warning("every database connection of this process is busy")
        raise DatabaseUnavailable("the database is busy") from None
    except (OperationalError, DBAPIError) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        if isinstance(cause, DatabaseUnavailable):
            raise cause from None
        if isinstance(error, OperationalError) or getattr(error, "connection_invalidated", False):
            log.warning("the database connection failed: %s", cause)
            raise DatabaseUnavailable("the database connection failed") from None
        raise


def _first_line(error: DBAPIError) -> str:
    """The database's own one-line reason for refusing a statement."""
    text = str(error.orig).strip() if error.orig else ""
    return text.splitlines()[0] if text else type(error).__name__
