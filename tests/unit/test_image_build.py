"""The operator image's pure parts: reproducible layers, its documents, the SBOM, the lock files and the Dockerfile."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shlex
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from imagestreams.imagebuild import build, debian, oci, python
from imagestreams.imagebuild.__main__ import PushTarget
from imagestreams.imagebuild.layers import (
    Entry,
    Kind,
    LayerConflict,
    Tree,
    clean_path,
    compress,
    tar_bytes,
    tree_from_directory,
)
from imagestreams.localcluster.images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def _sample_entries() -> list[Entry]:
    return [
        Entry.file("usr/bin/tool", b"#!/bin/sh\n", mode=0o755, mtime=5),
        Entry.file("etc/passwd", b"root:x:0:0::/root:/sbin/nologin\n"),
        Entry.symlink("usr/bin/alias", "tool"),
        Entry.directory("tmp", mode=0o1777),
    ]


# --- layers -------------------------------------------------------------------------------------------------


def test_a_layer_is_the_same_bytes_whatever_the_order_entries_were_added() -> None:
    entries = _sample_entries()
    forward, backward = compress(Tree(entries)), compress(Tree(reversed(entries)))
    assert forward == backward
    assert forward.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(forward.compressed)).hexdigest()


def test_layer_entries_are_sorted_with_parents_and_fixed_owners_and_times() -> None:
    members = _members(tar_bytes(Tree(_sample_entries())))
    names = [member.name for member in members]
    assert names == sorted(names) == ["etc", "etc/passwd", "tmp", "usr", "usr/bin", "usr/bin/alias", "usr/bin/tool"]
    assert {(member.uid, member.gid, member.uname, member.gname) for member in members} == {(0, 0, "", "")}
    by_name = {member.name: member for member in members}
    assert by_name["usr/bin/tool"].mtime == 5 and by_name["usr/bin/tool"].mode == 0o755
    assert by_name["etc"].mtime == 0 and by_name["etc"].isdir()
    assert by_name["tmp"].mode == 0o1777
    assert by_name["usr/bin/alias"].issym() and by_name["usr/bin/alias"].linkname == "tool"


def test_gzip_header_holds_no_time_and_no_name() -> None:
    compressed = compress(Tree(_sample_entries())).compressed
    assert compressed[:3] == b"\x1f\x8b\x08"
    assert compressed[3] == 0  # no FNAME, no FEXTRA
    assert compressed[4:8] == b"\0\0\0\0"  # MTIME


def test_a_hard_link_that_sorts_before_its_target_becomes_the_data_holder() -> None:
    tree = Tree(
        [
            Entry.file("usr/bin/z-real", b"binary", mode=0o755),
            Entry("usr/bin/a-link", Kind.HARDLINK, 0o755, target="usr/bin/z-real"),
        ]
    )
    members = {member.name: member for member in _members(tar_bytes(tree))}
    assert members["usr/bin/a-link"].isreg() and members["usr/bin/a-link"].size == len(b"binary")
    assert members["usr/bin/z-real"].islnk() and members["usr/bin/z-real"].linkname == "usr/bin/a-link"


def test_two_sources_of_one_path_must_agree() -> None:
    tree = Tree([Entry.directory("etc", mode=0o755)])
    tree.add(Entry.directory("etc", mode=0o700))  # directories merge: the first mode stays
    assert tree.get("etc") == Entry.directory("etc", mode=0o755)
    tree.add(Entry.file("etc/a", b"1"))
    tree.add(Entry.file("etc/a", b"1"))
    with pytest.raises(LayerConflict):
        tree.add(Entry.file("etc/a", b"2"))


def test_paths_are_relative_and_cannot_escape() -> None:
    assert clean_path("./usr//bin/") == clean_path("/usr/bin") == "usr/bin"
    with pytest.raises(ValueError, match="escapes"):
        clean_path("usr/../../etc")


def test_a_directory_becomes_entries_with_normalized_modes(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "mod.py").chmod(0o600)
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "tool").chmod(0o700)
    (tmp_path / "bin").mkdir()
    tree = tree_from_directory(tmp_path, "usr/local/lib", mtime=7, skip=["bin"])
    files = tree.files()
    assert files["usr/local/lib/pkg/mod.py"] == Entry.file("usr/local/lib/pkg/mod.py", b"x = 1\n", mtime=7)
    assert files["usr/local/lib/tool"].mode == 0o755
    assert "usr/local/lib/bin" not in files


# --- image documents -----------------------------------------------------------------------------------------


def _settings() -> oci.ImageSettings:
    return oci.ImageSettings(
        created=1_700_000_000,
        labels={"org.opencontainers.image.version": "1.2.3", "org.opencontainers.image.revision": "abc"},
        entrypoint=("python3", "-m", "imagestreams.controller"),
        cmd=("--log-format=json",),
        env=("PATH=/usr/bin",),
        user="65532:65532",
    )


def test_config_and_manifest_describe_the_layers() -> None:
    layers = [(compress(Tree(_sample_entries())), "base"), (compress(Tree([Entry.file("app", b"1")])), "app")]
    image = oci.image(_settings(), layers)
    manifest = json.loads(image.manifest)
    config = json.loads(image.config.data)
    assert manifest["mediaType"] == image.media_type == OCI_MANIFEST
    config_blob = image.config
    assert manifest["config"] == {"mediaType": OCI_CONFIG, "digest": config_blob.digest, "size": len(config_blob.data)}
    assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER, OCI_LAYER]
    assert [layer["digest"] for layer in manifest["layers"]] == [blob.digest for blob in image.layers]
    assert manifest["annotations"]["org.opencontainers.image.version"] == "1.2.3"
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Entrypoint"] == ["python3", "-m", "imagestreams.controller"]
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer, _ in layers]
    assert [entry["created_by"] for entry in config["history"]] == ["base", "app"]
    assert image.digest == oci.image(_settings(), layers).digest


def test_the_layout_on_disk_is_an_oci_image_layout(tmp_path: Path) -> None:
    image = oci.image(_settings(), [(compress(Tree(_sample_entries())), "base")])
    oci.write_layout(image, tmp_path, "1.2.3")
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    (descriptor,) = json.loads((tmp_path / "index.json").read_text())["manifests"]
    assert descriptor["digest"] == image.digest
    assert descriptor["annotations"][oci.REF_NAME] == "1.2.3"
    for blob in (tmp_path / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_labels_carry_version_revision_time_and_source_when_known() -> None:
    prov = build.Provenance("0.1.0", "f" * 40, 86400, "https://example.org/imagestreams.git")
    labels = build.labels(prov)
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] == "f" * 40
    assert labels["org.opencontainers.image.created"] == "1970-01-02T00:00:00Z"
    assert labels[build.SOURCE_LABEL] == "https://example.org/imagestreams.git"
    assert build.SOURCE_LABEL not in build.labels(build.Provenance("0.1.0", "abc", 0, None))


# --- SBOM ------------------------------------------------------------------------------------------------------


def _sbom() -> dict[str, Any]:
    return oci.sbom(
        name="imagestream-operator",
        version="0.1.0",
        digest="sha256:" + "ab" * 32,
        created=0,
        debian=[debian.DebPackage("libc6", "2.36-9+deb12u14", "amd64", "cd" * 32)],
        python=[python.PyPackage("kopf", "1.45.2", "ef" * 32)],
        project=python.PyPackage("imagestreams", "0.1.0"),
    )


def test_sbom_is_spdx_with_every_package_contained_by_the_image() -> None:
    document = _sbom()
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["dataLicense"] == "CC0-1.0"
    packages = document["packages"]
    ids = [package["SPDXID"] for package in packages]
    assert len(ids) == len(set(ids)) == 4
    relationships = document["relationships"]
    contained = {rel["relatedSpdxElement"] for rel in relationships if rel["relationshipType"] == "CONTAINS"}
    assert contained == set(ids) - {"SPDXRef-image"}
    purls = {ref["referenceLocator"] for package in packages for ref in package.get("externalRefs", [])}
    assert purls == {
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12",
        "pkg:pypi/kopf@1.45.2",
        "pkg:pypi/imagestreams@0.1.0",
    }
    assert oci.sbom_packages(document) == {
        "deb": {("libc6", "2.36-9+deb12u14")},
        "pypi": {("kopf", "1.45.2"), ("imagestreams", "0.1.0")},
    }
    assert oci.canonical_json(document) == oci.canonical_json(_sbom())


# --- lock files ------------------------------------------------------------------------------------------------


def test_debian_lock_pins_python_its_libraries_and_the_ca_bundle() -> None:
    packages = debian.parse_lock(debian.DEBIAN_LOCK.read_text())
    names = {package.name for package in packages}
    assert {"python3.11-minimal", "libpython3.11-stdlib", "libc6", "libssl3", "ca-certificates", "base-files"} <= names
    assert not names & debian.EXCLUDED
    assert all(re.fullmatch(r"[0-9a-f]{64}", package.sha256) for package in packages)
    assert debian.parse_lock(debian.render_lock(packages)) == packages


def test_debian_lock_lines_are_checked() -> None:
    with pytest.raises(debian.DebianError, match="line 1"):
        debian.parse_lock("libc6 2.36\n")
    with pytest.raises(debian.DebianError, match="twice"):
        debian.parse_lock(f"a 1 amd64 {'0' * 64}\na 2 amd64 {'1' * 64}\n")


def test_dependency_fields_parse_to_names() -> None:
    field = "libc6 (>= 2.34), media-types | mime-support, python3:any (>= 3.9), debconf (>= 0.5) | debconf-2.0"
    assert debian.dependency_alternatives(field) == [
        ["libc6"],
        ["media-types", "mime-support"],
        ["python3"],
        ["debconf", "debconf-2.0"],
    ]
    stanza = "Package: a\nDescription: first\n second line\nVersion: 1\n\nPackage: b\n"
    assert debian.parse_control(stanza) == {"Package": "a", "Description": "first\n second line", "Version": "1"}


def test_requirements_lock_covers_every_runtime_dependency_with_one_hash() -> None:
    packages = python.parse_lock(python.REQUIREMENTS_LOCK.read_text())
    names = {package.name for package in packages}
    assert len(names) == len(packages)
    for requirement in python.project_requirements(REPO):
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        assert python.canonical_name(name) in names, requirement
    assert not names & {"pip", "setuptools", "wheel", "pytest", "mypy", "ruff"}
    build_names = {package.name for package in python.parse_lock(python.BUILD_LOCK.read_text())}
    assert build_names == {"pip", "setuptools"}


def test_python_lock_lines_are_checked() -> None:
    assert python.parse_lock(f"Typing_Extensions==4.1 --hash=sha256:{'a' * 64}  # comment\n") == [
        python.PyPackage("typing-extensions", "4.1", "a" * 64)
    ]
    with pytest.raises(python.PythonError, match="line 1"):
        python.parse_lock("kopf>=1.0\n")


def test_console_scripts_are_written_for_the_image_interpreter(tmp_path: Path) -> None:
    info = tmp_path / "imagestreams-0.1.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text(
        "[console_scripts]\nimagestream-operator = imagestreams.controller.__main__:main\n\n[other]\nx = y:z\n"
    )
    scripts = python.entry_point_scripts(tmp_path, "imagestreams", "/usr/bin/python3.11")
    assert list(scripts) == ["imagestream-operator"]
    text = scripts["imagestream-operator"].decode()
    assert text.startswith("#!/usr/bin/python3.11\n")
    assert "from imagestreams.controller.__main__ import main" in text
    compile(text, "imagestream-operator", "exec")


# --- the Dockerfile installs what `make image` installs ----------------------------------------------------------


def _dockerfile_runs() -> list[list[str]]:
    """The shell words of each RUN instruction (continuations joined, `&&` separating commands)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        if line.startswith("RUN "):
            for command in line.removeprefix("RUN ").split("&&"):
                words = shlex.split(command)
                commands.append([word for word in words if not word.startswith("--mount=")])
    return commands


def test_dockerfile_base_is_pinned_by_a_real_digest() -> None:
    text = DOCKERFILE.read_text()
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    match = re.fullmatch(r"python:3\.11-slim-bookworm@sha256:([0-9a-f]{64})", base)
    assert match is not None
    assert len(set(match[1])) > 4  # not a run of one character: a placeholder
    assert match[1] == "2fc9207f64226cb05ac317cee0bab6fa55a9ea311ce5a086baddd4b4a83c2d3c"
    assert re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_no_placeholder_digest_anywhere() -> None:
    placeholder = re.compile(r"sha256:(0{64}|<digest>|x{64})")
    for path in [DOCKERFILE, REPO / "docs" / "install.md", REPO / "helm" / "imagestream-operator" / "values.yaml"]:
        assert not placeholder.search(path.read_text()), path


def test_dockerfile_installs_the_same_python_packages_as_make_image() -> None:
    commands = _dockerfile_runs()
    installs = [words for words in commands if words[:2] == ["pip", "install"]]
    locked_install = next(words for words in installs if "/locks/requirements.lock" in words)
    assert {"--no-deps", "--require-hashes", "-r"} <= set(locked_install)
    project_install = next(words for words in installs if words[-1] == "imagestreams")
    assert {"--no-deps", "--no-index"} <= set(project_install)
    assert [words for words in installs if words not in (locked_install, project_install)] == [
        ["pip", "install", "--no-deps", "--require-hashes", "-r", "/locks/build-requirements.lock"]
    ]
    uninstall = next(words for words in commands if "uninstall" in words)
    removed = set(uninstall[uninstall.index("uninstall") + 1 :]) - {"--yes", "-y"}
    assert removed == {"pip", "setuptools", "wheel"}  # what the base image brings besides Python

    text = DOCKERFILE.read_text()
    mounted = re.search(r"source=(\S+requirements\.lock),target=/locks/requirements\.lock", text)
    assert mounted is not None and REPO / mounted[1] == python.REQUIREMENTS_LOCK
    copied = re.search(r"^COPY (\S+build-requirements\.lock) /locks/$", text, flags=re.MULTILINE)
    assert copied is not None and REPO / copied[1] == python.BUILD_LOCK

    # So the Docker image holds the lock's distributions and the project, as the SBOM of `make image` lists.
    locked = python.parse_lock(python.REQUIREMENTS_LOCK.read_text())
    docker_set = {(p.name, p.version) for p in locked} | {("imagestreams", _project_version())}
    sbom = oci.sbom(
        name=build.IMAGE_NAME,
        version=_project_version(),
        digest="sha256:" + "0f" * 32,
        created=0,
        debian=debian.parse_lock(debian.DEBIAN_LOCK.read_text()),
        python=locked,
        project=python.PyPackage("imagestreams", _project_version()),
    )
    assert oci.sbom_packages(sbom)["pypi"] == docker_set


def _project_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as handle:
        version: str = tomllib.load(handle)["project"]["version"]
    return version


def test_dockerfile_runs_as_make_image_does() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^USER 65532:65532$", text, flags=re.MULTILINE)
    assert re.search(rf"^ARG VERSION={re.escape(_project_version())}$", text, flags=re.MULTILINE)
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", text, flags=re.MULTILINE)
    assert json.loads(entrypoint) == list(build.ENTRYPOINT)
    (cmd,) = re.findall(r"^CMD (.+)$", text, flags=re.MULTILINE)
    assert json.loads(cmd) == list(build.CMD)
    for label in ("version", "revision"):
        assert f"org.opencontainers.image.{label}=" in text
    lock_dir = python.REQUIREMENTS_LOCK.parent.relative_to(REPO).parts[0]
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert f"!{lock_dir}/" in ignored  # the build context has the lock files


# --- push targets ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "expected", "loopback"),
    [
        ("127.0.0.1:5000/imagestreams/operator", PushTarget("127.0.0.1:5000", "imagestreams/operator", None), True),
        ("localhost:5000/op:v1", PushTarget("localhost:5000", "op", "v1"), True),
        ("[::1]:5000/op:v1", PushTarget("[::1]:5000", "op", "v1"), True),
        ("registry.example.org/team/op:0.1.0", PushTarget("registry.example.org", "team/op", "0.1.0"), False),
    ],
)
def test_push_references(reference: str, expected: PushTarget, loopback: bool) -> None:
    assert PushTarget.parse(reference) == expected
    assert expected.is_loopback() is loopback


@pytest.mark.parametrize("reference", ["operator", "docker.io", "team/operator", "host.example/op@sha256:" + "a" * 64])
def test_bad_push_references_are_refused(reference: str) -> None:
    with pytest.raises(ValueError, match=r"expected|digest"):
        PushTarget.parse(reference)
