"""The Ceph adapter: pools, RBD volumes and snapshots, OSDs and cluster status.

Everything here talks to Ceph through librados/librbd and monitor commands (JSON) and
knows nothing about ZooKeeper or PVC's own state. Import the submodule you need
(``pvc.storage.volumes``, ``pvc.storage.pools`` ...); a :class:`~pvc.storage.client.CephClient`
is the one handle they all take. Host devices and tools for OSDs (block devices, LVM,
``ceph-volume``) are in :mod:`~pvc.storage.devices`, :mod:`~pvc.storage.lvm` and
:mod:`~pvc.storage.ceph_volume`; every tool runs through :mod:`pvc.commands`.
"""
