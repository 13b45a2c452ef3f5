"""Alembic revisions of the provisioner's schema (run by :mod:`pvc.db.migrate`)."""
