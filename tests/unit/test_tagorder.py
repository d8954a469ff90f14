"""Repository imports take tags in OpenShift's PrioritizeTags order."""

from __future__ import annotations

import pytest

from imagestreams.core.tagorder import prioritize_tags


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([], []),
        (["latest"], ["latest"]),
        # the four groups: latest, minors, full versions, the rest
        (
            ["zeta", "1.0.0", "latest", "2.1", "alpha", "v2.2", "1.10.0", "1.9.3"],
            ["latest", "v2.2", "2.1", "1.10.0", "1.9.3", "1.0.0", "alpha", "zeta"],
        ),
        # a minor ranks above every full version, however new
        (["9.9.9", "1.0"], ["1.0", "9.9.9"]),
        # numbers compare as numbers
        (["1.9", "1.10", "1.2"], ["1.10", "1.9", "1.2"]),
        (["2.0.9", "2.0.10", "10.0.0"], ["10.0.0", "2.0.10", "2.0.9"]),
        # "X.Y-word" is a minor prerelease; identifiers compare as ASCII strings
        (
            ["3.0-rc2", "3.0", "3.0-beta1", "2.9", "3.0-rc10"],
            ["3.0", "3.0-rc2", "3.0-rc10", "3.0-beta1", "2.9"],
        ),
        # semver precedence for full versions (release above its prereleases)
        (
            [
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-alpha.beta",
                "1.0.0-beta",
                "1.0.0-beta.2",
                "1.0.0-beta.11",
                "1.0.0-rc.1",
                "1.0.0",
            ],
            [
                "1.0.0",
                "1.0.0-rc.1",
                "1.0.0-beta.11",
                "1.0.0-beta.2",
                "1.0.0-beta",
                "1.0.0-alpha.beta",
                "1.0.0-alpha.1",
                "1.0.0-alpha",
            ],
        ),
        # numeric identifiers rank below alphanumeric ones
        (["1.0.0-1", "1.0.0-a"], ["1.0.0-a", "1.0.0-1"]),
        # equal versions: the tag without "v" first
        (["v8.0", "8.0.0", "v8.0.0", "8.0"], ["8.0", "v8.0", "8.0.0", "v8.0.0"]),
        (["v4.1-rc1", "4.1-rc1"], ["4.1-rc1", "v4.1-rc1"]),
        # build metadata does not count; ties fall back to lexical order
        (["1.0.0+b", "0.9.0", "1.0.0+a"], ["1.0.0+a", "1.0.0+b", "0.9.0"]),
        (["v1.2.3+build.7", "1.2.4-rc.1+x", "1.2.2"], ["1.2.4-rc.1+x", "v1.2.3+build.7", "1.2.2"]),
        # "latest" only when spelled exactly so
        (["latest-dev", "Latest", "latest"], ["latest", "Latest", "latest-dev"]),
        # duplicates are kept
        (["1.0", "latest", "1.0"], ["latest", "1.0", "1.0"]),
        # uint64 is the limit, as in Go
        (
            ["18446744073709551616.0.0", "18446744073709551615.0.0"],
            ["18446744073709551615.0.0", "18446744073709551616.0.0"],
        ),
    ],
)
def test_prioritize_tags(tags: list[str], expected: list[str]) -> None:
    assert prioritize_tags(tags) == expected


@pytest.mark.parametrize(
    "not_a_version",
    [
        "5",  # bare majors are not a group of their own in current OpenShift
        "v5",
        "V1.2",  # only a lowercase "v" is stripped
        "vv1.2",
        "01.2",  # leading zeros
        "1.02.3",
        "1.2.03",
        "1.2.3-01",
        "1.2.3.4",
        "1.2-rc.1",  # the minor suffix is one word
        "1.2-rc-1",
        "1.2-rc_1",  # a word, but "_" is not allowed in a semver prerelease
        "1.2.3-",
        "1.2.3+",
        "1.2.3-a..b",
        "1.2.3+a_b",
        "1.2.x",
        "\u0661.\u0662",  # Arabic-Indic digits: Go and this module accept ASCII digits only
        "v",
        "",
    ],
)
def test_tags_that_are_not_versions_sort_lexically_after_versions(not_a_version: str) -> None:
    assert prioritize_tags([not_a_version, "zzz", "0.0.1", "0.1"]) == ["0.1", "0.0.1", *sorted([not_a_version, "zzz"])]


def test_accepts_any_iterable_and_leaves_the_input_alone() -> None:
    tags = ["other", "1.0", "latest"]
    assert prioritize_tags(iter(tags)) == ["latest", "1.0", "other"]
    assert prioritize_tags(tag for tag in ("b", "a")) == ["a", "b"]
    assert tags == ["other", "1.0", "latest"]
