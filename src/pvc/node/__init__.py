"""The node daemon (pvcnoded)."""
