"""The relational database: PostgreSQL under Patroni on the coordinators, the provisioner's
schema (SQLAlchemy models, Alembic migrations) and the API's connection to the leader."""
