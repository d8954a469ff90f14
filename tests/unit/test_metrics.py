"""Metrics and health: each metric moves where it should, against a fresh CollectorRegistry per test (no global
state), and /healthz, /readyz and /metrics answer what the process is doing."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from lightkube import AsyncClient, KubeConfig
from yarl import URL

from imagestreams.api.settings import OperatorSettings, SettingsError
from imagestreams.controller import health as health_module
from imagestreams.controller.health import Health, HealthServer
from imagestreams.controller.metrics import MAX_REGISTRY_LABELS, Metrics
from imagestreams.controller.reconciler import Scheduler, StreamCache
from imagestreams.controller.runtime import Runtime
from imagestreams.controller.workqueue import WorkQueue
from imagestreams.core.tags import Failure, RepositoryResult, Resolved
from imagestreams.kube import leader
from imagestreams.kube.leader import LeaderElection
from imagestreams.registry import ClientSettings
from imagestreams.registry.errors import TransportKind
from imagestreams.registry.transport import Transport, TransportError
from tests.unit.test_schedule_and_settings import scheduled_stream


def value(metrics: Metrics, name: str, **labels: str) -> float:
    sample = metrics.registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the metrics ---------------------------------------------------------------------------------------------------


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.imports.labels("succeeded", "").inc()
    assert value(first, "imagestreams_imports_total", result="succeeded", reason="") == 1
    assert value(second, "imagestreams_imports_total", result="succeeded", reason="") == 0


def test_imports_are_counted_by_result_and_reason() -> None:
    metrics = Metrics()
    resolved = Resolved("registry.example/app@sha256:" + "a" * 64, "sha256:" + "a" * 64, None)
    repository = RepositoryResult("registry.example/app", {"v2": resolved}, failure=Failure("Unauthorized", "no"))
    metrics.count_imports([resolved, Failure("NotFound", "gone"), Failure("NotFound", "gone")], repository)
    assert value(metrics, "imagestreams_imports_total", result="succeeded", reason="") == 2
    assert value(metrics, "imagestreams_imports_total", result="failed", reason="NotFound") == 2
    assert value(metrics, "imagestreams_imports_total", result="failed", reason="Unauthorized") == 1


def test_registry_labels_are_hosts_and_bounded() -> None:
    metrics = Metrics()
    metrics.registry_request("Quay.IO", "head", "200")
    metrics.registry_request("quay.io", "BREW", "network")
    assert value(metrics, "imagestreams_registry_requests_total", registry="quay.io", method="HEAD", status="200") == 1
    assert value(metrics, "imagestreams_registry_requests_total", registry="quay.io", method="other", status="network")
    for n in range(MAX_REGISTRY_LABELS + 5):
        metrics.registry_request(f"r{n}.example", "GET", "200")
    assert value(metrics, "imagestreams_registry_requests_total", registry="other", method="GET", status="200") == 6
    assert value(metrics, "imagestreams_registry_requests_total", registry="quay.io", method="HEAD", status="200") == 1


def test_build_info_and_leader() -> None:
    metrics = Metrics()
    metrics.set_build_info("abc123")
    exposition = metrics.registry.get_sample_value(
        "imagestreams_build_info",
        {
            "version": "0.1.0",
            "python_version": __import__("platform").python_version(),
            "kopf_version": __import__("importlib.metadata").metadata.version("kopf"),
            "revision": "abc123",
        },
    )
    assert exposition == 1
    metrics.set_leader(True)
    assert value(metrics, "imagestreams_leader") == 1
    metrics.set_leader(False)
    assert value(metrics, "imagestreams_leader") == 0


# --- where they are updated ----------------------------------------------------------------------------------------


class Registry:
    """A tiny HTTP server on 127.0.0.1: /ok answers 200, /redirect 302 to /ok, anything else 404."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.host = ""

    async def start(self) -> Registry:
        async def handle(request: web.Request) -> web.Response:
            if request.path == "/ok":
                return web.Response(text="ok")
            if request.path == "/redirect":
                raise web.HTTPFound("/ok")
            return web.Response(status=404)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.host = f"127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    server = await Registry().start()
    yield server
    await server.stop()


async def test_every_request_sent_is_reported_with_its_status_or_failure(registry: Registry) -> None:
    metrics = Metrics()
    settings = ClientSettings(per_registry_rate=0, max_attempts=1, request_observer=metrics.registry_request)
    transport = Transport(settings)
    try:

        async def fetch(url: str, method: str = "GET") -> int:
            response = await transport.fetch(
                registry.host, method, URL(url), {}, insecure=True, ssl_param=False, max_body=1024
            )
            return response.status

        assert await fetch(f"http://{registry.host}/ok", "HEAD") == 200
        assert await fetch(f"http://{registry.host}/missing") == 404
        assert await fetch(f"http://{registry.host}/redirect") == 200  # two exchanges: the 302 and the 200
        with pytest.raises(TransportError) as refused:
            await fetch("http://127.0.0.1:9/closed")  # the discard port: nothing listens
        assert refused.value.kind is TransportKind.NETWORK
    finally:
        await transport.close()
    requests = "imagestreams_registry_requests_total"
    host = registry.host
    assert value(metrics, requests, registry=host, method="HEAD", status="200") == 1
    assert value(metrics, requests, registry=host, method="GET", status="404") == 1
    assert value(metrics, requests, registry=host, method="GET", status="302") == 1
    assert value(metrics, requests, registry=host, method="GET", status="200") == 1
    assert value(metrics, requests, registry=host, method="GET", status="network") == 1


async def test_work_queue_waits_retries_and_depth() -> None:
    metrics = Metrics()
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(
        1,
        name="import",
        retry_base=100.0,
        on_wait=lambda seconds: metrics.queue_waited("import", seconds),
        on_retry=lambda: metrics.queue_retried("import"),
        clock=clock,
    )
    metrics.watch_queue(queue)
    queue.add("a")
    queue.add("b")
    queue.add("a")  # merged: still two keys
    assert value(metrics, "imagestreams_workqueue_depth", queue="import") == 2
    queue.add_rate_limited("c")
    assert value(metrics, "imagestreams_workqueue_depth", queue="import") == 3
    assert value(metrics, "imagestreams_workqueue_retry_waiting", queue="import") == 1
    assert value(metrics, "imagestreams_workqueue_retries_total", queue="import") == 1
    clock.now += 2.5
    done = asyncio.Event()
    seen: list[str] = []

    async def process(key: str, _: frozenset[str]) -> None:
        seen.append(key)
        if len(seen) == 2:
            done.set()

    task = asyncio.create_task(queue.run(process))
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert value(metrics, "imagestreams_workqueue_wait_seconds_count", queue="import") == 2
    assert value(metrics, "imagestreams_workqueue_wait_seconds_sum", queue="import") == 5.0
    assert value(metrics, "imagestreams_workqueue_wait_seconds_bucket", queue="import", le="1.0") == 0
    assert value(metrics, "imagestreams_workqueue_depth", queue="import") == 0  # the waiting retry went with run()


def test_scheduler_reports_tags_left_waiting_by_the_budget() -> None:
    settings = OperatorSettings(max_scheduled_imports_per_minute=1, scheduled_interval_seconds=60)
    cache = StreamCache()
    cache.put(("ns", "app"), scheduled_stream("ns", "app", 5))
    scheduler = Scheduler(settings, started=0.0)
    due = scheduler.due(cache, 1000.0)  # everything due since its first slot; a burst of 2 allowed
    assert sum(len(tags) for tags in due.values()) == 2
    assert (scheduler.scheduled, scheduler.overdue) == (5, 3)
    assert 1000.0 - 60 < scheduler.oldest_overdue <= 1000.0
    scheduler.due(cache, 1000.0)  # the budget is spent: the same three wait on
    assert scheduler.overdue == 3
    relaxed = Scheduler(OperatorSettings(max_scheduled_imports_per_minute=0, scheduled_interval_seconds=60))
    relaxed.due(cache, relaxed.started + 1000.0)
    assert (relaxed.scheduled, relaxed.overdue, relaxed.oldest_overdue) == (5, 0, 0.0)


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    config = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "not-used"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    kube = AsyncClient(config=KubeConfig.from_dict(config), trust_env=False)  # never contacted here
    built = Runtime(OperatorSettings(), kube=kube, metrics=Metrics())
    yield built
    await built.registry.close()


async def test_runtime_wires_queues_caches_scheduler_and_watch_restarts(runtime: Runtime) -> None:
    metrics = runtime.metrics
    restarts = "imagestreams_watch_restarts_total"
    runtime.stream_seen("ADDED", ("ns", "app"), scheduled_stream("ns", "app", 2))
    assert value(metrics, "imagestreams_image_streams") == 1
    assert value(metrics, "imagestreams_workqueue_depth", queue="import") == 1
    assert value(metrics, "imagestreams_workqueue_depth", queue="trigger") == 0
    runtime.scheduler.started = runtime.clock() - 10_000
    runtime.schedule_due()
    assert value(metrics, "imagestreams_scheduled_tags") == 2
    # Each watch says when it listed again after an expiry (controller/watchers.py): each time counts, by kind.
    runtime.watch_relisted("ImageStream")
    runtime.watch_relisted("Deployment")
    runtime.watch_relisted("Deployment")
    assert value(metrics, restarts, kind="ImageStream") == 1
    assert value(metrics, restarts, kind="Deployment") == 2


# --- leader election --------------------------------------------------------------------------------------------


def test_the_election_tells_each_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leader, "STANDBY_RETRY_SECONDS", 0.01)
    seen: list[bool | None] = []
    election = LeaderElection(client=None, namespace="ns", name="lease", identity="me", observer=seen.append)  # type: ignore[arg-type]
    answers = iter([False, False, True])
    monkeypatch.setattr(election, "_try_acquire_or_renew", lambda: next(answers))
    election.wait_until_leader()
    assert seen == [False, False, True]
    monkeypatch.setattr(election, "_release_once", lambda: True)
    assert election.release()
    assert seen[-1] is False


# --- health --------------------------------------------------------------------------------------------------------


def test_standby_is_alive_and_ready_while_the_election_hears_from_the_api_server() -> None:
    clock, metrics = Clock(), Metrics()
    health = Health(metrics, leader_election=True, lease_seconds=15, clock=clock)
    health.standby()
    assert health.liveness().ok
    assert not health.readiness().ok  # no answer yet
    health.lease_attempt(False)
    assert health.readiness() == health_module.Verdict(True, "standby: another replica holds the Lease")
    assert value(metrics, "imagestreams_leader") == 0
    clock.now += 20
    health.lease_attempt(None)  # tried, but the API server did not answer
    clock.now += 20
    assert health.liveness().ok
    assert not health.readiness().ok
    clock.now += 20
    assert not health.liveness().ok  # 40 s without even a try: the election is stuck


def test_leader_is_ready_once_listed_and_while_it_renews() -> None:
    clock, metrics = Clock(), Metrics()
    health = Health(metrics, leader_election=True, lease_seconds=15, clock=clock)
    health.lease_attempt(True)
    assert value(metrics, "imagestreams_leader") == 1
    health.starting()
    assert health.readiness().message == "not ready: starting"
    listed = threading.Event()
    health.running(asyncio.new_event_loop(), listed.is_set)
    assert "initial listing" in health.readiness().message
    listed.set()
    assert health.readiness() == health_module.Verdict(True, "ready: leading")
    clock.now += 16
    assert not health.readiness().ok
    health.stopping()
    assert not health.readiness().ok and health.liveness().ok


@pytest.fixture
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_liveness_asks_the_event_loop_and_counts_the_watch_streams(
    loop_thread: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health_module, "LOOP_TIMEOUT_SECONDS", 0.3)
    metrics = Metrics()
    health = Health(metrics)
    health.running(loop_thread, lambda: True)
    assert value(metrics, "imagestreams_leader") == 1  # no election: it acts

    async def hold() -> None:
        await asyncio.Event().wait()

    async def spawn() -> list[asyncio.Task[None]]:
        return [asyncio.create_task(hold(), name=f"watcher for kind-{n}@None") for n in range(2)]

    watchers = asyncio.run_coroutine_threadsafe(spawn(), loop_thread).result(5)
    assert health.liveness() == health_module.Verdict(True, "ok: the event loop answers; 2 watch streams")
    loop_thread.call_soon_threadsafe(watchers[0].cancel)
    time.sleep(0.05)
    assert health.liveness() == health_module.Verdict(False, "1 of the 2 watch streams ended")
    loop_thread.call_soon_threadsafe(watchers[1].cancel)
    blocked = threading.Event()
    loop_thread.call_soon_threadsafe(lambda: blocked.wait(2))  # a callback that holds the loop
    verdict = health.liveness()
    blocked.set()
    assert verdict == health_module.Verdict(False, "the event loop did not answer within 0.3 s")


def get(url: str, accept: str = "") -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_the_server_answers_probes_and_scrapes_on_loopback() -> None:
    metrics = Metrics()
    metrics.set_build_info()
    health = Health(metrics)
    server = HealthServer(health, metrics, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert get(f"{base}/healthz")[:2] == (200, "text/plain; charset=utf-8")
        assert get(f"{base}/readyz") == (503, "text/plain; charset=utf-8", "not ready: starting\n")
        status, content_type, body = get(f"{base}/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        assert 'imagestreams_build_info{kopf_version="' in body
        assert "# TYPE imagestreams_imports_total counter" in body
        status, content_type, body = get(f"{base}/metrics", "application/openmetrics-text; version=1.0.0")
        assert content_type.startswith("application/openmetrics-text") and body.endswith("# EOF\n")
        assert get(f"{base}/other")[0] == 404
    finally:
        server.stop()


def test_an_address_in_use_is_an_error() -> None:
    metrics = Metrics()
    first = HealthServer(Health(metrics), metrics, "127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match="in use"):
            HealthServer(Health(metrics), metrics, "127.0.0.1", first.port)
    finally:
        first.stop()


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "127.0.0.1"])
def test_health_settings(address: str) -> None:
    settings = OperatorSettings.from_env({"IMAGESTREAMS_HEALTH_ADDRESS": address, "IMAGESTREAMS_HEALTH_PORT": "8080"})
    assert (settings.health_address, settings.health_port) == (address, 8080)
    assert OperatorSettings().health_port == 0  # no server unless asked for (the chart asks)


def test_bad_health_settings_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="IMAGESTREAMS_HEALTH_ADDRESS: Value error, 'localhost' is not an IP"):
        OperatorSettings.from_env({"IMAGESTREAMS_HEALTH_ADDRESS": "localhost"})
    with pytest.raises(SettingsError, match="IMAGESTREAMS_HEALTH_PORT: Input should be less than or equal to 65535"):
        OperatorSettings.from_env({"IMAGESTREAMS_HEALTH_PORT": "70000"})
