"""Templates (system, network, storage), userdata, scripts and profiles.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _named(table: str, *columns: sa.Column) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint("name", name=f"uq_{table}_name"),
    )


def _reference(table: str, column: str, target: str, ondelete: str, nullable: bool = True) -> sa.Column:
    return sa.Column(
        column,
        sa.Integer,
        sa.ForeignKey(f"{target}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{target}"),
        nullable=nullable,
    )


def upgrade() -> None:
    _named(
        "system_template",
        sa.Column("vcpu_count", sa.Integer, nullable=False),
        sa.Column("vram_mb", sa.Integer, nullable=False),
        sa.Column("serial", sa.Boolean, nullable=False),
        sa.Column("vnc", sa.Boolean, nullable=False),
        sa.Column("vnc_bind", sa.String(255)),
        sa.Column("node_limit", sa.Text),
        sa.Column("node_selector", sa.String(32)),
        sa.Column("node_autostart", sa.Boolean, nullable=False),
        sa.Column("migration_method", sa.String(32)),
        sa.Column("migration_max_downtime", sa.Integer),
    )
    _named("network_template", sa.Column("mac_template", sa.String(64)))
    op.create_table(
        "network_template_net",
        sa.Column("id", sa.Integer, primary_key=True),
        _reference("network_template_net", "network_template", "network_template", "CASCADE", False),
        sa.Column("vni", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_network_template_net"),
    )
    _named("storage_template")
    op.create_table(
        "storage_template_disk",
        sa.Column("id", sa.Integer, primary_key=True),
        _reference("storage_template_disk", "storage_template", "storage_template", "CASCADE", False),
        sa.Column("disk_id", sa.String(16), nullable=False),
        sa.Column("pool", sa.String(128), nullable=False),
        sa.Column("source_volume", sa.String(128)),
        sa.Column("disk_size_gb", sa.Integer),
        sa.Column("filesystem", sa.String(16)),
        sa.Column("filesystem_args", sa.JSON, nullable=False),
        sa.Column("mountpoint", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="pk_storage_template_disk"),
    )
    _named("userdata", sa.Column("userdata", sa.Text, nullable=False))
    _named("script", sa.Column("script", sa.Text, nullable=False))
    _named(
        "profile",
        sa.Column("profile_type", sa.String(16), nullable=False),
        _reference("profile", "system_template", "system_template", "RESTRICT", False),
        _reference("profile", "network_template", "network_template", "RESTRICT"),
        _reference("profile", "storage_template", "storage_template", "RESTRICT"),
        _reference("profile", "userdata", "userdata", "RESTRICT"),
        _reference("profile", "script", "script", "RESTRICT"),
        sa.Column("arguments", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "profile",
        "script",
        "userdata",
        "storage_template_disk",
        "storage_template",
        "network_template_net",
        "network_template",
        "system_template",
    ):
        op.drop_table(table)
