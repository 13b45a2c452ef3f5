"""The provisioner's settings: how VMs it creates are defined, and how long scripts may run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pvc.config.base import _Section


class ProvisionerSection(_Section):
    """Settings of ``provisioner.create`` (read by the API, which hands them to the task)."""

    #: The domain type of VMs it defines: ``kvm`` (hardware virtualization) or ``qemu``
    #: (emulation, for nodes without usable KVM, such as the lab).
    domain_type: Literal["kvm", "qemu"] = "kvm"
    #: Seconds each install-script hook may run before it is killed.
    hook_timeout: float = Field(600.0, gt=0, le=24 * 3600)
