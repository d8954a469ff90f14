"""`oc set triggers` and `oc set image-lookup` on annotation-triggered workloads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagestreams.cli.errors import CliError
from imagestreams.cli.triggeredit import (
    ImageSource,
    TriggerEdit,
    edit_triggers,
    parse_from_image,
    trigger_rows,
    validate_edit,
)
from imagestreams.cli.workloads import (
    WorkloadRef,
    lookup_enabled,
    lookup_patch,
    parse_workload,
    split_type_name,
    stream_lookup_local,
    stream_lookup_patch,
)
from imagestreams.core.lookup import RESOLVE_NAMES_ANNOTATION
from imagestreams.core.triggers import TRIGGERS_ANNOTATION
from imagestreams.core.workloadkinds import WorkloadKind

WEB = WorkloadRef(WorkloadKind.DEPLOYMENT, "web")
NIGHTLY = WorkloadRef(WorkloadKind.CRONJOB, "nightly")


def deployment(
    containers: list[str], triggers: Any = None, init: list[str] | None = None, **spec: Any
) -> dict[str, Any]:
    annotations = (
        {}
        if triggers is None
        else {TRIGGERS_ANNOTATION: triggers if isinstance(triggers, str) else json.dumps(triggers)}
    )
    pod: dict[str, Any] = {"containers": [{"name": c, "image": f"img/{c}"} for c in containers]}
    if init:
        pod["initContainers"] = [{"name": c, "image": f"img/{c}"} for c in init]
    return {
        "metadata": {"name": "web", "namespace": "ns", "annotations": annotations},
        "spec": {"template": {"spec": pod}, **spec},
    }


def by_name(container: str, listed: str = "containers") -> str:
    return f'spec.template.spec.{listed}[?(@.name=="{container}")].image'


def entry(name: str, container: str, **extra: Any) -> dict[str, Any]:
    return {"from": {"kind": "ImageStreamTag", "name": name}, "fieldPath": by_name(container), **extra}


def edited(body: dict[str, Any], edit: TriggerEdit, workload: WorkloadRef = WEB) -> Any:
    value = edit_triggers(workload, body, edit, "ns")
    return None if value is None else json.loads(value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (TriggerEdit(auto=True, manual=True), "you must specify at most one of --auto or --manual"),
        (TriggerEdit(remove=True, remove_all=True), "you must specify either --remove or --remove-all"),
        (TriggerEdit(remove_all=True, from_image="a:b"), "--remove-all may not be used with any other flag"),
        (TriggerEdit(remove_all=True, manual=True), "--remove-all may not be used with any other flag"),
        (TriggerEdit(remove=True), "--remove requires a flag defining a trigger type to be specified"),
        (
            TriggerEdit(containers=("web",)),
            "--containers selects the containers of --from-image; give --from-image too",
        ),
    ],
)
def test_flag_combinations(edit: TriggerEdit, message: str) -> None:
    with pytest.raises(CliError) as caught:
        validate_edit(edit)
    assert str(caught.value) == message


def test_no_flags_lists() -> None:
    assert TriggerEdit().lists_only
    assert not TriggerEdit(manual=True).lists_only


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("app:v1", ImageSource("app:v1", "")),
        ("ns/app:v1", ImageSource("app:v1", "")),
        ("lib/app:v1", ImageSource("app:v1", "lib")),
    ],
)
def test_from_image(text: str, source: ImageSource) -> None:
    assert parse_from_image(text, "ns") == source


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quay.io/a/b:1", "the value of --from-image must point to an image stream tag on this server"),
        ("app@sha256:" + "a" * 64, "the value of --from-image must point to an image stream tag on this server"),
        ("app", "the value of --from-image must include the tag you wish to pull from"),
        ("App:1", "the value of --from-image does not appear to be a valid reference to an image: invalid reference"),
    ],
)
def test_from_image_errors(text: str, message: str) -> None:
    with pytest.raises(CliError, match="^" + message):
        parse_from_image(text, "ns")


def test_from_image_defaults_to_the_only_container_and_writes_ocs_form() -> None:
    assert edited(deployment(["web"]), TriggerEdit(from_image="app:latest")) == [entry("app:latest", "web")]
    raw = edit_triggers(WEB, deployment(["web"]), TriggerEdit(from_image="app:latest"), "ns")
    assert raw == (
        '[{"from":{"kind":"ImageStreamTag","name":"app:latest"},'
        '"fieldPath":"spec.template.spec.containers[?(@.name==\\"web\\")].image"}]'
    )


def test_several_containers_need_c() -> None:
    with pytest.raises(CliError) as caught:
        edited(deployment(["web", "sidecar"]), TriggerEdit(from_image="app:latest"))
    assert str(caught.value) == "you must specify --containers when setting --from-image"
    result = edited(
        deployment(["web", "sidecar"]), TriggerEdit(from_image="app:latest", containers=("web", "sidecar"), manual=True)
    )
    assert result == [entry("app:latest", "web", paused=True), entry("app:latest", "sidecar", paused=True)]


def test_unknown_containers_are_named() -> None:
    with pytest.raises(CliError) as caught:
        edited(deployment(["web"], init=["setup"]), TriggerEdit(from_image="a:b", containers=("nope", "zz")))
    assert str(caught.value) == "not all container names exist: nope, zz (accepts: setup, web)"


def test_init_containers_get_an_init_containers_path() -> None:
    result = edited(deployment(["web"], init=["setup"]), TriggerEdit(from_image="a:b", containers=("setup",)))
    assert result == [
        {"from": {"kind": "ImageStreamTag", "name": "a:b"}, "fieldPath": by_name("setup", "initContainers")}
    ]


def test_cronjobs_get_their_pod_template_path_and_other_namespaces_are_kept() -> None:
    body = {
        "metadata": {"name": "nightly", "namespace": "ns"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job"}]}}}}},
    }
    assert edited(body, TriggerEdit(from_image="lib/base:1"), NIGHTLY) == [
        {
            "from": {"kind": "ImageStreamTag", "name": "base:1", "namespace": "lib"},
            "fieldPath": 'spec.jobTemplate.spec.template.spec.containers[?(@.name=="job")].image',
        }
    ]


def test_setting_the_same_tag_again_updates_paused_and_keeps_the_entry() -> None:
    body = deployment(["web"], [entry("app:latest", "web", paused=True, extra="kept")])
    assert edited(body, TriggerEdit(from_image="app:latest")) == [entry("app:latest", "web", extra="kept")]
    # An index selector names the same container.
    indexed = deployment(
        ["web"],
        [
            {
                "from": {"kind": "ImageStreamTag", "name": "app:latest"},
                "fieldPath": "spec.template.spec.containers[0].image",
            }
        ],
    )
    assert edited(indexed, TriggerEdit(from_image="app:latest", manual=True))[0]["paused"] is True


def test_a_container_followed_from_another_tag_is_refused() -> None:
    body = deployment(["web"], [entry("app:stable", "web")])
    with pytest.raises(CliError) as caught:
        edited(body, TriggerEdit(from_image="app:latest"))
    assert str(caught.value) == "only one trigger may reference each container: web"


def test_auto_and_manual_switch_every_trigger() -> None:
    body = deployment(["web", "api"], [entry("a:1", "web"), entry("b:1", "api", paused=True)])
    assert edited(body, TriggerEdit(manual=True)) == [
        entry("a:1", "web", paused=True),
        entry("b:1", "api", paused=True),
    ]
    assert edited(body, TriggerEdit(auto=True)) == [entry("a:1", "web"), entry("b:1", "api")]


def test_remove_drops_the_tags_triggers_and_remove_all_everything() -> None:
    body = deployment(["web", "api", "db"], [entry("a:1", "web"), entry("a:1", "api"), entry("b:1", "db")])
    assert edited(body, TriggerEdit(remove=True, from_image="a:1")) == [entry("b:1", "db")]
    assert edited(body, TriggerEdit(remove=True, from_image="a:1", containers=("api",))) == [
        entry("a:1", "web"),
        entry("b:1", "db"),
    ]
    assert edited(body, TriggerEdit(remove=True, from_image="lib/a:1")) == [
        entry("a:1", "web"),
        entry("a:1", "api"),
        entry("b:1", "db"),
    ]
    assert edited(deployment(["web"], [entry("a:1", "web")]), TriggerEdit(remove=True, from_image="a:1")) is None
    assert edited(body, TriggerEdit(remove_all=True)) is None


def test_an_invalid_annotation_can_only_be_removed() -> None:
    body = deployment(["web"], "not json")
    with pytest.raises(CliError, match=f"the {TRIGGERS_ANNOTATION} annotation of deployment.apps/web is not valid: "):
        edited(body, TriggerEdit(manual=True))
    assert edited(body, TriggerEdit(remove_all=True)) is None


def test_rows_list_the_config_trigger_then_each_image_trigger() -> None:
    body = deployment(
        ["web", "api"],
        [
            entry("a:1", "web"),
            {
                "from": {"kind": "ImageStreamTag", "name": "b:2", "namespace": "lib"},
                "fieldPath": by_name("api"),
                "paused": True,
            },
        ],
        paused=True,
    )
    assert trigger_rows(WEB, body, "ns") == [
        ["deployments/web", "config", "", "false"],
        ["deployments/web", "image", "a:1 (web)", "true"],
        ["deployments/web", "image", "lib/b:2 (api)", "false"],
    ]
    assert trigger_rows(WEB, deployment(["web"], "[1]"), "ns") == [["deployments/web", "<error>", "", "false"]]
    # Triggers whose container is missing are listed too (oc leaves them out), so they can be found and fixed.
    gone = deployment(
        ["web"],
        [
            entry("a:1", "missing"),
            {"from": {"kind": "ImageStreamTag", "name": "b:1"}, "fieldPath": "spec.template.spec.containers[3].image"},
        ],
    )
    assert trigger_rows(WEB, gone, "ns")[1:] == [
        ["deployments/web", "image", "a:1 (missing)", "true"],
        ["deployments/web", "image", "b:1 (containers[3])", "true"],
    ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("deployment/web", WorkloadKind.DEPLOYMENT),
        ("deploy/web", WorkloadKind.DEPLOYMENT),
        ("deployments.apps/web", WorkloadKind.DEPLOYMENT),
        ("sts/web", WorkloadKind.STATEFULSET),
        ("DaemonSet/web", WorkloadKind.DAEMONSET),
        ("cj/web", WorkloadKind.CRONJOB),
        ("cronjobs.batch/web", WorkloadKind.CRONJOB),
        ("job/web", WorkloadKind.JOB),
    ],
)
def test_workload_names(text: str, kind: WorkloadKind) -> None:
    assert parse_workload(text, "triggers") == WorkloadRef(kind, "web")


def test_workload_name_errors_and_display() -> None:
    with pytest.raises(CliError) as caught:
        parse_workload("pod/web", "triggers")
    assert (
        str(caught.value)
        == "pod/web does not support triggers: only deployments, statefulsets, daemonsets, cronjobs and jobs do"
    )
    with pytest.raises(CliError, match="needs TYPE/NAME"):
        parse_workload("web", "triggers")
    with pytest.raises(CliError, match="single resource and name"):
        split_type_name("a/b/c")
    assert (WEB.resource, WEB.qualified) == ("deployments/web", "deployment.apps/web")
    assert (NIGHTLY.resource, NIGHTLY.qualified) == ("cronjobs/nightly", "cronjob.batch/nightly")


def test_image_lookup_on_workloads_and_streams() -> None:
    assert lookup_patch(WorkloadKind.DEPLOYMENT, True) == {
        "spec": {"template": {"metadata": {"annotations": {RESOLVE_NAMES_ANNOTATION: "*"}}}}
    }
    assert lookup_patch(WorkloadKind.CRONJOB, False) == {
        "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"annotations": {RESOLVE_NAMES_ANNOTATION: None}}}}}}
    }
    body = deployment(["web"])
    assert not lookup_enabled(body, WorkloadKind.DEPLOYMENT)
    body["spec"]["template"]["metadata"] = {"annotations": {RESOLVE_NAMES_ANNOTATION: "*"}}
    assert lookup_enabled(body, WorkloadKind.DEPLOYMENT)
    on_object = deployment(["web"])
    on_object["metadata"]["annotations"][RESOLVE_NAMES_ANNOTATION] = "*"
    assert lookup_enabled(on_object, WorkloadKind.DEPLOYMENT)
    assert stream_lookup_patch(False) == {"spec": {"lookupPolicy": {"local": False}}}
    assert stream_lookup_local({"spec": {"lookupPolicy": {"local": True}}})
    assert not stream_lookup_local({})


# --- annotations OpenShift partly ignores: as `oc set triggers` (openshift/oc pkg/cli/set/triggers.go) -------------

ODD = {"from": {"kind": "DockerImage", "name": "app:latest"}, "fieldPath": by_name("web"), "keep": 1}
OUTSIDE = {"from": {"kind": "ImageStreamTag", "name": "b:1"}, "fieldPath": "spec.containers[0].image"}


@pytest.mark.parametrize("value", ["null", "[]", " null "])
def test_null_and_an_empty_list_are_no_triggers(value: str) -> None:
    # oc NewAnnotationTriggers: json.Unmarshal of null gives no triggers; `oc set triggers --remove-all` writes null.
    body = deployment(["web"], value)
    assert trigger_rows(WEB, body, "ns") == [["deployments/web", "config", "", "true"]]
    assert edited(body, TriggerEdit(from_image="app:latest")) == [entry("app:latest", "web")]
    # Nothing to switch: the annotation is left as it is, not rewritten.
    assert edit_triggers(WEB, body, TriggerEdit(manual=True), "ns") == value


def test_ignored_entries_are_listed_and_kept() -> None:
    body = deployment(["web", "api"], [ODD, entry("a:1", "api"), OUTSIDE])
    rows = trigger_rows(WEB, body, "ns")
    assert rows[1][:2] == ["deployments/web", "image"]
    assert rows[1][2].startswith('app:latest (web) ignored: from.kind must be "ImageStreamTag" (found "DockerImage")')
    assert rows[1][3] == "false"
    assert rows[2] == ["deployments/web", "image", "a:1 (api)", "true"]
    assert rows[3][2].startswith('b:1 (spec.containers[0].image) ignored: fieldPath "spec.containers[0].image" does')
    # Edits of other tags keep the ignored entries as written (oc would rewrite or drop them).
    assert edited(body, TriggerEdit(manual=True)) == [
        {**ODD, "paused": True},
        entry("a:1", "api", paused=True),
        {**OUTSIDE, "paused": True},
    ]
    assert edited(body, TriggerEdit(remove=True, from_image="a:1")) == [ODD, OUTSIDE]


def test_from_image_rewrites_an_ignored_entry_of_the_same_tag_as_oc_does() -> None:
    # oc Apply writes every entry back as kind ImageStreamTag; one for this tag and container becomes a trigger.
    body = deployment(["web"], [ODD])
    assert edited(body, TriggerEdit(from_image="app:latest")) == [entry("app:latest", "web")]


def test_from_image_refuses_a_container_an_ignored_entry_of_another_tag_selects() -> None:
    # oc Apply: "only one trigger may reference each container", ignored entries counted.
    with pytest.raises(CliError) as caught:
        edited(deployment(["web"], [ODD]), TriggerEdit(from_image="other:1"))
    assert (
        str(caught.value) == "only one trigger may reference each container: web (trigger 1, which OpenShift ignores)"
    )


def test_remove_matches_ignored_entries_of_the_tag() -> None:
    body = deployment(["web", "api"], [ODD, entry("a:1", "api")])
    assert edited(body, TriggerEdit(remove=True, from_image="app:latest")) == [entry("a:1", "api")]


def test_an_init_container_selected_through_containers_is_the_one_triggered() -> None:
    # library-go GetContainerByName looks in initContainers and containers, so oc's containers[...] path for an
    # init container works; oc set triggers writes it, and it names that container here too.
    body = deployment(["web"], [entry("a:1", "setup")], init=["setup"])
    assert trigger_rows(WEB, body, "ns")[1] == ["deployments/web", "image", "a:1 (setup)", "true"]
    with pytest.raises(CliError, match="only one trigger may reference each container: setup"):
        edited(body, TriggerEdit(from_image="b:1", containers=("setup",)))


def test_paused_is_set_over_every_spelling_of_the_key() -> None:
    # json.Unmarshal matches "PAUSED" to paused too, and the later key wins: oc's write-back has one key.
    body = deployment(
        ["web"],
        '[{"PAUSED": false, "from": {"kind": "ImageStreamTag", "name": "a:1"}, '
        f'"fieldPath": {json.dumps(by_name("web"))}, "Paused": false}}]',
    )
    assert edited(body, TriggerEdit(manual=True)) == [{**entry("a:1", "web"), "paused": True}]


def test_an_annotation_go_cannot_read_is_still_refused() -> None:
    body = deployment(["web"], '[{"from": {"kind": "ImageStreamTag", "name": "a:1"}, "paused": "false"}]')
    with pytest.raises(CliError, match=r"is not valid: trigger 1: paused must be a JSON boolean"):
        edited(body, TriggerEdit(from_image="a:1"))
    assert trigger_rows(WEB, body, "ns") == [["deployments/web", "<error>", "", "false"]]
