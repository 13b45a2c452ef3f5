"""SR-IOV: each node's physical and virtual functions in the v1 API shape, which VMs use which
VF, the settings clients ask of a VF, and what a node daemon calls to report and apply them."""
