"""The committed CRD YAML is exactly what the models generate, and the schema is structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from imagestreams.api.crd import CHART_OUTPUTS, DEPLOY_OUTPUTS, OUTPUTS, openapi_schema, render

REPO = Path(__file__).resolve().parents[2]


def test_committed_yaml_matches_the_models() -> None:
    generated = [
        (REPO / "crds", OUTPUTS),
        (REPO / "deploy", DEPLOY_OUTPUTS),
        (REPO / "helm" / "imagestream-operator", CHART_OUTPUTS),  # the chart's crds/ and files/
    ]
    for directory, outputs in generated:
        for name, text in outputs.items():
            path = directory / name
            assert path.read_text() == text(), f"{path} is stale: run `make crds` and commit the result"


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths that break the structural-schema rules the apiserver enforces."""
    problems = []
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path or '/'}: no type")
    if "$ref" in schema or "anyOf" in schema or "allOf" in schema:
        problems.append(f"{path}: $ref/anyOf/allOf")
    if "properties" in schema and isinstance(schema.get("additionalProperties"), dict | bool):
        problems.append(f"{path}: properties with additionalProperties")
    for name, sub in schema.get("properties", {}).items():
        problems += _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        problems += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += _walk(schema["additionalProperties"], f"{path}{{}}")
    return problems


def test_schema_is_structural() -> None:
    assert _walk(openapi_schema()) == []


def test_every_spec_field_of_openshift_is_present() -> None:
    spec = openapi_schema()["properties"]["spec"]["properties"]
    assert set(spec) == {"lookupPolicy", "dockerImageRepository", "tags"}
    tag = spec["tags"]["items"]["properties"]
    assert set(tag) == {"name", "annotations", "from", "reference", "generation", "importPolicy", "referencePolicy"}
    assert set(tag["importPolicy"]["properties"]) == {"insecure", "scheduled", "importMode"}
    assert set(tag["referencePolicy"]["properties"]) == {"type"}
    status_tag = openapi_schema()["properties"]["status"]["properties"]["tags"]["items"]["properties"]
    assert {"tag", "items", "conditions"} <= set(status_tag)
    assert set(status_tag["items"]["items"]["properties"]) == {"created", "dockerImageReference", "image", "generation"}


def test_every_field_has_a_description() -> None:
    missing = []

    def visit(schema: dict[str, Any], path: str) -> None:
        for name, sub in schema.get("properties", {}).items():
            if name not in ("apiVersion", "kind", "metadata") and not sub.get("description"):
                missing.append(f"{path}.{name}")
            visit(sub, f"{path}.{name}")
        if isinstance(schema.get("items"), dict):
            visit(schema["items"], f"{path}[]")

    visit(openapi_schema(), "")
    assert missing == []


def test_rendered_yaml_parses_to_one_crd() -> None:
    documents = [d for d in yaml.safe_load_all(render()) if d]
    assert [d["kind"] for d in documents] == ["CustomResourceDefinition"]
    assert documents[0]["spec"]["names"]["shortNames"] == ["is"]
