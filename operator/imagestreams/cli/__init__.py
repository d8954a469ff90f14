"""The kubectl plugin `kubectl-imagestream`: OpenShift's `oc` image stream verbs for any cluster.

Pure formatting and decision modules (tabwriter, humanize, describe, tagging, importing, triggeredit, history,
events, jsonpath, gotemplate, convert, edits, flags) do no I/O; `kube` and `kubeconfig` talk to the API server and
the file system; `commands/<verb>.py` holds each verb (its flags, help and run function) and `app` finds the verb and
imports only its module, so `--help` loads argparse alone.
"""
