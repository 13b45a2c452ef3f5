"""A throwaway PostgreSQL for the tests (one per session) and a fresh provisioner database
per test, owned by its own role as the Patroni bootstrap makes it."""

from __future__ import annotations

import os
import pwd
import socket
import uuid
from collections.abc import Iterator

import pytest
from psycopg.conninfo import make_conninfo

from pvc.db.bootstrap import ensure_owner
from pvc.db.engine import Database
from pvc.net.postgres import LocalPostgres
from tests.helpers import reachable_dir


def can_run_postgres() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return os.geteuid() == 0


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    if not can_run_postgres():
        pytest.skip("needs root and the postgres account")
    with reachable_dir("pvc-pg-") as base:
        server = LocalPostgres(base / "data", base / "run", free_tcp_port(), base / "pg.log", durable=False)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def database_conninfo(server: LocalPostgres, name: str) -> str:
    return make_conninfo(host="127.0.0.1", port=server.port, dbname=name, user=name, password="secret")


@pytest.fixture
def db_name(pg_server: LocalPostgres) -> str:
    """A fresh, empty database and its owner role."""
    name = f"prov_{uuid.uuid4().hex[:10]}"
    ensure_owner(pg_server.conninfo("postgres"), name, "secret")
    return name


@pytest.fixture
def provisioner_db(pg_server: LocalPostgres, db_name: str) -> Iterator[Database]:
    database = Database(lambda: database_conninfo(pg_server, db_name))
    try:
        yield database
    finally:
        database.close()
