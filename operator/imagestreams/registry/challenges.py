"""Parse WWW-Authenticate challenges (RFC 9110 §11.6.1) as registries send them.

Values may hold commas inside quotes (`scope="repository:x:pull,push"`), so parameters are read with a
quoted-string grammar, never by splitting on commas.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME = re.compile(rf"[\s,]*({_TOKEN})(?=\s|,|$)")
_PARAM = re.compile(rf'[\s,]*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|(?:[^\s,"=][^\s,"]*)?)\s*(?=,|$)')
_TOKEN68 = re.compile(r"\s+([A-Za-z0-9._~+/-]+=*)\s*(?=,|$)")
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Challenge:
    """One challenge: a lower-case scheme and its parameters (names lower-cased, values unquoted)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")

    def without_request_params(self) -> Challenge:
        """The challenge as it applies to the whole registry: without the per-request scope and error."""
        kept = {k: v for k, v in self.params.items() if k not in ("scope", "error", "error_description")}
        return Challenge(self.scheme, kept)

    def same_authority(self, other: Challenge | None) -> bool:
        """Whether `other` asks for the same kind of credentials at the same place (ignoring scope and error)."""
        return other is not None and (self.scheme, self.realm, self.service) == (
            other.scheme,
            other.realm,
            other.service,
        )


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _ESCAPE.sub(r"\1", value[1:-1])
    return value


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in one WWW-Authenticate header value; unparsable trailing text is ignored."""
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        scheme = _SCHEME.match(header, position)
        if not scheme:
            break
        position = scheme.end()
        params: dict[str, str] = {}
        token68 = _TOKEN68.match(header, position)
        if token68 and not _PARAM.match(header, position):
            params[""] = token68.group(1)
            position = token68.end()
        while True:
            param = _PARAM.match(header, position)
            if not param:
                break
            params.setdefault(param.group(1).lower(), _unquote(param.group(2)))
            position = param.end()
        challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


def pick_challenge(headers: Iterable[str]) -> Challenge | None:
    """The challenge to answer from all WWW-Authenticate values: Bearer (with a realm) first, then Basic."""
    found = [challenge for header in headers for challenge in parse_challenges(header)]
    for challenge in found:
        if challenge.scheme == "bearer" and challenge.realm:
            return challenge
    for challenge in found:
        if challenge.scheme == "basic":
            return challenge
    return None
