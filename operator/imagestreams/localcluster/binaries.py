"""Locate the pinned binaries that scripts/build-binaries.sh put in the versioned cache."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
VERSIONS_FILE = REPO_ROOT / "versions.env"
FIX_HINT = "run `make setup` (or scripts/build-binaries.sh) to build it"


class MissingBinary(RuntimeError):
    """A required binary is not where the pinned versions say it should be."""


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse the KEY=VALUE lines of versions.env."""
    if not path.is_file():
        raise MissingBinary(f"{path} not found: the local cluster runs from a checkout of the repository")
    versions: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            versions[key.strip()] = value.strip()
    return versions


def cache_root() -> Path:
    return Path(os.environ.get("IMAGESTREAMS_CACHE", Path.home() / ".cache" / "imagestreams"))


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    etcd: Path
    helm: Path
    docker_registry: Path
    kubernetes_version: str

    @classmethod
    def locate(cls) -> Binaries:
        """Find every binary; raise MissingBinary naming the fix for the first that is missing."""
        versions = read_versions()
        bin_root = cache_root() / "bin"
        k8s = bin_root / f"kubernetes-{versions['K8S_VERSION']}"
        etcd = bin_root / f"etcd-{versions['ETCD_VERSION']}"
        helm = bin_root / f"helm-{versions['HELM_VERSION']}"
        paths = {
            "kube_apiserver": k8s / "kube-apiserver",
            "kube_controller_manager": k8s / "kube-controller-manager",
            "kubectl": k8s / "kubectl",
            "etcd": etcd / "etcd",
            "helm": helm / "helm",
        }
        for path in paths.values():
            if not os.access(path, os.X_OK):
                raise MissingBinary(f"{path} is missing: {FIX_HINT}")
        registry = shutil.which("docker-registry")
        if registry is None:
            raise MissingBinary(
                "docker-registry is not on PATH: run `make setup` (it installs Debian's docker-registry)"
            )
        return cls(
            **paths,
            docker_registry=Path(registry),
            kubernetes_version=versions["K8S_VERSION"],
        )


RUNC_HINT = "run `make setup` (it installs Debian's runc)"
CNI_HINT = "run `make setup` (it installs Debian's containernetworking-plugins)"
# Where Debian's containernetworking-plugins puts bridge, host-local and loopback.
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
CNI_PLUGINS = ("bridge", "host-local", "loopback")


@dataclass(frozen=True)
class NodeBinaries:
    """What a worker node needs beyond the control plane; looked up only when a node is started."""

    kubelet: Path
    kube_scheduler: Path
    containerd: Path
    containerd_shim: Path
    ctr: Path
    pause: Path
    runc: Path
    cni_bin_dir: Path

    @classmethod
    def locate(cls) -> NodeBinaries:
        """Find every node binary; raise MissingBinary naming the fix for the first that is missing."""
        versions = read_versions()
        bin_root = cache_root() / "bin"
        k8s = bin_root / f"kubernetes-{versions['K8S_VERSION']}"
        containerd = bin_root / f"containerd-{versions['CONTAINERD_VERSION']}"
        paths = {
            "kubelet": k8s / "kubelet",
            "kube_scheduler": k8s / "kube-scheduler",
            "containerd": containerd / "containerd",
            "containerd_shim": containerd / "containerd-shim-runc-v2",
            "ctr": containerd / "ctr",
            "pause": bin_root / f"pause-{versions['PAUSE_VERSION']}" / "pause",
        }
        for path in paths.values():
            if not os.access(path, os.X_OK):
                raise MissingBinary(f"{path} is missing: {FIX_HINT}")
        runc = shutil.which("runc", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
        if runc is None:
            raise MissingBinary(f"runc is not on PATH: {RUNC_HINT}")
        cni = next((d for d in CNI_BIN_DIRS if all(os.access(d / p, os.X_OK) for p in CNI_PLUGINS)), None)
        if cni is None:
            where = " or ".join(str(d) for d in CNI_BIN_DIRS)
            raise MissingBinary(f"the CNI plugins {', '.join(CNI_PLUGINS)} are not in {where}: {CNI_HINT}")
        return cls(**paths, runc=Path(runc), cni_bin_dir=cni)
