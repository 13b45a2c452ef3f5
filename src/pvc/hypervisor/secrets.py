"""libvirt secrets: the cephx key VMs' QEMU opens their RBD disks with.

A VM's RBD disk names a cephx user and a libvirt secret (``<auth username=...><secret
type='ceph' uuid=...>``); libvirt hands the secret's value to QEMU. Every node defines
the same secret (same uuid), so a VM starts and migrates anywhere. The secret is private:
libvirt never gives its value back through its API.
"""

from __future__ import annotations

import base64
from xml.sax.saxutils import escape

import libvirt

from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.errors import HypervisorError


def ceph_secret_xml(uuid: str, user: str) -> str:
    """The definition of the private, persistent ceph secret ``uuid`` for cephx ``user``."""
    return (
        "<secret ephemeral='no' private='yes'>"
        f"<uuid>{escape(uuid)}</uuid>"
        f"<description>cephx key of {escape(user)} for VM disks</description>"
        f"<usage type='ceph'><name>{escape(user)} key</name></usage>"
        "</secret>"
    )


def define_ceph_secret(hypervisor: Hypervisor, uuid: str, user: str, key: str) -> None:
    """Define (or update) secret ``uuid`` to hold ``user``'s cephx ``key`` (its base64 form)."""
    try:
        value = base64.b64decode(key, validate=True)
    except ValueError:
        raise HypervisorError(f"the cephx key of {user} is not base64") from None
    try:
        secret = hypervisor.conn.secretDefineXML(ceph_secret_xml(uuid, user), 0)
        secret.setValue(value, 0)
    except libvirt.libvirtError as error:
        raise HypervisorError(f"cannot define the ceph secret {uuid}: {error.get_error_message()}") from None


def has_ceph_secret(hypervisor: Hypervisor, uuid: str) -> bool:
    """True if libvirt has a ceph secret ``uuid`` (its value, private, cannot be read back)."""
    try:
        secret = hypervisor.conn.secretLookupByUUIDString(uuid)
        return secret.usageType() == libvirt.VIR_SECRET_USAGE_TYPE_CEPH
    except libvirt.libvirtError:
        return False
