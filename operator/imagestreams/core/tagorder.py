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

import re
from collections.abc import Iterable

_MINOR = re.compile(r"[0-9]+\.[0-9]+")
# Go's \w is ASCII letters, digits and "_".
_MINOR_WITH_SUFFIX = re.compile(r"([0-9]+\.[0-9]+)-[A-Za-z0-9_]+")
# blang/semver's grammar: MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], dot-separated identifiers of ASCII letters,
# digits and "-". Possessive quantifiers: each stops at a character it cannot match, so nothing is scanned twice.
_IDENTIFIERS = r"[0-9A-Za-z-]++(?:\.[0-9A-Za-z-]++)*+"
_SEMVER = re.compile(rf"([0-9]++)\.([0-9]++)\.([0-9]++)(?:-({_IDENTIFIERS}))?(?:\+{_IDENTIFIERS})?")
_UINT64_MAX = 2**64 - 1
_UINT64_MAX_DIGITS = len(str(_UINT64_MAX))

# The four groups, in import order.
_LATEST, _MINOR_VERSION, _FULL_VERSION, _OTHER = range(4)

# Sort keys put the newest version first, so every part of a version is reversed: numbers negated, and
# identifiers (ASCII) with each character mirrored and a terminator above them all, so that of two
# identifiers where one extends the other, the longer (the newer) comes first.
_MIRRORED = {code: 255 - code for code in range(128)}
_IDENTIFIER_END = "\xff"
_RELEASE = (0,)  # a release is newer than any of its prereleases
_PRERELEASE_END = (2,)  # after every identifier: a prerelease that extends another is the newer
_Key = tuple[object, ...]


def _parse_number(text: str) -> int | None:
    # blang/semver: no leading zero, fits in uint64 (the shape, ASCII digits, is checked by _SEMVER). The length
    # is checked first: a registry can list a tag of thousands of digits, which int() refuses (ValueError).
    if len(text) > _UINT64_MAX_DIGITS or (len(text) > 1 and text[0] == "0"):
        return None
    number = int(text)
    return number if number <= _UINT64_MAX else None


def _newest_first(text: str) -> _Key | None:
    """The sort key of a semantic version, newest first by semver precedence; None when `text` is not one.

    Build metadata is not part of precedence. In a prerelease, numeric identifiers rank below
    alphanumeric ones, numbers compare as numbers and text as ASCII text.
    """
    match = _SEMVER.fullmatch(text)
    if match is None:
        return None
    major, minor, patch = _parse_number(match[1]), _parse_number(match[2]), _parse_number(match[3])
    if major is None or minor is None or patch is None:
        return None
    if not match[4]:
        return (-major, -minor, -patch, _RELEASE)
    identifiers: list[_Key] = []
    for identifier in match[4].split("."):
        if identifier.isdigit():
            number = _parse_number(identifier)
            if number is None:
                return None
            identifiers.append((1, -number))
        else:
            identifiers.append((0, identifier.translate(_MIRRORED) + _IDENTIFIER_END))
    return (-major, -minor, -patch, (1, *identifiers, _PRERELEASE_END))


def _sort_key(tag: str) -> _Key:
    # Within the version groups, equal versions put the tag without "v" first; then the tag decides.
    if tag == "latest":
        return (_LATEST, (), "", tag)
    prefix, short = ("v", tag[1:]) if tag.startswith("v") else ("", tag)
    if not short[:1].isdigit() or "." not in short:  # most tags: cannot be a version, so no parsing
        return (_OTHER, (), "", tag)
    version = _newest_first(short)
    if version is not None:
        return (_FULL_VERSION, version, prefix, tag)
    if _MINOR.fullmatch(short):
        version = _newest_first(f"{short}.0")
    elif match := _MINOR_WITH_SUFFIX.fullmatch(short):
        version = _newest_first(short.replace(match[1], f"{match[1]}.0", 1))
    if version is not None:
        return (_MINOR_VERSION, version, prefix, tag)
    return (_OTHER, (), "", tag)


def prioritize_tags(tags: Iterable[str]) -> list[str]:
    """The tags in OpenShift's import order (see the module docstring).

    Each tag is read once into a sort key, not once per comparison: a registry can list tens of thousands.
    """
    return sorted(tags, key=_sort_key)
