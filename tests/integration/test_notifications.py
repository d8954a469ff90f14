"""Registry push notifications on the real harness: Debian's docker-registry posts its notification envelope to the
operator running as its own process, which looks the pushed tag up and patches the triggered Deployment; a wrong
token is refused and counted; a standby answers 503 until it leads; a flood from one source is limited while another
source's pushes go through.

The streams' schedule is an hour, and each scheduled tag's name is chosen so that its first slot lies more than ten
minutes after the operator started (core.schedule.spread_offset): within a test only a notification can make it due.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace, Secret

from imagestreams.api import rbac
from imagestreams.core.schedule import spread_offset
from imagestreams.localcluster import LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.images import Image
from tests.conftest import client_for, kubectl, solo_settings
from tests.helpers import OperatorProcess, eventually
from tests.integration.test_metrics import Samples, free_port, scrape, total
from tests.streams import (
    apply_stream,
    get_stream,
    insecure_tag,
    push_unique,
    status_tag,
    triggered_deployment,
    wait_for_tag,
)
from tests.unit.test_notifications import body, distribution_event, post

INTERVAL = 3600
SECRET = "notification-tokens"
TOKEN = uuid.uuid4().hex + uuid.uuid4().hex  # 64 characters, new each run
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# The test's own deliveries come from addresses of their own, so that they never share a rate-limit bucket with the
# registries, which post from 127.0.0.1.
FLOOD_SOURCE = "127.0.0.2"
READY_SOURCE = "127.0.0.3"
TEST_SOURCE = "127.0.0.4"


def create_token_secret(admin: Client, namespace: str) -> None:
    data = {"token": base64.b64encode(TOKEN.encode()).decode()}
    admin.create(Secret(metadata=ObjectMeta(name=SECRET, namespace=namespace), data=data))


def notification_settings(namespace: str, port: int, health_port: int) -> dict[str, str]:
    return {
        **solo_settings(namespace),
        "IMAGESTREAMS_SCHEDULED_INTERVAL_SECONDS": str(INTERVAL),
        "IMAGESTREAMS_NOTIFICATIONS_PORT": str(port),
        "IMAGESTREAMS_NOTIFICATIONS_ADDRESS": "127.0.0.1",
        "IMAGESTREAMS_NOTIFICATIONS_NAMESPACE": namespace,
        "IMAGESTREAMS_NOTIFICATIONS_SECRET": SECRET,
        "IMAGESTREAMS_NOTIFICATIONS_RATE": "1",
        "IMAGESTREAMS_NOTIFICATIONS_BURST": "5",
        "IMAGESTREAMS_HEALTH_PORT": str(health_port),
        "IMAGESTREAMS_HEALTH_ADDRESS": "127.0.0.1",
    }


@dataclass
class Notified:
    cluster: LocalCluster
    namespace: str
    operator: OperatorProcess
    port: int  # the notification endpoint
    metrics: str  # the health server's base URL
    registry: Registry  # posts its notifications to the operator with the right token

    def samples(self) -> Samples:
        return scrape(self.metrics)

    def counted(self, result: str) -> float:
        return total(self.samples(), "imagestreams_notifications_total", format="distribution", result=result)


@pytest.fixture(scope="module")
def notified(crds: LocalCluster, admin: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notified]:
    namespace = f"solo-notify-{uuid.uuid4().hex[:8]}"
    admin.create(Namespace(metadata=ObjectMeta(name=namespace, labels={"imagestreams.test": "true"})))
    create_token_secret(admin, namespace)
    port, health_port = free_port(), free_port()
    operator = OperatorProcess(
        crds.admin_kubeconfig,
        tmp_path_factory.mktemp("notifications"),
        notification_settings(namespace, port, health_port),
    ).start()
    try:
        eventually(lambda: _loaded(port), what="the endpoint to accept a delivery")
        # The token as a path segment: the harness's registry sends no custom headers (a real one would send
        # `Authorization: Bearer <token>` from its `headers` setting; the unit tests cover every form).
        registry = crds.add_registry(
            RegistryKind.PLAIN, notifications_url=f"http://127.0.0.1:{port}/notifications/distribution/{TOKEN}"
        )
        try:
            yield Notified(crds, namespace, operator, port, f"http://127.0.0.1:{health_port}", registry)
        finally:
            registry.stop()  # it would go on posting to a port nobody serves
    finally:
        operator.stop()
        admin.delete(Namespace, namespace)


def _loaded(port: int) -> bool:
    """The endpoint accepts a valid delivery: the tokens are read (on the first request) and the runtime acts."""
    return post(port, "/notifications/distribution", body({"events": []}), BEARER, source=READY_SOURCE)[0] == 202


def quiet_name(namespace: str, prefix: str, tag: str) -> str:
    """A stream name whose scheduled `tag` is first due more than ten minutes after the operator started."""
    for n in range(1000):
        name = f"{prefix}-{n}"
        if spread_offset(f"{namespace}/{name}/{tag}", INTERVAL) > 600:
            return name
    raise AssertionError("no quiet name found")


def deployment_image(admin: Client, namespace: str, name: str = "web") -> str:
    deployment = admin.get(Deployment, name, namespace=namespace)
    assert deployment.spec is not None and deployment.spec.template.spec is not None
    return deployment.spec.template.spec.containers[0].image or ""


def wait_for_image(admin: Client, namespace: str, digest: str, timeout: float = 30.0, name: str = "web") -> float:
    """Poll the Deployment until its container runs `digest`; the monotonic time it was first seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if digest in deployment_image(admin, namespace, name):
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"the Deployment {namespace}/{name} did not get {digest} within {timeout:.0f} s")


def follow(
    notified: Notified, admin: Client, repository: str, prefix: str, deployment: str = "web"
) -> tuple[str, Image]:
    """A stream with a scheduled tag `live` and an unscheduled tag `pinned` on repository:v1, and a Deployment
    following `live`, all on the first image. Returns the stream's name and that image."""
    cluster, namespace = notified.cluster, notified.namespace
    first = push_unique(notified.registry, repository, "v1")
    name = quiet_name(namespace, prefix, "live")
    source = f"{notified.registry.host}/{repository}:v1"
    apply_stream(
        cluster,
        namespace,
        name,
        [insecure_tag("live", source, importPolicy={"scheduled": True}), insecure_tag("pinned", source)],
    )
    wait_for_tag(cluster, namespace, name, "live", image=first.digest)
    kubectl(cluster, "apply", "-f", "-", stdin=triggered_deployment(namespace, f"{name}:live", name=deployment))
    wait_for_image(admin, namespace, first.digest, name=deployment)
    return name, first


def test_a_push_reaches_the_triggered_deployment_through_a_notification(
    notified: Notified, admin: Client, repository: str
) -> None:
    name, first = follow(notified, admin, repository, "app")
    before = notified.samples()

    second = push_unique(notified.registry, repository, "v1")
    pushed = time.monotonic()
    patched = wait_for_image(admin, notified.namespace, second.digest)
    print(f"registry push to Deployment patched: {patched - pushed:.3f} s")
    assert patched - pushed < 5.0  # bench/latency.py measures the distribution; this bounds it under test load

    after = notified.samples()
    accepted = total(after, "imagestreams_notifications_total", format="distribution", result="accepted")
    assert accepted > total(before, "imagestreams_notifications_total", format="distribution", result="accepted")
    scheduled = total(after, "imagestreams_notification_scheduled_tags_total", format="distribution")
    assert scheduled == total(before, "imagestreams_notification_scheduled_tags_total", format="distribution") + 1
    stream = get_stream(notified.cluster, notified.namespace, name)
    assert status_tag(stream, "live")["items"][0]["image"] == second.digest
    # The unscheduled tag on the same source is not touched: it follows a push only when its spec asks for it.
    assert status_tag(stream, "pinned")["items"][0]["image"] == first.digest
    assert f"/{repository}:v1); 1 scheduled tag(s) due now" in notified.operator.log()


def test_a_wrong_token_is_refused_and_counted(notified: Notified, admin: Client, repository: str) -> None:
    refused = notified.counted("unauthorized")
    envelope = body({"events": [distribution_event("push", "team/app", "v1")]})
    wrong = {"Authorization": "Bearer " + "0" * 64}
    status, headers, _ = post(notified.port, "/notifications/distribution", envelope, wrong, source=TEST_SOURCE)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert notified.counted("unauthorized") == refused + 1

    # A registry set up with a wrong token: its deliveries are refused (it retries them), and counted; the stream
    # that follows its tag keeps its image until its next scheduled check.
    stray = notified.cluster.add_registry(
        RegistryKind.PLAIN, notifications_url=f"http://127.0.0.1:{notified.port}/notifications/distribution/{'0' * 64}"
    )
    try:
        first = push_unique(stray, repository, "v1")
        name = quiet_name(notified.namespace, "stray", "live")
        source = f"{stray.host}/{repository}:v1"
        apply_stream(
            notified.cluster, notified.namespace, name, [insecure_tag("live", source, importPolicy={"scheduled": True})]
        )
        wait_for_tag(notified.cluster, notified.namespace, name, "live", image=first.digest)
        counted = notified.counted("unauthorized")
        push_unique(stray, repository, "v1")
        eventually(lambda: notified.counted("unauthorized") > counted, what="the stray registry's delivery refused")
        time.sleep(1.0)  # what an accepted delivery takes to land, several times over
        stream = get_stream(notified.cluster, notified.namespace, name)
        assert status_tag(stream, "live")["items"][0]["image"] == first.digest

        # While it retries, from the same address, the registry with the right token is served at once.
        follow(notified, admin, f"{repository}-beside", "beside", deployment="beside")
        second = push_unique(notified.registry, f"{repository}-beside", "v1")
        pushed = time.monotonic()
        assert wait_for_image(admin, notified.namespace, second.digest, name="beside") - pushed < 5.0
    finally:
        stray.stop()
    assert TOKEN not in notified.operator.log()


def test_a_flood_from_one_source_is_limited_and_another_sources_push_goes_through(
    notified: Notified, admin: Client, repository: str
) -> None:
    follow(notified, admin, repository, "flooded", deployment="flooded")
    answers: list[int] = []
    stop = threading.Event()
    envelope = body({"events": [distribution_event("push", "team/app", "v1")]})

    def flood() -> None:
        while not stop.is_set():
            answers.append(post(notified.port, "/notifications/distribution", envelope, BEARER, source=FLOOD_SOURCE)[0])

    flooding = threading.Thread(target=flood, daemon=True)
    started = time.monotonic()
    flooding.start()
    try:
        eventually(lambda: answers.count(429) >= 20, what="the flood to be limited")
        second = push_unique(notified.registry, repository, "v1")
        pushed = time.monotonic()
        patched = wait_for_image(admin, notified.namespace, second.digest, name="flooded")
    finally:
        stop.set()
        flooding.join(timeout=15)
    flooded_for = time.monotonic() - started
    accepted = answers.count(202)
    print(f"flood: {len(answers)} deliveries in {flooded_for:.1f} s, {accepted} accepted, {answers.count(429)} "
          f"limited; the registry's push reached the Deployment in {patched - pushed:.3f} s")  # fmt: skip
    assert set(answers) <= {202, 429}
    assert accepted <= 5 + flooded_for * 1 + 1  # the burst, then one a second
    assert patched - pushed < 5.0


def test_a_standby_answers_503_until_it_leads(
    crds: LocalCluster, admin: Client, solo_namespace: str, tmp_path: Path
) -> None:
    namespace = solo_namespace
    create_token_secret(admin, namespace)
    ports = [(free_port(), free_port()) for _ in range(2)]
    election = {
        "IMAGESTREAMS_LEADER_ELECTION": "true",
        "IMAGESTREAMS_LEADER_ELECTION_NAMESPACE": namespace,
        "IMAGESTREAMS_LEADER_ELECTION_LEASE_SECONDS": "6",
    }
    leader = OperatorProcess(
        crds.admin_kubeconfig, tmp_path, {**notification_settings(namespace, *ports[0]), **election}
    ).start()
    standby = OperatorProcess(
        crds.admin_kubeconfig, tmp_path, {**notification_settings(namespace, *ports[1]), **election}
    ).start(ready="waiting to become the leader")
    envelope = body({"events": [distribution_event("push", "team/app", "v1")]})

    def deliver(port: int, headers: dict[str, str] = BEARER) -> tuple[int, dict[str, str], bytes]:
        return post(port, "/notifications/distribution", envelope, headers, source=TEST_SOURCE)

    try:
        assert "became the leader" in leader.log()
        eventually(lambda: deliver(ports[0][0])[0] == 202, what="the leader to accept a delivery")
        status, headers, _ = deliver(ports[1][0])
        assert (status, headers["Retry-After"]) == (503, "1")
        assert deliver(ports[1][0], {"Authorization": "Bearer " + "0" * 64})[0] == 401  # the token is checked first
        assert total(scrape(f"http://127.0.0.1:{ports[1][1]}"), "imagestreams_notifications_total", result="standby")

        leader.stop()  # SIGTERM: the Lease is released and the standby takes over
        eventually(lambda: "became the leader" in standby.log() or None, timeout=30, what="the standby to take over")
        eventually(lambda: deliver(ports[1][0])[0] == 202, what="the new leader to accept a delivery")
    finally:
        leader.stop()
        standby.stop()


def test_the_shipped_role_reads_the_token_secret_and_no_other(
    crds: LocalCluster, admin: Client, namespace: str
) -> None:
    create_token_secret(admin, namespace)
    admin.create(Secret(metadata=ObjectMeta(name="other", namespace=namespace), data={"x": "eA=="}))
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "notifications", "namespace": namespace},
            "rules": rbac.notification_secret_rules(SECRET)}  # fmt: skip
    kubectl(crds, "apply", "-f", "-", stdin=json.dumps(role))
    kubectl(crds, "create", "serviceaccount", "operator", "-n", namespace)
    kubectl(crds, "create", "rolebinding", "notifications", "-n", namespace, "--role=notifications",
            f"--serviceaccount={namespace}:operator")  # fmt: skip
    client = client_for(crds.service_account_kubeconfig(namespace, "operator"))

    def refused(read: Any) -> int:
        with pytest.raises(ApiError) as error:
            read()
        return int(error.value.status.code or 0)

    assert eventually(lambda: _readable(client, namespace), what="the RoleBinding to apply")
    assert refused(lambda: client.get(Secret, "other", namespace=namespace)) == 403
    assert refused(lambda: list(client.list(Secret, namespace=namespace))) == 403


def _readable(client: Client, namespace: str) -> bool:
    try:
        secret = client.get(Secret, SECRET, namespace=namespace)
    except ApiError:
        return False
    return base64.b64decode((secret.data or {})["token"]).decode() == TOKEN
