"""A PostgreSQL instance of this node's own: made, started and stopped by PID.

The primary coordinator keeps the DNS aggregator's database in it. Its content is
derived from ZooKeeper, so no replication is needed: a new primary makes (or reuses) its
own instance and fills it again.

:class:`LocalPostgres` runs the server as the ``postgres`` account (through ``runuser``
when we are root) with PVC's settings in ``pvc.conf`` beside ``postgresql.conf``: it
listens only on the given addresses and port, has its unix socket in the given
directory, and trusts connections only over that socket and from 127.0.0.1 (nothing
else may log in at all). The server is started with ``pg_ctl -w`` and known afterwards
by the PID (and start time) in ``postmaster.pid``; it is stopped by signalling that
process (fast shutdown first).
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from pvc import commands, processes
from pvc.commands import CommandError
from pvc.db.account import (
    PG_BINDIR,
    PG_USER,
    PostgresError,
    account,
    as_user,
    check_reachable,
    own_directory,
    owner_name,
    write_owned,
)
from pvc.processes import ProcessRef

#: PVC's settings file in the data directory, included from ``postgresql.conf``.
SETTINGS_FILE = "pvc.conf"
INCLUDE_LINE = f"include_if_exists = '{SETTINGS_FILE}'"
#: Seconds initdb may take, and the default wait for a start or stop.
INITDB_TIMEOUT = 120.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
#: Settings that make a throwaway instance faster and lose data in a crash.
NO_DURABILITY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
#: Settings PVC writes itself; ``settings`` may not name them.
OWN_SETTINGS = ("listen_addresses", "port", "unix_socket_directories", "hba_file", "data_directory")
SETTING_NAME = re.compile(r"^[a-z][a-z0-9_.]*$")
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Characters refused in paths and setting values: pg_ctl passes paths to a shell inside
#: double quotes, the settings file quotes values with single quotes, and a comma would
#: split the socket directory setting in two.
UNSAFE_PATH = re.compile(r"[\"'`$\\,\x00-\x1f\x7f]")


def _safe_path(path: str | os.PathLike[str], what: str) -> Path:
    text = os.fspath(path)
    if not os.path.isabs(text) or UNSAFE_PATH.search(text):
        raise PostgresError(
            f"{what} {text!r} must be an absolute path without quotes, '$', '\\', ',' or control characters"
        )
    return Path(text)


def _setting_value(name: str, value: str) -> str:
    if not SETTING_NAME.match(name):
        raise PostgresError(f"invalid PostgreSQL setting name {name!r}")
    if name in OWN_SETTINGS:
        raise PostgresError(f"the PostgreSQL setting {name} is PVC's own")
    if UNSAFE_PATH.search(str(value)):
        raise PostgresError(f"invalid value for the PostgreSQL setting {name}: {value!r}")
    return f"{name} = '{value}'"


class LocalPostgres:
    """One PostgreSQL server: its data directory, unix socket directory, port and log.

    ``listen`` are the addresses it listens on (empty: the unix socket only); ``durable``
    False adds :data:`NO_DURABILITY` (tests); ``settings`` are further ``name: value``
    server settings. Nothing touches the disk until :meth:`init` or :meth:`start`.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        socket_dir: str | os.PathLike[str],
        port: int,
        log: str | os.PathLike[str],
        *,
        listen: Iterable[str] = ("127.0.0.1",),
        durable: bool = True,
        settings: Mapping[str, str] | None = None,
        user: str = PG_USER,
        bindir: str | os.PathLike[str] = PG_BINDIR,
    ) -> None:
        self.data_dir = _safe_path(data_dir, "data directory")
        self.socket_dir = _safe_path(socket_dir, "socket directory")
        self.log = _safe_path(log, "log file")
        self.bindir = _safe_path(bindir, "PostgreSQL program directory")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise PostgresError(f"invalid PostgreSQL port {port!r}")
        self.port = port
        try:
            self.listen = tuple(str(ipaddress.ip_address(address)) for address in listen)
        except ValueError as error:
            raise PostgresError(f"PostgreSQL listens on IP addresses only: {error}") from None
        self.durable = durable
        merged = {**({} if durable else NO_DURABILITY), **dict(settings or {})}
        self._setting_lines = [_setting_value(name, value) for name, value in merged.items()]
        self.user = user
        self.process: ProcessRef | None = None

    # --- the account and the directories -------------------------------------------------------

    def _prepare(self) -> None:
        own_directory(self.data_dir, "data directory", self.user)
        mode = stat.S_IMODE(self.data_dir.stat().st_mode)
        if mode & 0o027:
            raise PostgresError(f"the data directory {self.data_dir} has mode {mode:04o}: 0700 or 0750 only")
        own_directory(self.socket_dir, "socket directory", self.user)
        entry = account(self.user)
        if not self.log.parent.is_dir():
            raise PostgresError(f"the log file's directory {self.log.parent} does not exist")
        check_reachable(self.log, self.user)
        if not self.log.exists():
            self.log.touch(mode=0o640)
            os.chown(self.log, entry.pw_uid, entry.pw_gid)
        elif self.log.stat().st_uid != entry.pw_uid:
            raise PostgresError(
                f"the log file {self.log} is owned by {owner_name(self.log.stat().st_uid)}, not {self.user}"
            )

    # --- initdb and settings ------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """The major version of the programs in use (the name of ``bindir``'s parent)."""
        return self.bindir.parent.name

    def init(self) -> bool:
        """Make the data directory if it is empty; True if it was made, False if it was there.

        Refuses a directory that is neither empty nor a PostgreSQL data directory, one
        of another major version, and any that is not the account's.
        """
        self._prepare()
        marker = self.data_dir / "PG_VERSION"
        if marker.exists():
            found = marker.read_text().strip()
            if found != self.version:
                raise PostgresError(
                    f"{self.data_dir} holds PostgreSQL {found} data, these programs are {self.version}"
                )
            return False
        if any(self.data_dir.iterdir()):
            raise PostgresError(f"{self.data_dir} is neither empty nor a PostgreSQL data directory")
        argv = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", self.user, "-A", "trust"]
        argv += ["-E", "UTF8", "--locale=C.UTF-8", *([] if self.durable else ["--no-sync"])]
        self._run(argv, INITDB_TIMEOUT)
        return True

    def _write_settings(self) -> None:
        """PVC's settings file, the include line and the client authentication rules."""
        lines = [
            "# Written by PVC at every start; changes here are lost.",
            f"listen_addresses = '{','.join(self.listen)}'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.socket_dir}'",
            *self._setting_lines,
        ]
        write_owned(self.data_dir / SETTINGS_FILE, "\n".join(lines) + "\n", self.user)
        main = self.data_dir / "postgresql.conf"
        text = main.read_text()
        if INCLUDE_LINE not in text.splitlines():
            write_owned(main, text + ("" if text.endswith("\n") else "\n") + INCLUDE_LINE + "\n", self.user)
        hba = [
            "# Written by PVC at every start: the unix socket and 127.0.0.1 only.",
            "local all all trust",
            "host all all 127.0.0.1/32 trust",
        ]
        write_owned(self.data_dir / "pg_hba.conf", "\n".join(hba) + "\n", self.user)

    def _run(self, argv: list[str], timeout: float) -> None:
        try:
            commands.run(as_user(argv, self.user), timeout=timeout, cwd="/")
        except CommandError as error:
            raise PostgresError(f"{error}{self._log_tail()}") from None

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return " (log: " + " | ".join(text) + ")" if text else ""

    # --- the server process ------------------------------------------------------------------------

    def running(self) -> ProcessRef | None:
        """The server of this data directory if one runs (per ``postmaster.pid``), else None."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        started = processes.start_time_of(pid)
        if started is None:
            return None
        ref = ProcessRef(name="postgres", pid=pid, start_time=started, log=str(self.log))
        try:
            program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            return None
        if not processes.is_alive(ref) or not program.endswith((b"postgres", b"postmaster")):
            return None
        return ref

    def start(self, timeout: float = START_TIMEOUT) -> ProcessRef:
        """Make the instance if needed and start it (nothing if it already runs); its process."""
        self.init()
        self.process = self.running()
        if self.process is not None:
            return self.process
        self._write_settings()
        argv = [str(self.bindir / "pg_ctl"), "start", "-w", "-t", str(int(timeout))]
        self._run([*argv, "-D", str(self.data_dir), "-l", str(self.log)], timeout + 10)
        self.process = self.running()
        if self.process is None:
            raise PostgresError(
                f"PostgreSQL in {self.data_dir} is not running after pg_ctl start{self._log_tail()}"
            )
        return self.process

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop the server by its PID: fast shutdown, then immediate, then SIGKILL.

        True if a server was running. Fast shutdown ends the clients' sessions (PowerDNS
        reconnects later), rolls back their transactions and writes a checkpoint.
        """
        ref = self.running()
        self.process = None
        if ref is None:
            return False
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            processes.send(ref, sig)
            if not processes.wait_gone([ref], wait):
                return True
        raise PostgresError(f"PostgreSQL (PID {ref.pid}) did not stop")

    # --- databases ------------------------------------------------------------------------------------

    def conninfo(self, dbname: str) -> str:
        """A libpq connection string for ``dbname`` over the unix socket."""
        return psycopg.conninfo.make_conninfo(
            host=str(self.socket_dir), port=self.port, user=self.user, dbname=dbname
        )

    def connect(self, dbname: str, *, autocommit: bool = False) -> psycopg.Connection:
        """A psycopg connection to ``dbname`` over the unix socket."""
        try:
            return psycopg.connect(self.conninfo(dbname), autocommit=autocommit, connect_timeout=10)
        except psycopg.Error as error:
            raise PostgresError(f"cannot connect to database {dbname}: {error}") from None

    def ensure_database(self, name: str, schema_sql_path: str | os.PathLike[str]) -> bool:
        """Create database ``name`` if missing and load the schema into it if it has no tables.

        True if the schema was loaded now. The schema is loaded in one transaction, so a
        broken schema leaves an empty database (and a :class:`PostgresError`).
        """
        if not DATABASE_NAME.match(name):
            raise PostgresError(f"invalid database name {name!r}")
        schema = Path(schema_sql_path).read_text()
        try:
            with self.connect("postgres", autocommit=True) as admin:
                if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with self.connect(name) as connection:
                tables = connection.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                ).fetchone()
                if tables[0]:
                    return False
                connection.execute(schema.encode())
                return True
        except psycopg.Error as error:
            raise PostgresError(f"cannot prepare database {name}: {error}") from None
