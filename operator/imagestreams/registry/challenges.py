"""Parse WWW-Authenticate challenges (RFC 9110 §11.6.1) as registries send them.

Values may hold commas inside quotes (`scope="repository:x:pull,push"`), so parameters are read with a
quoted-string grammar, never by splitting on commas.

The header comes from whatever answers on the registry's address, so parsing is linear and bounded:
each pattern is anchored and possessive (no part of a value is scanned twice), and reading stops after
`MAX_CHALLENGES` challenges or `MAX_PARAMETERS` parameters in one challenge. Registries send one or two
challenges with at most five parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_CHALLENGES = 16
MAX_PARAMETERS = 32

# Possessive quantifiers (*+, ++) never give back what they matched: safe here because each is followed
# by a character it cannot match, and they keep a failing match from retrying every split of a long run.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]++"
_QUOTED = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_SCHEME = re.compile(rf"[\s,]*+({_TOKEN})(?=\s|,|$)")
_PARAM = re.compile(rf'[\s,]*+({_TOKEN})\s*+=\s*+({_QUOTED}|(?:[^\s,"=][^\s,"]*+)?)\s*+(?=,|$)')
_TOKEN68 = re.compile(r"\s++([A-Za-z0-9._~+/-]++=*+)\s*+(?=,|$)")
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
    """The challenges in one WWW-Authenticate header value.

    Unparsable trailing text is ignored, and so is everything after MAX_CHALLENGES challenges or after
    MAX_PARAMETERS parameters of one challenge.
    """
    challenges: list[Challenge] = []
    position = 0
    while position < len(header) and len(challenges) < MAX_CHALLENGES:
        scheme = _SCHEME.match(header, position)
        if not scheme:
            break
        position = scheme.end()
        params: dict[str, str] = {}
        token68 = _TOKEN68.match(header, position)
        if token68 and not _PARAM.match(header, position):
            params[""] = token68.group(1)
            position = token68.end()
        read = 0
        while read < MAX_PARAMETERS and (param := _PARAM.match(header, position)):
            params.setdefault(param.group(1).lower(), _unquote(param.group(2)))
            position = param.end()
            read += 1
        challenges.append(Challenge(scheme.group(1).lower(), params))
        if read == MAX_PARAMETERS:
            break  # parameters beyond the limit could be misread as another challenge
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
