"""The kubectl plugin as users run it: a subprocess against the real cluster, with the operator running.

Exit statuses and stderr are the real ones. Describe output is compared with golden files
in tests/golden/ after ages, digests, hosts, ports and generated names are normalised;
`UPDATE_GOLDEN=1 pytest tests/integration/test_cli.py` rewrites them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client

from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import unique_image
from tests.conftest import REPO_ROOT, kubectl
from tests.helpers import OperatorProcess, eventually, pusher_for
from tests.streams import apply_stream, docker_tag, get_stream, insecure_tag, status_tag, wait_for_tag
from tests.webhooks import served_webhooks, wait_until_called

GOLDEN = REPO_ROOT / "tests" / "golden"
TRIGGERS = "image.openshift.io/triggers"
REQUEST = "imagestreams.dev/import-request"


@dataclass
class Result:
    status: int
    out: str
    err: str


def run_cli(cluster: LocalCluster, namespace: str | None, *args: str, env: dict[str, str] | None = None) -> Result:
    """`kubectl imagestream ARGS` as its own process, as admin, in `namespace` (when given)."""
    command = [sys.executable, "-m", "imagestreams.cli", *args]
    if env is None:
        command.append(f"--kubeconfig={cluster.admin_kubeconfig}")
    if namespace is not None:
        command += ["-n", namespace]
    environment = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env={**environment, **(env or {})}
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


class Cli:
    """The plugin bound to one namespace of the test cluster."""

    def __init__(self, cluster: LocalCluster, namespace: str, registry: Registry, repository: str) -> None:
        self.cluster, self.namespace, self.registry, self.repository = cluster, namespace, registry, repository

    def __call__(self, *args: str) -> Result:
        return run_cli(self.cluster, self.namespace, *args)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.status == 0, f"{args} failed ({result.status}):\n{result.err}\n{result.out}"
        return result.out

    def fails(self, *args: str) -> str:
        """Run a command expected to fail; returns its stderr."""
        result = self(*args)
        assert result.status == 1, f"{args} should have failed:\n{result.out}\n{result.err}"
        return result.err

    def pull_spec(self, tag: str) -> str:
        return f"{self.registry.host}/{self.repository}:{tag}"

    def push(self, tag: str, repository: str | None = None) -> str:
        image = unique_image(f"cli {tag}")
        with pusher_for(self.registry) as client:
            client.push_image(repository or self.repository, tag, image)
        return image.digest

    def stream(self, name: str = "app") -> dict[str, Any]:
        return get_stream(self.cluster, self.namespace, name)

    def spec_tag(self, tag: str, stream: str = "app") -> dict[str, Any]:
        return next(t for t in self.stream(stream)["spec"]["tags"] if t["name"] == tag)

    def imported(self, tags: dict[str, str], stream: str = "app") -> None:
        """Create `stream` with insecure tags importing tag -> the pushed digest, and wait for them."""
        apply_stream(self.cluster, self.namespace, stream, [insecure_tag(t, self.pull_spec(t)) for t in tags])
        for tag, digest in tags.items():
            wait_for_tag(self.cluster, self.namespace, stream, tag, image=digest)


@pytest.fixture
def cli(
    crds: LocalCluster, namespace: str, operator: OperatorProcess, plain_registry: Registry, repository: str
) -> Cli:
    return Cli(crds, namespace, plain_registry, repository)


@pytest.fixture
def other_namespace(crds: LocalCluster) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:10]}"
    kubectl(crds, "create", "namespace", name)
    yield name
    kubectl(crds, "delete", "namespace", name, "--wait=false")


def normalize(text: str, cli: Cli, *names: str) -> str:
    """Stable text for golden comparisons: ages, digests, hosts and ports, generated names replaced."""
    text = text.replace(cli.registry.host, "<registry>").replace(cli.repository, "<repository>")
    for number, name in enumerate(names):
        text = text.replace(name, f"<name-{number}>")
    text = text.replace(cli.namespace, "<namespace>")
    digests: dict[str, str] = {}
    text = re.sub(
        r"sha256:[0-9a-f]{64}", lambda m: digests.setdefault(m.group(), f"sha256:<digest-{len(digests)}>"), text
    )
    ages = (
        r"(Less than a second|\d+ seconds?|About a minute|\d+ minutes|About an hour|\d+ hours|\d+ days|\d+ weeks"
        r"|\d+ months|\d+ years) ago\t*"
    )
    text = re.sub(ages, lambda m: "<age> ago" + ("\t" if m.group().endswith("\t") else ""), text)
    text = re.sub(rf"{re.escape(REQUEST)}=\S+", f"{REQUEST}=<request>", text)
    text = re.sub(r"\b\d{1,3}(\.\d{1,3}){3}:\d+\b", "<host>:<port>", text)
    return re.sub(r"\d+(\.\d+)?[kMG]?B in (\d+) layers", r"<size> in \2 layers", text)


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(), f"output differs from {path}:\n{text}"


# --- plugin mechanics ------------------------------------------------------------------------------------------


def test_kubectl_finds_the_plugin_on_path(crds: LocalCluster) -> None:
    assert crds.binaries is not None
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kubectl-imagestream").exists(), "run scripts/setup.sh --python to install the console script"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(crds.binaries.kubectl), "imagestream"]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env, check=False, timeout=60)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: kubectl imagestream COMMAND")
    wrong = subprocess.run([*command, "bogus"], capture_output=True, text=True, env=env, check=False, timeout=60)
    assert wrong.returncode == 1
    assert wrong.stderr.startswith('error: unknown command "bogus" for "kubectl imagestream"\n')


def test_kubeconfig_list_context_and_namespace_like_kubectl(crds: LocalCluster, cli: Cli, tmp_path: Path) -> None:
    cli.imported({"v1": cli.push("v1")})
    admin = yaml.safe_load(Path(crds.admin_kubeconfig).read_text())
    for entry in admin["clusters"]:  # absolute paths, since the copy lives elsewhere
        ca = entry["cluster"].get("certificate-authority")
        if ca:
            entry["cluster"]["certificate-authority"] = str(Path(crds.admin_kubeconfig).parent / ca)
    for entry in admin["users"]:
        for key in ("client-certificate", "client-key"):
            if entry["user"].get(key):
                entry["user"][key] = str(Path(crds.admin_kubeconfig).parent / entry["user"][key])
    context = admin["contexts"][0]
    first = {**admin, "contexts": [], "current-context": "in-test-namespace"}
    second = {
        **admin,
        "contexts": [
            {"name": "in-test-namespace", "context": {**context["context"], "namespace": cli.namespace}},
            {"name": "elsewhere", "context": {**context["context"], "namespace": "default"}},
        ],
    }
    (tmp_path / "first").write_text(yaml.safe_dump(first))
    (tmp_path / "second").write_text(yaml.safe_dump(second))
    files = f"{tmp_path / 'missing'}:{tmp_path / 'first'}:{tmp_path / 'second'}"
    # current-context from the first file, the context itself from the second, its namespace used without -n.
    shown = run_cli(crds, None, "describe", "is", "app", env={"KUBECONFIG": files})
    assert shown.status == 0, shown.err
    assert f"Namespace:\t\t{cli.namespace}\n" in shown.out
    elsewhere = run_cli(crds, None, "describe", "is", "app", "--context=elsewhere", env={"KUBECONFIG": files})
    assert (elsewhere.status, elsewhere.err) == (1, 'error: imagestreams.image.openshift.io "app" not found\n')
    flagged = run_cli(crds, cli.namespace, "describe", "is", "app", "--context=elsewhere", env={"KUBECONFIG": files})
    assert flagged.status == 0
    missing = run_cli(crds, None, "describe", "is", "--context=nope", env={"KUBECONFIG": files})
    assert (missing.status, missing.err) == (1, "error: context was not found for specified context: nope\n")


# --- describe -------------------------------------------------------------------------------------------------


def test_describe_layouts_match_the_golden_files(cli: Cli) -> None:
    v1 = cli.push("v1")
    local = cli.push("local")
    apply_stream(
        cli.cluster,
        cli.namespace,
        "app",
        [
            insecure_tag("v1", cli.pull_spec("v1")),
            {"name": "latest", "from": {"kind": "ImageStreamTag", "name": "v1"}},
            docker_tag("ref", cli.pull_spec("v1"), reference=True),
            insecure_tag("broken", cli.pull_spec("missing")),
            insecure_tag(
                "local",
                cli.pull_spec("local"),
                importPolicy={"scheduled": True},
                referencePolicy={"type": "Local"},
                annotations={"description": "Follows the local tag", "tags": "web,demo"},
            ),
        ],
        annotations={"description": "The application", "owner": "team-a"},
    )
    wait_for_tag(cli.cluster, cli.namespace, "app", "v1", image=v1)
    wait_for_tag(cli.cluster, cli.namespace, "app", "latest", image=v1)
    wait_for_tag(cli.cluster, cli.namespace, "app", "local", image=local)
    wait_for_tag(cli.cluster, cli.namespace, "app", "broken", reason="NotFound")
    eventually(lambda: status_tag(cli.stream(), "ref").get("items"), what="the reference tag to be recorded")

    assert_golden("describe_is.txt", normalize(cli.ok("describe", "is", "app"), cli))
    assert_golden("describe_istag.txt", normalize(cli.ok("describe", "istag", "app:local"), cli))
    assert_golden("describe_isimage.txt", normalize(cli.ok("describe", "isimage", f"app@{v1[:20]}"), cli))
    assert normalize(cli.ok("describe", "is/app"), cli) == normalize(cli.ok("describe", "imagestream", "app"), cli)
    everything = cli.ok("describe", "is", "-A")
    assert f"Namespace:\t\t{cli.namespace}\n" in everything

    assert (
        cli.fails("describe", "istag", "app:nope") == 'error: imagestreamtags.image.openshift.io "app:nope" not found\n'
    )
    assert (
        cli.fails("describe", "istag", "app:ref") == 'error: imagestreamtags.image.openshift.io "app:ref" not found\n'
    )
    assert cli.fails("describe", "isimage", "app@sha256:ffff") == (
        'error: imagestreamimages.image.openshift.io "app@sha256:ffff" not found\n'
    )
    assert cli.fails("describe", "is", "nope") == 'error: imagestreams.image.openshift.io "nope" not found\n'


def test_describe_an_empty_namespace(cli: Cli) -> None:
    result = cli("describe", "is")
    assert (result.status, result.out, result.err) == (0, "", f"No resources found in {cli.namespace} namespace.\n")


# --- tag ------------------------------------------------------------------------------------------------------


def test_tag_a_container_image_creates_the_stream_and_reimports_on_repeat(cli: Cli) -> None:
    first = cli.push("v1")
    source = cli.pull_spec("v1")
    assert cli.ok("tag", "--source=docker", "--insecure", source, "app:v1") == f"Tag app:v1 set to {source}.\n"
    assert cli.spec_tag("v1") == {
        "name": "v1",
        "from": {"kind": "DockerImage", "name": source},
        "importPolicy": {"insecure": True},
        "referencePolicy": {"type": "Source"},
    }
    wait_for_tag(cli.cluster, cli.namespace, "app", "v1", image=first)
    shown = kubectl(cli.cluster, "get", "is", "app", "-n", cli.namespace, "-o", "json", "--show-managed-fields")
    assert "kubectl-imagestream" in {m["manager"] for m in json.loads(shown)["metadata"]["managedFields"]}
    # Tagging the same source again imports it again, as oc tag does.
    second = cli.push("v1")
    cli.ok("tag", "--insecure", source, "app:v1")  # a registry in SOURCE: a container image without --source
    wait_for_tag(cli.cluster, cli.namespace, "app", "v1", image=second)


def test_tag_copies_a_stream_tag_or_follows_it_with_alias(cli: Cli, other_namespace: str) -> None:
    first = cli.push("v1")
    cli.imported({"v1": first})
    assert cli.ok("tag", "app:v1", "app:stable") == f"Tag app:stable set to app@{first}.\n"
    assert cli.spec_tag("stable")["from"] == {"kind": "ImageStreamImage", "name": f"app@{first}"}
    assert cli.ok("tag", "--alias", "app:v1", "app:latest") == "Tag app:latest set up to track app:v1.\n"
    assert cli.spec_tag("latest")["from"] == {"kind": "ImageStreamTag", "name": "app:v1"}
    wait_for_tag(cli.cluster, cli.namespace, "app", "stable", image=first)
    wait_for_tag(cli.cluster, cli.namespace, "app", "latest", image=first)
    # Another namespace: the stream is created there and the source's namespace is written down.
    copied = cli.ok("tag", "app:v1", f"{other_namespace}/copy:v1", "app:v1-copy")
    assert copied == f"Tag {other_namespace}/copy:v1 set to app@{first}.\nTag app:v1-copy set to app@{first}.\n"
    other = get_stream(cli.cluster, other_namespace, "copy")
    assert other["spec"]["tags"][0]["from"] == {
        "kind": "ImageStreamImage",
        "name": f"app@{first}",
        "namespace": cli.namespace,
    }


def test_tag_errors_have_ocs_messages(cli: Cli) -> None:
    cli.imported({"v1": cli.push("v1")})
    assert (
        cli.fails("tag", "--alias", "app:v1", "other:latest")
        == "error: cannot set alias across different Image Streams\n"
    )
    assert (
        cli.fails("tag", "--scheduled", "app:v1", "app:x")
        == "error: only container images can have importing flags set\n"
    )
    assert cli.fails("tag", "--insecure", f"app@{'sha256:' + 'a' * 64}", "app:x") == (
        "error: only container images can have importing flags set\n"
    )
    assert cli.fails("tag", "--source=bogus", "app:v1", "app:x") == (
        'error: invalid source "bogus"; valid values are docker, dockerimage, imagestreamimage, imagestreamtag, '
        "isimage, istag\nSee 'kubectl imagestream tag -h' for help and examples\n"
    )
    assert cli.fails("tag", "--reference-policy=other", "x/y:1", "app:x") == (
        "error: reference policy must be set to 'source' or 'local'\n"
    )
    assert cli.fails("tag", "app:nope", "app:x") == (
        'error: "app:nope" is not currently pointing to an image, cannot use it as the source of a tag\n'
    )
    assert cli.fails("tag", "missing:v1", "app:x") == 'error: imagestreams.image.openshift.io "missing" not found\n'
    assert cli.fails("tag", "app:v1", "app") == 'error: "app" must be of the form <stream_name>:<tag>\n'


def test_tag_flags_are_written_and_left_out_flags_turned_off(cli: Cli) -> None:
    source = cli.pull_spec("v1")
    cli.push("v1")
    flags = ["--scheduled", "--insecure", "--reference-policy=local", "--import-mode=PreserveOriginal"]
    assert (
        cli.ok("tag", "--source=docker", *flags, source, "app:s") == f"Tag app:s set to import {source} periodically.\n"
    )
    assert cli.spec_tag("s")["importPolicy"] == {"insecure": True, "scheduled": True, "importMode": "PreserveOriginal"}
    assert cli.spec_tag("s")["referencePolicy"] == {"type": "Local"}
    cli.ok("tag", "--insecure", source, "app:s")
    assert cli.spec_tag("s")["importPolicy"] == {"insecure": True}
    assert cli.spec_tag("s")["referencePolicy"] == {"type": "Source"}
    cli.ok("tag", "--reference", source, "app:r")
    assert cli.spec_tag("r")["reference"] is True
    eventually(lambda: status_tag(cli.stream(), "r").get("items"), what="the reference to be recorded")
    assert status_tag(cli.stream(), "r")["items"][0]["dockerImageReference"] == source


def test_tag_delete(cli: Cli) -> None:
    cli.imported({"v1": cli.push("v1"), "v2": cli.push("v2")})
    assert cli.ok("tag", "-d", "app:v1") == f"Deleted tag {cli.namespace}/app:v1.\n"
    assert [t["name"] for t in cli.stream()["spec"]["tags"]] == ["v2"]
    # Deleting an ImageStreamTag removes its history too (a spec tag removed with apply keeps it).
    assert [t["tag"] for t in cli.stream()["status"]["tags"]] == ["v2"]
    assert cli.fails("tag", "-d", "app:v1") == 'error: imagestreamtags.image.openshift.io "app:v1" not found\n'
    assert cli.fails("tag", "-d", "nope:v1") == 'error: imagestreamtags.image.openshift.io "nope:v1" not found\n'
    assert cli.fails("tag", "-d", "--alias", "app:v2") == "error: --alias and --delete may not be both specified\n"


# --- import-image ---------------------------------------------------------------------------------------------


def test_import_image_needs_confirm_for_a_new_stream(cli: Cli) -> None:
    assert cli.fails("import-image", "app:v1", f"--from={cli.pull_spec('v1')}") == (
        'error: no image stream named "app" exists, pass --confirm to create and import\n'
    )
    with pytest.raises(AssertionError):
        cli.stream()


def test_import_image_confirm_creates_imports_and_describes(cli: Cli) -> None:
    digest = cli.push("v1")
    out = cli.ok("import-image", "app:v1", f"--from={cli.pull_spec('v1')}", "--confirm", "--insecure")
    assert out.startswith("imagestream.image.openshift.io/app imported\n\nName:\t\t\tapp\n")
    assert f"Image Name:\tapp:v1\nDocker Image:\t{cli.registry.host}/{cli.repository}@{digest}\n" in out
    assert_golden("import_image.txt", normalize(out, cli))
    stream = cli.stream()
    assert stream["status"]["importRequest"] == stream["metadata"]["annotations"][REQUEST]


def test_import_image_reimports_and_sets_flags(cli: Cli) -> None:
    first = cli.push("v1")
    cli.imported({"v1": first})
    second = cli.push("v1")
    out = cli.ok("import-image", "app:v1", "--scheduled", "--reference-policy=local")
    assert f"@{second}\n" in out
    assert [item["image"] for item in status_tag(cli.stream(), "v1")["items"]] == [second, first]
    tag = cli.spec_tag("v1")
    assert tag["importPolicy"] == {"insecure": True, "scheduled": True}
    assert tag["referencePolicy"] == {"type": "Local"}  # the tag had none, so the flag applies
    # An alias is followed to the tag it points at.
    cli.ok("tag", "--alias", "app:v1", "app:latest")
    assert "Image Name:\tapp:v1\n" in cli.ok("import-image", "app")
    cli.ok("import-image", "app:v1", "--import-mode=PreserveOriginal")
    assert cli.spec_tag("v1")["importPolicy"]["importMode"] == "PreserveOriginal"


def test_import_image_reports_the_failure(cli: Cli) -> None:
    cli.push("v1")
    result = cli("import-image", "app:v1", f"--from={cli.pull_spec('v1')}", "--confirm")
    assert result.status == 1
    assert result.out.startswith("imagestream.image.openshift.io/app imported with errors\n\n")
    message = status_tag(cli.stream(), "v1")["conditions"][0]["message"]
    assert "insecure" in message
    assert result.err == f"error: tag v1 failed: {message}\n"
    assert "  ! error: Import failed (InternalError): " in result.out
    # Allowed over plain HTTP, the same tag imports.
    assert cli.ok("import-image", "app:v1", "--insecure").startswith("imagestream.image.openshift.io/app imported\n")


def test_import_image_errors_have_ocs_messages(cli: Cli) -> None:
    cli.imported({"v1": cli.push("v1")})
    apply_stream(
        cli.cluster,
        cli.namespace,
        "app",
        [
            insecure_tag("v1", cli.pull_spec("v1")),
            {"name": "pinned", "from": {"kind": "ImageStreamTag", "name": "other:x"}},
        ],
    )
    assert cli.fails("import-image", "app:nope") == (
        'error: the tag "nope" does not exist on the image stream - choose an existing tag to import or use the '
        "'tag' command to create a new tag\n"
    )
    assert cli.fails("import-image", "app:v1", "--from=elsewhere/app:v1") == (
        f'error: the tag "v1" points to "{cli.pull_spec("v1")}" - use the \'tag\' command if you want to change '
        'the source to "elsewhere/app:v1"\n'
    )
    assert cli.fails("import-image", "app:pinned") == (
        'error: tag "pinned" points to an imagestreamtag from another ImageStream\n'
    )
    assert cli.fails("import-image", "app:v1", "--all") == 'error: cannot specify a tag "app:v1" as well as --all\n'
    assert (
        cli.fails("import-image", f"app@sha256:{'a' * 64}") == "error: to import images by ID, use the 'tag' command\n"
    )
    assert cli.fails("import-image", "app", "--timeout=soon").startswith('error: invalid --timeout "soon"')


def test_import_image_all(cli: Cli) -> None:
    cli.imported({"a": cli.push("a"), "b": cli.push("b")})
    newer = {"a": cli.push("a"), "b": cli.push("b")}
    out = cli.ok("import-image", "app", "--all")
    for tag, digest in newer.items():
        assert f"Image Name:\tapp:{tag}\n" in out
        assert status_tag(cli.stream(), tag)["items"][0]["image"] == digest
    # A whole repository, into a new stream; only the tags in status (the operator's limit is 4 in tests).
    repository = f"{cli.repository}-all"
    for tag in ("1.0", "1.1", "latest"):
        cli.push(tag, repository)
    out = cli.ok("import-image", "repo", "--all", f"--from={cli.registry.host}/{repository}", "--confirm", "--insecure")
    stream = cli.stream("repo")
    assert stream["spec"]["dockerImageRepository"] == f"{cli.registry.host}/{repository}"
    assert stream["metadata"]["annotations"]["openshift.io/image.insecureRepository"] == "true"
    assert sorted(t["tag"] for t in stream["status"]["tags"]) == ["1.0", "1.1", "latest"]
    for tag in ("1.0", "1.1", "latest"):
        assert f"Image Name:\trepo:{tag}\n" in out


def test_import_image_dry_run_writes_nothing(cli: Cli) -> None:
    cli.imported({"v1": cli.push("v1")})
    before = cli.stream()
    out = cli.ok("import-image", "app:v1", "--scheduled", "--dry-run")
    assert out.startswith("imagestream.image.openshift.io/app import validated (dry run)\n\nName:\t\t\tapp\n")
    as_yaml = yaml.safe_load(cli.ok("import-image", "app:v1", "--scheduled", "--dry-run", "-o", "yaml"))
    assert as_yaml["spec"]["tags"][0]["importPolicy"]["scheduled"] is True
    after = cli.stream()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    created = cli("import-image", "new:v1", f"--from={cli.pull_spec('v1')}", "--confirm", "--dry-run")
    assert created.status == 0 and "new" in created.out
    with pytest.raises(AssertionError):
        cli.stream("new")


def test_import_image_times_out_when_no_operator_acts(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str
) -> None:
    cli = Cli(crds, solo_namespace, plain_registry, repository)
    cli.push("v1")
    err = cli.fails(
        "import-image", "app:v1", f"--from={cli.pull_spec('v1')}", "--confirm", "--insecure", "--timeout=1s"
    )
    assert err.startswith(f"error: timed out after 1s waiting for the operator to import {solo_namespace}/app; ")
    request = cli.stream()["metadata"]["annotations"][REQUEST]
    assert request in err
    assert cli.ok("import-image", "app:v1", "--timeout=0") == "imagestream.image.openshift.io/app import requested\n"
    assert cli.stream()["metadata"]["annotations"][REQUEST] != request


# --- set-triggers ---------------------------------------------------------------------------------------------


def deployment(namespace: str, name: str, containers: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": c, "image": f"placeholder/{c}:0"} for c in containers]},
            },
        },
    }


def cronjob(namespace: str, name: str) -> dict[str, Any]:
    pod = {"restartPolicy": "Never", "containers": [{"name": "job", "image": "placeholder/job:0"}]}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }


def apply(cluster: LocalCluster, manifest: dict[str, Any]) -> None:
    kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(manifest))


def get(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(kubectl(cluster, "get", kind, name, "-n", namespace, "-o", "json"))
    return body


def image_of(body: dict[str, Any], container: str) -> str:
    spec = body["spec"]
    pod = spec["jobTemplate"]["spec"]["template"]["spec"] if "jobTemplate" in spec else spec["template"]["spec"]
    return next(c["image"] for c in pod["containers"] if c["name"] == container)


def wait_image(cli: Cli, kind: str, name: str, container: str, image: str) -> None:
    eventually(
        lambda: image_of(get(cli.cluster, kind, cli.namespace, name), container) == image,
        what=f"{kind} {name} to run {image}",
    )


def annotation(cli: Cli, kind: str, name: str) -> str | None:
    value: str | None = (get(cli.cluster, kind, cli.namespace, name)["metadata"].get("annotations") or {}).get(TRIGGERS)
    return value


def test_set_triggers_lists_adds_pauses_and_removes(cli: Cli) -> None:
    digest = cli.push("v1")
    cli.imported({"v1": digest})
    reference = f"{cli.registry.host}/{cli.repository}@{digest}"
    apply(cli.cluster, deployment(cli.namespace, "web", ["web", "sidecar"]))
    assert (
        cli.ok("set-triggers", "deployment/web")
        == "NAME             TYPE    VALUE  AUTO\ndeployments/web  config         true\n"
    )
    assert cli.fails("set-triggers", "deploy/web", "--from-image=app:v1") == (
        "error: you must specify --containers when setting --from-image\n"
    )
    assert cli.fails("set-triggers", "deploy/web", "--from-image=app:v1", "-c", "nope") == (
        "error: not all container names exist: nope (accepts: sidecar, web)\n"
    )
    assert cli.fails("set-triggers", "deploy/web", "--from-image=quay.io/a/b:1", "-c", "web") == (
        "error: the value of --from-image must point to an image stream tag on this server\n"
    )
    assert (
        cli.ok("set-triggers", "deploy/web", "--from-image=app:v1", "-c", "web")
        == "deployment.apps/web triggers updated\n"
    )
    assert annotation(cli, "deployment", "web") == (
        '[{"from":{"kind":"ImageStreamTag","name":"app:v1"},"fieldPath":"spec.template.spec.containers[?(@.name==\\"web\\")].image"}]'
    )
    wait_image(cli, "deployment", "web", "web", reference)
    assert cli.ok("set", "triggers", "deploy/web") == (
        "NAME             TYPE    VALUE         AUTO\n"
        "deployments/web  config                true\n"
        "deployments/web  image   app:v1 (web)  true\n"
    )
    cli.ok("set-triggers", "deploy/web", "--manual")
    assert json.loads(annotation(cli, "deployment", "web") or "")[0]["paused"] is True
    assert cli.ok("set-triggers", "deploy/web").splitlines()[-1].split() == [
        "deployments/web",
        "image",
        "app:v1",
        "(web)",
        "false",
    ]
    cli.ok("set-triggers", "deploy/web", "--auto")
    assert "paused" not in json.loads(annotation(cli, "deployment", "web") or "")[0]
    unchanged = cli("set-triggers", "deploy/web", "--auto")
    assert (unchanged.status, unchanged.out, unchanged.err) == (0, "", "info: deployments/web was not changed\n")
    assert cli.fails("set-triggers", "deploy/web", "--from-image=app:v2", "-c", "web") == (
        "error: only one trigger may reference each container: web\n"
    )
    warned = cli("set-triggers", "deploy/web", "--from-image=app:v2", "-c", "sidecar")
    assert warned.status == 0
    assert (
        warned.err == f"warning: the image stream tag {cli.namespace}/app:v2 does not exist yet; "
        "the trigger takes effect when it has an image\n"
    )
    cli.ok("set-triggers", "deploy/web", "--remove", "--from-image=app:v1")
    assert [t["from"]["name"] for t in json.loads(annotation(cli, "deployment", "web") or "")] == ["app:v2"]
    cli.ok("set-triggers", "deploy/web", "--remove-all")
    assert annotation(cli, "deployment", "web") is None
    assert cli.fails("set-triggers", "deploy/nope") == 'error: deployments.apps "nope" not found\n'
    assert cli.fails("set-triggers", "pod/web").startswith("error: pod/web does not support triggers")


def test_set_triggers_on_a_cronjob_with_output(cli: Cli) -> None:
    digest = cli.push("v1")
    cli.imported({"v1": digest})
    apply(cli.cluster, cronjob(cli.namespace, "nightly"))
    body = json.loads(cli.ok("set-triggers", "cj/nightly", "--from-image=app:v1", "-o", "json"))
    assert body["kind"] == "CronJob"
    assert json.loads(body["metadata"]["annotations"][TRIGGERS])[0]["fieldPath"] == (
        'spec.jobTemplate.spec.template.spec.containers[?(@.name=="job")].image'
    )
    wait_image(cli, "cronjob", "nightly", "job", f"{cli.registry.host}/{cli.repository}@{digest}")


# --- set-image-lookup -----------------------------------------------------------------------------------------


RESOLVE_NAMES = "alpha.image.policy.openshift.io/resolve-names"
LOOKUP_HEADER = ["NAME", "LOCAL", "IMAGE", "LOOKUP"]


def lookup_off(stream: str) -> str:
    return (
        f"left: the image stream {stream} does not allow local lookup (spec.lookupPolicy.local), "
        f'and {RESOLVE_NAMES} is not "*"'
    )


def table_rows(text: str) -> list[list[str]]:
    """A kubectl-style table (columns at least two spaces apart) as cells; a LOOKUP cell keeps its single spaces."""
    return [re.split(r"\s{2,}", line.rstrip()) for line in text.splitlines()]


def test_set_image_lookup_on_streams_and_workloads(cli: Cli) -> None:
    digest = cli.push("v1")
    cli.imported({"v1": digest})
    resolved = f"resolved to {cli.registry.host}/{cli.repository}@{digest}"
    apply(cli.cluster, deployment(cli.namespace, "web", ["web"]))
    assert table_rows(cli.ok("set-image-lookup")) == [LOOKUP_HEADER, ["app", "false", "app:v1", lookup_off("app")]]
    changed = cli.ok("set-image-lookup", "app")
    assert changed.startswith("imagestream.image.openshift.io/app image lookup updated\n\n")  # oc's line, first
    assert table_rows(changed)[2:] == [LOOKUP_HEADER, ["app", "true", "app:v1", resolved]]
    assert cli.stream()["spec"]["lookupPolicy"] == {"local": True}
    assert table_rows(cli.ok("set", "image-lookup", "--list", "app")) == [
        LOOKUP_HEADER,
        ["app", "true", "app:v1", resolved],
    ]
    assert cli.ok("set-image-lookup", "deploy/web").startswith("deployment.apps/web image lookup updated\n\n")
    template = get(cli.cluster, "deployment", cli.namespace, "web")["spec"]["template"]["metadata"]
    assert template["annotations"][RESOLVE_NAMES] == "*"
    # With the annotation, placeholder/web:0 is looked up as web:0 in the namespace, which has no stream web.
    assert table_rows(cli.ok("set-image-lookup", "--list", "deploy/web", "is/app")) == [
        ["NAME", "LOCAL", "CONTAINER", "IMAGE", "LOOKUP"],
        [
            "deployments/web",
            "true",
            "web",
            "placeholder/web:0",
            f"left: there is no image stream web in namespace {cli.namespace}",
        ],
        ["app", "true", "<none>", "app:v1", resolved],
    ]
    cli.ok("set-image-lookup", "app", "deploy/web", "--enabled=false")
    assert cli.stream()["spec"]["lookupPolicy"] == {"local": False}
    template = get(cli.cluster, "deployment", cli.namespace, "web")["spec"]["template"]["metadata"]
    assert RESOLVE_NAMES not in (template.get("annotations") or {})
    listed = cli.ok("set-image-lookup", "-A")
    assert table_rows(listed)[0] == ["NAMESPACE", *LOOKUP_HEADER]
    assert [cli.namespace, "app", "false", "app:v1", lookup_off("app")] in table_rows(listed)
    assert json.loads(cli.ok("set-image-lookup", "app", "-o", "json"))["spec"]["lookupPolicy"] == {"local": True}
    cli.imported({"v1": cli.push("v1")}, stream="second")
    turned_off = cli.ok("set-image-lookup", "--all", "--enabled=false")
    assert turned_off.startswith(
        "imagestream.image.openshift.io/app image lookup updated\n"
        "imagestream.image.openshift.io/second image lookup updated\n\n"
    )
    assert table_rows(turned_off)[3:] == [
        LOOKUP_HEADER,
        ["app", "false", "app:v1", lookup_off("app")],
        ["second", "false", "second:v1", lookup_off("second")],
    ]
    assert table_rows(cli.ok("set-image-lookup")) == [
        LOOKUP_HEADER,
        ["app", "false", "app:v1", lookup_off("app")],
        ["second", "false", "second:v1", lookup_off("second")],
    ]
    assert cli.fails("set-image-lookup", "nope") == 'error: imagestreams.image.openshift.io "nope" not found\n'


def full_name(cli: Cli) -> str:
    return f"{cli.registry.host}/elsewhere/app:v1"


def lookup_deployment(cli: Cli, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Deployment whose images cover the lookup cases: an init container and a bare name that resolve, a tag
    without an image, a name no stream has, and a full pull spec ending in app:v1 (resolved only with the
    annotation, which drops its registry and namespace)."""
    images = {"web": "app", "side": "busybox:1", "full": full_name(cli), "never": "app:nothing"}
    body = deployment(cli.namespace, name, list(images))
    pod = body["spec"]["template"]["spec"]
    pod["initContainers"] = [{"name": "init", "image": "app:v1"}]
    for container in pod["containers"]:
        container["image"] = images[container["name"]]
    if annotations:
        body["spec"]["template"]["metadata"]["annotations"] = annotations
    return body


def test_set_image_lookup_shows_what_lookup_does(cli: Cli, crds: LocalCluster) -> None:
    first, latest = cli.push("v1"), cli.push("latest")
    cli.imported({"v1": first, "latest": latest})
    by_digest = f"{cli.registry.host}/{cli.repository}@"
    cli.ok("tag", "--source=docker", "--insecure", cli.pull_spec("nothing"), "app:nothing")  # nothing to import
    apply(cli.cluster, lookup_deployment(cli, "web"))

    # Off: one row for every tag of the stream, with admission's reason.
    assert table_rows(cli.ok("set-image-lookup")) == [LOOKUP_HEADER, ["app", "false", "app:*", lookup_off("app")]]
    no_image = "left: the tag app:nothing has no image, and the stream has no status.dockerImageRepository"
    no_stream = f"left: there is no image stream busybox in namespace {cli.namespace}"
    not_short = f'left: not a short name (it names a registry or namespace), and {RESOLVE_NAMES} is not "*"'
    containers = ["NAME", "LOCAL", "CONTAINER", "IMAGE", "LOOKUP"]
    web = ["deployments/web", "false"]
    assert table_rows(cli.ok("set-image-lookup", "--list", "deploy/web")) == [
        containers,
        [*web, "init", "app:v1", lookup_off("app")],
        [*web, "web", "app", lookup_off("app")],
        [*web, "side", "busybox:1", no_stream],
        [*web, "full", full_name(cli), not_short],
        [*web, "never", "app:nothing", lookup_off("app")],
    ]

    # Turning it on says which short names now resolve, in oc's tag order (latest, versions, the rest by name).
    changed = cli.ok("set-image-lookup", "app")
    assert table_rows(changed) == [
        ["imagestream.image.openshift.io/app image lookup updated"],
        [""],
        LOOKUP_HEADER,
        ["app", "true", "app:latest", f"resolved to {by_digest}{latest}"],
        ["app", "true", "app:nothing", no_image],
        ["app", "true", "app:v1", f"resolved to {by_digest}{first}"],
    ]
    assert table_rows(cli.ok("set-image-lookup", "--list", "deploy/web")) == [
        containers,
        [*web, "init", "app:v1", f"resolved to {by_digest}{first}"],
        [*web, "web", "app", f"resolved to {by_digest}{latest}"],
        [*web, "side", "busybox:1", no_stream],
        [*web, "full", full_name(cli), not_short],
        [*web, "never", "app:nothing", no_image],
    ]

    # After a change, a workload is shown with the streams as the same command leaves them, dry run or not.
    dry = cli.ok("set-image-lookup", "deploy/web", "app", "--enabled=false", "--dry-run=client")
    assert table_rows(dry)[4:6] == [
        [*web, "init", "app:v1", lookup_off("app")],
        [*web, "web", "app", lookup_off("app")],
    ]
    assert cli.stream()["spec"]["lookupPolicy"] == {"local": True}

    # The annotation on the workload: the full pull spec is looked up as app:v1 too; shown for the workload as the
    # plugin wrote it (the server's answer could already carry the webhook's digests).
    annotated = ["deployments/web", "true"]
    assert table_rows(cli.ok("set-image-lookup", "deploy/web"))[2:] == [
        containers,
        [*annotated, "init", "app:v1", f"resolved to {by_digest}{first}"],
        [*annotated, "web", "app", f"resolved to {by_digest}{latest}"],
        [*annotated, "side", "busybox:1", no_stream],
        [*annotated, "full", full_name(cli), f"resolved to {by_digest}{first}"],
        [*annotated, "never", "app:nothing", no_image],
    ]

    # describe keeps oc's layout; --show-lookup adds the stream's rows after it.
    plain = cli.ok("describe", "is", "app")
    shown = cli.ok("describe", "is", "app", "--show-lookup")
    assert "Image Lookup:\t\tlocal=true\n" in plain and "Lookup:\n" not in plain
    layout, section = shown[: shown.index("Lookup:\n")], shown[shown.index("Lookup:\n") :]
    assert normalize(layout, cli) == normalize(plain, cli)
    assert [line.split("\t")[0] for line in section.splitlines()] == [
        "Lookup:",
        "  app:latest",
        "  app:nothing",
        "  app:v1",
    ]
    assert section.splitlines()[1].split("\t")[-1] == f"resolved to {by_digest}{latest}"
    assert cli.fails("describe", "istag", "app:v1", "--show-lookup").startswith(
        "error: -l, --show-events and --show-lookup describe image streams, not istag\n"
    )

    # A user who may read the workload but not the streams is shown why nothing can be said.
    user = f"viewer-{uuid.uuid4().hex[:6]}"
    kubectl(crds, "create", "role", user, "--verb=get,list", "--resource=deployments.apps", "-n", cli.namespace)
    kubectl(crds, "create", "rolebinding", user, f"--role={user}", f"--user={user}", "-n", cli.namespace)
    as_user = run_cli(
        crds,
        cli.namespace,
        "set-image-lookup",
        "--list",
        "deploy/web",
        env={"KUBECONFIG": str(crds.user_kubeconfig(user))},
    )
    assert as_user.status == 0, as_user.err
    unreadable = table_rows(as_user.out)[1]
    assert unreadable[:4] == [*annotated, "init", "app:v1"]
    assert unreadable[4].startswith("failed: the image stream app could not be read: ")
    assert "forbidden" in unreadable[4]


def test_set_image_lookup_agrees_with_the_webhook(cli: Cli, crds: LocalCluster, admin: Client) -> None:
    """What the listing says a workload's images resolve to is what the operator's webhook writes at creation."""
    first, latest = cli.push("v1"), cli.push("latest")
    cli.imported({"v1": first, "latest": latest})
    cli.ok("tag", "--source=docker", "--insecure", cli.pull_spec("nothing"), "app:nothing")
    cli.ok("set-image-lookup", "app")
    variants = {"plain": None, "annotated": {RESOLVE_NAMES: "*"}}
    for name, template_annotations in variants.items():
        apply(cli.cluster, lookup_deployment(cli, name, template_annotations))
    predicted: dict[tuple[str, str], str] = {}
    for name in ("plain", "annotated"):
        for row in table_rows(cli.ok("set-image-lookup", "--list", f"deploy/{name}"))[1:]:
            container, image, lookup = row[2], row[3], row[4]
            predicted[name, container] = lookup.removeprefix("resolved to ") if lookup.startswith("resolved") else image
    assert predicted["annotated", "full"] == f"{cli.registry.host}/{cli.repository}@{first}"

    with served_webhooks(crds, admin) as served:
        served.enroll(crds, cli.namespace)
        wait_until_called(served, crds, cli.namespace)
        for name, template_annotations in variants.items():
            apply(cli.cluster, lookup_deployment(cli, f"{name}-admitted", template_annotations))
    for name in ("plain", "annotated"):
        pod = get(cli.cluster, "deployment", cli.namespace, f"{name}-admitted")["spec"]["template"]["spec"]
        written = {c["name"]: c["image"] for c in pod["initContainers"] + pod["containers"]}
        assert written == {container: image for (which, container), image in predicted.items() if which == name}


# --- history, rollback, resume --------------------------------------------------------------------------------


def test_history_rollback_and_resume_move_triggered_workloads(cli: Cli) -> None:
    first = cli.push("latest")
    cli.imported({"latest": first})
    second = cli.push("latest")
    cli.ok("import-image", "app")
    ref = {d: f"{cli.registry.host}/{cli.repository}@{d}" for d in (first, second)}
    apply(cli.cluster, deployment(cli.namespace, "web", ["web"]))
    cli.ok("set-triggers", "deploy/web", "--from-image=app:latest")
    wait_image(cli, "deployment", "web", "web", ref[second])

    rows = [line.split() for line in cli.ok("history", "app:latest").splitlines()]
    assert rows[0] == ["#", "AGE", "IMAGE", "USED", "BY"]
    assert (rows[1][0], rows[1][2], rows[1][3:]) == ("0", second, ["deployment/web"])
    assert (rows[2][0], rows[2][2], rows[2][3:]) == ("1", first, ["<none>"])

    out = cli.ok("rollback", "app:latest")
    assert out == (
        f"Tag app:latest set to app@{first} (history entry 1).\n"
        f"It no longer follows {cli.pull_spec('latest')}. To follow {cli.pull_spec('latest')} again, run:\n"
        "  kubectl imagestream resume app:latest\n"
        "or:\n"
        f"  kubectl imagestream tag --source=docker --insecure {cli.pull_spec('latest')} app:latest\n"
    )
    tag = cli.spec_tag("latest")
    assert tag["from"] == {"kind": "ImageStreamImage", "name": f"app@{first}"}
    saved = json.loads(tag["annotations"]["imagestreams.dev/rolled-back-from"])
    assert saved == {
        "from": {"kind": "DockerImage", "name": cli.pull_spec("latest")},
        "importPolicy": {"insecure": True},
    }
    wait_image(cli, "deployment", "web", "web", ref[first])
    history = json.loads(cli.ok("history", "app:latest", "-o", "json"))
    assert (history["items"][0]["image"], history["items"][0]["usedBy"]) == (first, ["deployment/web"])
    assert history["rolledBackFrom"] == saved
    assert "kubectl imagestream resume app:latest" in cli.ok("history", "app:latest")

    assert cli.fails("rollback", "app:latest", "--to", "7").startswith("error: app:latest has history entries 0 to ")
    assert cli.fails("rollback", "app:latest", "--to", "sha256:0000") == (
        'error: no entry in the history of app:latest has the image "sha256:0000"\n'
    )
    assert cli.fails("rollback", "app:nope") == 'error: imagestreamtags.image.openshift.io "app:nope" not found\n'
    assert cli.fails("history", "app:nope") == 'error: imagestreamtags.image.openshift.io "app:nope" not found\n'

    assert cli.ok("resume", "app:latest") == f"Tag app:latest follows {cli.pull_spec('latest')} again.\n"
    assert cli.spec_tag("latest") == {
        "name": "latest",
        "from": {"kind": "DockerImage", "name": cli.pull_spec("latest")},
        "importPolicy": {"insecure": True},
    }
    wait_image(cli, "deployment", "web", "web", ref[second])
    assert cli.fails("resume", "app:latest").startswith("error: app:latest is not pinned by a rollback")


def test_rollback_to_a_digest_with_yaml_output(cli: Cli) -> None:
    first = cli.push("v1")
    cli.imported({"v1": first})
    second = cli.push("v1")
    cli.ok("import-image", "app:v1")
    body = yaml.safe_load(cli.ok("rollback", "app:v1", "--to", first[:15], "-o", "yaml"))
    pinned = next(t for t in body["spec"]["tags"] if t["name"] == "v1")
    assert pinned["from"]["name"] == f"app@{first}"
    assert "managedFields" not in body["metadata"]
    wait_for_tag(cli.cluster, cli.namespace, "app", "v1", image=first)
    assert cli.ok("rollback", "app:v1", "--to", "1", "-o", "name") == "imagestream.image.openshift.io/app\n"
    wait_for_tag(cli.cluster, cli.namespace, "app", "v1", image=second)
    # The second rollback kept the original source, so resume still restores it.
    assert cli.ok("resume", "app:v1") == f"Tag app:v1 follows {cli.pull_spec('v1')} again.\n"


def test_output_names_after_tagging(cli: Cli) -> None:
    cli.push("v1")
    out = cli.ok("tag", "--insecure", cli.pull_spec("v1"), "app:v1", "app:v2", "-o", "name")
    assert out == "imagestream.image.openshift.io/app\nimagestream.image.openshift.io/app\n"


# --- -o jsonpath, describe --show-events, -l, --dry-run (issue 13, item 4) ------------------------------------------


def labelled_stream(cli: Cli, name: str, labels: dict[str, str]) -> None:
    metadata = {"name": name, "namespace": cli.namespace, "labels": labels}
    apply(cli.cluster, {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": metadata})


def resource_version(cli: Cli, kind: str, name: str) -> str:
    version: str = get(cli.cluster, kind, cli.namespace, name)["metadata"]["resourceVersion"]
    return version


def test_jsonpath_output_on_read_and_write_verbs(cli: Cli) -> None:
    first = cli.push("v1")
    cli.imported({"v1": first})
    template = '{range .items[*]}{.image}{" "}{.usedBy}{"\\n"}{end}'
    assert cli.ok("history", "app:v1", "-o", f"jsonpath={template}") == f"{first} []\n"
    written = cli.ok("tag", "app:v1", "app:copy", "-o", 'jsonpath={.spec.tags[?(@.name=="copy")].from.name}')
    assert written == f"app@{first}"
    assert cli.ok("set-image-lookup", "app", "-o", "jsonpath", "--template={.spec.lookupPolicy.local}") == "true"
    as_json = cli.ok("set-image-lookup", "app", "--enabled=false", "-o", "jsonpath-as-json={.metadata.name}")
    assert json.loads(as_json) == ["app"]
    assert cli.fails("history", "app:v1", "-o", "jsonpath={.items[").startswith(
        "error: error parsing jsonpath {.items[, unterminated array"
    )
    assert cli.fails("tag", "-d", "app:copy", "-o", "go-template={{.spec") == (
        "error: error parsing template {{.spec, template: output:1: unclosed action\n"
    )
    assert cli.fails("tag", "-d", "app:copy", "-o", "jsonpath={.spec").startswith("error: error parsing jsonpath")
    assert [t["name"] for t in cli.stream()["spec"]["tags"]] == ["v1", "copy"]  # -o is checked before writing
    missing = cli.fails(
        "rollback", "app:v1", "--to", "0", "-o", "jsonpath={.nope}", "--allow-missing-template-keys=false"
    )
    assert "nope is not found" in missing


def test_go_template_output_on_read_and_write_verbs(cli: Cli) -> None:
    first = cli.push("v1")
    cli.imported({"v1": first})
    template = '{{range .items}}{{.index}} {{.image}} {{len .usedBy}}{{"\\n"}}{{end}}'
    assert cli.ok("history", "app:v1", "-o", f"go-template={template}") == f"0 {first} 0\n"
    written = cli.ok("tag", "app:v1", "app:copy", "-o", "go-template={{(index .spec.tags 1).from.name}}")
    assert written == f"app@{first}"
    assert cli.ok("set-image-lookup", "app", "--template={{.spec.lookupPolicy.local}}") == "true"
    listed = cli.ok("set-image-lookup", "app", "--enabled=false", "-o", "template={{.kind}} {{.metadata.name}}")
    assert listed == "ImageStream app"
    result = cli(
        "rollback", "app:v1", "--to", "0", "-o", "go-template={{.nope}}", "--allow-missing-template-keys=false"
    )
    assert result.status == 1
    assert result.err == (
        'error: error executing template "{{.nope}}": template: output:1:2: executing "output" at <.nope>: '
        'map has no entry for key "nope"\n'
    )
    assert result.out.startswith("Error executing template: template: output:1:2: ")


def test_describe_show_events_lists_the_streams_events(cli: Cli) -> None:
    cli.imported({"v1": cli.push("v1")})
    labelled_stream(cli, "quiet", {"team": "web"})
    uid = cli.stream()["metadata"]["uid"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "app.test-event", "namespace": cli.namespace},
        "involvedObject": {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "name": "app",
            "namespace": cli.namespace,
            "uid": uid,
        },
        "type": "Warning",
        "reason": "ImportFailed",
        "message": "tag v9: the registry said no",
        "source": {"component": "imagestream-operator"},
        "firstTimestamp": "2020-01-01T00:00:00Z",
        "lastTimestamp": "2020-01-02T00:00:00Z",
        "count": 2,
    }
    kubectl(cli.cluster, "create", "-f", "-", stdin=json.dumps(event))
    plain = cli.ok("describe", "is", "app")
    shown = cli.ok("describe", "is", "app", "--show-events")
    layout, events_text = shown[: shown.index("Events:")], shown[shown.index("Events:") :]
    assert normalize(layout, cli) == normalize(plain, cli)  # oc's layout unchanged, the events after it
    events = events_text.splitlines()
    assert events[0] == "Events:"
    assert events[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    row = [cell for cell in next(line for line in events if "ImportFailed" in line).split("\t") if cell]
    assert (row[0], row[1], row[3], row[4]) == (
        "  Warning",
        "ImportFailed",
        "imagestream-operator",
        "tag v9: the registry said no",
    )
    assert re.fullmatch(r"\d+y\d*d? \(x2 over \d+y\d*d?\)", row[2]), row
    quiet = cli.ok("describe", "is", "-l", "team=web", "--show-events")
    assert quiet.startswith("Name:\t\t\tquiet\n") and quiet.endswith("Events:\t<none>\n")


def test_selectors_pick_the_workloads_and_streams(cli: Cli) -> None:
    cli.imported({"v1": cli.push("v1")})
    for name, tier in (("web", "front"), ("api", "front"), ("batch", "back")):
        body = deployment(cli.namespace, name, [name])
        body["metadata"]["labels"] = {"tier": tier}
        apply(cli.cluster, body)
    out = cli.ok("set-triggers", "deploy", "-l", "tier=front", "--from-image=app:v1")
    assert out == "deployment.apps/api triggers updated\ndeployment.apps/web triggers updated\n"
    assert annotation(cli, "deployment", "web") and annotation(cli, "deployment", "api")
    assert annotation(cli, "deployment", "batch") is None
    listed = cli.ok("set", "triggers", "deployments", "-l", "tier in (front)")
    assert [line.split()[:2] for line in listed.splitlines()[1:]] == [
        ["deployments/api", "config"],
        ["deployments/api", "image"],
        ["deployments/web", "config"],
        ["deployments/web", "image"],
    ]
    assert cli.fails("set-triggers", "deploy/web", "-l", "tier=front", "--auto") == (
        "error: name cannot be provided when a selector is specified\n"
    )
    nothing = cli("set-triggers", "deploy", "-l", "tier=nowhere", "--auto")
    assert (nothing.status, nothing.out, nothing.err) == (0, "", f"No resources found in {cli.namespace} namespace.\n")
    # The selector is the API server's to parse, as with kubectl.
    assert cli.fails("set-triggers", "deploy", "-l", "tier==in=(", "--auto") == (
        "error: found '=', expected: ',' or 'end of string'\n"
    )

    labelled_stream(cli, "labelled", {"team": "web"})
    assert cli.ok("set-image-lookup", "-l", "team=web").startswith(
        "imagestream.image.openshift.io/labelled image lookup updated\n\n"
    )
    assert cli.stream("labelled")["spec"]["lookupPolicy"] == {"local": True}
    assert cli.stream()["spec"].get("lookupPolicy", {}).get("local") is not True
    assert table_rows(cli.ok("set-image-lookup", "-l", "team=web", "--list")) == [
        LOOKUP_HEADER,
        [
            "labelled",
            "true",
            "labelled:latest",
            "left: the tag labelled:latest has no image, and the stream has no status.dockerImageRepository",
        ],
    ]
    assert cli.ok("set-image-lookup", "deploy", "-l", "tier=back").startswith(
        "deployment.apps/batch image lookup updated\n\n"
    )
    listed = table_rows(cli.ok("set-image-lookup", "deploy", "-l", "tier", "--list"))
    assert [row[:3] for row in listed] == [
        ["NAME", "LOCAL", "CONTAINER"],
        ["deployments/api", "false", "api"],
        ["deployments/batch", "true", "batch"],
        ["deployments/web", "false", "web"],
    ]


def test_dry_runs_show_the_change_and_write_nothing(cli: Cli) -> None:
    first = cli.push("v1")
    cli.imported({"v1": first})
    second = cli.push("v1")
    cli.ok("import-image", "app:v1")
    apply(cli.cluster, deployment(cli.namespace, "web", ["web"]))
    stream_version = resource_version(cli, "imagestream", "app")
    web_version = resource_version(cli, "deployment", "web")

    def unchanged() -> None:
        assert resource_version(cli, "imagestream", "app") == stream_version
        assert resource_version(cli, "deployment", "web") == web_version
        assert "new" not in kubectl(cli.cluster, "get", "imagestreams", "-n", cli.namespace, "-o", "name")

    for mode in ("client", "server"):
        note = " (dry run)" if mode == "client" else " (server dry run)"
        dry = f"--dry-run={mode}"
        assert cli.ok("tag", cli.pull_spec("v1"), "app:v2", "--insecure", dry) == (
            f"Tag app:v2 set to {cli.pull_spec('v1')}{note}.\n"
        )
        tagged = yaml.safe_load(cli.ok("tag", cli.pull_spec("v1"), "new:v1", dry, "-o", "yaml"))
        assert (tagged["metadata"]["name"], tagged["spec"]["tags"][0]["name"]) == ("new", "v1")
        deleted = yaml.safe_load(cli.ok("tag", "-d", "app:v1", dry, "-o", "yaml"))
        assert deleted["spec"]["tags"] == [] or "tags" not in deleted["spec"]
        assert [t["tag"] for t in deleted["status"].get("tags") or []] == []
        triggered = yaml.safe_load(cli.ok("set-triggers", "deploy/web", "--from-image=app:v1", dry, "-o", "yaml"))
        assert json.loads(triggered["metadata"]["annotations"][TRIGGERS])[0]["from"]["name"] == "app:v1"
        assert cli.ok("set-image-lookup", "app", "deploy/web", dry).startswith(
            f"imagestream.image.openshift.io/app image lookup updated{note}\n"
            f"deployment.apps/web image lookup updated{note}\n\n"
        )
        pinned = yaml.safe_load(cli.ok("rollback", "app:v1", dry, "-o", "yaml"))
        assert pinned["spec"]["tags"][0]["from"] == {"kind": "ImageStreamImage", "name": f"app@{first}"}
        assert cli.ok("rollback", "app:v1", dry).startswith(f"Tag app:v1 set to app@{first} (history entry 1){note}.\n")
        requested = yaml.safe_load(cli.ok("import-image", "app:v1", "--scheduled", dry, "-o", "yaml"))
        assert requested["spec"]["tags"][0]["importPolicy"]["scheduled"] is True
        unchanged()
    assert cli.fails("resume", "app:v1", "--dry-run=client").startswith("error: app:v1 is not pinned by a rollback")
    # Only the server knows the limits of metadata.name: a client dry run shows the object, a server one refuses it.
    long_name = "a" * 300
    assert cli.ok("tag", cli.pull_spec("v1"), f"{long_name}:v1", "--dry-run=client", "-o", "name") == (
        f"imagestream.image.openshift.io/{long_name}\n"
    )
    assert "must be no more than 253 characters" in cli.fails(
        "tag", cli.pull_spec("v1"), f"{long_name}:v1", "--dry-run=server"
    )
    # A bare --dry-run is kubectl's client dry run (import-image keeps oc's meaning: validated by the server).
    assert cli.ok("tag", "--dry-run", "app:v1", "app:x") == f"Tag app:x set to app@{second} (dry run).\n"
    cli.ok("rollback", "app:v1")
    resumed = yaml.safe_load(cli.ok("resume", "app:v1", "--dry-run=server", "-o", "yaml"))
    assert resumed["spec"]["tags"][0]["from"] == {"kind": "DockerImage", "name": cli.pull_spec("v1")}
    assert cli.spec_tag("v1")["from"]["kind"] == "ImageStreamImage"
