"""PostgreSQL under Patroni with the tests' ZooKeeper: two members on loopback addresses
of their own, started the way a coordinator starts its member (pvc.db.service)."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg.conninfo import make_conninfo

from pvc import processes
from pvc.config import parse_config
from pvc.db import members as db_members
from pvc.db.patroni import MemberFiles
from pvc.db.service import command, prepare
from tests.helpers import node_config_data, reachable_dir, wait_for
from tests.integration.postgres_fixtures import can_run_postgres

pytestmark = pytest.mark.skipif(not can_run_postgres(), reason="needs root and the postgres account")

NAMES = ("db1", "db2")
PASSWORDS = "superuser:su-secret\nreplication:repl-secret\nprovisioner:prov-secret\nrest:rest-secret\n"


class Member:
    def __init__(self, base: Path, name: str, index: int, zk_hosts: str) -> None:
        data = node_config_data(name, list(NAMES), zk_hosts, index=index, state_dir=str(base / name))
        data["networks"]["cluster"] = {"address": f"127.0.0.{20 + index}/8"}
        data["database"] = {"auth_file": str(base / "database.auth"), "port": 15432, "patroni_port": 18008}
        self.name = name
        self.address = f"127.0.0.{20 + index}"
        self.config = parse_config(data)
        (base / name).mkdir(mode=0o755)
        self.ref: processes.ProcessRef | None = None
        self.files: MemberFiles | None = None

    def start(self) -> None:
        self.files = prepare(self.config)
        log = Path(self.config.paths.state_dir) / "patroni.log"
        self.ref = processes.spawn(f"patroni-{self.name}", command(self.files), log)

    def log(self) -> str:
        path = Path(self.config.paths.state_dir) / "patroni.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        """Like a power loss: Patroni and PostgreSQL die at once."""
        assert self.ref is not None and self.files is not None
        os.killpg(self.ref.pid, signal.SIGKILL)
        pidfile = self.files.data_dir / "postmaster.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)

    def stop(self) -> None:
        if self.ref is not None:
            processes.terminate([self.ref], timeout=20)


@pytest.fixture
def cluster(zk_hosts: str) -> Iterator[dict[str, Member]]:
    with reachable_dir("pvc-patroni-") as base:
        auth = base / "database.auth"
        auth.write_text(PASSWORDS)
        auth.chmod(0o600)
        started = {name: Member(base, name, i, zk_hosts) for i, name in enumerate(NAMES, start=1)}
        try:
            for member in started.values():
                member.start()
            yield started
        finally:
            for member in started.values():
                member.stop()


def all_running(cluster: dict[str, Member]) -> bool:
    """True while every member's Patroni runs (a member that exits fails the test at once)."""
    for member in cluster.values():
        assert member.ref is not None and processes.is_alive(member.ref), (
            f"{member.name} exited:\n{member.log()}"
        )
    return True


def conninfo(store) -> str | None:
    return db_members.leader_conninfo(
        store, "test", dbname="pvcprov", user="pvcprov", password="prov-secret", connect_timeout=2
    )


def write(store, value: int) -> bool:
    info = conninfo(store)
    if info is None:
        return False
    try:
        with psycopg.connect(info, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS marks (value integer)")
            conn.execute("INSERT INTO marks VALUES (%s)", (value,))
        return True
    except psycopg.Error:
        return False


def test_a_leader_is_elected_and_replaced_when_its_member_dies(cluster, store):
    try:
        first = wait_for(
            lambda: all_running(cluster) and db_members.leader(store, "test"), timeout=90, interval=0.5
        )
        wait_for(lambda: write(store, 1), timeout=60, interval=0.5)
        # The other member streams from the leader: a hot standby that has the row.
        other = next(m for m in cluster.values() if m.name != first)
        replica = make_conninfo(
            host=other.address,
            port=15432,
            dbname="pvcprov",
            user="pvcprov",
            password="prov-secret",
            connect_timeout=2,
        )

        def replicated() -> bool:
            try:
                with psycopg.connect(replica) as conn:
                    return conn.execute("SELECT count(*) FROM marks").fetchone()[0] == 1
            except psycopg.Error:
                return False

        wait_for(replicated, timeout=60, interval=0.5)

        def roles() -> dict[str, str]:
            return {m.name: m.role for m in db_members.members(store, "test")}

        wait_for(lambda: roles() == {first: "primary", other.name: "replica"}, timeout=30, interval=0.5)
        # The leader's member is lost: the replica takes over, and writes go on.
        cluster[first].kill()
        lost = time.monotonic()
        wait_for(lambda: db_members.leader(store, "test") == other.name, timeout=60, interval=0.5)
        wait_for(lambda: write(store, 2), timeout=30, interval=0.5)
        print(f"writes again {time.monotonic() - lost:.1f} s after the leader was lost")
        with psycopg.connect(conninfo(store)) as conn:
            assert [row[0] for row in conn.execute("SELECT value FROM marks ORDER BY value")] == [1, 2]
    except AssertionError:
        for member in cluster.values():
            print(f"--- {member.name}\n{member.log()}")
        raise


def test_the_member_configuration_keeps_secrets_from_other_accounts(cluster):
    member = cluster["db1"]
    assert member.files is not None
    for path in (member.files.config_file, member.files.owner_password_file):
        info = path.stat()
        assert info.st_mode & 0o077 == 0 and info.st_uid == pwd.getpwnam("postgres").pw_uid
    settings = yaml.safe_load(member.files.config_file.read_text())
    assert settings["zookeeper"]["auth_data"]["digest"].count(":") == 1
    assert settings["postgresql"]["listen"] == "127.0.0.21:15432"
    assert all("trust" not in line for line in settings["postgresql"]["pg_hba"] if line.startswith("host"))
