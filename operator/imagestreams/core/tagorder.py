"""The order in which a repository import takes tags: OpenShift's `PrioritizeTags`.

Checked against openshift/library-go `pkg/image/imageutil/helpers.go` (`prioritizeTag` and the
`Less` of `prioritizedTags`), which the openshift-apiserver importer calls, and against blang/semver
v3's `Parse` and `Compare`, which it uses:

1. "latest";
2. minor versions "X.Y" and "X.Y-word" (one optional lowercase "v" in front), newest first;
3. full semantic versions "X.Y.Z[-pre][+build]" (same "v"), newest first;
4. everything else, lexically.

Within 2 and 3, equal versions put the tag without "v" first.

Remaining uncertainty:
- Go's `sort.Sort` is not stable, so OpenShift leaves the order of tags with equal precedence
  (differing only in build metadata, e.g. "1.0.0+a" and "1.0.0+b") unspecified; here they fall back
  to lexical order so the result is deterministic.
- Older OpenShift releases (origin 3.x) also ranked bare majors ("5", "v5") between "latest" and the
  minors; current library-go does not, and neither does this module: "5" sorts with the rest.
- The importer itself drops duplicates and reads an empty tag as "latest" before ordering; callers
  that want that do it themselves.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

_MINOR = re.compile(r"[0-9]+\.[0-9]+")
# Go's \w is ASCII letters, digits and "_".
_MINOR_WITH_SUFFIX = re.compile(r"([0-9]+\.[0-9]+)-[A-Za-z0-9_]+")
_IDENTIFIER = re.compile(r"[A-Za-z0-9-]+")
_UINT64_MAX = 2**64 - 1

_Comparable = TypeVar("_Comparable", int, str)


class _Rank(IntEnum):
    LATEST = 0
    MINOR = 1
    FULL = 2
    OTHER = 3


@dataclass(frozen=True)
class _Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...]


@dataclass(frozen=True)
class _RankedTag:
    tag: str
    rank: _Rank
    version: _Version | None = None
    prefix: str = ""


def _parse_number(text: str) -> int | None:
    # blang/semver: ASCII digits, no leading zero, fits in uint64.
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        return None
    number = int(text)
    return number if number <= _UINT64_MAX else None


def _parse_semver(text: str) -> _Version | None:
    parts = text.split(".", 2)
    if len(parts) != 3:
        return None
    patch_text, plus, build = parts[2].partition("+")
    patch_text, dash, prerelease_text = patch_text.partition("-")
    major, minor, patch = (_parse_number(part) for part in (parts[0], parts[1], patch_text))
    if major is None or minor is None or patch is None:
        return None
    prerelease: list[int | str] = []
    for identifier in prerelease_text.split(".") if dash else []:
        if identifier.isascii() and identifier.isdigit():
            number = _parse_number(identifier)
            if number is None:
                return None
            prerelease.append(number)
        elif _IDENTIFIER.fullmatch(identifier):
            prerelease.append(identifier)
        else:
            return None
    if plus and not all(_IDENTIFIER.fullmatch(identifier) for identifier in build.split(".")):
        return None
    return _Version(major, minor, patch, tuple(prerelease))


def _rank(tag: str) -> _RankedTag:
    if tag == "latest":
        return _RankedTag(tag, _Rank.LATEST)
    prefix, short = ("v", tag[1:]) if tag.startswith("v") else ("", tag)
    version = _parse_semver(short)
    if version is not None:
        return _RankedTag(tag, _Rank.FULL, version, prefix)
    if _MINOR.fullmatch(short):
        version = _parse_semver(f"{short}.0")
    elif match := _MINOR_WITH_SUFFIX.fullmatch(short):
        version = _parse_semver(short.replace(match[1], f"{match[1]}.0", 1))
    if version is not None:
        return _RankedTag(tag, _Rank.MINOR, version, prefix)
    return _RankedTag(tag, _Rank.OTHER, prefix=prefix)


def _sign(left: _Comparable, right: _Comparable) -> int:
    return (left > right) - (left < right)


def _compare_identifiers(left: int | str, right: int | str) -> int:
    if isinstance(left, int) and isinstance(right, int):
        return _sign(left, right)
    if isinstance(left, str) and isinstance(right, str):
        return _sign(left, right)
    # Numeric identifiers sort below alphanumeric ones.
    return -1 if isinstance(left, int) else 1


def _compare_versions(left: _Version, right: _Version) -> int:
    for a, b in ((left.major, right.major), (left.minor, right.minor), (left.patch, right.patch)):
        if a != b:
            return _sign(a, b)
    if not left.prerelease or not right.prerelease:
        # A release is newer than any of its prereleases.
        return _sign(not left.prerelease, not right.prerelease)
    for a_id, b_id in zip(left.prerelease, right.prerelease, strict=False):
        result = _compare_identifiers(a_id, b_id)
        if result:
            return result
    return _sign(len(left.prerelease), len(right.prerelease))


def _compare(left: _RankedTag, right: _RankedTag) -> int:
    if left.rank != right.rank:
        return _sign(left.rank, right.rank)
    if left.version is not None and right.version is not None:
        newest_first = _compare_versions(right.version, left.version)
        if newest_first:
            return newest_first
        if left.prefix != right.prefix:
            return _sign(left.prefix, right.prefix)
    return _sign(left.tag, right.tag)


def prioritize_tags(tags: Iterable[str]) -> list[str]:
    """The tags in OpenShift's import order (see the module docstring)."""
    ranked = sorted((_rank(tag) for tag in tags), key=functools.cmp_to_key(_compare))
    return [item.tag for item in ranked]
