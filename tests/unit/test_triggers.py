"""Image change triggers: the annotation grammar, the value a tag resolves to, and the images to write."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagestreams.api.imagestream import ImageStream
from imagestreams.core.triggers import (
    POD_SPEC_PATHS,
    ContainerChange,
    FieldPath,
    Trigger,
    TriggerError,
    desired_changes,
    parse_field_path,
    parse_triggers,
    stream_tag_image,
    trigger_index_keys,
    triggered_containers,
)
from imagestreams.core.workloadkinds import WorkloadKind

DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
TEMPLATE = "spec.template.spec"
CRON = "spec.jobTemplate.spec.template.spec"
WEB = f'{TEMPLATE}.containers[?(@.name=="web")].image'


def entry(
    path: object = WEB, name: object = "app:latest", kind: str | None = "ImageStreamTag", **extra: Any
) -> dict[str, Any]:
    source: dict[str, Any] = {"name": name}
    if kind is not None:
        source["kind"] = kind
    source.update(extra.pop("source", {}))
    return {"from": source, "fieldPath": path, **extra}


def annotation(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))


def one(path: str, kind: WorkloadKind = WorkloadKind.DEPLOYMENT, **extra: Any) -> Trigger:
    return parse_triggers(annotation(entry(path, **extra)), kind, "team")[0]


def workload(kind: WorkloadKind, containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None) -> Any:
    spec: dict[str, Any] = {"containers": containers}
    if init is not None:
        spec["initContainers"] = init
    body: Any = spec
    for key in reversed(POD_SPEC_PATHS[kind]):
        body = {key: body}
    return {"apiVersion": "apps/v1", "kind": kind.value, "metadata": {"name": "w", "namespace": "team"}, **body}


def stream(
    tags: dict[str, list[tuple[str, str]]], policies: dict[str, str] | None = None, repository: str | None = None
) -> ImageStream:
    status: dict[str, Any] = {
        "tags": [
            {
                "tag": tag,
                "items": [
                    {"created": "2026-01-01T00:00:00Z", "dockerImageReference": ref, "image": image, "generation": 1}
                    for ref, image in items
                ],
            }
            for tag, items in tags.items()
        ]
    }
    if repository:
        status["dockerImageRepository"] = repository
    spec_tags = [{"name": tag, "referencePolicy": {"type": policy}} for tag, policy in (policies or {}).items()]
    return ImageStream.model_validate(
        {"metadata": {"name": "app", "namespace": "team"}, "spec": {"tags": spec_tags}, "status": status}
    )


# --- parsing -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        (WorkloadKind.DEPLOYMENT, WEB, FieldPath("containers", None, "web")),
        (WorkloadKind.STATEFULSET, f"{TEMPLATE}.containers[0].image", FieldPath("containers", 0, None)),
        (WorkloadKind.DAEMONSET, f"{TEMPLATE}.containers[12].image", FieldPath("containers", 12, None)),
        (WorkloadKind.JOB, f"{TEMPLATE}.initContainers[1].image", FieldPath("initContainers", 1, None)),
        (
            WorkloadKind.DEPLOYMENT,
            f'{TEMPLATE}.initContainers[?(@.name=="migrate")].image',
            FieldPath("initContainers", None, "migrate"),
        ),
        (WorkloadKind.CRONJOB, f'{CRON}.containers[?(@.name=="job")].image', FieldPath("containers", None, "job")),
        (WorkloadKind.CRONJOB, f"{CRON}.initContainers[0].image", FieldPath("initContainers", 0, None)),
    ],
)
def test_field_paths_that_parse(kind: WorkloadKind, path: str, expected: FieldPath) -> None:
    trigger = one(path, kind)
    assert trigger.field_path == expected
    assert trigger.raw_field_path == path
    assert expected.render(kind) == path


def test_the_form_oc_set_triggers_writes() -> None:
    text = json.dumps(
        [{"from": {"kind": "ImageStreamTag", "name": "app:latest"}, "fieldPath": WEB, "paused": False}],
        separators=(",", ":"),
    )
    assert parse_triggers(text, WorkloadKind.DEPLOYMENT, "team") == [
        Trigger("app", "latest", "team", FieldPath("containers", None, "web"), WEB, paused=False)
    ]


@pytest.mark.parametrize(
    ("extra", "namespace", "paused"),
    [
        ({}, "team", False),
        ({"source": {"namespace": "shared"}}, "shared", False),
        ({"source": {"namespace": ""}}, "team", False),
        ({"source": {"namespace": None}}, "team", False),
        ({"paused": True}, "team", True),
        ({"paused": False}, "team", False),
        ({"paused": None}, "team", False),
        ({"source": {"apiVersion": "image.openshift.io/v1"}}, "team", False),
        ({"ignored": "unknown fields are ignored, as by json.Unmarshal"}, "team", False),
    ],
)
def test_namespace_defaulting_and_paused(extra: dict[str, Any], namespace: str, paused: bool) -> None:
    trigger = one(WEB, **extra)
    assert (trigger.stream, trigger.tag, trigger.namespace, trigger.paused) == ("app", "latest", namespace, paused)


def test_triggers_keep_their_order() -> None:
    text = annotation(entry(WEB, "a:1"), entry(f"{TEMPLATE}.containers[1].image", "b:2"))
    assert [(t.stream, t.tag) for t in parse_triggers(text, WorkloadKind.DEPLOYMENT, "team")] == [
        ("a", "1"),
        ("b", "2"),
    ]


@pytest.mark.parametrize("text", ["[]", " [ ] "])
def test_an_empty_array_has_no_triggers(text: str) -> None:
    assert parse_triggers(text, WorkloadKind.DEPLOYMENT, "team") == []


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        # The annotation as a whole.
        ("[{", WorkloadKind.DEPLOYMENT, r"is not valid JSON .*; it must be a JSON array such as \[\{"),
        ("", WorkloadKind.DEPLOYMENT, r"is not valid JSON .* or \[\] for no triggers"),
        (json.dumps(entry()), WorkloadKind.DEPLOYMENT, r"must be a JSON array of triggers \(wrap a single trigger"),
        ("null", WorkloadKind.DEPLOYMENT, r"must be a JSON array"),
        ('["x"]', WorkloadKind.DEPLOYMENT, r'^trigger 1: each trigger must be a JSON object, not "x"$'),
        # from
        (annotation(entry(kind="DockerImage")), WorkloadKind.DEPLOYMENT, r'from.kind must be "ImageStreamTag" \(found'),
        (annotation(entry(kind=None)), WorkloadKind.DEPLOYMENT, r'from.kind must be "ImageStreamTag" \(found missing'),
        (annotation(entry(kind="ImageStreamImage")), WorkloadKind.DEPLOYMENT, r"triggers follow image stream tags"),
        ('[{"fieldPath": "x"}]', WorkloadKind.DEPLOYMENT, r"^trigger 1: from.kind must be"),
        ('[{"from": "app:latest"}]', WorkloadKind.DEPLOYMENT, r'"from" must be an object'),
        (annotation(entry(name="app")), WorkloadKind.DEPLOYMENT, r'from.name "app" must be <stream>:<tag>'),
        (annotation(entry(name=":latest")), WorkloadKind.DEPLOYMENT, r"must be <stream>:<tag>"),
        (annotation(entry(name="app:")), WorkloadKind.DEPLOYMENT, r"must be <stream>:<tag>"),
        (annotation(entry(name="a:b:c")), WorkloadKind.DEPLOYMENT, r'more than one ":"'),
        (annotation(entry(name=f"app@{DIGEST_A}")), WorkloadKind.DEPLOYMENT, r"by digest; a trigger follows a tag"),
        (annotation(entry(name="My_App:1")), WorkloadKind.DEPLOYMENT, r'"My_App" is not a valid image stream name'),
        (annotation(entry(name=5)), WorkloadKind.DEPLOYMENT, r"from.name must be a JSON string, not 5"),
        (annotation(entry(source={"namespace": 1})), WorkloadKind.DEPLOYMENT, r"from.namespace must be a JSON string"),
        # paused, as OpenShift's json.Unmarshal: the documented string form is rejected.
        (annotation(entry(paused="false")), WorkloadKind.DEPLOYMENT, r'paused must be a JSON boolean, not "false"'),
        (annotation(entry(paused="true")), WorkloadKind.DEPLOYMENT, r'write "paused": true without quotes'),
        (annotation(entry(paused=0)), WorkloadKind.DEPLOYMENT, r"paused must be a JSON boolean, not 0"),
        # Duplicate fieldPaths invalidate the whole annotation.
        (
            annotation(entry(), entry(f"{TEMPLATE}.containers[1].image"), entry(name="other:1")),
            WorkloadKind.DEPLOYMENT,
            r'^triggers 1 and 3 both have fieldPath ".*": duplicate triggers are not allowed',
        ),
        # fieldPath
        (annotation(entry(path="")), WorkloadKind.DEPLOYMENT, r"fieldPath is required"),
        ('[{"from": {"kind": "ImageStreamTag", "name": "a:b"}}]', WorkloadKind.DEPLOYMENT, r"fieldPath is required"),
        (annotation(entry(path=7)), WorkloadKind.DEPLOYMENT, r"fieldPath must be a JSON string, not 7"),
    ],
)
def test_rejected_annotations(text: str, kind: WorkloadKind, message: str) -> None:
    with pytest.raises(TriggerError, match=message):
        parse_triggers(text, kind, "team")


def test_errors_name_the_trigger_by_position() -> None:
    text = annotation(entry(), entry(f"{TEMPLATE}.containers[?(@.name='web')].image"))
    with pytest.raises(TriggerError) as caught:
        parse_triggers(text, WorkloadKind.DEPLOYMENT, "team")
    assert str(caught.value).startswith(
        "trigger 2: fieldPath \"spec.template.spec.containers[?(@.name='web')].image\": the container selector "
        'must be a decimal index or ?(@.name=="NAME") with double quotes'
    )


@pytest.mark.parametrize(
    ("kind", "path", "message"),
    [
        # Another kind's pod-spec path: OpenShift skips it silently; here the message gives the right path.
        (
            WorkloadKind.CRONJOB,
            f"{TEMPLATE}.containers[0].image",
            rf'must start with "{CRON}\." \(the pod template of a CronJob\); write {CRON}\.containers\[0\]\.image$',
        ),
        (
            WorkloadKind.DEPLOYMENT,
            f"{CRON}.containers[0].image",
            rf'"{TEMPLATE}\." \(the pod template of a Deployment\); write {TEMPLATE}\.containers\[0\]\.image$',
        ),
        (
            WorkloadKind.CRONJOB,
            f"{TEMPLATE}.containers[?(@.name='web')].image",
            rf"CronJob\); replace {TEMPLATE} with {CRON}$",
        ),
        (WorkloadKind.DEPLOYMENT, "spec.containers[0].image", rf'must start with "{TEMPLATE}\."'),
        (WorkloadKind.DEPLOYMENT, TEMPLATE, rf'must start with "{TEMPLATE}\."'),
        # Selectors: only a decimal index or ?(@.name=="NAME"), exactly.
        (
            WorkloadKind.DEPLOYMENT,
            f"{TEMPLATE}.containers[?(@.name='web')].image",
            rf'with double quotes; write {TEMPLATE}\.containers\[\?\(@\.name=="web"\)\]\.image$',
        ),
        (
            WorkloadKind.DEPLOYMENT,
            f'{TEMPLATE}.containers[?(@.name == "web")].image',
            r'with double quotes; write .*\[\?\(@\.name=="web"\)\]',
        ),
        (WorkloadKind.DEPLOYMENT, f'{TEMPLATE}.containers[?(@.name=="")].image', r"decimal index or"),
        (WorkloadKind.DEPLOYMENT, f'{TEMPLATE}.containers[?(@.name=="a b")].image', r"decimal index or"),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.containers[-1].image", r"decimal index or"),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.containers[ 0].image", r"decimal index or"),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.containers[web].image", r"decimal index or"),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.containers[].image", r"decimal index or"),
        # The list and the field.
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.ephemeralContainers[0].image", r'only set container images.*"ephemeral'),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.volumes[0].image", r'not "volumes"'),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.containers", r"with a selector in \[ \]"),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.containers[0", r"with a selector in \[ \]"),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.containers[0]", r'must end in "\]\.image"'),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.containers[0].imagePullPolicy", r'found "\.imagePullPolicy"'),
        (WorkloadKind.DEPLOYMENT, f"{TEMPLATE}.containers[0].image.x", r'must end in "\]\.image"'),
    ],
)
def test_rejected_field_paths(kind: WorkloadKind, path: str, message: str) -> None:
    with pytest.raises(TriggerError, match=message):
        parse_field_path(path, kind)
    with pytest.raises(TriggerError, match=r"^trigger 1: fieldPath "):
        parse_triggers(annotation(entry(path)), kind, "team")


def test_index_keys_leave_out_paused_triggers() -> None:
    text = annotation(
        entry(WEB, "app:latest"),
        entry(f"{TEMPLATE}.containers[1].image", "app:stable"),
        entry(f"{TEMPLATE}.containers[2].image", "base:1", source={"namespace": "shared"}),
        entry(f"{TEMPLATE}.containers[3].image", "paused:1", paused=True),
    )
    triggers = parse_triggers(text, WorkloadKind.DEPLOYMENT, "team")
    assert trigger_index_keys(triggers) == {("team", "app"), ("shared", "base")}


# --- the value a tag resolves to ----------------------------------------------------------------------------------

SOURCE_REF = f"quay.io/org/app@{DIGEST_A}"
LOCAL_REPO = "registry.internal:5000/team/app"


@pytest.mark.parametrize(
    ("image_stream", "tag", "expected"),
    [
        (stream({"latest": [(SOURCE_REF, DIGEST_A)]}), "latest", SOURCE_REF),
        (stream({"latest": [(SOURCE_REF, DIGEST_A)]}, {"latest": "Source"}, LOCAL_REPO), "latest", SOURCE_REF),
        (
            stream({"latest": [(SOURCE_REF, DIGEST_A)]}, {"latest": "Local"}, LOCAL_REPO),
            "latest",
            f"{LOCAL_REPO}@{DIGEST_A}",
        ),
        # Local without a repository in status falls back to the source reference.
        (stream({"latest": [(SOURCE_REF, DIGEST_A)]}, {"latest": "Local"}), "latest", SOURCE_REF),
        # The current image is the first history entry.
        (
            stream({"latest": [(f"quay.io/org/app@{DIGEST_B}", DIGEST_B), (SOURCE_REF, DIGEST_A)]}),
            "latest",
            f"quay.io/org/app@{DIGEST_B}",
        ),
        (
            stream({"latest": [(f"quay.io/org/app@{DIGEST_B}", DIGEST_B)]}, {"latest": "Local"}, LOCAL_REPO),
            "latest",
            f"{LOCAL_REPO}@{DIGEST_B}",
        ),
        # A reference tag records the pull spec as written, without a digest: written as is, even with Local.
        (stream({"ref": [("nginx:1.27", "")]}, {"ref": "Source"}), "ref", "nginx:1.27"),
        (stream({"ref": [("nginx:1.27", "")]}, {"ref": "Local"}, LOCAL_REPO), "ref", "nginx:1.27"),
        # A tag with status but no spec tag (pushed images) uses the Source policy.
        (
            stream({"pushed": [(f"{LOCAL_REPO}@{DIGEST_A}", DIGEST_A)]}, {}, LOCAL_REPO),
            "pushed",
            f"{LOCAL_REPO}@{DIGEST_A}",
        ),
        # Nothing to write yet.
        (stream({"latest": []}), "latest", None),
        (stream({"latest": [(SOURCE_REF, DIGEST_A)]}), "other", None),
        (stream({}), "latest", None),
        (ImageStream.model_validate({"metadata": {"name": "app"}}), "latest", None),
    ],
)
def test_stream_tag_image(image_stream: ImageStream, tag: str, expected: str | None) -> None:
    assert stream_tag_image(image_stream, tag) == expected


# --- the images to write --------------------------------------------------------------------------------------------

OLD, NEW = f"quay.io/org/app@{DIGEST_A}", f"quay.io/org/app@{DIGEST_B}"
APP_PATH = f'{TEMPLATE}.containers[?(@.name=="app")].image'
SIDECAR_PATH = f"{TEMPLATE}.containers[1].image"
INIT_PATH = f"{TEMPLATE}.initContainers[0].image"
BODY = workload(
    WorkloadKind.DEPLOYMENT,
    [{"name": "app", "image": OLD}, {"name": "sidecar", "image": OLD}],
    [{"name": "migrate", "image": OLD}],
)


def changes_of(body: Any, kind: WorkloadKind, *pairs: tuple[Trigger, str]) -> list[tuple[str, str, str | None, str]]:
    found = desired_changes(body, kind, dict(pairs))
    return [(c.container_list, c.container_name, c.old_image, c.new_image) for c in found]


@pytest.mark.parametrize(
    ("paths", "image", "expected"),
    [
        ([APP_PATH], OLD, []),
        ([APP_PATH], NEW, [("containers", "app", OLD, NEW)]),
        ([SIDECAR_PATH], NEW, [("containers", "sidecar", OLD, NEW)]),
        ([INIT_PATH], NEW, [("initContainers", "migrate", OLD, NEW)]),
        (
            [f'{TEMPLATE}.initContainers[?(@.name=="migrate")].image', APP_PATH],
            NEW,
            [("initContainers", "migrate", OLD, NEW), ("containers", "app", OLD, NEW)],
        ),
    ],
)
def test_desired_changes(paths: list[str], image: str, expected: list[tuple[str, str, str, str]]) -> None:
    pairs = [(one(path), image) for path in paths]
    assert changes_of(BODY, WorkloadKind.DEPLOYMENT, *pairs) == expected


def test_a_change_carries_its_trigger() -> None:
    trigger = one(SIDECAR_PATH)
    assert desired_changes(BODY, WorkloadKind.DEPLOYMENT, {trigger: NEW}) == [
        ContainerChange(trigger, "containers", "sidecar", OLD, NEW)
    ]


def test_cronjob_containers_are_found_under_the_job_template() -> None:
    body = workload(WorkloadKind.CRONJOB, [{"name": "job", "image": OLD}])
    trigger = one(f'{CRON}.containers[?(@.name=="job")].image', WorkloadKind.CRONJOB)
    assert changes_of(body, WorkloadKind.CRONJOB, (trigger, NEW)) == [("containers", "job", OLD, NEW)]


def test_a_container_without_an_image_gets_one() -> None:
    body = workload(WorkloadKind.DEPLOYMENT, [{"name": "app"}])
    assert changes_of(body, WorkloadKind.DEPLOYMENT, (one(APP_PATH), NEW)) == [("containers", "app", None, NEW)]


def test_paused_and_unresolved_triggers_are_skipped() -> None:
    paused = one(APP_PATH, paused=True)
    missing_but_paused = one(f'{TEMPLATE}.containers[?(@.name=="gone")].image', paused=True)
    assert desired_changes(BODY, WorkloadKind.DEPLOYMENT, {paused: NEW, missing_but_paused: NEW}) == []
    # Unresolved triggers have no entry in the mapping: nothing to write, not even a check of their container.
    assert desired_changes(BODY, WorkloadKind.DEPLOYMENT, {}) == []


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (
            BODY,
            f'{TEMPLATE}.containers[?(@.name=="web")].image',
            r'no container named "web" in spec\.template\.spec\.containers; containers are: app, sidecar\. Correct',
        ),
        (
            BODY,
            f'{TEMPLATE}.initContainers[?(@.name=="app")].image',
            r'no container named "app" in spec\.template\.spec\.initContainers; initContainers are: migrate',
        ),
        (BODY, f"{TEMPLATE}.containers[3].image", r"containers\[3\] does not exist: the list has 2 entries\. Correct"),
        (
            workload(WorkloadKind.DEPLOYMENT, [{"name": "app"}]),
            f"{TEMPLATE}.initContainers[0].image",
            r"spec\.template\.spec\.initContainers\[0\] does not exist: the list has 0 entries",
        ),
        (
            workload(WorkloadKind.DEPLOYMENT, [{"name": "app"}]),
            f'{TEMPLATE}.initContainers[?(@.name=="app")].image',
            r"initContainers are: \(none\)",
        ),
        ({"metadata": {"name": "bare"}}, APP_PATH, r"containers are: \(none\)"),
    ],
)
def test_missing_containers_are_errors(body: Any, path: str, message: str) -> None:
    with pytest.raises(TriggerError, match=message):
        desired_changes(body, WorkloadKind.DEPLOYMENT, {one(path): NEW})


def test_one_missing_container_means_no_changes_at_all() -> None:
    good, bad = one(APP_PATH), one(f"{TEMPLATE}.containers[5].image")
    with pytest.raises(TriggerError) as caught:
        desired_changes(BODY, WorkloadKind.DEPLOYMENT, {good: NEW, bad: NEW})
    assert str(caught.value).startswith(f'fieldPath "{TEMPLATE}.containers[5].image": ')


def test_every_problem_is_reported_at_once() -> None:
    first, second = one(f"{TEMPLATE}.containers[5].image"), one(f'{TEMPLATE}.containers[?(@.name=="x")].image')
    with pytest.raises(TriggerError) as caught:
        desired_changes(BODY, WorkloadKind.DEPLOYMENT, {first: NEW, second: NEW})
    assert len(str(caught.value).splitlines()) == 2


def test_two_triggers_for_one_container_are_an_error() -> None:
    by_name, by_index = one(APP_PATH, name="app:1"), one(f"{TEMPLATE}.containers[0].image", name="app:2")
    with pytest.raises(TriggerError, match=r'select the same container "app"; only one trigger may set'):
        desired_changes(BODY, WorkloadKind.DEPLOYMENT, {by_name: OLD, by_index: NEW})
    # Paused, the second one no longer competes.
    paused = one(f"{TEMPLATE}.containers[0].image", name="app:2", paused=True)
    assert desired_changes(BODY, WorkloadKind.DEPLOYMENT, {by_name: NEW, paused: OLD})[0].new_image == NEW


def test_triggered_containers_include_paused_and_skip_missing() -> None:
    triggers = [
        one(APP_PATH, paused=True),
        one(SIDECAR_PATH),
        one(f"{TEMPLATE}.containers[0].image"),  # the same container as the first: listed once
        one(INIT_PATH),
        one(f'{TEMPLATE}.containers[?(@.name=="gone")].image'),
        one(f"{TEMPLATE}.containers[9].image"),
    ]
    assert triggered_containers(BODY, WorkloadKind.DEPLOYMENT, triggers) == [
        ("containers", "app"),
        ("containers", "sidecar"),
        ("initContainers", "migrate"),
    ]
