"""The one-machine lab cluster (``pvc-lab``)."""
