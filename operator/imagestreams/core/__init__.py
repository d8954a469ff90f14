"""Pure decisions: no I/O, no network, no Kubernetes or HTTP imports."""
