"""The ImageStream CRD on a real apiserver: OpenShift manifests apply unchanged, bad input is refused."""

from __future__ import annotations

import json

import pytest

from imagestreams.localcluster import LocalCluster
from tests.conftest import kubectl

# A stream as `oc get is -o yaml` shows it on OpenShift 4, spec and all.
OPENSHIFT_MANIFEST = """
apiVersion: image.openshift.io/v1
kind: ImageStream
metadata:
  name: ruby
  namespace: {namespace}
  annotations:
    openshift.io/display-name: Ruby
spec:
  lookupPolicy:
    local: false
  tags:
  - name: "3.1"
    annotations:
      description: Build and run Ruby 3.1 applications
      iconClass: icon-ruby
      openshift.io/display-name: Ruby 3.1
      tags: builder,ruby
      version: "3.1"
    from:
      kind: DockerImage
      name: registry.access.redhat.com/ubi8/ruby-31:latest
    generation: 2
    importPolicy:
      importMode: Legacy
      scheduled: true
    referencePolicy:
      type: Local
  - name: latest
    from:
      kind: ImageStreamTag
      name: "3.1"
    generation: 2
    importPolicy:
      importMode: Legacy
    referencePolicy:
      type: Local
  - name: pinned
    from:
      kind: ImageStreamImage
      name: ruby@sha256:0000000000000000000000000000000000000000000000000000000000000000
      namespace: openshift
    reference: true
    importPolicy:
      insecure: true
      importMode: PreserveOriginal
    referencePolicy:
      type: Source
"""


def apply(cluster: LocalCluster, manifest: str) -> str:
    return kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=manifest, check=False)


def stream_with_tag(namespace: str, name: str, tag: str) -> str:
    return json.dumps(
        {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"tags": [json.loads(tag)]},
        }
    )


def test_openshift_manifest_applies_unchanged_and_round_trips(crds: LocalCluster, namespace: str) -> None:
    out = kubectl(crds, "apply", "--server-side", "-f", "-", stdin=OPENSHIFT_MANIFEST.format(namespace=namespace))
    assert "imagestream.image.openshift.io/ruby serverside-applied" in out
    stored = json.loads(kubectl(crds, "get", "imagestream", "ruby", "-n", namespace, "-o", "json"))
    tags = {tag["name"]: tag for tag in stored["spec"]["tags"]}
    assert tags["3.1"]["importPolicy"] == {"importMode": "Legacy", "scheduled": True}
    assert tags["3.1"]["annotations"]["tags"] == "builder,ruby"
    assert tags["latest"]["from"] == {"kind": "ImageStreamTag", "name": "3.1"}
    assert tags["pinned"]["from"]["namespace"] == "openshift"
    assert tags["pinned"]["reference"] is True


def test_short_name_and_printer_columns(crds: LocalCluster, namespace: str) -> None:
    kubectl(crds, "apply", "--server-side", "-f", "-", stdin=OPENSHIFT_MANIFEST.format(namespace=namespace))
    table = kubectl(crds, "get", "is", "-n", namespace)
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "IMAGE", "REPOSITORY", "TAGS", "UPDATED"]
    assert row.split() == ["ruby"]  # nothing imported yet: no repository, tags or time
    kubectl(
        crds,
        "patch",
        "imagestream",
        "ruby",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"tagsSummary": "3.1,latest,pinned", "updated": "2026-01-01T00:00:00Z"}}',
    )
    row = kubectl(crds, "get", "is", "-n", namespace).splitlines()[1]
    assert row.split()[:2] == ["ruby", "3.1,latest,pinned"]


def test_kubectl_explain_describes_import_policy(crds: LocalCluster) -> None:
    text = kubectl(crds, "explain", "imagestream.spec.tags.importPolicy")
    assert "scheduled" in text
    assert "Re-import this tag periodically" in text
    assert "PreserveOriginal" in text


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        (
            '{"name": "a", "from": {"kind": "ImageStreamTag", "name": "b"}, "importPolicy": {"scheduled": true}}',
            "only tags pointing to Docker repositories may be scheduled for background import",
        ),
        (
            '{"name": "a", "from": {"kind": "DockerImage", "name": "x"}, "importPolicy": {"importMode": "Eager"}}',
            'Unsupported value: "Eager"',
        ),
        (
            '{"name": "a", "from": {"kind": "DockerImage", "name": "x"}, "referencePolicy": {"type": "Remote"}}',
            'Unsupported value: "Remote"',
        ),
        ('{"name": "a", "from": {"kind": "Image", "name": "x"}}', 'Unsupported value: "Image"'),
        ('{"name": "a", "from": {"kind": "DockerImage"}}', "from.name is required"),
    ],
)
def test_invalid_tags_are_refused_with_a_clear_message(
    crds: LocalCluster, namespace: str, tag: str, message: str
) -> None:
    out = apply(crds, stream_with_tag(namespace, "bad", tag))
    assert message in out
    assert "serverside-applied" not in out


@pytest.mark.parametrize("name", ["Upper", "double--dash", "trailing-", "a..b"])
def test_invalid_stream_names_are_refused(crds: LocalCluster, namespace: str, name: str) -> None:
    out = apply(crds, stream_with_tag(namespace, name, '{"name": "a"}'))
    assert "serverside-applied" not in out
    assert ("name must consist of lowercase letters" in out) or ("a lowercase RFC 1123 subdomain" in out)


# ValidateImageStreamWithWhitelister (openshift-apiserver pkg/image/apis/image/validation): the repository must parse
# as a pull spec (library-go reference.Parse: lowercase names, no IPv6 host) with no tag and no digest.
@pytest.mark.parametrize(
    "repository", ["nginx:1.25", "docker.io/library/nginx@sha256:abc", "Team/App", "a b", "[::1]:5000/app"]
)
def test_docker_image_repository_with_tag_or_digest_is_refused(
    crds: LocalCluster, namespace: str, repository: str
) -> None:
    manifest = json.dumps(
        {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": "repo", "namespace": namespace},
            "spec": {"dockerImageRepository": repository},
        }
    )
    out = apply(crds, manifest)
    assert "dockerImageRepository must be a repository without a tag or digest" in out


def test_scheduled_without_a_source_is_accepted(crds: LocalCluster, namespace: str) -> None:
    """ValidateImageStreamTagReference refuses `scheduled` only with an ImageStreamTag or ImageStreamImage source."""
    out = apply(crds, stream_with_tag(namespace, "sched", '{"name": "a", "importPolicy": {"scheduled": true}}'))
    assert "serverside-applied" in out


def test_repository_with_registry_port_is_accepted(crds: LocalCluster, namespace: str) -> None:
    manifest = json.dumps(
        {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": "repo", "namespace": namespace},
            "spec": {"dockerImageRepository": "127.0.0.1:5000/team/app"},
        }
    )
    assert "serverside-applied" in apply(crds, manifest)


def test_duplicate_tag_names_are_refused(crds: LocalCluster, namespace: str) -> None:
    manifest = json.dumps(
        {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": "dup", "namespace": namespace},
            "spec": {"tags": [{"name": "a"}, {"name": "a"}]},
        }
    )
    out = apply(crds, manifest)
    assert 'duplicate entries for key [name="a"]' in out
