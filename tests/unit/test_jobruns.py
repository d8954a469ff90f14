"""Job runs: deterministic names, a clean copy of the template, and bounded history."""

from __future__ import annotations

from typing import Any

from imagestreams.core.jobruns import (
    IMAGES_ANNOTATION,
    SOURCE_JOB_LABEL,
    run_manifest,
    run_name,
    runs_beyond_limit,
    runs_to_keep,
)

TRIGGERS = "image.openshift.io/triggers"

SOURCE: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {
        "name": "migrate",
        "namespace": "team",
        "uid": "1234",
        "labels": {"app": "db", "controller-uid": "1234", "job-name": "migrate"},
        "annotations": {TRIGGERS: "[...]", "imagestreams.dev/runs-to-keep": "2", "note": "kept"},
    },
    "spec": {
        "backoffLimit": 2,
        "selector": {"matchLabels": {"controller-uid": "1234"}},
        "manualSelector": False,
        "template": {
            "metadata": {"labels": {"app": "db", "controller-uid": "1234", "batch.kubernetes.io/job-name": "migrate"}},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "wait", "image": "busybox"}],
                "containers": [{"name": "migrate", "image": "old"}, {"name": "side", "image": "side:1"}],
            },
        },
    },
}


def test_run_name_is_deterministic_and_depends_on_images() -> None:
    a = run_name("migrate", {"containers/migrate": "r@sha256:1"})
    assert a == run_name("migrate", {"containers/migrate": "r@sha256:1"})
    assert a != run_name("migrate", {"containers/migrate": "r@sha256:2"})
    assert a.startswith("migrate-")
    long = run_name("x" * 80, {"c": "i"})
    assert len(long) <= 63
    assert not long.split("-")[0].endswith(("-", "."))


def test_run_manifest_copies_the_template_with_new_images_only() -> None:
    run = run_manifest(SOURCE, {("containers", "migrate"): "new@sha256:9"}, TRIGGERS, "2026-11-26T10:00:00.000001Z")
    pod = run["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["containers"]] == ["new@sha256:9", "side:1"]
    assert pod["initContainers"] == [{"name": "wait", "image": "busybox"}]
    assert "selector" not in run["spec"]
    assert "manualSelector" not in run["spec"]
    assert run["spec"]["backoffLimit"] == 2
    assert run["spec"]["template"]["metadata"]["labels"] == {"app": "db", SOURCE_JOB_LABEL: "migrate"}
    metadata = run["metadata"]
    assert metadata["labels"] == {"app": "db", SOURCE_JOB_LABEL: "migrate"}
    assert TRIGGERS not in metadata["annotations"]  # runs are not triggered themselves
    assert metadata["annotations"]["note"] == "kept"
    assert metadata["annotations"][IMAGES_ANNOTATION] == "containers/migrate=new@sha256:9"
    assert metadata["ownerReferences"][0]["uid"] == "1234"
    assert metadata["name"] == run_name("migrate", {"containers/migrate": "new@sha256:9"})
    # The source is not modified.
    assert SOURCE["spec"]["template"]["spec"]["containers"][0]["image"] == "old"


def test_runs_to_keep_reads_the_annotation_within_bounds() -> None:
    assert runs_to_keep(SOURCE) == 2
    assert runs_to_keep({"metadata": {}}) == 3
    assert runs_to_keep({"metadata": {"annotations": {"imagestreams.dev/runs-to-keep": "0"}}}) == 1
    assert runs_to_keep({"metadata": {"annotations": {"imagestreams.dev/runs-to-keep": "many"}}}) == 3


def test_oldest_runs_beyond_the_limit_are_pruned() -> None:
    runs = [
        {"metadata": {"name": n, "creationTimestamp": t}}
        for n, t in [("a", "2026-01-01T00:00:01Z"), ("b", "2026-01-01T00:00:03Z"), ("c", "2026-01-01T00:00:02Z")]
    ]
    assert runs_beyond_limit(runs, keep=2) == ["a"]
    assert runs_beyond_limit(runs, keep=5) == []
    same_second = [
        {
            "metadata": {
                "name": "z",
                "creationTimestamp": "2026-01-01T00:00:09Z",
                "annotations": {"imagestreams.dev/run-started": "2026-01-01T00:00:09.000001Z"},
            }
        },
        {
            "metadata": {
                "name": "y",
                "creationTimestamp": "2026-01-01T00:00:09Z",
                "annotations": {"imagestreams.dev/run-started": "2026-01-01T00:00:09.000002Z"},
            }
        },
    ]
    assert runs_beyond_limit([*runs, *same_second], keep=2) == ["b", "c", "a"]
    assert runs_beyond_limit([*runs, *same_second], keep=1) == ["z", "b", "c", "a"]
