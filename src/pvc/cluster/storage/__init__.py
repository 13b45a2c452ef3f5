"""Ceph storage as the domain sees it: access to the Ceph adapter, the mirror of Ceph in
ZooKeeper, read views in the v1 shapes, immediate changes, and the OSD, benchmark and
upload work."""
