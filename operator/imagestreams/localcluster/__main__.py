"""`python -m imagestreams.localcluster up`: run the local cluster and a registry until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from imagestreams.localcluster.binaries import Binaries, MissingBinary
from imagestreams.localcluster.cluster import ClusterSettings, LocalCluster
from imagestreams.localcluster.processes import ProcessFailed
from imagestreams.localcluster.registry import RegistryKind


def _apply_manifests(binaries: Binaries, kubeconfig: Path, directory: Path) -> None:
    manifests = sorted(p for p in directory.glob("*.yaml") if p.is_file()) if directory.is_dir() else []
    if not manifests:
        print(f"  {directory}/: no manifests to apply yet")
        return
    for manifest in manifests:
        subprocess.run(
            [str(binaries.kubectl), f"--kubeconfig={kubeconfig}", "apply", "--server-side", "-f", str(manifest)],
            check=True,
        )


def up(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    kinds = tuple(RegistryKind(kind) for kind in args.registry)
    settings = ClusterSettings(
        workdir=Path(args.workdir) if args.workdir else None, registries=kinds, keep_workdir=args.keep
    )
    try:
        binaries = Binaries.locate()
    except MissingBinary as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    cluster = LocalCluster(settings, binaries)
    print("starting etcd, kube-apiserver, kube-controller-manager and registries on 127.0.0.1 ...", flush=True)
    try:
        cluster.start()
    except ProcessFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        print(f"local cluster {cluster.timings.summary()}")
        for directory in args.apply:
            _apply_manifests(binaries, cluster.admin_kubeconfig, Path(directory))
        env_file = cluster.workdir / "env.sh"
        lines = [f"export KUBECONFIG={cluster.admin_kubeconfig}"]
        for kind, registry in cluster.registries.items():
            lines.append(f"export IMAGESTREAMS_REGISTRY_{kind.name}={registry.host}")
        env_file.write_text("\n".join(lines) + "\n")
        print()
        print(f"  KUBECONFIG={cluster.admin_kubeconfig}")
        print(f"  kubectl:   {binaries.kubectl}  (Kubernetes {binaries.kubernetes_version})")
        for kind, registry in cluster.registries.items():
            extra = f", CA {registry.ca_file}" if registry.ca_file else ""
            print(f"  registry ({kind.value}): {registry.host}  ({registry.url}{extra})")
        print(f"  logs:      {cluster.workdir / 'logs'}")
        print(f"  shell:     source {env_file}")
        print("\nrunning; press Ctrl-C to stop and clean up", flush=True)
        while not stop.is_set():
            for process in cluster.processes:
                if not process.running():
                    print(f"error: {process.name} exited; see {process.log_path}", file=sys.stderr)
                    return 1
            stop.wait(1.0)
        return 0
    finally:
        print("\nstopping ...", flush=True)
        started = time.monotonic()
        cluster.stop()
        print(f"stopped in {time.monotonic() - started:.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagestreams-localcluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start the local cluster and registries; stop on Ctrl-C")
    up_parser.add_argument(
        "--registry",
        action="append",
        choices=[k.value for k in RegistryKind],
        help="registry variant to run (repeatable; default: plain)",
    )
    up_parser.add_argument(
        "--apply",
        action="append",
        default=[],
        metavar="DIR",
        help="apply every *.yaml in DIR once the cluster is ready (repeatable)",
    )
    up_parser.add_argument("--workdir", help="keep state and logs here instead of a temporary directory")
    up_parser.add_argument("--keep", action="store_true", help="do not delete the temporary directory on exit")
    args = parser.parse_args(argv)
    args.registry = args.registry or [RegistryKind.PLAIN.value]
    return up(args)


if __name__ == "__main__":
    sys.exit(main())
