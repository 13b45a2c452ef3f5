"""The provisioner's settings: how VMs it creates are defined, how long scripts may run, and
where Debian installs may come from."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pvc.config.base import _Section

#: A Debian archive's address: http(s), no spaces or quotes (it is one argument of mmdebstrap).
MirrorURL = Annotated[
    str, Field(pattern=r"^https?://[A-Za-z0-9.\[\]:-]+(/[A-Za-z0-9._~%/+-]*)?$", max_length=200)
]


class ProvisionerSection(_Section):
    """Settings of ``provisioner.create`` (read by the API, which hands them to the task)."""

    #: The domain type of VMs it defines: ``kvm`` (hardware virtualization) or ``qemu``
    #: (emulation, for nodes without usable KVM, such as the lab).
    domain_type: Literal["kvm", "qemu"] = "kvm"
    #: Seconds each install-script hook may run before it is killed.
    hook_timeout: float = Field(600.0, gt=0, le=24 * 3600)
    #: Debian archives a ``debootstrap`` install may fetch from; the first is the default.
    #: The primary coordinator fetches from them, so only these addresses are reachable this way.
    debootstrap_mirrors: list[MirrorURL] = Field(default=["http://deb.debian.org/debian"], max_length=16)
    #: Seconds a Debian install (download, unpack, filesystem) may take.
    debootstrap_timeout: float = Field(1800.0, gt=0, le=24 * 3600)
    #: Where installs are staged on the primary: room for the system twice, and the disk's
    #: size as a sparse file.
    work_dir: str = Field("/var/tmp", pattern=r"^/")
