"""Jobs as build definitions: a Job's pod template is immutable, so a trigger on a Job starts a new
run from its template with the new images instead of changing it."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

SOURCE_JOB_LABEL = "imagestreams.dev/source-job"
IMAGES_ANNOTATION = "imagestreams.dev/images"
RUNS_TO_KEEP_ANNOTATION = "imagestreams.dev/runs-to-keep"
# Creation times have one-second resolution; runs started within a second still need an order.
STARTED_ANNOTATION = "imagestreams.dev/run-started"
DEFAULT_RUNS_TO_KEEP = 3
# Labels and selector the job controller generates for the source Job; a run gets its own.
GENERATED_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name")
MAX_NAME = 63


def run_name(source: str, images: Mapping[str, str]) -> str:
    """A name that depends only on the source Job and the images, so a repeat never starts a second run."""
    material = "\n".join(f"{container}={image}" for container, image in sorted(images.items()))
    suffix = hashlib.sha256(f"{source}\n{material}".encode()).hexdigest()[:10]
    return f"{source[: MAX_NAME - len(suffix) - 1].rstrip('-.')}-{suffix}"


def runs_to_keep(source: Mapping[str, Any]) -> int:
    """The source Job's imagestreams.dev/runs-to-keep annotation (1 to 100), else the default."""
    raw = ((source.get("metadata") or {}).get("annotations") or {}).get(RUNS_TO_KEEP_ANNOTATION)
    try:
        return min(100, max(1, int(raw))) if raw is not None else DEFAULT_RUNS_TO_KEEP
    except ValueError:
        return DEFAULT_RUNS_TO_KEEP


def run_manifest(
    source: Mapping[str, Any], images: Mapping[tuple[str, str], str], triggers_annotation: str, started: str
) -> dict[str, Any]:
    """A new Job from `source`'s template with `images` ((list, container) -> image) set.

    The run carries no trigger annotation (runs are not triggered themselves), is labelled and
    owned by the source Job, so deleting the source deletes its runs.
    """
    metadata = source.get("metadata") or {}
    name = metadata.get("name", "job")
    flat = {f"{listed}/{container}": image for (listed, container), image in images.items()}
    spec = copy.deepcopy(source.get("spec") or {})
    spec.pop("selector", None)
    spec.pop("manualSelector", None)
    template = spec.setdefault("template", {})
    template_metadata = template.setdefault("metadata", {})
    template_labels = {k: v for k, v in (template_metadata.get("labels") or {}).items() if k not in GENERATED_LABELS}
    template_labels[SOURCE_JOB_LABEL] = name
    template_metadata["labels"] = template_labels
    pod_spec = template.setdefault("spec", {})
    for (listed, container_name), image in images.items():
        for container in pod_spec.get(listed) or []:
            if container.get("name") == container_name:
                container["image"] = image
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k not in GENERATED_LABELS}
    labels[SOURCE_JOB_LABEL] = name
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != triggers_annotation}
    annotations.pop(RUNS_TO_KEEP_ANNOTATION, None)
    annotations[IMAGES_ANNOTATION] = ",".join(f"{key}={value}" for key, value in sorted(flat.items()))
    annotations[STARTED_ANNOTATION] = started
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": run_name(name, flat),
            "namespace": metadata.get("namespace"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "uid": metadata.get("uid"),
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": spec,
    }


def runs_beyond_limit(runs: Sequence[Mapping[str, Any]], keep: int) -> list[str]:
    """Names of the oldest runs past the newest `keep`, by start time (creation time for runs without it)."""

    def started(run: Mapping[str, Any]) -> str:
        metadata = run.get("metadata") or {}
        return str(
            (metadata.get("annotations") or {}).get(STARTED_ANNOTATION) or metadata.get("creationTimestamp") or ""
        )

    ordered = sorted(runs, key=lambda run: (started(run), run["metadata"]["name"]), reverse=True)
    return [run["metadata"]["name"] for run in ordered[keep:]]
