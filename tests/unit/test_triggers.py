"""Image change triggers: the annotation read rule by rule as OpenShift reads it, the value a tag resolves to, and
the images to write.

Every table row names the function of OpenShift (or of Go's encoding/json, which OpenShift reads the annotation
with) whose behaviour it pins:
- LGO: openshift/library-go pkg/image/trigger/annotations.go, referencemutator/pods.go, imageutil/helpers.go;
- OCM: openshift/openshift-controller-manager pkg/image/controller/trigger/cache.go and image_trigger_controller.go;
- Go: encoding/json decode.go and fold.go (checked with a Go 1.26 program decoding into ObjectFieldTrigger).
"""

from __future__ import annotations

import json
import re
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
    ignored_summary,
    json_field,
    parse_field_path,
    parse_triggers,
    stream_tag_image,
    trigger_container,
    trigger_index_keys,
)
from imagestreams.core.workloadkinds import WorkloadKind

DEPLOYMENT, CRONJOB = WorkloadKind.DEPLOYMENT, WorkloadKind.CRONJOB
DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
TEMPLATE = "spec.template.spec"
CRON = "spec.jobTemplate.spec.template.spec"
WEB = f'{TEMPLATE}.containers[?(@.name=="web")].image'
SIDE = f'{TEMPLATE}.containers[?(@.name=="side")].image'


def entry(
    path: object = WEB, name: object = "app:latest", kind: str | None = "ImageStreamTag", **extra: Any
) -> dict[str, Any]:
    source: dict[str, Any] = {"name": name}
    if kind is not None:
        source["kind"] = kind
    source.update(extra.pop("source", {}))
    return {"from": source, "fieldPath": path, **extra}


def annotation(*entries: object) -> str:
    return json.dumps(list(entries))


def read(text: str, kind: WorkloadKind = DEPLOYMENT) -> list[tuple[Any, ...]] | str:
    """What parse_triggers makes of an annotation, in annotation order: ("trigger", position, namespace/stream:tag,
    fieldPath, paused) or ("ignored", position, from.name, fieldPath, paused); or "error: MESSAGE"."""
    try:
        parsed = parse_triggers(text, kind, "team")
    except TriggerError as error:
        return f"error: {error}"
    rows: list[tuple[Any, ...]] = [
        ("trigger", t.position, f"{t.namespace}/{t.stream}:{t.tag}", t.raw_field_path, t.paused)
        for t in parsed.triggers
    ]
    rows += [("ignored", i.position, i.source, i.raw_field_path, i.paused) for i in parsed.ignored]
    return sorted(rows, key=lambda row: row[1])


def one(path: str, kind: WorkloadKind = DEPLOYMENT, **extra: Any) -> Trigger:
    return parse_triggers(annotation(entry(path, **extra)), kind, "team").triggers[0]


def trigger_at(position: int, path: str, name: str = "app:latest", paused: bool = False) -> Trigger:
    """A trigger as the n-th entry of an annotation (earlier entries are ignored ones, only there to count)."""
    filler = [entry(f"filler{n}", kind="DockerImage") for n in range(1, position)]
    parsed = parse_triggers(annotation(*filler, entry(path, name, paused=paused)), DEPLOYMENT, "team")
    return parsed.triggers[0]


def T(position: int, path: str = WEB, source: str = "team/app:latest", paused: bool = False) -> tuple[Any, ...]:
    return ("trigger", position, source, path, paused)


def I(position: int, path: str = WEB, source: str = "app:latest", paused: bool = False) -> tuple[Any, ...]:  # noqa: E743
    return ("ignored", position, source, path, paused)


# --- the JSON: Go's encoding/json, as CalculateAnnotationTriggers reads it -------------------------------------------

GOOD = {"from": {"kind": "ImageStreamTag", "name": "app:latest"}, "fieldPath": WEB}
NO_FROM = I(1, "", "")  # an entry with nothing in it: every field at Go's zero value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Go decode.go literalStore: null into a slice leaves it nil; `oc set triggers --remove-all` writes null.
        pytest.param("null", [], id="Go Unmarshal: null is no triggers"),
        pytest.param(" \n null\t", [], id="Go Unmarshal: whitespace around null"),
        pytest.param("[]", [], id="Go Unmarshal: [] is no triggers"),
        pytest.param("{}", "error: .* must be a JSON array of triggers .*; not an object", id="Go object(): object"),
        pytest.param('"[]"', "error: .* must be a JSON array .*; not the string", id="Go literalStore: string"),
        pytest.param("1", "error: .* must be a JSON array .*; not the number 1", id="Go literalStore: number"),
        pytest.param("true", "error: .* must be a JSON array .*; not true", id="Go literalStore: bool"),
        pytest.param("", "error: .* is not valid JSON", id="Go checkValid: empty"),
        pytest.param("[] x", "error: .* is not valid JSON", id="Go checkValid: text after the value"),
        pytest.param("\ufeff[]", "error: .* is not valid JSON", id="Go checkValid: a byte order mark"),
        pytest.param(f"[{json.dumps(GOOD)},]", "error: .* is not valid JSON", id="Go checkValid: trailing comma"),
        pytest.param('[{"x": NaN}]', "error: .* not valid JSON \\(NaN is not a JSON value\\)", id="Go scanner: NaN"),
        pytest.param('[{"x": -Infinity}]', "error: .* not valid JSON", id="Go scanner: Infinity"),
        pytest.param('[{"x": 01}]', "error: .* not valid JSON", id="Go scanner: leading zero"),
        # Go array(): each element decoded into a zero ObjectFieldTrigger; null leaves it zero.
        pytest.param("[null]", [NO_FROM], id="Go literalStore: null entry is a zero entry"),
        pytest.param('["x"]', "error: trigger 1: each trigger must be a JSON object, not the string", id="Go: string"),
        pytest.param("[[]]", "error: trigger 1: each trigger must be a JSON object, not an array", id="Go: array"),
        pytest.param('[{"from": null}]', [NO_FROM], id="Go literalStore: from null"),
        pytest.param('[{"from": "app:latest"}]', 'error: trigger 1: "from" must be an object', id="Go: from string"),
        pytest.param('[{"from": []}]', 'error: trigger 1: "from" must be an object', id="Go: from array"),
        pytest.param(
            '[{"from": {"kind": 5}}]', "error: trigger 1: from.kind must be a JSON string, not the nu", id="k"
        ),
        pytest.param(
            '[{"fieldPath": 7}]', "error: trigger 1: fieldPath must be a JSON string, not the number 7", id="f"
        ),
        pytest.param('[{"fieldPath": true}]', "error: trigger 1: fieldPath must be a JSON string, not true", id="fb"),
        pytest.param(
            annotation(entry(source={"namespace": None})), [T(1)], id="Go literalStore: null string leaves it empty"
        ),
        # The documented "paused": "false" is a type error, which fails the whole Unmarshal.
        pytest.param(
            annotation(GOOD, entry(SIDE, paused="false")),
            'error: trigger 2: paused must be a JSON boolean, not the string "false": write "paused": false without',
            id="Go literalStore: paused string",
        ),
        pytest.param(
            annotation(entry(paused=" True ")), 'error: .*write "paused": true without quotes', id="Go: paused True"
        ),
        pytest.param(annotation(entry(paused=0)), "error: .* not the number 0", id="Go literalStore: paused number"),
        pytest.param(annotation(entry(paused=None)), [T(1)], id="Go literalStore: paused null is false"),
        pytest.param(
            '[{"paused": true, "paused": null, "from": {"kind": "ImageStreamTag", "name": "app:latest"}, '
            f'"fieldPath": {json.dumps(WEB)}}}]',
            [T(1, paused=True)],
            id="Go literalStore: null after true leaves true",
        ),
        # Go reports a later type error before LGO hasDuplicateTriggers runs; both refuse the whole annotation, and
        # the duplicate is named here (reading stops there, so `[{},{},...]` stays cheap).
        pytest.param(annotation({"paused": "yes"}, GOOD, GOOD), "error: trigger 1: paused", id="Go: type error"),
        pytest.param(annotation(GOOD, GOOD, {"paused": "yes"}), "error: triggers 1 and 2", id="LGO: then dups"),
        # Go object(): fields.byExactName, else byFoldedName (fold.go foldName).
        pytest.param(
            json.dumps(
                [{"FROM": {"KIND": "ImageStreamTag", "Name": "app:latest", "NameSpace": "x"}, "FIELDPATH": WEB}]
            ),
            [T(1, source="x/app:latest")],
            id="Go foldName: keys match without case",
        ),
        pytest.param(
            '[{"from": {"\\u212aind": "ImageStreamTag", "name": "app:1", "name\\u017fpace": "x"}, '
            f'"fieldPath": {json.dumps(WEB)}}}]',
            [T(1, source="x/app:1")],
            id="Go foldName: Kelvin sign and long s fold to k and s",
        ),
        pytest.param(
            f'[{{"from": {{"k\\u0131nd": "ImageStreamTag", "name": "app:1"}}, "\\ufb01eldPath": {json.dumps(WEB)}}}]',
            [I(1, "", "app:1")],
            id="Go foldName: dotless i and the fi ligature match nothing",
        ),
        pytest.param(
            json.dumps([{**GOOD, "fieldPath": "first", "FieldPath": WEB}]),
            [T(1)],
            id="Go object(): a repeated key's later value wins",
        ),
        pytest.param(
            '[{"from": {"kind": "ImageStreamTag"}, "From": {"name": "app:latest"}, '
            f'"fieldPath": {json.dumps(WEB)}}}]',
            [T(1)],
            id="Go object(): a repeated from fills the same struct",
        ),
        pytest.param(
            '[{"from": {"kind": "ImageStreamTag", "name": "app:latest"}, "from": null, '
            f'"fieldPath": {json.dumps(WEB)}}}]',
            [T(1)],
            id="Go literalStore: a later null from changes nothing",
        ),
        pytest.param(
            json.dumps([{**GOOD, "field_path": "x", "extra": {"deep": [1, None, {"a": True}]}}]),
            [T(1)],
            id="Go object(): unknown keys are skipped",
        ),
        pytest.param(
            '[{"huge": ' + "9" * 5000 + f', "exp": 1e999, "from": {json.dumps(GOOD["from"])}, "fieldPath": "{TEMPLATE}.'
            'containers[0].image"}]',
            [T(1, f"{TEMPLATE}.containers[0].image")],
            id="Go: numbers in unknown keys are never converted",
        ),
        pytest.param(
            annotation(entry(f"{TEMPLATE}.containers[0].image\ud800")),
            [T(1, f"{TEMPLATE}.containers[0].image\ufffd")],
            id="Go unquote: a lone surrogate becomes U+FFFD",
        ),
        # LGO CalculateAnnotationTriggers/hasDuplicateTriggers: equal fieldPath strings fail the annotation, ignored
        # entries and empty fieldPaths included.
        pytest.param(
            annotation(GOOD, entry(SIDE), entry(WEB, "other:1")),
            'error: triggers 1 and 3 both have fieldPath ".*": duplicate triggers are not allowed',
            id="LGO hasDuplicateTriggers",
        ),
        pytest.param(
            annotation(entry(WEB, kind="DockerImage"), GOOD),
            "error: triggers 1 and 2",
            id="LGO hasDuplicateTriggers: ig",
        ),
        pytest.param("[null, {}]", 'error: triggers 1 and 2 both have fieldPath ""', id="LGO hasDuplicateTriggers: ''"),
        pytest.param(
            annotation(GOOD, entry(WEB.replace("web", "Web"))), [T(1), T(2, WEB.replace("web", "Web"))], id="dup: case"
        ),
    ],
)
def test_the_json_is_read_as_go_reads_it(text: str, expected: list[tuple[Any, ...]] | str) -> None:
    found = read(text)
    if isinstance(expected, str):
        assert isinstance(found, str)
        assert re.match(expected, found, re.DOTALL), found
    else:
        assert found == expected


def test_json_field_matches_as_go_fold_name() -> None:
    # Go fold.go: foldName upper-cases ASCII and folds each other rune to the smallest of its SimpleFold orbit;
    # over all of Unicode only U+017F and U+212A fold to ASCII letters.
    assert json_field("fieldpath", ["from", "fieldPath"]) == "fieldPath"
    assert json_field("PAUSED", ["paused"]) == "paused"
    assert json_field("\u212aIND", ["kind"]) == "kind"
    assert json_field("\u017fource", ["source"]) == "source"
    assert json_field("k\u0131nd", ["kind"]) is None  # dotless i: Python's upper() would make it I
    assert json_field("\ufb01eldPath", ["fieldPath"]) is None  # ligature: Python's upper() would make it FI
    assert json_field("fieldPath ", ["fieldPath"]) is None


def test_annotation_size_and_depth_limits_stricter_than_openshift() -> None:
    # Our limits (Go allows 10000 levels and Kubernetes 256 KiB of annotations): the annotation is read on every
    # workload event.
    assert str(read("[" * 65 + "]" * 65)).startswith(
        "error: image.openshift.io/triggers is not valid JSON (JSON nested"
    )
    assert str(read(" " * (64 * 1024 + 1))).startswith("error: image.openshift.io/triggers is 65537 characters long")


# --- entries OpenShift skips: the others still apply ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "entries", "expected", "reason"),
    [
        # OCM cache.go triggerCacheIndexer: only kind ImageStreamTag (exactly) is indexed.
        pytest.param(
            DEPLOYMENT,
            [entry(SIDE, kind="DockerImage"), GOOD],
            [I(1, SIDE), T(2)],
            r'from.kind must be "Ima'
            r'geStreamTag" \(found "DockerImage"\)',
            id="OCM triggerCacheIndexer: kind DockerImage",
        ),
        pytest.param(
            DEPLOYMENT, [entry(kind=None)], [I(1)], r"\(found missing\)", id="OCM triggerCacheIndexer: no kind"
        ),
        pytest.param(
            DEPLOYMENT, [entry(kind="imagestreamtag")], [I(1)], r"found \"imagestreamtag\"", id="OCM: kind is exact"
        ),
        # OCM cache.go triggerCacheIndexer: an entry with from.apiVersion is not indexed.
        pytest.param(
            DEPLOYMENT,
            [entry(source={"apiVersion": "image.openshift.io/v1"}), entry(SIDE)],
            [I(1), T(2, SIDE)],
            r'from.apiVersion "image.openshift.io/v1" is set: .*leave it out',
            id="OCM triggerCacheIndexer: apiVersion",
        ),
        pytest.param(DEPLOYMENT, [entry(source={"apiVersion": ""})], [T(1)], None, id="OCM: empty apiVersion"),
        # LGO imageutil.SplitImageStreamTag (tagRetriever.ImageStreamTag): no ":" is skipped; "app:" is app:latest.
        pytest.param(
            DEPLOYMENT,
            [entry(name="app"), entry(SIDE)],
            [I(1, WEB, "app"), T(2, SIDE)],
            r'from.name "app" has no tag',
            id="LGO SplitImageStreamTag: no colon",
        ),
        pytest.param(DEPLOYMENT, [entry(name="app:")], [T(1)], None, id="LGO SplitImageStreamTag: app: is app:latest"),
        # The stream lookup (ImageStreams(ns).Get) can never find these: skipped as OpenShift skips them.
        pytest.param(
            DEPLOYMENT, [entry(name=":latest")], [I(1, WEB, ":latest")], "has no image stream name", id="lister"
        ),
        pytest.param(DEPLOYMENT, [entry(name="a:b:c")], [I(1, WEB, "a:b:c")], 'more than one ":"', id="lister: a:b:c"),
        pytest.param(
            DEPLOYMENT,
            [entry(name=f"app@{DIGEST_A}")],
            [I(1, WEB, f"app@{DIGEST_A}")],
            "names an image by digest; a trigger follows a tag",
            id="lister: digest",
        ),
        pytest.param(
            DEPLOYMENT,
            [entry(name="My_App:1")],
            [I(1, WEB, "My_App:1")],
            '"My_App" is not a valid image stream name',
            id="lister: invalid stream name",
        ),
        # LGO UpdateObjectFromImages: a fieldPath that does not start with the kind's pod-spec path plus "." is
        # skipped; the Warning says what to write instead.
        pytest.param(
            CRONJOB,
            [entry(f"{TEMPLATE}.containers[0].image"), entry(f"{CRON}.containers[1].image")],
            [I(1, f"{TEMPLATE}.containers[0].image"), T(2, f"{CRON}.containers[1].image")],
            rf'does not start with "{CRON}\." \(the pod template of a CronJob\); write {CRON}\.containers\[0\]\.image$',
            id="LGO UpdateObjectFromImages: a Deployment's path on a CronJob",
        ),
        pytest.param(
            DEPLOYMENT,
            [entry(f"{CRON}.containers[0].image")],
            [I(1, f"{CRON}.containers[0].image")],
            rf"; write {TEMPLATE}\.containers\[0\]\.image$",
            id="LGO UpdateObjectFromImages: a CronJob's path",
        ),
        pytest.param(
            CRONJOB,
            [entry(f"{TEMPLATE}.containers[?(@.name='web')].image")],
            [I(1, f"{TEMPLATE}.containers[?(@.name='web')].image")],
            rf"; replace {TEMPLATE} with {CRON}$",
            id="LGO: the hint fixes the selector",
        ),
        pytest.param(
            DEPLOYMENT,
            [entry("spec.containers[0].image")],
            [I(1, "spec.containers[0].image")],
            rf'does not start with "{TEMPLATE}\."',
            id="LGO UpdateObjectFromImages: a Pod's path",
        ),
        pytest.param(
            DEPLOYMENT, [entry(TEMPLATE)], [I(1, TEMPLATE)], "does not start", id="LGO: no dot after the path"
        ),
        pytest.param(DEPLOYMENT, [entry("")], [I(1, "")], "fieldPath is missing", id="LGO: empty fieldPath"),
        pytest.param(DEPLOYMENT, [{"from": GOOD["from"]}], [I(1, "")], "fieldPath is missing", id="LGO: no fieldPath"),
        # Paused or not, an entry that could never apply is reported.
        pytest.param(
            DEPLOYMENT,
            [entry(kind="DockerImage", paused=True)],
            [I(1, paused=True)],
            "from.kind",
            id="LGO UpdateObjectFromImages: paused and ignored",
        ),
    ],
)
def test_entries_openshift_skips_are_ignored_and_the_others_apply(
    kind: WorkloadKind, entries: list[Any], expected: list[tuple[Any, ...]], reason: str | None
) -> None:
    text = annotation(*entries)
    assert read(text, kind) == expected
    ignored = parse_triggers(text, kind, "team").ignored
    assert [i.message for i in ignored if not re.search(reason or "^$", i.reason)] == []
    assert all(i.message.startswith(f"trigger {i.position} is ignored: ") for i in ignored)


def test_every_reason_is_given_at_once() -> None:
    [ignored] = parse_triggers(annotation(entry("x", "app", kind="DockerImage")), DEPLOYMENT, "team").ignored
    assert re.fullmatch(
        r'from\.kind must .*; from\.name "app" has no tag.*; fieldPath "x" does not start .*', ignored.reason
    )


@pytest.mark.parametrize(
    ("extra", "namespace", "paused"),
    [
        ({}, "team", False),
        ({"source": {"namespace": "shared"}}, "shared", False),
        ({"source": {"namespace": ""}}, "team", False),
        ({"paused": True}, "team", True),
        ({"paused": False}, "team", False),
    ],
)
def test_namespace_defaults_to_the_workloads_as_update_object_from_images(
    extra: dict[str, Any], namespace: str, paused: bool
) -> None:
    trigger = one(WEB, **extra)
    assert (trigger.stream, trigger.tag, trigger.namespace, trigger.paused) == ("app", "latest", namespace, paused)


def test_the_form_oc_set_triggers_writes() -> None:
    text = json.dumps([{**GOOD, "paused": False}], separators=(",", ":"))
    parsed = parse_triggers(text, DEPLOYMENT, "team")
    assert parsed.triggers == (Trigger(1, "app", "latest", "team", FieldPath("containers", None, "web"), WEB, False),)
    assert parsed.ignored == ()


# --- the fieldPath: parseContainerReference and findContainerBySelector ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        (DEPLOYMENT, WEB, FieldPath("containers", None, "web")),
        (WorkloadKind.STATEFULSET, f"{TEMPLATE}.containers[0].image", FieldPath("containers", 0, None)),
        (WorkloadKind.DAEMONSET, f"{TEMPLATE}.containers[12].image", FieldPath("containers", 12, None)),
        (WorkloadKind.JOB, f"{TEMPLATE}.initContainers[1].image", FieldPath("initContainers", 1, None)),
        (DEPLOYMENT, f'{TEMPLATE}.initContainers[?(@.name=="m")].image', FieldPath("initContainers", None, "m")),
        (CRONJOB, f'{CRON}.containers[?(@.name=="job")].image', FieldPath("containers", None, "job")),
        (CRONJOB, f"{CRON}.initContainers[0].image", FieldPath("initContainers", 0, None)),
    ],
)
def test_field_paths_in_the_form_oc_writes(kind: WorkloadKind, path: str, expected: FieldPath) -> None:
    assert parse_field_path(path, kind) == expected
    assert expected.render(kind) == path
    assert one(path, kind).field_path == expected


C = f"{TEMPLATE}.containers"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # LGO findContainerBySelector: strconv.Atoi first: a sign, leading zeros, and any int64.
        pytest.param(f"{C}[+1].image", FieldPath("containers", 1, None), id="Atoi: +1"),
        pytest.param(f"{C}[-0].image", FieldPath("containers", 0, None), id="Atoi: -0"),
        pytest.param(f"{C}[007].image", FieldPath("containers", 7, None), id="Atoi: leading zeros"),
        pytest.param(f"{C}[{'0' * 100}7].image", FieldPath("containers", 7, None), id="Atoi: many leading zeros"),
        pytest.param(f"{C}[-1].image", FieldPath("containers", -1, None), id="Atoi: -1 (then GetContainerByIndex)"),
        pytest.param(f"{C}[{2**63 - 1}].image", FieldPath("containers", 2**63 - 1, None), id="Atoi: int64 max"),
        # LGO findContainerBySelector: TrimPrefix ?(@.name==" and TrimSuffix ") each only if present.
        pytest.param(f'{C}[?(@.name=="web].image', FieldPath("containers", None, "web"), id="TrimPrefix only"),
        pytest.param(f'{C}[web")].image', FieldPath("containers", None, "web"), id="TrimSuffix only"),
        pytest.param(f'{C}[?(@.name=="")].image', FieldPath("containers", None, ""), id="empty name"),
        pytest.param(f'{C}[?(@.name == "web")].image', FieldPath("containers", None, '?(@.name == "web'), id="spaces"),
        pytest.param(f'{C}[?(@.name=="a b")].image', FieldPath("containers", None, "a b"), id="space in the name"),
        # LGO parseContainerReference: one "." between "]" and "image" is optional.
        pytest.param(f"{C}[0]image", FieldPath("containers", 0, None), id="parseContainerReference: [0]image"),
    ],
)
def test_selectors_as_find_container_by_selector_reads_them(path: str, expected: FieldPath) -> None:
    assert parse_field_path(path, DEPLOYMENT) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        # LGO findContainerBySelector: neither an Atoi index nor a trimmed name: "no such container".
        pytest.param(
            f"{C}[?(@.name='web')].image", rf'double quotes; write {C}\[\?\(@\.name=="web"\)\]\.image$', id="'"
        ),
        pytest.param(f"{C}[ 0].image", "decimal index or", id="Atoi: space"),
        pytest.param(f"{C}[1_0].image", "decimal index or", id="Atoi: underscore"),
        pytest.param(f"{C}[0x1].image", "decimal index or", id="Atoi: hex"),
        pytest.param(f"{C}[\u0663].image", "decimal index or", id="Atoi: ASCII digits only"),
        pytest.param(f"{C}[web].image", "decimal index or", id="bare name"),
        pytest.param(f"{C}[].image", "decimal index or", id="empty selector"),
        pytest.param(f"{C}[{2**63}].image", r"container index 9223372036854775808 is too large", id="Atoi: range"),
        pytest.param(f"{C}[{'1' * 5000}].image", r"container index 1111.*\.\.\. is too large", id="Atoi: 5000 digits"),
        # LGO parseContainerReference: containers[ or initContainers[, a "]", then "image" after at most one ".".
        pytest.param(f"{TEMPLATE}.ephemeralContainers[0].image", 'only set container images.*"ephemeral', id="list"),
        pytest.param(f"{TEMPLATE}.volumes[0].image", 'not "volumes"', id="volumes"),
        pytest.param(C, r"with a selector in \[ \]", id="no ["),
        pytest.param(f"{C}[0", r"with a selector in \[ \]", id="no ]"),
        pytest.param(f"{C}[0]", r'must end in "\]\.image"', id="nothing after ]"),
        pytest.param(f"{C}[0]..image", r'found "\.\.image"', id="two dots"),
        pytest.param(f"{C}[0].imagePullPolicy", r'found "\.imagePullPolicy"', id="another field"),
        pytest.param(f'{C}[?(@.name=="a]b")].image', r'found "b"\)\]\.image"', id="the selector ends at the first ]"),
    ],
)
def test_field_paths_openshift_cannot_use(path: str, message: str) -> None:
    with pytest.raises(TriggerError, match=message):
        parse_field_path(path, DEPLOYMENT)
    # In an annotation such a trigger is kept: it is an error only once its tag has an image (below).
    [trigger] = parse_triggers(annotation(entry(path)), DEPLOYMENT, "team").triggers
    assert trigger.field_path is None
    assert re.search(message, trigger.path_problem)


def test_a_rendered_field_path_parses_back() -> None:
    for field_path in (FieldPath("containers", None, 'we"b'), FieldPath("initContainers", -3, None)):
        assert parse_field_path(field_path.render(DEPLOYMENT), DEPLOYMENT) == field_path


# --- the value a tag resolves to ----------------------------------------------------------------------------------


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


# --- the images to write: UpdateObjectFromImages --------------------------------------------------------------------

OLD, NEW, OTHER = f"quay.io/org/app@{DIGEST_A}", f"quay.io/org/app@{DIGEST_B}", "quay.io/org/other@" + DIGEST_B


def workload(kind: WorkloadKind, containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None) -> Any:
    spec: dict[str, Any] = {"containers": containers}
    if init is not None:
        spec["initContainers"] = init
    body: Any = spec
    for key in reversed(POD_SPEC_PATHS[kind]):
        body = {key: body}
    return {"apiVersion": "apps/v1", "kind": kind.value, "metadata": {"name": "w", "namespace": "team"}, **body}


BODY = workload(
    DEPLOYMENT,
    [{"name": "app", "image": OLD}, {"name": "sidecar", "image": OLD}],
    [{"name": "migrate", "image": OLD}],
)
APP = f'{C}[?(@.name=="app")].image'
INIT = f"{TEMPLATE}.initContainers"


def changes(*triggers: tuple[str, str] | tuple[str, str, bool], body: Any = BODY) -> list[tuple[str, str, str]] | str:
    """The (list, container, new image) to write for triggers given as (fieldPath, image[, paused]), in
    annotation order; or "error: MESSAGE"."""
    resolved = {
        trigger_at(number, path, paused=bool(rest and rest[0])): image
        for number, (path, image, *rest) in enumerate(triggers, start=1)
    }
    try:
        plan = desired_changes(body, DEPLOYMENT, resolved)
    except TriggerError as error:
        return f"error: {error}"
    return [(c.container_list, c.container_name, c.new_image) for c in plan.changes]


@pytest.mark.parametrize(
    ("triggers", "expected"),
    [
        # LGO UpdateObjectFromImages: the image is set only where it differs.
        pytest.param([(APP, OLD)], [], id="LGO UpdateObjectFromImages: unchanged"),
        pytest.param([(APP, NEW)], [("containers", "app", NEW)], id="LGO UpdateObjectFromImages: by name"),
        pytest.param([(f"{C}[1].image", NEW)], [("containers", "sidecar", NEW)], id="LGO GetContainerByIndex"),
        pytest.param(
            [(f"{INIT}[0].image", NEW)], [("initContainers", "migrate", NEW)], id="LGO GetContainerByIndex: init"
        ),
        # LGO GetContainerByName: initContainers first, then containers, whichever list the path names.
        pytest.param(
            [(f'{C}[?(@.name=="migrate")].image', NEW)],
            [("initContainers", "migrate", NEW)],
            id="LGO GetContainerByName: an init container through containers[...]",
        ),
        pytest.param(
            [(f'{INIT}[?(@.name=="app")].image', NEW)],
            [("containers", "app", NEW)],
            id="LGO GetContainerByName: a container through initContainers[...]",
        ),
        pytest.param([(f"{C}[0]image", NEW)], [("containers", "app", NEW)], id="LGO parseContainerReference: [0]image"),
        # LGO findContainerBySelector/GetContainerByIndex: no such container: nothing at all is written.
        pytest.param(
            [(APP, NEW), (f"{C}[2].image", NEW)],
            r"error: trigger 2: fieldPath .*\[2\] does not exist: the "
            r"list has 2 entries\. Correct",
            id="LGO GetContainerByIndex: past the end",
        ),
        pytest.param(
            [(f"{C}[-1].image", NEW)],
            r"error: trigger 1: .*containers\[-1\] does not exist",
            id="LGO GetContainerByIndex: negative",
        ),
        pytest.param(
            [(APP, NEW), (f'{C}[?(@.name=="web")].image', NEW)],
            r"error: trigger 2: .*no container named "
            r'"web" in spec.template.spec: containers are app, sidecar; initContainers are migrate\. Correct',
            id="LGO GetContainerByName: missing",
        ),
        pytest.param(
            [(f"{C}[?(@.name='app')].image", NEW), (f"{C}[1].image", NEW)],
            r"error: trigger 1: fieldPath .* "
            r"double quotes; write",
            id="LGO findContainerBySelector: single quotes stop every trigger",
        ),
        pytest.param([(f"{C}[0].imag", NEW)], r'error: trigger 1: .*found "\.imag"', id="LGO parseContainerReference"),
        pytest.param(
            [(f'{C}[?(@.name == "app")].image', NEW)],
            r'error: trigger 1: .*no container named "\?\(@\.name == "app" .*; write .*\[\?\(@\.name=="app"\)\]\.ima',
            id="LGO findContainerBySelector: TrimSuffix leaves a name no container has",
        ),
        pytest.param(
            [(f"{C}[5].image", NEW), (f'{C}[?(@.name=="x")].image', NEW)],
            r"error: trigger 1: .*\ntrigger 2",
            id="every problem at once",
        ),
        # LGO UpdateObjectFromImages: paused triggers are skipped before their container is looked for.
        pytest.param([(APP, NEW, True)], [], id="LGO UpdateObjectFromImages: paused"),
        pytest.param(
            [(f"{C}[5].image", NEW, True), (APP, NEW)], [("containers", "app", NEW)], id="paused, no container"
        ),
        pytest.param([(f"{C}[0].imag", NEW, True)], [], id="LGO UpdateObjectFromImages: paused, invalid path"),
        # LGO UpdateObjectFromImages: applied in order, so the last trigger on a container wins.
        pytest.param([(APP, NEW), (f"{C}[0].image", OTHER)], [("containers", "app", OTHER)], id="LGO: the last wins"),
        pytest.param([(APP, OTHER), (f"{C}[0].image", OLD)], [], id="LGO: the last wins, as it is"),
        pytest.param(
            [(APP, NEW), (f"{C}[0].image", OTHER, True)],
            [("containers", "app", NEW)],
            id="LGO: a paused last one does not compete",
        ),
    ],
)
def test_images_to_write(triggers: list[tuple[Any, ...]], expected: list[tuple[str, str, str]] | str) -> None:
    found = changes(*triggers)
    if isinstance(expected, str):
        assert isinstance(found, str)
        assert re.match(expected, found, re.DOTALL), found
    else:
        assert found == expected


def test_unresolved_triggers_are_skipped_before_their_path_is_checked() -> None:
    # LGO UpdateObjectFromImages: tagRetriever.ImageStreamTag comes before parseContainerReference, so a bad path
    # on a tag without an image stops nothing.
    bad, good = trigger_at(1, f"{C}[?(@.name='x')].image"), trigger_at(2, APP)
    plan = desired_changes(BODY, DEPLOYMENT, {good: NEW})
    assert [(c.trigger, c.container_name) for c in plan.changes] == [(good, "app")]
    with pytest.raises(TriggerError):
        desired_changes(BODY, DEPLOYMENT, {good: NEW, bad: NEW})


def test_the_overridden_trigger_is_reported() -> None:
    first, second, third = (
        trigger_at(1, APP, "a:1"),
        trigger_at(2, f"{C}[0].image", "a:2"),
        trigger_at(3, f"{C}[0]image"),
    )
    # The order of the annotation decides, not the order of the mapping.
    plan = desired_changes(BODY, DEPLOYMENT, {third: OLD, second: OTHER, first: NEW})
    assert plan.changes == ()  # the last one, trigger 3, asks for the image the container has
    assert plan.overridden == (
        'trigger 1 is overridden: triggers 1 (a:1) and 2 (a:2) both set the image of container "app", and the last one '
        "wins (as on OpenShift); remove one of them",
        'trigger 2 is overridden: triggers 2 (a:2) and 3 (app:latest) both set the image of container "app", and the '
        "last one wins (as on OpenShift); remove one of them",
    )


def test_a_change_carries_its_trigger() -> None:
    trigger = one(f"{C}[1].image")
    assert desired_changes(BODY, DEPLOYMENT, {trigger: NEW}).changes == (
        ContainerChange(trigger, "containers", "sidecar", OLD, NEW),
    )


def test_cronjob_containers_are_found_under_the_job_template() -> None:
    body = workload(CRONJOB, [{"name": "job", "image": OLD}])
    trigger = one(f'{CRON}.containers[?(@.name=="job")].image', CRONJOB)
    assert [c.new_image for c in desired_changes(body, CRONJOB, {trigger: NEW}).changes] == [NEW]


def test_a_container_without_an_image_gets_one() -> None:
    assert changes((APP, NEW), body=workload(DEPLOYMENT, [{"name": "app"}])) == [("containers", "app", NEW)]
    assert (
        desired_changes(workload(DEPLOYMENT, [{"name": "app"}]), DEPLOYMENT, {one(APP): NEW}).changes[0].old_image
        is None
    )


def test_a_body_without_a_pod_spec_has_no_containers() -> None:
    assert changes((APP, NEW), body={"metadata": {"name": "bare"}}) == (
        'error: trigger 1: fieldPath "spec.template.spec.containers[?(@.name==\\"app\\")].image": no container named '
        '"app" in spec.template.spec: containers are (none); initContainers are (none). Correct the fieldPath in '
        "image.openshift.io/triggers or add the container"
    ).replace('\\"', '"')


def test_trigger_container_follows_get_container_by_name() -> None:
    assert trigger_container(BODY, DEPLOYMENT, FieldPath("containers", None, "migrate")) == (
        "initContainers",
        "migrate",
    )
    assert trigger_container(BODY, DEPLOYMENT, FieldPath("initContainers", 0, None)) == ("initContainers", "migrate")
    assert trigger_container(BODY, DEPLOYMENT, FieldPath("containers", 7, None)) is None


def test_index_keys_follow_the_trigger_cache_indexer() -> None:
    # OCM triggerCacheIndexer: not paused, kind ImageStreamTag, no apiVersion, a name with a tag; key namespace/stream.
    text = annotation(
        entry(WEB, "app:latest"),
        entry(f"{C}[1].image", "app:stable"),
        entry(f"{C}[2].image", "base:1", source={"namespace": "shared"}),
        entry(f"{C}[3].image", "paused:1", paused=True),
        entry(f"{C}[4].image", "docker:1", kind="DockerImage"),
        entry(f"{C}[5].image", "versioned:1", source={"apiVersion": "v1"}),
        entry(f"{C}[6].imag", "badpath:1"),  # woken by its stream: a bad path is an error once the tag has an image
    )
    parsed = parse_triggers(text, DEPLOYMENT, "team")
    assert trigger_index_keys(parsed.triggers) == {("team", "app"), ("shared", "base"), ("team", "badpath")}


def test_the_warning_describes_a_few_ignored_entries_and_counts_the_rest() -> None:
    text = annotation(*(entry(f"x{n}", kind="DockerImage") for n in range(7)))
    summary = ignored_summary(parse_triggers(text, DEPLOYMENT, "team").ignored)
    assert [line.split(":")[0] for line in summary[:5]] == [f"trigger {n} is ignored" for n in range(1, 6)]
    assert summary[5:] == ["and 2 more entries are ignored"]
