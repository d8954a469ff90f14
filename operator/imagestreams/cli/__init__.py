"""The kubectl plugin `kubectl-imagestream`: OpenShift's `oc` image stream verbs for any cluster.

Pure formatting and decision modules (tabwriter, humanize, describe, tagging,
importing, triggeredit, history) do no I/O; `kube` and `kubeconfig` talk to the
API server and the file system; `app` wires them to the command line. Heavy
modules are imported inside the command that needs them, so `--help` stays fast.
"""
