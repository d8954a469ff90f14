"""Finding the cluster as kubectl does: --kubeconfig, else every file in KUBECONFIG merged, else ~/.kube/config.

kubectl merges the files of a colon-separated KUBECONFIG: for each named cluster, user
and context the first file that defines it wins, and so does the first `current-context`.
Relative file paths in a file are relative to that file, so they are made absolute before
merging. The chosen context becomes a `clientconfig.Connection`, which `transport` turns into a client.
Nothing read from a kubeconfig is ever echoed in a message: it may hold a token.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagestreams.cli.clientconfig import ClusterSettings, Connection, UserSettings, connection_for
from imagestreams.cli.errors import CliError

DEFAULT_NAMESPACE = "default"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_GRAMMAR_TOKEN = re.compile(r"'<[a-z ]+>'|'[^\w\s'\\]'")
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
        command = user["exec"].get("command") if isinstance(user.get("exec"), dict) else None
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
                name = entry.get("name") if isinstance(entry, dict) else None
                if isinstance(name, str) and name and name not in known:
                    merged[section].append(entry)
                    known.add(name)
        named = resolved.get("current-context")
        current = current or (named if isinstance(named, str) else None) or None
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
    """Where to connect, as whom, and the namespace to work in."""

    connection: Connection
    namespace: str


def select(merged: Mapping[str, Any], context: str | None, namespace: str | None) -> tuple[str, str]:
    """The context to use and the namespace: -n, else the context's, else "default"."""
    name = context or merged.get("current-context")
    if not name:
        raise CliError("no context is selected: set current-context in your kubeconfig or pass --context")
    contexts = {entry["name"]: entry.get("context") or {} for entry in merged.get("contexts") or []}
    if name not in contexts or not isinstance(contexts[name], Mapping):
        raise CliError(f"context was not found for specified context: {name}")
    context_namespace = contexts[name].get("namespace")
    if context_namespace is not None and not isinstance(context_namespace, str):
        raise CliError(f'the namespace of context "{name}" must be a string')
    return name, namespace or context_namespace or DEFAULT_NAMESPACE


def _token_or_ellipsis(quoted: re.Match[str]) -> str:
    # Grammar tokens ('<stream end>') and single punctuation marks (',') are kept; anything else quoted may come
    # from the file.
    return quoted.group() if _GRAMMAR_TOKEN.fullmatch(quoted.group()) else "…"


def yaml_problem(error: Exception) -> str:
    """What is wrong with a kubeconfig's YAML, and where, without its text.

    PyYAML's own message quotes the offending line, and its problems quote the tag, anchor or character they
    stumbled on: any of these may be part of a token. Only the line, the column and the problem with its quoted
    parts removed are kept.
    """
    import yaml  # noqa: PLC0415

    if isinstance(error, yaml.MarkedYAMLError):
        problem = _QUOTED.sub(_token_or_ellipsis, error.problem or error.context or "not valid YAML")
        mark = error.problem_mark or error.context_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem
    if isinstance(error, yaml.reader.ReaderError):
        return f"character {error.position + 1}: not a character YAML accepts"
    if isinstance(error, UnicodeDecodeError):
        return f"byte {error.start + 1}: not UTF-8 text"
    return "not valid YAML"


def read_kubeconfig(file: Path) -> Mapping[str, Any] | None:
    """One kubeconfig file parsed; an empty file is None, as kubectl treats it."""
    import yaml  # noqa: PLC0415

    try:
        text = file.read_bytes().decode("utf-8-sig")
        document = yaml.safe_load(text)
    except OSError as error:
        raise CliError(f'error loading config file "{file}": {error.strerror or error}') from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise CliError(f'error loading config file "{file}": {yaml_problem(error)}') from None
    if document is not None and not isinstance(document, dict):
        raise CliError(f'error loading config file "{file}": not a kubeconfig (a mapping was expected)')
    for section, _ in _SECTIONS:
        if document and document.get(section) is not None and not isinstance(document[section], list):
            raise CliError(f'error loading config file "{file}": {section} must be a list')
    return document


def in_cluster(environ: Mapping[str, str], account: Path) -> tuple[Connection, str] | None:
    """The pod's service account, as kubectl's in-cluster config: None outside a pod.

    The namespace is POD_NAMESPACE, else the account's namespace file, else "default".
    """
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token = account / "token"
    if not host or not port or not token.is_file():
        return None
    host = f"[{host}]" if ":" in host else host
    ca = account / "ca.crt"
    cluster = ClusterSettings(
        name="in-cluster", server=f"https://{host}:{port}", certificate_authority=str(ca) if ca.is_file() else None
    )
    namespace = environ.get("POD_NAMESPACE")
    if not namespace:
        with contextlib.suppress(OSError):
            namespace = (account / "namespace").read_text().strip()
    user = UserSettings(name="in-cluster", token_file=str(token))
    return Connection("in-cluster", cluster, user), namespace or DEFAULT_NAMESPACE


def load_target(flag: str | None, context: str | None, namespace: str | None) -> Target:
    """Read the kubeconfig the way kubectl would and pick the context (in-cluster when there is no file)."""
    files = kubeconfig_files(flag, os.environ.get("KUBECONFIG"), Path.home())
    if not files:
        found = in_cluster(os.environ, SERVICE_ACCOUNT)
        if found is None:
            raise CliError("no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config")
        connection, account_namespace = found
        return Target(connection, namespace or account_namespace)
    merged = merge_kubeconfigs([(file, read_kubeconfig(file)) for file in files])
    name, chosen_namespace = select(merged, context, namespace)
    return Target(connection_for(merged, name), chosen_namespace)
