"""A real local control plane and registries on 127.0.0.1, for tests and `make dev`.

etcd, kube-apiserver and kube-controller-manager come from the versioned binary
cache that scripts/build-binaries.sh fills; the registries are Debian's
docker-registry. Nothing here is a mock: every part is the real server.
"""

from imagestreams.localcluster.cluster import ClusterSettings, LocalCluster
from imagestreams.localcluster.registry import Registry, RegistryKind

__all__ = ["ClusterSettings", "LocalCluster", "Registry", "RegistryKind"]
