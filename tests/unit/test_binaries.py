"""Binary lookup reads the pinned versions and names the fix when something is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagestreams.localcluster.binaries import Binaries, MissingBinary, read_versions


def test_versions_file_pins_each_component() -> None:
    versions = read_versions()
    assert set(versions) >= {"K8S_VERSION", "ETCD_VERSION", "HELM_VERSION"}
    assert all(value.startswith("v") for value in versions.values())


def test_comments_and_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "versions.env"
    path.write_text("# comment\n\nK8S_VERSION=v1.2.3\n  ETCD_VERSION = v3.6.0 \n")
    assert read_versions(path) == {"K8S_VERSION": "v1.2.3", "ETCD_VERSION": "v3.6.0"}


def test_an_empty_cache_is_an_error_that_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTREAMS_CACHE", str(tmp_path))
    with pytest.raises(MissingBinary, match=r"kube-apiserver is missing: run `make setup`"):
        Binaries.locate()
