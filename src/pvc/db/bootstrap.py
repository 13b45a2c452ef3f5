"""The provisioner's database and role, made by the first Patroni leader and kept by every one.

Patroni runs ``python -m pvc.db.bootstrap <password file> <name> <connection string>``
after it has initialised the cluster (``bootstrap.post_bootstrap``), as the PostgreSQL
account, with a superuser connection string. The role ``<name>`` (login, the password
from the file) gets a database of the same name, which it owns; the schema in it is the
API's to migrate (:mod:`pvc.db.migrate`). :func:`ensure_owner` is safe to run again: it
also sets the password anew, which every leader does as it starts or takes over
(``--leader``, Patroni's ``on_start``/``on_role_change`` callbacks, which append the
action, the role and the scope): a changed password file takes effect at the next leader
change or restart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import psycopg
from psycopg import sql

NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def ensure_owner(conninfo: str, name: str, password: str) -> list[str]:
    """Make (or update) the login role ``name`` and its database; what was done."""
    if not NAME.match(name):
        raise ValueError(f"invalid database name {name!r}")
    done = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        role = sql.Identifier(name)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password)))
        done.append(f"{verb.lower()}d role {name}")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8'").format(role, role))
            done.append(f"created database {name}")
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(role))
    return done


#: The roles Patroni gives a member that accepts writes.
LEADER_ROLES = ("primary", "master")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--leader"]:
        if len(argv) != 7:
            print(
                "usage: python -m pvc.db.bootstrap --leader PASSWORD_FILE NAME CONNINFO ACTION ROLE SCOPE",
                file=sys.stderr,
            )
            return 2
        if argv[5] not in LEADER_ROLES:
            return 0  # a replica has nothing to set (it follows the leader's catalog)
        argv = argv[1:4]
    if len(argv) != 3:
        print("usage: python -m pvc.db.bootstrap PASSWORD_FILE NAME CONNINFO", file=sys.stderr)
        return 2
    password_file, name, conninfo = argv
    try:
        password = Path(password_file).read_text().strip()
        if not password:
            raise ValueError(f"{password_file} is empty")
        for sentence in ensure_owner(conninfo, name, password):
            print(sentence)
    except (OSError, ValueError, psycopg.Error) as error:
        print(f"database bootstrap failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
