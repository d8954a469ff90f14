"""`imagestreams-localcluster`: run the local cluster (and the operator with a demo) until Ctrl-C,
SIGTERM or SIGHUP; stop the leftovers of clusters whose owner died; or push a fresh test image."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import FrameType

from imagestreams.localcluster.binaries import Binaries, MissingBinary, NodeBinaries
from imagestreams.localcluster.cluster import ClusterSettings, LocalCluster
from imagestreams.localcluster.images import Image, PushClient, unique_image
from imagestreams.localcluster.node import message_image
from imagestreams.localcluster.processes import ManagedProcess, ProcessFailed, die_with_parent
from imagestreams.localcluster.records import ProcessRecord, Reaped, reap, recorded_clusters
from imagestreams.localcluster.registry import Registry, RegistryKind

DEMO_NAMESPACE = "demo"
DEMO_STREAM = "hello"
DEMO_REPOSITORY = "demo/hello"


def _kubectl(binaries: Binaries, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(binaries.kubectl), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _apply_manifests(binaries: Binaries, kubeconfig: Path, directory: Path) -> None:
    manifests = sorted(p for p in directory.glob("*.yaml") if p.is_file()) if directory.is_dir() else []
    if not manifests:
        print(f"  {directory}/: no manifests to apply")
        return
    for manifest in manifests:
        print(_kubectl(binaries, kubeconfig, "apply", "--server-side", "-f", str(manifest)).strip())
    # kubectl wait fails at once on a CRD whose status has no conditions yet (just applied): retry it.
    deadline = time.monotonic() + 30
    while True:
        try:
            _kubectl(binaries, kubeconfig, "wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _start_operator(cluster: LocalCluster) -> ManagedProcess:
    return cluster.start_operator({"IMAGESTREAMS_SCHEDULED_INTERVAL_SECONDS": "30"})


def _pushable_image(label: str) -> Image:
    """With the node's binaries at hand, an image whose container logs `label` (and a fresh id) and keeps running,
    so pods really start from it; otherwise a one-layer image that only differs in its content."""
    try:
        pause = NodeBinaries.locate().pause
    except MissingBinary:
        return unique_image(label)
    return message_image(pause, f"{label} ({uuid.uuid4().hex[:8]})\n")


def _demo(binaries: Binaries, cluster: LocalCluster, registry: Registry) -> None:
    """Push an image, create a stream that imports it on a schedule, and wait for the first import."""
    with PushClient(registry.url, ca_file=registry.ca_file) as client:
        image = _pushable_image("hello from the demo image, version 1")
        client.push_image(DEMO_REPOSITORY, "latest", image)
    stream = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": DEMO_STREAM, "namespace": DEMO_NAMESPACE},
        "spec": {
            "tags": [
                {
                    "name": "latest",
                    "from": {"kind": "DockerImage", "name": f"{registry.host}/{DEMO_REPOSITORY}:latest"},
                    # The demo registry speaks plain HTTP, which an import must be allowed to use.
                    "importPolicy": {"scheduled": True, "insecure": True},
                }
            ]
        },
    }
    kubeconfig = cluster.admin_kubeconfig
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}}
    _kubectl(binaries, kubeconfig, "apply", "--server-side", "-f", "-", stdin=json.dumps(namespace))
    _kubectl(binaries, kubeconfig, "apply", "--server-side", "-f", "-", stdin=json.dumps(stream))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = _kubectl(
            binaries,
            kubeconfig,
            "get",
            "is",
            DEMO_STREAM,
            "-n",
            DEMO_NAMESPACE,
            "-o",
            "jsonpath={.status.tags[0].items[0].image}",
        )
        if current == image.digest:
            print(
                f"  demo: imagestream {DEMO_NAMESPACE}/{DEMO_STREAM} imported {registry.host}/{DEMO_REPOSITORY}:latest"
            )
            print(f"        as {image.digest}")
            return
        time.sleep(0.5)
    print("  demo: the first import did not finish within 30 s; see the operator log", file=sys.stderr)


class Stop(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP: stop in order. A BaseException, like KeyboardInterrupt, so that no
    `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


def _stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP all mean the same orderly stop; so does the death of our parent.

    The parent is `make dev` or a shell: if it is killed (even by SIGKILL) or the terminal closes,
    the kernel sends SIGTERM here. Under nohup (SIGHUP ignored) the user asked to outlive the
    terminal, so then neither SIGHUP nor the parent's death stops the cluster.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Stop(signum)

    outlive_terminal = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if not outlive_terminal:
        signal.signal(signal.SIGHUP, on_signal)
        die_with_parent(signal.SIGTERM)


def up(args: argparse.Namespace) -> int:
    try:
        _stop_on_signals()
        return _up(args)
    except (Stop, KeyboardInterrupt):
        return 0


def _up(args: argparse.Namespace) -> int:
    kinds = tuple(RegistryKind(kind) for kind in args.registry)
    settings = ClusterSettings(
        workdir=Path(args.workdir) if args.workdir else None, registries=kinds, keep_workdir=args.keep, node=args.node
    )
    binaries = _locate_binaries(node=args.node)
    if binaries is None:
        return 1
    cluster = LocalCluster(settings, binaries)
    parts = "kube-controller-manager, registries and a node (containerd, kubelet, kube-scheduler)"
    parts = parts if args.node else "kube-controller-manager and registries"
    print(f"starting etcd, kube-apiserver, {parts} on 127.0.0.1 ...", flush=True)
    try:
        cluster.start()
    except ProcessFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        for reaped in cluster.reaped:
            _print_reaped(reaped)
    operator: ManagedProcess | None = None
    stopping = "exit"
    try:
        print(f"local cluster {cluster.timings.summary()}")
        for directory in args.apply:
            _apply_manifests(binaries, cluster.admin_kubeconfig, Path(directory))
        if args.operator:
            operator = _start_operator(cluster)
            print(f"  operator running (log: {operator.log_path})")
            if args.demo:
                _demo(binaries, cluster, cluster.registries[kinds[0]])
        _print_usage(binaries, cluster, kinds, demo=bool(args.operator and args.demo))
        return _watch(cluster, operator)
    except (Stop, KeyboardInterrupt) as request:
        stopping = str(request) or "SIGINT"
        return 0
    except (RuntimeError, ProcessFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        # Stop signals are ignored from here on (cluster.stop holds them too): the clean-up runs to its end.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        print(f"\nstopping ({stopping}) ...", flush=True)
        started = time.monotonic()
        if operator is not None:
            operator.stop()
        cluster.stop()
        print(f"stopped in {time.monotonic() - started:.1f}s", flush=True)


def _locate_binaries(*, node: bool) -> Binaries | None:
    """The pinned binaries (the node's too, if asked for), or None after printing what is missing."""
    try:
        binaries = Binaries.locate()
        if node:
            NodeBinaries.locate()
    except MissingBinary as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    return binaries


def _watch(cluster: LocalCluster, operator: ManagedProcess | None) -> int:
    """Until a stop signal: fail as soon as any process of ours exits."""
    while True:
        for process in [*cluster.processes, *([operator] if operator else [])]:
            if not process.running():
                print(f"error: {process.name} exited; see {process.log_path}", file=sys.stderr)
                return 1
        time.sleep(1.0)


def _print_reaped(reaped: Reaped) -> None:
    owner = "its owner was still running and was asked to stop" if reaped.owner_was_running else "its owner had died"
    names = ", ".join(reaped.stopped) if reaped.stopped else "nothing was still running"
    removed = "; removed its temporary directory" if reaped.removed_workdir else ""
    print(f"  cluster {reaped.workdir} ({owner}): stopped {names} in {reaped.seconds:.1f}s{removed}")


def down(args: argparse.Namespace) -> int:
    """Stop recorded clusters: their owner is asked to stop first (SIGTERM), then anything left is stopped."""
    workdirs = [Path(args.workdir)] if args.workdir else recorded_clusters()
    found = 0
    for workdir in workdirs:
        try:
            record = ProcessRecord.read(workdir)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if record is None:
            continue
        found += 1
        _print_reaped(reap(record, stop_owner=True))
    if args.workdir and not found:
        print(f"error: {args.workdir} holds no running cluster (no processes.json)", file=sys.stderr)
        return 1
    if not found:
        print("no local clusters recorded")
    return 0


def _print_usage(binaries: Binaries, cluster: LocalCluster, kinds: tuple[RegistryKind, ...], *, demo: bool) -> None:
    env_file = cluster.workdir / "env.sh"
    lines = [
        f"export KUBECONFIG={cluster.admin_kubeconfig}",
        # The pinned kubectl, and this environment's scripts (kubectl-imagestream makes `kubectl imagestream`).
        f'export PATH="{binaries.kubectl.parent}:{Path(sys.executable).parent}:$PATH"',
    ]
    for kind, registry in cluster.registries.items():
        lines.append(f"export IMAGESTREAMS_REGISTRY_{kind.name}={registry.host}")
    env_file.write_text("\n".join(lines) + "\n")
    print()
    print(f"  KUBECONFIG={cluster.admin_kubeconfig}")
    print(f"  kubectl:   {binaries.kubectl}  (Kubernetes {binaries.kubernetes_version})")
    for kind, registry in cluster.registries.items():
        extra = f", CA {registry.ca_file}" if registry.ca_file else ""
        print(f"  registry ({kind.value}): {registry.host}  ({registry.url}{extra})")
    if cluster.node is not None:
        print(f"  node:      {cluster.node.name} (pods run; sandbox image {cluster.node.sandbox_image})")
    print(f"  logs:      {cluster.workdir / 'logs'}")
    print(f"  shell:     source {env_file}")
    if demo:
        registry = cluster.registries[kinds[0]]
        print()
        print("  try it: push a new image under the tag, ask for an import, and watch the history grow:")
        print(f"    .venv/bin/imagestreams-localcluster push {registry.url}/{DEMO_REPOSITORY}:latest")
        print(
            f"    kubectl annotate is/{DEMO_STREAM} -n {DEMO_NAMESPACE} "
            'imagestreams.dev/import-request="$(date +%s)" --overwrite'
        )
        print(f"    kubectl get is/{DEMO_STREAM} -n {DEMO_NAMESPACE} -o yaml   # status.tags[0].items, newest first")
        print("  (the tag is also re-imported every 30 s on its own: importPolicy.scheduled)")
        if cluster.node is not None:
            print("  and on the node, a Deployment that follows the tag rolls to each new image:")
            print(f"    kubectl create deployment web -n {DEMO_NAMESPACE} --image=placeholder")
            print(
                f"    kubectl imagestream set-triggers deployment/web -n {DEMO_NAMESPACE} "
                f"--from-image={DEMO_STREAM}:latest -c placeholder"
            )
            print(f"    kubectl get pods -n {DEMO_NAMESPACE} -w       # Ctrl-C when the pod runs")
            print(f"    kubectl logs deployment/web -n {DEMO_NAMESPACE}   # the image's text")
    print("\nrunning; press Ctrl-C to stop and clean up", flush=True)


def push(args: argparse.Namespace) -> int:
    """Push a fresh one-layer image to URL/REPOSITORY:TAG and print its digest."""
    target = args.target
    scheme, _, rest = target.partition("://")
    if not rest:
        print("error: give the registry with its scheme, e.g. http://127.0.0.1:5000/demo/hello:latest", file=sys.stderr)
        return 2
    host, _, path = rest.partition("/")
    repository, _, tag = path.rpartition(":")
    if not repository or not tag or "/" in tag:
        print(f"error: {target!r} must be SCHEME://HOST/REPOSITORY:TAG", file=sys.stderr)
        return 2
    image = _pushable_image(args.label)
    with PushClient(
        f"{scheme}://{host}",
        ca_file=Path(args.ca_file) if args.ca_file else None,
        username=args.username,
        password=args.password,
    ) as client:
        digest = client.push_image(repository, tag, image)
    print(f"pushed {host}/{repository}:{tag} as {digest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagestreams-localcluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start the local cluster and registries; stop on Ctrl-C")
    up_parser.add_argument(
        "--registry",
        action="append",
        choices=[k.value for k in RegistryKind],
        help="registry variant to run (repeatable; default: plain); the first one gets the demo",
    )
    up_parser.add_argument(
        "--apply",
        action="append",
        default=[],
        metavar="DIR",
        help="apply every *.yaml in DIR once the cluster is ready (repeatable)",
    )
    up_parser.add_argument(
        "--node", action="store_true", help="run a node too (containerd, kubelet, kube-scheduler): pods run"
    )
    up_parser.add_argument("--operator", action="store_true", help="run the image stream operator too")
    up_parser.add_argument("--demo", action="store_true", help="with --operator: push an image and import it")
    up_parser.add_argument("--workdir", help="keep state and logs here instead of a temporary directory")
    up_parser.add_argument("--keep", action="store_true", help="do not delete the temporary directory on exit")
    down_parser = commands.add_parser(
        "down", help="stop recorded local clusters (all, or one work directory), including leftovers of dead ones"
    )
    down_parser.add_argument("--workdir", help="only the cluster in this work directory")
    push_parser = commands.add_parser("push", help="push a fresh test image, e.g. to make a tag change")
    push_parser.add_argument(
        "target", help="SCHEME://HOST/REPOSITORY:TAG, e.g. http://127.0.0.1:5000/demo/hello:latest"
    )
    push_parser.add_argument("--ca-file", help="CA bundle for an HTTPS registry")
    push_parser.add_argument("--username")
    push_parser.add_argument("--password")
    push_parser.add_argument(
        "--label",
        default="pushed",
        help="text put into the image (its pods log it when the node's binaries are built), for telling images apart",
    )
    args = parser.parse_args(argv)
    if args.command == "push":
        return push(args)
    if args.command == "down":
        return down(args)
    args.registry = args.registry or [RegistryKind.PLAIN.value]
    return up(args)


if __name__ == "__main__":
    sys.exit(main())
