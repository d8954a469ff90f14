"""`kubectl imagestream convert` on OpenShift exports, applied to the test cluster with every apply mode.

The export is `oc get is -o yaml` output in OpenShift's exact shape (a List with managedFields and status, and
an OpenShift 3 legacy `apiVersion: v1` ImageStreamList; tests/unit/test_cli_convert.py holds it). Plain kubectl
cannot take all of it: the legacy objects have no group it can map. Converted, it applies with `kubectl create`,
`kubectl apply` and `kubectl apply --server-side`, and the operator imports it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import yaml

from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import unique_image
from tests.conftest import kubectl
from tests.helpers import eventually, pusher_for
from tests.streams import get_stream
from tests.unit.test_cli_convert import export

APPLY_MODES = {
    "create": ["create"],
    "client-side apply": ["apply"],
    "server-side apply": ["apply", "--server-side"],
}


def convert(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagestreams.cli", "convert", "-f", "-", *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exported(registry: Registry, repository: str, namespace: str) -> str:
    """The export as the OpenShift project of the same name would give it, its images in a test repository."""
    text = export(f"{registry.host}/{repository}").replace("/team/", "/")
    return text.replace("namespace: team-a", f"namespace: {namespace}")


def test_plain_kubectl_refuses_the_export_as_it_is(
    crds: LocalCluster, namespace: str, plain_registry: Registry
) -> None:
    refused = kubectl(crds, "create", "-f", "-", stdin=exported(plain_registry, "x", namespace), check=False)
    assert 'no matches for kind "ImageStreamList" in version "v1"' in refused


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("mode", list(APPLY_MODES))
def test_converted_exports_apply_with_every_mode_and_import(
    crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str, mode: str
) -> None:
    image = unique_image("converted tools")
    with pusher_for(plain_registry) as client:
        client.push_image(f"{repository}/tools", "latest", image)
    converted = convert(exported(plain_registry, repository, namespace))
    assert (converted.returncode, converted.stderr) == (0, "")
    expected = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(converted.stdout)}
    assert sorted(expected) == ["legacy", "tools", "web"]

    out = kubectl(crds, *APPLY_MODES[mode], "-f", "-", stdin=converted.stdout)
    for name in expected:
        assert f"imagestream.image.openshift.io/{name} " in out, out
    for name, document in expected.items():
        stored = get_stream(crds, namespace, name)
        for key, value in document["metadata"].items():
            if key == "annotations":  # client-side apply adds its own last-applied annotation
                assert value.items() <= stored["metadata"]["annotations"].items()
            else:
                assert stored["metadata"][key] == value
        assert _spec_as_written(stored["spec"]) == _spec_as_written(document["spec"])
        assert stored["metadata"]["uid"] not in converted.stdout  # a new object, not the old cluster's
    if mode != "create":  # the same files again: accepted, nothing changes
        again = kubectl(crds, *APPLY_MODES[mode], "-f", "-", stdin=converted.stdout)
        assert "imagestream.image.openshift.io/web" in again
    # The repository stream (insecure, plain HTTP) is imported by the operator on the new cluster.
    eventually(
        lambda: any(
            item.get("image") == image.digest
            for entry in (get_stream(crds, namespace, "tools").get("status") or {}).get("tags") or []
            for item in entry.get("items") or []
        ),
        60,
        "the converted tools stream to be imported",
    )


def _spec_as_written(spec: dict[str, Any]) -> str:
    """The spec with null-valued fields left out: the API server keeps `annotations: null` or drops it by mode."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items() if item is not None}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(spec), sort_keys=True)


def test_convert_output_as_json_creates_the_same_streams(crds: LocalCluster, namespace: str) -> None:
    converted = convert(export().replace("namespace: team-a", f"namespace: {namespace}"), "-o", "json")
    assert converted.returncode == 0, converted.stderr
    out = kubectl(crds, "create", "-f", "-", stdin=converted.stdout)
    assert out.count("created") == 3, out


def test_convert_names_the_document_it_cannot_take() -> None:
    refused = convert("kind: ImageStream\napiVersion: v1\nmetadata: {name: a}\n---\nkind: DeploymentConfig\n")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: <stdin>: document 2: a DeploymentConfig, not an ImageStream; ")
    assert refused.stdout == ""
