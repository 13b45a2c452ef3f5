"""Alembic's environment: the connection comes from :func:`pvc.db.migrate.upgrade`."""

from alembic import context

from pvc.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
