"""Reasons of the Events the operator posts about workloads that carry image change triggers."""

from __future__ import annotations

# The image.openshift.io/triggers annotation as a whole cannot be used (OpenShift refuses it too: bad JSON, a wrong
# JSON type, duplicate fieldPaths), a resolved trigger names no container, or a workload write was refused.
INVALID_IMAGE_TRIGGER = "InvalidImageTrigger"
# Entries OpenShift skips without a word (another kind, a name without a tag, another kind's fieldPath...), and a
# trigger overridden by a later one on the same container: the other triggers still apply.
IGNORED_IMAGE_TRIGGER = "IgnoredImageTrigger"
