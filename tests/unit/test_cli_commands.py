"""Each verb module's decision (a function from the object as read to an Edit), and the flags the verbs share."""

from __future__ import annotations

import argparse
import datetime
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from imagestreams.cli import tagging
from imagestreams.cli.app import VERBS, build_parser, find_verb, normalize_argv, run
from imagestreams.cli.commands import import_image, rollback, set_image_lookup, set_triggers, tag
from imagestreams.cli.commands import resume as resume_verb
from imagestreams.cli.edits import Edit, merge_patch, with_resource_version
from imagestreams.cli.errors import CliError, NotFound
from imagestreams.cli.events import events_section
from imagestreams.cli.flags import DryRun, OutputFormat, dry_run_strategy, parse_output
from imagestreams.cli.importing import IMPORT_REQUEST_ANNOTATION, ImportOptions, ImportTarget
from imagestreams.cli.output import render
from imagestreams.cli.tagging import ROLLED_BACK_ANNOTATION, TagOptions
from imagestreams.cli.triggeredit import TriggerEdit
from imagestreams.cli.workloads import WorkloadRef, parse_workload_types
from imagestreams.core.workloadkinds import WorkloadKind

NOW = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def stream(tags: list[dict[str, Any]], status_tags: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "app", "namespace": "ns", "resourceVersion": "7"},
        "spec": {"tags": tags},
        "status": {"tags": status_tags or []},
    }


# --- the dispatch ------------------------------------------------------------------------------------------------


def test_every_verb_has_a_module_with_usage_help_examples_flags_and_run() -> None:
    for verb in VERBS:
        module = __import__(f"imagestreams.cli.commands.{VERBS[verb][0]}", fromlist=["run"])
        assert module.USAGE.startswith(verb)
        assert module.DESCRIPTION and module.EXAMPLES.startswith("Examples:\n")
        assert callable(module.add_arguments) and callable(module.run)
    assert "convert" in build_parser().format_help()


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["tag", "a:b", "c:d"], "tag"),
        (["-n", "tag", "describe", "is"], "describe"),
        (["--kubeconfig", "/k", "--context=c", "history", "app:v1"], "history"),
        (["bogus"], None),
        (["--help"], None),
    ],
)
def test_the_verb_is_found_before_parsing(argv: list[str], verb: str | None) -> None:
    assert find_verb(argv) == verb


def test_running_a_verb_imports_only_that_verbs_module() -> None:
    code = (
        "import io, sys\n"
        "from imagestreams.cli.app import run\n"
        "run(['tag', '--alias', 'a:v1', 'b:v1'], io.StringIO(), io.StringIO())\n"
        "print(sorted(m for m in sys.modules if m.startswith('imagestreams.cli.commands.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['imagestreams.cli.commands.tag']"


@pytest.mark.parametrize(
    ("argv", "normalized"),
    [
        (["tag", "--dry-run", "a:b", "c:d"], ["tag", "--dry-run=unchanged", "a:b", "c:d"]),
        (["tag", "--insecure=false", "x", "a:b"], ["tag", "x", "a:b"]),  # tag's --insecure cannot be negated
        (["import-image", "app", "--dry-run=server"], ["import-image", "app", "--dry-run=server"]),
        (["set-triggers", "deploy", "-l", "a=b", "--auto=true"], ["set-triggers", "deploy", "-l", "a=b", "--auto"]),
        (
            ["tag", "-o", "yaml", "--allow-missing-template-keys=false"],
            ["tag", "-o", "yaml", "--no-allow-missing-template-keys"],
        ),
    ],
)
def test_dry_run_is_never_given_the_next_word_and_booleans_come_from_the_verbs_flags(
    argv: list[str], normalized: list[str]
) -> None:
    assert normalize_argv(argv) == normalized


def test_dry_run_strategies_are_kubectls() -> None:
    assert dry_run_strategy("unchanged", DryRun.CLIENT) is DryRun.CLIENT
    assert dry_run_strategy("unchanged", DryRun.SERVER) is DryRun.SERVER  # import-image: oc's --dry-run
    assert dry_run_strategy("true", DryRun.CLIENT) is DryRun.CLIENT
    assert dry_run_strategy("false", DryRun.CLIENT) is DryRun.NONE
    assert dry_run_strategy("server", DryRun.CLIENT) is DryRun.SERVER
    with pytest.raises(CliError, match=r'Invalid dry-run value \(maybe\). Must be "none", "server", or "client".'):
        dry_run_strategy("maybe", DryRun.CLIENT)
    parsed = build_parser(["tag"]).parse_args(normalize_argv(["tag", "a:b", "c:d", "--dry-run"]))
    assert parsed.dry_run is DryRun.CLIENT
    parsed = build_parser(["import-image"]).parse_args(normalize_argv(["import-image", "app", "--dry-run"]))
    assert parsed.dry_run is DryRun.SERVER


def test_dry_run_marks_messages_as_kubectl_does() -> None:
    assert DryRun.CLIENT.mark("Tag app:v1 set to x.") == "Tag app:v1 set to x (dry run)."
    assert DryRun.SERVER.mark("Tag a set to b (history entry 1).\nmore\n") == (
        "Tag a set to b (history entry 1) (server dry run).\nmore\n"
    )
    assert DryRun.NONE.mark("Deleted tag ns/app:v1.") == "Deleted tag ns/app:v1."
    assert DryRun.CLIENT.note() == " (dry run)"


def test_output_formats_and_templates(tmp_path: Path) -> None:
    formats = ("yaml", "json", "name")
    assert parse_output("yaml", None, formats) == OutputFormat("yaml")
    assert parse_output("jsonpath={.a}", None, formats) == OutputFormat("jsonpath", "{.a}")
    assert parse_output("jsonpath", "{.b}", formats) == OutputFormat("jsonpath", "{.b}")
    (tmp_path / "t").write_text("{.c}")
    assert parse_output(f"jsonpath-file={tmp_path / 't'}", None, formats) == OutputFormat("jsonpath", "{.c}")
    assert parse_output(None, None, formats) is None
    go_template = OutputFormat("go-template", "{{.a}}")
    assert parse_output("go-template={{.a}}", None, formats) == go_template
    assert parse_output("template={{.a}}", None, formats) == go_template
    assert parse_output("go-template", "{{.a}}", formats) == go_template
    assert parse_output("template", "{{.a}}", formats) == go_template
    assert parse_output(None, "{{.a}}", formats) == go_template  # --template alone: a go-template, as kubectl
    (tmp_path / "g").write_text("{{.a}}")
    assert parse_output(f"go-template-file={tmp_path / 'g'}", None, formats) == go_template
    assert parse_output(f"templatefile={tmp_path / 'g'}", None, formats) == go_template
    for spelling in ("jsonpath", "go-template", "go-template="):
        with pytest.raises(CliError, match=r"^template format specified but no template given$"):
            parse_output(spelling, None, formats)
    with pytest.raises(CliError, match=r"error reading --template .*/missing, No such file"):
        parse_output(f"templatefile={tmp_path / 'missing'}", None, formats)
    body = {"kind": "ImageStream", "metadata": {"name": "app"}}
    assert render([body, body], OutputFormat("jsonpath", "{.items[*].metadata.name}")) == "app app"


def test_bad_output_formats_are_usage_errors() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(["history", "app:v1", "-o", "name"], out, err) == 1
    assert err.getvalue().startswith("error: argument -o/--output: invalid choice: 'name' (choose from 'yaml', ")


# --- the edits ---------------------------------------------------------------------------------------------------


def test_merge_patch_is_rfc_7386() -> None:
    target = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(target, {"a": {"b": None, "c": [3]}, "e": {"f": None}}) == {"a": {"c": [3]}, "d": 1, "e": {}}
    assert target == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert with_resource_version({"spec": {}}, {"metadata": {"resourceVersion": "9"}}) == {
        "spec": {},
        "metadata": {"resourceVersion": "9"},
    }
    assert not Edit(None).writes and Edit(None, status_patch={}).writes


def test_tag_creates_a_missing_stream_and_asks_again_for_an_unchanged_source() -> None:
    options = TagOptions(insecure=True)
    destination = tagging.parse_destination("app:v1", "ns")
    source = tagging.infer_source("quay.io/a/b:1", "", "ns")
    decide = {"destination": destination, "source": source, "options": options, "namespace": "ns", "request": "r1"}
    created = tag.set_tag(None, **decide)
    assert created.create is not None and created.patch is None
    assert created.create["spec"]["tags"][0]["from"] == {"kind": "DockerImage", "name": "quay.io/a/b:1"}
    existing = created.create["spec"]["tags"][0]
    again = tag.set_tag(stream([existing]), **decide)
    assert again.patch is not None
    assert again.patch["metadata"]["annotations"] == {IMPORT_REQUEST_ANNOTATION: "r1"}
    other = tag.set_tag(stream([{**existing, "from": {"kind": "DockerImage", "name": "quay.io/a/b:0"}}]), **decide)
    assert other.patch is not None and "metadata" not in other.patch


def test_tag_delete_removes_the_spec_tag_then_its_history() -> None:
    destination = tagging.parse_destination("app:old", "ns")
    body = stream([{"name": "old"}, {"name": "v1"}], [{"tag": "old", "items": []}, {"tag": "v1", "items": []}])
    edit = tag.delete_tag(body, destination=destination)
    assert edit.patch == {"spec": {"tags": [{"name": "v1"}]}}
    assert edit.status_patch == {"status": {"tags": [{"tag": "v1", "items": []}]}}
    # Spec already removed (a retry after the status write conflicted): only the status.
    retry = tag.delete_tag(stream([{"name": "v1"}], [{"tag": "old"}, {"tag": "v1"}]), destination=destination)
    assert (retry.patch, retry.status_patch) == (None, {"status": {"tags": [{"tag": "v1"}]}})
    with pytest.raises(NotFound, match=r'imagestreamtags\.image\.openshift\.io "app:old" not found'):
        tag.delete_tag(stream([{"name": "v1"}]), destination=destination)
    with pytest.raises(NotFound):
        tag.delete_tag(None, destination=destination)


def test_import_image_creates_or_patches_with_the_request() -> None:
    options = ImportOptions(target="app:v1", from_="quay.io/a/b:1", confirm=True)
    target = ImportTarget("app", "v1")
    created = import_image.request_import(None, options=options, target=target, namespace="ns", request="r2")
    assert created.create is not None
    assert created.create["metadata"]["annotations"] == {IMPORT_REQUEST_ANNOTATION: "r2"}
    assert created.result.tags == ("v1",)
    existing = stream([{"name": "v1", "from": {"kind": "DockerImage", "name": "quay.io/a/b:1"}}])
    patched = import_image.request_import(
        existing, options=ImportOptions(target="app:v1"), target=target, namespace="ns", request="r3"
    )
    assert patched.patch == {"metadata": {"annotations": {IMPORT_REQUEST_ANNOTATION: "r3"}}}


def deployment(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "ns", "annotations": annotations or {}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x"}]}}},
    }


def test_set_triggers_writes_only_a_changed_annotation() -> None:
    ref = WorkloadRef(WorkloadKind.DEPLOYMENT, "web")
    edit = set_triggers.set_triggers(deployment(), workload=ref, edit=TriggerEdit(from_image="app:v1"), namespace="ns")
    assert edit.patch is not None
    value = edit.patch["metadata"]["annotations"]["image.openshift.io/triggers"]
    assert '"name":"app:v1"' in value
    unchanged = set_triggers.set_triggers(
        deployment({"image.openshift.io/triggers": value}),
        workload=ref,
        edit=TriggerEdit(from_image="app:v1"),
        namespace="ns",
    )
    assert unchanged.patch is None


def test_set_image_lookup_patches_streams_and_pod_templates() -> None:
    assert set_image_lookup.set_stream_lookup(stream([]), name="app", enabled=False).patch == {
        "spec": {"lookupPolicy": {"local": False}}
    }
    with pytest.raises(CliError, match=r'imagestreams\.image\.openshift\.io "nope" not found'):
        set_image_lookup.set_stream_lookup(None, name="nope", enabled=True)
    ref = WorkloadRef(WorkloadKind.CRONJOB, "nightly")
    patch = set_image_lookup.set_workload_lookup({}, kind=ref, enabled=True).patch
    assert patch == {
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {"metadata": {"annotations": {"alpha.image.policy.openshift.io/resolve-names": "*"}}}
                }
            }
        }
    }


def test_selectors_take_types_never_names() -> None:
    assert parse_workload_types(["deploy,sts", "deployments"], "triggers") == (
        WorkloadKind.DEPLOYMENT,
        WorkloadKind.STATEFULSET,
    )
    with pytest.raises(CliError, match="name cannot be provided when a selector is specified"):
        parse_workload_types(["deploy/web"], "triggers")
    with pytest.raises(CliError, match="-l selects among resources of a type"):
        parse_workload_types([], "triggers")
    with pytest.raises(CliError, match="pods does not support triggers"):
        parse_workload_types(["pods"], "triggers")


def test_rollback_pins_the_tag_and_resume_restores_it() -> None:
    source = {"kind": "DockerImage", "name": "quay.io/a/b:1"}
    body = stream(
        [{"name": "v1", "from": source, "importPolicy": {"scheduled": True}}],
        [
            {
                "tag": "v1",
                "items": [
                    {
                        "image": DIGEST_B,
                        "dockerImageReference": f"quay.io/a/b@{DIGEST_B}",
                        "created": "2024-05-01T11:00:00Z",
                        "generation": 1,
                    },
                    {
                        "image": DIGEST_A,
                        "dockerImageReference": f"quay.io/a/b@{DIGEST_A}",
                        "created": "2024-05-01T10:00:00Z",
                        "generation": 1,
                    },
                ],
            }
        ],
    )
    pinned = rollback.pin_tag(body, name="app", tag="v1", to=None)
    assert pinned.result.startswith(f"Tag app:v1 set to app@{DIGEST_A} (history entry 1).\n")
    assert pinned.patch is not None
    new_tag = pinned.patch["spec"]["tags"][0]
    assert new_tag["from"] == {"kind": "ImageStreamImage", "name": f"app@{DIGEST_A}"}
    restored = resume_verb.restore_source(merge_patch(body, pinned.patch), name="app", tag="v1")
    assert restored.result["from"] == source
    assert restored.patch is not None
    assert restored.patch["spec"]["tags"][0] == {"name": "v1", "from": source, "importPolicy": {"scheduled": True}}
    assert ROLLED_BACK_ANNOTATION in new_tag["annotations"]
    with pytest.raises(CliError, match=r'imagestreams\.image\.openshift\.io "app" not found'):
        rollback.pin_tag(None, name="app", tag="v1", to=None)


# --- describe --show-events --------------------------------------------------------------------------------------


def test_events_are_listed_oldest_first_in_kubectl_describes_columns() -> None:
    events = [
        {
            "type": "Warning",
            "reason": "ImportFailed",
            "message": "tag v1: not found  \n",
            "source": {"component": "imagestream-operator"},
            "firstTimestamp": "2024-05-01T11:00:00Z",
            "lastTimestamp": "2024-05-01T11:55:00Z",
            "count": 3,
        },
        {
            "type": "Normal",
            "reason": "Imported",
            "message": "ok",
            "reportingComponent": "other",
            "eventTime": "2024-05-01T10:00:00.000000Z",
            "lastTimestamp": None,
        },
    ]
    assert events_section(events, NOW) == (
        "Events:\n"
        "  Type\t\tReason\t\tAge\t\t\tFrom\t\t\tMessage\n"
        "  ----\t\t------\t\t----\t\t\t----\t\t\t-------\n"
        "  Normal\tImported\t120m\t\t\tother\t\t\tok\n"
        "  Warning\tImportFailed\t5m (x3 over 60m)\timagestream-operator\ttag v1: not found\n"
    )
    assert events_section([], NOW) == "Events:\t<none>\n"


def test_describe_flags_refuse_what_only_streams_have() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(["describe", "istag", "app:v1", "--show-events"], out, err) == 1
    assert err.getvalue().startswith("error: -l, --show-events and --show-lookup describe image streams, not istag\n")
    err = io.StringIO()
    assert run(["describe", "is", "app", "-l", "a=b"], out, err) == 1
    assert err.getvalue().startswith("error: name cannot be provided when a selector is specified\n")


def test_an_argparse_namespace_is_all_a_verb_reads() -> None:
    parsed = build_parser(["set-image-lookup"]).parse_args(["set-image-lookup", "-l", "team=web", "--dry-run=server"])
    assert isinstance(parsed, argparse.Namespace)
    assert (parsed.selector, parsed.dry_run, parsed.enabled) == ("team=web", DryRun.SERVER, True)
