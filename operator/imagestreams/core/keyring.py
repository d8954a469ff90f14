# Written here rather than imported: the kubelet's matching rules live in Go only, and no Python package
# reproduces them; they fit in a page.
"""Credentials from pull secrets, matched to an image the way the kubelet's keyring does.

Secrets of type kubernetes.io/dockerconfigjson hold `{"auths": {key: entry}}`; the legacy
kubernetes.io/dockercfg holds the inner map alone. A key is "host", "host:port", a URL such as
"https://index.docker.io/v1/", a wildcard host such as "*.example.com", or any of these with a
path prefix ("quay.io/team"). Passwords and auth strings never appear in reprs or error messages.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from imagestreams.core.jsonlimits import JSONNestingError, load_json
from imagestreams.core.references import normalize_registry_host


class InvalidDockerConfig(ValueError):
    """The secret payload cannot be read; the message names the registry key, never a secret value."""


@dataclass(frozen=True, repr=False)
class Credentials:
    """Basic-auth credentials; the repr never shows the password, so logging one is safe."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<redacted>)"


@dataclass(frozen=True)
class KeyringEntry:
    """One registry key of a docker config and the credentials stored under it."""

    pattern: str
    credentials: Credentials


def parse_dockerconfigjson(data: bytes) -> list[KeyringEntry]:
    """Entries of a kubernetes.io/dockerconfigjson payload; no "auths" means no entries."""
    document = _load_object(data)
    auths = document.get("auths")
    if auths is None:
        return []
    if not isinstance(auths, dict):
        raise InvalidDockerConfig('"auths" must be a JSON object')
    return _entries(auths)


def parse_dockercfg(data: bytes) -> list[KeyringEntry]:
    """Entries of a legacy kubernetes.io/dockercfg payload (the map without the "auths" wrapper)."""
    return _entries(_load_object(data))


def _load_object(data: bytes) -> dict[str, Any]:
    # Errors are raised outside the `except` blocks so that no exception holding the payload
    # (JSONDecodeError.doc, UnicodeDecodeError.object) stays attached as __context__.
    problem = None
    document: Any = None
    try:
        document = load_json(data.decode("utf-8"))
    except UnicodeDecodeError:
        problem = "is not valid UTF-8"
    except json.JSONDecodeError as error:
        problem = f"is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
    except JSONNestingError as error:
        problem = f"is not valid: {error}"
    if problem is not None:
        raise InvalidDockerConfig(f"docker config {problem}")
    if not isinstance(document, dict):
        raise InvalidDockerConfig("docker config must be a JSON object")
    return document


def _entries(auths: Mapping[str, Any]) -> list[KeyringEntry]:
    entries = []
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            raise InvalidDockerConfig(f"entry for {key!r} must be a JSON object")
        credentials = _credentials(key, entry)
        # An entry with neither user nor password (left behind by a credential helper) adds nothing to
        # anonymous access, so it is dropped rather than tried.
        if credentials.username or credentials.password:
            entries.append(KeyringEntry(key, credentials))
    return entries


def _string_field(key: str, entry: Mapping[str, Any], name: str) -> str:
    value = entry.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidDockerConfig(f"{name!r} for {key!r} must be a string")
    return value


def _credentials(key: str, entry: Mapping[str, Any]) -> Credentials:
    username = _string_field(key, entry, "username")
    password = _string_field(key, entry, "password")
    auth = _string_field(key, entry, "auth")
    if not auth:
        return Credentials(username, password)
    # Like the kubelet: a non-empty "auth" wins over "username"/"password", padded or not.
    compact = "".join(auth.split())
    padded = compact if compact.endswith("=") else compact + "=" * (-len(compact) % 4)
    problem = None
    text = ""
    try:
        text = base64.b64decode(padded, validate=True).decode("utf-8")
    except UnicodeDecodeError:
        problem = "does not decode to UTF-8 text"
    except ValueError:  # binascii.Error, or a non-ASCII character in the text
        problem = "is not valid base64"
    if problem is None and ":" not in text:
        problem = "must be base64 of 'username:password'"
    if problem is not None:
        raise InvalidDockerConfig(f"'auth' for {key!r} {problem}")
    username, _, password = text.partition(":")
    return Credentials(username, password)


@dataclass(frozen=True)
class _Location:
    """A key or an image location, reduced to what the kubelet compares: host labels, port, path."""

    host: str
    port: str
    path: str

    @property
    def index_key(self) -> str:
        return self.host + (f":{self.port}" if self.port else "") + self.path


def _split_host_port(host_port: str) -> tuple[str, str] | None:
    if host_port.startswith("["):  # IPv6 literal, with or without a port
        close = host_port.find("]")
        host, rest = host_port[: close + 1], host_port[close + 1 :]
        if close == -1 or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        host, _, port = host_port.partition(":")
    if not host or (port and not (port.isascii() and port.isdigit())):
        return None
    return host.lower(), port


def _parse_key(key: str) -> _Location | None:
    """None for a key the kubelet would ignore (no host, bad port)."""
    rest = key
    for scheme in ("https://", "http://"):
        if rest.lower().startswith(scheme):
            rest = rest[len(scheme) :]
            break
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    authority, slash, path = rest.partition("/")
    path = slash + path
    # The docker client treats "/v1/" and "/v2/" (Registry API prefixes) as the bare host.
    if path.startswith(("/v1/", "/v2/")):
        path = path[3:]
    if path == "/":
        path = ""
    split = _split_host_port(authority.rpartition("@")[2])
    if split is None:
        return None
    host, port = split
    if not port:
        host = normalize_registry_host(host)
    return _Location(host, port, path)


def _label_matches(glob: str, label: str) -> bool:
    """The kubelet matches each DNS label with Go's filepath.Match, where "*" is the wildcard that can reach
    a host ("?" starts a URL query). Matched as filepath.Match does, piece by piece between the stars, left to
    right: linear, where a regular expression of ".*"s backtracks exponentially on a hostile key. A label with
    "[" classes or "\\" escapes only matches itself: the safe side for credentials."""
    if glob == label:
        return True
    if "*" not in glob or "[" in glob or "\\" in glob:
        return False
    first, *middle, last = glob.split("*")
    if not label.startswith(first) or len(label) < len(first) + len(last) or not label.endswith(last):
        return False
    position, end = len(first), len(label) - len(last)
    for piece in middle:
        found = label.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def _matches(key: _Location, target: _Location) -> bool:
    key_labels, target_labels = key.host.split("."), target.host.split(".")
    if key.port != target.port or len(key_labels) != len(target_labels):
        return False
    # Plain string prefix, as in the kubelet: "quay.io/team" also covers "quay.io/team-b/app".
    if not target.path.startswith(key.path):
        return False
    return all(_label_matches(glob, label) for glob, label in zip(key_labels, target_labels, strict=True))


def lookup(entries: Iterable[KeyringEntry], registry_host: str, repository: str) -> list[Credentials]:
    """Credentials whose key matches `registry_host/repository`, most specific first, without repeats.

    Pass the normalised repository ("library/nginx" on Docker Hub) so path keys match as in the
    kubelet. Order is the kubelet's: matching keys sorted in reverse, so "quay.io/team" comes before
    "quay.io" and "registry.example.com" before "*.example.com"; entries under one key keep their order.
    """
    split = _split_host_port(registry_host)
    if split is None:
        return []
    host, port = split
    target = _Location(normalize_registry_host(host) if not port else host, port, f"/{repository}")
    by_key: dict[str, list[Credentials]] = {}
    for entry in entries:
        key = _parse_key(entry.pattern)
        if key is not None and _matches(key, target):
            by_key.setdefault(key.index_key, []).append(entry.credentials)
    found: list[Credentials] = []
    for index_key in sorted(by_key, reverse=True):
        for credentials in by_key[index_key]:
            if credentials not in found:
                found.append(credentials)
    return found
