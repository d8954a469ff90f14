"""/healthz, /readyz and /metrics of the operator running as its own process, on 127.0.0.1: the probes answer
through start-up, and an import and a trigger move the counters."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from lightkube import Client
from prometheus_client.parser import text_string_to_metric_families

from imagestreams.kube.leader import LeaderElection
from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import unique_image
from tests.conftest import kubectl, solo_settings
from tests.helpers import OperatorProcess, eventually, pusher_for
from tests.streams import apply_stream, insecure_tag, triggered_deployment, wait_for_tag

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(base: str) -> Samples:
    status, text = get(f"{base}/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels`."""
    return sum(v for (n, have), v in samples.items() if n == name and set(labels.items()) <= set(have))


class ReadinessWatch:
    """Polls /readyz from before the operator starts until it answers 200, recording each answer in order."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.answers: list[tuple[int, str]] = []
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                answer = get(f"{self.base}/readyz")
            except OSError:  # not listening yet
                time.sleep(0.01)
                continue
            self.answers.append(answer)
            if answer[0] == 200:
                return
            time.sleep(0.002)

    def wait(self) -> list[tuple[int, str]]:
        self._thread.join(70)
        return self.answers


def test_probes_and_metrics_follow_an_import_and_a_trigger(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {
        **solo_settings(solo_namespace),
        "IMAGESTREAMS_HEALTH_ADDRESS": "127.0.0.1",
        "IMAGESTREAMS_HEALTH_PORT": str(port),
        "IMAGESTREAMS_BUILD_REVISION": "test-revision",
    }
    # A stream that exists before the start: the initial listing has something to wait for.
    image = unique_image("metrics")
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "v1", image)
    apply_stream(crds, solo_namespace, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    readiness = ReadinessWatch(base)
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        answers = readiness.wait()
        counts = {body.strip(): answers.count((status, body)) for status, body in dict.fromkeys(answers)}
        print(f"\n/readyz answered, in order: {counts}")
        assert answers and answers[-1] == (200, "ready\n"), answers
        # Not ready while Kopf starts and until the initial listing of streams is done (about 0.1 s here, polled
        # every few ms); never not ready again once ready.
        assert all(status == 503 for status, _ in answers[:-1]), answers
        assert counts.get("not ready: the initial listing of image streams is not done"), counts
        wait_for_tag(crds, solo_namespace, "app", "v1", image=image.digest)
        kubectl(crds, "apply", "-f", "-", stdin=triggered_deployment(solo_namespace, "app:v1"))
        reference = f"{plain_registry.host}/{repository}@{image.digest}"
        image_path = "jsonpath={.spec.template.spec.containers[0].image}"
        eventually(
            lambda: kubectl(crds, "get", "deployment", "web", "-n", solo_namespace, "-o", image_path) == reference,
            what="the Deployment to follow the tag",
        )
        apply_stream(
            crds,
            solo_namespace,
            "missing",
            [insecure_tag("v1", f"{plain_registry.host}/{repository}-absent:v1")],
        )
        wait_for_tag(crds, solo_namespace, "missing", "v1", reason="NotFound")

        def counted() -> Samples | None:
            samples = scrape(base)
            return samples if total(samples, "imagestreams_trigger_writes_total", kind="Deployment") else None

        samples = eventually(counted, what="the trigger write to be counted")
        assert total(samples, "imagestreams_imports_total", result="succeeded") >= 1
        assert total(samples, "imagestreams_imports_total", result="failed", reason="NotFound") >= 1
        assert total(samples, "imagestreams_registry_requests_total", registry=plain_registry.host, status="200") >= 1
        assert total(samples, "imagestreams_registry_requests_total", registry=plain_registry.host, status="404") >= 1
        assert total(samples, "imagestreams_registry_lookup_duration_seconds_count", result="succeeded") >= 1
        assert total(samples, "imagestreams_stream_status_writes_total") >= 2
        assert total(samples, "imagestreams_workqueue_wait_seconds_count", queue="import") >= 1
        assert total(samples, "imagestreams_workqueue_wait_seconds_count", queue="trigger") >= 1
        assert total(samples, "imagestreams_trigger_write_failures_total") == 0
        assert total(samples, "imagestreams_image_streams") == 2
        assert total(samples, "imagestreams_triggered_workloads") == 1
        assert total(samples, "imagestreams_leader") == 1
        assert total(samples, "imagestreams_build_info", revision="test-revision") == 1
        assert total(samples, "process_resident_memory_bytes") > 0
        requests = [dict(labels) for name, labels in samples if name == "imagestreams_registry_requests_total"]
        assert {labels["registry"] for labels in requests} == {plain_registry.host}  # the host: no path, no query

        status, body = get(f"{base}/healthz")
        # One watch stream for ImageStreams and one per workload kind in the one namespace watched, and one per
        # mirror-set kind (cluster-scoped).
        assert (status, body) == (200, "ok: the event loop answers; 8 watch streams\n")
        assert get(f"{base}/readyz") == (200, "ready\n")
    finally:
        operator.stop()
    assert "Traceback" not in operator.log(), operator.log()[-3000:]


def test_a_standby_answers_its_probes_and_scrapes_while_it_waits_for_the_lease(
    crds: LocalCluster, admin: Client, solo_namespace: str, tmp_path: Path
) -> None:
    holder = LeaderElection(admin, solo_namespace, "imagestream-operator", "another-replica", lease_seconds=120)
    assert holder.try_acquire_or_renew()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {
        **solo_settings(solo_namespace),
        "IMAGESTREAMS_HEALTH_ADDRESS": "127.0.0.1",
        "IMAGESTREAMS_HEALTH_PORT": str(port),
        "IMAGESTREAMS_LEADER_ELECTION": "true",
        "IMAGESTREAMS_LEADER_ELECTION_NAMESPACE": solo_namespace,
    }
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start(ready="waiting to become the leader")
    try:
        # Ready as a standby (a rolling update goes on), alive, and scraped with leader 0.
        eventually(lambda: get(f"{base}/readyz") == (200, "standby: another replica holds the Lease\n"))
        assert get(f"{base}/healthz") == (200, "standby: waiting for the Lease\n")
        samples = scrape(base)
        assert total(samples, "imagestreams_leader") == 0
        assert total(samples, "imagestreams_build_info") == 1
        assert "image stream operator started" not in operator.log()
        assert holder.release()  # the standby takes over within about a second
        eventually(lambda: get(f"{base}/readyz") == (200, "ready: leading\n"), what="the standby to lead")
        assert total(scrape(base), "imagestreams_leader") == 1
        assert get(f"{base}/healthz")[0] == 200
    finally:
        operator.stop()
