"""The operator heals itself: work that failed while the API server was away runs as soon as it is back."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from imagestreams.localcluster import LocalCluster, Registry
from tests.conftest import kubectl, namespace_events, solo_settings
from tests.helpers import OperatorProcess, eventually, operator_writes
from tests.integration.test_triggers import (
    Source,
    apply,
    by_name,
    container_image,
    frozen_images_policy,
    get,
    trigger,
    wait_for_frozen_images,
    workload,
)
from tests.streams import apply_stream, docker_tag

OUTAGE_SECONDS = 5
OUTAGE_LOG_SECONDS = 30


def test_work_waiting_for_a_retry_runs_as_soon_as_the_apiserver_is_back(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    namespace = solo_namespace
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, solo_settings(namespace)).start()
    policy = frozen_images_policy(namespace)
    kinds = "validatingadmissionpolicybinding,validatingadmissionpolicy"
    try:
        kubectl(crds, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": policy}))
        apply(crds, workload("Deployment", namespace, "web", [trigger("app:v1", by_name("web"))], ["web"]))
        wait_for_frozen_images(crds, namespace, "web")
        wanted = Source(crds, namespace, plain_registry, repository).create()["v1"]
        # Refused writes back off: after the 5th, the next attempt is 16 to 32 s away.
        eventually(lambda: "(attempt 5)" in operator.log(), timeout=60, what="five refused writes")
        kubectl(crds, "delete", kinds, policy[0]["metadata"]["name"])
        with crds.apiserver_down():
            time.sleep(OUTAGE_SECONDS)
        back = time.monotonic()

        def followed() -> bool:
            return container_image(get(crds, "Deployment", namespace, "web"), "web") == wanted

        eventually(followed, timeout=40, what="the Deployment to get its image after the outage")
        seconds = time.monotonic() - back
        print(f"API server ready -> Deployment updated: {seconds:.2f}s")
        assert seconds < 3, f"the waiting write ran {seconds:.1f}s after the API server came back"
    finally:
        kubectl(crds, "delete", kinds, policy[0]["metadata"]["name"], "--ignore-not-found", check=False)
        operator.stop()


def test_handlers_run_on_the_event_loop_under_asyncio_debug_mode(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    """Asyncio's debug mode raises on any call into the loop from another thread (as Kopf's executor
    threads did when the handlers were plain functions), and reports slow callbacks."""
    namespace = solo_namespace
    settings = {**solo_settings(namespace), "PYTHONASYNCIODEBUG": "1"}
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        source = Source(crds, namespace, plain_registry, repository)
        first = source.create()["v1"]
        apply(crds, workload("Deployment", namespace, "web", [trigger("app:v1", by_name("web"))], ["web"]))
        eventually(
            lambda: container_image(get(crds, "Deployment", namespace, "web"), "web") == first,
            what="the Deployment to follow its tag",
        )
        second = source.update()
        eventually(
            lambda: container_image(get(crds, "Deployment", namespace, "web"), "web") == second,
            what="the Deployment to follow the new image",
        )
        log = operator.log()
        assert "Non-thread-safe operation" not in log
        assert "Traceback" not in log, log[-3000:]
    finally:
        operator.stop()


def test_a_followed_stream_deleted_and_created_again_is_followed_again(
    crds: LocalCluster, namespace: str, operator: OperatorProcess, plain_registry: Registry, repository: str
) -> None:
    source = Source(crds, namespace, plain_registry, repository)
    first = source.create()["v1"]
    apply(crds, workload("Deployment", namespace, "web", [trigger("app:v1", by_name("web"))], ["web"]))
    eventually(lambda: container_image(get(crds, "Deployment", namespace, "web"), "web") == first, what="v1")

    kubectl(crds, "delete", "is", "app", "-n", namespace, "--wait=true")
    second = source.create()["v1"]  # the same name, a new object, a new image under the tag
    eventually(
        lambda: container_image(get(crds, "Deployment", namespace, "web"), "web") == second,
        what="the Deployment to follow the re-created stream",
    )


def test_a_status_too_large_to_store_is_cut_and_reported_instead_of_retried(
    crds: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    # 4,000 reference tags (no registry needed): their full status would be about 2 MB, beyond etcd's 1.5 MiB.
    tags = [
        docker_tag(f"t{n:04d}", f"registry.example.com/a/rather/long/repository/path/number-{n:04d}:v1", reference=True)
        for n in range(4000)
    ]
    stream = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "huge", "namespace": namespace},
        "spec": {"tags": tags},
    }
    kubectl(crds, "create", "-f", "-", stdin=json.dumps(stream))

    def condition() -> dict[str, Any] | None:
        status = json.loads(kubectl(crds, "get", "is", "huge", "-n", namespace, "-o", "json")).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == "StatusComplete"), None)

    found = eventually(condition, timeout=60, what="a StatusComplete condition")
    assert found["status"] == "False" and found["reason"] == "TooLarge"
    assert "tag(s)" in found["message"] and "split the stream" in found["message"]
    stored = json.loads(kubectl(crds, "get", "is", "huge", "-n", namespace, "-o", "json"))
    kept = len(stored["status"]["tags"])
    assert 1000 < kept < 4000
    assert all(entry["tag"] < f"t{kept:04d}" for entry in stored["status"]["tags"])  # the first ones, in order

    def size_reports() -> int:
        events = namespace_events(crds, namespace)
        return [e["reason"] for e in events if e["involvedObject"]["name"] == "huge"].count("StatusTooLarge")

    # The Event is posted after the status write, so it may land a moment after the condition is visible.
    eventually(size_reports, timeout=10, what="a StatusTooLarge Event")
    mark = crds.audit.mark()
    time.sleep(5)  # nothing retries a write that cannot succeed, and nothing reports it twice
    assert [w for w in operator_writes(crds, mark, namespace) if w.name == "huge"] == []
    assert size_reports() == 1


def test_an_outage_is_logged_in_a_few_lines_not_one_per_retry(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    namespace = solo_namespace
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, solo_settings(namespace), verbose=False).start()
    try:
        source = Source(crds, namespace, plain_registry, repository)
        digest = source.push()
        for number in range(10):
            scheduled = {"importPolicy": {"insecure": True, "scheduled": True}}
            apply_stream(
                crds, namespace, f"s{number}", [docker_tag("v1", f"{plain_registry.host}/{repository}:v1", **scheduled)]
            )
            triggers = [trigger(f"s{number}:v1", by_name("m"))]
            apply(crds, workload("Deployment", namespace, f"d{number}", triggers, ["m"]))
        wanted = f"{plain_registry.host}/{repository}@{digest}"
        for number in range(10):
            eventually(
                lambda n=number: container_image(get(crds, "Deployment", namespace, f"d{n}"), "m") == wanted,
                what="every Deployment to follow its stream",
            )
        before = len(operator.log().splitlines())
        with crds.apiserver_down():
            time.sleep(OUTAGE_LOG_SECONDS)
        time.sleep(5)  # the watches come back, scheduled checks carry on
        during = operator.log().splitlines()[before:]
    finally:
        operator.stop()
    print(f"{len(during)} log lines for a {OUTAGE_LOG_SECONDS} s outage with 10 streams and 10 Deployments")
    assert sum("Traceback" in line for line in during) <= 2, "\n".join(during)
    assert len(during) < 20, "\n".join(during)  # without the filter: a line per watch per retry, over 80
    # Every line has a timestamp and a level.
    assert all(line.startswith("[20") for line in during if line.strip() and not line.startswith(" ")), during
