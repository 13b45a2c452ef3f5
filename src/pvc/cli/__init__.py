"""``pvc``: the command-line client of the PVC HTTP API (v1-compatible command tree)."""
