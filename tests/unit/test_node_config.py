"""The node's configuration files say what the verified recipe needs, and its machine-wide helpers are safe."""

from __future__ import annotations

import gzip
import io
import json
import socket
import tarfile
import tomllib
from pathlib import Path

import pytest

from imagestreams.localcluster.binaries import MissingBinary, NodeBinaries
from imagestreams.localcluster.node import (
    DEDICATED_SCHEDULER,
    DEDICATED_TAINT,
    MACHINE_DIR,
    MachineLock,
    NodePaths,
    _remove_empty_tree,
    cni_conflist,
    containerd_config,
    dedicated_pod_spec,
    kubelet_config,
    program_image,
    registry_hosts_toml,
    scheduler_config,
)
from imagestreams.localcluster.registry import Registry, RegistryKind

PATHS = NodePaths(Path("/w/node"))
BINARIES = NodeBinaries(
    kubelet=Path("/c/kubelet"),
    kube_scheduler=Path("/c/kube-scheduler"),
    containerd=Path("/c/containerd"),
    containerd_shim=Path("/c/containerd-shim-runc-v2"),
    ctr=Path("/c/ctr"),
    pause=Path("/c/pause"),
    runc=Path("/usr/sbin/runc"),
    cni_bin_dir=Path("/usr/lib/cni"),
)


def test_containerd_keeps_its_state_in_the_work_directory_and_restricts_oom_score_adj() -> None:
    config = tomllib.loads(containerd_config(PATHS, BINARIES, "127.0.0.1:5000/imagestreams/pause:v1"))
    assert config["root"].startswith("/w/node/") and config["state"].startswith("/w/node/")
    plugins = config["plugins"]
    runtime = plugins["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["netns_mounts_under_state_dir"] is True
    assert runtime["cni"] == {"bin_dirs": ["/usr/lib/cni"], "conf_dir": str(PATHS.cni_conf), "max_conf_num": 1}
    options = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert options == {"BinaryName": "/usr/sbin/runc", "Root": str(PATHS.runc_root), "SystemdCgroup": False}
    images = plugins["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == "127.0.0.1:5000/imagestreams/pause:v1"
    assert images["registry"]["config_path"] == plugins["io.containerd.transfer.v1.local"]["config_path"]
    assert "io.containerd.nri.v1.nri" in config["disabled_plugins"]
    assert plugins["io.containerd.grpc.v1.cri"]["stream_server_address"] == "127.0.0.1"


def test_runtime_sockets_have_short_paths() -> None:
    config = tomllib.loads(containerd_config(PATHS, BINARIES, "x"))
    assert len(config["plugins"]["io.containerd.shim.v1.manager"]["socket_dir"]) <= 42  # containerd's limit
    assert len(config["ttrpc"]["address"]) < 104
    assert len(str(PATHS.kubelet_root / "pod-resources" / "kubelet.sock.1234567890")) < 104
    assert str(PATHS.socket).startswith(str(MACHINE_DIR))


def test_the_pod_network_has_no_way_out() -> None:
    (bridge,) = cni_conflist(PATHS)["plugins"]
    assert bridge["type"] == "bridge"
    assert bridge["isGateway"] is False and bridge["isDefaultGateway"] is False and bridge["ipMasq"] is False
    assert bridge["ipam"]["routes"] == []
    assert "gateway" not in bridge["ipam"]["ranges"][0][0]
    assert bridge["ipam"]["dataDir"].startswith("/w/node/")


def test_kubelet_settings_for_this_machine() -> None:
    config = kubelet_config(PATHS, Path("/w/pki/client-ca.crt"), 10250, 10248)
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["failSwapOn"] is False and config["makeIPTablesUtilChains"] is False
    assert config["address"] == config["healthzBindAddress"] == "127.0.0.1"
    assert config["readOnlyPort"] == 0
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["authentication"]["x509"]["clientCAFile"] == "/w/pki/client-ca.crt"
    assert config["imageGCHighThresholdPercent"] == 100
    assert all(value.endswith(("%", "Mi")) for value in config["evictionHard"].values())
    assert config["podLogsDir"].startswith("/w/node/")
    assert "registerWithTaints" not in config


def test_a_dedicated_node_runs_only_the_pods_that_ask_for_it() -> None:
    config = kubelet_config(PATHS, Path("ca"), 1, 2, dedicated=True)
    assert config["registerWithTaints"] == [DEDICATED_TAINT]
    spec = dedicated_pod_spec()
    assert spec["schedulerName"] == DEDICATED_SCHEDULER
    (toleration,) = spec["tolerations"]
    assert {k: toleration[k] for k in ("key", "value", "effect")} == DEDICATED_TAINT
    profiles = scheduler_config(Path("admin.yaml"), dedicated=True)["profiles"]
    assert profiles == [{"schedulerName": DEDICATED_SCHEDULER}]
    assert scheduler_config(Path("admin.yaml"), dedicated=False)["profiles"] == [{"schedulerName": "default-scheduler"}]


def _registry(kind: RegistryKind, scheme: str, ca: Path | None) -> Registry:
    return Registry(kind, "127.0.0.1:5000", scheme, ca, None, None, None)


def test_registry_hosts_files() -> None:
    plain = tomllib.loads(registry_hosts_toml(_registry(RegistryKind.PLAIN, "http", None)))
    assert plain == {
        "server": "http://127.0.0.1:5000",
        "host": {"http://127.0.0.1:5000": {"capabilities": ["pull", "resolve"]}},
    }
    tls = tomllib.loads(registry_hosts_toml(_registry(RegistryKind.TLS_BASIC, "https", Path("/w/ca.crt"))))
    assert tls["host"]["https://127.0.0.1:5000"]["ca"] == "/w/ca.crt"


def test_the_program_in_an_image_is_executable(tmp_path: Path) -> None:
    pause = tmp_path / "pause"
    pause.write_bytes(b"\x7fELF not really")
    image = program_image(pause, {"message": b"hi\n"}, ("/message",))
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(image.layers[0].data))) as tar:
        modes = {member.name: member.mode for member in tar.getmembers()}
    assert modes == {"message": 0o644, "pause": 0o755}
    assert json.loads(image.config.data)["config"]["Cmd"] == ["/pause", "/message"]


def test_one_node_per_machine(tmp_path: Path) -> None:
    first, second = MachineLock(tmp_path / "lock"), MachineLock(tmp_path / "lock")
    assert first.acquire()
    try:
        assert not second.acquire()
        assert second.holder().isdigit()
    finally:
        first.release()
    assert second.acquire()
    second.release()


def test_only_directories_and_sockets_are_removed(tmp_path: Path) -> None:
    empty = tmp_path / "kubelet" / "device-plugins"
    empty.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(empty / "kubelet.sock"))
    assert _remove_empty_tree(tmp_path / "kubelet")
    kept = tmp_path / "cni" / "results"
    kept.mkdir(parents=True)
    (kept / "someone-else").write_text("{}")
    assert not _remove_empty_tree(tmp_path / "cni")
    assert (kept / "someone-else").exists()


def test_missing_node_binaries_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTREAMS_CACHE", str(tmp_path))
    with pytest.raises(MissingBinary, match=r"kubelet is missing: run `make setup`"):
        NodeBinaries.locate()
