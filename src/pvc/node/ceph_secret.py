"""The node's libvirt secret for VM disks: the ``vm`` cephx user's key, set at start."""

from __future__ import annotations

import logging

from pvc.config import StorageSection
from pvc.errors import PVCError
from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.secrets import define_ceph_secret
from pvc.storage.cephx import read_key

log = logging.getLogger("pvc.node")


def define_vm_secret(hypervisor: Hypervisor, settings: StorageSection) -> bool:
    """Put ``storage.vm_user``'s key into libvirt secret ``storage.vm_secret_uuid``.

    Returns False (and logs why) when it could not: VMs with RBD disks then fail to start
    with libvirt's message naming the missing secret. Nothing to do (True) without a
    ``vm_user``.
    """
    if not settings.vm_user or settings.vm_keyring is None or settings.vm_secret_uuid is None:
        return True
    try:
        key = read_key(settings.vm_keyring, settings.vm_user)
        define_ceph_secret(hypervisor, str(settings.vm_secret_uuid), settings.vm_user, key)
    except PVCError as error:
        log.error("cannot set the VM disks' ceph secret: %s", error)
        return False
    log.info("libvirt secret %s holds the key of %s", settings.vm_secret_uuid, settings.vm_user)
    return True
