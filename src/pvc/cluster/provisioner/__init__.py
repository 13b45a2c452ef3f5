"""The provisioner: templates, userdata, scripts, profiles and OVAs (in PostgreSQL), and the
task that creates a VM from a profile."""
