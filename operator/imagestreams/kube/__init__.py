"""Kubernetes adapters: the only place besides controller/ that talks to the API server."""
