"""Push notifications: each service's payload read into (registry, repository, tag) as streams spell them, the
tokens checked, the per-source limits, the index of scheduled tags, and the endpoint's answers over real HTTP (an
in-process server with a stand-in runtime; tests/integration/test_notifications.py runs the real operator).

The payloads are written in the shape each service documents; the comments name the page (and argocd-image-updater's
parser, pkg/webhook/, which reads the same fields)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from imagestreams.api import rbac
from imagestreams.api.imagestream import ImageStream
from imagestreams.api.settings import OperatorSettings, SettingsError
from imagestreams.controller import notifications as endpoint_module
from imagestreams.controller.metrics import Metrics
from imagestreams.controller.notifications import NotificationServer, SecretTokens
from imagestreams.controller.reconciler import Scheduler, StreamCache
from imagestreams.core.jsonlimits import MAX_JSON_DEPTH
from imagestreams.core.notifications import (
    MAX_NOTIFICATION_BYTES,
    MAX_PUSHES,
    BadNotification,
    Method,
    NotificationFormat,
    Presented,
    PushTarget,
    SourceLimits,
    authenticate,
    parse_notification,
    push_target,
    scheduled_targets,
    tags_following,
    target_of,
    usable_tokens,
)
from tests.unit.test_chart_render import container_env, find, render, template

DIGEST = "sha256:" + "4f" * 32
OTHER_DIGEST = "sha256:" + "a1" * 32
TOKEN = b"0123456789abcdef0123456789abcdef"


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


# --- payloads, one table per service ---------------------------------------------------------------------------------


def distribution_event(action: str, repository: str, tag: str | None, host: str = "registry.example.com:5000") -> Any:
    # distribution.github.io/distribution/about/notifications, "Events"; argocd-image-updater pkg/webhook/gitlab.go
    # reads the same envelope from GitLab's registry.
    target: dict[str, Any] = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 708,
        "digest": DIGEST,
        "length": 708,
        "repository": repository,
        "url": f"https://{host}/v2/{repository}/manifests/{DIGEST}",
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
        "timestamp": "2026-11-30T10:00:00.000000000Z",
        "action": action,
        "target": target,
        "request": {"id": "6df24a34", "addr": "10.0.0.7:50000", "host": host, "method": "PUT", "useragent": "ci"},
        "actor": {"name": "ci"},
        "source": {"addr": "registry-0:5000", "instanceID": "f6d5"},
    }


DOCKER_HUB_PUSH = {
    # docs.docker.com/docker-hub/repos/manage/webhooks, "Example webhook payload"; pkg/webhook/docker.go
    "callback_url": "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg1/",
    "push_data": {"pushed_at": 1417566161, "pusher": "trustedbuilder", "tag": "latest"},
    "repository": {
        "comment_count": 0,
        "date_created": 1417494799,
        "description": "",
        "is_official": False,
        "is_private": True,
        "is_trusted": True,
        "name": "testhook",
        "namespace": "svendowideit",
        "owner": "svendowideit",
        "repo_name": "svendowideit/testhook",
        "repo_url": "https://registry.hub.docker.com/u/svendowideit/testhook/",
        "star_count": 0,
        "status": "Active",
    },
}

QUAY_PUSH = {
    # docs.quay.io/guides/notifications.html, "Repository Push"; pkg/webhook/quay.go
    "name": "repository",
    "repository": "mynamespace/repository",
    "namespace": "mynamespace",
    "docker_url": "quay.io/mynamespace/repository",
    "homepage": "https://quay.io/repository/mynamespace/repository",
    "updated_tags": ["latest", "1.2"],
}


def harbor_push(tag: str, resource_url: str) -> Any:
    # goharbor.io/docs, "Configure Webhooks", the PUSH_ARTIFACT payload; pkg/webhook/harbor.go
    return {
        "type": "PUSH_ARTIFACT",
        "occur_at": 1680501893,
        "operator": "admin",
        "event_data": {
            "resources": [{"digest": DIGEST, "tag": tag, "resource_url": resource_url}],
            "repository": {
                "date_created": 1680501893,
                "name": "alpine",
                "namespace": "library",
                "repo_full_name": "library/alpine",
                "repo_type": "private",
            },
        },
    }


def github_package(action: str = "published", package_type: str = "container", tag: str = "v1.2.0") -> Any:
    # docs.github.com/en/webhooks/webhook-events-and-payloads#package; pkg/webhook/ghcr.go
    return {
        "action": action,
        "package": {
            "id": 1,
            "name": "Web-App",
            "namespace": "Octo-Org",
            "package_type": package_type,
            "owner": {"login": "Octo-Org", "type": "Organization"},
            "package_version": {
                "id": 2,
                "version": OTHER_DIGEST,
                "name": OTHER_DIGEST,
                "container_metadata": {"tag": {"name": tag, "digest": DIGEST}, "labels": {}, "manifest": {}},
            },
            "registry": {"name": "GitHub CONTAINER registry", "type": "CONTAINER", "url": "https://ghcr.io/octo-org"},
        },
        "repository": {"full_name": "Octo-Org/web"},
        "sender": {"login": "octocat"},
    }


@pytest.mark.parametrize(
    ("notification_format", "document", "registry", "expected"),
    [
        (
            NotificationFormat.DISTRIBUTION,
            {
                "events": [
                    distribution_event("push", "team/app", "v1"),
                    distribution_event("pull", "team/app", "v1"),  # pulls are not pushes
                    distribution_event("push", "team/app", None),  # a manifest pushed by digest (an index child)
                    distribution_event("delete", "team/app", "v0"),
                ]
            },
            None,
            [("registry.example.com:5000", "team/app", "v1", DIGEST)],
        ),
        (  # the host a registry reports is replaced by the one streams spell (?registry=)
            NotificationFormat.DISTRIBUTION,
            {"events": [distribution_event("push", "team/app", "v1", host="registry.internal:5000")]},
            "registry.example.com",
            [("registry.example.com", "team/app", "v1", DIGEST)],
        ),
        (  # no request.host: the host of target.url
            NotificationFormat.DISTRIBUTION,
            {"events": [{**distribution_event("push", "team/app", "v1"), "request": {}}]},
            None,
            [("registry.example.com:5000", "team/app", "v1", DIGEST)],
        ),
        (
            NotificationFormat.DOCKER_HUB,
            DOCKER_HUB_PUSH,
            None,
            [("docker.io", "svendowideit/testhook", "latest", None)],
        ),
        (  # an official image: one path component means library/
            NotificationFormat.DOCKER_HUB,
            {"push_data": {"tag": "1.27"}, "repository": {"name": "nginx", "repo_name": "nginx"}},
            None,
            [("docker.io", "library/nginx", "1.27", None)],
        ),
        (  # namespace and name without repo_name
            NotificationFormat.DOCKER_HUB,
            {"push_data": {"tag": "v2"}, "repository": {"name": "app", "namespace": "team"}},
            None,
            [("docker.io", "team/app", "v2", None)],
        ),
        (
            NotificationFormat.QUAY,
            QUAY_PUSH,
            None,
            [("quay.io", "mynamespace/repository", "latest", None), ("quay.io", "mynamespace/repository", "1.2", None)],
        ),
        (  # a self-hosted Quay names its own host in docker_url
            NotificationFormat.QUAY,
            {**QUAY_PUSH, "docker_url": "quay.corp.example/mynamespace/repository", "updated_tags": ["v3"]},
            None,
            [("quay.corp.example", "mynamespace/repository", "v3", None)],
        ),
        (
            NotificationFormat.HARBOR,
            harbor_push("3.20", "harbor.example.com/library/alpine:3.20"),
            None,
            [("harbor.example.com", "library/alpine", "3.20", DIGEST)],
        ),
        (  # pushed by digest: Harbor puts the digest where the tag goes, which is no tag
            NotificationFormat.HARBOR,
            harbor_push(DIGEST, f"harbor.example.com/library/alpine@{DIGEST}"),
            None,
            [],
        ),
        (  # scans, deletions, replications: not pushes
            NotificationFormat.HARBOR,
            {**harbor_push("3.20", "harbor.example.com/library/alpine:3.20"), "type": "SCANNING_COMPLETED"},
            None,
            [],
        ),
        (  # owner and package keep their capitals in GitHub's payload; image names are lowercase
            NotificationFormat.GITHUB,
            github_package(),
            None,
            [("ghcr.io", "octo-org/web-app", "v1.2.0", DIGEST)],
        ),
        (
            NotificationFormat.GITHUB,
            github_package(action="updated", package_type="CONTAINER"),
            None,
            [("ghcr.io", "octo-org/web-app", "v1.2.0", DIGEST)],
        ),
        (NotificationFormat.GITHUB, github_package(package_type="npm"), None, []),
        (NotificationFormat.GITHUB, github_package(action="deleted"), None, []),
        (NotificationFormat.GITHUB, github_package(tag=""), None, []),  # an untagged version
        (  # the older registry_package event
            NotificationFormat.GITHUB,
            {"action": "published", "registry_package": github_package()["package"]},
            None,
            [("ghcr.io", "octo-org/web-app", "v1.2.0", DIGEST)],
        ),
    ],
)
def test_each_format_reports_its_tag_pushes(
    notification_format: NotificationFormat, document: Any, registry: str | None, expected: list[tuple[Any, ...]]
) -> None:
    pushes = parse_notification(notification_format, body(document), registry=registry)
    assert [(*push.target, push.digest) for push in pushes] == expected


@pytest.mark.parametrize(
    ("notification_format", "raw", "message"),
    [
        (NotificationFormat.DISTRIBUTION, b"not json", "not JSON"),
        (NotificationFormat.DISTRIBUTION, b"[]", "not a JSON object"),
        (NotificationFormat.DISTRIBUTION, b"{}", "'events'"),
        (NotificationFormat.DISTRIBUTION, b'{"events": {"action": "push"}}', "not a list"),
        (NotificationFormat.DOCKER_HUB, b'{"repository": {}}', "repo_name"),
        (NotificationFormat.QUAY, b'{"updated_tags": ["v1"]}', "repository"),
        (NotificationFormat.QUAY, b'{"repository": "a/b", "updated_tags": "v1"}', "not a list"),
        (NotificationFormat.HARBOR, b'{"type": "PUSH_ARTIFACT"}', "event_data"),
        (NotificationFormat.GITHUB, b'{"zen": "Design for failure."}', "'package'"),
        # A deeply nested document is refused by core/jsonlimits.py, not with a RecursionError.
        (NotificationFormat.DISTRIBUTION, b"[" * 5000 + b"]" * 5000, f"deeper than {MAX_JSON_DEPTH}"),
    ],
)
def test_a_body_of_the_wrong_shape_is_a_bad_notification(
    notification_format: NotificationFormat, raw: bytes, message: str
) -> None:
    with pytest.raises(BadNotification, match=message):
        parse_notification(notification_format, raw)


def test_limits_on_size_and_number_of_pushes() -> None:
    with pytest.raises(BadNotification, match="larger than"):
        parse_notification(NotificationFormat.DISTRIBUTION, b" " * (MAX_NOTIFICATION_BYTES + 1))
    many = {"events": [distribution_event("push", "team/app", f"v{n}") for n in range(MAX_PUSHES + 1)]}
    with pytest.raises(BadNotification, match=f"more than {MAX_PUSHES} pushes"):
        parse_notification(NotificationFormat.DISTRIBUTION, body(many))
    fewer = {"events": [distribution_event("push", "team/app", f"v{n}") for n in range(MAX_PUSHES)]}
    assert len(parse_notification(NotificationFormat.DISTRIBUTION, body(fewer))) == MAX_PUSHES


def test_repeated_pushes_in_one_delivery_count_once() -> None:
    events = {"events": [distribution_event("push", "team/app", "v1")] * 3}
    assert len(parse_notification(NotificationFormat.DISTRIBUTION, body(events))) == 1


# --- names: a push and a stream's source meet on one spelling --------------------------------------------------------


@pytest.mark.parametrize(
    ("pull_spec", "pushed"),
    [
        ("nginx", ("docker.io", "nginx", "latest")),
        ("nginx:1.27", ("index.docker.io", "library/nginx", "1.27")),
        ("docker.io/library/nginx:1.27", ("registry-1.docker.io", "nginx", "1.27")),
        ("team/app:v1", ("docker.io", "team/app", "v1")),
        ("Registry.Example.com:5000/team/app:v1", ("registry.example.com:5000", "team/app", "v1")),
        ("localhost:5000/app", ("LOCALHOST:5000", "app", "latest")),
    ],
)
def test_a_push_matches_every_spelling_of_its_source(pull_spec: str, pushed: tuple[str, str, str]) -> None:
    assert target_of(pull_spec) is not None
    assert target_of(pull_spec) == push_target(*pushed)


@pytest.mark.parametrize(
    ("pull_spec", "pushed"),
    [
        ("registry.example.com/team/app:v1", ("mirror.example.com", "team/app", "v1")),  # a mirror is another host
        ("registry.example.com/team/app:v1", ("registry.example.com:443", "team/app", "v1")),  # spelled otherwise
        ("registry.example.com/team/app:v1", ("registry.example.com", "team/app", "v2")),
        ("registry.example.com/team/app:v1", ("registry.example.com", "team/other", "v1")),
    ],
)
def test_a_push_elsewhere_does_not_match(pull_spec: str, pushed: tuple[str, str, str]) -> None:
    assert target_of(pull_spec) != push_target(*pushed)


def test_what_cannot_be_a_pushed_tag_is_left_out() -> None:
    assert push_target("registry", "app", "v1") is None  # no dot or port: a reference would read it as a path
    assert push_target("registry.example.com", "app", DIGEST) is None
    assert push_target("registry.example.com", "App", "v1") is None  # not a repository name
    assert push_target("", "app", "v1") is None
    assert target_of(f"registry.example.com/app@{DIGEST}") is None  # pinned: no push changes it
    assert target_of("NOT A REFERENCE") is None


def stream(namespace: str, name: str, tags: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"tags": tags},
    }


def tag(name: str, pull_spec: str, *, scheduled: bool = True, **extra: Any) -> dict[str, Any]:
    return {"name": name, "from": {"kind": "DockerImage", "name": pull_spec}, "importPolicy": {"scheduled": scheduled},
            **extra}  # fmt: skip


APP = "registry.example.com/team/app"
SCHEDULED = {"importPolicy": {"scheduled": True}}


def test_only_scheduled_imported_tags_follow_pushes() -> None:
    body = stream(
        "ns",
        "s",
        [
            tag("scheduled", f"{APP}:v1"),
            tag("default-tag", APP),
            tag("not-scheduled", f"{APP}:v1", scheduled=False),
            tag("pinned", f"{APP}@{DIGEST}"),
            tag("reference", f"{APP}:v1", reference=True),
            {"name": "alias", "from": {"kind": "ImageStreamTag", "name": "scheduled"}, **SCHEDULED},
        ],
    )
    targets = scheduled_targets("ns", "s", ImageStream.model_validate(body))
    assert targets == {
        "scheduled": PushTarget("registry.example.com", "team/app", "v1"),
        "default-tag": PushTarget("registry.example.com", "team/app", "latest"),
    }
    assert tags_following(targets, [PushTarget("registry.example.com", "team/app", "v1")]) == {"scheduled"}


def test_the_cache_finds_every_stream_that_follows_a_push_and_forgets_removed_ones() -> None:
    cache = StreamCache()
    v1 = PushTarget("registry.example.com", "team/app", "v1")
    cache.put(("a", "one"), stream("a", "one", [tag("x", f"{APP}:v1"), tag("y", f"{APP}:v1"), tag("z", f"{APP}:v2")]))
    cache.put(("b", "two"), stream("b", "two", [tag("latest", f"{APP}:v1")]))
    cache.put(("c", "three"), stream("c", "three", [tag("latest", f"{APP}:v1", scheduled=False)]))
    assert cache.following((v1,)) == {("a", "one"): {"x", "y"}, ("b", "two"): {"latest"}}
    # A changed spec moves the stream in the index; a removed stream leaves it.
    cache.put(("a", "one"), stream("a", "one", [tag("x", f"{APP}:v2")]))
    cache.remove(("b", "two"))
    assert cache.following((v1,)) == {}
    assert cache.following((PushTarget("registry.example.com", "team/app", "v2"),)) == {("a", "one"): {"x"}}


def test_pushed_tags_are_taken_once_by_the_next_pass_and_forgotten_with_the_stream() -> None:
    scheduler = Scheduler(OperatorSettings())
    scheduler.push_seen(("ns", "s"), {"a"})
    scheduler.push_seen(("ns", "s"), {"b"})
    assert scheduler.take_pushed(("ns", "s")) == {"a", "b"}
    assert scheduler.take_pushed(("ns", "s")) == frozenset()
    scheduler.push_seen(("ns", "s"), {"a"})
    scheduler.forget(("ns", "s"))
    assert scheduler.take_pushed(("ns", "s")) == frozenset()


# --- tokens ----------------------------------------------------------------------------------------------------------


def signature(token: bytes, payload: bytes) -> str:
    return "sha256=" + hmac.new(token, payload, hashlib.sha256).hexdigest()


def basic(password: bytes) -> str:
    return "Basic " + base64.b64encode(b"registry:" + password).decode()


PAYLOAD = b'{"events": []}'


@pytest.mark.parametrize(
    ("presented", "method"),
    [
        (Presented(authorization=f"Bearer {TOKEN.decode()}"), Method.BEARER),
        (Presented(authorization=f"bearer   {TOKEN.decode()} "), Method.BEARER),
        (Presented(authorization=TOKEN.decode()), Method.HEADER),  # Harbor sends its auth header as configured
        (Presented(authorization=basic(TOKEN)), Method.HEADER),  # a URL with user:token@
        (Presented(path_token=TOKEN.decode()), Method.PATH),
        (Presented(signature=signature(TOKEN, PAYLOAD)), Method.SIGNATURE),
        (Presented(signature=signature(TOKEN, PAYLOAD).upper().replace("SHA256", "sha256")), Method.SIGNATURE),
        (Presented(authorization="Bearer wrong-token-wrong-token"), None),
        (Presented(authorization=f"Bearer {TOKEN.decode()[:-1]}"), None),
        (Presented(authorization=basic(b"wrong")), None),
        (Presented(path_token=TOKEN.decode() + "x"), None),
        (Presented(signature=signature(TOKEN, PAYLOAD + b" ")), None),  # signed another body
        (Presented(signature=signature(b"another key of 32 bytes, wrong!!", PAYLOAD)), None),
        (Presented(signature="sha1=" + hmac.new(TOKEN, PAYLOAD, hashlib.sha1).hexdigest()), None),
        (Presented(authorization="Bearer "), None),
        (Presented(), None),
    ],
)
def test_a_request_proves_it_knows_a_token(presented: Presented, method: Method | None) -> None:
    assert authenticate(presented, PAYLOAD, (TOKEN,)) == method


def test_no_token_accepts_nothing_and_every_listed_token_is_accepted() -> None:
    assert authenticate(Presented(authorization="Bearer "), PAYLOAD, ()) is None
    assert authenticate(Presented(path_token=""), PAYLOAD, ()) is None
    old, new = b"old-token-old-token-old", b"new-token-new-token-new"
    for token in (old, new):  # during a rotation both are accepted
        assert authenticate(Presented(authorization=f"Bearer {token.decode()}"), PAYLOAD, (old, new)) is Method.BEARER


def test_tokens_are_the_secrets_values_trimmed_and_short_ones_left_out() -> None:
    tokens, too_short = usable_tokens({"token": TOKEN + b"\n", "next": b"  " + TOKEN + b" ", "weak": b"secret"})
    assert tokens == (TOKEN,)
    assert too_short == ("weak",)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_secret_is_read_again_after_the_refresh_interval_and_kept_when_it_cannot_be() -> None:
    clock = Clock()
    reads: list[dict[str, bytes] | Exception | None] = [{"token": TOKEN}, RuntimeError("API down"), None]

    def read() -> dict[str, bytes] | None:
        answer = reads.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    tokens = SecretTokens(read, "ops/notifications", clock=clock)
    assert tokens.current() == (TOKEN,)
    clock.now += endpoint_module.TOKEN_REFRESH_SECONDS - 1
    assert tokens.current() == (TOKEN,)  # not read again yet
    assert len(reads) == 2
    clock.now += 1
    assert tokens.current() == (TOKEN,)  # the read failed: the tokens read before are kept
    assert len(reads) == 1
    clock.now += endpoint_module.TOKEN_REFRESH_SECONDS
    assert tokens.current() == ()  # the Secret is gone: nothing is accepted


# --- rate limits -------------------------------------------------------------------------------------------------


def test_a_source_gets_its_burst_then_its_rate_and_others_are_unaffected() -> None:
    limits = SourceLimits(rate=2.0, burst=3)
    flood, other = ("10.0.0.1", "distribution"), ("10.0.0.2", "distribution")
    assert [limits.admit(flood, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limits.admit(flood, 0.0) == pytest.approx(0.5)  # one token every 0.5 s
    assert limits.admit(other, 0.0) == 0.0
    assert limits.admit(("10.0.0.1", "harbor"), 0.0) == 0.0  # another receiver at the same address
    assert limits.admit(flood, 0.5) == 0.0
    assert limits.admit(flood, 0.5) > 0


def test_the_limits_remember_a_bounded_number_of_sources() -> None:
    limits = SourceLimits(rate=1.0, burst=1, max_sources=100)
    for n in range(1000):
        limits.admit((f"10.0.{n // 256}.{n % 256}", "quay"), 0.0)
    assert len(limits) == 100


def test_notification_settings_and_their_bounds() -> None:
    settings = OperatorSettings.from_env(
        {
            "IMAGESTREAMS_NOTIFICATIONS_PORT": "8090",
            "IMAGESTREAMS_NOTIFICATIONS_ADDRESS": "::",
            "IMAGESTREAMS_NOTIFICATIONS_SECRET": "tokens",
            "IMAGESTREAMS_NOTIFICATIONS_NAMESPACE": "ops",
            "IMAGESTREAMS_NOTIFICATIONS_RATE": "0.5",
            "IMAGESTREAMS_NOTIFICATIONS_BURST": "10",
        }
    )
    assert (settings.notifications_port, settings.notifications_address) == (8090, "::")
    assert (settings.notifications_namespace, settings.notifications_secret) == ("ops", "tokens")
    assert (settings.notifications_rate, settings.notifications_burst) == (0.5, 10)
    assert OperatorSettings().notifications_port == 0  # off unless asked for
    for name, value in (("ADDRESS", "registry.example.com"), ("RATE", "0"), ("BURST", "0"), ("PORT", "70000")):
        with pytest.raises(SettingsError, match=f"NOTIFICATIONS_{name}"):
            OperatorSettings.from_env({f"IMAGESTREAMS_NOTIFICATIONS_{name}": value})


# --- the endpoint over HTTP --------------------------------------------------------------------------------------


class StaticTokens:
    def __init__(self, *tokens: bytes) -> None:
        self.tokens = tokens

    def current(self) -> tuple[bytes, ...]:
        return self.tokens


class Runtime:
    """Stands in for Runtime.pushed on a real event loop in another thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.received: list[tuple[PushTarget, ...]] = []
        self.answer: int | None = 2

    def pushed(self, targets: tuple[PushTarget, ...]) -> int | None:
        asyncio.get_running_loop()  # called on the loop, as the real runtime requires
        self.received.append(targets)
        return self.answer

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[tuple[NotificationServer, Runtime, Metrics]]:
    metrics, runtime = Metrics(), Runtime()
    server = NotificationServer(
        StaticTokens(TOKEN), "127.0.0.1", 0, rate=0.1, burst=3, observe=metrics.notification_received
    ).start()
    server.attach(runtime.loop, runtime.pushed)
    try:
        yield server, runtime, metrics
    finally:
        server.stop()
        runtime.stop()


def post(
    port: int,
    path: str,
    payload: bytes,
    headers: dict[str, str] | None = None,
    *,
    source: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        connection.request("POST", path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


ENVELOPE = body({"events": [distribution_event("push", "team/app", "v1")]})
BEARER = {"Authorization": f"Bearer {TOKEN.decode()}"}


def counted(metrics: Metrics, result: str, notification_format: str = "distribution") -> float:
    value = metrics.registry.get_sample_value(
        "imagestreams_notifications_total", {"format": notification_format, "result": result}
    )
    return value or 0.0


def test_an_accepted_notification_reaches_the_runtime_and_says_what_it_did(
    served: tuple[NotificationServer, Runtime, Metrics],
) -> None:
    server, runtime, metrics = served
    status, _, answer = post(server.port, "/notifications/distribution", ENVELOPE, BEARER)
    assert (status, json.loads(answer)) == (202, {"pushes": 1, "scheduledTags": 2})
    assert runtime.received == [(PushTarget("registry.example.com:5000", "team/app", "v1"),)]
    assert counted(metrics, "accepted") == 1
    assert (
        metrics.registry.get_sample_value("imagestreams_notification_scheduled_tags_total", {"format": "distribution"})
        == 2
    )
    # The token in the path, and ?registry= naming the registry as streams spell it.
    path = f"/notifications/quay/{TOKEN.decode()}?registry=quay.example"
    status, _, answer = post(server.port, path, body(QUAY_PUSH))
    assert (status, json.loads(answer)["pushes"]) == (202, 2)
    assert {target.registry for target in runtime.received[-1]} == {"quay.example"}


@pytest.mark.parametrize(
    ("path", "payload", "headers", "status", "result"),
    [
        ("/notifications/distribution", ENVELOPE, {}, 401, "unauthorized"),
        ("/notifications/distribution", ENVELOPE, {"Authorization": "Bearer not-the-token-at-al"}, 401, "unauthorized"),
        ("/notifications/distribution/not-the-token-at-all", ENVELOPE, {}, 401, "unauthorized"),
        ("/notifications/distribution", b"{", BEARER, 400, "bad_request"),
        # Refused on its Content-Length, unread (a client sending that much would see its connection reset).
        ("/notifications/distribution", ENVELOPE, {**BEARER, "Content-Length": str(MAX_NOTIFICATION_BYTES + 1)}, 413,
         "too_large"),
    ],
)  # fmt: skip
def test_refusals(
    served: tuple[NotificationServer, Runtime, Metrics],
    path: str,
    payload: bytes,
    headers: dict[str, str],
    status: int,
    result: str,
) -> None:
    server, runtime, metrics = served
    answered, answer_headers, _ = post(server.port, path, payload, headers)
    assert answered == status
    if status == 401:
        assert answer_headers["WWW-Authenticate"].startswith("Bearer")
    assert counted(metrics, result) == 1
    assert runtime.received == []


@pytest.mark.parametrize("path", ["/", "/notifications/", "/notifications/gcr", "/notifications/quay/a/b", "/metrics"])
def test_unknown_paths_are_not_found(served: tuple[NotificationServer, Runtime, Metrics], path: str) -> None:
    server, _, _ = served
    assert post(server.port, path, ENVELOPE, BEARER)[0] == 404


def test_github_signs_its_deliveries_and_pings_once(served: tuple[NotificationServer, Runtime, Metrics]) -> None:
    server, runtime, _ = served
    payload = body(github_package())
    signed = {"X-GitHub-Event": "package", "X-Hub-Signature-256": signature(TOKEN, payload)}
    status, _, answer = post(server.port, "/notifications/github", payload, signed)
    assert (status, json.loads(answer)["pushes"]) == (202, 1)
    ping = body({"zen": "Keep it logically awesome.", "hook_id": 1})
    status, _, answer = post(server.port, "/notifications/github", ping,
                             {"X-GitHub-Event": "ping", "X-Hub-Signature-256": signature(TOKEN, ping)})  # fmt: skip
    assert (status, answer) == (200, b"pong\n")
    assert len(runtime.received) == 1


def test_a_replica_that_does_not_act_answers_503_after_checking_the_token(
    served: tuple[NotificationServer, Runtime, Metrics],
) -> None:
    server, runtime, metrics = served
    server.detach()  # a standby, or a leader that stopped
    status, headers, _ = post(server.port, "/notifications/distribution", ENVELOPE, BEARER)
    assert (status, headers["Retry-After"]) == (503, "1")
    assert post(server.port, "/notifications/distribution", ENVELOPE)[0] == 401
    server.attach(runtime.loop, runtime.pushed)
    runtime.answer = None  # the leader before its initial listing
    assert post(server.port, "/notifications/distribution", ENVELOPE, BEARER)[0] == 503
    assert counted(metrics, "standby") == 2


def test_a_flood_from_one_source_is_limited_and_another_source_is_not(
    served: tuple[NotificationServer, Runtime, Metrics],
) -> None:
    server, _, metrics = served
    flood = [post(server.port, "/notifications/distribution", ENVELOPE, BEARER)[0] for _ in range(6)]
    assert flood[:3] == [202, 202, 202]  # the burst
    assert 429 in flood[3:]
    status, headers, _ = post(server.port, "/notifications/distribution", ENVELOPE, BEARER)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    # Another address, and another receiver at the flooding address, are served at once.
    assert post(server.port, "/notifications/distribution", ENVELOPE, BEARER, source="127.0.0.2")[0] == 202
    assert post(server.port, "/notifications/quay", body(QUAY_PUSH), BEARER)[0] == 202
    assert counted(metrics, "rate_limited") >= 2


def test_get_is_not_allowed(served: tuple[NotificationServer, Runtime, Metrics]) -> None:
    server, _, _ = served
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/notifications/distribution")
    response = connection.getresponse()
    assert (response.status, response.getheader("Allow")) == (405, "POST")
    connection.close()


# --- the chart -----------------------------------------------------------------------------------------------------


NAME = "rel-imagestream-operator-notifications"  # the Service, Role and default Secret of release rel


def test_the_chart_serves_notifications_only_when_asked() -> None:
    objects = render()
    assert not [o for o in objects if o["metadata"]["name"].endswith("-notifications")]
    assert "IMAGESTREAMS_NOTIFICATIONS_PORT" not in container_env(objects)


def test_the_chart_wires_the_port_the_service_the_settings_and_reading_one_secret() -> None:
    values = {
        "notifications": {"enabled": True, "port": 8091, "address": "::", "service": {"port": 8080}},
        "settings": {"notificationsRate": 2.5, "notificationsBurst": 20},
    }
    objects = render(values)
    settings = OperatorSettings.from_env(container_env(objects))
    assert (settings.notifications_port, settings.notifications_address) == (8091, "::")
    assert (settings.notifications_namespace, settings.notifications_secret) == ("ops", NAME)
    assert (settings.notifications_rate, settings.notifications_burst) == (2.5, 20)
    (deployment,) = find(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "notifications", "containerPort": 8091, "protocol": "TCP"} in container["ports"]
    (service,) = find(objects, "Service", NAME)
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (8080, "notifications")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (role,) = find(objects, "Role", NAME)
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == rbac.notification_secret_rules(NAME)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [NAME]}]
    (binding,) = find(objects, "RoleBinding", NAME)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_the_chart_takes_a_secret_of_your_naming_and_can_leave_out_the_service() -> None:
    notifications = {"enabled": True, "secretName": "registry-tokens", "service": {"enabled": False}}
    objects = render({"notifications": notifications})
    assert container_env(objects)["IMAGESTREAMS_NOTIFICATIONS_SECRET"] == "registry-tokens"
    assert not find(objects, "Service", NAME)
    (role,) = find(objects, "Role", NAME)
    assert role["rules"][0]["resourceNames"] == ["registry-tokens"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"notifications": {"enabled": True, "port": 0}}, "port"),
        ({"notifications": {"enabled": True, "address": "localhost"}}, "address"),
        ({"notifications": {"token": "in values"}}, "token"),
        ({"settings": {"notificationsRate": 0}}, "notificationsRate"),
        ({"settings": {"notificationsBurst": 0}}, "notificationsBurst"),
    ],
)
def test_bad_notification_values_are_refused(values: dict[str, Any], message: str) -> None:
    result = template(values, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_deliveries_without_a_valid_token_never_spend_the_budget_of_those_with_one(
    served: tuple[NotificationServer, Runtime, Metrics],
) -> None:
    """A registry set up with a wrong token retries forever; one behind the same address with the right token is
    still served."""
    server, _, metrics = served
    wrong = {"Authorization": "Bearer not-the-token-at-al"}
    refused = [post(server.port, "/notifications/distribution", ENVELOPE, wrong)[0] for _ in range(6)]
    assert refused[:3] == [401, 401, 401]  # the burst
    assert 429 in refused[3:]
    assert post(server.port, "/notifications/quay", body(QUAY_PUSH), wrong)[0] == 429  # one bucket per address
    assert post(server.port, "/notifications/distribution", ENVELOPE, BEARER)[0] == 202
    assert counted(metrics, "unauthorized") == 3
