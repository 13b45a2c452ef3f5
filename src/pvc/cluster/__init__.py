"""The domain library: everything clients may ask of the cluster, and the task bodies that do it.

The API calls only this package. Each resource has a package with the same parts:
``queries`` (read views from the watched cache, in the PVC v1 shapes), ``actions``
(validated changes of desired state, which return once the cache shows them) and, where
work is long or must run on one node, task types (see :mod:`pvc.cluster.tasks`):

* :mod:`pvc.cluster.node`: nodes, their states and logs;
* :mod:`pvc.cluster.vm`: VMs, placement, migration, hot-plug and disk locks;
* :mod:`pvc.cluster.storage`: Ceph pools, volumes, snapshots, OSDs and the mirror of Ceph in ZooKeeper;
* :mod:`pvc.cluster.faults`: faults and health;
* :mod:`pvc.cluster.tasks`: what tasks may use on a node, every domain task type, task views.

Cluster-wide pieces: :mod:`~pvc.cluster.status` (the status document, maintenance mode),
:mod:`~pvc.cluster.metrics` (Prometheus metrics), :mod:`~pvc.cluster.backup` (backup,
restore, initialise), :mod:`~pvc.cluster.session` (the :class:`~pvc.cluster.session.Cluster`
handle every function takes) and :mod:`~pvc.cluster.errors` (errors and how they read to
a client).
"""
