"""Parallel Virtual Cluster: a hyperconverged KVM virtualization cluster."""

__version__ = "0.1.0"
