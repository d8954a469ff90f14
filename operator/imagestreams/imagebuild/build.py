"""Build the operator image from the lock files, without a container engine, and push it.

Three layers, lowest first: the Debian base (packages of debian.lock, the non-root user, the CA bundle,
the standard library's bytecode), the dependencies (requirements.lock), and the project. Every byte is a
function of the lock files, the project's sources and SOURCE_DATE_EPOCH: the same inputs give the same
digest. Bytecode is compiled by the image's own interpreter (run on the builder through the image's
dynamic loader) as checked-hash .pyc files, so it holds no timestamps and no builder paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from imagestreams.imagebuild import debian, oci, python
from imagestreams.imagebuild.layers import Entry, Layer, Tree, compress, materialize, tree_from_directory
from imagestreams.localcluster.images import Image

REPO_ROOT = Path(__file__).resolve().parents[3]
IMAGE_NAME = "imagestream-operator"
UID = GID = 65532
PYTHON = "/usr/bin/python3.11"
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"  # Debian's python3.11 reads it (site.py)
STDLIB = "usr/lib/python3.11"
ENV = (
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "LANG=C.UTF-8",
    "PYTHONUNBUFFERED=1",
    "PYTHONDONTWRITEBYTECODE=1",
    "HOME=/tmp",  # the chart mounts an emptyDir at /tmp; the root filesystem is read-only
)
ENTRYPOINT = ("python3", "-m", "imagestreams.controller")
CMD = ("--log-format=json",)
SOURCE_LABEL = "org.opencontainers.image.source"


def default_cache() -> Path:
    base = Path(os.environ.get("IMAGESTREAMS_CACHE", Path.home() / ".cache" / "imagestreams"))
    return base / "image-inputs"


@dataclass(frozen=True)
class Provenance:
    version: str
    revision: str
    source_date_epoch: int
    source_url: str | None


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--no-optional-locks", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def provenance(repo: Path, *, source_url: str | None = None) -> Provenance:
    """Version from pyproject.toml; revision and time from git (SOURCE_DATE_EPOCH, if set, wins)."""
    with (repo / "pyproject.toml").open("rb") as handle:
        version: str = tomllib.load(handle)["project"]["version"]
    revision = _git(repo, "rev-parse", "HEAD")
    if _git(repo, "status", "--porcelain", "--", "pyproject.toml", "README.md", "operator"):
        revision += "-dirty"
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or _git(repo, "log", "-1", "--format=%ct", "HEAD")
    if source_url is None:
        try:
            url = _git(repo, "remote", "get-url", "origin")
        except subprocess.CalledProcessError:
            url = ""
        source_url = url if url.startswith(("https://", "http://")) else None
    return Provenance(version, revision, int(epoch), source_url)


def labels(prov: Provenance) -> dict[str, str]:
    result = {
        "org.opencontainers.image.title": IMAGE_NAME,
        "org.opencontainers.image.description": "OpenShift-style ImageStreams for any Kubernetes cluster",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.version": prov.version,
        "org.opencontainers.image.revision": prov.revision,
        "org.opencontainers.image.created": oci.rfc3339(prov.source_date_epoch),
    }
    if prov.source_url:
        result[SOURCE_LABEL] = prov.source_url
    return result


def generated_base_files(base: Tree) -> list[Entry]:
    """What dpkg's maintainer scripts and the image's user would have made: passwd, CA bundle, python3, /tmp."""
    return [
        Entry.file(
            "etc/passwd",
            f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{UID}:{GID}:nonroot:/tmp:/sbin/nologin\n".encode(),
        ),
        Entry.file("etc/group", f"root:x:0:\nnonroot:x:{GID}:\n".encode()),
        Entry.file("etc/ssl/certs/ca-certificates.crt", debian.ca_bundle(base)),
        Entry.symlink("usr/bin/python3", "python3.11"),
        Entry.directory("tmp", mode=0o1777),
        Entry.directory("root", mode=0o700),
    ]


# --- running the image's interpreter on the builder ----------------------------------------------------


def rootfs_python(root: Path, args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the image's python3.11 through the image's own dynamic loader and libraries, without chroot."""
    loader = root / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    library_path = f"{root}/lib/x86_64-linux-gnu:{root}/usr/lib/x86_64-linux-gnu"
    env = {"PYTHONHOME": str(root / "usr"), "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}
    command = [str(loader), "--library-path", library_path, str(root / PYTHON.lstrip("/")), "-s", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)[:200]} failed in the image's Python: {result.stderr[-2000:]}")
    return result


def compile_bytecode(root: Path, directory: Path, image_path: str) -> None:
    """checked-hash .pyc files next to the sources, naming them by their path in the image."""
    rootfs_python(
        root,
        [
            *("-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "checked-hash"),
            *("-s", str(directory), "-p", "/" + image_path, str(directory)),
        ],
    )


# --- the build --------------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    image: Image
    tag: str
    output: Path
    debian_packages: list[debian.DebPackage]
    python_packages: list[python.PyPackage]  # as locked (with the wheels' hashes); checked against what was installed
    project: python.PyPackage
    layers: list[Layer]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.image.digest

    @property
    def compressed_size(self) -> int:
        return len(self.image.manifest) + len(self.image.config.data) + sum(len(b.data) for b in self.image.layers)


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round(now - self._last, 2)
        self._last = now


@dataclass(frozen=True)
class _Inputs:
    debs: dict[debian.DebPackage, Path]
    runtime: list[python.PyPackage]
    builders: list[python.PyPackage]
    wheels: dict[python.PyPackage, Path]


def fetch_inputs(cache: Path) -> _Inputs:
    """The .debs and wheels of the lock files, from the cache or downloaded into it, each hash checked."""
    debs = debian.parse_lock(debian.DEBIAN_LOCK.read_text())
    runtime = python.parse_lock(python.REQUIREMENTS_LOCK.read_text())
    builders = python.parse_lock(python.BUILD_LOCK.read_text())
    return _Inputs(
        debian.fetch(debs, cache / "debs"), runtime, builders, python.fetch([*runtime, *builders], cache / "wheels")
    )


def base_tree(debs: dict[debian.DebPackage, Path]) -> Tree:
    base = Tree()
    for package, deb in sorted(debs.items()):
        debian.unpack(package, deb, base)
        base.add(Entry.file(f"var/lib/dpkg/status.d/{package.name}", debian.control(deb).encode()))
    for entry in generated_base_files(base):
        base.add(entry)
    return base


def install_python(inputs: _Inputs, repo: Path, prov: Provenance, work: Path, cache: Path) -> tuple[Path, Path]:
    """Dependencies and the project (its wheel built first) installed side by side, as two pip runs at once."""
    deps_dir, project_dir = work / "deps", work / "project"

    pip_wheel = next((inputs.wheels[p] for p in inputs.builders if p.name == "pip"), None)
    if pip_wheel is None:
        raise python.PythonError("build-requirements.lock pins no pip: run `python -m imagestreams.imagebuild lock`")
    pip = python.unpacked(pip_wheel, cache)
    backend = [inputs.wheels[p] for p in inputs.builders if p.name != "pip"]

    def install_project() -> None:
        epoch = prov.source_date_epoch
        wheel = python.build_project_wheel(repo, backend, work / "dist", pip=pip, source_date_epoch=epoch)
        python.install([wheel], project_dir, f"{python.PROJECT_NAME}=={prov.version}\n", pip=pip)

    runtime = [inputs.wheels[package] for package in inputs.runtime]
    requirements = python.requirements_text(inputs.runtime)
    with ThreadPoolExecutor(2) as pool:
        steps = [pool.submit(python.install, runtime, deps_dir, requirements, pip=pip), pool.submit(install_project)]
        for step in steps:
            step.result()
    _check_installed(python.installed_packages(deps_dir), inputs.runtime)
    return deps_dir, project_dir


def build(
    *,
    repo: Path = REPO_ROOT,
    output: Path | None = None,
    cache: Path | None = None,
    prov: Provenance | None = None,
) -> BuildResult:
    clock = _Clock()
    output = output or repo / "build" / "image"
    prov = prov or provenance(repo)
    cache = cache or default_cache()
    inputs = fetch_inputs(cache)
    clock.lap("fetch")
    base = base_tree(inputs.debs)
    clock.lap("unpack")

    with tempfile.TemporaryDirectory(prefix="imagebuild-") as scratch:
        work = Path(scratch)
        deps_dir, project_dir = install_python(inputs, repo, prov, work, cache)
        clock.lap("wheels")

        root = work / "rootfs"
        materialize([base], root)
        compile_bytecode(root, root / STDLIB, STDLIB)
        compile_bytecode(root, deps_dir, SITE_PACKAGES)
        compile_bytecode(root, project_dir, SITE_PACKAGES)
        for pyc in sorted((root / STDLIB).rglob("*.pyc")):
            base.add(Entry.file(pyc.relative_to(root).as_posix(), pyc.read_bytes()))
        clock.lap("bytecode")

        deps = tree_from_directory(deps_dir, SITE_PACKAGES)
        project = tree_from_directory(project_dir, SITE_PACKAGES, mtime=prov.source_date_epoch)
        for name, script in python.entry_point_scripts(project_dir, python.PROJECT_NAME, PYTHON).items():
            project.add(Entry.file(f"usr/local/bin/{name}", script, mode=0o755, mtime=prov.source_date_epoch))
        project_package = python.installed_packages(project_dir)[0]
        materialize([deps, project], root)
        verify(root)
        clock.lap("verify")

    with ThreadPoolExecutor(3) as pool:  # zlib releases the GIL
        layers = list(pool.map(compress, [base, deps, project]))
    clock.lap("compress")
    history = [
        f"debian {debian.SUITE} packages of debian.lock ({len(inputs.debs)}), user {UID}, CA bundle, bytecode",
        f"python packages of requirements.lock ({len(inputs.runtime)})",
        f"{python.PROJECT_NAME} {prov.version} ({prov.revision})",
    ]
    settings = oci.ImageSettings(
        created=prov.source_date_epoch,
        labels=labels(prov),
        entrypoint=ENTRYPOINT,
        cmd=CMD,
        # The revision again for the operator's imagestreams_build_info metric (controller/__main__.py).
        env=(*ENV, f"IMAGESTREAMS_BUILD_REVISION={prov.revision}"),
        user=f"{UID}:{GID}",
    )
    built = oci.image(settings, list(zip(layers, history, strict=True)))
    result = BuildResult(built, prov.version, output, sorted(inputs.debs), inputs.runtime, project_package, layers)
    write_outputs(result, prov)
    clock.lap("write")
    result.timings = clock.timings
    return result


def _check_installed(installed: Sequence[python.PyPackage], locked: Sequence[python.PyPackage]) -> None:
    got = {(p.name, p.version) for p in installed}
    want = {(p.name, p.version) for p in locked}
    if got != want:
        raise python.PythonError(f"installed packages differ from requirements.lock: {sorted(got ^ want)}")


def verify(root: Path) -> None:
    """The image's Python imports the operator, with only the image's files (stdlib, site-packages, libs)."""
    probe = (
        "import sys, ssl, sqlite3, imagestreams.controller.__main__ as m;"
        "assert sys.prefix.endswith('/usr'), sys.prefix;"
        "assert all(p.startswith(sys.prefix) for p in sys.path if p), sys.path;"
        "print(sys.version.split()[0], m.__file__)"
    )
    rootfs_python(root, ["-c", probe])


def write_outputs(result: BuildResult, prov: Provenance) -> None:
    """`<output>/oci` (an OCI image layout), `<output>/sbom.spdx.json` and `<output>/digest`."""
    layout = result.output / "oci"
    if layout.exists():
        for old in sorted(layout.rglob("*"), reverse=True):
            if old.is_dir():
                old.rmdir()
            else:
                old.unlink()
    oci.write_layout(result.image, layout, result.tag)
    document = oci.sbom(
        name=IMAGE_NAME,
        version=prov.version,
        digest=result.digest,
        created=prov.source_date_epoch,
        debian=result.debian_packages,
        python=result.python_packages,
        project=result.project,
    )
    (result.output / "sbom.spdx.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    (result.output / "digest").write_text(result.digest + "\n")
