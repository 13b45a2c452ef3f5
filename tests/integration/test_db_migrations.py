"""The provisioner's schema: Alembic revisions from an empty database and from the first
revision, and models that match the latest revision."""

from __future__ import annotations

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from pvc.db import migrate
from pvc.db.engine import Database
from pvc.db.errors import DatabaseUnavailable
from pvc.db.models import Base
from tests.integration.postgres_fixtures import database_conninfo


def test_an_empty_database_is_upgraded_to_the_latest_revision(provisioner_db: Database):
    assert migrate.current(provisioner_db.engine) is None
    assert migrate.upgrade(provisioner_db.engine) == migrate.head() == "0002"
    tables = set(inspect(provisioner_db.engine).get_table_names())
    assert {"system_template", "profile", "ova", "ova_volume", "alembic_version"} <= tables
    assert migrate.upgrade(provisioner_db.engine) == "0002"  # again: nothing to do


def test_the_first_revision_is_upgraded_keeping_its_rows(provisioner_db: Database):
    engine = provisioner_db.engine
    assert migrate.upgrade(engine, "0001") == "0001"
    with engine.begin() as connection:
        assert "ova" not in inspect(connection).get_table_names()
        connection.execute(
            text(
                "INSERT INTO system_template (name, vcpu_count, vram_mb, serial, vnc, node_autostart) "
                "VALUES ('small', 1, 512, true, false, false)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO profile (name, profile_type, system_template, arguments) "
                "SELECT 'p1', 'provisioner', id, '[]' FROM system_template"
            )
        )
    assert migrate.upgrade(engine) == "0002"
    with engine.connect() as connection:
        row = connection.execute(text("SELECT name, ova FROM profile")).one()
    assert tuple(row) == ("p1", None)


def test_the_models_match_the_latest_revision(provisioner_db: Database):
    migrate.upgrade(provisioner_db.engine)
    with provisioner_db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_a_session_migrates_first_and_commits(provisioner_db: Database, pg_server, db_name):
    from pvc.db.models import Userdata

    with provisioner_db.session() as session:
        session.add(Userdata(name="basic", userdata="#cloud-config\n"))
    other = create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(database_conninfo(pg_server, db_name))
    )
    with other.connect() as connection:
        assert connection.execute(text("SELECT name FROM userdata")).scalar_one() == "basic"
    other.dispose()


def test_no_database_member_is_a_clear_error(caplog):
    database = Database(lambda: None)
    try:
        with database.session():
            raise AssertionError("no session without a database")
    except DatabaseUnavailable as error:
        assert "no database member" in str(error)
    unreachable = Database(lambda: "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1")
    try:
        with unreachable.session():
            raise AssertionError("no session without a database")
    except DatabaseUnavailable as error:
        # clients get a generic reason; libpq's detail (addresses, accounts) is only logged
        assert "no database member accepts connections" in str(error)
        assert "127.0.0.1" not in str(error)
    assert any("127.0.0.1" in record.getMessage() for record in caplog.records)


def test_a_value_the_database_refuses_is_a_rejection_not_a_server_error(provisioner_db: Database):
    from pvc.cluster.errors import client_reply
    from pvc.db.errors import DatabaseRejected
    from pvc.db.models import SystemTemplate

    try:
        with provisioner_db.session() as session:
            session.add(SystemTemplate(name="huge", vcpu_count=2**40, vram_mb=1024))
        raise AssertionError("an out-of-range value was stored")
    except DatabaseRejected as error:
        assert client_reply(error)[0] == 400
        assert "out of range" in str(error)


def test_a_change_that_collides_with_another_is_a_conflict(provisioner_db: Database):
    from pvc.db.errors import DatabaseConflict
    from pvc.db.models import Userdata

    with provisioner_db.session() as session:
        session.add(Userdata(name="one", userdata="a"))
    try:
        with provisioner_db.session() as session:  # as if a check had passed before the first commit
            session.add(Userdata(name="one", userdata="b"))
        raise AssertionError("a second row of the same name was stored")
    except DatabaseConflict as error:
        assert "uq_userdata_name" in str(error)
    with provisioner_db.session() as session:
        assert [row.userdata for row in session.query(Userdata)] == ["a"]


def test_every_leader_sets_the_owners_password_from_the_file_again(pg_server, db_name, tmp_path):
    import psycopg

    from pvc.db import bootstrap

    superuser = pg_server.conninfo("postgres")

    def stored_secret() -> str:
        with psycopg.connect(superuser) as conn:
            query = "SELECT rolpassword FROM pg_authid WHERE rolname = %s"
            return conn.execute(query, (db_name,)).fetchone()[0]

    before = stored_secret()
    password_file = tmp_path / "owner"
    password_file.write_text("rotated\n")
    args = [str(password_file), db_name, superuser]
    # a replica's callback changes nothing
    assert bootstrap.main(["--leader", *args, "on_role_change", "replica", "pvc"]) == 0
    assert stored_secret() == before
    # the leader's sets the file's password
    assert bootstrap.main(["--leader", *args, "on_role_change", "primary", "pvc"]) == 0
    after = stored_secret()
    assert after != before and after.startswith("SCRAM-SHA-256$")
    assert bootstrap.main(["--leader", *args, "on_start"]) == 2  # malformed: refused
