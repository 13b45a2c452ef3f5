"""LocalPostgres refuses bad arguments and directories it must not use, before any server runs."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc.net.postgres import LocalPostgres, PostgresError
from tests.helpers import reachable_dir


def _postgres_account() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


ACCOUNT = _postgres_account()
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or ACCOUNT is None, reason="needs root and a postgres account"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "/s", 5432, "/l"), "must be an absolute path"),
        (('/d"; rm -rf /', "/s", 5432, "/l"), "must be an absolute path"),
        (("/d", "/s,/t", 5432, "/l"), "must be an absolute path"),
        (("/d", "/s", 5432, "/l\nx"), "must be an absolute path"),
        (("/d", "/s", 0, "/l"), "invalid PostgreSQL port"),
    ],
)
def test_bad_paths_and_ports_are_refused(args: tuple, message: str) -> None:
    with pytest.raises(PostgresError, match=message):
        LocalPostgres(*args)


def test_listen_addresses_must_be_ip_addresses() -> None:
    with pytest.raises(PostgresError, match="IP addresses only"):
        LocalPostgres("/d", "/s", 5432, "/l", listen=("*",))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"port": "5433"}, "PVC's own"),
        ({"listen_addresses": "*"}, "PVC's own"),
        ({"work_mem": "4MB'\nlisten_addresses='*"}, "invalid value"),
        ({"Bad Name": "1"}, "invalid PostgreSQL setting name"),
    ],
)
def test_settings_cannot_override_or_inject(settings: dict, message: str) -> None:
    with pytest.raises(PostgresError, match=message):
        LocalPostgres("/d", "/s", 5432, "/l", settings=settings)


@pytest.fixture
def base() -> Iterator[Path]:
    """A root-owned 0755 directory the postgres account can reach."""
    with reachable_dir("pvc-pgcheck-") as path:
        yield path


def _instance(base: Path, data: Path | None = None) -> LocalPostgres:
    return LocalPostgres(data or base / "data", base / "sock", 25999, base / "pg.log")


@needs_root
def test_data_directory_owned_by_someone_else_is_refused(base: Path) -> None:
    (base / "data").mkdir(mode=0o700)
    with pytest.raises(PostgresError, match=r"data directory .* is owned by root, not postgres"):
        _instance(base).init()


@needs_root
def test_data_directory_the_account_cannot_reach_is_refused(base: Path) -> None:
    hidden = base / "hidden"
    hidden.mkdir(mode=0o700)
    with pytest.raises(PostgresError, match=f"postgres cannot reach .*: no search permission on {hidden}"):
        _instance(base, hidden / "data").init()


@needs_root
def test_open_data_directory_is_refused(base: Path) -> None:
    data = base / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    os.chown(data, ACCOUNT.pw_uid, ACCOUNT.pw_gid)
    with pytest.raises(PostgresError, match="has mode 0755: 0700 or 0750 only"):
        _instance(base).init()


@needs_root
def test_non_empty_directory_that_is_no_data_directory_is_refused(base: Path) -> None:
    data = base / "data"
    data.mkdir(mode=0o700)
    os.chown(data, ACCOUNT.pw_uid, ACCOUNT.pw_gid)
    (data / "important.txt").write_text("not a database")
    with pytest.raises(PostgresError, match="neither empty nor a PostgreSQL data directory"):
        _instance(base).init()
    assert (data / "important.txt").read_text() == "not a database"


@needs_root
def test_data_of_another_major_version_is_refused(base: Path) -> None:
    data = base / "data"
    data.mkdir(mode=0o700)
    os.chown(data, ACCOUNT.pw_uid, ACCOUNT.pw_gid)
    (data / "PG_VERSION").write_text("13\n")
    with pytest.raises(PostgresError, match="holds PostgreSQL 13 data, these programs are 15"):
        _instance(base).init()


@needs_root
def test_missing_directories_are_made_for_the_account(base: Path) -> None:
    instance = _instance(base)
    (base / "data").mkdir(mode=0o700)
    os.chown(base / "data", ACCOUNT.pw_uid, ACCOUNT.pw_gid)
    (base / "data" / "PG_VERSION").write_text(instance.version + "\n")  # an existing instance: no initdb
    assert instance.init() is False
    for path in (base / "sock", base / "pg.log"):
        assert path.stat().st_uid == ACCOUNT.pw_uid
    assert (base / "sock").stat().st_mode & 0o777 == 0o700
    assert instance.running() is None
