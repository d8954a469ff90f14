"""Every ```sh block of docs/install.md, run as written, in the order of a user's journey, on a fresh cluster.

The blocks are read from the page, never copied here: a block is known by the section it sits in and its place
there, and a block the journey does not know fails `test_every_sh_block_is_run_or_listed_as_the_exception`, so the
page cannot grow a command that nothing runs. Each block runs in bash (`set -euo pipefail`) from the repository's
root, with the pinned kubectl and helm first on PATH and KUBECONFIG naming the cluster; SUBSTITUTIONS is all that
changes in a command. After each block the step asserts what the page says the block does.

The journey needs a cluster of its own: it deletes the CRD (and with it every ImageStream), the shared cluster
roles and namespaces, which the session's cluster shares with every other test, and Helm must find the cluster as a
user's would be, without the CRD and cluster roles the session applies from crds/. So it starts a local cluster with
only the plain registry and an ordinary node (no dedicated scheduler or taint), and stops it at the end.

The Docker block is the one block not run (no Docker engine on these machines, NOT_RUN); its flags are checked
against the Dockerfile and the chart instead.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestreams.localcluster import ClusterSettings, LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.images import PushClient
from tests.conftest import REPO_ROOT, kubectl
from tests.helpers import eventually
from tests.integration.test_helm_e2e import host_network_values
from tests.integration.test_metrics import free_port
from tests.streams import apply_stream, get_stream, insecure_tag, wait_for_tag

DOC = REPO_ROOT / "docs" / "install.md"
CHART = REPO_ROOT / "helm" / "imagestream-operator"
APP_VERSION = str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])
NEXT_VERSION = "0.2.0"  # the version the page's upgrade installs

NAMESPACE = "imagestream-operator"  # the page's release namespace, release and Deployment name
RELEASE = f"app.kubernetes.io/instance={NAMESPACE}"
OPERATOR_SA = f"system:serviceaccount:{NAMESPACE}:{NAMESPACE}"
SHARED_CLUSTER_ROLES = ("system:image-puller", "imagestreams-view", "imagestreams-edit")
CRD = "imagestreams.image.openshift.io"
TEAMS = ("team-a", "team-b")  # the page's namespaces; a user's exist before anything is installed
PLACEHOLDER_REGISTRY = "registry.example.org"
REPOSITORY = "imagestreams/imagestream-operator"  # the page's repository under its registry
POD_TIMEOUT = 120.0


# --- the page's blocks ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    section: str  # the heading it sits under
    index: int  # its place among that section's sh blocks
    line: int  # of its opening fence, for messages
    text: str  # dedented, as a user pastes it

    @property
    def key(self) -> tuple[str, int]:
        return (self.section, self.index)


_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>\S*)\s*$")


def sh_blocks(markdown: str) -> list[Block]:
    """The ```sh blocks of a CommonMark page, each under its nearest heading (a `#` inside a fence is a comment)."""
    blocks: list[Block] = []
    section, counts = "", dict[str, int]()
    fence: re.Match[str] | None = None
    opened, body = 0, list[str]()
    for number, line in enumerate(markdown.splitlines(), start=1):
        if fence is None:
            if heading := _HEADING.match(line):
                section = heading["title"]
            elif opening := _FENCE.match(line):
                fence, opened, body = opening, number, []
            continue
        if _FENCE.match(line) and line.strip() == "```":
            if fence["info"] == "sh":
                index = counts.get(section, 0)
                counts[section] = index + 1
                indent = len(fence["indent"])
                text = "\n".join(row[indent:] if row[:indent].isspace() else row for row in body)
                blocks.append(Block(section, index, opened, text + "\n"))
            fence = None
            continue
        body.append(line)
    assert fence is None, f"docs/install.md:{opened}: a code block is never closed"
    return blocks


def page_blocks() -> dict[tuple[str, int], Block]:
    return {block.key: block for block in sh_blocks(DOC.read_text())}


BUILD = ("Build the image", 0)
DOCKER = ("With a Docker engine", 0)
HELM_INSTALL = ("Install with Helm", 0)
KUBECTL_INSTALL = ("Install with kubectl, without Helm in the cluster", 0)
VERIFY_READY = ("Verify the installation", 0)
VERIFY_ENDPOINTS = ("Verify the installation", 1)
PULL_SECRETS = ("Pull secrets", 0)
NAMESPACED = ("Namespaced mode", 0)
UPGRADE = ("Upgrading", 0)
HELM_UNINSTALL = ("Uninstalling", 0)
REMOVE_EVERYTHING = ("Uninstalling", 1)
KUBECTL_UNINSTALL = ("Uninstalling", 2)

NOT_RUN = {DOCKER: "no Docker engine on these machines: test_the_docker_block_matches_the_dockerfile_and_chart"}


# --- running a block -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Substitution:
    pattern: str
    replacement: str  # may name {registry} and {values}
    why: str


SUBSTITUTIONS = (
    Substitution(
        re.escape(PLACEHOLDER_REGISTRY), "{registry}", "the page's placeholder registry: the test's, on 127.0.0.1"
    ),
    Substitution(
        r"\bhelm (install|upgrade|template) ",
        r"helm \1 --values {values} ",
        "the settings this cluster needs (docs/install.md, 'A cluster without kube-proxy'): host_network_values",
    ),
)


def substitute(text: str, registry: str, values: Path) -> str:
    for rule in SUBSTITUTIONS:
        text = re.sub(rule.pattern, rule.replacement.format(registry=registry, values=values), text)
    return text


@dataclass
class Shell:
    """bash at the repository's root, as a user's terminal: the pinned kubectl and helm on PATH, KUBECONFIG set,
    Helm's own directories empty."""

    cluster: LocalCluster
    home: Path
    values: Path = field(init=False)
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        binaries = self.cluster.binaries
        assert binaries is not None
        bin_dir = self.home / "bin"
        bin_dir.mkdir(parents=True)
        for tool in (binaries.kubectl, binaries.helm):
            (bin_dir / tool.name).symlink_to(tool)
        self.values = self.home / "harness-values.yaml"
        self.values.write_text(yaml.safe_dump(host_network_values(self.cluster, free_port())))
        helm_homes = {
            f"HELM_{kind}_HOME": str(self.home / "helm" / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")
        }
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "KUBECONFIG": str(self.cluster.admin_kubeconfig),
            **helm_homes,
        }

    def run(self, block: Block, timeout: float = 600) -> str:
        """The block with SUBSTITUTIONS applied; its stdout, or an AssertionError with everything it printed."""
        script = substitute(block.text, self.registry.host, self.values)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"docs/install.md:{block.line} ({block.section}) failed with {done.returncode}:\n{script}\n"
                f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            )
        return done.stdout

    def helm(self, *args: str) -> str:
        assert self.cluster.binaries is not None
        helm = str(self.cluster.binaries.helm)
        done = subprocess.run([helm, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
        return done.stdout

    @property
    def registry(self) -> Registry:
        return self.cluster.registries[RegistryKind.PLAIN]


# --- what the steps look at -------------------------------------------------------------------------------------


def get_json(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kubectl(cluster, "get", *args, "-o", "json"))
    return found


def exists(cluster: LocalCluster, *args: str) -> bool:
    return kubectl(cluster, "get", *args, "-o", "name", "--ignore-not-found").strip() != ""


def can_i(cluster: LocalCluster, *args: str) -> str:
    """`kubectl auth can-i` as the operator's ServiceAccount: yes or no."""
    return kubectl(cluster, "auth", "can-i", *args, f"--as={OPERATOR_SA}", check=False).strip().splitlines()[0]


def labelled_with_release(cluster: LocalCluster) -> list[str]:
    """Every object labelled with the release, cluster-wide and in every namespace (events aside)."""
    kinds = [
        kind
        for kind in kubectl(cluster, "api-resources", "--verbs=list", "-o", "name").split()
        if kind not in ("events", "events.events.k8s.io")
    ]
    return kubectl(cluster, "get", ",".join(kinds), "-A", "-l", RELEASE, "-o", "name").split()


def operator_pods(cluster: LocalCluster) -> list[dict[str, Any]]:
    pods = get_json(cluster, "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=imagestream-operator")["items"]
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def the_ready_pod(cluster: LocalCluster, image: str) -> dict[str, Any]:
    """The operator's one pod, once it is Ready and runs `image` (and the pod it replaced has gone)."""

    def probe() -> dict[str, Any] | None:
        pods = operator_pods(cluster)
        if len(pods) == 1 and ready(pods[0]) and pods[0]["spec"]["containers"][0]["image"] == image:
            return pods[0]
        return None

    try:
        return eventually(probe, POD_TIMEOUT, f"one Ready operator pod running {image}")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{kubectl(cluster, 'describe', 'pods', '-n', NAMESPACE)}") from None


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}


def field_managers(cluster: LocalCluster, *args: str) -> set[tuple[str, str]]:
    managed = get_json(cluster, *args, "--show-managed-fields")["metadata"]["managedFields"]
    return {(entry["manager"], entry["operation"]) for entry in managed}


# --- the journey --------------------------------------------------------------------------------------------------


@dataclass
class Journey:
    cluster: LocalCluster
    shell: Shell
    blocks: dict[tuple[str, int], Block]
    digest: str = ""  # of the image `make image` pushed
    tag: str = APP_VERSION  # the tag the release runs
    streams: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name) the operator imported

    def run(self, key: tuple[str, int]) -> str:
        return self.shell.run(self.blocks[key])

    @property
    def image(self) -> str:
        return f"{self.shell.registry.host}/{REPOSITORY}:{self.tag}"


def build_and_push(journey: Journey) -> None:
    """`make image REGISTRY=...` builds the image and pushes it as the project's version, with the digest it
    printed."""
    out = journey.run(BUILD)
    built = re.search(r"^image\s+(sha256:[0-9a-f]{64})$", out, re.MULTILINE)
    assert built, out
    journey.digest = built[1]
    assert f"pushed   {journey.image}@{journey.digest}" in out, out
    with PushClient(journey.shell.registry.url) as client:
        assert client.head_manifest(REPOSITORY, APP_VERSION).digest == journey.digest


def helm_install(journey: Journey) -> None:
    """The release is deployed with what the page's table lists, the CRD from the chart's crds/ included."""
    cluster = journey.cluster
    journey.run(HELM_INSTALL)
    status = json.loads(journey.shell.helm("status", NAMESPACE, "-n", NAMESPACE, "-o", "json"))
    assert status["info"]["status"] == "deployed"
    deployment = get_json(cluster, "deployment", NAMESPACE, "-n", NAMESPACE)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == journey.image
    assert deployment["spec"]["strategy"]["type"] == "Recreate" and deployment["spec"]["replicas"] == 1
    for kind, name in (
        ("serviceaccount", NAMESPACE),
        ("service", f"{NAMESPACE}-metrics"),
        ("clusterrole", NAMESPACE),
        ("clusterrolebinding", NAMESPACE),
        ("clusterrole", f"{NAMESPACE}-pull-secrets"),
        *(("clusterrole", role) for role in SHARED_CLUSTER_ROLES),
    ):
        labels = get_json(cluster, kind, name, "-n", NAMESPACE)["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == NAMESPACE, (kind, name)
    assert exists(cluster, "crd", CRD)


def ready_and_running(journey: Journey) -> None:
    """`rollout status` returns once the pod is Ready and `get pods` shows it 1/1 Running, on the built image."""
    out = journey.run(VERIFY_READY)
    assert f'deployment "{NAMESPACE}" successfully rolled out' in out, out
    (row,) = [line.split() for line in out.splitlines() if line.startswith(f"{NAMESPACE}-")]
    assert row[1:3] == ["1/1", "Running"], out
    pod = the_ready_pod(journey.cluster, journey.image)
    assert pod["metadata"]["name"] == row[0]
    assert pod["status"]["containerStatuses"][0]["imageID"].endswith(journey.digest)
    assert journey.cluster.node is not None
    assert pod["spec"]["hostNetwork"] is True and pod["spec"]["nodeName"] == journey.cluster.node.name


def endpoints_answer(journey: Journey) -> None:
    """The probes' answers, then imagestreams_build_info with the chart's version: the page's example output."""
    lines = journey.run(VERIFY_ENDPOINTS).splitlines()
    # The example is the plain block right after this one.
    after = DOC.read_text().split(journey.blocks[VERIFY_ENDPOINTS].text, 1)[1]
    shown = after.split("```\n")[2].splitlines()
    assert len(lines) == len(shown) == 3, (lines, shown)
    for line, example in zip(lines, shown, strict=True):
        assert re.fullmatch(example_pattern(example), line), (line, example)
    assert f'version="{APP_VERSION}"' in lines[2], lines


def example_pattern(example: str) -> str:
    """A line of example output as a pattern: `…` stands for any text, and the number of watch streams for any
    number (it depends on the watched namespaces)."""
    parts = re.split(r"(…|\d+ watch streams)", example)  # the captured separators are kept, at odd indexes
    return "".join(
        re.escape(part) if even else ".+" if part == "…" else r"\d+ watch streams"
        for even, part in zip(itertools.cycle((True, False)), parts)
    )


def helm_uninstall(journey: Journey) -> None:
    """Nothing labelled with the release is left, the shared cluster roles it created neither; the CRD, the
    streams and the namespace stay."""
    cluster = journey.cluster
    journey.run(HELM_UNINSTALL)
    assert journey.shell.helm("list", "--all-namespaces", "--short") == ""
    eventually(lambda: not labelled_with_release(cluster), 60, "no object labelled with the release")
    assert not any(exists(cluster, "clusterrole", role) for role in SHARED_CLUSTER_ROLES)
    assert exists(cluster, "crd", CRD) and exists(cluster, "namespace", NAMESPACE)
    for namespace, name in journey.streams:
        assert get_stream(cluster, namespace, name)["status"]["tags"], "the stream and its status stay"


def remove_everything(journey: Journey) -> None:
    """The CRD, every ImageStream with it, and the namespace are gone (kubectl waits for both)."""
    cluster = journey.cluster
    journey.run(REMOVE_EVERYTHING)
    assert not exists(cluster, "crd", CRD) and not exists(cluster, "namespace", NAMESPACE)
    served = kubectl(cluster, "get", "--raw", "/apis/image.openshift.io", check=False)
    assert "the server could not find the requested resource" in served, served
    journey.streams.clear()


def kubectl_install(journey: Journey) -> None:
    """crds/ and deploy/ applied, the Deployment rendered by helm template and applied by kubectl: no Helm
    release, and the Deployment runs as deploy/'s ServiceAccount."""
    cluster = journey.cluster
    journey.run(KUBECTL_INSTALL)
    assert journey.shell.helm("list", "--all-namespaces", "--short") == ""
    deployment = get_json(cluster, "deployment", NAMESPACE, "-n", NAMESPACE)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == NAMESPACE
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == journey.image
    assert ("kubectl", "Apply") in field_managers(cluster, "deployment", NAMESPACE, "-n", NAMESPACE)
    binding = get_json(cluster, "clusterrolebinding", NAMESPACE)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAMESPACE, "namespace": NAMESPACE}]
    for role in (*SHARED_CLUSTER_ROLES, NAMESPACE, f"{NAMESPACE}-pull-secrets"):
        assert exists(cluster, "clusterrole", role), role
    assert exists(cluster, "crd", CRD)


def pull_secrets_in_one_namespace(journey: Journey) -> None:
    """Before: the operator may list secrets nowhere. After the RoleBinding: in team-a only."""
    cluster = journey.cluster
    assert can_i(cluster, "list", "secrets", "-n", "team-a") == "no"
    journey.run(PULL_SECRETS)
    binding = get_json(cluster, "rolebinding", "imagestream-operator-pull-secrets", "-n", "team-a")
    assert binding["roleRef"]["name"] == f"{NAMESPACE}-pull-secrets"
    assert can_i(cluster, "list", "secrets", "-n", "team-a") == "yes"
    assert can_i(cluster, "list", "secrets", "-n", "team-b") == "no"
    assert can_i(cluster, "list", "secrets", "--all-namespaces") == "no"
    assert can_i(cluster, "get", "secrets", "-n", "team-a") == "no"  # list only


def kubectl_uninstall(journey: Journey) -> None:
    """The Deployment, then everything deploy/ and crds/ made, are gone; a namespace admin's RoleBinding stays."""
    cluster = journey.cluster
    journey.run(KUBECTL_UNINSTALL)
    assert not exists(cluster, "namespace", NAMESPACE) and not exists(cluster, "crd", CRD)
    for role in (*SHARED_CLUSTER_ROLES, NAMESPACE, f"{NAMESPACE}-pull-secrets"):
        assert not exists(cluster, "clusterrole", role), role
    assert not exists(cluster, "clusterrolebinding", NAMESPACE)
    assert exists(cluster, "rolebinding", "imagestream-operator-pull-secrets", "-n", "team-a")


def namespaced_install(journey: Journey) -> None:
    """A Role and RoleBinding in team-a and team-b and no cluster-wide operator role; secrets readable in those two
    namespaces only; the operator imports a stream in team-a."""
    cluster = journey.cluster
    journey.run(NAMESPACED)
    for team in TEAMS:
        assert exists(cluster, "role,rolebinding", NAMESPACE, "-n", team), team
        assert can_i(cluster, "list", "secrets", "-n", team) == "yes"
    assert not exists(cluster, "clusterrole", NAMESPACE)
    assert exists(cluster, "clusterrole", f"{NAMESPACE}-access-reviews")
    assert can_i(cluster, "list", "secrets", "--all-namespaces") == "no"
    rights_in_default = kubectl(cluster, "auth", "can-i", "--list", "-n", "default", f"--as={OPERATOR_SA}")
    assert not re.search(r"^(secrets|deployments\.apps|imagestreams\.image\.openshift\.io) ", rights_in_default, re.M)
    pod = the_ready_pod(cluster, journey.image)
    assert env_of(pod)["IMAGESTREAMS_NAMESPACES"] == "team-a,team-b"
    apply_stream(cluster, "team-a", "operator", [insecure_tag("current", journey.image)])
    wait_for_tag(cluster, "team-a", "operator", "current", image=journey.digest)
    journey.streams.append(("team-a", "operator"))


def upgrade(journey: Journey) -> None:
    """The next version (here the same image pushed under its tag) replaces the pod; the CRD, which Helm made, is
    applied by kubectl only with --force-conflicts, as the page says; --reuse-values keeps the watched namespaces."""
    cluster, registry = journey.cluster, journey.shell.registry
    with PushClient(registry.url) as client:
        manifest, media_type = client.get_manifest(REPOSITORY, APP_VERSION)
        client.push_manifest(REPOSITORY, NEXT_VERSION, manifest, media_type)
    # A new version's CRD differs from the one Helm created: without --force-conflicts kubectl may not take over
    # Helm's fields (a dry run of the chart's CRD with one description changed, as a next version's would be).
    (crd,) = yaml.safe_load_all((CHART / "crds" / f"{CRD}.yaml").read_text())
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] += " Changed."
    changed = json.dumps(crd)
    refused = kubectl(cluster, "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=changed, check=False)
    assert 'conflict with "helm"' in refused and ".spec.versions" in refused, refused
    journey.run(UPGRADE)
    assert ("kubectl", "Apply") in field_managers(cluster, "crd", CRD)
    history = json.loads(journey.shell.helm("history", NAMESPACE, "-n", NAMESPACE, "-o", "json"))
    assert [(entry["revision"], entry["status"]) for entry in history] == [(1, "superseded"), (2, "deployed")]
    journey.tag = NEXT_VERSION
    pod = the_ready_pod(cluster, journey.image)
    assert env_of(pod)["IMAGESTREAMS_NAMESPACES"] == "team-a,team-b"
    assert pod["status"]["containerStatuses"][0]["imageID"].endswith(journey.digest)


Step = Callable[[Journey], None]
JOURNEY: tuple[tuple[tuple[str, int], Step], ...] = (
    (BUILD, build_and_push),
    (HELM_INSTALL, helm_install),
    (VERIFY_READY, ready_and_running),
    (VERIFY_ENDPOINTS, endpoints_answer),
    (HELM_UNINSTALL, helm_uninstall),
    (REMOVE_EVERYTHING, remove_everything),
    (KUBECTL_INSTALL, kubectl_install),
    (VERIFY_READY, ready_and_running),
    (VERIFY_ENDPOINTS, endpoints_answer),
    (PULL_SECRETS, pull_secrets_in_one_namespace),
    (KUBECTL_UNINSTALL, kubectl_uninstall),
    (NAMESPACED, namespaced_install),
    (VERIFY_READY, ready_and_running),
    (UPGRADE, upgrade),
    (VERIFY_ENDPOINTS, endpoints_answer),
    (HELM_UNINSTALL, helm_uninstall),
    (REMOVE_EVERYTHING, remove_everything),
)


# --- the tests ------------------------------------------------------------------------------------------------------


def unaccounted_blocks(markdown: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(blocks of the page that neither JOURNEY runs nor NOT_RUN lists, blocks they name that the page lacks)."""
    on_page = {block.key for block in sh_blocks(markdown)}
    known = {key for key, _ in JOURNEY} | set(NOT_RUN)
    return sorted(on_page - known), sorted(known - on_page)


def test_every_sh_block_is_run_or_listed_as_the_exception() -> None:
    assert not {key for key, _ in JOURNEY} & set(NOT_RUN)
    unknown, missing = unaccounted_blocks(DOC.read_text())
    assert not unknown, f"sh blocks of docs/install.md that no step of JOURNEY runs: {unknown}"
    assert not missing, f"JOURNEY names blocks docs/install.md no longer has: {missing}"


def test_a_block_added_to_the_page_is_caught() -> None:
    page = DOC.read_text()
    added = page.replace("## Pull secrets\n", "## Pull secrets\n\n```sh\nkubectl get secrets -A\n```\n", 1)
    # Blocks are known by their place: the section's own block, now second, is the one left over.
    assert unaccounted_blocks(added) == ([("Pull secrets", 1)], [])
    elsewhere = page.replace("## High availability\n", "## High availability\n\n```sh\nhelm list\n```\n", 1)
    assert unaccounted_blocks(elsewhere) == ([("High availability", 0)], [])


def test_every_substitution_changes_some_block() -> None:
    texts = [block.text for block in page_blocks().values()]
    for rule in SUBSTITUTIONS:
        assert any(re.search(rule.pattern, text) for text in texts), f"unused substitution: {rule.why}"


def test_sh_blocks_are_found_under_their_headings_and_dedented() -> None:
    page = (
        "# A\n```sh\none\n```\n```yaml\nx: 1\n```\n"
        "## B\n- item:\n\n  ```sh\n  # not a heading\n  two \\\n    three\n  ```\n"
    )
    assert sh_blocks(page) == [
        Block("A", 0, 2, "one\n"),
        Block("B", 0, 11, "# not a heading\ntwo \\\n  three\n"),
    ]


def test_the_docker_block_matches_the_dockerfile_and_chart() -> None:
    """Not run here, so checked: its build args are the Dockerfile's ARGs, it builds the repository's root, tags and
    pushes the image the other blocks use under the version the chart, the project and the Dockerfile share, and its
    command substitution runs."""
    text = page_blocks()[DOCKER].text.replace("\\\n", " ")
    build, push = (line.split() for line in text.splitlines() if line.strip())
    assert build[:2] == ["docker", "build"] and push[:2] == ["docker", "push"], text
    dockerfile = (REPO_ROOT / build[-1] / "Dockerfile").read_text()
    declared = dict(re.findall(r"^ARG (\w+)(?:=(\S*))?$", dockerfile, re.MULTILINE))
    build_args = re.findall(r"--build-arg (\w+)=(\$\([^)]*\)|\S+)", text)
    assert build_args and all(name in declared for name, _ in build_args), (build_args, sorted(declared))
    for _, value in build_args:
        for command in re.findall(r"\$\((.+?)\)", value):
            out = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
            assert out.stdout.strip(), command
    image = build[build.index("-t") + 1]
    assert push[2:] == [image]
    project_version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image == f"{PLACEHOLDER_REGISTRY}/{REPOSITORY}:{APP_VERSION}"
    assert APP_VERSION == project_version == declared["VERSION"]
    assert f"REGISTRY={PLACEHOLDER_REGISTRY}/{REPOSITORY} " in page_blocks()[BUILD].text


@pytest.fixture(scope="module")
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of this module's own, as a user's: nothing applied, one ordinary node, the plain registry."""
    settings = ClusterSettings(
        workdir=tmp_path_factory.mktemp("install-doc-cluster"), registries=(RegistryKind.PLAIN,), node=True
    )
    cluster = LocalCluster(settings).start()
    print(f"\ninstall-doc cluster {cluster.timings.summary()}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.timeout(1200)
def test_install_md_from_build_to_removal(fresh_cluster: LocalCluster, tmp_path: Path) -> None:
    cluster = fresh_cluster
    for team in TEAMS:
        kubectl(cluster, "create", "namespace", team)
    journey = Journey(cluster, Shell(cluster, tmp_path), page_blocks())
    timings: list[tuple[str, float]] = []
    started = time.monotonic()
    for key, step in JOURNEY:
        step_started = time.monotonic()
        try:
            step(journey)
        except BaseException:
            log = cluster.workdir / "logs"
            print(f"failed at {step.__name__} ({key}); cluster logs in {log}")
            raise
        timings.append((f"{step.__name__} ({key[0]} #{key[1]})", time.monotonic() - step_started))
    timings.append(("whole journey", time.monotonic() - started))
    print("\n" + "\n".join(f"{what}: {seconds:.1f}s" for what, seconds in timings))
