"""Write-side faults on the real cluster: the operator SIGKILLed in the middle of its writes, the API server stopped
during a fan-out. Counted by the apiserver's audit log: every workload write lands exactly once.

A write refused by admission and retried until it lands once the refusal is lifted is covered by
tests/integration/test_triggers.py::test_a_refused_workload_write_is_retried_until_it_lands.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from imagestreams.localcluster import LocalCluster, Registry
from tests.conftest import kubectl, solo_settings
from tests.helpers import OperatorProcess, eventually, operator_writes
from tests.integration.test_triggers import Source, apply, by_name, container_image, trigger, workload

FAN_OUT = 100  # Deployments following one tag (the issue saw duplicates with 300)
RUN_LABEL = "imagestreams.dev/source-job"


def request_import(source: Source) -> str:
    """Push a new image under the tag and ask for an import, without waiting for it; returns the reference."""
    digest = source.push()
    source.requests += 1
    kubectl(
        source.cluster, "annotate", "-n", source.namespace, "is", source.stream,
        f"imagestreams.dev/import-request=fault-{source.requests}", "--overwrite",
    )  # fmt: skip
    return source.reference(digest)


def succeeded(cluster: LocalCluster, since: int, namespace: str, resource: str, verb: str) -> Counter[str]:
    """The operator's successful `verb` writes of `resource` after audit mark `since`, per object name."""
    return Counter(
        w.name
        for w in operator_writes(cluster, since, namespace)
        if w.resource == resource and w.verb == verb and 200 <= w.code < 300
    )


def failed(cluster: LocalCluster, since: int, namespace: str, resource: str, verb: str) -> list[int]:
    return [
        w.code
        for w in operator_writes(cluster, since, namespace)
        if w.resource == resource and w.verb == verb and not 200 <= w.code < 300
    ]


def wait_for_writes(
    cluster: LocalCluster, since: int, namespace: str, resource: str, verb: str, at_least: int = 1
) -> int:
    """Poll the audit log closely (a fan-out takes about a second) until the operator made `at_least` such writes."""
    deadline = time.monotonic() + 30
    while (seen := sum(succeeded(cluster, since, namespace, resource, verb).values())) < at_least:
        assert time.monotonic() < deadline, f"no {at_least} {verb} of {resource} by the operator within 30 s"
        time.sleep(0.002)
    return seen


def deployment_images(cluster: LocalCluster, namespace: str) -> dict[str, str]:
    listed = json.loads(kubectl(cluster, "get", "deployments", "-n", namespace, "-o", "json"))["items"]
    return {d["metadata"]["name"]: container_image(d, "main") for d in listed}


def wait_all(cluster: LocalCluster, namespace: str, image: str, timeout: float = 40) -> float:
    """Until all FAN_OUT Deployments run `image`; returns the seconds it took."""
    started = time.monotonic()

    def converged() -> bool:
        images = deployment_images(cluster, namespace)
        return len(images) == FAN_OUT and set(images.values()) == {image}

    eventually(converged, timeout=timeout, what=f"all {FAN_OUT} Deployments to run {image}")
    return time.monotonic() - started


def fan_out(cluster: LocalCluster, namespace: str, source: Source) -> str:
    """FAN_OUT Deployments (no replicas: only their templates matter) following app:v1; returns v1's image."""
    first = source.create()["v1"]
    items = []
    for number in range(FAN_OUT):
        deployment = workload("Deployment", namespace, f"d{number:03d}", [trigger("app:v1", by_name("main"))], ["main"])
        deployment["spec"]["replicas"] = 0
        items.append(deployment)
    apply(cluster, {"apiVersion": "v1", "kind": "List", "items": items})
    wait_all(cluster, namespace, first)
    return first


def test_a_sigkill_in_the_middle_of_a_fan_out_leaves_every_deployment_written_exactly_once(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    """Guards against a restarted operator writing again the Deployments its predecessor already updated (or
    losing the ones it had not reached): the second operator must write only the rest, once each."""
    namespace = solo_namespace
    # 2 workers, not the default 16: with 16 the whole fan-out could land before the kill did. What is checked (each
    # Deployment written exactly once across the kill) does not depend on how many writes run at once.
    settings = {**solo_settings(namespace), "IMAGESTREAMS_TRIGGER_WORKERS": "2"}
    source = Source(crds, namespace, plain_registry, repository)
    first = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        fan_out(crds, namespace, source)
        mark = crds.audit.mark()
        wanted = request_import(source)
        wait_for_writes(crds, mark, namespace, "deployments", "patch", at_least=FAN_OUT // 10)
        first.kill()
    finally:
        first.stop()
    at_kill = sum(succeeded(crds, mark, namespace, "deployments", "patch").values())
    updated_at_kill = sum(image == wanted for image in deployment_images(crds, namespace).values())
    assert 0 < updated_at_kill < FAN_OUT, f"the kill came outside the fan-out: {updated_at_kill} updated"

    second = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        seconds = wait_all(crds, namespace, wanted)
        # A sync point: once a newer image has reached every Deployment, nothing can still write the previous one.
        resync = crds.audit.mark()
        newest = request_import(source)
        wait_all(crds, namespace, newest)
    finally:
        second.stop()
    writes = succeeded(crds, mark, namespace, "deployments", "patch")
    after_sync = succeeded(crds, resync, namespace, "deployments", "patch")
    before_sync = writes - after_sync
    print(
        f"SIGKILL after {at_kill} of {FAN_OUT} writes ({updated_at_kill} updated); restarted operator converged in "
        f"{seconds:.2f}s; writes per Deployment: {sorted(Counter(before_sync.values()).items())} "
        f"(then {sorted(Counter(after_sync.values()).items())} for the next image)"
    )
    # An apply in flight when SIGKILL hit is recorded by the apiserver as 504 (its client vanished mid-request): at
    # most one per trigger worker. Anything else failing is a fault; whether each Deployment still got written exactly
    # once is what follows.
    cut_off = failed(crds, mark, namespace, "deployments", "patch")
    assert set(cut_off) <= {504} and len(cut_off) <= int(settings["IMAGESTREAMS_TRIGGER_WORKERS"]), cut_off
    assert len(before_sync) == FAN_OUT and set(before_sync.values()) == {1}, {
        name: n for name, n in before_sync.items() if n != 1
    }
    assert len(after_sync) == FAN_OUT and set(after_sync.values()) == {1}, {
        name: n for name, n in after_sync.items() if n != 1
    }


def test_a_triggered_job_runs_once_per_image_across_sigkills(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    """Guards against a Job run lost when the operator dies between the stream's new image and the run's creation,
    and against a second run of the same image by the operator that starts next."""
    namespace = solo_namespace
    settings = solo_settings(namespace)
    source = Source(crds, namespace, plain_registry, repository)
    mark = crds.audit.mark()
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()

    def runs() -> list[dict[str, Any]]:
        listed = kubectl(crds, "get", "jobs", "-n", namespace, "-l", f"{RUN_LABEL}=migrate", "-o", "json")
        return list(json.loads(listed)["items"])

    def run_with(image: str) -> bool:
        return any(container_image(run, "main") == image for run in runs())

    images: list[str] = []
    kill_points = [("imagestreams/status", "patch"), ("jobs", "create")]  # the new image stored; its run created
    try:
        images.append(source.create()["v1"])
        job = workload("Job", namespace, "migrate", [trigger("app:v1", by_name("main"))], ["main"])
        job["metadata"]["annotations"]["imagestreams.dev/runs-to-keep"] = "10"
        apply(crds, job)
        eventually(lambda: run_with(images[0]), what="the first run")
        for resource, verb in kill_points:
            before = crds.audit.mark()
            images.append(request_import(source))
            wait_for_writes(crds, before, namespace, resource, verb)
            operator.kill()
            existed = run_with(images[-1])
            operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
            started = time.monotonic()
            eventually(lambda: run_with(images[-1]), what=f"a run of {images[-1]}")
            print(
                f"SIGKILL after the {verb} of {resource}: run existed at the kill: {existed}; "
                f"present {time.monotonic() - started:.2f}s after the restart"
            )
        # A sync point: a run of a newer image means the last operator has passed over the Job since it started.
        images.append(request_import(source))
        eventually(lambda: run_with(images[-1]), what="a run of the last image")
    finally:
        operator.stop()
    per_image = Counter(container_image(run, "main") for run in runs())
    creates = sum(succeeded(crds, mark, namespace, "jobs", "create").values())
    print(f"runs per image: {[per_image[image] for image in images]}; Job creates in the audit log: {creates}")
    assert [per_image[image] for image in images] == [1] * len(images)
    assert sum(per_image.values()) == len(images)
    assert creates == len(images)


def test_an_apiserver_outage_in_the_middle_of_a_fan_out_leaves_every_deployment_written_once(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    """Guards against writes lost to an outage (a fan-out that stops where the API server went away) and against
    repeated writes after it (a retry or a re-listing that writes Deployments already updated)."""
    namespace = solo_namespace
    source = Source(crds, namespace, plain_registry, repository)
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, solo_settings(namespace)).start()
    try:
        fan_out(crds, namespace, source)
        mark = crds.audit.mark()
        wanted = request_import(source)
        wait_for_writes(crds, mark, namespace, "deployments", "patch", at_least=5)
        stopping = time.monotonic()
        with crds.apiserver_down():
            before_outage = sum(succeeded(crds, mark, namespace, "deployments", "patch").values())
            down_mark = crds.audit.mark()  # the API server is stopped: nothing is written until it is back
        back = time.monotonic()
        # Until the API server is ready and the controller manager restarted (the operator may have written already).
        outage = back - stopping
        wait_all(crds, namespace, wanted)
        converged = time.monotonic() - back
        resync = crds.audit.mark()
        newest = request_import(source)
        wait_all(crds, namespace, newest)
    finally:
        operator.stop()
    writes = succeeded(crds, mark, namespace, "deployments", "patch")
    after_sync = succeeded(crds, resync, namespace, "deployments", "patch")
    before_sync = writes - after_sync
    resumed = sum(succeeded(crds, down_mark, namespace, "deployments", "patch").values()) - sum(after_sync.values())
    refused = failed(crds, mark, namespace, "deployments", "patch")
    print(
        f"{before_outage} of {FAN_OUT} written before the outage ({outage:.1f}s), {resumed} after it; all converged "
        f"{converged:.2f}s after apiserver_down() returned; failed writes: {refused}; writes per Deployment: "
        f"{sorted(Counter(before_sync.values()).items())} (then {sorted(Counter(after_sync.values()).items())})"
    )
    assert before_outage < FAN_OUT and resumed > 0, "the outage did not fall in the middle of the fan-out"
    assert len(before_sync) == FAN_OUT and set(before_sync.values()) == {1}, {
        name: n for name, n in before_sync.items() if n != 1
    }
    assert len(after_sync) == FAN_OUT and set(after_sync.values()) == {1}, {
        name: n for name, n in after_sync.items() if n != 1
    }
