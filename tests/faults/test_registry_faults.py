"""Registry faults end in a clear condition with the last good image kept (issue 8, item 13).

Each fault is injected by a FaultProxy (imagestreams.localcluster.faults) in front of the real plain registry, for an
operator of this module's own watching one solo-* namespace. For every fault: a good image is imported through the
proxy; the fault is switched on for the tag's manifests; a new image is pushed under the tag and an import requested;
the tag's ImportSuccess condition turns False with a message naming the failure, its items keep the good image only,
and the stream's other tag (another repository through the same proxy) and another stream import their new images in
the meantime; then the fault is switched off and the next import requested brings the new image.

Hang and drip last as long as the operator's fixed bounds allow (three tries of the 30 s read timeout; the 120 s
deadline of a lookup: no setting shortens them), so both start as the module starts and finish beside the rest.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from imagestreams.kube.streams import ImageStreamResource
from imagestreams.localcluster import LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.faults import Fault, FaultKind, FaultProxy, fingerprint
from tests.conftest import kubectl, solo_settings
from tests.helpers import OperatorProcess, eventually
from tests.streams import apply_stream, insecure_tag, pull_secret, push_unique

MAX_ATTEMPTS = 3  # the registry client's tries per request on 5xx, 429 and network errors (ClientSettings)


@pytest.fixture(scope="module")
def faults_namespace(admin: Client) -> Iterator[str]:
    """One namespace for the module (solo-*: the session operator ignores it)."""
    name = f"solo-{uuid.uuid4().hex[:10]}"
    admin.create(Namespace(metadata=ObjectMeta(name=name, labels={"imagestreams.test": "true"})))
    yield name
    admin.delete(Namespace, name)


@pytest.fixture(scope="module")
def faults_operator(
    crds: LocalCluster, faults_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        crds.admin_kubeconfig, tmp_path_factory.mktemp("faults-operator"), solo_settings(faults_namespace)
    ).start()
    try:
        yield process
    finally:
        process.stop()


def status_tag(admin: Client, namespace: str, name: str, tag: str) -> dict[str, Any]:
    status = cast(dict[str, Any], admin.get(ImageStreamResource, name, namespace=namespace).status or {})
    for entry in status.get("tags") or []:
        if entry["tag"] == tag:
            return dict(entry)
    return {}


def newest(entry: dict[str, Any]) -> str:
    return str((entry.get("items") or [{}])[0].get("image", ""))


def failing(entry: dict[str, Any]) -> bool:
    return bool(entry.get("conditions"))


def wait_tag(
    read: Callable[[], dict[str, Any]], until: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30
) -> dict[str, Any]:
    """Poll a status tag until `until` holds for it; return it."""

    def probe() -> dict[str, Any] | None:
        entry = read()
        return entry if until(entry) else None

    return eventually(probe, timeout=timeout, what=what)


def request_import(cluster: LocalCluster, namespace: str, name: str) -> None:
    value = f"imagestreams.dev/import-request={uuid.uuid4().hex[:8]}"
    kubectl(cluster, "annotate", "-n", namespace, "imagestream", name, value, "--overwrite")


@dataclass
class Scenario:
    """One stream `name` with tag v1 (the repository the fault hits) and tag other (another repository), both through
    `proxy`, and a bystander stream straight on the registry."""

    cluster: LocalCluster
    admin: Client
    namespace: str
    registry: Registry
    proxy: FaultProxy
    name: str = field(default_factory=lambda: f"faults-{uuid.uuid4().hex[:8]}")
    good: str = ""
    new: dict[str, str] = field(default_factory=dict)  # the digests pushed while the fault is on, by tag

    @property
    def manifests(self) -> str:
        """The path pattern of the faulted repository's manifests."""
        return f"^/v2/faults/{self.name}/manifests/"

    def tag(self, tag: str) -> dict[str, Any]:
        if tag == "bystander":
            return status_tag(self.admin, self.namespace, f"{self.name}-bystander", "v1")
        return status_tag(self.admin, self.namespace, self.name, tag)

    def push(self) -> dict[str, str]:
        return {
            "v1": push_unique(self.registry, f"faults/{self.name}", "v1").digest,
            "other": push_unique(self.registry, f"faults/{self.name}-other", "v1").digest,
            "bystander": push_unique(self.registry, f"faults/{self.name}-bystander", "v1").digest,
        }

    def import_good(self) -> None:
        pushed = self.push()
        self.good = pushed["v1"]
        source = f"{self.proxy.host}/faults/{self.name}"
        apply_stream(
            self.cluster,
            self.namespace,
            self.name,
            [insecure_tag("v1", f"{source}:v1"), insecure_tag("other", f"{source}-other:v1")],
        )
        bystander = f"{self.registry.host}/faults/{self.name}-bystander:v1"
        apply_stream(self.cluster, self.namespace, f"{self.name}-bystander", [insecure_tag("v1", bystander)])
        for tag, digest in pushed.items():
            self.imported(tag, digest)

    def imported(self, tag: str, digest: str) -> dict[str, Any]:
        return wait_tag(lambda: self.tag(tag), lambda e: newest(e) == digest, f"{self.name} {tag} to import {digest}")

    def break_with(self, fault: Fault, *methods: str, times: int | None = None) -> None:
        """Switch `fault` on for the v1 repository's manifests, push new images and request their import."""
        self.proxy.inject(fault.on(self.manifests, *methods, times=times))
        self.new = self.push()
        request_import(self.cluster, self.namespace, self.name)
        request_import(self.cluster, self.namespace, f"{self.name}-bystander")
        # Another stream imports while the fault is on (for hang and drip: while the lookup still waits on it).
        self.imported("bystander", self.new["bystander"])

    def failed(self, timeout: float = 30) -> dict[str, Any]:
        """Wait for v1's condition; check that it kept its good image and that the other tag moved on."""
        entry = wait_tag(lambda: self.tag("v1"), failing, f"{self.name} v1 to fail", timeout)
        assert [item["image"] for item in entry["items"]] == [self.good]
        other = self.tag("other")
        assert newest(other) == self.new["other"] and "conditions" not in other
        [condition] = entry["conditions"]
        assert (condition["type"], condition["status"]) == ("ImportSuccess", "False")
        print(f"\nImportSuccess=False {condition['reason']}: {condition['message']}")
        return dict(condition)

    def spoiled(self, kind: FaultKind) -> int:
        return sum(1 for seen in self.proxy.requests(self.manifests) if seen.answer == kind)

    def recover(self) -> None:
        """Switch the fault off: the next import requested brings the image pushed while it was on."""
        self.proxy.inject(None)
        request_import(self.cluster, self.namespace, self.name)
        entry = self.imported("v1", self.new["v1"])
        assert [item["image"] for item in entry["items"]] == [self.new["v1"], self.good]
        assert "conditions" not in entry


@pytest.fixture
def scenario(
    crds: LocalCluster, admin: Client, faults_namespace: str, faults_operator: OperatorProcess, plain_registry: Registry
) -> Iterator[Scenario]:
    with FaultProxy(plain_registry.url) as proxy:
        yield Scenario(crds, admin, faults_namespace, plain_registry, proxy)


@pytest.fixture(scope="module", autouse=True)
def slow_scenarios(
    crds: LocalCluster, admin: Client, faults_namespace: str, faults_operator: OperatorProcess
) -> Iterator[dict[FaultKind, Scenario]]:
    """Hang and drip, started before the module's first test: each takes the operator a good two minutes to give up."""
    registry = crds.registries[RegistryKind.PLAIN]  # (the plain_registry fixture is function-scoped)
    with FaultProxy(registry.url) as hang_proxy, FaultProxy(registry.url) as drip_proxy:
        scenarios = {
            FaultKind.HANG: Scenario(crds, admin, faults_namespace, registry, hang_proxy),
            FaultKind.DRIP: Scenario(crds, admin, faults_namespace, registry, drip_proxy),
        }
        for scenario in scenarios.values():
            scenario.import_good()
        scenarios[FaultKind.HANG].break_with(Fault.hang(), "HEAD")
        # One byte a second: each read comes well within the read timeout, the answer never within the deadline.
        scenarios[FaultKind.DRIP].break_with(Fault.drip(1.0), "HEAD")
        yield scenarios


FAULTS = [
    pytest.param(Fault.status(500), (), MAX_ATTEMPTS, "InternalError", ["500 Internal Server Error"], id="500"),
    pytest.param(Fault.status(502), (), MAX_ATTEMPTS, "InternalError", ["502 Bad Gateway"], id="502"),
    pytest.param(Fault.status(503), (), MAX_ATTEMPTS, "InternalError", ["503 Service Unavailable"], id="503"),
    pytest.param(
        Fault.status(429, retry_after="1"),
        (),
        MAX_ATTEMPTS,
        "TooManyRequests",
        ["rate limiting", "429 Too Many Requests", "retry after 1 s"],
        id="429-retry-after",
    ),
    pytest.param(
        Fault.truncate(),
        ("GET",),
        MAX_ATTEMPTS,
        "InternalError",
        ["broke off its answer", "after 3 attempts", "received 200 of"],
        id="truncated",
    ),
    pytest.param(
        Fault.oversize(), ("GET",), 1, "InternalError", ["oversized response", "1073741824 bytes"], id="1GB-length"
    ),
    pytest.param(
        Fault.oversize(declared=False),
        ("GET",),
        1,
        "InternalError",
        ["oversized response", "more than 4194304 bytes"],
        id="endless-body",
    ),
    pytest.param(
        Fault.wrong_digest(), ("GET",), 1, "InternalError", ["content integrity error", "expected sha256:"], id="digest"
    ),
    pytest.param(
        Fault.redirect("http://169.254.169.254/latest/meta-data/"),
        ("HEAD",),
        1,
        "Forbidden",
        ["/faults/faults-", "refused a redirect", "to http://169.254.169.254/latest/meta-data/", "denied"],
        id="redirect-to-metadata",
    ),
    pytest.param(
        Fault.redirect("file:///etc/passwd"),
        ("HEAD",),
        1,
        "InternalError",
        ["refused a redirect", "not http(s)"],
        id="redirect-to-file",
    ),
    # "v1" relative to /v2/<repository>/manifests/v1 is the same URL: a redirect loop.
    pytest.param(
        Fault.redirect("v1"), ("HEAD",), 6, "InternalError", ["refused a redirect", "more than 5 redirects"], id="loop"
    ),
]


@pytest.mark.parametrize(("fault", "methods", "spoiled", "reason", "words"), FAULTS)
def test_a_registry_fault_ends_in_a_clear_condition_and_keeps_the_last_good_image(
    scenario: Scenario, fault: Fault, methods: tuple[str, ...], spoiled: int, reason: str, words: list[str]
) -> None:
    scenario.import_good()
    scenario.break_with(fault, *methods)
    condition = scenario.failed()
    assert condition["reason"] == reason
    for word in words:
        assert word in condition["message"]
    assert scenario.spoiled(fault.kind) == spoiled  # each retry (or redirect hop) reached the registry, no more
    scenario.recover()


def test_a_single_503_is_retried_within_the_import(scenario: Scenario) -> None:
    scenario.import_good()
    scenario.break_with(Fault.status(503), times=1)
    entry = scenario.imported("v1", scenario.new["v1"])
    assert "conditions" not in entry
    answers = [seen.answer for seen in scenario.proxy.requests(scenario.manifests)]
    assert answers[-3:] == [FaultKind.STATUS, "200", "200"]  # the HEAD answered 503, then 200; then the GET


def test_a_registry_that_hangs_ends_in_a_timeout(slow_scenarios: dict[FaultKind, Scenario]) -> None:
    scenario = slow_scenarios[FaultKind.HANG]
    condition = scenario.failed(timeout=180)
    assert condition["reason"] == "Timeout"
    assert "timed out talking to" in condition["message"] and f"after {MAX_ATTEMPTS} attempts" in condition["message"]
    assert scenario.spoiled(FaultKind.HANG) == MAX_ATTEMPTS
    scenario.recover()


def test_a_registry_that_drips_its_answer_ends_at_the_lookup_deadline(
    slow_scenarios: dict[FaultKind, Scenario],
) -> None:
    scenario = slow_scenarios[FaultKind.DRIP]
    condition = scenario.failed(timeout=180)
    assert condition["reason"] == "Timeout"
    assert "no answer within 120s" in condition["message"]
    assert scenario.spoiled(FaultKind.DRIP) == 1
    scenario.recover()


def test_two_matching_pull_secrets_the_first_stale(
    crds: LocalCluster,
    admin: Client,
    faults_namespace: str,
    faults_operator: OperatorProcess,
    tls_registry: Registry,
) -> None:
    """Two pull secrets match the registry; the first (by name, the order they are listed and tried in) has a wrong
    password. The stale one alone fails (and so would an operator that tried only the first); with the current one
    beside it, the import succeeds, the registry having seen the stale credential refused first."""
    ns, stale = faults_namespace, "a-password-no-longer-valid"
    assert tls_registry.reader is not None
    reader = tls_registry.reader

    def basic(password: str) -> str:
        return fingerprint("Basic " + base64.b64encode(f"{reader.username}:{password}".encode()).decode())

    def tried(since: int) -> list[tuple[str | None, str]]:
        """The credential (fingerprint) and answer of each manifest request that reached the registry since `since`
        (GETs: a tag never imported is read with a GET at once)."""
        seen = proxy.requests("/manifests/")[since:]
        return [(s.headers.get("Authorization"), s.answer) for s in seen if s.method in ("HEAD", "GET")]

    with FaultProxy(tls_registry.url, ca_file=tls_registry.ca_file) as proxy:
        proxied = dataclasses.replace(tls_registry, host=proxy.host)  # the secrets name the registry as streams do
        repository = f"faults/secrets-{uuid.uuid4().hex[:8]}"
        image = push_unique(tls_registry, repository, "v1", "two-secrets")
        name = f"secrets-{uuid.uuid4().hex[:8]}"
        pull_secret(crds, ns, proxied, name=f"{name}-a-stale", password=stale)
        apply_stream(crds, ns, name, [insecure_tag("v1", f"{proxy.host}/{repository}:v1")])
        entry = wait_tag(lambda: status_tag(admin, ns, name, "v1"), failing, "the stale secret to be refused")
        assert entry["conditions"][0]["reason"] == "Unauthorized"
        alone = tried(0)
        assert alone[0] == (basic(stale), "401") and {answer for _, answer in alone} == {"401"}

        pull_secret(crds, ns, proxied, name=f"{name}-b-current")
        seen_before = len(proxy.requests("/manifests/"))
        request_import(crds, ns, name)
        entry = wait_tag(lambda: status_tag(admin, ns, name, "v1"), lambda e: newest(e) == image.digest, "the import")
        assert "conditions" not in entry
        assert tried(seen_before) == [(basic(stale), "401"), (basic(reader.password), "200")]
