"""Choose one child of a manifest list or OCI index for Legacy import mode."""

from __future__ import annotations

from collections.abc import Sequence

from imagestreams.registry.models import LINUX_AMD64, ManifestChild, Platform

UNKNOWN = "unknown"


def normalize_variant(architecture: str, variant: str | None) -> str | None:
    """Variants that mean the same CPU compare equal: arm64 "v8" is arm64 without a variant."""
    if not variant:
        return None
    if architecture == "arm64" and variant == "v8":
        return None
    return variant


def platform_matches(child: ManifestChild, wanted: Platform) -> bool:
    """Whether `child` runs on `wanted`; empty os/architecture and a None variant in `wanted` match anything."""
    if wanted.os and child.os != wanted.os:
        return False
    if wanted.architecture and child.architecture != wanted.architecture:
        return False
    if wanted.variant is None:
        return True
    return normalize_variant(child.architecture, child.variant) == normalize_variant(
        wanted.architecture or child.architecture, wanted.variant
    )


def is_runnable(child: ManifestChild) -> bool:
    """False for entries that are not images for a platform (buildx attestations carry unknown/unknown)."""
    return bool(child.os and child.architecture) and UNKNOWN not in (child.os, child.architecture)


def select_child(
    children: Sequence[ManifestChild], preferred: Platform | None, default: Platform | None = None
) -> ManifestChild | None:
    """The child Legacy mode imports: the preferred platform, else `default`, else linux/amd64, else the first.

    "The first" is the first runnable entry, or the very first entry when none is runnable.
    Returns None only for an empty index.
    """
    if not children:
        return None
    candidates = [child for child in children if is_runnable(child)] or list(children)
    for wanted in (preferred, default, LINUX_AMD64):
        if wanted is None:
            continue
        for child in candidates:
            if platform_matches(child, wanted):
                return child
    return candidates[0]
