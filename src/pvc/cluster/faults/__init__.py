"""Faults: persistent problems that lower the cluster's health until acknowledged."""
