"""Image change triggers on real workloads, applied by the operator running as its own process."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import unique_image
from tests.conftest import kubectl, namespace_events, solo_settings
from tests.helpers import OperatorProcess, eventually, operator_writes, pusher_for
from tests.streams import apply_stream, grant_image_puller, insecure_tag, wait_for_tag

TRIGGERS = "image.openshift.io/triggers"
POD = "spec.template.spec"
CRON_POD = "spec.jobTemplate.spec.template.spec"


def trigger(name: str, field_path: str, *, paused: bool | None = None, namespace: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"from": {"kind": "ImageStreamTag", "name": name}, "fieldPath": field_path}
    if namespace:
        entry["from"]["namespace"] = namespace
    if paused is not None:
        entry["paused"] = paused
    return entry


def by_name(container: str, pod: str = POD, listed: str = "containers") -> str:
    return f'{pod}.{listed}[?(@.name=="{container}")].image'


def pod_template(containers: list[str], init: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": f"placeholder/{c}:0"} for c in containers]}
    if init:
        spec["initContainers"] = [{"name": c, "image": f"placeholder/{c}:0"} for c in init]
    return {"metadata": {"labels": {"app": "x"}}, "spec": spec}


def workload(
    kind: str, namespace: str, name: str, triggers: Any, containers: list[str], *, init: list[str] | None = None
) -> dict[str, Any]:
    annotation = triggers if isinstance(triggers, str) else json.dumps(triggers)
    template = pod_template(containers, init)
    metadata = {"name": name, "namespace": namespace, "annotations": {TRIGGERS: annotation}}
    if kind == "CronJob":
        template["spec"]["restartPolicy"] = "Never"
        spec: dict[str, Any] = {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"template": template}}}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata, "spec": spec}
    if kind == "Job":
        template["spec"]["restartPolicy"] = "Never"
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata, "spec": {"template": template}}
    spec = {"selector": {"matchLabels": {"app": "x"}}, "template": template}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec}


def apply(cluster: LocalCluster, manifest: dict[str, Any]) -> None:
    kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(manifest))


def get(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        kubectl(cluster, "get", kind.lower(), name, "-n", namespace, "-o", "json", "--show-managed-fields")
    )
    return body


def container_image(body: dict[str, Any], container: str, pod: str = POD, listed: str = "containers") -> str:
    node: Any = body
    for part in pod.split("."):
        node = node[part]
    return next(c["image"] for c in node[listed] if c["name"] == container)


def wait_image(
    cluster: LocalCluster,
    kind: str,
    name: str,
    *,
    ns: str,
    container: str,
    image: str,
    pod: str = POD,
    listed: str = "containers",
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        body = get(cluster, kind, ns, name)
        return body if container_image(body, container, pod, listed) == image else None

    return eventually(probe, timeout=30, what=f"{kind} {name} container {container} to become {image}")


def warnings(cluster: LocalCluster, namespace: str, name: str, reason: str | None = None) -> list[str]:
    items = namespace_events(cluster, namespace)
    return [
        e["message"]
        for e in items
        if e["type"] == "Warning" and e["involvedObject"]["name"] == name and reason in (None, e["reason"])
    ]


class Source:
    """An imported stream tag backed by a repository in the plain registry."""

    def __init__(
        self, cluster: LocalCluster, namespace: str, registry: Registry, repository: str, stream: str = "app"
    ) -> None:
        self.cluster, self.namespace, self.registry, self.repository, self.stream = (
            cluster,
            namespace,
            registry,
            repository,
            stream,
        )
        self.requests = 0

    def push(self, tag: str = "v1") -> str:
        image = unique_image(self.repository)
        with pusher_for(self.registry) as client:
            client.push_image(self.repository, tag, image)
        return image.digest

    def create(self, tags: tuple[str, ...] = ("v1",)) -> dict[str, str]:
        digests = {tag: self.push(tag) for tag in tags}
        apply_stream(
            self.cluster,
            self.namespace,
            self.stream,
            [insecure_tag(tag, f"{self.registry.host}/{self.repository}:{tag}") for tag in tags],
        )
        for tag, digest in digests.items():
            wait_for_tag(self.cluster, self.namespace, self.stream, tag, image=digest)
        return {tag: self.reference(digest) for tag, digest in digests.items()}

    def update(self, tag: str = "v1") -> str:
        digest = self.push(tag)
        self.requests += 1
        kubectl(
            self.cluster,
            "annotate",
            "-n",
            self.namespace,
            "is",
            self.stream,
            f"imagestreams.dev/import-request=update-{self.requests}",
            "--overwrite",
        )
        wait_for_tag(self.cluster, self.namespace, self.stream, tag, image=digest)
        return self.reference(digest)

    def reference(self, digest: str) -> str:
        return f"{self.registry.host}/{self.repository}@{digest}"


@pytest.fixture
def source(
    crds: LocalCluster, namespace: str, operator: OperatorProcess, plain_registry: Registry, repository: str
) -> Source:
    return Source(crds, namespace, plain_registry, repository)


def test_deployment_follows_its_tag_and_gets_a_new_replicaset(
    crds: LocalCluster, namespace: str, source: Source
) -> None:
    first = source.create()["v1"]
    apply(crds, workload("Deployment", namespace, "web", [trigger("app:v1", by_name("web"))], ["web", "sidecar"]))
    body = wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=first)
    assert container_image(body, "sidecar") == "placeholder/sidecar:0"  # untouched

    second = source.update()
    wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=second)

    def replicaset_with(image: str) -> bool:
        sets = json.loads(kubectl(crds, "get", "replicasets", "-n", namespace, "-o", "json"))["items"]
        return any(container_image(rs, "web") == image for rs in sets)

    eventually(lambda: replicaset_with(second), what="the controller manager to create a ReplicaSet for the new image")
    assert replicaset_with(first)
    # The write is server-side apply under the operator's field manager, owning only the image.
    managed = get(crds, "Deployment", namespace, "web")["metadata"]["managedFields"]
    ours = [m for m in managed if m["manager"] == "imagestream-operator"]
    assert [m["operation"] for m in ours] == ["Apply"]
    fields = ours[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert fields == {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}

    def told() -> bool:
        # Events are posted after the workload writes (they never delay them), so this one may come a moment later.
        events = namespace_events(crds, namespace)
        messages = [e["message"] for e in events if e["reason"] == "ImageChangeTriggered"]
        return any(second in message and first in message and "app:v1" in message for message in messages)

    eventually(told, timeout=10, what="an ImageChangeTriggered Event naming both images")


@pytest.mark.parametrize(
    ("kind", "pod"),
    [("StatefulSet", POD), ("DaemonSet", POD), ("CronJob", CRON_POD)],
)
def test_other_workload_kinds_follow_their_tag(
    crds: LocalCluster, namespace: str, source: Source, kind: str, pod: str
) -> None:
    first = source.create()["v1"]
    apply(crds, workload(kind, namespace, "w", [trigger("app:v1", by_name("main", pod))], ["main"]))
    wait_image(crds, kind, "w", ns=namespace, container="main", image=first, pod=pod)
    second = source.update()
    wait_image(crds, kind, "w", ns=namespace, container="main", image=second, pod=pod)


def test_init_containers_and_index_selectors(crds: LocalCluster, namespace: str, source: Source) -> None:
    refs = source.create(("v1", "tools"))
    triggers = [
        trigger("app:tools", by_name("setup", listed="initContainers")),
        trigger("app:v1", f"{POD}.containers[1].image"),
    ]
    apply(crds, workload("Deployment", namespace, "web", triggers, ["first", "second"], init=["setup"]))
    body = wait_image(
        crds, "Deployment", "web", ns=namespace, container="setup", image=refs["tools"], listed="initContainers"
    )
    body = wait_image(crds, "Deployment", "web", ns=namespace, container="second", image=refs["v1"])
    assert container_image(body, "first") == "placeholder/first:0"


def test_paused_trigger_is_not_applied(crds: LocalCluster, namespace: str, source: Source) -> None:
    source.create()
    apply(crds, workload("Deployment", namespace, "web", [trigger("app:v1", by_name("web"), paused=True)], ["web"]))
    # A second, unpaused workload proves the operator has seen the stream by now.
    first = source.reference(source.push("other"))
    apply_stream(
        crds,
        namespace,
        "app",
        [
            insecure_tag("v1", f"{source.registry.host}/{source.repository}:v1"),
            insecure_tag("other", f"{source.registry.host}/{source.repository}:other"),
        ],
    )
    apply(crds, workload("Deployment", namespace, "probe", [trigger("app:other", by_name("web"))], ["web"]))
    wait_image(crds, "Deployment", "probe", ns=namespace, container="web", image=first)
    assert container_image(get(crds, "Deployment", namespace, "web"), "web") == "placeholder/web:0"


def test_manual_edit_is_reverted_unless_paused(crds: LocalCluster, namespace: str, source: Source) -> None:
    current = source.create()["v1"]
    apply(crds, workload("Deployment", namespace, "web", [trigger("app:v1", by_name("web"))], ["web"]))
    wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=current)
    kubectl(crds, "set", "image", "-n", namespace, "deployment/web", "web=nginx:manual")
    wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=current)

    paused = json.dumps([trigger("app:v1", by_name("web"), paused=True)])
    kubectl(crds, "annotate", "-n", namespace, "deployment/web", f"{TRIGGERS}={paused}", "--overwrite")
    kubectl(crds, "set", "image", "-n", namespace, "deployment/web", "web=nginx:rollback")
    source.update()
    body = get(crds, "Deployment", namespace, "web")
    assert container_image(body, "web") == "nginx:rollback"


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        # What makes OpenShift's json.Unmarshal or its duplicate check refuse the whole annotation.
        ("not json", "is not valid JSON"),
        (json.dumps([{**trigger("app:v1", by_name("web")), "paused": "false"}]), "paused"),
        (json.dumps([trigger("app:v1", by_name("web")), trigger("app:v1", by_name("web"))]), "duplicate"),
        # A trigger whose tag has an image but whose container cannot be found stops every trigger, as on OpenShift.
        (json.dumps([trigger("app:v1", by_name("nope")), trigger("app:v1", by_name("web"))]), "no container named"),
        (json.dumps([trigger("app:v1", f"{POD}.containers[?(@.name='web')].image")]), "double quotes"),
    ],
)
def test_bad_annotations_warn_and_write_nothing(
    crds: LocalCluster, namespace: str, source: Source, annotation: str, message: str
) -> None:
    source.create()
    apply(crds, workload("Deployment", namespace, "web", annotation, ["web"]))

    def warned() -> list[str] | None:
        found = [m for m in warnings(crds, namespace, "web", "InvalidImageTrigger") if message in m]
        return found or None

    eventually(warned, timeout=20, what=f"a Warning event mentioning {message!r}")
    body = get(crds, "Deployment", namespace, "web")
    assert container_image(body, "web") == "placeholder/web:0"
    assert not [m for m in body["metadata"]["managedFields"] if m["manager"] == "imagestream-operator"]


@pytest.mark.parametrize(
    ("odd", "reason"),
    [
        (
            {"from": {"kind": "DockerImage", "name": "app:v1"}, "fieldPath": by_name("side")},
            'trigger 1 is ignored: from.kind must be "ImageStreamTag" (found "DockerImage")',
        ),
        (
            trigger("app:v1", f'{CRON_POD}.containers[?(@.name=="side")].image'),
            f'trigger 1 is ignored: fieldPath "{CRON_POD}.containers',
        ),
    ],
)
def test_an_entry_openshift_skips_is_ignored_with_a_warning_and_the_others_apply(
    crds: LocalCluster, namespace: str, source: Source, odd: dict[str, Any], reason: str
) -> None:
    first = source.create()["v1"]
    apply(crds, workload("Deployment", namespace, "web", [odd, trigger("app:v1", by_name("web"))], ["web", "side"]))
    body = wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=first)
    assert container_image(body, "side") == "placeholder/side:0"
    ignored = eventually(
        lambda: warnings(crds, namespace, "web", "IgnoredImageTrigger") or None, what="an IgnoredImageTrigger Warning"
    )
    assert len(ignored) == 1
    assert ignored[0].startswith(reason)
    assert warnings(crds, namespace, "web", "InvalidImageTrigger") == []
    # The next image is applied too, and the unchanged annotation is not reported again.
    second = source.update()
    wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=second)
    assert container_image(get(crds, "Deployment", namespace, "web"), "side") == "placeholder/side:0"
    assert len(warnings(crds, namespace, "web", "IgnoredImageTrigger")) == 1


def test_two_triggers_on_one_container_the_last_wins_with_a_warning(
    crds: LocalCluster, namespace: str, source: Source
) -> None:
    refs = source.create(("v1", "v2"))
    triggers = [trigger("app:v1", by_name("web")), trigger("app:v2", f"{POD}.containers[0].image")]
    apply(crds, workload("Deployment", namespace, "web", triggers, ["web"]))
    wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=refs["v2"])
    [message] = eventually(
        lambda: warnings(crds, namespace, "web", "IgnoredImageTrigger") or None, what="an IgnoredImageTrigger Warning"
    )
    assert message.startswith("trigger 1 is overridden: triggers 1 (app:v1) and 2 (app:v2) both set the image of")


def test_null_means_no_triggers_without_a_warning(crds: LocalCluster, namespace: str, source: Source) -> None:
    current = source.create()["v1"]
    apply(crds, workload("Deployment", namespace, "quiet", "null", ["web"]))
    apply(crds, workload("Deployment", namespace, "empty", "[]", ["web"]))
    # A workload applied after them proves the operator has seen them by the time it is written.
    apply(crds, workload("Deployment", namespace, "probe", [trigger("app:v1", by_name("web"))], ["web"]))
    wait_image(crds, "Deployment", "probe", ns=namespace, container="web", image=current)
    time.sleep(1)
    for name in ("quiet", "empty"):
        assert warnings(crds, namespace, name) == []
        body = get(crds, "Deployment", namespace, name)
        assert container_image(body, "web") == "placeholder/web:0"
        assert not [m for m in body["metadata"]["managedFields"] if m["manager"] == "imagestream-operator"]


def test_fixing_the_annotation_takes_effect(crds: LocalCluster, namespace: str, source: Source) -> None:
    current = source.create()["v1"]
    apply(crds, workload("Deployment", namespace, "web", [trigger("app:v1", by_name("wrong"))], ["web"]))
    eventually(lambda: [m for m in warnings(crds, namespace, "web") if "wrong" in m] or None, what="a warning")
    apply(crds, workload("Deployment", namespace, "web", [trigger("app:v1", by_name("web"))], ["web"]))
    wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=current)


def test_stream_created_after_the_workload_is_applied_when_it_appears(
    crds: LocalCluster, namespace: str, source: Source
) -> None:
    apply(crds, workload("Deployment", namespace, "web", [trigger("app:v1", by_name("web"))], ["web"]))
    eventually(lambda: [m for m in warnings(crds, namespace, "web") if "does not exist" in m] or None, what="a warning")
    current = source.create()["v1"]
    wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=current)


def test_cross_namespace_trigger_needs_the_image_puller_role(
    crds: LocalCluster, namespace: str, operator: OperatorProcess, plain_registry: Registry, repository: str
) -> None:
    other = f"{namespace}-images"
    kubectl(crds, "create", "namespace", other)
    try:
        current = Source(crds, other, plain_registry, repository).create()["v1"]
        apply(
            crds,
            workload("Deployment", namespace, "web", [trigger("app:v1", by_name("web"), namespace=other)], ["web"]),
        )
        eventually(
            lambda: [m for m in warnings(crds, namespace, "web") if "may not pull" in m] or None, what="a warning"
        )
        assert container_image(get(crds, "Deployment", namespace, "web"), "web") == "placeholder/web:0"
        grant_image_puller(crds, other, namespace)
        kubectl(crds, "annotate", "-n", namespace, "deployment/web", "touch=1")  # any change re-evaluates
        wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=current)
    finally:
        kubectl(crds, "delete", "namespace", other, "--wait=false")


def test_job_is_a_build_definition_run_once_per_image(
    crds: LocalCluster, namespace: str, source: Source, tmp_path: Path
) -> None:
    first = source.create()["v1"]
    job = workload("Job", namespace, "migrate", [trigger("app:v1", by_name("main"))], ["main"])
    job["metadata"]["annotations"]["imagestreams.dev/runs-to-keep"] = "2"
    apply(crds, job)

    def runs() -> list[dict[str, Any]]:
        listed = kubectl(
            crds, "get", "jobs", "-n", namespace, "-l", "imagestreams.dev/source-job=migrate", "-o", "json"
        )
        return list(json.loads(listed)["items"])

    def run_with(image: str) -> dict[str, Any] | None:
        return next((r for r in runs() if container_image(r, "main") == image), None)

    run = eventually(lambda: run_with(first), what="a run of the Job with the tag's image")
    assert run["metadata"]["ownerReferences"][0]["name"] == "migrate"
    assert TRIGGERS not in run["metadata"].get("annotations", {})
    # The source Job is untouched (its template is immutable).
    assert container_image(get(crds, "Job", namespace, "migrate"), "main") == "placeholder/main:0"

    second = source.update()
    eventually(lambda: run_with(second), what="a run with the second image")
    third = source.update()
    eventually(lambda: run_with(third), what="a run with the third image")
    # runs-to-keep is 2: the first run is pruned.
    eventually(lambda: run_with(first) is None or None, what="the oldest run to be pruned")
    assert len(runs()) == 2


def test_job_run_is_not_repeated_across_an_operator_restart(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    namespace = solo_namespace
    settings = solo_settings(namespace)
    first = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    source = Source(crds, namespace, plain_registry, repository)
    try:
        current = source.create()["v1"]
        apply(crds, workload("Job", namespace, "migrate", [trigger("app:v1", by_name("main"))], ["main"]))

        def run_count() -> int:
            listed = kubectl(
                crds, "get", "jobs", "-n", namespace, "-l", "imagestreams.dev/source-job=migrate", "-o", "json"
            )
            return len(json.loads(listed)["items"])

        eventually(lambda: run_count() == 1 or None, what="one run")
    finally:
        first.stop()
    second = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        time.sleep(5)
        assert run_count() == 1
        assert current
    finally:
        second.stop()


def test_steady_state_and_restart_write_nothing(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    namespace = solo_namespace
    settings = solo_settings(namespace)
    first_mark = crds.audit.mark()
    first = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    source = Source(crds, namespace, plain_registry, repository)
    try:
        current = source.create()["v1"]
        for kind in ("Deployment", "StatefulSet", "DaemonSet"):
            apply(crds, workload(kind, namespace, kind.lower(), [trigger("app:v1", by_name("main"))], ["main"]))
            wait_image(crds, kind, kind.lower(), ns=namespace, container="main", image=current)
        apply(crds, workload("CronJob", namespace, "cron", [trigger("app:v1", by_name("main", CRON_POD))], ["main"]))
        wait_image(crds, "CronJob", "cron", ns=namespace, container="main", image=current, pod=CRON_POD)
    finally:
        first.stop()

    def generations() -> dict[str, int]:
        return {
            name: get(crds, kind, namespace, name)["metadata"]["generation"]
            for kind, name in [
                ("Deployment", "deployment"),
                ("StatefulSet", "statefulset"),
                ("DaemonSet", "daemonset"),
                ("CronJob", "cron"),
            ]
        }

    before = generations()
    assert operator_writes(crds, first_mark, namespace)  # the audit log sees the first operator's writes
    mark = crds.audit.mark()
    second = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        time.sleep(8)  # start-up listing, and scheduled rounds of the stream
        assert generations() == before
        # Counted by the apiserver: no write at all after the restart, Events (false "does not exist (yet)"
        # Warnings for workloads seen before their stream) included.
        assert operator_writes(crds, mark, namespace) == []
        assert [line for line in second.log().splitlines() if "write: " in line] == []
    finally:
        second.stop()


def test_annotation_added_later_and_removed_is_picked_up(crds: LocalCluster, namespace: str, source: Source) -> None:
    current = source.create()["v1"]
    plain = workload("Deployment", namespace, "web", [], ["web"])
    del plain["metadata"]["annotations"]
    apply(crds, plain)
    annotation = json.dumps([trigger("app:v1", by_name("web"))])
    kubectl(crds, "annotate", "-n", namespace, "deployment/web", f"{TRIGGERS}={annotation}")
    wait_image(crds, "Deployment", "web", ns=namespace, container="web", image=current)

    kubectl(crds, "annotate", "-n", namespace, "deployment/web", f"{TRIGGERS}-")
    kubectl(crds, "set", "image", "-n", namespace, "deployment/web", "web=nginx:own")
    source.update()  # a new image for the tag the workload no longer follows
    time.sleep(2)
    assert container_image(get(crds, "Deployment", namespace, "web"), "web") == "nginx:own"


def test_removing_one_trigger_keeps_that_containers_image_and_the_others_follow(
    crds: LocalCluster, namespace: str, source: Source
) -> None:
    refs = source.create(("v1", "side"))
    both = [trigger("app:v1", by_name("app")), trigger("app:side", by_name("sidecar"))]
    apply(crds, workload("Deployment", namespace, "web", both, ["app", "sidecar"]))
    wait_image(crds, "Deployment", "web", ns=namespace, container="sidecar", image=refs["side"])
    wait_image(crds, "Deployment", "web", ns=namespace, container="app", image=refs["v1"])

    only_app = json.dumps([trigger("app:v1", by_name("app"))])
    kubectl(crds, "annotate", "-n", namespace, "deployment/web", f"{TRIGGERS}={only_app}", "--overwrite")
    newer = source.update("v1")
    # The operator owned the sidecar's image: the next apply must keep it, not drop it (a 422 otherwise).
    body = wait_image(crds, "Deployment", "web", ns=namespace, container="app", image=newer)
    assert container_image(body, "sidecar") == refs["side"]


def frozen_images_policy(namespace: str) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy (and its binding) that refuses any change of a Deployment's images."""
    name = f"frozen-images-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["UPDATE"],
                        "resources": ["deployments"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "object.spec.template.spec.containers.all(c, "
                    "oldObject.spec.template.spec.containers.exists(o, o.name == c.name && o.image == c.image))",
                    "message": "images are frozen in this namespace",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    return [policy, binding]


def wait_for_frozen_images(crds: LocalCluster, namespace: str, deployment: str) -> None:
    """Until the policy of frozen_images_policy refuses an image change of `deployment` (a server-side dry run)."""

    def policy_active() -> bool:
        attempt = kubectl(
            crds, "set", "image", f"deployment/{deployment}", "web=probe:1", "-n", namespace, "--dry-run=server",
            check=False,
        )  # fmt: skip
        return "images are frozen" in attempt

    eventually(policy_active, what="the admission policy to take effect")


def test_a_refused_workload_write_is_retried_until_it_lands(crds: LocalCluster, namespace: str, source: Source) -> None:
    policy = frozen_images_policy(namespace)
    kubectl(crds, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": policy}))
    try:
        apply(crds, workload("Deployment", namespace, "guarded", [trigger("app:v1", by_name("web"))], ["web"]))
        wait_for_frozen_images(crds, namespace, "guarded")
        image = source.create()["v1"]
        eventually(
            lambda: any("images are frozen" in w for w in warnings(crds, namespace, "guarded")),
            what="a Warning that the write was refused",
        )
    finally:
        kubectl(
            crds, "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy[0]["metadata"]["name"]
        )
    # Nothing about the Deployment changes: only the retry can make the image land.
    wait_image(crds, "Deployment", "guarded", ns=namespace, container="web", image=image)
    refused = [w for w in warnings(crds, namespace, "guarded") if "images are frozen" in w]
    assert len(refused) == 1, f"the Warning was repeated on every retry: {refused}"


def test_a_restart_raises_no_false_alarms_for_workloads_seen_before_their_streams(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    namespace, count = solo_namespace, 20
    settings = solo_settings(namespace)
    first = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        digest = Source(crds, namespace, plain_registry, repository).push()
        wanted = f"{plain_registry.host}/{repository}@{digest}"
        for number in range(count):
            apply_stream(crds, namespace, f"s{number}", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
            apply(
                crds, workload("Deployment", namespace, f"d{number}", [trigger(f"s{number}:v1", by_name("m"))], ["m"])
            )
        for number in range(count):
            wait_image(crds, "Deployment", f"d{number}", ns=namespace, container="m", image=wanted)
    finally:
        first.stop()

    for _ in range(3):  # each start lists workloads and streams in whatever order the watches come back
        mark = crds.audit.mark()
        again = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
        try:
            time.sleep(4)
            writes = operator_writes(crds, mark, namespace)
            assert writes == [], f"a restart wrote {len(writes)} time(s): {writes[:5]}"
        finally:
            again.stop()
