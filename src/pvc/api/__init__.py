"""The PVC v1 HTTP API (pvcapid)."""
