"""The image's Python packages: the project's wheel and its dependencies, pinned with hashes.

`requirements.lock` lists every runtime dependency (`name==version --hash=sha256:...`): the versions of
the development virtualenv, resolved for CPython 3.11 on manylinux x86_64 (the image's Python) and hashed
from the wheels PyPI serves. The Dockerfile installs from the same file. `build-requirements.lock` pins
setuptools, which builds the project's wheel. Wheels are cached by hash; an install never reads an index.
"""

from __future__ import annotations

import email.parser
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from imagestreams.imagebuild.debian import sha256_file

HERE = Path(__file__).resolve().parent
REQUIREMENTS_LOCK = HERE / "requirements.lock"
BUILD_LOCK = HERE / "build-requirements.lock"
PROJECT_NAME = "imagestreams"
SOURCES = ("pyproject.toml", "README.md", "operator")  # what the wheel is built from (as in .dockerignore)
# The image's interpreter (Debian's python3.11) and platform, whatever Python runs the build.
# pip does not widen manylinux_2_36 to the older glibc tags it accepts, so every one is named.
TARGET = (
    "--only-binary=:all:",
    "--implementation=cp",
    "--python-version=3.11",
    "--abi=cp311",
    *(f"--platform=manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
    *(f"--platform={legacy}_x86_64" for legacy in ("manylinux2014", "manylinux2010", "manylinux1")),
)
_LINE = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)\s+--hash=sha256:(?P<sha256>[0-9a-f]{64})$")


class PythonError(RuntimeError):
    pass


def canonical_name(name: str) -> str:
    """PEP 503: `Typing_Extensions` and `typing.extensions` are `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True, order=True)
class PyPackage:
    name: str  # canonical
    version: str
    sha256: str = ""  # of the wheel; empty for the project, built here

    def lock_line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"

    @property
    def purl(self) -> str:
        return f"pkg:pypi/{self.name}@{self.version}"


def parse_lock(text: str) -> list[PyPackage]:
    packages = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            raise PythonError(f"lock line {number}: expected `name==version --hash=sha256:<hex>`, got {raw!r}")
        packages.append(PyPackage(canonical_name(match["name"]), match["version"], match["sha256"]))
    return sorted(packages)


def requirements_text(packages: Iterable[PyPackage]) -> str:
    return "".join(f"{package.lock_line()}\n" for package in packages)


def render_lock(packages: Iterable[PyPackage], header: str) -> str:
    return header + requirements_text(sorted(packages))


REQUIREMENTS_HEADER = (
    "# The operator image's Python packages (runtime dependencies of imagestreams), one wheel each for CPython 3.11\n"
    "# on manylinux x86_64, pinned by SHA-256. Written by `python -m imagestreams.imagebuild lock` from the versions\n"
    "# in .venv; installed with `pip install --no-deps --require-hashes -r` by both `make image` and the Dockerfile.\n"
)
BUILD_HEADER = (
    "# What builds the image's Python layers, pinned by SHA-256: setuptools (pyproject.toml's build-system.requires)\n"
    "# builds the project's wheel, and this pip (the virtualenv's version) installs every wheel.\n"
    "# Written by `python -m imagestreams.imagebuild lock`.\n"
)


def _pip(
    args: Sequence[str], *, env: dict[str, str] | None = None, isolated: bool = True, pip: Path | None = None
) -> str:
    """Run pip: the pinned wheel `pip` if given (what writes the image's files), else this interpreter's.

    `isolated` (offline steps) ignores the user's pip configuration; downloads honour it (proxy, CA).
    """
    runner = [f"{pip}/pip"] if pip is not None else ["-m", "pip"]
    command = [sys.executable, *runner, *(["--isolated"] if isolated else []), "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise PythonError(f"pip {args[0]} failed ({result.returncode}): {(result.stderr or result.stdout)[-1500:]}")
    return result.stdout


def wheel_identity(filename: str) -> tuple[str, str]:
    """(canonical name, version) of a wheel file name."""
    name, version = filename.split("-")[:2]
    return canonical_name(name), version


def fetch(packages: Sequence[PyPackage], cache: Path) -> dict[PyPackage, Path]:
    """Every locked wheel from the cache (`<sha256>/<file>.whl`), downloading the missing ones with pip."""
    cache.mkdir(parents=True, exist_ok=True)

    def cached(package: PyPackage) -> Path | None:
        return next(iter(sorted((cache / package.sha256).glob("*.whl"))), None)

    missing = [package for package in packages if cached(package) is None]
    if missing:
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            requirements = Path(scratch) / "requirements.txt"
            requirements.write_text(requirements_text(missing))
            downloads = Path(scratch) / "wheels"
            _pip(
                ["download", "--no-deps", "--require-hashes", *TARGET, "-d", str(downloads), "-r", str(requirements)],
                isolated=False,
            )
            for path in downloads.glob("*.whl"):
                digest = sha256_file(path)
                (cache / digest).mkdir(exist_ok=True)
                shutil.move(path, cache / digest / path.name)
    result = {}
    for package in packages:
        found = cached(package)
        if found is None or sha256_file(found) != package.sha256:
            raise PythonError(f"{package.name} {package.version}: no wheel with the locked SHA-256 in {cache}")
        result[package] = found
    return result


def unpacked(wheel: Path, cache: Path) -> Path:
    """The wheel unzipped once into the cache (pip runs faster from a directory than from its wheel)."""
    target = cache / "unpacked" / sha256_file(wheel)
    if not (target / ".complete").is_file():
        shutil.rmtree(target, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
        (target / ".complete").touch()
    return target


def install(wheels: Iterable[Path], target: Path, requirements: str, *, pip: Path | None) -> None:
    """`pip install --target` of exactly these wheels (no index, no dependencies resolved, no bytecode)."""
    with tempfile.TemporaryDirectory() as scratch:
        links = Path(scratch) / "links"
        links.mkdir()
        for wheel in wheels:
            (links / wheel.name).symlink_to(wheel)
        requirements_file = Path(scratch) / "requirements.txt"
        requirements_file.write_text(requirements)
        _pip(
            [
                "install",
                "--no-index",
                "--find-links",
                str(links),
                "--no-deps",
                "--no-compile",
                "--no-warn-script-location",
                *TARGET,
                "--target",
                str(target),
                "-r",
                str(requirements_file),
            ],
            pip=pip,
        )
    _drop_scripts(target)


def _drop_scripts(target: Path) -> None:
    """pip's console scripts name the builder's interpreter: remove them and their RECORD rows.

    The project's own commands are written for the image's interpreter (`entry_point_scripts`).
    """
    shutil.rmtree(target / "bin", ignore_errors=True)
    for record in target.glob("*.dist-info/RECORD"):
        rows = record.read_text().splitlines(keepends=True)
        record.write_text("".join(row for row in rows if not row.startswith("../")))


def source_files(repo: Path) -> list[str]:
    """What the project's wheel is built from: the tracked and new, not ignored, files (`git ls-files`)."""
    result = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *SOURCES],
        cwd=repo,
        capture_output=True,
        check=True,
    )
    return sorted(name for name in result.stdout.decode().split("\0") if name and (repo / name).is_file())


def build_project_wheel(
    repo: Path, build_wheels: Sequence[Path], out: Path, *, pip: Path | None, source_date_epoch: int
) -> Path:
    """The project's wheel, built from a copy of its sources with the pinned setuptools (and pip)."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "src"
        for name in source_files(repo):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, source / name)
        build_env = Path(scratch) / "build-env"
        install(build_wheels, build_env, "".join(f"{wheel_identity(w.name)[0]}\n" for w in build_wheels), pip=pip)
        env = {**os.environ, "PYTHONPATH": str(build_env), "SOURCE_DATE_EPOCH": str(source_date_epoch)}
        out.mkdir(parents=True, exist_ok=True)
        _pip(
            ["wheel", "--no-build-isolation", "--no-deps", "--no-index", "--wheel-dir", str(out), str(source)],
            env=env,
            pip=pip,
        )
    wheels = sorted(out.glob(f"{PROJECT_NAME}-*.whl"))
    if len(wheels) != 1:
        raise PythonError(f"expected one {PROJECT_NAME} wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def installed_packages(site_packages: Path) -> list[PyPackage]:
    """Name and version of every distribution in a site-packages directory (from its METADATA)."""
    packages = []
    for metadata in sorted(site_packages.glob("*.dist-info/METADATA")):
        message = email.parser.BytesHeaderParser().parse(metadata.open("rb"))
        packages.append(PyPackage(canonical_name(message["Name"]), message["Version"]))
    return sorted(packages)


def entry_point_scripts(site_packages: Path, distribution: str, interpreter: str) -> dict[str, bytes]:
    """`console_scripts` of one installed distribution as scripts for the image's interpreter."""
    found = sorted(site_packages.glob(f"{distribution}-*.dist-info/entry_points.txt"))
    if not found:
        raise PythonError(f"{distribution} has no entry_points.txt in {site_packages}")
    scripts: dict[str, bytes] = {}
    section = ""
    for raw in found[0].read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and section == "console_scripts":
            name, _, target = (part.strip() for part in line.partition("="))
            module, _, function = target.partition(":")
            scripts[name] = (
                f"#!{interpreter}\nimport sys\nfrom {module} import {function}\n\n"
                f'if __name__ == "__main__":\n    sys.exit({function}())\n'
            ).encode()
    return scripts


# --- lock -----------------------------------------------------------------------------------------------


def project_requirements(repo: Path) -> list[str]:
    with (repo / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)
    requirements: list[str] = project["project"]["dependencies"]
    return requirements


def build_requirements(repo: Path) -> list[str]:
    with (repo / "pyproject.toml").open("rb") as handle:
        requirements: list[str] = tomllib.load(handle)["build-system"]["requires"]
    return requirements


def _download_and_hash(requirements: Sequence[str], constraints: str | None) -> list[PyPackage]:
    with tempfile.TemporaryDirectory() as scratch:
        args = ["download", *TARGET, "-d", f"{scratch}/wheels"]
        if constraints is not None:
            (Path(scratch) / "constraints.txt").write_text(constraints)
            args += ["-c", f"{scratch}/constraints.txt"]
        # The hashes must be the index's (the Dockerfile checks them against PyPI): no local wheel directories.
        env = {key: value for key, value in os.environ.items() if key != "PIP_FIND_LINKS"}
        _pip([*args, *requirements], env=env, isolated=False)
        packages = []
        for path in sorted(Path(scratch, "wheels").glob("*.whl")):
            name, version = wheel_identity(path.name)
            packages.append(PyPackage(name, version, hashlib.sha256(path.read_bytes()).hexdigest()))
    return sorted(packages)


def lock_runtime(repo: Path) -> list[PyPackage]:
    """The runtime closure of the project's dependencies at the versions installed in this interpreter."""
    frozen = _pip(["freeze", "--all", "--exclude-editable"])
    constraints = "".join(line + "\n" for line in frozen.splitlines() if "==" in line and not line.startswith("-e"))
    return _download_and_hash(project_requirements(repo), constraints)


def lock_build(repo: Path) -> list[PyPackage]:
    """setuptools (the build backend) and pip at this virtualenv's version: pip writes the installed files."""
    return _download_and_hash([*build_requirements(repo), f"pip=={importlib.metadata.version('pip')}"], None)
