"""The domain library: the only thing the API calls to read and change the cluster."""
