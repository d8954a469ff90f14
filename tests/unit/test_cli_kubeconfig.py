"""Finding the cluster as kubectl does: --kubeconfig, a merged multi-file KUBECONFIG, ~/.kube/config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestreams.cli.errors import CliError
from imagestreams.cli.kubeconfig import kubeconfig_files, load_target, merge_kubeconfigs, resolve_paths, select


def config(name: str, server: str, *, current: str | None = None, namespace: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": "ca.crt"}}],
        "users": [
            {"name": name, "user": {"client-certificate": "c.crt", "client-key": "/abs/c.key", "tokenFile": "t"}}
        ],
        "contexts": [{"name": name, "context": context}],
    }
    if current:
        document["current-context"] = current
    return document


def test_relative_paths_are_made_relative_to_their_file() -> None:
    resolved = resolve_paths(config("a", "https://a"), Path("/etc/kube/one.yaml"))
    assert resolved["clusters"][0]["cluster"]["certificate-authority"] == "/etc/kube/ca.crt"
    user = resolved["users"][0]["user"]
    assert (user["client-certificate"], user["client-key"], user["tokenFile"]) == (
        "/etc/kube/c.crt",
        "/abs/c.key",
        "/etc/kube/t",
    )
    exec_user = {"users": [{"name": "x", "user": {"exec": {"command": "bin/helper", "apiVersion": "v1"}}}]}
    assert resolve_paths(exec_user, Path("/k/c.yaml"))["users"][0]["user"]["exec"]["command"] == "/k/bin/helper"
    on_path = {"users": [{"name": "x", "user": {"exec": {"command": "gke-auth", "apiVersion": "v1"}}}]}
    assert resolve_paths(on_path, Path("/k/c.yaml"))["users"][0]["user"]["exec"]["command"] == "gke-auth"


def test_the_first_file_wins_for_every_name_and_the_current_context() -> None:
    first = config("shared", "https://first", current="shared")
    second = config("shared", "https://second", current="other")
    second["contexts"].append({"name": "other", "context": {"cluster": "shared"}})
    merged = merge_kubeconfigs([(Path("/a/1"), first), (Path("/b/2"), second), (Path("/c/3"), None)])
    assert [c["cluster"]["server"] for c in merged["clusters"]] == ["https://first"]
    assert [c["name"] for c in merged["contexts"]] == ["shared", "other"]
    assert merged["current-context"] == "shared"
    later = merge_kubeconfigs([(Path("/a/1"), config("x", "https://x")), (Path("/b/2"), second)])
    assert later["current-context"] == "other"


def test_files_come_from_the_flag_the_variable_or_home(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("{}")
    two.write_text("{}")
    assert kubeconfig_files(str(one), f"{two}", tmp_path) == [one]
    with pytest.raises(CliError, match="no such file or directory"):
        kubeconfig_files(str(tmp_path / "missing"), None, tmp_path)
    # Missing and repeated entries of KUBECONFIG are skipped, as kubectl does.
    assert kubeconfig_files(None, f"{tmp_path / 'missing'}:{two}::{one}:{two}", tmp_path) == [two, one]
    assert kubeconfig_files(None, None, tmp_path) == []
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("{}")
    assert kubeconfig_files(None, None, tmp_path) == [tmp_path / ".kube" / "config"]


def test_namespace_comes_from_the_flag_then_the_context() -> None:
    merged = merge_kubeconfigs([(Path("/k"), config("a", "https://a", current="a", namespace="team"))])
    assert select(merged, None, None) == ("a", "team")
    assert select(merged, None, "mine") == ("a", "mine")
    plain = merge_kubeconfigs([(Path("/k"), config("a", "https://a", current="a"))])
    assert select(plain, None, None) == ("a", "default")
    with pytest.raises(CliError, match=r"^context was not found for specified context: zzz$"):
        select(merged, "zzz", None)
    with pytest.raises(CliError, match="no context is selected"):
        select(merge_kubeconfigs([(Path("/k"), config("a", "https://a"))]), None, None)


def test_load_target_merges_kubeconfig_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(yaml.safe_dump(config("a", "https://a:6443")))
    two.write_text(yaml.safe_dump(config("b", "https://b:6443", current="b", namespace="team")))
    monkeypatch.setenv("KUBECONFIG", f"{one}:{two}")
    target = load_target(None, None, None)
    assert (target.config.context_name, target.config.cluster.server, target.namespace) == (
        "b",
        "https://b:6443",
        "team",
    )
    assert target.config.cluster.certificate_auth == str(tmp_path / "ca.crt")
    chosen = load_target(None, "a", None)
    assert (chosen.config.cluster.server, chosen.namespace) == ("https://a:6443", "default")
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [")
    with pytest.raises(CliError, match="cannot read kubeconfig"):
        load_target(str(broken), None, None)


def test_no_kubeconfig_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(CliError, match="no kubeconfig found"):
        load_target(None, None, None)
