"""Scheduled data protection: autobackup and automirror runs (tasks on the primary), their
e-mail reports, and what both share (the VMs a run covers)."""
