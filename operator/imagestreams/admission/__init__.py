"""The operator's admission webhooks: image lookup for workloads, and OpenShift's write-time rules for streams."""
