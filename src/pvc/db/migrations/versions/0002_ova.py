"""OVA appliances (their OVF and volumes), and profiles of type ova.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ova",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("ovf", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ova"),
        sa.UniqueConstraint("name", name="uq_ova_name"),
    )
    op.create_table(
        "ova_volume",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "ova",
            sa.Integer,
            sa.ForeignKey("ova.id", ondelete="CASCADE", name="fk_ova_volume_ova_ova"),
            nullable=False,
        ),
        sa.Column("pool", sa.String(128), nullable=False),
        sa.Column("volume_name", sa.String(255), nullable=False),
        sa.Column("volume_format", sa.String(16), nullable=False),
        sa.Column("disk_id", sa.String(16), nullable=False),
        sa.Column("disk_size_gb", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ova_volume"),
    )
    op.add_column(
        "profile",
        sa.Column("ova", sa.Integer, sa.ForeignKey("ova.id", ondelete="RESTRICT", name="fk_profile_ova_ova")),
    )


def downgrade() -> None:
    op.drop_column("profile", "ova")
    op.drop_table("ova_volume")
    op.drop_table("ova")
