"""Finding the cluster as kubectl does: --kubeconfig, else every file in KUBECONFIG merged, else ~/.kube/config.

kubectl merges the files of a colon-separated KUBECONFIG: for each named cluster, user
and context the first file that defines it wins, and so does the first `current-context`.
Relative file paths in a file are relative to that file, so they are made absolute before
merging. lightkube reads a single file, hence the merge here.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagestreams.cli.errors import CliError

DEFAULT_NAMESPACE = "default"
_SECTIONS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))
_CLUSTER_PATHS = ("certificate-authority",)
_USER_PATHS = ("client-certificate", "client-key", "tokenFile")


def _absolute(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value and not os.path.isabs(value):
        return str(base / value)
    return value


def resolve_paths(config: Mapping[str, Any], file: Path) -> dict[str, Any]:
    """A copy of one kubeconfig document with its relative file references made absolute."""
    base = file.parent
    result = copy.deepcopy(dict(config))
    for entry in result.get("clusters") or []:
        cluster = entry.get("cluster") if isinstance(entry, dict) else None
        if isinstance(cluster, dict):
            for key in _CLUSTER_PATHS:
                if key in cluster:
                    cluster[key] = _absolute(cluster[key], base)
    for entry in result.get("users") or []:
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            continue
        for key in _USER_PATHS:
            if key in user:
                user[key] = _absolute(user[key], base)
        command = (user.get("exec") or {}).get("command")
        if isinstance(command, str) and os.sep in command:
            user["exec"]["command"] = _absolute(command, base)
    return result


def merge_kubeconfigs(documents: Sequence[tuple[Path, Mapping[str, Any] | None]]) -> dict[str, Any]:
    """Merge kubeconfig documents in order: the first definition of each name wins, as in kubectl."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [], "users": []}
    current = None
    for file, document in documents:
        if not document:
            continue
        resolved = resolve_paths(document, file)
        for section, _ in _SECTIONS:
            known = {entry.get("name") for entry in merged[section]}
            for entry in resolved.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") and entry["name"] not in known:
                    merged[section].append(entry)
                    known.add(entry["name"])
        current = current or resolved.get("current-context") or None
    if current:
        merged["current-context"] = current
    return merged


def kubeconfig_files(flag: str | None, environment: str | None, home: Path) -> list[Path]:
    """The files to read: the --kubeconfig file, else the existing files of KUBECONFIG, else ~/.kube/config."""
    if flag:
        path = Path(flag).expanduser()
        if not path.is_file():
            raise CliError(f"stat {flag}: no such file or directory")
        return [path]
    if environment:
        files: list[Path] = []
        for part in environment.split(os.pathsep):
            if not part:
                continue
            path = Path(part).expanduser()
            if path.is_file() and path not in files:
                files.append(path)
        return files
    default = home / ".kube" / "config"
    return [default] if default.is_file() else []


@dataclass(frozen=True)
class Target:
    """Where to connect and the namespace to work in."""

    config: Any  # lightkube SingleConfig
    namespace: str


def select(merged: Mapping[str, Any], context: str | None, namespace: str | None) -> tuple[str, str]:
    """The context to use and the namespace: -n, else the context's, else "default"."""
    name = context or merged.get("current-context")
    if not name:
        raise CliError("no context is selected: set current-context in your kubeconfig or pass --context")
    contexts = {entry["name"]: entry.get("context") or {} for entry in merged.get("contexts") or []}
    if name not in contexts:
        raise CliError(f"context was not found for specified context: {name}")
    context_namespace = contexts[name].get("namespace")
    return name, namespace or context_namespace or DEFAULT_NAMESPACE


def load_target(flag: str | None, context: str | None, namespace: str | None) -> Target:
    """Read the kubeconfig the way kubectl would and pick the context (in-cluster when there is no file)."""
    import yaml  # noqa: PLC0415
    from lightkube import ConfigError, KubeConfig  # noqa: PLC0415

    files = kubeconfig_files(flag, os.environ.get("KUBECONFIG"), Path.home())
    if not files:
        try:
            config = KubeConfig.from_service_account().get()
        except (ConfigError, KeyError):
            raise CliError("no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config") from None
        assert config is not None
        return Target(config, namespace or config.namespace)
    documents = []
    for file in files:
        try:
            documents.append((file, yaml.safe_load(file.read_text())))
        except (OSError, yaml.YAMLError) as error:
            raise CliError(f"cannot read kubeconfig {file}: {error}") from None
    merged = merge_kubeconfigs(documents)
    name, chosen_namespace = select(merged, context, namespace)
    try:
        config = KubeConfig.from_dict(merged).get(name)
    except (ConfigError, KeyError) as error:
        raise CliError(f"invalid kubeconfig for context {name}: {error}") from None
    assert config is not None
    if config.user is None:  # kubectl connects anonymously; lightkube insists on a user entry
        from lightkube.config.models import User  # noqa: PLC0415

        config = config._replace(user=User())
    return Target(config, chosen_namespace)
