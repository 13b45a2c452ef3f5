"""The libvirt/QEMU adapter: domain lifecycle, migration, stats and events (domain XML itself is
:mod:`pvc.domain_xml`). Knows nothing of ZooKeeper."""
