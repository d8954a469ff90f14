"""Tag history with the workloads using each image; rollback and resume of a tag."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from imagestreams.api.imagestream import ImageStream
from imagestreams.cli.errors import CliError, NotFound
from imagestreams.cli.history import (
    choose_entry,
    container_uses,
    history_document,
    history_table,
    resume_spec_tag,
    rollback_message,
    rollback_spec_tag,
    tag_command,
    tag_history,
)
from imagestreams.cli.tagging import ROLLED_BACK_ANNOTATION
from imagestreams.core.triggers import TRIGGERS_ANNOTATION
from imagestreams.core.workloadkinds import WorkloadKind

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
A, B, C = ("sha256:" + letter * 64 for letter in "abc")


def item(digest: str, minutes: int) -> dict[str, Any]:
    created = (NOW - datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"created": created, "dockerImageReference": f"reg/app@{digest}", "image": digest, "generation": 1}


def stream(items: list[dict[str, Any]], tag: dict[str, Any] | None = None) -> ImageStream:
    spec = tag or {"name": "latest", "from": {"kind": "DockerImage", "name": "reg/app:latest"}}
    return ImageStream.model_validate(
        {
            "metadata": {"name": "app", "namespace": "ns"},
            "spec": {"tags": [spec]},
            "status": {"tags": [{"tag": "latest", "items": items}]},
        }
    )


def workload(
    kind: WorkloadKind, name: str, images: dict[str, str], triggers: list[dict[str, Any]] | None = None
) -> tuple[WorkloadKind, dict[str, Any]]:
    pod = {"containers": [{"name": c, "image": i} for c, i in images.items()]}
    spec: dict[str, Any] = {"template": {"spec": pod}}
    if kind == WorkloadKind.CRONJOB:
        spec = {"jobTemplate": {"spec": spec}}
    annotations = {TRIGGERS_ANNOTATION: json.dumps(triggers)} if triggers is not None else {}
    return kind, {"metadata": {"name": name, "annotations": annotations}, "spec": spec}


def trigger(name: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"from": {"kind": "ImageStreamTag", "name": name}, "fieldPath": path, **extra}


def uses() -> list[Any]:
    return container_uses(
        [
            workload(
                WorkloadKind.DEPLOYMENT,
                "web",
                {"web": f"reg/app@{A}"},
                [trigger("app:latest", 'spec.template.spec.containers[?(@.name=="web")].image')],
            ),
            workload(
                WorkloadKind.STATEFULSET,
                "db",
                {"db": f"elsewhere/app@{B}", "side": "busybox"},
                [trigger("app:latest", "spec.template.spec.containers[0].image", paused=True)],
            ),
            workload(
                WorkloadKind.CRONJOB,
                "nightly",
                {"job": "placeholder"},
                [trigger("app:latest", 'spec.jobTemplate.spec.template.spec.containers[?(@.name=="job")].image')],
            ),
            workload(WorkloadKind.DAEMONSET, "agent", {"agent": "reg/app@" + A}),
            workload(WorkloadKind.DEPLOYMENT, "bad", {"x": "y"}, None),
        ],
        "ns",
        "app",
        "latest",
    )


def test_container_uses_mark_what_follows_the_tag() -> None:
    found = {(u.workload, u.container): (u.follows, u.paused, u.label) for u in uses()}
    assert found[("deployment/web", "web")] == (True, False, "deployment/web")
    assert found[("statefulset/db", "db")] == (True, True, "statefulset/db (db) [trigger paused]")
    assert found[("statefulset/db", "side")] == (False, False, "statefulset/db (side)")
    assert found[("cronjob/nightly", "job")] == (True, False, "cronjob/nightly")
    assert found[("daemonset/agent", "agent")][0] is False


def test_history_rows_name_the_workloads_running_each_image() -> None:
    history = tag_history(stream([item(A, 1), item(B, 60), item(A, 120)]), "latest", uses(), NOW)
    assert [(row.index, row.age, row.used_by) for row in history.rows] == [
        (0, "60s", ("deployment/web", "daemonset/agent")),
        (1, "60m", ("statefulset/db (db) [trigger paused]",)),
        (2, "120m", ()),
    ]
    assert history.not_yet_following == ("cronjob/nightly",)
    text = history_table(history)
    assert text.splitlines()[0].split() == ["#", "AGE", "IMAGE", "USED", "BY"]
    assert text.splitlines()[1].split() == ["0", "60s", A, "deployment/web,", "daemonset/agent"]
    assert text.splitlines()[3].endswith("<none>")
    assert "Triggers on app:latest whose containers run none of these images: cronjob/nightly\n" in text
    document = history_document(history)
    assert document["items"][1]["usedBy"] == ["statefulset/db (db) [trigger paused]"]
    assert document["rolledBackFrom"] is None


def test_a_reference_entry_matches_its_pull_spec() -> None:
    ref = {"created": "2026-01-01T11:00:00Z", "dockerImageReference": "reg/app:v1", "image": "", "generation": 1}
    found = container_uses([workload(WorkloadKind.DEPLOYMENT, "w", {"w": "reg/app:v1"})], "ns", "app", "latest")
    history = tag_history(stream([ref]), "latest", found, NOW)
    assert history.rows[0].used_by == ("deployment/w",)
    assert "reg/app:v1" in history_table(history)


def test_history_of_a_missing_tag_and_of_an_empty_one() -> None:
    with pytest.raises(NotFound, match=r'^imagestreamtags\.image\.openshift\.io "app:nope" not found$'):
        tag_history(stream([]), "nope", [], NOW)
    assert "app:latest has no images yet" in history_table(tag_history(stream([]), "latest", [], NOW))


def test_choose_entry() -> None:
    body = stream([item(A, 1), item(B, 2), item(A, 3), item(C, 4)])
    assert choose_entry(body, "latest", None)[0] == 1
    assert choose_entry(body, "latest", "3")[0] == 3
    assert choose_entry(body, "latest", "0")[0] == 0
    assert choose_entry(body, "latest", "cccc")[0] == 3
    assert choose_entry(body, "latest", A)[0] == 0  # the newest entry with that image


@pytest.mark.parametrize(
    ("items", "to", "message"),
    [
        ([item(A, 1)], None, "app:latest has no earlier image to roll back to (its history has 1 entry)"),
        ([], None, "app:latest has no earlier image to roll back to (its history has 0 entries)"),
        ([item(A, 1), item(B, 2)], "5", "app:latest has history entries 0 to 1; there is no entry 5"),
        ([item(A, 1)], "sha256:ff", 'no entry in the history of app:latest has the image "sha256:ff"'),
        (
            [item("sha256:ab" + "0" * 62, 1), item("sha256:ac" + "0" * 62, 2)],
            "sha256:a",
            '"sha256:a" matches 2 images of app:latest: ',
        ),
    ],
)
def test_choose_entry_errors(items: list[dict[str, Any]], to: str | None, message: str) -> None:
    with pytest.raises(CliError) as caught:
        choose_entry(stream(items), "latest", to)
    assert str(caught.value).startswith(message)


def test_a_reference_entry_cannot_be_pinned() -> None:
    ref = {"created": "2026-01-01T11:00:00Z", "dockerImageReference": "reg/app:v1", "image": "", "generation": 1}
    with pytest.raises(CliError, match="has no image digest"):
        choose_entry(stream([item(A, 1), ref]), "latest", "1")


def test_rollback_pins_and_remembers_and_resume_restores() -> None:
    raw = {
        "name": "latest",
        "annotations": {"owner": "me"},
        "from": {"kind": "DockerImage", "name": "reg/app:latest"},
        "importPolicy": {"scheduled": True, "insecure": True},
        "referencePolicy": {"type": "Source"},
    }
    pinned = rollback_spec_tag(raw, "app", B)
    assert pinned["from"] == {"kind": "ImageStreamImage", "name": f"app@{B}"}
    assert pinned["importPolicy"] == {"insecure": True}  # scheduled imports are for container images only
    saved = json.loads(pinned["annotations"][ROLLED_BACK_ANNOTATION])
    assert saved == {"from": raw["from"], "importPolicy": raw["importPolicy"]}
    assert pinned["annotations"]["owner"] == "me"
    # Rolling back again keeps the original source.
    again = rollback_spec_tag(pinned, "app", C)
    assert again["annotations"][ROLLED_BACK_ANNOTATION] == pinned["annotations"][ROLLED_BACK_ANNOTATION]
    restored, source = resume_spec_tag(again, "app")
    assert restored == raw
    assert source == saved


def test_rollback_of_a_reference_tag_and_resume_without_rollback() -> None:
    raw = {"name": "v1", "from": {"kind": "DockerImage", "name": "reg/app:v1"}, "reference": True}
    pinned = rollback_spec_tag(raw, "app", A)
    assert "reference" not in pinned and "importPolicy" not in pinned
    assert resume_spec_tag(pinned, "app")[0] == raw
    with pytest.raises(CliError, match=f"app:v1 is not pinned by a rollback .*{ROLLED_BACK_ANNOTATION}"):
        resume_spec_tag(raw, "app")
    broken = {**raw, "annotations": {ROLLED_BACK_ANNOTATION: "[]"}}
    with pytest.raises(CliError, match="is not a JSON object"):
        resume_spec_tag(broken, "app")


@pytest.mark.parametrize(
    ("saved", "command"),
    [
        (
            {
                "from": {"kind": "DockerImage", "name": "reg/app:1"},
                "importPolicy": {"scheduled": True, "insecure": True},
            },
            "kubectl imagestream tag --source=docker --scheduled --insecure reg/app:1 app:latest",
        ),
        (
            {
                "from": {"kind": "DockerImage", "name": "reg/app:1"},
                "reference": True,
                "importPolicy": {"importMode": "PreserveOriginal"},
            },
            "kubectl imagestream tag --source=docker --reference --import-mode=PreserveOriginal reg/app:1 app:latest",
        ),
        ({"from": {"kind": "ImageStreamTag", "name": "v1"}}, "kubectl imagestream tag --alias app:v1 app:latest"),
        (
            {"from": {"kind": "ImageStreamTag", "name": "base:1", "namespace": "lib"}},
            "kubectl imagestream tag --source=istag lib/base:1 app:latest",
        ),
        (
            {"from": {"kind": "ImageStreamImage", "name": f"app@{A}"}},
            f"kubectl imagestream tag --source=isimage app@{A} app:latest",
        ),
        ({"from": None}, None),
    ],
)
def test_equivalent_tag_commands(saved: dict[str, Any], command: str | None) -> None:
    assert tag_command(saved, "app", "latest", "ns") == command


def test_rollback_message_says_how_to_resume() -> None:
    body = stream([item(A, 1), item(B, 2)])
    saved = {"from": {"kind": "DockerImage", "name": "reg/app:latest"}}
    index, entry = choose_entry(body, "latest", None)
    assert entry.image == B
    assert rollback_message(body, "latest", index, entry, saved, already_pinned=False) == (
        f"Tag app:latest set to app@{B} (history entry 1).\n"
        "It no longer follows reg/app:latest. To follow reg/app:latest again, run:\n"
        "  kubectl imagestream resume app:latest\n"
        "or:\n"
        "  kubectl imagestream tag --source=docker reg/app:latest app:latest\n"
    )
    assert "It no longer follows" not in rollback_message(body, "latest", index, entry, saved, already_pinned=True)


def test_history_notes_a_rollback() -> None:
    raw = {"name": "latest", "from": {"kind": "DockerImage", "name": "reg/app:latest"}}
    pinned = stream([item(B, 1), item(A, 2), item(B, 3)], rollback_spec_tag(raw, "app", B))
    history = tag_history(pinned, "latest", [], NOW)
    assert history.rolled_back_from == {"from": raw["from"]}
    assert "kubectl imagestream resume app:latest" in history_table(history)


def test_container_uses_read_triggers_as_openshift_does() -> None:
    """Entries OpenShift ignores follow nothing; `null` is no triggers; a name selector finds an init container
    through `containers[...]` (library-go GetContainerByName looks in both lists)."""
    pod = {
        "initContainers": [{"name": "setup", "image": "setup:1"}],
        "containers": [{"name": "web", "image": "web:1"}, {"name": "api", "image": "api:1"}],
    }
    annotation = [
        trigger("app:latest", 'spec.template.spec.containers[?(@.name=="setup")].image'),
        {"from": {"kind": "DockerImage", "name": "app:latest"}, "fieldPath": "spec.template.spec.containers[0].image"},
        trigger("app:latest", "spec.jobTemplate.spec.template.spec.containers[1].image"),  # another kind's path
    ]
    found = container_uses(
        [
            (
                WorkloadKind.DEPLOYMENT,
                {
                    "metadata": {"name": "w", "annotations": {TRIGGERS_ANNOTATION: json.dumps(annotation)}},
                    "spec": {"template": {"spec": pod}},
                },
            ),
            (
                WorkloadKind.DEPLOYMENT,
                {
                    "metadata": {"name": "n", "annotations": {TRIGGERS_ANNOTATION: "null"}},
                    "spec": {"template": {"spec": pod}},
                },
            ),
        ],
        "ns",
        "app",
        "latest",
    )
    following = {(u.workload, u.container) for u in found if u.follows}
    assert following == {("deployment/w", "setup")}
