"""The provisioner's tables (SQLAlchemy 2 declarative models).

The schema itself is made by the Alembic revisions in :mod:`pvc.db.migrations`; these
models must match the latest one (a test compares them).
"""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Constraint names that Alembic revisions can refer to.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
NAME_LENGTH = 128


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SystemTemplate(Base):
    __tablename__ = "system_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    vcpu_count: Mapped[int]
    vram_mb: Mapped[int]
    serial: Mapped[bool]
    vnc: Mapped[bool]
    vnc_bind: Mapped[str | None] = mapped_column(String(255))
    node_limit: Mapped[str | None] = mapped_column(Text)
    node_selector: Mapped[str | None] = mapped_column(String(32))
    node_autostart: Mapped[bool]
    migration_method: Mapped[str | None] = mapped_column(String(32))
    migration_max_downtime: Mapped[int | None]


class NetworkTemplate(Base):
    __tablename__ = "network_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    mac_template: Mapped[str | None] = mapped_column(String(64))
    networks: Mapped[list[NetworkTemplateNet]] = relationship(
        back_populates="template", cascade="all, delete-orphan", order_by="NetworkTemplateNet.id"
    )


class NetworkTemplateNet(Base):
    __tablename__ = "network_template_net"

    id: Mapped[int] = mapped_column(primary_key=True)
    network_template: Mapped[int] = mapped_column(ForeignKey("network_template.id", ondelete="CASCADE"))
    vni: Mapped[int]
    template: Mapped[NetworkTemplate] = relationship(back_populates="networks")


class StorageTemplate(Base):
    __tablename__ = "storage_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    disks: Mapped[list[StorageTemplateDisk]] = relationship(
        back_populates="template", cascade="all, delete-orphan", order_by="StorageTemplateDisk.disk_id"
    )


class StorageTemplateDisk(Base):
    __tablename__ = "storage_template_disk"

    id: Mapped[int] = mapped_column(primary_key=True)
    storage_template: Mapped[int] = mapped_column(ForeignKey("storage_template.id", ondelete="CASCADE"))
    disk_id: Mapped[str] = mapped_column(String(16))
    pool: Mapped[str] = mapped_column(String(NAME_LENGTH))
    source_volume: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    disk_size_gb: Mapped[int | None]
    filesystem: Mapped[str | None] = mapped_column(String(16))
    filesystem_args: Mapped[list[str]] = mapped_column(JSON, default=list)
    mountpoint: Mapped[str | None] = mapped_column(String(255))
    template: Mapped[StorageTemplate] = relationship(back_populates="disks")


class Userdata(Base):
    __tablename__ = "userdata"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    userdata: Mapped[str] = mapped_column(Text)


class Script(Base):
    __tablename__ = "script"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    script: Mapped[str] = mapped_column(Text)


class Ova(Base):
    __tablename__ = "ova"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    ovf: Mapped[str] = mapped_column(Text)
    volumes: Mapped[list[OvaVolume]] = relationship(
        back_populates="ova_record", cascade="all, delete-orphan", order_by="OvaVolume.disk_id"
    )


class OvaVolume(Base):
    __tablename__ = "ova_volume"

    id: Mapped[int] = mapped_column(primary_key=True)
    ova: Mapped[int] = mapped_column(ForeignKey("ova.id", ondelete="CASCADE"))
    pool: Mapped[str] = mapped_column(String(NAME_LENGTH))
    volume_name: Mapped[str] = mapped_column(String(255))
    volume_format: Mapped[str] = mapped_column(String(16))
    disk_id: Mapped[str] = mapped_column(String(16))
    disk_size_gb: Mapped[int]
    ova_record: Mapped[Ova] = relationship(back_populates="volumes")


def _kept(table: str) -> ForeignKey:
    """A profile's reference: what a profile uses cannot be deleted."""
    return ForeignKey(f"{table}.id", ondelete="RESTRICT")


class Profile(Base):
    __tablename__ = "profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    profile_type: Mapped[str] = mapped_column(String(16))
    system_template: Mapped[int] = mapped_column(_kept("system_template"))
    network_template: Mapped[int | None] = mapped_column(_kept("network_template"))
    storage_template: Mapped[int | None] = mapped_column(_kept("storage_template"))
    userdata: Mapped[int | None] = mapped_column(_kept("userdata"))
    script: Mapped[int | None] = mapped_column(_kept("script"))
    ova: Mapped[int | None] = mapped_column(_kept("ova"))
    arguments: Mapped[list[str]] = mapped_column(JSON, default=list)
