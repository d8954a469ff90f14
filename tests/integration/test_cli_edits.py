"""`Kube.edit_stream` and `edit_workload` against the real API server: the resourceVersion guard, the decision
taken again after a conflict, the give-up after five, and dry runs that store nothing.

The tests use solo-* namespaces, which the session's operator ignores: its status writes would be concurrent
changes of their own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagestreams.cli.edits import Edit
from imagestreams.cli.errors import CliError
from imagestreams.cli.flags import DryRun
from imagestreams.cli.kube import Kube
from imagestreams.cli.kubeconfig import load_target
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.localcluster import LocalCluster
from tests.conftest import kubectl
from tests.streams import apply_stream, get_stream


def kube_for(cluster: LocalCluster, namespace: str) -> Kube:
    return Kube(load_target(str(cluster.admin_kubeconfig), None, namespace))


def test_a_write_that_meets_a_concurrent_change_is_decided_again(crds: LocalCluster, solo_namespace: str) -> None:
    namespace = solo_namespace
    apply_stream(crds, namespace, "app", [])
    kube = kube_for(crds, namespace)
    seen: list[dict[str, Any]] = []

    def decide(body: dict[str, Any] | None) -> Edit[int]:
        assert body is not None
        seen.append(body)
        if len(seen) == 1:  # another writer changes the stream between this read and the write
            kubectl(crds, "annotate", "-n", namespace, "imagestream", "app", "other=writer")
        return Edit(len(seen), patch={"metadata": {"labels": {"decided": str(len(seen))}}})

    edited = kube.edit_stream(namespace, "app", decide)
    assert edited.result == 2 and edited.changed
    assert seen[1]["metadata"]["annotations"]["other"] == "writer"  # the second decision saw the other write
    stored = get_stream(crds, namespace, "app")
    assert stored["metadata"]["labels"] == {"decided": "2"}
    assert stored["metadata"]["annotations"]["other"] == "writer"


def test_an_object_that_keeps_changing_is_given_up_after_five_reads(crds: LocalCluster, solo_namespace: str) -> None:
    namespace = solo_namespace
    apply_stream(crds, namespace, "busy", [])
    kube = kube_for(crds, namespace)
    reads = []

    def decide(body: dict[str, Any] | None) -> Edit[None]:
        reads.append(body)
        kubectl(crds, "annotate", "--overwrite", "-n", namespace, "imagestream", "busy", f"round={len(reads)}")
        return Edit(None, patch={"metadata": {"labels": {"never": "written"}}})

    with pytest.raises(CliError, match="the object kept changing while being updated"):
        kube.edit_stream(namespace, "busy", decide)
    assert len(reads) == 5
    assert "labels" not in get_stream(crds, namespace, "busy")["metadata"]


def test_a_missing_stream_is_created_and_nothing_to_write_writes_nothing(
    crds: LocalCluster, solo_namespace: str
) -> None:
    namespace = solo_namespace
    kube = kube_for(crds, namespace)
    body = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "new", "namespace": namespace},
    }
    created = kube.edit_stream(namespace, "new", lambda current: Edit("made", create=body))
    assert (created.result, created.changed, created.body["metadata"]["name"]) == ("made", True, "new")
    version = get_stream(crds, namespace, "new")["metadata"]["resourceVersion"]
    untouched = kube.edit_stream(namespace, "new", lambda current: Edit("nothing"))
    assert (untouched.changed, untouched.body["metadata"]["resourceVersion"]) == (False, version)


def test_spec_then_status_and_the_dry_runs(crds: LocalCluster, solo_namespace: str) -> None:
    namespace = solo_namespace
    apply_stream(crds, namespace, "app", [{"name": "old"}, {"name": "v1"}])
    status = {"tags": [{"tag": "old", "items": []}, {"tag": "v1", "items": []}]}
    kubectl(
        crds,
        "patch",
        "imagestream",
        "app",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    kube = kube_for(crds, namespace)
    before = get_stream(crds, namespace, "app")

    def remove_old(body: dict[str, Any] | None) -> Edit[None]:
        return Edit(
            None, patch={"spec": {"tags": [{"name": "v1"}]}}, status_patch={"status": {"tags": [status["tags"][1]]}}
        )

    for dry_run in (DryRun.CLIENT, DryRun.SERVER):
        shown = kube.edit_stream(namespace, "app", remove_old, dry_run=dry_run).body
        assert [t["name"] for t in shown["spec"]["tags"]] == ["v1"], dry_run
        assert [t["tag"] for t in shown["status"]["tags"]] == ["v1"], dry_run
        assert (
            get_stream(crds, namespace, "app")["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        )
    kube.edit_stream(namespace, "app", remove_old)
    stored = get_stream(crds, namespace, "app")
    assert ([t["name"] for t in stored["spec"]["tags"]], [t["tag"] for t in stored["status"]["tags"]]) == (
        ["v1"],
        ["v1"],
    )


def test_workload_edits_are_guarded_too(crds: LocalCluster, solo_namespace: str) -> None:
    namespace = solo_namespace
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": namespace},
        "spec": {
            "schedule": "0 0 1 1 *",
            "jobTemplate": {
                "spec": {
                    "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "job", "image": "x"}]}}
                }
            },
        },
    }
    kubectl(crds, "apply", "-f", "-", stdin=json.dumps(manifest))
    kube = kube_for(crds, namespace)
    calls = []

    def decide(body: dict[str, Any]) -> Edit[None]:
        calls.append(body["metadata"]["resourceVersion"])
        if len(calls) == 1:
            kubectl(crds, "label", "-n", namespace, "cronjob", "nightly", "first=read")
        return Edit(None, patch={"metadata": {"annotations": {"decided": "yes"}}})

    edited = kube.edit_workload(WorkloadKind.CRONJOB, namespace, "nightly", decide)
    assert len(calls) == 2 and edited.body["metadata"]["labels"] == {"first": "read"}
    assert edited.body["metadata"]["annotations"]["decided"] == "yes"
