"""The libvirt/QEMU adapter: domain XML and domain lifecycle. Knows nothing of ZooKeeper."""
