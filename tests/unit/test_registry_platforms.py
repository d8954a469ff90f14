"""Legacy import mode picks one child: preferred, then the default platform, then linux/amd64, then the first."""

from __future__ import annotations

import pytest

from imagestreams.registry.models import ManifestChild, Platform
from imagestreams.registry.platforms import normalize_variant, platform_matches, select_child


def child(os: str, architecture: str, variant: str | None = None) -> ManifestChild:
    name = f"{os}-{architecture}-{variant}"
    return ManifestChild(f"sha256:{name}", "application/vnd.oci.image.manifest.v1+json", 1, os, architecture, variant)


AMD64 = child("linux", "amd64")
ARM64 = child("linux", "arm64", "v8")
ARMV7 = child("linux", "arm", "v7")
ARMV6 = child("linux", "arm", "v6")
S390X = child("linux", "s390x")
WINDOWS = child("windows", "amd64")
ATTESTATION = child("unknown", "unknown")


@pytest.mark.parametrize(
    ("children", "preferred", "default", "expected"),
    [
        ([AMD64, ARM64, S390X], Platform("linux", "arm64"), None, ARM64),
        ([AMD64, ARMV6, ARMV7], Platform("linux", "arm", "v7"), None, ARMV7),
        ([AMD64, ARMV6, ARMV7], Platform("linux", "arm"), None, ARMV6),  # no variant asked: the first arm
        ([WINDOWS, AMD64], Platform("", "amd64"), None, WINDOWS),  # empty os matches any
        ([WINDOWS, AMD64], Platform("linux", ""), None, AMD64),
        ([AMD64, S390X], Platform("linux", "ppc64le"), Platform("linux", "s390x"), S390X),  # falls to the default
        ([S390X, AMD64], Platform("linux", "ppc64le"), Platform("linux", "riscv64"), AMD64),  # then linux/amd64
        ([S390X, ARM64], Platform("linux", "ppc64le"), None, S390X),  # then the first
        ([S390X, ARM64], None, None, S390X),
        ([ATTESTATION, S390X], None, None, S390X),  # attestations are never "the first"
        ([ATTESTATION], None, None, ATTESTATION),  # unless nothing else exists
        ([AMD64, ARM64], None, Platform("linux", "arm64"), ARM64),
    ],
)
def test_selection_order(
    children: list[ManifestChild], preferred: Platform | None, default: Platform | None, expected: ManifestChild
) -> None:
    assert select_child(children, preferred, default) == expected


def test_empty_index_selects_nothing() -> None:
    assert select_child([], Platform("linux", "amd64")) is None


def test_arm64_v8_equals_arm64_without_variant() -> None:
    assert normalize_variant("arm64", "v8") is None
    assert normalize_variant("arm", "v7") == "v7"
    assert platform_matches(child("linux", "arm64"), Platform("linux", "arm64", "v8"))
    assert platform_matches(ARM64, Platform("linux", "arm64"))
    assert not platform_matches(ARMV6, Platform("linux", "arm", "v7"))
