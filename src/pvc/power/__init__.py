"""Power adapters: switching a node's chassis power off and on through its BMC (fencing)."""
