"""The image's base: Debian 12 (bookworm) packages pinned by version and SHA-256, unpacked without dpkg.

`debian.lock` lists every package with its exact version and the SHA-256 of its .deb. The build fetches
them with `apt-get download` (the machine's apt sources), checks each hash, and reads the data tar of each
.deb straight into the layer (`dpkg-deb --fsys-tarfile`), so no maintainer script runs and nothing on the
builder is installed. `lock` re-resolves the list from ROOTS with apt's candidate versions.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from imagestreams.imagebuild.layers import Entry, Kind, Tree, clean_path

HERE = Path(__file__).resolve().parent
DEBIAN_LOCK = HERE / "debian.lock"
SUITE = "bookworm"
ARCH = "amd64"

# What the image needs; everything else in the lock is what these depend on.
ROOTS = (
    "base-files",  # /etc/os-release, which scanners read to know the distribution
    "netbase",  # /etc/services and /etc/protocols
    "ca-certificates",
    "python3.11-minimal",
    "libpython3.11-stdlib",
)
# Needed only by maintainer scripts, which never run here.
EXCLUDED = frozenset({"awk", "mawk", "debconf", "debconf-2.0", "perl-base", "dpkg", "install-info", "libc-bin"})

# Documentation and data no program in the image reads; copyright files stay.
_DROPPED = re.compile(r"^usr/share/(man|info|lintian|bug|doc-base|locale)(/|$)|^usr/share/doc/[^/]+/(?!copyright$)")

LOCK_HINT = (
    "the Debian mirror no longer has a pinned version (a point release or security update replaced it): "
    "run `.venv/bin/python -m imagestreams.imagebuild lock` and commit the new lock files"
)


class DebianError(RuntimeError):
    pass


@dataclass(frozen=True, order=True)
class DebPackage:
    name: str
    version: str
    architecture: str
    sha256: str

    def lock_line(self) -> str:
        return f"{self.name} {self.version} {self.architecture} {self.sha256}"

    @property
    def purl(self) -> str:
        version = self.version.replace(":", "%3A").replace("+", "%2B")
        return f"pkg:deb/debian/{self.name}@{version}?arch={self.architecture}&distro=debian-12"


def parse_lock(text: str) -> list[DebPackage]:
    packages = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 4 or not re.fullmatch(r"[0-9a-f]{64}", fields[3]):
            raise DebianError(f"debian.lock line {number}: expected `name version arch sha256`, got {raw!r}")
        packages.append(DebPackage(*fields))
    names = [package.name for package in packages]
    if len(set(names)) != len(names):
        raise DebianError("debian.lock names a package twice")
    return sorted(packages)


def render_lock(packages: Iterable[DebPackage]) -> str:
    header = (
        f"# Debian 12 ({SUITE}) packages of the operator image ({ARCH}): name, exact version, architecture and the\n"
        "# SHA-256 of the .deb. Written by `python -m imagestreams.imagebuild lock` from apt's candidate versions;\n"
        "# the image build fetches exactly these with `apt-get download` and checks every hash.\n"
    )
    return header + "".join(f"{package.lock_line()}\n" for package in sorted(packages))


def parse_control(text: str) -> dict[str, str]:
    """The fields of one control stanza (continuation lines folded into their field)."""
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and last:
            fields[last] += "\n" + line
        else:
            key, _, value = line.partition(":")
            last = key.strip()
            fields[last] = value.strip()
    return fields


def dependency_alternatives(field: str) -> list[list[str]]:
    """`a (>= 1) | b, c:any` as [["a", "b"], ["c"]]: names only, versions and qualifiers dropped."""
    result = []
    for clause in field.split(","):
        names = [re.split(r"[\s(:\[]", alternative.strip(), maxsplit=1)[0] for alternative in clause.split("|")]
        names = [name for name in names if name]
        if names:
            result.append(names)
    return result


def _apt_show(names: Iterable[str]) -> dict[str, dict[str, str]]:
    """apt's candidate stanza of each name that has one (one apt-cache run: it reads the lists each time)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    result = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *wanted], capture_output=True, text=True, check=False
    )
    stanzas: dict[str, dict[str, str]] = {}
    for block in result.stdout.split("\n\n"):
        fields = parse_control(block)
        if fields.get("Package") and fields.get("Architecture") in (ARCH, "all"):
            stanzas.setdefault(fields["Package"], fields)
    return stanzas


def resolve(roots: Sequence[str] = ROOTS, excluded: frozenset[str] = EXCLUDED) -> list[DebPackage]:
    """The closure of `roots` over Depends and Pre-Depends with apt's candidate versions.

    Of alternatives (`a | b`) the first that is a real package and not excluded is taken; a dependency
    whose alternatives are all excluded is left out.
    """
    found: dict[str, dict[str, str]] = {}
    known_missing: set[str] = set()
    clauses: list[list[str]] = [[root] for root in roots]
    while clauses:
        unknown = {alt for clause in clauses for alt in clause} - found.keys() - known_missing - excluded
        shown = _apt_show(unknown)
        known_missing |= unknown - shown.keys()
        pending: list[list[str]] = []
        for clause in clauses:
            chosen = next((alt for alt in clause if alt not in excluded and (alt in found or alt in shown)), None)
            if chosen is None:
                if all(alt in known_missing for alt in clause):
                    raise DebianError(f"apt has no candidate for {' | '.join(clause)}: run `apt-get update` first")
                continue
            if chosen in found:
                continue
            fields = found[chosen] = shown[chosen]
            depends = ", ".join(fields.get(key, "") for key in ("Pre-Depends", "Depends"))
            pending.extend(dependency_alternatives(depends))
        clauses = pending
    return sorted(
        DebPackage(fields["Package"], fields["Version"], fields["Architecture"], fields["SHA256"])
        for fields in found.values()
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(packages: Sequence[DebPackage], cache: Path) -> dict[DebPackage, Path]:
    """Every package's .deb from the cache, downloading the missing ones; each hash is checked."""
    cache.mkdir(parents=True, exist_ok=True)
    paths = {package: cache / f"{package.sha256}.deb" for package in packages}
    missing = [package for package, path in paths.items() if not path.is_file()]
    if missing:
        _download(missing, paths, cache)
    for package, path in paths.items():
        if sha256_file(path) != package.sha256:
            path.unlink()
            raise DebianError(f"{path}: SHA-256 differs from debian.lock for {package.name}; removed, run again")
    return paths


def _download(missing: Sequence[DebPackage], paths: dict[DebPackage, Path], cache: Path) -> None:
    command = ["apt-get", "download", "-q", *(f"{p.name}:{p.architecture}={p.version}" for p in missing)]
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        result = subprocess.run(command, cwd=scratch, capture_output=True, text=True, check=False)
        if result.returncode != 0 and os.geteuid() == 0:
            # Lists never fetched, or older than the lock: refresh them once, as `make setup` would.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            result = subprocess.run(command, cwd=scratch, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DebianError(f"apt-get download failed: {result.stderr.strip()[-800:]}\n{LOCK_HINT}")
        downloaded = {sha256_file(path): path for path in Path(scratch).glob("*.deb")}
        for package in missing:
            source = downloaded.get(package.sha256)
            if source is None:
                raise DebianError(f"{package.name} {package.version}: no download matches the pinned SHA-256")
            shutil.move(source, paths[package])


def _deb_output(deb: Path, *args: str) -> bytes:
    return subprocess.run(["dpkg-deb", *args, str(deb)], capture_output=True, check=True).stdout


def unpack(package: DebPackage, deb: Path, tree: Tree) -> list[str]:
    """Add the package's files to `tree` (documentation dropped); returns the paths it owns."""
    owned = []
    with tarfile.open(fileobj=io.BytesIO(_deb_output(deb, "--fsys-tarfile")), mode="r:") as tar:
        for member in tar:
            path = clean_path(member.name)
            if not path or _DROPPED.search(path):
                continue
            mode, uid, gid, mtime = member.mode & 0o7777, member.uid, member.gid, int(member.mtime)
            if member.isdir():
                tree.add(Entry(path, Kind.DIR, mode, uid=uid, gid=gid, mtime=mtime))
                continue
            if member.isreg():
                handle = tar.extractfile(member)
                assert handle is not None
                tree.add(Entry(path, Kind.FILE, mode, handle.read(), uid=uid, gid=gid, mtime=mtime))
            elif member.issym():
                tree.add(Entry(path, Kind.SYMLINK, mode, target=member.linkname, uid=uid, gid=gid, mtime=mtime))
            elif member.islnk():
                target = clean_path(member.linkname)
                tree.add(Entry(path, Kind.HARDLINK, mode, target=target, uid=uid, gid=gid, mtime=mtime))
            else:
                raise DebianError(f"{package.name}: unsupported member type for {member.name}")
            owned.append(path)
    return owned


def control(deb: Path) -> str:
    """The package's control stanza, as dpkg would record it (for /var/lib/dpkg/status.d, which scanners read)."""
    return _deb_output(deb, "--field").decode()


def ca_bundle(tree: Tree) -> bytes:
    """/etc/ssl/certs/ca-certificates.crt as update-ca-certificates writes it: every certificate, sorted."""
    prefix = "usr/share/ca-certificates/"
    certificates = sorted(
        path for path, entry in tree.files().items() if path.startswith(prefix) and entry.kind is Kind.FILE
    )
    if not certificates:
        raise DebianError("no certificates under /usr/share/ca-certificates: is ca-certificates in debian.lock?")
    parts = []
    for path in certificates:
        entry = tree.get(path)
        assert entry is not None
        data = entry.data if entry.data.endswith(b"\n") else entry.data + b"\n"
        parts.append(data)
    return b"".join(parts)
