"""client-go's exec credential protocol (client.authentication.k8s.io v1 and v1beta1), as pure functions.

Written by hand: lightkube, the plugin's client, speaks only v1alpha1/v1beta1, reads only a token, ignores
`expirationTimestamp` and never sets KUBERNETES_EXEC_INFO; the official Python client implements the protocol for
its own urllib3 stack only. The rules follow client-go's `plugin/pkg/client/auth/exec` and `tools/clientcmd`
validation, messages included, so a kubeconfig behaves here as it does for kubectl. Running the plugin is the
transport's job (`imagestreams.cli.transport`); nothing here does I/O.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imagestreams.cli.errors import CliError

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
API_VERSIONS = (V1, V1BETA1)  # v1alpha1 was removed from client-go in Kubernetes 1.24
NEVER, IF_AVAILABLE, ALWAYS = "Never", "IfAvailable", "Always"
INTERACTIVE_MODES = (NEVER, IF_AVAILABLE, ALWAYS)
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class CredentialError(CliError):
    """The plugin could not give credentials; reported as `getting credentials: <message>`, as kubectl does."""


@dataclass(frozen=True)
class ExecPlugin:
    """A user's `exec` entry, validated."""

    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # values may be secrets
    interactive_mode: str = IF_AVAILABLE
    provide_cluster_info: bool = False
    install_hint: str = ""


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin returned: a bearer token, or a client certificate and key (PEM), and when they expire."""

    token: str = field(default="", repr=False)
    client_certificate: str = ""
    client_key: str = field(default="", repr=False)
    expires: datetime.datetime | None = None

    @property
    def client_pair(self) -> tuple[str, str] | None:
        return (self.client_certificate, self.client_key) if self.client_certificate else None


def _quoted(text: str) -> str:
    """Go's %q, which client-go's messages use."""
    return json.dumps(text)


def parse_exec_plugin(user: str, raw: Any) -> ExecPlugin:
    """A user's `exec` entry checked as clientcmd checks it (v1beta1 defaults interactiveMode, v1 requires it)."""
    if not isinstance(raw, Mapping):
        raise CliError(f"exec for {user} must be a mapping")
    command, api_version = raw.get("command"), raw.get("apiVersion")
    if not isinstance(command, str) or not command:
        raise CliError(f"command must be specified for {user} to use exec authentication plugin")
    if not isinstance(api_version, str) or not api_version:
        raise CliError(f"apiVersion must be specified for {user} to use exec authentication plugin")
    if api_version not in API_VERSIONS:
        raise CliError(f"exec plugin: invalid apiVersion {_quoted(api_version)}")
    args = raw.get("args") or []
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise CliError(f"exec args for {user} must be a list of strings")
    variables = raw.get("env") or []
    if not isinstance(variables, list):
        raise CliError(f"exec env for {user} must be a list of names and values")
    env: list[tuple[str, str]] = []
    for variable in variables:
        name = variable.get("name") if isinstance(variable, Mapping) else None
        if not isinstance(name, str) or not name:
            raise CliError(f"env variable name must be specified for {user} to use exec authentication plugin")
        value = variable.get("value")
        env.append((name, "" if value is None else str(value)))
    mode = raw.get("interactiveMode") or (IF_AVAILABLE if api_version == V1BETA1 else "")
    if not mode:
        raise CliError(f"interactiveMode must be specified for {user} to use exec authentication plugin")
    if mode not in INTERACTIVE_MODES:
        raise CliError(f"invalid interactiveMode for {user}: {_quoted(str(mode))}")
    provide = raw.get("provideClusterInfo", False)
    if not isinstance(provide, bool):
        raise CliError(f"provideClusterInfo for {user} must be true or false")
    hint = raw.get("installHint") or ""
    return ExecPlugin(
        command=command,
        api_version=api_version,
        args=tuple(args),
        env=tuple(env),
        interactive_mode=mode,
        provide_cluster_info=provide,
        install_hint=_ANSI_ESCAPE.sub("", str(hint)),
    )


def is_interactive(mode: str, stdin_is_terminal: bool) -> bool:
    """Whether the plugin gets our standard input, by its interactiveMode (client-go's isInteractive)."""
    if mode == ALWAYS and not stdin_is_terminal:
        raise CredentialError("exec plugin cannot support interactive mode: standard input is not a terminal")
    return mode != NEVER and stdin_is_terminal


def exec_info(plugin: ExecPlugin, cluster: Mapping[str, Any] | None, interactive: bool) -> str:
    """The KUBERNETES_EXEC_INFO value: an ExecCredential whose spec has the cluster only with provideClusterInfo."""
    spec: dict[str, Any] = {"interactive": interactive}
    if plugin.provide_cluster_info and cluster is not None:
        spec = {"cluster": dict(cluster), "interactive": interactive}
    document = {"kind": "ExecCredential", "apiVersion": plugin.api_version, "spec": spec}
    return json.dumps(document, separators=(",", ":"))


def _decoding(problem: str) -> CredentialError:
    # Never quote the output: it is a credential.
    return CredentialError(f"decoding stdout: {problem}")


def parse_exec_output(api_version: str, stdout: bytes) -> ExecCredential:
    """The plugin's answer, checked as client-go checks it."""
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError as error:
        raise _decoding(f"invalid JSON at character {error.pos}") from None
    except ValueError:  # not UTF-8
        raise _decoding("not UTF-8 text") from None
    if not isinstance(document, dict):
        raise _decoding("not a JSON object")
    returned = document.get("apiVersion")
    if returned != api_version:
        shown = returned if isinstance(returned, str) else ""
        raise CredentialError(
            f"exec plugin is configured to use API version {api_version}, plugin returned version {shown}"
        )
    if document.get("kind") != "ExecCredential":
        raise _decoding("kind is not ExecCredential")
    status = document.get("status")
    if status is None:
        raise CredentialError("exec plugin didn't return a status field")
    if not isinstance(status, dict):
        raise _decoding("status is not an object")
    token, certificate, key = (status.get(name) or "" for name in ("token", "clientCertificateData", "clientKeyData"))
    for name, value in (("token", token), ("clientCertificateData", certificate), ("clientKeyData", key)):
        if not isinstance(value, str):
            raise _decoding(f"status.{name} is not a string")
    if not token and not certificate and not key:
        raise CredentialError("exec plugin didn't return a token or cert/key pair")
    if bool(certificate) != bool(key):
        raise CredentialError("exec plugin returned only certificate or key, not both")
    return ExecCredential(token, certificate, key, _expiry(status.get("expirationTimestamp")))


def _expiry(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or "T" not in value:
        raise _decoding("status.expirationTimestamp is not an RFC 3339 time")
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise _decoding("status.expirationTimestamp is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise _decoding("status.expirationTimestamp has no time zone")
    return parsed


def is_expired(credential: ExecCredential, now: datetime.datetime) -> bool:
    """client-go's rule: a credential without an expiry lasts as long as the process; one with it, until then."""
    return credential.expires is not None and now > credential.expires
