"""Nodes: their v1 API shape, state requests (primary, flush, ready) and their logs."""
