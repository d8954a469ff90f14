"""`make image` for real: build the operator image without Docker, push it, build it again, run it.

The .debs and wheels are cached in ~/.cache/imagestreams/image-inputs (IMAGESTREAMS_CACHE), so only a
machine's first run downloads them (about 35 MB from Debian's mirror and PyPI).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from imagestreams.imagebuild import debian, oci, python
from imagestreams.imagebuild.build import BuildResult, build
from imagestreams.localcluster import Registry
from imagestreams.localcluster.images import PushClient

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return build(output=tmp_path_factory.mktemp("image"))


def _unpack(result: BuildResult, root: Path) -> None:
    for blob in result.image.layers:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.data))) as tar:
            tar.extractall(root, filter="fully_trusted")  # noqa: S202 - the image this test just built


@pytest.mark.timeout(600)
def test_make_image_pushes_the_digest_it_built_and_a_second_build_gives_the_same(
    built: BuildResult, plain_registry: Registry, tmp_path: Path
) -> None:
    repository = "imagestreams/operator-build"
    target = f"{plain_registry.host}/{repository}"
    result = subprocess.run(
        [sys.executable, "-m", "imagestreams.imagebuild", "--output", str(tmp_path), "--push", target],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    digest = (tmp_path / "digest").read_text().strip()
    assert digest == built.digest, "two builds of the same sources differ"
    assert f"pushed   {plain_registry.host}/{repository}:{built.tag}@{digest}" in result.stdout

    with PushClient(plain_registry.url) as client:
        assert client.head_manifest(repository, built.tag).digest == digest
        body, media_type = client.get_manifest(repository, digest)
    assert body == built.image.manifest
    assert media_type == built.image.media_type

    index = json.loads((tmp_path / "oci" / "index.json").read_text())
    assert [entry["digest"] for entry in index["manifests"]] == [digest]
    print(f"\nimage {digest}, {built.compressed_size / 1048576:.1f} MiB compressed, timings {built.timings}")


def test_the_image_is_non_root_labelled_and_its_sbom_lists_what_is_inside(built: BuildResult) -> None:
    config = json.loads(built.image.config.data)
    assert config["config"]["User"] == "65532:65532"
    labels = config["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == built.tag
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    assert labels["org.opencontainers.image.revision"].removesuffix("-dirty") == revision.stdout.strip()

    sbom = json.loads((built.output / "sbom.spdx.json").read_text())
    listed = oci.sbom_packages(sbom)
    assert listed["deb"] == {(p.name, p.version) for p in debian.parse_lock(debian.DEBIAN_LOCK.read_text())}
    locked = python.parse_lock(python.REQUIREMENTS_LOCK.read_text())
    assert listed["pypi"] == {(p.name, p.version) for p in locked} | {("imagestreams", built.tag)}
    assert built.digest.removeprefix("sha256:") in sbom["documentNamespace"]


def test_the_image_holds_exactly_the_sbom_packages_and_runs_the_operator(built: BuildResult, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    _unpack(built, root)
    site_packages = root / "usr/local/lib/python3.11/dist-packages"
    installed = {(p.name, p.version) for p in python.installed_packages(site_packages)}
    sbom = oci.sbom_packages(json.loads((built.output / "sbom.spdx.json").read_text()))
    assert installed == sbom["pypi"]
    status = {path.name for path in (root / "var/lib/dpkg/status.d").iterdir()}
    assert status == {name for name, _ in sbom["deb"]}

    passwd = (root / "etc/passwd").read_text()
    assert "nonroot:x:65532:65532:" in passwd
    if os.geteuid() != 0:
        pytest.fail("running the image's entry point needs chroot (root); the build's own check imports it only")
    chroot = shutil.which("chroot")
    assert chroot is not None, "chroot (coreutils) is missing"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}  # noqa: S108 - the image's
    config = json.loads(built.image.config.data)["config"]
    command = [*config["Entrypoint"], "--help"]
    run = subprocess.run(
        [chroot, "--userspec=65532:65532", str(root), *command], capture_output=True, text=True, env=env, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("usage: imagestream-operator")
    probe = "import ssl, os; print(os.getuid(), len(ssl.create_default_context().get_ca_certs()))"
    run = subprocess.run(
        [chroot, "--userspec=65532:65532", str(root), "/usr/bin/python3", "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    uid, certificates = run.stdout.split()
    assert uid == "65532" and int(certificates) > 100
