"""`oc import-image` as requests to the operator: target parsing, plans, the patch, the report."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from imagestreams.api.imagestream import ImageStream
from imagestreams.cli.errors import CliError
from imagestreams.cli.importing import (
    IMPORT_REQUEST_ANNOTATION,
    INSECURE_REPOSITORY_ANNOTATION,
    ImportOptions,
    ImportPlan,
    ImportTarget,
    format_timeout,
    import_report,
    new_stream_body,
    parse_target,
    parse_timeout,
    plan_import,
    request_acted_on,
    request_patch,
    tag_outcomes,
)

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
A = "sha256:" + "a" * 64


def body(tags: list[dict[str, Any]], status: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "app", "namespace": "ns", "resourceVersion": "7"},
        "spec": {"tags": tags, **spec},
        "status": {"tags": status or []},
    }


def docker(name: str, pull_spec: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "from": {"kind": "DockerImage", "name": pull_spec}, **extra}


def plan(options: ImportOptions, stream: dict[str, Any] | None) -> ImportPlan:
    return plan_import(options, parse_target(options), stream, "ns")


@pytest.mark.parametrize(
    ("options", "target"),
    [
        (ImportOptions("app"), ImportTarget("app", "latest")),
        (ImportOptions("app:v1"), ImportTarget("app", "v1")),
        (ImportOptions("app", all=True), ImportTarget("app", "")),
        (ImportOptions("quay.io/team/app:1.2"), ImportTarget("app", "1.2")),
    ],
)
def test_targets(options: ImportOptions, target: ImportTarget) -> None:
    assert parse_target(options) == target


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ImportOptions(""), "you must specify the name of an image stream"),
        (
            ImportOptions("Bad Name"),
            "the image name must be a valid Docker image pull spec or reference to an image stream "
            "(e.g. myregistry/myteam/image:tag)",
        ),
        (ImportOptions(f"app@{A}"), "to import images by ID, use the 'tag' command"),
        (ImportOptions("app:v1", all=True), 'cannot specify a tag "app:v1" as well as --all'),
        (ImportOptions("app", reference_policy="x"), "reference policy must be set to 'source' or 'local'"),
        (ImportOptions("app", import_mode="x"), "valid ImportMode values are Legacy or PreserveOriginal"),
    ],
)
def test_target_errors(options: ImportOptions, message: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_target(options)
    assert str(caught.value) == message


def test_a_missing_stream_needs_confirm() -> None:
    with pytest.raises(CliError) as caught:
        plan(ImportOptions("app:v1", from_="x/y:1"), None)
    assert str(caught.value) == 'no image stream named "app" exists, pass --confirm to create and import'


def test_confirm_creates_the_stream_with_the_tag() -> None:
    options = ImportOptions(
        "app:v1", from_="x/y:1", confirm=True, insecure=True, scheduled=True, reference_policy="local"
    )
    result = plan(options, None)
    assert result.tags == ("v1",)
    assert result.create == {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "app", "namespace": "ns"},
        "spec": {
            "tags": [
                {
                    "name": "v1",
                    "from": {"kind": "DockerImage", "name": "x/y:1"},
                    "importPolicy": {"insecure": True, "scheduled": True},
                    "referencePolicy": {"type": "Local"},
                }
            ]
        },
    }
    created = new_stream_body(result, "req-1")
    assert created["metadata"]["annotations"] == {IMPORT_REQUEST_ANNOTATION: "req-1"}
    # Without --from, the target itself is the pull spec.
    assert plan(ImportOptions("quay.io/t/app:2", confirm=True), None).create["spec"]["tags"][0]["from"]["name"] == (  # type: ignore[index]
        "quay.io/t/app:2"
    )


def test_confirm_all_creates_a_repository_import() -> None:
    result = plan(
        ImportOptions("app", all=True, from_="quay.io/t/app", confirm=True, insecure=True, scheduled=True), None
    )
    assert result.create is not None
    assert result.create["spec"] == {"dockerImageRepository": "quay.io/t/app"}
    assert result.create["metadata"]["annotations"] == {INSECURE_REPOSITORY_ANNOTATION: "true"}
    assert result.repository == "quay.io/t/app"
    assert result.warnings and "--scheduled has no effect" in result.warnings[0]
    with pytest.raises(CliError, match="without a tag or digest"):
        plan(ImportOptions("app", all=True, from_="quay.io/t/app:1", confirm=True), None)


def test_reimporting_an_existing_tag_changes_nothing_in_spec() -> None:
    stream = body([docker("v1", "x/y:1")])
    result = plan(ImportOptions("app:v1"), stream)
    assert (result.spec_tags, result.tags) == (None, ("v1",))
    assert request_patch(result, "r", "7") == {
        "metadata": {"annotations": {IMPORT_REQUEST_ANNOTATION: "r"}, "resourceVersion": "7"}
    }


def test_import_flags_turn_settings_on_and_keep_an_explicit_reference_policy() -> None:
    stream = body([docker("v1", "x/y:1", referencePolicy={"type": "Source"})])
    options = ImportOptions(
        "app:v1", scheduled=True, insecure=True, import_mode="PreserveOriginal", reference_policy="local"
    )
    result = plan(options, stream)
    assert result.spec_tags == [
        docker(
            "v1",
            "x/y:1",
            referencePolicy={"type": "Source"},
            importPolicy={"insecure": True, "scheduled": True, "importMode": "PreserveOriginal"},
        )
    ]
    patch = request_patch(result, "r", None)
    assert patch["spec"] == {"tags": result.spec_tags}
    assert "resourceVersion" not in patch["metadata"]


def test_a_reference_chain_imports_its_final_tag() -> None:
    stream = body([{"name": "latest", "from": {"kind": "ImageStreamTag", "name": "v1"}}, docker("v1", "x/y:1")])
    assert plan(ImportOptions("app"), stream).tags == ("v1",)


def test_a_missing_tag_is_created_from_from_or_the_repository() -> None:
    result = plan(ImportOptions("app:v2", from_="x/y:2"), body([docker("v1", "x/y:1")]))
    assert result.spec_tags == [docker("v1", "x/y:1"), docker("v2", "x/y:2")]
    from_repository = plan(ImportOptions("app"), body([], dockerImageRepository="x/y"))
    assert from_repository.spec_tags == [docker("latest", "x/y")]


@pytest.mark.parametrize(
    ("tags", "options", "message"),
    [
        (
            [],
            ImportOptions("app:zzz"),
            'the tag "zzz" does not exist on the image stream - choose an existing tag to import or use the '
            "'tag' command to create a new tag",
        ),
        (
            [docker("v1", "x/y:1")],
            ImportOptions("app:v1", from_="x/y:2"),
            'the tag "v1" points to "x/y:1" - use the \'tag\' command if you want to change the source to "x/y:2"',
        ),
        (
            [{"name": "latest", "from": {"kind": "ImageStreamTag", "name": "v1"}}, docker("v1", "x/y:1")],
            ImportOptions("app", from_="x/y:2"),
            'the tag "latest" points to the tag "v1" which points to "x/y:1" - use the \'tag\' command if you want '
            'to change the source to "x/y:2"',
        ),
        (
            [{"name": "pinned", "from": {"kind": "ImageStreamImage", "name": f"app@{A}"}}],
            ImportOptions("app:pinned"),
            f'tag "pinned" points to existing ImageStreamImage "app@{A}", it cannot be re-imported',
        ),
        (
            [{"name": "bare"}],
            ImportOptions("app:bare", from_="x/y:1"),
            'tag "bare" already exists - you must use the \'tag\' command if you want to change the source to "x/y:1"',
        ),
        (
            [{"name": "other", "from": {"kind": "ImageStreamTag", "name": "lib:v1"}}],
            ImportOptions("app:other"),
            'tag "other" points to an imagestreamtag from another ImageStream',
        ),
        (
            [
                {"name": "a", "from": {"kind": "ImageStreamTag", "name": "b"}},
                {"name": "b", "from": {"kind": "ImageStreamTag", "name": "a"}},
            ],
            ImportOptions("app:a"),
            'tag "a" on the image stream is a reference to same tag',
        ),
    ],
)
def test_single_tag_errors(tags: list[dict[str, Any]], options: ImportOptions, message: str) -> None:
    with pytest.raises(CliError) as caught:
        plan(options, body(tags))
    assert str(caught.value) == message


def test_all_reimports_every_container_image_tag() -> None:
    stream = body(
        [docker("a", "x/y:1"), {"name": "b", "from": {"kind": "ImageStreamTag", "name": "a"}}, docker("c", "x/y:3")]
    )
    result = plan(ImportOptions("app", all=True), stream)
    assert (result.tags, result.spec_tags, result.repository) == (("a", "c"), None, None)
    scheduled = plan(ImportOptions("app", all=True, scheduled=True), stream)
    assert [t.get("importPolicy") for t in scheduled.spec_tags or []] == [
        {"scheduled": True},
        None,
        {"scheduled": True},
    ]
    with pytest.raises(CliError) as caught:
        plan(ImportOptions("app", all=True), body([{"name": "b", "from": {"kind": "ImageStreamTag", "name": "a"}}]))
    assert str(caught.value) == "image stream does not have tags pointing to external container images"


def test_all_with_a_repository() -> None:
    stream = body([], dockerImageRepository="x/y")
    assert plan(ImportOptions("app", all=True), stream).repository == "x/y"
    with pytest.raises(CliError) as caught:
        plan(ImportOptions("app", all=True, from_="x/z"), stream)
    assert str(caught.value) == 'the image stream has a different import spec "x/y", pass --confirm to update'
    with pytest.raises(CliError) as caught:
        plan(ImportOptions("app", all=True, from_="x/z"), body([docker("a", "x/y:1")]))
    assert str(caught.value) == (
        "the image stream does not currently import an entire Docker repository, pass --confirm to update"
    )
    changed = plan(ImportOptions("app", all=True, from_="x/z", confirm=True, insecure=True), stream)
    assert changed.docker_image_repository == "x/z"
    assert request_patch(changed, "r", "7")["spec"] == {"dockerImageRepository": "x/z"}
    assert request_patch(changed, "r", "7")["metadata"]["annotations"][INSECURE_REPOSITORY_ANNOTATION] == "true"


def test_the_request_is_acted_on_when_status_records_it() -> None:
    assert request_acted_on({"status": {"importRequest": "r"}}, "r")
    assert not request_acted_on({"status": {"importRequest": "old"}}, "r")
    assert not request_acted_on({}, "r")


def status_stream(entries: list[dict[str, Any]], **status: Any) -> ImageStream:
    spec = [docker(entry["tag"], "x/y:1") for entry in entries if not entry.pop("status_only", False)]
    return ImageStream.model_validate(
        {"metadata": {"name": "app", "namespace": "ns"}, "spec": {"tags": spec}, "status": {"tags": entries, **status}}
    )


def failed(message: str) -> dict[str, Any]:
    return {"type": "ImportSuccess", "status": "False", "reason": "NotFound", "message": message, "generation": 1}


def ok_item() -> dict[str, Any]:
    return {"created": "2026-01-01T11:59:00Z", "dockerImageReference": f"x/y@{A}", "image": A, "generation": 1}


def test_outcomes_report_failures_and_tags_without_images() -> None:
    stream = status_stream(
        [{"tag": "good", "items": [ok_item()]}, {"tag": "bad", "conditions": [failed("nope")]}, {"tag": "empty"}]
    )
    outcomes = {o.tag: o.error for o in tag_outcomes(stream, ["good", "bad", "empty", "missing"])}
    assert outcomes == {
        "good": None,
        "bad": "nope",
        "empty": "the operator recorded no image for this tag",
        "missing": "the operator recorded no image for this tag",
    }


def test_report_prints_the_stream_then_each_image_like_oc() -> None:
    stream = status_stream([{"tag": "v1", "items": [ok_item()]}])
    report = import_report(stream, ImportPlan(tags=("v1",)), NOW)
    assert not report.failed
    assert report.stdout.startswith("imagestream.image.openshift.io/app imported\n\nName:\t\t\tapp\n")
    assert "\nImage Name:\tapp:v1\n" in report.stdout
    assert report.stdout.endswith("Docker Labels:\t<none>\n\n\n")


def test_report_of_a_failed_import() -> None:
    stream = status_stream([{"tag": "v1", "conditions": [failed("image not found")]}])
    report = import_report(stream, ImportPlan(tags=("v1",)), NOW)
    assert report.failed
    assert report.errors == ("tag v1 failed: image not found",)
    assert report.stdout.startswith("imagestream.image.openshift.io/app imported with errors\n\n")
    assert "Image Name:" not in report.stdout


def test_report_of_a_repository_import() -> None:
    stream = status_stream(
        [{"tag": "1.0", "items": [ok_item()], "status_only": True}],
        repositoryImport={"repository": "x/y", "additionalTags": ["0.9", "0.8"]},
    )
    report = import_report(stream, ImportPlan(repository="x/y"), NOW)
    assert "\nImage Name:\tapp:1.0\n" in report.stdout
    assert report.stdout.endswith(
        "\ninfo: The remote repository contained 2 additional tags which were not imported: 0.9, 0.8\n\n"
    )
    broken = status_stream([], repositoryImport={"repository": "x/y", "message": "401 Unauthorized"})
    assert import_report(broken, ImportPlan(repository="x/y"), NOW).errors == (
        "repository x/y failed: 401 Unauthorized",
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30.0), ("30s", 30.0), ("2m", 120.0), ("1h30m", 5400.0), ("500ms", 0.5), ("0", 0.0)]
)
def test_timeouts(text: str, seconds: float) -> None:
    assert parse_timeout(text) == seconds


def test_bad_timeout_and_durations_as_go_prints_them() -> None:
    with pytest.raises(CliError, match='invalid --timeout "soon"'):
        parse_timeout("soon")
    with pytest.raises(CliError):
        parse_timeout("5x")
    assert [format_timeout(s) for s in (120, 150, 45, 3600, 0.5)] == ["2m0s", "2m30s", "45s", "1h0m0s", "0.5s"]
