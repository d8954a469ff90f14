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
