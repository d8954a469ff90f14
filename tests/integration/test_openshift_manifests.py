"""OpenShift's own manifests, in its serializer's exact shape, apply with every apply mode and import.

OpenShift writes `generation: null` on every spec tag (TagReference.Generation is a *int64 without omitempty),
`annotations: null`, `referencePolicy: {type: ""}`, `creationTimestamp: null` and a `status` stub. The corpus in
tests/openshift_manifests/ is written in that shape; `${REGISTRY}` stands for the test registry. Each file is applied
with `kubectl create`, client-side `kubectl apply` and `kubectl apply --server-side` (what Flux runs), applied again
where the mode allows it, and imported by the session's operator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imagestreams.localcluster import LocalCluster, Registry
from tests.conftest import kubectl
from tests.helpers import eventually
from tests.streams import get_stream, pull_secret, push_unique, status_tag

CORPUS = Path(__file__).parent.parent / "openshift_manifests"
APPLY_MODES = {
    "create": ["create"],
    "client-side apply": ["apply"],
    "server-side apply": ["apply", "--server-side"],
}


def corpus(registry: Registry) -> dict[str, str]:
    return {path.name: path.read_text().replace("${REGISTRY}", registry.host) for path in sorted(CORPUS.glob("*.yaml"))}


def newest(stream: dict[str, Any], tag: str) -> str | None:
    items = status_tag(stream, tag).get("items") or []
    return str(items[0]["image"]) if items else None


def imported(cluster: LocalCluster, namespace: str, name: str, expected: dict[str, str]) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        stream = get_stream(cluster, namespace, name)
        return stream if all(newest(stream, tag) == digest for tag, digest in expected.items()) else None

    return eventually(probe, 60, f"{namespace}/{name} to import {sorted(expected)}")


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("mode", list(APPLY_MODES))
def test_openshift_serializer_output_applies_with_every_mode_and_imports(
    crds: LocalCluster, tls_registry: Registry, namespace: str, mode: str
) -> None:
    pushed = {
        name: push_unique(tls_registry, repository, tag).digest
        for name, repository, tag in [
            ("ruby", "corpus/ruby", "3.1"),
            ("20", "corpus/nodejs", "20"),
            ("18", "corpus/nodejs", "18"),
            ("16", "corpus/nodejs", "16"),
            ("ubi", "corpus/nodejs", "latest"),
            ("v1", "corpus/tools", "v1"),
            ("v2", "corpus/tools", "v2"),
        ]
    }
    pull_secret(crds, namespace, tls_registry)
    files = corpus(tls_registry)
    apply: Callable[[str], str] = lambda text: kubectl(  # noqa: E731
        crds, *APPLY_MODES[mode], "-n", namespace, "-f", "-", stdin=text
    )
    for name, text in files.items():
        out = apply(text)
        assert "imagestream.image.openshift.io/" in out, f"{name}: {out}"
    generations = {
        item["metadata"]["name"]: item["metadata"]["generation"]
        for item in json.loads(kubectl(crds, "get", "imagestreams", "-n", namespace, "-o", "json"))["items"]
    }
    assert sorted(generations) == ["nodejs", "ruby-ex", "tools"]
    if mode != "create":  # applying the same files again is accepted and changes nothing
        for text in files.values():
            apply(text)
        again = json.loads(kubectl(crds, "get", "imagestreams", "-n", namespace, "-o", "json"))["items"]
        assert {item["metadata"]["name"]: item["metadata"]["generation"] for item in again} == generations

    ruby = imported(crds, namespace, "ruby-ex", {"3.1": pushed["ruby"]})
    spec_tag = ruby["spec"]["tags"][0]
    # Stored as written; "" means Source (SetDefaults_TagReferencePolicy in openshift-apiserver image/v1/defaults.go)
    assert spec_tag["referencePolicy"] == {"type": ""}
    assert status_tag(ruby, "3.1")["items"][0]["dockerImageReference"] == (
        f"{tls_registry.host}/corpus/ruby@{pushed['ruby']}"
    )

    nodejs = imported(
        crds,
        namespace,
        "nodejs",
        {
            "latest": pushed["20"],  # the alias, written before its target
            "20": pushed["20"],
            "18": pushed["18"],  # hidden tags import like any other
            "16": pushed["16"],
            "lts": pushed["18"],  # <stream>:<tag> naming this stream is an alias too
            "ubi": pushed["ubi"],  # a source without a tag means :latest
        },
    )
    assert status_tag(nodejs, "ubi")["items"][0]["dockerImageReference"] == (
        f"{tls_registry.host}/corpus/nodejs@{pushed['ubi']}"
    )
    archived = status_tag(nodejs, "archived")["items"][0]  # reference: true is recorded as written, not imported
    assert (archived["dockerImageReference"], archived["image"]) == (f"{tls_registry.host}/corpus/nodejs:archived", "")
    assert status_tag(nodejs, "dev") == {}  # never imported: no status entry, as on OpenShift
    assert not any(entry.get("conditions") for entry in nodejs["status"]["tags"])

    tools = imported(crds, namespace, "tools", {"v1": pushed["v1"], "v2": pushed["v2"], "stable": pushed["v2"]})
    assert tools["status"]["dockerImageRepository"] == f"{tls_registry.host}/corpus/tools"
