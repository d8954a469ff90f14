"""`convert`: OpenShift exports of image streams to clean image.openshift.io/v1 objects."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
import yaml

from imagestreams.cli.app import run
from imagestreams.cli.convert import convert_documents, render_streams
from imagestreams.cli.errors import CliError

GOLDEN = Path(__file__).parent.parent / "golden"

# `oc get is -n team-a -o yaml` on OpenShift 4 (a List, each stream with managedFields and status, spec tags with
# `annotations: null` and server-numbered generations), followed by an OpenShift 3 `oc export is -o yaml` of the
# legacy API (`apiVersion: v1`, an ImageStreamList, selfLink). ${REGISTRY} is the registry tests push to; the
# digests stand in placeholders only to keep the lines short.
OPENSHIFT_EXPORT = """\
apiVersion: v1
items:
- apiVersion: image.openshift.io/v1
  kind: ImageStream
  metadata:
    annotations:
      kubectl.kubernetes.io/last-applied-configuration: |
        {"apiVersion":"image.openshift.io/v1","kind":"ImageStream","metadata":{"annotations":{},"name":"web","namespace":"team-a"}}
      openshift.io/display-name: Web front end
    creationTimestamp: "2024-05-01T10:02:17Z"
    generation: 4
    labels:
      app: web
    managedFields:
    - apiVersion: image.openshift.io/v1
      fieldsType: FieldsV1
      fieldsV1:
        f:metadata:
          f:annotations:
            .: {}
            f:openshift.io/display-name: {}
        f:spec:
          f:tags: {}
      manager: oc
      operation: Update
      time: "2024-05-01T10:02:17Z"
    name: web
    namespace: team-a
    resourceVersion: "834521"
    uid: 3f0c8f0e-5c1d-4a4b-9d61-0b5f1c9d2a77
  spec:
    lookupPolicy:
      local: true
    tags:
    - annotations: null
      from:
        kind: DockerImage
        name: ${REGISTRY}/team/web:1.4
      generation: 2
      importPolicy:
        importMode: Legacy
        scheduled: true
      name: "1.4"
      referencePolicy:
        type: Source
    - annotations:
        description: What production runs
      from:
        kind: ImageStreamTag
        name: web:1.4
      generation: 4
      importPolicy:
        importMode: Legacy
      name: prod
      referencePolicy:
        type: Local
  status:
    dockerImageRepository: image-registry.openshift-image-registry.svc:5000/team-a/web
    publicDockerImageRepository: default-route-openshift-image-registry.apps.example.com/team-a/web
    tags:
    - items:
      - created: "2024-05-01T10:02:18Z"
        dockerImageReference: ${REGISTRY}/team/web@${WEB_DIGEST}
        generation: 2
        image: ${WEB_DIGEST}
      tag: "1.4"
    - items:
      - created: "2024-05-01T10:02:19Z"
        dockerImageReference: ${REGISTRY}/team/web@${WEB_DIGEST}
        generation: 4
        image: ${WEB_DIGEST}
      tag: prod
- apiVersion: image.openshift.io/v1
  kind: ImageStream
  metadata:
    annotations:
      openshift.io/image.dockerRepositoryCheck: "2024-05-02T09:14:51Z"
      openshift.io/image.insecureRepository: "true"
    creationTimestamp: "2024-05-02T09:14:50Z"
    generation: 1
    managedFields:
    - apiVersion: image.openshift.io/v1
      fieldsType: FieldsV1
      fieldsV1:
        f:spec:
          f:dockerImageRepository: {}
      manager: openshift-apiserver
      operation: Update
      time: "2024-05-02T09:14:51Z"
    name: tools
    namespace: team-a
    resourceVersion: "835002"
    uid: 8a3e2f10-7b4c-4d0e-a1f2-93c4d5e6f708
  spec:
    dockerImageRepository: ${REGISTRY}/team/tools
    lookupPolicy:
      local: false
  status:
    dockerImageRepository: image-registry.openshift-image-registry.svc:5000/team-a/tools
    tags:
    - items:
      - created: "2024-05-02T09:14:51Z"
        dockerImageReference: ${REGISTRY}/team/tools@${TOOLS_DIGEST}
        generation: 1
        image: ${TOOLS_DIGEST}
      tag: latest
kind: List
metadata:
  resourceVersion: ""
  selfLink: ""
---
apiVersion: v1
items:
- apiVersion: v1
  kind: ImageStream
  metadata:
    annotations:
      openshift.io/generated-by: OpenShiftNewApp
    creationTimestamp: null
    generation: 3
    labels:
      app: legacy
    name: legacy
    namespace: team-a
    resourceVersion: "1200"
    selfLink: /oapi/v1/namespaces/team-a/imagestreams/legacy
    uid: 51f7c0a2-2f33-11e8-9c1d-0a580a800007
  spec:
    tags:
    - annotations:
        openshift.io/imported-from: ${REGISTRY}/team/legacy:2.0
      from:
        kind: DockerImage
        name: ${REGISTRY}/team/legacy:2.0
      generation: 3
      importPolicy: {}
      name: "2.0"
      referencePolicy:
        type: Source
  status:
    dockerImageRepository: 172.30.1.1:5000/team-a/legacy
kind: ImageStreamList
metadata: {}
"""


WEB_DIGEST = "sha256:6d1b0a4e1f2c7a8c3b5d9e0f4a6b2c8d1e3f5a7b9c0d2e4f6a8b0c1d3e5f7a9b"
TOOLS_DIGEST = "sha256:0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"


def export(registry: str = "registry.example.com") -> str:
    text = OPENSHIFT_EXPORT.replace("${WEB_DIGEST}", WEB_DIGEST).replace("${TOOLS_DIGEST}", TOOLS_DIGEST)
    return text.replace("${REGISTRY}", registry)


def test_an_openshift_export_becomes_the_golden_objects() -> None:
    streams = convert_documents(export(), "exported.yaml")
    assert [s["metadata"]["name"] for s in streams] == ["web", "tools", "legacy"]
    assert render_streams(streams, "yaml") == (GOLDEN / "convert_openshift_export.yaml").read_text()


def test_server_fields_are_dropped_and_nothing_else_changes() -> None:
    web, tools, legacy = convert_documents(export(), "exported.yaml")
    assert all(stream["apiVersion"] == "image.openshift.io/v1" for stream in (web, tools, legacy))
    assert web["metadata"] == {
        "annotations": {"openshift.io/display-name": "Web front end"},
        "labels": {"app": "web"},
        "name": "web",
        "namespace": "team-a",
    }
    assert "status" not in web and "status" not in legacy
    assert web["spec"]["tags"][0] == {
        "annotations": None,
        "from": {"kind": "DockerImage", "name": "registry.example.com/team/web:1.4"},
        "importPolicy": {"importMode": "Legacy", "scheduled": True},
        "name": "1.4",
        "referencePolicy": {"type": "Source"},
    }
    assert list(web) == ["apiVersion", "kind", "metadata", "spec"]  # the input's order
    assert tools["metadata"]["annotations"] == {"openshift.io/image.insecureRepository": "true"}
    assert legacy["metadata"] == {
        "annotations": {"openshift.io/generated-by": "OpenShiftNewApp"},
        "labels": {"app": "legacy"},
        "name": "legacy",
        "namespace": "team-a",
    }


def test_owner_references_and_deletion_marks_of_the_old_cluster_are_dropped() -> None:
    text = yaml.safe_dump(
        {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {
                "name": "owned",
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"}],
                "deletionTimestamp": "2024-05-01T10:02:17Z",
                "deletionGracePeriodSeconds": 0,
                "annotations": {"openshift.io/image.dockerRepositoryCheck": "2024-05-01T10:02:17Z"},
            },
            "spec": {},
        }
    )
    [stream] = convert_documents(text, "one.yaml")
    assert stream["metadata"] == {"name": "owned"}


def test_timestamps_stay_strings_and_json_output_is_one_object_per_stream() -> None:
    text = "apiVersion: v1\nkind: ImageStream\nmetadata:\n  name: a\n  annotations:\n    since: 2024-05-01T10:02:17Z\n"
    [stream] = convert_documents(text, "a.yaml")
    assert stream["metadata"]["annotations"]["since"] == "2024-05-01T10:02:17Z"
    out = render_streams(convert_documents(export(), "x"), "json")
    decoder = json.JSONDecoder()
    objects, position = [], 0
    while position < len(out):
        value, position = decoder.raw_decode(out, position)
        objects.append(value)
        position += 1
    assert [o["metadata"]["name"] for o in objects] == ["web", "tools", "legacy"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: apps.openshift.io/v1\nkind: DeploymentConfig\nmetadata:\n  name: web\n",
            "in.yaml: document 1: a DeploymentConfig (apps.openshift.io/v1), not an ImageStream; convert rewrites "
            "image streams only: use a Deployment with the image.openshift.io/triggers annotation (docs/migration.md)",
        ),
        (
            "kind: ImageStream\napiVersion: v1\nmetadata: {name: a}\n---\napiVersion: v1\nkind: List\nitems:\n"
            "- {kind: ImageStream, apiVersion: v1, metadata: {name: b}}\n- {kind: BuildConfig, apiVersion: v1}\n",
            "in.yaml: document 2, item 2: a BuildConfig (v1), not an ImageStream; convert rewrites image streams "
            "only: build images in CI and push them to a registry the stream imports from (docs/migration.md)",
        ),
        (
            "kind: Secret\napiVersion: v1\n",
            "in.yaml: document 1: a Secret (v1), not an ImageStream; convert rewrites image streams only "
            "(export them with: oc get imagestreams -o yaml)",
        ),
        ("- a\n- b\n", "in.yaml: document 1: not an object (a list); expected an ImageStream"),
        ("metadata: {name: a}\n", "in.yaml: document 1: has no kind; expected an ImageStream"),
        ("kind: ImageStream\napiVersion: v1\nspec: {}\n", "in.yaml: document 1: an ImageStream without metadata.name"),
        (
            "kind: ImageStream\napiVersion: image.openshift.io/v2\nmetadata: {name: a}\n",
            'in.yaml: document 1: an ImageStream of apiVersion "image.openshift.io/v2"; expected v1 or '
            "image.openshift.io/v1",
        ),
        (
            "kind: ImageStream\napiVersion: v1\nmetadata: {name: a}\n---\nkind: ImageStream\n  name: : x\n",
            "in.yaml: document 2, line 6, column 7: not valid YAML or JSON: mapping values are not allowed in this "
            "context",
        ),
        ("kind: List\napiVersion: v1\nitems: {a: 1}\n", "in.yaml: document 1: a List whose items are not a list"),
    ],
)
def test_what_is_not_an_image_stream_is_refused_with_its_file_and_document(text: str, message: str) -> None:
    with pytest.raises(CliError) as refused:
        convert_documents(text, "in.yaml")
    assert str(refused.value) == message


def test_empty_documents_are_skipped() -> None:
    assert convert_documents("---\n---\n# nothing\n", "empty.yaml") == []


def test_conversion_time_grows_linearly_with_the_input() -> None:
    one = export()

    def seconds(copies: int) -> float:
        text = "---\n".join([one] * copies)
        started = time.perf_counter()
        assert len(convert_documents(text, "big.yaml")) == 3 * copies
        return time.perf_counter() - started

    seconds(5)  # warm up
    small, large = min(seconds(50) for _ in range(3)), min(seconds(400) for _ in range(3))
    # 8 times the input: linear is 8x; allow for noise on a loaded machine, never the 64x of quadratic.
    assert large < small * 20, (small, large)


def test_the_command_reads_files_directories_and_reports_errors(tmp_path: Path) -> None:
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "a.yaml").write_text(export())
    (tmp_path / "dir" / "notes.txt").write_text("not read")
    (tmp_path / "dir" / "sub" / "b.json").write_text(
        json.dumps({"apiVersion": "v1", "kind": "ImageStream", "metadata": {"name": "deep"}})
    )

    def convert(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return run(["convert", *args], out, err), out.getvalue(), err.getvalue()

    status, out, err = convert("-f", str(tmp_path / "dir"))
    assert (status, err) == (0, "")
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["web", "tools", "legacy"]
    status, out, _ = convert("-f", str(tmp_path / "dir"), "-R", "-o", "json")
    assert status == 0 and out.count('"kind": "ImageStream"') == 4
    status, _, err = convert("-f", str(tmp_path / "missing.yaml"))
    assert (status, err) == (1, f'error: the path "{tmp_path / "missing.yaml"}" does not exist\n')
    status, _, err = convert()
    assert status == 1 and err.startswith("error: must specify one of -f and -k")
